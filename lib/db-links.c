/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* SQL for later facts about stored recordings (db-links.h): file_links, migration 4. */
#include <inttypes.h>

#include "db-internal.h"
#include "db-links.h"

static int link_finding_insert(EvdDb *db, const EvdDbFileLink *l, const EvdFinding *f, EvdError *err)
{
        const char *verdict = evd_verdict_to_string(f->verdict);
        if (!verdict || (evd_finding_has_seq(f) && f->seq > INT64_MAX))
                return evd_error_set(err, -EINVAL, "linking file %" PRId64 ": an invalid finding",
                                     l->file_id);
        DbParams p = {};
        db_param_i64(&p, l->docking_id);
        db_param_i64(&p, l->file_id);
        db_param_text(&p, verdict);
        if (evd_finding_has_seq(f))
                db_param_i64(&p, (int64_t)f->seq);
        else
                db_param_null(&p);
        db_param_text(&p, f->expected);
        db_param_text(&p, f->found);
        db_param_text(&p, f->detail);
        return db_exec(db, "appending a finding to a stored file",
                       "INSERT INTO findings (docking_id, file_id, verdict, seq, expected, found, detail) "
                       "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                       &p, NULL, err);
}

int evd_db_file_link(EvdDb *db, const EvdDbFileLink *l, const EvdFinding *findings, size_t n_findings,
                     const EvdCustodyEntry *events, size_t n_events, EvdError *err)
{
        char what[96];
        snprintf(what, sizeof(what), "linking stored file %" PRId64, l ? l->file_id : 0);
        const char *verdict = l ? evd_verdict_to_string(l->verdict) : NULL;
        if (!l || !l->device_id || !l->relation || l->file_id <= 0 || !verdict ||
            (l->has_seq && l->seq > INT64_MAX) ||
            (strcmp(l->relation, EVD_DB_LINK_RECORD_FOUND) == 0 && !l->record_hash) ||
            (strcmp(l->relation, EVD_DB_LINK_CONFLICT) == 0 && l->other_file_id <= 0))
                return evd_error_set(err, -EINVAL, "%s: incomplete link", what);
        bool nested = false;
        int r = db_tx_open(db, &nested, err);
        if (r < 0)
                return r;
        DbParams p = {};
        db_param_i64(&p, l->docking_id);
        db_param_text(&p, l->device_id);
        db_param_i64(&p, l->file_id);
        db_param_text(&p, l->relation);
        if (l->other_file_id > 0)
                db_param_i64(&p, l->other_file_id);
        else
                db_param_null(&p);
        if (l->has_seq)
                db_param_i64(&p, (int64_t)l->seq);
        else
                db_param_null(&p);
        db_param_hex(&p, l->record_hash);
        db_param_text(&p, l->chain_record);
        db_param_text(&p, verdict);
        db_param_text(&p, l->detail);
        r = db_exec(
            db, what,
            "INSERT INTO file_links (docking_id, device_id, file_id, relation, other_file_id, seq, "
            "record_hash, chain_record, verdict, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
            "$10)",
            &p, NULL, err);
        if (r == -EEXIST)
                evd_error_set(err, r, "%s: the record is linked already", what);
        for (size_t i = 0; r >= 0 && i < n_findings; i++)
                r = link_finding_insert(db, l, &findings[i], err);
        for (size_t i = 0; r >= 0 && i < n_events; i++) {
                EvdCustodyEntry e = events[i];
                if (!e.file_id)
                        e.file_id = l->file_id;
                if (!e.docking_id)
                        e.docking_id = l->docking_id;
                if (!e.device_id)
                        e.device_id = l->device_id;
                r = custody_append_in_tx(db, &e, NULL, err);
        }
        return db_tx_close(db, nested, r, err);
}

int evd_db_file_find_linked(EvdDb *db, const char *device_id, const uint8_t record_hash[EVD_DIGEST_SIZE],
                            int64_t *ret_file_id, EvdError *err)
{
        const char *what = "looking up a record linked to a stored file";
        if (!device_id || !record_hash)
                return evd_error_set(err, -EINVAL, "%s: device id and record hash are required", what);
        DbParams p = {};
        db_param_text(&p, device_id);
        db_param_hex(&p, record_hash);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, what,
                        "SELECT file_id FROM file_links WHERE device_id = $1 AND record_hash = $2 "
                        "AND relation = 'record_found'",
                        &p, &res, err);
        if (r < 0)
                return r;
        if (PQntuples(res) == 0)
                return 0;
        if (ret_file_id)
                *ret_file_id = db_get_i64(res, 0, 0);
        return 1;
}

int evd_db_file_find_other_version(EvdDb *db, const char *device_id, uint64_t seq,
                                   const uint8_t record_hash[EVD_DIGEST_SIZE], EvdDbOtherVersion *ret,
                                   EvdError *err)
{
        const char *what = "looking up another version of a sequence number";
        if (!device_id || !record_hash || seq > INT64_MAX)
                return evd_error_set(err, -EINVAL, "%s: device id, seq and record hash are required", what);
        DbParams p = {};
        db_param_text(&p, device_id);
        db_param_i64(&p, (int64_t)seq);
        db_param_hex(&p, record_hash);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(
            db, what,
            "SELECT id, record_hash, sha256 FROM files "
            "        WHERE device_id = $1 AND seq = $2 AND record_hash IS NOT NULL AND record_hash <> $3 "
            "UNION ALL "
            "SELECT l.file_id, l.record_hash, f.sha256 FROM file_links l JOIN files f ON f.id = l.file_id "
            "        WHERE l.device_id = $1 AND l.seq = $2 AND l.relation = 'record_found' "
            "        AND l.record_hash <> $3 "
            "ORDER BY 1 LIMIT 1",
            &p, &res, err);
        if (r < 0)
                return r;
        if (PQntuples(res) == 0)
                return 0;
        if (ret) {
                ret->file_id = db_get_i64(res, 0, 0);
                if (evd_unhex(PQgetvalue(res, 0, 1), ret->record_hash, EVD_DIGEST_SIZE) < 0 ||
                    evd_unhex(PQgetvalue(res, 0, 2), ret->sha256, EVD_DIGEST_SIZE) < 0)
                        return evd_error_set(err, -EINVAL, "%s: a bad hash in the database", what);
        }
        return 1;
}
