/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Database roles (migration 2) against a real scratch PostgreSQL, one LOGIN role per group: the owner owns
 * the schema, the dock may do what ingest needs and nothing else (no schema_migrations, no enrollment, no
 * DDL), the admin enrolls, the auditor reads and writes nothing, the viewer reads no evidence table, and a
 * role that is not the owner does not migrate: it checks the version, and says who must migrate. */
#include "check.h"
#include "common/pg.h"
#include "custody.h"
#include "db.h"
#include "hash.h"

#define T0_US INT64_C(1718000000123456)

static const char *const evidence_tables[] = {
    "device_events", "dockings", "docking_results", "chain_heads", "files", "findings", "custody_events",
};

/* A fresh database migrated by the superuser (as scripts/test and a site's first setup do). */
static int fresh_db(const char *tag, char **ret_conninfo)
{
        CHECK_OR_RET(test_pg_new_database(tag, ret_conninfo) == 0);
        EvdDb *db = NULL;
        EvdError err = {};
        int r = evd_db_open(*ret_conninfo, &db, &err);
        if (r < 0)
                printf("# evd_db_open: %s\n", evd_error_message(&err, r));
        evd_db_close(db);
        CHECK_OR_RET(r == 0);
        return 0;
}

static int open_as(const char *conninfo, const char *group, char **ret_conninfo, EvdDb **ret_db)
{
        CHECK_OR_RET(test_pg_login(conninfo, group, ret_conninfo) == 0);
        EvdError err = {};
        int r = evd_db_open(*ret_conninfo, ret_db, &err);
        if (r < 0)
                printf("# evd_db_open as %s: %s\n", group, evd_error_message(&err, r));
        CHECK_OR_RET(r == 0);
        return 0;
}

/* Runs sql as the login of conninfo; 1 if the server refused it for lack of privilege, 0 if it ran, -1
 * for any other failure (printed). */
static int refused(const char *conninfo, const char *sql)
{
        char error[512] = "";
        if (test_pg_exec(conninfo, sql, error, sizeof(error)) == 0)
                return 0;
        if (strstr(error, "permission denied") || strstr(error, "must be owner") ||
            strstr(error, "row-level security"))
                return 1;
        printf("# %s: unexpected error: %s", sql, error);
        return -1;
}

static int enroll(EvdDb *db, const char *device_id, EvdError *err)
{
        EvdDbDevice dev = {
            .device_id = (char *)device_id,
            .officer_id = (char *)"012345",
            .unit_code = (char *)"320100000000",
            .suite = EVD_SUITE_ED25519_SHA256,
            .public_key_pem = (char *)"-----BEGIN PUBLIC KEY-----\nMCow...\n-----END PUBLIC KEY-----\n",
            .key_id = (char *)"a1b2c3d4",
        };
        return evd_db_device_enroll(db, &dev, err);
}

static int64_t docking(EvdDb *db, const char *device_id, EvdError *err)
{
        EvdDbDocking d = {.device_id = device_id, .transport = "usb", .docked_us = T0_US};
        int64_t id = -1;
        int r = evd_db_docking_begin(db, &d, &id, err);
        return r < 0 ? r : id;
}

static int record_file(EvdDb *db, int64_t docking_id, const char *device_id, const char *name, EvdError *err)
{
        uint8_t sha[EVD_DIGEST_SIZE];
        evd_hash_buffer(EVD_HASH_SHA256, name, strlen(name), sha);
        char path[128];
        snprintf(path, sizeof(path), "/srv/evidock/%s/%s", device_id, name);
        EvdDbFile f = {
            .docking_id = docking_id,
            .device_id = device_id,
            .method = EVD_METHOD_VIDEO,
            .ingested_us = T0_US,
            .stored_us = T0_US,
            .size = 10,
            .sha256 = sha,
            .source_path = name,
            .original_path = path,
            .verdict = EVD_VERDICT_UNSIGNED,
            .retention_class = "standard",
        };
        EvdCustodyEntry ev = {
            .kind = EVD_CUSTODY_RECORDED, .device_id = device_id, .docking_id = docking_id};
        return evd_db_file_record(db, &f, NULL, 0, &ev, 1, NULL, err);
}

