/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The supervision reports' SQL (lib/report.h). Every number is computed by the database: one query per
 * part of the report, grouped with GROUPING SETS, bounded with LIMIT. The indexes that keep them fast on
 * millions of rows are in migration 7 (docs/database.md, bench/bench-report.c). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "db-internal.h"
#include "report.h"

#define DAY_US (86400LL * 1000000LL)

static const char *const level_names[_EVD_REPORT_LEVEL_MAX] = {
    [EVD_REPORT_TOTAL] = "total",
    [EVD_REPORT_UNIT] = "unit",
    [EVD_REPORT_OFFICER] = "officer",
    [EVD_REPORT_DEVICE] = "device",
};

const char *evd_report_level_to_string(EvdReportLevel l)
{
        return l >= 0 && l < _EVD_REPORT_LEVEL_MAX ? level_names[l] : NULL;
}

double evd_compliance_rate(const EvdComplianceRow *row)
{
        return row->recordings > 0 ? (double)row->within_24h / (double)row->recordings : 1.0;
}

static int query_check(const EvdReportQuery *q, EvdError *err)
{
        if (q->until_us <= q->since_us)
                return evd_error_set(err, -EINVAL, "report period is empty: --until must be after --since");
        if ((q->until_us - q->since_us) / DAY_US >= (int64_t)EVD_REPORT_MAX_DAYS)
                return evd_error_set(err, -EINVAL, "report period is longer than %u days",
                                     EVD_REPORT_MAX_DAYS);
        if (q->silent_after_us < 0)
                return evd_error_set(err, -EINVAL, "the 'not docked for' threshold is negative");
        return 0;
}

static void period_params(DbParams *p, const EvdReportQuery *q)
{
        db_param_time(p, q->since_us);
        db_param_time(p, q->until_us);
}

/* The latest enrollment of each device, retired ones included: a report about last month names the unit
 * a recorder belonged to even if it has been retired since. */
#define DEVICE_UNIT_CTE                                                                                     \
        "dev AS (SELECT DISTINCT ON (device_id) device_id, unit_code, officer_id FROM device_events\n"      \
        "        WHERE event = 'enroll' ORDER BY device_id, id DESC)\n"

/* The current case is the latest association, else the recorder's (docs/lifecycle.md); lt: files marked
 * long-term (002:§18) that no verified disc holds yet. Files of the period. The time expression is the one
 * indexed by files_report_time (migration 7). */
#define FILE_TIME "coalesce(f.recorded_start, f.ingested_at)"

/* The day a file's bytes were stored (UTC); in the statistics of migration 12 too. */
#define STORED_DAY "(ingested_at AT TIME ZONE 'UTC')::date"

/* Allocates one element per result row, at most max of them (*truncated set when the query returned
 * more: every query asks for max + 1 rows). Returns the number of rows to read, or -ENOMEM. */
static int rows_alloc(const PGresult *res, size_t max, size_t size, void **ret, bool *truncated,
                      const char *what, EvdError *err)
{
        size_t rows;
        *ret = db_rows_calloc(res, size, &rows, what, err);
        if (!*ret)
                return -ENOMEM;
        if (rows > max) {
                rows = max;
                if (truncated)
                        *truncated = true;
        }
        return (int)rows;
}

/* The recording day of a file (UTC). The same expression is in the statistics of migration 12 that let the
 * planner aggregate the period in parallel; keep them equal. */
#define FILE_DAY "(" FILE_TIME " AT TIME ZONE 'UTC')::date"

static int day_cmp(const void *key, const void *elem)
{
        int64_t a = *(const int64_t *)key, b = ((const EvdReportDay *)elem)->day_us;
        return a < b ? -1 : a > b;
}

/* One pass over the period's files, with the later facts that change a file's count (its current case from a
 * later association, a long-term mark without a verified disc): fine groups (recorder, officer, day) are
 * aggregated in parallel, and GROUPING SETS makes the total, the units, officers, recorders and the days
 * from the fine groups. Rows beyond the bound per
 * level are cut (the window's rank), the total is always kept. The day level fills r->days, which
 * compliance_days() has made. */
