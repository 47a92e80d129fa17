/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* daemon/media-worker-crc.c: the media worker's av_crc() (zlib for the Matroska muxer's CRC-32) gives
 * exactly what libavutil's gives, for every table, length and alignment; the muxer's calls reach it when
 * the program exports it (as evidock-media-worker does); and a whole archive copy is byte-identical
 * either way. Prints TAP. */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavutil/crc.h>
#include <libavutil/log.h>

#include "check.h"
#include "clock.h"
#include "hash.h"
#include "media-gen.h"
#include "media-worker-crc.h"
#include "media.h"

typedef uint32_t (*AvCrcFn)(const AVCRC *ctx, uint32_t crc, const uint8_t *buffer, size_t length);

static char tmpdir[256], gen_video[300];

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint32_t next_rand(void)
{
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return (uint32_t)(rng >> 11);
}

/* ours (this program defines and exports av_crc) against libavutil's, found past us */
static void test_same_crc(void)
{
        evd_media_crc_install();
        AvCrcFn library = (AvCrcFn)dlsym(RTLD_NEXT, "av_crc");
        CHECK(library != NULL);
        CHECK(library != av_crc);
        AvCrcFn ours = (AvCrcFn)dlsym(RTLD_DEFAULT, "av_crc");
        CHECK(ours == av_crc); /* what the libraries' calls find: this program's */
        static const AVCRCId ids[] = {AV_CRC_32_IEEE_LE, AV_CRC_32_IEEE, AV_CRC_16_ANSI_LE,
                                      AV_CRC_16_CCITT,   AV_CRC_8_ATM,   AV_CRC_24_IEEE};
        size_t cap = (1u << 20) + 64;
        uint8_t *buf = malloc(cap);
        CHECK(buf != NULL);
        for (size_t i = 0; i < cap; i++)
                buf[i] = (uint8_t)next_rand();
        uint64_t fast_before = evd_media_crc_fast_calls();
        unsigned compared = 0, differ = 0;
        for (size_t t = 0; t < sizeof(ids) / sizeof(ids[0]); t++) {
                const AVCRC *table = av_crc_get_table(ids[t]);
                for (unsigned k = 0; k < 600; k++) {
                        size_t off = next_rand() % 8;
                        size_t len = k < 300   ? k
                                     : k < 590 ? next_rand() % 70000
                                               : cap - 64 - (next_rand() % 8);
                        uint32_t init = k % 3 == 0 ? UINT32_MAX : k % 3 == 1 ? 0 : next_rand();
                        if (ids[t] != AV_CRC_32_IEEE_LE && ids[t] != AV_CRC_32_IEEE)
                                init &= ids[t] == AV_CRC_24_IEEE ? 0xffffffu
                                        : ids[t] == AV_CRC_8_ATM ? 0xffu
                                                                 : 0xffffu;
                        uint32_t a = av_crc(table, init, buf + off, len);
                        uint32_t b = library(table, init, buf + off, len);
                        compared++;
                        if (a != b && differ++ < 5)
                                printf("# table %d len %zu off %zu init %08x: ours %08x, libavutil %08x\n",
                                       (int)ids[t], len, off, init, a, b);
                }
        }
        free(buf);
        printf("# %u CRCs compared, %" PRIu64 " through zlib\n", compared,
               evd_media_crc_fast_calls() - fast_before);
        CHECK_INT(differ, ==, 0);
        CHECK_INT(evd_media_crc_fast_calls() - fast_before, ==, 600); /* the IEEE LE table only */
}

