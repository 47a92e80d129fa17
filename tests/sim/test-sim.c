/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Runs the real evidock-sim binary (argv[1]) into temporary directories and checks the volume with the
 * real parsers: libavformat/libavcodec for the media, evd_manifest_parse and lib/signature for the chain.
 * Each fault is checked at the byte/line level against a clean volume made with the same options. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>

#include "clock.h"
#include "hash.h"
#include "manifest.h"
#include "signature.h"
#include "sim-font.h"
#include "sim-media.h"
#include "tests/check.h"

static const char *sim_path;
static char tmp_root[] = "/tmp/evidock-sim-test-XXXXXX";
static char key_path[256];

#define START     "2026-11-22T08:00:00+08:00"
#define START_US  1795305600000000LL /* START in UTC µs */
#define BASE_ARGS "--videos 3 --audios 1 --photos 1 --duration 2 --start " START " --seed 7 --case CASE-42"

/* ---- helpers ---- */

static int run_sim(const char *dir, const char *args)
{
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "'%s' --out '%s/%s' --key '%s' %s >'%s/%s.out' 2>&1", sim_path, tmp_root,
                 dir, key_path, args, tmp_root, dir);
        int status = system(cmd);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *path_of(const char *dir, const char *rel)
{
        static char buf[4][1024];
        static int n;
        char *p = buf[n++ % 4];
        snprintf(p, sizeof buf[0], "%s/%s/%s", tmp_root, dir, rel);
        return p;
}

static char *read_all(const char *path, size_t *ret_len)
{
        FILE *f = fopen(path, "re");
        if (!f)
                return NULL;
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *buf = malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                buf = NULL;
        }
        fclose(f);
        if (buf) {
                buf[n] = 0;
                if (ret_len)
                        *ret_len = (size_t)n;
        }
        return buf;
}

static EvdManifest *load_manifest(const char *dir)
{
        size_t len;
        _cleanup_free_ char *buf = read_all(path_of(dir, "EVIDOCK/CHAIN.LOG"), &len);
        EvdManifest *m = NULL;
        if (!buf || evd_manifest_parse(buf, len, &m) < 0)
                return NULL;
        return m;
}

/* Splits CHAIN.LOG into lines (without '\n'); returns the count. */
static size_t load_lines(const char *dir, char ***ret)
{
        char *buf = read_all(path_of(dir, "EVIDOCK/CHAIN.LOG"), NULL);
        size_t n = 0;
        char **lines = NULL;
        for (char *save = NULL, *l = buf ? strtok_r(buf, "\n", &save) : NULL; l;
             l = strtok_r(NULL, "\n", &save)) {
                lines = realloc(lines, (n + 1) * sizeof *lines);
                lines[n++] = strdup(l);
        }
        free(buf);
        *ret = lines;
        return n;
}

static void free_lines(char **lines, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(lines[i]);
        free(lines);
}

static EVP_PKEY *device_key(void)
{
        EVP_PKEY *k = NULL;
        return evd_key_load_private_pem(key_path, &k, NULL) < 0 ? NULL : k;
}

static int verify_record(const EvdRecord *r, EVP_PKEY *key)
{
        if (!r->signature)
                return 0;
        return evd_signature_verify(r->suite, key, r->tbs, r->tbs_len, r->signature, r->signature_len, NULL);
}

static const EvdRecord *find_seq(const EvdManifest *m, uint64_t seq, unsigned nth)
{
        for (size_t i = 0; i < m->n_records; i++)
                if (m->records[i].seq == seq && nth-- == 0)
                        return &m->records[i];
        return NULL;
}

static bool files_equal(const char *a, const char *b)
{
        size_t na, nb;
        _cleanup_free_ char *x = read_all(a, &na), *y = read_all(b, &nb);
        return x && y && na == nb && memcmp(x, y, na) == 0;
}

static off_t file_size(const char *p)
{
        struct stat st;
        return stat(p, &st) < 0 ? -1 : st.st_size;
}

/* Names in VIDEO/ that no record of m mentions. */
static int unrecorded_videos(const char *dir, const EvdManifest *m, char *ret_name, size_t n)
{
        DIR *d = opendir(path_of(dir, "VIDEO"));
        int count = 0;
        for (struct dirent *de; d && (de = readdir(d));) {
                if (de->d_name[0] == '.')
                        continue;
                char rel[600];
                snprintf(rel, sizeof rel, "VIDEO/%s", de->d_name);
                bool found = false;
                for (size_t i = 0; i < m->n_records; i++)
                        if (m->records[i].file && strcmp(m->records[i].file, rel) == 0)
                                found = true;
                if (!found) {
                        count++;
                        snprintf(ret_name, n, "%s", rel);
                }
        }
        if (d)
                closedir(d);
        return count;
}

/* The top-level MP4 box order: returns true when moov comes after mdat. */
static bool moov_after_mdat(const char *path)
{
        FILE *f = fopen(path, "re");
        long mdat = -1, moov = -1, pos = 0;
        uint8_t h[16];
        while (f && fseek(f, pos, SEEK_SET) == 0 && fread(h, 1, 8, f) == 8) {
                uint64_t size = (uint64_t)h[0] << 24 | h[1] << 16 | h[2] << 8 | h[3];
                if (size == 1) {
                        if (fread(h + 8, 1, 8, f) != 8)
                                break;
                        size = 0;
                        for (int i = 8; i < 16; i++)
                                size = size << 8 | h[i];
                }
                if (memcmp(h + 4, "mdat", 4) == 0)
                        mdat = pos;
                if (memcmp(h + 4, "moov", 4) == 0)
                        moov = pos;
                if (size < 8)
                        break;
                pos += (long)size;
        }
        if (f)
                fclose(f);
        return mdat >= 0 && moov > mdat;
}

