/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>

#include "macro.h"
#include "media-gen.h"

#define GEN_WIDTH  160
#define GEN_HEIGHT 120
#define GEN_FPS    25
#define GEN_RATE   48000

static void codec_context_freep(AVCodecContext **c)
{
        avcodec_free_context(c);
}

static void frame_freep(AVFrame **f)
{
        av_frame_free(f);
}

static void packet_freep(AVPacket **p)
{
        av_packet_free(p);
}

static int open_encoder(const char *codec_name, AVFormatContext *oc, bool video, AVCodecContext **ret_ctx,
                        AVStream **ret_st)
{
        const AVCodec *codec = avcodec_find_encoder_by_name(codec_name);
        if (!codec)
                return -ENOENT;
        AVCodecContext *c = avcodec_alloc_context3(codec);
        if (!c)
                return -ENOMEM;
        if (video) {
                c->width = GEN_WIDTH;
                c->height = GEN_HEIGHT;
                c->pix_fmt = AV_PIX_FMT_YUV420P;
                c->time_base = (AVRational){1, GEN_FPS};
                c->framerate = (AVRational){GEN_FPS, 1};
                c->gop_size = GEN_FPS;
                c->max_b_frames = 2;
                av_opt_set(c->priv_data, "preset", "veryfast", 0);
                c->thread_count = 1;
        } else {
                c->sample_fmt = AV_SAMPLE_FMT_FLTP;
                c->sample_rate = GEN_RATE;
                c->time_base = (AVRational){1, GEN_RATE};
                c->bit_rate = 64000;
                av_channel_layout_default(&c->ch_layout, 2);
        }
        if (oc->oformat->flags & AVFMT_GLOBALHEADER)
                c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER; /* avcC / esds in the MP4 header */
        int r = avcodec_open2(c, codec, NULL);
        AVStream *st = r >= 0 ? avformat_new_stream(oc, NULL) : NULL;
        if (!st || avcodec_parameters_from_context(st->codecpar, c) < 0) {
                avcodec_free_context(&c);
                return r < 0 ? r : -ENOMEM;
        }
        st->time_base = c->time_base;
        *ret_ctx = c;
        *ret_st = st;
        return 0;
}

/* Sends one frame (NULL = flush) and writes every packet that comes out. */
static int encode_write(AVFormatContext *oc, AVCodecContext *c, AVStream *st, AVFrame *frame, AVPacket *pkt)
{
        int r = avcodec_send_frame(c, frame);
        if (r < 0)
                return r;
        for (;;) {
                r = avcodec_receive_packet(c, pkt);
                if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
                        return 0;
                if (r < 0)
                        return r;
                av_packet_rescale_ts(pkt, c->time_base, st->time_base);
                pkt->stream_index = st->index;
                r = av_interleaved_write_frame(oc, pkt);
                if (r < 0)
                        return r;
        }
}

static void fill_video(AVFrame *f, unsigned n)
{
        for (int y = 0; y < GEN_HEIGHT; y++)
                for (int x = 0; x < GEN_WIDTH; x++)
                        f->data[0][y * f->linesize[0] + x] = (uint8_t)(x + y + 3 * n);
        for (int y = 0; y < GEN_HEIGHT / 2; y++)
                for (int x = 0; x < GEN_WIDTH / 2; x++) {
                        f->data[1][y * f->linesize[1] + x] = (uint8_t)(128 + y + n);
                        f->data[2][y * f->linesize[2] + x] = (uint8_t)(64 + x + 5 * n);
                }
}

static void fill_audio(AVFrame *f, uint64_t first_sample)
{
        for (int ch = 0; ch < 2; ch++) {
                float *s = (float *)f->data[ch];
                for (int i = 0; i < f->nb_samples; i++)
                        s[i] = 0.3f * (float)sin(2.0 * M_PI * (440.0 + 220.0 * ch) *
                                                 (double)(first_sample + (uint64_t)i) / GEN_RATE);
        }
}

