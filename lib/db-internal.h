/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared by db.c, custody.c and db-migrations.c only: not a public header. */
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

typedef struct EvdDbMigration {
        int version; /* 1, 2, ... without gaps */
        const char *name;
        const char *sql;
} EvdDbMigration;

const EvdDbMigration *evd_db_migrations(size_t *ret_n);

/* Selects a timestamptz column as int64 microseconds since the epoch (exact: extract() is numeric). */
#define DB_US(col) "(extract(epoch from " col ") * 1000000)::bigint"

/* Query parameters, built in place. Text format except bytes (binary). The bound is the widest insert. */
#define DB_MAX_PARAMS 32u
typedef struct DbParams {
        unsigned n;
        bool overflow;
        const char *values[DB_MAX_PARAMS];
        int lengths[DB_MAX_PARAMS];
        int formats[DB_MAX_PARAMS];
        char buf[DB_MAX_PARAMS][72]; /* numbers, times, hex digests */
} DbParams;

void db_param_text(DbParams *p, const char *s); /* NULL -> SQL NULL */
void db_param_null(DbParams *p);
void db_param_i64(DbParams *p, int64_t v);
void db_param_bool(DbParams *p, bool v);
void db_param_time(DbParams *p, int64_t us);           /* as timestamptz text, exact to the µs */
void db_param_hex(DbParams *p, const uint8_t *digest); /* 32 bytes as hex; NULL -> SQL NULL */
void db_param_bytes(DbParams *p, const void *data, size_t n);

/* Runs one statement. what says what was being done, for the error message ("enrolling device X").
 * On success *ret_res (if non-NULL) receives the result, freed by the caller with PQclear(). */
int db_exec(EvdDb *db, const char *what, const char *sql, const DbParams *p, PGresult **ret_res,
            EvdError *err);

/* Opens a transaction, or a savepoint if one is open already (*ret_nested). */
int db_tx_open(EvdDb *db, bool *ret_nested, EvdError *err);
/* Commits (or releases the savepoint) if r >= 0, else rolls back (to the savepoint). Returns r, or the
 * commit error. */
int db_tx_close(EvdDb *db, bool nested, int r, EvdError *err);

/* Result accessors; NULL column -> NULL / 0. */
char *db_get_strdup(const PGresult *res, int row, int col); /* caller frees; NULL on NULL (or ENOMEM) */
int64_t db_get_i64(const PGresult *res, int row, int col);
bool db_get_bool(const PGresult *res, int row, int col);
bool db_is_null(const PGresult *res, int row, int col);

/* Appends one custody event; the caller has a transaction open. */
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
