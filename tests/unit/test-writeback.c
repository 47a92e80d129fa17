/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lib/writeback.h: writeback started behind a sequential writer, on a thread of its own. The ranges (how
 * far behind the writer, cut where), that what was handed over is really no longer dirty (cachestat(2)
 * on Linux >= 6.5: the pages are under writeback or clean), and that a descriptor that refuses
 * sync_file_range() (a pipe) only stops the hints. And copy.h's evd_tmpfile_sync_begin/_end (a big
 * file's original synced from the end of its copy): its result is the file's fdatasync(); and
 * evd_tmpfile_hash_and_sync()'s hash at sizes around a read. Prints TAP. */
#include <errno.h>
#include <fcntl.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"
#include "copy.h"
#include "writeback.h"

#define MiB (1024u * 1024u)

static void test_next(void)
{
        uint64_t from = 0, to = 0;
        /* nothing until a whole step lies behind the lag */
        CHECK(!evd_writeback_next(0, 0, 8 * MiB, 4 * MiB, 2 * MiB, &from, &to));
        CHECK(!evd_writeback_next(0, 4 * MiB, 8 * MiB, 4 * MiB, 2 * MiB, &from, &to));
        CHECK(!evd_writeback_next(0, 12 * MiB - 1, 8 * MiB, 4 * MiB, 2 * MiB, &from, &to));
        CHECK(evd_writeback_next(0, 12 * MiB, 8 * MiB, 4 * MiB, 2 * MiB, &from, &to));
        CHECK_INT(from, ==, 0);
        CHECK_INT(to, ==, 8 * MiB);
        /* cut on the alignment, lag behind the writer */
        CHECK(evd_writeback_next(0, 13 * MiB + 5, 8 * MiB, 4 * MiB, 2 * MiB, &from, &to));
        CHECK_INT(to, ==, 8 * MiB);
        CHECK(evd_writeback_next(0, 14 * MiB + 5, 8 * MiB, 4 * MiB, 2 * MiB, &from, &to));
        CHECK_INT(to, ==, 10 * MiB);
        /* from where the last range ended */
        CHECK(!evd_writeback_next(10 * MiB, 21 * MiB, 8 * MiB, 4 * MiB, 2 * MiB, &from, &to));
        CHECK(evd_writeback_next(10 * MiB, 22 * MiB, 8 * MiB, 4 * MiB, 2 * MiB, &from, &to));
        CHECK_INT(from, ==, 10 * MiB);
        CHECK_INT(to, ==, 18 * MiB);
        /* a writer that went back (a muxer rewriting its head) never gives a range backwards */
        CHECK(!evd_writeback_next(18 * MiB, 1 * MiB, 8 * MiB, 4 * MiB, 2 * MiB, &from, &to));
        CHECK(!evd_writeback_next(0, 100 * MiB, 8 * MiB, 4 * MiB, 0, &from, &to)); /* no alignment: none */
}

#ifndef __NR_cachestat
#if defined(__x86_64__) || defined(__aarch64__)
#define __NR_cachestat 451
#endif
#endif

typedef struct CacheStat {
        uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
} CacheStat;

/* dirty pages of [off, off+len): -1 when the kernel cannot say (no cachestat) */
static long long dirty_pages(int fd, uint64_t off, uint64_t len)
{
#ifdef __NR_cachestat
        struct {
                uint64_t off, len;
        } range = {off, len};
        CacheStat cs = {0};
        if (syscall(__NR_cachestat, fd, &range, &cs, 0) < 0)
                return -1;
        return (long long)cs.nr_dirty;
#else
        (void)fd, (void)off, (void)len;
        return -1;
#endif
}

/* 64 MiB written 1 MiB at a time: the ranges follow the writer, and what they cover is not dirty any
 * more when the writer is done (the final fdatasync() finds only the last few MiB). */
