/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The supervision reports (lib/report.h, daemon/report-*.c) against a real scratch PostgreSQL filled with
 * a fixed pattern (tests/common/report-fill.h): every expected number is computed here, independently of
 * the SQL, from the same pattern. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/pg.h"
#include "common/report-fill.h"
#include "db.h"
#include "report-render.h"
#include "report.h"

#define DAY_US  INT64_C(86400000000)
#define HOUR_US INT64_C(3600000000)
#define SINCE   INT64_C(1717977600000000) /* 2024-06-10 00:00:00 UTC */
#define DEVICES 4
#define N       700

static char *conninfo;
static EvdDb *db;

typedef struct Expect {
        int64_t n, late, findings, cased, bytes;
} Expect;

/* The pattern of report-fill.h, file by file, for files recorded in [since, until) and matching device d
 * (0: any) and unit u (0: any, 1: even devices, 2: odd). */
static Expect expect(int64_t since, int64_t until, int d, int u)
{
        Expect e = {0};
        int64_t step = (7 * DAY_US) / N;
        for (int64_t i = 0; i < N; i++) {
                int64_t t = SINCE + i * step;
                int dev = (int)(i % DEVICES) + 1;
                if (t < since || t >= until || (d && dev != d) || (u && (dev % 2 == 0 ? 1 : 2) != u))
                        continue;
                e.n++;
                e.late += i % 10 == 0;
                e.findings += i % 50 == 0;
                e.cased += i % 3 == 0;
                e.bytes += 1000000 + i;
        }
        return e;
}

static const EvdComplianceRow *row_of(const EvdComplianceReport *r, EvdReportLevel level, const char *key)
{
        for (size_t i = 0; i < r->n_rows; i++)
                if (r->rows[i].level == level &&
                    (level == EVD_REPORT_TOTAL || strcmp(r->rows[i].key, key) == 0))
                        return &r->rows[i];
        return NULL;
}

static void check_row(const EvdComplianceRow *row, Expect e)
{
        CHECK(row != NULL);
        CHECK_INT(row->recordings, ==, e.n);
        CHECK_INT(row->late, ==, e.late);
        CHECK_INT(row->within_24h, ==, e.n - e.late);
        CHECK_INT(row->with_findings, ==, e.findings);
        CHECK_INT(row->case_linked, ==, e.cased);
        CHECK_INT(row->bytes, ==, e.bytes);
}

static void test_compliance_week(void)
{
        EvdError err = {};
        EvdReportQuery q = {
            .since_us = SINCE, .until_us = SINCE + 7 * DAY_US, .silent_after_us = 8 * DAY_US};
        _cleanup_(evd_compliance_report_freep) EvdComplianceReport *r = NULL;
        int rc = evd_report_compliance(db, &q, &r, &err);
        if (rc < 0)
                printf("# %s\n", evd_error_message(&err, rc));
        CHECK(rc == 0);

        check_row(row_of(r, EVD_REPORT_TOTAL, NULL), expect(q.since_us, q.until_us, 0, 0));
        if (check_current_failed)
                return;
        CHECK_INT(row_of(r, EVD_REPORT_TOTAL, NULL)->worst_delay_us, ==, 30 * HOUR_US);
        check_row(row_of(r, EVD_REPORT_UNIT, "320100000001"), expect(q.since_us, q.until_us, 0, 1));
        if (check_current_failed)
                return;
        check_row(row_of(r, EVD_REPORT_UNIT, "320100000002"), expect(q.since_us, q.until_us, 0, 2));
        if (check_current_failed)
                return;
        check_row(row_of(r, EVD_REPORT_OFFICER, "O0003"), expect(q.since_us, q.until_us, 3, 0));
        if (check_current_failed)
                return;
        check_row(row_of(r, EVD_REPORT_DEVICE, "RC00001"), expect(q.since_us, q.until_us, 1, 0));
        if (check_current_failed)
                return;
        CHECK(!r->rows_truncated);
        /* total + 2 units + 4 officers + 4 devices */
        CHECK_INT(r->n_rows, ==, 11);

        /* Findings by verdict: the file findings and the refused docking. */
        bool hash = false, refused = false;
        for (size_t i = 0; i < r->n_verdicts; i++) {
                if (r->verdicts[i].verdict == EVD_VERDICT_HASH_MISMATCH) {
                        CHECK_INT(r->verdicts[i].files, ==, expect(q.since_us, q.until_us, 0, 0).findings);
                        CHECK_INT(r->verdicts[i].docking, ==, 0);
                        hash = true;
                }
                if (r->verdicts[i].verdict == EVD_VERDICT_NOT_ENROLLED) {
                        CHECK_INT(r->verdicts[i].docking, ==, 1);
                        refused = true;
                }
        }
        CHECK(hash && refused);
        CHECK_INT(r->n_verdicts, ==, 2);

        /* Findings per recorder, most first: the refused recorder is named by what it presented. */
        bool has_findings[DEVICES] = {false};
        int with_findings = 1; /* the refused recorder */
        for (int i = 0; i < N; i += 50)
                if (!has_findings[i % DEVICES]) {
                        has_findings[i % DEVICES] = true;
                        with_findings++;
                }
        CHECK_INT(r->n_recorders, ==, with_findings);
        CHECK_INT(r->recorders[0].findings, >=, r->recorders[r->n_recorders - 1].findings);
        CHECK_STREQ(r->recorders[r->n_recorders - 1].recorder, "refused: USB 1234:5678 serial EVIL");

        /* Seven UTC days, 100 recordings and 10 late ones each; the store grows to every byte stored
         * before the end of the period. */
        CHECK_INT(r->n_days, ==, 7);
        for (size_t i = 0; i < r->n_days; i++) {
                Expect e = expect(SINCE + (int64_t)i * DAY_US, SINCE + (int64_t)(i + 1) * DAY_US, 0, 0);
                CHECK_INT(r->days[i].day_us, ==, SINCE + (int64_t)i * DAY_US);
                CHECK_INT(r->days[i].recordings, ==, e.n);
                CHECK_INT(r->days[i].late, ==, e.late);
        }
        long long stored = test_pg_query_int(conninfo, "SELECT sum(size) FROM files WHERE ingested_at < "
                                                       "'2024-06-17 00:00:00+00'");
        CHECK_INT(r->days[6].store_bytes, ==, stored);
        CHECK_INT(r->days[0].store_bytes, <, r->days[6].store_bytes);

        /* Silent recorders: the one never docked first, then the one docked 10 days before. */
        CHECK_INT(r->n_silent, ==, 2);
        CHECK_STREQ(r->silent[0].device_id, "RX00001");
        CHECK_INT(r->silent[0].last_docked_us, ==, 0);
        CHECK_STREQ(r->silent[1].device_id, "RX00002");
        CHECK_INT(r->silent[1].last_docked_us, ==, SINCE - 10 * DAY_US);
}

