/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The store's space check counts the bytes promised to copies in progress (lib/store.h
 * evd_store_space_*): the account itself (reserve, written, release, from many threads), and two dockings
 * at once into a store with room for one: the second is refused as "store full" before it copies,
 * instead of both passing the check and one failing mid-copy with ENOSPC. A real tmpfs of a few MB
 * (root), real 1080p media from evidock-sim, the real media worker, a real PostgreSQL. Prints TAP. */
#include <errno.h>
#include <pthread.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "check.h"
#include "common/cmd.h"
#include "common/enroll.h"
#include "db.h"
#include "ingest.h"
#include "pg.h"
#include "signature.h"
#include "source.h"
#include "store.h"

static char workdir[] = "/tmp/evidock-space.XXXXXX";
static char small[300]; /* the tmpfs, when mounted */
static bool mounted;

/* ---- the account ---------------------------------------------------------------------------------- */

static void test_account(void)
{
        char root[400];
        snprintf(root, sizeof(root), "%s/plain", workdir);
        EvdStore *s = NULL;
        CHECK_OK(evd_store_open(root, &s, NULL));
        uint64_t free_bytes = 0;
        CHECK_OK(evd_store_free_bytes(s, &free_bytes));
        CHECK_INT(evd_store_space_promised(s), ==, 0);

        /* half the free space is promised: the other half minus a byte fits, more does not */
        uint64_t half = free_bytes / 2;
        EvdStoreSpace a = {}, b = {}, c = {};
        CHECK_OK(evd_store_space_reserve(s, half / 2, half / 2, 0, &a, NULL));
        CHECK_INT(evd_store_space_promised(s), ==, half / 2 * 2);
        EvdError err = {};
        CHECK_INT(evd_store_space_reserve(s, free_bytes - half / 2 * 2 + 4096, 0, 0, &b, &err), ==, -ENOSPC);
        printf("# %s\n", err.msg);
        CHECK(strstr(err.msg, "promised to copies in progress") != NULL);
        CHECK(b.store == NULL);
        /* the reserve counts too */
        CHECK_INT(evd_store_space_reserve(s, 4096, 0, free_bytes - half / 2 * 2, &b, NULL), ==, -ENOSPC);

        /* what is written is no longer promised (the free space shows it); never more than the part */
        evd_store_space_written(&a, EVD_STORE_SPACE_ORIGINAL, half / 4);
        CHECK_INT(evd_store_space_promised(s), ==, half / 2 * 2 - half / 4);
        evd_store_space_written(&a, EVD_STORE_SPACE_ORIGINAL, half / 8); /* going back: no change */
        CHECK_INT(evd_store_space_promised(s), ==, half / 2 * 2 - half / 4);
        evd_store_space_written(&a, EVD_STORE_SPACE_ORIGINAL, UINT64_MAX);
        CHECK_INT(evd_store_space_promised(s), ==, half / 2);
        CHECK_OK(evd_store_space_reserve(s, 4096, 4096, 0, &c, NULL));
        evd_store_space_release(&a);
        evd_store_space_release(&a); /* twice: nothing more */
        CHECK_INT(evd_store_space_promised(s), ==, 8192);
        evd_store_space_release(&c);
        CHECK_INT(evd_store_space_promised(s), ==, 0);
        evd_store_free(s);
}

typedef struct Worker {
        EvdStore *store;
        unsigned refused;
} Worker;

static void *account_worker(void *arg)
{
        Worker *w = arg;
        for (unsigned i = 0; i < 20000; i++) {
                EvdStoreSpace sp = {};
                if (evd_store_space_reserve(w->store, 1000 + i % 7, 500, 0, &sp, NULL) < 0) {
                        w->refused++;
                        continue;
                }
                evd_store_space_written(&sp, EVD_STORE_SPACE_ORIGINAL, 300);
                evd_store_space_written(&sp, EVD_STORE_SPACE_ARCHIVE, 200);
                evd_store_space_release(&sp);
        }
        return NULL;
}