static void test_file(void)
{
        const char *base = getenv("TMPDIR") ?: "/tmp";
        char path[512];
        snprintf(path, sizeof(path), "%s/evd-writeback-XXXXXX", base);
        int fd = mkstemp(path);
        CHECK(fd >= 0);
        unlink(path);
        struct statfs sfs;
        bool tmpfs = fstatfs(fd, &sfs) == 0 && sfs.f_type == 0x01021994; /* TMPFS_MAGIC: no writeback */
        uint8_t *buf = malloc(MiB);
        CHECK(buf != NULL);
        memset(buf, 0x5a, MiB);
        EvdWriteback *w = evd_writeback_new(fd);
        CHECK(w != NULL);
        uint64_t written = 0;
        for (unsigned i = 0; i < 64; i++) {
                CHECK(write(fd, buf, MiB) == (ssize_t)MiB);
                written += MiB;
                evd_writeback_advance(w, written);
        }
        evd_writeback_advance(w, 3); /* the writer went back: nothing changes */
        EvdWritebackStats st;
        evd_writeback_stop(w, &st);
        free(buf);
        printf("# %" PRIu64 " ranges up to %" PRIu64 " MiB of %" PRIu64 " MiB, error %d, %s\n", st.ranges,
               st.started / MiB, written / MiB, st.error, st.threaded ? "threaded" : "inline");
        CHECK_INT(st.error, ==, 0);
        CHECK(st.threaded);
        CHECK_INT(st.started % EVD_WRITEBACK_ALIGN, ==, 0);
        CHECK_INT(st.started, <=, written - EVD_WRITEBACK_LAG);
        /* everything asked for before the stop was handed over: less than a step is left */
        CHECK_INT(st.started, >, written - EVD_WRITEBACK_LAG - EVD_WRITEBACK_STEP);
        CHECK_INT(st.ranges, >=, 1);
        CHECK_INT(st.ranges, <=, written / EVD_WRITEBACK_STEP);
        long long dirty = dirty_pages(fd, 0, st.started);
        long long dirty_tail = dirty_pages(fd, st.started, written - st.started);
        if (dirty < 0 || tmpfs) {
                close(fd);
                SKIP("cannot see dirty pages here (%s)", tmpfs ? "tmpfs" : "no cachestat(2)");
        }
        printf("# dirty pages: %lld in the ranges handed over, %lld after them\n", dirty, dirty_tail);
        CHECK_INT(dirty, ==, 0);
        CHECK(fdatasync(fd) == 0); /* the caller's sync, as ever */
        CHECK_INT(dirty_pages(fd, 0, written), ==, 0);
        close(fd);
}

/* A descriptor that refuses sync_file_range(): the hints stop with the error kept, nothing else. */
static void test_pipe(void)
{
        int p[2];
        CHECK(pipe(p) == 0);
        EvdWriteback *w = evd_writeback_new(p[1]);
        CHECK(w != NULL);
        for (uint64_t n = MiB; n <= 64 * MiB; n += MiB)
                evd_writeback_advance(w, n);
        EvdWritebackStats st;
        evd_writeback_stop(w, &st);
        close(p[0]);
        close(p[1]);
        printf("# pipe: error %d (%s), %" PRIu64 " ranges\n", st.error, strerror(-st.error), st.ranges);
        CHECK_INT(st.error, ==, -ESPIPE);
        CHECK_INT(st.ranges, ==, 0);
        CHECK_INT(st.started, ==, 0);
}

/* A short file never starts a thread; NULL (out of memory at evd_writeback_new()) is accepted. */
static void test_short_and_null(void)
{
        int p[2];
        CHECK(pipe(p) == 0);
        EvdWriteback *w = evd_writeback_new(p[1]);
        CHECK(w != NULL);
        evd_writeback_advance(w, EVD_WRITEBACK_STEP); /* below step + lag */
        EvdWritebackStats st;
        evd_writeback_stop(w, &st);
        close(p[0]);
        close(p[1]);
        CHECK(!st.threaded);
        CHECK_INT(st.error, ==, 0);
        CHECK_INT(st.ranges, ==, 0);
        evd_writeback_advance(NULL, 100 * MiB);
        st.ranges = 7;
        evd_writeback_stop(NULL, &st);
        CHECK_INT(st.ranges, ==, 0);
}

