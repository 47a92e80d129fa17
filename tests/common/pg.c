/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "pg.h"

#define TEST_PG_MAX_DATABASES 64 /* per process; more is a test bug */

/* Test-process state (tests may have globals; the library may not). */
static char *base_conninfo;  /* the cluster, dbname=postgres */
static char scratch_dir[64]; /* set when we started the cluster ourselves */
static pid_t owner_pid;      /* only this process cleans up (forked children must not) */
static char *created[TEST_PG_MAX_DATABASES];
static unsigned n_created;
static char *created_roles[TEST_PG_MAX_DATABASES];
static unsigned n_created_roles;

static int run_pg_scratch(const char *action, char **ret_stdout)
{
        const char *root = getenv("EVIDOCK_SOURCE_ROOT");
        if (!root) {
                fprintf(stderr, "# test_pg: neither EVIDOCK_TEST_PG nor EVIDOCK_SOURCE_ROOT is set\n");
                return -ENOENT;
        }
        char cmd[1024];
        snprintf(cmd, sizeof(cmd), "'%s/scripts/pg-scratch' %s '%s'", root, action, scratch_dir);
        FILE *f = popen(cmd, "r");
        if (!f)
                return -errno;
        char line[1024] = "";
        if (!fgets(line, sizeof(line), f))
                line[0] = '\0';
        int status = pclose(f);
        if (status != 0) {
                fprintf(stderr, "# test_pg: '%s' failed (status %d)\n", cmd, status);
                return -EIO;
        }
        line[strcspn(line, "\n")] = '\0';
        if (ret_stdout && !(*ret_stdout = strdup(line)))
                return -ENOMEM;
        return 0;
}

static void test_pg_cleanup(void)
{
        if (getpid() != owner_pid)
                return;
        /* EVIDOCK_TEST_PG_KEEP=1: leave the databases for a look with psql (their names are printed). */
        const char *keep = getenv("EVIDOCK_TEST_PG_KEEP");
        if (keep && strcmp(keep, "1") == 0) {
                for (unsigned i = 0; i < n_created; i++)
                        fprintf(stderr, "test-pg: kept database %s\n", created[i]);
                return;
        }
        if (base_conninfo) {
                PGconn *c = PQconnectdb(base_conninfo);
                for (unsigned i = 0; i < n_created; i++) {
                        char sql[160];
                        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", created[i]);
                        if (c && PQstatus(c) == CONNECTION_OK)
                                PQclear(PQexec(c, sql));
                        free(created[i]);
                }
                /* after the databases: a role that still has privileges in one cannot be dropped */
                for (unsigned i = 0; i < n_created_roles; i++) {
                        char sql[160];
                        snprintf(sql, sizeof(sql), "DROP ROLE IF EXISTS %s", created_roles[i]);
                        if (c && PQstatus(c) == CONNECTION_OK)
                                PQclear(PQexec(c, sql));
                        free(created_roles[i]);
                }
                PQfinish(c);
        }
        if (scratch_dir[0]) {
                (void)run_pg_scratch("stop", NULL);
                char cmd[128];
                snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch_dir);
                if (system(cmd) != 0)
                        fprintf(stderr, "# test_pg: could not remove %s\n", scratch_dir);
        }
        free(base_conninfo);
}

static int test_pg_init(void)
{
        if (base_conninfo)
                return 0;
        owner_pid = getpid();
        const char *env = getenv("EVIDOCK_TEST_PG");
        if (env && *env) {
                base_conninfo = strdup(env);
                if (!base_conninfo)
                        return -ENOMEM;
        } else {
                snprintf(scratch_dir, sizeof(scratch_dir), "/tmp/evidock-test-pg-XXXXXX");
                if (!mkdtemp(scratch_dir)) {
                        scratch_dir[0] = '\0';
                        return -errno;
                }
                /* pg-scratch hands it to the postgres user when we are root. */
                chmod(scratch_dir, 0755);
                int r = run_pg_scratch("start", &base_conninfo);
                if (r < 0) {
                        rmdir(scratch_dir);
                        scratch_dir[0] = '\0';
                        return r;
                }
        }
        atexit(test_pg_cleanup);
        return 0;
}

/* conninfo with one keyword (dbname, user) replaced: parse and rebuild, so URIs work as well as key=value
 * strings. */
static char *conninfo_with(const char *conninfo, const char *key, const char *value)
{
        char *errmsg = NULL;
        PQconninfoOption *opts = PQconninfoParse(conninfo, &errmsg);
        if (!opts) {
                fprintf(stderr, "# test_pg: bad EVIDOCK_TEST_PG: %s\n", errmsg ? errmsg : "?");
                PQfreemem(errmsg);
                return NULL;
        }
        size_t size = 4096, o = 0;
        char *out = malloc(size);
        if (!out) {
                PQconninfoFree(opts);
                return NULL;
        }
        out[0] = '\0';
        o += (size_t)snprintf(out + o, size - o, "%s=%s", key, value);
        for (PQconninfoOption *opt = opts; opt->keyword && o < size; opt++) {
                if (!opt->val || strcmp(opt->keyword, key) == 0)
                        continue;
                o += (size_t)snprintf(out + o, size - o, " %s='", opt->keyword);
                for (const char *s = opt->val; *s && o + 2 < size; s++) {
                        if (*s == '\'' || *s == '\\')
                                out[o++] = '\\';
                        out[o++] = *s;
                }
                if (o + 1 < size)
                        out[o++] = '\'';
                out[o < size ? o : size - 1] = '\0';
        }
        PQconninfoFree(opts);
        if (o >= size) {
                free(out);
                return NULL;
        }
        return out;
}

