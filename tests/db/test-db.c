/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lib/db against a real scratch PostgreSQL: migrations, the append-only guard, devices, dockings, files,
 * queries, and the error for a dead server. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "common/pg.h"
#include "custody.h"
#include "db.h"
#include "hash.h"

#define T0_US   INT64_C(1718000000123456) /* 2024-06-10 06:13:20.123456 UTC: a fixed, exact time */
#define HOUR_US INT64_C(3600000000)

static int fresh_db(const char *tag, char **ret_conninfo, EvdDb **ret_db)
{
        CHECK_OR_RET(test_pg_new_database(tag, ret_conninfo) == 0);
        EvdError err = {};
        int r = evd_db_open(*ret_conninfo, ret_db, &err);
        if (r < 0)
                printf("# evd_db_open: %s\n", evd_error_message(&err, r));
        CHECK_OR_RET(r == 0);
        return 0;
}

static void digest_of(const char *s, uint8_t out[EVD_DIGEST_SIZE])
{
        evd_hash_buffer(EVD_HASH_SHA256, s, strlen(s), out);
}

static int enroll(EvdDb *db, const char *device_id, const char *officer)
{
        EvdDbDevice dev = {
            .device_id = (char *)device_id,
            .officer_id = (char *)officer,
            .unit_code = (char *)"320100000000",
            .suite = EVD_SUITE_ED25519_SHA256,
            .public_key_pem = (char *)"-----BEGIN PUBLIC KEY-----\nMCow...\n-----END PUBLIC KEY-----\n",
            .key_id = (char *)"a1b2c3d4",
        };
        return evd_db_device_enroll(db, &dev, NULL);
}

static int64_t docking(EvdDb *db, const char *device_id, int64_t at_us)
{
        EvdDbDocking d = {
            .device_id = device_id,
            .transport = "usb",
            .location = "1-2.3",
            .has_clock_offset = true,
            .clock_offset_us = -1500000,
            .docked_us = at_us,
        };
        int64_t id = -1;
        if (evd_db_docking_begin(db, &d, &id, NULL) < 0)
                return -1;
        return id;
}

/* A chained file; the digests are derived from name so that each name is a distinct file. */
typedef struct FileFixture {
        uint8_t sha256[EVD_DIGEST_SIZE];
        uint8_t record_hash[EVD_DIGEST_SIZE];
        uint8_t archive_sha256[EVD_DIGEST_SIZE];
        char original_path[128];
        EvdDbFile file;
} FileFixture;

static void file_fixture(FileFixture *fx, int64_t docking_id, const char *device_id, uint64_t seq,
                         const char *name, int64_t ingested_us)
{
        char buf[160];
        snprintf(buf, sizeof(buf), "content %s", name);
        digest_of(buf, fx->sha256);
        snprintf(buf, sizeof(buf), "record %s", name);
        digest_of(buf, fx->record_hash);
        snprintf(buf, sizeof(buf), "archive %s", name);
        digest_of(buf, fx->archive_sha256);
        snprintf(fx->original_path, sizeof(fx->original_path), "/srv/evidock/%s/%s", device_id, name);
        fx->file = (EvdDbFile){
            .docking_id = docking_id,
            .device_id = device_id,
            .officer_id = "012345",
            .has_seq = true,
            .seq = seq,
            .session = 7,
            .method = EVD_METHOD_VIDEO,
            .case_number = "2024-刑-0042",
            .has_recorded = true,
            .recorded_start_us = T0_US - 2 * HOUR_US,
            .recorded_end_us = T0_US - HOUR_US,
            .tz_minutes = 480,
            .has_clock_offset = true,
            .clock_offset_us = -1500000,
            .ingested_us = ingested_us,
            .stored_us = ingested_us + 1000,
            .within_24h = true,
            .size = 608 * 1024 * 1024,
            .sha256 = fx->sha256,
            .record_hash = fx->record_hash,
            .chain_record = "SEG;v=1;...",
            .source_path = name,
            .original_path = fx->original_path,
            .archive_path = "/srv/evidock/archive/x.mkv",
            .archive_sha256 = fx->archive_sha256,
            .archive_format = "matroska",
            .verdict = EVD_VERDICT_INTACT,
            .retention_class = "standard",
        };
}