int media_gen_mp4(const char *path, bool video, bool audio, unsigned seconds)
{
        _cleanup_(codec_context_freep) AVCodecContext *vc = NULL;
        _cleanup_(codec_context_freep) AVCodecContext *ac = NULL;
        _cleanup_(frame_freep) AVFrame *vf = av_frame_alloc();
        _cleanup_(frame_freep) AVFrame *af = av_frame_alloc();
        _cleanup_(packet_freep) AVPacket *pkt = av_packet_alloc();
        AVFormatContext *oc = NULL;
        AVStream *vst = NULL, *ast = NULL;
        int r;

        if (!vf || !af || !pkt)
                return -ENOMEM;
        r = avformat_alloc_output_context2(&oc, NULL, video ? "mp4" : "ipod", path);
        if (r < 0)
                return r;
        av_dict_set(&oc->metadata, "title", MEDIA_GEN_SOURCE_TITLE, 0);
        av_dict_set(&oc->metadata, "comment", MEDIA_GEN_SOURCE_COMMENT, 0);
        if (video && (r = open_encoder("libx264", oc, true, &vc, &vst)) < 0)
                goto finish;
        if (audio && (r = open_encoder("aac", oc, false, &ac, &ast)) < 0)
                goto finish;
        if (vst)
                av_dict_set(&vst->metadata, "handler_name", "SOURCE-HANDLER-MUST-NOT-LEAK", 0);
        r = avio_open(&oc->pb, path, AVIO_FLAG_WRITE);
        if (r < 0)
                goto finish;
        r = avformat_write_header(oc, NULL); /* no +faststart: moov goes at the end, as on cameras */
        if (r < 0)
                goto finish;

        if (vc) {
                vf->format = vc->pix_fmt;
                vf->width = vc->width;
                vf->height = vc->height;
                if ((r = av_frame_get_buffer(vf, 0)) < 0)
                        goto finish;
        }
        if (ac) {
                af->format = ac->sample_fmt;
                af->nb_samples = ac->frame_size;
                af->sample_rate = ac->sample_rate;
                av_channel_layout_copy(&af->ch_layout, &ac->ch_layout);
                if ((r = av_frame_get_buffer(af, 0)) < 0)
                        goto finish;
        }

        unsigned n_video = vc ? seconds * GEN_FPS : 0;
        uint64_t n_samples = ac ? (uint64_t)seconds * GEN_RATE : 0, sample = 0;
        unsigned frame = 0;
        while (frame < n_video || sample < n_samples) {
                /* Feed whichever stream is behind so the muxer interleaves them. */
                bool do_video = frame < n_video && (sample >= n_samples ||
                                                    (double)frame / GEN_FPS <= (double)sample / GEN_RATE);
                if (do_video) {
                        if ((r = av_frame_make_writable(vf)) < 0)
                                goto finish;
                        fill_video(vf, frame);
                        vf->pts = frame++;
                        r = encode_write(oc, vc, vst, vf, pkt);
                } else {
                        if ((r = av_frame_make_writable(af)) < 0)
                                goto finish;
                        fill_audio(af, sample);
                        af->pts = (int64_t)sample;
                        sample += (uint64_t)af->nb_samples;
                        r = encode_write(oc, ac, ast, af, pkt);
                }
                if (r < 0)
                        goto finish;
        }
        if (vc && (r = encode_write(oc, vc, vst, NULL, pkt)) < 0)
                goto finish;
        if (ac && (r = encode_write(oc, ac, ast, NULL, pkt)) < 0)
                goto finish;
        r = av_write_trailer(oc);
finish:
        if (oc) {
                avio_closep(&oc->pb);
                avformat_free_context(oc);
        }
        return r < 0 ? (r == AVERROR(ENOMEM) ? -ENOMEM : -EIO) : 0;
}

int media_gen_jpeg(const char *path)
{
        _cleanup_(codec_context_freep) AVCodecContext *c = NULL;
        _cleanup_(frame_freep) AVFrame *f = av_frame_alloc();
        _cleanup_(packet_freep) AVPacket *pkt = av_packet_alloc();
        const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
        static const uint8_t app1[] = {0xFF, 0xE1, 0x00, 0x0C, 'E', 'x', 'i', 'f', 0, 0, 'T', 'E', 'S', 'T'};
        int r;

        if (!codec || !f || !pkt)
                return -ENOMEM;
        c = avcodec_alloc_context3(codec);
        if (!c)
                return -ENOMEM;
        c->width = GEN_WIDTH;
        c->height = GEN_HEIGHT;
        c->pix_fmt = AV_PIX_FMT_YUVJ420P;
        c->sample_aspect_ratio = (AVRational){1, 1}; /* mjpeg writes the JFIF APP0 only with an aspect */
        c->time_base = (AVRational){1, GEN_FPS};
        if ((r = avcodec_open2(c, codec, NULL)) < 0)
                return -EIO;
        f->format = c->pix_fmt;
        f->width = c->width;
        f->height = c->height;
        if (av_frame_get_buffer(f, 0) < 0)
                return -ENOMEM;
        fill_video(f, 7);
        f->pts = 0;
        if (avcodec_send_frame(c, f) < 0 || avcodec_send_frame(c, NULL) < 0 ||
            avcodec_receive_packet(c, pkt) < 0)
                return -EIO;
        /* mjpeg writes SOI, APP0 (JFIF), COM ("Lavc..."), DQT...: put an APP1 after APP0 so the
         * archive's COM must go after both APPn segments and before the encoder's own COM. */
        if (pkt->size < 20 || pkt->data[2] != 0xFF || pkt->data[3] != 0xE0)
                return -EPROTO;
        size_t app0_end = 4 + (((size_t)pkt->data[4] << 8) | pkt->data[5]);
        _cleanup_fclose_ FILE *out = fopen(path, "we");
        if (!out)
                return -errno;
        if (fwrite(pkt->data, 1, app0_end, out) != app0_end ||
            fwrite(app1, 1, sizeof(app1), out) != sizeof(app1) ||
            fwrite(pkt->data + app0_end, 1, (size_t)pkt->size - app0_end, out) !=
                (size_t)pkt->size - app0_end)
                return -EIO;
        return fflush(out) == 0 ? 0 : -errno;
}
