/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The archive copy made in a separate process, so that a recording that makes the demuxer crash, hang or
 * run wild cannot take the daemon (or evidockctl) down with it.
 *
 * An EvdMediaSession owns one helper process, evidock-media-worker, for a series of jobs (a docking: one
 * worker per docking, not one per file). evd_media_session_archive() has the contract of
 * evd_media_archive() (media.h) and runs it in that worker, started at the first job and again after any
 * job that did not end in a clean result (an error reply, a crash, the deadline, a stop request, a
 * protocol breach): whatever a file did to the demuxer stays with the worker that read it. The worker
 * runs in the caller's thread's stead only while a job is exchanged: the session has no thread, and
 * evd_media_session_free() kills and reaps the worker. One session is used by one thread at a time.
 * evd_media_archive_isolated() is a session of one job.
 *
 * The worker's descriptors:
 *   fd 0  its end of a socket pair (the channel): requests in, progress and replies out
 *   fd 1  /dev/null, fd 2 the caller's stderr (FFmpeg and sanitizer reports reach the terminal / the
 *         journal; a stray printf cannot corrupt a reply)
 *   fd 3  during a job: the original, opened read-only again (the worker can read the evidence, never
 *         change it); fd 4: that job's output file, written with pwrite from offset 0; fd 5, for a
 *         growing source only: the bytes read ahead of the copy. They arrive with the request
 *         (SCM_RIGHTS) and are closed when the reply is sent.
 *
 * A socket pair rather than pipes because it carries descriptors, and because the parent writes with
 * MSG_NOSIGNAL: a worker that dies before reading its request must not kill the parent with SIGPIPE. The
 * worker runs in its own process group (a Ctrl-C on evidockctl's terminal is not a media crash), with
 * default signal dispositions, no inherited descriptors beyond the three above, no core dumps (they would
 * hold evidence), and dies with the thread that started it (PR_SET_PDEATHSIG). Before it reads a request
 * it confines itself (confine.h): from then on it cannot open any file for writing, change a name or a
 * mode, or trace another process, so a recording that takes over FFmpeg cannot alter the stored original
 * it reads (not through /proc/self/fd/3, not by chmod) nor anything else in the store. The trust
 * boundary is therefore the docking: a file that took over the worker could at worst spoil the archive
 * copies of later files of the same recorder's docking (never an original: they are read-only to it and
 * hashed by the caller; every archive copy's size is checked against the reply and hashed by the caller).
 *
 * Encoding: every message is a frame, a u32 length and that many bytes of body. Integers are big-endian;
 * "str" is a u32 length followed by that many bytes without NUL, the length 0xffffffff meaning NULL.
 *
 *   request:  "EVDMWQ03" u64 deadline_usec (CLOCK_MONOTONIC, absolute) u8 verify_output
 *             str src_name str case_number u32 method str recorded_start str recorded_end str maker
 *             str device_id str original_sha256 str original_name str confidentiality
 *             u32 n_extra { str key str value }*  u32 n_atts { str filename str mimetype str data }*
 *             u8 growing [u64 size u64 ahead_offset]
 *             (with exactly two descriptors on its first bytes: the original, the output; three for a
 *             growing source: and the bytes read ahead)
 *   done:     "EVDMWD03" u64 size 64*u8 sha256_hex (parent -> worker, a growing source's copy ended)
 *   progress: "EVDMWP02" u64 done u64 total (source bytes read; best effort, at most one per MiB)
 *   reply:    "EVDMWR02" i32 result str message, and when result == 0:
 *             u32 format u32 method u64 packets 32*u8 packets_sha256 u64 bytes_written u8 output_verified
 *             u32 n_not_carried { u32 index str type str codec_tag str codec_name u8 carried }*
 *
 * The parent trusts nothing in a reply: frames are bounded (EVD_MEDIA_WORKER_MAX_REPLY_BYTES), every enum
 * and count is range-checked and bytes_written must equal the output file's size. */
#pragma once

#include <stdbool.h>

#include "media.h"

#define EVD_MEDIA_WORKER_NAME "evidock-media-worker"
/* Overrides the worker's path when the caller passes none (tests, a build tree, scripts/demo). */
#define EVD_MEDIA_WORKER_ENV "EVIDOCK_MEDIA_WORKER"

/* Bounds of the two messages. A request holds at most EVD_MEDIA_MAX_ATTACHMENTS attachments of
 * EVD_MEDIA_MAX_ATTACHMENT_BYTES plus the tags; a reply a message and EVD_MEDIA_MAX_STREAMS streams. */
#define EVD_MEDIA_WORKER_MAX_FIELD_BYTES EVD_MEDIA_MAX_ATTACHMENT_BYTES
#define EVD_MEDIA_WORKER_MAX_REQUEST_BYTES                                                                  \
        (EVD_MEDIA_MAX_ATTACHMENTS * EVD_MEDIA_MAX_ATTACHMENT_BYTES + 256u * 1024u)
#define EVD_MEDIA_WORKER_MAX_REPLY_BYTES (64u * 1024u)
/* After the deadline the worker gets this long to report its own -ETIMEDOUT before it is killed. */
#define EVD_MEDIA_WORKER_GRACE_USEC (1000u * 1000u)

/* The worker's descriptors (see above): the channel, and where a job's two are kept. */
#define EVD_MEDIA_WORKER_FD_CHANNEL 0
#define EVD_MEDIA_WORKER_FD_SOURCE  3
#define EVD_MEDIA_WORKER_FD_OUTPUT  4
#define EVD_MEDIA_WORKER_FD_AHEAD   5 /* a growing source's bytes read ahead */
/* The worker's exit status for a request it cannot understand (wrong version, bad invocation). */
#define EVD_MEDIA_WORKER_EXIT_PROTOCOL 2
/* The worker's exit status when it cannot confine itself (confine.h: no seccomp, unknown architecture):
 * it never parses a recording while it could still change the store. */
#define EVD_MEDIA_WORKER_EXIT_UNCONFINED 3

/* The worker the library runs when the caller names none: $EVIDOCK_MEDIA_WORKER if set (ignored in
 * set-uid programs), else LIBEXECDIR/evidock/evidock-media-worker. Static string or the environment's:
 * do not free. */
const char *evd_media_worker_default_path(void);

typedef struct EvdMediaSession EvdMediaSession;

/* A session with no worker yet (worker_path: the program, NULL: the default above). -ENOMEM only. */
int evd_media_session_new(const char *worker_path, EvdMediaSession **ret);
/* Kills and reaps the worker, if one runs. NULL is fine. */
void evd_media_session_free(EvdMediaSession *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(EvdMediaSession *, evd_media_session_free);
/* How many workers this session started (1 for a docking whose files all archived cleanly). */
unsigned evd_media_session_workers_started(const EvdMediaSession *s);

/* Starts the worker now, without a job, if none runs: its start (a process that loads FFmpeg's libraries,
 * tens of ms of CPU) then overlaps what the caller does before its first job (a docking: the database,
 * the chain, the first copy) instead of following it. Nothing is asked of it until a job is submitted.
 * 0, or a negative errno (-EINVAL while a job runs); a worker that cannot start now is tried again, and
 * reported, at the first submit. */
int evd_media_session_prestart(EvdMediaSession *s);

/* evd_media_archive_isolated() in the session's worker (started if none runs); same errors.
 * opts->progress is called in the caller's thread while the job runs. */
int evd_media_session_archive(EvdMediaSession *s, int src_fd, const char *src_name,
                              const EvdArchiveTags *tags, const EvdArchiveAttachment *atts, size_t n_atts,
                              const EvdMediaOptions *opts, int out_fd, EvdArchiveResult *ret, EvdError *err);

/* The same in two halves, so that the worker archives one file while the caller copies the next:
 * submit starts the job (the worker is started if none runs; the request is usually sent at once) and
 * returns; wait collects the result, handing progress to opts->progress meanwhile. The deadline runs
 * from submit (opts->deadline_usec); *opts->cancel is looked at during the wait (a reply that is there
 * already is taken). src_fd may be closed after submit; out_fd must stay open until the wait. One job at
 * a time: submit while busy is -EINVAL. abandon kills the worker of a job that is not wanted any more. */
int evd_media_session_submit(EvdMediaSession *s, int src_fd, const char *src_name,
                             const EvdArchiveTags *tags, const EvdArchiveAttachment *atts, size_t n_atts,
                             const EvdMediaOptions *opts, int out_fd, EvdError *err);
int evd_media_session_wait(EvdMediaSession *s, EvdArchiveResult *ret, EvdError *err);
bool evd_media_session_busy(const EvdMediaSession *s);

/* The archive copy of an original that is still being copied (media.h, EvdMediaGrowing): src_fd is the
 * temporary original the caller is writing, from its start, to `size` bytes; ahead_fd holds the bytes
 * [ahead_offset, size) read ahead of the copy (e.g. a sealed memfd; duplicated, the caller may close
 * it after the submit). tags->original_sha256 is a placeholder: 64 hex digits no archive copy holds by
 * chance (a random nonce). When the copy has ended with exactly `size` bytes, source_done() gives the
 * worker the original's SHA-256, which replaces the placeholder; then wait() as for any job. A copy that
 * failed, ended elsewhere or read differently ahead: abandon() the job (the worker is killed) and make
 * the archive copy the ordinary way. MP4/MOV/M4A only: anything else fails (-EMEDIUMTYPE). */
int evd_media_session_submit_growing(EvdMediaSession *s, int src_fd, const char *src_name,
                                     const EvdArchiveTags *tags, const EvdArchiveAttachment *atts,
                                     size_t n_atts, const EvdMediaOptions *opts, uint64_t size, int ahead_fd,
                                     uint64_t ahead_offset, int out_fd, EvdError *err);
int evd_media_session_source_done(EvdMediaSession *s, uint64_t size, const char *sha256_hex, EvdError *err);
void evd_media_session_abandon(EvdMediaSession *s);

/* evd_media_archive() in a child process (see above). worker_path: the program (NULL: the default above).
 * opts->deadline_usec is enforced by the worker and, EVD_MEDIA_WORKER_GRACE_USEC later, by SIGKILL.
 *
 * Errors: those of evd_media_archive(), as the worker reported them (its message names the file), and
 *   -EBADMSG   the worker crashed (killed by a signal: the message names the file and the signal), exited
 *              with a failure, or sent a malformed reply: treat the media as invalid
 *   -ETIMEDOUT the worker was killed because the deadline (plus the grace) passed
 *   -ENOEXEC   the worker could not be run at all (missing or not executable: an installation error, or
 *              the system refused a process/socket), or it could not confine itself: not a verdict on
 *              the file; the message says which
 * On any error out_fd may hold partial output: discard it. *ret is filled only on success. */
int evd_media_archive_isolated(const char *worker_path, int src_fd, const char *src_name,
                               const EvdArchiveTags *tags, const EvdArchiveAttachment *atts, size_t n_atts,
                               const EvdMediaOptions *opts, int out_fd, EvdArchiveResult *ret,
                               EvdError *err);