static int compliance_rows(EvdDb *db, const EvdReportQuery *q, EvdComplianceReport *r, EvdError *err)
{
        DbParams p = {0};
        period_params(&p, q);
        db_param_i64(&p, EVD_REPORT_MAX_GROUPS);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r_ = db_exec(
            db, "computing the compliance table",
            "WITH " DEVICE_UNIT_CTE ",\n"
            "ca AS (SELECT DISTINCT ON (file_id) file_id, action, case_number FROM case_associations\n"
            "       ORDER BY file_id, id DESC),\n"
            /* NOT EXISTS, not EXCEPT: a set operation here would keep the scan below out of the workers */
            "lt AS (SELECT m.file_id FROM file_marks_current m WHERE m.kind = 'long_term'\n"
            "       AND m.action = 'set'\n"
            "       AND NOT EXISTS (SELECT 1 FROM disc_retained_files d WHERE d.file_id = m.file_id)),\n"
            "fine AS (SELECT f.device_id, f.officer_id, " FILE_DAY " AS day, count(*) AS n,\n"
            "                count(*) FILTER (WHERE f.within_24h) AS ok,\n"
            "                max(f.stored_at - f.recorded_end) FILTER (WHERE NOT f.within_24h) AS worst,\n"
            "                count(*) FILTER (WHERE f.verdict <> 'INTACT') AS findings,\n"
            "                count(*) FILTER (WHERE CASE WHEN ca.file_id IS NULL THEN f.case_number\n"
            "                                            WHEN ca.action = 'assign' THEN ca.case_number\n"
            "                                       END <> '') AS cased,\n"
            "                sum(f.size) AS bytes, count(lt.file_id) AS lt_missing\n"
            "         FROM files f LEFT JOIN ca ON ca.file_id = f.id LEFT JOIN lt ON lt.file_id = f.id\n"
            "         WHERE " FILE_TIME " >= $1 AND " FILE_TIME " < $2 GROUP BY 1, 2, 3),\n"
            "g AS (SELECT CASE WHEN grouping(unit) = 0 THEN 1 WHEN grouping(officer) = 0 THEN 2\n"
            "                  WHEN grouping(device_id) = 0 THEN 3 WHEN grouping(day) = 0 THEN 4\n"
            "                  ELSE 0 END AS level,\n"
            "             coalesce(unit, officer, device_id) AS key,\n"
            "             (extract(epoch FROM day::timestamp AT TIME ZONE 'UTC') * 1000000)::bigint\n"
            "                 AS day_us,\n"
            "             sum(n) AS n, sum(ok) AS ok,\n"
            "             coalesce((extract(epoch FROM max(worst)) * 1000000)::bigint, 0) AS worst,\n"
            "             sum(findings) AS findings, sum(cased) AS cased,\n"
            "             coalesce(sum(bytes), 0)::bigint AS bytes, sum(lt_missing) AS lt_missing\n"
            "      FROM (SELECT fine.*, coalesce(fine.officer_id, '') AS officer,\n"
            "                   coalesce(dev.unit_code, '') AS unit\n"
            "            FROM fine LEFT JOIN dev USING (device_id)) x\n"
            "      GROUP BY GROUPING SETS ((), (unit), (officer), (device_id), (day))),\n"
            "ranked AS (SELECT *, row_number() OVER (PARTITION BY level ORDER BY key, day_us) AS rk,\n"
            "                 count(*) OVER (PARTITION BY level) AS of FROM g)\n"
            "SELECT level, key, coalesce(n, 0), coalesce(ok, 0), coalesce(n - ok, 0), worst,\n"
            "       coalesce(findings, 0), coalesce(cased, 0), bytes, of > $3 AND level < 4,\n"
            "       coalesce(lt_missing, 0), day_us\n"
            "FROM ranked WHERE rk <= $3 OR level = 4 ORDER BY level, key, day_us",
            &p, &res, err);
        if (r_ < 0)
                return r_;
        /* The total row exists even for an empty period (GROUPING SETS () over no rows gives one row). */
        int rows = rows_alloc(res, SIZE_MAX, sizeof(EvdComplianceRow), (void **)&r->rows, NULL,
                              "the compliance table", err);
        if (rows < 0)
                return rows;
        for (int i = 0; i < rows; i++) {
                int64_t level = db_get_i64(res, i, 0);
                if (level == 4) { /* a day: its counts go to the daily series */
                        int64_t day_us = db_get_i64(res, i, 11);
                        EvdReportDay *d = bsearch(&day_us, r->days, r->n_days, sizeof(*d), day_cmp);
                        if (d) {
                                d->recordings = db_get_i64(res, i, 2);
                                d->late = db_get_i64(res, i, 4);
                        }
                        continue;
                }
                EvdComplianceRow *row = &r->rows[r->n_rows++];
                row->level = (EvdReportLevel)level;
                row->key = row->level == EVD_REPORT_TOTAL ? NULL : db_get_strdup(res, i, 1);
                if (row->level != EVD_REPORT_TOTAL && !row->key)
                        return evd_error_set(err, -ENOMEM, "out of memory for the compliance table");
                row->recordings = db_get_i64(res, i, 2);
                row->within_24h = db_get_i64(res, i, 3);
                row->late = db_get_i64(res, i, 4);
                row->worst_delay_us = db_get_i64(res, i, 5);
                row->with_findings = db_get_i64(res, i, 6);
                row->case_linked = db_get_i64(res, i, 7);
                row->bytes = db_get_i64(res, i, 8);
                row->longterm_without_disc = db_get_i64(res, i, 10);
                if (db_get_bool(res, i, 9))
                        r->rows_truncated = true;
        }
        return 0;
}

