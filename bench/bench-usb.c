/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-usb: how close docking over USB comes to the bus's own read rate (issue 4).
 *
 *   bench-usb --volume DIR --work DIR [--runs N] [--profile FILE]
 *             [--pg CONNINFO --ctl EVIDOCKCTL --key PUB.pem]
 *
 * Packs the recorder volume DIR (an evidock-sim volume) into a FAT32 image (mkfs.vfat + mcopy) in the
 * scratch directory WORK, docks ONE recorder emulated with umockdev (tests/usb/recorder-emu) serving it,
 * and times N rounds (default 3; the median is printed, min-max beside it) of:
 *   (1) raw      evd_bot_read() of the whole image in EVD_BOT_MAX_TRANSFER-sized READ(10)s: the rate
 *                the emulated bus delivers (image bytes / wall);
 *   (2) one pass evd_source_usb_new() (identity, clock, Bulk-Only, filesystem) + list + evd_copy_stream()
 *                of every file into an unnamed temporary file (O_TMPFILE) in a scratch store directory:
 *                the ingest's copy+SHA-256 path (file bytes / wall, and % of (1));
 *   (3) ingest   with --pg: evd_source_usb_new() + the whole evd_ingest_run() into a fresh store and a
 *                fresh database (CREATE DATABASE on the server of CONNINFO, recorder enrolled with
 *                `evidockctl device enroll`, untimed): adds chain verification, fdatasync, the Matroska
 *                archive copy (evidock-media-worker, EVIDOCK_MEDIA_WORKER) and the database rows.
 * plus (1b): the same open + list with every file read through fs.c and nothing else.
 * They are interleaved in each round so that they see the same load; one device handle at a time.
 * Every round checks that what (2) copied has the SHA-256 of the volume's files and that (3) ingested
 * every file INTACT: a benchmark that times a wrong answer is no benchmark.
 *
 * Each round runs in a fresh process, this program re-executed with LD_PRELOAD=libumockdev-preload.so.0
 * (as tests/usb/test-usb does; see spawn_round() for why not one process). Prints the table, then a
 * "target:" line (issue 4: one pass >= 90 % of raw) and a "kv:" line of key=value pairs for bench/run.
 * Exit status 0 target met, 1 target missed, 2 the benchmark failed. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bot.h"
#include "chain.h"
#include "copy.h"
#include "db.h"
#include "hash.h"
#include "ingest.h"
#include "small-file.h"
#include "source-usb.h"
#include "store.h"
#include "usb-profile.h"
#include "usb.h"

#include "bench-util.h"
#include "usb-raw.h"

#include "recorder-emu.h" /* after our headers: GLib redefines MIN/MAX */

#define MAX_RUNS          99u
#define TARGET_PCT        90.0           /* issue 4: one pass >= this % of the raw READ(10) rate */
#define DOCK_WAIT_S       5.0            /* the emulated device must show up within this */
#define IMAGE_SLACK_BYTES (16ull << 20)  /* room for FAT, directories and cluster rounding */
#define CMD_MAX           (4 * PATH_MAX) /* shell commands built here */

typedef struct Expected {
        char *path;
        uint64_t size;
        uint8_t sha256[EVD_DIGEST_SIZE];
} Expected;

typedef struct Bench {
        const char *volume, *work, *profile_path, *pg, *ctl, *key;
        unsigned runs;
        uint64_t rate_bytes_per_s; /* --rate: the emulated bus is paced (0: unpaced) */
        int overlap;               /* --overlap: archive_while_copying 1 yes, 0 no, -1 the default */
        bool timeline;             /* --timeline: (3)'s events and READ(10)s on stderr */
        char image[PATH_MAX], store[PATH_MAX], config[PATH_MAX];
        char device_id[16], officer_id[16], unit_code[32];
        Expected *files;
        size_t n_files;
        uint64_t file_bytes, image_bytes;
        EvdUsbProfile profile;
        UMockdevTestbed *tb;
        libusb_context *usb;
        RecorderEmu *emu;
        libusb_device *dev;
        PGconn *admin;
        unsigned db_serial;
} Bench;

/* Paths go into shell commands in single quotes. */
static bool shell_safe(const char *s)
{
        return s && !strchr(s, '\'');
}

/* ---- the volume and its image ------------------------------------------------------------------- */

/* The volume's identity, read as evidock reads it (lib/chain.h). */
static int read_identity(Bench *b)
{
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/" EVD_INGEST_DEVICE_FILE, b->volume);
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r = evd_small_file_read(AT_FDCWD, path, EVD_DEVICE_TXT_MAX, &text, &len);
        if (r < 0) {
                fprintf(stderr, "bench-usb: %s: %s\n", path, strerror(-r));
                return r;
        }
        EvdError err = {};
        EvdDeviceInfo info;
        r = evd_device_info_parse(text, len, &info, &err);
        if (r < 0) {
                fprintf(stderr, "bench-usb: %s: %s\n", path, evd_error_message(&err, r));
                return r;
        }
        snprintf(b->device_id, sizeof(b->device_id), "%s", info.device_id);
        snprintf(b->officer_id, sizeof(b->officer_id), "%s", info.officer_id);
        snprintf(b->unit_code, sizeof(b->unit_code), "%s", info.unit_code);
        if (!b->device_id[0] || !b->officer_id[0] || !b->unit_code[0]) {
                fprintf(stderr, "bench-usb: %s lacks device_id, officer_id or unit_code\n", path);
                return -EINVAL;
        }
        return 0;
}

