/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A wait that another thread can cut short: a worker thread's pause between its polls (the disc runner),
 * ended at once by nap_stop(). Its deadline is on CLOCK_MONOTONIC (lib/clock.h): a wall clock stepped
 * back or forward (NTP, an admin, a dead RTC battery) neither stretches a pause nor makes it a busy
 * loop. The stop flag is a C11 atomic: other code may read it without the lock (a cancel flag for the
 * library, *cancel). */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct Nap {
        pthread_mutex_t lock;
        pthread_cond_t wake; /* on CLOCK_MONOTONIC */
        atomic_int stop;     /* non-zero once nap_stop() was called */
} Nap;

/* 0, or a negative errno (the condition variable's clock cannot be set). */
int nap_init(Nap *n);
void nap_done(Nap *n);
/* Waits up to usec, or until nap_stop(). Returns false once stopped. Any thread. */
bool nap_sleep(Nap *n, uint64_t usec);
/* Ends every nap_sleep(), now and later. Any thread. */
void nap_stop(Nap *n);

static inline bool nap_stopped(Nap *n)
{
        return atomic_load(&n->stop) != 0;
}
