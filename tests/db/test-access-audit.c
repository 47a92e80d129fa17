/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The custody audit beyond the chain (lib/custody-audit.h) against a real PostgreSQL: evidence rows without
 * their custody events are named, and a head recorded outside the database exposes a cut tail or a
 * rewritten log that the hash chain alone shows as intact. */
#include <inttypes.h>

#include "check.h"
#include "common/pg.h"
#include "custody-audit.h"
#include "custody.h"
#include "db.h"
#include "hash.h"

#define T0_US INT64_C(1718000000123456)

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

/* A docking as lib/ingest.c writes it: the row and its events, one file with its events, the result and
 * docking_done. Returns the file id or -1. */
static int64_t ingest_one(EvdDb *db, const char *name)
{
        EvdDbDocking d = {.device_id = "AB12345", .transport = "dir", .docked_us = T0_US};
        int64_t docking_id = 0, file_id = 0;
        CHECK_OR_RET(evd_db_begin(db, NULL) == 0);
        CHECK_OR_RET(evd_db_docking_begin(db, &d, &docking_id, NULL) == 0);
        EvdCustodyEntry docked = {.kind = "docked", .device_id = "AB12345", .docking_id = docking_id};
        CHECK_OR_RET(evd_custody_append(db, &docked, NULL, NULL) == 0);
        CHECK_OR_RET(evd_db_commit(db, NULL) == 0);

        uint8_t sha[EVD_DIGEST_SIZE];
        evd_hash_buffer(EVD_HASH_SHA256, name, strlen(name), sha);
        char path[128];
        snprintf(path, sizeof(path), "originals/AB12345/%s", name);
        EvdDbFile f = {
            .docking_id = docking_id,
            .device_id = "AB12345",
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
        EvdCustodyEntry ev[] = {
            {.kind = "copied", .device_id = "AB12345", .docking_id = docking_id},
            {.kind = "recorded", .device_id = "AB12345", .docking_id = docking_id},
        };
        CHECK_OR_RET(evd_db_file_record(db, &f, NULL, 0, ev, ELEMENTSOF(ev), &file_id, NULL) == 0);

        EvdDbDockingResult res = {.files_seen = 1, .files_ingested = 1, .verdict = EVD_VERDICT_UNSIGNED};
        CHECK_OR_RET(evd_db_begin(db, NULL) == 0);
        CHECK_OR_RET(evd_db_docking_finish(db, docking_id, &res, NULL) == 0);
        EvdCustodyEntry done = {.kind = "docking_done", .device_id = "AB12345", .docking_id = docking_id};
        CHECK_OR_RET(evd_custody_append(db, &done, NULL, NULL) == 0);
        CHECK_OR_RET(evd_db_commit(db, NULL) == 0);
        return file_id;
}

typedef struct Gaps {
        unsigned n;
        EvdCustodyGapKind kind[8];
        int64_t id[8];
        char name[8][128];
} Gaps;

static void collect(const EvdCustodyGap *gap, void *userdata)
{
        Gaps *g = userdata;
        printf("# gap: %s %" PRId64 " %s %s\n", evd_custody_gap_kind_to_string(gap->kind), gap->id,
               gap->device_id, gap->name);
        if (g->n < ELEMENTSOF(g->id)) {
                g->kind[g->n] = gap->kind;
                g->id[g->n] = gap->id;
                snprintf(g->name[g->n], sizeof(g->name[0]), "%s", gap->name);
        }
        g->n++;
}

static void test_crosscheck(void)
{
        _cleanup_free_ char *ci = NULL;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        CHECK(fresh_db("crosscheck", &ci, &db) == 0);
        CHECK_INT(ingest_one(db, "VIDEO/A.MP4"), >, 0);
        CHECK_INT(ingest_one(db, "VIDEO/B.MP4"), >, 0);

        Gaps g = {};
        uint64_t n = 99;
        CHECK_OK(evd_custody_crosscheck(db, collect, &g, &n, NULL));
        CHECK_INT(n, ==, 0);
        CHECK_INT(g.n, ==, 0);

        /* Rows written behind the library's back (a superuser with plain SQL): a file and a docking
         * without any event, and a finished docking whose docking_done is not there. */
        char error[512] = "";
        int r = test_pg_exec(
            ci,
            "INSERT INTO dockings (id, device_id, transport, docked_at) VALUES (100, 'AB12345', 'dir', "
            "now());"
            "INSERT INTO files (docking_id, device_id, method, ingested_at, stored_at, within_24h, size,"
            "  sha256, source_path, original_path, verdict, retention_class)"
            " VALUES (1, 'AB12345', 'video', now(), now(), true, 1, repeat('ab', 32), 'x'::bytea,"
            "  'originals/AB12345/SMUGGLED.MP4', 'INTACT', 'standard');"
            "INSERT INTO docking_results (docking_id, finished_at, files_seen, files_ingested, "
            "files_already,"
            "  files_quarantined, verdict) VALUES (100, now(), 0, 0, 0, 0, 'INTACT')",
            error, sizeof(error));
        if (r < 0)
                printf("# %s", error);
        CHECK_INT(r, ==, 0);

        g = (Gaps){};
        CHECK_OK(evd_custody_crosscheck(db, collect, &g, &n, NULL));
        CHECK_INT(n, ==, 3);
        CHECK_INT(g.n, ==, 3);
        CHECK_INT(g.kind[0], ==, EVD_CUSTODY_GAP_FILE);
        CHECK_STREQ(g.name[0], "originals/AB12345/SMUGGLED.MP4");
        CHECK_INT(g.kind[1], ==, EVD_CUSTODY_GAP_DOCKING);
        CHECK_INT(g.id[1], ==, 100);
        CHECK_INT(g.kind[2], ==, EVD_CUSTODY_GAP_RESULT);
        CHECK_INT(g.id[2], ==, 100);

        /* The chain itself is intact: only the cross-check sees these rows. */
        EvdCustodyReport rep;
        CHECK_OK(evd_custody_verify(db, &rep, NULL));
        CHECK(rep.ok);
}

static void test_checkpoint_parse(void)
{
        EvdCustodyCheckpoint cp;
        char line[256];
        char hex[2 * EVD_DIGEST_SIZE + 1];
        uint8_t h[EVD_DIGEST_SIZE];
        evd_hash_buffer(EVD_HASH_SHA256, "x", 1, h);
        evd_hex(h, sizeof(h), hex);

        snprintf(line, sizeof(line), "custody log intact: 1234 events, head 1234 %s\n", hex);
        CHECK_OK(evd_custody_checkpoint_parse(line, &cp));
        CHECK_INT(cp.id, ==, 1234);
        CHECK(memcmp(cp.hash, h, sizeof(h)) == 0);

        /* the last one wins (a journal export of daily lines) */
        char text[800];
        snprintf(text, sizeof(text),
                 "Dec 01 evidock-custody-head[1]: custody log intact: 5 events, head 5 %s\n"
                 "Dec 02 evidock-custody-head[2]: custody log intact: 9 events, head 9 %s\n",
                 hex, hex);
        CHECK_OK(evd_custody_checkpoint_parse(text, &cp));
        CHECK_INT(cp.id, ==, 9);

        static const char *const bad[] = {
            "",
            "custody log BROKEN at event 5: id-gap: event 5 is missing",
            "head 0 0000000000000000000000000000000000000000000000000000000000000000",
            "head 7 00000000000000000000000000000000000000000000000000000000000000",    /* 62 digits */
            "head 7 00000000000000000000000000000000000000000000000000000000000000000", /* 65 */
            "ahead 7 0000000000000000000000000000000000000000000000000000000000000000",
            "head -7 0000000000000000000000000000000000000000000000000000000000000000",
            "head 99999999999999999999999 0000000000000000000000000000000000000000000000000000000000000000",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int r = evd_custody_checkpoint_parse(bad[i], &cp);
                if (r != -ENOENT)
                        printf("# accepted: '%s'\n", bad[i]);
                CHECK_INT(r, ==, -ENOENT);
        }
}

static int append_n(EvdDb *db, unsigned n)
{
        for (unsigned i = 0; i < n; i++) {
                EvdCustodyEntry ev = {.kind = "test", .detail = "an event"};
                CHECK_OR_RET(evd_custody_append(db, &ev, NULL, NULL) == 0);
        }
        return 0;
}

static void test_checkpoint_tail_cut_and_rewrite(void)
{
        _cleanup_free_ char *ci = NULL;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        CHECK(fresh_db("checkpoint", &ci, &db) == 0);
        CHECK(append_n(db, 6) == 0);

        /* What an admin keeps elsewhere: the line audit verify printed. */
        EvdCustodyReport rep;
        CHECK_OK(evd_custody_verify(db, &rep, NULL));
        CHECK(rep.ok);
        char hex[2 * EVD_DIGEST_SIZE + 1], line[200];
        snprintf(line, sizeof(line), "custody log intact: %" PRIu64 " events, head %" PRId64 " %s",
                 rep.n_events, rep.head_id, evd_hex(rep.head_hash, EVD_DIGEST_SIZE, hex));
        EvdCustodyCheckpoint cp;
        CHECK_OK(evd_custody_checkpoint_parse(line, &cp));

        EvdCheckpointReport cr;
        CHECK_OK(evd_custody_checkpoint_compare(db, &cp, &cr, NULL));
        CHECK_INT(cr.outcome, ==, EVD_CHECKPOINT_MATCH);
        /* later events do not matter */
        CHECK(append_n(db, 2) == 0);
        CHECK_OK(evd_custody_checkpoint_compare(db, &cp, &cr, NULL));
        CHECK_INT(cr.outcome, ==, EVD_CHECKPOINT_MATCH);
        CHECK_INT(cr.head_id, ==, 8);

        /* A superuser cuts the tail from event 5 on: the chain still verifies, the checkpoint does not. */
        CHECK(test_pg_exec(ci,
                           "ALTER TABLE custody_events DISABLE TRIGGER USER;"
                           "DELETE FROM custody_events WHERE id >= 5;"
                           "ALTER TABLE custody_events ENABLE TRIGGER USER",
                           NULL, 0) == 0);
        CHECK_OK(evd_custody_verify(db, &rep, NULL));
        CHECK(rep.ok);
        CHECK_INT(rep.head_id, ==, 4);
        CHECK_OK(evd_custody_checkpoint_compare(db, &cp, &cr, NULL));
        printf("# %s\n", cr.detail);
        CHECK_INT(cr.outcome, ==, EVD_CHECKPOINT_TAIL_CUT);
        CHECK_INT(cr.head_id, ==, 4);
        CHECK(strstr(cr.detail, "ends at event 4") != NULL);

        /* ... and appends as many new events to hide it: the recorded event has another hash. */
        CHECK(append_n(db, 5) == 0);
        CHECK_OK(evd_custody_verify(db, &rep, NULL));
        CHECK(rep.ok);
        CHECK_OK(evd_custody_checkpoint_compare(db, &cp, &cr, NULL));
        printf("# %s\n", cr.detail);
        CHECK_INT(cr.outcome, ==, EVD_CHECKPOINT_REWRITTEN);
}

int main(void)
{
        RUN(test_crosscheck);
        RUN(test_checkpoint_parse);
        RUN(test_checkpoint_tail_cut_and_rewrite);
        return check_finish();
}
