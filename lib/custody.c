/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "custody.h"
#include "db-internal.h"
#include "hash.h"

#define CUSTODY_LOCK       "7310593858136113154" /* 0x6576696400000002: 'evid' << 32 | 2 */
#define CUSTODY_BATCH_ROWS "1000"                /* rows per FETCH while verifying: bounds memory */
#define CUSTODY_NULL_LEN   UINT32_C(0xffffffff)  /* length field of an absent string */

const char *evd_custody_problem_to_string(EvdCustodyProblem p)
{
        switch (p) {
        case EVD_CUSTODY_OK:
                return "ok";
        case EVD_CUSTODY_HASH_MISMATCH:
                return "hash-mismatch";
        case EVD_CUSTODY_PREV_MISMATCH:
                return "prev-mismatch";
        case EVD_CUSTODY_ID_GAP:
                return "id-gap";
        }
        return "unknown";
}

/* ---- the canonical encoding (docs/database.md, "Custody hash") ----------------------------------- */

static int hash_u64(EVP_MD_CTX *ctx, uint64_t v)
{
        uint8_t b[8];
        for (int i = 7; i >= 0; i--, v >>= 8)
                b[i] = (uint8_t)(v & 0xff);
        return evd_hash_update(ctx, b, sizeof(b));
}

static int hash_u32(EVP_MD_CTX *ctx, uint32_t v)
{
        uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
        return evd_hash_update(ctx, b, sizeof(b));
}

static int hash_str(EVP_MD_CTX *ctx, const char *s)
{
        if (!s)
                return hash_u32(ctx, CUSTODY_NULL_LEN);
        size_t n = strlen(s);
        if (n >= CUSTODY_NULL_LEN)
                return -EFBIG;
        int r = hash_u32(ctx, (uint32_t)n);
        if (r < 0)
                return r;
        return evd_hash_update(ctx, s, n);
}

int evd_custody_event_hash(const EvdCustodyEvent *ev, const uint8_t prev[EVD_DIGEST_SIZE],
                           uint8_t ret_hash[EVD_DIGEST_SIZE])
{
        if (!ev || !prev || !ev->kind || !ev->detail)
                return -EINVAL;
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = NULL;
        int r = evd_hash_begin(EVD_HASH_SHA256, &ctx);
        if (r < 0)
                return r;
        static const char magic[] = "evidock-custody-v1"; /* 18 bytes, without the NUL */
        r = evd_hash_update(ctx, prev, EVD_DIGEST_SIZE);
        if (r >= 0)
                r = evd_hash_update(ctx, magic, sizeof(magic) - 1);
        if (r >= 0)
                r = hash_u64(ctx, (uint64_t)ev->id);
        if (r >= 0)
                r = hash_u64(ctx, (uint64_t)ev->time_us);
        if (r >= 0)
                r = hash_str(ctx, ev->kind);
        if (r >= 0)
                r = hash_str(ctx, ev->device_id);
        if (r >= 0)
                r = hash_u64(ctx, (uint64_t)ev->docking_id);
        if (r >= 0)
                r = hash_u64(ctx, (uint64_t)ev->file_id);
        if (r >= 0)
                r = hash_str(ctx, ev->detail);
        if (r < 0)
                return r;
        return evd_hash_end(ctx, ret_hash);
}

/* ---- append -------------------------------------------------------------------------------------- */

