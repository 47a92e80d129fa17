/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reading a big file ahead on the volume's own thread (fs.c + fs-prefetch.c, EvdFsDevice.prefetch), over a
 * FAT32 image whose block reads this test serves (and slows down, counts, or fails): the bytes are the
 * file's through a fragmented cluster chain; the device keeps being read while the reader is busy
 * elsewhere; a positioned read goes before the prefetcher's queue; a failed read reaches the reader
 * with its message at the right place; the file announced next follows; closing in the middle of a plan
 * is clean. Needs mkfs.vfat and
 * mtools (scripts/deps). */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "fs.h"

static char dir[] = "/tmp/evd-test-prefetch-XXXXXX";
static char img[400];

/* Byte i of file `seed`: no block of any file repeats another (test_failed_read_reaches_reader finds a
 * block of the file in the image by its content). */
static uint8_t expected(uint64_t i, unsigned seed)
{
        uint64_t x = (i / 8) ^ ((uint64_t)seed << 40);
        x *= 0x9e3779b97f4a7c15ull;
        x ^= x >> 29;
        return (uint8_t)(x >> (8 * (i % 8)));
}

static int make_file(const char *name, size_t size, unsigned seed)
{
        char p[300];
        snprintf(p, sizeof(p), "%s/%s", dir, name);
        FILE *f = fopen(p, "w");
        if (!f)
                return -1;
        for (size_t i = 0; i < size; i++)
                fputc(expected(i, seed), f);
        return fclose(f);
}

/* The device: the image file, each read optionally slowed down, counted by thread, or failed. */
typedef struct Dev {
        int fd;
        unsigned delay_ms;
        pthread_t main_thread;
        atomic_uint reads, reads_ahead;     /* all; those of another thread than the test's */
        atomic_bool fg_waiting;             /* the test's thread is about to read */
        atomic_uint ahead_while_fg_waiting; /* reads of the prefetcher begun while it waited */
        uint64_t fail_lba;                  /* a read covering this block fails (0: none) */
} Dev;

static int dev_read(void *userdata, uint64_t lba, uint32_t count, void *buf, EvdError *err)
{
        Dev *d = userdata;
        bool ahead = !pthread_equal(pthread_self(), d->main_thread);
        atomic_fetch_add(&d->reads, 1);
        if (ahead) {
                atomic_fetch_add(&d->reads_ahead, 1);
                if (atomic_load(&d->fg_waiting))
                        atomic_fetch_add(&d->ahead_while_fg_waiting, 1);
        } else
                atomic_store(&d->fg_waiting, false);
        if (d->delay_ms)
                nanosleep(&(struct timespec){0, (long)d->delay_ms * 1000000L}, NULL);
        if (d->fail_lba && lba <= d->fail_lba && d->fail_lba < lba + count)
                return evd_error_set(err, -EIO, "medium error at block %" PRIu64 " (test)", d->fail_lba);
        if (pread(d->fd, buf, (size_t)count * 512u, (off_t)(lba * 512u)) != (ssize_t)count * 512)
                return evd_error_set(err, -EIO, "short read at block %" PRIu64, lba);
        return 0;
}

static int fs_open(Dev *d, bool prefetch, EvdFs **ret)
{
        struct stat st;
        if (fstat(d->fd, &st) < 0)
                return -errno;
        EvdFsDevice dev = {.block_size = 512,
                           .block_count = (uint64_t)st.st_size / 512,
                           .read_blocks = dev_read,
                           .userdata = d,
                           .prefetch = prefetch};
        EvdError err = {};
        int r = evd_fs_open(&dev, ret, &err);
        if (r < 0)
                printf("# %s\n", evd_error_message(&err, r));
        return r;
}

static Dev dev_new(void)
{
        return (Dev){.fd = open(img, O_RDONLY | O_CLOEXEC), .main_thread = pthread_self()};
}