/* Size and SHA-256 of every file of the volume: what the copy must produce. */
static int hash_volume(Bench *b)
{
        EvdError err = {};
        _cleanup_(evd_source_freep) EvdSource *src = NULL;
        EvdSourceEntry *entries = NULL;
        size_t n = 0;
        int r = evd_source_dir_new(b->volume, &src, &err);
        if (r >= 0)
                r = evd_source_list(src, &entries, &n, &err);
        if (r < 0) {
                fprintf(stderr, "bench-usb: %s\n", evd_error_message(&err, r));
                return r;
        }
        b->files = calloc(n ? n : 1, sizeof(*b->files));
        if (!b->files) {
                evd_source_entries_free(entries, n);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n && r >= 0; i++) {
                char path[PATH_MAX];
                snprintf(path, sizeof(path), "%s/%s", b->volume, entries[i].path);
                _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
                Expected *e = &b->files[b->n_files];
                r = fd < 0 ? -errno : evd_hash_fd(EVD_HASH_SHA256, fd, e->sha256, &e->size);
                if (r < 0) {
                        fprintf(stderr, "bench-usb: cannot hash %s: %s\n", path, strerror(-r));
                        break;
                }
                e->path = strdup(entries[i].path);
                if (!e->path)
                        r = -ENOMEM;
                else {
                        b->n_files++;
                        b->file_bytes += e->size;
                }
        }
        evd_source_entries_free(entries, n);
        return r;
}

static const Expected *expected_find(const Bench *b, const char *path)
{
        for (size_t i = 0; i < b->n_files; i++)
                if (!strcmp(b->files[i].path, path))
                        return &b->files[i];
        return NULL;
}

/* A fresh FAT32 image just large enough, filled with mcopy. mkfs.vfat picks the cluster size (4 KiB
 * at this size: FAT32 needs >= 65525 clusters), so the filesystem reader sees many small clusters,
 * contiguous as on a freshly formatted card. */
static int make_image(Bench *b)
{
        snprintf(b->image, sizeof(b->image), "%s/recorder.img", b->work);
        uint64_t kb = (b->file_bytes + b->file_bytes / 50 + IMAGE_SLACK_BYTES) / 1024;
        (void)unlink(b->image);
        int r = bench_sh("bench-usb",
                         "mkfs.vfat -F 32 -n EVIDOCK -C '%s' %" PRIu64 " >/dev/null && "
                         "MTOOLS_SKIP_CHECK=1 mcopy -s -i '%s' '%s'/* ::/",
                         b->image, kb, b->image, b->volume);
        if (r < 0)
                return r;
        struct stat st;
        if (stat(b->image, &st) < 0)
                return -errno;
        b->image_bytes = (uint64_t)st.st_size;
        return 0;
}

/* ---- the emulated recorder ---------------------------------------------------------------------- */

static int dock(Bench *b)
{
        RecorderEmuConfig cfg = {
            .vendor_id = b->profile.vendor_id,
            .product_id = b->profile.product_id,
            .devnum = 2,
            .image_path = b->image,
            .serial = b->device_id,
            .officer = b->officer_id,
            .unit = b->unit_code,
            .rate_bytes_per_s = b->rate_bytes_per_s,
        };
        b->emu = recorder_emu_new(b->tb, &cfg);
        if (!b->emu)
                return -EIO;
        b->dev = recorder_emu_wait_device(b->usb, cfg.devnum, DOCK_WAIT_S);
        if (!b->dev) {
                fprintf(stderr, "bench-usb: the emulated recorder did not appear within %.0f s\n",
                        DOCK_WAIT_S);
                return -ETIMEDOUT;
        }
        return 0;
}

/* ---- the three measurements --------------------------------------------------------------------- */

/* (1) Every block of the image, in READ(10)s of EVD_BOT_MAX_TRANSFER bytes; only the reads are timed. */
static int measure_raw(Bench *b, void *buf, double *ret_s, EvdError *err)
{
        uint64_t bytes = 0;
        int r = usb_raw_read_all(b->dev, &b->profile, buf, ret_s, &bytes, err);
        if (r >= 0 && bytes != b->image_bytes)
                r = evd_error_set(err, -EPROTO, "capacity %" PRIu64 " bytes is not the image size %" PRIu64,
                                  bytes, b->image_bytes);
        return r;
}

/* (2) Open the source as a docking does, list it, and copy+hash every file into the store directory.
 * The copies are discarded unsynced: the ingest's commit (fdatasync + link) belongs to (3). */
