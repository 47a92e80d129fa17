/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The SQL of lib/access.h. The rules themselves live in the database (migration 8); this file only calls
 * them and turns rows into structs. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "access.h"
#include "db-internal.h"

static const char *const level_names[_EVD_CONF_MAX] = {
    [EVD_CONF_NORMAL] = "normal",
    [EVD_CONF_RESTRICTED] = "restricted",
    [EVD_CONF_CONFIDENTIAL] = "confidential",
    [EVD_CONF_SECRET] = "secret",
};

const char *evd_confidentiality_to_string(EvdConfidentiality c)
{
        return (unsigned)c < _EVD_CONF_MAX ? level_names[c] : "unknown";
}

int evd_confidentiality_from_string(const char *s)
{
        for (unsigned i = 0; s && i < _EVD_CONF_MAX; i++)
                if (strcmp(s, level_names[i]) == 0)
                        return (int)i;
        return -EINVAL;
}

const char *evd_access_use_to_string(EvdAccessUse u)
{
        return u == EVD_ACCESS_COPY ? "copy" : "view";
}

int evd_access_use_from_string(const char *s)
{
        if (s && strcmp(s, "view") == 0)
                return EVD_ACCESS_VIEW;
        if (s && strcmp(s, "copy") == 0)
                return EVD_ACCESS_COPY;
        return -EINVAL;
}

const char *evd_access_state_to_string(EvdAccessState s)
{
        switch (s) {
        case EVD_ACCESS_PENDING:
                return "pending";
        case EVD_ACCESS_APPROVED:
                return "approved";
        case EVD_ACCESS_DENIED:
                return "denied";
        case EVD_ACCESS_EXPIRED:
                return "expired";
        }
        return "unknown";
}

static bool text_ok(const char *s, size_t min)
{
        if (!s)
                return false;
        size_t n = 0;
        for (const char *p = s; *p; p++)
                if (*p != ' ' && *p != '\t')
                        n++;
        return n >= min;
}

int evd_access_set_level(EvdDb *db, int64_t file_id, const char *case_number, EvdConfidentiality level,
                         const char *reason, EvdError *err)
{
        char what[120];
        if (file_id > 0)
                snprintf(what, sizeof(what), "setting the confidentiality of file %" PRId64, file_id);
        else
                snprintf(what, sizeof(what), "setting the confidentiality of case '%.60s'",
                         strna(case_number));
        if ((file_id > 0) == (case_number != NULL) || (file_id <= 0 && !*case_number))
                return evd_error_set(err, -EINVAL, "%s: give either a file or a case", what);
        if ((unsigned)level >= _EVD_CONF_MAX)
                return evd_error_set(err, -EINVAL, "%s: no such level", what);
        if (!text_ok(reason, 3))
                return evd_error_set(err, -EINVAL, "%s: a reason is required", what);
        DbParams p = {};
        if (file_id > 0)
                db_param_i64(&p, file_id);
        else
                db_param_null(&p);
        db_param_text(&p, case_number);
        db_param_text(&p, level_names[level]);
        db_param_text(&p, reason);
        return db_exec(db, what,
                       "INSERT INTO confidentiality_events (file_id, case_number, level, reason) "
                       "VALUES ($1, $2, $3, $4)",
                       &p, NULL, err);
}

int evd_access_get_level(EvdDb *db, int64_t file_id, EvdConfidentiality *ret_level, EvdError *err)
{
        char what[80];
        snprintf(what, sizeof(what), "reading the confidentiality of file %" PRId64, file_id);
        DbParams p = {};
        db_param_i64(&p, file_id);
        _cleanup_(PQclearp) PGresult *res = NULL;
        /* through files, so that row-level security decides whether the caller may know */
        int r = db_exec(db, what, "SELECT evd_file_level(id) FROM files WHERE id = $1", &p, &res, err);
        if (r < 0)
                return r;
        if (PQntuples(res) == 0)
                return evd_error_set(err, -ENOENT, "%s: no such file (or not visible to this login)", what);
        int l = evd_confidentiality_from_string(PQgetvalue(res, 0, 0));
        if (l < 0)
                return evd_error_set(err, -EINVAL, "%s: unknown level '%s'", what, PQgetvalue(res, 0, 0));
        *ret_level = (EvdConfidentiality)l;
        return 0;
}

