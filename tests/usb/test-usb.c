/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Docking over USB against recorders emulated with umockdev (no kernel USB needed): profiles, the
 * vendor control protocol, Bulk-Only mass storage, FAT32/exFAT through TSK, hotplug, lying devices. */
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "clock.h"
#include "bot.h"
#include "fs.h"
#include "source-usb.h"
#include "usb.h"

#include "check.h"
#include "recorder-emu.h" /* after our headers: GLib redefines MIN/MAX */

#define VID 0x2e8a
#define PID 0x0947

static char tmpdir[] = "/tmp/evd-usb-test.XXXXXX";
static char fat16_img[PATH_MAX], dirloop_img[PATH_MAX];
static char fat32_img[PATH_MAX], exfat_img[PATH_MAX], loop_img[PATH_MAX], bigsize_img[PATH_MAX];
static char src_dir[PATH_MAX];
static UMockdevTestbed *tb;
static libusb_context *ctx;
static unsigned next_devnum = 2;

/* Expected content: relative path -> sha256 hex */
typedef struct Expected {
        char path[256];
        char sha[65];
} Expected;
static Expected fat32_expected[8], exfat_expected[8];
static size_t n_fat32_expected, n_exfat_expected;

static void hex(const uint8_t *d, size_t n, char *out)
{
        for (size_t i = 0; i < n; i++)
                sprintf(out + 2 * i, "%02x", d[i]);
}

static int run(const char *cmd)
{
        int r = system(cmd);
        if (r != 0)
                fprintf(stderr, "# command failed (%d): %s\n", r, cmd);
        return r == 0 ? 0 : -1;
}

static int write_file(const char *path, const void *data, size_t n)
{
        _cleanup_fclose_ FILE *f = fopen(path, "we");
        if (!f || fwrite(data, 1, n, f) != n)
                return -1;
        return 0;
}

static void sha256_hex(const void *data, size_t n, char out[65])
{
        uint8_t d[32];
        unsigned len = 0;
        EVP_Digest(data, n, d, &len, EVP_sha256(), NULL);
        hex(d, 32, out);
}

/* --- images --- */

static int add_source_file(const char *rel, const void *data, size_t n)
{
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", src_dir, rel);
        char *slash = strrchr(path, '/');
        *slash = 0;
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", path);
        if (run(cmd) < 0)
                return -1;
        *slash = '/';
        if (write_file(path, data, n) < 0)
                return -1;
        Expected *e = &fat32_expected[n_fat32_expected++];
        snprintf(e->path, sizeof(e->path), "%s", rel);
        sha256_hex(data, n, e->sha);
        return 0;
}

static int make_fat32(void)
{
        snprintf(src_dir, sizeof(src_dir), "%s/src", tmpdir);
        /* A 16 MiB "recording": pseudo-random, so that any misplaced block changes the hash. */
        size_t big = 16u << 20;
        uint8_t *data = malloc(big);
        if (!data)
                return -1;
        uint64_t x = 0x9e3779b97f4a7c15ull;
        for (size_t i = 0; i < big; i += 8) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                memcpy(data + i, &x, 8);
        }
        int r = add_source_file("DCIM/100EVD/执法记录_0001.MP4", data, big);
        free(data);
        if (r < 0)
                return -1;
        const char *manifest = "device=A123456\nofficer=012345\n";
        if (add_source_file("manifest.txt", manifest, strlen(manifest)) < 0 ||
            add_source_file("DCIM/100EVD/AUDIO/录音.WAV", "RIFF....WAVEfmt ", 16) < 0 ||
            add_source_file("EMPTY.DAT", "", 0) < 0)
                return -1;
        /* 8.3 names in the root for the corruption tests: LOOP.BIN (64 KiB) and BIG.BIN (4 KiB). */
        static uint8_t blob[65536];
        memset(blob, 0xa5, sizeof(blob));
        if (add_source_file("LOOP.BIN", blob, sizeof(blob)) < 0 ||
            add_source_file("BIG.BIN", blob, 4096) < 0)
                return -1;

        snprintf(fat32_img, sizeof(fat32_img), "%s/fat32.img", tmpdir);
        char cmd[4 * PATH_MAX];
        snprintf(cmd, sizeof(cmd),
                 "mkfs.vfat -F 32 -n EVIDOCK -C '%s' 65536 >/dev/null && "
                 "MTOOLS_SKIP_CHECK=1 mcopy -s -i '%s' '%s'/* ::/",
                 fat32_img, fat32_img, src_dir);
        if (run(cmd) < 0)
                return -1;
        /* FAT16 keeps its root directory outside the cluster area: worth its own run. */
        snprintf(fat16_img, sizeof(fat16_img), "%s/fat16.img", tmpdir);
        snprintf(
            cmd, sizeof(cmd),
            "mkfs.vfat -F 16 -C '%s' 40960 >/dev/null && MTOOLS_SKIP_CHECK=1 mcopy -s -i '%s' '%s'/* ::/",
            fat16_img, fat16_img, src_dir);
        return run(cmd);
}

static int load_exfat(void)
{
        const char *root = getenv("EVIDOCK_SOURCE_ROOT");
        if (!root)
                root = ".";
        snprintf(exfat_img, sizeof(exfat_img), "%s/exfat.img", tmpdir);
        char cmd[3 * PATH_MAX];
        snprintf(cmd, sizeof(cmd), "xz -dc '%s/tests/usb/fixtures/exfat.img.xz' > '%s'", root, exfat_img);
        if (run(cmd) < 0)
                return -1;
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/tests/usb/fixtures/exfat.sha256", root);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
                return -1;
        char line[512];
        while (fgets(line, sizeof(line), f) && n_exfat_expected < ELEMENTSOF(exfat_expected)) {
                Expected *e = &exfat_expected[n_exfat_expected++];
                line[strcspn(line, "\n")] = 0;
                memcpy(e->sha, line, 64);
                e->sha[64] = 0;
                snprintf(e->path, sizeof(e->path), "%s", line + 66);
        }
        return n_exfat_expected > 0 ? 0 : -1;
}

/* FAT32 layout helpers for the corruption tests. */
typedef struct Fat32 {
        uint32_t bps, spc, reserved, nfats, fatsz, root_cluster;
} Fat32;

static uint32_t le32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t cluster_offset(const Fat32 *f, uint32_t c)
{
        return ((uint64_t)f->reserved + (uint64_t)f->nfats * f->fatsz + (uint64_t)(c - 2) * f->spc) * f->bps;
}

/* Copies fat32_img to out and lets patch() change it. Finds the root directory entry for name83. */
static int patch_image(const char *out, const char *name83,
                       int (*patch)(int fd, const Fat32 *f, uint64_t dirent_off))
{
        char cmd[2 * PATH_MAX + 16];
        snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", fat32_img, out);
        if (run(cmd) < 0)
                return -1;
        _cleanup_close_ int fd = open(out, O_RDWR | O_CLOEXEC);
        uint8_t bpb[512];
        if (fd < 0 || pread(fd, bpb, 512, 0) != 512)
                return -1;
        Fat32 f = {
            .bps = bpb[11] | bpb[12] << 8,
            .spc = bpb[13],
            .reserved = bpb[14] | bpb[15] << 8,
            .nfats = bpb[16],
            .fatsz = le32(bpb + 36),
            .root_cluster = le32(bpb + 44),
        };
        /* The root directory of a fresh image is small: its first cluster is enough. */
        size_t csize = f.bps * f.spc;
        uint8_t *dir = malloc(csize);
        uint64_t base = cluster_offset(&f, f.root_cluster);
        if (!dir || pread(fd, dir, csize, (off_t)base) != (ssize_t)csize) {
                free(dir);
                return -1;
        }
        int r = -1;
        for (size_t i = 0; i + 32 <= csize; i += 32)
                if (memcmp(dir + i, name83, 11) == 0) {
                        r = patch(fd, &f, base + i);
                        break;
                }
        free(dir);
        return r;
}

