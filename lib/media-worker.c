/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evd_media_archive() in a child process: see media-worker.h for why, and for the message encoding. */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "clock.h"
#include "media-worker.h"

#ifndef EVD_LIBEXECDIR
#error "EVD_LIBEXECDIR must be defined by the build"
#endif

#define REQUEST_MAGIC "EVDMWQ01"
#define REPLY_MAGIC   "EVDMWR01"
#define MAGIC_BYTES   8u
#define STR_NULL      UINT32_MAX
#define TEXT_MAX      4096u /* a name or tag value in a message; media.c bounds tag values further */
#define MESSAGE_MAX   (sizeof(((EvdError *)0)->msg) - 1)
/* strings in a request: 10 named + key/value per extra tag + 3 per attachment */
#define REQUEST_MAX_FIELDS (10u + 2u * EVD_MEDIA_MAX_EXTRA_TAGS + 3u * EVD_MEDIA_MAX_ATTACHMENTS)

extern char **environ;

/* ---- encoding ------------------------------------------------------------------------------------ */

typedef struct Buf {
        uint8_t *data;
        size_t len, cap;
        size_t max; /* the bound of this message */
        int error;  /* first failure: -E2BIG past max, -ENOMEM */
} Buf;

static void buf_done(Buf *b)
{
        free(b->data);
        b->data = NULL;
}

static void buf_put(Buf *b, const void *p, size_t n)
{
        if (b->error)
                return;
        if (n > b->max - b->len) {
                b->error = -E2BIG;
                return;
        }
        if (n > b->cap - b->len) {
                size_t cap = MAX(b->cap, (size_t)4096);
                while (cap - b->len < n)
                        cap *= 2;
                cap = MIN(cap, b->max);
                uint8_t *d = realloc(b->data, cap);
                if (!d) {
                        b->error = -ENOMEM;
                        return;
                }
                b->data = d;
                b->cap = cap;
        }
        if (n)
                memcpy(b->data + b->len, p, n);
        b->len += n;
}

static void put_u8(Buf *b, uint8_t v)
{
        buf_put(b, &v, 1);
}

static void put_u32(Buf *b, uint32_t v)
{
        uint8_t x[4] = {v >> 24, v >> 16, v >> 8, v};
        buf_put(b, x, sizeof(x));
}

static void put_u64(Buf *b, uint64_t v)
{
        put_u32(b, (uint32_t)(v >> 32));
        put_u32(b, (uint32_t)v);
}

static void put_bytes(Buf *b, const void *p, size_t n, size_t max)
{
        if (n > max) {
                if (!b->error)
                        b->error = -E2BIG;
                return;
        }
        put_u32(b, (uint32_t)n);
        buf_put(b, p, n);
}

static void put_str(Buf *b, const char *s)
{
        if (!s) {
                put_u32(b, STR_NULL);
                return;
        }
        put_bytes(b, s, strlen(s), TEXT_MAX);
}

typedef struct Reader {
        const uint8_t *p;
        size_t len, off;
        bool bad;
        /* strings are copied here, NUL-terminated; NULL: get_str() writes into caller buffers only */
        char *arena;
        size_t arena_len, arena_off;
} Reader;

static const uint8_t *get_raw(Reader *r, size_t n)
{
        if (r->bad || n > r->len - r->off) {
                r->bad = true;
                return NULL;
        }
        const uint8_t *p = r->p + r->off;
        r->off += n;
        return p;
}

static uint8_t get_u8(Reader *r)
{
        const uint8_t *p = get_raw(r, 1);
        return p ? p[0] : 0;
}

static uint32_t get_u32(Reader *r)
{
        const uint8_t *p = get_raw(r, 4);
        return p ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3] : 0;
}

static uint64_t get_u64(Reader *r)
{
        uint64_t hi = get_u32(r);
        return hi << 32 | get_u32(r);
}

/* A length-prefixed field: *ret_p points into the message, NULL for the NULL marker. */
static void get_field(Reader *r, size_t max, const uint8_t **ret_p, size_t *ret_n)
{
        uint32_t n = get_u32(r);
        *ret_p = NULL;
        *ret_n = 0;
        if (r->bad || n == STR_NULL)
                return;
        if (n > max) {
                r->bad = true;
                return;
        }
        *ret_p = get_raw(r, n);
        *ret_n = n;
}