typedef struct Probe {
        int n_video, n_audio;
        enum AVCodecID video_codec, audio_codec;
        double duration;
        int64_t video_packets, audio_packets;
        char creation_time[64];
} Probe;

static int probe(const char *path, Probe *p)
{
        AVFormatContext *fc = NULL;
        *p = (Probe){};
        if (avformat_open_input(&fc, path, NULL, NULL) < 0)
                return -1;
        if (avformat_find_stream_info(fc, NULL) < 0) {
                avformat_close_input(&fc);
                return -1;
        }
        for (unsigned i = 0; i < fc->nb_streams; i++) {
                AVCodecParameters *cp = fc->streams[i]->codecpar;
                if (cp->codec_type == AVMEDIA_TYPE_VIDEO) {
                        p->n_video++;
                        p->video_codec = cp->codec_id;
                } else if (cp->codec_type == AVMEDIA_TYPE_AUDIO) {
                        p->n_audio++;
                        p->audio_codec = cp->codec_id;
                }
        }
        p->duration = fc->duration / (double)AV_TIME_BASE;
        AVDictionaryEntry *t = av_dict_get(fc->metadata, "creation_time", NULL, 0);
        if (t)
                snprintf(p->creation_time, sizeof p->creation_time, "%s", t->value);
        AVPacket *pkt = av_packet_alloc();
        while (av_read_frame(fc, pkt) >= 0) {
                if (fc->streams[pkt->stream_index]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO)
                        p->video_packets++;
                else
                        p->audio_packets++;
                av_packet_unref(pkt);
        }
        av_packet_free(&pkt);
        avformat_close_input(&fc);
        return 0;
}

