/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A recorder volume that is already visible as a directory. Opened read-only; symlinks are never
 * followed (a volume could point outside itself), and nothing below the directory is ever modified. */
#include <dirent.h>
#include <fcntl.h>
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

static void dir_reader_close(EvdReader *r)
{
        DirReader *d = r->userdata;
        closep(&d->fd);
        free(d->path);
        free(d);
}

static const EvdReaderOps dir_reader_ops = {
    .read = dir_reader_read,
    .close = dir_reader_close,
};

/* Opens a relative path below dir_fd one component at a time with O_NOFOLLOW, so that neither a
 * symlinked directory nor ".." can lead outside the volume. */
static int open_beneath(int dir_fd, const char *path, int flags)
{
        _cleanup_free_ char *copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        _cleanup_close_ int cur = dup(dir_fd);
        if (cur < 0)
                return -errno;
        char *save = NULL;
        char *part = strtok_r(copy, "/", &save);
        while (part) {
                char *next = strtok_r(NULL, "/", &save);
                if (strcmp(part, "..") == 0 || strcmp(part, ".") == 0)
                        return -EINVAL;
                int f = next ? (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                             : (flags | O_NOFOLLOW | O_CLOEXEC);
                int fd = openat(cur, part, f);
                if (fd < 0 && errno == EPERM && (f & O_NOATIME))
                        fd = openat(cur, part, f & ~O_NOATIME);
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
        _cleanup_close_ int fd = open_beneath(d->dir_fd, path, O_RDONLY | O_NOATIME);
        if (fd < 0)
                return evd_error_set_errno(err, fd, "opening %s/%s", d->path, path);
        struct stat st;
        if (fstat(fd, &st) < 0)
                return evd_error_set_errno(err, -errno, "stat %s/%s", d->path, path);
        if (!S_ISREG(st.st_mode))
                return evd_error_set(err, -EISDIR, "%s/%s is not a regular file", d->path, path);
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
} Listing;

static int listing_add(Listing *l, const char *path, const struct stat *st)
{
        if (l->n >= EVD_SOURCE_MAX_ENTRIES)
                return -E2BIG;
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
            .size = (uint64_t)st->st_size,
            .mtime_us = (int64_t)st->st_mtim.tv_sec * 1000000 + st->st_mtim.tv_nsec / 1000,
        };
        return 0;
}

static int walk(int dir_fd, const char *prefix, unsigned depth, Listing *l, EvdError *err)
{
        if (depth > EVD_SOURCE_MAX_DEPTH)
                return evd_error_set(err, -ELOOP, "directory %s nested deeper than %u levels", prefix,
                                     EVD_SOURCE_MAX_DEPTH);
        int fd = dup(dir_fd);
        if (fd < 0)
                return -errno;
        DIR *dir = fdopendir(fd);
        if (!dir) {
                close(fd);
                return -errno;
        }
        rewinddir(dir);
        int r = 0;
        struct dirent *de;
        while ((errno = 0, de = readdir(dir))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, "%s%s%s", prefix, prefix[0] ? "/" : "", de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                struct stat st;
                if (fstatat(dir_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        r = evd_error_set_errno(err, -errno, "stat %s", path);
                        break;
                }
                if (S_ISDIR(st.st_mode)) {
                        _cleanup_close_ int sub =
                            openat(dir_fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub < 0) {
                                r = evd_error_set_errno(err, -errno, "opening directory %s", path);
                                break;
                        }
                        r = walk(sub, path, depth + 1, l, err);
                        if (r < 0)
                                break;
                } else if (S_ISREG(st.st_mode)) {
                        r = listing_add(l, path, &st);
                        if (r == -E2BIG)
                                r = evd_error_set(err, r, "more than %u files on the volume",
                                                  EVD_SOURCE_MAX_ENTRIES);
                        if (r < 0)
                                break;
                }
                /* symlinks, devices, fifos: not recordings; never followed */
        }
        if (r == 0 && errno != 0)
                r = evd_error_set_errno(err, -errno, "reading directory %s", prefix[0] ? prefix : ".");
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
        int r = walk(d->dir_fd, "", 0, &l, err);
        if (r < 0) {
                evd_source_entries_free(l.entries, l.n);
                return evd_error_prefix(err, "listing %s: ", d->path), r;
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