static int compliance_verdicts(EvdDb *db, const EvdReportQuery *q, EvdComplianceReport *r, EvdError *err)
{
        DbParams p = {0};
        period_params(&p, q);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r_ = db_exec(db, "counting findings by verdict",
                         "SELECT fi.verdict, count(*) FILTER (WHERE fi.file_id IS NOT NULL),\n"
                         "       count(*) FILTER (WHERE fi.file_id IS NULL)\n"
                         "FROM findings fi JOIN dockings d ON d.id = fi.docking_id\n"
                         "WHERE d.docked_at >= $1 AND d.docked_at < $2 AND fi.verdict <> 'INTACT'\n"
                         "GROUP BY fi.verdict ORDER BY fi.verdict",
                         &p, &res, err);
        if (r_ < 0)
                return r_;
        int rows = rows_alloc(res, SIZE_MAX, sizeof(EvdVerdictCount), (void **)&r->verdicts, NULL,
                              "the verdict counts", err);
        if (rows < 0)
                return rows;
        for (int i = 0; i < rows; i++) {
                int v = evd_verdict_from_string(PQgetvalue(res, i, 0));
                if (v <
                    0) /* a verdict this library does not know: newer writer; count it as the worst kind */
                        continue;
                r->verdicts[r->n_verdicts++] = (EvdVerdictCount){
                    .verdict = (EvdVerdict)v,
                    .files = db_get_i64(res, i, 1),
                    .docking = db_get_i64(res, i, 2),
                };
        }
        return 0;
}

static int compliance_recorders(EvdDb *db, const EvdReportQuery *q, EvdComplianceReport *r, EvdError *err)
{
        DbParams p = {0};
        period_params(&p, q);
        db_param_i64(&p, EVD_REPORT_MAX_GROUPS + 1);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r_ = db_exec(db, "counting findings per recorder",
                         "SELECT coalesce(d.device_id, 'refused: ' || coalesce(d.identity, '?')) AS rec,\n"
                         "       count(DISTINCT d.id), count(*)\n"
                         "FROM findings fi JOIN dockings d ON d.id = fi.docking_id\n"
                         "WHERE d.docked_at >= $1 AND d.docked_at < $2 AND fi.verdict <> 'INTACT'\n"
                         "GROUP BY rec ORDER BY count(*) DESC, rec LIMIT $3",
                         &p, &res, err);
        if (r_ < 0)
                return r_;
        int rows =
            rows_alloc(res, EVD_REPORT_MAX_GROUPS, sizeof(EvdRecorderFindings), (void **)&r->recorders,
                       &r->recorders_truncated, "the findings per recorder", err);
        if (rows < 0)
                return rows;
        for (int i = 0; i < rows; i++) {
                EvdRecorderFindings *x = &r->recorders[r->n_recorders++];
                x->recorder = db_get_strdup(res, i, 0);
                if (!x->recorder)
                        return evd_error_set(err, -ENOMEM, "out of memory for the findings per recorder");
                x->dockings = db_get_i64(res, i, 1);
                x->findings = db_get_i64(res, i, 2);
        }
        return 0;
}

