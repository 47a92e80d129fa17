/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The ingest pipeline's media side (issue 14 item 1, issue 15 item 2): one media worker serves a whole
 * docking; a file that crashes or hangs it costs only that file and that worker; the archive step reports
 * its progress (bytes of the original remuxed), through the media session and through evd_ingest_run()'s
 * events. Real media from evidock-sim (a multi-MB 1080p H.264 segment, audio, a photo), the real
 * evidock-media-worker (and its test build that misbehaves on request), a real PostgreSQL. Prints TAP. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "clock.h"
#include "db.h"
#include "ingest.h"
#include "media-worker.h"
#include "pg.h"
#include "signature.h"
#include "source.h"
#include "store.h"

static char workdir[] = "/tmp/evidock-pipeline.XXXXXX";
static char volume[300]; /* one 1080p video of 6 s, 2 tiny-free extra videos, an audio, a photo */
static char device[] = "PIPE001";

static int run_cmd(const char *cmd)
{
        int st = system(cmd);
        if (st != 0)
                printf("# command failed (%d): %s\n", st, cmd);
        return st == 0 ? 0 : -1;
}

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
        return run_cmd(cmd);
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
        char pub[400], store_dir[400];
        snprintf(pub, sizeof(pub), "%s.pub", volume);
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        CHECK(evd_key_load_public_pem(pub, &key, &err) >= 0);
        EvdSuite suite;
        CHECK(evd_key_suite(key, &suite) >= 0);
        char key_id[EVD_KEY_ID_STRLEN + 1];
        _cleanup_free_ char *pem = NULL;
        CHECK(evd_key_id(key, key_id) >= 0 && evd_key_public_to_pem(key, &pem, &err) >= 0);
        EvdDbDevice d = {.device_id = device,
                         .officer_id = (char *)"012370",
                         .unit_code = (char *)"440300000000",
                         .suite = suite,
                         .public_key_pem = pem,
                         .key_id = key_id};
        CHECK(evd_db_device_enroll(db, &d, &err) >= 0);
        snprintf(store_dir, sizeof(store_dir), "%s/store", workdir);
        EvdStore *store = NULL;
        CHECK(evd_store_open(store_dir, &store, &err) >= 0);
        _cleanup_(evd_source_freep) EvdSource *src = NULL;
        CHECK(evd_source_dir_new(volume, &src, &err) >= 0);

        EvdIngestOptions o;
        evd_ingest_options_init(&o);
        o.reserve_bytes = 1 << 20;
        Events ev = {.ended_at_total = true};
        o.on_event = on_event;
        o.userdata = &ev;
        EvdIngestSummary sum = {};
        r = evd_ingest_run(src, store, db, &o, &sum, &err);
        if (r < 0)
                printf("# %s\n", evd_error_message(&err, r));
        CHECK_INT(r, ==, 0);
        printf("# %u files ingested, %u archive progress events over %u files, %u media worker(s)\n",
               sum.files_ingested, ev.archiving, ev.archiving_files, sum.media_workers);
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
        RUN(test_progress);
        RUN(test_failures_restart_the_worker);
        RUN(test_submit_wait_late);
        RUN(test_ingest_archive_progress);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", workdir);
        (void)system(cmd);
        return check_finish();
}