/* evd_tmpfile_sync_begin/_end: a store file's fdatasync() on another thread; after _end() returned 0
 * nothing of it is dirty; a failure is _end()'s error, with a message. */
static void test_tmpfile_sync(void)
{
        const char *base = getenv("TMPDIR") ?: "/tmp";
        int dir = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK(dir >= 0);
        EvdTmpFile t = EVD_TMPFILE_INIT;
        CHECK_OK(evd_tmpfile_open(dir, &t, NULL));
        uint8_t *buf = malloc(MiB);
        CHECK(buf != NULL);
        memset(buf, 0xa5, MiB);
        for (unsigned i = 0; i < 24; i++)
                CHECK(write(t.fd, buf, MiB) == (ssize_t)MiB);
        free(buf);
        long long before = dirty_pages(t.fd, 0, 24 * MiB);
        EvdTmpFileSync *s = evd_tmpfile_sync_begin(&t);
        CHECK(s != NULL);
        EvdError err = {0};
        CHECK_OK(evd_tmpfile_sync_end(s, &err));
        long long after = dirty_pages(t.fd, 0, 24 * MiB);
        evd_tmpfile_discard(&t);
        close(dir);
        CHECK_INT(evd_tmpfile_sync_end(NULL, &err), ==, 0);
        /* a descriptor fdatasync() refuses: the error comes back from _end() */
        int p[2];
        CHECK(pipe(p) == 0);
        EvdTmpFile tp = {.fd = p[1], .dir_fd = -1};
        s = evd_tmpfile_sync_begin(&tp);
        CHECK(s != NULL);
        int r = evd_tmpfile_sync_end(s, &err);
        close(p[0]);
        close(p[1]);
        CHECK_INT(r, ==, -EINVAL);
        CHECK(strstr(err.msg, "syncing") != NULL);
        if (before < 0)
                SKIP("cannot see dirty pages here (no cachestat(2))");
        printf("# dirty pages: %lld before the sync, %lld after\n", before, after);
        CHECK_INT(after, ==, 0);
}

/* evd_tmpfile_hash_and_sync(): every size gives the file's SHA-256 (empty, one byte, around a chunk,
 * several chunks). */
static void test_hash_sizes(void)
{
        const char *base = getenv("TMPDIR") ?: "/tmp";
        int dir = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK(dir >= 0);
        const size_t sizes[] = {
            0, 1, EVD_COPY_CHUNK - 1, EVD_COPY_CHUNK, EVD_COPY_CHUNK + 1, 9 * EVD_COPY_CHUNK + 7};
        uint8_t *data = malloc(9 * EVD_COPY_CHUNK + 7);
        CHECK(data != NULL);
        uint32_t x = 2463534242u;
        for (size_t i = 0; i < 9 * EVD_COPY_CHUNK + 7; i++) {
                x ^= x << 13, x ^= x >> 17, x ^= x << 5;
                data[i] = (uint8_t)x;
        }
        for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
                EvdTmpFile t = EVD_TMPFILE_INIT;
                CHECK_OK(evd_tmpfile_open(dir, &t, NULL));
                CHECK(sizes[k] == 0 || write(t.fd, data, sizes[k]) == (ssize_t)sizes[k]);
                uint8_t want[EVD_DIGEST_SIZE], got[EVD_DIGEST_SIZE];
                CHECK_OK(evd_hash_buffer(EVD_HASH_SHA256, data, sizes[k], want));
                CHECK_OK(evd_tmpfile_hash_and_sync(&t, NULL, got, NULL));
                evd_tmpfile_discard(&t);
                if (memcmp(want, got, sizeof(want)) != 0)
                        printf("# size %zu: wrong SHA-256\n", sizes[k]);
                CHECK(memcmp(want, got, sizeof(want)) == 0);
        }
        free(data);
        close(dir);
}

int main(void)
{
        RUN(test_next);
        RUN(test_file);
        RUN(test_pipe);
        RUN(test_short_and_null);
        RUN(test_tmpfile_sync);
        RUN(test_hash_sizes);
        return check_finish();
}
