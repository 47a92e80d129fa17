/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>

#include "macro.h"
#include "sim-font.h"
#include "sim-media.h"

#define AUDIO_RATE    48000
#define AUDIO_BITRATE 64000

typedef struct PresetInfo {
        const char *name;
        int width, height, fps;
        int64_t bit_rate;
        const char *x264_preset;
        const char *x264_params; /* NULL: none */
        int threads;             /* 1 keeps tiny output identical on every machine; 0 = auto */
} PresetInfo;

static const PresetInfo presets[_SIM_PRESET_MAX] = {
    [SIM_PRESET_TINY] = {"tiny", 192, 108, 10, 200000, "veryfast", NULL, 1},
    /* nal-hrd=cbr pads with filler so files are as big as a camera's (~60 MB/min) whatever the content;
     * ultrafast keeps a 10-minute segment to a few minutes on 2 cores (see the sim test's timing). */
    [SIM_PRESET_1080P] = {"1080p", 1920, 1080, 30, 8000000, "ultrafast", "nal-hrd=cbr:force-cfr=1", 0},
};

const char *sim_preset_to_string(SimPreset p)
{
        return (unsigned)p < _SIM_PRESET_MAX ? presets[p].name : NULL;
}

int sim_preset_from_string(const char *s)
{
        for (int i = 0; i < _SIM_PRESET_MAX; i++)
                if (strcmp(s, presets[i].name) == 0)
                        return i;
        return -EINVAL;
}

