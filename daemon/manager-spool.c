/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The spool-replay thread: while entries wait in the local spool (dockings made while the database was
 * unreachable), the 1-second tick starts a replay on its own thread; it reports with MSG_REPLAY_DONE. */
#include <stdio.h>

#include "clock.h"
#include "db.h"
#include "log.h"
#include "manager-internal.h"

static void *replay_main(void *arg)
{
        Manager *m = arg;
        Msg *msg = &m->replay_msg;
        *msg = (Msg){.kind = MSG_REPLAY_DONE, .embedded = true};
        _cleanup_(evd_spool_freep) EvdSpool *spool = NULL;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        int r = evd_spool_open(m->cfg.spool_dir, &spool, &msg->err);
        if (r >= 0)
                r = evd_db_open(m->cfg.database_url, &db, &msg->err);
        if (r >= 0)
                r = evd_spool_replay(spool, db, &msg->replay, &msg->err);
        msg->result = r;
        msg->flag = db && !evd_spool_db_unreachable(r); /* the database answered */
        mailbox_post(&m->mailbox, msg);
        return NULL;
}

void spool_join(Manager *m)
{
        if (m->replay_running) {
                pthread_join(m->replay_thread, NULL);
                m->replay_running = false;
        }
}

void spool_on_replay_done(Manager *m, Msg *msg)
{
        spool_join(m);
        status_database(m, msg->flag ? 0 : msg->result, &msg->err);
        const EvdSpoolReplay *res = &msg->replay;
        int r = msg->result;
        uint64_t next = SPOOL_REPLAY_RETRY_USEC;
        if (r >= 0) {
                if (res->replayed || res->already || res->rejected)
                        log_info(
                            "spool %s: replayed %u entries, %u already recorded, %u rejected; %u waiting",
                            m->cfg.spool_dir, res->replayed, res->already, res->rejected, res->waiting);
                if (m->replay_failing && !res->waiting)
                        log_info("spool %s: the database is back; the spool is empty", m->cfg.spool_dir);
                if (!res->waiting && m->reconcile_after_replay) {
                        m->reconcile_after_replay = false;
                        m->reconcile_pending = true;
                }
                m->replay_failing = false;
                if (res->waiting && res->waiting == res->other_db)
                        next = SPOOL_REPLAY_IDLE_USEC;
        } else if (r != -EBUSY && !m->replay_failing) {
                unsigned backlog = 0;
                (void)evd_spool_backlog(m->spool, &backlog);
                log_warn("spool %s: %u entries wait for the database: %s; retrying every %llu s",
                         m->cfg.spool_dir, backlog, evd_error_message(&msg->err, r),
                         (unsigned long long)(SPOOL_REPLAY_RETRY_USEC / 1000000));
                m->replay_failing = true;
        }
        if (res->rejected)
                log_error("spool %s: %u entries rejected (kept in %s/rejected, nothing dropped): %s",
                          m->cfg.spool_dir, res->rejected, m->cfg.spool_dir, res->last_rejected);
        m->replay_not_before = evd_clock_monotonic_us() + next;
}

/* From the 1-second tick: the backlog for the status, and a replay when entries wait. */
void spool_tick(Manager *m)
{
        if (!m->spool)
                return;
        unsigned backlog = 0;
        if (evd_spool_backlog(m->spool, &backlog) < 0)
                return;
        m->status.spool_backlog = backlog;
        if (backlog == 0 || m->replay_running || m->stopping ||
            evd_clock_monotonic_us() < m->replay_not_before)
                return;
        if (pthread_create(&m->replay_thread, NULL, replay_main, m) != 0) {
                log_error("cannot start the spool replay thread");
                m->replay_not_before = evd_clock_monotonic_us() + SPOOL_REPLAY_RETRY_USEC;
                return;
        }
        m->replay_running = true;
}
