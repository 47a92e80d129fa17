/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reading a small local file whole (a spool entry, a cache file, a profile, a configuration file).
 * A recorder's files are read through its EvdSource instead (evd_source_read_small(), source.h). */
#pragma once

#include <stddef.h>

/* Reads dir_fd/path (dir_fd may be AT_FDCWD) into a NUL-terminated buffer. The file must be a regular
 * file, not a symlink (O_NOFOLLOW), of at most max bytes: -EFBIG beyond, -EBADMSG if it is not a regular
 * file or holds a NUL byte, else the -errno of open/read. *ret_buf (freed by the caller) and *ret_len are
 * set only on success; ret_len may be NULL. */
int evd_small_file_read(int dir_fd, const char *path, size_t max, char **ret_buf, size_t *ret_len);

/* For files an administrator writes (evidock.conf, recorders.d profiles), which may be links into a
 * configuration-management tree or, for a test run, /dev/null: */
#define EVD_SMALL_FILE_FOLLOW   (1u << 0) /* a symlink is followed (no O_NOFOLLOW) */
#define EVD_SMALL_FILE_ANY_TYPE (1u << 1) /* any readable file (a pipe, /dev/null), still read up to max */

/* evd_small_file_read() with EVD_SMALL_FILE_* flags; 0 is evd_small_file_read(). */
int evd_small_file_read_flags(int dir_fd, const char *path, size_t max, unsigned flags, char **ret_buf,
                              size_t *ret_len);
