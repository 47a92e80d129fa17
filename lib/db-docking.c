/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a docking writes, and the lookups ingest makes while it runs: docking rows and results,
 * docking-level findings, chain heads, file rows with their findings and custody events. */
#include <inttypes.h>
#include <stdio.h>

#include "custody.h"
#include "db-internal.h"
#include "db.h"
#include "hash.h"

/* ---- dockings, findings, chain heads ------------------------------------------------------------- */

int evd_db_docking_begin(EvdDb *db, const EvdDbDocking *d, int64_t *ret_docking_id, EvdError *err)
{
        const char *what = "recording docking";
        if (!d || !d->transport)
                return evd_error_set(err, -EINVAL, "%s: transport is required", what);
        if (d->device_id) {
                int r = db_check_device_id(d->device_id, what, err);
                if (r < 0)
                        return r;
        }
        DbParams p = {};
        db_param_text(&p, d->device_id);
        db_param_text(&p, d->identity);
        db_param_text(&p, d->transport);
        db_param_text(&p, d->location);
        if (d->has_clock_offset)
                db_param_i64(&p, d->clock_offset_us);
        else
                db_param_null(&p);
        db_param_time(&p, d->docked_us);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, what,
                        "INSERT INTO dockings (device_id, identity, transport, location, clock_offset_us, "
                        "docked_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                        &p, &res, err);
        if (r < 0)
                return r;
        if (ret_docking_id)
                *ret_docking_id = db_get_i64(res, 0, 0);
        return 0;
}

int evd_db_docking_finish(EvdDb *db, int64_t docking_id, const EvdDbDockingResult *result, EvdError *err)
{
        char what[64];
        snprintf(what, sizeof(what), "finishing docking %" PRId64, docking_id);
        const char *verdict = result ? evd_verdict_to_string(result->verdict) : NULL;
        if (!verdict)
                return evd_error_set(err, -EINVAL, "%s: no valid verdict", what);
        DbParams p = {};
        db_param_i64(&p, docking_id);
        db_param_time(&p, result->finished_us);
        db_param_i64(&p, result->files_seen);
        db_param_i64(&p, result->files_ingested);
        db_param_i64(&p, result->files_already);
        db_param_i64(&p, result->files_quarantined);
        db_param_text(&p, verdict);
        db_param_text(&p, result->summary);
        int r = db_exec(db, what,
                        "INSERT INTO docking_results (docking_id, finished_at, files_seen, files_ingested, "
                        "files_already, files_quarantined, verdict, summary) "
                        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        &p, NULL, err);
        if (r == -EEXIST)
                return evd_error_set(err, r, "%s: it is finished already", what);
        if (r == -ENOENT)
                return evd_error_set(err, r, "%s: no such docking", what);
        return r;
}

static int finding_insert(EvdDb *db, int64_t docking_id, int64_t file_id, const EvdFinding *f,
                          const char *what, EvdError *err)
{
        const char *verdict = f ? evd_verdict_to_string(f->verdict) : NULL;
        if (!verdict)
                return evd_error_set(err, -EINVAL, "%s: finding without a valid verdict", what);
        if (evd_finding_has_seq(f)) {
                int r = db_check_u64(f->seq, "seq", what, err);
                if (r < 0)
                        return r;
        }
        DbParams p = {};
        db_param_i64(&p, docking_id);
        if (file_id > 0)
                db_param_i64(&p, file_id);
        else
                db_param_null(&p);
        db_param_text(&p, verdict);
        if (evd_finding_has_seq(f))
                db_param_i64(&p, (int64_t)f->seq);
        else
                db_param_null(&p);
        db_param_text(&p, f->expected);
        db_param_text(&p, f->found);
        db_param_text(&p, f->detail);
        int r = db_exec(db, what,
                        "INSERT INTO findings (docking_id, file_id, verdict, seq, expected, found, detail) "
                        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        &p, NULL, err);
        if (r == -ENOENT)
                return evd_error_set(err, r, "%s: no docking %" PRId64, what, docking_id);
        return r;
}

int evd_db_docking_finding_add(EvdDb *db, int64_t docking_id, const EvdFinding *finding, EvdError *err)
{
        char what[80];
        snprintf(what, sizeof(what), "recording a finding of docking %" PRId64, docking_id);
        return finding_insert(db, docking_id, 0, finding, what, err);
}

int db_head_from_row(const PGresult *res, int row, EvdDbChainHead *head, EvdError *err)
{
        *head = (EvdDbChainHead){
            .seq = (uint64_t)db_get_i64(res, row, 0),
            .session = (uint64_t)db_get_i64(res, row, 1),
            .has_end = db_get_bool(res, row, 3),
            .end_us = db_get_i64(res, row, 4),
            .docking_id = db_get_i64(res, row, 5),
            .set_us = db_get_i64(res, row, 6),
        };
        if (evd_unhex(PQgetvalue(res, row, 2), head->record_hash, EVD_DIGEST_SIZE) < 0)
                return evd_error_set(err, -EINVAL, "chain head: bad record hash in the database");
        return 0;
}