/* Reads [from, size) of f sequentially, checking every byte; the offset where a read failed, or size. */
static uint64_t read_check(EvdFsFile *f, uint64_t from, uint64_t size, unsigned seed, EvdError *err,
                           int *ret_r)
{
        static uint8_t buf[1u << 20];
        uint64_t off = from;
        *ret_r = 0;
        while (off < size) {
                ssize_t k = evd_fs_file_read(f, buf, sizeof(buf), err);
                if (k <= 0) {
                        *ret_r = k < 0 ? (int)k : -ENODATA;
                        return off;
                }
                for (ssize_t i = 0; i < k; i++)
                        if (buf[i] != expected(off + (uint64_t)i, seed)) {
                                printf("# byte %" PRIu64 " differs\n", off + (uint64_t)i);
                                *ret_r = -EBADMSG;
                                return off;
                        }
                off += (uint64_t)k;
        }
        return off;
}

static const size_t size_a = 1500000, size_b = 400000, size_c = 9000000, size_d = 6000000;

/* C.BIN takes A.BIN's freed clusters and continues after B.BIN: two runs. */
static void test_bytes_through_fragments(void)
{
        Dev d = dev_new();
        _cleanup_(evd_fs_closep) EvdFs *fs = NULL;
        CHECK_OK(fs_open(&d, true, &fs));
        EvdError err = {};
        _cleanup_(evd_fs_file_closep) EvdFsFile *f = NULL;
        CHECK_OK(evd_fs_file_open(fs, "C.BIN", &f, &err));
        int r;
        CHECK_INT(read_check(f, 0, size_c, 3, &err, &r), ==, size_c);
        CHECK_OK(r);
        EvdFsStats st;
        evd_fs_stats(fs, &st);
        printf("# %" PRIu64 " device reads, %" PRIu64 " of them ahead; %" PRIu64 " bytes taken from them\n",
               st.device_reads, st.prefetch_reads, st.prefetch_bytes_taken);
        CHECK_INT(st.prefetch_reads, >=, size_c / (1u << 20));
        CHECK_INT(st.prefetch_bytes_taken, ==, size_c);
        /* every byte read once: the file and the volume's metadata, nothing twice */
        CHECK_INT(st.device_bytes, <=, size_c + (1u << 20));
        close(d.fd);
}

/* The reader stops after its first chunk (as a docking does while the file before is hashed, synced and
 * recorded): the device goes on reading the next chunks meanwhile, and they are then the reader's without
 * another device read. Without reading ahead nothing is read while the reader is away. */
static void test_reads_while_reader_is_away(void)
{
        Dev d = dev_new();
        d.delay_ms = 5;
        _cleanup_(evd_fs_closep) EvdFs *fs = NULL;
        CHECK_OK(fs_open(&d, true, &fs));
        EvdError err = {};
        _cleanup_(evd_fs_file_closep) EvdFsFile *f = NULL;
        CHECK_OK(evd_fs_file_open(fs, "C.BIN", &f, &err));
        static uint8_t buf[1u << 20];
        CHECK_INT(evd_fs_file_read(f, buf, sizeof(buf), &err), ==, sizeof(buf));
        unsigned before = atomic_load(&d.reads);
        /* away: until the prefetcher has read its 8 chunks (or 5 s) */
        for (int i = 0; i < 500 && atomic_load(&d.reads) < before + EVD_FS_PREFETCH_SLOTS - 1; i++)
                nanosleep(&(struct timespec){0, 10000000L}, NULL);
        unsigned away = atomic_load(&d.reads) - before;
        printf("# %u device reads while the reader was away\n", away);
        CHECK_INT(away, >=, EVD_FS_PREFETCH_SLOTS - 1);
        /* the next 7 MiB come from memory */
        before = atomic_load(&d.reads);
        for (unsigned i = 0; i < EVD_FS_PREFETCH_SLOTS - 1; i++)
                CHECK_INT(evd_fs_file_read(f, buf, (1u << 20), &err), >, 0);
        /* taking them made room for more, which the prefetcher reads at once: count only what the reader
         * read itself */
        EvdFsStats st;
        evd_fs_stats(fs, &st);
        CHECK_INT(st.device_reads - st.prefetch_reads, <=, 12); /* the volume's metadata, no file bytes */
        close(d.fd);
}

