/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The database layer's exec API: for the lib/db*.c files (and custody.c) only, never for a caller of the
 * library. Every SQL statement of evidock lives in one of those files; everything else calls db.h.
 *
 * The layer, bottom up (no file includes one above it):
 *
 *   db-exec.c        parameters, one statement, transactions/savepoints, result accessors, the mapping
 *                    SQLSTATE -> errno, the argument checks every writer shares.       (this header)
 *   db.c             the connection: open + migrations (db-migrations.c), close, explicit transactions,
 *                    the database's identity, advisory locks.
 *   custody.c        the hash-chained custody log (custody.h).
 *   db-device.c      enrollment.  db-docking.c  what a docking writes and looks up.
 *   db-query.c       read-only queries for evidockctl and the reconciliation.
 *
 * Adding an area (case links, marks, disc jobs, access records, ...): a new lib/db-<area>.c that includes
 * this header and db.h, its public calls declared in db.h (or in a db-<area>.h next to it), its tables
 * in the area's migration (db-migrations.c) with the append-only triggers. A typical write:
 *
 *   int evd_db_mark_add(EvdDb *db, int64_t file_id, const char *mark, EvdError *err)
 *   {
 *           DbParams p = {};
 *           db_param_i64(&p, file_id);
 *           db_param_text(&p, mark);
 *           bool nested;
 *           int r = db_tx_open(db, &nested, err);      // or a savepoint in the caller's transaction
 *           if (r < 0)
 *                   return r;
 *           r = db_exec(db, "marking a file", "INSERT INTO marks (file_id, mark) VALUES ($1, $2)", &p,
 *                       NULL, err);
 *           if (r >= 0)
 *                   r = custody_append_in_tx(db, &(EvdCustodyEntry){.kind = "marked", .file_id = file_id,
 *                                                                    .detail = mark}, NULL, err);
 *           return db_tx_close(db, nested, r, err);    // commit if r >= 0, else roll back
 *   }
 *
 * Errors: db_exec() returns the errno documented in db.h (-EEXIST unique, -EPERM append-only guard,
 * -ENOENT foreign key, -EINVAL check/data, -EAGAIN serialization, -ECONNRESET connection) and sets err to
 * "<what>: <PostgreSQL's message>". This API is stable: other files build on it. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "custody.h"
#include "db.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(PGresult *, PQclear);
DEFINE_TRIVIAL_CLEANUP_FUNC(PGconn *, PQfinish);

struct EvdDb {
        PGconn *conn;
};

/* ---- migrations (db-migrations.c) ---------------------------------------------------------------- */

typedef struct EvdDbMigration {
        int version; /* ascending; gaps are allowed (each helper area owns a number) */
        const char *name;
        const char *sql;
} EvdDbMigration;

const EvdDbMigration *evd_db_migrations(size_t *ret_n);

/* ---- statements (db-exec.c) ---------------------------------------------------------------------- */

/* Selects a timestamptz column as int64 microseconds since the epoch (exact: extract() is numeric). */
#define DB_US(col) "(extract(epoch from " col ") * 1000000)::bigint"

/* Query parameters, built in place. Text format except bytes (binary). The bound is the widest insert. */
#define DB_MAX_PARAMS 32u
typedef struct DbParams {
        unsigned n;
        bool overflow; /* too many parameters or a value out of range: db_exec() refuses with -EINVAL */
        const char *values[DB_MAX_PARAMS];
        int lengths[DB_MAX_PARAMS];
        int formats[DB_MAX_PARAMS];
        char buf[DB_MAX_PARAMS][72]; /* numbers, times, hex digests */
} DbParams;

void db_param_text(DbParams *p, const char *s); /* borrowed until db_exec(); NULL -> SQL NULL */
void db_param_null(DbParams *p);
void db_param_i64(DbParams *p, int64_t v);
void db_param_bool(DbParams *p, bool v);
void db_param_time(DbParams *p, int64_t us);                  /* as timestamptz text, exact to the µs */
void db_param_hex(DbParams *p, const uint8_t *digest);        /* 32 bytes as hex; NULL -> SQL NULL */
void db_param_bytes(DbParams *p, const void *data, size_t n); /* bytea, binary; borrowed */

