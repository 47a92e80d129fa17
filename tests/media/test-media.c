/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The archive copy against real media: generated H.264+AAC MP4 (moov at end), M4A and JPEG, and the
 * camera files in $EVIDOCK_SHARED_MEDIA (../shared/media beside the clone). Without that folder the tests
 * that need the camera files are skipped with the reason; with it, a missing file is a failure. */
#include <fcntl.h>
#include <sys/stat.h>

#include <libavformat/avformat.h>

#include "clock.h"
#include "check.h"
#include "hash.h"
#include "media-gen.h"
#include "media.h"
#include "text.h"

static char tmpdir[256];
static char gen_video[300], gen_audio[300], gen_jpeg[300];

static const char manifest_line[] =
    "SEG;suite=ed25519-sha256;dev=A123456;off=012345;seq=7;file=DCIM/100REC/V0007.MP4;sig=abc";

static EvdArchiveTags test_tags(const char *sha_hex)
{
        static const EvdArchiveTag extra[] = {{"_EVIDOCK_UNIT", "110105000000"}};
        return (EvdArchiveTags){
            .case_number = "京公(朝)行罚决字〔2024〕第00123号",
            .method = EVD_METHOD_UNKNOWN,
            .recorded_start = "2024-05-01T09:30:00+08:00",
            .recorded_end = "2024-05-01T09:40:00+08:00",
            .maker = "012345",
            .device_id = "A123456",
            .original_sha256 = sha_hex,
            .original_name = "DCIM/100REC/V0007.MP4",
            .confidentiality = "internal",
            .extra = extra,
            .n_extra = 1,
        };
}

static const EvdArchiveAttachment test_att = {
    .filename = "chain-record.txt",
    .mimetype = "text/plain",
    .data = manifest_line,
    .size = sizeof(manifest_line) - 1,
};

/* 0: buf holds the path of the camera file rel; 1: the shared media folder is absent on this machine
 * (the caller skips); -1: the folder is there but rel is not (a failure). */
static int shared_media(const char *rel, char *buf, size_t n)
{
        const char *dir = getenv("EVIDOCK_SHARED_MEDIA");
        struct stat st;
        if (!dir || !*dir || stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
                return 1;
        snprintf(buf, n, "%s/%s", dir, rel);
        if (access(buf, R_OK) < 0) {
                printf("# %s is missing from the shared media folder\n", buf);
                return -1;
        }
        return 0;
}

/* Skips the running test when the real camera files are not on this machine. */
#define NEED_SHARED_MEDIA(rel, buf)                                                                         \
        do {                                                                                                \
                int _s = shared_media(rel, buf, sizeof(buf));                                               \
                if (_s > 0)                                                                                 \
                        SKIP("real camera file %s not available: %s is absent", rel,                        \
                             getenv("EVIDOCK_SHARED_MEDIA") ?: "EVIDOCK_SHARED_MEDIA (unset)");             \
                CHECK(_s == 0);                                                                             \
        } while (0)

static void tmp_path(const char *name, char *buf, size_t n)
{
        snprintf(buf, n, "%s/%s", tmpdir, name);
}

static int open_out(const char *path)
{
        return open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

static int file_sha256_hex(const char *path, char hex[65])
{
        uint8_t d[32];
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = evd_hash_fd(EVD_HASH_SHA256, fd, d, NULL);
        close(fd);
        if (r < 0)
                return r;
        evd_hex(d, 32, hex);
        return 0;
}

/* Reads a whole test file; a test file that cannot be read ends the run (Bail out). */
static ssize_t read_file(const char *path, uint8_t **ret)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
                printf("Bail out! cannot open %s: %s\n", path, strerror(errno));
                exit(1);
        }
        uint8_t *b = malloc((size_t)st.st_size + 1);
        if (!b || pread(fd, b, (size_t)st.st_size, 0) != st.st_size) {
                printf("Bail out! cannot read %s\n", path);
                exit(1);
        }
        close(fd);
        *ret = b;
        return st.st_size;
}

static int digest_path(const char *path, uint8_t d[32], uint64_t *packets)
{
        EvdError err = {0};
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = evd_media_packets_digest(fd, path, NULL, d, packets, &err);
        if (r < 0)
                printf("# digest %s: %s\n", path, evd_error_message(&err, r));
        close(fd);
        return r;
}

