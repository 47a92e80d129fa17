/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidock-media-worker: makes archive copies in a process of its own, one request after the other, for
 * the media session of one docking (lib/media-worker.h describes the descriptors and the messages). Not
 * meant to be run by hand:
 *
 *   evidock-media-worker --serve PARENT_PID
 *
 * Built a second time for the tests only, with EVD_MEDIA_WORKER_TEST_FAULTS: that build (never installed)
 * also honours EVIDOCK_MEDIA_WORKER_TEST_FAULT=KIND:SUBSTRING[,KIND:SUBSTRING...] and misbehaves on every
 * file whose name contains SUBSTRING, KIND being abort (crash with SIGABRT), hang (sleep past any
 * deadline), exit (exit 1 without a reply), garbage (reply with junk) or rewrite (try to alter the
 * original it was given, as a compromised demuxer would, report what worked on stderr, then go on). */
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <libavutil/log.h>

#include "confine.h"
#include "media-worker-crc.h"
#include "media-worker-serve.h"

#ifdef EVD_MEDIA_WORKER_TEST_FAULTS
static void test_fault_do(const char *kind, size_t kind_len, const char *src_name)
{
        fprintf(stderr, "evidock-media-worker (test build): injecting fault '%.*s' on %s\n", (int)kind_len,
                kind, src_name);
        if (kind_len == 5 && strncmp(kind, "abort", kind_len) == 0)
                abort();
        /* a crash only while the original is still being copied (a job with bytes read ahead, fd 5) */
        if (kind_len == 12 && strncmp(kind, "abortgrowing", kind_len) == 0 &&
            fcntl(EVD_MEDIA_WORKER_FD_AHEAD, F_GETFD) >= 0)
                abort();
        if (kind_len == 4 && strncmp(kind, "hang", kind_len) == 0)
                for (;;)
                        pause();
        if (kind_len == 4 && strncmp(kind, "exit", kind_len) == 0)
                _exit(1);
        if (kind_len == 7 && strncmp(kind, "rewrite", kind_len) == 0) {
                /* what a compromised worker would try: reopen its read-only input for writing through
                 * /proc or by its path, make it writable, replace it by name */
                char proc[64], target[4096];
                snprintf(proc, sizeof(proc), "/proc/self/fd/%d", EVD_MEDIA_WORKER_FD_SOURCE);
                ssize_t tn = readlink(proc, target, sizeof(target) - 1);
                target[tn > 0 ? tn : 0] = 0;
                const char *tries[] = {"open /proc/self/fd/3 O_RDWR", "open by path O_WRONLY", "fchmod 0666",
                                       "unlink by path"};
                for (size_t i = 0; i < 4; i++) {
                        int r = -1, fd = -1;
                        if (i == 0)
                                r = fd = open(proc, O_RDWR | O_CLOEXEC);
                        else if (i == 1 && target[0] == '/')
                                r = fd = open(target, O_WRONLY | O_CLOEXEC);
                        else if (i == 2)
                                r = fchmod(EVD_MEDIA_WORKER_FD_SOURCE, 0666);
                        else if (i == 3 && target[0] == '/')
                                r = unlink(target);
                        if (fd >= 0) {
                                (void)!pwrite(fd, "EVIL", 4, 0);
                                close(fd);
                        }
                        fprintf(stderr, "evidock-media-worker (test build): rewrite attack: %s: %s\n",
                                tries[i], r >= 0 ? "SUCCEEDED" : strerror(errno));
                }
                return;
        }
        if (kind_len == 7 && strncmp(kind, "garbage", kind_len) == 0) {
                static const char junk[] = "EVDMWR01\x00\x00\x00\x00\xff\xff\xff\x00 not a reply";
                (void)!write(EVD_MEDIA_WORKER_FD_CHANNEL, junk, sizeof(junk));
                _exit(0);
        }
}

/* EVIDOCK_MEDIA_WORKER_TEST_FAULT=KIND:SUBSTRING[,KIND:SUBSTRING...] (at most 256 bytes looked at) */
static void test_fault(const char *src_name, void *userdata)
{
        const char *spec = getenv("EVIDOCK_MEDIA_WORKER_TEST_FAULT");
        char buf[256];
        if (!spec)
                return;
        snprintf(buf, sizeof(buf), "%s", spec);
        char *save = NULL;
        for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
                char *colon = strchr(item, ':');
                if (colon && colon[1] && strstr(src_name, colon + 1))
                        test_fault_do(item, (size_t)(colon - item), src_name);
        }
}
#define TEST_FAULT_HOOK test_fault
#else
#define TEST_FAULT_HOOK NULL
#endif

int main(int argc, char **argv)
{
        if (argc != 3 || strcmp(argv[1], "--serve") != 0) {
                fprintf(
                    stderr,
                    "%s is evidock's media helper; it is started by evidockd and evidockctl, not by hand.\n",
                    argv[0]);
                return EVD_MEDIA_WORKER_EXIT_PROTOCOL;
        }
        /* Die with the caller (kill -9 of evidockctl must not leave a demuxer running), and catch the case
         * where the caller died before this line. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != (pid_t)atol(argv[2]))
                return EXIT_FAILURE;
        /* A crash on a hostile file must not write a core dump: it would hold evidence. */
        struct rlimit no_core = {0, 0};
        (void)setrlimit(RLIMIT_CORE, &no_core);
        av_log_set_level(getenv("EVIDOCK_DEBUG") ? AV_LOG_DEBUG : AV_LOG_QUIET);
        evd_media_crc_install(); /* the muxer's CRC-32s through zlib (media-worker-crc.h) */
        /* Every packet is a new buffer (a 1080p key frame: several hundred kB), freed on the digest thread
         * a moment later. With glibc's defaults the larger ones were mmap()ed and the heap top trimmed
         * and grown again and again: 15-20 k page faults for a 606 MB segment, ~0.2 CPU s on the muxing
         * thread that bounds the ingest. Kept in the heap and reused instead: ~6 k faults; the peak is
         * what the packet queue allows (media.c, 32 MiB at most), as before. */
        (void)mallopt(M_MMAP_THRESHOLD, 8 * 1024 * 1024);
        (void)mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
        /* From here on nothing this process does can change a file by name, a mode or another process:
         * a recording that takes over the demuxer cannot alter the original it reads (confine.h). */
        int c = evd_confine_no_writes();
        if (c < 0) {
                fprintf(stderr, "evidock-media-worker: cannot confine itself: %s\n", strerror(-c));
                return EVD_MEDIA_WORKER_EXIT_UNCONFINED;
        }

        int r = evd_media_worker_serve(EVD_MEDIA_WORKER_FD_CHANNEL, TEST_FAULT_HOOK, NULL);
        if (r < 0) {
                fprintf(stderr, "evidock-media-worker: cannot serve the request: %s\n", strerror(-r));
                return EVD_MEDIA_WORKER_EXIT_PROTOCOL;
        }
        return EXIT_SUCCESS;
}
