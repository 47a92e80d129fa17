/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavutil/crc.h>

#include "mkv-patch.h"

/* An EBML variable-length integer at off (at most 8 bytes): an element ID keeps its length marker, a size
 * loses it. Returns its length, or -EBADMSG. */
static int ebml_vint(int fd, uint64_t off, bool id, uint64_t *ret)
{
        uint8_t b[8];
        ssize_t k = pread(fd, b, sizeof(b), (off_t)off);
        if (k <= 0 || b[0] == 0)
                return -EBADMSG;
        int len = 1;
        while (!(b[0] & (0x80u >> (len - 1))))
                len++;
        if (len > k || (id && len > 4))
                return -EBADMSG;
        uint64_t v = id ? b[0] : (b[0] & (0xffu >> len));
        for (int i = 1; i < len; i++)
                v = v << 8 | b[i];
        *ret = v;
        return len;
}

#define EBML_ID_HEADER  0x1A45DFA3u
#define EBML_ID_SEGMENT 0x18538067u
#define EBML_ID_CRC32   0xBFu

/* The CRC-32 of the top-level element of the Matroska file fd that holds byte `at`, recomputed (it
 * covers the element's data after its CRC-32 element, as the muxer wrote it). */
static int matroska_fix_crc(int fd, uint64_t file_size, uint64_t at)
{
        uint64_t id, size, off = 0;
        int n, m;
        if ((n = ebml_vint(fd, off, true, &id)) < 0 || id != EBML_ID_HEADER ||
            (m = ebml_vint(fd, off + n, false, &size)) < 0)
                return -EBADMSG;
        off += (uint64_t)(n + m) + size;
        if ((n = ebml_vint(fd, off, true, &id)) < 0 || id != EBML_ID_SEGMENT ||
            (m = ebml_vint(fd, off + n, false, &size)) < 0)
                return -EBADMSG;
        off += (uint64_t)(n + m);
        for (unsigned elements = 0; off < file_size && elements < 64; elements++) {
                if ((n = ebml_vint(fd, off, true, &id)) < 0 ||
                    (m = ebml_vint(fd, off + n, false, &size)) < 0)
                        return -EBADMSG;
                uint64_t data = off + (uint64_t)(n + m);
                if (size > file_size - data)
                        return -EBADMSG;
                if (at >= data && at < data + size) {
                        uint64_t cid, csize;
                        int cn = ebml_vint(fd, data, true, &cid), cm;
                        if (cn < 0 || cid != EBML_ID_CRC32)
                                return 0; /* no CRC-32 to fix */
                        if ((cm = ebml_vint(fd, data + cn, false, &csize)) < 0 || csize != 4)
                                return -EBADMSG;
                        uint64_t from = data + (uint64_t)(cn + cm) + 4, end = data + size;
                        const AVCRC *table = av_crc_get_table(AV_CRC_32_IEEE_LE);
                        uint32_t crc = UINT32_MAX;
                        uint8_t buf[65536];
                        for (uint64_t p = from; p < end;) {
                                ssize_t k =
                                    pread(fd, buf, (size_t)MIN((uint64_t)sizeof(buf), end - p), (off_t)p);
                                if (k <= 0)
                                        return k < 0 ? -errno : -EBADMSG;
                                crc = av_crc(table, crc, buf, (size_t)k);
                                p += (uint64_t)k;
                        }
                        crc ^= UINT32_MAX;
                        uint8_t le[4] = {(uint8_t)crc, (uint8_t)(crc >> 8), (uint8_t)(crc >> 16),
                                         (uint8_t)(crc >> 24)};
                        if (pwrite(fd, le, sizeof(le), (off_t)(data + (uint64_t)(cn + cm))) !=
                            (ssize_t)sizeof(le))
                                return -EIO;
                        return 0;
                }
                off = data + size;
        }
        return -EBADMSG;
}

/* The placeholder of the original's SHA-256 in the written archive copy replaced by the real value: it
 * must occur exactly once in the part of the file written before the clusters. */
int evd_mkv_patch_text(int fd, uint64_t size, const char *placeholder, const char *value, const char *name,
                       EvdError *err)
{
        const size_t len = strlen(placeholder);
        if (len < 16 || len > 1024 || strlen(value) != len)
                return evd_error_set(err, -EINVAL, "%s: a placeholder and its value of the same length",
                                     name);
        uint64_t limit = MIN(size, (uint64_t)EVD_MKV_PATCH_SCAN), found = UINT64_MAX;
        unsigned count = 0;
        _cleanup_free_ uint8_t *buf = malloc(1024 * 1024 + len);
        if (!buf)
                return evd_error_set(err, -ENOMEM, "%s: out of memory", name);
        for (uint64_t off = 0; off < limit;) {
                size_t want = (size_t)MIN((uint64_t)1024 * 1024 + len, limit - off);
                ssize_t k = pread(fd, buf, want, (off_t)off);
                if (k < 0)
                        return evd_error_set_errno(err, -errno, "%s: reading the archive copy", name);
                if (k == 0)
                        break;
                for (size_t i = 0; i + len <= (size_t)k; i++)
                        if (buf[i] == (uint8_t)placeholder[0] && memcmp(buf + i, placeholder, len) == 0) {
                                if (off + i != found)
                                        count++;
                                found = off + i;
                        }
                if ((size_t)k <= len)
                        break;
                off += (uint64_t)k - len + 1; /* overlap: a placeholder across two reads is seen once */
        }
        if (count != 1)
                return evd_error_set(err, -EBADMSG,
                                     "%s: the archive copy holds the SHA-256 placeholder %u times, not once",
                                     name, count);
        if (pwrite(fd, value, len, (off_t)found) != (ssize_t)len)
                return evd_error_set_errno(err, -errno, "%s: writing the original's SHA-256", name);
        int r = matroska_fix_crc(fd, size, found);
        if (r < 0)
                return evd_error_set_errno(err, r, "%s: updating the checksum of the archive copy's tags",
                                           name);
        return 0;
}