int evd_db_chain_head_get(EvdDb *db, const char *device_id, EvdDbChainHead *ret_head, EvdError *err)
{
        char what[64];
        snprintf(what, sizeof(what), "reading the chain head of %.16s", strna(device_id));
        int r = db_check_device_id(device_id, what, err);
        if (r < 0)
                return r;
        DbParams p = {};
        db_param_text(&p, device_id);
        _cleanup_(PQclearp) PGresult *res = NULL;
        r = db_exec(db, what,
                    "SELECT " DB_HEAD_COLUMNS
                    " FROM chain_heads WHERE device_id = $1 ORDER BY id DESC LIMIT 1",
                    &p, &res, err);
        if (r < 0)
                return r;
        if (PQntuples(res) == 0)
                return evd_error_set(err, -ENOENT, "no chain head recorded for device %s", device_id);
        EvdDbChainHead head;
        r = db_head_from_row(res, 0, &head, err);
        if (r < 0)
                return r;
        *ret_head = head;
        return 0;
}

int evd_db_chain_head_set(EvdDb *db, const char *device_id, int64_t docking_id, const EvdDbChainHead *head,
                          EvdError *err)
{
        char what[64];
        snprintf(what, sizeof(what), "recording the chain head of %.16s", strna(device_id));
        int r = db_check_device_id(device_id, what, err);
        if (r < 0)
                return r;
        if (!head)
                return evd_error_set(err, -EINVAL, "%s: no head", what);
        r = db_check_u64(head->seq, "seq", what, err);
        if (r >= 0)
                r = db_check_u64(head->session, "session", what, err);
        if (r < 0)
                return r;
        DbParams p = {};
        db_param_text(&p, device_id);
        db_param_i64(&p, docking_id);
        db_param_i64(&p, (int64_t)head->seq);
        db_param_i64(&p, (int64_t)head->session);
        db_param_hex(&p, head->record_hash);
        if (head->has_end)
                db_param_time(&p, head->end_us);
        else
                db_param_null(&p);
        r = db_exec(db, what,
                    "INSERT INTO chain_heads (device_id, docking_id, seq, session, record_hash, end_at) "
                    "VALUES ($1, $2, $3, $4, $5, $6)",
                    &p, NULL, err);
        if (r == -ENOENT)
                return evd_error_set(err, r, "%s: no docking %" PRId64, what, docking_id);
        return r;
}

/* ---- files --------------------------------------------------------------------------------------- */

static int file_insert(EvdDb *db, const EvdDbFile *f, const char *verdict, int64_t *ret_id, const char *what,
                       EvdError *err)
{
        DbParams p = {};
        db_param_i64(&p, f->docking_id);
        db_param_text(&p, f->device_id);
        db_param_text(&p, f->officer_id);
        if (f->has_seq) {
                db_param_i64(&p, (int64_t)f->seq);
                db_param_i64(&p, (int64_t)f->session);
        } else {
                db_param_null(&p);
                db_param_null(&p);
        }
        db_param_text(&p, evd_method_to_string(f->method));
        db_param_text(&p, f->case_number);
        if (f->has_recorded) {
                db_param_time(&p, f->recorded_start_us);
                db_param_time(&p, f->recorded_end_us);
                db_param_i64(&p, f->tz_minutes);
        } else {
                db_param_null(&p);
                db_param_null(&p);
                db_param_null(&p);
        }
        if (f->has_clock_offset)
                db_param_i64(&p, f->clock_offset_us);
        else
                db_param_null(&p);
        db_param_time(&p, f->ingested_us);
        db_param_time(&p, f->stored_us);
        db_param_bool(&p, f->within_24h);
        db_param_i64(&p, (int64_t)f->size);
        db_param_hex(&p, f->sha256);
        db_param_hex(&p, f->record_hash);
        db_param_text(&p, f->chain_record);
        db_param_bytes(&p, f->source_path, strlen(f->source_path));
        db_param_text(&p, f->original_path);
        db_param_text(&p, f->archive_path);
        db_param_hex(&p, f->archive_sha256);
        db_param_text(&p, f->archive_format);
        db_param_hex(&p, f->packets_sha256);
        db_param_text(&p, verdict);
        db_param_text(&p, f->confidentiality ? f->confidentiality : "normal");
        db_param_text(&p, f->retention_class);

        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(
            db, what,
            "INSERT INTO files (docking_id, device_id, officer_id, seq, session, method, case_number, "
            "recorded_start, recorded_end, tz_minutes, clock_offset_us, ingested_at, stored_at, "
            "within_24h, size, sha256, record_hash, chain_record, source_path, original_path, "
            "archive_path, archive_sha256, archive_format, packets_sha256, verdict, confidentiality, "
            "retention_class) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, "
            "$15, $16, $17, $18, $19::bytea, $20, $21, $22, $23, $24, $25, $26, $27) RETURNING id",
            &p, &res, err);
        if (r == -EEXIST)
                return evd_error_set(err, r, "%s: already ingested", what);
        if (r == -ENOENT)
                return evd_error_set(err, r, "%s: no docking %" PRId64, what, f->docking_id);
        if (r < 0)
                return r;
        *ret_id = db_get_i64(res, 0, 0);
        return 0;
}

