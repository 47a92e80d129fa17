/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The archive copy of a recording: Matroska by stream copy for video/audio, JPEG + COM tags for photos.
 * See media.h for the formats, the digest and the bounds. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <time.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>

#include "batch-queue.h"
#include "clock.h"
#include "hash.h"
#include "media.h"
#include "mkv-patch.h"
#include "text.h"
#include "writeback.h"

#define PACKETS_DIGEST_DOMAIN "evidock-packets-v1\n"
#define JPEG_COM_MAX_PAYLOAD  65533u /* a JPEG segment length is 16 bits and counts itself */

static void packet_freep(AVPacket **p)
{
        av_packet_free(p);
}

static void output_context_freep(AVFormatContext **p)
{
        avformat_free_context(*p);
        *p = NULL;
}

static void dict_freep(AVDictionary **d)
{
        av_dict_free(d);
}

static uint64_t options_deadline(const EvdMediaOptions *opts)
{
        if (opts && opts->deadline_usec)
                return opts->deadline_usec;
        return evd_clock_monotonic_us() + EVD_MEDIA_DEFAULT_TIMEOUT_USEC;
}

/* ---- fd-backed I/O for libavformat: pread/pwrite with our own position, so the caller's file offset
 * is never moved, plus the seek callback that moov-at-end MP4 files need. ---- */

typedef struct FdIO {
        int fd;
        uint64_t pos;
        uint64_t size;     /* input: file size at open; output: highest offset written */
        uint64_t deadline; /* CLOCK_MONOTONIC usec */
        bool timed_out;
        int io_errno;                   /* first errno of a failed pread/pwrite, 0 if none */
        EvdWriteback *writeback;        /* output: writeback behind the muxer (writeback.h); may be NULL */
        const EvdMediaGrowing *growing; /* input: still being written (media.h); NULL: complete */
} FdIO;

#define GROWING_LAG (4u * 1024u * 1024u) /* a growing source is read this far behind its end */

static bool fdio_deadline_passed(FdIO *io)
{
        if (evd_clock_monotonic_us() >= io->deadline)
                io->timed_out = true;
        return io->timed_out;
}

/* One read of want bytes at offset at of fd, for the position io->pos: AVERROR_EOF at the end, the errno
 * kept for the caller's message. */
static int fdio_pread(FdIO *io, int fd, uint8_t *buf, size_t want, uint64_t at)
{
        ssize_t k;
        do
                k = pread(fd, buf, want, (off_t)at);
        while (k < 0 && errno == EINTR);
        if (k < 0) {
                io->io_errno = errno;
                return AVERROR(errno);
        }
        if (k == 0)
                return AVERROR_EOF;
        io->pos += (uint64_t)k;
        return (int)k;
}

/* A source still being written: the bytes read ahead come from their own descriptor, the others once
 * the copy has written them (as many as are there: a short read, the demuxer asks again). */
static int fdio_read_growing(FdIO *io, uint8_t *buf, size_t want)
{
        const EvdMediaGrowing *g = io->growing;
        int fd = io->fd;
        uint64_t at = io->pos;
        if (io->pos >= g->ahead_offset) {
                fd = g->ahead_fd;
                at = io->pos - g->ahead_offset;
        } else {
                want = (size_t)MIN((uint64_t)want, g->ahead_offset - io->pos);
                /* the whole read, not its first byte: the copy grows the file a page at a time, and reads
                 * of what just arrived would be a few KiB each (a syscall storm behind the copy). And a
                 * little more: a read stays GROWING_LAG behind the copy, out of the page-cache folio the
                 * copy is still filling (a large folio of up to 2 MiB, locked while written into: reading
                 * it meanwhile made the copy's write() many times slower) */
                int64_t have =
                    g->wait(g->userdata, MIN(io->pos + want + GROWING_LAG, g->size), io->deadline);
                if (have == -ETIMEDOUT) {
                        io->timed_out = true;
                        return AVERROR_EXIT;
                }
                if (have < 0) {
                        io->io_errno = (int)-have;
                        return AVERROR(io->io_errno);
                }
                if ((uint64_t)have <= io->pos)
                        return AVERROR_EOF;
                want = (size_t)MIN((uint64_t)want, (uint64_t)have - io->pos);
        }
        return fdio_pread(io, fd, buf, want, at);
}

static int fdio_read(void *opaque, uint8_t *buf, int n)
{
        FdIO *io = opaque;

        /* libavformat consults the interrupt callback only in its own protocols, not in custom I/O:
         * checking here bounds the time of every read-driven loop in the demuxer. */
        if (fdio_deadline_passed(io))
                return AVERROR_EXIT;
        if (io->pos >= io->size || n <= 0)
                return AVERROR_EOF;
        size_t want = (size_t)MIN((uint64_t)n, io->size - io->pos);
        if (io->growing)
                return fdio_read_growing(io, buf, want);
        return fdio_pread(io, io->fd, buf, want, io->pos);
}

static int fdio_write(void *opaque, uint8_t *buf, int n)
{
        FdIO *io = opaque;
        size_t done = 0;

        if (fdio_deadline_passed(io))
                return AVERROR_EXIT;
        while (done < (size_t)n) {
                ssize_t k = pwrite(io->fd, buf + done, (size_t)n - done, (off_t)(io->pos + done));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        io->io_errno = k < 0 ? errno : EIO;
                        return AVERROR(io->io_errno);
                }
                done += (size_t)k;
        }
        io->pos += done;
        io->size = MAX(io->size, io->pos);
        /* Writeback of what is written so far, started on another thread, so that the caller's fdatasync
         * of the archive copy finds little left to do (the muxer only seeks back into the header). */
        evd_writeback_advance(io->writeback, io->size);
        return n;
}

static int64_t fdio_seek(void *opaque, int64_t offset, int whence)
{
        FdIO *io = opaque;
        int64_t base;

        whence &= ~AVSEEK_FORCE;
        if (whence == AVSEEK_SIZE)
                return (int64_t)io->size;
        switch (whence) {
        case SEEK_SET:
                base = 0;
                break;
        case SEEK_CUR:
                base = (int64_t)io->pos;
                break;
        case SEEK_END:
                base = (int64_t)io->size;
                break;
        default:
                return AVERROR(EINVAL);
        }
        if (offset < -base || offset > INT64_MAX - base)
                return AVERROR(EINVAL);
        io->pos = (uint64_t)(base + offset);
        return (int64_t)io->pos;
}

static int fdio_interrupt(void *opaque)
{
        return fdio_deadline_passed(opaque);
}

static void avio_context_freep(AVIOContext **pb)
{
        if (!*pb)
                return;
        av_freep(&(*pb)->buffer); /* may have been reallocated by avio: free what it holds now */
        avio_context_free(pb);
}

static int fdio_context_new(FdIO *io, bool write, AVIOContext **ret)
{
        uint8_t *buffer = av_malloc(EVD_MEDIA_IO_BUFFER_BYTES);
        if (!buffer)
                return -ENOMEM;
        AVIOContext *pb = avio_alloc_context(buffer, EVD_MEDIA_IO_BUFFER_BYTES, write, io,
                                             write ? NULL : fdio_read, write ? fdio_write : NULL, fdio_seek);
        if (!pb) {
                av_free(buffer);
                return -ENOMEM;
        }
        *ret = pb;
        return 0;
}