static void test_migrations(void)
{
        _cleanup_free_ char *ci = NULL;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        CHECK(fresh_db("migrations", &ci, &db) == 0);
        int version = -1;
        CHECK_OK(evd_db_schema_version(db, &version, NULL));
        CHECK_INT(version, ==, evd_db_schema_version_known());
        CHECK_INT(version, >=, 1);
        long long n = test_pg_query_int(ci, "SELECT max(version) FROM schema_migrations");
        CHECK_INT(n, ==, evd_db_schema_version_known());
        long long tables = test_pg_query_int(
            ci, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename IN ("
                "'device_events','dockings','docking_results','chain_heads','files','findings',"
                "'custody_events')");
        CHECK_INT(tables, ==, 7);
        db = evd_db_close(db);

        /* A second open applies nothing and fails nothing. */
        CHECK_OK(evd_db_open(ci, &db, NULL));
        CHECK_INT(test_pg_query_int(ci, "SELECT max(version) FROM schema_migrations"), ==, n);
}

/* Several processes start at once on an empty database: the advisory lock makes that safe. */
static void *open_in_thread(void *arg)
{
        EvdDb *db = NULL;
        EvdError err = {};
        intptr_t r = evd_db_open(arg, &db, &err);
        if (r < 0)
                printf("# concurrent open: %s\n", evd_error_message(&err, (int)r));
        evd_db_close(db);
        return (void *)r;
}

static void test_migrations_concurrent(void)
{
        _cleanup_free_ char *ci = NULL;
        CHECK(test_pg_new_database("migconc", &ci) == 0);
        pthread_t t[4];
        for (unsigned i = 0; i < ELEMENTSOF(t); i++)
                CHECK(pthread_create(&t[i], NULL, open_in_thread, ci) == 0);
        int failed = 0;
        for (unsigned i = 0; i < ELEMENTSOF(t); i++) {
                void *ret;
                pthread_join(t[i], &ret);
                failed += ret != NULL;
        }
        CHECK_INT(failed, ==, 0);
        CHECK_INT(test_pg_query_int(ci, "SELECT max(version) FROM schema_migrations"), ==,
                  evd_db_schema_version_known());
}

/* A migration numbered below the highest applied one, but not applied itself (it landed after a
 * higher-numbered one), is applied at the next open: not skipped because its number is lower. */
static void test_migration_gap_filled(void)
{
        _cleanup_free_ char *ci = NULL;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        CHECK(fresh_db("gap", &ci, &db) == 0);
        db = evd_db_close(db);
        long long top = test_pg_query_int(ci, "SELECT max(version) FROM schema_migrations");
        CHECK_INT(top, >, 7);
        /* as if migration 7 (the report indexes) were new to this database */
        CHECK(test_pg_exec(ci,
                           "DROP INDEX files_report_time, dockings_docked_at, dockings_device_docked, "
                           "files_ingested_size; DELETE FROM schema_migrations WHERE version = 7",
                           NULL, 0) == 0);
        CHECK_OK(evd_db_open(ci, &db, NULL));
        CHECK_INT(test_pg_query_int(ci, "SELECT count(*) FROM schema_migrations WHERE version = 7"), ==, 1);
        CHECK_INT(test_pg_query_int(ci, "SELECT count(*) FROM pg_indexes WHERE indexname IN "
                                        "('files_report_time', 'dockings_docked_at', "
                                        "'dockings_device_docked', 'files_ingested_size')"),
                  ==, 4);
        CHECK_INT(test_pg_query_int(ci, "SELECT max(version) FROM schema_migrations"), ==, top);
}

static void test_schema_newer_refused(void)
{
        _cleanup_free_ char *ci = NULL;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        CHECK(fresh_db("newer", &ci, &db) == 0);
        db = evd_db_close(db);
        CHECK(test_pg_exec(ci, "INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')", NULL,
                           0) == 0);
        EvdError err = {};
        CHECK_INT(evd_db_open(ci, &db, &err), ==, -EPROTO);
        CHECK(strstr(err.msg, "9999") != NULL);
}

static void test_append_only(void)
{
        _cleanup_free_ char *ci = NULL;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        CHECK(fresh_db("appendonly", &ci, &db) == 0);
        CHECK_OK(enroll(db, "AB12345", "012345"));
        int64_t dock = docking(db, "AB12345", T0_US);
        CHECK_INT(dock, >, 0);
        FileFixture fx;
        file_fixture(&fx, dock, "AB12345", 1, "VIDEO/A.MP4", T0_US);
        EvdFinding finding = {.verdict = EVD_VERDICT_TIME_GAP, .seq = EVD_FINDING_NO_SEQ, .detail = "5 s"};
        EvdCustodyEntry ev = {.kind = EVD_CUSTODY_RECORDED};
        CHECK_OK(evd_db_file_record(db, &fx.file, &finding, 1, &ev, 1, NULL, NULL));

        static const char *const attempts[] = {
            "UPDATE files SET verdict = 'INTACT'",
            "DELETE FROM files",
            "TRUNCATE files CASCADE",
            "UPDATE findings SET detail = 'nothing'",
            "DELETE FROM findings",
            "UPDATE device_events SET officer_id = '999999'",
            "DELETE FROM device_events",
            "DELETE FROM dockings",
            "UPDATE custody_events SET detail = 'x'",
            "DELETE FROM custody_events",
            "TRUNCATE custody_events",
        };
        for (unsigned i = 0; i < ELEMENTSOF(attempts); i++) {
                char msg[512] = "";
                int r = test_pg_exec(ci, attempts[i], msg, sizeof(msg));
                if (r == 0 || !strstr(msg, "append-only"))
                        printf("# %s: r=%d msg=%s\n", attempts[i], r, msg);
                CHECK_INT(r, <, 0);
                CHECK(strstr(msg, "append-only") != NULL);
        }
        CHECK_INT(test_pg_query_int(ci, "SELECT count(*) FROM files WHERE verdict = 'INTACT'"), ==, 1);
        CHECK_INT(test_pg_query_int(ci, "SELECT count(*) FROM findings"), ==, 1);
        CHECK_INT(test_pg_query_int(ci, "SELECT count(*) FROM custody_events"), ==, 1);
}

static void test_devices(void)
{
        _cleanup_free_ char *ci = NULL;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        CHECK(fresh_db("devices", &ci, &db) == 0);

        EvdError err = {};
        _cleanup_(evd_db_device_freep) EvdDbDevice *dev = NULL;
        CHECK_INT(evd_db_device_get(db, "AB12345", &dev, &err), ==, -ENOENT);
        CHECK(strstr(err.msg, "AB12345") != NULL);

        CHECK_OK(enroll(db, "AB12345", "012345"));
        CHECK_OK(enroll(db, "ZZ00001", "543210"));
        CHECK_INT(enroll(db, "AB12345", "111111"), ==, -EEXIST);
        CHECK_INT(enroll(db, "AB1234/", "111111"), ==, -EINVAL); /* not alphanumeric */
        /* the documented rule (docs/architecture.md, "Identify"): 1 to 15 ASCII letters or digits */
        CHECK_INT(enroll(db, "", "111111"), ==, -EINVAL);
        CHECK_INT(enroll(db, "ABCDEFGHIJ123456", "111111"), ==, -EINVAL); /* 16 */
        CHECK_INT(enroll(db, "AB\xc3\xa9", "111111"), ==, -EINVAL);       /* not ASCII */
        CHECK_OK(enroll(db, "AB123", "111111"));                          /* 5: was refused */
        CHECK_OK(enroll(db, "ABCDEFGHIJ12345", "111111"));                /* 15 */
        /* the database says the same, also to a writer that bypasses the library */
        char why[256] = "";
        CHECK_INT(test_pg_exec(ci,
                               "INSERT INTO device_events (device_id, event, reason) "
                               "VALUES ('ABCDEFGHIJ123456', 'retire', 'x')",
                               why, sizeof(why)),
                  ==, -EIO);
        CHECK(strstr(why, "device_events_device_id_check") != NULL);
        CHECK_OK(evd_db_device_retire(db, "AB123", NULL, NULL));
        CHECK_OK(evd_db_device_retire(db, "ABCDEFGHIJ12345", NULL, NULL));

        CHECK_OK(evd_db_device_get(db, "AB12345", &dev, NULL));
        CHECK_STREQ(dev->device_id, "AB12345");
        CHECK_STREQ(dev->officer_id, "012345");
        CHECK_STREQ(dev->unit_code, "320100000000");
        CHECK_INT(dev->suite, ==, EVD_SUITE_ED25519_SHA256);
        CHECK(strstr(dev->public_key_pem, "BEGIN PUBLIC KEY") != NULL);
        CHECK_STREQ(dev->key_id, "a1b2c3d4");
        CHECK_INT(dev->enrolled_us, >, 0);

        EvdDbDevice *list = NULL;
        size_t n = 0;
        CHECK_OK(evd_db_device_list(db, &list, &n, NULL));
        CHECK_INT(n, ==, 2);
        CHECK_STREQ(list[0].device_id, "AB12345");
        CHECK_STREQ(list[1].device_id, "ZZ00001");
        evd_db_device_array_free(list, n);

        /* Retired counts as not enrolled; the history stays. */
        CHECK_OK(evd_db_device_retire(db, "AB12345", "lost", NULL));
        evd_db_device_free(steal_ptr(&dev));
        CHECK_INT(evd_db_device_get(db, "AB12345", &dev, NULL), ==, -ENOENT);
        CHECK_INT(evd_db_device_retire(db, "AB12345", NULL, NULL), ==, -ENOENT);
        CHECK_OK(evd_db_device_list(db, &list, &n, NULL));
        CHECK_INT(n, ==, 1);
        CHECK_STREQ(list[0].device_id, "ZZ00001");
        evd_db_device_array_free(list, n);
        CHECK_INT(test_pg_query_int(ci, "SELECT count(*) FROM device_events WHERE device_id = 'AB12345'"),
                  ==, 2);

        /* Re-enrolled with a new officer: the latest row wins. */
        CHECK_OK(enroll(db, "AB12345", "222222"));
        CHECK_OK(evd_db_device_get(db, "AB12345", &dev, NULL));
        CHECK_STREQ(dev->officer_id, "222222");
}

static void test_dockings_and_heads(void)
{
        _cleanup_free_ char *ci = NULL;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        CHECK(fresh_db("dockings", &ci, &db) == 0);
        CHECK_OK(enroll(db, "AB12345", "012345"));

        /* A refused docking has no device. */
        EvdDbDocking refused = {
            .identity = "USB 1234:5678 serial QQ99999", .transport = "usb", .docked_us = T0_US};
        int64_t refused_id = 0;
        CHECK_OK(evd_db_docking_begin(db, &refused, &refused_id, NULL));
        CHECK_INT(refused_id, >, 0);

        int64_t d1 = docking(db, "AB12345", T0_US + 1);
        CHECK_INT(d1, >, 0);
        EvdDbChainHead head;
        CHECK_INT(evd_db_chain_head_get(db, "AB12345", &head, NULL), ==, -ENOENT);

        EvdDbChainHead h1 = {.seq = 10, .session = 3, .has_end = true, .end_us = T0_US - HOUR_US};
        digest_of("head 10", h1.record_hash);
        CHECK_OK(evd_db_chain_head_set(db, "AB12345", d1, &h1, NULL));
        EvdDbDockingResult res = {.files_seen = 3,
                                  .files_ingested = 2,
                                  .files_already = 1,
                                  .verdict = EVD_VERDICT_INTACT,
                                  .summary = "ok",
                                  .finished_us = T0_US + 5};
        CHECK_OK(evd_db_docking_finish(db, d1, &res, NULL));
        CHECK_INT(evd_db_docking_finish(db, d1, &res, NULL), ==, -EEXIST);
        CHECK_INT(evd_db_docking_finish(db, 999999, &res, NULL), ==, -ENOENT);

        int64_t d2 = docking(db, "AB12345", T0_US + HOUR_US);
        EvdDbChainHead h2 = {.seq = 15, .session = 4};
        digest_of("head 15", h2.record_hash);
        CHECK_OK(evd_db_chain_head_set(db, "AB12345", d2, &h2, NULL));
        CHECK_INT(evd_db_chain_head_set(db, "AB12345", 999999, &h2, NULL), ==, -ENOENT);

        CHECK_OK(evd_db_chain_head_get(db, "AB12345", &head, NULL));
        CHECK_INT(head.seq, ==, 15);
        CHECK_INT(head.session, ==, 4);
        CHECK(!head.has_end);
        CHECK_INT(head.docking_id, ==, d2);
        CHECK(memcmp(head.record_hash, h2.record_hash, EVD_DIGEST_SIZE) == 0);

        EvdFinding gap = {.verdict = EVD_VERDICT_SEGMENT_GAP,
                          .seq = 12,
                          .expected = "12",
                          .found = "13",
                          .detail = "segment 12 missing"};
        CHECK_OK(evd_db_docking_finding_add(db, d2, &gap, NULL));

        _cleanup_(evd_db_chain_view_freep) EvdDbChainView *view = NULL;
        CHECK_OK(evd_db_chain_view(db, "AB12345", &view, NULL));
        CHECK_INT(view->n_heads, ==, 2);
        CHECK_INT(view->heads[0].seq, ==, 10);
        CHECK(view->heads[0].has_end);
        CHECK_INT(view->heads[0].end_us, ==, T0_US - HOUR_US);
        CHECK_INT(view->heads[1].seq, ==, 15);
        CHECK_INT(view->n_docking_findings, ==, 1);
        CHECK_STREQ(view->docking_findings[0].verdict, "SEGMENT_GAP");
        CHECK(view->docking_findings[0].has_seq);
        CHECK_INT(view->docking_findings[0].seq, ==, 12);
        CHECK_INT(view->docking_findings[0].file_id, ==, 0);
        CHECK_STREQ(view->docking_findings[0].found, "13");
        CHECK_INT(view->n_files, ==, 0);
}

static void test_file_record(void)
{
        _cleanup_free_ char *ci = NULL;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        CHECK(fresh_db("filerecord", &ci, &db) == 0);
        CHECK_OK(enroll(db, "AB12345", "012345"));
        int64_t dock = docking(db, "AB12345", T0_US);

        FileFixture fx;
        file_fixture(&fx, dock, "AB12345", 4, "VIDEO/20240610_0001.MP4", T0_US);
        CHECK_INT(evd_db_file_find_chained(db, "AB12345", fx.record_hash, NULL, NULL), ==, 0);

        EvdFinding findings[] = {
            {.verdict = EVD_VERDICT_TIME_GAP, .seq = 4, .expected = "0 s", .found = "12 s"},
            {.verdict = EVD_VERDICT_CLOCK_ANOMALY, .seq = EVD_FINDING_NO_SEQ, .detail = "offset -1.5 s"},
        };
        EvdCustodyEntry events[] = {
            {.kind = EVD_CUSTODY_COPIED, .detail = "608 MiB"},
            {.kind = EVD_CUSTODY_VERIFIED},
            {.kind = EVD_CUSTODY_ARCHIVED},
            {.kind = EVD_CUSTODY_RECORDED},
        };
        int64_t file_id = 0;
        CHECK_OK(evd_db_file_record(db, &fx.file, findings, ELEMENTSOF(findings), events, ELEMENTSOF(events),
                                    &file_id, NULL));
        CHECK_INT(file_id, >, 0);
        CHECK_INT(test_pg_query_int(ci, "SELECT count(*) FROM findings WHERE file_id IS NOT NULL"), ==, 2);
        char sql[200];
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM custody_events WHERE file_id = %lld AND docking_id = %lld "
                 "AND device_id = 'AB12345'",
                 (long long)file_id, (long long)dock);
        CHECK_INT(test_pg_query_int(ci, sql), ==, 4);

        int64_t found_id = 0;
        CHECK_INT(evd_db_file_find_chained(db, "AB12345", fx.record_hash, &found_id, NULL), ==, 1);
        CHECK_INT(found_id, ==, file_id);
        CHECK_INT(evd_db_file_find_chained(db, "ZZ00001", fx.record_hash, NULL, NULL), ==, 0);

        /* Times round-trip exactly, to the microsecond. */
        CHECK_INT(
            test_pg_query_int(ci, "SELECT (extract(epoch from ingested_at) * 1000000)::bigint FROM files"),
            ==, T0_US);

        /* A mid-way failure (the third custody event has a kind the database refuses, after the file row
         * and its findings were inserted) leaves nothing behind. */
        FileFixture fx2;
        file_fixture(&fx2, dock, "AB12345", 5, "VIDEO/20240610_0002.MP4", T0_US + 1);
        EvdCustodyEntry bad_events[] = {
            {.kind = EVD_CUSTODY_COPIED},
            {.kind = EVD_CUSTODY_VERIFIED},
            {.kind = "Not A Kind!"},
        };
        EvdError err = {};
        int r = evd_db_file_record(db, &fx2.file, findings, ELEMENTSOF(findings), bad_events,
                                   ELEMENTSOF(bad_events), NULL, &err);
        CHECK_INT(r, ==, -EINVAL);
        CHECK(strstr(err.msg, "custody") != NULL);
        CHECK_INT(test_pg_query_int(ci, "SELECT count(*) FROM files"), ==, 1);
        CHECK_INT(test_pg_query_int(ci, "SELECT count(*) FROM findings"), ==, 2);
        CHECK_INT(test_pg_query_int(ci, "SELECT count(*) FROM custody_events"), ==, 4);
        CHECK_INT(evd_db_file_find_chained(db, "AB12345", fx2.record_hash, NULL, NULL), ==, 0);

        /* The connection is usable afterwards and the same file records fine. */
        CHECK_OK(evd_db_file_record(db, &fx2.file, NULL, 0, events, 1, NULL, NULL));
        CHECK_INT(test_pg_query_int(ci, "SELECT count(*) FROM files"), ==, 2);
        EvdCustodyReport report;
        CHECK_OK(evd_custody_verify(db, &report, NULL));
        CHECK(report.ok);
        CHECK_INT(report.n_events, ==, 5);
}

