/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-report: the supervision reports, the station and dockings listings and the retention report on a
 * million file rows (issues 11, 12 and 15: each under 2 s).
 *
 *   bench-report [FILES]     (default 1000000; needs EVIDOCK_TEST_PG, or EVIDOCK_SOURCE_ROOT for a scratch
 *                             cluster started by tests/common/pg.c)
 *
 * Fills a fresh database with the synthetic pattern of tests/common/report-fill.h (FILES files from 200
 * recorders over 360 days, with the case links and long-term marks of a year), then times each report
 * (median of 3) with the indexes of migrations 7, 16 and 17 and, side by side in the same run, the reports
 * without the indexes of migration 7 (the baseline: the same SQL on the indexes of migration 1). Ends with
 * PASS/FAIL per report against the 2 s target. Exit 0: all PASS, 1: a target missed, 2: the benchmark
 * failed. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/pg.h"
#include "common/report-fill.h"
#include "db-admin.h"
#include "db.h"
#include "lifecycle.h"
#include "report.h"
#include "retention.h"

#define DAY_US    INT64_C(86400000000)
#define SINCE     INT64_C(1704067200000000) /* 2024-01-01 00:00 UTC */
#define SPAN_DAYS 360
#define TARGET_S  2.0

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef enum Kind { COMPLIANCE, FINDINGS, DOCKINGS, LISTING, RETENTION } Kind;

typedef struct Case {
        const char *name;
        int64_t days; /* the period: the last N days of the filled span */
        Kind kind;
        const char *issue;
} Case;

static const Case cases[] = {
    {"compliance, 7 days", 7, COMPLIANCE, "12"},
    {"compliance, 30 days", 30, COMPLIANCE, "12"},
    {"compliance, 360 days", 360, COMPLIANCE, "12"},
    {"findings, 360 days", 360, FINDINGS, "12"}, /* the fill docks every recorder once, on day 1 */
    {"dockings, 7 days", 7, DOCKINGS, "15"},     /* evidockctl dockings: 1400 of a year's 72,000 */
    {"dockings, 360 days", 360, DOCKINGS, "15"}, /* the first 10,000 (the CLI's row limit) */
    /* evidockctl log: the files of the period with their current case (files_case_current) */
    {"station listing, 7 days", 7, LISTING, "12"},
    {"retention report", 360, RETENTION, "11"}, /* every file's facts, the first 10,000 */
};

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

/* What `evidockctl log` reads: the rows of the period, then the current case of each (the case column). */
static int time_listing(EvdDb *db, const EvdReportQuery *q, EvdError *err)
{
        EvdDbLogFilter f = {
            .has_since = true, .since_us = q->since_us, .has_until = true, .until_us = q->until_us};
        EvdDbLog *log = NULL;
        int r = evd_db_log_query(db, &f, &log, err);
        if (r < 0)
                return r;
        int64_t *ids = calloc(log->n_files ? log->n_files : 1, sizeof(*ids));
        if (!ids) {
                evd_db_log_free(log);
                return -ENOMEM;
        }
        for (size_t i = 0; i < log->n_files; i++)
                ids[i] = log->files[i].id;
        char **cur = NULL, **rec = NULL;
        r = evd_case_current_of_files(db, ids, log->n_files, &cur, &rec, err);
        if (r >= 0) {
                evd_strv_free(cur, log->n_files);
                evd_strv_free(rec, log->n_files);
        }
        free(ids);
        evd_db_log_free(log);
        return r;
}

static double time_case(EvdDb *db, const Case *c)
{
        double t[3];
        EvdReportQuery q = {.since_us = SINCE + (SPAN_DAYS - c->days) * DAY_US,
                            .until_us = SINCE + SPAN_DAYS * DAY_US};
        for (int i = 0; i < 3; i++) {
                EvdError err = {};
                double t0 = now_s();
                int r;
                if (c->kind == FINDINGS) {
                        EvdFindingsReport *fr = NULL;
                        r = evd_report_findings(db, &q, &fr, &err);
                        evd_findings_report_free(fr);
                } else if (c->kind == DOCKINGS) {
                        EvdDbDockingFilter f = {.has_since = true,
                                                .since_us = q.since_us,
                                                .has_until = true,
                                                .until_us = q.until_us};
                        EvdDbDockingList *list = NULL;
                        r = evd_db_dockings_query(db, &f, &list, &err);
                        evd_db_docking_list_free(list);
                } else if (c->kind == LISTING) {
                        r = time_listing(db, &q, &err);
                } else if (c->kind == RETENTION) {
                        EvdRetentionPolicy pol;
                        evd_retention_policy_default(&pol);
                        EvdRetentionReport *rr = NULL;
                        r = evd_retention_report(db, &pol, &rr, &err);
                        evd_retention_report_free(rr);
                } else {
                        EvdComplianceReport *cr = NULL;
                        r = evd_report_compliance(db, &q, &cr, &err);
                        evd_compliance_report_free(cr);
                }
                if (r < 0) {
                        fprintf(stderr, "bench-report: %s: %s\n", c->name, evd_error_message(&err, r));
                        return -1;
                }
                t[i] = now_s() - t0;
        }
        qsort(t, 3, sizeof(t[0]), cmp_double);
        return t[1];
}

