/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The ingest pipeline's media side (issue 14 item 1, issue 15 item 2): one media worker serves a whole
 * docking; a file that crashes or hangs it costs only that file and that worker; the archive step reports
 * its progress (bytes of the original remuxed), through the media session and through evd_ingest_run()'s
 * events. Real media from evidock-sim (a multi-MB 1080p H.264 segment, audio, a photo), the real
 * evidock-media-worker (and its test build that misbehaves on request), a real PostgreSQL. Prints TAP. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "common/cmd.h"
#include "common/enroll.h"
#include "clock.h"
#include "db.h"
#include "ingest.h"
#include "hash.h"
#include "media-worker.h"
#include "mp4-layout.h"
#include "pg.h"
#include "signature.h"
#include "source.h"
#include "store.h"

static char workdir[] = "/tmp/evidock-pipeline.XXXXXX";
static char volume[300]; /* one 1080p video of 6 s, 2 tiny-free extra videos, an audio, a photo */
static char device[] = "PIPE001";

static int make_volume(void)
{
        const char *build = getenv("EVIDOCK_BUILD_ROOT");
        CHECK_OR_RET(build);
        snprintf(volume, sizeof(volume), "%s/vol", workdir);
        char cmd[1024];
        snprintf(cmd, sizeof(cmd),
                 "%s/daemon/sim/evidock-sim --out %s --device %s --officer 012370 --unit 440300000000 "
                 "--key %s.key --preset 1080p --videos 3 --audios 1 --photos 1 --duration 6 --quiet && "
                 "%s/daemon/sim/evidock-sim --out %s --key %s.key --print-pubkey >%s.pub",
                 build, volume, device, volume, build, volume, volume, volume);
        return test_run_cmd(cmd);
}

/* The files of the volume of one kind (VIDEO, AUDIO, PHOTO), sorted, as paths; n of them. */
static int list_files(const char *kind, char paths[][400], size_t max, size_t *ret_n)
{
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "find %s/%s -type f | sort", volume, kind);
        FILE *f = popen(cmd, "r");
        CHECK_OR_RET(f);
        size_t n = 0;
        while (n < max && fgets(paths[n], 400, f)) {
                paths[n][strcspn(paths[n], "\n")] = 0;
                n++;
        }
        pclose(f);
        *ret_n = n;
        return 0;
}

static const EvdArchiveTags tags = {
    .case_number = "PIPE-1",
    .recorded_start = "2026-12-04T09:00:00+08:00",
    .maker = "012370",
    .device_id = "PIPE001",
    .original_sha256 = "0000000000000000000000000000000000000000000000000000000000000000",
    .original_name = "test",
};

typedef struct Seen {
        unsigned calls;
        uint64_t last_done, total;
        bool decreased;
        atomic_int *cancel_at_second; /* set on the second call */
} Seen;

static void seen_progress(uint64_t done, uint64_t total, void *userdata)
{
        Seen *s = userdata;
        if (s->calls && done < s->last_done)
                s->decreased = true;
        s->calls++;
        s->last_done = done;
        s->total = total;
        if (s->cancel_at_second && s->calls == 2)
                *s->cancel_at_second = 1;
}

/* How many media workers this process has running now (children named evidock-media-worker). */
static unsigned media_workers_running(void)
{
        char cmd[200];
        snprintf(cmd, sizeof(cmd), "ps -o comm= --ppid %d | grep -c '^evidock-media-w'", (int)getpid());
        FILE *f = popen(cmd, "r");
        unsigned n = 0;
        if (f) {
                if (fscanf(f, "%u", &n) != 1)
                        n = 0;
                pclose(f);
        }
        return n;
}

/* Archives path in the session into a fresh file; the archive copy's packet digest must equal the
 * original's. Returns the job's result. */