static int patch_loop(int fd, const Fat32 *f, uint64_t off)
{
        uint8_t e[32];
        if (pread(fd, e, 32, (off_t)off) != 32)
                return -1;
        uint32_t first = (uint32_t)(e[20] | e[21] << 8) << 16 | (uint32_t)(e[26] | e[27] << 8);
        /* The file's third cluster points back to its first: a chain that never ends. */
        uint32_t c = first + 2, back = first;
        for (uint32_t i = 0; i < f->nfats; i++) {
                uint64_t pos = ((uint64_t)f->reserved + (uint64_t)i * f->fatsz) * f->bps + (uint64_t)c * 4;
                if (pwrite(fd, &back, 4, (off_t)pos) != 4)
                        return -1;
        }
        return 0;
}

static int patch_bigsize(int fd, const Fat32 *f, uint64_t off)
{
        uint32_t size = 0x7ffff000u; /* 2 GiB: far past the end of a 64 MiB volume */
        return pwrite(fd, &size, 4, (off_t)off + 28) == 4 ? 0 : -1;
}

/* --- libusb helpers --- */

static void profile_default(EvdUsbProfile *p)
{
        evd_usb_profile_init(p);
        snprintf(p->name, sizeof(p->name), "test");
        p->vendor_id = VID;
        p->product_id = PID;
        p->control_interface = 0;
        p->storage_interface = 1;
        p->timeout_ms = 2000;
        p->max_retries = 2;
}

typedef struct Docked {
        RecorderEmu *emu;
        libusb_device *dev;
} Docked;

static int dock(Docked *d, const char *image, RecorderEmuFault fault, int64_t clock_offset_s,
                unsigned unplug_after)
{
        RecorderEmuConfig cfg = {
            .vendor_id = VID,
            .product_id = PID,
            .devnum = next_devnum++,
            .image_path = image,
            .clock_offset_s = clock_offset_s,
            .fault = fault,
            .unplug_after_reads = unplug_after,
        };
        d->emu = recorder_emu_new(tb, &cfg);
        if (!d->emu)
                return -1;
        d->dev = recorder_emu_wait_device(ctx, cfg.devnum, 5.0);
        return d->dev ? 0 : -1;
}

static void undock(Docked *d)
{
        if (d->dev)
                libusb_unref_device(d->dev);
        recorder_emu_free(d->emu);
        *d = (Docked){};
}

/* Lists a source and checks every expected file's content hash, read in pieces. */
static int verify_source(EvdSource *s, const Expected *exp, size_t n_exp)
{
        EvdSourceEntry *entries = NULL;
        size_t n = 0;
        EvdError err = {};
        int r = s->ops->list(s, &entries, &n, &err);
        if (r < 0) {
                printf("# list: %s\n", evd_error_message(&err, r));
                return r;
        }
        int result = 0;
        if (n != n_exp) {
                printf("# listed %zu files, expected %zu\n", n, n_exp);
                result = -1;
        }
        for (size_t i = 0; i < n_exp && result == 0; i++) {
                const EvdSourceEntry *e = NULL;
                for (size_t k = 0; k < n; k++)
                        if (!strcmp(entries[k].path, exp[i].path))
                                e = &entries[k];
                if (!e) {
                        printf("# %s not listed\n", exp[i].path);
                        result = -1;
                        break;
                }
                EvdReader *reader = NULL;
                r = s->ops->open(s, e->path, &reader, &err);
                if (r < 0) {
                        printf("# open %s: %s\n", e->path, evd_error_message(&err, r));
                        result = r;
                        break;
                }
                EVP_MD_CTX *md = EVP_MD_CTX_new();
                EVP_DigestInit_ex(md, EVP_sha256(), NULL);
                static uint8_t buf[300000]; /* deliberately not a power of two */
                uint64_t total = 0;
                ssize_t got;
                while ((got = reader->ops->read(reader, buf, sizeof(buf), &err)) > 0) {
                        EVP_DigestUpdate(md, buf, (size_t)got);
                        total += (uint64_t)got;
                }
                uint8_t d[32];
                char h[65];
                EVP_DigestFinal_ex(md, d, NULL);
                EVP_MD_CTX_free(md);
                hex(d, 32, h);
                reader->ops->close(reader);
                if (got < 0) {
                        printf("# read %s: %s\n", e->path, evd_error_message(&err, (int)got));
                        result = (int)got;
                } else if (total != e->size || strcmp(h, exp[i].sha) != 0) {
                        printf("# %s: %" PRIu64 " bytes sha256 %s, expected %" PRIu64 " bytes %s\n", e->path,
                               total, h, e->size, exp[i].sha);
                        result = -1;
                }
        }
        evd_source_entries_free(entries, n);
        return result;
}

/* --- tests --- */

static void test_time_format(void)
{
        char t[15];
        int64_t s;
        CHECK_OK(evd_usb_time_format(1700000000, 480, t));
        CHECK_STREQ(t, "20231115061320");
        CHECK_OK(evd_usb_time_parse(t, 14, 480, &s));
        CHECK_INT(s, ==, 1700000000);
        CHECK_INT(evd_usb_time_parse("20230231120000", 14, 480, &s), ==, -EPROTO);
        CHECK_INT(evd_usb_time_parse("2023111506200A", 14, 480, &s), ==, -EPROTO);
        CHECK_INT(evd_usb_time_parse("2023111506200", 13, 480, &s), ==, -EPROTO);
}

static void test_image_fat32(void)
{
        _cleanup_(evd_source_freep) EvdSource *s = NULL;
        EvdError err = {};
        int r = evd_source_image_new(fat32_img, &s, &err);
        if (r < 0)
                printf("# %s\n", evd_error_message(&err, r));
        CHECK_OK(r);
        CHECK_OK(verify_source(s, fat32_expected, n_fat32_expected));
}

static void test_image_fat16(void)
{
        _cleanup_(evd_source_freep) EvdSource *s = NULL;
        EvdError err = {};
        int r = evd_source_image_new(fat16_img, &s, &err);
        if (r < 0)
                printf("# %s\n", evd_error_message(&err, r));
        CHECK_OK(r);
        CHECK_OK(verify_source(s, fat32_expected, n_fat32_expected));
}

static int patch_dirloop(int fd, const Fat32 *f, uint64_t off)
{
        /* DCIM's first cluster becomes the root directory's: DCIM now contains the root, itself. */
        uint16_t hi = (uint16_t)(f->root_cluster >> 16), lo = (uint16_t)f->root_cluster;
        return pwrite(fd, &hi, 2, (off_t)off + 20) == 2 && pwrite(fd, &lo, 2, (off_t)off + 26) == 2 ? 0 : -1;
}

