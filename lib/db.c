/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "db-internal.h"
#include "db.h"
#include "hash.h"

/* Advisory lock keys (pg_advisory_lock's bigint space is shared by every client of the database). */
#define DB_LOCK_MIGRATE      "7310593858136113153" /* 0x6576696400000001: 'evid' << 32 | 1 */
#define DB_LOCK_DEVICE_CLASS "1702259044"          /* 'evid', with hashtext(device_id) as second key */

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
static void one_line(const char *in, char *out, size_t size)
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
                one_line(PQerrorMessage(db->conn), msg, sizeof(msg));
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
                one_line(primary ? primary : PQresultErrorMessage(res), msg, sizeof(msg));
                int r = state ? sqlstate_to_errno(state)
                              : (PQstatus(db->conn) == CONNECTION_OK ? -EIO : -ECONNRESET);
                evd_debug("db: %s failed (%s): %s", what, strna(state), msg);
                if (r == -ECONNRESET)
                        return evd_error_set(err, r, "%s: lost the connection to database %s on %s: %s",
                                             what, strna(PQdb(db->conn)), strna(PQhost(db->conn)), msg);
                if (detail) {
                        char d[200];
                        one_line(detail, d, sizeof(d));
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

/* ---- connection and migrations ------------------------------------------------------------------- */

static void db_notice(void *userdata, const char *message)
{
        char line[400];
        one_line(message, line, sizeof(line));
        evd_debug("db: %s", line);
}

int evd_db_schema_version_known(void)
{
        size_t n;
        const EvdDbMigration *m = evd_db_migrations(&n);
        return n > 0 ? m[n - 1].version : 0;
}

static int db_read_version(EvdDb *db, int *ret_version, EvdError *err)
{
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, "reading the schema version",
                        "SELECT coalesce(max(version), 0) FROM schema_migrations", NULL, &res, err);
        if (r < 0)
                return r;
        *ret_version = (int)db_get_i64(res, 0, 0);
        return 0;
}

int evd_db_schema_version(EvdDb *db, int *ret_version, EvdError *err)
{
        return db_read_version(db, ret_version, err);
}

/* Migrations up to this one run as the connecting role (migration 2 creates the roles); every later one
 * runs as evidock_owner (SET LOCAL ROLE), so that the owner role owns every object whoever applies it. */
#define DB_MIGRATION_ROLES 2

/* Whether the connecting role may apply migrations as the owner: 1 yes, 0 the owner role does not exist
 * yet (before migration 2), -EACCES it exists and we are not a member of it. */
static int db_owner_role(EvdDb *db, int current, int known, EvdError *err)
{
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, "checking the database owner role",
                        "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'evidock_owner'),\n"
                        "       (SELECT pg_has_role('evidock_owner', 'MEMBER') FROM pg_roles\n"
                        "        WHERE rolname = 'evidock_owner'), session_user",
                        NULL, &res, err);
        if (r < 0)
                return r;
        if (!db_get_bool(res, 0, 0))
                return 0;
        if (!db_get_bool(res, 0, 1))
                return evd_error_set(
                    err, -EACCES,
                    "database schema is at version %d, this evidock needs %d, and role '%s' "
                    "may not change the schema (it is not a member of evidock_owner): apply "
                    "the migrations as the owner role (docs/operations.md, Database roles)",
                    current, known, PQgetvalue(res, 0, 2));
        return 1;
}

