/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The media worker's side of the session (media-worker.h): evidock-media-worker serves the requests of one
 * docking. It runs evd_media_archive() (media.h), so it is linked with FFmpeg: it lives in evd_media, the
 * static library of evidock-media-worker and of the tests, never in libevidock (evidockd and evidockctl
 * do not load FFmpeg). */
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "clock.h"
#include "media-wire.h"
#include "media-worker-serve.h"

static int write_all(int fd, const uint8_t *p, size_t n)
{
        while (n > 0) {
                ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
                if (k < 0 && errno == ENOTSOCK)
                        k = write(fd, p, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EAGAIN) {
                        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
                        (void)poll(&pfd, 1, -1);
                        continue;
                }
                if (k < 0)
                        return -errno;
                p += k;
                n -= (size_t)k;
        }
        return 0;
}

static void close_fds(int *fds, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (fds[i] >= 0)
                        close(fds[i]);
}

/* One request frame: its header with the descriptors that ride on it (2, or 3 for a growing source;
 * more are closed and make the request malformed), then its body. Returns 1, 0 at a clean end of the
 * channel (the session is over), or a negative errno. */
static int recv_request(int fd, Buf *b, int fds[3], size_t *ret_n_fds)
{
        uint8_t hdr[FRAME_HEADER];
        size_t got = 0, n_fds = 0;
        bool bad_fds = false;
        while (got < FRAME_HEADER) {
                union {
                        struct cmsghdr align;
                        char buf[CMSG_SPACE(4 * sizeof(int))];
                } cbuf;
                struct iovec iov = {.iov_base = hdr + got, .iov_len = FRAME_HEADER - got};
                struct msghdr mh = {.msg_iov = &iov,
                                    .msg_iovlen = 1,
                                    .msg_control = cbuf.buf,
                                    .msg_controllen = sizeof(cbuf.buf)};
                ssize_t k = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        close_fds(fds, n_fds);
                        return -errno;
                }
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                                continue;
                        size_t m = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        for (size_t i = 0; i < m; i++) {
                                int x;
                                memcpy(&x, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                                if (n_fds < 3)
                                        fds[n_fds++] = x;
                                else {
                                        close(x);
                                        bad_fds = true;
                                }
                        }
                }
                if (mh.msg_flags & MSG_CTRUNC)
                        bad_fds = true;
                if (k == 0) {
                        close_fds(fds, n_fds);
                        return got == 0 && !bad_fds ? 0 : -EPROTO;
                }
                got += (size_t)k;
        }
        *ret_n_fds = n_fds;
        if (bad_fds || n_fds < 2)
                return close_fds(fds, n_fds), -EPROTO;
        uint32_t n = be32(hdr);
        if (n > b->max)
                return close_fds(fds, n_fds), -E2BIG;
        uint8_t *d = malloc(MAX((size_t)n, (size_t)1));
        if (!d)
                return close_fds(fds, n_fds), -ENOMEM;
        free(b->data);
        b->data = d;
        b->cap = n;
        b->len = 0;
        while (b->len < n) {
                ssize_t k = read(fd, b->data + b->len, n - b->len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return close_fds(fds, n_fds), k < 0 ? -errno : -EPROTO;
                b->len += (size_t)k;
        }
        return 1;
}

/* Puts a job's descriptors where the worker keeps them (EVD_MEDIA_WORKER_FD_SOURCE/_OUTPUT/_AHEAD). */
static int place_fds(int fds[3], size_t n)
{
        static const int target[3] = {EVD_MEDIA_WORKER_FD_SOURCE, EVD_MEDIA_WORKER_FD_OUTPUT,
                                      EVD_MEDIA_WORKER_FD_AHEAD};
        int high[3] = {-1, -1, -1};
        for (size_t i = 0; i < n; i++) {
                high[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 10);
                if (high[i] < 0) {
                        int e = -errno;
                        close_fds(high, n);
                        close_fds(fds, n);
                        return e;
                }
        }
        close_fds(fds, n);
        int r = 0;
        for (size_t i = 0; i < n && r == 0; i++)
                if (dup3(high[i], target[i], O_CLOEXEC) < 0)
                        r = -errno;
        close_fds(high, n);
        return r;
}

/* The worker's side of a growing source: the original's size as it grows (fstat of the source) and the
 * parent's "copy done" frame on the channel, read while the job waits for bytes or for the hash. */
typedef struct WorkerGrowing {
        int chan;
        uint64_t size;
        bool done;
        char hex[65];
} WorkerGrowing;

#define GROWING_POLL_MS 2 /* the copy writes 1 MiB chunks: ~2 ms each at 500 MB/s */