/* Archives src into out with the test tags; returns the archive's result. */
static int archive_path(const char *src, const char *out, bool verify, EvdArchiveResult *res, EvdError *err)
{
        char hex[65];
        int r = file_sha256_hex(src, hex);
        if (r < 0)
                return r;
        EvdArchiveTags tags = test_tags(hex);
        EvdMediaOptions opts = {.deadline_usec = evd_clock_monotonic_us() + 60u * 1000000u,
                                .verify_output = verify};
        int sfd = open(src, O_RDONLY | O_CLOEXEC);
        int ofd = open_out(out);
        if (sfd < 0 || ofd < 0)
                return -errno;
        r = evd_media_archive(sfd, src, &tags, &test_att, 1, &opts, ofd, res, err);
        if (r < 0)
                printf("# archive %s: %s\n", src, evd_error_message(err, r));
        close(sfd);
        close(ofd);
        return r;
}

/* Opens an archive copy with libavformat and checks tags, attachment and that nothing leaked. */
static int check_archive_tags(const char *path, const char *method, const char *src_hex)
{
        AVFormatContext *ic = NULL;
        CHECK_OR_RET(avformat_open_input(&ic, path, NULL, NULL) == 0);
        AVDictionary *m = ic->metadata;
        AVDictionaryEntry *e;
        int ok = 0;
#define TAG_IS(k, v)                                                                                        \
        do {                                                                                                \
                e = av_dict_get(m, k, NULL, 0);                                                             \
                if (!e || strcmp(e->value, v) != 0) {                                                       \
                        printf("# tag %s = %s, expected %s\n", k, e ? e->value : "(none)", v);              \
                        ok = -1;                                                                            \
                }                                                                                           \
        } while (0)
        TAG_IS(EVD_MEDIA_TAG_CASE_NUMBER, "京公(朝)行罚决字〔2024〕第00123号");
        TAG_IS(EVD_MEDIA_TAG_METHOD, method);
        TAG_IS(EVD_MEDIA_TAG_DATE_RECORDED, "2024-05-01T09:30:00+08:00");
        TAG_IS(EVD_MEDIA_TAG_DATE_END, "2024-05-01T09:40:00+08:00");
        TAG_IS(EVD_MEDIA_TAG_MAKER, "012345");
        TAG_IS(EVD_MEDIA_TAG_DEVICE_ID, "A123456");
        TAG_IS(EVD_MEDIA_TAG_ORIGINAL_SHA256, src_hex);
        TAG_IS(EVD_MEDIA_TAG_ORIGINAL_NAME, "DCIM/100REC/V0007.MP4");
        TAG_IS(EVD_MEDIA_TAG_CONFIDENTIALITY, "internal");
        TAG_IS("_EVIDOCK_UNIT", "110105000000");
        /* Nothing from the source container: no title, comment, encoder, creation time, brands. */
        e = NULL;
        while ((e = av_dict_get(m, "", e, AV_DICT_IGNORE_SUFFIX)))
                if (e->key[0] != '_' && strcmp(e->key, "CASE_NUMBER") != 0 &&
                    strcmp(e->key, "METHOD") != 0 && strcmp(e->key, "DATE_RECORDED") != 0 &&
                    /* the demuxer's view of the muxing app, "Lavf" without version under bitexact */
                    !(strcmp(e->key, "encoder") == 0 && strcmp(e->value, "Lavf") == 0)) {
                        printf("# unexpected global tag %s=%s\n", e->key, e->value);
                        ok = -1;
                }
        unsigned attachments = 0;
        for (unsigned i = 0; i < ic->nb_streams; i++) {
                AVStream *st = ic->streams[i];
                if (st->codecpar->codec_type != AVMEDIA_TYPE_ATTACHMENT) {
                        if (av_dict_get(st->metadata, "handler_name", NULL, 0))
                                ok = -1;
                        continue;
                }
                attachments++;
                e = av_dict_get(st->metadata, "filename", NULL, 0);
                if (!e || strcmp(e->value, "chain-record.txt") != 0)
                        ok = -1;
                e = av_dict_get(st->metadata, "mimetype", NULL, 0);
                if (!e || strcmp(e->value, "text/plain") != 0)
                        ok = -1;
                if (st->codecpar->extradata_size != (int)strlen(manifest_line) ||
                    memcmp(st->codecpar->extradata, manifest_line, strlen(manifest_line)) != 0) {
                        printf("# attachment content differs\n");
                        ok = -1;
                }
        }
        if (attachments != 1) {
                printf("# %u attachments\n", attachments);
                ok = -1;
        }
        avformat_close_input(&ic);

        uint8_t *bytes = NULL;
        ssize_t n = read_file(path, &bytes);
        CHECK_OR_RET(n > 0);
        if (memmem(bytes, (size_t)n, "MUST-NOT-LEAK", 13)) {
                printf("# source metadata leaked into %s\n", path);
                ok = -1;
        }
        free(bytes);
#undef TAG_IS
        return ok;
}