int custody_append_in_tx(EvdDb *db, const EvdCustodyEntry *entry, int64_t *ret_id, EvdError *err)
{
        char what[80];
        snprintf(what, sizeof(what), "appending custody event '%.32s'", strna(entry ? entry->kind : NULL));
        if (!entry || !entry->kind)
                return evd_error_set(err, -EINVAL, "%s: no kind", what);

        /* The lock and the read must be two statements: in READ COMMITTED each statement takes its
         * snapshot when it starts, so only a read that starts after the lock is granted sees the
         * event the previous holder committed. The lock is held until our transaction ends. */
        int r = db_exec(db, what, "SELECT pg_advisory_xact_lock(" CUSTODY_LOCK ")", NULL, NULL, err);
        if (r < 0)
                return r;
        _cleanup_(PQclearp) PGresult *res = NULL;
        r = db_exec(db, what,
                    "SELECT last.id, last.hash, " DB_US(
                        "clock_timestamp()") " FROM (SELECT 1) one "
                                             "LEFT JOIN (SELECT id, hash FROM custody_events ORDER BY id "
                                             "DESC LIMIT 1) last ON true",
                    NULL, &res, err);
        if (r < 0)
                return r;

        uint8_t prev[EVD_DIGEST_SIZE] = {};
        int64_t last_id = 0;
        if (!db_is_null(res, 0, 0)) {
                last_id = db_get_i64(res, 0, 0);
                if (evd_unhex(PQgetvalue(res, 0, 1), prev, sizeof(prev)) < 0)
                        return evd_error_set(err, -EINVAL,
                                             "%s: custody event %" PRId64 " has a malformed hash", what,
                                             last_id);
        }
        EvdCustodyEvent ev = {
            .id = last_id + 1,
            .time_us = db_get_i64(res, 0, 2),
            .kind = entry->kind,
            .device_id = entry->device_id,
            .docking_id = entry->docking_id > 0 ? entry->docking_id : 0,
            .file_id = entry->file_id > 0 ? entry->file_id : 0,
            .detail = entry->detail ? entry->detail : "",
        };
        uint8_t hash[EVD_DIGEST_SIZE];
        r = evd_custody_event_hash(&ev, prev, hash);
        if (r < 0)
                return evd_error_set_errno(err, r, "%s: hashing", what);

        DbParams p = {};
        db_param_i64(&p, ev.id);
        db_param_time(&p, ev.time_us);
        db_param_text(&p, ev.kind);
        db_param_text(&p, ev.device_id);
        if (ev.docking_id)
                db_param_i64(&p, ev.docking_id);
        else
                db_param_null(&p);
        if (ev.file_id)
                db_param_i64(&p, ev.file_id);
        else
                db_param_null(&p);
        db_param_text(&p, ev.detail);
        db_param_hex(&p, prev);
        db_param_hex(&p, hash);
        r = db_exec(
            db, what,
            "INSERT INTO custody_events (id, at, kind, device_id, docking_id, file_id, detail, prev_hash, "
            "hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &p, NULL, err);
        if (r < 0)
                return r;
        if (ret_id)
                *ret_id = ev.id;
        return 0;
}

int evd_custody_append(EvdDb *db, const EvdCustodyEntry *entry, int64_t *ret_id, EvdError *err)
{
        bool nested;
        int64_t id = 0;
        int r = db_tx_open(db, &nested, err);
        if (r < 0)
                return r;
        r = custody_append_in_tx(db, entry, &id, err);
        r = db_tx_close(db, nested, r, err);
        if (r < 0)
                return r;
        if (ret_id)
                *ret_id = id;
        return 0;
}

/* ---- verify -------------------------------------------------------------------------------------- */

static void report_bad(EvdCustodyReport *rep, int64_t id, EvdCustodyProblem problem, const char *fmt, ...)
    _printf_(4, 5);

static void report_bad(EvdCustodyReport *rep, int64_t id, EvdCustodyProblem problem, const char *fmt, ...)
{
        va_list ap;
        rep->ok = false;
        rep->first_bad_id = id;
        rep->problem = problem;
        va_start(ap, fmt);
        vsnprintf(rep->detail, sizeof(rep->detail), fmt, ap);
        va_end(ap);
}

/* Checks one batch of rows; returns 1 when a bad event was found (walk ends), 0 to go on. */
static int verify_batch(const PGresult *res, EvdCustodyReport *rep, int64_t *expect_id,
                        uint8_t prev[EVD_DIGEST_SIZE])
{
        int n = PQntuples(res);
        for (int i = 0; i < n; i++) {
                EvdCustodyEvent ev = {
                    .id = db_get_i64(res, i, 0),
                    .time_us = db_get_i64(res, i, 1),
                    .kind = PQgetvalue(res, i, 2),
                    .device_id = db_is_null(res, i, 3) ? NULL : PQgetvalue(res, i, 3),
                    .docking_id = db_get_i64(res, i, 4),
                    .file_id = db_get_i64(res, i, 5),
                    .detail = PQgetvalue(res, i, 6),
                };
                const char *stored_prev = PQgetvalue(res, i, 7), *stored_hash = PQgetvalue(res, i, 8);

                if (ev.id != *expect_id) {
                        if (*expect_id == 1)
                                report_bad(rep, 1, EVD_CUSTODY_ID_GAP,
                                           "event 1 is missing: the log starts at event %" PRId64, ev.id);
                        else
                                report_bad(rep, *expect_id, EVD_CUSTODY_ID_GAP,
                                           "event %" PRId64 " is missing: event %" PRId64
                                           " follows event %" PRId64,
                                           *expect_id, ev.id, *expect_id - 1);
                        return 1;
                }
                rep->n_events++;

                char prev_hex[EVD_DB_HEX_SIZE];
                evd_hex(prev, EVD_DIGEST_SIZE, prev_hex);
                if (strcmp(stored_prev, prev_hex) != 0) {
                        report_bad(rep, ev.id, EVD_CUSTODY_PREV_MISMATCH,
                                   "event %" PRId64
                                   " links to %.16s..., but the event before hashes to %.16s...",
                                   ev.id, stored_prev, prev_hex);
                        return 1;
                }
                uint8_t hash[EVD_DIGEST_SIZE];
                char hash_hex[EVD_DB_HEX_SIZE];
                if (evd_custody_event_hash(&ev, prev, hash) < 0) {
                        report_bad(rep, ev.id, EVD_CUSTODY_HASH_MISMATCH,
                                   "event %" PRId64 " cannot be hashed", ev.id);
                        return 1;
                }
                evd_hex(hash, EVD_DIGEST_SIZE, hash_hex);
                if (strcmp(stored_hash, hash_hex) != 0) {
                        report_bad(rep, ev.id, EVD_CUSTODY_HASH_MISMATCH,
                                   "event %" PRId64
                                   " (%s) stores hash %.16s..., its fields hash to %.16s...",
                                   ev.id, ev.kind, stored_hash, hash_hex);
                        return 1;
                }
                memcpy(prev, hash, EVD_DIGEST_SIZE);
                memcpy(rep->head_hash, hash, EVD_DIGEST_SIZE);
                rep->head_id = ev.id;
                (*expect_id)++;
        }
        return 0;
}

int evd_custody_verify(EvdDb *db, EvdCustodyReport *ret_report, EvdError *err)
{
        const char *what = "verifying the custody log";
        EvdCustodyReport rep = {.ok = true};
        uint8_t prev[EVD_DIGEST_SIZE] = {};
        int64_t expect_id = 1;

        /* A cursor in one snapshot: constant memory however long the log, and an early stop is cheap. */
        bool nested;
        int r = db_tx_open(db, &nested, err);
        if (r < 0)
                return r;
        if (!nested)
                r = db_exec(db, what, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY", NULL,
                            NULL, err);
        if (r >= 0)
                r = db_exec(
                    db, what,
                    "DECLARE evd_custody_walk NO SCROLL CURSOR FOR "
                    "SELECT id, " DB_US("at") ", kind, device_id, docking_id, file_id, detail, prev_hash, "
                                              "hash FROM custody_events ORDER BY id",
                    NULL, NULL, err);
        while (r >= 0) {
                _cleanup_(PQclearp) PGresult *res = NULL;
                r = db_exec(db, what, "FETCH " CUSTODY_BATCH_ROWS " FROM evd_custody_walk", NULL, &res, err);
                if (r < 0 || PQntuples(res) == 0)
                        break;
                if (verify_batch(res, &rep, &expect_id, prev) > 0)
                        break;
        }
        if (r >= 0)
                r = db_exec(db, what, "CLOSE evd_custody_walk", NULL, NULL, err);
        r = db_tx_close(db, nested, r, err);
        if (r < 0)
                return r;
        *ret_report = rep;
        return 0;
}
