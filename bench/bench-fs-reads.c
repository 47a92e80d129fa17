/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-fs-reads: what reading a recorder's card costs in device reads, through lib/fs.c as a docking
 * reads it, without USB (issue 14: the per-file cost of small files over USB).
 *
 *   bench-fs-reads [--disk-order] [--verbose] IMAGE
 *
 * Opens the FAT/exFAT image IMAGE (a recorder's card, as bench-dock and bench-usb pack them) with a
 * block-read callback that counts, lists it, then opens and reads every listed file in 1 MiB requests
 * (as the copy does) in path order (= recording order for evidock-sim's names, the order a docking
 * copies them in) or, with --disk-order, in the listing's order. Prints the device reads and bytes of
 * the open, the listing and the file reads (the small files, < 1 MiB, apart), a histogram of the read
 * sizes and, at a USB 2 recorder's 40 MB/s, the bus time they take. --verbose prints every read. Every
 * read over USB is one READ(10) (up to 1 MiB) with its command/status round trip.
 * Exit 0, or 1 when the image cannot be read. */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"

typedef struct Counter {
        int fd;
        bool verbose;
        uint64_t reads, bytes;
        uint64_t hist[4]; /* <= 4 KiB, <= 64 KiB, < 1 MiB, >= 1 MiB */
} Counter;

static int count_read(void *userdata, uint64_t lba, uint32_t count, void *buf, EvdError *err)
{
        Counter *c = userdata;
        size_t len = (size_t)count * 512;
        if (pread(c->fd, buf, len, (off_t)(lba * 512)) != (ssize_t)len)
                return evd_error_set(err, -EIO, "short read at block %" PRIu64, lba);
        c->reads++;
        c->bytes += len;
        c->hist[len <= 4096 ? 0 : len <= 65536 ? 1 : len < 1048576 ? 2 : 3]++;
        if (c->verbose)
                fprintf(stderr, "  read block %" PRIu64 " + %u (%zu KiB)\n", lba, count, len / 1024);
        return 0;
}

static int by_path(const void *a, const void *b)
{
        return strcmp(((const EvdSourceEntry *)a)->path, ((const EvdSourceEntry *)b)->path);
}

static void line(const char *what, const Counter *c, uint64_t reads0, uint64_t bytes0)
{
        uint64_t r = c->reads - reads0, b = c->bytes - bytes0;
        printf("  %-28s %7" PRIu64 " reads %10.1f MB   bus at 40 MB/s %7.3f s\n", what, r, (double)b / 1e6,
               (double)b / 40e6);
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
            {"disk-order", no_argument, NULL, 'd'},
            {"verbose", no_argument, NULL, 'v'},
            {"help", no_argument, NULL, 'h'},
            {},
        };
        bool disk_order = false;
        Counter c = {.fd = -1};
        int o;
        while ((o = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                if (o == 'd')
                        disk_order = true;
                else if (o == 'v')
                        c.verbose = true;
                else {
                        fprintf(o == 'h' ? stdout : stderr,
                                "usage: bench-fs-reads [--disk-order] [--verbose] IMAGE\n");
                        return o == 'h' ? 0 : 1;
                }
        }
        if (optind + 1 != argc) {
                fprintf(stderr, "usage: bench-fs-reads [--disk-order] [--verbose] IMAGE\n");
                return 1;
        }
        c.fd = open(argv[optind], O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (c.fd < 0 || fstat(c.fd, &st) < 0) {
                perror(argv[optind]);
                return 1;
        }
        EvdFsDevice dev = {.block_size = 512,
                           .block_count = (uint64_t)st.st_size / 512,
                           .read_blocks = count_read,
                           .userdata = &c};
        EvdError err = {};
        _cleanup_(evd_fs_closep) EvdFs *fs = NULL;
        int r = evd_fs_open(&dev, &fs, &err);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", argv[optind], evd_error_message(&err, r));
                return 1;
        }
        printf("%s (%s, %.1f MB), files in %s order:\n", argv[optind], evd_fs_type(fs),
               (double)st.st_size / 1e6, disk_order ? "the listing's" : "path");
        line("open the volume", &c, 0, 0);
        uint64_t r0 = c.reads, b0 = c.bytes;
        EvdSourceEntry *e = NULL;
        size_t n = 0;
        r = evd_fs_list(fs, &e, &n, &err);
        if (r < 0) {
                fprintf(stderr, "listing: %s\n", evd_error_message(&err, r));
                return 1;
        }
        line("list", &c, r0, b0);
        if (!disk_order)
                qsort(e, n, sizeof(*e), by_path);
        static uint8_t buf[EVD_FS_READ_CHUNK];
        uint64_t files = 0, file_bytes = 0, small = 0, small_bytes = 0, small_reads = 0, small_dev_bytes = 0;
        r0 = c.reads, b0 = c.bytes;
        for (size_t i = 0; i < n; i++) {
                if (e[i].type != EVD_SOURCE_FILE)
                        continue;
                uint64_t fr = c.reads, fb = c.bytes, got = 0;
                if (c.verbose)
                        fprintf(stderr, "%s (%" PRIu64 " bytes)\n", e[i].path, e[i].size);
                _cleanup_(evd_fs_file_closep) EvdFsFile *f = NULL;
                r = evd_fs_file_open(fs, e[i].path, &f, &err);
                ssize_t k = 0;
                if (r >= 0)
                        for (size_t len = 0;
                             (k = evd_fs_file_read(f, buf + len, sizeof(buf) - len, &err)) > 0;
                             len = (len + (size_t)k) % sizeof(buf))
                                got += (uint64_t)k;
                if (r < 0 || k < 0) {
                        fprintf(stderr, "%s: %s\n", e[i].path, evd_error_message(&err, r < 0 ? r : (int)k));
                        return 1;
                }
                files++;
                file_bytes += got;
                if (e[i].size < EVD_FS_READ_CHUNK) {
                        small++;
                        small_bytes += got;
                        small_reads += c.reads - fr;
                        small_dev_bytes += c.bytes - fb;
                }
        }
        char what[64];
        snprintf(what, sizeof(what), "%" PRIu64 " files, %.1f MB", files, (double)file_bytes / 1e6);
        line(what, &c, r0, b0);
        printf("    of which %" PRIu64 " small (< 1 MiB, %.1f MB): %" PRIu64 " reads, %.1f MB\n", small,
               (double)small_bytes / 1e6, small_reads, (double)small_dev_bytes / 1e6);
        line("total", &c, 0, 0);
        printf("  read sizes: %" PRIu64 " <= 4 KiB, %" PRIu64 " <= 64 KiB, %" PRIu64 " < 1 MiB, %" PRIu64
               " of 1 MiB\n",
               c.hist[0], c.hist[1], c.hist[2], c.hist[3]);
        evd_source_entries_free(e, n);
        return 0;
}