static bool files_equal(const char *a, const char *b)
{
        uint8_t *x = NULL, *y = NULL;
        ssize_t nx = read_file(a, &x), ny = read_file(b, &y);
        bool eq = nx >= 0 && nx == ny && memcmp(x, y, (size_t)nx) == 0;
        free(x);
        free(y);
        return eq;
}

/* Archives src twice and checks digest equality, counts, reproducibility, tags. */
static int archive_and_check(const char *src, const char *label, EvdArchiveFormat want_format,
                             const char *method, EvdArchiveResult *ret)
{
        char out1[300], out2[300], hex[65];
        EvdArchiveResult res, res2;
        EvdError err = {0};
        uint8_t d_orig[32], d_arch[32];
        uint64_t n_orig, n_arch;

        snprintf(out1, sizeof(out1), "%s/%s-1.%s", tmpdir, label, evd_archive_format_extension(want_format));
        snprintf(out2, sizeof(out2), "%s/%s-2.%s", tmpdir, label, evd_archive_format_extension(want_format));
        CHECK_OR_RET(file_sha256_hex(src, hex) == 0);
        CHECK_OR_RET(archive_path(src, out1, true, &res, &err) == 0);
        CHECK_OR_RET(res.format == want_format);
        CHECK_OR_RET(res.output_verified);
        CHECK_OR_RET(strcmp(evd_method_to_string(res.method), method) == 0);
        CHECK_OR_RET(res.packets > 0);

        /* The digest of the original and of the archive copy, computed independently, are equal. */
        CHECK_OR_RET(digest_path(src, d_orig, &n_orig) == 0);
        CHECK_OR_RET(digest_path(out1, d_arch, &n_arch) == 0);
        CHECK_OR_RET(n_orig == res.packets && n_arch == res.packets);
        CHECK_OR_RET(memcmp(d_orig, res.packets_sha256, 32) == 0);
        CHECK_OR_RET(memcmp(d_arch, res.packets_sha256, 32) == 0);

        /* Reproducible: a second run gives the same bytes. */
        CHECK_OR_RET(archive_path(src, out2, false, &res2, &err) == 0);
        CHECK_OR_RET(files_equal(out1, out2));
        struct stat st;
        CHECK_OR_RET(stat(out1, &st) == 0 && (uint64_t)st.st_size == res.bytes_written);

        if (want_format != EVD_ARCHIVE_JPEG)
                CHECK_OR_RET(check_archive_tags(out1, method, hex) == 0);
        printf("# %s: %" PRIu64 " packets, %" PRIu64 " bytes\n", label, res.packets, res.bytes_written);
        if (ret)
                *ret = res;
        return 0;
}

/* ffprobe (if installed) shows the Chinese case number among the format tags. */
static void test_ffprobe_shows_tags(void)
{
        char out[300], cmd[800], line[1024];
        bool found = false;

        if (access("/usr/bin/ffprobe", X_OK) < 0) {
                printf("# ffprobe not installed, libavformat read-back only\n");
                return;
        }
        snprintf(out, sizeof(out), "%s/video-1.mkv", tmpdir);
        CHECK(access(out, R_OK) == 0);
        snprintf(cmd, sizeof(cmd), "/usr/bin/ffprobe -v error -show_format '%s'", out);
        FILE *p = popen(cmd, "r");
        CHECK(p);
        while (fgets(line, sizeof(line), p))
                if (strstr(line, "TAG:CASE_NUMBER=京公(朝)行罚决字〔2024〕第00123号"))
                        found = true;
        CHECK(pclose(p) == 0);
        CHECK(found);
}