/* A positioned read (a look at the index at the end of the file, before its copy) while the prefetcher
 * has its whole plan queued: it goes next, not after the plan (a plain mutex let the prefetcher's
 * thread take the device again and again: 6 of its reads went first). */
static void test_positioned_read_goes_first(void)
{
        Dev d = dev_new();
        d.delay_ms = 10;
        _cleanup_(evd_fs_closep) EvdFs *fs = NULL;
        CHECK_OK(fs_open(&d, true, &fs));
        EvdError err = {};
        _cleanup_(evd_fs_file_closep) EvdFsFile *f = NULL;
        CHECK_OK(evd_fs_file_open(fs, "C.BIN", &f, &err));
        /* the plan is queued and being read; a positioned read far from it */
        nanosleep(&(struct timespec){0, 2000000L}, NULL);
        static uint8_t buf[100000];
        atomic_store(&d.fg_waiting, true);
        ssize_t k = evd_fs_file_pread(f, buf, sizeof(buf), size_c - sizeof(buf), &err);
        CHECK_INT(k, >, 0);
        bool same = true;
        for (ssize_t i = 0; i < k; i++)
                same = same && buf[i] == expected(size_c - sizeof(buf) + (uint64_t)i, 3);
        CHECK(same);
        unsigned ahead = atomic_load(&d.ahead_while_fg_waiting);
        printf("# %u reads of the prefetcher began while the positioned read waited\n", ahead);
        CHECK_INT(ahead, <=, 1);
        /* and the sequential read is not disturbed */
        int r;
        CHECK_INT(read_check(f, 0, size_c, 3, &err, &r), ==, size_c);
        CHECK_OK(r);
        close(d.fd);
}

/* A block of the file that cannot be read: the reader gets the device's error when it reaches that chunk
 * (the bytes before are right), as it would have reading the device itself. */
static void test_failed_read_reaches_reader(void)
{
        Dev d = dev_new();
        _cleanup_(evd_fs_closep) EvdFs *fs = NULL;
        CHECK_OK(fs_open(&d, true, &fs));
        EvdError err = {};
        _cleanup_(evd_fs_file_closep) EvdFsFile *f = NULL;
        CHECK_OK(evd_fs_file_open(fs, "C.BIN", &f, &err));
        /* the device block holding file byte 3.5 MiB (in the image: the file's bytes never repeat a block)
         */
        uint64_t bad_off = 3584u * 1024u;
        uint8_t probe[512];
        for (uint64_t i = 0; i < sizeof(probe); i++)
                probe[i] = expected(bad_off + i, 3);
        struct stat st;
        CHECK(fstat(d.fd, &st) == 0);
        uint64_t lba = 0;
        for (uint64_t b = 0; b < (uint64_t)st.st_size / 512 && !lba; b++) {
                uint8_t blk[512];
                if (pread(d.fd, blk, sizeof(blk), (off_t)(b * 512)) == 512 && !memcmp(blk, probe, 512))
                        lba = b;
        }
        CHECK(lba != 0);
        evd_fs_file_close(steal_ptr(&f));
        d.fail_lba = lba;
        CHECK_OK(evd_fs_file_open(fs, "C.BIN", &f, &err));
        int r;
        uint64_t at = read_check(f, 0, size_c, 3, &err, &r);
        printf("# failed at byte %" PRIu64 ": %s\n", at, evd_error_message(&err, r));
        CHECK_INT(r, ==, -EIO);
        CHECK_INT(at, ==, 3u << 20); /* the 1 MiB chunk holding the bad block */
        CHECK(strstr(err.msg, "medium error at block") != NULL);
        CHECK(strstr(err.msg, "C.BIN") != NULL);
        close(d.fd);
}

/* The look at an MP4 index before a recording's copy: the header of the box at the end of the file, then
 * the whole box to the file's end. One device read, not one for the header and another for the rest. */
