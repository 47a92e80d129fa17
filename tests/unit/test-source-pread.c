/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The positioned read of the USB/FAT source (fs.c over The Sleuth Kit's run list), through a FAT32 image
 * (the image source of source-usb.h, same code path as a USB recorder below the block reads): at offsets
 * across cluster runs of a fragmented file, across the block cache's windows, at and past the end, and
 * without moving the sequential read's position. Needs mkfs.vfat and mtools (scripts/deps). */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "source-usb.h"

static char dir[] = "/tmp/evd-test-pread-XXXXXX";

static int make_file(const char *name, size_t size, unsigned seed)
{
        char p[300];
        snprintf(p, sizeof(p), "%s/%s", dir, name);
        FILE *f = fopen(p, "w");
        if (!f)
                return -1;
        for (size_t i = 0; i < size; i++)
                fputc((int)((i * 31 + seed + i / 4096) & 0xff), f);
        return fclose(f);
}

static uint8_t expected(size_t i, unsigned seed)
{
        return (uint8_t)((i * 31 + seed + i / 4096) & 0xff);
}

static void test_fat_pread(void)
{
        /* A.BIN first, then B.BIN; A deleted and C.BIN (larger than A) written: C takes A's clusters and
         * continues after B, so its data is in two runs. */
        const size_t a = 1200000, b = 300000, c = 3000000;
        CHECK(make_file("A.BIN", a, 1) == 0 && make_file("B.BIN", b, 2) == 0 &&
              make_file("C.BIN", c, 3) == 0);
        char cmd[1200];
        snprintf(cmd, sizeof(cmd),
                 "cd %s && mkfs.vfat -F 32 -s 1 -C img 65536 >/dev/null && export MTOOLS_SKIP_CHECK=1 && "
                 "mcopy -i img A.BIN ::/ && mcopy -i img B.BIN ::/ && mdel -i img ::/A.BIN && "
                 "mcopy -i img C.BIN ::/",
                 dir);
        if (system(cmd) != 0) {
                SKIP("mkfs.vfat/mtools failed (not installed?)");
                return;
        }
        char img[300];
        snprintf(img, sizeof(img), "%s/img", dir);
        EvdError err = {};
        _cleanup_(evd_source_freep) EvdSource *s = NULL;
        int r = evd_source_image_new(img, &s, &err);
        if (r < 0)
                printf("# %s\n", evd_error_message(&err, r));
        CHECK(r >= 0);
        _cleanup_(evd_reader_closep) EvdReader *rd = NULL;
        CHECK(evd_source_open(s, "C.BIN", &rd, &err) >= 0);
        CHECK(evd_reader_can_pread(rd));
        CHECK_INT(rd->size, ==, c);

        /* sequential read of the first 100 KiB */
        static uint8_t buf[1 << 20];
        size_t got = 0;
        while (got < 100000) {
                ssize_t k = evd_reader_read(rd, buf + got, 100000 - got, &err);
                CHECK(k > 0);
                got += (size_t)k;
        }
        for (size_t i = 0; i < got; i++)
                CHECK(buf[i] == expected(i, 3));
        /* positioned reads: in the first run, across the end of A's old clusters (the run boundary),
         * across cache windows, in the tail, ending exactly at the end, past the end */
        const uint64_t offs[] = {0, 4095, 1199000, 1200000, 1048000, 2097000, c - 70000, c - 1, c, c + 100};
        for (size_t t = 0; t < ELEMENTSOF(offs); t++) {
                uint64_t off = offs[t];
                size_t want = 70000, n = 0;
                while (n < want) {
                        ssize_t k = evd_reader_pread(rd, buf + n, want - n, off + n, &err);
                        if (k < 0)
                                printf("# pread at %" PRIu64 ": %s\n", off + n,
                                       evd_error_message(&err, (int)k));
                        CHECK(k >= 0);
                        if (k == 0)
                                break;
                        n += (size_t)k;
                }
                CHECK_INT(n, ==, off >= c ? 0 : (size_t)MIN((uint64_t)want, c - off));
                for (size_t i = 0; i < n; i++)
                        if (buf[i] != expected(off + i, 3)) {
                                printf("# pread at %" PRIu64 ": byte %zu differs\n", off, i);
                                CHECK(false);
                        }
        }
        /* the sequential read goes on where it was, to the end */
        size_t total = got;
        for (;;) {
                ssize_t k = evd_reader_read(rd, buf, sizeof(buf), &err);
                CHECK(k >= 0);
                if (k == 0)
                        break;
                for (ssize_t i = 0; i < k; i++)
                        if (buf[i] != expected(total + (size_t)i, 3)) {
                                printf("# sequential read: byte %zu differs\n", total + (size_t)i);
                                CHECK(false);
                        }
                total += (size_t)k;
        }
        CHECK_INT(total, ==, c);
}

int main(void)
{
        if (!mkdtemp(dir))
                return 99;
        RUN(test_fat_pread);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        (void)!system(cmd);
        return check_finish();
}
