/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The MP4 box locator (lib/mp4-layout.h) against well-formed and hostile top-level layouts, and the
 * positioned read of the directory source it is used with. Files are described as boxes (type, size,
 * 32- or 64-bit header) over a virtual file: only the headers are bytes, the rest reads as zeros, so a
 * 5 GB mdat costs nothing. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "mp4-layout.h"
#include "source.h"

#define MAX_HDRS 80

typedef struct VFile {
        uint64_t size; /* what the caller claims */
        uint64_t real; /* where reads really end */
        unsigned n;
        uint64_t off[MAX_HDRS];
        uint8_t hdr[MAX_HDRS][16];
        unsigned hdr_len[MAX_HDRS];
        unsigned reads;
        int fail_at; /* fail the read number N (1-based) with -EIO; 0 never */
} VFile;

static void put32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* Appends a box at the end of the file: size32 == 1 writes a 64-bit size, size32 == 0 "to the end". */
static void box(VFile *f, const char *type, uint32_t size32, uint64_t size)
{
        unsigned i = f->n++;
        f->off[i] = f->size;
        put32(f->hdr[i], size32);
        memcpy(f->hdr[i] + 4, type, 4);
        f->hdr_len[i] = 8;
        if (size32 == 1) {
                put32(f->hdr[i] + 8, (uint32_t)(size >> 32));
                put32(f->hdr[i] + 12, (uint32_t)size);
                f->hdr_len[i] = 16;
        }
        f->size += size32 == 1 || size32 == 0 ? size : size32;
        f->real = f->size;
}

static ssize_t vread(void *userdata, void *buf, size_t n, uint64_t off, EvdError *err)
{
        VFile *f = userdata;
        f->reads++;
        if (f->fail_at && (int)f->reads == f->fail_at)
                return evd_error_set(err, -EIO, "read %u failed at %" PRIu64, f->reads, off);
        if (off >= f->real)
                return 0;
        n = (size_t)MIN((uint64_t)n, f->real - off);
        memset(buf, 0, n);
        for (unsigned i = 0; i < f->n; i++)
                for (unsigned b = 0; b < f->hdr_len[i]; b++)
                        if (f->off[i] + b >= off && f->off[i] + b < off + n)
                                ((uint8_t *)buf)[f->off[i] + b - off] = f->hdr[i][b];
        return (ssize_t)n;
}

static int layout(VFile *f, uint64_t max_tail, EvdMp4Layout *l, const char **why)
{
        *why = NULL;
        return evd_mp4_layout(vread, f, f->size, max_tail, l, why, NULL);
}

static void test_recorder_layout(void)
{
        VFile f = {0};
        EvdMp4Layout l;
        const char *why;
        box(&f, "ftyp", 32, 0);
        box(&f, "free", 8, 0);
        box(&f, "mdat", 600000000u, 0);
        box(&f, "moov", 400000, 0);
        CHECK_INT(layout(&f, 16u << 20, &l, &why), ==, 1);
        CHECK_INT(l.mdat_offset, ==, 40);
        CHECK_INT(l.mdat_size, ==, 600000000u);
        CHECK_INT(l.moov_offset, ==, 600000040u);
        CHECK_INT(l.moov_size, ==, 400000);
        CHECK_INT(l.tail_offset, ==, 600000040u);
        CHECK_INT(l.tail_size, ==, 400000);
        CHECK_INT(l.n_boxes, ==, 4);
        CHECK_INT(f.reads, ==, 4); /* one small read per box, never the payload */
        /* the tail bound is inclusive */
        CHECK_INT(layout(&f, 400000, &l, &why), ==, 1);
        CHECK_INT(layout(&f, 399999, &l, &why), ==, 0);
        CHECK(why && strstr(why, "larger"));
}

static void test_moov_first(void)
{
        VFile f = {0};
        EvdMp4Layout l;
        const char *why;
        box(&f, "moov", 5000, 0); /* no ftyp: QuickTime files may start with their index */
        box(&f, "mdat", 1000000, 0);
        CHECK_INT(layout(&f, 16u << 20, &l, &why), ==, 1);
        CHECK_INT(l.moov_offset, ==, 0);
        CHECK_INT(l.tail_offset, ==, 1005000);
        CHECK_INT(l.tail_size, ==, 0);
        /* a box after the mdat of a moov-first file is in the tail too */
        box(&f, "udta", 100, 0);
        CHECK_INT(layout(&f, 16u << 20, &l, &why), ==, 1);
        CHECK_INT(l.tail_size, ==, 100);
}

