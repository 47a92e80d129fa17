/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "custody.h"
#include "disposal.h"
#include "reconcile.h"

typedef struct Reconcile {
        EvdStore *store;
        EvdDb *db;
        EvdReconcileFn fn;
        void *userdata;
        EvdReconcileReport *rep;
        EvdError *err;
} Reconcile;

static int note(Reconcile *c, EvdReconcileKind kind, const char *path, int64_t file_id)
{
        if (c->fn)
                c->fn(kind, path, file_id, c->userdata);
        if (kind == EVD_RECONCILE_TEMP_REMOVED)
                return 0;
        EvdCustodyEntry e = {
            .kind = kind == EVD_RECONCILE_FILE_WITHOUT_ROW ? "reconcile_unrecorded" : "reconcile_missing",
            .file_id = file_id,
            .detail = path,
        };
        return evd_custody_append(c->db, &e, NULL, c->err);
}

/* The store is ROOT/AREA/DEVICE/DAY/NAME: walk exactly that shape, nothing deeper. */
static int walk(Reconcile *c, int dir_fd, const char *rel, unsigned depth)
{
        int fd = dup(dir_fd);
        if (fd < 0)
                return -errno;
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }
        rewinddir(d);
        int r = 0;
        struct dirent *de;
        while (r >= 0 && (de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, "%s%s%s", rel, rel[0] ? "/" : "", de->d_name) < 0)
                        return closedir(d), -ENOMEM;
                struct stat st;
                if (fstatat(dir_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (depth < 3 && S_ISDIR(st.st_mode)) {
                        if (depth == 0 && strcmp(de->d_name, "originals") != 0 &&
                            strcmp(de->d_name, "archive") != 0 && strcmp(de->d_name, "quarantine") != 0)
                                continue;
                        _cleanup_close_ int sub =
                            openat(dir_fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub >= 0)
                                r = walk(c, sub, path, depth + 1);
                        continue;
                }
                if (depth != 3 || !S_ISREG(st.st_mode))
                        continue;
                c->rep->files_checked++;
                r = evd_db_path_known(c->db, path, c->err);
                if (r == 0) {
                        c->rep->files_without_row++;
                        r = note(c, EVD_RECONCILE_FILE_WITHOUT_ROW, path, 0);
                }
        }
        closedir(d);
        return r < 0 ? r : 0;
}

static int check_row(const char *path, int64_t file_id, void *userdata)
{
        Reconcile *c = userdata;
        c->rep->rows_checked++;
        struct stat st;
        if (fstatat(evd_store_root_fd(c->store), path, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
                return 0;
        c->rep->rows_without_file++;
        /* appended after the row walk (one query at a time on the connection): remember it */
        return 1;
}

typedef struct Missing {
        char *path;
        int64_t file_id;
} Missing;

typedef struct MissingList {
        Reconcile *c;
        Missing *v;
        size_t n, allocated;
} MissingList;

#define RECONCILE_MAX_MISSING 10000u /* reported one by one; beyond this, counted only */

static int collect_missing(const char *path, int64_t file_id, void *userdata)
{
        MissingList *l = userdata;
        if (check_row(path, file_id, l->c) == 0 || l->n >= RECONCILE_MAX_MISSING)
                return 0;
        if (l->n == l->allocated) {
                size_t na = l->allocated ? 2 * l->allocated : 16;
                Missing *v = realloc(l->v, na * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                l->v = v;
                l->allocated = na;
        }
        if (!(l->v[l->n].path = strdup(path)))
                return -ENOMEM;
        l->v[l->n++].file_id = file_id;
        return 0;
}

int evd_reconcile(EvdStore *store, EvdDb *db, EvdReconcileFn fn, void *userdata, EvdReconcileReport *ret,
                  EvdError *err)
{
        EvdReconcileReport local = {};
        EvdReconcileReport *rep = ret ? ret : &local;
        *rep = (EvdReconcileReport){};
        Reconcile c = {.store = store, .db = db, .fn = fn, .userdata = userdata, .rep = rep, .err = err};

        int r = evd_store_remove_leftovers(store, err);
        if (r < 0)
                return r;
        rep->temp_removed = (unsigned)r;
        if (r > 0)
                note(&c, EVD_RECONCILE_TEMP_REMOVED, evd_store_root(store), 0);

        r = walk(&c, evd_store_root_fd(store), "", 0);
        if (r < 0)
                return evd_error_prefix(err, "reconciling %s: ", evd_store_root(store)), r;

        MissingList l = {.c = &c};
        r = evd_db_stored_paths(db, collect_missing, &l, err);
        for (size_t i = 0; i < l.n; i++) {
                /* an approved disposal removed it on purpose (lib/disposal.h): not missing */
                int d = r >= 0 ? evd_disposal_file_disposed(db, l.v[i].file_id, err) : 0;
                if (d > 0) {
                        rep->rows_without_file--;
                        rep->rows_disposed++;
                } else if (d < 0)
                        r = d;
                else if (r >= 0)
                        r = note(&c, EVD_RECONCILE_ROW_WITHOUT_FILE, l.v[i].path, l.v[i].file_id);
                free(l.v[i].path);
        }
        free(l.v);
        return r < 0 ? r : 0;
}
