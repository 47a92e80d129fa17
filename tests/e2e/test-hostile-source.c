/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A recorder source that misbehaves (issue 9). Every docking that starts ends, with its result and a
 * custody event, whatever stops it (items 3 and 5): a listing that fails, a recorder that trickles bytes
 * (the stall deadline), a stop request while a read is slow, a file that never stops growing, a file
 * listed far larger than allowed. A manifest that cannot be read is not a missing one, and docking again
 * once it reads stores nothing twice (item 7). The library runs against a real PostgreSQL, a real store
 * and a volume made by evidock-sim; only the source is wrapped to misbehave (a real recorder cannot be
 * told to). Prints TAP. */
#include <stdatomic.h>
#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "check.h"
#include "common/cmd.h"
#include "common/enroll.h"
#include "pg.h"
#include "db.h"
#include "ingest.h"
#include "signature.h"
#include "source.h"
#include "store.h"

static char workdir[] = "/tmp/evidock-ends.XXXXXX";
static int n_volumes;

/* ---- a source that misbehaves on one file --------------------------------------------------------- */

typedef enum ReadMode {
        READ_PASS,
        READ_TRICKLE, /* one byte every 100 ms: a recorder that keeps the docking busy without progress */
        READ_ENDLESS, /* after its real end, zeros for ever: a file that never stops growing */
} ReadMode;

typedef struct Hostile {
        EvdSource *inner;
        int list_error;        /* the listing fails with this */
        const char *target;    /* suffix of the path the hooks act on */
        uint64_t inflate_size; /* the listing claims this size for the target (0: as it is) */
        ReadMode mode;         /* how the target reads */
        const char *fail_open; /* opening this path fails with fail_open_error */
        int fail_open_error;
        volatile int reads; /* reads of the target so far */
} Hostile;

typedef struct HostileReader {
        EvdReader reader;
        EvdReader *inner;
        Hostile *h;
        bool inner_done;
} HostileReader;

static bool is_target(const Hostile *h, const char *path)
{
        size_t n = strlen(path), m = h->target ? strlen(h->target) : 0;
        return m && n >= m && strcmp(path + n - m, h->target) == 0;
}

static ssize_t hostile_read(EvdReader *r, void *buf, size_t n, EvdError *err)
{
        HostileReader *q = r->userdata;
        q->h->reads++;
        if (q->h->mode == READ_TRICKLE) {
                usleep(100 * 1000);
                return evd_reader_read(q->inner, buf, 1, err);
        }
        if (!q->inner_done) {
                ssize_t k = evd_reader_read(q->inner, buf, n, err);
                if (k != 0)
                        return k;
                q->inner_done = true;
        }
        memset(buf, 0, n);
        return (ssize_t)n;
}

static void hostile_reader_close(EvdReader *r)
{
        HostileReader *q = r->userdata;
        evd_reader_close(q->inner);
        free(q);
}

static const EvdReaderOps hostile_reader_ops = {.read = hostile_read, .close = hostile_reader_close};

static int hostile_list(EvdSource *s, EvdSourceEntry **ret, size_t *ret_n, EvdError *err)
{
        Hostile *h = s->userdata;
        if (h->list_error)
                return evd_error_set(err, h->list_error, "the recorder's directory cannot be read (test)");
        int r = evd_source_list(h->inner, ret, ret_n, err);
        for (size_t i = 0; r >= 0 && h->inflate_size && i < *ret_n; i++)
                if (is_target(h, (*ret)[i].path))
                        (*ret)[i].size = h->inflate_size;
        return r;
}

static int hostile_open(EvdSource *s, const char *path, EvdReader **ret, EvdError *err)
{
        Hostile *h = s->userdata;
        if (h->fail_open && strcmp(path, h->fail_open) == 0)
                return evd_error_set(err, h->fail_open_error, "reading %s: medium error (test)", path);
        EvdReader *inner = NULL;
        int r = evd_source_open(h->inner, path, &inner, err);
        if (r < 0 || h->mode == READ_PASS || !is_target(h, path)) {
                *ret = inner;
                return r;
        }
        HostileReader *q = calloc(1, sizeof(*q));
        if (!q) {
                evd_reader_close(inner);
                return -ENOMEM;
        }
        *q = (HostileReader){
            .reader = {.ops = &hostile_reader_ops, .size = inner->size}, .inner = inner, .h = h};
        q->reader.userdata = q;
        *ret = &q->reader;
        return 0;
}