static void test_owner_owns_everything(void)
{
        _cleanup_free_ char *ci = NULL;
        CHECK(fresh_db("owner", &ci) == 0);
        CHECK_INT(test_pg_query_int(ci,
                                    "SELECT count(*) FROM pg_roles WHERE rolname IN ('evidock_owner', "
                                    "'evidock_dock', 'evidock_admin', 'evidock_auditor', 'evidock_viewer') "
                                    "AND NOT rolcanlogin"),
                  ==, 5);
        /* Every table, view, sequence and function of the schema belongs to the owner role. */
        CHECK_INT(test_pg_query_int(ci, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = "
                                        "c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN "
                                        "('r', 'v', 'S', 'p', 'm') AND pg_get_userbyid(c.relowner) <> "
                                        "'evidock_owner'"),
                  ==, 0);
        CHECK_INT(test_pg_query_int(ci, "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = "
                                        "p.pronamespace WHERE n.nspname = 'public' AND "
                                        "pg_get_userbyid(p.proowner) <> 'evidock_owner'"),
                  ==, 0);
        CHECK_INT(test_pg_query_int(ci, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND "
                                        "tablename = 'schema_migrations' AND tableowner = 'evidock_owner'"),
                  ==, 1);
}

static void test_dock(void)
{
        _cleanup_free_ char *ci = NULL, *dock_ci = NULL;
        CHECK(fresh_db("dock", &ci) == 0);
        /* the admin enrolls (as the superuser here); the dock only reads enrollment */
        {
                _cleanup_(evd_db_closep) EvdDb *su = NULL;
                CHECK_OK(evd_db_open(ci, &su, NULL));
                CHECK_OK(enroll(su, "AB12345", NULL));
        }
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        CHECK(open_as(ci, "evidock_dock", &dock_ci, &db) == 0);

        /* What ingest needs works. */
        EvdError err = {};
        int64_t d = docking(db, "AB12345", &err);
        if (d < 0)
                printf("# docking: %s\n", evd_error_message(&err, (int)d));
        CHECK_INT(d, >, 0);
        int r = record_file(db, d, "AB12345", "VIDEO/A.MP4", &err);
        if (r < 0)
                printf("# record: %s\n", evd_error_message(&err, r));
        CHECK_OK(r);
        EvdDbDockingResult res = {.files_seen = 1, .files_ingested = 1, .verdict = EVD_VERDICT_UNSIGNED};
        CHECK_OK(evd_db_docking_finish(db, d, &res, NULL));
        uint8_t rh[EVD_DIGEST_SIZE] = {1};
        EvdDbChainHead head = {.seq = 1, .session = 1};
        memcpy(head.record_hash, rh, sizeof(rh));
        CHECK_OK(evd_db_chain_head_set(db, "AB12345", d, &head, NULL));
        EvdCustodyEntry ev = {.kind = "undocked", .device_id = "AB12345", .docking_id = d};
        CHECK_OK(evd_custody_append(db, &ev, NULL, NULL));
        EvdCustodyReport rep;
        CHECK_OK(evd_custody_verify(db, &rep, NULL));
        CHECK(rep.ok);

        /* Enrollment is not the dock's: the database refuses, and the library says so as -EACCES. */
        err = (EvdError){};
        CHECK_INT(enroll(db, "CD12345", &err), ==, -EACCES);
        CHECK(strstr(err.msg, "permission denied") != NULL);
        CHECK_INT(evd_db_device_retire(db, "AB12345", "lost", NULL), ==, -EACCES);

        /* Nothing outside ingest: the schema version, DDL, the guards, other people's rows. */
        static const char *const attempts[] = {
            "INSERT INTO schema_migrations (version, name) VALUES (9999, 'forged')",
            "DELETE FROM schema_migrations",
            "UPDATE schema_migrations SET version = 1",
            "DROP TRIGGER files_append_only ON files",
            "ALTER TABLE files DISABLE TRIGGER USER",
            "ALTER TABLE custody_events DISABLE TRIGGER custody_events_append_only",
            "CREATE TABLE mine (x int)",
            "CREATE OR REPLACE FUNCTION evd_refuse_change() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RETURN NEW; END $$",
            "DELETE FROM custody_events",
            "UPDATE files SET verdict = 'INTACT'",
            "TRUNCATE custody_events",
            "INSERT INTO device_events (device_id, event, reason) VALUES ('AB12345', 'retire', 'x')",
            "DROP TABLE findings",
        };
        for (size_t i = 0; i < ELEMENTSOF(attempts); i++) {
                int rr = refused(dock_ci, attempts[i]);
                if (rr != 1)
                        printf("# the dock was not refused: %s\n", attempts[i]);
                CHECK_INT(rr, ==, 1);
        }
        CHECK_INT(test_pg_query_int(ci, "SELECT max(version) FROM schema_migrations"), ==,
                  evd_db_schema_version_known());
        CHECK_INT(test_pg_query_int(ci,
                                    "SELECT count(*) FROM pg_trigger WHERE tgname LIKE '%_append_only' AND "
                                    "tgenabled = 'O'"),
                  >=, (long long)ELEMENTSOF(evidence_tables));
}