static int archive_one(EvdMediaSession *s, const char *path, EvdMediaOptions *mo, EvdError *err)
{
        _cleanup_close_ int in = open(path, O_RDONLY | O_CLOEXEC);
        _cleanup_close_ int out = open(workdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (in < 0 || out < 0)
                return -errno;
        EvdArchiveResult res = {};
        int r = evd_media_session_archive(s, in, path, &tags, NULL, 0, mo, out, &res, err);
        if (r < 0)
                return r;
        uint8_t a[32], b[32];
        uint64_t pa = 0, pb = 0;
        EvdError e2 = {};
        CHECK_OR_RET(evd_media_packets_digest(in, path, NULL, a, &pa, &e2) >= 0);
        CHECK_OR_RET(evd_media_packets_digest(out, path, NULL, b, &pb, &e2) >= 0);
        CHECK_OR_RET(pa == pb && pa == res.packets && memcmp(a, b, 32) == 0 &&
                     memcmp(a, res.packets_sha256, 32) == 0);
        return 0;
}

/* Every file of a docking through one worker process. */
static void test_one_worker_per_session(void)
{
        char v[8][400], a[2][400], p[2][400];
        size_t nv = 0, na = 0, np = 0;
        CHECK(list_files("VIDEO", v, 8, &nv) == 0 && list_files("AUDIO", a, 2, &na) == 0 &&
              list_files("PHOTO", p, 2, &np) == 0);
        CHECK_INT(nv, ==, 3);
        CHECK(na == 1 && np == 1);
        _cleanup_(evd_media_session_freep) EvdMediaSession *s = NULL;
        CHECK(evd_media_session_new(NULL, &s) == 0);
        const char *all[] = {v[0], a[0], v[1], p[0], v[2]};
        for (size_t i = 0; i < ELEMENTSOF(all); i++) {
                EvdError err = {};
                int r = archive_one(s, all[i], NULL, &err);
                if (r < 0)
                        printf("# %s: %s\n", all[i], evd_error_message(&err, r));
                CHECK_INT(r, ==, 0);
        }
        CHECK_INT(evd_media_session_workers_started(s), ==, 1);
}

/* A worker started ahead of the first job (evd_media_session_prestart) serves the jobs that follow. */
static void test_prestart(void)
{
        char v[8][400];
        size_t nv = 0;
        CHECK(list_files("VIDEO", v, 8, &nv) == 0 && nv >= 2);
        _cleanup_(evd_media_session_freep) EvdMediaSession *s = NULL;
        CHECK(evd_media_session_new(NULL, &s) == 0);
        CHECK_INT(media_workers_running(), ==, 0);
        CHECK_INT(evd_media_session_prestart(s), ==, 0);
        CHECK_INT(evd_media_session_workers_started(s), ==, 1);
        CHECK_INT(media_workers_running(), ==, 1);
        CHECK_INT(evd_media_session_prestart(s), ==, 0); /* running already: no second one */
        CHECK_INT(evd_media_session_workers_started(s), ==, 1);
        EvdError err = {};
        CHECK_INT(archive_one(s, v[0], NULL, &err), ==, 0);
        CHECK_INT(archive_one(s, v[1], NULL, &err), ==, 0);
        CHECK_INT(evd_media_session_workers_started(s), ==, 1);
        evd_media_session_free(s);
        s = NULL;
        CHECK_INT(media_workers_running(), ==, 0);
        /* a worker program that does not exist: prestart says so, the first job says why */
        CHECK(evd_media_session_new("/nonexistent/evidock-media-worker", &s) == 0);
        CHECK_INT(evd_media_session_prestart(s), <, 0);
        CHECK_INT(archive_one(s, v[0], NULL, &err), ==, -ENOEXEC);
        CHECK(strstr(err.msg, "/nonexistent/evidock-media-worker") != NULL);
}

/* The archive step's progress: a 6-second 1080p H.264 segment (several MB) reports several increasing
 * steps, the last one at its size. */
static void test_progress(void)
{
        char v[8][400];
        size_t nv = 0;
        CHECK(list_files("VIDEO", v, 8, &nv) == 0 && nv >= 1);
        struct stat st;
        CHECK(stat(v[0], &st) == 0);
        printf("# %s: %lld bytes\n", v[0], (long long)st.st_size);
        CHECK_INT(st.st_size, >, 3 * (long long)EVD_MEDIA_PROGRESS_STEP);
        _cleanup_(evd_media_session_freep) EvdMediaSession *s = NULL;
        CHECK(evd_media_session_new(NULL, &s) == 0);
        Seen seen = {};
        EvdMediaOptions mo = {.progress = seen_progress, .progress_userdata = &seen};
        EvdError err = {};
        int r = archive_one(s, v[0], &mo, &err);
        if (r < 0)
                printf("# %s\n", evd_error_message(&err, r));
        CHECK_INT(r, ==, 0);
        printf("# %u progress reports, last %llu of %llu\n", seen.calls, (unsigned long long)seen.last_done,
               (unsigned long long)seen.total);
        CHECK_INT(seen.calls, >=, 3);
        CHECK(!seen.decreased);
        CHECK_INT(seen.total, ==, st.st_size);
        CHECK_INT(seen.last_done, ==, seen.total);
}

static char *fault_worker(void)
{
        const char *build = getenv("EVIDOCK_BUILD_ROOT");
        char *p = NULL;
        if (!build || asprintf(&p, "%s/tests/e2e/evidock-media-worker-faults", build) < 0)
                return NULL;
        return p;
}

/* A worker that crashes on a file, one that hangs past the deadline, a stop request mid-job: each costs
 * its file and its worker; the next file gets a fresh worker and is archived. */
static void test_failures_restart_the_worker(void)
{
        char v[8][400];
        size_t nv = 0;
        CHECK(list_files("VIDEO", v, 8, &nv) == 0 && nv >= 3);
        _cleanup_free_ char *faulty = fault_worker();
        CHECK(faulty && access(faulty, X_OK) == 0);
        const char *a = strrchr(v[1], '/') + 1, *b = strrchr(v[2], '/') + 1;
        char spec[300];
        snprintf(spec, sizeof(spec), "abort:%s,hang:%s", a, b);
        setenv("EVIDOCK_MEDIA_WORKER_TEST_FAULT", spec, 1);
        _cleanup_(evd_media_session_freep) EvdMediaSession *s = NULL;
        CHECK(evd_media_session_new(faulty, &s) == 0);
        EvdError err = {};
        CHECK_INT(archive_one(s, v[0], NULL, &err), ==, 0);
        err = (EvdError){};
        CHECK_INT(archive_one(s, v[1], NULL, &err), ==, -EBADMSG); /* crashed */
        printf("# %s\n", err.msg);
        CHECK(strstr(err.msg, "crashed"));
        err = (EvdError){};
        CHECK_INT(archive_one(s, v[0], NULL, &err), ==, 0);
        EvdMediaOptions quick = {.deadline_usec = evd_clock_monotonic_us() + 500000};
        err = (EvdError){};
        CHECK_INT(archive_one(s, v[2], &quick, &err), ==, -ETIMEDOUT); /* hung, killed */
        printf("# %s\n", err.msg);
        err = (EvdError){};
        atomic_int cancel = 0;
        Seen seen = {.cancel_at_second = &cancel};
        EvdMediaOptions mo = {.cancel = &cancel, .progress = seen_progress, .progress_userdata = &seen};
        CHECK_INT(archive_one(s, v[0], &mo, &err), ==, -ECANCELED);
        err = (EvdError){};
        CHECK_INT(archive_one(s, v[0], NULL, &err), ==, 0);
        unsetenv("EVIDOCK_MEDIA_WORKER_TEST_FAULT");
        /* the first worker, one after the crash, one after the hang, one after the stop */
        CHECK_INT(evd_media_session_workers_started(s), ==, 4);
}

/* The asynchronous form: the caller comes back after the job's deadline (it copied a large file
 * meanwhile); a worker that finished in time is not blamed for that. Two jobs in a row, one worker. */
static void test_submit_wait_late(void)
{
        char v[8][400];
        size_t nv = 0;
        CHECK(list_files("VIDEO", v, 8, &nv) == 0 && nv >= 2);
        _cleanup_(evd_media_session_freep) EvdMediaSession *s = NULL;
        CHECK(evd_media_session_new(NULL, &s) == 0);
        for (unsigned k = 0; k < 2; k++) {
                _cleanup_close_ int in = open(v[k], O_RDONLY | O_CLOEXEC);
                _cleanup_close_ int out = open(workdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
                CHECK(in >= 0 && out >= 0);
                EvdMediaOptions mo = {.deadline_usec = evd_clock_monotonic_us() + 1500 * 1000};
                EvdError err = {};
                CHECK_INT(evd_media_session_submit(s, in, v[k], &tags, NULL, 0, &mo, out, &err), ==, 0);
                CHECK(evd_media_session_busy(s));
                CHECK_INT(evd_media_session_submit(s, in, v[k], &tags, NULL, 0, &mo, out, &err), ==,
                          -EINVAL);
                closep(&in); /* the worker has its own descriptor */
                usleep(2500 * 1000);
                EvdArchiveResult res = {};
                int r = evd_media_session_wait(s, &res, &err);
                if (r < 0)
                        printf("# %s\n", evd_error_message(&err, r));
                CHECK_INT(r, ==, 0);
                CHECK(!evd_media_session_busy(s));
                uint8_t a[32];
                uint64_t pa = 0;
                CHECK(evd_media_packets_digest(out, v[k], NULL, a, &pa, &err) >= 0);
                CHECK(pa == res.packets && memcmp(a, res.packets_sha256, 32) == 0);
        }
        CHECK_INT(evd_media_session_workers_started(s), ==, 1);
}

/* ---- through evd_ingest_run() --------------------------------------------------------------------- */

/* Per file (the archive copy of one file is made while the next is copied: their events interleave). */
typedef struct Events {
        const char *archive_dir; /* looked at when the first copy begins */
        bool began;
        unsigned workers_at_first_copy;
        bool archive_dir_at_first_copy;
        unsigned archiving, archiving_files, files_done;
        struct {
                char path[256];
                uint64_t last_done, last_total;
        } f[16];
        unsigned n;
        bool decreased, ended_at_total, unknown;
} Events;

static int event_file(Events *e, const char *path)
{
        for (unsigned i = 0; i < e->n; i++)
                if (strcmp(e->f[i].path, path) == 0)
                        return (int)i;
        return -1;
}

static void on_event(const EvdIngestEvent *ev, void *userdata)
{
        Events *e = userdata;
        if (ev->kind == EVD_INGEST_FILE_BEGIN && !e->began) {
                /* the docking's worker is started before the first copy, not after it; the archive
                 * directory of the day is made before the original's bytes are dirty */
                e->began = true;
                e->workers_at_first_copy = media_workers_running();
                struct stat st;
                e->archive_dir_at_first_copy = e->archive_dir && stat(e->archive_dir, &st) == 0;
        }
        if (ev->kind == EVD_INGEST_FILE_DONE) {
                e->files_done++;
                int i = event_file(e, ev->path);
                if (i < 0)
                        e->unknown = true;
                else
                        e->ended_at_total &= e->f[i].last_done == e->f[i].last_total;
        }
        if (ev->kind != EVD_INGEST_FILE_ARCHIVING)
                return;
        int i = event_file(e, ev->path);
        if (ev->done == 0 && i < 0 && e->n < 16) {
                e->archiving_files++;
                i = (int)e->n++;
                snprintf(e->f[i].path, sizeof(e->f[i].path), "%s", ev->path);
        } else if (i < 0) {
                e->unknown = true;
                return;
        } else if (ev->done < e->f[i].last_done)
                e->decreased = true;
        e->archiving++;
        e->f[i].last_done = ev->done;
        e->f[i].last_total = ev->total;
}

static void test_ingest_archive_progress(void)
{
        _cleanup_free_ char *conninfo = NULL;
        CHECK(test_pg_new_database("pipeline", &conninfo) == 0);
        EvdError err = {};
        EvdDb *db = NULL;
        int r = evd_db_open(conninfo, &db, &err);
        if (r < 0)
                printf("# %s\n", evd_error_message(&err, r));
        CHECK(r >= 0);
        char store_dir[400];
        CHECK(test_enroll_volume(db, volume, device, "012370", &err) >= 0);
        snprintf(store_dir, sizeof(store_dir), "%s/store", workdir);
        EvdStore *store = NULL;
        CHECK(evd_store_open(store_dir, &store, &err) >= 0);
        _cleanup_(evd_source_freep) EvdSource *src = NULL;
        CHECK(evd_source_dir_new(volume, &src, &err) >= 0);

        EvdIngestOptions o;
        evd_ingest_options_init(&o);
        o.reserve_bytes = 1 << 20;
        char archive_dir[500];
        snprintf(archive_dir, sizeof(archive_dir), "%s/archive/%s", store_dir, device);
        struct stat st;
        CHECK(stat(archive_dir, &st) < 0); /* a new store: made by this docking */
        Events ev = {.ended_at_total = true, .archive_dir = archive_dir};
        o.on_event = on_event;
        o.userdata = &ev;
        EvdIngestSummary sum = {};
        r = evd_ingest_run(src, store, db, &o, &sum, &err);
        if (r < 0)
                printf("# %s\n", evd_error_message(&err, r));
        CHECK_INT(r, ==, 0);
        printf("# %u files ingested, %u archive progress events over %u files, %u media worker(s); at the "
               "first copy: %u worker(s) running, archive directory %s\n",
               sum.files_ingested, ev.archiving, ev.archiving_files, sum.media_workers,
               ev.workers_at_first_copy, ev.archive_dir_at_first_copy ? "there" : "not there");
        CHECK(ev.began);
        CHECK_INT(ev.workers_at_first_copy, ==, 1);
        CHECK(ev.archive_dir_at_first_copy);
        CHECK_INT(media_workers_running(), ==, 0); /* and it ends with the docking */
        CHECK_INT(sum.files_ingested, ==, 5);
        CHECK_INT(ev.archiving_files, ==, 5);
        CHECK_INT(ev.archiving, >=, 5 + 3); /* the 1080p videos report steps between start and end */
        CHECK(!ev.decreased);
        CHECK(!ev.unknown);
        CHECK(ev.ended_at_total); /* every file's archive step reached its size before the file was done */
        CHECK_INT(sum.media_workers, ==, 1);
        evd_store_free(store);
        evd_db_close(db);
}

/* ---- the archive copy made while the same file is copied (issue 14) ------------------------------- */

static char long_volume[300]; /* one 12-second 1080p segment (~12 MB), its index at the end */
static char long_device[] = "PIPE002";

static int make_long_volume(void)
{
        const char *build = getenv("EVIDOCK_BUILD_ROOT");
        CHECK_OR_RET(build);
        snprintf(long_volume, sizeof(long_volume), "%s/long", workdir);
        char cmd[1024];
        snprintf(cmd, sizeof(cmd),
                 "%s/daemon/sim/evidock-sim --out %s --device %s --officer 012370 --unit 440300000000 "
                 "--key %s.key --preset 1080p --videos 1 --audios 0 --photos 0 --duration 12 --quiet && "
                 "%s/daemon/sim/evidock-sim --out %s --key %s.key --print-pubkey >%s.pub",
                 build, long_volume, long_device, long_volume, build, long_volume, long_volume, long_volume);
        return test_run_cmd(cmd);
}

static int read_whole(const char *path, uint8_t **ret, size_t *ret_n)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        CHECK_OR_RET(fd >= 0 && fstat(fd, &st) == 0);
        uint8_t *b = malloc((size_t)st.st_size + 1);
        CHECK_OR_RET(b);
        CHECK_OR_RET(pread(fd, b, (size_t)st.st_size, 0) == st.st_size);
        *ret = b;
        *ret_n = (size_t)st.st_size;
        return 0;
}

static int find_one(const char *dir, const char *pattern, char *ret, size_t n)
{
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "find %s -type f -name '%s' | sort", dir, pattern);
        FILE *f = popen(cmd, "r");
        CHECK_OR_RET(f);
        unsigned count = 0;
        char line[400];
        while (fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\n")] = 0;
                snprintf(ret, n, "%s", line);
                count++;
        }
        pclose(f);
        if (count != 1)
                printf("# %u files %s under %s\n", count, pattern, dir);
        CHECK_OR_RET(count == 1);
        return 0;
}

