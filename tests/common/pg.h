/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A real PostgreSQL for tests.
 *
 * The cluster is the one named by the conninfo in env EVIDOCK_TEST_PG (scripts/test starts one). When that
 * is unset, the first call starts a private scratch cluster with scripts/pg-scratch (source root from env
 * EVIDOCK_SOURCE_ROOT) in a temporary directory under /tmp and stops and removes it when the process that
 * started it exits. Databases created here are dropped at exit. Not thread-safe: call from the main thread.
 */
#pragma once

/* Creates a fresh, uniquely named, empty database ("evt_<tag>_<pid>_<n>"; tag: [a-z0-9_], at most 20
 * characters used) and returns a libpq conninfo for it (caller frees). Returns 0 or a negative errno;
 * prints the reason to stderr (as a TAP comment) on failure. */
int test_pg_new_database(const char *tag, char **ret_conninfo);

/* Runs SQL (may be several statements) on the database of conninfo as the superuser of the test cluster,
 * bypassing the library: for tests that must tamper with rows. Returns 0 or -EIO; on error, the server's
 * message is copied to ret_error (may be NULL, size bytes). */
int test_pg_exec(const char *conninfo, const char *sql, char *ret_error, size_t size);

/* Runs a query returning one value (first column of the first row) as a long long; -1 on error. */
long long test_pg_query_int(const char *conninfo, const char *sql);

/* Creates a LOGIN role "evt_<group>_<pid>_<n>", member of the (NOLOGIN) group role group ("evidock_dock",
 * ...; created if missing), and returns conninfo with user= that role (caller frees): a test connects as
 * one person of that group and sees what the database lets it do. Dropped at exit. 0 or a negative
 * errno. */
int test_pg_login(const char *conninfo, const char *group, char **ret_conninfo);
