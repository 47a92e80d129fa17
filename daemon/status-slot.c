/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "status-slot.h"

void status_slot_init(StatusSlot *s)
{
        *s = (StatusSlot){};
        pthread_mutex_init(&s->lock, NULL);
}

void status_slot_done(StatusSlot *s)
{
        pthread_mutex_destroy(&s->lock);
}

bool status_slot_put(StatusSlot *s, const EvdStatusJob *st, bool progress, unsigned files_done_inc,
                     bool post_now)
{
        pthread_mutex_lock(&s->lock);
        s->st = *st;
        s->files_done_inc += files_done_inc;
        s->progress |= progress;
        s->fresh = true;
        bool post = post_now && !s->posted;
        if (post)
                s->posted = true;
        pthread_mutex_unlock(&s->lock);
        return post;
}

bool status_slot_take(StatusSlot *s, bool from_message, EvdStatusJob *ret, bool *ret_progress,
                      unsigned *ret_files_done_inc)
{
        pthread_mutex_lock(&s->lock);
        bool fresh = s->fresh;
        if (fresh) {
                *ret = s->st;
                *ret_progress = s->progress;
                *ret_files_done_inc = s->files_done_inc;
                s->files_done_inc = 0;
                s->progress = false;
                s->fresh = false;
        }
        if (from_message)
                s->posted = false;
        pthread_mutex_unlock(&s->lock);
        return fresh;
}