static int compliance_days(EvdDb *db, const EvdReportQuery *q, EvdComplianceReport *r, EvdError *err)
{
        DbParams p = {0};
        period_params(&p, q);
        _cleanup_(PQclearp) PGresult *res = NULL;
        /* The days of the period with the store use: the originals held before the period plus a running sum
         * of what each day added, by the day the bytes were stored. The recordings per day (by recording
         * day) come from compliance_rows(), which runs after this. */
        int r_ = db_exec(
            db, "computing the daily series",
            "WITH days AS (SELECT generate_series(($1::timestamptz AT TIME ZONE 'UTC')::date,\n"
            "                         (($2::timestamptz - interval '1 microsecond')\n"
            "                          AT TIME ZONE 'UTC')::date, interval '1 day')::date AS day),\n"
            "base AS (SELECT coalesce(sum(size), 0)::bigint AS b FROM files\n"
            "         WHERE ingested_at < ($1::timestamptz AT TIME ZONE 'UTC')::date\n"
            "                             AT TIME ZONE 'UTC'),\n"
            "added AS (SELECT " STORED_DAY " AS day, sum(size) AS s\n"
            "          FROM files WHERE ingested_at >= ($1::timestamptz AT TIME ZONE 'UTC')::date\n"
            "                                          AT TIME ZONE 'UTC'\n"
            "                       AND ingested_at < $2 GROUP BY 1)\n"
            "SELECT (extract(epoch FROM days.day::timestamp AT TIME ZONE 'UTC') * 1000000)::bigint,\n"
            "       (base.b + sum(coalesce(added.s, 0)) OVER (ORDER BY days.day))::bigint\n"
            "FROM days CROSS JOIN base LEFT JOIN added USING (day)\n"
            "ORDER BY days.day",
            &p, &res, err);
        if (r_ < 0)
                return r_;
        int rows = rows_alloc(res, EVD_REPORT_MAX_DAYS + 1, sizeof(EvdReportDay), (void **)&r->days, NULL,
                              "the daily series", err);
        if (rows < 0)
                return rows;
        for (int i = 0; i < rows; i++)
                r->days[r->n_days++] = (EvdReportDay){
                    .day_us = db_get_i64(res, i, 0),
                    .store_bytes = db_get_i64(res, i, 1),
                };
        return 0;
}

static int compliance_silent(EvdDb *db, const EvdReportQuery *q, EvdComplianceReport *r, EvdError *err)
{
        DbParams p = {0};
        db_param_time(&p, q->until_us - r->silent_after_us);
        db_param_i64(&p, EVD_REPORT_MAX_GROUPS + 1);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r_ = db_exec(db, "listing recorders that have not docked",
                         "SELECT e.device_id, e.officer_id, e.unit_code,\n"
                         "       coalesce(" DB_US(
                             "last.at") ", 0)\n"
                                        "FROM devices_enrolled e\n"
                                        "LEFT JOIN LATERAL (SELECT max(d.docked_at) AS at FROM dockings d\n"
                                        "                   WHERE d.device_id = e.device_id) last ON true\n"
                                        "WHERE last.at IS NULL OR last.at < $1\n"
                                        "ORDER BY last.at NULLS FIRST, e.device_id LIMIT $2",
                         &p, &res, err);
        if (r_ < 0)
                return r_;
        int rows = rows_alloc(res, EVD_REPORT_MAX_GROUPS, sizeof(EvdSilentRecorder), (void **)&r->silent,
                              &r->silent_truncated, "the silent recorders", err);
        if (rows < 0)
                return rows;
        for (int i = 0; i < rows; i++) {
                EvdSilentRecorder *s = &r->silent[r->n_silent++];
                s->device_id = db_get_strdup(res, i, 0);
                s->officer_id = db_get_strdup(res, i, 1);
                s->unit_code = db_get_strdup(res, i, 2);
                s->last_docked_us = db_get_i64(res, i, 3);
                if (!s->device_id)
                        return evd_error_set(err, -ENOMEM, "out of memory for the silent recorders");
        }
        return 0;
}

/* For the report's own transaction: room for the fine groups' hash tables (a year of 200 recorders is
 * 73,000 groups). JIT is off for every evidock session (lib/db.c). */
static int report_settings(EvdDb *db, bool nested, EvdError *err)
{
        if (nested)
                return 0;
        return db_exec(db, "setting up the report's transaction",
                       "SELECT set_config('work_mem', '64MB', true)", NULL, NULL, err);
}

int evd_report_compliance(EvdDb *db, const EvdReportQuery *q, EvdComplianceReport **ret, EvdError *err)
{
        int r = query_check(q, err);
        if (r < 0)
                return r;
        _cleanup_(evd_compliance_report_freep) EvdComplianceReport *rep = calloc(1, sizeof(*rep));
        if (!rep)
                return evd_error_set(err, -ENOMEM, "out of memory for the compliance report");
        rep->since_us = q->since_us;
        rep->until_us = q->until_us;
        rep->silent_after_us = q->silent_after_us > 0 ? q->silent_after_us : 3 * DAY_US;

        /* One snapshot: every part of the report sees the same rows. */
        bool nested = false;
        r = db_snapshot_open(db, &nested, err);
        if (r >= 0)
                r = report_settings(db, nested, err);
        if (r >= 0)
                r = compliance_days(db, q, rep, err);
        if (r >= 0)
                r = compliance_rows(db, q, rep, err);
        if (r >= 0)
                r = compliance_verdicts(db, q, rep, err);
        if (r >= 0)
                r = compliance_recorders(db, q, rep, err);
        if (r >= 0)
                r = compliance_silent(db, q, rep, err);
        r = db_tx_close(db, nested, r, err);
        if (r < 0)
                return r;
        *ret = steal_ptr(&rep);
        return 0;
}