/* Decodes the first picture of a file (video or JPEG) into a copy of its luma plane. */
static uint8_t *first_luma(const char *path, int *ret_w, int *ret_h)
{
        AVFormatContext *fc = NULL;
        uint8_t *out = NULL;
        if (avformat_open_input(&fc, path, NULL, NULL) < 0 || avformat_find_stream_info(fc, NULL) < 0)
                return NULL;
        int si = av_find_best_stream(fc, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
        const AVCodec *dec = si >= 0 ? avcodec_find_decoder(fc->streams[si]->codecpar->codec_id) : NULL;
        AVCodecContext *c = dec ? avcodec_alloc_context3(dec) : NULL;
        AVPacket *pkt = av_packet_alloc();
        AVFrame *frame = av_frame_alloc();
        if (c && avcodec_parameters_to_context(c, fc->streams[si]->codecpar) >= 0 &&
            avcodec_open2(c, dec, NULL) >= 0) {
                bool got = false, eof = false;
                while (!got) {
                        if (!eof) {
                                int r = av_read_frame(fc, pkt);
                                if (r < 0) {
                                        eof = true;
                                        avcodec_send_packet(c, NULL);
                                } else {
                                        if (pkt->stream_index == si)
                                                avcodec_send_packet(c, pkt);
                                        av_packet_unref(pkt);
                                }
                        }
                        int r = avcodec_receive_frame(c, frame);
                        if (r == 0)
                                got = true;
                        else if (r != AVERROR(EAGAIN))
                                break;
                }
                if (got) {
                        out = malloc((size_t)frame->width * frame->height);
                        for (int y = 0; y < frame->height; y++)
                                memcpy(out + (size_t)y * frame->width,
                                       frame->data[0] + (size_t)y * frame->linesize[0],
                                       (size_t)frame->width);
                        *ret_w = frame->width;
                        *ret_h = frame->height;
                }
        }
        av_frame_free(&frame);
        av_packet_free(&pkt);
        avcodec_free_context(&c);
        avformat_close_input(&fc);
        return out;
}

/* How well the decoded picture's top-left shows the clock text: mean absolute difference over the
 * text box against the same text drawn by the font (lossy coding blurs a little; a different time or
 * no text at all gives a large difference). */
static double clock_difference(const uint8_t *luma, int w, int h, const char *text)
{
        uint8_t *ref = malloc((size_t)w * h);
        memcpy(ref, luma, (size_t)w * h);
        sim_font_draw(ref, w, w, h, 2, 2, 1, text, 235, 16);
        int tw = sim_font_text_width(text, 1);
        double sum = 0;
        int n = 0;
        for (int y = 2; y < 2 + SIM_FONT_H; y++)
                for (int x = 2; x < 2 + tw && x < w; x++, n++)
                        sum += abs((int)ref[(size_t)y * w + x] - (int)luma[(size_t)y * w + x]);
        free(ref);
        return n ? sum / n : 1e9;
}

/* ---- the clean volume ---- */

static void test_volume_is_verifiable(void)
{
        CHECK_INT(run_sim("base", BASE_ARGS), ==, 0);
        _cleanup_(evd_manifest_freep) EvdManifest *m = load_manifest("base");
        CHECK(m);
        CHECK_INT(m->n_errors, ==, 0);
        CHECK_INT(m->n_records, ==, 1 + 5 + 1); /* GEN, 3 videos + 1 audio + 1 photo, END */

        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = device_key();
        CHECK(key);
        char key_id[EVD_KEY_ID_STRLEN + 1];
        CHECK_OK(evd_key_id(key, key_id));

        /* The genesis record carries the public key, and that key verifies every record. */
        const EvdRecord *gen = &m->records[0];
        CHECK_INT(gen->type, ==, EVD_RECORD_GENESIS);
        CHECK_INT(gen->seq, ==, 0);
        uint8_t zero[EVD_HASH_SIZE] = {};
        CHECK(memcmp(gen->prev_hash, zero, EVD_HASH_SIZE) == 0);
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
        CHECK_OK(evd_key_public_from_der(gen->public_key, gen->public_key_len, &pub, NULL));
        char pub_id[EVD_KEY_ID_STRLEN + 1];
        CHECK_OK(evd_key_id(pub, pub_id));
        CHECK_STREQ(pub_id, key_id);

        unsigned methods[_EVD_METHOD_MAX] = {};
        for (size_t i = 0; i < m->n_records; i++) {
                const EvdRecord *r = &m->records[i];
                CHECK_INT(r->seq, ==, i);
                CHECK_STREQ(r->key_id, key_id);
                CHECK_STREQ(r->device_id, "A1B2C3D");
                CHECK_STREQ(r->officer_id, "123456");
                CHECK_INT(r->tz_minutes, ==, 480);
                CHECK_INT(verify_record(r, pub), ==, 1);
                if (i > 0)
                        CHECK(memcmp(r->prev_hash, m->records[i - 1].record_hash, EVD_HASH_SIZE) == 0);
                if (r->type != EVD_RECORD_SEGMENT)
                        continue;
                methods[r->method]++;
                CHECK_INT(r->session, ==, 1);
                CHECK_STREQ(r->case_number, "CASE-42");
                /* contiguous: each recording starts where the one before ended */
                if (m->records[i - 1].type == EVD_RECORD_SEGMENT)
                        CHECK_INT(r->start_us, ==, m->records[i - 1].end_us);
                int fd = open(path_of("base", r->file), O_RDONLY | O_CLOEXEC);
                CHECK(fd >= 0);
                uint8_t digest[EVD_DIGEST_SIZE];
                uint64_t size;
                int hr = evd_hash_fd(evd_suite_hash(r->suite), fd, digest, &size);
                close(fd);
                CHECK_OK(hr);
                CHECK_INT(size, ==, r->size);
                CHECK(memcmp(digest, r->file_hash, EVD_HASH_SIZE) == 0);
        }
        CHECK_INT(m->records[1].start_us, ==, START_US);
        CHECK_INT(methods[EVD_METHOD_VIDEO], ==, 3);
        CHECK_INT(methods[EVD_METHOD_AUDIO], ==, 1);
        CHECK_INT(methods[EVD_METHOD_PHOTO], ==, 1);
        const EvdRecord *end = &m->records[m->n_records - 1];
        CHECK_INT(end->type, ==, EVD_RECORD_END);
        CHECK_INT(end->end_us, ==, START_US + 8000000);
        CHECK_STREQ(m->records[1].file, "VIDEO/A1B2C3D_20261122_080000_0001.MP4");

        size_t dlen;
        _cleanup_free_ char *device = read_all(path_of("base", "EVIDOCK/DEVICE.TXT"), &dlen);
        CHECK(device);
        CHECK(strstr(device, "device_id=A1B2C3D\n"));
        CHECK(strstr(device, "officer_id=123456\n"));
        CHECK(strstr(device, "unit_code=110105000000\n"));
        CHECK(strstr(device, "suite=ed25519-sha256\n"));
        char line[64];
        snprintf(line, sizeof line, "key_id=%s\n", key_id);
        CHECK(strstr(device, line));
        CHECK(strstr(device, "model="));
        CHECK(strstr(device, "firmware="));

        struct stat st;
        CHECK(stat(key_path, &st) == 0);
        CHECK_INT(st.st_mode & 0777, ==, 0600);
}

static void test_media_is_real(void)
{
        _cleanup_(evd_manifest_freep) EvdManifest *m = load_manifest("base");
        CHECK(m);
        for (size_t i = 0; i < m->n_records; i++) {
                const EvdRecord *r = &m->records[i];
                if (r->type != EVD_RECORD_SEGMENT)
                        continue;
                const char *p = path_of("base", r->file);
                char clock[32];
                sim_format_clock(r->start_us, r->tz_minutes, clock, sizeof clock);
                if (r->method == EVD_METHOD_PHOTO) {
                        int w = 0, h = 0;
                        _cleanup_free_ uint8_t *luma = first_luma(p, &w, &h);
                        CHECK(luma);
                        CHECK_INT(w, ==, 192);
                        CHECK_INT(h, ==, 108);
                        double d = clock_difference(luma, w, h, clock);
                        printf("# %s: clock '%s' differs by %.1f\n", r->file, clock, d);
                        CHECK(d < 25);
                        CHECK(clock_difference(luma, w, h, "2001-01-01 00:00:00") > d + 10);
                        continue;
                }
                Probe pr;
                CHECK_OK(probe(p, &pr));
                CHECK(moov_after_mdat(p));
                CHECK(pr.duration > 2.0 - 0.2 && pr.duration < 2.0 + 0.2);
                CHECK_INT(pr.n_audio, ==, 1);
                CHECK_INT(pr.audio_codec, ==, AV_CODEC_ID_AAC);
                CHECK(pr.audio_packets > 80); /* 2 s of 1024-sample frames at 48 kHz */
                char created[40];
                time_t t = (time_t)(r->start_us / 1000000);
                struct tm tm;
                gmtime_r(&t, &tm);
                strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%S", &tm);
                CHECK(strncmp(pr.creation_time, created, strlen(created)) == 0);
                if (r->method == EVD_METHOD_AUDIO) {
                        CHECK_INT(pr.n_video, ==, 0);
                        continue;
                }
                CHECK_INT(pr.n_video, ==, 1);
                CHECK_INT(pr.video_codec, ==, AV_CODEC_ID_H264);
                CHECK_INT(pr.video_packets, ==, 20); /* 2 s at 10 fps */
                int w = 0, h = 0;
                _cleanup_free_ uint8_t *luma = first_luma(p, &w, &h);
                CHECK(luma);
                CHECK_INT(w, ==, 192);
                double d = clock_difference(luma, w, h, clock);
                CHECK(d < 25);
                CHECK(clock_difference(luma, w, h, "2001-01-01 00:00:00") > d + 10);
        }
}

static void test_seed_is_deterministic(void)
{
        CHECK_INT(run_sim("same", BASE_ARGS), ==, 0);
        CHECK_INT(run_sim("other-seed", "--videos 3 --audios 1 --photos 1 --duration 2 --start " START
                                        " --seed 8 --case CASE-42"),
                  ==, 0);
        _cleanup_(evd_manifest_freep) EvdManifest *m = load_manifest("base");
        CHECK(m);
        CHECK(files_equal(path_of("base", "EVIDOCK/CHAIN.LOG"), path_of("same", "EVIDOCK/CHAIN.LOG")));
        CHECK(files_equal(path_of("base", "EVIDOCK/DEVICE.TXT"), path_of("same", "EVIDOCK/DEVICE.TXT")));
        for (size_t i = 0; i < m->n_records; i++)
                if (m->records[i].file) {
                        CHECK(files_equal(path_of("base", m->records[i].file),
                                          path_of("same", m->records[i].file)));
                        CHECK(!files_equal(path_of("base", m->records[i].file),
                                           path_of("other-seed", m->records[i].file)));
                }
}

static void test_append_continues_chain(void)
{
        CHECK_INT(run_sim("append", BASE_ARGS), ==, 0);
        size_t before_len;
        _cleanup_free_ char *before = read_all(path_of("append", "EVIDOCK/CHAIN.LOG"), &before_len);
        CHECK(before);
        CHECK_INT(run_sim("append", "--append --videos 2 --audios 0 --photos 0 --duration 1 --sessions 2"),
                  ==, 0);
        size_t after_len;
        _cleanup_free_ char *after = read_all(path_of("append", "EVIDOCK/CHAIN.LOG"), &after_len);
        CHECK(after);
        CHECK(after_len > before_len && memcmp(before, after, before_len) == 0); /* old lines untouched */

        _cleanup_(evd_manifest_freep) EvdManifest *m = NULL;
        CHECK_OK(evd_manifest_parse(after, after_len, &m));
        CHECK_INT(m->n_errors, ==, 0);
        CHECK_INT(m->n_records, ==, 7 + 2 * 2); /* two sessions of one video and an END each */
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = device_key();
        for (size_t i = 1; i < m->n_records; i++) {
                const EvdRecord *r = &m->records[i];
                CHECK_INT(r->seq, ==, i);
                CHECK(memcmp(r->prev_hash, m->records[i - 1].record_hash, EVD_HASH_SIZE) == 0);
                CHECK_INT(verify_record(r, key), ==, 1);
        }
        CHECK_INT(m->records[7].session, ==, 2);
        CHECK_INT(m->records[9].session, ==, 3);
        CHECK_INT(m->records[8].type, ==, EVD_RECORD_END);
        CHECK(m->records[7].start_us > m->records[6].end_us);
        CHECK(access(path_of("append", m->records[9].file), R_OK) == 0);
}

static void test_start_ago_and_suites(void)
{
        /* older than 24 h, with the SM2 suite and its own key */
        char cmd[1024];
        snprintf(cmd, sizeof cmd,
                 "'%s' --out '%s/sm2' --suite sm2-sm3 --videos 1 --audios 0 --photos 0 "
                 "--duration 1 --start-ago 30 --tz -05:00 >/dev/null",
                 sim_path, tmp_root);
        CHECK_INT(system(cmd), ==, 0);
        _cleanup_(evd_manifest_freep) EvdManifest *m = load_manifest("sm2");
        CHECK(m);
        CHECK_INT(m->n_records, ==, 3);
        CHECK_INT(m->records[1].suite, ==, EVD_SUITE_SM2_SM3);
        CHECK_INT(m->records[1].tz_minutes, ==, -300);
        int64_t age_s = (int64_t)time(NULL) - m->records[1].start_us / 1000000;
        CHECK(age_s > 30 * 3600 - 60 && age_s < 30 * 3600 + 60);
        char key[512];
        snprintf(key, sizeof key, "%s/sm2.key", tmp_root);
        EVP_PKEY *k = NULL;
        CHECK_OK(evd_key_load_private_pem(key, &k, NULL));
        CHECK_INT(verify_record(&m->records[1], k), ==, 1);
        EVP_PKEY_free(k);

        /* --print-pubkey prints the key that verifies the chain */
        snprintf(cmd, sizeof cmd, "'%s' --key '%s' --print-pubkey > '%s/sm2.pub'", sim_path, key, tmp_root);
        CHECK_INT(system(cmd), ==, 0);
        snprintf(key, sizeof key, "%s/sm2.pub", tmp_root);
        CHECK_OK(evd_key_load_public_pem(key, &k, NULL));
        CHECK_INT(verify_record(&m->records[2], k), ==, 1);
        EVP_PKEY_free(k);

        /* a volume is not silently overwritten */
        CHECK(run_sim("base", BASE_ARGS) != 0);

        /* errors name what is wrong */
        snprintf(cmd, sizeof cmd, "'%s' --out '%s/bad' --device TOOLONG1 2>'%s/bad.err' >/dev/null",
                 sim_path, tmp_root, tmp_root);
        CHECK(system(cmd) != 0);
        snprintf(key, sizeof key, "%s/bad.err", tmp_root);
        _cleanup_free_ char *msg = read_all(key, NULL);
        CHECK(msg && strstr(msg, "TOOLONG1"));
}

/* ---- faults ---- */

typedef struct FaultCtx {
        EvdManifest *base, *m;
        char **base_lines, **lines;
        size_t n_base_lines, n_lines;
        EVP_PKEY *key;
} FaultCtx;

static void fault_ctx_done(FaultCtx *c)
{
        evd_manifest_free(c->base);
        evd_manifest_free(c->m);
        free_lines(c->base_lines, c->n_base_lines);
        free_lines(c->lines, c->n_lines);
        EVP_PKEY_free(c->key);
}

static int fault_setup(FaultCtx *c, const char *fault, const char *extra)
{
        char args[512];
        *c = (FaultCtx){};
        snprintf(args, sizeof args, "%s %s --fault %s", BASE_ARGS, extra, fault);
        CHECK_OR_RET(run_sim(fault, args) == 0);
        c->base = load_manifest("base");
        c->m = load_manifest(fault);
        c->n_base_lines = load_lines("base", &c->base_lines);
        c->n_lines = load_lines(fault, &c->lines);
        c->key = device_key();
        CHECK_OR_RET(c->base && c->m && c->key);
        char out[512];
        snprintf(out, sizeof out, "%s/%s.out", tmp_root, fault);
        _cleanup_free_ char *summary = read_all(out, NULL);
        char want[64];
        snprintf(want, sizeof want, "fault %s:", fault);
        CHECK_OR_RET(summary && strstr(summary, want)); /* the summary names the target */
        return 0;
}

static bool same_chain_as_base(const char *dir)
{
        return files_equal(path_of("base", "EVIDOCK/CHAIN.LOG"), path_of(dir, "EVIDOCK/CHAIN.LOG"));
}

static void test_fault_hash_mismatch(void)
{
        _cleanup_(fault_ctx_done) FaultCtx c;
        CHECK_OK(fault_setup(&c, "hash-mismatch", ""));
        CHECK(same_chain_as_base("hash-mismatch"));
        const EvdRecord *t = find_seq(c.m, 2, 0);
        CHECK(t && t->method == EVD_METHOD_VIDEO);
        size_t na, nb;
        _cleanup_free_ char *a = read_all(path_of("base", t->file), &na);
        _cleanup_free_ char *b = read_all(path_of("hash-mismatch", t->file), &nb);
        CHECK(a && b && na == nb);
        size_t diffs = 0;
        for (size_t i = 0; i < na; i++)
                diffs += a[i] != b[i];
        CHECK_INT(diffs, ==, 1);
        CHECK(files_equal(path_of("base", find_seq(c.m, 1, 0)->file),
                          path_of("hash-mismatch", find_seq(c.m, 1, 0)->file)));
}

static void test_fault_truncated(void)
{
        _cleanup_(fault_ctx_done) FaultCtx c;
        CHECK_OK(fault_setup(&c, "truncated", ""));
        CHECK(same_chain_as_base("truncated"));
        const EvdRecord *t = find_seq(c.m, 2, 0);
        CHECK(t);
        CHECK_INT(file_size(path_of("truncated", t->file)), ==, t->size / 2);
        size_t na, nb;
        _cleanup_free_ char *a = read_all(path_of("base", t->file), &na);
        _cleanup_free_ char *b = read_all(path_of("truncated", t->file), &nb);
        CHECK(a && b && memcmp(a, b, nb) == 0);
}

static void test_fault_signature_invalid(void)
{
        _cleanup_(fault_ctx_done) FaultCtx c;
        CHECK_OK(fault_setup(&c, "signature-invalid", ""));
        CHECK_INT(c.m->n_errors, ==, 0);
        CHECK_INT(c.n_lines, ==, c.n_base_lines);
        const EvdRecord *t = find_seq(c.m, 2, 0), *bt = find_seq(c.base, 2, 0);
        CHECK(t && bt);
        CHECK_STREQ(t->case_number, "CASE-42X");
        CHECK(t->signature_len == bt->signature_len &&
              memcmp(t->signature, bt->signature, t->signature_len) == 0);
        CHECK_INT(verify_record(t, c.key), ==, 0);
        CHECK(strcmp(c.lines[1], c.base_lines[1]) == 0 && strcmp(c.lines[0], c.base_lines[0]) == 0);
        for (size_t i = 0; i < c.m->n_records; i++) {
                if (c.m->records[i].seq != 2)
                        CHECK_INT(verify_record(&c.m->records[i], c.key), ==, 1);
                if (i > 0)
                        CHECK(memcmp(c.m->records[i].prev_hash, c.m->records[i - 1].record_hash,
                                     EVD_HASH_SIZE) == 0);
        }
}

static void test_fault_unsigned(void)
{
        _cleanup_(fault_ctx_done) FaultCtx c;
        CHECK_OK(fault_setup(&c, "unsigned", ""));
        CHECK_INT(c.n_lines, ==, c.n_base_lines);
        for (size_t i = 0; i < c.n_lines; i++) {
                if (i == 2) {
                        CHECK(!strstr(c.lines[i], ";sig="));
                        CHECK(strncmp(c.base_lines[i], c.lines[i], strlen(c.lines[i])) == 0);
                        CHECK(strncmp(c.base_lines[i] + strlen(c.lines[i]), ";sig=", 5) == 0);
                } else
                        CHECK_STREQ(c.lines[i], c.base_lines[i]);
        }
        CHECK(find_seq(c.m, 2, 0)->signature == NULL);
}

static void test_fault_link_mismatch(void)
{
        _cleanup_(fault_ctx_done) FaultCtx c;
        CHECK_OK(fault_setup(&c, "link-mismatch", ""));
        CHECK_INT(c.m->n_errors, ==, 0);
        for (size_t i = 1; i < c.m->n_records; i++) {
                const EvdRecord *r = &c.m->records[i];
                CHECK_INT(verify_record(r, c.key), ==, 1);
                bool linked = memcmp(r->prev_hash, c.m->records[i - 1].record_hash, EVD_HASH_SIZE) == 0;
                CHECK(linked == (r->seq != 2));
        }
        CHECK_STREQ(c.lines[1], c.base_lines[1]);
}

static void test_fault_segment_gap(void)
{
        _cleanup_(fault_ctx_done) FaultCtx c;
        CHECK_OK(fault_setup(&c, "segment-gap", ""));
        CHECK_INT(c.n_lines, ==, c.n_base_lines - 1);
        CHECK(find_seq(c.m, 2, 0) == NULL);
        CHECK(access(path_of("segment-gap", find_seq(c.base, 2, 0)->file), F_OK) < 0);
        for (size_t i = 0, j = 0; i < c.n_base_lines; i++)
                if (i != 2)
                        CHECK_STREQ(c.lines[j++], c.base_lines[i]);
}

static void test_fault_segment_inserted(void)
{
        _cleanup_(fault_ctx_done) FaultCtx c;
        CHECK_OK(fault_setup(&c, "segment-inserted", ""));
        CHECK(same_chain_as_base("segment-inserted"));
        char name[600];
        CHECK_INT(unrecorded_videos("segment-inserted", c.m, name, sizeof name), ==, 1);
        Probe pr;
        CHECK_OK(probe(path_of("segment-inserted", name), &pr));
        CHECK_INT(pr.video_codec, ==, AV_CODEC_ID_H264);
}

static void test_fault_segment_reordered(void)
{
        _cleanup_(fault_ctx_done) FaultCtx c;
        CHECK_OK(fault_setup(&c, "segment-reordered", ""));
        CHECK_INT(c.n_lines, ==, c.n_base_lines);
        for (size_t i = 0; i < c.n_lines; i++)
                CHECK_STREQ(c.lines[i], c.base_lines[i == 2 ? 3 : i == 3 ? 2 : i]);
}

static void test_fault_segment_duplicate(void)
{
        _cleanup_(fault_ctx_done) FaultCtx c;
        CHECK_OK(fault_setup(&c, "segment-duplicate", ""));
        CHECK(same_chain_as_base("segment-duplicate"));
        char name[600];
        CHECK_INT(unrecorded_videos("segment-duplicate", c.m, name, sizeof name), ==, 1);
        CHECK(files_equal(path_of("segment-duplicate", name),
                          path_of("segment-duplicate", find_seq(c.m, 2, 0)->file)));
}

static void test_fault_segment_conflict(void)
{
        _cleanup_(fault_ctx_done) FaultCtx c;
        CHECK_OK(fault_setup(&c, "segment-conflict", ""));
        const EvdRecord *a = find_seq(c.m, 2, 0), *b = find_seq(c.m, 2, 1);
        CHECK(a && b && !find_seq(c.m, 2, 2));
        CHECK(strcmp(a->file, b->file) != 0);
        CHECK(memcmp(a->file_hash, b->file_hash, EVD_HASH_SIZE) != 0);
        CHECK(memcmp(a->prev_hash, b->prev_hash, EVD_HASH_SIZE) == 0);
        CHECK_INT(verify_record(a, c.key), ==, 1);
        CHECK_INT(verify_record(b, c.key), ==, 1);
        CHECK(access(path_of("segment-conflict", a->file), R_OK) == 0);
        CHECK(access(path_of("segment-conflict", b->file), R_OK) == 0);
        CHECK_INT(c.n_lines, ==, c.n_base_lines + 1);
        CHECK(memcmp(find_seq(c.m, 3, 0)->prev_hash, a->record_hash, EVD_HASH_SIZE) == 0);
}

static void test_fault_session_break(void)
{
        _cleanup_(fault_ctx_done) FaultCtx c;
        CHECK_OK(fault_setup(&c, "session-break", ""));
        unsigned ends[4] = {}, segs[4] = {};
        for (size_t i = 0; i < c.m->n_records; i++) {
                const EvdRecord *r = &c.m->records[i];
                CHECK(r->session < 4);
                if (r->type == EVD_RECORD_END)
                        ends[r->session]++;
                if (r->type == EVD_RECORD_SEGMENT)
                        segs[r->session]++;
                CHECK_INT(verify_record(r, c.key), ==, 1);
                if (i > 0)
                        CHECK(memcmp(r->prev_hash, c.m->records[i - 1].record_hash, EVD_HASH_SIZE) == 0);
        }
        CHECK(segs[1] > 0 && segs[2] > 0);
        CHECK_INT(ends[1], ==, 0);
        CHECK_INT(ends[2], ==, 1);
}

static void test_fault_time_gap_and_overlap(void)
{
        _cleanup_(fault_ctx_done) FaultCtx c;
        CHECK_OK(fault_setup(&c, "time-gap", ""));
        const EvdRecord *s1 = find_seq(c.m, 1, 0), *s2 = find_seq(c.m, 2, 0), *s3 = find_seq(c.m, 3, 0);
        CHECK(s1 && s2 && s3 && s1->session == s2->session);
        CHECK_INT(s2->start_us - s1->end_us, ==, 300000000);
        CHECK_INT(s3->start_us, ==, s2->end_us);

        _cleanup_(fault_ctx_done) FaultCtx o;
        CHECK_OK(fault_setup(&o, "time-overlap", ""));
        s1 = find_seq(o.m, 1, 0);
        s2 = find_seq(o.m, 2, 0);
        s3 = find_seq(o.m, 3, 0);
        CHECK(s1 && s2 && s3);
        CHECK(s2->start_us < s1->end_us);
        CHECK_INT(s3->start_us, ==, s2->end_us);
}

static void test_fault_clock_anomaly(void)
{
        _cleanup_(fault_ctx_done) FaultCtx c;
        CHECK_OK(fault_setup(&c, "clock-anomaly", ""));
        unsigned backwards = 0;
        for (size_t i = 0; i < c.m->n_records; i++)
                if (c.m->records[i].type == EVD_RECORD_SEGMENT &&
                    c.m->records[i].end_us < c.m->records[i].start_us)
                        backwards++;
        CHECK_INT(backwards, ==, 1);
        CHECK(find_seq(c.m, 5, 0)->end_us < find_seq(c.m, 5, 0)->start_us);
}

static void test_fault_identity_mismatch(void)
{
        _cleanup_(fault_ctx_done) FaultCtx c;
        CHECK_OK(fault_setup(&c, "identity-mismatch", ""));
        CHECK(same_chain_as_base("identity-mismatch"));
        _cleanup_free_ char *dev = read_all(path_of("identity-mismatch", "EVIDOCK/DEVICE.TXT"), NULL);
        CHECK(dev && !strstr(dev, "device_id=A1B2C3D\n") && strstr(dev, "device_id=A1B2C3E\n"));
}

static void test_fault_deletion_logged(void)
{
        _cleanup_(fault_ctx_done) FaultCtx c;
        CHECK_OK(fault_setup(&c, "deletion-logged", ""));
        const EvdRecord *t = find_seq(c.m, 2, 0), *del = NULL;
        CHECK(t);
        CHECK(access(path_of("deletion-logged", t->file), F_OK) < 0);
        for (size_t i = 0; i < c.m->n_records; i++) {
                CHECK_INT(verify_record(&c.m->records[i], c.key), ==, 1);
                if (c.m->records[i].type == EVD_RECORD_DELETION)
                        del = &c.m->records[i];
        }
        CHECK(del);
        CHECK_INT(del->deleted_seq, ==, 2);
        CHECK(del->authorised_by && *del->authorised_by);
        for (size_t i = 0; i < c.m->n_records; i++)
                if (c.m->records[i].file && c.m->records[i].seq != 2)
                        CHECK(access(path_of("deletion-logged", c.m->records[i].file), R_OK) == 0);
}

static void test_fault_manifest_invalid(void)
{
        _cleanup_(fault_ctx_done) FaultCtx c;
        CHECK_OK(fault_setup(&c, "manifest-invalid", ""));
        CHECK_INT(c.m->n_errors, ==, 1);
        CHECK_INT(c.m->n_records, ==, c.base->n_records);
        CHECK_INT(c.n_lines, ==, c.n_base_lines + 1);
        for (size_t i = 0, j = 0; i < c.n_lines; i++)
                if (i != 3)
                        CHECK_STREQ(c.lines[i], c.base_lines[j++]);
}

static void test_fault_rollback(void)
{
        _cleanup_(fault_ctx_done) FaultCtx c;
        CHECK_OK(fault_setup(&c, "rollback", ""));
        CHECK_INT(c.n_lines, ==, (c.n_base_lines + 1) / 2);
        for (size_t i = 0; i < c.n_lines; i++)
                CHECK_STREQ(c.lines[i], c.base_lines[i]);
        for (size_t i = 0; i < c.base->n_records; i++) {
                const EvdRecord *r = &c.base->records[i];
                if (r->file)
                        CHECK((access(path_of("rollback", r->file), F_OK) == 0) == (i < c.n_lines));
        }
}

static void test_fault_foreign_key(void)
{
        _cleanup_(fault_ctx_done) FaultCtx c;
        CHECK_OK(fault_setup(&c, "foreign-key", ""));
        CHECK_INT(c.n_lines, ==, c.n_base_lines);
        CHECK(strcmp(c.lines[2], c.base_lines[2]) != 0);
        for (size_t i = 0; i < c.m->n_records; i++) {
                const EvdRecord *r = &c.m->records[i];
                CHECK_INT(verify_record(r, c.key), ==, r->seq == 2 ? 0 : 1);
                CHECK_STREQ(r->key_id, c.m->records[0].key_id);
                if (i > 0)
                        CHECK(memcmp(r->prev_hash, c.m->records[i - 1].record_hash, EVD_HASH_SIZE) == 0);
        }
}

static bool valid_utf8(const char *s)
{
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if (*p >= 0x80)
                        return false; /* our names are ASCII; any high byte here is the injected one */
        return true;
}

static void test_fault_bad_name(void)
{
        _cleanup_(fault_ctx_done) FaultCtx c;
        CHECK_OK(fault_setup(&c, "bad-name", ""));
        CHECK(same_chain_as_base("bad-name"));
        char name[600];
        CHECK_INT(unrecorded_videos("bad-name", c.m, name, sizeof name), ==, 1);
        CHECK(!valid_utf8(name));
        CHECK(strstr(name, "\xc9\xff"));
}

static void test_fault_list_is_complete(void)
{
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "'%s' --fault list", sim_path);
        FILE *f = popen(cmd, "r");
        CHECK(f);
        char line[128];
        unsigned n = 0;
        while (fgets(line, sizeof line, f))
                n++;
        CHECK(pclose(f) == 0);
        CHECK_INT(n, ==, 20);
}