static int db_migrate_locked(EvdDb *db, EvdError *err)
{
        /* Only create the table when it is missing: a role without CREATE (the dock) reads it. */
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, "looking for table schema_migrations",
                        "SELECT to_regclass('schema_migrations') IS NULL", NULL, &res, err);
        if (r < 0)
                return r;
        if (db_get_bool(res, 0, 0))
                r = db_exec(db, "creating table schema_migrations",
                            "CREATE TABLE IF NOT EXISTS schema_migrations (\n"
                            "        version integer PRIMARY KEY,\n"
                            "        name text NOT NULL,\n"
                            "        applied_at timestamptz NOT NULL DEFAULT clock_timestamp())",
                            NULL, NULL, err);
        if (r < 0)
                return r;

        int current;
        r = db_read_version(db, &current, err);
        if (r < 0)
                return r;

        size_t n;
        const EvdDbMigration *migrations = evd_db_migrations(&n);
        int known = evd_db_schema_version_known();
        if (current > known)
                return evd_error_set(err, -EPROTO,
                                     "database schema is at version %d, newer than this evidock knows (%d)",
                                     current, known);
        if (current == known)
                return 0; /* nothing to do: any role that may read schema_migrations gets here */

        for (size_t i = 0; i < n; i++) {
                const EvdDbMigration *m = &migrations[i];
                if (m->version <= current)
                        continue;
                char what[160];
                snprintf(what, sizeof(what), "applying database migration %04d (%s)", m->version, m->name);
                evd_debug("db: %s", what);

                /* Once the owner role exists, only its members change the schema. */
                r = db_owner_role(db, current, known, err);
                if (r < 0)
                        return r;
                bool as_owner = r > 0 && m->version > DB_MIGRATION_ROLES;

                bool nested;
                r = db_tx_open(db, &nested, err);
                if (r < 0)
                        return r;
                if (as_owner)
                        r = db_exec(db, what, "SET LOCAL ROLE evidock_owner", NULL, NULL, err);
                if (r >= 0)
                        r = db_exec(db, what, m->sql, NULL, NULL, err);
                if (r >= 0) {
                        DbParams p = {};
                        db_param_i64(&p, m->version);
                        db_param_text(&p, m->name);
                        r = db_exec(db, what,
                                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", &p,
                                    NULL, err);
                }
                r = db_tx_close(db, nested, r, err);
                if (r < 0)
                        return r;
                current = m->version;
        }
        return 0;
}

static int db_migrate(EvdDb *db, EvdError *err)
{
        /* Session-level lock: several evidock processes starting at once apply each migration once. */
        int r = db_exec(db, "waiting for the migration lock", "SELECT pg_advisory_lock(" DB_LOCK_MIGRATE ")",
                        NULL, NULL, err);
        if (r < 0)
                return r;
        r = db_migrate_locked(db, err);
        if (PQstatus(db->conn) == CONNECTION_OK)
                (void)db_exec(db, "releasing the migration lock",
                              "SELECT pg_advisory_unlock(" DB_LOCK_MIGRATE ")", NULL, NULL, NULL);
        return r;
}

int evd_db_open(const char *conninfo, EvdDb **ret_db, EvdError *err)
{
        if (!conninfo || !ret_db)
                return evd_error_set(err, -EINVAL, "connecting to PostgreSQL: no connection string");

        /* expand_dbname: conninfo may be key=value or a URI; application_name shows in pg_stat_activity. */
        const char *const keys[] = {"dbname", "fallback_application_name", NULL};
        const char *const values[] = {conninfo, "evidock", NULL};
        _cleanup_(PQfinishp) PGconn *conn = PQconnectdbParams(keys, values, 1);
        if (!conn)
                return evd_error_set(err, -ENOMEM, "connecting to PostgreSQL: out of memory");
        if (PQstatus(conn) != CONNECTION_OK) {
                /* libpq names the socket or host:port that failed ("connection to server on socket
                 * \"/x/.s.PGSQL.5432\" failed: No such file or directory"). */
                char msg[440];
                one_line(PQerrorMessage(conn), msg, sizeof(msg));
                return evd_error_set(err, -ECONNREFUSED, "connecting to PostgreSQL: %s", msg);
        }
        PQsetNoticeProcessor(conn, db_notice, NULL);

        _cleanup_(evd_db_closep) EvdDb *db = calloc(1, sizeof(*db));
        if (!db)
                return evd_error_set(err, -ENOMEM, "connecting to PostgreSQL: out of memory");
        db->conn = steal_ptr(&conn);

        /* UTC so that text timestamps (logs, psql) read the same everywhere; the API uses µs anyway. */
        int r = db_exec(db, "setting up the session",
                        "SET TIME ZONE 'UTC'; SET client_min_messages = warning", NULL, NULL, err);
        if (r < 0)
                return r;
        r = db_migrate(db, err);
        if (r < 0)
                return r;

        *ret_db = steal_ptr(&db);
        return 0;
}

EvdDb *evd_db_close(EvdDb *db)
{
        if (!db)
                return NULL;
        PQfinish(db->conn); /* the server rolls back whatever was open */
        free(db);
        return NULL;
}

int evd_db_begin(EvdDb *db, EvdError *err)
{
        if (PQtransactionStatus(db->conn) != PQTRANS_IDLE)
                return evd_error_set(err, -EBUSY, "opening transaction: one is open already");
        return db_exec(db, "opening transaction", "BEGIN", NULL, NULL, err);
}

