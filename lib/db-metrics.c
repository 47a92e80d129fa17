/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The monitoring totals' SQL (lib/metrics.h). */
#include <errno.h>
#include <stdlib.h>

#include "db-internal.h"
#include "metrics.h"

static int totals_dockings(EvdDb *db, EvdMetricsTotals *t, EvdError *err)
{
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, "counting dockings",
                        "SELECT count(*) FILTER (WHERE r.id IS NOT NULL AND d.device_id IS NOT NULL),\n"
                        "       count(*) FILTER (WHERE d.device_id IS NULL),\n"
                        "       count(*) FILTER (WHERE r.id IS NULL AND d.device_id IS NOT NULL)\n"
                        "FROM dockings d LEFT JOIN docking_results r ON r.docking_id = d.id",
                        NULL, &res, err);
        if (r < 0)
                return r;
        t->dockings_finished = db_get_i64(res, 0, 0);
        t->dockings_refused = db_get_i64(res, 0, 1);
        t->dockings_unfinished = db_get_i64(res, 0, 2);
        return 0;
}

static int totals_files(EvdDb *db, EvdMetricsTotals *t, EvdError *err)
{
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(
            db, "counting files by verdict",
            "SELECT verdict, count(*), count(*) FILTER (WHERE NOT within_24h),\n"
            "       coalesce(sum(size), 0)::bigint,\n"
            "       coalesce(sum(size) FILTER (WHERE ingested_at >= now() - interval '7 days'), 0)::bigint\n"
            "FROM files GROUP BY verdict",
            NULL, &res, err);
        if (r < 0)
                return r;
        for (int i = 0; i < PQntuples(res); i++) {
                int v = evd_verdict_from_string(PQgetvalue(res, i, 0));
                if (v >= 0)
                        t->files_by_verdict[v] = db_get_i64(res, i, 1);
                t->files_late += db_get_i64(res, i, 2);
                t->bytes_stored += db_get_i64(res, i, 3);
                t->bytes_last_7d += db_get_i64(res, i, 4);
        }
        return 0;
}

static int totals_findings(EvdDb *db, EvdMetricsTotals *t, EvdError *err)
{
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, "counting findings by verdict",
                        "SELECT verdict, count(*) FROM findings GROUP BY verdict", NULL, &res, err);
        if (r < 0)
                return r;
        for (int i = 0; i < PQntuples(res); i++) {
                int v = evd_verdict_from_string(PQgetvalue(res, i, 0));
                if (v >= 0)
                        t->findings_by_verdict[v] = db_get_i64(res, i, 1);
        }
        return 0;
}

static int totals_recorders(EvdDb *db, EvdMetricsTotals *t, EvdError *err)
{
        DbParams p = {0};
        db_param_i64(&p, EVD_METRICS_MAX_RECORDERS);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(
            db, "reading the last docking of each recorder",
            "SELECT e.device_id, " DB_US(
                "last.at") "\n"
                           "FROM devices_enrolled e\n"
                           "JOIN LATERAL (SELECT max(d.docked_at) AS at FROM dockings d\n"
                           "              WHERE d.device_id = e.device_id) last ON last.at IS NOT NULL\n"
                           "ORDER BY e.device_id LIMIT $1",
            &p, &res, err);
        if (r < 0)
                return r;
        int rows = PQntuples(res);
        t->recorders = calloc((size_t)rows, sizeof(EvdRecorderLastDock));
        if (rows > 0 && !t->recorders)
                return evd_error_set(err, -ENOMEM, "out of memory for the recorders' last dockings");
        for (int i = 0; i < rows; i++) {
                EvdRecorderLastDock *x = &t->recorders[t->n_recorders++];
                x->device_id = db_get_strdup(res, i, 0);
                x->last_docked_us = db_get_i64(res, i, 1);
                if (!x->device_id)
                        return evd_error_set(err, -ENOMEM, "out of memory for the recorders' last dockings");
        }
        return 0;
}

int evd_metrics_totals(EvdDb *db, EvdMetricsTotals **ret, EvdError *err)
{
        _cleanup_(evd_metrics_totals_freep) EvdMetricsTotals *t = calloc(1, sizeof(*t));
        if (!t)
                return evd_error_set(err, -ENOMEM, "out of memory for the monitoring totals");
        bool nested = false;
        int r = db_snapshot_open(db, &nested, err);
        if (r >= 0)
                r = totals_dockings(db, t, err);
        if (r >= 0)
                r = totals_files(db, t, err);
        if (r >= 0)
                r = totals_findings(db, t, err);
        if (r >= 0)
                r = totals_recorders(db, t, err);
        r = db_tx_close(db, nested, r, err);
        if (r < 0)
                return r;
        *ret = steal_ptr(&t);
        return 0;
}

EvdMetricsTotals *evd_metrics_totals_free(EvdMetricsTotals *t)
{
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_recorders; i++)
                free(t->recorders[i].device_id);
        free(t->recorders);
        free(t);
        return NULL;
}