/* Many threads reserve, write and release at once: the account ends at zero. */
static void test_account_threads(void)
{
        char root[400];
        snprintf(root, sizeof(root), "%s/plain", workdir);
        EvdStore *s = NULL;
        CHECK_OK(evd_store_open(root, &s, NULL));
        Worker w[4];
        pthread_t t[4];
        for (unsigned i = 0; i < 4; i++) {
                w[i] = (Worker){.store = s};
                CHECK(pthread_create(&t[i], NULL, account_worker, &w[i]) == 0);
        }
        for (unsigned i = 0; i < 4; i++) {
                pthread_join(t[i], NULL);
                CHECK_INT(w[i].refused, ==, 0);
        }
        CHECK_INT(evd_store_space_promised(s), ==, 0);
        evd_store_free(s);
}

/* ---- two dockings, room for one ---------------------------------------------------------------------- */

typedef struct Docking {
        const char *device;
        char volume[400];
        EvdStore *store;
        const char *conninfo;
        int result;
        EvdError err;
        EvdIngestSummary sum;
        bool copying; /* FILE_BEGIN seen: it passed the space check */
        bool ended;
        struct Docking *other;
} Docking;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

/* At the first copy, wait (up to 20 s) until the other docking copies too or has ended: both dockings
 * are at their space check before either copies a byte, whatever the scheduling. */
static void docking_event(const EvdIngestEvent *ev, void *userdata)
{
        Docking *d = userdata;
        if (ev->kind != EVD_INGEST_FILE_BEGIN)
                return;
        pthread_mutex_lock(&lock);
        if (!d->copying) {
                d->copying = true;
                pthread_cond_broadcast(&cond);
                struct timespec until;
                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_sec += 20;
                while (!d->other->copying && !d->other->ended)
                        if (pthread_cond_timedwait(&cond, &lock, &until) == ETIMEDOUT)
                                break;
        }
        pthread_mutex_unlock(&lock);
}

static void *docking_main(void *arg)
{
        Docking *d = arg;
        EvdDb *db = NULL;
        d->result = evd_db_open(d->conninfo, &db, &d->err);
        EvdSource *src = NULL;
        if (d->result >= 0)
                d->result = evd_source_dir_new(d->volume, &src, &d->err);
        if (d->result >= 0) {
                EvdIngestOptions o;
                evd_ingest_options_init(&o);
                o.reserve_bytes = 1 << 20;
                o.on_event = docking_event;
                o.userdata = d;
                d->result = evd_ingest_run(src, d->store, db, &o, &d->sum, &d->err);
        }
        evd_source_free(src);
        evd_db_close(db);
        pthread_mutex_lock(&lock);
        d->ended = true;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
        return NULL;
}

static int enroll(EvdDb *db, Docking *d)
{
        EvdError err = {};
        CHECK_OR_RET(test_enroll_volume(db, d->volume, d->device, "012380", &err) >= 0);
        return 0;
}