static void test_directory_loop(void)
{
        snprintf(dirloop_img, sizeof(dirloop_img), "%s/dirloop.img", tmpdir);
        CHECK_OK(patch_image(dirloop_img, "DCIM       ", patch_dirloop));
        _cleanup_(evd_source_freep) EvdSource *s = NULL;
        EvdError err = {};
        CHECK_OK(evd_source_image_new(dirloop_img, &s, &err));
        EvdSourceEntry *entries = NULL;
        size_t n = 0;
        double t0 = ((double)evd_clock_monotonic_us() / 1e6);
        int r = s->ops->list(s, &entries, &n, &err);
        if (r < 0)
                printf("# directory loop: %s\n", evd_error_message(&err, r));
        bool dcim_files = false, loop_named = false;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                if (!strncmp(entries[i].path, "DCIM/", 5))
                        dcim_files = true;
                if (entries[i].type == EVD_SOURCE_DAMAGED && !strcmp(entries[i].path, "DCIM") &&
                    entries[i].detail && strstr(entries[i].detail, "loops back"))
                        loop_named = true;
        }
        evd_source_entries_free(entries, n);
        /* The root is walked once; what used to be in DCIM is gone (its clusters are the root's); the
         * loop itself is reported as damage at DCIM. */
        CHECK_OK(r);
        CHECK_INT(n, ==, 5); /* manifest.txt, EMPTY.DAT, LOOP.BIN, BIG.BIN, and DCIM (damaged) */
        CHECK(!dcim_files);
        CHECK(loop_named);
        CHECK(((double)evd_clock_monotonic_us() / 1e6) - t0 < 2.0);
}

static int patch_dirchain(int fd, const Fat32 *f, uint64_t off)
{
        /* DCIM's first cluster now lies far past the end of the volume: its directory chain is broken */
        uint16_t hi = 0x0fff, lo = 0xff00;
        return pwrite(fd, &hi, 2, (off_t)off + 20) == 2 && pwrite(fd, &lo, 2, (off_t)off + 26) == 2 ? 0 : -1;
}

/* A directory whose cluster chain is broken is a DAMAGED entry (at the directory, or at its parent when
 * TSK leaves it out); the files beside it are still listed (the listing used to fail as a whole,
 * stopping the docking). */
static void test_fat_broken_directory_chain(void)
{
        char img[PATH_MAX];
        snprintf(img, sizeof(img), "%s/dirchain.img", tmpdir);
        CHECK_OK(patch_image(img, "DCIM       ", patch_dirchain));
        _cleanup_(evd_source_freep) EvdSource *s = NULL;
        EvdError err = {};
        CHECK_OK(evd_source_image_new(img, &s, &err));
        EvdSourceEntry *entries = NULL;
        size_t n = 0;
        int r = s->ops->list(s, &entries, &n, &err);
        if (r < 0)
                printf("# broken directory chain: %s\n", evd_error_message(&err, r));
        size_t files = 0;
        bool named = false;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                printf("# %s: %s %s\n", entries[i].path, evd_source_entry_type_to_string(entries[i].type),
                       entries[i].detail ? entries[i].detail : "");
                files += entries[i].type == EVD_SOURCE_FILE;
                /* TSK leaves the broken directory out; the raw entries of its parent still show it */
                named |=
                    entries[i].type == EVD_SOURCE_DAMAGED &&
                    (!strncmp(entries[i].path, "DCIM", 4) || (!entries[i].path[0] && entries[i].detail &&
                                                              strstr(entries[i].detail, "could be read")));
        }
        evd_source_entries_free(entries, n);
        CHECK_OK(r);
        CHECK(named);
        CHECK_INT(files, >=, 4); /* manifest.txt, EMPTY.DAT, LOOP.BIN, BIG.BIN in the root */
}

/* A FAT32 card with directories nested 20 deep: the part below EVD_SOURCE_MAX_DEPTH is a DAMAGED entry
 * (it used to be left out silently), the rest of the card is listed. */
static void test_fat_too_deep(void)
{
        char dir[PATH_MAX], img[PATH_MAX], cmd[4 * PATH_MAX];
        snprintf(dir, sizeof(dir), "%s/deep-src", tmpdir);
        snprintf(img, sizeof(img), "%s/deep.img", tmpdir);
        snprintf(
            cmd, sizeof(cmd),
            "mkdir -p '%s'/V/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d && echo x > '%s'/V/TOP.MP4 && "
            "echo y > '%s'/V/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/DEEP.MP4 && "
            "mkfs.vfat -F 32 -C '%s' 65536 >/dev/null && MTOOLS_SKIP_CHECK=1 mcopy -s -i '%s' '%s'/* ::/",
            dir, dir, dir, img, img, dir);
        CHECK_OK(run(cmd));
        _cleanup_(evd_source_freep) EvdSource *s = NULL;
        EvdError err = {};
        CHECK_OK(evd_source_image_new(img, &s, &err));
        EvdSourceEntry *entries = NULL;
        size_t n = 0;
        int r = s->ops->list(s, &entries, &n, &err);
        size_t files = 0, damaged = 0;
        bool deep_named = false;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                printf("# %s: %s %s\n", entries[i].path, evd_source_entry_type_to_string(entries[i].type),
                       entries[i].detail ? entries[i].detail : "");
                files += entries[i].type == EVD_SOURCE_FILE;
                if (entries[i].type == EVD_SOURCE_DAMAGED) {
                        damaged++;
                        deep_named = !strncmp(entries[i].path, "V/d/d/d", 7) && entries[i].detail &&
                                     strstr(entries[i].detail, "deeper");
                }
        }
        evd_source_entries_free(entries, n);
        CHECK_OK(r);
        CHECK_INT(files, ==, 1); /* V/TOP.MP4 */
        CHECK_INT(damaged, ==, 1);
        CHECK(deep_named);
}

static void test_image_exfat(void)
{
        _cleanup_(evd_source_freep) EvdSource *s = NULL;
        EvdError err = {};
        int r = evd_source_image_new(exfat_img, &s, &err);
        if (r < 0)
                printf("# %s\n", evd_error_message(&err, r));
        CHECK_OK(r);
        CHECK_OK(verify_source(s, exfat_expected, n_exfat_expected));
}

static void test_usb_identity_and_clock(void)
{
        Docked d = {};
        CHECK_OK(dock(&d, fat32_img, RECORDER_EMU_FAULT_NONE, 3600, 0));
        EvdUsbProfile p;
        profile_default(&p);
        EvdError err = {};
        EvdSource *s = NULL;
        int r = evd_source_usb_new(d.dev, &p, &s, &err);
        if (r < 0)
                printf("# %s\n", evd_error_message(&err, r));
        EvdSourceIdentity id = {};
        if (r >= 0)
                r = s->ops->identity(s, &id, &err);
        bool clock_set = recorder_emu_clock_was_set(d.emu), storage = recorder_emu_storage_enabled(d.emu);
        evd_source_free(s);
        undock(&d);
        CHECK_OK(r);
        CHECK_STREQ(id.device_id, "A123456");
        CHECK_STREQ(id.officer_id, "012345");
        CHECK_STREQ(id.unit_code, "110105000000");
        CHECK_STREQ(id.transport, "usb");
        CHECK(id.has_clock);
        /* one-second resolution on the recorder, plus the transfer */
        CHECK_INT(llabs(id.clock_offset_us - 3600ll * 1000000), <=, 1500000);
        CHECK(!clock_set); /* set_clock defaults to off */
        CHECK(storage);
}