/* Maps a libavformat error to our errno vocabulary: anything that is not time, I/O or memory is the
 * media's fault. */
static int map_averror(int averr, const FdIO *io)
{
        if ((io && io->timed_out) || averr == AVERROR_EXIT)
                return -ETIMEDOUT;
        if (io && io->io_errno)
                return -io->io_errno;
        if (averr == AVERROR(ENOMEM))
                return -ENOMEM;
        return -EBADMSG;
}

static const char *averror_text(int averr, char *buf, size_t n)
{
        av_strerror(averr, buf, n);
        return buf;
}

/* ---- what kind of file ---- */

typedef enum MediaKind {
        KIND_MP4,
        KIND_MATROSKA,
        KIND_JPEG,
} MediaKind;

static int media_sniff(int fd, const char *name, uint64_t *ret_size, MediaKind *ret_kind, EvdError *err)
{
        struct stat st;
        uint8_t head[12];

        if (fstat(fd, &st) < 0)
                return evd_error_set_errno(err, negative_errno(), "%s: cannot stat", name);
        if (!S_ISREG(st.st_mode))
                return evd_error_set(err, -EMEDIUMTYPE, "%s: not a regular file", name);
        if (st.st_size == 0)
                return evd_error_set(err, -EBADMSG, "%s: empty file", name);

        ssize_t k;
        do
                k = pread(fd, head, sizeof(head), 0);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return evd_error_set_errno(err, negative_errno(), "%s: cannot read", name);
        if ((size_t)k < sizeof(head))
                return evd_error_set(err, -EBADMSG, "%s: too short to be media (%zd bytes)", name, k);

        MediaKind kind;
        if (head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF)
                kind = KIND_JPEG;
        else if (memcmp(head, "\x1A\x45\xDF\xA3", 4) == 0)
                kind = KIND_MATROSKA;
        else if (memcmp(head + 4, "ftyp", 4) == 0 || memcmp(head + 4, "moov", 4) == 0 ||
                 memcmp(head + 4, "mdat", 4) == 0 || memcmp(head + 4, "free", 4) == 0 ||
                 memcmp(head + 4, "skip", 4) == 0 || memcmp(head + 4, "wide", 4) == 0)
                kind = KIND_MP4;
        else
                return evd_error_set(err, -EMEDIUMTYPE, "%s: not an MP4/M4A/MOV, Matroska or JPEG file",
                                     name);
        *ret_size = (uint64_t)st.st_size;
        *ret_kind = kind;
        return 0;
}

/* ---- demuxing ---- */

typedef struct MediaInput {
        FdIO io;
        AVIOContext *pb;
        AVFormatContext *ic;
        MediaKind kind;
} MediaInput;

static void media_input_done(MediaInput *in)
{
        avformat_close_input(&in->ic); /* AVFMT_FLAG_CUSTOM_IO: leaves pb to us */
        avio_context_freep(&in->pb);
}

static const AVOutputFormat *matroska_muxer(void)
{
        return av_guess_format("matroska", NULL, NULL);
}

/* The streams that go into the archive copy and into the packet digest. The same rule applies to an
 * original and to an archive copy, so both give the same digest. */
static bool stream_carried(const AVStream *st)
{
        const AVCodecParameters *par = st->codecpar;
        const AVOutputFormat *mkv = matroska_muxer();

        if (par->codec_type != AVMEDIA_TYPE_VIDEO && par->codec_type != AVMEDIA_TYPE_AUDIO)
                return false;
        if (st->disposition & AV_DISPOSITION_ATTACHED_PIC)
                return false;
        return mkv && avformat_query_codec(mkv, par->codec_id, FF_COMPLIANCE_NORMAL) == 1;
}

static void stream_describe(const AVStream *st, unsigned index, EvdMediaStream *ret)
{
        const AVCodecParameters *par = st->codecpar;
        const char *type = av_get_media_type_string(par->codec_type);

        *ret = (EvdMediaStream){.index = index, .carried = stream_carried(st)};
        snprintf(ret->type, sizeof(ret->type), "%s", type ? type : "unknown");
        snprintf(ret->codec_name, sizeof(ret->codec_name), "%s", avcodec_get_name(par->codec_id));
        if (par->codec_tag) {
                for (unsigned i = 0; i < 4; i++) {
                        unsigned c = (par->codec_tag >> (8 * i)) & 0xFFu;
                        ret->codec_tag[i] = (c >= 0x20 && c < 0x7F) ? (char)c : '?';
                }
                ret->codec_tag[4] = '\0';
        }
}

static int media_input_open(MediaInput *in, int fd, const char *name, MediaKind kind, uint64_t size,
                            uint64_t deadline, const EvdMediaGrowing *growing, EvdError *err)
{
        _cleanup_(dict_freep) AVDictionary *demux_opts = NULL;
        char buf[128];
        int r;

        *in = (MediaInput){.io = {.fd = fd, .size = size, .deadline = deadline, .growing = growing},
                           .kind = kind};

        const AVInputFormat *fmt = av_find_input_format(kind == KIND_MP4 ? "mov" : "matroska");
        if (!fmt)
                return evd_error_set(err, -ENOTSUP, "%s: libavformat lacks the %s demuxer", name,
                                     kind == KIND_MP4 ? "mov" : "matroska");
        if (kind == KIND_MP4) {
                /* Every stored sample is evidence: edit lists may hide samples (or mark them discarded),
                 * so read the sample tables as they are. */
                if (av_dict_set(&demux_opts, "ignore_editlist", "1", 0) < 0)
                        return -ENOMEM;
        }

        r = fdio_context_new(&in->io, false, &in->pb);
        if (r < 0)
                return evd_error_set(err, r, "%s: out of memory", name);
        in->ic = avformat_alloc_context();
        if (!in->ic)
                return evd_error_set(err, -ENOMEM, "%s: out of memory", name);
        in->ic->pb = in->pb;
        /* No parsers: packets are the samples exactly as stored (a parser could split or merge them),
         * and hostile payloads are not parsed at all. */
        in->ic->flags |= AVFMT_FLAG_CUSTOM_IO | AVFMT_FLAG_NOPARSE;
        in->ic->interrupt_callback = (AVIOInterruptCB){fdio_interrupt, &in->io};
        in->ic->max_streams = EVD_MEDIA_MAX_STREAMS;

        r = avformat_open_input(&in->ic, NULL, fmt, &demux_opts); /* frees ic on failure */
        if (r < 0) {
                r = map_averror(r, &in->io);
                return evd_error_set(err, r, "%s: cannot read the %s container: %s", name,
                                     kind == KIND_MP4 ? "MP4" : "Matroska",
                                     r == -ETIMEDOUT ? "deadline passed"
                                                     : averror_text(r, buf, sizeof(buf)));
        }
        if (in->ic->nb_streams == 0)
                return evd_error_set(err, -EBADMSG, "%s: container holds no streams", name);
        if (in->ic->nb_streams > EVD_MEDIA_MAX_STREAMS)
                return evd_error_set(err, -E2BIG, "%s: more than %u streams", name, EVD_MEDIA_MAX_STREAMS);
        return 0;
}