static void test_file_duplicate(void)
{
        _cleanup_free_ char *ci = NULL;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        CHECK(fresh_db("duplicate", &ci, &db) == 0);
        CHECK_OK(enroll(db, "AB12345", "012345"));
        int64_t dock = docking(db, "AB12345", T0_US);

        FileFixture fx;
        file_fixture(&fx, dock, "AB12345", 1, "VIDEO/A.MP4", T0_US);
        EvdFinding f = {.verdict = EVD_VERDICT_TIME_GAP, .seq = EVD_FINDING_NO_SEQ};
        EvdCustodyEntry ev = {.kind = EVD_CUSTODY_RECORDED};
        CHECK_OK(evd_db_file_record(db, &fx.file, &f, 1, &ev, 1, NULL, NULL));

        /* The same record again (another docking, another stored path): refused, nothing written. */
        int64_t dock2 = docking(db, "AB12345", T0_US + HOUR_US);
        fx.file.docking_id = dock2;
        fx.file.original_path = "/srv/evidock/elsewhere.MP4";
        EvdError err = {};
        CHECK_INT(evd_db_file_record(db, &fx.file, &f, 1, &ev, 1, NULL, &err), ==, -EEXIST);
        CHECK(strstr(err.msg, "already ingested") != NULL);
        CHECK_INT(test_pg_query_int(ci, "SELECT count(*) FROM files"), ==, 1);
        CHECK_INT(test_pg_query_int(ci, "SELECT count(*) FROM findings"), ==, 1);
        CHECK_INT(test_pg_query_int(ci, "SELECT count(*) FROM custody_events"), ==, 1);

        /* Inside the caller's transaction: the savepoint rolls back only the duplicate. */
        CHECK_OK(evd_db_begin(db, NULL));
        CHECK_INT(evd_db_file_record(db, &fx.file, &f, 1, &ev, 1, NULL, NULL), ==, -EEXIST);
        EvdCustodyEntry note = {.kind = "skipped", .detail = "already ingested"};
        CHECK_OK(evd_custody_append(db, &note, NULL, NULL));
        CHECK_OK(evd_db_commit(db, NULL));
        CHECK_INT(test_pg_query_int(ci, "SELECT count(*) FROM custody_events"), ==, 2);

        /* Foreign files (no record hash): known by source path (raw bytes) and content. */
        FileFixture ff;
        file_fixture(&ff, dock, "AB12345", 0, "foreign", T0_US);
        static const char raw_path[] = "DCIM/\xc3\x28\xff-not-utf8.MP4";
        ff.file.has_seq = false;
        ff.file.record_hash = NULL;
        ff.file.chain_record = NULL;
        ff.file.source_path = raw_path;
        ff.file.verdict = EVD_VERDICT_SEGMENT_INSERTED;
        CHECK_INT(evd_db_file_find_foreign(db, "AB12345", raw_path, ff.sha256, NULL, NULL), ==, 0);
        int64_t fid = 0, found = 0;
        CHECK_OK(evd_db_file_record(db, &ff.file, NULL, 0, NULL, 0, &fid, NULL));
        CHECK_INT(evd_db_file_find_foreign(db, "AB12345", raw_path, ff.sha256, &found, NULL), ==, 1);
        CHECK_INT(found, ==, fid);
        CHECK_INT(evd_db_file_record(db, &ff.file, NULL, 0, NULL, 0, NULL, NULL), ==, -EEXIST);
        CHECK_INT(test_pg_query_int(ci, "SELECT count(*) FROM files WHERE record_hash IS NULL"), ==, 1);
        CHECK_INT(test_pg_query_int(ci, "SELECT length(source_path) FROM files WHERE record_hash IS NULL"),
                  ==, strlen(raw_path));
        /* Same path, different content: a different file. */
        uint8_t other[EVD_DIGEST_SIZE];
        digest_of("other content", other);
        ff.file.sha256 = other;
        CHECK_OK(evd_db_file_record(db, &ff.file, NULL, 0, NULL, 0, NULL, NULL));
        CHECK_INT(test_pg_query_int(ci, "SELECT count(*) FROM files WHERE record_hash IS NULL"), ==, 2);
}

