/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include "copy.h"
#include "hash.h"
#include "read-ahead.h"

static ssize_t reader_pread(void *userdata, void *buf, size_t n, uint64_t off, EvdError *err)
{
        return evd_reader_pread(userdata, buf, n, off, err);
}

/* The bytes [tail_offset, size) of the recording into a sealed memfd (-errno: none). */
static int read_tail(EvdReader *rd, const EvdMp4Layout *l, int *ret_fd)
{
        _cleanup_close_ int fd = memfd_create("evidock-ahead", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return -errno;
        _cleanup_free_ uint8_t *buf = malloc(EVD_COPY_CHUNK);
        if (!buf)
                return -ENOMEM;
        for (uint64_t done = 0; done < l->tail_size;) {
                size_t want = (size_t)MIN((uint64_t)EVD_COPY_CHUNK, l->tail_size - done);
                ssize_t k = evd_reader_pread(rd, buf, want, l->tail_offset + done, NULL);
                if (k <= 0)
                        return k < 0 ? (int)k : -ENODATA;
                if (write(fd, buf, (size_t)k) != k)
                        return -EIO;
                done += (uint64_t)k;
        }
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
                return -errno;
        *ret_fd = fd;
        fd = -1;
        return 0;
}

int evd_read_ahead_mp4_index(EvdReader *rd, uint64_t size, EvdMp4Layout *ret_layout, int *ret_fd,
                             const char **ret_why)
{
        const char *why = NULL;
        if (!evd_reader_can_pread(rd)) {
                *ret_why = "the source has no positioned read";
                return 0;
        }
        int r = evd_mp4_layout(reader_pread, rd, size, EVD_READ_AHEAD_MAX, ret_layout, &why, NULL);
        if (r <= 0) {
                *ret_why = r < 0 ? "a read of its boxes failed" : why;
                return 0;
        }
        if (read_tail(rd, ret_layout, ret_fd) < 0) {
                *ret_why = "reading its index ahead failed";
                return 0;
        }
        return 1;
}

bool evd_read_ahead_matches(int ahead_fd, int original_fd, const EvdMp4Layout *l)
{
        _cleanup_free_ uint8_t *a = malloc(EVD_COPY_CHUNK), *b = malloc(EVD_COPY_CHUNK);
        if (!a || !b)
                return false;
        for (uint64_t done = 0; done < l->tail_size;) {
                size_t want = (size_t)MIN((uint64_t)EVD_COPY_CHUNK, l->tail_size - done);
                if (pread(ahead_fd, a, want, (off_t)done) != (ssize_t)want ||
                    pread(original_fd, b, want, (off_t)(l->tail_offset + done)) != (ssize_t)want ||
                    memcmp(a, b, want) != 0)
                        return false;
                done += want;
        }
        return true;
}

int evd_read_ahead_placeholder(char ret[65])
{
        uint8_t nonce[EVD_DIGEST_SIZE];
        if (getrandom(nonce, sizeof(nonce), 0) != (ssize_t)sizeof(nonce))
                return -EIO;
        evd_hex(nonce, sizeof(nonce), ret);
        return 0;
}
