/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Takes away a process's means to change any file by name, for the media worker (media-worker.h): it
 * parses hostile recordings with FFmpeg while holding the stored original (fd 3) and runs as the same
 * user that owns the store, so file permissions alone cannot stop a compromised worker from reopening
 * the original through /proc/self/fd/3 for writing, chmod-ing it, or renaming and unlinking store files.
 *
 * evd_confine_no_writes() sets PR_SET_NO_NEW_PRIVS and installs a seccomp filter that, for the rest of
 * the process's life (and its children's), fails with EPERM:
 *   - open/openat with any of O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND (O_TMPFILE needs one of the
 *     first two); openat2 (its flags
 *     cannot be inspected), creat, open_by_handle_at;
 *   - every call that changes a name or metadata: rename*, link*, symlink*, unlink*, mkdir*, rmdir,
 *     mknod*, truncate, chmod/fchmod*, chown/fchown*, utime*, set/remove xattr, mount, chroot;
 *   - ptrace, process_vm_writev, io_uring_setup (io_uring requests would bypass the filter);
 *   - any call of another ABI (x32, or a 32-bit call on a 64-bit kernel): the process is killed.
 * Descriptors already open keep their access: the worker still reads fd 3 and writes its output fd 4.
 *
 * Returns 0, -EOPNOTSUPP on an architecture this filter does not know (the caller decides), or the
 * -errno of prctl(). */
#pragma once

int evd_confine_no_writes(void);