/* A directory source whose positioned reads see one byte changed from `flip_at` on: as if the file
 * changed between the read ahead of its index and its copy. */
typedef struct FlipSource {
        EvdSource src;
        EvdSource *inner;
        uint64_t flip_at;
        unsigned flipped;
} FlipSource;

typedef struct FlipReader {
        EvdReader reader;
        EvdReader *inner;
        FlipSource *fs;
} FlipReader;

static ssize_t flip_read(EvdReader *r, void *buf, size_t n, EvdError *err)
{
        FlipReader *f = r->userdata;
        return evd_reader_read(f->inner, buf, n, err);
}

static ssize_t flip_pread(EvdReader *r, void *buf, size_t n, uint64_t off, EvdError *err)
{
        FlipReader *f = r->userdata;
        ssize_t k = evd_reader_pread(f->inner, buf, n, off, err);
        if (k > 0 && f->fs->flip_at >= off && f->fs->flip_at < off + (uint64_t)k) {
                ((uint8_t *)buf)[f->fs->flip_at - off] ^= 0x55;
                f->fs->flipped++;
        }
        return k;
}

static void flip_close(EvdReader *r)
{
        FlipReader *f = r->userdata;
        evd_reader_close(f->inner);
        free(f);
}

static const EvdReaderOps flip_reader_ops = {.read = flip_read, .pread = flip_pread, .close = flip_close};

