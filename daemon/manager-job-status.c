/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A running job's status on its way from the worker thread to the loop: the worker overwrites the
 * latest in the job's StatusSlot and posts at most one message for it (throttled, nothing dropped); the
 * loop takes the latest when the message arrives, when the job ends, and when it publishes status.json. */
#include <string.h>

#include "clock.h"
#include "manager-internal.h"

/* A worker's progress is posted at most this often (every event that changes counts goes at once). */
#define JOB_STATUS_THROTTLE_USEC 250000ULL

void job_post_status(Job *j, bool force, bool progress, unsigned files_done_inc)
{
        /* the latest always goes into the slot; a message only when not throttled and none waits */
        uint64_t now = evd_clock_monotonic_us();
        bool post_now = force || files_done_inc > 0 || now - j->posted_usec >= JOB_STATUS_THROTTLE_USEC;
        if (!status_slot_put(&j->status_slot, &j->wst, progress, files_done_inc, post_now))
                return;
        j->posted_usec = now;
        j->status_msg = (Msg){.kind = MSG_JOB_STATUS, .embedded = true, .job = j};
        mailbox_post(&j->manager->mailbox, &j->status_msg);
}

void job_status_take(Manager *m, Job *j, bool from_message)
{
        EvdStatusJob st;
        bool progress = false;
        unsigned inc = 0;
        if (!status_slot_take(&j->status_slot, from_message, &st, &progress, &inc))
                return;
        /* what the loop decided (stopping, abandoned) wins over the worker's "copying" */
        bool keep_state = j->cancel_usec != 0;
        char state[sizeof(j->st.state)];
        memcpy(state, j->st.state, sizeof(state));
        j->st = st;
        if (keep_state)
                memcpy(j->st.state, state, sizeof(state));
        if (progress)
                j->progress_usec = evd_clock_monotonic_us();
        m->status.files_ingested += inc;
}

void jobs_on_status(Manager *m, Msg *msg)
{
        job_status_take(m, msg->job, true);
}