static void test_usb_set_clock_when_configured(void)
{
        Docked d = {};
        CHECK_OK(dock(&d, fat32_img, RECORDER_EMU_FAULT_NONE, -7200, 0));
        EvdUsbProfile p;
        profile_default(&p);
        EvdError err = {};
        _cleanup_(evd_usb_recorder_closep) EvdUsbRecorder *rec = NULL;
        int r = evd_usb_recorder_open(d.dev, &p, &rec, &err);
        int refused = r < 0 ? r : evd_usb_set_clock(rec, &err);
        p.set_clock = true;
        evd_usb_recorder_close(rec);
        rec = NULL;
        int64_t before = 0, after = 0;
        if (r >= 0)
                r = evd_usb_recorder_open(d.dev, &p, &rec, &err);
        if (r >= 0)
                r = evd_usb_read_clock_offset(rec, &before, &err);
        if (r >= 0)
                r = evd_usb_set_clock(rec, &err);
        if (r >= 0)
                r = evd_usb_read_clock_offset(rec, &after, &err);
        bool was_set = recorder_emu_clock_was_set(d.emu);
        evd_usb_recorder_close(rec);
        rec = NULL;
        undock(&d);
        CHECK_INT(refused, ==, -EPERM);
        CHECK_OK(r);
        CHECK(was_set);
        CHECK_INT(llabs(before + 7200ll * 1000000), <=, 1500000);
        CHECK_INT(llabs(after), <=, 1500000);
}

static void test_usb_read_fat32(void)
{
        Docked d = {};
        CHECK_OK(dock(&d, fat32_img, RECORDER_EMU_FAULT_NONE, 0, 0));
        EvdUsbProfile p;
        profile_default(&p);
        EvdError err = {};
        EvdSource *s = NULL;
        int r = evd_source_usb_new(d.dev, &p, &s, &err);
        if (r < 0)
                printf("# %s\n", evd_error_message(&err, r));
        if (r >= 0)
                r = verify_source(s, fat32_expected, n_fat32_expected);
        unsigned rejected = recorder_emu_rejected_opcodes(d.emu);
        evd_source_free(s);
        undock(&d);
        CHECK_OK(r);
        CHECK_INT(rejected, ==, 0);
}

static void test_usb_read_exfat(void)
{
        Docked d = {};
        CHECK_OK(dock(&d, exfat_img, RECORDER_EMU_FAULT_NONE, 0, 0));
        EvdUsbProfile p;
        profile_default(&p);
        EvdError err = {};
        EvdSource *s = NULL;
        int r = evd_source_usb_new(d.dev, &p, &s, &err);
        if (r < 0)
                printf("# %s\n", evd_error_message(&err, r));
        if (r >= 0)
                r = verify_source(s, exfat_expected, n_exfat_expected);
        evd_source_free(s);
        undock(&d);
        CHECK_OK(r);
}

/* A docking spends time between its reads of a recording (the file before hashed, synced and recorded;
 * the next file's checks): the bus must go on reading the recording meanwhile, not wait for the next
 * read. The 16 MiB recording of the FAT32 image: read its first MiB, stay away, and the recorder serves
 * further READ(10)s in the meantime (fs.c's prefetcher; before it, none); then the rest is read and is
 * the file, each byte once over the bus. */
static void test_usb_reads_ahead_while_busy(void)
{
        Docked d = {};
        CHECK_OK(dock(&d, fat32_img, RECORDER_EMU_FAULT_NONE, 0, 0));
        EvdUsbProfile p;
        profile_default(&p);
        EvdError err = {};
        _cleanup_(evd_source_freep) EvdSource *s = NULL;
        int r = evd_source_usb_new(d.dev, &p, &s, &err);
        if (r < 0)
                printf("# %s\n", evd_error_message(&err, r));
        CHECK_OK(r);
        const char *path = "DCIM/100EVD/执法记录_0001.MP4";
        const Expected *e = NULL;
        for (size_t i = 0; i < n_fat32_expected; i++)
                if (!strcmp(fat32_expected[i].path, path))
                        e = &fat32_expected[i];
        CHECK(e != NULL);
        _cleanup_(evd_reader_closep) EvdReader *rd = NULL;
        CHECK_OK(evd_source_open(s, path, &rd, &err));
        uint64_t bytes0 = recorder_emu_bytes_read(d.emu);
        static uint8_t buf[1u << 20];
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        EVP_DigestInit_ex(md, EVP_sha256(), NULL);
        ssize_t got = evd_reader_read(rd, buf, sizeof(buf), &err);
        CHECK_INT(got, >, 0);
        EVP_DigestUpdate(md, buf, (size_t)got);
        /* away, until 4 more READ(10)s came (at most 3 s) */
        uint64_t cmds = recorder_emu_read_commands(d.emu), away = 0;
        for (int i = 0; i < 300 && away < 4; i++) {
                g_usleep(10000);
                away = recorder_emu_read_commands(d.emu) - cmds;
        }
        printf("# %" PRIu64 " READ(10)s while the reader was away\n", away);
        uint64_t total = (uint64_t)got;
        while ((got = evd_reader_read(rd, buf, sizeof(buf), &err)) > 0) {
                EVP_DigestUpdate(md, buf, (size_t)got);
                total += (uint64_t)got;
        }
        uint8_t dg[32];
        char h[65];
        EVP_DigestFinal_ex(md, dg, NULL);
        EVP_MD_CTX_free(md);
        hex(dg, 32, h);
        uint64_t bytes = recorder_emu_bytes_read(d.emu) - bytes0;
        evd_reader_close(steal_ptr(&rd));
        evd_source_free(steal_ptr(&s));
        undock(&d);
        CHECK_INT(got, ==, 0);
        CHECK_INT(total, ==, 16u << 20);
        CHECK(strcmp(h, e->sha) == 0);
        CHECK_INT(away, >=, 4);
        /* each byte once (and at most a few FAT windows besides) */
        CHECK_INT(bytes, <=, (16u << 20) + (1u << 20));
}

/* Many small files (photos) as a recorder writes them: one after the other on a fresh card. Read in that
 * order they must cost about their own bytes in a few large READ(10)s (read-ahead across files), not one
 * READ per file plus a 1 MiB cache window for each file's last partial block (what the old reader did:
 * 2 commands and ~1.1 MiB per 100 KiB photo); read in another order, one READ of about the file each. */
#define SMALL_FILES_MAX 200
/* A recorder's names (32 characters: 4 directory entries each, 3 of them for the long name), not 8.3 ones:
 * the 200-photo directory is then 50 clusters of 512 bytes, spread between the photos over more 64 KiB
 * windows than TSK's own cache holds (32); with 8.3 names it was 13 and TSK's cache hid a path lookup per
 * open (the test passed on a92281c, whose reader did that). */
#define PHOTO_NAME "A1B2C3D_20261204_222830_%04u.JPG"

/* Reads and checks every file; gives up once the recorder served more than max_cmds READ(10)s (a reader
 * that reads the directory again for every file would otherwise take minutes: fail, and fast). */