static int flip_list(EvdSource *s, EvdSourceEntry **ret, size_t *ret_n, EvdError *err)
{
        return evd_source_list(((FlipSource *)s->userdata)->inner, ret, ret_n, err);
}

static int flip_open(EvdSource *s, const char *path, EvdReader **ret, EvdError *err)
{
        FlipSource *fs = s->userdata;
        EvdReader *inner = NULL;
        int r = evd_source_open(fs->inner, path, &inner, err);
        if (r < 0)
                return r;
        FlipReader *f = calloc(1, sizeof(*f));
        if (!f) {
                evd_reader_close(inner);
                return -ENOMEM;
        }
        *f =
            (FlipReader){.reader = {.ops = &flip_reader_ops, .size = inner->size}, .inner = inner, .fs = fs};
        f->reader.userdata = f;
        *ret = &f->reader;
        return 0;
}

static int flip_identity(EvdSource *s, EvdSourceIdentity *ret, EvdError *err)
{
        return evd_source_identity(((FlipSource *)s->userdata)->inner, ret, err);
}

static void flip_free(EvdSource *s)
{
}

static const EvdSourceOps flip_source_ops = {
    .name = "dir", .list = flip_list, .open = flip_open, .identity = flip_identity, .free = flip_free};

/* A fresh database with the long volume's recorder enrolled, a fresh store; then one docking. */
static int ingest_long(const char *tag, bool overlap, EvdSource *src, EvdIngestSummary *sum,
                       char *ret_archive, size_t n)
{
        _cleanup_free_ char *conninfo = NULL;
        char dbname[64], store_dir[400];
        snprintf(dbname, sizeof(dbname), "pipeline_%s", tag);
        CHECK_OR_RET(test_pg_new_database(dbname, &conninfo) == 0);
        EvdError err = {};
        EvdDb *db = NULL;
        int r = evd_db_open(conninfo, &db, &err);
        if (r < 0)
                printf("# %s\n", evd_error_message(&err, r));
        CHECK_OR_RET(r >= 0);
        CHECK_OR_RET(test_enroll_volume(db, long_volume, long_device, "012370", &err) >= 0);
        snprintf(store_dir, sizeof(store_dir), "%s/store-%s", workdir, tag);
        EvdStore *store = NULL;
        CHECK_OR_RET(evd_store_open(store_dir, &store, &err) >= 0);
        _cleanup_(evd_source_freep) EvdSource *own = NULL;
        if (!src) {
                CHECK_OR_RET(evd_source_dir_new(long_volume, &own, &err) >= 0);
                src = own;
        }
        EvdIngestOptions o;
        evd_ingest_options_init(&o);
        o.reserve_bytes = 1 << 20;
        o.archive_while_copying = overlap;
        *sum = (EvdIngestSummary){};
        r = evd_ingest_run(src, store, db, &o, sum, &err);
        if (r < 0)
                printf("# %s\n", evd_error_message(&err, r));
        evd_store_free(store);
        evd_db_close(db);
        CHECK_OR_RET(r == 0);
        printf("# %s: %u ingested, worst %s, %u overlapped, %u fallbacks, %u media worker(s)\n", tag,
               sum->files_ingested, evd_verdict_to_string(sum->worst), sum->files_overlapped,
               sum->overlap_fallbacks, sum->media_workers);
        CHECK_OR_RET(sum->files_ingested == 1 && sum->worst == EVD_VERDICT_INTACT);
        return find_one(store_dir, "*.mkv", ret_archive, n);
}