/* A string copied into the arena (or NULL); a string holding NUL is malformed. */
static const char *get_str(Reader *r, size_t max)
{
        const uint8_t *p;
        size_t n;
        get_field(r, max, &p, &n);
        if (!p)
                return NULL;
        if (memchr(p, 0, n) || n + 1 > r->arena_len - r->arena_off) {
                r->bad = true;
                return NULL;
        }
        char *s = r->arena + r->arena_off;
        memcpy(s, p, n);
        s[n] = 0;
        r->arena_off += n + 1;
        return s;
}

/* A string into a fixed array; too long, NULL or holding NUL is malformed. */
static void get_str_into(Reader *r, char *dst, size_t size)
{
        const uint8_t *p;
        size_t n;
        get_field(r, size - 1, &p, &n);
        if (!p || memchr(p, 0, n)) {
                r->bad = true;
                dst[0] = 0;
                return;
        }
        memcpy(dst, p, n);
        dst[n] = 0;
}

/* ---- the parent's side --------------------------------------------------------------------------- */

const char *evd_media_worker_default_path(void)
{
        const char *p = secure_getenv(EVD_MEDIA_WORKER_ENV);
        if (p && p[0])
                return p;
        return EVD_LIBEXECDIR "/" EVD_MEDIA_WORKER_NAME;
}

static int request_encode(Buf *b, const char *name, const EvdArchiveTags *t,
                          const EvdArchiveAttachment *atts, size_t n_atts, uint64_t deadline,
                          bool verify_output, EvdError *err)
{
        if (t->n_extra > EVD_MEDIA_MAX_EXTRA_TAGS || (t->n_extra && !t->extra))
                return evd_error_set(err, t->n_extra ? -E2BIG : -EINVAL, "%s: more than %u extra tags", name,
                                     EVD_MEDIA_MAX_EXTRA_TAGS);
        if (n_atts > EVD_MEDIA_MAX_ATTACHMENTS || (n_atts && !atts))
                return evd_error_set(err, n_atts ? -E2BIG : -EINVAL, "%s: more than %u attachments", name,
                                     EVD_MEDIA_MAX_ATTACHMENTS);
        buf_put(b, REQUEST_MAGIC, MAGIC_BYTES);
        put_u64(b, deadline);
        put_u8(b, verify_output);
        put_str(b, name);
        put_str(b, t->case_number);
        put_u32(b, (uint32_t)t->method);
        put_str(b, t->recorded_start);
        put_str(b, t->recorded_end);
        put_str(b, t->maker);
        put_str(b, t->device_id);
        put_str(b, t->original_sha256);
        put_str(b, t->original_name);
        put_str(b, t->confidentiality);
        put_u32(b, (uint32_t)t->n_extra);
        for (size_t i = 0; i < t->n_extra; i++) {
                put_str(b, t->extra[i].key);
                put_str(b, t->extra[i].value);
        }
        put_u32(b, (uint32_t)n_atts);
        for (size_t i = 0; i < n_atts; i++) {
                put_str(b, atts[i].filename);
                put_str(b, atts[i].mimetype);
                if (!atts[i].data && atts[i].size)
                        return evd_error_set(err, -EINVAL, "%s: attachment %zu has no data", name, i);
                put_bytes(b, atts[i].data, atts[i].size, EVD_MEDIA_WORKER_MAX_FIELD_BYTES);
        }
        if (b->error == -E2BIG)
                return evd_error_set(err, -E2BIG,
                                     "%s: a tag or attachment is larger than the media worker takes "
                                     "(%u bytes per tag, %u per attachment)",
                                     name, TEXT_MAX, EVD_MEDIA_WORKER_MAX_FIELD_BYTES);
        return b->error;
}

/* The worker reads the evidence through a new read-only open file description, so that whatever the
 * demuxer does, it cannot write to the original (the caller's fd is usually an O_RDWR temporary file). */