static void test_log_query(void)
{
        _cleanup_free_ char *ci = NULL;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        CHECK(fresh_db("log", &ci, &db) == 0);
        CHECK_OK(enroll(db, "AB12345", "012345"));
        CHECK_OK(enroll(db, "CD67890", "543210"));
        int64_t da = docking(db, "AB12345", T0_US), dc = docking(db, "CD67890", T0_US);

        /* A: files at T0, T0+1h, T0+2h; C: one at T0+1h. Findings on A's second file. */
        static const char *const names[] = {"A0.MP4", "A1.MP4", "A2.MP4"};
        FileFixture fx;
        for (unsigned i = 0; i < 3; i++) {
                file_fixture(&fx, da, "AB12345", i + 1, names[i], T0_US + (int64_t)i * HOUR_US);
                EvdFinding f[] = {
                    {.verdict = EVD_VERDICT_TIME_GAP, .seq = EVD_FINDING_NO_SEQ, .detail = "gap"},
                    {.verdict = EVD_VERDICT_TIME_OVERLAP, .seq = EVD_FINDING_NO_SEQ, .detail = "overlap"}};
                if (i == 1)
                        fx.file.verdict = EVD_VERDICT_TIME_OVERLAP;
                CHECK_OK(evd_db_file_record(db, &fx.file, f, i == 1 ? 2 : 0, NULL, 0, NULL, NULL));
        }
        file_fixture(&fx, dc, "CD67890", 1, "C0.MP4", T0_US + HOUR_US);
        fx.file.archive_path = NULL;
        fx.file.archive_sha256 = NULL;
        fx.file.within_24h = false;
        CHECK_OK(evd_db_file_record(db, &fx.file, NULL, 0, NULL, 0, NULL, NULL));

        _cleanup_(evd_db_log_freep) EvdDbLog *log = NULL;
        CHECK_OK(evd_db_log_query(db, NULL, &log, NULL));
        CHECK_INT(log->n_files, ==, 4);
        CHECK(!log->truncated);

        log = evd_db_log_free(log);
        EvdDbLogFilter by_device = {.device_id = "AB12345"};
        CHECK_OK(evd_db_log_query(db, &by_device, &log, NULL));
        CHECK_INT(log->n_files, ==, 3);
        CHECK_INT(log->files[0].seq, ==, 1);
        CHECK_INT(log->files[1].n_findings, ==, 2);
        CHECK_STREQ(log->files[1].findings[0].verdict, "TIME_GAP");
        CHECK_STREQ(log->files[1].findings[1].verdict, "TIME_OVERLAP");
        CHECK_STREQ(log->files[1].verdict, "TIME_OVERLAP");
        CHECK_INT(log->files[0].n_findings, ==, 0);
        CHECK_INT(log->files[2].n_findings, ==, 0);

        const EvdDbFileRow *row = &log->files[0];
        FileFixture expect;
        file_fixture(&expect, da, "AB12345", 1, "A0.MP4", T0_US);
        char hex[EVD_DB_HEX_SIZE];
        CHECK_STREQ(row->device_id, "AB12345");
        CHECK_STREQ(row->officer_id, "012345");
        CHECK_STREQ(row->method, "video");
        CHECK_STREQ(row->case_number, "2024-刑-0042");
        CHECK(row->has_recorded);
        CHECK_INT(row->recorded_start_us, ==, T0_US - 2 * HOUR_US);
        CHECK_INT(row->recorded_end_us, ==, T0_US - HOUR_US);
        CHECK_INT(row->tz_minutes, ==, 480);
        CHECK_INT(row->ingested_us, ==, T0_US);
        CHECK(row->within_24h);
        CHECK_INT(row->size, ==, 608 * 1024 * 1024);
        CHECK_STREQ(row->sha256, evd_hex(expect.sha256, EVD_DIGEST_SIZE, hex));
        CHECK_STREQ(row->record_hash, evd_hex(expect.record_hash, EVD_DIGEST_SIZE, hex));
        CHECK_STREQ(row->archive_sha256, evd_hex(expect.archive_sha256, EVD_DIGEST_SIZE, hex));
        CHECK_STREQ(row->original_path, expect.original_path);
        CHECK_STREQ(row->archive_path, "/srv/evidock/archive/x.mkv");
        CHECK_STREQ(row->confidentiality, "normal");
        CHECK_STREQ(row->retention_class, "standard");

        log = evd_db_log_free(log);
        EvdDbLogFilter since = {.has_since = true, .since_us = T0_US + HOUR_US};
        CHECK_OK(evd_db_log_query(db, &since, &log, NULL));
        CHECK_INT(log->n_files, ==, 3); /* A1, C0 (both T0+1h), A2 */
        CHECK_INT(log->files[2].ingested_us, ==, T0_US + 2 * HOUR_US);
        bool saw_c = false;
        for (size_t i = 0; i < log->n_files; i++)
                if (strcmp(log->files[i].device_id, "CD67890") == 0) {
                        saw_c = true;
                        CHECK(log->files[i].archive_path == NULL);
                        CHECK_STREQ(log->files[i].archive_sha256, "");
                        CHECK(!log->files[i].within_24h);
                }
        CHECK(saw_c);

        log = evd_db_log_free(log);
        EvdDbLogFilter both = {
            .has_since = true, .since_us = T0_US + 1, .device_id = "AB12345", .max_rows = 1};
        CHECK_OK(evd_db_log_query(db, &both, &log, NULL));
        CHECK_INT(log->n_files, ==, 1);
        CHECK(log->truncated);
        CHECK_INT(log->files[0].seq, ==, 2);

        log = evd_db_log_free(log);
        EvdDbLogFilter none = {.device_id = "EF00000"};
        CHECK_OK(evd_db_log_query(db, &none, &log, NULL));
        CHECK_INT(log->n_files, ==, 0);

        /* The chain view orders by seq. */
        _cleanup_(evd_db_chain_view_freep) EvdDbChainView *view = NULL;
        CHECK_OK(evd_db_chain_view(db, "AB12345", &view, NULL));
        CHECK_INT(view->n_files, ==, 3);
        for (size_t i = 0; i < view->n_files; i++)
                CHECK_INT(view->files[i].seq, ==, i + 1);
        CHECK_INT(view->files[1].n_findings, ==, 2);
}

