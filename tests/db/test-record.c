/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The record stage against a real scratch PostgreSQL: what a docking records, online and through the
 * spool, and the refusals that must be recorded rather than fail. */
#include <sys/stat.h>

#include "check.h"
#include "common/pg.h"
#include "db-links.h"
#include "db.h"
#include "hash.h"
#include "ingest.h"
#include "record.h"
#include "source.h"
#include "spool.h"
#include "store.h"

#define T0_US INT64_C(1718000000123456) /* a fixed, exact time */

typedef struct Scratch {
        char dir[64];    /* everything below: removed at the end */
        char volume[96]; /* the recorder volume (a directory source) */
        char store[96];
        char spool[96];
} Scratch;

static int write_file(const char *dir, const char *rel, const char *content)
{
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, rel);
        char *slash = strrchr(path, '/');
        *slash = 0;
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", path);
        CHECK_OR_RET(system(cmd) == 0);
        *slash = '/';
        FILE *f = fopen(path, "w");
        CHECK_OR_RET(f);
        fputs(content, f);
        CHECK_OR_RET(fclose(f) == 0);
        return 0;
}

static int scratch_new(Scratch *s)
{
        snprintf(s->dir, sizeof(s->dir), "/tmp/evd-test-record.XXXXXX");
        CHECK_OR_RET(mkdtemp(s->dir) != NULL);
        snprintf(s->volume, sizeof(s->volume), "%s/volume", s->dir);
        snprintf(s->store, sizeof(s->store), "%s/store", s->dir);
        snprintf(s->spool, sizeof(s->spool), "%s/spool", s->dir);
        CHECK_OR_RET(mkdir(s->volume, 0700) == 0 && mkdir(s->store, 0700) == 0);
        return 0;
}

static void scratch_free(Scratch *s)
{
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
        (void)!system(cmd);
}

static int ingest_volume(const Scratch *s, EvdDb *db, const char *spool_dir, EvdIngestSummary *sum,
                         EvdError *err)
{
        EvdSource *src = NULL;
        EvdStore *store = NULL;
        int r = evd_source_dir_new(s->volume, &src, err);
        if (r >= 0)
                r = evd_store_open(s->store, &store, err);
        if (r >= 0) {
                EvdIngestOptions o;
                evd_ingest_options_init(&o);
                o.archive_copy = false; /* the archive copy is not what is tested here */
                o.spool_dir = spool_dir;
                r = evd_ingest_run(src, store, db, &o, sum, err);
        }
        evd_store_free(store);
        evd_source_free(src);
        return r;
}

/* A recorder presenting a device ID of another length than 7 in DEVICE.TXT (5 characters: valid by the
 * documented rule, not enrolled) is refused ON THE RECORD: a docking row with the presented identity, a
 * NOT_ENROLLED finding, a 'refused' custody event; the run itself succeeds. It used to stop with an
 * error and record nothing (the database layer checked for exactly 7 characters). */
static void test_short_device_id_refused_on_record(void)
{
        Scratch s;
        char *conninfo = NULL;
        CHECK(scratch_new(&s) == 0);
        CHECK(write_file(s.volume, "EVIDOCK/DEVICE.TXT", "device_id=AB123\n") == 0);
        CHECK(write_file(s.volume, "VIDEO/a.MP4", "not really a video") == 0);
        CHECK(test_pg_new_database("record_short", &conninfo) == 0);
        EvdDb *db = NULL;
        CHECK_OK(evd_db_open(conninfo, &db, NULL));

        EvdIngestSummary sum = {};
        EvdError err = {};
        int r = ingest_volume(&s, db, NULL, &sum, &err);
        if (r < 0)
                printf("# ingest: %s\n", evd_error_message(&err, r));
        evd_db_close(db);
        CHECK_INT(r, ==, 0);
        CHECK(sum.refused);
        CHECK_STREQ(sum.device_id, "AB123");
        CHECK_INT(sum.files_ingested, ==, 0);
        CHECK_INT(test_pg_query_int(conninfo, "SELECT count(*) FROM dockings WHERE device_id IS NULL AND "
                                              "identity = 'AB123'"),
                  ==, 1);
        CHECK_INT(test_pg_query_int(conninfo, "SELECT count(*) FROM findings WHERE verdict = 'NOT_ENROLLED' "
                                              "AND found = 'AB123'"),
                  ==, 1);
        CHECK_INT(test_pg_query_int(conninfo, "SELECT count(*) FROM custody_events WHERE kind = 'refused' "
                                              "AND detail LIKE 'AB123:%'"),
                  ==, 1);
        CHECK_INT(test_pg_query_int(conninfo, "SELECT count(*) FROM docking_results WHERE verdict = "
                                              "'NOT_ENROLLED'"),
                  ==, 1);
        CHECK_INT(test_pg_query_int(conninfo, "SELECT count(*) FROM files"), ==, 0);
        free(conninfo);
        scratch_free(&s);
}

