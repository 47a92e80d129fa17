/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Read-only queries for the admin tools and the reconciliation: the ingest log, one recorder's chain,
 * stored paths. */
#include <inttypes.h>
#include <stdio.h>

#include "db-internal.h"
#include "db.h"
#include "hash.h"

/* ---- queries ------------------------------------------------------------------------------------- */

/* clang-format off */
#define FILE_COLUMNS                                                                                        \
        "id, docking_id, device_id, officer_id, seq, session, method, case_number, "                        \
        "recorded_start IS NOT NULL, " DB_US("recorded_start") ", " DB_US("recorded_end") ", tz_minutes, "  \
        DB_US("ingested_at") ", " DB_US("stored_at") ", within_24h, size, sha256, record_hash, "            \
        "original_path, archive_path, archive_sha256, verdict, confidentiality, retention_class, "          \
        "clock_offset_us, source_path"
/* clang-format on */

#define FINDING_COLUMNS "id, docking_id, file_id, verdict, seq, expected, found, detail"

static void finding_row_clear(EvdDbFindingRow *f)
{
        free(f->verdict);
        free(f->expected);
        free(f->found);
        free(f->detail);
}

static void finding_rows_free(EvdDbFindingRow *rows, size_t n)
{
        for (size_t i = 0; rows && i < n; i++)
                finding_row_clear(&rows[i]);
        free(rows);
}

static void file_row_clear(EvdDbFileRow *f)
{
        free(f->device_id);
        free(f->officer_id);
        free(f->method);
        free(f->case_number);
        free(f->original_path);
        free(f->archive_path);
        free(f->verdict);
        free(f->confidentiality);
        free(f->retention_class);
        free(f->source_path);
        finding_rows_free(f->findings, f->n_findings);
}

static void file_rows_free(EvdDbFileRow *rows, size_t n)
{
        for (size_t i = 0; rows && i < n; i++)
                file_row_clear(&rows[i]);
        free(rows);
}

static void copy_hex(char dst[EVD_DB_HEX_SIZE], const PGresult *res, int row, int col)
{
        dst[0] = '\0';
        if (!PQgetisnull(res, row, col))
                snprintf(dst, EVD_DB_HEX_SIZE, "%s", PQgetvalue(res, row, col));
}

/* strdup of a nullable column; false on out of memory. */
static bool dup_col(char **dst, const PGresult *res, int row, int col)
{
        *dst = db_get_strdup(res, row, col);
        return *dst || PQgetisnull(res, row, col);
}

static int finding_from_row(const PGresult *res, int row, EvdDbFindingRow *f)
{
        *f = (EvdDbFindingRow){
            .id = db_get_i64(res, row, 0),
            .docking_id = db_get_i64(res, row, 1),
            .file_id = db_get_i64(res, row, 2),
            .has_seq = !db_is_null(res, row, 4),
            .seq = (uint64_t)db_get_i64(res, row, 4),
        };
        if (!dup_col(&f->verdict, res, row, 3) || !dup_col(&f->expected, res, row, 5) ||
            !dup_col(&f->found, res, row, 6) || !dup_col(&f->detail, res, row, 7))
                return -ENOMEM;
        return 0;
}