static void test_two_dockings_room_for_one(void)
{
        if (geteuid() != 0)
                SKIP("needs root to mount a small tmpfs");
        const char *build = getenv("EVIDOCK_BUILD_ROOT");
        CHECK(build);
        Docking d[2] = {{.device = "SPACE01"}, {.device = "SPACE02"}};
        uint64_t biggest = 0;
        for (unsigned i = 0; i < 2; i++) {
                snprintf(d[i].volume, sizeof(d[i].volume), "%s/vol%u", workdir, i);
                char cmd[1400];
                snprintf(
                    cmd, sizeof(cmd),
                    "%s/daemon/sim/evidock-sim --out %s --device %s --officer 012380 --unit 440300000000 "
                    "--key %s.key --preset 1080p --videos 1 --audios 0 --photos 0 --duration 4 --quiet && "
                    "%s/daemon/sim/evidock-sim --out %s --key %s.key --print-pubkey >%s.pub",
                    build, d[i].volume, d[i].device, d[i].volume, build, d[i].volume, d[i].volume,
                    d[i].volume);
                CHECK(test_run_cmd(cmd) == 0);
                snprintf(cmd, sizeof(cmd), "find %s/VIDEO -type f -printf '%%s\\n'", d[i].volume);
                FILE *f = popen(cmd, "r");
                CHECK(f);
                unsigned long long size = 0;
                CHECK(fscanf(f, "%llu", &size) == 1);
                pclose(f);
                biggest = MAX(biggest, (uint64_t)size);
        }
        printf("# one video of %llu bytes per recorder\n", (unsigned long long)biggest);
        CHECK(biggest > 512 * 1024);

        /* room for one docking (its original and archive copy, 2 x the video) above the 1 MiB reserve,
         * not for two */
        uint64_t size = (1 << 20) + 3 * biggest + 256 * 1024;
        snprintf(small, sizeof(small), "%s/small", workdir);
        CHECK(mkdir(small, 0700) == 0);
        char opts[64];
        snprintf(opts, sizeof(opts), "size=%llu", (unsigned long long)size);
        if (mount("tmpfs", small, "tmpfs", 0, opts) < 0)
                SKIP("cannot mount a tmpfs: %s", strerror(errno));
        mounted = true;
        char root[400];
        snprintf(root, sizeof(root), "%s/store", small);
        EvdStore *store = NULL;
        CHECK_OK(evd_store_open(root, &store, NULL));

        _cleanup_free_ char *conninfo = NULL;
        CHECK(test_pg_new_database("space", &conninfo) == 0);
        EvdDb *db = NULL;
        CHECK_OK(evd_db_open(conninfo, &db, NULL));
        for (unsigned i = 0; i < 2; i++)
                CHECK_OK(enroll(db, &d[i]));
        evd_db_close(db);

        pthread_t t[2];
        for (unsigned i = 0; i < 2; i++) {
                d[i].store = store;
                d[i].conninfo = conninfo;
                d[i].other = &d[1 - i];
                CHECK(pthread_create(&t[i], NULL, docking_main, &d[i]) == 0);
        }
        for (unsigned i = 0; i < 2; i++)
                pthread_join(t[i], NULL);
        for (unsigned i = 0; i < 2; i++)
                printf("# %s: %d, %u ingested, %u failed, %llu bytes copied%s%s\n", d[i].device, d[i].result,
                       d[i].sum.files_ingested, d[i].sum.files_failed,
                       (unsigned long long)d[i].sum.bytes_copied, d[i].result < 0 ? ": " : "",
                       d[i].result < 0 ? evd_error_message(&d[i].err, d[i].result) : "");
        /* one docking took its file; the other was refused before it copied, as store full */
        unsigned ok = d[0].result == 0 ? 0 : 1;
        Docking *took = &d[ok], *refused = &d[1 - ok];
        CHECK_INT(took->result, ==, 0);
        CHECK_INT(took->sum.files_ingested, ==, 1);
        CHECK_INT(took->sum.files_failed, ==, 0);
        CHECK_INT(refused->result, ==, -ENOSPC);
        CHECK(!refused->copying);
        CHECK_INT(refused->sum.bytes_copied, ==, 0);
        CHECK(strstr(refused->err.msg, "promised to copies in progress") != NULL);
        CHECK(strstr(refused->err.msg, "reserve") != NULL);
        /* the refusal is recorded: the docking's result says so */
        long long n = test_pg_query_int(conninfo, "SELECT count(*) FROM docking_results WHERE summary LIKE "
                                                  "'%promised to copies in progress%'");
        CHECK_INT(n, ==, 1);
        CHECK_INT(evd_store_space_promised(store), ==, 0);
        evd_store_free(store);
}

int main(void)
{
        if (!mkdtemp(workdir)) {
                printf("Bail out! mkdtemp: %s\n", strerror(errno));
                return 1;
        }
        RUN(test_account);
        RUN(test_account_threads);
        RUN(test_two_dockings_room_for_one);
        if (mounted)
                (void)umount2(small, MNT_DETACH);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", workdir);
        (void)system(cmd);
        return check_finish();
}