void sim_format_clock(int64_t utc_us, int tz_minutes, char *out, size_t n)
{
        time_t t = (time_t)((utc_us >= 0 ? utc_us : utc_us - 999999) / 1000000) + (time_t)tz_minutes * 60;
        struct tm tm;
        gmtime_r(&t, &tm);
        snprintf(out, n, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* ISO 8601 UTC for the container's creation_time, as cameras set it. */
static void format_creation_time(int64_t utc_us, char *out, size_t n)
{
        time_t t = (time_t)(utc_us / 1000000);
        struct tm tm;
        gmtime_r(&t, &tm);
        snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(utc_us % 1000000));
}

/* splitmix64: small, seedable, identical everywhere. */
static uint64_t rng_next(uint64_t *state)
{
        uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

static uint64_t spec_seed(const SimMediaSpec *spec, uint64_t salt)
{
        uint64_t s = spec->seed ^ (uint64_t)spec->start_us ^ (salt * 0x2545f4914f6cdd1dull);
        rng_next(&s);
        return s;
}

static void avcodec_free_contextp(AVCodecContext **p)
{
        avcodec_free_context(p);
}
static void av_frame_freep(AVFrame **p)
{
        av_frame_free(p);
}
static void av_packet_freep(AVPacket **p)
{
        av_packet_free(p);
}
static void output_context_freep(AVFormatContext **p)
{
        if (!*p)
                return;
        if ((*p)->pb)
                avio_closep(&(*p)->pb);
        avformat_free_context(*p);
        *p = NULL;
}

static int av_err(EvdError *err, int averr, const char *path, const char *what)
{
        char buf[AV_ERROR_MAX_STRING_SIZE] = "";
        av_strerror(averr, buf, sizeof buf);
        int code = averr < 0 && averr > -4096 ? averr : -EIO; /* AVERROR(e) is -e for errno values */
        return evd_error_set(err, code, "%s: %s: %s", path, what, buf);
}

/* ---- picture ---------------------------------------------------------------------------------- */

typedef struct Scene {
        int width, height;
        uint8_t *ramp;    /* width + height + 512 luma values: the drifting diagonal gradient */
        uint8_t *texture; /* tex_w x tex_h noise, the moving box's content */
        int tex_w, tex_h;
        int phase; /* per-file offset so segments differ */
} Scene;

static void scene_done(Scene *s)
{
        free(s->ramp);
        free(s->texture);
}

static int scene_init(Scene *s, int width, int height, uint64_t seed)
{
        *s = (Scene){
            .width = width, .height = height, .tex_w = MAX(16, height / 3), .tex_h = MAX(16, height / 3)};
        s->ramp = malloc((size_t)width + height + 512);
        s->texture = malloc((size_t)s->tex_w * 2 * s->tex_h);
        if (!s->ramp || !s->texture) {
                scene_done(s);
                return -ENOMEM;
        }
        uint64_t st = seed;
        s->phase = (int)(rng_next(&st) % 512);
        /* Blocky noise (4x4 cells) with a little fine grain: texture the encoder has to track. */
        for (int y = 0; y < s->tex_h; y++)
                for (int x = 0; x < s->tex_w * 2; x++) {
                        uint64_t cell = seed ^ ((uint64_t)(y / 4) << 32) ^ (uint64_t)(x / 4);
                        uint8_t v = (uint8_t)(rng_next(&cell) & 0xff);
                        s->texture[(size_t)y * s->tex_w * 2 + x] =
                            (uint8_t)(v / 2 + 64 + (rng_next(&st) & 7));
                }
        return 0;
}

static int bounce(int pos, int range)
{
        if (range <= 0)
                return 0;
        int p = pos % (2 * range);
        return p < range ? p : 2 * range - p;
}

static void draw_overlay(uint8_t *luma, int linesize, int width, int height, const SimMediaSpec *spec,
                         int64_t now_us)
{
        char clock[32], ids[64], case_line[96];
        int scale = MAX(1, height / 160), margin = 2 * scale;
        int line_h = (SIM_FONT_H + 3) * scale;

        sim_format_clock(now_us, spec->tz_minutes, clock, sizeof clock);
        snprintf(ids, sizeof ids, "%s %s", strna(spec->device_id), strna(spec->officer_id));
        sim_font_draw(luma, linesize, width, height, margin, margin, scale, clock, 235, 16);
        sim_font_draw(luma, linesize, width, height, margin, margin + line_h, scale, ids, 235, 16);
        if (spec->case_number) {
                snprintf(case_line, sizeof case_line, "CASE %s", spec->case_number);
                sim_font_draw(luma, linesize, width, height, margin, margin + 2 * line_h, scale, case_line,
                              235, 16);
        }
}

static void scene_render(const Scene *s, AVFrame *frame, int index, const SimMediaSpec *spec, int64_t now_us,
                         bool full_range)
{
        int w = s->width, h = s->height;
        int speed = MAX(1, w / 96);
        int shift = (s->phase + index * speed) % 512;
        uint8_t lo = full_range ? 24 : 40, span = 150;

        /* Triangle wave so the gradient has no hard edge; shifting it each frame makes it drift. */
        for (int i = 0; i < w + h + 512; i++) {
                int p = (i + shift) % 512;
                int tri = p < 256 ? p : 511 - p;
                s->ramp[i] = (uint8_t)(lo + tri * span / 255);
        }
        for (int y = 0; y < h; y++)
                memcpy(frame->data[0] + (size_t)y * frame->linesize[0], s->ramp + (h - 1 - y) / 2 + 256,
                       (size_t)w);

        /* The textured box bounces around the picture and its texture scrolls. */
        int bx = bounce(index * speed * 2 + s->phase, w - s->tex_w);
        int by = bounce(index * speed + s->phase / 2, h - s->tex_h);
        int scroll = (index * 2) % s->tex_w;
        for (int y = 0; y < s->tex_h && by + y < h; y++)
                memcpy(frame->data[0] + (size_t)(by + y) * frame->linesize[0] + bx,
                       s->texture + (size_t)y * s->tex_w * 2 + scroll, (size_t)MIN(s->tex_w, w - bx));

        int cw = (w + 1) / 2, ch = (h + 1) / 2;
        uint8_t v_value = (uint8_t)(128 + 40 * sin(index * 0.05 + s->phase));
        for (int y = 0; y < ch; y++) {
                uint8_t *u = frame->data[1] + (size_t)y * frame->linesize[1];
                for (int x = 0; x < cw; x++)
                        u[x] = (uint8_t)(96 + x * 64 / cw);
                memset(frame->data[2] + (size_t)y * frame->linesize[2], v_value, (size_t)cw);
        }
        draw_overlay(frame->data[0], frame->linesize[0], w, h, spec, now_us);
}

/* ---- encoders --------------------------------------------------------------------------------- */

static int open_video_encoder(const PresetInfo *p, bool global_header, AVCodecContext **ret,
                              const char *path, EvdError *err)
{
        const AVCodec *codec = avcodec_find_encoder_by_name("libx264");
        if (!codec)
                return evd_error_set(err, -ENOENT, "%s: libavcodec has no libx264 encoder", path);
        _cleanup_(avcodec_free_contextp) AVCodecContext *c = avcodec_alloc_context3(codec);
        if (!c)
                return -ENOMEM;
        c->width = p->width;
        c->height = p->height;
        c->pix_fmt = AV_PIX_FMT_YUV420P;
        c->time_base = (AVRational){1, p->fps};
        c->framerate = (AVRational){p->fps, 1};
        c->gop_size = p->fps; /* one keyframe a second, as recorders do for seeking */
        c->bit_rate = p->bit_rate;
        c->rc_max_rate = p->bit_rate;
        c->rc_buffer_size = (int)p->bit_rate;
        c->thread_count = p->threads;
        c->color_range = AVCOL_RANGE_MPEG;
        if (global_header)
                c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
        av_opt_set(c->priv_data, "preset", p->x264_preset, 0);
        if (p->x264_params)
                av_opt_set(c->priv_data, "x264-params", p->x264_params, 0);
        int r = avcodec_open2(c, codec, NULL);
        if (r < 0)
                return av_err(err, r, path, "cannot open the H.264 encoder");
        *ret = steal_ptr(&c);
        return 0;
}

static int open_audio_encoder(bool global_header, AVCodecContext **ret, const char *path, EvdError *err)
{
        const AVCodec *codec = avcodec_find_encoder_by_name("aac");
        if (!codec)
                return evd_error_set(err, -ENOENT, "%s: libavcodec has no aac encoder", path);
        _cleanup_(avcodec_free_contextp) AVCodecContext *c = avcodec_alloc_context3(codec);
        if (!c)
                return -ENOMEM;
        c->sample_fmt = AV_SAMPLE_FMT_FLTP;
        c->sample_rate = AUDIO_RATE;
        c->bit_rate = AUDIO_BITRATE;
        c->time_base = (AVRational){1, AUDIO_RATE};
        av_channel_layout_default(&c->ch_layout, 1);
        if (global_header)
                c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
        int r = avcodec_open2(c, codec, NULL);
        if (r < 0)
                return av_err(err, r, path, "cannot open the AAC encoder");
        *ret = steal_ptr(&c);
        return 0;
}

/* A tone that wanders in pitch and loudness, with a little noise: real work for the AAC encoder. */
typedef struct Tone {
        double phase, base_hz;
        uint64_t rng;
} Tone;

static void tone_fill(Tone *t, float *out, int n, int64_t first_sample)
{
        for (int i = 0; i < n; i++) {
                double sec = (double)(first_sample + i) / AUDIO_RATE;
                double hz = t->base_hz + 60.0 * sin(2 * M_PI * 0.5 * sec);
                double amp = 0.25 * (0.7 + 0.3 * sin(2 * M_PI * 0.2 * sec));
                t->phase += 2 * M_PI * hz / AUDIO_RATE;
                if (t->phase > 2 * M_PI)
                        t->phase -= 2 * M_PI;
                double noise = ((double)(rng_next(&t->rng) >> 11) / (double)(1ull << 53) - 0.5) * 0.02;
                out[i] = (float)(amp * sin(t->phase) + noise);
        }
}

/* ---- muxing ----------------------------------------------------------------------------------- */

typedef struct Track {
        AVCodecContext *enc;
        AVStream *st;
        int64_t next_pts; /* in enc->time_base */
        int64_t total;    /* frames (video) or samples (audio) to produce */
        bool flushed;
} Track;

static int write_packets(AVFormatContext *oc, Track *t, AVPacket *pkt, const char *path, EvdError *err)
{
        for (;;) {
                int r = avcodec_receive_packet(t->enc, pkt);
                if (r == AVERROR(EAGAIN))
                        return 0;
                if (r == AVERROR_EOF) {
                        t->flushed = true;
                        return 0;
                }
                if (r < 0)
                        return av_err(err, r, path, "encoding failed");
                if (pkt->duration == 0 && t->enc->codec_type == AVMEDIA_TYPE_VIDEO)
                        pkt->duration = 1;
                av_packet_rescale_ts(pkt, t->enc->time_base, t->st->time_base);
                pkt->stream_index = t->st->index;
                r = av_interleaved_write_frame(oc, pkt);
                if (r < 0)
                        return av_err(err, r, path, "writing a packet failed");
        }
}

static int add_track(AVFormatContext *oc, Track *t, const char *path, EvdError *err)
{
        t->st = avformat_new_stream(oc, NULL);
        if (!t->st)
                return -ENOMEM;
        t->st->time_base = t->enc->time_base;
        int r = avcodec_parameters_from_context(t->st->codecpar, t->enc);
        if (r < 0)
                return av_err(err, r, path, "cannot set stream parameters");
        return 0;
}

static int make_av_file(const char *path, const SimMediaSpec *spec, bool with_video, EvdError *err)
{
        const PresetInfo *p = &presets[spec->preset];
        const char *muxer = with_video ? "mp4" : "ipod"; /* ipod = the .m4a flavour of MP4 */
        _cleanup_(output_context_freep) AVFormatContext *oc = NULL;
        _cleanup_(avcodec_free_contextp) AVCodecContext *venc = NULL, *aenc = NULL;
        _cleanup_(av_frame_freep) AVFrame *vframe = NULL, *aframe = NULL;
        _cleanup_(av_packet_freep) AVPacket *pkt = av_packet_alloc();
        Scene scene = {};
        Tone tone = {.rng = spec_seed(spec, 2)}; /* before the first goto: no jump skips an initialisation */
        char created[40];
        int r;

        if (!pkt)
                return -ENOMEM;
        r = avformat_alloc_output_context2(&oc, NULL, muxer, path);
        if (r < 0)
                return av_err(err, r, path, "cannot create the MP4 muxer");
        bool global_header = oc->oformat->flags & AVFMT_GLOBALHEADER;

        Track vt = {}, at = {};
        if (with_video) {
                r = open_video_encoder(p, global_header, &venc, path, err);
                if (r < 0)
                        return r;
                vt.enc = venc;
                vt.total = (spec->duration_us * p->fps + 500000) / 1000000;
                r = add_track(oc, &vt, path, err);
                if (r < 0)
                        return r;
        }
        r = open_audio_encoder(global_header, &aenc, path, err);
        if (r < 0)
                return r;
        at.enc = aenc;
        at.total = (spec->duration_us * AUDIO_RATE + 500000) / 1000000;
        r = add_track(oc, &at, path, err);
        if (r < 0)
                return r;

        format_creation_time(spec->start_us, created, sizeof created);
        av_dict_set(&oc->metadata, "creation_time", created, 0);
        for (unsigned i = 0; i < oc->nb_streams; i++)
                av_dict_set(&oc->streams[i]->metadata, "creation_time", created, 0);

        r = avio_open(&oc->pb, path, AVIO_FLAG_WRITE);
        if (r < 0)
                return av_err(err, r, path, "cannot create the file");
        /* No "movflags=faststart": the index goes at the end, where a camera that writes while recording
         * has to put it. */
        r = avformat_write_header(oc, NULL);
        if (r < 0)
                goto fail_av;

        if (with_video) {
                r = scene_init(&scene, p->width, p->height, spec_seed(spec, 1));
                if (r < 0)
                        goto fail;
                vframe = av_frame_alloc();
                if (!vframe) {
                        r = -ENOMEM;
                        goto fail;
                }
                vframe->format = venc->pix_fmt;
                vframe->width = venc->width;
                vframe->height = venc->height;
                r = av_frame_get_buffer(vframe, 0);
                if (r < 0)
                        goto fail_av;
        }
        aframe = av_frame_alloc();
        if (!aframe) {
                r = -ENOMEM;
                goto fail;
        }
        tone.base_hz = 330.0 + (double)(tone.rng % 300);

        /* Feed both encoders in presentation order so the muxer interleaves without a big buffer. */
        for (;;) {
                bool v_more = with_video && !vt.flushed;
                bool a_more = !at.flushed;
                if (!v_more && !a_more)
                        break;
                Track *t;
                if (v_more && a_more)
                        t = av_compare_ts(vt.next_pts, venc->time_base, at.next_pts, aenc->time_base) <= 0
                                ? &vt
                                : &at;
                else
                        t = v_more ? &vt : &at;

                if (t->next_pts >= t->total) {
                        r = avcodec_send_frame(t->enc, NULL);
                        if (r < 0 && r != AVERROR_EOF)
                                goto fail_av;
                } else if (t == &vt) {
                        r = av_frame_make_writable(vframe);
                        if (r < 0)
                                goto fail_av;
                        int64_t now_us = spec->start_us + vt.next_pts * 1000000 / p->fps;
                        scene_render(&scene, vframe, (int)vt.next_pts, spec, now_us, false);
                        vframe->pts = vt.next_pts++;
                        r = avcodec_send_frame(venc, vframe);
                        if (r < 0)
                                goto fail_av;
                } else {
                        int n = (int)MIN((int64_t)aenc->frame_size, at.total - at.next_pts);
                        av_frame_unref(aframe);
                        aframe->format = aenc->sample_fmt;
                        aframe->sample_rate = AUDIO_RATE;
                        aframe->nb_samples = n;
                        r = av_channel_layout_copy(&aframe->ch_layout, &aenc->ch_layout);
                        if (r < 0)
                                goto fail_av;
                        r = av_frame_get_buffer(aframe, 0);
                        if (r < 0)
                                goto fail_av;
                        tone_fill(&tone, (float *)aframe->data[0], n, at.next_pts);
                        aframe->pts = at.next_pts;
                        at.next_pts += n;
                        r = avcodec_send_frame(aenc, aframe);
                        if (r < 0)
                                goto fail_av;
                }
                r = write_packets(oc, t, pkt, path, err);
                if (r < 0)
                        goto fail;
        }
        r = av_write_trailer(oc);
        if (r < 0)
                goto fail_av;
        r = avio_closep(&oc->pb);
        if (r < 0)
                goto fail_av;
        scene_done(&scene);
        return 0;

fail_av:
        r = av_err(err, r, path, "muxing failed");
fail:
        scene_done(&scene);
        if (oc->pb)
                avio_closep(&oc->pb);
        unlink(path);
        return r;
}

int sim_media_make_video(const char *path, const SimMediaSpec *spec, EvdError *err)
{
        if ((unsigned)spec->preset >= _SIM_PRESET_MAX || spec->duration_us <= 0)
                return evd_error_set(err, -EINVAL, "%s: bad preset or duration", path);
        return make_av_file(path, spec, true, err);
}

int sim_media_make_audio(const char *path, const SimMediaSpec *spec, EvdError *err)
{
        if ((unsigned)spec->preset >= _SIM_PRESET_MAX || spec->duration_us <= 0)
                return evd_error_set(err, -EINVAL, "%s: bad preset or duration", path);
        return make_av_file(path, spec, false, err);
}

int sim_media_make_photo(const char *path, const SimMediaSpec *spec, EvdError *err)
{
        if ((unsigned)spec->preset >= _SIM_PRESET_MAX)
                return evd_error_set(err, -EINVAL, "%s: bad preset", path);
        const PresetInfo *p = &presets[spec->preset];
        const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
        if (!codec)
                return evd_error_set(err, -ENOENT, "%s: libavcodec has no mjpeg encoder", path);
        _cleanup_(avcodec_free_contextp) AVCodecContext *c = avcodec_alloc_context3(codec);
        _cleanup_(av_frame_freep) AVFrame *frame = av_frame_alloc();
        _cleanup_(av_packet_freep) AVPacket *pkt = av_packet_alloc();
        _cleanup_(scene_done) Scene scene = {};
        if (!c || !frame || !pkt)
                return -ENOMEM;
        c->width = p->width;
        c->height = p->height;
        c->pix_fmt = AV_PIX_FMT_YUVJ420P; /* full-range JPEG, as cameras write */
        c->color_range = AVCOL_RANGE_JPEG;
        c->time_base = (AVRational){1, 25};
        c->flags |= AV_CODEC_FLAG_QSCALE;
        c->global_quality = FF_QP2LAMBDA * 3;
        c->thread_count = 1;
        int r = avcodec_open2(c, codec, NULL);
        if (r < 0)
                return av_err(err, r, path, "cannot open the JPEG encoder");
        frame->format = c->pix_fmt;
        frame->width = c->width;
        frame->height = c->height;
        r = av_frame_get_buffer(frame, 0);
        if (r < 0)
                return av_err(err, r, path, "cannot allocate a picture");
        r = scene_init(&scene, p->width, p->height, spec_seed(spec, 3));
        if (r < 0)
                return evd_error_set_errno(err, r, "%s: picture", path);
        scene_render(&scene, frame, 0, spec, spec->start_us, true);
        frame->pts = 0;
        r = avcodec_send_frame(c, frame);
        if (r >= 0)
                r = avcodec_receive_packet(c, pkt);
        if (r < 0)
                return av_err(err, r, path, "JPEG encoding failed");

        _cleanup_fclose_ FILE *f = fopen(path, "we");
        if (!f)
                return evd_error_set_errno(err, negative_errno(), "%s: cannot create the file", path);
        if (fwrite(pkt->data, 1, (size_t)pkt->size, f) != (size_t)pkt->size || fflush(f) != 0) {
                r = negative_errno();
                unlink(path);
                return evd_error_set_errno(err, r, "%s: write failed", path);
        }
        return 0;
}