static int measure_one_pass(Bench *b, int store_fd, double *ret_s, double *ret_open_s, EvdError *err)
{
        double t0 = bench_now_s();
        _cleanup_(evd_source_freep) EvdSource *src = NULL;
        EvdSourceEntry *entries = NULL;
        size_t n = 0;
        int r = evd_source_usb_new(b->dev, &b->profile, &src, err);
        if (r >= 0)
                r = evd_source_list(src, &entries, &n, err);
        if (r < 0)
                return r;
        double t_open = bench_now_s() - t0;
        uint64_t bytes = 0;
        size_t checked = 0;
        for (size_t i = 0; i < n && r >= 0; i++) {
                _cleanup_(evd_reader_closep) EvdReader *rd = NULL;
                EvdTmpFile tmp = EVD_TMPFILE_INIT;
                EvdCopyResult res = {};
                EvdCopyOptions co = {};
                r = evd_source_open(src, entries[i].path, &rd, err);
                if (r >= 0)
                        r = evd_tmpfile_open(store_fd, &tmp, err);
                if (r >= 0)
                        r = evd_copy_stream(rd, &tmp, &co, &res, err);
                evd_tmpfile_discard(&tmp);
                if (r < 0)
                        break;
                const Expected *e = expected_find(b, entries[i].path);
                if (!e || e->size != res.size || memcmp(e->sha256, res.sha256, EVD_DIGEST_SIZE) != 0) {
                        r = evd_error_set(err, -EBADMSG,
                                          "%s: copied %" PRIu64 " bytes that are not the volume's file",
                                          entries[i].path, res.size);
                        break;
                }
                bytes += res.size;
                checked++;
        }
        *ret_s = bench_now_s() - t0;
        *ret_open_s = t_open;
        evd_source_entries_free(entries, n);
        if (r >= 0 && (checked != b->n_files || bytes != b->file_bytes)) {
                r = evd_error_set(err, -EBADMSG,
                                  "copied %zu files (%" PRIu64 " bytes), the volume has %zu (%" PRIu64 ")",
                                  checked, bytes, b->n_files, b->file_bytes);
        }
        return r;
}

/* (1b) The same open+list, then every file read through the filesystem reader into one buffer, nothing
 * else: what fs.c costs on top of (1), without the copy pipeline's hashing and writing. */
static int measure_file_read(Bench *b, void *buf, double *ret_s, EvdError *err)
{
        double t0 = bench_now_s();
        _cleanup_(evd_source_freep) EvdSource *src = NULL;
        EvdSourceEntry *entries = NULL;
        size_t n = 0;
        int r = evd_source_usb_new(b->dev, &b->profile, &src, err);
        if (r >= 0)
                r = evd_source_list(src, &entries, &n, err);
        if (r < 0)
                return r;
        uint64_t bytes = 0;
        for (size_t i = 0; i < n && r >= 0; i++) {
                _cleanup_(evd_reader_closep) EvdReader *rd = NULL;
                r = evd_source_open(src, entries[i].path, &rd, err);
                ssize_t got = 0;
                while (r >= 0 && (got = evd_reader_read(rd, buf, EVD_BOT_MAX_TRANSFER, err)) > 0)
                        bytes += (uint64_t)got;
                if (got < 0)
                        r = (int)got;
        }
        *ret_s = bench_now_s() - t0;
        evd_source_entries_free(entries, n);
        if (r >= 0 && bytes != b->file_bytes)
                r = evd_error_set(err, -EBADMSG, "read %" PRIu64 " bytes, the volume has %" PRIu64, bytes,
                                  b->file_bytes);
        return r;
}

static int admin_exec(Bench *b, const char *sql)
{
        PGresult *res = PQexec(b->admin, sql);
        int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        if (!ok)
                fprintf(stderr, "bench-usb: %s: %s", sql, PQerrorMessage(b->admin));
        PQclear(res);
        return ok ? 0 : -EIO;
}

/* ---- the timeline of (3) (--timeline) ------------------------------------------------------------- */

#define TL_MAX_EVENTS 256u
#define TL_MAX_READS  4096u
#define TL_GAP_MS     5.0 /* a bus idle longer than this is listed */

typedef struct TlEvent {
        double t; /* s since the timed start */
        EvdIngestEventKind kind;
        char path[48];
        uint64_t done, total;
} TlEvent;

typedef struct Timeline {
        double t0;
        TlEvent ev[TL_MAX_EVENTS];
        size_t n;
} Timeline;

static const char *tl_kind(EvdIngestEventKind k)
{
        switch (k) {
        case EVD_INGEST_DOCKED:
                return "docked";
        case EVD_INGEST_IDENTIFIED:
                return "identified";
        case EVD_INGEST_FILE_BEGIN:
                return "copy begins";
        case EVD_INGEST_FILE_PROGRESS:
                return "copy";
        case EVD_INGEST_FILE_ARCHIVING:
                return "archive";
        case EVD_INGEST_FILE_DONE:
                return "FILE DONE (recorded)";
        case EVD_INGEST_DONE:
                return "docking done";
        default:
                return "event";
        }
}

static void tl_add(Timeline *tl, EvdIngestEventKind kind, const char *path, uint64_t done, uint64_t total)
{
        if (tl->n >= TL_MAX_EVENTS)
                return;
        TlEvent *e = &tl->ev[tl->n++];
        *e = (TlEvent){.t = bench_now_s() - tl->t0, .kind = kind, .done = done, .total = total};
        snprintf(e->path, sizeof(e->path), "%s", path ? path : "");
}