int evd_db_commit(EvdDb *db, EvdError *err)
{
        return db_exec(db, "committing", "COMMIT", NULL, NULL, err);
}

int evd_db_rollback(EvdDb *db)
{
        if (PQtransactionStatus(db->conn) == PQTRANS_IDLE)
                return 0;
        return db_exec(db, "rolling back", "ROLLBACK", NULL, NULL, NULL);
}

/* ---- devices ------------------------------------------------------------------------------------- */

static int check_device_id(const char *device_id, const char *what, EvdError *err)
{
        if (!device_id)
                return evd_error_set(err, -EINVAL, "%s: no device id", what);
        size_t n = strlen(device_id);
        bool ok = n == EVD_DB_DEVICE_ID_LEN;
        for (size_t i = 0; ok && i < n; i++)
                ok = isascii((unsigned char)device_id[i]) && isalnum((unsigned char)device_id[i]);
        if (!ok)
                return evd_error_set(err, -EINVAL, "%s: device id must be %u letters or digits", what,
                                     EVD_DB_DEVICE_ID_LEN);
        return 0;
}

void evd_db_device_free(EvdDbDevice *dev)
{
        if (!dev)
                return;
        free(dev->device_id);
        free(dev->officer_id);
        free(dev->unit_code);
        free(dev->public_key_pem);
        free(dev->key_id);
        free(dev);
}

void evd_db_device_array_free(EvdDbDevice *devs, size_t n)
{
        for (size_t i = 0; devs && i < n; i++) {
                free(devs[i].device_id);
                free(devs[i].officer_id);
                free(devs[i].unit_code);
                free(devs[i].public_key_pem);
                free(devs[i].key_id);
        }
        free(devs);
}

#define DEVICE_COLUMNS "device_id, officer_id, unit_code, suite, public_key_pem, key_id, " DB_US("at")

static int device_from_row(const PGresult *res, int row, EvdDbDevice *dev, EvdError *err)
{
        int suite = evd_suite_from_string(PQgetvalue(res, row, 3));
        if (suite < 0)
                return evd_error_set(err, -EINVAL, "device %s: unknown signature suite '%s' in the database",
                                     PQgetvalue(res, row, 0), PQgetvalue(res, row, 3));
        *dev = (EvdDbDevice){
            .device_id = db_get_strdup(res, row, 0),
            .officer_id = db_get_strdup(res, row, 1),
            .unit_code = db_get_strdup(res, row, 2),
            .suite = (EvdSuite)suite,
            .public_key_pem = db_get_strdup(res, row, 4),
            .key_id = db_get_strdup(res, row, 5),
            .enrolled_us = db_get_i64(res, row, 6),
        };
        if (!dev->device_id || !dev->officer_id || !dev->public_key_pem || !dev->key_id ||
            (!dev->unit_code && !db_is_null(res, row, 2)))
                return evd_error_set(err, -ENOMEM, "reading device: out of memory");
        return 0;
}

static int device_lock_and_check(EvdDb *db, const char *device_id, const char *what, bool *ret_enrolled,
                                 EvdError *err)
{
        DbParams p = {};
        db_param_text(&p, device_id);
        /* Serializes enroll/retire of one device so that two admins cannot both enroll it. */
        int r = db_exec(db, what, "SELECT pg_advisory_xact_lock(" DB_LOCK_DEVICE_CLASS ", hashtext($1))", &p,
                        NULL, err);
        if (r < 0)
                return r;
        _cleanup_(PQclearp) PGresult *res = NULL;
        r = db_exec(db, what, "SELECT 1 FROM devices_enrolled WHERE device_id = $1", &p, &res, err);
        if (r < 0)
                return r;
        *ret_enrolled = PQntuples(res) > 0;
        return 0;
}