static void test_auditor_reads_only(void)
{
        _cleanup_free_ char *ci = NULL, *aud_ci = NULL;
        CHECK(fresh_db("auditor", &ci) == 0);
        {
                _cleanup_(evd_db_closep) EvdDb *su = NULL;
                CHECK_OK(evd_db_open(ci, &su, NULL));
                CHECK_OK(enroll(su, "AB12345", NULL));
                int64_t d = docking(su, "AB12345", NULL);
                CHECK_INT(d, >, 0);
                CHECK_OK(record_file(su, d, "AB12345", "VIDEO/A.MP4", NULL));
        }
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        CHECK(open_as(ci, "evidock_auditor", &aud_ci, &db) == 0);
        for (size_t i = 0; i < ELEMENTSOF(evidence_tables); i++) {
                char sql[128];
                snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", evidence_tables[i]);
                CHECK_INT(test_pg_query_int(aud_ci, sql), >=, 0);
        }
        CHECK_INT(test_pg_query_int(aud_ci, "SELECT count(*) FROM files"), ==, 1);
        EvdCustodyReport rep;
        CHECK_OK(evd_custody_verify(db, &rep, NULL));
        CHECK(rep.ok);
        CHECK_INT(rep.head_id, >=, 1);

        CHECK_INT(docking(db, "AB12345", NULL), ==, -EACCES);
        EvdCustodyEntry ev = {.kind = "forged"};
        CHECK_INT(evd_custody_append(db, &ev, NULL, NULL), ==, -EACCES);
        CHECK_INT(refused(aud_ci, "INSERT INTO schema_migrations (version, name) VALUES (9999, 'x')"), ==,
                  1);
        CHECK_INT(refused(aud_ci, "CREATE TABLE mine (x int)"), ==, 1);
}

static void test_admin(void)
{
        _cleanup_free_ char *ci = NULL, *adm_ci = NULL;
        CHECK(fresh_db("admin", &ci) == 0);
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        CHECK(open_as(ci, "evidock_admin", &adm_ci, &db) == 0);
        CHECK_OK(enroll(db, "AB12345", NULL));
        CHECK_OK(evd_db_device_retire(db, "AB12345", "lost", NULL));
        CHECK_INT(refused(adm_ci, "INSERT INTO schema_migrations (version, name) VALUES (9999, 'x')"), ==,
                  1);
        CHECK_INT(refused(adm_ci, "ALTER TABLE files DISABLE TRIGGER USER"), ==, 1);
        CHECK_INT(refused(adm_ci, "DELETE FROM device_events"), ==, 1);
}