static int read_all(EvdSource *s, RecorderEmu *emu, uint64_t max_cmds, const char *const *paths,
                    const char (*sha)[65], size_t n, bool reverse)
{
        static uint8_t buf[1u << 20];
        uint64_t cmds0 = recorder_emu_read_commands(emu);
        for (size_t k = 0; k < n; k++) {
                if (recorder_emu_read_commands(emu) - cmds0 > max_cmds)
                        return printf("# more than %" PRIu64 " READ(10)s after %zu of %zu files\n", max_cmds,
                                      k, n),
                               -E2BIG;
                size_t i = reverse ? n - 1 - k : k;
                EvdError err = {};
                _cleanup_(evd_reader_closep) EvdReader *rd = NULL;
                int r = evd_source_open(s, paths[i], &rd, &err);
                if (r < 0)
                        return printf("# open %s: %s\n", paths[i], evd_error_message(&err, r)), r;
                EVP_MD_CTX *md = EVP_MD_CTX_new();
                EVP_DigestInit_ex(md, EVP_sha256(), NULL);
                ssize_t got;
                while ((got = evd_reader_read(rd, buf, sizeof(buf), &err)) > 0)
                        EVP_DigestUpdate(md, buf, (size_t)got);
                uint8_t d[32];
                char h[65];
                EVP_DigestFinal_ex(md, d, NULL);
                EVP_MD_CTX_free(md);
                hex(d, 32, h);
                if (got < 0)
                        return printf("# read %s: %s\n", paths[i], evd_error_message(&err, (int)got)),
                               (int)got;
                if (strcmp(h, sha[i]) != 0)
                        return printf("# %s: sha256 %s, expected %s\n", paths[i], h, sha[i]), -1;
        }
        return 0;
}

/* one_by_one: each photo copied by its own mcopy onto 512-byte clusters, as a recorder adds them one at a
 * time: the directory grows a cluster at a time between the photos, spread over the card, 50 clusters
 * for 200 photos: more than TSK's own cache holds, so that opening a file by looking its path up again
 * read much of the directory each time (17 READ(10)s of 1 MiB per photo). */
static void small_files_case(bool one_by_one, unsigned n_files)
{
        static char paths_buf[SMALL_FILES_MAX][64], sha[SMALL_FILES_MAX][65];
        const char *paths[SMALL_FILES_MAX];
        char dir[PATH_MAX], img[PATH_MAX], cmd[4 * PATH_MAX];
        snprintf(dir, sizeof(dir), "%s/photos", tmpdir);
        snprintf(img, sizeof(img), "%s/photos.img", tmpdir);
        snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", dir);
        CHECK_OK(run(cmd));
        uint64_t total = 0, x = 0x2545f4914f6cdd1dull;
        static uint8_t data[160000];
        for (unsigned i = 0; i < n_files; i++) {
                size_t n = 20000 + (size_t)(i * 7919u) % 130000; /* 20-150 kB, rarely whole blocks */
                for (size_t k = 0; k < n; k++) {
                        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                        data[k] = (uint8_t)x;
                }
                snprintf(paths_buf[i], sizeof(paths_buf[i]), "PHOTO/" PHOTO_NAME, i + 1);
                paths[i] = paths_buf[i];
                char path[PATH_MAX + 16];
                snprintf(path, sizeof(path), "%s/" PHOTO_NAME, dir, i + 1);
                CHECK_OK(write_file(path, data, n));
                sha256_hex(data, n, sha[i]);
                total += n;
        }
        /* the shell's glob is sorted: mcopy writes them one after the other in name order */
        if (one_by_one)
                snprintf(cmd, sizeof(cmd),
                         "rm -f '%s' && mkfs.vfat -F 32 -s 1 -n EVIDOCK -C '%s' 65536 >/dev/null && export "
                         "MTOOLS_SKIP_CHECK=1 && mmd -i '%s' ::/PHOTO && for f in '%s'/A*.JPG; do mcopy -i "
                         "'%s' \"$f\" ::/PHOTO/ || exit 1; done",
                         img, img, img, dir, img);
        else
                snprintf(
                    cmd, sizeof(cmd),
                    "mkfs.vfat -F 32 -n EVIDOCK -C '%s' 65536 >/dev/null && export MTOOLS_SKIP_CHECK=1 && "
                    "mmd -i '%s' ::/PHOTO && mcopy -i '%s' '%s'/A*.JPG ::/PHOTO/",
                    img, img, img, dir);
        CHECK_OK(run(cmd));

        Docked d = {};
        CHECK_OK(dock(&d, img, RECORDER_EMU_FAULT_NONE, 0, 0));
        EvdUsbProfile p;
        profile_default(&p);
        EvdError err = {};
        _cleanup_(evd_source_freep) EvdSource *s = NULL;
        int r = evd_source_usb_new(d.dev, &p, &s, &err);
        if (r < 0)
                printf("# %s\n", evd_error_message(&err, r));
        CHECK_OK(r);
        EvdSourceEntry *entries = NULL;
        size_t n_entries = 0;
        uint64_t cmds_list = recorder_emu_read_commands(d.emu);
        r = evd_source_list(s, &entries, &n_entries, &err);
        cmds_list = recorder_emu_read_commands(d.emu) - cmds_list;
        evd_source_entries_free(entries, n_entries);
        uint64_t cmds0 = recorder_emu_read_commands(d.emu), bytes0 = recorder_emu_bytes_read(d.emu);
        uint64_t budget = 2 * n_files + 50; /* far more than either order needs (see the checks below) */
        int in_order = r < 0 ? r : read_all(s, d.emu, budget, paths, sha, n_files, false);
        uint64_t cmds1 = recorder_emu_read_commands(d.emu), bytes1 = recorder_emu_bytes_read(d.emu);
        int reversed = r < 0 ? r : read_all(s, d.emu, budget, paths, sha, n_files, true);
        uint64_t cmds2 = recorder_emu_read_commands(d.emu), bytes2 = recorder_emu_bytes_read(d.emu);
        unsigned rejected = recorder_emu_rejected_opcodes(d.emu);
        evd_source_free(steal_ptr(&s));
        undock(&d);
        printf("# %s: listing: %" PRIu64 " READ(10)s\n", one_by_one ? "one by one" : "together", cmds_list);
        printf("# %u files, %" PRIu64 " bytes; in order: %" PRIu64 " READ(10)s, %" PRIu64
               " bytes; reversed: %" PRIu64 " READ(10)s, %" PRIu64 " bytes\n",
               n_files, total, cmds1 - cmds0, bytes1 - bytes0, cmds2 - cmds1, bytes2 - bytes1);
        CHECK_OK(r);
        CHECK_INT(n_entries, ==, n_files);
        CHECK_OK(in_order);
        CHECK_OK(reversed);
        /* the listing reads the directory once: at most a READ per directory cluster (4 entries per file,
         * 16 per 512-byte cluster) and a few for the FAT */
        CHECK_INT(cmds_list, <=, n_files / 4 + 8);
        /* in order: about one READ per MiB of files (plus the directory and FAT windows as needed) */
        CHECK_INT(cmds1 - cmds0, <=, total / (1u << 20) + 4);
        CHECK_INT(bytes1 - bytes0, <=, total + (3u << 20));
        /* reversed (nothing continues the last read): one READ per file, about its own bytes and the FAT and
         * directory reads; with the directory spread between the photos those are 64 KiB windows, a few
         * per photo (measured: 158 READ(10)s, 56 MB for 16.8 MB of photos; not the order a docking reads
         * in: left alone) */
        CHECK_INT(cmds2 - cmds1, <=, n_files + 2);
        CHECK_INT(bytes2 - bytes1, <=,
                  one_by_one ? total + n_files * (256u << 10) : total + total / 2 + (2u << 20));
        CHECK_INT(rejected, ==, 0);
}

