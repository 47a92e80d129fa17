/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The exec layer of the database (db-internal.h): query parameters, one statement, transactions and
 * savepoints, result accessors, and the error mapping from SQLSTATE to errno. Knows no table. */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "db-internal.h"
#include "device-id.h"
#include "hash.h"

/* ---- parameters ---------------------------------------------------------------------------------- */

static const char *db_param_slot(DbParams *p, unsigned *ret_i)
{
        if (p->n >= DB_MAX_PARAMS) {
                p->overflow = true;
                return NULL;
        }
        *ret_i = p->n++;
        p->lengths[*ret_i] = 0;
        p->formats[*ret_i] = 0;
        p->values[*ret_i] = NULL;
        return p->buf[*ret_i];
}

void db_param_text(DbParams *p, const char *s)
{
        unsigned i;
        if (db_param_slot(p, &i))
                p->values[i] = s;
}

void db_param_null(DbParams *p)
{
        db_param_text(p, NULL);
}

void db_param_i64(DbParams *p, int64_t v)
{
        unsigned i;
        if (!db_param_slot(p, &i))
                return;
        snprintf(p->buf[i], sizeof(p->buf[i]), "%" PRId64, v);
        p->values[i] = p->buf[i];
}

void db_param_bool(DbParams *p, bool v)
{
        db_param_text(p, v ? "true" : "false");
}

void db_param_time(DbParams *p, int64_t us)
{
        unsigned i;
        if (!db_param_slot(p, &i))
                return;
        /* Floor division so that times before 1970 keep a positive fraction. */
        int64_t secs = us / 1000000, frac = us % 1000000;
        if (frac < 0) {
                frac += 1000000;
                secs--;
        }
        time_t t = (time_t)secs;
        struct tm tm;
        if (!gmtime_r(&t, &tm)) {
                p->overflow = true;
                return;
        }
        snprintf(p->buf[i], sizeof(p->buf[i]), "%04d-%02d-%02d %02d:%02d:%02d.%06" PRId64 "+00",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
        p->values[i] = p->buf[i];
}

void db_param_hex(DbParams *p, const uint8_t *digest)
{
        unsigned i;
        if (!db_param_slot(p, &i))
                return;
        if (digest) {
                evd_hex(digest, EVD_DIGEST_SIZE, p->buf[i]);
                p->values[i] = p->buf[i];
        }
}

void db_param_bytes(DbParams *p, const void *data, size_t n)
{
        unsigned i;
        if (!db_param_slot(p, &i))
                return;
        if (n > INT32_MAX) {
                p->overflow = true;
                return;
        }
        p->values[i] = data;
        p->lengths[i] = (int)n;
        p->formats[i] = 1;
}

/* ---- statements ---------------------------------------------------------------------------------- */

/* PostgreSQL messages span lines ("...failed: X\n\tIs the server running..."): make them one line. */
void db_one_line(const char *in, char *out, size_t size)
{
        size_t o = 0;
        bool space = false;
        for (const char *s = in ? in : ""; *s && o + 1 < size; s++) {
                if (*s == '\n' || *s == '\t' || *s == '\r') {
                        space = o > 0;
                        continue;
                }
                if (space && o + 2 < size) {
                        out[o++] = ';';
                        out[o++] = ' ';
                }
                space = false;
                out[o++] = *s;
        }
        while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == ';'))
                o--;
        out[o] = '\0';
}

static int sqlstate_to_errno(const char *state)
{
        if (!state)
                return -EIO;
        if (strcmp(state, "23505") == 0) /* unique_violation */
                return -EEXIST;
        if (strcmp(state, "EVD01") == 0) /* evd_refuse_change(): the append-only guard */
                return -EPERM;
        if (strcmp(state, "EVD02") == 0) /* migration 8: deciding on one's own access request */
                return -EPERM;
        if (strcmp(state, "42501") == 0) /* insufficient_privilege, row-level security: the role may not */
                return -EACCES;
        if (strcmp(state, "23503") == 0) /* foreign_key_violation: a referenced row does not exist */
                return -ENOENT;
        if (strncmp(state, "23", 2) == 0 || strncmp(state, "22", 2) == 0) /* constraint / data exception */
                return -EINVAL;
        if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
                return -EAGAIN;
        if (strncmp(state, "08", 2) == 0 || strncmp(state, "57", 2) == 0)
                return -ECONNRESET;
        return -EIO;
}

