/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <time.h>

#include "clock.h"
#include "nap.h"

int nap_init(Nap *n)
{
        pthread_condattr_t attr;
        int r = pthread_condattr_init(&attr);
        if (r == 0)
                r = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        if (r == 0)
                r = pthread_cond_init(&n->wake, &attr);
        pthread_condattr_destroy(&attr);
        if (r != 0)
                return -r;
        pthread_mutex_init(&n->lock, NULL);
        atomic_init(&n->stop, 0);
        return 0;
}

void nap_done(Nap *n)
{
        pthread_cond_destroy(&n->wake);
        pthread_mutex_destroy(&n->lock);
}

bool nap_sleep(Nap *n, uint64_t usec)
{
        uint64_t until_us = evd_clock_monotonic_us() + usec; /* lib/clock.h: CLOCK_MONOTONIC */
        struct timespec until = {.tv_sec = (time_t)(until_us / 1000000u),
                                 .tv_nsec = (long)(until_us % 1000000u) * 1000};
        pthread_mutex_lock(&n->lock);
        while (!nap_stopped(n) && pthread_cond_timedwait(&n->wake, &n->lock, &until) != ETIMEDOUT)
                ; /* a spurious wake-up waits on for the rest */
        pthread_mutex_unlock(&n->lock);
        return !nap_stopped(n);
}

void nap_stop(Nap *n)
{
        pthread_mutex_lock(&n->lock);
        atomic_store(&n->stop, 1);
        pthread_cond_broadcast(&n->wake);
        pthread_mutex_unlock(&n->lock);
}
