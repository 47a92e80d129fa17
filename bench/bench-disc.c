/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-disc: building and verifying a disc (issue 10), against plain xorriso + sha256sum in the same run.
 *
 *   bench-disc [--gib N] [--small-gib N] [--dir DIR]
 *
 * Makes a store of N GiB of recordings (originals + archive copies, 64 MiB each, pseudo-random content)
 * with their rows in a scratch PostgreSQL (tests/common/pg.h), queues one job on a medium large enough
 * for all of it (one copy) and runs it on a hot-folder pseudo-drive: building the bag, xorriso writing
 * the image with MD5 tags, the read-back of every file (SHA-256) and xorriso's MD5 session check. The
 * baseline, on the same files: `xorriso -md5 on -map STORE / -commit` to an image, then `sha256sum` of
 * every file of the store. Both are timed and given as MB/s of payload.
 * Peak memory: the job runs in a child process each time (its own and its xorriso children's peak RSS
 * from wait4), once for a store of --small-gib (default 1) and once for N (default 4): flat means the
 * larger job needs less than 8 MiB more.
 * Prints key=value lines and ends with PASS or FAIL lines; exit 0 all PASS, 1 a FAIL, 2 broken. */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "common/pg.h"
#include "custody.h"
#include "db.h"
#include "disc-job.h"

#define FILE_MIB  64u
#define DEV       "BENCH01"
#define FLAT_MIB  8.0
#define MIN_RATIO 0.40 /* evidock does strictly more (staging, read-back, MD5 session check) */