static void test_index_look_is_one_read(void)
{
        Dev d = dev_new();
        _cleanup_(evd_fs_closep) EvdFs *fs = NULL;
        CHECK_OK(fs_open(&d, false, &fs));
        EvdError err = {};
        _cleanup_(evd_fs_file_closep) EvdFsFile *f = NULL;
        CHECK_OK(evd_fs_file_open(fs, "C.BIN", &f, &err));
        const uint64_t box = size_c - 150000;
        static uint8_t buf[150000];
        unsigned before = atomic_load(&d.reads);
        CHECK_INT(evd_fs_file_pread(f, buf, 16, box, &err), ==, 16);
        size_t got = 0;
        while (got < sizeof(buf)) {
                ssize_t k = evd_fs_file_pread(f, buf + got, sizeof(buf) - got, box + got, &err);
                CHECK_INT(k, >, 0);
                got += (size_t)k;
        }
        unsigned reads = atomic_load(&d.reads) - before;
        bool same = true;
        for (size_t i = 0; i < got; i++)
                same = same && buf[i] == expected(box + i, 3);
        CHECK(same);
        printf("# %u device reads for the look at the last 150 kB\n", reads);
        CHECK_INT(reads, ==, 1);
        close(d.fd);
}

/* evd_fs_read_next(): once the file being read is read ahead to its end, the announced one follows, so
 * the device goes on while the caller is between the two files; opening it then takes those chunks. An
 * announcement alone reads nothing (a docking whose files are all stored already must not read them),
 * and one the caller does not follow costs at most the prefetcher's slots. */
static void test_next_file_announced(void)
{
        Dev d = dev_new();
        _cleanup_(evd_fs_closep) EvdFs *fs = NULL;
        CHECK_OK(fs_open(&d, true, &fs));
        EvdError err = {};
        evd_fs_read_next(fs, "D.BIN");
        nanosleep(&(struct timespec){0, 50000000L}, NULL);
        CHECK_INT(atomic_load(&d.reads_ahead), ==, 0);

        _cleanup_(evd_fs_file_closep) EvdFsFile *c = NULL;
        CHECK_OK(evd_fs_file_open(fs, "C.BIN", &c, &err));
        evd_fs_read_next(fs, "D.BIN");
        int r;
        CHECK_INT(read_check(c, 0, size_c, 3, &err, &r), ==, size_c);
        CHECK_OK(r);
        evd_fs_file_close(steal_ptr(&c));
        /* between the files: D's chunks came while C was read (up to the prefetcher's slots) */
        /* until the device has been quiet for 100 ms (a loaded machine may hold the prefetcher's thread
         * back for more than one 20 ms look), 5 s at most */
        unsigned last = UINT_MAX, quiet = 0;
        for (int i = 0; i < 250 && quiet < 5; i++) {
                unsigned now = atomic_load(&d.reads);
                quiet = now == last ? quiet + 1 : 0;
                last = now;
                nanosleep(&(struct timespec){0, 20000000L}, NULL);
        }
        EvdFsStats st0, st1;
        evd_fs_stats(fs, &st0);
        _cleanup_(evd_fs_file_closep) EvdFsFile *dd = NULL;
        CHECK_OK(evd_fs_file_open(fs, "D.BIN", &dd, &err));
        CHECK_INT(read_check(dd, 0, size_d, 4, &err, &r), ==, size_d);
        CHECK_OK(r);
        evd_fs_stats(fs, &st1);
        printf("# %" PRIu64 " of D's chunks were read after it was opened\n",
               st1.prefetch_reads - st0.prefetch_reads);
        CHECK_INT(st1.prefetch_reads - st0.prefetch_reads, <=, 1);
        /* all of D from chunks read ahead, none of its bytes read twice */
        CHECK_INT(st1.prefetch_bytes_taken - st0.prefetch_bytes_taken, ==, size_d);
        CHECK_INT(st1.device_bytes, <=, size_c + size_d + (1u << 20));
        evd_fs_file_close(steal_ptr(&dd));

        /* announced, not followed: C is read again instead; at most the slots were read of D */
        CHECK_OK(evd_fs_file_open(fs, "B.BIN", &c, &err)); /* small: no plan of its own */
        evd_fs_file_close(steal_ptr(&c));
        CHECK_OK(evd_fs_file_open(fs, "C.BIN", &c, &err));
        evd_fs_read_next(fs, "D.BIN");
        CHECK_INT(read_check(c, 0, size_c, 3, &err, &r), ==, size_c);
        evd_fs_file_close(steal_ptr(&c));
        evd_fs_read_next(fs, "A.BIN"); /* gone: a hint, nothing fails */
        CHECK_OK(evd_fs_file_open(fs, "C.BIN", &c, &err));
        CHECK_INT(read_check(c, 0, size_c, 3, &err, &r), ==, size_c);
        CHECK_OK(r);
        close(d.fd);
}

