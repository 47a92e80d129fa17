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
#include "media-wire.h"
#include "media-worker.h"

#ifndef EVD_LIBEXECDIR
#error "EVD_LIBEXECDIR must be defined by the build"
#endif

extern char **environ;

/* ---- the parent's side --------------------------------------------------------------------------- */

const char *evd_media_worker_default_path(void)
{
        const char *p = secure_getenv(EVD_MEDIA_WORKER_ENV);
        if (p && p[0])
                return p;
        return EVD_LIBEXECDIR "/" EVD_MEDIA_WORKER_NAME;
}

/* A source still being written (evd_media_session_submit_growing()). */
typedef struct GrowingSource {
        uint64_t size, ahead_offset;
        int ahead_fd;
} GrowingSource;

static int request_encode(Buf *b, const char *name, const EvdArchiveTags *t,
                          const EvdArchiveAttachment *atts, size_t n_atts, uint64_t deadline,
                          bool verify_output, const GrowingSource *growing, EvdError *err)
{
        if (t->n_extra > EVD_MEDIA_MAX_EXTRA_TAGS || (t->n_extra && !t->extra))
                return evd_error_set(err, t->n_extra ? -E2BIG : -EINVAL, "%s: more than %u extra tags", name,
                                     EVD_MEDIA_MAX_EXTRA_TAGS);
        if (n_atts > EVD_MEDIA_MAX_ATTACHMENTS || (n_atts && !atts))
                return evd_error_set(err, n_atts ? -E2BIG : -EINVAL, "%s: more than %u attachments", name,
                                     EVD_MEDIA_MAX_ATTACHMENTS);
        size_t frame = frame_begin(b);
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
        put_u8(b, growing != NULL);
        if (growing) {
                put_u64(b, growing->size);
                put_u64(b, growing->ahead_offset);
        }
        frame_end(b, frame);
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

static int spawn_worker(const char *path, int chan, pid_t *ret_pid)
{
        /* The channel goes to fd 0: first lift it above the low numbers so that the dup2 in the child
         * cannot meet it. Each job's descriptors come later with its request (SCM_RIGHTS). */
        _cleanup_close_ int hchan = fcntl(chan, F_DUPFD_CLOEXEC, 10);
        if (hchan < 0)
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
            (r = posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1)) == 0 &&
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
        int status;         /* waitpid status, when exited */
        bool exited;        /* the worker ended (and was reaped) during the job */
        bool killed;        /* SIGKILLed by us at the deadline */
        bool cancelled;     /* SIGKILLed by us because *cancel was set */
        uint32_t oversized; /* the length of a frame past its bound (0: none) */
        bool malformed;     /* a frame that is neither progress nor a reply */
        bool replied;
        bool sending, reading;
        size_t sent;
        uint8_t *in; /* received, not yet parsed: at most one frame header + the largest body */
        size_t in_len;
        uint8_t *reply; /* the reply frame's body */
        size_t reply_len;
} Exchange;

/* The job in flight between evd_media_session_submit() and evd_media_session_wait(). */
typedef struct Job {
        bool active;
        char *name;
        Buf req;
        int src_ro; /* ours: the original, read-only */
        int out_fd; /* the caller's, borrowed until the wait */
        bool growing;
        int ahead_fd;   /* growing: ours, the bytes read ahead (sent as the third descriptor) */
        uint64_t size;  /* growing: the size the original will have */
        bool done_sent; /* growing: evd_media_session_source_done() was sent */
        uint64_t kill_at;
        EvdMediaOptions opts; /* the caller's, copied */
        Exchange x;
} Job;

struct EvdMediaSession {
        char *path; /* the worker program */
        pid_t pid;  /* the running worker; 0: none (the next job starts one) */
        int chan;   /* our end of its channel; -1: none */
        int pidfd;  /* -1: none (old kernel): the child is looked at every 20 ms */
        unsigned started, jobs;
        Job job;
};

int evd_media_session_new(const char *worker_path, EvdMediaSession **ret)
{
        EvdMediaSession *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->path = strdup(worker_path ? worker_path : evd_media_worker_default_path());
        if (!s->path) {
                free(s);
                return -ENOMEM;
        }
        s->chan = s->pidfd = -1;
        s->job = (Job){.src_ro = -1, .out_fd = -1, .ahead_fd = -1};
        *ret = s;
        return 0;
}