int main(int argc, char *argv[])
{
        if (argc > 2 && strcmp(argv[1], "--print-fill-sql") == 0) {
                /* For looking at query plans by hand: psql -f this after the schema is in place. */
                char *sql =
                    test_report_fill_sql(SINCE, SINCE + SPAN_DAYS * DAY_US, 200, strtoll(argv[2], NULL, 10));
                if (!sql)
                        return 2;
                fputs(sql, stdout);
                free(sql);
                return 0;
        }
        int64_t files = argc > 1 ? strtoll(argv[1], NULL, 10) : 1000000;
        if (files < 1000) {
                fprintf(stderr, "usage: bench-report [FILES >= 1000]\n");
                return 2;
        }
        char *conninfo = NULL;
        EvdDb *db = NULL;
        EvdError err = {};
        if (test_pg_new_database("bench_report", &conninfo) < 0)
                return 2;
        int r = evd_db_open(conninfo, &db, &err);
        if (r < 0) {
                fprintf(stderr, "bench-report: %s\n", evd_error_message(&err, r));
                return 2;
        }
        fprintf(stderr, "bench-report: filling %" PRId64 " files ...\n", files);
        double t0 = now_s();
        if (test_report_fill(conninfo, SINCE, SINCE + SPAN_DAYS * DAY_US, 200, files) < 0 ||
            test_report_fill_later_facts(conninfo) < 0)
                return 2;
        /* A year of dockings as a dock sees them: every recorder once a day (the files stay with the fill's
         * first docking of each recorder). */
        if (test_pg_exec(conninfo,
                         "INSERT INTO dockings (device_id, transport, docked_at)\n"
                         "SELECT 'RC' || lpad(d::text, 5, '0'), 'usb', "
                         "       timestamptz '2024-01-01 20:00Z' + k * interval '1 day'\n"
                         "FROM generate_series(1, 200) d, generate_series(1, 359) k",
                         NULL, 0) < 0)
                return 2;
        fprintf(stderr, "bench-report: filled in %.1f s\n", now_s() - t0);
        /* As autovacuum would soon do on a real dock: the visibility map makes index-only scans possible. */
        if (test_pg_exec(conninfo, "VACUUM ANALYZE files", NULL, 0) < 0)
                return 2;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) /* warm the cache once */
                (void)time_case(db, &cases[i]);

        size_t n = sizeof(cases) / sizeof(cases[0]);
        double with[8], without[8];
        for (size_t i = 0; i < n; i++)
                if ((with[i] = time_case(db, &cases[i])) < 0)
                        return 2;
        char sqlerr[256];
        if (test_pg_exec(
                conninfo,
                "DROP INDEX files_report_time, dockings_docked_at, dockings_device_docked, "
                "files_ingested_size, files_docking, findings_docking_first, custody_events_interrupted;"
                "CREATE INDEX findings_docking ON findings (docking_id); ANALYZE",
                sqlerr, sizeof(sqlerr)) < 0) {
                fprintf(stderr, "bench-report: dropping the report indexes: %s\n", sqlerr);
                return 2;
        }
        for (size_t i = 0; i < n; i++) {
                without[i] = -1;
                /* The listings' indexes are migrations 16 and 17, not 7; without them they take minutes to
                 * hours here (per-docking file counts, per-file case walks): their "before" figures are in
                 * bench/README.md, section 6. */
                bool report = cases[i].kind == COMPLIANCE || cases[i].kind == FINDINGS;
                if (report && (without[i] = time_case(db, &cases[i])) < 0)
                        return 2;
        }

        printf("== reports on %" PRId64 " file rows (median of 3)\n", files);
        printf("%-24s %14s %20s\n", "report", "evidock", "baseline: no indexes");
        for (size_t i = 0; i < n; i++)
                if (without[i] < 0)
                        printf("%-24s %12.3f s %20s\n", cases[i].name, with[i], "-");
                else
                        printf("%-24s %12.3f s %18.3f s\n", cases[i].name, with[i], without[i]);
        printf("== targets (PASS/FAIL)\n");
        int fails = 0;
        for (size_t i = 0; i < n; i++) {
                bool ok = with[i] < TARGET_S;
                fails += !ok;
                printf("issue %s: %-24s < %.0f s: %.3f s  %s\n", cases[i].issue, cases[i].name, TARGET_S,
                       with[i], ok ? "PASS" : "FAIL");
        }
        evd_db_close(db);
        free(conninfo);
        return fails ? 1 : 0;
}