static int reopen_read_only(int fd)
{
        char proc[64];
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        int ro = open(proc, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (ro >= 0)
                return ro;
        evd_debug("cannot reopen fd %d read-only (%s): the media worker gets the caller's descriptor", fd,
                  strerror(errno));
        ro = fcntl(fd, F_DUPFD_CLOEXEC, 10);
        return ro >= 0 ? ro : -errno;
}

static int spawn_worker(const char *path, int chan, int src_ro, int out_fd, pid_t *ret_pid)
{
        /* Descriptors go to fixed numbers 0, 3, 4: first lift them above those numbers so that no dup2
         * in the child overwrites a descriptor a later dup2 still needs. */
        _cleanup_close_ int hchan = fcntl(chan, F_DUPFD_CLOEXEC, 10);
        _cleanup_close_ int hsrc = fcntl(src_ro, F_DUPFD_CLOEXEC, 10);
        _cleanup_close_ int hout = fcntl(out_fd, F_DUPFD_CLOEXEC, 10);
        if (hchan < 0 || hsrc < 0 || hout < 0)
                return -errno;

        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        int r = posix_spawn_file_actions_init(&fa);
        if (r != 0)
                return -r;
        r = posix_spawnattr_init(&attr);
        if (r != 0) {
                posix_spawn_file_actions_destroy(&fa);
                return -r;
        }
        sigset_t none, all;
        sigemptyset(&none);
        sigfillset(&all);
        char ppid[24];
        snprintf(ppid, sizeof(ppid), "%d", (int)getpid());
        char *argv[] = {(char *)path, (char *)"--serve", ppid, NULL};
        pid_t pid = 0;
        if ((r = posix_spawn_file_actions_adddup2(&fa, hchan, EVD_MEDIA_WORKER_FD_CHANNEL)) == 0 &&
            (r = posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0)) == 0 &&
            (r = posix_spawn_file_actions_adddup2(&fa, hsrc, EVD_MEDIA_WORKER_FD_SOURCE)) == 0 &&
            (r = posix_spawn_file_actions_adddup2(&fa, hout, EVD_MEDIA_WORKER_FD_OUTPUT)) == 0 &&
            (r = posix_spawn_file_actions_addclosefrom_np(&fa, EVD_MEDIA_WORKER_FD_OUTPUT + 1)) == 0 &&
            /* its own process group: a Ctrl-C on the caller's terminal is not a media crash */
            (r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                                     POSIX_SPAWN_SETPGROUP)) == 0 &&
            (r = posix_spawnattr_setpgroup(&attr, 0)) == 0 &&
            (r = posix_spawnattr_setsigmask(&attr, &none)) == 0 &&
            (r = posix_spawnattr_setsigdefault(&attr, &all)) == 0)
                r = posix_spawn(&pid, path, &fa, &attr, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        if (r != 0)
                return -r;
        *ret_pid = pid;
        return 0;
}

static int pidfd_open_nofail(pid_t pid)
{
#ifdef SYS_pidfd_open
        return (int)syscall(SYS_pidfd_open, pid, 0);
#else
        return -1;
#endif
}

static uint64_t ms_until(uint64_t now, uint64_t then)
{
        return then > now ? (then - now + 999) / 1000 : 0;
}

typedef struct Exchange {
        int status;     /* waitpid status */
        bool killed;    /* SIGKILLed by us at the deadline */
        bool cancelled; /* SIGKILLed by us because *cancel was set */
        bool oversized; /* the reply went past its bound */
        uint8_t *reply;
        size_t reply_len;
} Exchange;

#define CANCEL_POLL_MS 100u /* how often a running job looks at *cancel */

/* Sends the request, collects the reply and reaps the worker, killing it at kill_at or when *cancel is
 * set (cancel may be NULL). Always reaps. */