/* Ends the worker (if any): SIGKILL and reap. It holds nothing worth a goodbye: every job's result is
 * in its reply, and an idle worker only waits for the next request. */
static void session_stop(EvdMediaSession *s)
{
        if (s->pid > 0) {
                (void)kill(s->pid, SIGKILL);
                while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        s->pid = 0;
        closep(&s->chan);
        closep(&s->pidfd);
        s->chan = s->pidfd = -1;
}

static void job_done(Job *jb)
{
        free(jb->name);
        buf_done(&jb->req);
        closep(&jb->src_ro);
        closep(&jb->ahead_fd);
        free(jb->x.in);
        free(jb->x.reply);
        *jb = (Job){.src_ro = -1, .out_fd = -1, .ahead_fd = -1};
}

void evd_media_session_free(EvdMediaSession *s)
{
        if (!s)
                return;
        session_stop(s);
        job_done(&s->job);
        free(s->path);
        free(s);
}

unsigned evd_media_session_workers_started(const EvdMediaSession *s)
{
        return s ? s->started : 0;
}

static int session_start(EvdMediaSession *s)
{
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        _cleanup_close_ int child = sv[1];
        pid_t pid = 0;
        int r = spawn_worker(s->path, child, &pid);
        if (r < 0) {
                close(sv[0]);
                return r;
        }
        s->chan = sv[0];
        s->pid = pid;
        s->pidfd = pidfd_open_nofail(pid);
        s->started++;
        (void)fcntl(s->chan, F_SETFL, fcntl(s->chan, F_GETFL) | O_NONBLOCK);
        return 0;
}

/* An idle worker that is gone (killed from outside, out of memory) is replaced rather than blamed on the
 * next file. */
static void session_reap_idle(EvdMediaSession *s)
{
        if (s->pid <= 0)
                return;
        pid_t w = waitpid(s->pid, NULL, WNOHANG);
        if (w == s->pid || (w < 0 && errno == ECHILD)) {
                s->pid = 0;
                session_stop(s);
        }
}

int evd_media_session_prestart(EvdMediaSession *s)
{
        if (!s || s->job.active)
                return -EINVAL;
        session_reap_idle(s);
        return s->pid > 0 ? 0 : session_start(s);
}

#define CANCEL_POLL_MS 100u /* how often a running job looks at *cancel */
#define IN_BUFFER      (FRAME_HEADER + EVD_MEDIA_WORKER_MAX_REPLY_BYTES)

/* Takes the complete frames out of x->in: progress goes to the callback, the reply ends the job.
 * Returns false when the worker broke the protocol (x says how). */
static bool exchange_frames(Exchange *x, const EvdMediaOptions *opts)
{
        size_t off = 0;
        while (!x->replied && x->in_len - off >= FRAME_HEADER) {
                uint32_t n = be32(x->in + off);
                if (n > EVD_MEDIA_WORKER_MAX_REPLY_BYTES) {
                        x->oversized = n;
                        return false;
                }
                if (x->in_len - off - FRAME_HEADER < n)
                        break;
                const uint8_t *body = x->in + off + FRAME_HEADER;
                if (n == PROGRESS_BODY && memcmp(body, PROGRESS_MAGIC, MAGIC_BYTES) == 0) {
                        Reader r = {.p = body + MAGIC_BYTES, .len = 16};
                        uint64_t done = get_u64(&r), total = get_u64(&r);
                        if (opts && opts->progress && done <= total)
                                opts->progress(done, total, opts->progress_userdata);
                } else if (n >= MAGIC_BYTES && memcmp(body, REPLY_MAGIC, MAGIC_BYTES) == 0) {
                        memcpy(x->reply, body, n);
                        x->reply_len = n;
                        x->replied = true;
                } else {
                        x->malformed = true;
                        return false;
                }
                off += FRAME_HEADER + n;
        }
        memmove(x->in, x->in + off, x->in_len - off);
        x->in_len -= off;
        return true;
}

/* Sends what it can of the request (the job's two descriptors ride on its first bytes). */
static void exchange_send(EvdMediaSession *s, Job *jb)
{
        Exchange *x = &jb->x;
        while (x->sending) {
                ssize_t k;
                if (x->sent == 0) {
                        int fds[3] = {jb->src_ro, jb->out_fd, jb->ahead_fd};
                        size_t n_fds = jb->growing ? 3 : 2;
                        union {
                                struct cmsghdr align;
                                char buf[CMSG_SPACE(sizeof(fds))];
                        } cbuf = {};
                        struct iovec iov = {.iov_base = jb->req.data, .iov_len = jb->req.len};
                        struct msghdr mh = {.msg_iov = &iov,
                                            .msg_iovlen = 1,
                                            .msg_control = cbuf.buf,
                                            .msg_controllen = sizeof(cbuf.buf)};
                        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                        c->cmsg_level = SOL_SOCKET;
                        c->cmsg_type = SCM_RIGHTS;
                        c->cmsg_len = CMSG_LEN(n_fds * sizeof(int));
                        memcpy(CMSG_DATA(c), fds, n_fds * sizeof(int));
                        mh.msg_controllen = CMSG_SPACE(n_fds * sizeof(int));
                        k = sendmsg(s->chan, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
                } else
                        k = send(s->chan, jb->req.data + x->sent, jb->req.len - x->sent,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k > 0)
                        x->sent += (size_t)k;
                if (k < 0 && errno != EAGAIN)
                        x->sending = false; /* the worker is gone; its exit status says why */
                else if (x->sent == jb->req.len)
                        x->sending = false;
                if (k <= 0)
                        break;
        }
}

/* Hands progress frames to the job's progress callback and collects the reply; kills the worker at the
 * job's deadline or when its *cancel is set (a reply already there is taken first: a job that ran while
 * the caller did other work may have replied long ago). The worker stays running after a reply; when it
 * ended (or was killed) it is reaped and x->status says how. */
static void worker_exchange(EvdMediaSession *s, Job *jb)
{
        Exchange *x = &jb->x;
        const atomic_int *cancel = jb->opts.cancel;
        bool first = true;

        while (!x->replied && !x->exited) {
                uint64_t now = evd_clock_monotonic_us();
                if (!first && cancel && *cancel) {
                        (void)kill(s->pid, SIGKILL);
                        x->cancelled = true;
                        break;
                }
                if (!first && now >= jb->kill_at) {
                        (void)kill(s->pid, SIGKILL);
                        x->killed = true;
                        break;
                }
                uint64_t wait_ms = first ? 0 : ms_until(now, jb->kill_at);
                if (s->pidfd < 0)
                        wait_ms = MIN(wait_ms, (uint64_t)20); /* no pidfd: look at the child now and then */
                if (cancel)
                        wait_ms = MIN(wait_ms, (uint64_t)CANCEL_POLL_MS);
                first = false;
                struct pollfd pfd[2] = {
                    {.fd = (x->reading || x->sending) ? s->chan : -1,
                     .events = (short)((x->reading ? POLLIN : 0) | (x->sending ? POLLOUT : 0))},
                    {.fd = s->pidfd, .events = POLLIN}};
                int n = poll(pfd, 2, (int)MIN(wait_ms, (uint64_t)INT_MAX));
                if (n < 0 && errno != EINTR) {
                        (void)kill(s->pid, SIGKILL);
                        x->killed = true;
                        break;
                }
                if (n < 0)
                        continue;
                if (x->sending && (pfd[0].revents & (POLLOUT | POLLERR | POLLHUP)))
                        exchange_send(s, jb);
                bool broken = false;
                while (x->reading && !x->replied && (pfd[0].revents & (POLLIN | POLLERR | POLLHUP))) {
                        ssize_t k = recv(s->chan, x->in + x->in_len, IN_BUFFER - x->in_len, MSG_DONTWAIT);
                        if (k > 0) {
                                x->in_len += (size_t)k;
                                if (!exchange_frames(x, &jb->opts)) {
                                        broken = true;
                                        break;
                                }
                                continue;
                        }
                        if (k == 0 || (errno != EAGAIN && errno != EINTR))
                                x->reading = false;
                        break;
                }
                if (broken) {
                        (void)kill(s->pid, SIGKILL);
                        break;
                }
                if (x->replied)
                        break;
                /* (with the channel closed, the poll above waits for the worker's end alone) */
                if (s->pidfd < 0 || (pfd[1].revents & POLLIN)) {
                        pid_t w = waitpid(s->pid, &x->status, WNOHANG);
                        if (w == s->pid || (w < 0 && errno == ECHILD)) /* ECHILD: SIGCHLD ignored */
                                x->exited = true;
                }
        }
        if (!x->replied && !x->exited) {
                while (waitpid(s->pid, &x->status, 0) < 0 && errno == EINTR)
                        ;
                x->exited = true;
        }
        if (x->exited) {
                s->pid = 0; /* reaped */
                session_stop(s);
        }
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

/* What the exchange says about the job, as the contract of evd_media_archive_isolated() words it. */
static int exchange_result(EvdMediaSession *s, const Exchange *x, const char *name, int out_fd,
                           EvdArchiveResult *ret, EvdError *err)
{
        if (x->cancelled)
                return evd_error_set(err, -ECANCELED, "%s: archive copy stopped on request", name);
        if (x->killed)
                return evd_error_set(
                    err, -ETIMEDOUT,
                    "%s: the media worker did not finish before the deadline and was killed", name);
        if (x->oversized)
                return evd_error_set(err, -EBADMSG,
                                     "%s: the media worker sent a malformed message (a frame of %" PRIu32
                                     " bytes, more than %u)",
                                     name, x->oversized, EVD_MEDIA_WORKER_MAX_REPLY_BYTES);
        if (x->malformed)
                return evd_error_set(err, -EBADMSG, "%s: the media worker sent a malformed message", name);
        if (x->replied)
                return reply_decode(x, name, out_fd, ret, err);
        if (WIFSIGNALED(x->status)) {
                int sig = WTERMSIG(x->status);
                return evd_error_set(err, -EBADMSG,
                                     "%s: the media worker crashed on this file (signal %d, %s)", name, sig,
                                     strsignal(sig));
        }
        if (WIFEXITED(x->status) && WEXITSTATUS(x->status) == EVD_MEDIA_WORKER_EXIT_PROTOCOL)
                return evd_error_set(
                    err, -ENOEXEC,
                    "%s: the media worker %s refused the request (exit status %d): is it from "
                    "the same version of evidock?",
                    name, s->path, EVD_MEDIA_WORKER_EXIT_PROTOCOL);
        if (WIFEXITED(x->status) && WEXITSTATUS(x->status) == EVD_MEDIA_WORKER_EXIT_UNCONFINED)
                return evd_error_set(
                    err, -ENOEXEC,
                    "%s: the media worker %s cannot confine itself (seccomp unavailable?) and "
                    "refuses to parse recordings while it could change the store",
                    name, s->path);
        if (WIFEXITED(x->status) && WEXITSTATUS(x->status) != 0)
                return evd_error_set(err, -EBADMSG,
                                     "%s: the media worker failed on this file (exit status %d)", name,
                                     WEXITSTATUS(x->status));
        return evd_error_set(err, -EBADMSG, "%s: the media worker ended without a reply", name);
}

bool evd_media_session_busy(const EvdMediaSession *s)
{
        return s && s->job.active;
}

static int session_submit(EvdMediaSession *s, int src_fd, const char *src_name, const EvdArchiveTags *tags,
                          const EvdArchiveAttachment *atts, size_t n_atts, const EvdMediaOptions *opts,
                          const GrowingSource *growing, int out_fd, EvdError *err)
{
        const char *name = src_name ? src_name : "(media)";
        if (!s || !tags || src_fd < 0 || out_fd < 0 || s->job.active ||
            (growing && (growing->ahead_fd < 0 || growing->ahead_offset > growing->size)))
                return evd_error_set(err, -EINVAL, "%s: invalid arguments", name);
        Job *jb = &s->job;
        job_done(jb);
        uint64_t deadline = opts && opts->deadline_usec
                                ? opts->deadline_usec
                                : evd_clock_monotonic_us() + EVD_MEDIA_DEFAULT_TIMEOUT_USEC;
        jb->req = (Buf){.max = FRAME_HEADER + EVD_MEDIA_WORKER_MAX_REQUEST_BYTES};
        int r = request_encode(&jb->req, name, tags, atts, n_atts, deadline, opts && opts->verify_output,
                               growing, err);
        if (r < 0) {
                job_done(jb);
                return r;
        }
        jb->name = strdup(name);
        jb->x.in = malloc(IN_BUFFER);
        jb->x.reply = malloc(EVD_MEDIA_WORKER_MAX_REPLY_BYTES);
        if (!jb->name || !jb->x.in || !jb->x.reply) {
                job_done(jb);
                return evd_error_set(err, -ENOMEM, "%s: out of memory", name);
        }
        jb->src_ro = reopen_read_only(src_fd);
        if (growing) {
                jb->growing = true;
                jb->size = growing->size;
                jb->ahead_fd = fcntl(growing->ahead_fd, F_DUPFD_CLOEXEC, 3);
        }
        if (jb->src_ro < 0 || (growing && jb->ahead_fd < 0)) {
                job_done(jb);
                return evd_error_set_errno(err, -ENOEXEC, "%s: cannot pass the original to the media worker",
                                           name);
        }
        session_reap_idle(s);
        if (s->pid <= 0) {
                r = session_start(s);
                if (r < 0) {
                        bool installation =
                            r == -ENOENT || r == -EACCES || r == -ENOEXEC || r == -ELIBBAD || r == -ENOTDIR;
                        job_done(jb);
                        return evd_error_set(
                            err, -ENOEXEC, "%s: cannot run the media worker %s: %s%s", name, s->path,
                            strerror(-r),
                            installation ? " (an installation error: install evidock completely, or "
                                           "set " EVD_MEDIA_WORKER_ENV " to the worker of a build tree)"
                                         : "");
                }
        }
        jb->out_fd = out_fd;
        jb->kill_at = deadline + EVD_MEDIA_WORKER_GRACE_USEC;
        if (opts)
                jb->opts = *opts;
        jb->x.sending = jb->x.reading = true;
        jb->active = true;
        s->jobs++;
        exchange_send(s, jb); /* usually all of it: the worker starts while the caller goes on */
        return 0;
}

int evd_media_session_submit(EvdMediaSession *s, int src_fd, const char *src_name,
                             const EvdArchiveTags *tags, const EvdArchiveAttachment *atts, size_t n_atts,
                             const EvdMediaOptions *opts, int out_fd, EvdError *err)
{
        return session_submit(s, src_fd, src_name, tags, atts, n_atts, opts, NULL, out_fd, err);
}

int evd_media_session_submit_growing(EvdMediaSession *s, int src_fd, const char *src_name,
                                     const EvdArchiveTags *tags, const EvdArchiveAttachment *atts,
                                     size_t n_atts, const EvdMediaOptions *opts, uint64_t size, int ahead_fd,
                                     uint64_t ahead_offset, int out_fd, EvdError *err)
{
        GrowingSource g = {.size = size, .ahead_offset = ahead_offset, .ahead_fd = ahead_fd};
        return session_submit(s, src_fd, src_name, tags, atts, n_atts, opts, &g, out_fd, err);
}

int evd_media_session_source_done(EvdMediaSession *s, uint64_t size, const char *sha256_hex, EvdError *err)
{
        Job *jb = s ? &s->job : NULL;
        if (!jb || !jb->active || !jb->growing || jb->done_sent || !sha256_hex || strlen(sha256_hex) != 64)
                return evd_error_set(err, -EINVAL, "no archive job waits for the end of its copy");
        if (size != jb->size)
                return evd_error_set(err, -EINVAL, "%s: copied %" PRIu64 " bytes, the job expects %" PRIu64,
                                     jb->name, size, jb->size);
        uint8_t f[FRAME_HEADER + DONE_BODY];
        Buf b = {.data = f, .cap = sizeof(f), .max = sizeof(f)};
        size_t start = frame_begin(&b);
        buf_put(&b, DONE_MAGIC, MAGIC_BYTES);
        put_u64(&b, size);
        buf_put(&b, sha256_hex, 64);
        frame_end(&b, start);
        size_t sent = 0;
        /* the rest of the request first (usually sent at submit), then the frame; bounded by the job's
         * deadline. The worker does not block on its own sends meanwhile (progress is dropped when the
         * channel is full), so waiting here for room cannot deadlock. */
        while (jb->x.sending || sent < b.len) {
                uint64_t now = evd_clock_monotonic_us();
                if (now >= jb->kill_at)
                        return evd_error_set(err, -ETIMEDOUT, "%s: the media worker takes no more input",
                                             jb->name);
                if (jb->x.sending)
                        exchange_send(s, jb);
                else {
                        ssize_t k = send(s->chan, f + sent, b.len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
                        if (k > 0)
                                sent += (size_t)k;
                        else if (k < 0 && errno != EAGAIN && errno != EINTR)
                                return evd_error_set_errno(err, -errno,
                                                           "%s: telling the media worker the copy "
                                                           "ended",
                                                           jb->name);
                }
                if (!jb->x.sending && jb->x.sent != jb->req.len)
                        return evd_error_set(err, -EPIPE, "%s: the media worker is gone", jb->name);
                if (jb->x.sending || sent < b.len) {
                        struct pollfd pfd = {.fd = s->chan, .events = POLLOUT};
                        (void)poll(&pfd, 1, (int)MIN(ms_until(now, jb->kill_at), (uint64_t)CANCEL_POLL_MS));
                }
        }
        jb->done_sent = true;
        return 0;
}

int evd_media_session_wait(EvdMediaSession *s, EvdArchiveResult *ret, EvdError *err)
{
        if (!s || !s->job.active || !ret)
                return evd_error_set(err, -EINVAL, "no archive job to wait for");
        Job *jb = &s->job;
        /* The caller may come back long after the deadline (it copied a large file meanwhile), and a
         * worker that finished in time may still sit in the send of its reply (the channel full of
         * progress nobody read): it gets its grace from now to hand it over. A hung worker is still
         * killed within the grace. */
        uint64_t floor = evd_clock_monotonic_us() + EVD_MEDIA_WORKER_GRACE_USEC;
        if (jb->kill_at < floor)
                jb->kill_at = floor;
        worker_exchange(s, jb);
        int r = exchange_result(s, &jb->x, jb->name, jb->out_fd, ret, err);
        /* After anything but a clean result the next job gets a fresh worker: whatever this file did to
         * the demuxer stays with this one. */
        if (r < 0)
                session_stop(s);
        job_done(jb);
        return r;
}

void evd_media_session_abandon(EvdMediaSession *s)
{
        if (!s || !s->job.active)
                return;
        session_stop(s);
        job_done(&s->job);
}

int evd_media_session_archive(EvdMediaSession *s, int src_fd, const char *src_name,
                              const EvdArchiveTags *tags, const EvdArchiveAttachment *atts, size_t n_atts,
                              const EvdMediaOptions *opts, int out_fd, EvdArchiveResult *ret, EvdError *err)
{
        if (!ret)
                return evd_error_set(err, -EINVAL, "%s: invalid arguments", src_name ? src_name : "(media)");
        int r = evd_media_session_submit(s, src_fd, src_name, tags, atts, n_atts, opts, out_fd, err);
        if (r < 0)
                return r;
        return evd_media_session_wait(s, ret, err);
}

int evd_media_archive_isolated(const char *worker_path, int src_fd, const char *src_name,
                               const EvdArchiveTags *tags, const EvdArchiveAttachment *atts, size_t n_atts,
                               const EvdMediaOptions *opts, int out_fd, EvdArchiveResult *ret, EvdError *err)
{
        EvdMediaSession *s = NULL;
        if (evd_media_session_new(worker_path, &s) < 0)
                return evd_error_set(err, -ENOMEM, "%s: out of memory", src_name ? src_name : "(media)");
        int r = evd_media_session_archive(s, src_fd, src_name, tags, atts, n_atts, opts, out_fd, ret, err);
        evd_media_session_free(s);
        return r;
}