/* A day in the middle: only that day's recordings; a recorder is silent after 3 days by default. */
static void test_compliance_one_day(void)
{
        EvdReportQuery q = {.since_us = SINCE + 2 * DAY_US, .until_us = SINCE + 3 * DAY_US};
        _cleanup_(evd_compliance_report_freep) EvdComplianceReport *r = NULL;
        CHECK_OK(evd_report_compliance(db, &q, &r, NULL));
        check_row(row_of(r, EVD_REPORT_TOTAL, NULL), expect(q.since_us, q.until_us, 0, 0));
        if (check_current_failed)
                return;
        CHECK_INT(r->n_days, ==, 1);
        CHECK_INT(r->silent_after_us, ==, 3 * DAY_US);
        CHECK_INT(r->n_silent, ==, 2); /* RC devices docked at SINCE, within 3 days of the end */
}

static void test_bad_periods(void)
{
        EvdError err = {};
        EvdComplianceReport *r = NULL;
        EvdReportQuery empty = {.since_us = SINCE, .until_us = SINCE};
        CHECK_INT(evd_report_compliance(db, &empty, &r, &err), ==, -EINVAL);
        CHECK(strstr(err.msg, "empty") != NULL);
        EvdReportQuery huge = {.since_us = SINCE, .until_us = SINCE + 400 * DAY_US};
        CHECK_INT(evd_report_compliance(db, &huge, &r, &err), ==, -EINVAL);
        CHECK(r == NULL);
        /* An empty period (nothing recorded then) is a report of zeros, not an error. */
        EvdReportQuery before = {.since_us = SINCE - 30 * DAY_US, .until_us = SINCE - 20 * DAY_US};
        _cleanup_(evd_compliance_report_freep) EvdComplianceReport *z = NULL;
        CHECK_OK(evd_report_compliance(db, &before, &z, NULL));
        CHECK_INT(row_of(z, EVD_REPORT_TOTAL, NULL)->recordings, ==, 0);
        CHECK_INT(z->n_rows, ==, 1);
        CHECK(evd_compliance_rate(row_of(z, EVD_REPORT_TOTAL, NULL)) == 1.0);
}