static int same_file(const char *a, const char *b)
{
        _cleanup_free_ uint8_t *x = NULL, *y = NULL;
        size_t nx = 0, ny = 0;
        CHECK_OR_RET(read_whole(a, &x, &nx) == 0 && read_whole(b, &y, &ny) == 0);
        if (nx != ny || memcmp(x, y, nx) != 0)
                printf("# %s (%zu bytes) and %s (%zu bytes) differ\n", a, nx, b, ny);
        CHECK_OR_RET(nx == ny && memcmp(x, y, nx) == 0);
        return 0;
}

static char plain_archive[400]; /* the long segment's archive copy made after its copy */

/* The archive copy made while the segment is copied is byte for byte the one made after the copy. */
static void test_overlap_same_archive(void)
{
        EvdIngestSummary a, b;
        char overlapped[400];
        CHECK(ingest_long("plain", false, NULL, &a, plain_archive, sizeof(plain_archive)) == 0);
        CHECK_INT(a.files_overlapped, ==, 0);
        CHECK(ingest_long("overlap", true, NULL, &b, overlapped, sizeof(overlapped)) == 0);
        CHECK_INT(b.files_overlapped, ==, 1);
        CHECK_INT(b.overlap_fallbacks, ==, 0);
        CHECK_INT(b.media_workers, ==, 1);
        CHECK(same_file(plain_archive, overlapped) == 0);
        EvdIngestOptions d; /* and it is what a docking does unless told otherwise */
        evd_ingest_options_init(&d);
        CHECK(d.archive_while_copying);
}

