/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a process tree holds right now, read from /proc: for bench-rss (a command and its descendants) and
 * bench-dock (evidockd and its media workers). */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#define PROC_TREE_MAX                                                                                       \
        256u /* processes followed per sample; a larger tree is cut (the sum a lower bound)                 \
              */

typedef struct ProcTreeSample {
        long pss_kb; /* PSS summed over the tree: a page shared by k processes counts 1/k in each, so this is
                      * what the tree holds (VmRSS would count shared libraries once per process) */
        long anon_kb;     /* RssAnon summed: the private memory (heap, buffers, stacks) */
        size_t procs;     /* processes summed */
        size_t shared_vm; /* processes left out because they share the address space of one counted: a
                           * posix_spawn() child between its clone(CLONE_VM | CLONE_VFORK) and its exec */
        long shared_pss_kb, shared_anon_kb; /* what those would have added (counted twice) */
} ProcTreeSample;

/* Samples top and all its descendants (children of every thread, through /proc/PID/task/TID/children);
 * skip_top leaves top itself out of the sums (when it is a wrapper such as /usr/bin/time). A process
 * that is gone is counted as 0. An address space is counted once: a child that shares its parent's
 * (posix_spawn's vfork child before it execs: its smaps and RssAnon are the parent's) is left out, else
 * every sample that lands in a spawn would count the spawning process twice. */
void proc_tree_sample(pid_t top, int skip_top, ProcTreeSample *ret);

/* CPU seconds (user + system) of pid and of its children that it has waited for (utime + stime + cutime +
 * cstime of /proc/PID/stat); -1 if pid is gone. */
double proc_cpu_s(pid_t pid);