static int hostile_identity(EvdSource *s, EvdSourceIdentity *ret, EvdError *err)
{
        Hostile *h = s->userdata;
        return evd_source_identity(h->inner, ret, err);
}

static void hostile_free(EvdSource *s)
{
        Hostile *h = s->userdata;
        evd_source_free(h->inner);
        free(s);
}

static const EvdSourceOps hostile_ops = {
    .name = "dir",
    .list = hostile_list,
    .open = hostile_open,
    .identity = hostile_identity,
    .free = hostile_free,
};

/* ---- the real parts -------------------------------------------------------------------------------- */

typedef struct Env {
        char *conninfo;
        EvdDb *db;   /* the test's (superuser): migrates, enrolls */
        EvdDb *dock; /* what ingest runs as in production: a member of evidock_dock */
        EvdStore *store;
        char volume[256];
        char device[8];
} Env;

/* A fresh database, store and enrolled recorder with 2 one-second videos. */
static int env_setup(Env *e)
{
        const char *build = getenv("EVIDOCK_BUILD_ROOT");
        CHECK_OR_RET(build);
        int n = ++n_volumes;
        snprintf(e->device, sizeof(e->device), "END%04d", n);
        snprintf(e->volume, sizeof(e->volume), "%s/vol%d", workdir, n);
        char cmd[1024], store[300];
        snprintf(cmd, sizeof(cmd),
                 "%s/daemon/sim/evidock-sim --out %s --device %s --officer 012370 --unit 440300000000 "
                 "--key %s.key --preset tiny --videos 2 --audios 0 --photos 0 --duration 1 --quiet",
                 build, e->volume, e->device, e->volume);
        CHECK_OR_RET(test_run_cmd(cmd) == 0);
        snprintf(cmd, sizeof(cmd), "%s/daemon/sim/evidock-sim --out %s --key %s.key --print-pubkey >%s.pub",
                 build, e->volume, e->volume, e->volume);
        CHECK_OR_RET(test_run_cmd(cmd) == 0);
        CHECK_OR_RET(test_pg_new_database("ends", &e->conninfo) == 0);
        EvdError err = {};
        int r = evd_db_open(e->conninfo, &e->db, &err);
        if (r < 0)
                printf("# %s\n", evd_error_message(&err, r));
        CHECK_OR_RET(r >= 0);
        snprintf(store, sizeof(store), "%s/store%d", workdir, n);
        CHECK_OR_RET(evd_store_open(store, &e->store, &err) >= 0);

        r = test_enroll_volume(e->db, e->volume, e->device, "012370", &err);
        if (r < 0)
                printf("# %s\n", evd_error_message(&err, r));
        CHECK_OR_RET(r >= 0);
        _cleanup_free_ char *dock = NULL;
        CHECK_OR_RET(test_pg_login(e->conninfo, "evidock_dock", &dock) == 0);
        r = evd_db_open(dock, &e->dock, &err);
        if (r < 0)
                printf("# as evidock_dock: %s\n", evd_error_message(&err, r));
        CHECK_OR_RET(r >= 0);
        return 0;
}

static void env_done(Env *e)
{
        evd_db_close(e->db);
        evd_db_close(e->dock);
        evd_store_free(e->store);
        free(e->conninfo);
        *e = (Env){};
}

static EvdSource *hostile_new(Env *e, Hostile **ret_h)
{
        EvdError err = {};
        EvdSource *inner = NULL;
        if (evd_source_dir_new(e->volume, &inner, &err) < 0)
                return NULL;
        struct {
                EvdSource s;
                Hostile h;
        } *x = calloc(1, sizeof(*x));
        x->h.inner = inner;
        x->s = (EvdSource){.ops = &hostile_ops, .userdata = &x->h};
        *ret_h = &x->h;
        return &x->s;
}

/* A count from SQL with one %lld: the docking id. */
#define count(e, fmt, docking_id)                                                                           \
        ({                                                                                                  \
                char _sql[512];                                                                             \
                snprintf(_sql, sizeof(_sql), fmt, (long long)(docking_id));                                 \
                test_pg_query_int((e)->conninfo, _sql);                                                     \
        })