static void test_probe_generated(void)
{
        EvdMediaInfo info;
        EvdError err = {0};
        int fd = open(gen_video, O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0);
        int r = evd_media_probe(fd, gen_video, NULL, &info, &err);
        close(fd);
        CHECK_OK(r);
        CHECK(info.method == EVD_METHOD_VIDEO);
        CHECK_STREQ(info.container, "mp4");
        CHECK_INT(info.n_streams, ==, 2);
        CHECK_STREQ(info.streams[0].codec_tag, "avc1");
        CHECK_STREQ(info.streams[1].codec_name, "aac");
        CHECK_INT(info.duration_us, >, 1900000);
        CHECK_INT(info.duration_us, <, 2200000);

        fd = open(gen_audio, O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0);
        r = evd_media_probe(fd, gen_audio, NULL, &info, &err);
        close(fd);
        CHECK_OK(r);
        CHECK(info.method == EVD_METHOD_AUDIO);

        fd = open(gen_jpeg, O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0);
        r = evd_media_probe(fd, gen_jpeg, NULL, &info, &err);
        close(fd);
        CHECK_OK(r);
        CHECK(info.method == EVD_METHOD_PHOTO);
}

static void test_moov_at_end(void)
{
        /* The generator must produce what cameras produce, or the seek path is not exercised. */
        uint8_t *b = NULL;
        ssize_t n = read_file(gen_video, &b);
        CHECK(n > 16 && b);
        void *moov = memmem(b, (size_t)n, "moov", 4), *mdat = memmem(b, (size_t)n, "mdat", 4);
        bool ok = moov && mdat && moov > mdat;
        free(b);
        CHECK(ok);
}

static void test_archive_generated_video(void)
{
        CHECK(archive_and_check(gen_video, "video", EVD_ARCHIVE_MKV, "video", NULL) == 0);
}

