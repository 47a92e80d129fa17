/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A recorder volume that is already visible as a directory. Opened read-only; symlinks are never
 * followed (a volume could point outside itself), special files (FIFOs, sockets, device nodes) are
 * listed with their type but never opened (a FIFO would block the docking forever), and nothing below
 * the directory is ever modified. */
#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "source.h"

typedef struct DirSource {
        int dir_fd;
        char *path;
} DirSource;

typedef struct DirReader {
        EvdReader reader;
        int fd;
        char *path; /* for error messages */
} DirReader;

static ssize_t dir_reader_read(EvdReader *r, void *buf, size_t n, EvdError *err)
{
        DirReader *d = r->userdata;
        for (;;) {
                ssize_t k = read(d->fd, buf, n);
                if (k >= 0)
                        return k;
                if (errno == EINTR)
                        continue;
                return evd_error_set_errno(err, -errno, "reading %s", d->path);
        }
}

static ssize_t dir_reader_pread(EvdReader *r, void *buf, size_t n, uint64_t off, EvdError *err)
{
        DirReader *d = r->userdata;
        if (off > (uint64_t)INT64_MAX)
                return 0;
        for (;;) {
                ssize_t k = pread(d->fd, buf, n, (off_t)off);
                if (k >= 0)
                        return k;
                if (errno == EINTR)
                        continue;
                return evd_error_set_errno(err, -errno, "reading %s at byte %" PRIu64, d->path, off);
        }
}

static void dir_reader_close(EvdReader *r)
{
        DirReader *d = r->userdata;
        closep(&d->fd);
        free(d->path);
        free(d);
}

static const EvdReaderOps dir_reader_ops = {
    .read = dir_reader_read,
    .pread = dir_reader_pread,
    .close = dir_reader_close,
};

static EvdSourceEntryType entry_type(mode_t mode)
{
        switch (mode & S_IFMT) {
        case S_IFREG:
                return EVD_SOURCE_FILE;
        case S_IFLNK:
                return EVD_SOURCE_SYMLINK;
        case S_IFIFO:
                return EVD_SOURCE_FIFO;
        case S_IFSOCK:
                return EVD_SOURCE_SOCKET;
        case S_IFCHR:
                return EVD_SOURCE_CHAR_DEVICE;
        case S_IFBLK:
                return EVD_SOURCE_BLOCK_DEVICE;
        default:
                return EVD_SOURCE_OTHER;
        }
}

/* Opens a regular file at a relative path below dir_fd one component at a time with O_NOFOLLOW, so
 * that neither a symlinked directory nor ".." can lead outside the volume. The last component's type is
 * checked before it is opened (a FIFO or device node is never opened), and again on the descriptor,
 * opened O_NONBLOCK, in case it was swapped in between. *ret_type names what was found instead of a
 * regular file (-ENOTSUP, or -EISDIR for a directory). */