static int growing_recv_done(WorkerGrowing *w)
{
        uint8_t f[FRAME_HEADER + DONE_BODY];
        size_t got = 0;
        while (got < sizeof(f)) {
                ssize_t k = read(w->chan, f + got, sizeof(f) - got);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return k < 0 ? -errno : -EPIPE; /* the caller gave the job up */
                got += (size_t)k;
        }
        if (be32(f) != DONE_BODY || memcmp(f + FRAME_HEADER, DONE_MAGIC, MAGIC_BYTES) != 0)
                return -EPROTO;
        Reader r = {.p = f + FRAME_HEADER + MAGIC_BYTES, .len = 8};
        if (get_u64(&r) != w->size)
                return -EPROTO;
        const uint8_t *hex = f + FRAME_HEADER + MAGIC_BYTES + 8;
        for (unsigned i = 0; i < 64; i++)
                if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
                        return -EPROTO;
        memcpy(w->hex, hex, 64);
        w->hex[64] = 0;
        w->done = true;
        return 0;
}

/* Waits on the channel up to GROWING_POLL_MS (or the deadline) and takes the "copy done" frame. */
static int growing_poll(WorkerGrowing *w, uint64_t deadline)
{
        uint64_t now = evd_clock_monotonic_us();
        if (now >= deadline)
                return -ETIMEDOUT;
        struct pollfd pfd = {.fd = w->chan, .events = POLLIN};
        int n = poll(&pfd, 1, (int)MIN((deadline - now + 999) / 1000, (uint64_t)GROWING_POLL_MS));
        if (n < 0 && errno != EINTR)
                return -errno;
        return n > 0 ? growing_recv_done(w) : 0;
}

static int64_t growing_wait(void *userdata, uint64_t end, uint64_t deadline)
{
        WorkerGrowing *w = userdata;
        for (;;) {
                struct stat st;
                if (fstat(EVD_MEDIA_WORKER_FD_SOURCE, &st) < 0)
                        return -errno;
                uint64_t have = MIN((uint64_t)st.st_size, w->size);
                if (have >= end)
                        return (int64_t)have;
                if (w->done)
                        return -ENODATA; /* the copy ended shorter than it said */
                int r = growing_poll(w, deadline);
                if (r < 0)
                        return r;
        }
}

static int growing_final_sha256(void *userdata, char ret_hex[65], uint64_t deadline)
{
        WorkerGrowing *w = userdata;
        while (!w->done) {
                int r = growing_poll(w, deadline);
                if (r < 0)
                        return r;
        }
        memcpy(ret_hex, w->hex, sizeof(w->hex));
        return 0;
}

static void worker_progress(uint64_t done, uint64_t total, void *userdata)
{
        int fd = *(const int *)userdata;
        uint8_t f[FRAME_HEADER + PROGRESS_BODY];
        Buf b = {.data = f, .cap = sizeof(f), .max = sizeof(f)};
        size_t start = frame_begin(&b);
        buf_put(&b, PROGRESS_MAGIC, MAGIC_BYTES);
        put_u64(&b, done);
        put_u64(&b, total);
        frame_end(&b, start);
        /* progress is best effort: a full channel drops it; a frame is never cut in half */
        ssize_t k = send(fd, f, b.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0 && (size_t)k < b.len)
                (void)write_all(fd, f + k, b.len - (size_t)k);
}

