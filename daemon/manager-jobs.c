/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The job queue: pending jobs start on worker threads up to the concurrency limit; a worker reports
 * back with messages (MSG_JOB_STATUS while it runs, MSG_JOB_DONE when its kind's run() returned); the
 * loop thread retries what its kind asks for, and stops a job that makes no progress for longer than
 * its deadline. Kinds of jobs: manager-internal.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "manager-internal.h"

Job *job_new(Manager *m, const JobKind *kind, const char *key)
{
        Job *j = calloc(1, sizeof(*j));
        if (!j)
                return NULL;
        status_slot_init(&j->status_slot);
        j->key = strdup(key);
        if (!j->key) {
                free(j);
                return NULL;
        }
        j->manager = m;
        j->kind = kind;
        atomic_init(&j->cancel, JOB_CANCEL_NONE);
        snprintf(j->source, sizeof(j->source), "%s", key);
        return j;
}

void job_free(Job *j)
{
        if (!j)
                return;
        if (j->kind->free)
                j->kind->free(j);
        status_slot_done(&j->status_slot);
        free(j->key);
        free(j);
}

LogContext job_log_context(const Job *j)
{
        return (LogContext){.source = j->source,
                            .device = j->st.device_id,
                            .officer = j->st.officer_id,
                            .docking_id = j->st.docking_id};
}

Job *job_find(Manager *m, const char *key)
{
        for (Job *j = m->jobs; j; j = j->next)
                if (strcmp(j->key, key) == 0)
                        return j;
        return NULL;
}

int job_enqueue(Manager *m, Job *j, uint64_t delay_usec)
{
        if (job_find(m, j->key)) {
                job_free(j);
                return -EEXIST;
        }
        if (m->n_jobs >= EVD_MANAGER_MAX_QUEUE) {
                log_error("job queue full (%u jobs): not taking %s now", EVD_MANAGER_MAX_QUEUE, j->source);
                job_free(j);
                return -ENOBUFS;
        }
        j->state = JOB_PENDING;
        j->not_before_usec = evd_clock_monotonic_us() + delay_usec;
        snprintf(j->st.source, sizeof(j->st.source), "%s", j->source);
        snprintf(j->st.state, sizeof(j->st.state), "queued");
        Job **p = &m->jobs;
        while (*p)
                p = &(*p)->next;
        *p = j;
        m->n_jobs++;
        return 0;
}

static void job_unlink(Manager *m, Job *j)
{
        Job **p = &m->jobs;
        while (*p && *p != j)
                p = &(*p)->next;
        if (*p) {
                *p = j->next;
                m->n_jobs--;
        }
}

void manager_database_state(Manager *m, int r, const EvdError *err)
{
        Msg *msg = msg_new(MSG_DATABASE);
        if (!msg)
                return;
        msg->result = r < 0 ? r : 0;
        if (r < 0 && err)
                msg->err = *err;
        mailbox_post(&m->mailbox, msg);
}

static void *worker_main(void *arg)
{
        Job *j = arg;
        j->err = (EvdError){};
        j->result = j->kind->run(j);
        j->done_msg = (Msg){.kind = MSG_JOB_DONE, .embedded = true, .job = j};
        mailbox_post(&j->manager->mailbox, &j->done_msg); /* j belongs to the loop from here */
        return NULL;
}

void jobs_on_done(Manager *m, Job *j)
{
        pthread_join(j->thread, NULL);
        job_status_take(m, j, false); /* what a throttled last post left in the slot */
        if (!j->abandoned)
                m->n_running--;
        else
                log_warn("%s: the %s that was given up on has ended now", j->source, j->kind->name);
        bool retry = j->kind->finished(m, j);
        status_remember(m, &j->st);
        if (retry && m->stopping)
                retry = false;
        if (retry && j->attempt >= EVD_MANAGER_MAX_RETRIES) {
                log_error("%s: giving up after %u attempts; it is taken again when it is docked again (or "
                          "after a restart)",
                          j->source, j->attempt + 1);
                retry = false;
        }
        if (!retry) {
                job_unlink(m, j);
                job_free(j);
                return;
        }
        j->attempt++;
        j->state = JOB_PENDING;
        j->not_before_usec = evd_clock_monotonic_us() + EVD_MANAGER_RETRY_USEC;
        j->cancel_usec = 0;
        j->abandoned = false;
        atomic_store(&j->cancel, JOB_CANCEL_NONE);
        snprintf(j->st.state, sizeof(j->st.state), "queued");
}

static void job_tell_stop(Job *j, int why, uint64_t now)
{
        if (j->cancel_usec)
                return;
        atomic_store(&j->cancel, why);
        j->cancel_usec = now;
        snprintf(j->st.state, sizeof(j->st.state), "stopping");
}

void jobs_cancel_all(Manager *m, int why)
{
        uint64_t now = evd_clock_monotonic_us();
        for (Job *j = m->jobs; j; j = j->next)
                if (j->state == JOB_RUNNING)
                        job_tell_stop(j, why, now);
}

unsigned jobs_alive(Manager *m)
{
        unsigned n = 0;
        for (Job *j = m->jobs; j; j = j->next)
                n += j->state == JOB_RUNNING;
        return n;
}

/* A running job: the library ends a docking that does not move for docking_deadline itself (it checks
 * before every read, and records it as stalled). This is the backstop for a worker that cannot get to
 * its next read (stuck in its source): told to stop when it reported no progress for the deadline and
 * the grace time, and given up on (its slot freed for other jobs) when it does not stop within another
 * grace time. */
static void job_watch(Manager *m, Job *j, uint64_t now)
{
        uint64_t deadline = (uint64_t)m->cfg.docking_deadline_us;
        LogContext c = job_log_context(j);
        if (!j->cancel_usec && deadline > 0 &&
            now - j->progress_usec > deadline + EVD_MANAGER_STOP_GRACE_USEC) {
                log_context(LOG_ERR, EVD_MID_DOCKING_DEADLINE, &c,
                            "%s: no progress for %llu s (docking_deadline %llu s): the %s is told to stop",
                            j->source, (unsigned long long)((now - j->progress_usec) / 1000000),
                            (unsigned long long)(deadline / 1000000), j->kind->name);
                job_tell_stop(j, JOB_CANCEL_DEADLINE, now);
        }
        if (j->cancel_usec && !j->abandoned && now - j->cancel_usec > EVD_MANAGER_STOP_GRACE_USEC) {
                j->abandoned = true;
                m->n_running--;
                snprintf(j->st.state, sizeof(j->st.state), "abandoned");
                log_context(
                    LOG_ERR, EVD_MID_DOCKING_STUCK, &c,
                    "%s: the %s does not stop %llu s after it was told to (stuck in its source?); its "
                    "worker slot is freed and it is left behind",
                    j->source, j->kind->name, (unsigned long long)(EVD_MANAGER_STOP_GRACE_USEC / 1000000));
        }
}

void jobs_dispatch(Manager *m)
{
        uint64_t now = evd_clock_monotonic_us();
        for (Job *j = m->jobs; j; j = j->next) {
                if (j->state == JOB_RUNNING) {
                        job_watch(m, j, now);
                        continue;
                }
                if (j->state != JOB_PENDING || m->stopping || m->reconcile_pending || m->reconcile_running ||
                    m->n_running >= m->cfg.usb_max_concurrent || j->not_before_usec > now)
                        continue;
                j->state = JOB_RUNNING;
                j->progress_usec = now;
                snprintf(j->st.state, sizeof(j->st.state), "identifying");
                j->wst = j->st;
                if (j->kind->prepare)
                        j->kind->prepare(m, j);
                if (pthread_create(&j->thread, NULL, worker_main, j) != 0) {
                        log_error("%s: cannot start a worker thread", j->source);
                        j->state = JOB_PENDING;
                        j->not_before_usec = now + EVD_MANAGER_RETRY_USEC;
                        continue;
                }
                m->n_running++;
        }
}

void jobs_join(Manager *m, bool wait)
{
        /* finished workers have posted MSG_JOB_DONE, which manager_dispatch handles; here only the
         * ones still running at exit */
        for (Job *j = m->jobs; j; j = j->next)
                if (j->state == JOB_RUNNING) {
                        if (wait) {
                                pthread_join(j->thread, NULL);
                                j->state = JOB_FINISHED;
                        } else
                                log_error("%s: still running at exit; it is taken again at the next start",
                                          j->source);
                }
}
