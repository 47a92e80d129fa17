/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Supervision from evidockd: the Prometheus metrics file ([metrics] file, daemon/metrics-file.h) and the
 * daily summary in the journal (EVD_MID_DAILY_SUMMARY). Every [metrics] interval the tick starts one
 * thread that reads the database (all-time totals; the previous UTC day's compliance report once a
 * day) and reports with MSG_METRICS_DONE; the loop thread then adds its own gauges and writes the file.
 * docs/supervision.md. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "clock.h"
#include "db.h"
#include "evd-config.h"
#include "log.h"
#include "manager-internal.h"
#include "metrics-file.h"
#include "output.h"
#include "report.h"

#define DAY_US INT64_C(86400000000)

static int64_t utc_day_start(int64_t us)
{
        return us - us % DAY_US;
}

/* The previous UTC day in one journal line; warning when someone must answer for something. */
static void daily_summary(EvdDb *db, int64_t day_us)
{
        EvdReportQuery q = {.since_us = day_us, .until_us = day_us + DAY_US};
        EvdError err = {};
        _cleanup_(evd_compliance_report_freep) EvdComplianceReport *rep = NULL;
        int r = evd_report_compliance(db, &q, &rep, &err);
        char day[16];
        time_t t = (time_t)(day_us / 1000000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(day, sizeof(day), "%Y-%m-%d", &tm);
        LogContext ctx = {.day = day};
        if (r < 0) {
                log_context(LOG_WARNING, NULL, &ctx, "daily summary %s not made: %s", day,
                            evd_error_message(&err, r));
                return;
        }
        const EvdComplianceRow *total = &rep->rows[0]; /* the total row always comes first */
        int64_t refused = 0;
        for (size_t i = 0; i < rep->n_verdicts; i++)
                if (rep->verdicts[i].verdict == EVD_VERDICT_NOT_ENROLLED)
                        refused += rep->verdicts[i].docking;
        bool attention = total->late > 0 || total->with_findings > 0 || refused > 0 || rep->n_silent > 0;
        log_context(attention ? LOG_WARNING : LOG_INFO, EVD_MID_DAILY_SUMMARY, &ctx,
                    "daily summary %s: %" PRId64 " recordings, %" PRId64
                    " late (%.1f %% within 24 h), %" PRId64 " with findings, %" PRId64
                    " refused docking(s), %zu recorder(s) not docked for 3 days",
                    day, total->recordings, total->late, evd_compliance_rate(total) * 100,
                    total->with_findings, refused, rep->n_silent);
}

static void *metrics_main(void *arg)
{
        Manager *m = arg;
        Msg *msg = &m->metrics_msg;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        int r = evd_db_open(m->metrics_db_url, &db, &msg->err);
        manager_database_state(m, r, &msg->err);
        if (r >= 0 && m->metrics_summary_day_us > 0)
                daily_summary(db, m->metrics_summary_day_us);
        if (r >= 0 && m->metrics_want_totals)
                r = evd_metrics_totals(db, &msg->totals, &msg->err);
        msg->result = r;
        mailbox_post(&m->mailbox, msg);
        return NULL;
}

void metrics_join(Manager *m)
{
        if (m->metrics_running) {
                pthread_join(m->metrics_thread, NULL);
                m->metrics_running = false;
        }
}

void metrics_tick(Manager *m)
{
        uint64_t now = evd_clock_monotonic_us();
        if (m->metrics_running || m->stopping || now < m->metrics_not_before)
                return;
        m->metrics_not_before = now + (uint64_t)m->cfg.metrics_interval_us;
        int64_t today = utc_day_start(evd_clock_wall_us());
        if (m->metrics_summarized_day_us == 0) /* at start: the previous day (again, after a restart) */
                m->metrics_summarized_day_us = today - DAY_US;
        bool summary = today > m->metrics_summarized_day_us;
        m->metrics_want_totals = m->cfg.metrics_file[0] != 0;
        if (!summary && !m->metrics_want_totals)
                return;
        m->metrics_summary_day_us = summary ? today - DAY_US : 0;
        if (summary)
                m->metrics_summarized_day_us = today;
        /* the thread must not read the configuration, which a reload may replace meanwhile */
        free(m->metrics_db_url);
        m->metrics_db_url = strdup(m->cfg.database_url);
        if (!m->metrics_db_url)
                return;
        m->metrics_msg = (Msg){.kind = MSG_METRICS_DONE, .embedded = true};
        if (pthread_create(&m->metrics_thread, NULL, metrics_main, m) != 0) {
                log_error("cannot start the metrics thread");
                return;
        }
        m->metrics_running = true;
}

void metrics_on_done(Manager *m, Msg *msg)
{
        metrics_join(m);
        _cleanup_(evd_metrics_totals_freep) EvdMetricsTotals *totals = steal_ptr(&msg->totals);
        if (!m->metrics_want_totals || !m->cfg.metrics_file[0])
                return;
        if (msg->result < 0 && !m->metrics_failing)
                log_warn("metrics: the database could not be read (%s); the file says database_up 0",
                         evd_error_message(&msg->err, msg->result));
        unsigned pending = 0;
        for (Job *j = m->jobs; j; j = j->next)
                pending += j->state == JOB_PENDING;
        MetricsInput in = {
            .version = EVD_VERSION,
            .now_us = evd_clock_wall_us(),
            .started_us = m->status.started_us,
            .totals = totals,
            .database_up = msg->result >= 0,
            .spool_backlog = m->spool ? (int64_t)m->status.spool_backlog : -1,
            .queue_pending = pending,
            .dockings_running = m->n_running,
            .last_error_us = log_last_error_us(),
            .store_reserve_bytes = (int64_t)m->cfg.store_reserve_bytes,
        };
        struct statvfs sv;
        if (statvfs(m->cfg.store_root, &sv) == 0) {
                in.store_known = true;
                in.store_free_bytes = (int64_t)((uint64_t)sv.f_bavail * sv.f_frsize);
        }
        int r = metrics_write(m->cfg.metrics_file, &in);
        if (r < 0 && !m->metrics_failing)
                log_error("metrics: cannot write %s: %s", m->cfg.metrics_file, strerror(-r));
        m->metrics_failing = r < 0 || msg->result < 0;
}