static int check_docking_ended(Env *e, int64_t docking_id, const char *kind, const char *summary_like)
{
        CHECK_OR_RET(docking_id > 0);
        char sql[512];
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM docking_results WHERE docking_id = %lld AND summary LIKE '%s'",
                 (long long)docking_id, summary_like);
        long long n = test_pg_query_int(e->conninfo, sql);
        if (n != 1)
                printf("# docking %lld: %lld results with a summary like '%s'\n", (long long)docking_id, n,
                       summary_like);
        CHECK_OR_RET(n == 1);
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM custody_events WHERE docking_id = %lld AND kind = '%s' AND id = "
                 "(SELECT max(id) FROM custody_events WHERE docking_id = %lld)",
                 (long long)docking_id, kind, (long long)docking_id);
        n = test_pg_query_int(e->conninfo, sql);
        if (n != 1)
                printf("# docking %lld: its last custody event is not '%s'\n", (long long)docking_id, kind);
        CHECK_OR_RET(n == 1);
        return 0;
}

static void options(EvdIngestOptions *o)
{
        evd_ingest_options_init(o);
        o->reserve_bytes = 1 << 20;
        o->media_timeout_us = 30LL * 1000000;
}

/* ---- the cases --------------------------------------------------------------------------------------- */

static void test_listing_fails(void)
{
        Env e = {};
        CHECK(env_setup(&e) == 0);
        Hostile *h = NULL;
        _cleanup_(evd_source_freep) EvdSource *src = hostile_new(&e, &h);
        CHECK(src);
        h->list_error = -EIO;
        EvdIngestOptions o;
        options(&o);
        EvdIngestSummary sum = {};
        EvdError err = {};
        int r = evd_ingest_run(src, e.store, e.dock, &o, &sum, &err);
        CHECK_INT(r, ==, -EIO);
        CHECK(strstr(err.msg, "cannot be read"));
        CHECK(check_docking_ended(&e, sum.docking_id, "interrupted", "interrupted: %cannot be read%") == 0);
        env_done(&e);
}

static void test_stall_deadline(void)
{
        Env e = {};
        CHECK(env_setup(&e) == 0);
        Hostile *h = NULL;
        _cleanup_(evd_source_freep) EvdSource *src = hostile_new(&e, &h);
        CHECK(src);
        h->target = "_0002.MP4";
        h->mode = READ_TRICKLE;
        EvdIngestOptions o;
        options(&o);
        o.stall_timeout_us = 1000000;
        EvdIngestSummary sum = {};
        EvdError err = {};
        int64_t t0 = (int64_t)(evd_clock_monotonic_us() / 1000);
        int r = evd_ingest_run(src, e.store, e.dock, &o, &sum, &err);
        int64_t took = (int64_t)(evd_clock_monotonic_us() / 1000) - t0;
        printf("# stalled docking ended after %lld ms: %s\n", (long long)took, err.msg);
        CHECK_INT(r, ==, -ETIMEDOUT);
        CHECK(sum.stalled);
        CHECK_INT(took, <, 10000);
        CHECK_INT(sum.files_ingested, ==, 1); /* the file before it is stored */
        CHECK(strstr(err.msg, "no progress"));
        CHECK(check_docking_ended(&e, sum.docking_id, "stalled", "stalled: %no progress%") == 0);
        CHECK_INT(count(&e, "SELECT count(*) FROM files WHERE docking_id = %lld", sum.docking_id), ==, 1);
        env_done(&e);
}

typedef struct Canceller {
        atomic_int *flag;
        Hostile *h;
        int after_ms; /* 0: once the slow file is being read */
} Canceller;

static void *cancel_later(void *p)
{
        Canceller *c = p;
        if (c->after_ms)
                usleep((useconds_t)c->after_ms * 1000);
        else
                while (c->h->reads < 3) /* the slow file is being read */
                        usleep(10 * 1000);
        *c->flag = 1;
        return NULL;
}

static void test_cancel_while_slow(void)
{
        Env e = {};
        CHECK(env_setup(&e) == 0);
        Hostile *h = NULL;
        _cleanup_(evd_source_freep) EvdSource *src = hostile_new(&e, &h);
        CHECK(src);
        h->target = "_0001.MP4";
        h->mode = READ_TRICKLE;
        atomic_int flag = 0;
        EvdIngestOptions o;
        options(&o);
        o.cancel = &flag;
        Canceller c = {.flag = &flag, .h = h};
        pthread_t t;
        CHECK(pthread_create(&t, NULL, cancel_later, &c) == 0);
        EvdIngestSummary sum = {};
        EvdError err = {};
        int64_t t0 = (int64_t)(evd_clock_monotonic_us() / 1000);
        int r = evd_ingest_run(src, e.store, e.dock, &o, &sum, &err);
        int64_t took = (int64_t)(evd_clock_monotonic_us() / 1000) - t0;
        pthread_join(t, NULL);
        printf("# cancelled docking ended after %lld ms: %s\n", (long long)took, err.msg);
        CHECK_INT(r, ==, -ECANCELED);
        CHECK(sum.cancelled);
        CHECK_INT(took, <, 5000);
        CHECK(check_docking_ended(&e, sum.docking_id, "interrupted", "interrupted: %stopped on request%") ==
              0);
        env_done(&e);
}