static void test_archive_o_tmpfile(void)
{
        /* The pipeline hands an O_TMPFILE fd. */
        char hex[65];
        EvdArchiveResult res;
        EvdError err = {0};
        CHECK(file_sha256_hex(gen_video, hex) == 0);
        EvdArchiveTags tags = test_tags(hex);
        EvdMediaOptions opts = {.verify_output = true};
        int sfd = open(gen_video, O_RDONLY | O_CLOEXEC);
        int ofd = open(tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        CHECK(sfd >= 0 && ofd >= 0);
        off_t before = lseek(sfd, 0, SEEK_CUR);
        int r = evd_media_archive(sfd, gen_video, &tags, &test_att, 1, &opts, ofd, &res, &err);
        off_t after = lseek(sfd, 0, SEEK_CUR);
        close(sfd);
        close(ofd);
        CHECK_OK(r);
        CHECK(res.output_verified);
        CHECK_INT(before, ==, after); /* the caller's offset is not moved */
}

static void test_archive_audio(void)
{
        EvdArchiveResult res;
        CHECK(archive_and_check(gen_audio, "audio", EVD_ARCHIVE_MKA, "audio", &res) == 0);
        CHECK_INT(res.n_not_carried, ==, 0);
}

static void test_archive_onvif(void)
{
        char path[512];
        EvdArchiveResult res;
        NEED_SHARED_MEDIA("onvif/test_signed_h264.mp4", path);
        /* Equal packet digests prove the SEI NAL units with the in-band signatures survived. */
        CHECK(archive_and_check(path, "onvif-signed", EVD_ARCHIVE_MKV, "video", &res) == 0);
        CHECK_INT(res.packets, ==, 257);
        NEED_SHARED_MEDIA("onvif/test_h264.mp4", path);
        CHECK(archive_and_check(path, "onvif-unsigned", EVD_ARCHIVE_MKV, "video", NULL) == 0);
}

static void test_signed_and_unsigned_differ(void)
{
        /* The digest sees the SEI: the signed and unsigned twins must not digest alike. */
        char a[512], b[512];
        uint8_t da[32], db[32];
        NEED_SHARED_MEDIA("onvif/test_signed_h264.mp4", a);
        NEED_SHARED_MEDIA("onvif/test_h264.mp4", b);
        CHECK_OK(digest_path(a, da, NULL));
        CHECK_OK(digest_path(b, db, NULL));
        CHECK(memcmp(da, db, 32) != 0);
}

static void test_archive_karma(void)
{
        char path[512], out[300];
        EvdArchiveResult res;
        NEED_SHARED_MEDIA("gopro/karma.mp4", path);
        CHECK(archive_and_check(path, "karma", EVD_ARCHIVE_MKV, "video", &res) == 0);
        CHECK_INT(res.packets, ==, 362 + 566);
        CHECK_INT(res.n_not_carried, ==, 3);
        CHECK_INT(res.not_carried[0].index, ==, 2);
        CHECK_STREQ(res.not_carried[0].codec_tag, "tmcd");
        CHECK_INT(res.not_carried[1].index, ==, 3);
        CHECK_STREQ(res.not_carried[1].codec_tag, "gpmd");
        CHECK_STREQ(res.not_carried[1].type, "data");
        CHECK_INT(res.not_carried[2].index, ==, 4);
        CHECK_STREQ(res.not_carried[2].codec_tag, "fdsc");

        snprintf(out, sizeof(out), "%s/karma-1.mkv", tmpdir);
        AVFormatContext *ic = NULL;
        CHECK(avformat_open_input(&ic, out, NULL, NULL) == 0);
        AVDictionaryEntry *e = av_dict_get(ic->metadata, EVD_MEDIA_TAG_NOT_CARRIED, NULL, 0);
        bool ok = e && strstr(e->value, "#3 data gpmd") && strstr(e->value, "#2 data tmcd") &&
                  strstr(e->value, "#4 data fdsc") && strstr(e->value, "only in the original");
        if (e)
                printf("# %s=%s\n", e->key, e->value);
        avformat_close_input(&ic);
        CHECK(ok);
}

static void test_archive_jpeg(void)
{
        char out[300];
        EvdArchiveResult res;
        uint8_t *orig = NULL, *arch = NULL, d[32];
        CHECK(archive_and_check(gen_jpeg, "photo", EVD_ARCHIVE_JPEG, "photo", &res) == 0);
        CHECK_INT(res.packets, ==, 1);
        snprintf(out, sizeof(out), "%s/photo-1.jpg", tmpdir);
        ssize_t no = read_file(gen_jpeg, &orig), na = read_file(out, &arch);
        CHECK(no > 0 && na > no);

        /* The archive's packet digest is the SHA-256 of the original file. */
        CHECK_OK(evd_hash_buffer(EVD_HASH_SHA256, orig, (size_t)no, d));
        CHECK(memcmp(d, res.packets_sha256, 32) == 0);

        /* SOI, APP0, APP1 unchanged, then our COM segments, then the rest byte for byte. */
        size_t app0_end = 4 + (((size_t)orig[4] << 8) | orig[5]);
        size_t insert = app0_end + 14; /* the generator's APP1 is 14 bytes */
        CHECK(orig[app0_end] == 0xFF && orig[app0_end + 1] == 0xE1);
        CHECK(memcmp(arch, orig, insert) == 0);
        CHECK(arch[insert] == 0xFF && arch[insert + 1] == 0xFE);
        size_t com1 = ((size_t)arch[insert + 2] << 8) | arch[insert + 3];
        const char *text = (const char *)arch + insert + 4;
        CHECK(memcmp(text, EVD_MEDIA_JPEG_TAGS_MAGIC, strlen(EVD_MEDIA_JPEG_TAGS_MAGIC)) == 0);
        CHECK(memmem(text, com1 - 2, "CASE_NUMBER=京公(朝)行罚决字〔2024〕第00123号\n",
                     strlen("CASE_NUMBER=京公(朝)行罚决字〔2024〕第00123号\n")));
        CHECK(memmem(text, com1 - 2, "METHOD=photo\n", 13));
        size_t att_at = insert + 2 + com1;
        CHECK(arch[att_at] == 0xFF && arch[att_at + 1] == 0xFE);
        size_t com2 = ((size_t)arch[att_at + 2] << 8) | arch[att_at + 3];
        CHECK(memmem(arch + att_at + 4, com2 - 2, manifest_line, strlen(manifest_line)));
        size_t rest = att_at + 2 + com2;
        CHECK_INT(na - (ssize_t)rest, ==, no - (ssize_t)insert);
        CHECK(memcmp(arch + rest, orig + insert, (size_t)no - insert) == 0);
        free(orig);
        free(arch);
}

static int write_bytes(const char *path, const void *b, size_t n)
{
        int fd = open_out(path);
        if (fd < 0)
                return -errno;
        ssize_t k = write(fd, b, n);
        close(fd);
        return k == (ssize_t)n ? 0 : -EIO;
}

/* Archives a hostile file: must fail cleanly, name the file, within the deadline. */
static int expect_refused(const char *path, int want_errno)
{
        char hex[65], out[300];
        EvdArchiveResult res;
        EvdError err = {0};
        uint64_t start = evd_clock_monotonic_us();
        EvdMediaOptions opts = {.deadline_usec = start + 5u * 1000000u};

        CHECK_OR_RET(file_sha256_hex(path, hex) == 0);
        EvdArchiveTags tags = test_tags(hex);
        tmp_path("refused.out", out, sizeof(out));
        int sfd = open(path, O_RDONLY | O_CLOEXEC), ofd = open_out(out);
        CHECK_OR_RET(sfd >= 0 && ofd >= 0);
        int r = evd_media_archive(sfd, path, &tags, &test_att, 1, &opts, ofd, &res, &err);
        close(sfd);
        close(ofd);
        printf("# %s -> %d: %s\n", strrchr(path, '/') + 1, r, err.msg);
        CHECK_OR_RET(r < 0);
        if (want_errno)
                CHECK_OR_RET(r == -want_errno);
        CHECK_OR_RET(r != -ETIMEDOUT);
        CHECK_OR_RET(strstr(err.msg, path) != NULL);
        CHECK_OR_RET(evd_clock_monotonic_us() - start < 5u * 1000000u);

        /* The digest refuses it the same way. */
        uint8_t d[32];
        sfd = open(path, O_RDONLY | O_CLOEXEC);
        r = evd_media_packets_digest(sfd, path, &opts, d, NULL, &err);
        close(sfd);
        CHECK_OR_RET(r < 0);
        return 0;
}

static uint8_t *find_bytes(uint8_t *b, size_t n, const char *what)
{
        return b ? memmem(b, n, what, strlen(what)) : NULL;
}

static void test_corrupt_inputs(void)
{
        char p[300];
        uint8_t *b = NULL;
        ssize_t n = read_file(gen_video, &b);
        CHECK(n > 1000 && b);

        tmp_path("truncated.mp4", p, sizeof(p)); /* moov at end: cut at half leaves no index */
        CHECK(write_bytes(p, b, (size_t)n / 2) == 0);
        CHECK(expect_refused(p, EBADMSG) == 0);

        tmp_path("empty.mp4", p, sizeof(p));
        CHECK(write_bytes(p, b, 0) == 0);
        CHECK(expect_refused(p, EBADMSG) == 0);

        tmp_path("tiny.mp4", p, sizeof(p));
        CHECK(write_bytes(p, b, 7) == 0);
        CHECK(expect_refused(p, EBADMSG) == 0);

        /* mdat payload overwritten with random bytes, index intact: stream copy would carry garbage. */
        uint8_t *mdat = find_bytes(b, (size_t)n, "mdat");
        uint8_t *moov = find_bytes(b, (size_t)n, "moov");
        CHECK(mdat && moov && moov > mdat);
        srand(42);
        for (uint8_t *q = mdat + 4; q < moov - 8; q++)
                *q = (uint8_t)rand();
        tmp_path("garbage-mdat.mp4", p, sizeof(p));
        CHECK(write_bytes(p, b, (size_t)n) == 0);
        CHECK(expect_refused(p, EBADMSG) == 0);

        /* Random bytes: not a media file at all. */
        for (ssize_t i = 0; i < n; i++)
                b[i] = (uint8_t)rand();
        tmp_path("random.bin", p, sizeof(p));
        CHECK(write_bytes(p, b, (size_t)n) == 0);
        CHECK(expect_refused(p, EMEDIUMTYPE) == 0);

        /* Random bytes behind a valid ftyp box. */
        memcpy(b,
               "\0\0\0\x18"
               "ftypisom\0\0\x02\0isomiso2",
               24);
        tmp_path("ftyp-random.mp4", p, sizeof(p));
        CHECK(write_bytes(p, b, (size_t)n) == 0);
        CHECK(expect_refused(p, 0) == 0);
        free(b);
}

static void test_corrupt_real(void)
{
        char src[512], p[300];
        uint8_t *b = NULL;
        NEED_SHARED_MEDIA("gopro/karma.mp4", src);
        ssize_t n = read_file(src, &b);
        CHECK(n > 0);
        tmp_path("karma-half.mp4", p, sizeof(p));
        CHECK(write_bytes(p, b, (size_t)n / 2) == 0);
        free(b);
        CHECK(expect_refused(p, 0) == 0);
}

static void test_jpeg_refusals(void)
{
        char p[300];
        static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n',
                                      0,    0,   0,   13,  'I',  'H',  'D',  'R'};
        tmp_path("photo.png", p, sizeof(p));
        CHECK(write_bytes(p, png, sizeof(png)) == 0);
        CHECK(expect_refused(p, EMEDIUMTYPE) == 0);

        /* JPEG magic, then nonsense. */
        uint8_t fake[64] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0};
        memset(fake + 20, 'x', sizeof(fake) - 20);
        tmp_path("fake.jpg", p, sizeof(p));
        CHECK(write_bytes(p, fake, sizeof(fake)) == 0);
        CHECK(expect_refused(p, EBADMSG) == 0);

        /* A real JPEG cut before its end-of-image marker. */
        uint8_t *b = NULL;
        ssize_t n = read_file(gen_jpeg, &b);
        CHECK(n > 100);
        tmp_path("cut.jpg", p, sizeof(p));
        CHECK(write_bytes(p, b, (size_t)n - 40) == 0);
        free(b);
        CHECK(expect_refused(p, EBADMSG) == 0);
}

