/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The administrator's views' SQL (lib/db-admin.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "db-admin.h"
#include "db-internal.h"

static const char *const outcome_names[_EVD_DOCKING_OUTCOME_MAX] = {
    [EVD_DOCKING_CLEAN] = "clean",     [EVD_DOCKING_FINDINGS] = "findings",
    [EVD_DOCKING_STOPPED] = "stopped", [EVD_DOCKING_UNFINISHED] = "unfinished",
    [EVD_DOCKING_REFUSED] = "refused",
};

const char *evd_docking_outcome_to_string(EvdDockingOutcome o)
{
        return o >= 0 && o < _EVD_DOCKING_OUTCOME_MAX ? outcome_names[o] : NULL;
}

/* The outcome in SQL, from the docking (d), its result (r) and whether it was interrupted (i): ingest
 * records an "interrupted" custody event with the result of a docking an error stopped. */
#define OUTCOME_SQL                                                                                         \
        "CASE WHEN d.device_id IS NULL THEN 'refused'\n"                                                    \
        "     WHEN r.docking_id IS NULL THEN 'unfinished'\n"                                                \
        "     WHEN i.docking_id IS NOT NULL THEN 'stopped'\n"                                               \
        "     WHEN r.verdict <> 'INTACT' OR r.files_quarantined > 0 THEN 'findings'\n"                      \
        "     ELSE 'clean' END"

int evd_db_dockings_query(EvdDb *db, const EvdDbDockingFilter *filter, EvdDbDockingList **ret_list,
                          EvdError *err)
{
        EvdDbDockingFilter none = {};
        if (!filter)
                filter = &none;
        size_t max = filter->max_rows && filter->max_rows < EVD_DB_ADMIN_MAX_ROWS ? filter->max_rows
                                                                                  : EVD_DB_ADMIN_MAX_ROWS;
        DbParams p = {};
        if (filter->has_since)
                db_param_time(&p, filter->since_us);
        else
                db_param_null(&p);
        if (filter->has_until)
                db_param_time(&p, filter->until_us);
        else
                db_param_null(&p);
        db_param_text(&p, filter->device_id);
        db_param_bool(&p, filter->failed);
        db_param_bool(&p, filter->refused);
        db_param_i64(&p, (int64_t)max + 1);
        _cleanup_(PQclearp) PGresult *res = NULL;
        /* the dockings of the period first (index dockings_docked_at / dockings_device_docked), then per
         * docking its file and late counts (index-only on files_docking, migration 16), finding count and
         * first finding (findings_docking_first): a week's listing reads only that week's rows, never the
         * whole files table */
        int r = db_exec(
            db, "listing dockings",
            "WITH d AS (\n"
            "  SELECT d.*, " OUTCOME_SQL " AS outcome\n"
            "  FROM dockings d\n"
            "  LEFT JOIN docking_results r ON r.docking_id = d.id\n"
            "  LEFT JOIN (SELECT DISTINCT docking_id FROM custody_events\n"
            "             WHERE kind = 'interrupted' AND docking_id IS NOT NULL) i ON i.docking_id = d.id\n"
            "  WHERE ($1::timestamptz IS NULL OR d.docked_at >= $1)\n"
            "    AND ($2::timestamptz IS NULL OR d.docked_at < $2)\n"
            "    AND ($3::text IS NULL OR d.device_id = $3)\n"
            "    AND (NOT ($4 OR $5)\n"
            "         OR ($4 AND (r.docking_id IS NULL OR i.docking_id IS NOT NULL) AND d.device_id IS NOT "
            "NULL)\n"
            "         OR ($5 AND d.device_id IS NULL))\n"
            "  ORDER BY d.docked_at, d.id LIMIT $6)\n"
            "SELECT d.id, d.device_id, d.identity,\n"
            "       (SELECT e.officer_id FROM device_events e WHERE e.device_id = d.device_id\n"
            "          AND e.event = 'enroll' AND e.at <= d.docked_at ORDER BY e.id DESC LIMIT 1),\n"
            "       d.transport, d.location, " DB_US(
                "d.docked_at") ",\n"
                               "       r.docking_id IS NOT NULL, " DB_US(
                                   "r.finished_at") ", d.clock_offset_us,\n"
                                                    "       r.files_seen, r.files_ingested, "
                                                    "r.files_already, r.files_quarantined,\n"
                                                    "       coalesce(f.n, 0), coalesce(f.late, 0),\n"
                                                    "       (SELECT count(*) FROM findings x WHERE "
                                                    "x.docking_id = d.id),\n"
                                                    "       r.verdict, coalesce(r.summary, (SELECT x.detail "
                                                    "FROM findings x\n"
                                                    "                                      WHERE "
                                                    "x.docking_id = d.id ORDER BY x.id LIMIT 1)),\n"
                                                    "       d.outcome\n"
                                                    "FROM d\n"
                                                    "LEFT JOIN docking_results r ON r.docking_id = d.id\n"
                                                    "LEFT JOIN LATERAL (SELECT count(*) AS n, count(*) "
                                                    "FILTER (WHERE NOT within_24h) AS late\n"
                                                    "           FROM files WHERE docking_id = d.id) f ON "
                                                    "true\n"
                                                    "ORDER BY d.docked_at, d.id",
            &p, &res, err);
        if (r < 0)
                return r;
        _cleanup_(evd_db_docking_list_freep) EvdDbDockingList *list = calloc(1, sizeof(*list));
        if (!list)
                return evd_error_set(err, -ENOMEM, "out of memory listing dockings");
        size_t rows = (size_t)PQntuples(res);
        if (rows > max) {
                rows = max;
                list->truncated = true;
        }
        list->rows = calloc(rows ? rows : 1, sizeof(EvdDbDockingRow));
        if (!list->rows)
                return evd_error_set(err, -ENOMEM, "out of memory listing dockings");
        for (size_t k = 0; k < rows; k++) {
                int i = (int)k;
                EvdDbDockingRow *d = &list->rows[list->n_rows++];
                d->id = db_get_i64(res, i, 0);
                d->device_id = db_get_strdup(res, i, 1);
                d->identity = db_get_strdup(res, i, 2);
                d->officer_id = db_get_strdup(res, i, 3);
                d->transport = db_get_strdup(res, i, 4);
                d->location = db_get_strdup(res, i, 5);
                d->docked_us = db_get_i64(res, i, 6);
                d->finished = db_get_bool(res, i, 7);
                d->finished_us = db_get_i64(res, i, 8);
                d->has_clock_offset = !db_is_null(res, i, 9);
                d->clock_offset_us = db_get_i64(res, i, 9);
                d->files_seen = (unsigned)db_get_i64(res, i, 10);
                d->files_ingested = (unsigned)db_get_i64(res, i, 11);
                d->files_already = (unsigned)db_get_i64(res, i, 12);
                d->files_quarantined = (unsigned)db_get_i64(res, i, 13);
                d->files_recorded = (unsigned)db_get_i64(res, i, 14);
                d->files_late = (unsigned)db_get_i64(res, i, 15);
                d->findings = (unsigned)db_get_i64(res, i, 16);
                d->verdict = db_get_strdup(res, i, 17);
                d->summary = db_get_strdup(res, i, 18);
                const char *o = PQgetvalue(res, i, 19);
                d->outcome = EVD_DOCKING_UNFINISHED;
                for (int x = 0; x < _EVD_DOCKING_OUTCOME_MAX; x++)
                        if (strcmp(o, outcome_names[x]) == 0)
                                d->outcome = (EvdDockingOutcome)x;
                if (!d->transport || (!d->device_id && !db_is_null(res, i, 1)))
                        return evd_error_set(err, -ENOMEM, "out of memory listing dockings");
        }
        *ret_list = steal_ptr(&list);
        return 0;
}

EvdDbDockingList *evd_db_docking_list_free(EvdDbDockingList *list)
{
        if (!list)
                return NULL;
        for (size_t i = 0; i < list->n_rows; i++) {
                EvdDbDockingRow *d = &list->rows[i];
                free(d->device_id);
                free(d->identity);
                free(d->officer_id);
                free(d->transport);
                free(d->location);
                free(d->verdict);
                free(d->summary);
        }
        free(list->rows);
        free(list);
        return NULL;
}

int evd_db_device_overview(EvdDb *db, EvdDbDeviceOverview **ret_rows, size_t *ret_n, EvdError *err)
{
        DbParams p = {};
        db_param_i64(&p, (int64_t)EVD_DB_ADMIN_MAX_ROWS);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(
            db, "listing recorders with their dockings",
            "SELECT e.device_id, e.officer_id, e.unit_code, e.suite, e.key_id, " DB_US(
                "e.at") ",\n"
                        "       last.at IS NOT NULL, " DB_US(
                            "last.at") ", last.n,\n"
                                       "       coalesce(f.n, 0), coalesce(f.late, 0)\n"
                                       "FROM devices_enrolled e\n"
                                       "LEFT JOIN LATERAL (SELECT max(d.docked_at) AS at, count(*) AS n "
                                       "FROM dockings d\n"
                                       "                   WHERE d.device_id = e.device_id) last ON true\n"
                                       "LEFT JOIN (SELECT device_id, count(*) AS n,\n"
                                       "                  count(*) FILTER (WHERE NOT within_24h) AS late\n"
                                       "           FROM files GROUP BY device_id) f ON f.device_id = "
                                       "e.device_id\n"
                                       "ORDER BY e.device_id LIMIT $1",
            &p, &res, err);
        if (r < 0)
                return r;
        size_t n;
        EvdDbDeviceOverview *rows = db_rows_calloc(res, sizeof(*rows), &n, "the recorder list", err);
        if (!rows)
                return -ENOMEM;
        for (size_t k = 0; k < n; k++) {
                int i = (int)k;
                EvdDbDeviceOverview *d = &rows[k];
                d->device_id = db_get_strdup(res, i, 0);
                d->officer_id = db_get_strdup(res, i, 1);
                d->unit_code = db_get_strdup(res, i, 2);
                d->suite = db_get_strdup(res, i, 3);
                d->key_id = db_get_strdup(res, i, 4);
                d->enrolled_us = db_get_i64(res, i, 5);
                d->docked = db_get_bool(res, i, 6);
                d->last_docked_us = db_get_i64(res, i, 7);
                d->dockings = (uint64_t)db_get_i64(res, i, 8);
                d->files = (uint64_t)db_get_i64(res, i, 9);
                d->files_late = (uint64_t)db_get_i64(res, i, 10);
                if (!d->device_id || !d->officer_id || !d->suite || !d->key_id) {
                        evd_db_device_overview_free(rows, n);
                        return evd_error_set(err, -ENOMEM, "out of memory listing recorders");
                }
        }
        *ret_rows = rows;
        *ret_n = n;
        return 0;
}

void evd_db_device_overview_free(EvdDbDeviceOverview *rows, size_t n)
{
        if (!rows)
                return;
        for (size_t i = 0; i < n; i++) {
                free(rows[i].device_id);
                free(rows[i].officer_id);
                free(rows[i].unit_code);
                free(rows[i].suite);
                free(rows[i].key_id);
        }
        free(rows);
}

int evd_db_device_known(EvdDb *db, const char *device_id, char **ret_similar, EvdError *err)
{
        if (ret_similar)
                *ret_similar = NULL;
        DbParams p = {};
        db_param_text(&p, device_id ? device_id : "");
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(
            db, "looking up a recorder",
            "SELECT EXISTS (SELECT 1 FROM device_events WHERE device_id = $1)\n"
            "    OR EXISTS (SELECT 1 FROM dockings WHERE device_id = $1),\n"
            "  (SELECT device_id FROM (SELECT device_id FROM device_events\n"
            "                          UNION SELECT device_id FROM dockings WHERE device_id IS NOT NULL) k\n"
            "   WHERE lower(device_id) = lower($1) ORDER BY device_id LIMIT 1)",
            &p, &res, err);
        if (r < 0)
                return r;
        if (db_get_bool(res, 0, 0))
                return 1;
        if (ret_similar && !db_is_null(res, 0, 1) && !(*ret_similar = db_get_strdup(res, 0, 1)))
                return evd_error_set(err, -ENOMEM, "out of memory looking up a recorder");
        return 0;
}
