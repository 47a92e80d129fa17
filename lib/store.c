/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "copy.h"
#include "store.h"

struct EvdStore {
        int root_fd;
        char *root;
        pthread_mutex_t space_lock;
        uint64_t promised; /* evd_store_space_*(): bytes reserved and not written yet */
};

static const char *const area_names[_EVD_STORE_AREA_MAX] = {
    [EVD_STORE_ORIGINALS] = "originals",
    [EVD_STORE_ARCHIVE] = "archive",
    [EVD_STORE_QUARANTINE] = "quarantine",
};

const char *evd_store_area_name(EvdStoreArea a)
{
        return (unsigned)a < _EVD_STORE_AREA_MAX ? area_names[a] : NULL;
}

/* mkdirat + open, fsyncing the parent when the directory is new so the entry survives a crash. */
static int open_subdir(int parent_fd, const char *name, int *ret_fd)
{
        bool created = false;
        if (mkdirat(parent_fd, name, 0750) == 0)
                created = true;
        else if (errno != EEXIST)
                return -errno;
        int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (created && fsync(parent_fd) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

static bool component_ok(const char *s, size_t max)
{
        size_t n = strlen(s);
        if (n == 0 || n > max || s[0] == '.')
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_'))
                        return false;
        }
        return true;
}

int evd_store_open(const char *root, EvdStore **ret, EvdError *err)
{
        if (mkdir(root, 0750) < 0 && errno != EEXIST)
                return evd_error_set_errno(err, -errno, "creating archive store %s", root);
        _cleanup_close_ int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return evd_error_set_errno(err, -errno, "opening archive store %s", root);
        if (faccessat(fd, ".", W_OK, AT_EACCESS) < 0)
                return evd_error_set_errno(err, -errno, "archive store %s is not writable", root);
        EvdStore *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->root = strdup(root);
        if (!s->root) {
                free(s);
                return -ENOMEM;
        }
        s->root_fd = steal_fd(&fd);
        pthread_mutex_init(&s->space_lock, NULL);
        *ret = s;
        return 0;
}

void evd_store_free(EvdStore *s)
{
        if (!s)
                return;
        closep(&s->root_fd);
        pthread_mutex_destroy(&s->space_lock);
        free(s->root);
        free(s);
}

const char *evd_store_root(const EvdStore *s)
{
        return s->root;
}

int evd_store_root_fd(const EvdStore *s)
{
        return s->root_fd;
}

int evd_store_dir(EvdStore *s, EvdStoreArea area, const char *device, const char *day, int *ret_fd,
                  char **ret_rel, EvdError *err)
{
        if ((unsigned)area >= _EVD_STORE_AREA_MAX || !component_ok(device, 64) || !component_ok(day, 10))
                return evd_error_set(err, -EINVAL, "invalid store directory %s/%s", strna(device),
                                     strna(day));
        _cleanup_close_ int a = -1, d = -1;
        int day_fd = -1;
        int r = open_subdir(s->root_fd, area_names[area], &a);
        if (r >= 0)
                r = open_subdir(a, device, &d);
        if (r >= 0)
                r = open_subdir(d, day, &day_fd);
        if (r < 0)
                return evd_error_set_errno(err, r, "creating %s/%s/%s/%s", s->root, area_names[area], device,
                                           day);
        if (ret_rel && asprintf(ret_rel, "%s/%s/%s", area_names[area], device, day) < 0) {
                close(day_fd);
                return -ENOMEM;
        }
        *ret_fd = day_fd;
        return 0;
}

int evd_store_free_bytes(EvdStore *s, uint64_t *ret)
{
        struct statvfs v;
        if (fstatvfs(s->root_fd, &v) < 0)
                return -errno;
        *ret = (uint64_t)v.f_bavail * (uint64_t)v.f_frsize;
        return 0;
}

int evd_store_space_reserve(EvdStore *s, uint64_t original, uint64_t archive, uint64_t reserve_bytes,
                            EvdStoreSpace *ret, EvdError *err)
{
        uint64_t free_bytes = 0, need = original + archive;
        int r = evd_store_free_bytes(s, &free_bytes);
        if (r < 0)
                return evd_error_set_errno(err, r, "reading the free space of store %s", s->root);
        pthread_mutex_lock(&s->space_lock);
        uint64_t promised = s->promised;
        /* free - promised >= reserve + need, without wrapping */
        bool fits = free_bytes >= promised && free_bytes - promised >= reserve_bytes &&
                    free_bytes - promised - reserve_bytes >= need;
        if (fits)
                s->promised += need;
        pthread_mutex_unlock(&s->space_lock);
        if (!fits)
                return evd_error_set(
                    err, -ENOSPC,
                    "store %s has %" PRIu64 " MB free, %" PRIu64
                    " MB of it promised to copies in progress: below the reserve of %" PRIu64
                    " MB plus %" PRIu64 " MB",
                    s->root, free_bytes >> 20, promised >> 20, reserve_bytes >> 20, need >> 20);
        *ret = (EvdStoreSpace){.store = s, .size = {original, archive}, .left = {original, archive}};
        return 0;
}

void evd_store_space_written(EvdStoreSpace *sp, unsigned part, uint64_t done)
{
        if (!sp->store || part > EVD_STORE_SPACE_ARCHIVE)
                return;
        uint64_t left = done >= sp->size[part] ? 0 : sp->size[part] - done;
        if (left >= sp->left[part])
                return;
        pthread_mutex_lock(&sp->store->space_lock);
        sp->store->promised -= sp->left[part] - left;
        pthread_mutex_unlock(&sp->store->space_lock);
        sp->left[part] = left;
}

void evd_store_space_release(EvdStoreSpace *sp)
{
        if (!sp->store)
                return;
        pthread_mutex_lock(&sp->store->space_lock);
        sp->store->promised -= sp->left[0] + sp->left[1];
        pthread_mutex_unlock(&sp->store->space_lock);
        *sp = (EvdStoreSpace){};
}

uint64_t evd_store_space_promised(EvdStore *s)
{
        pthread_mutex_lock(&s->space_lock);
        uint64_t p = s->promised;
        pthread_mutex_unlock(&s->space_lock);
        return p;
}

static int remove_leftovers_in(int dir_fd, unsigned depth, unsigned *count)
{
        if (depth > 4)
                return 0;
        int fd = dup(dir_fd);
        if (fd < 0)
                return -errno;
        DIR *dir = fdopendir(fd);
        if (!dir) {
                close(fd);
                return -errno;
        }
        int r = 0;
        struct dirent *de;
        while ((de = readdir(dir))) {
                if (strncmp(de->d_name, EVD_TMPFILE_PREFIX, strlen(EVD_TMPFILE_PREFIX)) == 0) {
                        if (unlinkat(dir_fd, de->d_name, 0) == 0)
                                (*count)++;
                        continue;
                }
                if (de->d_name[0] == '.' || de->d_type != DT_DIR)
                        continue;
                _cleanup_close_ int sub =
                    openat(dir_fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub >= 0)
                        r = remove_leftovers_in(sub, depth + 1, count);
                if (r < 0)
                        break;
        }
        closedir(dir);
        return r;
}

int evd_store_remove_leftovers(EvdStore *s, EvdError *err)
{
        unsigned count = 0;
        int r = remove_leftovers_in(s->root_fd, 0, &count);
        if (r < 0)
                return evd_error_set_errno(err, r, "cleaning temporary files in %s", s->root);
        return (int)count;
}

int evd_store_dispose_file(EvdStore *s, const char *rel, EvdError *err)
{
        char parts[4][256];
        const char *p = rel ? rel : "";
        unsigned n = 0;
        bool whole = false; /* the last component was read */
        while (n < 4) {
                const char *slash = strchr(p, '/');
                size_t len = slash ? (size_t)(slash - p) : strlen(p);
                if (len == 0 || len >= sizeof(parts[0]) || p[0] == '.')
                        break;
                memcpy(parts[n], p, len);
                parts[n++][len] = '\0';
                if (!slash) {
                        whole = true;
                        break;
                }
                p = slash + 1;
        }
        bool area_ok = false;
        for (unsigned a = 0; n == 4 && a < _EVD_STORE_AREA_MAX; a++)
                area_ok |= strcmp(parts[0], area_names[a]) == 0;
        if (n != 4 || !whole || !area_ok)
                return evd_error_set(err, -EINVAL, "disposing of '%s': not a stored file's path",
                                     strna(rel));

        int fd = dup(s->root_fd);
        if (fd < 0)
                return evd_error_set_errno(err, -errno, "disposing of %s", rel);
        for (unsigned i = 0; i < 3; i++) {
                int sub = openat(fd, parts[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                int e = errno;
                close(fd);
                if (sub < 0) {
                        if (e == ENOENT)
                                return 0;
                        return evd_error_set_errno(err, -e, "disposing of %s/%s", s->root, rel);
                }
                fd = sub;
        }
        int r = 1;
        if (unlinkat(fd, parts[3], 0) < 0)
                r = errno == ENOENT ? 0 : evd_error_set_errno(err, -errno, "removing %s/%s", s->root, rel);
        if (r > 0 && fsync(fd) < 0)
                r = evd_error_set_errno(err, -errno, "syncing the directory of %s/%s", s->root, rel);
        close(fd);
        return r;
}