static void test_deadline(void)
{
        char hex[65], out[300];
        EvdArchiveResult res;
        EvdError err = {0};
        CHECK(file_sha256_hex(gen_video, hex) == 0);
        EvdArchiveTags tags = test_tags(hex);
        EvdMediaOptions opts = {.deadline_usec = evd_clock_monotonic_us() - 1};
        tmp_path("late.mkv", out, sizeof(out));
        int sfd = open(gen_video, O_RDONLY | O_CLOEXEC), ofd = open_out(out);
        CHECK(sfd >= 0 && ofd >= 0);
        int r = evd_media_archive(sfd, gen_video, &tags, NULL, 0, &opts, ofd, &res, &err);
        close(sfd);
        close(ofd);
        printf("# %s\n", err.msg);
        CHECK_INT(r, ==, -ETIMEDOUT);
}

static void test_bad_tags(void)
{
        char hex[65], out[300];
        EvdArchiveResult res;
        EvdError err = {0};
        CHECK(file_sha256_hex(gen_video, hex) == 0);
        tmp_path("badtags.mkv", out, sizeof(out));
        int sfd = open(gen_video, O_RDONLY | O_CLOEXEC), ofd = open_out(out);
        CHECK(sfd >= 0 && ofd >= 0);

        EvdArchiveTags tags = test_tags(hex);
        tags.case_number = NULL;
        CHECK_INT(evd_media_archive(sfd, gen_video, &tags, NULL, 0, NULL, ofd, &res, &err), ==, -EINVAL);
        tags = test_tags(hex);
        tags.maker = "0123\n45";
        CHECK_INT(evd_media_archive(sfd, gen_video, &tags, NULL, 0, NULL, ofd, &res, &err), ==, -EINVAL);
        tags = test_tags("abc");
        CHECK_INT(evd_media_archive(sfd, gen_video, &tags, NULL, 0, NULL, ofd, &res, &err), ==, -EINVAL);
        tags = test_tags(hex);
        EvdArchiveTag reserved = {EVD_MEDIA_TAG_CASE_NUMBER, "x"};
        tags.extra = &reserved;
        tags.n_extra = 1;
        CHECK_INT(evd_media_archive(sfd, gen_video, &tags, NULL, 0, NULL, ofd, &res, &err), ==, -EINVAL);
        tags = test_tags(hex);
        EvdArchiveAttachment noname = test_att;
        noname.filename = NULL;
        CHECK_INT(evd_media_archive(sfd, gen_video, &tags, &noname, 1, NULL, ofd, &res, &err), ==, -EINVAL);
        close(sfd);
        close(ofd);
}