/* The index changed between its read ahead and the copy: the overlapped archive copy is given up and
 * made again from the stored original; the result is the same bytes as the plain one. */
static void test_overlap_index_changed(void)
{
        CHECK(plain_archive[0]);
        char v[2][400], path[400];
        size_t nv = 0;
        snprintf(path, sizeof(path), "%s/VIDEO", long_volume);
        {
                char cmd[600];
                snprintf(cmd, sizeof(cmd), "find %s -type f", path);
                FILE *f = popen(cmd, "r");
                CHECK(f);
                while (nv < 2 && fgets(v[nv], 400, f))
                        v[nv][strcspn(v[nv], "\n")] = 0, nv++;
                pclose(f);
        }
        CHECK_INT(nv, ==, 1);
        struct stat st;
        CHECK(stat(v[0], &st) == 0);
        _cleanup_(evd_source_freep) EvdSource *inner = NULL;
        CHECK(evd_source_dir_new(long_volume, &inner, NULL) >= 0);
        FlipSource fs = {
            .src = {.ops = &flip_source_ops}, .inner = inner, .flip_at = (uint64_t)st.st_size - 40};
        fs.src.userdata = &fs;
        EvdIngestSummary sum;
        char archive[400];
        CHECK(ingest_long("changed", true, &fs.src, &sum, archive, sizeof(archive)) == 0);
        CHECK_INT(fs.flipped, ==, 1); /* the index was read ahead once, and seen changed */
        CHECK_INT(sum.files_overlapped, ==, 1);
        CHECK_INT(sum.overlap_fallbacks, ==, 1);
        CHECK(same_file(plain_archive, archive) == 0);
}