int evd_db_device_enroll(EvdDb *db, const EvdDbDevice *dev, EvdError *err)
{
        char what[64];
        snprintf(what, sizeof(what), "enrolling device %.16s", dev && dev->device_id ? dev->device_id : "?");
        if (!dev)
                return evd_error_set(err, -EINVAL, "%s: no device", what);
        int r = check_device_id(dev->device_id, what, err);
        if (r < 0)
                return r;
        const char *suite = evd_suite_to_string(dev->suite);
        if (!dev->officer_id || !dev->public_key_pem || !dev->key_id || !suite)
                return evd_error_set(err, -EINVAL,
                                     "%s: officer id, suite, public key and key id are required", what);

        bool nested, enrolled;
        r = db_tx_open(db, &nested, err);
        if (r < 0)
                return r;
        r = device_lock_and_check(db, dev->device_id, what, &enrolled, err);
        if (r >= 0 && enrolled)
                r = evd_error_set(err, -EEXIST, "%s: it is enrolled already (retire it first)", what);
        if (r >= 0) {
                DbParams p = {};
                db_param_text(&p, dev->device_id);
                db_param_text(&p, dev->officer_id);
                db_param_text(&p, dev->unit_code);
                db_param_text(&p, suite);
                db_param_text(&p, dev->public_key_pem);
                db_param_text(&p, dev->key_id);
                r = db_exec(db, what,
                            "INSERT INTO device_events (device_id, event, officer_id, unit_code, suite, "
                            "public_key_pem, key_id) VALUES ($1, 'enroll', $2, $3, $4, $5, $6)",
                            &p, NULL, err);
        }
        return db_tx_close(db, nested, r, err);
}

int evd_db_device_get(EvdDb *db, const char *device_id, EvdDbDevice **ret_dev, EvdError *err)
{
        char what[64];
        snprintf(what, sizeof(what), "looking up device %.16s", strna(device_id));
        int r = check_device_id(device_id, what, err);
        if (r < 0)
                return r;
        DbParams p = {};
        db_param_text(&p, device_id);
        _cleanup_(PQclearp) PGresult *res = NULL;
        r = db_exec(db, what, "SELECT " DEVICE_COLUMNS " FROM devices_enrolled WHERE device_id = $1", &p,
                    &res, err);
        if (r < 0)
                return r;
        if (PQntuples(res) == 0)
                return evd_error_set(err, -ENOENT, "device %s is not enrolled", device_id);

        _cleanup_(evd_db_device_freep) EvdDbDevice *dev = calloc(1, sizeof(*dev));
        if (!dev)
                return -ENOMEM;
        r = device_from_row(res, 0, dev, err);
        if (r < 0)
                return r;
        *ret_dev = steal_ptr(&dev);
        return 0;
}

int evd_db_device_list(EvdDb *db, EvdDbDevice **ret_devs, size_t *ret_n, EvdError *err)
{
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r =
            db_exec(db, "listing devices",
                    "SELECT " DEVICE_COLUMNS " FROM devices_enrolled ORDER BY device_id", NULL, &res, err);
        if (r < 0)
                return r;
        size_t n = (size_t)PQntuples(res);
        EvdDbDevice *devs = calloc(n ? n : 1, sizeof(*devs));
        if (!devs)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                r = device_from_row(res, (int)i, &devs[i], err);
                if (r < 0) {
                        evd_db_device_array_free(devs, n);
                        return r;
                }
        }
        *ret_devs = devs;
        *ret_n = n;
        return 0;
}

int evd_db_device_retire(EvdDb *db, const char *device_id, const char *reason, EvdError *err)
{
        char what[64];
        snprintf(what, sizeof(what), "retiring device %.16s", strna(device_id));
        int r = check_device_id(device_id, what, err);
        if (r < 0)
                return r;
        bool nested, enrolled;
        r = db_tx_open(db, &nested, err);
        if (r < 0)
                return r;
        r = device_lock_and_check(db, device_id, what, &enrolled, err);
        if (r >= 0 && !enrolled)
                r = evd_error_set(err, -ENOENT, "%s: it is not enrolled", what);
        if (r >= 0) {
                DbParams p = {};
                db_param_text(&p, device_id);
                db_param_text(&p, reason);
                r = db_exec(db, what,
                            "INSERT INTO device_events (device_id, event, reason) VALUES ($1, 'retire', $2)",
                            &p, NULL, err);
        }
        return db_tx_close(db, nested, r, err);
}

/* ---- dockings, findings, chain heads ------------------------------------------------------------- */

static int check_u64(uint64_t v, const char *field, const char *what, EvdError *err)
{
        if (v > (uint64_t)INT64_MAX)
                return evd_error_set(err, -EINVAL, "%s: %s %" PRIu64 " does not fit the database", what,
                                     field, v);
        return 0;
}