int test_pg_new_database(const char *tag, char **ret_conninfo)
{
        static unsigned counter;
        int r = test_pg_init();
        if (r < 0) {
                fprintf(stderr, "# test_pg: no PostgreSQL cluster: %s\n", strerror(-r));
                return r;
        }
        if (n_created >= TEST_PG_MAX_DATABASES)
                return -E2BIG;

        char name[64];
        int o = snprintf(name, sizeof(name), "evt_");
        for (const char *s = tag ? tag : "x"; *s && o < 24; s++)
                name[o++] =
                    (isalnum((unsigned char)*s) && isascii((unsigned char)*s)) ? (char)tolower(*s) : '_';
        snprintf(name + o, sizeof(name) - (size_t)o, "_%ld_%u", (long)getpid(), counter++);

        PGconn *c = PQconnectdb(base_conninfo);
        if (PQstatus(c) != CONNECTION_OK) {
                fprintf(stderr, "# test_pg: cannot connect to %s: %s", base_conninfo, PQerrorMessage(c));
                PQfinish(c);
                return -ECONNREFUSED;
        }
        char sql[160];
        /* template0: a clean copy regardless of what someone put in template1. */
        snprintf(sql, sizeof(sql), "CREATE DATABASE %s TEMPLATE template0 ENCODING 'UTF8'", name);
        PGresult *res = PQexec(c, sql);
        int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        if (!ok)
                fprintf(stderr, "# test_pg: %s: %s", sql, PQerrorMessage(c));
        PQclear(res);
        PQfinish(c);
        if (!ok)
                return -EIO;

        created[n_created] = strdup(name);
        if (created[n_created])
                n_created++;
        char *conninfo = conninfo_with(base_conninfo, "dbname", name);
        if (!conninfo)
                return -ENOMEM;
        *ret_conninfo = conninfo;
        return 0;
}

static void notice_ignore(void *userdata, const char *message)
{
}

int test_pg_exec(const char *conninfo, const char *sql, char *ret_error, size_t size)
{
        PGconn *c = PQconnectdb(conninfo);
        int r = 0;
        PQsetNoticeProcessor(c, notice_ignore, NULL); /* "truncate cascades to ..." is noise here */
        if (PQstatus(c) != CONNECTION_OK) {
                r = -ECONNREFUSED;
        } else {
                PGresult *res = PQexec(c, sql);
                ExecStatusType st = PQresultStatus(res);
                if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
                        r = -EIO;
                PQclear(res);
        }
        if (r < 0 && ret_error && size > 0)
                snprintf(ret_error, size, "%s", PQerrorMessage(c));
        PQfinish(c);
        return r;
}

long long test_pg_query_int(const char *conninfo, const char *sql)
{
        PGconn *c = PQconnectdb(conninfo);
        long long v = -1;
        if (PQstatus(c) == CONNECTION_OK) {
                PGresult *res = PQexec(c, sql);
                if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
                        v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
                else
                        fprintf(stderr, "# test_pg: %s: %s", sql, PQerrorMessage(c));
                PQclear(res);
        }
        PQfinish(c);
        return v;
}

int test_pg_login(const char *conninfo, const char *group, char **ret_conninfo)
{
        static unsigned counter;
        int r = test_pg_init();
        if (r < 0)
                return r;
        if (!group || strspn(group, "abcdefghijklmnopqrstuvwxyz_") != strlen(group) || strlen(group) > 20)
                return -EINVAL;
        if (n_created_roles >= TEST_PG_MAX_DATABASES)
                return -E2BIG;

        char name[64];
        snprintf(name, sizeof(name), "evt_%s_%ld_%u", group, (long)getpid(), counter++);
        char sql[640];
        /* The group is cluster-wide and usually made by migration 2; make it here too so that a test can
         * log in before migrating. A concurrent creator is not an error. */
        snprintf(sql, sizeof(sql),
                 "DO $$ BEGIN\n"
                 "  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '%s') THEN\n"
                 "    BEGIN CREATE ROLE %s NOLOGIN;\n"
                 "    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END;\n"
                 "  END IF;\n"
                 "END $$;\n"
                 "CREATE ROLE %s LOGIN IN ROLE %s",
                 group, group, name, group);
        char error[512];
        r = test_pg_exec(base_conninfo, sql, error, sizeof(error));
        if (r < 0) {
                fprintf(stderr, "# test_pg: creating login role %s in %s: %s", name, group, error);
                return r;
        }
        created_roles[n_created_roles] = strdup(name);
        if (created_roles[n_created_roles])
                n_created_roles++;
        char *out = conninfo_with(conninfo, "user", name);
        if (!out)
                return -ENOMEM;
        *ret_conninfo = out;
        return 0;
}