/* ---- the record stage itself: the same rows online, offline + replay, and after an outage mid-way ---- */

typedef struct Docking {
        EvdDbDocking d;
        EvdCustodyEntry begin[2];
        EvdFinding gap;
        uint8_t sha[2][EVD_DIGEST_SIZE], rh[2][EVD_DIGEST_SIZE];
        char orig[2][64];
        EvdDbFile files[2];
        EvdFinding file_finding;
        EvdCustodyEntry file_events[4];
        EvdDbChainHead head;
        EvdCustodyEntry end;
        EvdDbDockingResult result;
} Docking;

static void docking_fixture(Docking *x)
{
        *x = (Docking){
            .d = {.device_id = "AB12345",
                  .identity = "AB12345",
                  .transport = "usb",
                  .location = "1-2",
                  .has_clock_offset = true,
                  .clock_offset_us = -1500000,
                  .docked_us = T0_US},
            .begin = {{.kind = "docked", .device_id = "AB12345", .detail = "usb at 1-2"},
                      {.kind = "identified",
                       .device_id = "AB12345",
                       .detail = "device AB12345 officer 012345"}},
            .gap = {.verdict = EVD_VERDICT_SEGMENT_GAP,
                    .seq = 3,
                    .expected = "3",
                    .found = "4",
                    .detail = "segment 3 missing"},
            .file_finding = {.verdict = EVD_VERDICT_TIME_GAP, .seq = 4, .detail = "12 s\nbetween segments"},
            .file_events = {{.kind = "copied", .detail = "a -> b"},
                            {.kind = "verified", .detail = "TIME_GAP"},
                            {.kind = "archived", .detail = "no archive copy"},
                            {.kind = "quarantined", .detail = "case C-1 method video officer 012345"}},
            .head = {.seq = 5, .session = 2, .has_end = true, .end_us = T0_US - 60000000},
            .end = {.kind = "docking_done", .device_id = "AB12345", .detail = "2 files seen"},
            .result = {.files_seen = 2,
                       .files_ingested = 2,
                       .verdict = EVD_VERDICT_SEGMENT_GAP,
                       .summary = "2 files seen, 2 ingested",
                       .finished_us = T0_US + 9000000},
        };
        evd_hash_buffer(EVD_HASH_SHA256, "head", 4, x->head.record_hash);
        for (int i = 0; i < 2; i++) {
                char s[16];
                snprintf(s, sizeof(s), "content %d", i);
                evd_hash_buffer(EVD_HASH_SHA256, s, strlen(s), x->sha[i]);
                snprintf(s, sizeof(s), "record %d", i);
                evd_hash_buffer(EVD_HASH_SHA256, s, strlen(s), x->rh[i]);
                snprintf(x->orig[i], sizeof(x->orig[i]), "originals/AB12345/2024-06-10/00000%d_x.MP4",
                         4 + i);
                x->files[i] =
                    (EvdDbFile){.device_id = "AB12345",
                                .officer_id = "012345",
                                .has_seq = i == 0,
                                .seq = 4,
                                .session = 2,
                                .method = EVD_METHOD_VIDEO,
                                .case_number = "C-1",
                                .has_recorded = i == 0,
                                .recorded_start_us = T0_US - 600000000,
                                .recorded_end_us = T0_US - 60000000,
                                .tz_minutes = 480,
                                .has_clock_offset = true,
                                .clock_offset_us = -1500000,
                                .ingested_us = T0_US,
                                .stored_us = T0_US + 1000000 * (i + 1),
                                .within_24h = true,
                                .size = 1000u + (uint64_t)i,
                                .sha256 = x->sha[i],
                                .record_hash = i == 0 ? x->rh[0] : NULL,
                                .chain_record = i == 0 ? "EVDCHAIN/1;type=SEG;seq=4" : NULL,
                                .source_path = i == 0 ? "VIDEO/A.MP4" : "VIDEO/\xff\x01odd.MP4",
                                .original_path = x->orig[i],
                                .verdict = i == 0 ? EVD_VERDICT_TIME_GAP : EVD_VERDICT_SEGMENT_INSERTED,
                                .retention_class = "case"};
        }
}