/* The worker fails while the segment is still being copied (the test build aborts on a job with bytes
 * read ahead): the archive copy is made the ordinary way by a fresh worker. */
static void test_overlap_worker_fails(void)
{
        CHECK(plain_archive[0]);
        _cleanup_free_ char *faulty = fault_worker();
        CHECK(faulty && access(faulty, X_OK) == 0);
        _cleanup_free_ char *was =
            getenv("EVIDOCK_MEDIA_WORKER") ? strdup(getenv("EVIDOCK_MEDIA_WORKER")) : NULL;
        setenv("EVIDOCK_MEDIA_WORKER", faulty, 1);
        setenv("EVIDOCK_MEDIA_WORKER_TEST_FAULT", "abortgrowing:MP4", 1);
        EvdIngestSummary sum;
        char archive[400];
        int r = ingest_long("workerfails", true, NULL, &sum, archive, sizeof(archive));
        unsetenv("EVIDOCK_MEDIA_WORKER_TEST_FAULT");
        if (was)
                setenv("EVIDOCK_MEDIA_WORKER", was, 1);
        else
                unsetenv("EVIDOCK_MEDIA_WORKER");
        CHECK_INT(r, ==, 0);
        CHECK_INT(sum.files_overlapped, ==, 1);
        CHECK_INT(sum.overlap_fallbacks, ==, 1);
        CHECK_INT(sum.media_workers, ==, 2);
        CHECK(same_file(plain_archive, archive) == 0);
}

static ssize_t reader_pread(void *userdata, void *buf, size_t n, uint64_t off, EvdError *err)
{
        return evd_reader_pread(userdata, buf, n, off, err);
}

/* The session's side alone, with a copy slower than the remux: the worker waits for the bytes, takes the
 * index from the bytes read ahead, and writes the hash it is told at the end. */