/* Per-stream digests, see media.h for the exact definition. */
typedef struct StreamDigest {
        EVP_MD_CTX *md;
        uint64_t packets;
        unsigned input_index;
        char kind;                /* 'V' or 'A' */
        int64_t expected_packets; /* sample count from the MP4 index, 0 if unknown */
} StreamDigest;

typedef struct PacketDigest {
        unsigned n;
        StreamDigest streams[EVD_MEDIA_MAX_STREAMS];
        int slot_of[EVD_MEDIA_MAX_STREAMS]; /* input stream index -> slot, -1 if not carried */
        uint64_t total;
} PacketDigest;

static void packet_digest_done(PacketDigest *pd)
{
        for (unsigned i = 0; i < pd->n; i++)
                EVP_MD_CTX_free(pd->streams[i].md);
        pd->n = 0;
}

static int packet_digest_init(PacketDigest *pd, MediaInput *in, const char *name, EvdError *err)
{
        *pd = (PacketDigest){0};
        for (unsigned i = 0; i < in->ic->nb_streams; i++) {
                AVStream *st = in->ic->streams[i];
                pd->slot_of[i] = -1;
                if (!stream_carried(st)) {
                        st->discard = AVDISCARD_ALL; /* the demuxer then does not even read them */
                        continue;
                }
                StreamDigest *sd = &pd->streams[pd->n];
                int r = evd_hash_begin(EVD_HASH_SHA256, &sd->md);
                if (r < 0)
                        return evd_error_set(err, r, "%s: cannot start SHA-256", name);
                sd->input_index = i;
                sd->kind = st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO ? 'V' : 'A';
                sd->expected_packets = in->kind == KIND_MP4 ? st->nb_frames : 0;
                pd->slot_of[i] = (int)pd->n++;
        }
        if (pd->n == 0)
                return evd_error_set(err, -EMEDIUMTYPE, "%s: no video or audio stream that can be archived",
                                     name);
        return 0;
}

static int packet_digest_hash(PacketDigest *pd, unsigned slot, const AVPacket *pkt)
{
        StreamDigest *sd = &pd->streams[slot];
        uint8_t size_be[4] = {(uint8_t)(pkt->size >> 24), (uint8_t)(pkt->size >> 16),
                              (uint8_t)(pkt->size >> 8), (uint8_t)pkt->size};
        int r = evd_hash_update(sd->md, size_be, sizeof(size_be));
        if (r >= 0)
                r = evd_hash_update(sd->md, pkt->data, (size_t)pkt->size);
        return r;
}

static void packet_digest_count(PacketDigest *pd, unsigned slot)
{
        pd->streams[slot].packets++;
        pd->total++;
}

static int packet_digest_add(PacketDigest *pd, unsigned slot, const AVPacket *pkt)
{
        int r = packet_digest_hash(pd, slot, pkt);
        if (r >= 0)
                packet_digest_count(pd, slot);
        return r;
}

/* While muxing, the packet hashes run on their own thread: the demuxer/muxer thread hands it a new
 * reference to each packet (no copy), through a queue bounded in packets and in bytes that wakes the
 * hashing thread by batches (batch-queue.h: one wake-up per packet cost ~35,000 context switches for a
 * 10-minute 1080p segment). */
static const EvdBatchQueueLimits hash_queue_limits = {
    .max_items = 256,
    .max_bytes = 32u * 1024u * 1024u,
    .wake_items = 32,
    .wake_bytes = 2u * 1024u * 1024u,
};

static int hash_queue_packet(void *item, unsigned slot, bool skip, void *userdata)
{
        AVPacket *pkt = item;
        int r = skip ? 0 : packet_digest_hash(userdata, slot, pkt);
        av_packet_free(&pkt);
        return r;
}

static int hash_queue_push(EvdBatchQueue *q, unsigned slot, const AVPacket *pkt)
{
        AVPacket *ref = av_packet_clone(pkt);
        if (!ref)
                return -ENOMEM;
        return evd_batch_queue_push(q, ref, (size_t)pkt->size, slot);
}

static int packet_digest_finish(PacketDigest *pd, const char *name, uint8_t ret[32], EvdError *err)
{
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = NULL;
        int r;

        if (pd->total == 0)
                return evd_error_set(err, -EBADMSG, "%s: the container names streams but holds no packets",
                                     name);
        r = evd_hash_begin(EVD_HASH_SHA256, &md);
        if (r < 0)
                return r;
        r = evd_hash_update(md, PACKETS_DIGEST_DOMAIN, strlen(PACKETS_DIGEST_DOMAIN));
        for (unsigned i = 0; r >= 0 && i < pd->n; i++) {
                StreamDigest *sd = &pd->streams[i];
                uint8_t rec[1 + 8 + 32];

                /* A stream shorter than its own index says means samples could not be read. */
                if (sd->expected_packets > 0 && (uint64_t)sd->expected_packets != sd->packets)
                        return evd_error_set(err, -EBADMSG,
                                             "%s: stream %u has %" PRIu64
                                             " packets but its index lists %" PRId64,
                                             name, sd->input_index, sd->packets, sd->expected_packets);
                rec[0] = (uint8_t)sd->kind;
                for (unsigned b = 0; b < 8; b++)
                        rec[1 + b] = (uint8_t)(sd->packets >> (56 - 8 * b));
                r = evd_hash_end(sd->md, rec + 9);
                if (r >= 0)
                        r = evd_hash_update(md, rec, sizeof(rec));
        }
        if (r >= 0)
                r = evd_hash_end(md, ret);
        return r < 0 ? evd_error_set(err, r, "%s: hashing failed", name) : 0;
}

/* Structural check of a packet without decoding: bounded size, not flagged corrupt by the demuxer, and
 * for H.264/H.265 in length-prefixed (MP4/Matroska) form, NAL lengths that tile the packet exactly.
 * This catches an index pointing into garbage, which stream copy would otherwise carry silently. */
static int packet_check(const AVStream *st, const AVPacket *pkt, uint64_t number, const char *name,
                        EvdError *err)
{
        const AVCodecParameters *par = st->codecpar;
        unsigned len_size = 0;

        if (pkt->size <= 0 && par->codec_type == AVMEDIA_TYPE_VIDEO)
                return evd_error_set(err, -EBADMSG, "%s: stream %d packet %" PRIu64 " is empty", name,
                                     pkt->stream_index, number);
        if ((uint64_t)pkt->size > EVD_MEDIA_MAX_PACKET_BYTES)
                return evd_error_set(err, -E2BIG, "%s: stream %d packet %" PRIu64 " is larger than %u bytes",
                                     name, pkt->stream_index, number, EVD_MEDIA_MAX_PACKET_BYTES);
        if (pkt->flags & AV_PKT_FLAG_CORRUPT)
                return evd_error_set(err, -EBADMSG,
                                     "%s: stream %d packet %" PRIu64 " is truncated or corrupt", name,
                                     pkt->stream_index, number);

        if (par->codec_id == AV_CODEC_ID_H264 && par->extradata_size >= 7 && par->extradata[0] == 1)
                len_size = (par->extradata[4] & 3u) + 1;
        else if (par->codec_id == AV_CODEC_ID_HEVC && par->extradata_size >= 23 && par->extradata[0] == 1)
                len_size = (par->extradata[21] & 3u) + 1;
        if (len_size == 0)
                return 0;

        size_t off = 0, size = (size_t)pkt->size;
        while (off < size) {
                if (size - off < len_size)
                        goto bad;
                uint64_t nal = 0;
                for (unsigned i = 0; i < len_size; i++)
                        nal = (nal << 8) | pkt->data[off + i];
                off += len_size;
                if (nal == 0 || nal > size - off || (pkt->data[off] & 0x80u)) /* forbidden_zero_bit */
                        goto bad;
                off += nal;
        }
        return 0;
bad:
        return evd_error_set(err, -EBADMSG,
                             "%s: stream %d packet %" PRIu64
                             " is not valid %s (NAL framing broken at byte %zu)",
                             name, pkt->stream_index, number, avcodec_get_name(par->codec_id), off);
}