static void test_64bit_sizes(void)
{
        VFile f = {0};
        EvdMp4Layout l;
        const char *why;
        box(&f, "ftyp", 24, 0);
        box(&f, "mdat", 1, 5000000000ull); /* 5 GB: does not fit 32 bits */
        box(&f, "moov", 1, 70000);         /* a 64-bit header on a small box is allowed */
        CHECK_INT(layout(&f, 16u << 20, &l, &why), ==, 1);
        CHECK_INT(l.mdat_offset, ==, 24);
        CHECK_INT(l.mdat_size, ==, 5000000000ull);
        CHECK_INT(l.moov_offset, ==, 5000000024ull);
        CHECK_INT(l.tail_size, ==, 70000);

        /* a 64-bit size smaller than its 16-byte header */
        VFile g = {0};
        box(&g, "ftyp", 24, 0);
        box(&g, "mdat", 1, 12);
        g.size = g.real = 24 + 16 + 100; /* (a moov header would overlap the 16-byte mdat header) */
        CHECK_INT(layout(&g, 16u << 20, &l, &why), ==, 0);
        CHECK(why && strstr(why, "smaller than its header"));

        /* a 64-bit size that wraps around: far past the end */
        VFile h = {0};
        box(&h, "ftyp", 24, 0);
        box(&h, "mdat", 1, 1000);
        put32(h.hdr[1] + 8, 0xffffffffu);
        put32(h.hdr[1] + 12, 0xfffffff0u);
        box(&h, "moov", 100, 0);
        CHECK_INT(layout(&h, 16u << 20, &l, &why), ==, 0);
        CHECK(why && strstr(why, "past the end"));
}

static void test_size_zero_to_end(void)
{
        VFile f = {0};
        EvdMp4Layout l;
        const char *why;
        box(&f, "ftyp", 24, 0);
        box(&f, "moov", 800, 0);
        box(&f, "mdat", 0, 900000); /* "to the end of the file" */
        CHECK_INT(layout(&f, 16u << 20, &l, &why), ==, 1);
        CHECK_INT(l.mdat_size, ==, 900000);
        CHECK_INT(l.tail_size, ==, 0);
        /* an mdat to the end leaves no room for an index after it */
        VFile g = {0};
        box(&g, "ftyp", 24, 0);
        box(&g, "mdat", 0, 900000);
        CHECK_INT(layout(&g, 16u << 20, &l, &why), ==, 0);
        CHECK(why && strstr(why, "no moov"));
}

