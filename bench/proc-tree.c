/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "proc-tree.h"

#include <dirent.h>
#include <stdbool.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* PSS and RssAnon of pid, in kB; both 0 if it is gone. */
static void pss_kb(pid_t pid, long *ret_pss, long *ret_anon)
{
        char path[64], line[256];
        *ret_pss = *ret_anon = 0;
        snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
        FILE *f = fopen(path, "re");
        if (f) {
                while (fgets(line, sizeof(line), f))
                        if (strncmp(line, "Pss:", 4) == 0)
                                *ret_pss = strtol(line + 4, NULL, 10);
                fclose(f);
        }
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        f = fopen(path, "re");
        if (!f)
                return; /* gone between listing and reading */
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, "VmRSS:", 6) == 0 && *ret_pss == 0)
                        *ret_pss = strtol(line + 6, NULL, 10); /* no smaps_rollup: an upper bound */
                else if (strncmp(line, "RssAnon:", 8) == 0)
                        *ret_anon = strtol(line + 8, NULL, 10);
        fclose(f);
}

/* Appends the children of every thread of pid to tree[] (a child is listed under the thread that forked
 * it). */
static void add_children(pid_t pid, pid_t *tree, size_t *n)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
        DIR *d = opendir(path);
        if (!d)
                return; /* gone meanwhile */
        struct dirent *de;
        while ((de = readdir(d))) {
                int tid = atoi(de->d_name);
                if (tid <= 0)
                        continue;
                char cpath[128];
                snprintf(cpath, sizeof(cpath), "%s/%d/children", path, tid);
                FILE *f = fopen(cpath, "re");
                if (!f)
                        continue;
                int c;
                while (*n < PROC_TREE_MAX && fscanf(f, "%d", &c) == 1)
                        tree[(*n)++] = (pid_t)c;
                fclose(f);
        }
        closedir(d);
}

/* Whether a and b are one address space (kcmp(2); false when the kernel cannot tell: then both count). */
static bool same_vm(pid_t a, pid_t b)
{
        return syscall(SYS_kcmp, a, b, KCMP_VM, 0, 0) == 0;
}

void proc_tree_sample(pid_t top, int skip_top, ProcTreeSample *ret)
{
        pid_t tree[PROC_TREE_MAX];
        size_t n = 0;
        tree[n++] = top;
        for (size_t i = 0; i < n; i++)
                add_children(tree[i], tree, &n);
        *ret = (ProcTreeSample){};
        for (size_t i = skip_top ? 1 : 0; i < n; i++) {
                bool counted = false;
                for (size_t k = skip_top ? 1 : 0; k < i && !counted; k++)
                        counted = same_vm(tree[k], tree[i]);
                long pss, anon;
                pss_kb(tree[i], &pss, &anon);
                if (counted) {
                        ret->shared_vm++;
                        ret->shared_pss_kb += pss;
                        ret->shared_anon_kb += anon;
                        continue;
                }
                ret->pss_kb += pss;
                ret->anon_kb += anon;
                ret->procs++;
        }
}

double proc_cpu_s(pid_t pid)
{
        char path[64], buf[1024];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return -1;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = 0;
        /* the command name may hold blanks and parentheses: the fields start after the last ')' */
        char *p = strrchr(buf, ')');
        if (!p)
                return -1;
        unsigned long long v[4] = {};
        /* fields 3..13 (state .. cmajflt), then utime stime cutime cstime (14..17) */
        if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu", &v[0], &v[1],
                   &v[2], &v[3]) != 4)
                return -1;
        return (double)(v[0] + v[1] + v[2] + v[3]) / (double)sysconf(_SC_CLK_TCK);
}