static int file_from_row(const PGresult *res, int row, EvdDbFileRow *f)
{
        *f = (EvdDbFileRow){
            .id = db_get_i64(res, row, 0),
            .docking_id = db_get_i64(res, row, 1),
            .has_seq = !db_is_null(res, row, 4),
            .seq = (uint64_t)db_get_i64(res, row, 4),
            .session = (uint64_t)db_get_i64(res, row, 5),
            .has_recorded = db_get_bool(res, row, 8),
            .recorded_start_us = db_get_i64(res, row, 9),
            .recorded_end_us = db_get_i64(res, row, 10),
            .tz_minutes = (int)db_get_i64(res, row, 11),
            .ingested_us = db_get_i64(res, row, 12),
            .stored_us = db_get_i64(res, row, 13),
            .within_24h = db_get_bool(res, row, 14),
            .size = (uint64_t)db_get_i64(res, row, 15),
            .has_clock_offset = !db_is_null(res, row, 24),
            .clock_offset_us = db_get_i64(res, row, 24),
        };
        if (!db_is_null(res, row, 25)) {
                /* raw bytes from the recorder: unescape the bytea, keep them NUL-terminated */
                size_t len = 0;
                unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(res, row, 25), &len);
                if (!raw)
                        return -ENOMEM;
                f->source_path = malloc(len + 1);
                if (f->source_path) {
                        memcpy(f->source_path, raw, len);
                        f->source_path[len] = 0;
                }
                PQfreemem(raw);
                if (!f->source_path)
                        return -ENOMEM;
        }
        copy_hex(f->sha256, res, row, 16);
        copy_hex(f->record_hash, res, row, 17);
        copy_hex(f->archive_sha256, res, row, 20);
        if (!dup_col(&f->device_id, res, row, 2) || !dup_col(&f->officer_id, res, row, 3) ||
            !dup_col(&f->method, res, row, 6) || !dup_col(&f->case_number, res, row, 7) ||
            !dup_col(&f->original_path, res, row, 18) || !dup_col(&f->archive_path, res, row, 19) ||
            !dup_col(&f->verdict, res, row, 21) || !dup_col(&f->confidentiality, res, row, 22) ||
            !dup_col(&f->retention_class, res, row, 23))
                return -ENOMEM;
        return 0;
}

static int cmp_file_row_ptr_by_id(const void *a, const void *b)
{
        const EvdDbFileRow *x = *(EvdDbFileRow *const *)a, *y = *(EvdDbFileRow *const *)b;
        return x->id < y->id ? -1 : x->id > y->id;
}