typedef struct Muxer {
        AVFormatContext *oc;
        FdIO *io;
        int out_index[EVD_MEDIA_MAX_STREAMS]; /* digest slot -> output stream */
        EvdBatchQueue *hashes;                /* packet hashing thread, or NULL: hash inline */
        const EvdMediaOptions *opts;          /* progress */
        uint64_t reported;                    /* source offset last reported */
} Muxer;

/* The job's progress: how far the demuxer has read into the source (a mov demuxer reads the index first
 * and then the samples in file order, so the read position is the share of the work done). */
static void mux_progress(Muxer *mux, const FdIO *in, bool end)
{
        if (!mux->opts || !mux->opts->progress)
                return;
        uint64_t done = end ? in->size : MIN(in->pos, in->size);
        if (!end && done < mux->reported + EVD_MEDIA_PROGRESS_STEP)
                return;
        mux->reported = done;
        mux->opts->progress(done, in->size, mux->opts->progress_userdata);
}

/* Reads every packet of the carried streams, checks and digests it, and hands it to the muxer if any. */
static int demux_all(MediaInput *in, PacketDigest *pd, Muxer *mux, const char *name, EvdError *err)
{
        _cleanup_(packet_freep) AVPacket *pkt = av_packet_alloc();
        char buf[128];
        int r;

        if (!pkt)
                return -ENOMEM;
        for (;;) {
                if (fdio_deadline_passed(&in->io))
                        return evd_error_set(err, -ETIMEDOUT,
                                             "%s: deadline passed after %" PRIu64 " packets", name,
                                             pd->total);
                r = av_read_frame(in->ic, pkt);
                if (r == AVERROR_EOF)
                        break;
                if (r < 0) {
                        r = map_averror(r, &in->io);
                        return evd_error_set(
                            err, r, "%s: cannot read packet %" PRIu64 ": %s", name, pd->total,
                            r == -ETIMEDOUT ? "deadline passed" : averror_text(r, buf, sizeof(buf)));
                }
                if ((unsigned)pkt->stream_index >= in->ic->nb_streams ||
                    pd->slot_of[pkt->stream_index] < 0) {
                        av_packet_unref(pkt);
                        continue;
                }
                unsigned slot = (unsigned)pd->slot_of[pkt->stream_index];
                AVStream *ist = in->ic->streams[pkt->stream_index];

                r = packet_check(ist, pkt, pd->streams[slot].packets, name, err);
                if (r < 0)
                        return r;
                if (mux && mux->hashes) {
                        r = hash_queue_push(mux->hashes, slot, pkt);
                        packet_digest_count(pd, slot);
                } else
                        r = packet_digest_add(pd, slot, pkt);
                if (r < 0)
                        return evd_error_set(err, r, "%s: hashing failed", name);
                if (!mux) {
                        av_packet_unref(pkt);
                        continue;
                }

                mux_progress(mux, &in->io, false);
                AVStream *ost = mux->oc->streams[mux->out_index[slot]];
                pkt->stream_index = ost->index;
                pkt->pos = -1;
                av_packet_rescale_ts(pkt, ist->time_base, ost->time_base);
                r = av_interleaved_write_frame(mux->oc, pkt); /* takes the packet's reference */
                if (r < 0) {
                        r = map_averror(r, mux->io);
                        return evd_error_set(err, r,
                                             "%s: cannot write packet %" PRIu64 " to the archive copy: %s",
                                             name, pd->total,
                                             mux->io->io_errno ? strerror(mux->io->io_errno)
                                                               : averror_text(r, buf, sizeof(buf)));
                }
        }
        return 0;
}

static int av_packets_digest(int fd, const char *name, MediaKind kind, uint64_t size, uint64_t deadline,
                             uint8_t ret_digest[32], uint64_t *ret_packets, EvdError *err)
{
        _cleanup_(media_input_done) MediaInput in = {0};
        _cleanup_(packet_digest_done) PacketDigest pd = {0};
        uint8_t digest[32];
        int r;

        r = media_input_open(&in, fd, name, kind, size, deadline, NULL, err);
        if (r < 0)
                return r;
        r = packet_digest_init(&pd, &in, name, err);
        if (r < 0)
                return r;
        r = demux_all(&in, &pd, NULL, name, err);
        if (r < 0)
                return r;
        r = packet_digest_finish(&pd, name, digest, err);
        if (r < 0)
                return r;
        memcpy(ret_digest, digest, sizeof(digest));
        if (ret_packets)
                *ret_packets = pd.total;
        return 0;
}

/* ---- tags ---- */

/* Recorder text as the manifest accepts it (text.h: UTF-8 without C0 controls, C1 controls and bidi
 * marks allowed), non-empty, at most EVD_MEDIA_MAX_TAG_BYTES: a case number a valid signed manifest
 * carries is never refused here. */
_Static_assert(EVD_MEDIA_MAX_TAG_BYTES >= EVD_TEXT_MAX_BYTES, "a tag must hold any recorder text value");
static bool tag_text_valid(const char *s)
{
        return s[0] && evd_text_valid(s, EVD_MEDIA_MAX_TAG_BYTES);
}

static const char *const reserved_tag_names[] = {
    EVD_MEDIA_TAG_CASE_NUMBER,     EVD_MEDIA_TAG_METHOD,        EVD_MEDIA_TAG_DATE_RECORDED,
    EVD_MEDIA_TAG_DATE_END,        EVD_MEDIA_TAG_MAKER,         EVD_MEDIA_TAG_DEVICE_ID,
    EVD_MEDIA_TAG_ORIGINAL_SHA256, EVD_MEDIA_TAG_ORIGINAL_NAME, EVD_MEDIA_TAG_CONFIDENTIALITY,
    EVD_MEDIA_TAG_NOT_CARRIED,
};

static bool tag_key_valid(const char *k)
{
        size_t n = strlen(k);
        if (n == 0 || n > 64)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((k[i] >= 'A' && k[i] <= 'Z') || (k[i] >= '0' && k[i] <= '9') || k[i] == '_'))
                        return false;
        for (size_t i = 0; i < ELEMENTSOF(reserved_tag_names); i++)
                if (strcmp(k, reserved_tag_names[i]) == 0)
                        return false;
        return true;
}