int evd_access_unit_member(EvdDb *db, const char *login, const char *unit_code, bool add, EvdError *err)
{
        char what[160];
        snprintf(what, sizeof(what), "%s '%.63s' %s unit '%.40s'", add ? "adding" : "removing", strna(login),
                 add ? "to" : "from", strna(unit_code));
        if (!login || !unit_code || !*unit_code)
                return evd_error_set(err, -EINVAL, "%s: login and unit required", what);
        DbParams p = {};
        db_param_text(&p, login);
        db_param_text(&p, unit_code);
        db_param_text(&p, add ? "add" : "remove");
        return db_exec(db, what, "INSERT INTO unit_members (login, unit_code, event) VALUES ($1, $2, $3)",
                       &p, NULL, err);
}

int evd_access_request(EvdDb *db, const EvdAccessRequestSpec *spec, int64_t *ret_request_id, EvdError *err)
{
        const char *what = "filing an access request";
        if (!spec)
                return evd_error_set(err, -EINVAL, "%s: nothing asked for", what);
        if ((spec->n_file_ids > 0) == (spec->case_number != NULL))
                return evd_error_set(err, -EINVAL, "%s: name either files or a case", what);
        if (spec->n_file_ids > EVD_ACCESS_MAX_FILES)
                return evd_error_set(err, -E2BIG, "%s: %zu files, at most %u per request", what,
                                     spec->n_file_ids, EVD_ACCESS_MAX_FILES);
        if (spec->case_number && !*spec->case_number)
                return evd_error_set(err, -EINVAL, "%s: empty case number", what);
        if (!text_ok(spec->purpose, 3))
                return evd_error_set(err, -EINVAL, "%s: a purpose is required", what);
        if (spec->duration_s < 1 || spec->duration_s > EVD_ACCESS_MAX_DURATION)
                return evd_error_set(err, -EINVAL, "%s: duration must be 1 s to %d days", what,
                                     EVD_ACCESS_MAX_DURATION / 86400);
        if (spec->use != EVD_ACCESS_VIEW && spec->use != EVD_ACCESS_COPY)
                return evd_error_set(err, -EINVAL, "%s: use must be view or copy", what);

        _cleanup_free_ char *ids = NULL;
        if (spec->n_file_ids > 0) {
                for (size_t i = 0; i < spec->n_file_ids; i++)
                        if (spec->file_ids[i] < 1)
                                return evd_error_set(err, -EINVAL, "%s: bad file id %" PRId64, what,
                                                     spec->file_ids[i]);
                if (!(ids = db_id_array(spec->file_ids, spec->n_file_ids)))
                        return evd_error_set(err, -ENOMEM, "%s: out of memory", what);
        }
        DbParams p = {};
        db_param_text(&p, evd_access_use_to_string(spec->use));
        db_param_text(&p, ids);
        db_param_text(&p, spec->case_number);
        db_param_text(&p, spec->purpose);
        db_param_i64(&p, spec->duration_s);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, what,
                        "INSERT INTO access_requests (kind, file_ids, case_number, purpose, wanted) "
                        "VALUES ($1, $2::bigint[], $3, $4, make_interval(secs => $5)) RETURNING id",
                        &p, &res, err);
        if (r < 0)
                return r;
        if (ret_request_id)
                *ret_request_id = db_get_i64(res, 0, 0);
        return 0;
}

int evd_access_decide(EvdDb *db, int64_t request_id, bool approve, const char *reason, int64_t duration_s,
                      EvdError *err)
{
        char what[80];
        snprintf(what, sizeof(what), "%s access request %" PRId64, approve ? "approving" : "denying",
                 request_id);
        if (request_id < 1)
                return evd_error_set(err, -ENOENT, "%s: no such request", what);
        if (duration_s < 0 || duration_s > EVD_ACCESS_MAX_DURATION)
                return evd_error_set(err, -EINVAL, "%s: bad duration", what);
        if (!approve && !text_ok(reason, 3))
                return evd_error_set(err, -EINVAL, "%s: a denial needs a reason", what);
        DbParams p = {};
        db_param_i64(&p, request_id);
        db_param_text(&p, approve ? "approve" : "deny");
        db_param_text(&p, reason);
        db_param_i64(&p, duration_s);
        int r = db_exec(
            db, what,
            "INSERT INTO access_decisions (request_id, decision, reason, expires_at) "
            "VALUES ($1, $2, $3, CASE WHEN $2 = 'approve' THEN clock_timestamp() + "
            "CASE WHEN $4::bigint > 0 THEN make_interval(secs => $4) ELSE interval '90 days' END END)",
            &p, NULL, err);
        if (r == -EEXIST)
                return evd_error_set(err, r, "%s: it was decided already", what);
        return r;
}