static int archive_to(const char *out, uint8_t sha[EVD_DIGEST_SIZE], uint64_t *ret_size)
{
        static const char placeholder_hex[] =
            "0000000000000000000000000000000000000000000000000000000000000000";
        EvdArchiveTags tags = {.case_number = "CRC-TEST-1",
                               .method = EVD_METHOD_UNKNOWN,
                               .recorded_start = "2024-05-01T09:30:00+08:00",
                               .recorded_end = "2024-05-01T09:40:00+08:00",
                               .maker = "012345",
                               .device_id = "A123456",
                               .original_sha256 = placeholder_hex,
                               .original_name = "V0001.MP4",
                               .confidentiality = "internal"};
        EvdMediaOptions opts = {.deadline_usec = evd_clock_monotonic_us() + 60u * 1000000u};
        EvdArchiveResult res;
        EvdError err = {0};
        int sfd = open(gen_video, O_RDONLY | O_CLOEXEC);
        int ofd = open(out, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600);
        if (sfd < 0 || ofd < 0)
                return -errno;
        int r = evd_media_archive(sfd, gen_video, &tags, NULL, 0, &opts, ofd, &res, &err);
        if (r < 0)
                printf("# archive: %s\n", evd_error_message(&err, r));
        struct stat st;
        if (r >= 0 && fstat(ofd, &st) == 0)
                *ret_size = (uint64_t)st.st_size;
        if (r >= 0)
                r = evd_hash_fd(EVD_HASH_SHA256, ofd, sha, NULL);
        close(sfd);
        close(ofd);
        return r;
}

/* The muxer's CRC-32s go through zlib, and the archive copy has the same bytes as with libavutil's. */
static void test_archive_identical(void)
{
        char a[320], b[320];
        snprintf(a, sizeof(a), "%s/fast.mkv", tmpdir);
        snprintf(b, sizeof(b), "%s/library.mkv", tmpdir);
        uint8_t sa[EVD_DIGEST_SIZE], sb[EVD_DIGEST_SIZE];
        uint64_t na = 0, nb = 0;
        uint64_t before = evd_media_crc_fast_calls();
        CHECK_OK(archive_to(a, sa, &na));
        uint64_t calls = evd_media_crc_fast_calls() - before;
        bool was = evd_media_crc_set_fast(false);
        CHECK(was);
        CHECK_OK(archive_to(b, sb, &nb));
        evd_media_crc_set_fast(true);
        CHECK_INT(evd_media_crc_fast_calls() - before, ==, calls); /* none while switched off */
        printf("# archive copy of %" PRIu64 " bytes: %" PRIu64 " CRC-32s through zlib\n", na, calls);
        CHECK_INT(calls, >, 0);
        CHECK_INT(na, ==, nb);
        CHECK(memcmp(sa, sb, sizeof(sa)) == 0);
        unlink(a);
        unlink(b);
}

/* The installed worker exports av_crc, or libavformat would never call it. */
static void test_worker_exports(void)
{
        const char *worker = getenv("EVIDOCK_MEDIA_WORKER");
        if (!worker || access(worker, X_OK) != 0)
                SKIP("EVIDOCK_MEDIA_WORKER not set or not executable");
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "nm -D --defined-only '%s' 2>/dev/null", worker);
        FILE *p = popen(cmd, "r");
        CHECK(p != NULL);
        char line[512];
        bool found = false, any = false;
        while (fgets(line, sizeof(line), p)) {
                any = true;
                found |= strstr(line, " T av_crc\n") != NULL;
        }
        pclose(p);
        if (!any)
                SKIP("nm (binutils) printed nothing for %s", worker);
        CHECK(found);
}

int main(void)
{
        av_log_set_level(AV_LOG_ERROR);
        const char *base = getenv("TMPDIR") ?: "/tmp";
        snprintf(tmpdir, sizeof(tmpdir), "%s/evd-media-crc-XXXXXX", base);
        if (!mkdtemp(tmpdir)) {
                printf("Bail out! mkdtemp: %s\n", strerror(errno));
                return 1;
        }
        snprintf(gen_video, sizeof(gen_video), "%s/gen.mp4", tmpdir);
        if (media_gen_mp4(gen_video, true, true, 8) < 0) {
                printf("Bail out! cannot generate test media\n");
                return 1;
        }
        RUN(test_same_crc);
        RUN(test_archive_identical);
        RUN(test_worker_exports);
        unlink(gen_video);
        rmdir(tmpdir);
        return check_finish();
}