static EvdDbFileRow *file_by_id(EvdDbFileRow **by_id, size_t n, int64_t id)
{
        size_t lo = 0, hi = n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (by_id[mid]->id == id)
                        return by_id[mid];
                if (by_id[mid]->id < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

/* Loads the rows of a files query and attaches each file's findings (one more query). */
static int files_load(EvdDb *db, const char *what, const char *sql, const DbParams *p, size_t max_rows,
                      EvdDbFileRow **ret_files, size_t *ret_n, bool *ret_truncated, EvdError *err)
{
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, what, sql, p, &res, err);
        if (r < 0)
                return r;
        size_t n = (size_t)PQntuples(res);
        bool truncated = n > max_rows;
        n = MIN(n, max_rows);

        EvdDbFileRow *files = calloc(n ? n : 1, sizeof(*files));
        _cleanup_free_ EvdDbFileRow **by_id = calloc(n ? n : 1, sizeof(*by_id));
        /* The id list for the findings query: "{1,2,3}", at most 21 bytes per id. */
        _cleanup_free_ char *ids = malloc(n * 21 + 3);
        if (!files || !by_id || !ids) {
                free(files);
                return -ENOMEM;
        }
        size_t o = 0;
        ids[o++] = '{';
        for (size_t i = 0; i < n; i++) {
                r = file_from_row(res, (int)i, &files[i]);
                if (r < 0) {
                        file_rows_free(files, i + 1);
                        return evd_error_set(err, r, "%s: out of memory", what);
                }
                by_id[i] = &files[i];
                o += (size_t)sprintf(ids + o, "%s%" PRId64, i ? "," : "", files[i].id);
        }
        ids[o++] = '}';
        ids[o] = '\0';
        qsort(by_id, n, sizeof(*by_id), cmp_file_row_ptr_by_id);

        _cleanup_(PQclearp) PGresult *fres = NULL;
        if (n > 0) {
                DbParams fp = {};
                db_param_text(&fp, ids);
                r = db_exec(db, what,
                            "SELECT " FINDING_COLUMNS " FROM findings WHERE file_id = ANY($1::bigint[]) "
                            "ORDER BY file_id, id",
                            &fp, &fres, err);
                if (r < 0) {
                        file_rows_free(files, n);
                        return r;
                }
                size_t nf = (size_t)PQntuples(fres);
                /* Two passes: count per file, then fill. */
                for (size_t i = 0; i < nf; i++) {
                        EvdDbFileRow *f = file_by_id(by_id, n, db_get_i64(fres, (int)i, 2));
                        if (f)
                                f->n_findings++;
                }
                for (size_t i = 0; i < n; i++) {
                        if (files[i].n_findings == 0)
                                continue;
                        files[i].findings = calloc(files[i].n_findings, sizeof(EvdDbFindingRow));
                        if (!files[i].findings) {
                                files[i].n_findings = 0;
                                file_rows_free(files, n);
                                return -ENOMEM;
                        }
                        files[i].n_findings = 0; /* refilled below */
                }
                for (size_t i = 0; i < nf; i++) {
                        EvdDbFileRow *f = file_by_id(by_id, n, db_get_i64(fres, (int)i, 2));
                        if (!f)
                                continue;
                        r = finding_from_row(fres, (int)i, &f->findings[f->n_findings++]);
                        if (r < 0) {
                                file_rows_free(files, n);
                                return -ENOMEM;
                        }
                }
        }
        *ret_files = files;
        *ret_n = n;
        *ret_truncated = truncated;
        return 0;
}

EvdDbLog *evd_db_log_free(EvdDbLog *log)
{
        if (!log)
                return NULL;
        file_rows_free(log->files, log->n_files);
        free(log);
        return NULL;
}

int evd_db_log_query(EvdDb *db, const EvdDbLogFilter *filter, EvdDbLog **ret_log, EvdError *err)
{
        const EvdDbLogFilter none = {};
        if (!filter)
                filter = &none;
        size_t max_rows =
            filter->max_rows ? MIN(filter->max_rows, EVD_DB_LOG_MAX_ROWS) : EVD_DB_LOG_MAX_ROWS;

        DbParams p = {};
        if (filter->has_since)
                db_param_time(&p, filter->since_us);
        else
                db_param_null(&p);
        db_param_text(&p, filter->device_id);
        db_param_i64(&p, (int64_t)max_rows + 1); /* one more tells that there were more */
        if (filter->has_until)
                db_param_time(&p, filter->until_us);
        else
                db_param_null(&p);
        db_param_bool(&p, filter->late_only);
        db_param_bool(&p, filter->findings_only);

        _cleanup_(evd_db_log_freep) EvdDbLog *log = calloc(1, sizeof(*log));
        if (!log)
                return -ENOMEM;
        int r = files_load(db, "querying the ingest log",
                           "SELECT " FILE_COLUMNS " FROM files "
                           "WHERE ($1::timestamptz IS NULL OR ingested_at >= $1) "
                           "AND ($2::text IS NULL OR device_id = $2) "
                           "AND ($4::timestamptz IS NULL OR ingested_at < $4) "
                           "AND (NOT $5::boolean OR NOT within_24h) "
                           "AND (NOT $6::boolean OR verdict <> 'INTACT' OR EXISTS "
                           "(SELECT 1 FROM findings g WHERE g.file_id = files.id)) "
                           "ORDER BY ingested_at, id LIMIT $3",
                           &p, max_rows, &log->files, &log->n_files, &log->truncated, err);
        if (r < 0)
                return r;
        *ret_log = steal_ptr(&log);
        return 0;
}

EvdDbChainView *evd_db_chain_view_free(EvdDbChainView *view)
{
        if (!view)
                return NULL;
        free(view->device_id);
        file_rows_free(view->files, view->n_files);
        finding_rows_free(view->docking_findings, view->n_docking_findings);
        free(view->heads);
        free(view);
        return NULL;
}

int evd_db_chain_view(EvdDb *db, const char *device_id, EvdDbChainView **ret_view, EvdError *err)
{
        char what[64];
        snprintf(what, sizeof(what), "reading the chain of %.16s", strna(device_id));
        int r = db_check_device_id(device_id, what, err);
        if (r < 0)
                return r;

        _cleanup_(evd_db_chain_view_freep) EvdDbChainView *view = calloc(1, sizeof(*view));
        if (!view || !(view->device_id = strdup(device_id)))
                return -ENOMEM;

        DbParams p = {};
        db_param_text(&p, device_id);
        db_param_i64(&p, (int64_t)EVD_DB_LOG_MAX_ROWS + 1);

        /* One snapshot for the three queries so that files, findings and heads agree. */
        bool nested;
        r = db_tx_open(db, &nested, err);
        if (r < 0)
                return r;
        if (!nested)
                r = db_exec(db, what, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY", NULL,
                            NULL, err);
        bool truncated = false;
        if (r >= 0)
                r = files_load(db, what,
                               "SELECT " FILE_COLUMNS " FROM files WHERE device_id = $1 "
                               "ORDER BY seq IS NULL, seq, ingested_at, id LIMIT $2",
                               &p, EVD_DB_LOG_MAX_ROWS, &view->files, &view->n_files, &truncated, err);
        view->truncated |= truncated;

        _cleanup_(PQclearp) PGresult *fres = NULL;
        if (r >= 0)
                r = db_exec(
                    db, what,
                    "SELECT f.id, f.docking_id, f.file_id, f.verdict, f.seq, f.expected, f.found, f.detail "
                    "FROM findings f JOIN dockings d ON d.id = f.docking_id "
                    "WHERE f.file_id IS NULL AND d.device_id = $1 ORDER BY f.id LIMIT $2",
                    &p, &fres, err);
        if (r >= 0) {
                size_t n = MIN((size_t)PQntuples(fres), EVD_DB_LOG_MAX_ROWS);
                view->truncated |= (size_t)PQntuples(fres) > n;
                view->docking_findings = calloc(n ? n : 1, sizeof(EvdDbFindingRow));
                if (!view->docking_findings)
                        r = -ENOMEM;
                for (size_t i = 0; r >= 0 && i < n; i++) {
                        view->n_docking_findings++;
                        r = finding_from_row(fres, (int)i, &view->docking_findings[i]);
                }
        }

        _cleanup_(PQclearp) PGresult *hres = NULL;
        if (r >= 0)
                r = db_exec(db, what,
                            "SELECT " DB_HEAD_COLUMNS
                            " FROM chain_heads WHERE device_id = $1 ORDER BY id LIMIT $2",
                            &p, &hres, err);
        if (r >= 0) {
                size_t n = MIN((size_t)PQntuples(hres), EVD_DB_LOG_MAX_ROWS);
                view->truncated |= (size_t)PQntuples(hres) > n;
                view->heads = calloc(n ? n : 1, sizeof(EvdDbChainHead));
                if (!view->heads)
                        r = -ENOMEM;
                for (size_t i = 0; r >= 0 && i < n; i++) {
                        r = db_head_from_row(hres, (int)i, &view->heads[i], err);
                        view->n_heads++;
                }
        }
        /* Read-only: "commit" just ends the snapshot. */
        r = db_tx_close(db, nested, r, err);
        if (r < 0)
                return r;
        *ret_view = steal_ptr(&view);
        return 0;
}

/* ---- reconciliation ------------------------------------------------------------------------------ */

int evd_db_path_known(EvdDb *db, const char *path, EvdError *err)
{
        DbParams p = {0};
        db_param_text(&p, path);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, "looking up a stored path",
                        "SELECT 1 FROM files WHERE original_path = $1 OR archive_path = $1 LIMIT 1", &p,
                        &res, err);
        if (r < 0)
                return r;
        return PQntuples(res) > 0;
}

