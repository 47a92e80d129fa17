/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench/proc-tree.c, the memory figures of bench-dock and bench-rss: an address space is counted once.
 *
 * The rush's peak PSS once read 470 MB (384 MB anon) against 171-175 MB in every other run (issue 14):
 * the sampler had caught evidockd while several dockings were spawning their media workers at the same
 * moment. posix_spawn() runs the child in the parent's address space (clone(CLONE_VM | CLONE_VFORK))
 * until it execs, and /proc/CHILD/smaps_rollup and RssAnon then report the parent's whole memory: each
 * such child counted evidockd once more. A child made with CLONE_VM here stands for such a spawn, held
 * before its exec for as long as the test needs; a fork()ed child (its own address space, the pages
 * shared copy-on-write) must still be counted, and PSS splits its shared pages. */
#include <errno.h>
#include <linux/kcmp.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "proc-tree.h"

#define BUF_MB 64

static uint8_t *buf;
static int hold[2] = {-1, -1}; /* the child blocks reading hold[0] until the parent closes hold[1] */

static int held_child(void *arg)
{
        (void)arg;
        close(hold[1]); /* its own copy of the descriptor table: else the read never sees the end */
        char c;
        while (read(hold[0], &c, 1) < 0 && errno == EINTR)
                ;
        _exit(0);
}

static double mb(long kb)
{
        return (double)kb / 1024.0;
}

static bool kcmp_works(void)
{
        return syscall(SYS_kcmp, getpid(), getpid(), KCMP_VM, 0, 0) == 0;
}

/* Starts a child (CLONE_VM: the parent's address space, as a spawn before its exec; else a fork), takes a
 * sample of this process and its children, and lets the child go. */
static int sample_with_child(bool share_vm, ProcTreeSample *ret)
{
        if (pipe(hold) < 0)
                return -errno;
        pid_t pid;
        void *stack = NULL;
        size_t stack_size = 256 * 1024;
        if (share_vm) {
                stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
                if (stack == MAP_FAILED)
                        return -errno;
                pid = clone(held_child, (uint8_t *)stack + stack_size, CLONE_VM | SIGCHLD, NULL);
        } else {
                pid = fork();
                if (pid == 0)
                        held_child(NULL);
        }
        if (pid < 0)
                return -errno;
        usleep(100 * 1000); /* the child is listed in /proc/self/task/N/children */
        proc_tree_sample(getpid(), 0, ret);
        close(hold[1]);
        int st;
        waitpid(pid, &st, 0);
        close(hold[0]);
        if (stack)
                munmap(stack, stack_size);
        return 0;
}

static ProcTreeSample alone;

static void test_alone(void)
{
        proc_tree_sample(getpid(), 0, &alone);
        printf("# alone: PSS %.1f MB, anon %.1f MB\n", mb(alone.pss_kb), mb(alone.anon_kb));
        CHECK_INT(alone.procs, ==, 1);
        CHECK_INT(alone.pss_kb, >=, BUF_MB * 1024);
        CHECK_INT(alone.anon_kb, >=, BUF_MB * 1024);
}

static void test_spawn_counted_once(void)
{
        if (!kcmp_works())
                SKIP("kcmp(2) is not available here (CONFIG_KCMP, or a seccomp filter): the sampler cannot "
                     "tell a spawn's child from its parent");
        ProcTreeSample t;
        CHECK_INT(sample_with_child(true, &t), ==, 0);
        printf("# with a child in this address space: PSS %.1f MB, anon %.1f MB, %zu process(es) summed, "
               "%zu left out (would add %.1f MB)\n",
               mb(t.pss_kb), mb(t.anon_kb), t.procs, t.shared_vm, mb(t.shared_pss_kb));
        CHECK_INT(t.shared_vm, ==, 1);
        CHECK_INT(t.procs, ==, 1);
        /* counted twice this would be ~2 x alone: at least BUF_MB more */
        CHECK_INT(t.pss_kb, <, alone.pss_kb + BUF_MB * 1024 / 2);
        CHECK_INT(t.anon_kb, <, alone.anon_kb + BUF_MB * 1024 / 2);
        CHECK_INT(t.shared_pss_kb, >=, BUF_MB * 1024);
}

static void test_fork_counted(void)
{
        ProcTreeSample t;
        CHECK_INT(sample_with_child(false, &t), ==, 0);
        printf("# with a forked child: PSS %.1f MB, anon %.1f MB, %zu process(es) summed\n", mb(t.pss_kb),
               mb(t.anon_kb), t.procs);
        CHECK_INT(t.procs, ==, 2);
        CHECK_INT(t.shared_vm, ==, 0);
        /* the buffer is shared copy-on-write: PSS gives each process half of it, the sum stays about the
         * same */
        CHECK_INT(t.pss_kb, <, alone.pss_kb + BUF_MB * 1024 / 2);
}

int main(void)
{
        buf = malloc((size_t)BUF_MB << 20);
        if (!buf)
                return 2;
        memset(buf, 0x5a, (size_t)BUF_MB << 20);
        RUN(test_alone);
        RUN(test_spawn_counted_once);
        RUN(test_fork_counted);
        free(buf);
        return check_finish();
}