static void worker_exchange(pid_t pid, int chan, const Buf *req, uint64_t kill_at, const atomic_int *cancel,
                            Exchange *x)
{
        _cleanup_close_ int pidfd = pidfd_open_nofail(pid);
        size_t sent = 0;
        bool sending = true, reading = true, exited = false;

        (void)fcntl(chan, F_SETFL, fcntl(chan, F_GETFL) | O_NONBLOCK);
        while (!exited || reading) {
                if (!exited) {
                        pid_t w = waitpid(pid, &x->status, WNOHANG);
                        if (w == pid ||
                            (w < 0 && errno == ECHILD)) { /* ECHILD: SIGCHLD ignored by the program */
                                exited = true;
                                continue;
                        }
                }
                uint64_t now = evd_clock_monotonic_us();
                if (cancel && *cancel) {
                        if (!exited) {
                                (void)kill(pid, SIGKILL);
                                x->cancelled = true;
                        }
                        break;
                }
                if (now >= kill_at) {
                        if (!exited) {
                                (void)kill(pid, SIGKILL);
                                x->killed = true;
                        }
                        break;
                }
                struct pollfd pfd[2] = {
                    {.fd = chan, .events = (short)((reading ? POLLIN : 0) | (sending ? POLLOUT : 0))},
                    {.fd = exited ? -1 : pidfd, .events = POLLIN}};
                uint64_t wait_ms = ms_until(now, kill_at);
                if (pidfd < 0 && !exited)
                        wait_ms = MIN(wait_ms, (uint64_t)20); /* no pidfd: look at the child now and then */
                if (cancel)
                        wait_ms = MIN(wait_ms, (uint64_t)CANCEL_POLL_MS);
                if (!reading && !sending)
                        pfd[0].fd = -1;
                int n = poll(pfd, 2, (int)MIN(wait_ms, (uint64_t)INT_MAX));
                if (n < 0 && errno != EINTR) {
                        (void)kill(pid, SIGKILL);
                        x->killed = true;
                        break;
                }
                if (n <= 0)
                        continue;
                if (sending && (pfd[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
                        ssize_t k =
                            send(chan, req->data + sent, req->len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
                        if (k > 0)
                                sent += (size_t)k;
                        if (k < 0 && errno != EAGAIN && errno != EINTR)
                                sending = false; /* the worker is gone; its exit status says why */
                        else if (sent == req->len) {
                                (void)shutdown(chan, SHUT_WR);
                                sending = false;
                        }
                }
                if (reading && (pfd[0].revents & (POLLIN | POLLERR | POLLHUP))) {
                        ssize_t k = recv(chan, x->reply + x->reply_len,
                                         EVD_MEDIA_WORKER_MAX_REPLY_BYTES + 1 - x->reply_len, MSG_DONTWAIT);
                        if (k > 0) {
                                x->reply_len += (size_t)k;
                                if (x->reply_len > EVD_MEDIA_WORKER_MAX_REPLY_BYTES) {
                                        x->oversized = true;
                                        if (!exited)
                                                (void)kill(pid, SIGKILL);
                                        break;
                                }
                        } else if (k == 0 || (errno != EAGAIN && errno != EINTR))
                                reading = false;
                }
        }
        if (!exited)
                while (waitpid(pid, &x->status, 0) < 0 && errno == EINTR)
                        ;
}

static void sanitize_message(char *s)
{
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        *s = '?';
}

static int reply_decode(const Exchange *x, const char *name, int out_fd, EvdArchiveResult *ret,
                        EvdError *err)
{
        char msg[MESSAGE_MAX + 1];
        Reader r = {.p = x->reply, .len = x->reply_len};
        const uint8_t *magic = get_raw(&r, MAGIC_BYTES);
        if (!magic || memcmp(magic, REPLY_MAGIC, MAGIC_BYTES) != 0)
                return evd_error_set(err, -EBADMSG, "%s: the media worker sent no valid reply (%zu bytes)",
                                     name, x->reply_len);
        int32_t result = (int32_t)get_u32(&r);
        get_str_into(&r, msg, sizeof(msg));
        if (r.bad || result > 0 || result < -4095)
                return evd_error_set(err, -EBADMSG, "%s: the media worker sent a malformed reply", name);
        sanitize_message(msg);
        if (result < 0) {
                /* -ENOEXEC means "could not run the worker" to our caller: not something a worker can say */
                if (result == -ENOEXEC)
                        result = -EBADMSG;
                return msg[0] ? evd_error_set(err, result, "%s", msg)
                              : evd_error_set_errno(err, result,
                                                    "%s: archive copy failed in the media worker", name);
        }

        EvdArchiveResult res = {};
        uint32_t format = get_u32(&r), method = get_u32(&r);
        res.packets = get_u64(&r);
        const uint8_t *digest = get_raw(&r, sizeof(res.packets_sha256));
        res.bytes_written = get_u64(&r);
        uint8_t verified = get_u8(&r);
        uint32_t n = get_u32(&r);
        if (r.bad || format >= _EVD_ARCHIVE_FORMAT_MAX || method >= _EVD_METHOD_MAX || verified > 1 ||
            n > EVD_MEDIA_MAX_STREAMS)
                return evd_error_set(err, -EBADMSG, "%s: the media worker sent a malformed result", name);
        res.format = (EvdArchiveFormat)format;
        res.method = (EvdMethod)method;
        memcpy(res.packets_sha256, digest, sizeof(res.packets_sha256));
        res.output_verified = verified;
        res.n_not_carried = n;
        for (uint32_t i = 0; i < n; i++) {
                EvdMediaStream *s = &res.not_carried[i];
                s->index = get_u32(&r);
                get_str_into(&r, s->type, sizeof(s->type));
                get_str_into(&r, s->codec_tag, sizeof(s->codec_tag));
                get_str_into(&r, s->codec_name, sizeof(s->codec_name));
                uint8_t carried = get_u8(&r);
                if (carried > 1)
                        r.bad = true;
                s->carried = carried;
                sanitize_message(s->type);
                sanitize_message(s->codec_tag);
                sanitize_message(s->codec_name);
        }
        if (r.bad || r.off != r.len)
                return evd_error_set(err, -EBADMSG, "%s: the media worker sent a malformed result", name);
        struct stat st;
        if (fstat(out_fd, &st) < 0)
                return evd_error_set_errno(err, -errno, "%s: archive copy", name);
        if ((uint64_t)st.st_size != res.bytes_written)
                return evd_error_set(err, -EBADMSG,
                                     "%s: the media worker reported %" PRIu64
                                     " bytes written, the archive copy has %" PRIu64,
                                     name, res.bytes_written, (uint64_t)st.st_size);
        *ret = res;
        return 0;
}

int evd_media_archive_isolated(const char *worker_path, int src_fd, const char *src_name,
                               const EvdArchiveTags *tags, const EvdArchiveAttachment *atts, size_t n_atts,
                               const EvdMediaOptions *opts, int out_fd, EvdArchiveResult *ret, EvdError *err)
{
        const char *name = src_name ? src_name : "(media)";
        if (!tags || !ret || src_fd < 0 || out_fd < 0)
                return evd_error_set(err, -EINVAL, "%s: invalid arguments", name);
        const char *path = worker_path ? worker_path : evd_media_worker_default_path();
        uint64_t deadline = opts && opts->deadline_usec
                                ? opts->deadline_usec
                                : evd_clock_monotonic_us() + EVD_MEDIA_DEFAULT_TIMEOUT_USEC;

        _cleanup_(buf_done) Buf req = {.max = EVD_MEDIA_WORKER_MAX_REQUEST_BYTES};
        int r = request_encode(&req, name, tags, atts, n_atts, deadline, opts && opts->verify_output, err);
        if (r < 0)
                return r;

        _cleanup_close_ int src_ro = reopen_read_only(src_fd);
        if (src_ro < 0)
                return evd_error_set_errno(err, -ENOEXEC, "%s: cannot pass the original to the media worker",
                                           name);
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return evd_error_set(err, -ENOEXEC, "%s: cannot run the media worker: socketpair: %s", name,
                                     strerror(errno));
        _cleanup_close_ int chan = sv[0], child_chan = sv[1];
        pid_t pid = 0;
        r = spawn_worker(path, child_chan, src_ro, out_fd, &pid);
        if (r < 0) {
                bool installation =
                    r == -ENOENT || r == -EACCES || r == -ENOEXEC || r == -ELIBBAD || r == -ENOTDIR;
                return evd_error_set(
                    err, -ENOEXEC, "%s: cannot run the media worker %s: %s%s", name, path, strerror(-r),
                    installation
                        ? " (an installation error: install evidock completely, or set " EVD_MEDIA_WORKER_ENV
                          " to the worker of a build tree)"
                        : "");
        }
        closep(&child_chan);
        child_chan = -1;
        closep(&src_ro);
        src_ro = -1;

        _cleanup_free_ uint8_t *reply = malloc(EVD_MEDIA_WORKER_MAX_REPLY_BYTES + 1);
        Exchange x = {.reply = reply};
        if (!reply) {
                (void)kill(pid, SIGKILL);
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                return -ENOMEM;
        }
        worker_exchange(pid, chan, &req, deadline + EVD_MEDIA_WORKER_GRACE_USEC, opts ? opts->cancel : NULL,
                        &x);

        if (x.cancelled)
                return evd_error_set(err, -ECANCELED, "%s: archive copy stopped on request", name);
        if (x.killed)
                return evd_error_set(
                    err, -ETIMEDOUT,
                    "%s: the media worker did not finish before the deadline and was killed", name);
        if (x.oversized)
                return evd_error_set(err, -EBADMSG, "%s: the media worker sent more than %u bytes", name,
                                     EVD_MEDIA_WORKER_MAX_REPLY_BYTES);
        if (WIFSIGNALED(x.status)) {
                int sig = WTERMSIG(x.status);
                return evd_error_set(err, -EBADMSG,
                                     "%s: the media worker crashed on this file (signal %d, %s)", name, sig,
                                     strsignal(sig));
        }
        if (WIFEXITED(x.status) && WEXITSTATUS(x.status) == EVD_MEDIA_WORKER_EXIT_PROTOCOL)
                return evd_error_set(
                    err, -ENOEXEC,
                    "%s: the media worker %s refused the request (exit status %d): is it from "
                    "the same version of evidock?",
                    name, path, EVD_MEDIA_WORKER_EXIT_PROTOCOL);
        if (WIFEXITED(x.status) && WEXITSTATUS(x.status) == EVD_MEDIA_WORKER_EXIT_UNCONFINED)
                return evd_error_set(
                    err, -ENOEXEC,
                    "%s: the media worker %s cannot confine itself (seccomp unavailable?) and "
                    "refuses to parse recordings while it could change the store",
                    name, path);
        if (WIFEXITED(x.status) && WEXITSTATUS(x.status) != 0)
                return evd_error_set(err, -EBADMSG,
                                     "%s: the media worker failed on this file (exit status %d)", name,
                                     WEXITSTATUS(x.status));
        return reply_decode(&x, name, out_fd, ret, err);
}

/* ---- the worker's side --------------------------------------------------------------------------- */

static int read_request(int fd, Buf *b)
{
        for (;;) {
                if (b->len == b->max)
                        return -E2BIG;
                size_t want = MIN((size_t)64 * 1024, b->max - b->len);
                if (b->cap - b->len < want) {
                        size_t cap = MIN(MAX(b->cap * 2, (size_t)128 * 1024), b->max);
                        uint8_t *d = realloc(b->data, cap);
                        if (!d)
                                return -ENOMEM;
                        b->data = d;
                        b->cap = cap;
                        want = MIN(want, cap - b->len);
                }
                ssize_t n = read(fd, b->data + b->len, want);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return 0;
                b->len += (size_t)n;
        }
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
        while (n > 0) {
                ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
                if (k < 0 && errno == ENOTSOCK)
                        k = write(fd, p, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                p += k;
                n -= (size_t)k;
        }
        return 0;
}

int evd_media_worker_serve(int channel_fd, int src_fd, int out_fd, EvdMediaWorkerHook hook, void *userdata)
{
        _cleanup_(buf_done) Buf req = {.max = EVD_MEDIA_WORKER_MAX_REQUEST_BYTES};
        int r = read_request(channel_fd, &req);
        if (r < 0)
                return r;
        _cleanup_free_ char *arena = malloc(req.len + REQUEST_MAX_FIELDS + 1);
        if (!arena)
                return -ENOMEM;
        Reader rd = {
            .p = req.data, .len = req.len, .arena = arena, .arena_len = req.len + REQUEST_MAX_FIELDS + 1};
        const uint8_t *magic = get_raw(&rd, MAGIC_BYTES);
        if (!magic || memcmp(magic, REQUEST_MAGIC, MAGIC_BYTES) != 0)
                return -EPROTO;
        EvdMediaOptions mo = {.deadline_usec = get_u64(&rd)};
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
        if (rd.bad || rd.off != rd.len)
                return -EPROTO;

        if (hook)
                hook(name ? name : "(media)", userdata);

        EvdArchiveResult res = {};
        EvdError e = {};
        r = evd_media_archive(src_fd, name, &tags, atts, n_atts, &mo, out_fd, &res, &e);

        _cleanup_(buf_done) Buf rep = {.max = EVD_MEDIA_WORKER_MAX_REPLY_BYTES};
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
        if (rep.error)
                return rep.error;
        return write_all(channel_fd, rep.data, rep.len);
}