/* ---- listing --------------------------------------------------------------------------------------- */

#define REQUEST_COLUMNS                                                                                     \
        "r.id, r.requester, r.kind, array_to_string(r.file_ids, ','), r.case_number, r.purpose, "           \
        "extract(epoch FROM r.wanted)::bigint, " DB_US(                                                     \
            "r.at") ", d.decision, d.decided_by, d.reason, "                                                \
                    "CASE WHEN d.id IS NULL THEN 0 ELSE " DB_US(                                            \
                        "d.at") " END, "                                                                    \
                                "CASE WHEN d.expires_at IS NULL THEN 0 ELSE " DB_US(                        \
                                    "d.expires_at") " END, "                                                \
                                                    "coalesce(d.expires_at <= clock_timestamp(), false)"

EvdAccessRequestRow *evd_access_rows_free(EvdAccessRequestRow *rows, size_t n)
{
        for (size_t i = 0; rows && i < n; i++) {
                free(rows[i].requester);
                free(rows[i].files);
                free(rows[i].case_number);
                free(rows[i].purpose);
                free(rows[i].decided_by);
                free(rows[i].reason);
        }
        free(rows);
        return NULL;
}

static int request_from_row(const PGresult *res, int k, EvdAccessRequestRow *row)
{
        row->id = db_get_i64(res, k, 0);
        row->requester = db_get_strdup(res, k, 1);
        row->use = strcmp(PQgetvalue(res, k, 2), "copy") == 0 ? EVD_ACCESS_COPY : EVD_ACCESS_VIEW;
        row->files = db_get_strdup(res, k, 3);
        row->case_number = db_get_strdup(res, k, 4);
        row->purpose = db_get_strdup(res, k, 5);
        row->duration_s = db_get_i64(res, k, 6);
        row->requested_us = db_get_i64(res, k, 7);
        if (db_is_null(res, k, 8))
                row->state = EVD_ACCESS_PENDING;
        else if (strcmp(PQgetvalue(res, k, 8), "deny") == 0)
                row->state = EVD_ACCESS_DENIED;
        else
                row->state = db_get_bool(res, k, 13) ? EVD_ACCESS_EXPIRED : EVD_ACCESS_APPROVED;
        row->decided_by = db_get_strdup(res, k, 9);
        row->reason = db_get_strdup(res, k, 10);
        row->decided_us = db_get_i64(res, k, 11);
        row->expires_us = db_get_i64(res, k, 12);
        return row->requester && row->purpose ? 0 : -ENOMEM;
}

int evd_access_get(EvdDb *db, int64_t request_id, EvdAccessRequestRow **ret_row, EvdError *err)
{
        char what[64];
        snprintf(what, sizeof(what), "reading access request %" PRId64, request_id);
        DbParams p = {};
        db_param_i64(&p, request_id);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, what,
                        "SELECT " REQUEST_COLUMNS " FROM access_requests r "
                        "LEFT JOIN access_decisions d ON d.request_id = r.id WHERE r.id = $1",
                        &p, &res, err);
        if (r < 0)
                return r;
        if (PQntuples(res) == 0)
                return evd_error_set(err, -ENOENT, "%s: no such request (or not yours)", what);
        EvdAccessRequestRow *row = calloc(1, sizeof(*row));
        if (!row)
                return evd_error_set(err, -ENOMEM, "%s: out of memory", what);
        if (request_from_row(res, 0, row) < 0) {
                evd_access_rows_free(row, 1);
                return evd_error_set(err, -ENOMEM, "%s: out of memory", what);
        }
        *ret_row = row;
        return 0;
}

int evd_access_list(EvdDb *db, bool only_open, size_t max, EvdAccessRequestRow **ret_rows, size_t *ret_n,
                    EvdError *err)
{
        const char *what = "listing access requests";
        DbParams p = {};
        db_param_bool(&p, only_open);
        db_param_i64(&p, max ? (int64_t)max : 1000);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, what,
                        "SELECT " REQUEST_COLUMNS " FROM access_requests r "
                        "LEFT JOIN access_decisions d ON d.request_id = r.id "
                        "WHERE NOT $1 OR d.id IS NULL OR (d.decision = 'approve' AND d.expires_at > "
                        "clock_timestamp()) ORDER BY r.id DESC LIMIT $2",
                        &p, &res, err);
        if (r < 0)
                return r;
        size_t n;
        EvdAccessRequestRow *rows = db_rows_calloc(res, sizeof(*rows), &n, what, err);
        if (!rows)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (request_from_row(res, (int)i, &rows[i]) < 0) {
                        evd_access_rows_free(rows, n);
                        return evd_error_set(err, -ENOMEM, "%s: out of memory", what);
                }
        *ret_rows = rows;
        *ret_n = n;
        return 0;
}

