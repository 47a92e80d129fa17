/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The record stage against a real scratch PostgreSQL: what a docking records, online and through the
 * spool, and the refusals that must be recorded rather than fail. */
#include <sys/stat.h>

#include "check.h"
#include "common/pg.h"
#include "db.h"
#include "ingest.h"
#include "source.h"
#include "store.h"

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

int main(void)
{
        RUN(test_short_device_id_refused_on_record);
        return check_finish();
}
