/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The latest status of one job on its way from its worker thread to the event loop. The worker
 * overwrites it (a newer percentage replaces the older one: nothing is dropped, nothing queues up), and
 * asks for at most one message at a time; the loop takes the latest when that message arrives, and
 * also whenever it publishes the status (status.json, once a second), so that status never shows a
 * percentage older than the last second even while the worker's posts are throttled. */
#pragma once

#include <pthread.h>
#include <stdbool.h>

#include "status.h"

typedef struct StatusSlot {
        pthread_mutex_t lock;
        EvdStatusJob st;         /* the latest */
        unsigned files_done_inc; /* summed until taken */
        bool progress;           /* the job moved on since the last take */
        bool fresh;              /* st not taken yet */
        bool posted;             /* a message for this slot waits in the mailbox */
} StatusSlot;

void status_slot_init(StatusSlot *s);
void status_slot_done(StatusSlot *s);

/* Worker: stores st as the latest. Returns true when the caller must post one message for the slot now:
 * post_now and none waits already. */
bool status_slot_put(StatusSlot *s, const EvdStatusJob *st, bool progress, unsigned files_done_inc,
                     bool post_now);

/* Loop: the latest status (and the sums since the last take) when there is a fresh one; false if not.
 * from_message: called for the slot's message (the next put may post again); otherwise a message may
 * still be on its way and stays so. */
bool status_slot_take(StatusSlot *s, bool from_message, EvdStatusJob *ret, bool *ret_progress,
                      unsigned *ret_files_done_inc);
