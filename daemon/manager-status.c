/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What evidockd is doing, for people: status.json (evidockctl status) and systemd's STATUS= line
 * (systemctl status). Loop thread only. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "clock.h"
#include "db.h"
#include "log.h"
#include "manager-internal.h"
#include "output.h"

void status_remember(Manager *m, const EvdStatusJob *st)
{
        if (m->n_recent == EVD_MANAGER_RECENT) {
                memmove(&m->recent[0], &m->recent[1], sizeof(m->recent[0]) * (EVD_MANAGER_RECENT - 1));
                m->n_recent--;
        }
        m->recent[m->n_recent++] = *st;
}

void status_on_disc(Manager *m, const Msg *msg)
{
        EvdStatus *s = &m->status;
        if (msg->disc_drive >= EVD_STATUS_MAX_DISCS)
                return;
        s->discs[msg->disc_drive] = msg->disc;
        if (s->n_discs <= msg->disc_drive)
                s->n_discs = msg->disc_drive + 1;
}

void status_database(Manager *m, int r, const EvdError *err)
{
        EvdStatus *s = &m->status;
        m->database_seen = true;
        s->database_ok = r >= 0;
        if (r >= 0 || !evd_db_login_refused(r)) {
                if (s->database_error[0] && r >= 0)
                        log_info("database: evidock's login is accepted again");
                s->database_error[0] = '\0';
                return;
        }
        char why[sizeof(s->database_error)];
        snprintf(why, sizeof(why), "%s", evd_error_message(err, r));
        if (strcmp(why, s->database_error) != 0)
                log_error(
                    "DATABASE ERROR, not an outage: %s; dockings are kept in the local spool%s until the "
                    "login works (fix [database] url or the role, then restart evidockd)",
                    why, m->spool ? "" : " (none configured: they stop)");
        memcpy(s->database_error, why, sizeof(why));
}

/* status.jobs: the recent finished ones (oldest first), then the running and the queued ones. */
static void status_collect_jobs(Manager *m, unsigned *ret_running)
{
        EvdStatus *s = &m->status;
        s->n_jobs = 0;
        for (unsigned i = 0; i < m->n_recent && s->n_jobs < EVD_STATUS_MAX_JOBS; i++)
                s->jobs[s->n_jobs++] = m->recent[i];
        unsigned running = 0;
        for (int pass = 0; pass < 2; pass++)
                for (Job *j = m->jobs; j; j = j->next) {
                        if ((j->state == JOB_RUNNING) != (pass == 0))
                                continue;
                        if (j->state == JOB_RUNNING)
                                job_status_take(m, j, false); /* the latest, even a throttled one */
                        running += j->state == JOB_RUNNING && !j->abandoned;
                        if (s->n_jobs < EVD_STATUS_MAX_JOBS)
                                s->jobs[s->n_jobs++] = j->st;
                }
        *ret_running = running;
}

void status_publish(Manager *m)
{
        EvdStatus *s = &m->status;
        s->updated_us = evd_clock_wall_us();
        uint64_t free_bytes = 0;
        if (evd_store_free_bytes(m->store, &free_bytes) >= 0)
                s->store_free_bytes = free_bytes;
        s->store_reserve_bytes = m->cfg.store_reserve_bytes;
        /* what the dockings running now have promised to their copies is as good as used (store.h) */
        s->store_promised_bytes = evd_store_space_promised(m->store);
        s->store_paused = free_bytes < m->cfg.store_reserve_bytes + s->store_promised_bytes;
        unsigned running = 0;
        status_collect_jobs(m, &running);
        int r = evd_status_write(s);
        if (r < 0)
                log_debug("cannot write status file %s: %s", evd_status_path(), strerror(-r));

        char line[sizeof(m->status_line)];
        int n = snprintf(line, sizeof(line),
                         "STATUS=%s%u docking(s) active, %" PRIu64 " files ingested since start",
                         m->stopping ? "stopping: " : "", running, s->files_ingested);
        if (n > 0 && (size_t)n < sizeof(line) && m->database_seen && s->database_error[0])
                n += snprintf(line + n, sizeof(line) - (size_t)n, "; DATABASE ERROR: %.110s",
                              s->database_error);
        else if (n > 0 && (size_t)n < sizeof(line) && m->database_seen && !s->database_ok)
                n += snprintf(line + n, sizeof(line) - (size_t)n, "; DATABASE UNREACHABLE");
        if (n > 0 && (size_t)n < sizeof(line) && m->spool)
                n += snprintf(line + n, sizeof(line) - (size_t)n, "; spool backlog %u entr%s",
                              s->spool_backlog, s->spool_backlog == 1 ? "y" : "ies");
        if (n > 0 && (size_t)n < sizeof(line) && s->store_paused)
                snprintf(line + n, sizeof(line) - (size_t)n, "; STORE BELOW RESERVE");
        if (strcmp(line, m->status_line) != 0) {
                sd_notify(0, line);
                memcpy(m->status_line, line, sizeof(line));
        }
}