static int tags_validate(const EvdArchiveTags *t, const EvdArchiveAttachment *atts, size_t n_atts,
                         const char *name, EvdError *err)
{
        const struct {
                const char *what, *value;
                bool required;
        } fields[] = {
            {"case number", t->case_number, true},     {"recording start", t->recorded_start, true},
            {"recording end", t->recorded_end, false}, {"maker", t->maker, true},
            {"device ID", t->device_id, true},         {"original SHA-256", t->original_sha256, true},
            {"original name", t->original_name, true}, {"confidentiality", t->confidentiality, false},
        };
        uint8_t sha[32];

        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                if (!fields[i].value && !fields[i].required)
                        continue;
                if (!fields[i].value || !tag_text_valid(fields[i].value))
                        return evd_error_set(err, -EINVAL, "%s: tag '%s' is %s", name, fields[i].what,
                                             fields[i].value ? "not printable UTF-8 of at most 1024 bytes"
                                                             : "missing");
        }
        if (strlen(t->original_sha256) != 64 || evd_unhex(t->original_sha256, sha, sizeof(sha)) < 0)
                return evd_error_set(err, -EINVAL, "%s: original SHA-256 is not 64 hex digits", name);
        if ((unsigned)t->method >= _EVD_METHOD_MAX)
                return evd_error_set(err, -EINVAL, "%s: invalid method %d", name, (int)t->method);
        if (t->n_extra > EVD_MEDIA_MAX_EXTRA_TAGS || (t->n_extra && !t->extra))
                return evd_error_set(err, -E2BIG, "%s: more than %u extra tags", name,
                                     EVD_MEDIA_MAX_EXTRA_TAGS);
        for (size_t i = 0; i < t->n_extra; i++)
                if (!t->extra[i].key || !tag_key_valid(t->extra[i].key) || !t->extra[i].value ||
                    !tag_text_valid(t->extra[i].value))
                        return evd_error_set(err, -EINVAL, "%s: extra tag %zu (%s) is invalid or reserved",
                                             name, i, strna(t->extra[i].key));
        if (n_atts > EVD_MEDIA_MAX_ATTACHMENTS || (n_atts && !atts))
                return evd_error_set(err, -E2BIG, "%s: more than %u attachments", name,
                                     EVD_MEDIA_MAX_ATTACHMENTS);
        for (size_t i = 0; i < n_atts; i++) {
                const EvdArchiveAttachment *a = &atts[i];
                if (!a->filename || !tag_text_valid(a->filename) || strchr(a->filename, '/') ||
                    !a->mimetype || !tag_text_valid(a->mimetype) || !a->data || a->size == 0)
                        return evd_error_set(err, -EINVAL,
                                             "%s: attachment %zu needs a file name, a mimetype and data",
                                             name, i);
                if (a->size > EVD_MEDIA_MAX_ATTACHMENT_BYTES)
                        return evd_error_set(err, -E2BIG, "%s: attachment %s is larger than %u bytes", name,
                                             a->filename, EVD_MEDIA_MAX_ATTACHMENT_BYTES);
        }
        return 0;
}

/* Calls add(key, value) for each tag in a fixed order (the order is part of reproducible output). */
typedef int (*tag_add_fn)(void *userdata, const char *key, const char *value);

static int tags_foreach(const EvdArchiveTags *t, EvdMethod content_method, const char *not_carried,
                        tag_add_fn add, void *userdata)
{
        EvdMethod m = t->method != EVD_METHOD_UNKNOWN ? t->method : content_method;
        const char *pairs[][2] = {
            {EVD_MEDIA_TAG_CASE_NUMBER, t->case_number},
            {EVD_MEDIA_TAG_METHOD, evd_method_to_string(m)},
            {EVD_MEDIA_TAG_DATE_RECORDED, t->recorded_start},
            {EVD_MEDIA_TAG_DATE_END, t->recorded_end},
            {EVD_MEDIA_TAG_MAKER, t->maker},
            {EVD_MEDIA_TAG_DEVICE_ID, t->device_id},
            {EVD_MEDIA_TAG_ORIGINAL_SHA256, t->original_sha256},
            {EVD_MEDIA_TAG_ORIGINAL_NAME, t->original_name},
            {EVD_MEDIA_TAG_CONFIDENTIALITY, t->confidentiality},
            {EVD_MEDIA_TAG_NOT_CARRIED, not_carried},
        };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(pairs); i++) {
                if (!pairs[i][1] || !pairs[i][1][0])
                        continue;
                r = add(userdata, pairs[i][0], pairs[i][1]);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < t->n_extra; i++) {
                r = add(userdata, t->extra[i].key, t->extra[i].value);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* "#2 data tmcd; #3 data gpmd (kept only in the original)", or "" when everything is carried. */
static void not_carried_describe(const EvdMediaStream *s, unsigned n, char *buf, size_t size)
{
        size_t off = 0;
        buf[0] = '\0';
        for (unsigned i = 0; i < n && off < size; i++)
                off += (size_t)snprintf(buf + off, size - off, "%s#%u %s %s", i ? "; " : "", s[i].index,
                                        s[i].type, s[i].codec_tag[0] ? s[i].codec_tag : s[i].codec_name);
        if (n && off < size)
                snprintf(buf + off, size - off, " (kept only in the original)");
}

/* ---- JPEG ---- */

typedef struct JpegLayout {
        size_t insert;   /* offset of the first marker that is not SOI or APPn: where our COMs go */
        size_t skip_end; /* end of the evidock COM segments found at insert (== insert if none) */
} JpegLayout;

static bool jpeg_is_sof(uint8_t m)
{
        return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
}

/* Walks the marker segments up to the image data and checks that an end-of-image marker follows it. */
static int jpeg_parse(const uint8_t *b, size_t n, const char *name, JpegLayout *ret, EvdError *err)
{
        bool have_insert = false, in_ours = false, have_sof = false;
        JpegLayout lay = {0};
        size_t pos = 2;

        if (n < 4 || b[0] != 0xFF || b[1] != 0xD8)
                return evd_error_set(err, -EMEDIUMTYPE, "%s: not a JPEG file (no start-of-image marker)",
                                     name);
        for (;;) {
                if (pos >= n)
                        return evd_error_set(err, -EBADMSG, "%s: JPEG truncated before its image data",
                                             name);
                if (b[pos] != 0xFF)
                        return evd_error_set(err, -EBADMSG, "%s: JPEG marker expected at byte %zu", name,
                                             pos);
                size_t mstart = pos;
                while (pos < n && b[pos] == 0xFF) /* fill bytes */
                        pos++;
                if (pos >= n)
                        return evd_error_set(err, -EBADMSG, "%s: JPEG truncated at byte %zu", name, pos);
                uint8_t m = b[pos++];
                bool app = m >= 0xE0 && m <= 0xEF;

                if (!have_insert && !app) {
                        have_insert = in_ours = true;
                        lay.insert = lay.skip_end = mstart;
                }
                if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) { /* standalone markers */
                        in_ours = false;
                        continue;
                }
                if (m == 0x00 || m == 0xD8 || m == 0xD9)
                        return evd_error_set(err, -EBADMSG, "%s: unexpected JPEG marker 0x%02X at byte %zu",
                                             name, m, mstart);
                if (n - pos < 2)
                        return evd_error_set(err, -EBADMSG, "%s: JPEG truncated at byte %zu", name, pos);
                size_t len = ((size_t)b[pos] << 8) | b[pos + 1];
                if (len < 2 || len > n - pos)
                        return evd_error_set(err, -EBADMSG,
                                             "%s: JPEG segment 0x%02X at byte %zu overruns the file", name,
                                             m, mstart);
                if (in_ours && m == 0xFE && len - 2 >= 8 && memcmp(b + pos + 2, "EVIDOCK-", 8) == 0)
                        lay.skip_end = pos + len;
                else if (have_insert)
                        in_ours = false;
                if (jpeg_is_sof(m))
                        have_sof = true;
                pos += len;
                if (m == 0xDA) {
                        if (!have_sof)
                                return evd_error_set(err, -EBADMSG,
                                                     "%s: JPEG image data without a frame header", name);
                        /* Entropy-coded data stuffs 0xFF with 0x00, so FF D9 only occurs as the EOI marker;
                         * bytes after EOI (camera trailers) are kept as they are. */
                        for (size_t i = pos; i + 1 < n; i++)
                                if (b[i] == 0xFF && b[i + 1] == 0xD9) {
                                        *ret = lay;
                                        return 0;
                                }
                        return evd_error_set(err, -EBADMSG,
                                             "%s: JPEG has no end-of-image marker (truncated)", name);
                }
        }
}