/* A stop request while the media worker hangs on a file: the worker is killed and the docking ends within
 * seconds, not at the media deadline (30 s here). */
static void test_cancel_while_archiving(void)
{
        const char *build = getenv("EVIDOCK_BUILD_ROOT");
        CHECK(build);
        char faulty[512];
        snprintf(faulty, sizeof(faulty), "%s/tests/e2e/evidock-media-worker-faults", build);
        if (access(faulty, X_OK) < 0) {
                printf("# no test build of the media worker at %s\n", faulty);
                CHECK(false);
        }
        Env e = {};
        CHECK(env_setup(&e) == 0);
        Hostile *h = NULL;
        _cleanup_(evd_source_freep) EvdSource *src = hostile_new(&e, &h);
        CHECK(src);
        const char *saved = getenv("EVIDOCK_MEDIA_WORKER");
        _cleanup_free_ char *saved_copy = saved ? strdup(saved) : NULL;
        setenv("EVIDOCK_MEDIA_WORKER", faulty, 1);
        setenv("EVIDOCK_MEDIA_WORKER_TEST_FAULT", "hang:_0001.MP4", 1);
        atomic_int flag = 0;
        EvdIngestOptions o;
        options(&o);
        o.cancel = &flag;
        Canceller c = {.flag = &flag, .h = h, .after_ms = 1500};
        pthread_t t;
        CHECK(pthread_create(&t, NULL, cancel_later, &c) == 0);
        EvdIngestSummary sum = {};
        EvdError err = {};
        int64_t t0 = (int64_t)(evd_clock_monotonic_us() / 1000);
        int r = evd_ingest_run(src, e.store, e.dock, &o, &sum, &err);
        int64_t took = (int64_t)(evd_clock_monotonic_us() / 1000) - t0;
        pthread_join(t, NULL);
        unsetenv("EVIDOCK_MEDIA_WORKER_TEST_FAULT");
        if (saved_copy)
                setenv("EVIDOCK_MEDIA_WORKER", saved_copy, 1);
        printf("# docking cancelled while archiving ended after %lld ms: %s\n", (long long)took, err.msg);
        CHECK_INT(r, ==, -ECANCELED);
        CHECK(sum.cancelled);
        CHECK_INT(took, <, 10000);
        CHECK_INT(sum.files_ingested, ==, 0); /* the file in hand waits for the next docking */
        CHECK(check_docking_ended(&e, sum.docking_id, "interrupted", "interrupted: %stopped on request%") ==
              0);
        env_done(&e);
}

static void test_file_grows(void)
{
        Env e = {};
        CHECK(env_setup(&e) == 0);
        Hostile *h = NULL;
        _cleanup_(evd_source_freep) EvdSource *src = hostile_new(&e, &h);
        CHECK(src);
        h->target = "_0001.MP4";
        h->mode = READ_ENDLESS;
        EvdIngestOptions o;
        options(&o);
        o.max_file_bytes = 64ULL << 20;
        EvdIngestSummary sum = {};
        EvdError err = {};
        int r = evd_ingest_run(src, e.store, e.dock, &o, &sum, &err);
        if (r < 0)
                printf("# %s\n", err.msg);
        CHECK_INT(r, ==, 0);
        CHECK_INT(sum.files_ingested, ==, 2);
        /* stored as listed (so its record still verifies), the growth named on the file */
        CHECK_INT(
            count(&e,
                  "SELECT count(*) FROM files f JOIN findings x ON x.file_id = f.id WHERE f.docking_id = "
                  "%lld AND x.verdict = 'UNREADABLE' AND x.detail LIKE '%%grew while it was copied%%'",
                  sum.docking_id),
            ==, 1);
        CHECK_INT(count(&e,
                        "SELECT count(*) FROM files WHERE docking_id = %lld AND size < 1048576 AND "
                        "source_path LIKE '%%_0001.MP4'",
                        sum.docking_id),
                  ==, 1);
        CHECK(check_docking_ended(&e, sum.docking_id, "docking_done", "%") == 0);
        env_done(&e);
}