static void test_usb_small_files(void)
{
        small_files_case(false, 120);
}

static void test_usb_small_files_growing_directory(void)
{
        small_files_case(true, SMALL_FILES_MAX);
}

static int arrived, left;
static unsigned watched_devnum;

static int LIBUSB_CALL hotplug_cb(libusb_context *c, libusb_device *dev, libusb_hotplug_event ev,
                                  void *userdata)
{
        /* Events of earlier tests' recorders may still be queued: count only the one under test. */
        if (libusb_get_device_address(dev) != watched_devnum)
                return 0;
        if (ev == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED)
                arrived++;
        else if (ev == LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT)
                left++;
        return 0;
}

static bool wait_flag(int *flag, double timeout_s)
{
        double end = ((double)evd_clock_monotonic_us() / 1e6) + timeout_s;
        while (!*flag && ((double)evd_clock_monotonic_us() / 1e6) < end) {
                struct timeval tv = {0, 20000};
                libusb_handle_events_timeout_completed(ctx, &tv, NULL);
        }
        return *flag;
}

static void test_hotplug(void)
{
        CHECK(libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG));
        libusb_hotplug_callback_handle h;
        arrived = left = 0;
        CHECK_INT(libusb_hotplug_register_callback(
                      ctx, LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT, 0, VID,
                      PID, LIBUSB_HOTPLUG_MATCH_ANY, hotplug_cb, NULL, &h),
                  ==, 0);
        RecorderEmuConfig cfg = {
            .vendor_id = VID, .product_id = PID, .devnum = next_devnum++, .image_path = fat32_img};
        watched_devnum = cfg.devnum;
        RecorderEmu *emu = recorder_emu_new(tb, &cfg);
        bool got_arrival = emu && wait_flag(&arrived, 5.0);
        recorder_emu_unplug(emu);
        bool got_departure = got_arrival && wait_flag(&left, 5.0);
        libusb_hotplug_deregister_callback(ctx, h);
        recorder_emu_free(emu);
        CHECK(got_arrival);
        CHECK(got_departure);
        CHECK_INT(arrived, ==, 1);
        CHECK_INT(left, ==, 1);
}

static void test_unmatched_device_ignored(void)
{
        libusb_hotplug_callback_handle h;
        arrived = left = 0;
        CHECK_INT(libusb_hotplug_register_callback(ctx, LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED, 0, VID, PID,
                                                   LIBUSB_HOTPLUG_MATCH_ANY, hotplug_cb, NULL, &h),
                  ==, 0);
        RecorderEmuConfig cfg = {
            .vendor_id = 0x1234, .product_id = 0x5678, .devnum = next_devnum++, .image_path = fat32_img};
        watched_devnum = cfg.devnum;
        RecorderEmu *emu = recorder_emu_new(tb, &cfg);
        libusb_device *dev = emu ? recorder_emu_wait_device(ctx, cfg.devnum, 5.0) : NULL;
        EvdUsbProfile profiles[2];
        profile_default(&profiles[0]);
        profile_default(&profiles[1]);
        profiles[1].product_id = 0x0948;
        EvdError err = {};
        int r = dev ? evd_usb_profile_match(profiles, 2, dev, &err) : -999;
        wait_flag(&arrived, 0.2);
        libusb_hotplug_deregister_callback(ctx, h);
        if (dev)
                libusb_unref_device(dev);
        recorder_emu_free(emu);
        CHECK(dev);
        CHECK_INT(r, ==, -ENOENT);
        CHECK(strstr(err.msg, "1234:5678"));
        CHECK_INT(arrived, ==, 0);
}

/* Opens a lying recorder and expects evd_source_usb_new (or the listing/reading) to fail with code
 * within max_s seconds. */
static int expect_usb_failure(RecorderEmuFault fault, const char *image, unsigned timeout_ms, int code,
                              double max_s, const char *expect_in_msg)
{
        Docked d = {};
        CHECK_OR_RET(dock(&d, image, fault, 0, 0) == 0);
        EvdUsbProfile p;
        profile_default(&p);
        p.timeout_ms = timeout_ms;
        p.max_retries = 1;
        EvdError err = {};
        EvdSource *s = NULL;
        double t0 = ((double)evd_clock_monotonic_us() / 1e6);
        int r = evd_source_usb_new(d.dev, &p, &s, &err);
        if (r >= 0) {
                r = verify_source(s, fat32_expected, n_fat32_expected);
                snprintf(err.msg, sizeof(err.msg), "(see above)");
        }
        double elapsed = ((double)evd_clock_monotonic_us() / 1e6) - t0;
        evd_source_free(s);
        undock(&d);
        printf("# fault %d: %s (%.2f s)\n", fault, evd_error_message(&err, r), elapsed);
        CHECK_OR_RET(r == code);
        CHECK_OR_RET(elapsed < max_s);
        CHECK_OR_RET(!expect_in_msg || strstr(err.msg, expect_in_msg));
        return 0;
}

static void test_read_hangs_times_out(void)
{
        CHECK_OK(
            expect_usb_failure(RECORDER_EMU_FAULT_READ_HANGS, fat32_img, 200, -ETIMEDOUT, 3.0, "READ(10)"));
}

static void test_csw_bad_tag(void)
{
        CHECK_OK(expect_usb_failure(RECORDER_EMU_FAULT_CSW_BAD_TAG, fat32_img, 1000, -EPROTO, 3.0, "tag"));
}

static void test_csw_bad_signature(void)
{
        CHECK_OK(expect_usb_failure(RECORDER_EMU_FAULT_CSW_BAD_SIGNATURE, fat32_img, 1000, -EPROTO, 3.0,
                                    "signature"));
}

static void test_small_capacity(void)
{
        CHECK_OK(expect_usb_failure(RECORDER_EMU_FAULT_SMALL_CAPACITY, fat32_img, 1000, -EUCLEAN, 3.0,
                                    "capacity"));
}

static void test_identity_garbage(void)
{
        CHECK_OK(expect_usb_failure(RECORDER_EMU_FAULT_IDENTITY_GARBAGE, fat32_img, 1000, -EPROTO, 3.0,
                                    "serial"));
}

static void test_time_garbage(void)
{
        CHECK_OK(
            expect_usb_failure(RECORDER_EMU_FAULT_TIME_GARBAGE, fat32_img, 1000, -EPROTO, 3.0, "GET_TIME"));
}

static void test_read_stall_recovers(void)
{
        Docked d = {};
        CHECK_OK(dock(&d, fat32_img, RECORDER_EMU_FAULT_READ_STALLS_ONCE, 0, 0));
        EvdUsbProfile p;
        profile_default(&p);
        EvdError err = {};
        EvdSource *s = NULL;
        int r = evd_source_usb_new(d.dev, &p, &s, &err);
        if (r < 0)
                printf("# %s\n", evd_error_message(&err, r));
        evd_source_free(s);
        undock(&d);
        /* The stalled READ(10) fails with sense MEDIUM ERROR: that is reported, not retried blindly. */
        CHECK(r == 0 || r == -EIO);
        if (r == -EIO)
                CHECK(strstr(err.msg, "sense key 3"));
}