int evd_db_file_record(EvdDb *db, const EvdDbFile *f, const EvdFinding *findings, size_t n_findings,
                       const EvdCustodyEntry *events, size_t n_events, int64_t *ret_file_id, EvdError *err)
{
        char what[128];
        if (!f)
                return evd_error_set(err, -EINVAL, "recording file: no file");
        snprintf(what, sizeof(what), "recording file %.80s of %.16s", strna(f->original_path),
                 strna(f->device_id));
        int r = db_check_device_id(f->device_id, what, err);
        if (r < 0)
                return r;
        const char *verdict = evd_verdict_to_string(f->verdict);
        if (!verdict || !f->sha256 || !f->source_path || !f->original_path || !f->retention_class)
                return evd_error_set(
                    err, -EINVAL,
                    "%s: verdict, sha256, source path, original path and retention class are "
                    "required",
                    what);
        if ((n_findings > 0 && !findings) || (n_events > 0 && !events))
                return evd_error_set(err, -EINVAL, "%s: findings or events missing", what);
        if (f->has_seq) {
                r = db_check_u64(f->seq, "seq", what, err);
                if (r >= 0)
                        r = db_check_u64(f->session, "session", what, err);
        }
        if (r >= 0)
                r = db_check_u64(f->size, "size", what, err);
        if (r < 0)
                return r;

        bool nested;
        r = db_tx_open(db, &nested, err);
        if (r < 0)
                return r;
        int64_t file_id = 0;
        r = file_insert(db, f, verdict, &file_id, what, err);
        for (size_t i = 0; r >= 0 && i < n_findings; i++)
                r = finding_insert(db, f->docking_id, file_id, &findings[i], what, err);
        /* Custody last: its lock serializes all appenders until this commit, so hold it briefly. */
        for (size_t i = 0; r >= 0 && i < n_events; i++) {
                EvdCustodyEntry e = events[i];
                e.file_id = file_id;
                if (e.docking_id == 0)
                        e.docking_id = f->docking_id;
                if (!e.device_id)
                        e.device_id = f->device_id;
                r = custody_append_in_tx(db, &e, NULL, err);
        }
        r = db_tx_close(db, nested, r, err);
        if (r < 0)
                return r;
        if (ret_file_id)
                *ret_file_id = file_id;
        return 0;
}

static int file_find(EvdDb *db, const char *what, const char *sql, const DbParams *p, int64_t *ret_file_id,
                     EvdError *err)
{
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, what, sql, p, &res, err);
        if (r < 0)
                return r;
        if (PQntuples(res) == 0)
                return 0;
        if (ret_file_id)
                *ret_file_id = db_get_i64(res, 0, 0);
        return 1;
}

int evd_db_file_find_chained(EvdDb *db, const char *device_id, const uint8_t record_hash[EVD_DIGEST_SIZE],
                             int64_t *ret_file_id, EvdError *err)
{
        const char *what = "looking up an ingested file by record";
        if (!device_id || !record_hash)
                return evd_error_set(err, -EINVAL, "%s: device id and record hash are required", what);
        DbParams p = {};
        db_param_text(&p, device_id);
        db_param_hex(&p, record_hash);
        return file_find(db, what, "SELECT id FROM files WHERE device_id = $1 AND record_hash = $2", &p,
                         ret_file_id, err);
}

int evd_db_file_find_foreign(EvdDb *db, const char *device_id, const char *source_path,
                             const uint8_t sha256[EVD_DIGEST_SIZE], int64_t *ret_file_id, EvdError *err)
{
        const char *what = "looking up an ingested foreign file";
        if (!device_id || !source_path || !sha256)
                return evd_error_set(err, -EINVAL, "%s: device id, source path and sha256 are required",
                                     what);
        DbParams p = {};
        db_param_text(&p, device_id);
        db_param_bytes(&p, source_path, strlen(source_path));
        db_param_hex(&p, sha256);
        return file_find(
            db, what,
            "SELECT id FROM files WHERE device_id = $1 AND source_path = $2::bytea AND sha256 = $3 "
            "AND record_hash IS NULL",
            &p, ret_file_id, err);
}

int evd_db_docking_exists(EvdDb *db, int64_t docking_id, EvdError *err)
{
        DbParams p = {};
        db_param_i64(&p, docking_id);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, "looking up a docking", "SELECT EXISTS (SELECT 1 FROM dockings WHERE id = $1)",
                        &p, &res, err);
        if (r < 0)
                return r;
        return db_get_bool(res, 0, 0) ? 1 : 0;
}