static void test_dead_socket(void)
{
        char dir[] = "/tmp/evidock-dead-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        char ci[128];
        snprintf(ci, sizeof(ci), "host=%s port=5432 user=postgres dbname=postgres connect_timeout=5", dir);
        EvdDb *db = NULL;
        EvdError err = {};
        int r = evd_db_open(ci, &db, &err);
        rmdir(dir);
        printf("# dead socket: %s\n", err.msg);
        CHECK_INT(r, ==, -ECONNREFUSED);
        CHECK(db == NULL);
        CHECK(strstr(err.msg, dir) != NULL);
        CHECK(strstr(err.msg, "connecting to PostgreSQL") != NULL);
        CHECK(strchr(err.msg, '\n') == NULL);
}

/* A login the server refuses (no such role, no such database) is -EACCES, named as such, not an outage. */
static void test_login_refused(void)
{
        _cleanup_free_ char *ci = NULL;
        CHECK_OK(test_pg_new_database("refused", &ci));
        char bad[1024];
        const char *what[] = {"user=evt_no_such_role", "dbname=evt_no_such_database"};
        for (size_t i = 0; i < ELEMENTSOF(what); i++) {
                snprintf(bad, sizeof(bad), "%s %s", ci, what[i]);
                EvdDb *db = NULL;
                EvdError err = {};
                int r = evd_db_open(bad, &db, &err);
                printf("# %s: %s\n", what[i], err.msg);
                CHECK_INT(r, ==, -EACCES);
                CHECK(evd_db_login_refused(r));
                CHECK(db == NULL);
                CHECK(strstr(err.msg, "refused the login of role") != NULL);
                CHECK(strstr(err.msg, strchr(what[i], '=') + 1) != NULL);
                CHECK(strstr(err.msg, "LOCATION") == NULL);
                CHECK(strchr(err.msg, '\n') == NULL);
        }
        /* and a dead socket is not a refused login */
        CHECK(!evd_db_login_refused(-ECONNREFUSED));
}

