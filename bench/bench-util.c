/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bench-util.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double bench_now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double bench_cpu_s(void)
{
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

double bench_median(const double *v, unsigned n)
{
        double s[BENCH_MAX_SAMPLES];
        if (n == 0 || n > BENCH_MAX_SAMPLES)
                return 0;
        memcpy(s, v, n * sizeof(*v));
        qsort(s, n, sizeof(*s), cmp_double);
        return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

int bench_sh(const char *prog, const char *fmt, ...)
{
        char cmd[4 * PATH_MAX];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= sizeof(cmd))
                return -ENAMETOOLONG;
        int r = system(cmd);
        if (r != 0) {
                fprintf(stderr, "%s: command failed (status %d): %s\n", prog, r, cmd);
                return -EIO;
        }
        return 0;
}

int bench_respawn_umockdev(const char *prog, char **argv, int argc, char **extra, int n_extra)
{
        char **cargv = calloc((size_t)argc + (size_t)n_extra + 1, sizeof(char *));
        if (!cargv)
                return -ENOMEM;
        memcpy(cargv, argv, (size_t)argc * sizeof(char *));
        memcpy(cargv + argc, extra, (size_t)n_extra * sizeof(char *));
        const char *old = getenv("LD_PRELOAD");
        char preload[PATH_MAX];
        snprintf(preload, sizeof(preload), "libumockdev-preload.so.0%s%s", old ? ":" : "", old ? old : "");
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) {
                int r = -errno;
                free(cargv);
                return r;
        }
        if (pid == 0) {
                setenv("LD_PRELOAD", preload, 1);
                execv("/proc/self/exe", cargv);
                fprintf(stderr, "%s: cannot re-exec with LD_PRELOAD: %m\n", prog);
                _exit(127);
        }
        free(cargv);
        int status = 0;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}