/* ---- opening approved items ------------------------------------------------------------------------- */

EvdAccessItem *evd_access_items_free(EvdAccessItem *items, size_t n)
{
        for (size_t i = 0; items && i < n; i++) {
                free(items[i].device_id);
                free(items[i].case_number);
                free(items[i].original_path);
                free(items[i].archive_path);
                free(items[i].chain_record);
                free(items[i].verdict);
                free(items[i].key_id);
                free(items[i].suite);
                free(items[i].public_key_pem);
        }
        free(items);
        return NULL;
}

static int unhex_col(const PGresult *res, int row, int col, uint8_t *out, bool *ret_has)
{
        if (db_is_null(res, row, col)) {
                if (ret_has)
                        *ret_has = false;
                return 0;
        }
        if (ret_has)
                *ret_has = true;
        return evd_unhex(PQgetvalue(res, row, col), out, EVD_DIGEST_SIZE);
}

int evd_access_open(EvdDb *db, int64_t request_id, EvdAccessUse use, const char *note,
                    EvdAccessItem **ret_items, size_t *ret_n, EvdError *err)
{
        char what[80];
        snprintf(what, sizeof(what), "opening access request %" PRId64 " to %s", request_id,
                 evd_access_use_to_string(use));
        DbParams p = {};
        db_param_i64(&p, request_id);
        db_param_text(&p, evd_access_use_to_string(use));
        db_param_text(&p, note);
        _cleanup_(PQclearp) PGresult *res = NULL;
        /* one statement: the custody events and the rows they describe commit together */
        int r = db_exec(db, what,
                        "SELECT file_id, device_id, case_number, level, size, sha256, original_path, "
                        "archive_path, archive_sha256, record_hash, chain_record, seq, recorded_start_us, "
                        "verdict, key_id, suite, public_key_pem FROM evd_access_open($1, $2, $3)",
                        &p, &res, err);
        if (r < 0)
                return r;
        size_t n = (size_t)PQntuples(res);
        if (n == 0)
                return evd_error_set(err, -ENOENT, "%s: the request names no file", what);
        EvdAccessItem *items = calloc(n, sizeof(*items));
        if (!items)
                return evd_error_set(err, -ENOMEM, "%s: out of memory", what);
        for (size_t i = 0; i < n; i++) {
                EvdAccessItem *it = &items[i];
                int k = (int)i;
                it->file_id = db_get_i64(res, k, 0);
                it->device_id = db_get_strdup(res, k, 1);
                it->case_number = db_get_strdup(res, k, 2);
                int l = evd_confidentiality_from_string(PQgetvalue(res, k, 3));
                it->level = l < 0 ? EVD_CONF_SECRET : (EvdConfidentiality)l; /* unknown: the strictest */
                it->size = (uint64_t)db_get_i64(res, k, 4);
                int rr = unhex_col(res, k, 5, it->sha256, NULL);
                it->original_path = db_get_strdup(res, k, 6);
                it->archive_path = db_get_strdup(res, k, 7);
                if (rr >= 0)
                        rr = unhex_col(res, k, 8, it->archive_sha256, &it->has_archive_sha256);
                if (rr >= 0)
                        rr = unhex_col(res, k, 9, it->record_hash, &it->has_record_hash);
                it->chain_record = db_get_strdup(res, k, 10);
                it->has_seq = !db_is_null(res, k, 11);
                it->seq = (uint64_t)db_get_i64(res, k, 11);
                it->recorded_start_us = db_get_i64(res, k, 12);
                it->verdict = db_get_strdup(res, k, 13);
                it->key_id = db_get_strdup(res, k, 14);
                it->suite = db_get_strdup(res, k, 15);
                it->public_key_pem = db_get_strdup(res, k, 16);
                if (rr < 0 || !it->device_id || !it->original_path || !it->verdict) {
                        evd_access_items_free(items, n);
                        return evd_error_set(err, rr < 0 ? -EINVAL : -ENOMEM,
                                             "%s: bad row for file %" PRId64, what, it->file_id);
                }
        }
        *ret_items = items;
        *ret_n = n;
        return 0;
}

