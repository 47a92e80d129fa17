/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The custody audit's SQL: evidence rows without their events, and a checkpoint against the log. */
#include <inttypes.h>
#include <stdio.h>

#include "custody-audit.h"
#include "db-internal.h"

/* Each kind: rows of (kind, id, device_id, name) without the events their own transaction writes
 * (lib/ingest.c, lib/spool.c). */
static const char crosscheck_sql[] =
    "SELECT kind, id, device_id, name, count(*) OVER () FROM (\n"
    "  SELECT 0 AS kind, f.id, f.device_id, f.original_path AS name FROM files f\n"
    "   WHERE NOT EXISTS (SELECT 1 FROM custody_events e WHERE e.file_id = f.id\n"
    "                     AND e.kind IN ('recorded', 'quarantined'))\n"
    "  UNION ALL\n"
    "  SELECT 1, d.id, coalesce(d.device_id, ''), d.transport || ' ' || coalesce(d.identity, '')\n"
    "    FROM dockings d\n"
    "   WHERE NOT EXISTS (SELECT 1 FROM custody_events e WHERE e.docking_id = d.id)\n"
    "  UNION ALL\n"
    "  SELECT 2, r.docking_id, coalesce(d.device_id, ''), r.verdict\n"
    "    FROM docking_results r JOIN dockings d ON d.id = r.docking_id\n"
    "   WHERE NOT EXISTS (SELECT 1 FROM custody_events e WHERE e.docking_id = r.docking_id\n"
    "                     AND e.kind IN ('docking_done', 'interrupted', 'refused'))\n"
    ") gaps ORDER BY kind, id LIMIT $1";

int evd_custody_crosscheck(EvdDb *db, EvdCustodyGapFn fn, void *userdata, uint64_t *ret_n_gaps,
                           EvdError *err)
{
        const char *what = "cross-checking the custody log against the evidence tables";
        bool nested;
        int r = db_tx_open(db, &nested, err);
        if (r < 0)
                return r;
        if (!nested)
                r = db_exec(db, what, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY", NULL,
                            NULL, err);
        _cleanup_(PQclearp) PGresult *res = NULL;
        if (r >= 0) {
                DbParams p = {};
                db_param_i64(&p, EVD_CUSTODY_GAPS_LISTED);
                r = db_exec(db, what, crosscheck_sql, &p, &res, err);
        }
        r = db_tx_close(db, nested, r, err);
        if (r < 0)
                return r;

        int n = PQntuples(res);
        for (int i = 0; fn && i < n; i++) {
                EvdCustodyGap gap = {
                    .kind = (EvdCustodyGapKind)db_get_i64(res, i, 0),
                    .id = db_get_i64(res, i, 1),
                    .device_id = PQgetvalue(res, i, 2),
                    .name = PQgetvalue(res, i, 3),
                };
                fn(&gap, userdata);
        }
        if (ret_n_gaps)
                *ret_n_gaps = n > 0 ? (uint64_t)db_get_i64(res, 0, 4) : 0;
        return 0;
}

int evd_custody_checkpoint_compare(EvdDb *db, const EvdCustodyCheckpoint *checkpoint,
                                   EvdCheckpointReport *ret_report, EvdError *err)
{
        const char *what = "comparing the custody log with a checkpoint";
        if (!checkpoint || checkpoint->id < 1 || !ret_report)
                return evd_error_set(err, -EINVAL, "%s: no checkpoint", what);
        DbParams p = {};
        db_param_i64(&p, checkpoint->id);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, what,
                        "SELECT (SELECT coalesce(max(id), 0) FROM custody_events),\n"
                        "       (SELECT hash FROM custody_events WHERE id = $1)",
                        &p, &res, err);
        if (r < 0)
                return r;

        EvdCheckpointReport rep = {.head_id = db_get_i64(res, 0, 0)};
        char want[2 * EVD_DIGEST_SIZE + 1];
        evd_hex(checkpoint->hash, EVD_DIGEST_SIZE, want);
        if (rep.head_id < checkpoint->id) {
                rep.outcome = EVD_CHECKPOINT_TAIL_CUT;
                snprintf(rep.detail, sizeof(rep.detail),
                         "the log ends at event %" PRId64 ", but event %" PRId64
                         " was recorded as its head earlier: events after %" PRId64 " were removed",
                         rep.head_id, checkpoint->id, rep.head_id);
        } else if (db_is_null(res, 0, 1)) {
                rep.outcome = EVD_CHECKPOINT_REWRITTEN;
                snprintf(rep.detail, sizeof(rep.detail),
                         "event %" PRId64 ", recorded as the head earlier, is missing from the log",
                         checkpoint->id);
        } else if (strcmp(PQgetvalue(res, 0, 1), want) != 0) {
                rep.outcome = EVD_CHECKPOINT_REWRITTEN;
                snprintf(rep.detail, sizeof(rep.detail),
                         "event %" PRId64
                         " has hash %.16s..., the checkpoint recorded %.16s...: the log was "
                         "rewritten up to there",
                         checkpoint->id, PQgetvalue(res, 0, 1), want);
        } else {
                rep.outcome = EVD_CHECKPOINT_MATCH;
                snprintf(rep.detail, sizeof(rep.detail),
                         "event %" PRId64
                         " still has the recorded hash %.16s... (the log now ends at %" PRId64 ")",
                         checkpoint->id, want, rep.head_id);
        }
        *ret_report = rep;
        return 0;
}