/* Keeps the first and the last progress event of a file's copy and of its archive copy. */
static void tl_on_event(const EvdIngestEvent *ev, void *userdata)
{
        Timeline *tl = userdata;
        if (ev->kind == EVD_INGEST_FINDING)
                return;
        bool progress = ev->kind == EVD_INGEST_FILE_PROGRESS || ev->kind == EVD_INGEST_FILE_ARCHIVING;
        const char *path = ev->path ? ev->path : "";
        if (progress && tl->n >= 2) {
                const TlEvent *p = &tl->ev[tl->n - 1], *pp = &tl->ev[tl->n - 2];
                if (p->kind == ev->kind && pp->kind == ev->kind && !strcmp(p->path, path) &&
                    !strcmp(pp->path, path))
                        tl->n--; /* the previous "so far" gives way to this one */
        }
        tl_add(tl, ev->kind, path, ev->done, ev->total);
}

/* The bus's share of a measurement: READ(10)s, their mean time from command to last byte, and the time
 * between them (the emulator's per-command cost, and whatever the reader did). */
static void tl_bus_summary(const char *what, const RecorderEmuRead *rd, size_t n, double wall_s)
{
        double busy = 0, idle = 0;
        uint64_t bytes = 0;
        for (size_t i = 0; i < n; i++) {
                if (rd[i].done_us)
                        busy += (double)(rd[i].done_us - rd[i].cmd_us) / 1e6;
                if (i > 0 && rd[i - 1].done_us)
                        idle += (double)(rd[i].cmd_us - rd[i - 1].done_us) / 1e6;
                bytes += (uint64_t)rd[i].blocks * 512u;
        }
        fprintf(
            stderr,
            "%s: %zu READ(10)s, %.1f MB, wall %.3f s: data phases %.3f s (%.1f ms per READ), between READs "
            "%.3f s (%.1f ms per READ)\n",
            what, n, (double)bytes / 1e6, wall_s, busy, n ? busy * 1e3 / (double)n : 0, idle,
            n > 1 ? idle * 1e3 / (double)(n - 1) : 0);
}

/* Prints events and READ(10)s in time order: runs of contiguous reads as one line, and every time the bus
 * had no READ(10) outstanding for more than TL_GAP_MS. */
static void tl_print(const Timeline *tl, const RecorderEmuRead *rd, size_t n_rd, double end_s,
                     uint64_t file_bytes)
{
        fprintf(
            stderr,
            "timeline of (3), s from the timed start (evd_source_usb_new), READ(10)s from the emulator:\n");
        size_t e = 0;
        double idle = 0, busy = 0, last_done = 0;
        uint64_t bytes = 0;
        size_t i = 0;
        while (i < n_rd || e < tl->n) {
                double tr = i < n_rd ? (double)rd[i].cmd_us / 1e6 - tl->t0 : 1e99;
                if (e < tl->n && tl->ev[e].t <= tr) {
                        const TlEvent *ev = &tl->ev[e++];
                        fprintf(stderr, "  %8.3f  %-22s %s", ev->t, tl_kind(ev->kind), ev->path);
                        if (ev->total)
                                fprintf(stderr, "  %.1f/%.1f MB", (double)ev->done / 1e6,
                                        (double)ev->total / 1e6);
                        fputc('\n', stderr);
                        continue;
                }
                /* a run of reads, each starting where the last ended, with no event in between */
                size_t k = i;
                double ev_next = e < tl->n ? tl->ev[e].t : 1e99;
                uint64_t run_bytes = 0;
                double gap_in_run = 0;
                while (k < n_rd) {
                        double c = (double)rd[k].cmd_us / 1e6 - tl->t0;
                        if (k > i && (rd[k].lba != rd[k - 1].lba + rd[k - 1].blocks || c > ev_next))
                                break;
                        double d = rd[k].done_us ? (double)rd[k].done_us / 1e6 - tl->t0 : c;
                        double g = last_done > 0 ? c - last_done : 0;
                        if (g * 1e3 > TL_GAP_MS) {
                                if (k > i)
                                        break;
                        }
                        if (g > 0) {
                                idle += g;
                                if (k > i)
                                        gap_in_run += g;
                        }
                        busy += d - c;
                        last_done = d;
                        run_bytes += (uint64_t)rd[k].blocks * 512u;
                        k++;
                }
                double c0 = (double)rd[i].cmd_us / 1e6 - tl->t0;
                double g0 =
                    i > 0 && rd[i - 1].done_us ? c0 - ((double)rd[i - 1].done_us / 1e6 - tl->t0) : c0;
                if (g0 * 1e3 > TL_GAP_MS)
                        fprintf(stderr, "  %8.3f  BUS IDLE %.0f ms\n", c0 - g0, g0 * 1e3);
                fprintf(stderr,
                        "  %8.3f  reads %zu-%zu: %zu x, %.2f MB at LBA %" PRIu64 "-%" PRIu64
                        " until %.3f%s\n",
                        c0, i + 1, k, k - i, (double)run_bytes / 1e6, rd[i].lba,
                        rd[k - 1].lba + rd[k - 1].blocks, last_done,
                        gap_in_run * 1e3 > 1 ? " (small gaps inside)" : "");
                bytes += run_bytes;
                i = k;
        }
        double first = n_rd ? (double)rd[0].cmd_us / 1e6 - tl->t0 : 0;
        fprintf(
            stderr,
            "  summary: %zu READ(10)s, %.1f MB read for %.1f MB of files (+%.1f MB); first READ at %.3f s, "
            "last byte at %.3f s, end %.3f s (tail %.0f ms); bus busy %.3f s, idle between reads %.3f s\n",
            n_rd, (double)bytes / 1e6, (double)file_bytes / 1e6, ((double)bytes - (double)file_bytes) / 1e6,
            first, last_done, end_s, (end_s - last_done) * 1e3, busy, idle);
}