static int jpeg_load(int fd, const char *name, uint64_t size, uint8_t **ret_buf, EvdError *err)
{
        if (size > EVD_MEDIA_MAX_JPEG_BYTES)
                return evd_error_set(err, -E2BIG, "%s: JPEG larger than %u bytes", name,
                                     EVD_MEDIA_MAX_JPEG_BYTES);
        _cleanup_free_ uint8_t *buf = malloc((size_t)size);
        if (!buf)
                return evd_error_set(err, -ENOMEM, "%s: out of memory", name);
        for (size_t done = 0; done < size;) {
                ssize_t k = pread(fd, buf + done, (size_t)size - done, (off_t)done);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return evd_error_set_errno(err, negative_errno(), "%s: cannot read", name);
                if (k == 0)
                        return evd_error_set(err, -EBADMSG, "%s: file shrank while reading", name);
                done += (size_t)k;
        }
        *ret_buf = steal_ptr(&buf);
        return 0;
}

/* jpeg_load() + jpeg_parse(): the whole photo in memory and its segment layout. */
static int jpeg_load_parsed(int fd, const char *name, uint64_t size, uint8_t **ret_buf, JpegLayout *ret_lay,
                            EvdError *err)
{
        _cleanup_free_ uint8_t *buf = NULL;
        int r = jpeg_load(fd, name, size, &buf, err);
        if (r < 0)
                return r;
        r = jpeg_parse(buf, (size_t)size, name, ret_lay, err);
        if (r < 0)
                return r;
        *ret_buf = steal_ptr(&buf);
        return 0;
}

static int jpeg_digest(const uint8_t *b, size_t n, const JpegLayout *lay, uint8_t ret[32])
{
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = NULL;
        int r = evd_hash_begin(EVD_HASH_SHA256, &md);
        if (r >= 0)
                r = evd_hash_update(md, b, lay->insert);
        if (r >= 0)
                r = evd_hash_update(md, b + lay->skip_end, n - lay->skip_end);
        if (r >= 0)
                r = evd_hash_end(md, ret);
        return r;
}

typedef struct ComBuilder {
        uint8_t seg[4 + JPEG_COM_MAX_PAYLOAD]; /* FF FE len16 payload */
        size_t len;                            /* payload bytes so far */
        bool overflow;
} ComBuilder;

static void com_append(ComBuilder *c, const void *data, size_t n)
{
        if (n > JPEG_COM_MAX_PAYLOAD - c->len) {
                c->overflow = true;
                return;
        }
        memcpy(c->seg + 4 + c->len, data, n);
        c->len += n;
}

static int com_add_tag(void *userdata, const char *key, const char *value)
{
        ComBuilder *c = userdata;
        com_append(c, key, strlen(key));
        com_append(c, "=", 1);
        com_append(c, value, strlen(value));
        com_append(c, "\n", 1);
        return 0;
}

static size_t com_finish(ComBuilder *c)
{
        size_t seglen = c->len + 2;
        c->seg[0] = 0xFF;
        c->seg[1] = 0xFE;
        c->seg[2] = (uint8_t)(seglen >> 8);
        c->seg[3] = (uint8_t)seglen;
        return c->len + 4;
}

static int pwrite_all(FdIO *io, const void *data, size_t n)
{
        for (size_t off = 0; off < n;) {
                int chunk = (int)MIN(n - off, (size_t)(1u << 30));
                int r = fdio_write(io, (uint8_t *)data + off, chunk);
                if (r < 0)
                        return io->timed_out ? -ETIMEDOUT : -io->io_errno;
                off += (size_t)chunk;
        }
        return 0;
}

static int jpeg_archive(int src_fd, const char *name, uint64_t size, const EvdArchiveTags *tags,
                        const EvdArchiveAttachment *atts, size_t n_atts, uint64_t deadline, int out_fd,
                        EvdArchiveResult *ret, EvdError *err)
{
        _cleanup_free_ uint8_t *buf = NULL;
        _cleanup_free_ ComBuilder *com = malloc(sizeof(ComBuilder));
        FdIO out = {.fd = out_fd, .deadline = deadline};
        EvdArchiveResult res = {.format = EVD_ARCHIVE_JPEG, .method = EVD_METHOD_PHOTO, .packets = 1};
        JpegLayout lay;
        int r;

        if (!com)
                return -ENOMEM;
        r = jpeg_load_parsed(src_fd, name, size, &buf, &lay, err);
        if (r < 0)
                return r;
        r = jpeg_digest(buf, (size_t)size, &lay, res.packets_sha256);
        if (r < 0)
                return evd_error_set(err, r, "%s: hashing failed", name);

        r = pwrite_all(&out, buf, lay.insert);
        if (r < 0)
                goto write_failed;

        *com = (ComBuilder){.len = 0};
        com_append(com, EVD_MEDIA_JPEG_TAGS_MAGIC, strlen(EVD_MEDIA_JPEG_TAGS_MAGIC));
        (void)tags_foreach(tags, EVD_METHOD_PHOTO, NULL, com_add_tag, com);
        if (com->overflow)
                return evd_error_set(err, -E2BIG, "%s: tags do not fit in one JPEG comment segment", name);
        r = pwrite_all(&out, com->seg, com_finish(com));
        if (r < 0)
                goto write_failed;

        for (size_t i = 0; i < n_atts; i++) {
                *com = (ComBuilder){.len = 0};
                com_append(com, EVD_MEDIA_JPEG_ATTACHMENT_MAGIC, strlen(EVD_MEDIA_JPEG_ATTACHMENT_MAGIC));
                com_add_tag(com, "filename", atts[i].filename);
                com_add_tag(com, "mimetype", atts[i].mimetype);
                com_append(com, "\n", 1);
                com_append(com, atts[i].data, atts[i].size);
                if (com->overflow)
                        return evd_error_set(err, -E2BIG,
                                             "%s: attachment %s does not fit in a JPEG comment segment",
                                             name, atts[i].filename);
                r = pwrite_all(&out, com->seg, com_finish(com));
                if (r < 0)
                        goto write_failed;
        }

        r = pwrite_all(&out, buf + lay.insert, (size_t)size - lay.insert);
        if (r < 0)
                goto write_failed;
        res.bytes_written = out.size;
        *ret = res;
        return 0;

write_failed:
        return r == -ETIMEDOUT
                   ? evd_error_set(err, r, "%s: deadline passed while writing the archive copy", name)
                   : evd_error_set_errno(err, r, "%s: cannot write the archive copy", name);
}