static void test_garbage_descriptors(void)
{
        RecorderEmuConfig cfg = {.vendor_id = VID,
                                 .product_id = PID,
                                 .devnum = next_devnum++,
                                 .image_path = fat32_img,
                                 .fault = RECORDER_EMU_FAULT_GARBAGE_DESCRIPTORS};
        RecorderEmu *emu = recorder_emu_new(tb, &cfg);
        CHECK(emu);
        libusb_device *dev = recorder_emu_wait_device(ctx, cfg.devnum, 1.0);
        int r = -ENODEV;
        EvdError err = {};
        if (dev) {
                EvdUsbProfile p;
                profile_default(&p);
                EvdSource *s = NULL;
                r = evd_source_usb_new(dev, &p, &s, &err);
                evd_source_free(s);
                libusb_unref_device(dev);
                printf("# garbage descriptors: %s\n", evd_error_message(&err, r));
        } else
                printf("# garbage descriptors: libusb did not list the device at all\n");
        recorder_emu_free(emu);
        CHECK_INT(r, <, 0);
}

static void test_fat_loop(void)
{
        snprintf(loop_img, sizeof(loop_img), "%s/loop.img", tmpdir);
        CHECK_OK(patch_image(loop_img, "LOOP    BIN", patch_loop));
        _cleanup_(evd_source_freep) EvdSource *s = NULL;
        EvdError err = {};
        CHECK_OK(evd_source_image_new(loop_img, &s, &err));
        EvdReader *reader = NULL;
        double t0 = ((double)evd_clock_monotonic_us() / 1e6);
        int r = s->ops->open(s, "LOOP.BIN", &reader, &err);
        ssize_t got = 0;
        uint64_t total = 0;
        if (r >= 0) {
                static uint8_t buf[65536];
                while ((got = reader->ops->read(reader, buf, sizeof(buf), &err)) > 0)
                        total += (uint64_t)got;
                reader->ops->close(reader);
                r = (int)got;
        }
        printf("# looping chain: %s after %" PRIu64 " bytes (%.2f s)\n", evd_error_message(&err, r), total,
               ((double)evd_clock_monotonic_us() / 1e6) - t0);
        CHECK_INT(r, ==, -EUCLEAN);
        CHECK(strstr(err.msg, "LOOP.BIN") && strstr(err.msg, "cluster chain"));
        CHECK_INT(total, <, 65536);
        CHECK(((double)evd_clock_monotonic_us() / 1e6) - t0 < 2.0);
}

static void test_size_past_end(void)
{
        snprintf(bigsize_img, sizeof(bigsize_img), "%s/bigsize.img", tmpdir);
        CHECK_OK(patch_image(bigsize_img, "BIG     BIN", patch_bigsize));
        _cleanup_(evd_source_freep) EvdSource *s = NULL;
        EvdError err = {};
        CHECK_OK(evd_source_image_new(bigsize_img, &s, &err));
        EvdReader *reader = NULL;
        double t0 = ((double)evd_clock_monotonic_us() / 1e6);
        EvdSourceEntry *entries = NULL;
        size_t n = 0;
        int r = s->ops->list(s, &entries, &n, &err);
        /* damage is data: the listing goes on and names the damaged directory and the lying entry */
        const EvdSourceEntry *damaged = NULL;
        for (size_t i = 0; r >= 0 && i < n; i++)
                if (entries[i].type == EVD_SOURCE_DAMAGED)
                        damaged = &entries[i];
        printf("# size past the end, listing: %s; %s\n", evd_error_message(&err, r),
               damaged ? damaged->detail : "no damage reported");
        bool named = damaged && damaged->detail && strstr(damaged->detail, "BIG     .BIN") &&
                     strstr(damaged->detail, "past the end");
        evd_source_entries_free(entries, n);
        CHECK_OK(r);
        CHECK(named);
        r = s->ops->open(s, "BIG.BIN", &reader, &err);
        uint64_t total = 0;
        if (r >= 0) {
                static uint8_t buf[65536];
                ssize_t got;
                while ((got = reader->ops->read(reader, buf, sizeof(buf), &err)) > 0)
                        total += (uint64_t)got;
                reader->ops->close(reader);
                r = (int)got;
        }
        printf("# size past the end: %s after %" PRIu64 " bytes (%.2f s)\n", evd_error_message(&err, r),
               total, ((double)evd_clock_monotonic_us() / 1e6) - t0);
        CHECK_INT(r, <, 0);
        CHECK_INT(total, <=, 64u << 20);
        CHECK(((double)evd_clock_monotonic_us() / 1e6) - t0 < 5.0);
}

static void test_unplug_mid_read(void)
{
        Docked d = {};
        CHECK_OK(dock(&d, fat32_img, RECORDER_EMU_FAULT_UNPLUG_DURING_READ, 0, 12));
        EvdUsbProfile p;
        profile_default(&p);
        EvdError err = {};
        EvdSource *s = NULL;
        int r = evd_source_usb_new(d.dev, &p, &s, &err);
        EvdReader *reader = NULL;
        if (r >= 0)
                r = s->ops->open(s, fat32_expected[0].path, &reader, &err);
        double t0 = ((double)evd_clock_monotonic_us() / 1e6);
        uint64_t total = 0;
        if (r >= 0) {
                static uint8_t buf[1 << 20];
                ssize_t got;
                while ((got = reader->ops->read(reader, buf, sizeof(buf), &err)) > 0)
                        total += (uint64_t)got;
                r = (int)got;
                reader->ops->close(reader);
        }
        double elapsed = ((double)evd_clock_monotonic_us() / 1e6) - t0;
        printf("# unplug: %s after %" PRIu64 " bytes (%.2f s)\n", evd_error_message(&err, r), total,
               elapsed);
        evd_source_free(s);
        undock(&d);
        CHECK_INT(r, ==, -ENODEV);
        CHECK(total < (16u << 20));
        /* Well below one transfer timeout (EVD_USB_TIMEOUT_MS_DEFAULT, 5 s): the unplug is seen at once, not
         * waited out; the margin is for a loaded machine reading the first 10 MiB. */
        CHECK(elapsed < 4.5);
}

static void test_read_past_capacity_refused(void)
{
        Docked d = {};
        CHECK_OK(dock(&d, fat32_img, RECORDER_EMU_FAULT_NONE, 0, 0));
        EvdUsbProfile p;
        profile_default(&p);
        EvdError err = {};
        _cleanup_(evd_usb_recorder_closep) EvdUsbRecorder *rec = NULL;
        _cleanup_(evd_bot_freep) EvdBot *bot = NULL;
        int r = evd_usb_recorder_open(d.dev, &p, &rec, &err);
        if (r >= 0)
                r = evd_usb_switch_to_storage(rec, &err);
        if (r >= 0) {
                EvdBotParams bp = {.handle = evd_usb_recorder_handle(rec),
                                   .interface = 1,
                                   .bulk_in = evd_usb_recorder_bulk_in(rec),
                                   .bulk_out = evd_usb_recorder_bulk_out(rec),
                                   .timeout_ms = 1000,
                                   .max_retries = 1};
                r = evd_bot_open(&bp, &bot, &err);
        }
        uint64_t before = recorder_emu_bytes_read(d.emu);
        int past = -1;
        uint8_t buf[1024];
        if (r >= 0)
                past = evd_bot_read(bot, evd_bot_block_count(bot) - 1, 2, buf, &err);
        uint64_t after = recorder_emu_bytes_read(d.emu);
        int last = r >= 0 ? evd_bot_read(bot, evd_bot_block_count(bot) - 1, 1, buf, NULL) : -1;
        evd_bot_free(bot);
        bot = NULL;
        evd_usb_recorder_close(rec);
        rec = NULL;
        undock(&d);
        CHECK_OK(r);
        CHECK_INT(past, ==, -ERANGE);
        CHECK_INT(after, ==, before); /* refused locally: nothing was sent */
        CHECK_OK(last);
}