/* A case number is recorder text: whatever the manifest accepts (text.h), the tagger carries as is,
 * C1 controls and bidi overrides included (they used to be refused here, which quarantined a valid
 * signed recording); a C0 control byte is refused by both. */
static void test_case_number_recorder_text(void)
{
        char hex[65], out[300];
        EvdArchiveResult res;
        EvdError err = {0};
        CHECK(file_sha256_hex(gen_video, hex) == 0);
        static char long_case[EVD_TEXT_MAX_BYTES + 1];
        memset(long_case, 'A', EVD_TEXT_MAX_BYTES);
        const char *accepted[] = {"京公\xc2\x85"
                                  "行罚\xc2\x9b"
                                  "31m",
                                  "CASE-\xe2\x80\xae"
                                  "1202-\xe2\x81\xa6"
                                  "X\xe2\x81\xa9",
                                  "\xc2\x85", long_case};
        for (size_t i = 0; i < ELEMENTSOF(accepted); i++) {
                CHECK(evd_text_valid(accepted[i], EVD_TEXT_MAX_BYTES)); /* the manifest's rule */
                snprintf(out, sizeof(out), "%s/case-%zu.mkv", tmpdir, i);
                int sfd = open(gen_video, O_RDONLY | O_CLOEXEC), ofd = open_out(out);
                CHECK(sfd >= 0 && ofd >= 0);
                EvdArchiveTags tags = test_tags(hex);
                tags.case_number = accepted[i];
                int r = evd_media_archive(sfd, gen_video, &tags, NULL, 0, NULL, ofd, &res, &err);
                close(sfd);
                close(ofd);
                if (r < 0)
                        printf("# case %zu: %s\n", i, evd_error_message(&err, r));
                CHECK_OK(r);
                AVFormatContext *ic = NULL;
                CHECK(avformat_open_input(&ic, out, NULL, NULL) == 0);
                AVDictionaryEntry *e = av_dict_get(ic->metadata, EVD_MEDIA_TAG_CASE_NUMBER, NULL, 0);
                bool same = e && strcmp(e->value, accepted[i]) == 0;
                avformat_close_input(&ic);
                CHECK(same);
        }
        const char *refused[] = {"CASE\x1b[2J", "CASE\x7f", "\xc0\xaf", ""};
        for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
                if (refused[i][0])
                        CHECK(!evd_text_valid(refused[i], EVD_TEXT_MAX_BYTES));
                int sfd = open(gen_video, O_RDONLY | O_CLOEXEC), ofd = open_out(out);
                EvdArchiveTags tags = test_tags(hex);
                tags.case_number = refused[i];
                int r = evd_media_archive(sfd, gen_video, &tags, NULL, 0, NULL, ofd, &res, &err);
                close(sfd);
                close(ofd);
                CHECK_INT(r, ==, -EINVAL);
        }
}

