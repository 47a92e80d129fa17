/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-rss: peak of the summed RSS of a command and all its descendants.
 *
 *   bench-rss -o FILE [--skip-top] [--interval-ms N] -- COMMAND [ARG...]
 *
 * GNU time's %M (ru_maxrss) is the peak of the largest single process of the tree. evidockctl runs each
 * archive copy in a helper process (evidock-media-worker) while it stays resident itself, so the memory
 * the dock needs is the sum of both at the same moment. This samples /proc every N ms (default 2): for
 * every process of the tree (found through /proc/PID/task/TID/children) it adds PSS, and keeps the
 * largest sum. A peak shorter than the interval can be missed: the figure is a lower bound, close for
 * processes that hold their memory for longer (a remux of a 600 MB file runs ~1 s).
 * --skip-top leaves out the command itself (when it is /usr/bin/time wrapping the real one).
 * Writes "peak_sum_kb=K peak_anon_kb=A samples=N max_procs=P" to FILE (A: the same for RssAnon, the
 * private memory); exits with the command's status. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc-tree.h"

#define MAX(a, b) ((a) > (b) ? (a) : (b))

int main(int argc, char **argv)
{
        static const struct option options[] = {
            {"output", required_argument, NULL, 'o'},
            {"skip-top", no_argument, NULL, 's'},
            {"interval-ms", required_argument, NULL, 'i'},
            {},
        };
        const char *output = NULL;
        bool skip_top = false;
        long interval_ms = 2;
        int c;
        while ((c = getopt_long(argc, argv, "+o:", options, NULL)) >= 0) {
                switch (c) {
                case 'o':
                        output = optarg;
                        break;
                case 's':
                        skip_top = true;
                        break;
                case 'i':
                        interval_ms = strtol(optarg, NULL, 10);
                        if (interval_ms < 1 || interval_ms > 1000) {
                                fprintf(stderr, "bench-rss: --interval-ms wants 1..1000\n");
                                return 2;
                        }
                        break;
                default:
                        return 2;
                }
        }
        if (!output || optind >= argc) {
                fprintf(stderr,
                        "usage: bench-rss -o FILE [--skip-top] [--interval-ms N] -- COMMAND [ARG...]\n");
                return 2;
        }

        pid_t top = fork();
        if (top < 0) {
                perror("bench-rss: fork");
                return 2;
        }
        if (top == 0) {
                execvp(argv[optind], argv + optind);
                fprintf(stderr, "bench-rss: cannot run %s: %s\n", argv[optind], strerror(errno));
                _exit(127);
        }

        long peak = 0, peak_anon = 0;
        unsigned long samples = 0;
        size_t max_procs = 0;
        int status = 0;
        struct timespec pause = {.tv_sec = interval_ms / 1000, .tv_nsec = (interval_ms % 1000) * 1000000L};
        for (;;) {
                pid_t r = waitpid(top, &status, WNOHANG);
                if (r == top)
                        break;
                if (r < 0 && errno != EINTR) {
                        perror("bench-rss: waitpid");
                        return 2;
                }
                ProcTreeSample t;
                proc_tree_sample(top, skip_top, &t);
                peak = MAX(peak, t.pss_kb);
                peak_anon = MAX(peak_anon, t.anon_kb);
                max_procs = MAX(max_procs, t.procs);
                samples++;
                nanosleep(&pause, NULL);
        }

        FILE *f = fopen(output, "we");
        if (!f) {
                fprintf(stderr, "bench-rss: %s: %s\n", output, strerror(errno));
                return 2;
        }
        fprintf(f, "peak_sum_kb=%ld peak_anon_kb=%ld samples=%lu max_procs=%zu\n", peak, peak_anon, samples,
                max_procs);
        fclose(f);
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}
