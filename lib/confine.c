/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "confine.h"
#include "macro.h"

#if defined(__x86_64__) && !defined(__ILP32__)
#define EVD_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define EVD_AUDIT_ARCH AUDIT_ARCH_AARCH64
#elif defined(__i386__)
#define EVD_AUDIT_ARCH AUDIT_ARCH_I386
#elif defined(__riscv) && __riscv_xlen == 64
#define EVD_AUDIT_ARCH AUDIT_ARCH_RISCV64
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define EVD_AUDIT_ARCH AUDIT_ARCH_PPC64LE
#elif defined(__s390x__)
#define EVD_AUDIT_ARCH AUDIT_ARCH_S390X
#endif

#ifdef EVD_AUDIT_ARCH

/* Syscalls refused outright (those an architecture lacks are left out by the preprocessor). */
static const int denied[] = {
#ifdef __NR_creat
    __NR_creat,
#endif
#ifdef __NR_openat2
    __NR_openat2,
#endif
    __NR_open_by_handle_at,
#ifdef __NR_rename
    __NR_rename,
#endif
#ifdef __NR_renameat
    __NR_renameat,
#endif
    __NR_renameat2,
#ifdef __NR_link
    __NR_link,
#endif
    __NR_linkat,
#ifdef __NR_symlink
    __NR_symlink,
#endif
    __NR_symlinkat,
#ifdef __NR_unlink
    __NR_unlink,
#endif
    __NR_unlinkat,
#ifdef __NR_mkdir
    __NR_mkdir,
#endif
    __NR_mkdirat,
#ifdef __NR_rmdir
    __NR_rmdir,
#endif
#ifdef __NR_mknod
    __NR_mknod,
#endif
    __NR_mknodat,
    __NR_truncate,
#ifdef __NR_chmod
    __NR_chmod,
#endif
    __NR_fchmod,
    __NR_fchmodat,
#ifdef __NR_fchmodat2
    __NR_fchmodat2,
#else
    452, /* fchmodat2 (Linux 6.6) on the generic and x86-64 tables; older headers lack the name */
#endif
#ifdef __NR_chown
    __NR_chown,
#endif
#ifdef __NR_lchown
    __NR_lchown,
#endif
    __NR_fchown,
    __NR_fchownat,
#ifdef __NR_utime
    __NR_utime,
#endif
#ifdef __NR_utimes
    __NR_utimes,
#endif
#ifdef __NR_futimesat
    __NR_futimesat,
#endif
    __NR_utimensat,
    __NR_setxattr,
    __NR_lsetxattr,
    __NR_fsetxattr,
    __NR_removexattr,
    __NR_lremovexattr,
    __NR_fremovexattr,
    __NR_mount,
    __NR_umount2,
    __NR_chroot,
    __NR_pivot_root,
#ifndef __SANITIZE_ADDRESS__ /* LeakSanitizer stops the threads with ptrace at exit (test builds only) */
    __NR_ptrace,
#endif
    __NR_process_vm_writev,
    __NR_io_uring_setup,
};

/* O_TMPFILE needs O_WRONLY or O_RDWR, so it is covered; its own constant includes O_DIRECTORY and must not
 * be in the mask (every directory open would be refused) */
#define WRITE_FLAGS (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND)
#define ERRNO_EPERM (SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA))
#define ARG_LO(n)   (offsetof(struct seccomp_data, args[n]) + (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__ ? 4 : 0))

int evd_confine_no_writes(void)
{
        /* layout: arch check (3), nr load (1), [x32 check (1)], one jeq per denied call, open/openat flag
         * checks, allow, deny */
        struct sock_filter f[8 + ELEMENTSOF(denied) + 12];
        size_t n = 0;
        f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
        f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, EVD_AUDIT_ARCH, 1, 0);
        f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
        f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
#if defined(__x86_64__)
        /* x32 calls carry bit 30 and would reach the same kernel code under other numbers */
        f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1);
        f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
#endif
        /* each denied call jumps to the final "deny" instruction */
        size_t first_deny = n;
        size_t flag_checks = 0;
#ifdef __NR_open
        flag_checks += 4;
#endif
        flag_checks += 4;
        size_t deny_at = first_deny + ELEMENTSOF(denied) + flag_checks + 1; /* after the allow */
        for (size_t i = 0; i < ELEMENTSOF(denied); i++, n++)
                f[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)denied[i],
                                                    (unsigned char)(deny_at - n - 1), 0);
                /* open(path, flags) / openat(dirfd, path, flags): refused when flags ask for any write
                 * access */
#ifdef __NR_open
        f[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_open, 0, 3);
        n++;
        f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(1));
        f[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, WRITE_FLAGS,
                                            (unsigned char)(deny_at - n - 1), 0);
        n++;
        f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
#endif
        f[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat, 0, 3);
        n++;
        f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(2));
        f[n] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, WRITE_FLAGS,
                                            (unsigned char)(deny_at - n - 1), 0);
        n++;
        f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
        f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
        if (n != deny_at)
                return -EINVAL; /* the layout above is wrong: never install a filter that misjumps */
        f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, ERRNO_EPERM);

        struct sock_fprog prog = {.len = (unsigned short)n, .filter = f};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -errno;
        if (syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0 &&
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
                return -errno;
        return 0;
}

#else

int evd_confine_no_writes(void)
{
        return -EOPNOTSUPP;
}

#endif