EvdComplianceReport *evd_compliance_report_free(EvdComplianceReport *r)
{
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_rows; i++)
                free(r->rows[i].key);
        free(r->rows);
        free(r->verdicts);
        for (size_t i = 0; i < r->n_recorders; i++)
                free(r->recorders[i].recorder);
        free(r->recorders);
        free(r->days);
        for (size_t i = 0; i < r->n_silent; i++) {
                free(r->silent[i].device_id);
                free(r->silent[i].officer_id);
                free(r->silent[i].unit_code);
        }
        free(r->silent);
        free(r);
        return NULL;
}

int evd_report_findings(EvdDb *db, const EvdReportQuery *q, EvdFindingsReport **ret, EvdError *err)
{
        int r = query_check(q, err);
        if (r < 0)
                return r;
        _cleanup_(evd_findings_report_freep) EvdFindingsReport *rep = calloc(1, sizeof(*rep));
        if (!rep)
                return evd_error_set(err, -ENOMEM, "out of memory for the findings report");
        rep->since_us = q->since_us;
        rep->until_us = q->until_us;

        DbParams p = {0};
        period_params(&p, q);
        db_param_i64(&p, EVD_REPORT_MAX_FINDINGS + 1);
        _cleanup_(PQclearp) PGresult *res = NULL;
        r = db_exec(
            db, "listing the findings of the period",
            "SELECT " DB_US(
                "d.docked_at") ", d.id,\n"
                               "       coalesce(d.device_id, 'refused: ' || coalesce(d.identity, '?')),\n"
                               "       f.officer_id, coalesce(f.id, 0), encode(f.source_path, 'escape'), "
                               "f.original_path,\n"
                               "       fi.verdict, fi.seq, fi.expected, fi.found, fi.detail\n"
                               "FROM findings fi JOIN dockings d ON d.id = fi.docking_id\n"
                               "LEFT JOIN files f ON f.id = fi.file_id\n"
                               "WHERE d.docked_at >= $1 AND d.docked_at < $2 AND fi.verdict <> 'INTACT'\n"
                               "ORDER BY d.docked_at, fi.id LIMIT $3",
            &p, &res, err);
        if (r < 0)
                return r;
        int rows = rows_alloc(res, EVD_REPORT_MAX_FINDINGS, sizeof(EvdReportFinding), (void **)&rep->items,
                              &rep->truncated, "the findings report", err);
        if (rows < 0)
                return rows;
        for (int i = 0; i < rows; i++) {
                int v = evd_verdict_from_string(PQgetvalue(res, i, 7));
                if (v < 0)
                        continue;
                EvdReportFinding *x = &rep->items[rep->n_items++];
                x->docked_us = db_get_i64(res, i, 0);
                x->docking_id = db_get_i64(res, i, 1);
                x->recorder = db_get_strdup(res, i, 2);
                x->officer_id = db_get_strdup(res, i, 3);
                x->file_id = db_get_i64(res, i, 4);
                x->file = db_get_strdup(res, i, 5);
                x->stored = db_get_strdup(res, i, 6);
                x->verdict = (EvdVerdict)v;
                x->has_seq = !db_is_null(res, i, 8);
                x->seq = db_get_i64(res, i, 8);
                x->expected = db_get_strdup(res, i, 9);
                x->found = db_get_strdup(res, i, 10);
                x->detail = db_get_strdup(res, i, 11);
                if (!x->recorder)
                        return evd_error_set(err, -ENOMEM, "out of memory for the findings report");
        }
        *ret = steal_ptr(&rep);
        return 0;
}

EvdFindingsReport *evd_findings_report_free(EvdFindingsReport *r)
{
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_items; i++) {
                EvdReportFinding *x = &r->items[i];
                free(x->recorder);
                free(x->officer_id);
                free(x->file);
                free(x->stored);
                free(x->expected);
                free(x->found);
                free(x->detail);
        }
        free(r->items);
        free(r);
        return NULL;
}
