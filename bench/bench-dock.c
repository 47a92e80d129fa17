/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-dock: the shift-end rush (issue 14 item 2): N emulated USB recorders docked at the REAL evidockd,
 * all together and then one after the other, against their raw bus time.
 *
 *   bench-dock --work DIR [--cache DIR] [--recorders N] [--rate MB/s] [--runs N]
 *              [--preset 1080p|tiny] [--videos N] [--duration S] [--photos N] [--max-concurrent N]
 *              [--phases raw,together,one-by-one] [--only I] [--layout readdir|recording]
 *              [--build DIR] [--profiles DIR]
 *
 * Recorders: N evidock-sim volumes (device BNCH001.., officer 2000NN), each with VIDEOS videos of DURATION
 * seconds, one audio and one photo; the last one has PHOTOS (default 200) photos besides. Each is packed
 * into a FAT32 image (mkfs.vfat + mcopy), cached under --cache (default WORK/cache) by its parameters, and
 * served by an emulated recorder (tests/usb/recorder-emu, umockdev) paced at --rate MB/s (default 40, a
 * USB 2 recorder; 0: unpaced), the shipped profile conf/recorders.d/example.conf.
 *
 * Each phase of each run is a fresh process (this program re-executed with LD_PRELOAD=
 * libumockdev-preload.so.0; the testbed owner's heap grows with the bytes it serves, see bench-usb.c) with
 * a fresh database (tests/common/pg.h: EVIDOCK_TEST_PG) and store; the recorders are enrolled with
 * `evidockctl device enroll` (untimed), then evidockd (BUILD/daemon/evidockd, EVIDOCK_MEDIA_WORKER) is
 * started with [usb] max_concurrent = --max-concurrent (default: the shipped default, not set):
 *   raw         the N recorders plugged at once, every block of each image read by a thread of this
 *               process (evd_bot_read, 1 MiB READ(10)s), no evidockd: what the emulated bus delivers to N
 *               readers at once on this machine;
 *   together    the N recorders plugged at once (one after the other within milliseconds);
 *   one-by-one  recorder 1 plugged, docked, unplugged, then recorder 2, ...
 * --only I docks recorder I of the set alone (its cached image; --only 8: the 200-photo one).
 * --layout: how the files lie on the card. readdir (default, the figures before 2026-12-04 16:00): `mcopy
 * -s` in readdir order, which scatters consecutive photos over the card; recording: one file after the other
 * in recording order (the names sort so), as a recorder writes them, each copied on its own so that the
 * directories grow between the files (rec-recording.img beside rec.img in the cache).
 * Docking time of a recorder = from its plug-in (the "add" uevent) to the daemon's "docking N finished"
 * line (EVIDOCK_LOG_FIELDS=1 names its device): the moment evidockd says the recorder may go.
 * CPU = utime+stime+cutime+cstime of evidockd (its media workers, reaped, are in cutime) over the phase;
 * memory = peak of the PSS summed over evidockd and its media workers (sampled every 50 ms). Every run
 * checks in the database that each recorder's files are all stored INTACT: a benchmark that times a
 * wrong answer is no benchmark.
 * Prints a table and a "kv:" line (medians over the runs) for bench/run. Exit 0, or 2 when the benchmark
 * failed (a docking that did not finish, a wrong row count or verdict). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bot.h"
#include "common/pg.h"
#include "macro.h"
#include "proc-tree.h"
#include "usb-profile.h"
#include "usb-raw.h"
#include "usb.h"

#include "bench-util.h"

#include "recorder-emu.h" /* after our headers: GLib redefines MIN/MAX */

extern char **environ;

#define MAX_RECORDERS 32u
#define MAX_RUNS      9u
#define CMD_MAX       (4 * PATH_MAX)
#define DOCK_TIMEOUT_S                                                                                      \
        900.0 /* a phase that takes longer is broken (8 x 100 MB one by one at 40 MB/s: ~30 s) */
#define SAMPLE_MS                                                                                           \
        50 /* reading smaps_rollup of evidockd + 8 workers every 20 ms cost ~6 % of the 2 cores (perf) */
#define IMAGE_SLACK (8ull << 20) /* FAT, directories, cluster rounding */

enum { PHASE_RAW, PHASE_TOGETHER, PHASE_ONE_BY_ONE, _PHASE_MAX };
static const char *const phase_names[_PHASE_MAX] = {"raw", "together", "one-by-one"};

typedef struct Rec {
        char dev[8], officer[7];
        char dir[PATH_MAX]; /* cache entry: vol/, key.pem, pub.pem, rec.img */
        char image[PATH_MAX];
        unsigned n_files; /* media files (VIDEO, AUDIO, PHOTO): what is ingested */
        uint64_t file_bytes, image_bytes;
        /* one phase */
        RecorderEmu *emu;
        libusb_device *usbdev;
        double t_plug, t_done;
        bool done, bad;
        uint64_t bus_bytes, empty_reaps, read_cmds;
} Rec;

typedef struct Opt {
        const char *build, *work, *cache, *profiles, *preset;
        unsigned n, videos, duration, photos, max_concurrent, runs;
        unsigned only;  /* 1..n: dock only this recorder of the set (its cached image), 0: all */
        bool recording; /* --layout recording: the files packed in recording order (rec-recording.img) */
        double rate_mbs;
        bool phase_on[_PHASE_MAX];
} Opt;

/* Per phase and run: what the parent collects from the child (one line of numbers in a file). */
typedef struct PhaseResult {
        double wall_s, cpu_s, harness_cpu_s, peak_pss_mb, peak_anon_mb;
        double t[MAX_RECORDERS];
        uint64_t bus_bytes[MAX_RECORDERS], read_cmds[MAX_RECORDERS];
        uint64_t orig_bytes, archive_bytes;
        unsigned max_procs;
        uint64_t empty_reaps; /* summed over the recorders */
} PhaseResult;

static Rec recs[MAX_RECORDERS];

/* First line of a command's output as an unsigned number (0 on failure). */
static uint64_t sh_u64(const char *fmt, ...) _printf_(1, 2);
static uint64_t sh_u64(const char *fmt, ...)
{
        char cmd[CMD_MAX], out[64] = "0";
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        FILE *p = popen(cmd, "r");
        if (!p)
                return 0;
        if (!fgets(out, sizeof(out), p))
                out[0] = '0';
        pclose(p);
        return strtoull(out, NULL, 10);
}

/* ---- recorders: volumes and images (cached) ---------------------------------------------------------- */

static int recorder_prepare(const Opt *o, unsigned i)
{
        Rec *r = &recs[i];
        snprintf(r->dev, sizeof(r->dev), "BNCH%03u", i + 1);
        snprintf(r->officer, sizeof(r->officer), "2000%02u", i + 1);
        unsigned photos = i == o->n - 1 ? o->photos : 1;
        char dir[PATH_MAX]; /* built apart: the compiler cannot tell recs[i]'s fields apart */
        snprintf(dir, sizeof(dir), "%s/%s-v%u-d%u-a1-p%u-BNCH%03u", o->cache, o->preset, o->videos,
                 o->duration, photos, i + 1);
        memcpy(r->dir, dir, sizeof(dir));
        snprintf(r->image, sizeof(r->image), "%s/rec.img", dir);
        char done[PATH_MAX + 16];
        snprintf(done, sizeof(done), "%s/.complete", r->dir);
        if (access(done, F_OK) < 0) {
                char tmp[PATH_MAX + 8];
                snprintf(tmp, sizeof(tmp), "%s.tmp", r->dir);
                fprintf(stderr, "   bench-dock: making recorder %s (once; cached in %s)\n", r->dev, r->dir);
                /* the images are packed by this process's children: no umockdev preload for them */
                int k = bench_sh(
                    "bench-dock",
                    "rm -rf '%s' '%s' && mkdir -p '%s' && "
                    "env -u LD_PRELOAD '%s/daemon/sim/evidock-sim' --out '%s/vol' --key '%s/key.pem' "
                    "--device %s --officer %s --unit 110105000000 --seed %u --preset %s --videos %u "
                    "--duration %u --audios 1 --photos %u --quiet >/dev/null && "
                    "env -u LD_PRELOAD '%s/daemon/sim/evidock-sim' --out '%s/vol' --key '%s/key.pem' "
                    "--print-pubkey >'%s/pub.pem'",
                    tmp, r->dir, tmp, o->build, tmp, tmp, r->dev, r->officer, i + 1, o->preset, o->videos,
                    o->duration, photos, o->build, tmp, tmp, tmp);
                if (k < 0)
                        return k;
                uint64_t bytes = sh_u64("du -sb --apparent-size '%s/vol' | cut -f1", tmp);
                /* FAT32 as on a recorder's card; below 40 MiB mkfs.vfat has too few clusters for FAT32 and
                 * picks FAT16 (the tiny volumes of the test suite's smoke) */
                uint64_t kb = (bytes + bytes / 50 + IMAGE_SLACK) / 1024;
                k = bench_sh("bench-dock",
                             "env -u LD_PRELOAD mkfs.vfat %s -n EVIDOCK -C '%s/rec.img' %" PRIu64
                             " >/dev/null && MTOOLS_SKIP_CHECK=1 env -u LD_PRELOAD mcopy -s -i '%s/rec.img' "
                             "'%s/vol'/* ::/ && touch '%s/.complete' && mv '%s' '%s'",
                             kb >= 40960 ? "-F 32" : "", tmp, kb, tmp, tmp, tmp, tmp, r->dir);
                if (k < 0)
                        return k;
        }
        if (o->recording) {
                snprintf(r->image, sizeof(r->image), "%s/rec-recording.img", dir);
                if (access(r->image, F_OK) < 0) {
                        uint64_t bytes = sh_u64("du -sb --apparent-size '%s/vol' | cut -f1", r->dir);
                        uint64_t kb = (bytes + bytes / 50 + IMAGE_SLACK) / 1024;
                        int k = bench_sh(
                            "bench-dock",
                            "cd '%s/vol' && rm -f ../rec-recording.img.new && export MTOOLS_SKIP_CHECK=1 && "
                            "env -u LD_PRELOAD mkfs.vfat %s -n EVIDOCK -C ../rec-recording.img.new %" PRIu64
                            " >/dev/null && find . -mindepth 1 -type d -printf '::/%%P\\n' | sort | "
                            "xargs -r env -u LD_PRELOAD mmd -i ../rec-recording.img.new && "
                            "find . -type f -printf '%%f %%P\\n' | sort | while read -r name path; do "
                            "env -u LD_PRELOAD mcopy -i ../rec-recording.img.new \"$path\" \"::/$path\" || "
                            "exit 1; done && mv ../rec-recording.img.new ../rec-recording.img",
                            r->dir, kb >= 40960 ? "-F 32" : "", kb);
                        if (k < 0)
                                return k;
                }
        }
        r->n_files =
            (unsigned)sh_u64("cd '%s/vol' && find VIDEO AUDIO PHOTO -type f 2>/dev/null | wc -l", r->dir);
        r->file_bytes =
            sh_u64("cd '%s/vol' && find VIDEO AUDIO PHOTO -type f -printf '%%s\\n' 2>/dev/null | "
                   "awk '{s += $1} END {print s + 0}'",
                   r->dir);
        struct stat st;
        if (stat(r->image, &st) < 0 || r->n_files == 0) {
                fprintf(stderr, "bench-dock: the recorder %s in %s is incomplete\n", r->dev, r->dir);
                return -ENOENT;
        }
        r->image_bytes = (uint64_t)st.st_size;
        return 0;
}

/* ---- one phase (child process, under umockdev) ---------------------------------------------------------
 */

typedef struct Sampler {
        pid_t pid;
        atomic_bool stop;
        long peak_pss_kb, peak_anon_kb;
        size_t max_procs;
        /* samples that found a media worker's posix_spawn child before its exec (it shares evidockd's
         * address space: counted once), and the peak those would have read counted twice */
        size_t samples, spawn_samples;
        long peak_twice_pss_kb;
} Sampler;

static void *sampler_main(void *arg)
{
        Sampler *s = arg;
        while (!atomic_load(&s->stop)) {
                ProcTreeSample t;
                proc_tree_sample(s->pid, 0, &t);
                s->peak_pss_kb = MAX(s->peak_pss_kb, t.pss_kb);
                s->peak_anon_kb = MAX(s->peak_anon_kb, t.anon_kb);
                s->max_procs = MAX(s->max_procs, t.procs);
                s->samples++;
                s->spawn_samples += t.shared_vm > 0;
                s->peak_twice_pss_kb = MAX(s->peak_twice_pss_kb, t.pss_kb + t.shared_pss_kb);
                struct timespec p = {0, SAMPLE_MS * 1000000L};
                nanosleep(&p, NULL);
        }
        return NULL;
}

typedef struct LogTail {
        int fd;
        char buf[65536];
        size_t len;
        char why[512]; /* the first line saying a docking went wrong */
} LogTail;

static Rec *rec_of_line(const Opt *o, const char *line)
{
        const char *d = strstr(line, "EVIDOCK_DEVICE=");
        if (!d)
                return NULL;
        d += strlen("EVIDOCK_DEVICE=");
        for (unsigned i = 0; i < o->n; i++)
                if (strncmp(d, recs[i].dev, strlen(recs[i].dev)) == 0)
                        return &recs[i];
        return NULL;
}

/* Reads what the daemon logged since the last call; marks recorders whose docking finished. */
static void log_poll(const Opt *o, LogTail *lt)
{
        for (;;) {
                ssize_t n = read(lt->fd, lt->buf + lt->len, sizeof(lt->buf) - 1 - lt->len);
                if (n <= 0)
                        break;
                lt->len += (size_t)n;
                lt->buf[lt->len] = 0;
                char *line = lt->buf, *nl;
                while ((nl = strchr(line, '\n'))) {
                        *nl = 0;
                        Rec *r = rec_of_line(o, line);
                        const char *f = strstr(line, " finished: ");
                        unsigned ing = 0, already = 0, quar = 0, failed = 0;
                        char worst[32] = "";
                        /* the manager's line, the last one of a docking ("docking N finished: K ingested,
                         * ..."), not the library's summary before it ("docking N of DEV finished: K files
                         * seen, ...") */
                        if (r && f && strstr(line, ": docking ") && !r->done &&
                            sscanf(
                                f,
                                " finished: %u ingested, %u already, %u quarantined, %u failed, worst %31s",
                                &ing, &already, &quar, &failed, worst) == 5) {
                                r->t_done = bench_now_s();
                                r->done = true;
                                if (ing != r->n_files || quar || failed ||
                                    strncmp(worst, "INTACT", 6) != 0) {
                                        r->bad = true;
                                        if (!lt->why[0])
                                                snprintf(lt->why, sizeof(lt->why), "%s", line);
                                }
                        } else if (r && (strstr(line, "evidockd[err]") || strstr(line, " spooled: ") ||
                                         strstr(line, "retrying in"))) {
                                r->bad = true;
                                if (!lt->why[0])
                                        snprintf(lt->why, sizeof(lt->why), "%s", line);
                        }
                        line = nl + 1;
                }
                size_t rest = lt->len - (size_t)(line - lt->buf);
                memmove(lt->buf, line, rest);
                lt->len = rest;
                if (lt->len == sizeof(lt->buf) - 1)
                        lt->len = 0; /* a line longer than the buffer: drop it */
        }
}

/* Waits until every recorder in [from, to) has finished (or went wrong); false on timeout. */
static bool wait_done(const Opt *o, LogTail *lt, unsigned from, unsigned to, double deadline)
{
        for (;;) {
                log_poll(o, lt);
                bool all = true;
                for (unsigned i = from; i < to; i++)
                        if (!recs[i].done && !recs[i].bad)
                                all = false;
                if (all)
                        return true;
                if (bench_now_s() > deadline)
                        return false;
                struct timespec p = {0, 5 * 1000000L};
                nanosleep(&p, NULL);
        }
}

static int plug(const Opt *o, UMockdevTestbed *tb, unsigned i)
{
        Rec *r = &recs[i];
        RecorderEmuConfig cfg = {.vendor_id = 0x2e8a, /* conf/recorders.d/example.conf */
                                 .product_id = 0x0947,
                                 .devnum = 2 + i,
                                 .image_path = r->image,
                                 .serial = r->dev,
                                 .officer = r->officer,
                                 .unit = "110105000000",
                                 .rate_bytes_per_s = (uint64_t)(o->rate_mbs * 1e6)};
        r->t_plug = bench_now_s();
        r->emu = recorder_emu_new(tb, &cfg);
        return r->emu ? 0 : -EIO;
}

static void unplug(Rec *r)
{
        if (!r->emu)
                return;
        r->bus_bytes = recorder_emu_bytes_read(r->emu);
        r->empty_reaps = recorder_emu_empty_reaps(r->emu);
        r->read_cmds = recorder_emu_read_commands(r->emu);
        recorder_emu_free(r->emu);
        r->emu = NULL;
}

typedef struct RawJob {
        Rec *r;
        const EvdUsbProfile *profile;
        double t_end;
        int err;
        char msg[256];
} RawJob;

static void *raw_main(void *arg)
{
        RawJob *j = arg;
        EvdError err = {};
        _cleanup_free_ void *buf = malloc(EVD_BOT_MAX_TRANSFER);
        double s = 0;
        uint64_t bytes = 0;
        int r = buf ? usb_raw_read_all(j->r->usbdev, j->profile, buf, &s, &bytes, &err) : -ENOMEM;
        j->t_end = bench_now_s();
        j->err = r < 0 ? r : 0;
        if (r < 0)
                snprintf(j->msg, sizeof(j->msg), "%s", evd_error_message(&err, r));
        return NULL;
}

static int phase_raw(const Opt *o, UMockdevTestbed *tb, PhaseResult *res)
{
        EvdError err = {};
        EvdUsbProfile profile;
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/example.conf", o->profiles);
        int r = evd_usb_profile_parse_file(path, &profile, &err);
        if (r < 0) {
                fprintf(stderr, "bench-dock: %s\n", evd_error_message(&err, r));
                return r;
        }
        libusb_context *usb = NULL;
        if (libusb_init(&usb) < 0)
                return -EIO;
        for (unsigned i = 0; i < o->n && r >= 0; i++) {
                r = plug(o, tb, i);
                if (r >= 0) {
                        recs[i].usbdev = recorder_emu_wait_device(usb, 2 + i, 10.0);
                        if (!recs[i].usbdev)
                                r = -ETIMEDOUT;
                }
        }
        RawJob jobs[MAX_RECORDERS] = {};
        pthread_t th[MAX_RECORDERS];
        unsigned started = 0;
        double cpu0 = bench_cpu_s(), t0 = bench_now_s();
        for (unsigned i = 0; i < o->n && r >= 0; i++) {
                jobs[i] = (RawJob){.r = &recs[i], .profile = &profile};
                recs[i].t_plug = t0;
                if (pthread_create(&th[i], NULL, raw_main, &jobs[i]) != 0)
                        r = -EAGAIN;
                else
                        started++;
        }
        for (unsigned i = 0; i < started; i++) {
                pthread_join(th[i], NULL);
                if (jobs[i].err < 0) {
                        fprintf(stderr, "bench-dock: raw read of %s: %s\n", recs[i].dev, jobs[i].msg);
                        r = jobs[i].err;
                }
                res->t[i] = jobs[i].t_end - t0;
                res->wall_s = MAX(res->wall_s, res->t[i]);
        }
        res->harness_cpu_s = bench_cpu_s() - cpu0;
        for (unsigned i = 0; i < o->n; i++) {
                if (recs[i].usbdev)
                        libusb_unref_device(recs[i].usbdev);
                unplug(&recs[i]);
                res->bus_bytes[i] = recs[i].bus_bytes;
                res->read_cmds[i] = recs[i].read_cmds;
                res->empty_reaps += recs[i].empty_reaps;
        }
        libusb_exit(usb);
        return r;
}

static int write_config(const Opt *o, const char *dir, const char *conninfo, char *config, size_t size)
{
        snprintf(config, size, "%s/evidock.conf", dir);
        _cleanup_fclose_ FILE *f = fopen(config, "we");
        if (!f)
                return -errno;
        fprintf(f,
                "[database]\nurl = %s\nspool_dir = %s/spool\n[store]\nroot = %s/store\nreserve = 64M\n"
                "[ingest]\ndefault_case_number = BENCH-0001\n[usb]\nprofiles_dir = %s\n",
                conninfo, dir, dir, o->profiles);
        if (o->max_concurrent)
                fprintf(f, "max_concurrent = %u\n", o->max_concurrent);
        return fflush(f) == 0 ? 0 : -errno;
}

static int phase_daemon(const Opt *o, int phase, UMockdevTestbed *tb, PhaseResult *res)
{
        char dir[PATH_MAX], config[PATH_MAX + 16], logpath[PATH_MAX + 16], status[PATH_MAX + 16];
        snprintf(dir, sizeof(dir), "%s/%s", o->work, phase_names[phase]);
        int r = bench_sh("bench-dock", "rm -rf '%s' && mkdir -p '%s/spool' '%s/store'", dir, dir, dir);
        _cleanup_free_ char *conninfo = NULL;
        if (r >= 0)
                r = test_pg_new_database("bench_dock", &conninfo);
        if (r >= 0)
                r = write_config(o, dir, conninfo, config, sizeof(config));
        for (unsigned i = 0; i < o->n && r >= 0; i++)
                r = bench_sh(
                    "bench-dock",
                    "env -u LD_PRELOAD -u UMOCKDEV_DIR EVIDOCK_CONFIG='%s' '%s/daemon/evidockctl' device "
                    "enroll "
                    "--device %s --officer %s --unit 110105000000 --key '%s/pub.pem' >/dev/null",
                    config, o->build, recs[i].dev, recs[i].officer, recs[i].dir);
        if (r < 0)
                return r;

        snprintf(logpath, sizeof(logpath), "%s/evidockd.log", dir);
        snprintf(status, sizeof(status), "%s/status.json", dir);
        setenv("EVIDOCK_STATUS_FILE", status, 1);
        setenv("EVIDOCK_LOG_FIELDS", "1", 1);
        char daemon_path[PATH_MAX];
        snprintf(daemon_path, sizeof(daemon_path), "%s/daemon/evidockd", o->build);
        char *argv[] = {daemon_path, "--config", config, NULL};
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 2, logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        pid_t pid = -1;
        r = -posix_spawn(&pid, daemon_path, &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r < 0) {
                fprintf(stderr, "bench-dock: cannot start %s: %s\n", daemon_path, strerror(-r));
                return r;
        }
        /* started: it writes its status file at once */
        for (int k = 0; k < 200 && access(status, F_OK) < 0; k++)
                usleep(20000);
        usleep(300000);

        LogTail lt = {.fd = open(logpath, O_RDONLY | O_CLOEXEC)};
        Sampler s = {.pid = pid};
        pthread_t sampler;
        pthread_create(&sampler, NULL, sampler_main, &s);
        double cpu0 = proc_cpu_s(pid), hcpu0 = bench_cpu_s(), t0 = bench_now_s(),
               deadline = t0 + DOCK_TIMEOUT_S;
        bool ok = true;
        if (phase == PHASE_TOGETHER) {
                for (unsigned i = 0; i < o->n && r >= 0; i++)
                        r = plug(o, tb, i);
                ok = r >= 0 && wait_done(o, &lt, 0, o->n, deadline);
        } else
                for (unsigned i = 0; i < o->n && r >= 0 && ok; i++) {
                        r = plug(o, tb, i);
                        ok = r >= 0 && wait_done(o, &lt, i, i + 1, deadline);
                        unplug(&recs[i]);
                }
        double t_end = bench_now_s();
        /* the last media worker has been reaped when the docking finished: its CPU is in cutime */
        double cpu1 = proc_cpu_s(pid), hcpu1 = bench_cpu_s();
        atomic_store(&s.stop, true);
        pthread_join(sampler, NULL);
        for (unsigned i = 0; i < o->n; i++)
                unplug(&recs[i]);

        kill(pid, SIGTERM);
        int st = 0;
        for (int k = 0; k < 300 && waitpid(pid, &st, WNOHANG) == 0; k++)
                usleep(100000);
        if (waitpid(pid, &st, WNOHANG) == 0) {
                kill(pid, SIGKILL);
                waitpid(pid, &st, 0);
        }
        log_poll(o, &lt);
        close(lt.fd);

        bool bad = !ok || r < 0;
        for (unsigned i = 0; i < o->n; i++) {
                Rec *x = &recs[i];
                if (!x->done || x->bad) {
                        fprintf(stderr, "bench-dock: %s: the docking of %s %s\n", phase_names[phase], x->dev,
                                !x->done ? "did not finish" : "went wrong");
                        bad = true;
                }
        }
        for (unsigned i = 0; i < o->n && !bad; i++) {
                char sql[256];
                snprintf(sql, sizeof(sql),
                         "SELECT count(*) FROM files WHERE device_id = '%s' AND verdict = 'INTACT'",
                         recs[i].dev);
                long long n = test_pg_query_int(conninfo, sql);
                if (n != (long long)recs[i].n_files) {
                        fprintf(stderr, "bench-dock: %s: %lld INTACT rows for %s, expected %u\n",
                                phase_names[phase], n, recs[i].dev, recs[i].n_files);
                        bad = true;
                }
        }
        if (!bad && test_pg_query_int(conninfo, "SELECT count(*) FROM dockings WHERE transport = 'usb'") !=
                        (long long)o->n) {
                fprintf(stderr, "bench-dock: %s: not %u USB dockings in the database\n", phase_names[phase],
                        o->n);
                bad = true;
        }
        if (bad) {
                if (lt.why[0])
                        fprintf(stderr, "bench-dock: evidockd said: %s\n", lt.why);
                bench_sh("bench-dock", "tail -25 '%s' | sed 's/^/bench-dock:   /' >&2", logpath);
                return -EBADMSG;
        }
        res->wall_s = 0;
        for (unsigned i = 0; i < o->n; i++) {
                res->t[i] = recs[i].t_done - recs[i].t_plug;
                res->bus_bytes[i] = recs[i].bus_bytes;
                res->read_cmds[i] = recs[i].read_cmds;
                res->empty_reaps += recs[i].empty_reaps;
                res->wall_s = MAX(res->wall_s, recs[i].t_done - t0);
        }
        if (phase == PHASE_ONE_BY_ONE) { /* the sum of the docking times, without the gaps between them */
                res->wall_s = 0;
                for (unsigned i = 0; i < o->n; i++)
                        res->wall_s += res->t[i];
        }
        (void)t_end;
        res->cpu_s = cpu1 - cpu0;
        res->harness_cpu_s = hcpu1 - hcpu0;
        res->peak_pss_mb = (double)s.peak_pss_kb / 1024.0;
        res->peak_anon_mb = (double)s.peak_anon_kb / 1024.0;
        res->max_procs = (unsigned)s.max_procs;
        if (s.spawn_samples)
                fprintf(
                    stderr,
                    "   bench-dock %s: %zu of %zu memory samples found a media worker being spawned (its "
                    "vfork child shares evidockd's memory, counted once: peak %.1f MB; counted twice it "
                    "would read %.1f MB)\n",
                    phase_names[phase], s.spawn_samples, s.samples, res->peak_pss_mb,
                    (double)s.peak_twice_pss_kb / 1024.0);
        res->orig_bytes = sh_u64("du -sb --apparent-size '%s/store/originals' | cut -f1", dir);
        res->archive_bytes = sh_u64("du -sb --apparent-size '%s/store/archive' | cut -f1", dir);
        bench_sh("bench-dock", "rm -rf '%s/store'", dir);
        return 0;
}

static int run_phase_child(const Opt *o, int phase, const char *out)
{
        UMockdevTestbed *tb = umockdev_testbed_new();
        if (!umockdev_in_mock_environment()) {
                fprintf(stderr, "bench-dock: not running under umockdev (LD_PRELOAD failed)\n");
                return 2;
        }
        PhaseResult res = {};
        int r = phase == PHASE_RAW ? phase_raw(o, tb, &res) : phase_daemon(o, phase, tb, &res);
        g_object_unref(tb);
        if (r < 0)
                return 2;
        _cleanup_fclose_ FILE *f = fopen(out, "we");
        if (!f)
                return 2;
        fprintf(f, "%.6f %.6f %.6f %.3f %.3f %u %" PRIu64 " %" PRIu64 " %" PRIu64, res.wall_s, res.cpu_s,
                res.harness_cpu_s, res.peak_pss_mb, res.peak_anon_mb, res.max_procs, res.orig_bytes,
                res.archive_bytes, res.empty_reaps);
        for (unsigned i = 0; i < o->n; i++)
                fprintf(f, " %.6f %" PRIu64 " %" PRIu64, res.t[i], res.bus_bytes[i], res.read_cmds[i]);
        fputc('\n', f);
        return fflush(f) == 0 ? 0 : 2;
}

/* ---- the parent: one child per phase and run, then the table -------------------------------------------
 */

static int spawn_phase(const Opt *o, char **argv, int argc, int phase, PhaseResult *res)
{
        char out[PATH_MAX];
        snprintf(out, sizeof(out), "%s/phase.out", o->work);
        (void)unlink(out);
        char *extra[] = {"--phase-child", (char *)phase_names[phase], "--phase-out", out};
        int r = bench_respawn_umockdev("bench-dock", argv, argc, extra, (int)ELEMENTSOF(extra));
        if (r < 0)
                return r;
        _cleanup_fclose_ FILE *f = fopen(out, "re");
        if (!f || fscanf(f, "%lf %lf %lf %lf %lf %u %" SCNu64 " %" SCNu64 " %" SCNu64, &res->wall_s,
                         &res->cpu_s, &res->harness_cpu_s, &res->peak_pss_mb, &res->peak_anon_mb,
                         &res->max_procs, &res->orig_bytes, &res->archive_bytes, &res->empty_reaps) != 9)
                return -EBADMSG;
        for (unsigned i = 0; i < o->n; i++)
                if (fscanf(f, "%lf %" SCNu64 " %" SCNu64, &res->t[i], &res->bus_bytes[i],
                           &res->read_cmds[i]) != 3)
                        return -EBADMSG;
        return 0;
}

static bool parse_phases(const char *s, Opt *o)
{
        memset(o->phase_on, 0, sizeof(o->phase_on));
        _cleanup_free_ char *copy = strdup(s);
        char *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                int k = -1;
                for (int p = 0; p < _PHASE_MAX; p++)
                        if (strcmp(t, phase_names[p]) == 0)
                                k = p;
                if (k < 0)
                        return false;
                o->phase_on[k] = true;
        }
        return true;
}