/* ---- speed ---- */

static double seconds_since(uint64_t t0_us)
{
        return (double)(evd_clock_monotonic_us() - t0_us) / 1e6;
}

static void test_speed(void)
{
        SimMediaSpec spec = {.preset = SIM_PRESET_TINY,
                             .start_us = START_US,
                             .duration_us = 2000000,
                             .tz_minutes = 480,
                             .seed = 1,
                             .device_id = "A1B2C3D",
                             .officer_id = "123456"};
        char p[512];
        snprintf(p, sizeof p, "%s/speed-tiny.MP4", tmp_root);
        uint64_t t0 = evd_clock_monotonic_us();
        CHECK_OK(sim_media_make_video(p, &spec, NULL));
        double tiny = seconds_since(t0);
        printf("# tiny 2 s segment made in %.3f s\n", tiny);
        CHECK(tiny < 1.0);

        spec.preset = SIM_PRESET_1080P;
        spec.duration_us = 10000000;
        snprintf(p, sizeof p, "%s/speed-1080p.MP4", tmp_root);
        t0 = evd_clock_monotonic_us();
        CHECK_OK(sim_media_make_video(p, &spec, NULL));
        double full = seconds_since(t0);
        off_t size = file_size(p);
        printf("# 1080p 10 s segment made in %.2f s (%.1f MB; a 10-minute segment: ~%.0f s)\n", full,
               size / 1e6, full * 60);
        Probe pr;
        CHECK_OK(probe(p, &pr));
        CHECK_INT(pr.video_packets, ==, 300);
        CHECK(size > 8e6 && size < 12e6); /* ~8 Mbit/s CBR */
        unlink(p);
}