/* Runs one statement. what says what was being done, for the error message ("enrolling device X").
 * p NULL: no parameters, and sql may hold several statements (migrations). On success *ret_res (if
 * non-NULL) receives the result, freed by the caller with PQclear(). */
int db_exec(EvdDb *db, const char *what, const char *sql, const DbParams *p, PGresult **ret_res,
            EvdError *err);

/* Opens a transaction, or a savepoint if one is open already (*ret_nested). */
int db_tx_open(EvdDb *db, bool *ret_nested, EvdError *err);
/* Commits (or releases the savepoint) if r >= 0, else rolls back (to the savepoint). Returns r, or the
 * commit error. */
int db_tx_close(EvdDb *db, bool nested, int r, EvdError *err);

/* Result accessors; NULL column -> NULL / 0. */
char *db_get_strdup(const PGresult *res, int row, int col); /* caller frees; NULL on NULL (or ENOMEM) */

/* One zeroed element of `size` bytes per result row (at least one, so an empty result is not NULL);
 * *ret_n = the number of rows. NULL with -ENOMEM and "out of memory for <what>" in err. */
void *db_rows_calloc(const PGresult *res, size_t size, size_t *ret_n, const char *what, EvdError *err);
/* The shape of every list query: db_exec(), then db_rows_calloc() of its result. 0 with *ret_res (the
 * rows to read) and *ret_rows (caller frees) set, or the error. */
int db_query_rows(EvdDb *db, const char *what, const char *sql, const DbParams *p, size_t size,
                  PGresult **ret_res, void *ret_rows, size_t *ret_n, EvdError *err);
/* ids as a bigint[] literal ("{1,2,3}") for "= ANY($n::bigint[])": numbers only, built here. NULL on
 * ENOMEM; caller frees. */
char *db_id_array(const int64_t *ids, size_t n);
int64_t db_get_i64(const PGresult *res, int row, int col);
bool db_get_bool(const PGresult *res, int row, int col);
bool db_is_null(const PGresult *res, int row, int col);

/* PostgreSQL's multi-line messages as one line ("a; b"). */
void db_one_line(const char *in, char *out, size_t size);

/* Argument checks shared by the writers: -EINVAL with "<what>: ..." in err. */
int db_check_device_id(const char *device_id, const char *what, EvdError *err);   /* device-id.h rule */
int db_check_u64(uint64_t v, const char *field, const char *what, EvdError *err); /* fits a bigint */

/* ---- shared row shapes --------------------------------------------------------------------------- */

/* chain_heads columns as db_head_from_row() reads them (db-docking.c). */
#define DB_HEAD_COLUMNS                                                                                     \
        "seq, session, record_hash, end_at IS NOT NULL, " DB_US("end_at") ", docking_id, " DB_US("set_at")
int db_head_from_row(const PGresult *res, int row, EvdDbChainHead *head, EvdError *err);

/* ---- custody (custody.c) ------------------------------------------------------------------------- */

/* Appends one custody event; the caller has a transaction open (writers that record a row and its custody
 * events in one transaction). Everyone else: evd_custody_append(). */
int custody_append_in_tx(EvdDb *db, const EvdCustodyEntry *entry, int64_t *ret_id, EvdError *err);

/* Opens a read-only REPEATABLE READ transaction (or a savepoint inside the caller's transaction) so that
 * several queries of one report see the same rows. Close it with db_tx_close(). */
static inline int db_snapshot_open(EvdDb *db, bool *ret_nested, EvdError *err)
{
        int r = db_tx_open(db, ret_nested, err);
        if (r < 0 || *ret_nested)
                return r;
        return db_exec(db, "opening a read-only snapshot",
                       "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", NULL, NULL, err);
}