/* ---- public ---- */

int evd_media_probe(int fd, const char *name, const EvdMediaOptions *opts, EvdMediaInfo *ret, EvdError *err)
{
        _cleanup_(media_input_done) MediaInput in = {0};
        EvdMediaInfo info = {.duration_us = -1};
        uint64_t size;
        MediaKind kind;
        int r;

        name = name ?: "(media)";
        r = media_sniff(fd, name, &size, &kind, err);
        if (r < 0)
                return r;

        if (kind == KIND_JPEG) {
                _cleanup_free_ uint8_t *buf = NULL;
                JpegLayout lay;
                r = jpeg_load_parsed(fd, name, size, &buf, &lay, err);
                if (r < 0)
                        return r;
                info.method = EVD_METHOD_PHOTO;
                snprintf(info.container, sizeof(info.container), "jpeg");
                info.n_streams = 1;
                info.streams[0] =
                    (EvdMediaStream){.index = 0, .type = "image", .codec_name = "mjpeg", .carried = true};
                *ret = info;
                return 0;
        }

        r = media_input_open(&in, fd, name, kind, size, options_deadline(opts), NULL, err);
        if (r < 0)
                return r;
        snprintf(info.container, sizeof(info.container), "%s", kind == KIND_MP4 ? "mp4" : "matroska");
        bool video = false, audio = false;
        for (unsigned i = 0; i < in.ic->nb_streams; i++) {
                EvdMediaStream *s = &info.streams[info.n_streams++];
                stream_describe(in.ic->streams[i], i, s);
                if (s->carried) {
                        video |= in.ic->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO;
                        audio |= in.ic->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO;
                }
        }
        if (!video && !audio)
                return evd_error_set(err, -EMEDIUMTYPE, "%s: no video or audio stream that can be archived",
                                     name);
        info.method = video ? EVD_METHOD_VIDEO : EVD_METHOD_AUDIO;
        if (in.ic->duration != AV_NOPTS_VALUE && in.ic->duration >= 0)
                info.duration_us = in.ic->duration;
        *ret = info;
        return 0;
}

int evd_media_packets_digest(int fd, const char *name, const EvdMediaOptions *opts, uint8_t ret_digest[32],
                             uint64_t *ret_packets, EvdError *err)
{
        uint64_t size;
        MediaKind kind;
        int r;

        name = name ?: "(media)";
        r = media_sniff(fd, name, &size, &kind, err);
        if (r < 0)
                return r;
        if (kind == KIND_JPEG) {
                _cleanup_free_ uint8_t *buf = NULL;
                JpegLayout lay;
                r = jpeg_load_parsed(fd, name, size, &buf, &lay, err);
                if (r < 0)
                        return r;
                r = jpeg_digest(buf, (size_t)size, &lay, ret_digest);
                if (r < 0)
                        return evd_error_set(err, r, "%s: hashing failed", name);
                if (ret_packets)
                        *ret_packets = 1;
                return 0;
        }
        return av_packets_digest(fd, name, kind, size, options_deadline(opts), ret_digest, ret_packets, err);
}

/* ---- a source still being written (EvdMediaGrowing) ---- */

/* The kind of a growing source, from its first bytes once the copy has written them: MP4 only. */
static int growing_sniff(int fd, const char *name, const EvdMediaGrowing *g, uint64_t deadline,
                         EvdError *err)
{
        uint8_t head[12];
        FdIO io = {.fd = fd, .size = g->size, .deadline = deadline, .growing = g};
        size_t got = 0;
        if (g->ahead_offset > g->size || (g->ahead_offset < g->size && g->ahead_fd < 0) || !g->wait ||
            !g->final_sha256)
                return evd_error_set(err, -EINVAL, "%s: invalid arguments", name);
        while (got < sizeof(head)) {
                int k = fdio_read(&io, head + got, (int)(sizeof(head) - got));
                if (k < 0) {
                        int r = k == AVERROR_EOF ? -EBADMSG : map_averror(k, &io);
                        return evd_error_set(err, r, "%s: cannot read its first bytes while it is copied%s",
                                             name, r == -ETIMEDOUT ? ": deadline passed" : "");
                }
                got += (size_t)k;
        }
        if (memcmp(head + 4, "ftyp", 4) != 0 && memcmp(head + 4, "moov", 4) != 0 &&
            memcmp(head + 4, "mdat", 4) != 0 && memcmp(head + 4, "free", 4) != 0 &&
            memcmp(head + 4, "skip", 4) != 0 && memcmp(head + 4, "wide", 4) != 0)
                return evd_error_set(err, -EMEDIUMTYPE,
                                     "%s: only an MP4/M4A/MOV file is archived while it is copied", name);
        return 0;
}

typedef struct DictAdder {
        AVDictionary **dict;
} DictAdder;

static int dict_add_tag(void *userdata, const char *key, const char *value)
{
        DictAdder *d = userdata;
        return av_dict_set(d->dict, key, value, 0) < 0 ? -ENOMEM : 0;
}

static int mux_add_attachment(AVFormatContext *oc, const EvdArchiveAttachment *a)
{
        AVStream *st = avformat_new_stream(oc, NULL);
        if (!st)
                return -ENOMEM;
        st->codecpar->codec_type = AVMEDIA_TYPE_ATTACHMENT;
        st->codecpar->extradata = av_mallocz(a->size + AV_INPUT_BUFFER_PADDING_SIZE);
        if (!st->codecpar->extradata)
                return -ENOMEM;
        memcpy(st->codecpar->extradata, a->data, a->size);
        st->codecpar->extradata_size = (int)a->size;
        if (av_dict_set(&st->metadata, "filename", a->filename, 0) < 0 ||
            av_dict_set(&st->metadata, "mimetype", a->mimetype, 0) < 0)
                return -ENOMEM;
        return 0;
}

static void writeback_stopp(EvdWriteback **w)
{
        evd_writeback_stop(*w, NULL);
        *w = NULL;
}