/* Serves one decoded request (its descriptors at EVD_MEDIA_WORKER_FD_SOURCE/_OUTPUT) and replies. */
static int serve_one(int channel_fd, const Buf *req, size_t n_fds, EvdMediaWorkerHook hook, void *userdata)
{
        _cleanup_free_ char *arena = malloc(req->len + REQUEST_MAX_FIELDS + 1);
        if (!arena)
                return -ENOMEM;
        Reader rd = {
            .p = req->data, .len = req->len, .arena = arena, .arena_len = req->len + REQUEST_MAX_FIELDS + 1};
        const uint8_t *magic = get_raw(&rd, MAGIC_BYTES);
        if (!magic || memcmp(magic, REQUEST_MAGIC, MAGIC_BYTES) != 0)
                return -EPROTO;
        int chan = channel_fd;
        EvdMediaOptions mo = {
            .deadline_usec = get_u64(&rd), .progress = worker_progress, .progress_userdata = &chan};
        mo.verify_output = get_u8(&rd) != 0;
        const char *name = get_str(&rd, TEXT_MAX);
        EvdArchiveTags tags = {.case_number = get_str(&rd, TEXT_MAX)};
        uint32_t method = get_u32(&rd);
        tags.method = method < _EVD_METHOD_MAX ? (EvdMethod)method : EVD_METHOD_UNKNOWN;
        tags.recorded_start = get_str(&rd, TEXT_MAX);
        tags.recorded_end = get_str(&rd, TEXT_MAX);
        tags.maker = get_str(&rd, TEXT_MAX);
        tags.device_id = get_str(&rd, TEXT_MAX);
        tags.original_sha256 = get_str(&rd, TEXT_MAX);
        tags.original_name = get_str(&rd, TEXT_MAX);
        tags.confidentiality = get_str(&rd, TEXT_MAX);
        EvdArchiveTag extra[EVD_MEDIA_MAX_EXTRA_TAGS];
        uint32_t n_extra = get_u32(&rd);
        if (n_extra > EVD_MEDIA_MAX_EXTRA_TAGS)
                return -EPROTO;
        for (uint32_t i = 0; i < n_extra; i++) {
                extra[i].key = get_str(&rd, TEXT_MAX);
                extra[i].value = get_str(&rd, TEXT_MAX);
        }
        tags.extra = n_extra ? extra : NULL;
        tags.n_extra = n_extra;
        EvdArchiveAttachment atts[EVD_MEDIA_MAX_ATTACHMENTS];
        uint32_t n_atts = get_u32(&rd);
        if (n_atts > EVD_MEDIA_MAX_ATTACHMENTS)
                return -EPROTO;
        for (uint32_t i = 0; i < n_atts; i++) {
                atts[i].filename = get_str(&rd, TEXT_MAX);
                atts[i].mimetype = get_str(&rd, TEXT_MAX);
                const uint8_t *p;
                size_t n;
                get_field(&rd, EVD_MEDIA_WORKER_MAX_FIELD_BYTES, &p, &n);
                atts[i].data = p;
                atts[i].size = n;
        }
        WorkerGrowing wg = {.chan = channel_fd};
        EvdMediaGrowing growing = {.ahead_fd = EVD_MEDIA_WORKER_FD_AHEAD,
                                   .wait = growing_wait,
                                   .final_sha256 = growing_final_sha256,
                                   .userdata = &wg};
        if (get_u8(&rd)) {
                growing.size = wg.size = get_u64(&rd);
                growing.ahead_offset = get_u64(&rd);
                if (n_fds != 3 || growing.ahead_offset > growing.size)
                        return -EPROTO;
                mo.growing = &growing;
        } else if (n_fds != 2)
                return -EPROTO;
        if (rd.bad || rd.off != rd.len)
                return -EPROTO;

        if (hook)
                hook(name ? name : "(media)", userdata);

        EvdArchiveResult res = {};
        EvdError e = {};
        int r = evd_media_archive(EVD_MEDIA_WORKER_FD_SOURCE, name, &tags, atts, n_atts, &mo,
                                  EVD_MEDIA_WORKER_FD_OUTPUT, &res, &e);

        _cleanup_(buf_done) Buf rep = {.max = FRAME_HEADER + EVD_MEDIA_WORKER_MAX_REPLY_BYTES};
        size_t frame = frame_begin(&rep);
        buf_put(&rep, REPLY_MAGIC, MAGIC_BYTES);
        put_u32(&rep, (uint32_t)(int32_t)MIN(r, 0));
        put_str(&rep, r < 0 ? evd_error_message(&e, r) : "");
        if (r >= 0) {
                put_u32(&rep, (uint32_t)res.format);
                put_u32(&rep, (uint32_t)res.method);
                put_u64(&rep, res.packets);
                buf_put(&rep, res.packets_sha256, sizeof(res.packets_sha256));
                put_u64(&rep, res.bytes_written);
                put_u8(&rep, res.output_verified);
                put_u32(&rep, MIN(res.n_not_carried, EVD_MEDIA_MAX_STREAMS));
                for (unsigned i = 0; i < MIN(res.n_not_carried, EVD_MEDIA_MAX_STREAMS); i++) {
                        const EvdMediaStream *s = &res.not_carried[i];
                        put_u32(&rep, s->index);
                        put_str(&rep, s->type);
                        put_str(&rep, s->codec_tag);
                        put_str(&rep, s->codec_name);
                        put_u8(&rep, s->carried);
                }
        }
        frame_end(&rep, frame);
        if (rep.error)
                return rep.error;
        return write_all(channel_fd, rep.data, rep.len);
}

int evd_media_worker_serve(int channel_fd, EvdMediaWorkerHook hook, void *userdata)
{
        for (;;) {
                _cleanup_(buf_done) Buf req = {.max = EVD_MEDIA_WORKER_MAX_REQUEST_BYTES};
                int fds[3] = {-1, -1, -1};
                size_t n_fds = 0;
                int r = recv_request(channel_fd, &req, fds, &n_fds);
                if (r <= 0)
                        return r;
                r = place_fds(fds, n_fds);
                if (r >= 0)
                        r = serve_one(channel_fd, &req, n_fds, hook, userdata);
                (void)close(EVD_MEDIA_WORKER_FD_SOURCE);
                (void)close(EVD_MEDIA_WORKER_FD_OUTPUT);
                if (n_fds == 3)
                        (void)close(EVD_MEDIA_WORKER_FD_AHEAD);
                if (r < 0)
                        return r;
        }
}
