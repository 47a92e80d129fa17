/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "source.h"

int evd_source_list(EvdSource *s, EvdSourceEntry **ret_entries, size_t *ret_n, EvdError *err)
{
        return s->ops->list(s, ret_entries, ret_n, err);
}

int evd_source_open(EvdSource *s, const char *path, EvdReader **ret_reader, EvdError *err)
{
        return s->ops->open(s, path, ret_reader, err);
}

void evd_source_read_next(EvdSource *s, const char *path)
{
        if (s->ops->read_next && path)
                s->ops->read_next(s, path);
}

int evd_source_identity(EvdSource *s, EvdSourceIdentity *ret, EvdError *err)
{
        memset(ret, 0, sizeof(*ret));
        return s->ops->identity(s, ret, err);
}

void evd_source_free(EvdSource *s)
{
        if (s)
                s->ops->free(s);
}

void evd_source_entries_free(EvdSourceEntry *entries, size_t n)
{
        for (size_t i = 0; entries && i < n; i++) {
                free(entries[i].path);
                free(entries[i].detail);
        }
        free(entries);
}

const char *evd_source_entry_type_to_string(EvdSourceEntryType t)
{
        static const char *const names[_EVD_SOURCE_ENTRY_TYPE_MAX] = {
            [EVD_SOURCE_FILE] = "file",
            [EVD_SOURCE_SYMLINK] = "symlink",
            [EVD_SOURCE_FIFO] = "fifo",
            [EVD_SOURCE_SOCKET] = "socket",
            [EVD_SOURCE_CHAR_DEVICE] = "character device",
            [EVD_SOURCE_BLOCK_DEVICE] = "block device",
            [EVD_SOURCE_OTHER] = "special file",
            [EVD_SOURCE_DAMAGED] = "damaged filesystem",
        };
        return (unsigned)t < _EVD_SOURCE_ENTRY_TYPE_MAX ? names[t] : NULL;
}

size_t evd_source_entries_files_first(EvdSourceEntry *entries, size_t n)
{
        /* stable: a rotation per misplaced run would be O(n^2); a scratch copy is O(n) */
        size_t n_files = 0;
        for (size_t i = 0; i < n; i++)
                n_files += entries[i].type == EVD_SOURCE_FILE;
        if (n_files == n || n_files == 0)
                return n_files;
        EvdSourceEntry *tmp = malloc(n * sizeof(*tmp));
        if (tmp) {
                size_t f = 0, o = n_files;
                for (size_t i = 0; i < n; i++)
                        tmp[entries[i].type == EVD_SOURCE_FILE ? f++ : o++] = entries[i];
                memcpy(entries, tmp, n * sizeof(*tmp));
                free(tmp);
                return n_files;
        }
        /* out of memory: an in-place insertion pass (order kept, slower) */
        for (size_t i = 0, f = 0; i < n; i++) {
                if (entries[i].type != EVD_SOURCE_FILE)
                        continue;
                EvdSourceEntry e = entries[i];
                memmove(entries + f + 1, entries + f, (i - f) * sizeof(*entries));
                entries[f++] = e;
        }
        return n_files;
}

ssize_t evd_reader_read(EvdReader *r, void *buf, size_t n, EvdError *err)
{
        return r->ops->read(r, buf, n, err);
}

ssize_t evd_reader_pread(EvdReader *r, void *buf, size_t n, uint64_t off, EvdError *err)
{
        if (!r->ops->pread)
                return evd_error_set(err, -ENOTSUP, "this source has no positioned read");
        return r->ops->pread(r, buf, n, off, err);
}

bool evd_reader_can_pread(const EvdReader *r)
{
        return r && r->ops->pread;
}

void evd_reader_close(EvdReader *r)
{
        if (r)
                r->ops->close(r);
}

int evd_source_read_small(EvdSource *s, const char *path, size_t max, char **ret_buf, size_t *ret_len,
                          EvdError *err)
{
        _cleanup_(evd_reader_closep) EvdReader *rd = NULL;
        int r = evd_source_open(s, path, &rd, err);
        if (r < 0)
                return r;
        if (rd->size > max)
                return evd_error_set(err, -EFBIG, "%s: %llu bytes, more than the %zu allowed", path,
                                     (unsigned long long)rd->size, max);
        _cleanup_free_ char *buf = malloc(max + 1);
        if (!buf)
                return -ENOMEM;
        size_t len = 0;
        for (;;) {
                if (len == max) {
                        /* one more byte would exceed the bound: check whether the file really ends here */
                        char extra;
                        ssize_t n = evd_reader_read(rd, &extra, 1, err);
                        if (n < 0)
                                return (int)n;
                        if (n > 0)
                                return evd_error_set(err, -EFBIG, "%s: more than the %zu bytes allowed",
                                                     path, max);
                        break;
                }
                ssize_t n = evd_reader_read(rd, buf + len, max - len, err);
                if (n < 0)
                        return (int)n;
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        buf[len] = 0;
        *ret_buf = steal_ptr(&buf);
        if (ret_len)
                *ret_len = len;
        return 0;
}