/* Records the docking; kill_after (0: never) kills the connection after that many calls, to break the
 * database in the middle as a real outage would. */
static int record_docking(EvdRecordStage *rs, Docking *x, const char *conninfo, unsigned kill_after)
{
        unsigned calls = 0;
#define STEP(expr)                                                                                          \
        do {                                                                                                \
                EvdError e_ = {};                                                                           \
                int r_ = (expr);                                                                            \
                if (r_ < 0 && r_ != -EEXIST) {                                                              \
                        printf("# %s: %s\n", #expr, evd_error_message(&e_, r_));                            \
                        return r_;                                                                          \
                }                                                                                           \
                if (kill_after && ++calls == kill_after)                                                    \
                        (void)test_pg_exec(conninfo,                                                        \
                                           "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "  \
                                           "datname = current_database() AND pid <> pg_backend_pid()",      \
                                           NULL, 0);                                                        \
        } while (0)
        STEP(evd_record_docking_begin(rs, &x->d, x->begin, 2, &e_));
        STEP(evd_record_finding(rs, &x->gap, &e_));
        STEP(evd_record_file(rs, &x->files[0], &x->file_finding, 1, x->file_events, 4, NULL, &e_));
        STEP(evd_record_file(rs, &x->files[1], NULL, 0, x->file_events, 4, NULL, &e_));
        STEP(evd_record_docking_end(rs, &x->head, &x->end, &x->result, &e_));
#undef STEP
        return 0;
}

/* One number for everything a docking leaves in the database, ids and stored times included, except
 * what the database clock sets (custody times and hashes, head set_at), the replay's note in custody
 * details ("... [offline: spooled <time>]"), and the ids of findings: a replay writes a docking's
 * docking-level findings with its end (docs/spool.md, "Exactly once"), so they are compared as a set. */
static long long rows_digest(const char *conninfo)
{
        return test_pg_query_int(
            conninfo,
            "SELECT ('x' || substr(md5(concat_ws('#',"
            " (SELECT string_agg(concat_ws(',', id, device_id, identity, transport, location, "
            "clock_offset_us,"
            "   docked_at), '|' ORDER BY id) FROM dockings),"
            " (SELECT string_agg(concat_ws(',', docking_id, finished_at, files_seen, files_ingested,"
            "   files_already, files_quarantined, verdict, summary), '|' ORDER BY id) FROM docking_results),"
            " (SELECT string_agg(concat_ws(',', device_id, docking_id, seq, session, record_hash, end_at), "
            "'|'"
            "   ORDER BY id) FROM chain_heads),"
            " (SELECT string_agg(f::text, '|' ORDER BY id) FROM files f),"
            " (SELECT string_agg(concat_ws(',', docking_id, file_id, verdict, seq, expected, found, "
            "detail), '|'"
            "   ORDER BY docking_id, file_id NULLS FIRST, verdict, seq, detail) FROM findings),"
            " (SELECT string_agg(concat_ws(',', id, kind, device_id, docking_id, file_id,"
            "   regexp_replace(detail, ' \\[offline: spooled [^]]*\\]$', '')), '|' ORDER BY id)"
            "   FROM custody_events))), 1, 15))::bit(60)::bigint");
}

static int enroll_ab(EvdDb *db)
{
        EvdDbDevice dev = {.device_id = (char *)"AB12345",
                           .officer_id = (char *)"012345",
                           .suite = EVD_SUITE_ED25519_SHA256,
                           .public_key_pem = (char *)"PEM",
                           .key_id = (char *)"k1"};
        return evd_db_device_enroll(db, &dev, NULL);
}

static void test_online_offline_replay_same_rows(void)
{
        Scratch s;
        CHECK(scratch_new(&s) == 0);
        char *ci_online = NULL, *ci_offline = NULL, *ci_broken = NULL;
        CHECK(test_pg_new_database("rec_online", &ci_online) == 0);
        CHECK(test_pg_new_database("rec_offline", &ci_offline) == 0);
        CHECK(test_pg_new_database("rec_broken", &ci_broken) == 0);
        Docking x;
        docking_fixture(&x);

        /* online */
        EvdDb *db = NULL;
        CHECK_OK(evd_db_open(ci_online, &db, NULL));
        EvdRecordStage *rs = NULL;
        CHECK_OK(evd_record_stage_new(db, NULL, &rs, NULL));
        CHECK_OK(record_docking(rs, &x, NULL, 0));
        CHECK(!evd_record_spooled(rs, NULL));
        CHECK_INT(evd_record_docking_id(rs), ==, 1);
        /* a file recorded once is known, and recording it again writes nothing */
        CHECK_INT(evd_record_file_known(rs, "AB12345", x.rh[0], NULL, NULL, NULL), ==, 1);
        CHECK_INT(evd_record_file_known(rs, "AB12345", NULL, "VIDEO/\xff\x01odd.MP4", x.sha[1], NULL), ==,
                  1);
        CHECK_INT(evd_record_file(rs, &x.files[0], NULL, 0, x.file_events, 4, NULL, NULL), ==, -EEXIST);
        evd_record_stage_free(rs);
        evd_db_close(db);
        long long online = rows_digest(ci_online);
        CHECK_INT(online, >, 0);

        /* offline from the start: everything into a spool, then replayed */
        char spool1[128];
        snprintf(spool1, sizeof(spool1), "%s/spool1", s.dir);
        CHECK_OK(evd_record_stage_new(NULL, spool1, &rs, NULL));
        CHECK_OK(record_docking(rs, &x, NULL, 0));
        const char *why = NULL;
        CHECK(evd_record_spooled(rs, &why));
        CHECK(strstr(why, "no database connection") != NULL);
        CHECK_INT(evd_record_docking_id(rs), ==, 0);
        CHECK_INT(evd_record_files_spooled(rs), ==, 2);
        /* offline, the spool knows what it holds: a re-docking copies nothing twice */
        CHECK_INT(evd_record_file_known(rs, "AB12345", x.rh[0], NULL, NULL, NULL), ==, 1);
        CHECK_INT(evd_record_file_known(rs, "AB12345", x.rh[1], NULL, NULL, NULL), ==, 0);
        evd_record_stage_free(rs);
        CHECK_INT(test_pg_query_int(ci_offline, "SELECT count(*) FROM pg_tables WHERE tablename = 'files'"),
                  ==, 0);
        CHECK_OK(evd_db_open(ci_offline, &db, NULL));
        EvdSpool *spool = NULL;
        CHECK_OK(evd_spool_open(spool1, &spool, NULL));
        EvdSpoolReplay rep = {};
        CHECK_OK(evd_spool_replay(spool, db, &rep, NULL));
        CHECK_INT(rep.replayed, ==, 5);
        CHECK_INT(rep.rejected, ==, 0);
        /* replayed again (a crash before the entries were deleted is the same): nothing more */
        CHECK_OK(evd_spool_replay(spool, db, &rep, NULL));
        CHECK_INT(rep.replayed + rep.already + rep.rejected, ==, 0);
        evd_spool_free(spool);
        evd_db_close(db);
        CHECK_INT(rows_digest(ci_offline), ==, online);
        CHECK_INT(test_pg_query_int(ci_offline, "SELECT count(*) FROM custody_events WHERE detail LIKE "
                                                "'%[offline: spooled %'"),
                  ==, 2 + 4 + 4 + 1);

        /* online, and the database goes away after the first file: the rest goes into the spool */
        char spool2[128];
        snprintf(spool2, sizeof(spool2), "%s/spool2", s.dir);
        CHECK_OK(evd_db_open(ci_broken, &db, NULL));
        CHECK_OK(enroll_ab(db));
        CHECK_OK(evd_record_stage_new(db, spool2, &rs, NULL));
        CHECK_OK(record_docking(rs, &x, ci_broken, 3));
        CHECK(evd_record_spooled(rs, &why));
        CHECK(strstr(why, "database unreachable") != NULL);
        CHECK_INT(evd_record_docking_id(rs), ==, 1);
        CHECK_INT(evd_record_files_spooled(rs), ==, 1);
        /* the enrollment and the head come from the spool's cache now */
        EvdDbDevice *dev = NULL;
        CHECK_OK(evd_record_enrollment_get(rs, "AB12345", &dev, NULL));
        CHECK_STREQ(dev->officer_id, "012345");
        evd_db_device_free(dev);
        CHECK_INT(evd_record_enrollment_get(rs, "ZZ99999", &dev, NULL), ==, -ENOENT);
        EvdDbChainHead head = {};
        CHECK_OK(evd_record_head_get(rs, "AB12345", &head, NULL));
        CHECK_INT(head.seq, ==, 5);
        evd_record_stage_free(rs);
        evd_db_close(db);
        CHECK_OK(evd_db_open(ci_broken, &db, NULL));
        CHECK_OK(evd_spool_open(spool2, &spool, NULL));
        CHECK_OK(evd_spool_replay(spool, db, &rep, NULL));
        CHECK_INT(rep.rejected, ==, 0);
        unsigned left = 1;
        CHECK_OK(evd_spool_backlog(spool, &left));
        CHECK_INT(left, ==, 0);
        evd_spool_free(spool);
        /* the same rows as online, plus the enrollment (not part of the digest) */
        CHECK_INT(rows_digest(ci_broken), ==, online);

        /* a recorder whose entries wait in the spool docks again while the database is up: it queues behind
         * them (its order is kept) */
        char spool3[128];
        snprintf(spool3, sizeof(spool3), "%s/spool3", s.dir);
        CHECK_OK(evd_record_stage_new(NULL, spool3, &rs, NULL));
        CHECK_OK(evd_record_docking_begin(rs, &x.d, x.begin, 2, NULL));
        evd_record_stage_free(rs);
        CHECK_OK(evd_record_stage_new(db, spool3, &rs, NULL));
        CHECK(!evd_record_spooled(rs, NULL));
        CHECK_OK(evd_record_docking_begin(rs, &x.d, x.begin, 2, NULL));
        CHECK(evd_record_spooled(rs, &why));
        CHECK(strstr(why, "still wait in the spool") != NULL);
        evd_record_stage_free(rs);
        evd_db_close(db);

        free(ci_online);
        free(ci_offline);
        free(ci_broken);
        scratch_free(&s);
}

/* What file_links holds, as one number (the database clock's 'at' left out). */
static long long links_digest(const char *conninfo)
{
        return test_pg_query_int(
            conninfo, "SELECT ('x' || substr(md5(coalesce((SELECT string_agg(concat_ws(',', id, "
                      "docking_id, device_id, file_id, relation, other_file_id, seq, record_hash, "
                      "chain_record, verdict, detail), '|' ORDER BY id) FROM file_links), '-')), "
                      "1, 15))::bit(60)::bigint");
}

/* A later fact learnt during a docking (a record linked to the copy stored without it) goes through the
 * record stage: the database goes away just before it, so it is spooled, and its replay leaves the same
 * rows as online, once. */
static void test_link_online_offline_same_rows(void)
{
        Scratch s;
        CHECK(scratch_new(&s) == 0);
        char *ci_online = NULL, *ci_broken = NULL;
        CHECK(test_pg_new_database("rec_link_online", &ci_online) == 0);
        CHECK(test_pg_new_database("rec_link_broken", &ci_broken) == 0);
        Docking x;
        docking_fixture(&x);
        uint8_t rh[EVD_DIGEST_SIZE];
        evd_hash_buffer(EVD_HASH_SHA256, "record 9", 8, rh);
        EvdDbFileLink link = {.docking_id = 999, /* ignored: the stage's docking */
                              .device_id = "AB12345",
                              .file_id = 2, /* the foreign file of the fixture */
                              .relation = EVD_DB_LINK_RECORD_FOUND,
                              .has_seq = true,
                              .seq = 9,
                              .record_hash = rh,
                              .chain_record = "EVDCHAIN/1;type=SEG;seq=9",
                              .verdict = EVD_VERDICT_INTACT,
                              .detail = "record seq 9 names file 2: linked"};
        EvdFinding f = {.verdict = EVD_VERDICT_TIME_GAP, .seq = 9, .detail = "a later finding"};
        EvdCustodyEntry ev = {.kind = "linked", .detail = "record seq 9 names file 2: linked"};

        long long digest[2] = {0, 0};
        for (int broken = 0; broken < 2; broken++) {
                const char *ci = broken ? ci_broken : ci_online;
                char spool[128];
                snprintf(spool, sizeof(spool), "%s/spool-link%d", s.dir, broken);
                EvdDb *db = NULL;
                CHECK_OK(evd_db_open(ci, &db, NULL));
                EvdRecordStage *rs = NULL;
                CHECK_OK(evd_record_stage_new(db, spool, &rs, NULL));
                CHECK_OK(evd_record_docking_begin(rs, &x.d, x.begin, 2, NULL));
                CHECK_OK(evd_record_file(rs, &x.files[0], NULL, 0, x.file_events, 4, NULL, NULL));
                CHECK_OK(evd_record_file(rs, &x.files[1], NULL, 0, x.file_events, 4, NULL, NULL));
                if (broken)
                        (void)test_pg_exec(ci,
                                           "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                                           "datname = current_database() AND pid <> pg_backend_pid()",
                                           NULL, 0);
                EvdError err = {};
                int r = evd_record_file_link(rs, &link, &f, 1, &ev, 1, &err);
                if (r < 0)
                        printf("# link: %s\n", evd_error_message(&err, r));
                CHECK_INT(r, ==, 0);
                CHECK(evd_record_spooled(rs, NULL) == (broken == 1));
                CHECK_OK(evd_record_docking_end(rs, &x.head, &x.end, &x.result, NULL));
                evd_record_stage_free(rs);
                evd_db_close(db);
                if (broken) {
                        CHECK_INT(test_pg_query_int(ci, "SELECT count(*) FROM file_links"), ==, 0);
                        CHECK_OK(evd_db_open(ci, &db, NULL));
                        EvdSpool *sp = NULL;
                        CHECK_OK(evd_spool_open(spool, &sp, NULL));
                        EvdSpoolReplay rep = {};
                        CHECK_OK(evd_spool_replay(sp, db, &rep, NULL));
                        CHECK_INT(rep.replayed, ==, 2); /* the link and the end */
                        CHECK_INT(rep.rejected, ==, 0);
                        evd_spool_free(sp);
                        evd_db_close(db);
                }
                CHECK_INT(test_pg_query_int(ci, "SELECT count(*) FROM file_links"), ==, 1);
                digest[broken] = links_digest(ci);
        }
        CHECK_INT(digest[1], ==, digest[0]);
        CHECK_INT(rows_digest(ci_broken), ==, rows_digest(ci_online));
        free(ci_online);
        free(ci_broken);
        scratch_free(&s);
}

/* A refusal recorded offline and replayed is the refusal recorded online. */
static void test_refusal_offline_replay(void)
{
        Scratch s;
        CHECK(scratch_new(&s) == 0);
        CHECK(write_file(s.volume, "EVIDOCK/DEVICE.TXT", "device_id=AB123\n") == 0);
        char *ci = NULL;
        CHECK(test_pg_new_database("record_refused_offline", &ci) == 0);
        EvdIngestSummary sum = {};
        EvdError err = {};
        int r = ingest_volume(&s, NULL, s.spool, &sum, &err);
        if (r < 0)
                printf("# ingest: %s\n", evd_error_message(&err, r));
        CHECK_INT(r, ==, 0);
        CHECK(sum.refused);
        CHECK(sum.spooled);
        /* it waits in the spool (it used to be left out of the listing: "...-refused---<tag>") */
        EvdSpool *spool = NULL;
        CHECK_OK(evd_spool_open(s.spool, &spool, NULL));
        unsigned backlog = 0;
        CHECK_OK(evd_spool_backlog(spool, &backlog));
        CHECK_INT(backlog, ==, 1);
        EvdDb *db = NULL;
        CHECK_OK(evd_db_open(ci, &db, NULL));
        EvdSpoolReplay rep = {};
        CHECK_OK(evd_spool_replay(spool, db, &rep, NULL));
        evd_spool_free(spool);
        evd_db_close(db);
        if (rep.replayed != 1)
                printf("# replay: %u replayed, %u already, %u rejected (%s), %u waiting\n", rep.replayed,
                       rep.already, rep.rejected, rep.last_rejected, rep.waiting);
        CHECK_INT(rep.replayed, ==, 1);
        CHECK_INT(
            test_pg_query_int(ci, "SELECT count(*) FROM dockings d JOIN findings f ON f.docking_id = d.id "
                                  "JOIN docking_results r ON r.docking_id = d.id WHERE d.device_id IS NULL "
                                  "AND d.identity = 'AB123' AND f.verdict = 'NOT_ENROLLED' AND "
                                  "r.verdict = 'NOT_ENROLLED'"),
            ==, 1);
        CHECK_INT(test_pg_query_int(ci, "SELECT count(*) FROM custody_events WHERE kind = 'refused'"), ==,
                  1);
        free(ci);
        scratch_free(&s);
}

int main(void)
{
        RUN(test_short_device_id_refused_on_record);
        RUN(test_online_offline_replay_same_rows);
        RUN(test_refusal_offline_replay);
        RUN(test_link_online_offline_same_rows);
        return check_finish();
}
