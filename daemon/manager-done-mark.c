/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The done marks of watched volume directories. A volume taken completely (no file failed, not refused)
 * gets a "done" mark in the watch directory's hidden .evidock-done/ with a fingerprint of everything in
 * it; a restart does not dock it again (no new docking row) while it is unchanged. The fingerprint covers
 * each entry's path, type, size, inode and modification and change times, so a file added, removed,
 * replaced or written to makes the volume due again. Used by the docking (which sets the mark) and the
 * watch (which asks for it): neither calls the other for it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "manager-internal.h"
#include "small-file.h"

#define DONE_DIR                ".evidock-done"
#define FINGERPRINT_MAX_ENTRIES 1000000u

static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
        const unsigned char *p = data;
        for (size_t i = 0; i < n; i++) {
                h ^= p[i];
                h *= 0x100000001b3ULL;
        }
        return h;
}

static uint64_t mix64(uint64_t x)
{
        x ^= x >> 30;
        x *= 0xbf58476d1ce4e5b9ULL;
        x ^= x >> 27;
        x *= 0x94d049bb133111ebULL;
        x ^= x >> 31;
        return x;
}

/* nftw has no user pointer: one walk at a time per thread */
static _Thread_local struct {
        size_t root_len;
        uint64_t sum_a, sum_b, n;
} fp;

static int fp_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
        if (++fp.n > FINGERPRINT_MAX_ENTRIES)
                return -E2BIG;
        const char *rel = path + (strlen(path) >= fp.root_len ? fp.root_len : 0);
        uint64_t h = fnv1a(0xcbf29ce484222325ULL, rel, strlen(rel) + 1);
        int64_t f[] = {type,
                       (int64_t)st->st_mode,
                       (int64_t)st->st_size,
                       (int64_t)st->st_ino,
                       (int64_t)st->st_dev,
                       (int64_t)st->st_mtim.tv_sec,
                       st->st_mtim.tv_nsec,
                       (int64_t)st->st_ctim.tv_sec,
                       st->st_ctim.tv_nsec};
        h = fnv1a(h, f, sizeof(f));
        /* order-independent: readdir order is not stable */
        fp.sum_a += mix64(h);
        fp.sum_b ^= mix64(h ^ 0x9e3779b97f4a7c15ULL);
        return 0;
}

int volume_fingerprint(const char *dir, char *buf, size_t size)
{
        fp.root_len = strlen(dir);
        fp.sum_a = fp.sum_b = fp.n = 0;
        int r = nftw(dir, fp_entry, 16, FTW_PHYS | FTW_MOUNT);
        if (r != 0)
                return r < 0 && errno ? -errno : -EIO;
        int n = snprintf(buf, size, "v1 %016" PRIx64 "%016" PRIx64 " %" PRIu64, fp.sum_a, fp.sum_b, fp.n);
        return n > 0 && (size_t)n < size ? 0 : -ENOBUFS;
}

/* "<watch dir>/.evidock-done/<name>" for "<watch dir>/<name>" */
static char *done_path(const char *dir)
{
        const char *slash = strrchr(dir, '/');
        if (!slash || !slash[1])
                return NULL;
        char *p = NULL;
        if (asprintf(&p, "%.*s/" DONE_DIR "/%s", (int)(slash - dir), dir, slash + 1) < 0)
                return NULL;
        return p;
}

int volume_is_done(const char *dir)
{
        _cleanup_free_ char *path = done_path(dir);
        if (!path)
                return 0;
        _cleanup_free_ char *mark = NULL;
        char now[96];
        if (evd_small_file_read(AT_FDCWD, path, sizeof(now), &mark, NULL) < 0) /* "MARK\n", as written */
                return 0;
        mark[strcspn(mark, "\n")] = 0;
        if (volume_fingerprint(dir, now, sizeof(now)) < 0)
                return 0;
        return strcmp(mark, now) == 0;
}

void volume_mark_done(const char *dir, const char *mark)
{
        _cleanup_free_ char *path = done_path(dir);
        _cleanup_free_ char *tmp = NULL;
        if (!path || asprintf(&tmp, "%s.tmp", path) < 0)
                return;
        char *slash = strrchr(path, '/');
        *slash = 0;
        (void)mkdir(path, 0750);
        *slash = '/';
        FILE *f = fopen(tmp, "we");
        if (!f) {
                log_debug("cannot remember that %s is done (%s): it is docked again at the next start", dir,
                          strerror(errno));
                return;
        }
        fprintf(f, "%s\n", mark);
        bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
        fclose(f);
        if (!ok || rename(tmp, path) < 0) {
                log_debug("cannot remember that %s is done: it is docked again at the next start", dir);
                unlink(tmp);
        }
}

/* Marks whose volume is gone are dropped (a new volume of the same name would not match anyway). */
void volume_marks_prune(const char *watch_dir)
{
        _cleanup_free_ char *d = NULL;
        if (asprintf(&d, "%s/" DONE_DIR, watch_dir) < 0)
                return;
        DIR *dp = opendir(d);
        if (!dp)
                return;
        struct dirent *de;
        while ((de = readdir(dp))) {
                if (de->d_name[0] == '.')
                        continue;
                _cleanup_free_ char *vol = NULL;
                if (asprintf(&vol, "%s/%s", watch_dir, de->d_name) >= 0 && access(vol, F_OK) < 0 &&
                    errno == ENOENT)
                        (void)unlinkat(dirfd(dp), de->d_name, 0);
        }
        closedir(dp);
}