static void test_findings(void)
{
        EvdReportQuery q = {.since_us = SINCE, .until_us = SINCE + 7 * DAY_US};
        _cleanup_(evd_findings_report_freep) EvdFindingsReport *r = NULL;
        CHECK_OK(evd_report_findings(db, &q, &r, NULL));
        CHECK_INT(r->n_items, ==, expect(q.since_us, q.until_us, 0, 0).findings + 1);
        /* Ordered by docking time: the file findings (docked at SINCE) first, the refusal last. */
        const EvdReportFinding *last = &r->items[r->n_items - 1];
        CHECK_INT(last->verdict, ==, EVD_VERDICT_NOT_ENROLLED);
        CHECK_INT(last->file_id, ==, 0);
        CHECK(last->file == NULL);
        CHECK_INT(r->items[0].verdict, ==, EVD_VERDICT_HASH_MISMATCH);
        CHECK(r->items[0].file != NULL && strncmp(r->items[0].file, "VIDEO/", 6) == 0);
}

static char *render(int (*fn)(FILE *, const EvdComplianceReport *, const EvdFindingsReport *,
                              const EvdReportRenderOptions *),
                    const EvdComplianceReport *r, const EvdFindingsReport *fr,
                    const EvdReportRenderOptions *o)
{
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        if (!f)
                return NULL;
        int rc = fn(f, r, fr, o);
        fclose(f);
        if (rc < 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

/* The HTML page: self-contained (no script, no external resource), charts present, numbers present,
 * recorder text escaped. */
static void test_html(void)
{
        /* A hostile detail, as a recorder could make one appear in a finding. */
        CHECK_OK(test_pg_exec(
            conninfo,
            "INSERT INTO findings (docking_id, verdict, detail) SELECT id, 'MANIFEST_INVALID',\n"
            "  '<script>alert(1)</script> & more' FROM dockings WHERE device_id = 'RC00002'",
            NULL, 0));
        EvdReportQuery q = {.since_us = SINCE, .until_us = SINCE + 7 * DAY_US};
        _cleanup_(evd_compliance_report_freep) EvdComplianceReport *r = NULL;
        _cleanup_(evd_findings_report_freep) EvdFindingsReport *fr = NULL;
        CHECK_OK(evd_report_compliance(db, &q, &r, NULL));
        CHECK_OK(evd_report_findings(db, &q, &fr, NULL));
        EvdReportRenderOptions o = {.goal = 0.95, .generated_us = SINCE + 8 * DAY_US};
        _cleanup_free_ char *html = render(evd_report_render_html, r, fr, &o);
        CHECK(html != NULL);
        CHECK(strncmp(html, "<!DOCTYPE html>", 15) == 0);
        CHECK(strstr(html, "</html>") != NULL);
        int svgs = 0;
        for (const char *p = html; (p = strstr(p, "<svg")); p++)
                svgs++;
        CHECK_INT(svgs, ==, 4);
        CHECK(strstr(html, "<script") == NULL);
        CHECK(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more") != NULL);
        CHECK(strstr(html, "http://") == NULL || strstr(html, "http://www.w3.org/2000/svg") != NULL);
        CHECK(strstr(html, "src=") == NULL && strstr(html, "href=") == NULL);
        CHECK(strstr(html, "id=\"kpi-recordings\">700<") != NULL);
        CHECK(strstr(html, "id=\"kpi-rate\">90.0 %<") != NULL);
        CHECK(strstr(html, "O0003") != NULL);
}

static void test_csv(void)
{
        EvdReportQuery q = {.since_us = SINCE, .until_us = SINCE + 7 * DAY_US};
        _cleanup_(evd_compliance_report_freep) EvdComplianceReport *r = NULL;
        CHECK_OK(evd_report_compliance(db, &q, &r, NULL));
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        CHECK(f != NULL);
        EvdReportRenderOptions o = {.goal = 0.95, .csv_bom = true};
        CHECK_OK(evd_report_render_csv(f, r, &o));
        fclose(f);
        _cleanup_free_ char *csv = buf;
        CHECK(strncmp(csv, "\xEF\xBB\xBFlevel,key,", 12) == 0);
        CHECK(strstr(csv, "\r\ntotal,,700,630,70,0.9000,108000,14,234,") != NULL);
        CHECK(strstr(csv, "\r\ndevice,\"RC00001\",175,") != NULL);
}

int main(void)
{
        if (test_pg_new_database("report", &conninfo) < 0) {
                printf("not ok 1 - scratch database\n1..1\n");
                return 1;
        }
        EvdError err = {};
        int r = evd_db_open(conninfo, &db, &err);
        if (r < 0) {
                printf("# %s\nnot ok 1 - open\n1..1\n", evd_error_message(&err, r));
                return 1;
        }
        if (test_report_fill(conninfo, SINCE, SINCE + 7 * DAY_US, DEVICES, N) < 0) {
                printf("not ok 1 - fill\n1..1\n");
                return 1;
        }
        RUN(test_compliance_week);
        RUN(test_compliance_one_day);
        RUN(test_bad_periods);
        RUN(test_findings);
        RUN(test_csv);
        RUN(test_html);
        evd_db_close(db);
        free(conninfo);
        return check_finish();
}