static void test_hostile(void)
{
        EvdMp4Layout l;
        const char *why;
        struct {
                const char *name;
                void (*make)(VFile *f);
                const char *why;
        } cases[] = {
            {"no moov", NULL, "no moov"},
            {"no mdat", NULL, "no mdat"},
            {"two mdat", NULL, "more than one mdat"},
            {"two moov", NULL, "more than one moov"},
            {"fragmented", NULL, "fragmented"},
            {"truncated moov", NULL, "shorter than its size"},
            {"box past the end", NULL, "past the end"},
            {"size below header", NULL, "smaller than its header"},
            {"binary type", NULL, "not text"},
            {"not mp4", NULL, "not an MP4"},
            {"trailing bytes", NULL, "after the last box"},
            {"too many boxes", NULL, "too many"},
        };
        for (size_t c = 0; c < ELEMENTSOF(cases); c++) {
                VFile f = {0};
                const char *n = cases[c].name;
                if (strcmp(n, "not mp4") != 0)
                        box(&f, "ftyp", 24, 0);
                if (!strcmp(n, "no moov"))
                        box(&f, "mdat", 5000, 0);
                else if (!strcmp(n, "no mdat"))
                        box(&f, "moov", 5000, 0);
                else if (!strcmp(n, "two mdat")) {
                        box(&f, "mdat", 5000, 0);
                        box(&f, "mdat", 5000, 0);
                        box(&f, "moov", 500, 0);
                } else if (!strcmp(n, "two moov")) {
                        box(&f, "mdat", 5000, 0);
                        box(&f, "moov", 500, 0);
                        box(&f, "moov", 500, 0);
                } else if (!strcmp(n, "fragmented")) {
                        box(&f, "moov", 500, 0);
                        box(&f, "moof", 100, 0);
                        box(&f, "mdat", 5000, 0);
                } else if (!strcmp(n, "truncated moov")) {
                        box(&f, "mdat", 5000, 0);
                        box(&f, "moov", 500, 0);
                        f.real =
                            f.size - 600; /* the file really ends inside the mdat: the moov header is gone */
                } else if (!strcmp(n, "box past the end")) {
                        box(&f, "mdat", 5000, 0);
                        box(&f, "moov", 500, 0);
                        put32(f.hdr[2], 501);
                } else if (!strcmp(n, "size below header")) {
                        box(&f, "mdat", 5000, 0);
                        box(&f, "moov", 500, 0);
                        put32(f.hdr[2], 7);
                } else if (!strcmp(n, "binary type")) {
                        box(&f, "mdat", 5000, 0);
                        box(&f, "mo\x01v", 500, 0);
                } else if (!strcmp(n, "not mp4")) {
                        box(&f, "RIFF", 24, 0);
                        box(&f, "mdat", 5000, 0);
                        box(&f, "moov", 500, 0);
                } else if (!strcmp(n, "trailing bytes")) {
                        box(&f, "mdat", 5000, 0);
                        box(&f, "moov", 500, 0);
                        f.size += 5;
                        f.real += 5;
                } else if (!strcmp(n, "too many boxes")) {
                        for (unsigned i = 0; i < EVD_MP4_MAX_BOXES; i++)
                                box(&f, "free", 8, 0);
                        box(&f, "mdat", 5000, 0);
                        box(&f, "moov", 500, 0);
                }
                int r = layout(&f, 16u << 20, &l, &why);
                if (r != 0 || !why || !strstr(why, cases[c].why))
                        printf("# case '%s': %d (%s)\n", n, r, why ? why : "-");
                CHECK_INT(r, ==, 0);
                CHECK(why && strstr(why, cases[c].why));
        }
        /* too short to hold a box header at all */
        VFile t = {.size = 12, .real = 12};
        CHECK_INT(layout(&t, 16u << 20, &l, &why), ==, 0);
}

static void test_read_error(void)
{
        VFile f = {0};
        EvdMp4Layout l;
        EvdError err = {};
        box(&f, "ftyp", 24, 0);
        box(&f, "mdat", 5000, 0);
        box(&f, "moov", 500, 0);
        f.fail_at = 3;
        CHECK_INT(evd_mp4_layout(vread, &f, f.size, 1u << 20, &l, NULL, &err), ==, -EIO);
        CHECK(strstr(err.msg, "read 3") != NULL);
}

/* The directory source's positioned read: at any offset, without moving the sequential position. */
static void test_dir_pread(void)
{
        char dir[] = "/tmp/evd-test-mp4-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        char p[256];
        snprintf(p, sizeof(p), "%s/A.MP4", dir);
        int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
        CHECK(fd >= 0);
        uint8_t data[10000];
        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (uint8_t)(i * 7 + 3);
        CHECK(write(fd, data, sizeof(data)) == (ssize_t)sizeof(data));
        close(fd);

        _cleanup_(evd_source_freep) EvdSource *s = NULL;
        CHECK_OK(evd_source_dir_new(dir, &s, NULL));
        _cleanup_(evd_reader_closep) EvdReader *rd = NULL;
        CHECK_OK(evd_source_open(s, "A.MP4", &rd, NULL));
        CHECK(evd_reader_can_pread(rd));
        uint8_t buf[100];
        CHECK_INT(evd_reader_read(rd, buf, 10, NULL), ==, 10);
        CHECK_INT(evd_reader_pread(rd, buf, 100, 9950, NULL), ==, 50);
        CHECK(memcmp(buf, data + 9950, 50) == 0);
        CHECK_INT(evd_reader_pread(rd, buf, 100, 20000, NULL), ==, 0);
        CHECK_INT(evd_reader_read(rd, buf, 5, NULL), ==, 5); /* the sequential position did not move */
        CHECK(memcmp(buf, data + 10, 5) == 0);
        unlink(p);
        rmdir(dir);
}

int main(void)
{
        RUN(test_recorder_layout);
        RUN(test_moov_first);
        RUN(test_64bit_sizes);
        RUN(test_size_zero_to_end);
        RUN(test_hostile);
        RUN(test_read_error);
        RUN(test_dir_pread);
        return check_finish();
}