static int raw_round(libusb_device *dev, const EvdUsbProfile *p, uint8_t *buf, double *ret_s, EvdError *err)
{
        _cleanup_(evd_usb_recorder_closep) EvdUsbRecorder *rec = NULL;
        _cleanup_(evd_bot_freep) EvdBot *bot = NULL;
        int r = evd_usb_recorder_open(dev, p, &rec, err);
        if (r >= 0)
                r = evd_usb_switch_to_storage(rec, err);
        if (r < 0)
                return r;
        EvdBotParams bp = {.handle = evd_usb_recorder_handle(rec),
                           .interface = 1,
                           .bulk_in = evd_usb_recorder_bulk_in(rec),
                           .bulk_out = evd_usb_recorder_bulk_out(rec),
                           .timeout_ms = 2000,
                           .max_retries = 1};
        r = evd_bot_open(&bp, &bot, err);
        uint32_t per = EVD_BOT_MAX_TRANSFER / 512;
        double t0 = ((double)evd_clock_monotonic_us() / 1e6);
        for (unsigned i = 0; r >= 0 && i < 16; i++)
                r = evd_bot_read(bot, 4096 + (uint64_t)i * per, per, buf, err);
        *ret_s = ((double)evd_clock_monotonic_us() / 1e6) - t0;
        return r;
}

static int file_round(libusb_device *dev, const EvdUsbProfile *p, uint8_t *buf, double *ret_s,
                      uint64_t *ret_total, EvdError *err)
{
        _cleanup_(evd_source_freep) EvdSource *s = NULL;
        EvdReader *reader = NULL;
        int r = evd_source_usb_new(dev, p, &s, err);
        if (r >= 0)
                r = s->ops->open(s, fat32_expected[0].path, &reader, err);
        if (r < 0)
                return r;
        double t0 = ((double)evd_clock_monotonic_us() / 1e6);
        ssize_t got;
        uint64_t total = 0;
        while ((got = reader->ops->read(reader, buf, EVD_BOT_MAX_TRANSFER, err)) > 0)
                total += (uint64_t)got;
        *ret_s = ((double)evd_clock_monotonic_us() / 1e6) - t0;
        *ret_total = total;
        reader->ops->close(reader);
        return got < 0 ? (int)got : 0;
}

static void test_rates(void)
{
        Docked d = {};
        CHECK_OK(dock(&d, fat32_img, RECORDER_EMU_FAULT_NONE, 0, 0));
        EvdUsbProfile p;
        profile_default(&p);
        EvdError err = {};
        static uint8_t buf[EVD_BOT_MAX_TRANSFER];
        /* Raw READ(10)s and the filesystem path, 16 MiB each, interleaved so that both see the same load
         * on the two shared cores (the emulator spins on one); one device handle at a time. */
        double raw_s = 1e9, file_s = 1e9; /* best round of each */
        uint64_t total = 0;
        int r = 0;
        for (int round = 0; round < 8 && r >= 0; round++) {
                double t = 1e9;
                r = raw_round(d.dev, &p, buf, &t, &err);
                raw_s = MIN(raw_s, t);
                if (r >= 0)
                        r = file_round(d.dev, &p, buf, &t, &total, &err);
                file_s = MIN(file_s, t);
        }
        /* Functional: after all those rounds, the same path still reads every file's right bytes. */
        int verified = -1;
        if (r >= 0) {
                EvdSource *s = NULL;
                r = evd_source_usb_new(d.dev, &p, &s, &err);
                if (r >= 0)
                        verified = verify_source(s, fat32_expected, n_fat32_expected);
                evd_source_free(s);
        }
        undock(&d);
        double raw = 16.0 / raw_s, file = 16.0 / file_s;
        if (r < 0)
                printf("# %s\n", evd_error_message(&err, r));
        CHECK_OK(r);
        CHECK_INT(total, ==, 16u << 20);
        CHECK_OK(verified);
        /* Informational only: performance targets (issue 4: >= 90 % of the raw READ(10) rate) are measured
         * by bench/bench-usb (bench/run), not asserted in a timed test that shares the machine with others.
         * Two handles open at once would slow both: libusb polls every always-writable umockdev fd. */
        printf(
            "# emulator raw READ(10) rate: %.1f MB/s; file read through fs.c: %.1f MB/s (%.0f%%; best of 8 "
            "rounds of 16 MiB; the target is checked by bench/run)\n",
            raw, file, 100.0 * file / raw);
}

int main(int argc, char **argv)
{
        /* umockdev works by preloading: re-exec once with the preload library in place. */
        if (!getenv("EVD_USB_TEST_PRELOADED")) {
                const char *old = getenv("LD_PRELOAD");
                char preload[PATH_MAX];
                snprintf(preload, sizeof(preload), "libumockdev-preload.so.0%s%s", old ? ":" : "",
                         old ? old : "");
                setenv("LD_PRELOAD", preload, 1);
                setenv("EVD_USB_TEST_PRELOADED", "1", 1);
                execv("/proc/self/exe", argv);
                printf("Bail out! cannot re-exec with LD_PRELOAD: %s\n", strerror(errno));
                return 1;
        }
        if (!mkdtemp(tmpdir)) {
                printf("Bail out! mkdtemp\n");
                return 1;
        }
        if (make_fat32() < 0 || load_exfat() < 0) {
                printf("Bail out! cannot build the test images\n");
                return 1;
        }
        tb = umockdev_testbed_new();
        if (!umockdev_in_mock_environment()) {
                printf("Bail out! not running under umockdev (LD_PRELOAD failed)\n");
                return 1;
        }
        if (libusb_init(&ctx) < 0) {
                printf("Bail out! libusb_init\n");
                return 1;
        }

        RUN(test_time_format);
        RUN(test_image_fat32);
        RUN(test_image_fat16);
        RUN(test_image_exfat);
        RUN(test_directory_loop);
        RUN(test_fat_too_deep);
        RUN(test_fat_broken_directory_chain);
        RUN(test_usb_identity_and_clock);
        RUN(test_usb_set_clock_when_configured);
        RUN(test_usb_read_fat32);
        RUN(test_usb_read_exfat);
        RUN(test_usb_reads_ahead_while_busy);
        RUN(test_usb_small_files);
        RUN(test_usb_small_files_growing_directory);
        RUN(test_hotplug);
        RUN(test_unmatched_device_ignored);
        RUN(test_read_hangs_times_out);
        RUN(test_read_stall_recovers);
        RUN(test_csw_bad_tag);
        RUN(test_csw_bad_signature);
        RUN(test_small_capacity);
        RUN(test_identity_garbage);
        RUN(test_time_garbage);
        RUN(test_garbage_descriptors);
        RUN(test_fat_loop);
        RUN(test_size_past_end);
        RUN(test_unplug_mid_read);
        RUN(test_read_past_capacity_refused);
        RUN(test_rates);

        libusb_exit(ctx);
        g_object_unref(tb);
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (!getenv("EVD_USB_TEST_KEEP")) /* keep the images for debugging */
                (void)!system(cmd);
        return check_finish();
}