int main(int argc, char **argv)
{
        if (argc < 2) {
                fprintf(stderr, "usage: %s PATH-TO-evidock-sim\n", argv[0]);
                return 2;
        }
        sim_path = argv[1];
        if (!mkdtemp(tmp_root)) {
                perror("mkdtemp");
                return 1;
        }
        snprintf(key_path, sizeof key_path, "%s/device.key", tmp_root);

        RUN(test_volume_is_verifiable);
        RUN(test_media_is_real);
        RUN(test_seed_is_deterministic);
        RUN(test_append_continues_chain);
        RUN(test_start_ago_and_suites);
        RUN(test_fault_list_is_complete);
        RUN(test_fault_hash_mismatch);
        RUN(test_fault_truncated);
        RUN(test_fault_signature_invalid);
        RUN(test_fault_unsigned);
        RUN(test_fault_link_mismatch);
        RUN(test_fault_segment_gap);
        RUN(test_fault_segment_inserted);
        RUN(test_fault_segment_reordered);
        RUN(test_fault_segment_duplicate);
        RUN(test_fault_segment_conflict);
        RUN(test_fault_session_break);
        RUN(test_fault_time_gap_and_overlap);
        RUN(test_fault_clock_anomaly);
        RUN(test_fault_identity_mismatch);
        RUN(test_fault_deletion_logged);
        RUN(test_fault_manifest_invalid);
        RUN(test_fault_rollback);
        RUN(test_fault_foreign_key);
        RUN(test_fault_bad_name);
        RUN(test_speed);

        int r = check_finish();
        if (r == 0 && !getenv("EVIDOCK_KEEP_TMP")) {
                char cmd[512];
                snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
                if (system(cmd) != 0)
                        fprintf(stderr, "cannot remove %s\n", tmp_root);
        } else
                printf("# volumes kept in %s\n", tmp_root);
        return r;
}