/* Closing the file, then the volume, with chunks queued and one being read: nothing leaks or hangs
 * (ASan), and without EvdFsDevice.prefetch nothing is read ahead at all. */
static void test_close_mid_plan(void)
{
        Dev d = dev_new();
        d.delay_ms = 20;
        EvdFs *fs = NULL;
        CHECK_OK(fs_open(&d, true, &fs));
        EvdError err = {};
        EvdFsFile *f = NULL;
        CHECK_OK(evd_fs_file_open(fs, "C.BIN", &f, &err));
        /* until the prefetcher has read a chunk (5 s at most; a fixed pause may be too short on a loaded
         * machine) */
        for (int i = 0; i < 500 && atomic_load(&d.reads_ahead) < 1; i++)
                nanosleep(&(struct timespec){0, 10000000L}, NULL);
        evd_fs_file_close(f);
        CHECK_OK(evd_fs_file_open(fs, "C.BIN", &f, &err));
        evd_fs_file_close(f); /* at once: chunks queued, one being read */
        evd_fs_close(fs);
        CHECK(atomic_load(&d.reads_ahead) >= 1);
        close(d.fd);

        Dev p = dev_new();
        CHECK_OK(fs_open(&p, false, &fs));
        CHECK_OK(evd_fs_file_open(fs, "C.BIN", &f, &err));
        int r;
        CHECK_INT(read_check(f, 0, size_c, 3, &err, &r), ==, size_c);
        evd_fs_file_close(f);
        evd_fs_close(fs);
        CHECK_INT(atomic_load(&p.reads_ahead), ==, 0);
        close(p.fd);
}

static void test_no_image(void)
{
        SKIP("mkfs.vfat/mtools failed (not installed?)");
}

int main(void)
{
        if (!mkdtemp(dir)) {
                printf("Bail out! mkdtemp\n");
                return 1;
        }
        char cmd[1500];
        snprintf(img, sizeof(img), "%s/img", dir);
        if (make_file("A.BIN", size_a, 1) < 0 || make_file("B.BIN", size_b, 2) < 0 ||
            make_file("C.BIN", size_c, 3) < 0 || make_file("D.BIN", size_d, 4) < 0) {
                printf("Bail out! cannot write the test files\n");
                return 1;
        }
        snprintf(cmd, sizeof(cmd),
                 "cd %s && mkfs.vfat -F 32 -C img 65536 >/dev/null && export MTOOLS_SKIP_CHECK=1 && "
                 "mcopy -i img A.BIN ::/ && mcopy -i img B.BIN ::/ && mdel -i img ::/A.BIN && "
                 "mcopy -i img C.BIN ::/ && mcopy -i img D.BIN ::/",
                 dir);
        if (system(cmd) != 0) {
                RUN(test_no_image);
                return check_finish();
        }
        RUN(test_bytes_through_fragments);
        RUN(test_reads_while_reader_is_away);
        RUN(test_positioned_read_goes_first);
        RUN(test_failed_read_reaches_reader);
        RUN(test_index_look_is_one_read);
        RUN(test_next_file_announced);
        RUN(test_close_mid_plan);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        (void)!system(cmd);
        return check_finish();
}