static void test_viewer_sees_no_evidence_table(void)
{
        _cleanup_free_ char *ci = NULL, *v_ci = NULL;
        CHECK(fresh_db("viewer", &ci) == 0);
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        CHECK(open_as(ci, "evidock_viewer", &v_ci, &db) == 0); /* the version check is allowed */
        /* device_events, chain_heads, docking_results: nothing a viewer needs; files and the rest only
         * through the access rules (migration 8). */
        static const char *const hidden[] = {"device_events", "chain_heads", "docking_results",
                                             "devices_enrolled"};
        for (size_t i = 0; i < ELEMENTSOF(hidden); i++) {
                char sql[128];
                snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", hidden[i]);
                CHECK_INT(refused(v_ci, sql), ==, 1);
        }
}

/* A role that is not the owner never migrates: with the schema behind, it is refused with a message
 * naming the role and the owner role, and nothing is applied. */
static void test_non_owner_does_not_migrate(void)
{
        _cleanup_free_ char *ci = NULL, *dock_ci = NULL;
        CHECK(fresh_db("behind", &ci) == 0);
        /* pretend the last migration is still to come */
        int known = evd_db_schema_version_known();
        char sql[128];
        snprintf(sql, sizeof(sql), "DELETE FROM schema_migrations WHERE version = %d", known);
        CHECK(test_pg_exec(ci, sql, NULL, 0) == 0);
        long long before = test_pg_query_int(ci, "SELECT max(version) FROM schema_migrations");
        CHECK_INT(before, <, known); /* migration numbers may have gaps */
        CHECK(test_pg_login(ci, "evidock_dock", &dock_ci) == 0);
        EvdDb *db = NULL;
        EvdError err = {};
        CHECK_INT(evd_db_open(dock_ci, &db, &err), ==, -EACCES);
        printf("# %s\n", err.msg);
        CHECK(strstr(err.msg, "evidock_owner") != NULL);
        CHECK(strstr(err.msg, "evt_evidock_dock_") != NULL);
        CHECK_INT(test_pg_query_int(ci, "SELECT max(version) FROM schema_migrations"), ==, before);
}

/* The documented set-up: the database belongs to evidock_owner and a migrating LOGIN role that is a member
 * of it (not a superuser) applies every migration; the objects end up owned by evidock_owner. */
static void test_owner_login_migrates(void)
{
        _cleanup_free_ char *ci = NULL, *own_ci = NULL;
        CHECK(test_pg_new_database("ownerlogin", &ci) == 0);
        CHECK(test_pg_login(ci, "evidock_owner", &own_ci) == 0);
        char error[512] = "";
        int r = test_pg_exec(ci,
                             "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I OWNER TO evidock_owner', "
                             "current_database()); END $$",
                             error, sizeof(error));
        if (r < 0)
                printf("# %s", error);
        CHECK_INT(r, ==, 0);
        EvdDb *db = NULL;
        EvdError err = {};
        r = evd_db_open(own_ci, &db, &err);
        if (r < 0)
                printf("# evd_db_open as owner login: %s\n", evd_error_message(&err, r));
        evd_db_close(db);
        CHECK_OK(r);
        CHECK_INT(test_pg_query_int(ci, "SELECT max(version) FROM schema_migrations"), ==,
                  evd_db_schema_version_known());
        CHECK_INT(test_pg_query_int(ci,
                                    "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = "
                                    "c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN "
                                    "('r', 'v', 'S') AND pg_get_userbyid(c.relowner) <> 'evidock_owner'"),
                  ==, 0);
        /* and the dock works on it */
        _cleanup_free_ char *dock_ci = NULL;
        _cleanup_(evd_db_closep) EvdDb *dock = NULL;
        CHECK(open_as(ci, "evidock_dock", &dock_ci, &dock) == 0);
        EvdCustodyEntry ev = {.kind = "undocked"};
        CHECK_OK(evd_custody_append(dock, &ev, NULL, NULL));
}

int main(void)
{
        RUN(test_owner_owns_everything);
        RUN(test_dock);
        RUN(test_auditor_reads_only);
        RUN(test_admin);
        RUN(test_viewer_sees_no_evidence_table);
        RUN(test_non_owner_does_not_migrate);
        RUN(test_owner_login_migrates);
        return check_finish();
}