int db_exec(EvdDb *db, const char *what, const char *sql, const DbParams *p, PGresult **ret_res,
            EvdError *err)
{
        if (p && p->overflow)
                return evd_error_set(err, -EINVAL, "%s: parameter out of range", what);

        _cleanup_(PQclearp) PGresult *res = NULL;
        if (p)
                res = PQexecParams(db->conn, sql, (int)p->n, NULL, p->values, p->lengths, p->formats, 0);
        else
                res = PQexec(db->conn, sql); /* no parameters: may hold several statements (migrations) */
        if (!res) {
                char msg[400];
                db_one_line(PQerrorMessage(db->conn), msg, sizeof(msg));
                if (PQstatus(db->conn) == CONNECTION_OK)
                        return evd_error_set(err, -ENOMEM, "%s: %s", what, msg);
                /* the connection is gone: say which database, the admin has to go and look at it */
                return evd_error_set(err, -ECONNRESET, "%s: lost the connection to database %s on %s: %s",
                                     what, strna(PQdb(db->conn)), strna(PQhost(db->conn)), msg);
        }

        ExecStatusType st = PQresultStatus(res);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
                const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
                const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
                const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
                char msg[400];
                db_one_line(primary ? primary : PQresultErrorMessage(res), msg, sizeof(msg));
                int r = state ? sqlstate_to_errno(state)
                              : (PQstatus(db->conn) == CONNECTION_OK ? -EIO : -ECONNRESET);
                evd_debug("db: %s failed (%s): %s", what, strna(state), msg);
                if (r == -ECONNRESET)
                        return evd_error_set(err, r, "%s: lost the connection to database %s on %s: %s",
                                             what, strna(PQdb(db->conn)), strna(PQhost(db->conn)), msg);
                if (detail) {
                        char d[200];
                        db_one_line(detail, d, sizeof(d));
                        return evd_error_set(err, r, "%s: %s (%s)", what, msg, d);
                }
                return evd_error_set(err, r, "%s: %s", what, msg);
        }
        if (ret_res)
                *ret_res = steal_ptr(&res);
        return 0;
}

int db_tx_open(EvdDb *db, bool *ret_nested, EvdError *err)
{
        bool nested = PQtransactionStatus(db->conn) == PQTRANS_INTRANS;
        int r = db_exec(db, nested ? "opening savepoint" : "opening transaction",
                        nested ? "SAVEPOINT evd_nested" : "BEGIN", NULL, NULL, err);
        if (r < 0)
                return r;
        *ret_nested = nested;
        return 0;
}

int db_tx_close(EvdDb *db, bool nested, int r, EvdError *err)
{
        if (r >= 0) {
                int q = db_exec(db, "committing", nested ? "RELEASE SAVEPOINT evd_nested" : "COMMIT", NULL,
                                NULL, err);
                if (q < 0)
                        return q;
                return r;
        }
        /* Keep the first error's message: the rollback result is not interesting to the caller. */
        if (PQstatus(db->conn) == CONNECTION_OK)
                (void)db_exec(db, "rolling back",
                              nested ? "ROLLBACK TO SAVEPOINT evd_nested; RELEASE SAVEPOINT evd_nested"
                                     : "ROLLBACK",
                              NULL, NULL, NULL);
        return r;
}

char *db_get_strdup(const PGresult *res, int row, int col)
{
        if (PQgetisnull(res, row, col))
                return NULL;
        return strdup(PQgetvalue(res, row, col));
}

void *db_rows_calloc(const PGresult *res, size_t size, size_t *ret_n, const char *what, EvdError *err)
{
        size_t n = (size_t)PQntuples(res);
        void *v = calloc(n ? n : 1, size);
        if (!v) {
                evd_error_set(err, -ENOMEM, "out of memory for %s", what);
                return NULL;
        }
        *ret_n = n;
        return v;
}

int db_query_rows(EvdDb *db, const char *what, const char *sql, const DbParams *p, size_t size,
                  PGresult **ret_res, void *ret_rows, size_t *ret_n, EvdError *err)
{
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, what, sql, p, &res, err);
        if (r < 0)
                return r;
        void *rows = db_rows_calloc(res, size, ret_n, what, err);
        if (!rows)
                return -ENOMEM;
        *(void **)ret_rows = rows;
        *ret_res = steal_ptr(&res);
        return 0;
}

char *db_id_array(const int64_t *ids, size_t n)
{
        size_t len = 16 + n * 21; /* 20 digits and a comma each */
        char *arr = malloc(len);
        if (!arr)
                return NULL;
        size_t o = (size_t)snprintf(arr, len, "{");
        for (size_t i = 0; i < n; i++)
                o += (size_t)snprintf(arr + o, len - o, "%s%" PRId64, i ? "," : "", ids[i]);
        snprintf(arr + o, len - o, "}");
        return arr;
}

int64_t db_get_i64(const PGresult *res, int row, int col)
{
        if (PQgetisnull(res, row, col))
                return 0;
        return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

bool db_get_bool(const PGresult *res, int row, int col)
{
        return !PQgetisnull(res, row, col) && PQgetvalue(res, row, col)[0] == 't';
}

bool db_is_null(const PGresult *res, int row, int col)
{
        return PQgetisnull(res, row, col);
}

/* ---- checks -------------------------------------------------------------------------------------- */

int db_check_device_id(const char *device_id, const char *what, EvdError *err)
{
        if (!device_id)
                return evd_error_set(err, -EINVAL, "%s: no device id", what);
        if (!evd_device_id_valid(device_id))
                return evd_error_set(err, -EINVAL, "%s: a device id is 1 to %u ASCII letters or digits",
                                     what, EVD_DEVICE_ID_MAX);
        return 0;
}

int db_check_u64(uint64_t v, const char *field, const char *what, EvdError *err)
{
        if (v > (uint64_t)INT64_MAX)
                return evd_error_set(err, -EINVAL, "%s: %s %" PRIu64 " does not fit the database", what,
                                     field, v);
        return 0;
}