static void test_oversized_listing(void)
{
        Env e = {};
        CHECK(env_setup(&e) == 0);
        Hostile *h = NULL;
        _cleanup_(evd_source_freep) EvdSource *src = hostile_new(&e, &h);
        CHECK(src);
        h->target = "_0001.MP4";
        h->inflate_size = 1ULL << 50; /* 1 PiB: no store has twice that free */
        EvdIngestOptions o;
        options(&o);
        o.max_file_bytes = 1ULL << 30;
        EvdIngestSummary sum = {};
        EvdError err = {};
        int r = evd_ingest_run(src, e.store, e.dock, &o, &sum, &err);
        if (r < 0)
                printf("# %s\n", err.msg);
        CHECK_INT(r, ==, 0);
        CHECK_INT(sum.files_ingested, ==, 1);
        CHECK_INT(sum.files_failed, ==, 1);
        CHECK_INT(
            count(&e,
                  "SELECT count(*) FROM findings WHERE docking_id = %lld AND file_id IS NULL AND verdict "
                  "= 'UNREADABLE' AND detail LIKE '%%_0001.MP4%%larger than%%allowed%%'",
                  sum.docking_id),
            ==, 1);
        CHECK(check_docking_ended(&e, sum.docking_id, "docking_done", "%") == 0);
        env_done(&e);
}

static void test_manifest_unreadable(void)
{
        Env e = {};
        CHECK(env_setup(&e) == 0);
        Hostile *h = NULL;
        _cleanup_(evd_source_freep) EvdSource *src = hostile_new(&e, &h);
        CHECK(src);
        h->fail_open = "EVIDOCK/CHAIN.LOG";
        h->fail_open_error = -EIO;
        EvdIngestOptions o;
        options(&o);
        EvdIngestSummary sum = {};
        EvdError err = {};
        int r = evd_ingest_run(src, e.store, e.dock, &o, &sum, &err);
        if (r < 0)
                printf("# %s\n", err.msg);
        CHECK_INT(r, ==, 0);
        CHECK_INT(sum.files_ingested, ==, 2); /* kept, without their records */
        CHECK_INT(
            count(&e,
                  "SELECT count(*) FROM findings WHERE docking_id = %lld AND file_id IS NULL AND verdict "
                  "= 'UNREADABLE' AND detail LIKE '%%chain manifest%%cannot be read%%medium error%%'",
                  sum.docking_id),
            ==, 1);
        CHECK_INT(count(&e,
                        "SELECT count(*) FROM findings WHERE docking_id = %lld AND detail LIKE '%%no chain "
                        "manifest%%'",
                        sum.docking_id),
                  ==, 0);

        /* it reads again: the records are linked to the copies, nothing is stored twice */
        h->fail_open = NULL;
        sum = (EvdIngestSummary){};
        r = evd_ingest_run(src, e.store, e.dock, &o, &sum, &err);
        if (r < 0)
                printf("# %s\n", err.msg);
        CHECK_INT(r, ==, 0);
        CHECK_INT(sum.files_ingested, ==, 0);
        CHECK_INT(sum.files_linked, ==, 2);
        CHECK_INT(count(&e, "SELECT count(*) FROM files WHERE docking_id <> %lld", sum.docking_id), ==, 2);
        CHECK_INT(
            count(&e,
                  "SELECT count(*) FROM file_links WHERE docking_id = %lld AND relation = 'record_found' "
                  "AND verdict = 'INTACT'",
                  sum.docking_id),
            ==, 2);
        CHECK_INT(sum.worst, ==, EVD_VERDICT_INTACT);

        /* and once more: nothing new at all */
        sum = (EvdIngestSummary){};
        r = evd_ingest_run(src, e.store, e.dock, &o, &sum, &err);
        CHECK_INT(r, ==, 0);
        CHECK_INT(sum.files_already, ==, 2);
        CHECK_INT(sum.files_linked, ==, 0);
        CHECK_INT(count(&e, "SELECT count(*) FROM files WHERE docking_id <> %lld", 0), ==, 2);
        env_done(&e);
}

int main(void)
{
        if (!mkdtemp(workdir)) {
                printf("Bail out! mkdtemp: %s\n", strerror(errno));
                return 1;
        }
        RUN(test_listing_fails);
        RUN(test_stall_deadline);
        RUN(test_cancel_while_slow);
        RUN(test_cancel_while_archiving);
        RUN(test_file_grows);
        RUN(test_oversized_listing);
        RUN(test_manifest_unreadable);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", workdir);
        (void)system(cmd);
        return check_finish();
}