static void test_growing_session(void)
{
        CHECK(plain_archive[0]);
        char v[400], cmd[600];
        snprintf(cmd, sizeof(cmd), "find %s/VIDEO -type f", long_volume);
        FILE *f = popen(cmd, "r");
        CHECK(f && fgets(v, sizeof(v), f));
        pclose(f);
        v[strcspn(v, "\n")] = 0;
        _cleanup_close_ int in = open(v, O_RDONLY | O_CLOEXEC);
        _cleanup_close_ int grow = open(workdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        _cleanup_close_ int out1 = open(workdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        _cleanup_close_ int out2 = open(workdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        _cleanup_close_ int ahead = memfd_create("ahead", MFD_CLOEXEC);
        CHECK(in >= 0 && grow >= 0 && out1 >= 0 && out2 >= 0 && ahead >= 0);
        struct stat st;
        CHECK(fstat(in, &st) == 0);
        uint8_t sha[EVD_DIGEST_SIZE];
        char hex[2 * EVD_DIGEST_SIZE + 1];
        CHECK(evd_hash_fd(EVD_HASH_SHA256, in, sha, NULL) >= 0);
        evd_hex(sha, sizeof(sha), hex);
        /* the layout through a positioned read of the original */
        _cleanup_(evd_source_freep) EvdSource *src = NULL;
        _cleanup_(evd_reader_closep) EvdReader *rd = NULL;
        CHECK(evd_source_dir_new(long_volume, &src, NULL) >= 0);
        CHECK(evd_source_open(src, v + strlen(long_volume) + 1, &rd, NULL) >= 0);
        EvdMp4Layout l;
        CHECK_INT(evd_mp4_layout(reader_pread, rd, (uint64_t)st.st_size, 16u << 20, &l, NULL, NULL), ==, 1);
        CHECK(l.tail_size > 0 && l.moov_offset == l.tail_offset);
        _cleanup_free_ uint8_t *tail = malloc(l.tail_size);
        CHECK(tail && pread(in, tail, l.tail_size, (off_t)l.tail_offset) == (ssize_t)l.tail_size);
        CHECK(write(ahead, tail, l.tail_size) == (ssize_t)l.tail_size);

        _cleanup_(evd_media_session_freep) EvdMediaSession *s = NULL;
        CHECK(evd_media_session_new(NULL, &s) == 0);
        EvdArchiveTags t = tags, placeholder_tags = tags;
        t.original_sha256 = hex;
        placeholder_tags.original_sha256 =
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        EvdError err = {};
        EvdArchiveResult r1 = {}, r2 = {};
        int r = evd_media_session_archive(s, in, "plain", &t, NULL, 0, NULL, out1, &r1, &err);
        if (r < 0)
                printf("# %s\n", evd_error_message(&err, r));
        CHECK_INT(r, ==, 0);
        Seen seen = {};
        EvdMediaOptions mo = {.progress = seen_progress, .progress_userdata = &seen};
        CHECK_INT(evd_media_session_submit_growing(s, grow, "plain", &placeholder_tags, NULL, 0, &mo,
                                                   (uint64_t)st.st_size, ahead, l.tail_offset, out2, &err),
                  ==, 0);
        CHECK_INT(evd_media_session_source_done(s, (uint64_t)st.st_size - 1, hex, &err), ==, -EINVAL);
        /* the copy: 256 KiB every 2 ms (~130 MB/s), slower than the remux */
        _cleanup_free_ uint8_t *buf = malloc(256 * 1024);
        CHECK(buf);
        for (off_t off = 0; off < st.st_size;) {
                ssize_t k = pread(in, buf, 256 * 1024, off);
                CHECK(k > 0 && pwrite(grow, buf, (size_t)k, off) == k);
                off += k;
                usleep(2000);
        }
        CHECK_INT(evd_media_session_source_done(s, (uint64_t)st.st_size, hex, &err), ==, 0);
        r = evd_media_session_wait(s, &r2, &err);
        if (r < 0)
                printf("# %s\n", evd_error_message(&err, r));
        CHECK_INT(r, ==, 0);
        CHECK(r1.packets == r2.packets && memcmp(r1.packets_sha256, r2.packets_sha256, 32) == 0);
        CHECK_INT(r1.bytes_written, ==, r2.bytes_written);
        _cleanup_free_ uint8_t *a = malloc(r1.bytes_written), *b = malloc(r2.bytes_written);
        CHECK(a && b && pread(out1, a, r1.bytes_written, 0) == (ssize_t)r1.bytes_written &&
              pread(out2, b, r2.bytes_written, 0) == (ssize_t)r2.bytes_written);
        CHECK(memcmp(a, b, r1.bytes_written) == 0);
        CHECK(memmem(b, r2.bytes_written, hex, 64) != NULL);
        CHECK(memmem(b, r2.bytes_written, placeholder_tags.original_sha256, 64) == NULL);
        CHECK_INT(evd_media_session_workers_started(s), ==, 1);
        CHECK(seen.calls >= 3 && !seen.decreased);
}

int main(void)
{
        if (!mkdtemp(workdir)) {
                printf("Bail out! mkdtemp: %s\n", strerror(errno));
                return 1;
        }
        if (make_volume() < 0) {
                printf("Bail out! evidock-sim could not make the volume\n");
                return 1;
        }
        RUN(test_one_worker_per_session);
        RUN(test_prestart);
        RUN(test_progress);
        RUN(test_failures_restart_the_worker);
        RUN(test_submit_wait_late);
        RUN(test_ingest_archive_progress);
        if (make_long_volume() < 0) {
                printf("Bail out! evidock-sim could not make the long volume\n");
                return 1;
        }
        RUN(test_overlap_same_archive);
        RUN(test_overlap_index_changed);
        RUN(test_overlap_worker_fails);
        RUN(test_growing_session);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", workdir);
        (void)system(cmd);
        return check_finish();
}