static double mono(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int _printf_(1, 2) sh(const char *fmt, ...)
{
        char cmd[4096];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        int st = system(cmd);
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* xorshift: fast incompressible-enough content. */
static int write_random(const char *path, uint64_t bytes, uint64_t seed, uint8_t sha[EVD_DIGEST_SIZE])
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        static uint64_t buf[1 << 17]; /* 1 MiB */
        uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
        EVP_MD_CTX *ctx = NULL;
        evd_hash_begin(EVD_HASH_SHA256, &ctx);
        for (uint64_t done = 0; done < bytes; done += sizeof(buf)) {
                for (size_t i = 0; i < ELEMENTSOF(buf); i++) {
                        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                        buf[i] = x;
                }
                size_t n = (size_t)MIN((uint64_t)sizeof(buf), bytes - done);
                evd_hash_update(ctx, buf, n);
                if (write(fd, buf, n) != (ssize_t)n) {
                        close(fd);
                        EVP_MD_CTX_free(ctx);
                        return -EIO;
                }
        }
        evd_hash_end(ctx, sha);
        EVP_MD_CTX_free(ctx);
        return close(fd) < 0 ? -errno : 0;
}

/* A store of gib GiB and its rows; returns the conninfo (caller frees) or NULL. */
static char *make_store(const char *dir, unsigned gib, const char *tag)
{
        char *ci = NULL;
        if (test_pg_new_database(tag, &ci) < 0)
                return NULL;
        EvdDb *db = NULL;
        if (evd_db_open(ci, &db, NULL) < 0)
                return NULL;
        EvdDbDevice dev = {.device_id = (char *)DEV,
                           .officer_id = (char *)"000001",
                           .unit_code = (char *)"110105000000",
                           .suite = EVD_SUITE_ED25519_SHA256,
                           .public_key_pem =
                               (char *)"-----BEGIN PUBLIC KEY-----\nbench\n-----END PUBLIC KEY-----\n",
                           .key_id = (char *)"00000000000000000000000000000000"};
        if (evd_db_device_enroll(db, &dev, NULL) < 0 ||
            sh("mkdir -p '%s/store/originals/" DEV "/2026-12-01' '%s/store/archive/" DEV "/2026-12-01'", dir,
               dir) != 0)
                return NULL;
        EvdDbDocking d = {.device_id = DEV, .transport = "dir", .docked_us = 1764547200000000};
        int64_t docking;
        if (evd_db_docking_begin(db, &d, &docking, NULL) < 0)
                return NULL;
        unsigned n = gib * 1024 / FILE_MIB / 2; /* half originals, half archive copies */
        for (unsigned i = 0; i < n; i++) {
                char rel_o[128], rel_a[128], path[600];
                uint8_t sha[EVD_DIGEST_SIZE], asha[EVD_DIGEST_SIZE], rec[EVD_DIGEST_SIZE];
                snprintf(rel_o, sizeof(rel_o), "originals/" DEV "/2026-12-01/" DEV "_%04u.MP4", i);
                snprintf(rel_a, sizeof(rel_a), "archive/" DEV "/2026-12-01/" DEV "_%04u.MP4.mkv", i);
                snprintf(path, sizeof(path), "%s/store/%s", dir, rel_o);
                if (write_random(path, (uint64_t)FILE_MIB << 20, i * 2 + 1, sha) < 0)
                        return NULL;
                snprintf(path, sizeof(path), "%s/store/%s", dir, rel_a);
                if (write_random(path, (uint64_t)FILE_MIB << 20, i * 2 + 2, asha) < 0)
                        return NULL;
                evd_hash_buffer(EVD_HASH_SHA256, rel_o, strlen(rel_o), rec);
                EvdDbFile f = {.docking_id = docking,
                               .device_id = DEV,
                               .has_seq = true,
                               .seq = i,
                               .method = EVD_METHOD_VIDEO,
                               .case_number = "BENCH-1",
                               .has_recorded = true,
                               .recorded_start_us = 1764547200000000 + (int64_t)i * 1000000,
                               .recorded_end_us = 1764547200000000 + (int64_t)i * 1000000 + 1,
                               .ingested_us = 1764550000000000,
                               .stored_us = 1764550000000000,
                               .size = (uint64_t)FILE_MIB << 20,
                               .sha256 = sha,
                               .record_hash = rec,
                               .source_path = rel_o,
                               .original_path = rel_o,
                               .archive_path = rel_a,
                               .archive_sha256 = asha,
                               .verdict = EVD_VERDICT_INTACT,
                               .retention_class = "long_term"};
                if (evd_db_file_record(db, &f, NULL, 0, NULL, 0, NULL, NULL) < 0)
                        return NULL;
        }
        evd_db_close(db);
        return ci;
}

typedef struct Run {
        double seconds;
        long self_kb, children_kb;
        int ok;
} Run;

/* Queues and runs the job in a child; its wall time and peak RSS (its own, and its xorriso children's). */
static int run_job(const char *dir, const char *ci, Run *ret)
{
        char hot[600], work[600], store[600];
        snprintf(hot, sizeof(hot), "%s/hot", dir);
        snprintf(work, sizeof(work), "%s/work", dir);
        snprintf(store, sizeof(store), "%s/store", dir);
        if (sh("rm -rf '%s' '%s' && mkdir -p '%s' '%s'", hot, work, hot, work) != 0)
                return -EIO;
        double t0 = mono();
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                EvdDb *db = NULL;
                EvdError err = {};
                if (evd_db_open(ci, &db, &err) < 0)
                        _exit(3);
                EvdDiscJobSpec spec = {.select = {.case_number = "BENCH-1"},
                                       .media = "bd100",
                                       .copies = 1,
                                       .requested_by = "bench",
                                       .store_root = store};
                int64_t job;
                if (evd_disc_job_queue(db, &spec, &job, &err) < 0) {
                        fprintf(stderr, "bench-disc: %s\n", err.msg);
                        _exit(4);
                }
                char drive[700];
                snprintf(drive, sizeof(drive), "dir:%s", hot);
                EvdDiscRunner rn = {
                    .db = db, .store_root = store, .work_dir = work, .drive = drive, .who = "bench"};
                EvdDiscStep step;
                char msg[800];
                int r = evd_disc_run_step(&rn, job, &step, msg, sizeof(msg), &err);
                fprintf(stderr, "bench-disc: %s%s\n", msg, r < 0 ? err.msg : "");
                _exit(r >= 0 && step == EVD_DISC_STEP_JOB_DONE ? 0 : 5);
        }
        int st;
        struct rusage ru;
        if (wait4(pid, &st, 0, &ru) < 0)
                return -errno;
        ret->seconds = mono() - t0;
        ret->self_kb = ru.ru_maxrss;
        struct rusage rc;
        getrusage(RUSAGE_CHILDREN, &rc);
        ret->children_kb = rc.ru_maxrss; /* the largest descendant so far: xorriso */
        ret->ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
        return 0;
}

static uint64_t store_bytes(const char *dir)
{
        char cmd[700], out[64] = "0";
        snprintf(cmd, sizeof(cmd), "du -sb --apparent-size '%s/store' | cut -f1", dir);
        FILE *p = popen(cmd, "r");
        if (p) {
                if (!fgets(out, sizeof(out), p))
                        out[0] = '0';
                pclose(p);
        }
        return strtoull(out, NULL, 10);
}