static void test_method_override(void)
{
        /* The recorder's method wins in the tag; the result reports what the content is. */
        char hex[65], out[300];
        EvdArchiveResult res;
        EvdError err = {0};
        CHECK(file_sha256_hex(gen_audio, hex) == 0);
        EvdArchiveTags tags = test_tags(hex);
        tags.method = EVD_METHOD_AUDIO;
        tmp_path("audio-method.mka", out, sizeof(out));
        int sfd = open(gen_audio, O_RDONLY | O_CLOEXEC), ofd = open_out(out);
        CHECK(sfd >= 0 && ofd >= 0);
        int r = evd_media_archive(sfd, gen_audio, &tags, NULL, 0, NULL, ofd, &res, &err);
        close(sfd);
        close(ofd);
        CHECK_OK(r);
        CHECK(res.format == EVD_ARCHIVE_MKA);
        CHECK_STREQ(evd_archive_format_extension(res.format), "mka");
        CHECK_STREQ(evd_archive_format_mimetype(res.format), "audio/x-matroska");
}

int main(void)
{
        av_log_set_level(AV_LOG_ERROR); /* a program may set FFmpeg's log level; the library does not */
        const char *base = getenv("TMPDIR") ?: "/tmp";
        snprintf(tmpdir, sizeof(tmpdir), "%s/evd-media-XXXXXX", base);
        if (!mkdtemp(tmpdir)) {
                printf("Bail out! mkdtemp: %s\n", strerror(errno));
                return 1;
        }
        tmp_path("gen.mp4", gen_video, sizeof(gen_video));
        tmp_path("gen.m4a", gen_audio, sizeof(gen_audio));
        tmp_path("gen.jpg", gen_jpeg, sizeof(gen_jpeg));
        int r1 = media_gen_mp4(gen_video, true, true, 2);
        int r2 = media_gen_mp4(gen_audio, false, true, 2);
        int r3 = media_gen_jpeg(gen_jpeg);
        if (r1 < 0 || r2 < 0 || r3 < 0) {
                printf("Bail out! cannot generate test media (%d %d %d)\n", r1, r2, r3);
                return 1;
        }

        RUN(test_moov_at_end);
        RUN(test_probe_generated);
        RUN(test_archive_generated_video);
        RUN(test_ffprobe_shows_tags);
        RUN(test_archive_o_tmpfile);
        RUN(test_archive_audio);
        RUN(test_method_override);
        RUN(test_archive_onvif);
        RUN(test_signed_and_unsigned_differ);
        RUN(test_archive_karma);
        RUN(test_archive_jpeg);
        RUN(test_corrupt_inputs);
        RUN(test_corrupt_real);
        RUN(test_jpeg_refusals);
        RUN(test_deadline);
        RUN(test_bad_tags);
        RUN(test_case_number_recorder_text);

        if (!getenv("EVIDOCK_KEEP_TMP")) {
                char cmd[400];
                snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
                if (system(cmd) != 0)
                        printf("# could not remove %s\n", tmpdir);
        }
        return check_finish();
}