/* (3) A fresh database with the recorder enrolled and a fresh store (untimed), then the docking: open
 * the USB source and run the whole ingest. */
static int measure_ingest(Bench *b, double *ret_s, uint64_t *ret_bytes, EvdError *err)
{
        char dbname[64], sql[128], conninfo[2048];
        snprintf(dbname, sizeof(dbname), "bench_usb_%d_%u", (int)getpid(), ++b->db_serial);
        snprintf(sql, sizeof(sql), "CREATE DATABASE %s", dbname);
        int r = admin_exec(b, sql);
        if (r < 0)
                return r;
        /* libpq: a keyword given twice takes its last value */
        snprintf(conninfo, sizeof(conninfo), "%s dbname=%s", b->pg, dbname);
        snprintf(b->store, sizeof(b->store), "%s/store-%u", b->work, b->db_serial);
        snprintf(b->config, sizeof(b->config), "%s/evidock.conf", b->work);
        {
                _cleanup_fclose_ FILE *f = fopen(b->config, "we");
                if (!f)
                        return -errno;
                fprintf(f,
                        "[database]\nurl = %s\n[store]\nroot = %s\nreserve = 64M\n"
                        "[ingest]\ndefault_case_number = BENCH-0001\n",
                        conninfo, b->store);
        }
        /* the bench's own preload is not the dock's: evidockctl runs without it */
        r = bench_sh("bench-usb",
                     "env -u LD_PRELOAD EVIDOCK_CONFIG='%s' '%s' device enroll --device '%s' --officer '%s' "
                     "--unit '%s' --key '%s' >/dev/null",
                     b->config, b->ctl, b->device_id, b->officer_id, b->unit_code, b->key);
        if (r >= 0) {
                _cleanup_(evd_db_closep) EvdDb *db = NULL;
                _cleanup_(evd_store_freep) EvdStore *store = NULL;
                EvdIngestOptions io;
                evd_ingest_options_init(&io);
                io.default_case_number = "BENCH-0001";
                io.reserve_bytes = 64u << 20;
                if (b->overlap >= 0)
                        io.archive_while_copying = b->overlap;
                static Timeline tl;
                tl = (Timeline){};
                if (b->timeline) {
                        io.on_event = tl_on_event;
                        io.userdata = &tl;
                }
                EvdIngestSummary sum = {};
                r = evd_store_open(b->store, &store, err);
                if (r >= 0)
                        r = evd_db_open(conninfo, &db, err);
                if (r >= 0) {
                        sync();
                        if (b->timeline)
                                recorder_emu_trace_reads(b->emu, TL_MAX_READS);
                        double t0 = bench_now_s();
                        tl.t0 = t0;
                        _cleanup_(evd_source_freep) EvdSource *src = NULL;
                        r = evd_source_usb_new(b->dev, &b->profile, &src, err);
                        if (r >= 0 && b->timeline)
                                tl_add(&tl, EVD_INGEST_DOCKED, "(source open)", 0, 0);
                        if (r >= 0)
                                r = evd_ingest_run(src, store, db, &io, &sum, err);
                        *ret_s = bench_now_s() - t0;
                        if (b->timeline) {
                                RecorderEmuRead *rd = NULL;
                                size_t n_rd = recorder_emu_trace_take(b->emu, &rd);
                                tl_print(&tl, rd, n_rd, *ret_s, sum.bytes_copied);
                                tl_bus_summary("(3) ingest", rd, n_rd, *ret_s);
                                g_free(rd);
                        }
                }
                if (r >= 0 && (sum.files_ingested != sum.files_seen || sum.worst != EVD_VERDICT_INTACT ||
                               sum.files_seen + 2 != b->n_files)) {
                        r = evd_error_set(
                            err, -EBADMSG,
                            "ingest: %u of %u files ingested, worst %s (the volume has %zu files)",
                            sum.files_ingested, sum.files_seen, evd_verdict_to_string(sum.worst),
                            b->n_files);
                }
                *ret_bytes = sum.bytes_copied;
        }
        (void)bench_sh("bench-usb", "rm -rf '%s'", b->store);
        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", dbname);
        (void)admin_exec(b, sql);
        return r;
}

/* ---- main ----------------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
        fputs("usage: bench-usb --volume DIR --work DIR [--runs N] [--profile FILE] [--rate MB_PER_S]\n"
              "                 [--pg CONNINFO --ctl EVIDOCKCTL --key PUB.pem [--overlap yes|no] "
              "[--timeline]]\n",
              f);
}

/* cpu: CPU seconds of this process per run (the emulator included), NULL when not meaningful. */
static void print_row(const char *what, const double *s, const double *cpu, unsigned n, uint64_t bytes,
                      double raw_mbs)
{
        double lo = s[0], hi = s[0];
        for (unsigned i = 1; i < n; i++)
                lo = MIN(lo, s[i]), hi = MAX(hi, s[i]);
        double med = bench_median(s, n), mbs = (double)bytes / 1e6 / med;
        char cpu_col[16] = "";
        if (cpu)
                snprintf(cpu_col, sizeof(cpu_col), "%.2f", bench_median(cpu, n));
        printf("  %-52s %7.3f %7.1f %6.0f %% %6s   [%.3f-%.3f s]\n", what, med, mbs,
               raw_mbs > 0 ? 100.0 * mbs / raw_mbs : 100.0, cpu_col, lo, hi);
}

