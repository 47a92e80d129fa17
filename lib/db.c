/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The connection: open (with its migrations), close, explicit transactions, and what identifies the
 * database and serialises its clients (advisory locks). */
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

#include "db-internal.h"
#include "db.h"
#include "hash.h"

/* Advisory lock keys (pg_advisory_lock's bigint space is shared by every client of the database). */
#define DB_LOCK_MIGRATE "7310593858136113153" /* 0x6576696400000001: 'evid' << 32 | 1 */

/* ---- connection and migrations ------------------------------------------------------------------- */

static void db_notice(void *userdata, const char *message)
{
        char line[400];
        db_one_line(message, line, sizeof(line));
        evd_debug("db: %s", line);
}

int evd_db_schema_version_known(void)
{
        size_t n;
        const EvdDbMigration *m = evd_db_migrations(&n);
        int known = 0;
        for (size_t i = 0; i < n; i++)
                known = MAX(known, m[i].version);
        return known;
}

/* Whether migration `version` is among the applied ones (res: one column of versions). */
static bool db_migration_applied(const PGresult *res, int version)
{
        for (int i = 0; i < PQntuples(res); i++)
                if (db_get_i64(res, i, 0) == version)
                        return true;
        return false;
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

        /* Every migration that is not applied yet is applied, in order: not only those above the highest
         * applied one, so that a migration numbered below one that landed before it is not skipped. */
        _cleanup_(PQclearp) PGresult *applied = NULL;
        r = db_exec(db, "reading the applied migrations", "SELECT version FROM schema_migrations", NULL,
                    &applied, err);
        if (r < 0)
                return r;
        int current = 0;
        for (int i = 0; i < PQntuples(applied); i++)
                current = MAX(current, (int)db_get_i64(applied, i, 0));

        size_t n;
        const EvdDbMigration *migrations = evd_db_migrations(&n);
        int known = evd_db_schema_version_known();
        if (current > known)
                return evd_error_set(err, -EPROTO,
                                     "database schema is at version %d, newer than this evidock knows (%d)",
                                     current, known);
        size_t missing = 0;
        for (size_t i = 0; i < n; i++) {
                if (i > 0 && migrations[i].version <= migrations[i - 1].version)
                        return evd_error_set(err, -EINVAL,
                                             "database migration %d is listed after %d: the table in "
                                             "lib/db-migrations.c must be in ascending order",
                                             migrations[i].version, migrations[i - 1].version);
                missing += !db_migration_applied(applied, migrations[i].version);
        }
        if (missing == 0)
                return 0; /* nothing to do: any role that may read schema_migrations gets here */

        for (size_t i = 0; i < n; i++) {
                const EvdDbMigration *m = &migrations[i];
                if (db_migration_applied(applied, m->version))
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

bool evd_db_login_refused(int r)
{
        return r == -EACCES;
}

/* connect_timeout of the conninfo in µs (libpq's rule: at least 2 s), 0: none. */
static int64_t db_connect_timeout_us(PGconn *conn)
{
        PQconninfoOption *opts = PQconninfo(conn);
        long t = 0;
        for (PQconninfoOption *o = opts; o && o->keyword; o++)
                if (strcmp(o->keyword, "connect_timeout") == 0 && o->val)
                        t = strtol(o->val, NULL, 10);
        PQconninfoFree(opts);
        return t <= 0 ? 0 : (int64_t)MAX(t, 2L) * 1000000;
}

/* Whether the conninfo names several hosts (libpq tries them in turn: failover to a standby). */
static bool db_conninfo_multi_host(PGconn *conn)
{
        PQconninfoOption *opts = PQconninfo(conn);
        bool multi = false;
        for (PQconninfoOption *o = opts; o && o->keyword; o++)
                if ((strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0) && o->val &&
                    strchr(o->val, ','))
                        multi = true;
        PQconninfoFree(opts);
        return multi;
}

/* Drives a PQconnectStart() connection to its end: 0 connected, -ETIMEDOUT (connect_timeout, for the whole
 * attempt), -ECONNREFUSED failed (the reason is in PQerrorMessage()). */
static int db_connect_poll(PGconn *conn)
{
        int64_t timeout = db_connect_timeout_us(conn);
        int64_t deadline = timeout ? evd_clock_monotonic_us() + timeout : 0;
        PostgresPollingStatusType st = PGRES_POLLING_WRITING; /* libpq's rule for the first round */
        for (;;) {
                if (st == PGRES_POLLING_OK)
                        return 0;
                if (st == PGRES_POLLING_FAILED)
                        return -ECONNREFUSED;
                struct pollfd p = {.fd = PQsocket(conn),
                                   .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT};
                int ms = -1;
                if (deadline) {
                        int64_t now = evd_clock_monotonic_us();
                        if (now >= deadline)
                                return -ETIMEDOUT;
                        ms = (int)MIN((deadline - now + 999) / 1000, (int64_t)INT_MAX);
                }
                if (p.fd >= 0 && poll(&p, 1, ms) < 0 && errno != EINTR)
                        return -errno;
                if (p.fd >= 0 && p.revents == 0)
                        continue; /* timed out or interrupted: the deadline decides */
                st = PQconnectPoll(conn);
        }
}

/* Whether a failed connection is the server (or libpq) refusing this login: a wrong password, a role or
 * database that does not exist, no pg_hba.conf entry, no CONNECT privilege. The message carries the
 * server's SQLSTATE (verbose errors: "FATAL:  28P01: ..."); the English phrases cover libpq's own
 * messages and a server that sent none. Anything else (no answer, "starting up", too many connections) is
 * an outage. */
static bool db_connect_refused(PGconn *conn, const char *msg)
{
        if (PQconnectionNeedsPassword(conn))
                return true;
        for (const char *s = msg; (s = strstr(s, ":  ")); s += 3) {
                const char *code = s + 3;
                if (strspn(code, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 5 || code[5] != ':')
                        continue;
                /* 28xxx invalid authorization, 3D000 no such database, 42501 no CONNECT privilege */
                return strncmp(code, "28", 2) == 0 || strncmp(code, "3D000", 5) == 0 ||
                       strncmp(code, "42501", 5) == 0;
        }
        static const char *const phrases[] = {
            "password authentication failed", "authentication failed for user",
            "no password supplied",           "no pg_hba.conf entry",
            "is not permitted to log in",     "permission denied for database",
        };
        for (size_t i = 0; i < ELEMENTSOF(phrases); i++)
                if (strstr(msg, phrases[i]))
                        return true;
        return (strstr(msg, "role \"") || strstr(msg, "database \"")) && strstr(msg, "\" does not exist");
}

/* libpq's message on one line, without the LOCATION lines that verbose errors add. */
static void db_connect_message(PGconn *conn, char *out, size_t size)
{
        char buf[1024];
        size_t o = 0;
        const char *s = PQerrorMessage(conn);
        while (*s && o + 1 < sizeof(buf)) {
                size_t n = strcspn(s, "\n");
                if (strncmp(s, "LOCATION:", 9) != 0) {
                        n = MIN(n, sizeof(buf) - 2 - o);
                        memcpy(buf + o, s, n);
                        o += n;
                        buf[o++] = '\n';
                }
                s += strcspn(s, "\n");
                s += *s == '\n';
        }
        buf[o] = '\0';
        db_one_line(buf, out, size);
}

/* Connects; errors say what failed and where. A refused login is -EACCES and says so: it is a
 * configuration error (evd_db_login_refused()), not an outage. */
static int db_connect(const char *conninfo, PGconn **ret, EvdError *err)
{
        /* expand_dbname: conninfo may be key=value or a URI; application_name shows in pg_stat_activity. */
        const char *const keys[] = {"dbname", "fallback_application_name", NULL};
        const char *const values[] = {conninfo, "evidock", NULL};
        _cleanup_(PQfinishp) PGconn *conn = PQconnectStartParams(keys, values, 1);
        if (!conn)
                return evd_error_set(err, -ENOMEM, "connecting to PostgreSQL: out of memory");
        /* verbose: the server's SQLSTATE is in the message of a refused login */
        PQsetErrorVerbosity(conn, PQERRORS_VERBOSE);
        int r = PQstatus(conn) == CONNECTION_BAD ? -ECONNREFUSED : db_connect_poll(conn);
        if (r == -ETIMEDOUT && db_conninfo_multi_host(conn)) {
                /* A host that gave no answer in time: only libpq's blocking connect moves on to the next
                 * host after a timeout (each host gets connect_timeout; the silent one is tried again
                 * first). Its errors carry no SQLSTATE: db_connect_refused() falls back to the phrases. */
                PQfinish(steal_ptr(&conn));
                conn = PQconnectdbParams(keys, values, 1);
                if (!conn)
                        return evd_error_set(err, -ENOMEM, "connecting to PostgreSQL: out of memory");
                r = PQstatus(conn) == CONNECTION_OK ? 0 : -ECONNREFUSED;
        }
        if (r == -ETIMEDOUT)
                return evd_error_set(err, r,
                                     "connecting to PostgreSQL: no answer from %s within connect_timeout",
                                     strna(PQhost(conn)));
        if (r < 0 || PQstatus(conn) != CONNECTION_OK) {
                /* libpq names the socket or host:port that failed ("connection to server on socket
                 * \"/x/.s.PGSQL.5432\" failed: No such file or directory"). */
                char msg[440];
                db_connect_message(conn, msg, sizeof(msg));
                if (db_connect_refused(conn, msg))
                        return evd_error_set(err, -EACCES,
                                             "PostgreSQL refused the login of role %s to database %s on %s "
                                             "(a configuration error, not an outage: check the role, its "
                                             "password, the database name and pg_hba.conf): %s",
                                             strna(PQuser(conn)), strna(PQdb(conn)), strna(PQhost(conn)),
                                             msg);
                return evd_error_set(err, r < 0 ? r : -ECONNREFUSED, "connecting to PostgreSQL: %s", msg);
        }
        PQsetErrorVerbosity(conn, PQERRORS_DEFAULT);
        *ret = steal_ptr(&conn);
        return 0;
}

int evd_db_open(const char *conninfo, EvdDb **ret_db, EvdError *err)
{
        if (!conninfo || !ret_db)
                return evd_error_set(err, -EINVAL, "connecting to PostgreSQL: no connection string");

        _cleanup_(PQfinishp) PGconn *conn = NULL;
        int r = db_connect(conninfo, &conn, err);
        if (r < 0)
                return r;
        PQsetNoticeProcessor(conn, db_notice, NULL);

        _cleanup_(evd_db_closep) EvdDb *db = calloc(1, sizeof(*db));
        if (!db)
                return evd_error_set(err, -ENOMEM, "connecting to PostgreSQL: out of memory");
        db->conn = steal_ptr(&conn);

        /* UTC so that text timestamps (logs, psql) read the same everywhere; the API uses µs anyway. No JIT:
         * evidock's statements are short, and on a big table LLVM's compile time dwarfs them (the dockings
         * listing of a week on a million files: 1.24 s with JIT, 0.09 s without). */
        r = db_exec(db, "setting up the session",
                    "SET TIME ZONE 'UTC'; SET client_min_messages = warning; SET jit = off", NULL, NULL,
                    err);
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

int evd_db_identity(EvdDb *db, char *ret, size_t size, EvdError *err)
{
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(
            db, "reading the database's identity",
            "SELECT current_database(), " DB_US("applied_at") " FROM schema_migrations WHERE version = 1",
            NULL, &res, err);
        if (r < 0)
                return r;
        if (PQntuples(res) != 1)
                return evd_error_set(err, -EPROTO, "the database has no schema migration 1");
        snprintf(ret, size, "%s@%s", PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
        return 0;
}

int evd_db_replay_lock(EvdDb *db, const char *key, bool lock, EvdError *err)
{
        DbParams p = {};
        db_param_text(&p, key);
        /* two-key form, class 'EVDS': apart from the library's one-key locks */
        return db_exec(db, lock ? "waiting for the spool replay lock" : "releasing the spool replay lock",
                       lock ? "SELECT pg_advisory_lock(1163281491, hashtext($1))"
                            : "SELECT pg_advisory_unlock(1163281491, hashtext($1))",
                       &p, NULL, err);
}
