/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reconciliation of the store against the database after a crash or power loss (reconcile.h): at
 * start-up once nothing is being ingested, and again once a spool that held it back is empty. Runs on
 * its own thread and reports with MSG_RECONCILE_DONE; no docking starts while it runs. */
#include <inttypes.h>

#include "db.h"
#include "log.h"
#include "manager-internal.h"
#include "reconcile.h"

static void on_reconcile_finding(EvdReconcileKind kind, const char *path, int64_t file_id, void *userdata)
{
        if (kind == EVD_RECONCILE_FILE_WITHOUT_ROW)
                log_warn(
                    "reconciliation: %s is stored but not recorded (an interrupted run); it is kept, and "
                    "recorded when its recorder docks again",
                    path);
        else if (kind == EVD_RECONCILE_ROW_WITHOUT_FILE)
                log_error("reconciliation: file %" PRId64 " names %s, which is MISSING from the store",
                          file_id, path);
}

static void *reconcile_main(void *arg)
{
        Manager *m = arg;
        Msg *msg = &m->reconcile_msg;
        *msg = (Msg){.kind = MSG_RECONCILE_DONE, .embedded = true};
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        int r = evd_db_open(m->cfg.database_url, &db, &msg->err);
        manager_database_state(m, r, &msg->err);
        EvdReconcileReport rep = {};
        if (r >= 0)
                r = evd_reconcile(m->store, db, on_reconcile_finding, m, &rep, &msg->err);
        if (r < 0)
                log_warn("reconciliation of %s not done: %s", m->cfg.store_root,
                         evd_error_message(&msg->err, r));
        else
                log_msg(rep.rows_without_file   ? LOG_ERR
                        : rep.files_without_row ? LOG_WARNING
                                                : LOG_INFO,
                        "reconciliation of %s: %u stored files and %u recorded paths checked; %u temporary "
                        "file(s) removed, %u file(s) without a row, %u row(s) without a file",
                        m->cfg.store_root, rep.files_checked, rep.rows_checked, rep.temp_removed,
                        rep.files_without_row, rep.rows_without_file);
        msg->result = r;
        mailbox_post(&m->mailbox, msg);
        return NULL;
}

void reconcile_join(Manager *m)
{
        if (m->reconcile_running) {
                pthread_join(m->reconcile_thread, NULL);
                m->reconcile_running = false;
        }
}

void reconcile_on_done(Manager *m, Msg *msg)
{
        reconcile_join(m);
}

/* From the tick: start a pending reconciliation when nothing is being ingested; files waiting in the
 * spool have no rows by design, so then it waits for the spool to be replayed. */
void reconcile_tick(Manager *m)
{
        if (!m->reconcile_pending || m->reconcile_running || m->n_running > 0 || m->stopping)
                return;
        unsigned backlog = 0;
        if (m->spool && evd_spool_backlog(m->spool, &backlog) >= 0 && backlog > 0) {
                log_info("reconciliation postponed: %u spool entries wait for the database", backlog);
                m->reconcile_pending = false;
                m->reconcile_after_replay = true;
                return;
        }
        m->reconcile_pending = false;
        if (pthread_create(&m->reconcile_thread, NULL, reconcile_main, m) != 0) {
                log_error("cannot start the reconciliation thread");
                return;
        }
        m->reconcile_running = true;
}