int evd_access_log_listing(EvdDb *db, const int64_t *file_ids, size_t n, const char *what, EvdError *err)
{
        if (n == 0)
                return 0;
        _cleanup_free_ char *ids = db_id_array(file_ids, n);
        if (!ids)
                return evd_error_set(err, -ENOMEM, "logging a listing: out of memory");
        DbParams p = {};
        db_param_text(&p, ids);
        db_param_text(&p, what ? what : "a listing");
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, "logging a listing of restricted files",
                        "SELECT evd_access_log_listing($1::bigint[], $2)", &p, &res, err);
        if (r < 0)
                return r;
        return (int)db_get_i64(res, 0, 0);
}

int evd_access_log_refusal(EvdDb *db, int64_t request_id, const char *why, EvdError *err)
{
        DbParams p = {};
        if (request_id > 0)
                db_param_i64(&p, request_id);
        else
                db_param_null(&p);
        db_param_text(&p, why ? why : "(no reason given)");
        return db_exec(db, "logging an access refusal", "SELECT evd_access_refused($1, $2)", &p, NULL, err);
}

/* ---- custody for exports ---------------------------------------------------------------------------- */

EvdAccessCustodyRow *evd_access_custody_free(EvdAccessCustodyRow *rows, size_t n)
{
        for (size_t i = 0; rows && i < n; i++) {
                free(rows[i].kind);
                free(rows[i].device_id);
                free(rows[i].detail);
                free(rows[i].prev_hash);
                free(rows[i].hash);
                free(rows[i].actor);
        }
        free(rows);
        return NULL;
}

int evd_access_custody(EvdDb *db, int64_t request_id, EvdAccessCustodyRow **ret_rows, size_t *ret_n,
                       EvdError *err)
{
        char what[80];
        snprintf(what, sizeof(what), "reading the custody events of access request %" PRId64, request_id);
        DbParams p = {};
        db_param_i64(&p, request_id);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r =
            db_exec(db, what,
                    "SELECT id, at_us, kind, device_id, docking_id, file_id, detail, prev_hash, hash, actor "
                    "FROM evd_access_custody($1)",
                    &p, &res, err);
        if (r < 0)
                return r;
        size_t n;
        EvdAccessCustodyRow *rows = db_rows_calloc(res, sizeof(*rows), &n, what, err);
        if (!rows)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                EvdAccessCustodyRow *row = &rows[i];
                int k = (int)i;
                row->id = db_get_i64(res, k, 0);
                row->time_us = db_get_i64(res, k, 1);
                row->kind = db_get_strdup(res, k, 2);
                row->device_id = db_get_strdup(res, k, 3);
                row->docking_id = db_get_i64(res, k, 4);
                row->file_id = db_get_i64(res, k, 5);
                row->detail = db_get_strdup(res, k, 6);
                row->prev_hash = db_get_strdup(res, k, 7);
                row->hash = db_get_strdup(res, k, 8);
                row->actor = db_get_strdup(res, k, 9);
                if (!row->kind || !row->detail || !row->prev_hash || !row->hash) {
                        evd_access_custody_free(rows, n);
                        return evd_error_set(err, -ENOMEM, "%s: out of memory", what);
                }
        }
        *ret_rows = rows;
        *ret_n = n;
        return 0;
}

int evd_access_custody_head(EvdDb *db, int64_t *ret_id, char ret_hash[2 * EVD_DIGEST_SIZE + 1],
                            EvdError *err)
{
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, "reading the custody log's head",
                        "SELECT coalesce(h.id, 0), coalesce(h.hash, '') FROM (SELECT 1) one "
                        "LEFT JOIN evd_custody_head() h ON true",
                        NULL, &res, err);
        if (r < 0)
                return r;
        *ret_id = db_get_i64(res, 0, 0);
        snprintf(ret_hash, 2 * EVD_DIGEST_SIZE + 1, "%s", PQgetvalue(res, 0, 1));
        return 0;
}

int evd_access_whoami(EvdDb *db, char **ret_login, EvdError *err)
{
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, "asking the database who is connected", "SELECT session_user", NULL, &res, err);
        if (r < 0)
                return r;
        *ret_login = db_get_strdup(res, 0, 0);
        return *ret_login ? 0 : evd_error_set(err, -ENOMEM, "asking who is connected: out of memory");
}