int evd_media_archive(int src_fd, const char *src_name, const EvdArchiveTags *tags,
                      const EvdArchiveAttachment *atts, size_t n_atts, const EvdMediaOptions *opts,
                      int out_fd, EvdArchiveResult *ret, EvdError *err)
{
        /* stopped after the muxer and its I/O context are gone (cleanups run in reverse order) */
        _cleanup_(writeback_stopp) EvdWriteback *writeback = NULL;
        _cleanup_(media_input_done) MediaInput in = {0};
        _cleanup_(packet_digest_done) PacketDigest pd = {0};
        _cleanup_(output_context_freep) AVFormatContext *oc = NULL;
        _cleanup_(avio_context_freep) AVIOContext *opb = NULL;
        FdIO out = {.fd = out_fd};
        EvdArchiveResult res = {0};
        const char *name = src_name ?: "(media)";
        uint64_t size, deadline = options_deadline(opts);
        MediaKind kind;
        char buf[128];
        int r;

        const EvdMediaGrowing *growing = opts ? opts->growing : NULL;
        if (!tags || !ret || src_fd < 0 || out_fd < 0)
                return evd_error_set(err, -EINVAL, "%s: invalid arguments", name);
        r = tags_validate(tags, atts, n_atts, name, err);
        if (r < 0)
                return r;
        if (growing) {
                r = growing_sniff(src_fd, name, growing, deadline, err);
                size = growing->size;
                kind = KIND_MP4;
        } else
                r = media_sniff(src_fd, name, &size, &kind, err);
        if (r < 0)
                return r;

        if (kind == KIND_JPEG) {
                r = jpeg_archive(src_fd, name, size, tags, atts, n_atts, deadline, out_fd, &res, err);
                if (r >= 0 && opts && opts->progress)
                        opts->progress(size, size, opts->progress_userdata);
        } else {
                r = media_input_open(&in, src_fd, name, kind, size, deadline, growing, err);
                if (r < 0)
                        return r;
                r = packet_digest_init(&pd, &in, name, err);
                if (r < 0)
                        return r;

                Muxer mux = {.io = &out, .opts = opts};
                bool video = false;
                for (unsigned i = 0; i < in.ic->nb_streams; i++) {
                        if (pd.slot_of[i] >= 0)
                                video |= in.ic->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO;
                        else
                                stream_describe(in.ic->streams[i], i, &res.not_carried[res.n_not_carried++]);
                }
                res.format = video ? EVD_ARCHIVE_MKV : EVD_ARCHIVE_MKA;
                res.method = video ? EVD_METHOD_VIDEO : EVD_METHOD_AUDIO;

                r = avformat_alloc_output_context2(&oc, matroska_muxer(), NULL, NULL);
                if (r < 0 || !oc)
                        return evd_error_set(err, -ENOMEM, "%s: cannot set up the Matroska muxer", name);
                out.deadline = deadline;
                out.writeback = writeback = evd_writeback_new(out_fd);
                r = fdio_context_new(&out, true, &opb);
                if (r < 0)
                        return evd_error_set(err, r, "%s: out of memory", name);
                oc->pb = opb;
                /* Bit-exact: no muxing-app version, date or random UIDs, so the same input gives the
                 * same bytes. */
                oc->flags |= AVFMT_FLAG_BITEXACT | AVFMT_FLAG_CUSTOM_IO;
                oc->max_interleave_delta = EVD_MEDIA_INTERLEAVE_USEC;
                oc->interrupt_callback = (AVIOInterruptCB){fdio_interrupt, &out};

                for (unsigned slot = 0; slot < pd.n; slot++) {
                        AVStream *ist = in.ic->streams[pd.streams[slot].input_index];
                        AVStream *ost = avformat_new_stream(oc, NULL);
                        if (!ost || avcodec_parameters_copy(ost->codecpar, ist->codecpar) < 0)
                                return evd_error_set(err, -ENOMEM, "%s: out of memory", name);
                        ost->codecpar->codec_tag = 0; /* the MP4 fourcc means nothing to Matroska */
                        ost->time_base = ist->time_base;
                        ost->disposition = ist->disposition & AV_DISPOSITION_DEFAULT;
                        /* Source metadata is not copied (it would leak recorder-chosen text into the
                         * archive) except the track language, which players need. */
                        AVDictionaryEntry *lang = av_dict_get(ist->metadata, "language", NULL, 0);
                        if (lang && tag_text_valid(lang->value) && strlen(lang->value) <= 8 &&
                            av_dict_set(&ost->metadata, "language", lang->value, 0) < 0)
                                return evd_error_set(err, -ENOMEM, "%s: out of memory", name);
                        mux.out_index[slot] = ost->index;
                }
                for (size_t i = 0; i < n_atts; i++)
                        if (mux_add_attachment(oc, &atts[i]) < 0)
                                return evd_error_set(err, -ENOMEM, "%s: out of memory", name);

                char not_carried[EVD_MEDIA_MAX_TAG_BYTES];
                not_carried_describe(res.not_carried, res.n_not_carried, not_carried, sizeof(not_carried));
                r = tags_foreach(tags, res.method, not_carried, dict_add_tag, &(DictAdder){&oc->metadata});
                if (r < 0)
                        return evd_error_set(err, r, "%s: out of memory", name);

                r = avformat_write_header(oc, NULL);
                if (r < 0) {
                        r = map_averror(r, &out);
                        return evd_error_set(err, r, "%s: cannot start the Matroska archive copy: %s", name,
                                             out.io_errno ? strerror(out.io_errno)
                                                          : averror_text(r, buf, sizeof(buf)));
                }
                mux.oc = oc;
                r = evd_batch_queue_start(&hash_queue_limits, hash_queue_packet, &pd, &mux.hashes);
                if (r < 0)
                        return evd_error_set(err, r, "%s: cannot start the hashing thread", name);
                r = demux_all(&in, &pd, &mux, name, err);
                /* before anything the thread uses goes away */
                int hr = evd_batch_queue_finish(mux.hashes, NULL);
                mux.hashes = NULL;
                if (r < 0)
                        return r;
                if (hr < 0)
                        return evd_error_set(err, hr, "%s: hashing failed", name);
                r = av_write_trailer(oc);
                if (r >= 0)
                        avio_flush(opb);
                if (r < 0 || opb->error < 0 || out.io_errno || out.timed_out) {
                        r = map_averror(r < 0 ? r : opb->error, &out);
                        return evd_error_set(err, r, "%s: cannot finish the archive copy: %s", name,
                                             out.io_errno ? strerror(out.io_errno)
                                                          : averror_text(r, buf, sizeof(buf)));
                }
                r = packet_digest_finish(&pd, name, res.packets_sha256, err);
                if (r < 0)
                        return r;
                if (growing) {
                        char hex[65];
                        r = growing->final_sha256(growing->userdata, hex, deadline);
                        if (r < 0)
                                return evd_error_set_errno(err, r,
                                                           "%s: the copy of the original did not end", name);
                        hex[64] = 0;
                        uint8_t sha[32];
                        if (evd_unhex(hex, sha, sizeof(sha)) < 0)
                                return evd_error_set(
                                    err, -EINVAL, "%s: the original's SHA-256 is not 64 hex digits", name);
                        r = evd_mkv_patch_text(out.fd, out.size, tags->original_sha256, hex, name, err);
                        if (r < 0)
                                return r;
                }
                mux_progress(&mux, &in.io, true);
                res.packets = pd.total;
                res.bytes_written = out.size;
        }
        if (r < 0)
                return r;

        if (opts && opts->verify_output) {
                uint8_t digest[32];
                uint64_t packets;
                EvdMediaOptions vopts = {.deadline_usec = deadline};
                r = evd_media_packets_digest(out_fd, name, &vopts, digest, &packets, err);
                if (r < 0) {
                        evd_error_prefix(err, "archive copy of ");
                        return r;
                }
                if (packets != res.packets || memcmp(digest, res.packets_sha256, sizeof(digest)) != 0)
                        return evd_error_set(err, -EBADMSG,
                                             "%s: the archive copy's packets differ from the original's "
                                             "(%" PRIu64 " vs %" PRIu64 " packets)",
                                             name, packets, res.packets);
                res.output_verified = true;
        }
        *ret = res;
        return 0;
}
