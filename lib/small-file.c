/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>

#include "macro.h"
#include "small-file.h"

int evd_small_file_read(int dir_fd, const char *path, size_t max, char **ret_buf, size_t *ret_len)
{
        return evd_small_file_read_flags(dir_fd, path, max, 0, ret_buf, ret_len);
}

int evd_small_file_read_flags(int dir_fd, const char *path, size_t max, unsigned flags, char **ret_buf,
                              size_t *ret_len)
{
        _cleanup_close_ int fd =
            openat(dir_fd, path,
                   O_RDONLY | O_CLOEXEC | O_NOCTTY | ((flags & EVD_SMALL_FILE_FOLLOW) ? 0 : O_NOFOLLOW));
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) && !(flags & EVD_SMALL_FILE_ANY_TYPE))
                return -EBADMSG;
        if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max)
                return -EFBIG;
        /* the size may change under us: read at most max, and one byte more to notice a longer file */
        _cleanup_free_ char *buf = malloc(max + 1);
        if (!buf)
                return -ENOMEM;
        size_t len = 0;
        for (;;) {
                char extra;
                ssize_t n = len < max ? read(fd, buf + len, max - len) : read(fd, &extra, 1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                if (len == max)
                        return -EFBIG;
                len += (size_t)n;
        }
        buf[len] = 0;
        if (strlen(buf) != len)
                return -EBADMSG;
        *ret_buf = steal_ptr(&buf);
        if (ret_len)
                *ret_len = len;
        return 0;
}