int main(int argc, char **argv)
{
        unsigned gib = 4, small = 1;
        const char *base = "/tmp";
        static const struct option opts[] = {{"gib", required_argument, NULL, 'g'},
                                             {"small-gib", required_argument, NULL, 's'},
                                             {"dir", required_argument, NULL, 'd'},
                                             {}};
        int o;
        while ((o = getopt_long(argc, argv, "g:s:d:", opts, NULL)) > 0) {
                if (o == 'g')
                        gib = (unsigned)atoi(optarg);
                else if (o == 's')
                        small = (unsigned)atoi(optarg);
                else if (o == 'd')
                        base = optarg;
                else
                        return 2;
        }
        if (gib < 1 || small < 1 || small > gib)
                return 2;
        char dir[512];
        snprintf(dir, sizeof(dir), "%s/evd-bench-disc-%d", base, (int)getpid());

        /* The small job, for the memory comparison. */
        char d_small[600], d_big[600];
        snprintf(d_small, sizeof(d_small), "%s/small", dir);
        snprintf(d_big, sizeof(d_big), "%s/big", dir);
        sh("mkdir -p '%s' '%s'", d_small, d_big);
        fprintf(stderr, "bench-disc: making %u GiB and %u GiB stores in %s\n", small, gib, dir);
        _cleanup_free_ char *ci_small = make_store(d_small, small, "bench_disc_small");
        _cleanup_free_ char *ci_big = make_store(d_big, gib, "bench_disc_big");
        if (!ci_small || !ci_big) {
                fprintf(stderr, "bench-disc: cannot make the stores\n");
                sh("rm -rf '%s'", dir);
                return 2;
        }
        Run rs = {}, rb = {};
        if (run_job(d_small, ci_small, &rs) < 0 || run_job(d_big, ci_big, &rb) < 0 || !rs.ok || !rb.ok) {
                fprintf(stderr, "bench-disc: the disc job failed\n");
                sh("rm -rf '%s'", dir);
                return 2;
        }
        uint64_t bytes = store_bytes(d_big);
        /* The baseline on the same files: xorriso -map + sha256sum. */
        sh("sync");
        double t0 = mono();
        int b1 = sh("xorriso -outdev 'stdio:%s/plain.iso' -compliance iso_9660_level=3 -joliet on "
                    "-rockridge on -md5 on "
                    "-map '%s/store' / -commit >/dev/null 2>&1",
                    dir, d_big);
        double t_xorriso = mono() - t0;
        t0 = mono();
        int b2 = sh("cd '%s/store' && find . -type f -print0 | xargs -0 sha256sum > '%s/plain.sha256'",
                    d_big, dir);
        double t_sha = mono() - t0;
        if (b1 != 0 || b2 != 0) {
                fprintf(stderr, "bench-disc: the baseline failed\n");
                sh("rm -rf '%s'", dir);
                return 2;
        }
        double mb = (double)bytes / 1e6;
        double ours = mb / rb.seconds, plain = mb / (t_xorriso + t_sha);
        double grow_mib = (double)(rb.self_kb - rs.self_kb) / 1024.0;
        printf("payload_mb=%.0f evidock_s=%.2f evidock_mbs=%.1f plain_xorriso_s=%.2f plain_sha256sum_s=%.2f "
               "plain_mbs=%.1f ratio=%.2f\n",
               mb, rb.seconds, ours, t_xorriso, t_sha, plain, ours / plain);
        printf("peak_rss_small_kb=%ld peak_rss_big_kb=%ld growth_mib=%.1f xorriso_peak_kb=%ld (%u GiB vs %u "
               "GiB)\n",
               rs.self_kb, rb.self_kb, grow_mib, rb.children_kb, small, gib);
        bool pass_rate = ours / plain >= MIN_RATIO, pass_flat = grow_mib < FLAT_MIB;
        printf("%s disc build+verify at %.1f MB/s is >= %.2f x plain xorriso + sha256sum (%.1f MB/s)\n",
               pass_rate ? "PASS" : "FAIL", ours, MIN_RATIO, plain);
        printf("%s peak memory flat in job size: %.1f MiB more for %u GiB than for %u GiB (< %.0f MiB)\n",
               pass_flat ? "PASS" : "FAIL", grow_mib, gib, small, FLAT_MIB);
        sh("rm -rf '%s'", dir);
        return pass_rate && pass_flat ? 0 : 1;
}