static int phase_from_name(const char *s)
{
        for (int p = 0; p < _PHASE_MAX; p++)
                if (strcmp(s, phase_names[p]) == 0)
                        return p;
        return -1;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
            {"work", required_argument, NULL, 'w'},
            {"cache", required_argument, NULL, 'C'},
            {"recorders", required_argument, NULL, 'n'},
            {"rate", required_argument, NULL, 'r'},
            {"runs", required_argument, NULL, 'R'},
            {"preset", required_argument, NULL, 'p'},
            {"videos", required_argument, NULL, 'v'},
            {"duration", required_argument, NULL, 'd'},
            {"photos", required_argument, NULL, 'f'},
            {"max-concurrent", required_argument, NULL, 'm'},
            {"phases", required_argument, NULL, 'P'},
            {"only", required_argument, NULL, 'O'},
            {"layout", required_argument, NULL, 'L'},
            {"build", required_argument, NULL, 'b'},
            {"profiles", required_argument, NULL, 'F'},
            {"phase-child", required_argument, NULL, 'c'},
            {"phase-out", required_argument, NULL, 'o'},
            {"help", no_argument, NULL, 'h'},
            {},
        };
        Opt o = {.build = getenv("EVIDOCK_BUILD_ROOT"),
                 .profiles = EVD_BENCH_PROFILES,
                 .preset = "1080p",
                 .n = 8,
                 .videos = 2,
                 .duration = 45,
                 .photos = 200,
                 .runs = 1,
                 .rate_mbs = 40};
        parse_phases("raw,together,one-by-one", &o);
        const char *child = NULL, *child_out = NULL;
        int c;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                switch (c) {
                case 'w':
                        o.work = optarg;
                        break;
                case 'C':
                        o.cache = optarg;
                        break;
                case 'n':
                        o.n = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                case 'r':
                        o.rate_mbs = strtod(optarg, NULL);
                        break;
                case 'R':
                        o.runs = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                case 'p':
                        o.preset = optarg;
                        break;
                case 'v':
                        o.videos = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                case 'd':
                        o.duration = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                case 'f':
                        o.photos = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                case 'm':
                        o.max_concurrent = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                case 'P':
                        if (!parse_phases(optarg, &o)) {
                                fprintf(stderr, "bench-dock: --phases wants raw,together,one-by-one\n");
                                return 2;
                        }
                        break;
                case 'O':
                        o.only = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                case 'L':
                        if (strcmp(optarg, "readdir") && strcmp(optarg, "recording")) {
                                fprintf(stderr, "bench-dock: --layout wants readdir or recording\n");
                                return 2;
                        }
                        o.recording = !strcmp(optarg, "recording");
                        break;
                case 'b':
                        o.build = optarg;
                        break;
                case 'F':
                        o.profiles = optarg;
                        break;
                case 'c':
                        child = optarg;
                        break;
                case 'o':
                        child_out = optarg;
                        break;
                case 'h':
                        printf("usage: bench-dock --work DIR [--cache DIR] [--recorders N] [--rate MB/s] "
                               "[--runs N]\n"
                               "       [--preset 1080p|tiny] [--videos N] [--duration S] [--photos N]\n"
                               "       [--max-concurrent N] [--phases raw,together,one-by-one] [--only I]\n"
                               "       [--layout readdir|recording]\n"
                               "       [--build DIR] [--profiles DIR]   (see the comment at the top of "
                               "bench/bench-dock.c)\n");
                        return 0;
                default:
                        return 2;
                }
        }
        if (!o.work || !o.build || o.n < 1 || o.n > MAX_RECORDERS || o.runs < 1 || o.runs > MAX_RUNS ||
            o.rate_mbs < 0 || o.only > o.n || strchr(o.work, '\'') || strchr(o.build, '\'')) {
                fprintf(stderr, "bench-dock: --work DIR and --build DIR (or EVIDOCK_BUILD_ROOT) are needed; "
                                "--recorders 1..32, --runs 1..9, --only 1..N (see --help)\n");
                return 2;
        }
        char cache[PATH_MAX];
        if (!o.cache) {
                snprintf(cache, sizeof(cache), "%s/cache", o.work);
                o.cache = cache;
        }
        if (bench_sh("bench-dock", "mkdir -p '%s' '%s'", o.work, o.cache) < 0)
                return 2;
        for (unsigned i = 0; i < o.n; i++)
                if (recorder_prepare(&o, i) < 0)
                        return 2;
        if (o.only) { /* the set's recorder I alone (the 200-photo one: --only 8) */
                recs[0] = recs[o.only - 1];
                o.n = 1;
        }

        if (child) {
                int p = phase_from_name(child);
                if (p < 0 || !child_out)
                        return 2;
                return run_phase_child(&o, p, child_out);
        }

        uint64_t files = 0, bytes = 0, image_bytes = 0;
        for (unsigned i = 0; i < o.n; i++) {
                files += recs[i].n_files;
                bytes += recs[i].file_bytes;
                image_bytes += recs[i].image_bytes;
        }
        PhaseResult res[_PHASE_MAX][MAX_RUNS] = {};
        for (unsigned run = 0; run < o.runs; run++)
                for (int p = 0; p < _PHASE_MAX; p++) {
                        if (!o.phase_on[p])
                                continue;
                        double la[3] = {};
                        int r = spawn_phase(&o, argv, argc, p, &res[p][run]);
                        (void)getloadavg(la, 3);
                        if (r < 0) {
                                fprintf(stderr, "bench-dock: run %u, %s: failed (%s)\n", run + 1,
                                        phase_names[p], strerror(-r));
                                return 2;
                        }
                        fprintf(stderr, "   bench-dock run %u/%u %-10s %7.2f s  (load average %.2f)\n",
                                run + 1, o.runs, phase_names[p], res[p][run].wall_s, la[0]);
                }

        /* medians over the runs */
        double med[_PHASE_MAX][MAX_RECORDERS + 1] = {}, wall[_PHASE_MAX] = {}, cpu[_PHASE_MAX] = {},
                                               hcpu[_PHASE_MAX] = {}, pss[_PHASE_MAX] = {},
                                               anon[_PHASE_MAX] = {}, reaps[_PHASE_MAX] = {};
        uint64_t bus[MAX_RECORDERS] = {}, reads[MAX_RECORDERS] = {}, archive = 0, orig = 0;
        for (int p = 0; p < _PHASE_MAX; p++) {
                if (!o.phase_on[p])
                        continue;
                double v[MAX_RUNS];
#define MED(field)                                                                                          \
        ({                                                                                                  \
                for (unsigned k = 0; k < o.runs; k++)                                                       \
                        v[k] = res[p][k].field;                                                             \
                bench_median(v, o.runs);                                                                    \
        })
                wall[p] = MED(wall_s);
                cpu[p] = MED(cpu_s);
                hcpu[p] = MED(harness_cpu_s);
                pss[p] = MED(peak_pss_mb);
                anon[p] = MED(peak_anon_mb);
                reaps[p] = MED(empty_reaps);
                for (unsigned i = 0; i < o.n; i++)
                        med[p][i] = MED(t[i]);
#undef MED
                if (p != PHASE_RAW) {
                        for (unsigned i = 0; i < o.n; i++)
                                bus[i] = res[p][0].bus_bytes[i], reads[i] = res[p][0].read_cmds[i];
                        archive = res[p][0].archive_bytes;
                        orig = res[p][0].orig_bytes;
                }
        }
        double rate = o.rate_mbs * 1e6, bus_sum = 0;
        for (unsigned i = 0; i < o.n; i++)
                bus_sum += rate > 0 ? (double)bus[i] / rate : 0;

        bool tg = o.phase_on[PHASE_TOGETHER], ob = o.phase_on[PHASE_ONE_BY_ONE], raw = o.phase_on[PHASE_RAW];
        char conc[48] = "the shipped default";
        if (o.max_concurrent)
                snprintf(conc, sizeof(conc), "%u (--max-concurrent)", o.max_concurrent);
        printf("  %u recorders, %" PRIu64 " files, %.1f MB (images %.1f MB); emulated bus %s; evidockd "
               "[usb] max_concurrent = %s; %u run(s), median\n",
               o.n, files, (double)bytes / 1e6, (double)image_bytes / 1e6,
               rate > 0 ? "paced per recorder" : "unpaced", conc, o.runs);
        printf("  %-9s %5s %8s %9s %7s %11s %11s %9s\n", "recorder", "files", "MB", "bus s", "READs",
               "together s", "one-by-one s", "raw s");
        for (unsigned i = 0; i < o.n; i++) {
                char b[32] = "-", t1[32] = "-", t2[32] = "-", t3[32] = "-";
                if (rate > 0 && bus[i])
                        snprintf(b, sizeof(b), "%.2f", (double)bus[i] / rate);
                if (tg)
                        snprintf(t1, sizeof(t1), "%.2f", med[PHASE_TOGETHER][i]);
                if (ob)
                        snprintf(t2, sizeof(t2), "%.2f", med[PHASE_ONE_BY_ONE][i]);
                if (raw)
                        snprintf(t3, sizeof(t3), "%.2f", med[PHASE_RAW][i]);
                printf("  %-9s %5u %8.1f %9s %7" PRIu64 " %11s %11s %9s\n", recs[i].dev, recs[i].n_files,
                       (double)recs[i].file_bytes / 1e6, b, reads[i], t1, t2, t3);
        }
        /* per byte: docking seconds per MB; the slowest against the fastest */
        double spb_min = 1e30, spb_max = 0;
        unsigned slowest = 0, fastest = 0;
        if (tg)
                for (unsigned i = 0; i < o.n; i++) {
                        double spb = med[PHASE_TOGETHER][i] / ((double)recs[i].file_bytes / 1e6);
                        if (spb > spb_max)
                                spb_max = spb, slowest = i;
                        if (spb < spb_min)
                                spb_min = spb, fastest = i;
                }
        double mb = (double)bytes / 1e6;
        printf("  %-44s %9s %8s %7s %8s %8s\n", "", "wall s", "MB/s", "CPU s", "PSS MB", "anon MB");
        if (rate > 0)
                printf("  %-44s %9.2f %8.1f\n", "sum of the raw bus times (bytes read / rate)", bus_sum,
                       mb / bus_sum);
        if (raw)
                printf("  %-44s %9.2f %8.1f %7s %8s %8s   (emulator CPU %.1f s)\n",
                       "raw: all read at once, no evidockd", wall[PHASE_RAW],
                       (double)image_bytes / 1e6 / wall[PHASE_RAW], "-", "-", "-", hcpu[PHASE_RAW]);
        if (tg)
                printf("  %-44s %9.2f %8.1f %7.1f %8.1f %8.1f   (emulator CPU %.1f s)\n",
                       "together: plug all, last one released", wall[PHASE_TOGETHER],
                       mb / wall[PHASE_TOGETHER], cpu[PHASE_TOGETHER], pss[PHASE_TOGETHER],
                       anon[PHASE_TOGETHER], hcpu[PHASE_TOGETHER]);
        if (ob)
                printf("  %-44s %9.2f %8.1f %7.1f %8.1f %8.1f   (emulator CPU %.1f s)\n",
                       "one by one: sum of the docking times", wall[PHASE_ONE_BY_ONE],
                       mb / wall[PHASE_ONE_BY_ONE], cpu[PHASE_ONE_BY_ONE], pss[PHASE_ONE_BY_ONE],
                       anon[PHASE_ONE_BY_ONE], hcpu[PHASE_ONE_BY_ONE]);
        printf(
            "  docking time: plug-in to evidockd's \"docking N finished\"; MB/s: file bytes / wall (raw: "
            "image "
            "bytes);\n  CPU: evidockd + its media workers over the phase; PSS: peak of evidockd + workers "
            "(50 ms samples);\n  emulator CPU: this process (umockdev's ioctl handler serving the bus), on "
            "the same cores.\n");
        if (tg)
                printf("  per byte (together): slowest %s %.3f s/MB, fastest %s %.3f s/MB: %.2f x\n",
                       recs[slowest].dev, spb_max, recs[fastest].dev, spb_min, spb_max / spb_min);
        printf("kv: recorders=%u files=%" PRIu64 " file_bytes=%" PRIu64 " image_bytes=%" PRIu64
               " orig_bytes=%" PRIu64 " archive_bytes=%" PRIu64
               " rate_mbs=%.1f bus_sum_s=%.3f max_concurrent=%u",
               o.n, files, bytes, image_bytes, orig, archive, o.rate_mbs, bus_sum, o.max_concurrent);
        for (int p = 0; p < _PHASE_MAX; p++) {
                if (!o.phase_on[p])
                        continue;
                const char *k = p == PHASE_RAW ? "raw" : p == PHASE_TOGETHER ? "tog" : "seq";
                double tmin = 1e30, tmax = 0;
                for (unsigned i = 0; i < o.n; i++)
                        tmin = MIN(tmin, med[p][i]), tmax = MAX(tmax, med[p][i]);
                printf(
                    " %s_s=%.3f %s_mbs=%.1f %s_cpu_s=%.2f %s_pss_mb=%.1f %s_anon_mb=%.1f %s_emu_cpu_s=%.2f "
                    "%s_tmin=%.3f %s_tmax=%.3f %s_empty_reaps=%.0f",
                    k, wall[p], k, (double)(p == PHASE_RAW ? image_bytes : bytes) / 1e6 / wall[p], k, cpu[p],
                    k, pss[p], k, anon[p], k, hcpu[p], k, tmin, k, tmax, k, reaps[p]);
        }
        if (tg)
                printf(" starve_ratio=%.3f slowest=%s fastest=%s", spb_max / spb_min, recs[slowest].dev,
                       recs[fastest].dev);
        if (o.n > 0 && ob) {
                /* the one-recorder figure: the first (video) recorder docked alone */
                printf(" one_s=%.3f one_mbs=%.1f one_bus_s=%.3f", med[PHASE_ONE_BY_ONE][0],
                       (double)recs[0].file_bytes / 1e6 / med[PHASE_ONE_BY_ONE][0],
                       rate > 0 ? (double)bus[0] / rate : 0);
                printf(" photos_s=%.3f photos_files=%u photos_mb=%.1f", med[PHASE_ONE_BY_ONE][o.n - 1],
                       recs[o.n - 1].n_files, (double)recs[o.n - 1].file_bytes / 1e6);
        }
        printf("\n");
        return 0;
}