/* The value of KEY= in a key=value conninfo (the last one wins, as in libpq), into out. */
static bool conninfo_value(const char *ci, const char *key, char *out, size_t size)
{
        bool found = false;
        size_t kl = strlen(key);
        for (const char *s = ci; *s;) {
                s += strspn(s, " ");
                size_t n = strcspn(s, " ");
                if (n > kl && strncmp(s, key, kl) == 0 && s[kl] == '=') {
                        const char *v = s + kl + 1;
                        int vl = (int)(n - kl - 1);
                        if (vl >= 2 && v[0] == '\'' && v[vl - 1] == '\'') /* 'quoted' (no spaces inside) */
                                v++, vl -= 2;
                        snprintf(out, size, "%.*s", vl, v);
                        found = true;
                }
                s += n;
        }
        return found;
}

/* Failover: the first of two hosts accepts the TCP connection and never answers (a hung server, a
 * firewall that swallows packets after the handshake); after connect_timeout the second host is tried
 * and the open succeeds. Asynchronous connects cannot move on to the next host by themselves. */
static void test_multi_host_timeout(void)
{
        _cleanup_free_ char *ci = NULL;
        CHECK_OK(test_pg_new_database("failover", &ci));
        char host[256], port[32];
        CHECK(conninfo_value(ci, "host", host, sizeof(host)));
        if (!conninfo_value(ci, "port", port, sizeof(port)))
                snprintf(port, sizeof(port), "5432");
        int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(l >= 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t al = sizeof(a);
        CHECK(bind(l, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(l, 4) == 0 &&
              getsockname(l, (struct sockaddr *)&a, &al) == 0);
        char multi[1280];
        snprintf(multi, sizeof(multi), "%s host=127.0.0.1,%s port=%u,%s connect_timeout=2", ci, host,
                 (unsigned)ntohs(a.sin_port), port);
        EvdDb *db = NULL;
        EvdError err = {};
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int r = evd_db_open(multi, &db, &err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        printf("# silent first host, then the real one: %s after %.1f s%s%s\n", r >= 0 ? "open" : "failed",
               s, r < 0 ? ": " : "", r < 0 ? err.msg : "");
        CHECK_INT(r, ==, 0);
        CHECK(s >= 1.9);
        evd_db_close(db);
        close(l);
}

int main(void)
{
        RUN(test_migrations);
        RUN(test_migrations_concurrent);
        RUN(test_migration_gap_filled);
        RUN(test_schema_newer_refused);
        RUN(test_append_only);
        RUN(test_devices);
        RUN(test_dockings_and_heads);
        RUN(test_file_record);
        RUN(test_file_duplicate);
        RUN(test_log_query);
        RUN(test_dead_socket);
        RUN(test_login_refused);
        RUN(test_multi_host_timeout);
        return check_finish();
}