int evd_db_docking_begin(EvdDb *db, const EvdDbDocking *d, int64_t *ret_docking_id, EvdError *err)
{
        const char *what = "recording docking";
        if (!d || !d->transport)
                return evd_error_set(err, -EINVAL, "%s: transport is required", what);
        if (d->device_id) {
                int r = check_device_id(d->device_id, what, err);
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

static int finding_insert(EvdDb *db, int64_t docking_id, int64_t file_id, const EvdDbFinding *f,
                          const char *what, EvdError *err)
{
        const char *verdict = f ? evd_verdict_to_string(f->verdict) : NULL;
        if (!verdict)
                return evd_error_set(err, -EINVAL, "%s: finding without a valid verdict", what);
        if (f->has_seq) {
                int r = check_u64(f->seq, "seq", what, err);
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
        if (f->has_seq)
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

int evd_db_docking_finding_add(EvdDb *db, int64_t docking_id, const EvdDbFinding *finding, EvdError *err)
{
        char what[80];
        snprintf(what, sizeof(what), "recording a finding of docking %" PRId64, docking_id);
        return finding_insert(db, docking_id, 0, finding, what, err);
}

#define HEAD_COLUMNS                                                                                        \
        "seq, session, record_hash, end_at IS NOT NULL, " DB_US("end_at") ", docking_id, " DB_US("set_at")

static int head_from_row(const PGresult *res, int row, EvdDbChainHead *head, EvdError *err)
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
        int r = check_device_id(device_id, what, err);
        if (r < 0)
                return r;
        DbParams p = {};
        db_param_text(&p, device_id);
        _cleanup_(PQclearp) PGresult *res = NULL;
        r = db_exec(db, what,
                    "SELECT " HEAD_COLUMNS " FROM chain_heads WHERE device_id = $1 ORDER BY id DESC LIMIT 1",
                    &p, &res, err);
        if (r < 0)
                return r;
        if (PQntuples(res) == 0)
                return evd_error_set(err, -ENOENT, "no chain head recorded for device %s", device_id);
        EvdDbChainHead head;
        r = head_from_row(res, 0, &head, err);
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
        int r = check_device_id(device_id, what, err);
        if (r < 0)
                return r;
        if (!head)
                return evd_error_set(err, -EINVAL, "%s: no head", what);
        r = check_u64(head->seq, "seq", what, err);
        if (r >= 0)
                r = check_u64(head->session, "session", what, err);
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

int evd_db_file_record(EvdDb *db, const EvdDbFile *f, const EvdDbFinding *findings, size_t n_findings,
                       const EvdCustodyEntry *events, size_t n_events, int64_t *ret_file_id, EvdError *err)
{
        char what[128];
        if (!f)
                return evd_error_set(err, -EINVAL, "recording file: no file");
        snprintf(what, sizeof(what), "recording file %.80s of %.16s", strna(f->original_path),
                 strna(f->device_id));
        int r = check_device_id(f->device_id, what, err);
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
                r = check_u64(f->seq, "seq", what, err);
                if (r >= 0)
                        r = check_u64(f->session, "session", what, err);
        }
        if (r >= 0)
                r = check_u64(f->size, "size", what, err);
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

        _cleanup_(evd_db_log_freep) EvdDbLog *log = calloc(1, sizeof(*log));
        if (!log)
                return -ENOMEM;
        int r = files_load(db, "querying the ingest log",
                           "SELECT " FILE_COLUMNS " FROM files "
                           "WHERE ($1::timestamptz IS NULL OR ingested_at >= $1) "
                           "AND ($2::text IS NULL OR device_id = $2) "
                           "AND ($4::timestamptz IS NULL OR ingested_at < $4) "
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
        int r = check_device_id(device_id, what, err);
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
                            "SELECT " HEAD_COLUMNS
                            " FROM chain_heads WHERE device_id = $1 ORDER BY id LIMIT $2",
                            &p, &hres, err);
        if (r >= 0) {
                size_t n = MIN((size_t)PQntuples(hres), EVD_DB_LOG_MAX_ROWS);
                view->truncated |= (size_t)PQntuples(hres) > n;
                view->heads = calloc(n ? n : 1, sizeof(EvdDbChainHead));
                if (!view->heads)
                        r = -ENOMEM;
                for (size_t i = 0; r >= 0 && i < n; i++) {
                        r = head_from_row(hres, (int)i, &view->heads[i], err);
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
                one_line(PQerrorMessage(db->conn), msg, sizeof(msg));
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
                        one_line(PQresultErrorMessage(res), msg, sizeof(msg));
                        r = evd_error_set(err, -EIO, "listing stored paths: %s", msg);
                }
                PQclear(res);
        }
        return r;
}