int evd_db_stored_paths(EvdDb *db, EvdDbPathFn fn, void *userdata, EvdError *err)
{
        static const char sql[] = "SELECT id, original_path, archive_path FROM files ORDER BY id";
        if (!PQsendQuery(db->conn, sql) || !PQsetSingleRowMode(db->conn)) {
                char msg[400];
                db_one_line(PQerrorMessage(db->conn), msg, sizeof(msg));
                return evd_error_set(err, -ECONNRESET, "listing stored paths: %s", msg);
        }
        int r = 0;
        PGresult *res;
        /* every result must be consumed, also after fn stopped, or the connection stays busy */
        while ((res = PQgetResult(db->conn))) {
                ExecStatusType st = PQresultStatus(res);
                if (st == PGRES_SINGLE_TUPLE && r >= 0) {
                        int64_t id = db_get_i64(res, 0, 0);
                        for (int col = 1; col <= 2 && r >= 0; col++)
                                if (!PQgetisnull(res, 0, col))
                                        r = fn(PQgetvalue(res, 0, col), id, userdata);
                } else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && r >= 0) {
                        char msg[400];
                        db_one_line(PQresultErrorMessage(res), msg, sizeof(msg));
                        r = evd_error_set(err, -EIO, "listing stored paths: %s", msg);
                }
                PQclear(res);
        }
        return r;
}