/* One round, in a process of its own (see main): dock the recorder, time (1), (1b), (2) and (3) once and
 * write the figures as key=value pairs to out. Returns 0 or a negative errno (message on stderr). */
static int round_main(Bench *b, const char *out_path)
{
        /* The preload is loaded in this process now; its children (the media worker, evidockctl) go
         * without it, as they do on a dock. UMOCKDEV_DIR stays: the preload library reads it. */
        unsetenv("LD_PRELOAD");
        int r = hash_volume(b);
        if (r < 0)
                return r;
        struct stat st;
        if (stat(b->image, &st) < 0)
                return -errno;
        b->image_bytes = (uint64_t)st.st_size;
        if (b->pg) {
                b->admin = PQconnectdb(b->pg);
                if (PQstatus(b->admin) != CONNECTION_OK) {
                        fprintf(stderr, "bench-usb: %s", PQerrorMessage(b->admin));
                        return -ECONNREFUSED;
                }
        }
        char store_dir[PATH_MAX];
        snprintf(store_dir, sizeof(store_dir), "%s/onepass", b->work);
        if (mkdir(store_dir, 0755) < 0 && errno != EEXIST)
                return -errno;
        _cleanup_close_ int store_fd = open(store_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (store_fd < 0)
                return -errno;

        b->tb = umockdev_testbed_new();
        if (!umockdev_in_mock_environment()) {
                fprintf(stderr, "bench-usb: not running under umockdev (LD_PRELOAD failed)\n");
                return -ENOPKG;
        }
        if (libusb_init(&b->usb) < 0)
                return -EIO;
        r = dock(b);

        static uint8_t buf[EVD_BOT_MAX_TRANSFER];
        EvdError err = {};
        double raw_s = 0, read_s = 0, pass_s = 0, open_s = 0, ingest_s = 0;
        double raw_cpu = 0, read_cpu = 0, pass_cpu = 0, c0;
        uint64_t ingest_bytes = 0;
        if (r >= 0) {
                sync(); /* nothing dirty from an earlier step competes with the timed one */
                if (b->timeline)
                        recorder_emu_trace_reads(b->emu, TL_MAX_READS);
                c0 = bench_cpu_s();
                r = measure_raw(b, buf, &raw_s, &err);
                raw_cpu = bench_cpu_s() - c0;
                if (b->timeline) {
                        RecorderEmuRead *rd = NULL;
                        size_t n_rd = recorder_emu_trace_take(b->emu, &rd);
                        tl_bus_summary("(1) raw", rd, n_rd, raw_s);
                        g_free(rd);
                }
        }
        if (r >= 0) {
                c0 = bench_cpu_s();
                r = measure_file_read(b, buf, &read_s, &err);
                read_cpu = bench_cpu_s() - c0;
        }
        if (r >= 0) {
                sync();
                c0 = bench_cpu_s();
                r = measure_one_pass(b, store_fd, &pass_s, &open_s, &err);
                pass_cpu = bench_cpu_s() - c0;
        }
        if (r >= 0 && b->pg)
                r = measure_ingest(b, &ingest_s, &ingest_bytes, &err);
        if (r < 0 && err.code)
                fprintf(stderr, "bench-usb: %s\n", evd_error_message(&err, r));
        unsigned rejected = b->emu ? recorder_emu_rejected_opcodes(b->emu) : 0;
        if (b->dev)
                libusb_unref_device(b->dev);
        recorder_emu_free(b->emu);
        libusb_exit(b->usb);
        g_object_unref(b->tb);
        if (b->admin)
                PQfinish(b->admin);
        (void)rmdir(store_dir);
        if (r < 0)
                return r;
        if (rejected != 0) {
                fprintf(stderr, "bench-usb: %u SCSI command(s) outside the read set reached the recorder\n",
                        rejected);
                return -EPERM;
        }
        _cleanup_fclose_ FILE *f = fopen(out_path, "we");
        if (!f)
                return -errno;
        fprintf(f, "%.6f %.6f %.6f %.6f %.6f %.6f %.6f %.6f %" PRIu64 "\n", raw_s, read_s, pass_s, open_s,
                ingest_s, raw_cpu, read_cpu, pass_cpu, ingest_bytes);
        return fflush(f) == 0 ? 0 : -EIO;
}

/* Runs one round in a fresh process with the umockdev preload. A process per round because the process
 * that owns the testbed grows by about twice the bytes transferred (umockdev's ioctl emulation or the
 * emulator, not evidock: bot.c allocates nothing per read), and past a few GB every transfer slows
 * down 2-3x: a long-lived process would time its own heap. */
static int spawn_round(Bench *b, char **argv, int argc, double ret[8], uint64_t *ret_ingest_bytes)
{
        char out_path[PATH_MAX];
        snprintf(out_path, sizeof(out_path), "%s/round.out", b->work);
        (void)unlink(out_path);
        char *extra[] = {"--image", b->image, "--round-out", out_path};
        int r = bench_respawn_umockdev("bench-usb", argv, argc, extra, (int)ELEMENTSOF(extra));
        if (r < 0)
                return r;
        _cleanup_fclose_ FILE *f = fopen(out_path, "re");
        if (!f || fscanf(f, "%lf %lf %lf %lf %lf %lf %lf %lf %" SCNu64, &ret[0], &ret[1], &ret[2], &ret[3],
                         &ret[4], &ret[5], &ret[6], &ret[7], ret_ingest_bytes) != 9)
                return -EBADMSG;
        (void)unlink(out_path);
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
            {"volume", required_argument, NULL, 'v'}, {"work", required_argument, NULL, 'w'},
            {"runs", required_argument, NULL, 'n'},   {"profile", required_argument, NULL, 'P'},
            {"pg", required_argument, NULL, 'p'},     {"ctl", required_argument, NULL, 'c'},
            {"key", required_argument, NULL, 'k'},    {"help", no_argument, NULL, 'h'},
            {"image", required_argument, NULL, 'I'},  {"round-out", required_argument, NULL, 'R'},
            {"rate", required_argument, NULL, 'r'},   {"overlap", required_argument, NULL, 'o'},
            {"timeline", no_argument, NULL, 'T'},     {},
        };
        Bench b = {.runs = 3, .profile_path = EVD_BENCH_PROFILE, .overlap = -1};
        const char *round_out = NULL;
        int o;
        while ((o = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                switch (o) {
                case 'v':
                        b.volume = optarg;
                        break;
                case 'w':
                        b.work = optarg;
                        break;
                case 'n':
                        b.runs = (unsigned)strtoul(optarg, NULL, 10);
                        break;
                case 'P':
                        b.profile_path = optarg;
                        break;
                case 'p':
                        b.pg = optarg;
                        break;
                case 'c':
                        b.ctl = optarg;
                        break;
                case 'k':
                        b.key = optarg;
                        break;
                case 'I':
                        snprintf(b.image, sizeof(b.image), "%s", optarg);
                        break; /* internal: a round */
                case 'R':
                        round_out = optarg;
                        break; /* internal: a round */
                case 'r':
                        b.rate_bytes_per_s = (uint64_t)(strtod(optarg, NULL) * 1e6);
                        break;
                case 'o':
                        if (strcmp(optarg, "yes") && strcmp(optarg, "no")) {
                                usage(stderr);
                                return 2;
                        }
                        b.overlap = !strcmp(optarg, "yes");
                        break;
                case 'T':
                        b.timeline = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        bool want_ingest = b.pg || b.ctl || b.key;
        if (!b.volume || !b.work || b.runs < 1 || b.runs > MAX_RUNS ||
            (want_ingest && (!b.pg || !b.ctl || !b.key)) || !shell_safe(b.volume) || !shell_safe(b.work) ||
            (want_ingest && (!shell_safe(b.ctl) || !shell_safe(b.key)))) {
                usage(stderr);
                return 2;
        }

        EvdError err = {};
        int r = evd_usb_profile_parse_file(b.profile_path, &b.profile, &err);
        if (r < 0) {
                fprintf(stderr, "bench-usb: %s\n", evd_error_message(&err, r));
                return 2;
        }
        if (read_identity(&b) < 0)
                return 2;
        if (round_out)
                return round_main(&b, round_out) < 0 ? 2 : 0;

        if (mkdir(b.work, 0755) < 0 && errno != EEXIST) {
                fprintf(stderr, "bench-usb: %s: %m\n", b.work);
                return 2;
        }
        if (hash_volume(&b) < 0 || make_image(&b) < 0)
                return 2;

        double raw_s[MAX_RUNS], read_s[MAX_RUNS], pass_s[MAX_RUNS], open_s[MAX_RUNS], ingest_s[MAX_RUNS];
        double raw_cpu[MAX_RUNS], read_cpu[MAX_RUNS], pass_cpu[MAX_RUNS], round_pct[MAX_RUNS];
        uint64_t ingest_bytes = 0;
        for (unsigned i = 0; i < b.runs && r >= 0; i++) {
                double v[8];
                r = spawn_round(&b, argv, argc, v, &ingest_bytes);
                if (r < 0) {
                        fprintf(stderr, "bench-usb: round %u failed (%s)\n", i + 1, strerror(-r));
                        break;
                }
                raw_s[i] = v[0], read_s[i] = v[1], pass_s[i] = v[2], open_s[i] = v[3], ingest_s[i] = v[4];
                raw_cpu[i] = v[5], read_cpu[i] = v[6], pass_cpu[i] = v[7];
                /* (3) against (1) of the same round: both saw the same load */
                round_pct[i] =
                    want_ingest && ingest_s[i] > 0
                        ? 100.0 * ((double)ingest_bytes / ingest_s[i]) / ((double)b.image_bytes / raw_s[i])
                        : 0;
                fprintf(
                    stderr,
                    "   bench-usb round %u/%u: raw %.3f s, fs read %.3f s, one pass %.3f s, ingest %.3f s "
                    "(%.1f %% of raw)\n",
                    i + 1, b.runs, raw_s[i], read_s[i], pass_s[i], ingest_s[i], round_pct[i]);
        }
        (void)unlink(b.image);
        if (r < 0)
                return 2;

        double raw_med = bench_median(raw_s, b.runs), raw_mbs = (double)b.image_bytes / 1e6 / raw_med;
        double read_mbs = (double)b.file_bytes / 1e6 / bench_median(read_s, b.runs);
        double pass_med = bench_median(pass_s, b.runs), pass_mbs = (double)b.file_bytes / 1e6 / pass_med;
        double pass_pct = 100.0 * pass_mbs / raw_mbs, open_med = bench_median(open_s, b.runs);
        double ingest_med = 0, ingest_mbs = 0, ingest_pct = 0, round_med = 0, round_lo = 0, round_hi = 0;
        if (want_ingest) {
                ingest_med = bench_median(ingest_s, b.runs);
                ingest_mbs = (double)ingest_bytes / 1e6 / ingest_med;
                ingest_pct = 100.0 * ingest_mbs / raw_mbs;
                round_med = bench_median(round_pct, b.runs);
                round_lo = round_hi = round_pct[0];
                for (unsigned i = 1; i < b.runs; i++)
                        round_lo = MIN(round_lo, round_pct[i]), round_hi = MAX(round_hi, round_pct[i]);
        }

        printf("  volume: %zu files, %.1f MB, in a %.1f MB FAT32 image; profile %s; %u runs (median, "
               "min-max); bus %s\n",
               b.n_files, (double)b.file_bytes / 1e6, (double)b.image_bytes / 1e6, b.profile.name, b.runs,
               b.rate_bytes_per_s ? "paced" : "unpaced (as fast as the emulator goes)");
        if (b.rate_bytes_per_s)
                printf("  the emulated recorder serves READ(10) data at %.0f MB/s at most, like a USB 2 "
                       "recorder\n",
                       (double)b.rate_bytes_per_s / 1e6);
        printf("  %-52s %7s %7s %8s %6s\n", "", "wall s", "MB/s", "of raw", "CPU s");
        print_row("(1) raw READ(10)s of the whole image, 1 MiB each", raw_s, raw_cpu, b.runs, b.image_bytes,
                  raw_mbs);
        print_row("(1b) the same files read through fs.c, nothing else", read_s, read_cpu, b.runs,
                  b.file_bytes, raw_mbs);
        print_row("(2) one pass: open+list, copy+SHA-256 to O_TMPFILE", pass_s, pass_cpu, b.runs,
                  b.file_bytes, raw_mbs);
        if (want_ingest)
                print_row("(3) evd_ingest_run through the USB source", ingest_s, NULL, b.runs, ingest_bytes,
                          raw_mbs);
        printf("  (1) image bytes / wall of the reads; (1b), (2): file bytes / wall from evd_source_usb_new "
               "(open +\n"
               "  list: %.0f ms) to the last byte; (2) checks every file against the volume's SHA-256, "
               "unsynced.\n",
               open_med * 1e3);
        if (want_ingest) {
                printf(
                    "  (3) file bytes / wall of open + evd_ingest_run: (2) plus chain verification, "
                    "fdatasync,\n"
                    "  the Matroska archive copy (evidock-media-worker) and its SHA-256, database rows.\n");
                printf("  (3) of (1) in the same round (the same load): median %.1f %% [%.1f-%.1f %%]\n",
                       round_med, round_lo, round_hi);
        }
        printf(
            "  CPU s: CPU time of the benchmark process, all threads: the emulated bus (umockdev's ioctl\n"
            "  handler) runs in it, on the same 2 cores as the copy; a real host controller does not.\n");
        bool pass = pass_pct >= TARGET_PCT;
        printf(
            "target: issue 4: USB ingest >= %.0f %% of raw READ(10): one pass %.1f %% (%.1f of %.1f MB/s)",
            TARGET_PCT, pass_pct, pass_mbs, raw_mbs);
        if (want_ingest)
                printf("; whole ingest %.1f %%", ingest_pct);
        printf(": %s\n", pass ? "PASS" : "FAIL");
        printf(
            "kv: runs=%u files=%zu file_bytes=%" PRIu64 " image_bytes=%" PRIu64
            " raw_s=%.3f raw_mbs=%.1f read_mbs=%.1f read_pct=%.1f pass_s=%.3f pass_mbs=%.1f pass_pct=%.1f"
            " open_ms=%.0f ingest_s=%.3f ingest_mbs=%.1f ingest_pct=%.1f round_pct=%.1f round_pct_min=%.1f"
            " round_pct_max=%.1f target_pct=%.0f\n",
            b.runs, b.n_files, b.file_bytes, b.image_bytes, raw_med, raw_mbs, read_mbs,
            100.0 * read_mbs / raw_mbs, pass_med, pass_mbs, pass_pct, open_med * 1e3, ingest_med, ingest_mbs,
            ingest_pct, round_med, round_lo, round_hi, TARGET_PCT);
        for (size_t i = 0; i < b.n_files; i++)
                free(b.files[i].path);
        free(b.files);
        return pass ? 0 : 1;
}