static int open_beneath(int dir_fd, const char *path, int flags, EvdSourceEntryType *ret_type)
{
        _cleanup_free_ char *copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        _cleanup_close_ int cur = dup(dir_fd);
        if (cur < 0)
                return -errno;
        char *save = NULL;
        char *part = strtok_r(copy, "/", &save);
        if (!part)
                return -EINVAL;
        while (part) {
                char *next = strtok_r(NULL, "/", &save);
                if (strcmp(part, "..") == 0 || strcmp(part, ".") == 0)
                        return -EINVAL;
                int fd;
                if (next) /* O_DIRECTORY: a FIFO or device here fails with ENOTDIR before it is opened */
                        fd = openat(cur, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                else {
                        struct stat st;
                        if (fstatat(cur, part, &st, AT_SYMLINK_NOFOLLOW) < 0)
                                return -errno;
                        if (!S_ISREG(st.st_mode)) {
                                *ret_type = entry_type(st.st_mode);
                                return S_ISDIR(st.st_mode) ? -EISDIR : -ENOTSUP;
                        }
                        int f = flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
                        fd = openat(cur, part, f);
                        if (fd < 0 && errno == EPERM && (f & O_NOATIME))
                                fd = openat(cur, part, f & ~O_NOATIME);
                        if (fd >= 0) {
                                _cleanup_close_ int check = fd;
                                if (fstat(check, &st) < 0)
                                        return -errno;
                                if (!S_ISREG(st.st_mode)) {
                                        *ret_type = entry_type(st.st_mode);
                                        return S_ISDIR(st.st_mode) ? -EISDIR : -ENOTSUP;
                                }
                                /* blocking reads from here on: a regular file never blocks on open */
                                if (fcntl(check, F_SETFL, fcntl(check, F_GETFL) & ~O_NONBLOCK) < 0)
                                        return -errno;
                                fd = steal_fd(&check);
                        }
                }
                if (fd < 0)
                        return -errno;
                closep(&cur);
                cur = fd;
                part = next;
        }
        return steal_fd(&cur);
}

static int dir_open(EvdSource *s, const char *path, EvdReader **ret_reader, EvdError *err)
{
        DirSource *d = s->userdata;
        EvdSourceEntryType type = EVD_SOURCE_OTHER;
        _cleanup_close_ int fd = open_beneath(d->dir_fd, path, O_RDONLY | O_NOATIME, &type);
        if (fd == -ENOTSUP || fd == -EISDIR)
                return evd_error_set(err, fd, "%s/%s is a %s, not a regular file: not opened", d->path, path,
                                     fd == -EISDIR ? "directory" : evd_source_entry_type_to_string(type));
        if (fd < 0)
                return evd_error_set_errno(err, fd, "opening %s/%s", d->path, path);
        struct stat st;
        if (fstat(fd, &st) < 0)
                return evd_error_set_errno(err, -errno, "stat %s/%s", d->path, path);
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        DirReader *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->path = NULL;
        if (asprintf(&r->path, "%s/%s", d->path, path) < 0) {
                free(r);
                return -ENOMEM;
        }
        r->fd = steal_fd(&fd);
        r->reader.ops = &dir_reader_ops;
        r->reader.userdata = r;
        r->reader.size = (uint64_t)st.st_size;
        *ret_reader = &r->reader;
        return 0;
}

typedef struct Listing {
        EvdSourceEntry *entries;
        size_t n, allocated;
        bool full; /* EVD_SOURCE_MAX_ENTRIES reached: the walk stops, one DAMAGED entry says so */
} Listing;

/* Adds an entry; detail (DAMAGED only) is a printf format. When the listing is full, adds the one
 * entry that says so instead, and returns 1 (the walk stops). */
static int listing_add(Listing *l, const char *path, EvdSourceEntryType type, const struct stat *st,
                       const char *detail_fmt, ...) _printf_(5, 6);
static int listing_add(Listing *l, const char *path, EvdSourceEntryType type, const struct stat *st,
                       const char *detail_fmt, ...)
{
        if (l->full)
                return 1;
        _cleanup_free_ char *detail = NULL;
        if (l->n >= EVD_SOURCE_MAX_ENTRIES) {
                l->full = true;
                type = EVD_SOURCE_DAMAGED;
                st = NULL;
                path = "";
                if (asprintf(&detail, "more than %u entries on the volume: the rest is not listed",
                             EVD_SOURCE_MAX_ENTRIES) < 0)
                        return -ENOMEM;
        } else if (detail_fmt) {
                va_list ap;
                va_start(ap, detail_fmt);
                int k = vasprintf(&detail, detail_fmt, ap);
                va_end(ap);
                if (k < 0)
                        return -ENOMEM;
        }
        if (l->n == l->allocated) {
                size_t na = l->allocated ? l->allocated * 2 : 64;
                EvdSourceEntry *e = realloc(l->entries, na * sizeof(*e));
                if (!e)
                        return -ENOMEM;
                l->entries = e;
                l->allocated = na;
        }
        char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        l->entries[l->n++] = (EvdSourceEntry){
            .path = p,
            .size = st ? (uint64_t)st->st_size : 0,
            .mtime_us = st ? (int64_t)st->st_mtim.tv_sec * 1000000 + st->st_mtim.tv_nsec / 1000 : 0,
            .type = type,
            .detail = steal_ptr(&detail),
        };
        return l->full ? 1 : 0;
}

/* Walks one directory. Returns < 0 only when the listing cannot go on at all (out of memory); what
 * cannot be read below dir_fd becomes a DAMAGED entry. 1: the listing is full, stop. */
static int walk(int dir_fd, const char *prefix, unsigned depth, Listing *l)
{
        const char *where = prefix[0] ? prefix : ".";
        if (depth > EVD_SOURCE_MAX_DEPTH)
                return listing_add(l, prefix, EVD_SOURCE_DAMAGED, NULL,
                                   "directory nested deeper than %u levels: not listed",
                                   EVD_SOURCE_MAX_DEPTH);
        int fd = dup(dir_fd);
        if (fd < 0)
                return -errno;
        DIR *dir = fdopendir(fd);
        if (!dir) {
                int e = errno;
                close(fd);
                return listing_add(l, prefix, EVD_SOURCE_DAMAGED, NULL, "directory %s cannot be read: %s",
                                   where, strerror(e));
        }
        rewinddir(dir);
        int r = 0;
        struct dirent *de;
        while (r == 0 && (errno = 0, de = readdir(dir))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, "%s%s%s", prefix, prefix[0] ? "/" : "", de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                struct stat st;
                if (fstatat(dir_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        r = listing_add(l, path, EVD_SOURCE_DAMAGED, NULL, "entry cannot be examined: %s",
                                        strerror(errno));
                        continue;
                }
                if (S_ISDIR(st.st_mode)) {
                        _cleanup_close_ int sub =
                            openat(dir_fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub < 0)
                                r = listing_add(l, path, EVD_SOURCE_DAMAGED, NULL,
                                                "directory cannot be opened: %s", strerror(errno));
                        else
                                r = walk(sub, path, depth + 1, l);
                } else /* a regular file, or something to report: never followed, never opened */
                        r = listing_add(l, path, entry_type(st.st_mode), &st, NULL);
        }
        if (r == 0 && errno != 0)
                r = listing_add(l, prefix, EVD_SOURCE_DAMAGED, NULL, "reading directory %s stopped: %s",
                                where, strerror(errno));
        closedir(dir);
        return r;
}

static int entry_cmp(const void *a, const void *b)
{
        return strcmp(((const EvdSourceEntry *)a)->path, ((const EvdSourceEntry *)b)->path);
}

static int dir_list(EvdSource *s, EvdSourceEntry **ret_entries, size_t *ret_n, EvdError *err)
{
        DirSource *d = s->userdata;
        Listing l = {};
        int r = walk(d->dir_fd, "", 0, &l);
        if (r < 0) {
                evd_source_entries_free(l.entries, l.n);
                return evd_error_set_errno(err, r, "listing %s", d->path);
        }
        if (l.n > 1)
                qsort(l.entries, l.n, sizeof(*l.entries), entry_cmp);
        *ret_entries = l.entries;
        *ret_n = l.n;
        return 0;
}

static int dir_identity(EvdSource *s, EvdSourceIdentity *ret, EvdError *err)
{
        DirSource *d = s->userdata;
        snprintf(ret->transport, sizeof(ret->transport), "dir");
        snprintf(ret->location, sizeof(ret->location), "%s", d->path);
        return 0;
}

static void dir_free(EvdSource *s)
{
        DirSource *d = s->userdata;
        closep(&d->dir_fd);
        free(d->path);
        free(d);
        free(s);
}

static const EvdSourceOps dir_ops = {
    .name = "dir",
    .list = dir_list,
    .open = dir_open,
    .identity = dir_identity,
    .free = dir_free,
};

int evd_source_dir_new(const char *dir, EvdSource **ret, EvdError *err)
{
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return evd_error_set_errno(err, -errno, "opening source directory %s", dir);
        DirSource *d = calloc(1, sizeof(*d));
        EvdSource *s = calloc(1, sizeof(*s));
        char *p = strdup(dir);
        if (!d || !s || !p) {
                free(d);
                free(s);
                free(p);
                return -ENOMEM;
        }
        d->dir_fd = steal_fd(&fd);
        d->path = p;
        s->ops = &dir_ops;
        s->userdata = d;
        *ret = s;
        return 0;
}
