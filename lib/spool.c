/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The spool directory (spool.h, docs/spool.md): its layout, entry names and order, appending an entry
 * durably, listing, and the locks that say a docking is still being spooled. The format is in
 * spool-codec.c, the offline cache in spool-cache.c, the replay in spool-replay.c. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "clock.h"
#include "hash.h"
#include "small-file.h"
#include "spool-internal.h"

#define SEQ_RETRY_MAX 100000u /* names tried when other writers took the next ones */

const char *evd_spool_kind_to_string(EvdRecordKind k)
{
        return evd_record_kind_to_string(k);
}

bool evd_spool_db_unreachable(int r)
{
        return r == -ECONNREFUSED || r == -ECONNRESET || r == -EPIPE || r == -ETIMEDOUT ||
               r == -ENETUNREACH || r == -EHOSTUNREACH || r == -ENOTCONN;
}

const char *evd_spool_dir(const EvdSpool *s)
{
        return s->dir;
}

/* ---- files --------------------------------------------------------------------------------------- */

int spool_fsync_dir(int dir_fd)
{
        return fsync(dir_fd) < 0 ? -errno : 0;
}

int spool_write_durable(int dir_fd, const char *name, const char *buf, size_t len, bool noreplace)
{
        char tmp[64];
        uint64_t rnd = 0;
        (void)!getrandom(&rnd, sizeof(rnd), 0);
        snprintf(tmp, sizeof(tmp), ".tmp-%016" PRIx64, rnd);
        _cleanup_close_ int fd =
            openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, SPOOL_FILE_MODE);
        if (fd < 0)
                return -errno;
        int r = 0;
        for (size_t done = 0; done < len;) {
                ssize_t n = write(fd, buf + done, len - done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        r = n < 0 ? -errno : -EIO;
                        break;
                }
                done += (size_t)n;
        }
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && (noreplace ? renameat2(dir_fd, tmp, dir_fd, name, RENAME_NOREPLACE)
                                 : renameat(dir_fd, tmp, dir_fd, name)) < 0)
                r = -errno;
        if (r < 0) {
                (void)unlinkat(dir_fd, tmp, 0);
                return r;
        }
        return spool_fsync_dir(dir_fd);
}

int spool_text_write(int dir_fd, const char *name, EvdSpoolWriter *w, bool noreplace)
{
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r = evd_spool_writer_end(w, &buf, &len);
        if (r < 0)
                return r;
        return spool_write_durable(dir_fd, name, buf, len, noreplace);
}

int spool_text_read(int dir_fd, const char *name, size_t max, EvdSpoolText *t, EvdError *err)
{
        char *buf = NULL;
        size_t len = 0;
        *t = (EvdSpoolText){};
        int r = evd_small_file_read(dir_fd, name, max, &buf, &len);
        if (r < 0)
                return evd_error_set_errno(err, r, "reading %s", name);
        return evd_spool_text_parse(buf, len, t, err); /* t owns buf, also on error */
}

static int subdir(int dir_fd, const char *name, int *ret_fd)
{
        if (mkdirat(dir_fd, name, SPOOL_DIR_MODE) < 0 && errno != EEXIST)
                return -errno;
        int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        (void)fchmod(fd, SPOOL_DIR_MODE); /* private, also when an older evidock made it 0750 */
        *ret_fd = fd;
        return 0;
}

/* The spool's own identity (names the database lock that serialises replays): SPOOL/id, created once. */
static int spool_id_load(EvdSpool *s, EvdError *err)
{
        for (unsigned attempt = 0; attempt < 2; attempt++) {
                EvdSpoolText t;
                int r = spool_text_read(s->dir_fd, "id", 4096, &t, NULL);
                const char *id = r >= 0 ? evd_spool_text_get(&t, "id") : NULL;
                if (id && strlen(id) == 32)
                        snprintf(s->id, sizeof(s->id), "%s", id);
                evd_spool_text_clear(&t);
                if (s->id[0])
                        return 0;

                uint8_t rnd[16];
                char hex[33];
                if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
                        return evd_error_set_errno(err, -EIO, "no random bytes for the spool id");
                EvdSpoolWriter w;
                if (evd_spool_writer_begin(&w) < 0)
                        return -ENOMEM;
                evd_spool_writer_put(&w, "id", evd_hex(rnd, sizeof(rnd), hex));
                r = spool_text_write(s->dir_fd, "id", &w, true);
                if (r == -EEXIST)
                        continue; /* another process was first: use its id */
                if (r < 0)
                        return evd_error_set_errno(err, r, "writing %s/id", s->dir);
                snprintf(s->id, sizeof(s->id), "%s", hex);
                return 0;
        }
        return evd_error_set(err, -EBADMSG, "%s/id is unreadable", s->dir);
}

/* Reads cache/database into s->db_tag (spool-cache.c writes it). */
static void db_tag_load(EvdSpool *s)
{
        EvdSpoolText t;
        int r = spool_text_read(s->cache_fd, "database", 4096, &t, NULL);
        const char *tag = r >= 0 ? evd_spool_text_get(&t, "tag") : NULL;
        snprintf(s->db_tag, sizeof(s->db_tag), "%s", tag && strlen(tag) == 8 ? tag : SPOOL_NO_TAG);
        evd_spool_text_clear(&t);
}

int evd_spool_open(const char *dir, EvdSpool **ret, EvdError *err)
{
        if (!dir || !*dir)
                return evd_error_set(err, -EINVAL, "no spool directory");
        _cleanup_(evd_spool_freep) EvdSpool *s = calloc(1, sizeof(*s));
        if (!s || !(s->dir = strdup(dir)))
                return -ENOMEM;
        s->dir_fd = s->entries_fd = s->map_fd = s->open_fd = s->cache_fd = s->rejected_fd = -1;
        if (mkdir(dir, SPOOL_DIR_MODE) < 0 && errno != EEXIST)
                return evd_error_set_errno(err, -errno, "creating spool directory %s", dir);
        s->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->dir_fd < 0)
                return evd_error_set_errno(err, -errno, "opening spool directory %s", dir);
        (void)fchmod(s->dir_fd, SPOOL_DIR_MODE);
        int r;
        if ((r = subdir(s->dir_fd, "entries", &s->entries_fd)) < 0 ||
            (r = subdir(s->dir_fd, "map", &s->map_fd)) < 0 ||
            (r = subdir(s->dir_fd, "open", &s->open_fd)) < 0 ||
            (r = subdir(s->dir_fd, "cache", &s->cache_fd)) < 0 ||
            (r = subdir(s->dir_fd, "rejected", &s->rejected_fd)) < 0)
                return evd_error_set_errno(err, r, "preparing spool directory %s", dir);
        r = spool_id_load(s, err);
        if (r < 0)
                return r;
        db_tag_load(s);
        *ret = steal_ptr(&s);
        return 0;
}

EvdSpool *evd_spool_free(EvdSpool *s)
{
        if (!s)
                return NULL;
        closep(&s->dir_fd);
        closep(&s->entries_fd);
        closep(&s->map_fd);
        closep(&s->open_fd);
        closep(&s->cache_fd);
        closep(&s->rejected_fd);
        spool_index_clear(s);
        for (size_t i = 0; i < s->n_known; i++)
                free(s->known[i]);
        free(s->known);
        free(s->dir);
        free(s);
        return NULL;
}

/* ---- entry names: <seq:16 hex>-<kind>-<device or "-">-<db tag> ------------------------------------ */

/* The device part is "-" when there is none ("...-refused---<tag>"): split by position, not by '-'. */
static int entry_name_parse(const char *name, SpoolEntryName *ret)
{
        size_t len = strlen(name);
        if (len >= ENTRY_NAME_MAX || len < 16 + 1 + 1 + 1 + 1 + 1 + 8 || name[0] == '.' || name[16] != '-' ||
            name[len - 9] != '-')
                return -EINVAL;
        uint64_t seq = 0;
        for (size_t i = 0; i < 16; i++) {
                int d = evd_hex_digit(name[i]);
                if (d < 0)
                        return -EINVAL;
                seq = seq << 4 | (uint64_t)d;
        }
        const char *kind = name + 17, *dash = memchr(kind, '-', len - 9 - 17);
        if (!dash)
                return -EINVAL;
        char kind_buf[16], device[EVD_DEVICE_ID_SIZE];
        size_t kind_len = (size_t)(dash - kind), device_len = (size_t)(name + len - 9 - (dash + 1));
        if (kind_len >= sizeof(kind_buf) || device_len == 0 || device_len >= sizeof(device))
                return -EINVAL;
        memcpy(kind_buf, kind, kind_len);
        kind_buf[kind_len] = 0;
        memcpy(device, dash + 1, device_len);
        device[device_len] = 0;
        int k = evd_record_kind_from_string(kind_buf);
        bool no_device = strcmp(device, SPOOL_NO_DEVICE) == 0;
        if (k < 0 || (!no_device && !evd_device_id_valid(device)))
                return -EINVAL;
        *ret = (SpoolEntryName){.seq = seq, .kind = (EvdRecordKind)k};
        snprintf(ret->device, sizeof(ret->device), "%s", no_device ? "" : device);
        snprintf(ret->tag, sizeof(ret->tag), "%s", name + len - 8);
        snprintf(ret->name, sizeof(ret->name), "%s", name);
        return 0;
}

static int entry_name_cmp(const void *a, const void *b)
{
        const SpoolEntryName *x = a, *y = b;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int spool_entries_list(EvdSpool *s, SpoolEntryName **ret, size_t *ret_n)
{
        int fd = openat(s->entries_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }
        SpoolEntryName *v = NULL;
        size_t n = 0, size = 0;
        struct dirent *de;
        while ((de = readdir(d)) && n < EVD_SPOOL_LIST_MAX) {
                SpoolEntryName e;
                if (entry_name_parse(de->d_name, &e) < 0)
                        continue; /* temp files, strangers */
                if (n == size) {
                        size_t ns = size ? size * 2 : 64;
                        SpoolEntryName *nv = realloc(v, ns * sizeof(*v));
                        if (!nv) {
                                free(v);
                                closedir(d);
                                return -ENOMEM;
                        }
                        v = nv;
                        size = ns;
                }
                v[n++] = e;
        }
        closedir(d);
        if (n)
                qsort(v, n, sizeof(*v), entry_name_cmp);
        *ret = v;
        *ret_n = n;
        return 0;
}

int spool_entry_load(EvdSpool *s, const char *name, EvdSpoolEntry *e, EvdError *err)
{
        char *buf = NULL;
        size_t len = 0;
        *e = (EvdSpoolEntry){};
        int r = evd_small_file_read(s->entries_fd, name, EVD_SPOOL_ENTRY_MAX, &buf, &len);
        if (r < 0)
                return evd_error_set_errno(err, r, "reading %s", name);
        return evd_spool_entry_decode(buf, len, e, err);
}

int evd_spool_backlog(EvdSpool *s, unsigned *ret_n)
{
        _cleanup_free_ SpoolEntryName *v = NULL;
        size_t n = 0;
        int r = spool_entries_list(s, &v, &n);
        if (r < 0)
                return r;
        *ret_n = (unsigned)n;
        return 0;
}

/* Entries waiting for the current database (or spooled before any was seen) of device_id (NULL: any)
 * and kind (< 0: any). */
static int pending(EvdSpool *s, const char *device_id, int kind, unsigned *ret_n)
{
        _cleanup_free_ SpoolEntryName *v = NULL;
        size_t n = 0;
        int r = spool_entries_list(s, &v, &n);
        if (r < 0)
                return r;
        unsigned c = 0;
        for (size_t i = 0; i < n; i++)
                c += (!device_id || strcmp(v[i].device, device_id) == 0) &&
                     (kind < 0 || (int)v[i].kind == kind) &&
                     (strcmp(v[i].tag, s->db_tag) == 0 || strcmp(v[i].tag, SPOOL_NO_TAG) == 0);
        *ret_n = c;
        return 0;
}

int evd_spool_device_pending(EvdSpool *s, const char *device_id, unsigned *ret_n)
{
        return pending(s, device_id, -1, ret_n);
}

int evd_spool_kind_pending(EvdSpool *s, EvdRecordKind kind, unsigned *ret_n)
{
        return pending(s, NULL, (int)kind, ret_n);
}

/* ---- spooled dockings ------------------------------------------------------------------------------ */

int evd_spool_docking_open(EvdSpool *s, int64_t db_docking_id, const char *device_id, EvdSpoolDocking **ret,
                           EvdError *err)
{
        _cleanup_free_ EvdSpoolDocking *d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->spool = s;
        d->lock_fd = -1;
        snprintf(d->device_id, sizeof(d->device_id), "%s", evd_device_id_valid(device_id) ? device_id : "");
        if (db_docking_id > 0)
                snprintf(d->key, sizeof(d->key), "d%" PRId64, db_docking_id);
        else {
                uint8_t rnd[12];
                char hex[25];
                if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
                        return evd_error_set(err, -EIO, "no random bytes for a spool docking key");
                snprintf(d->key, sizeof(d->key), "s%s", evd_hex(rnd, sizeof(rnd), hex));
        }
        /* held while this docking is spooled: a replay leaves an open docking's findings waiting */
        d->lock_fd = openat(s->open_fd, d->key, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, SPOOL_FILE_MODE);
        if (d->lock_fd < 0)
                return evd_error_set_errno(err, -errno, "creating %s/open/%s", s->dir, d->key);
        (void)fchmod(d->lock_fd, SPOOL_FILE_MODE);
        if (flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0) {
                int r = -errno;
                closep(&d->lock_fd);
                return evd_error_set_errno(err, r, "locking %s/open/%s (docking spooled twice at once?)",
                                           s->dir, d->key);
        }
        *ret = steal_ptr(&d);
        return 0;
}

EvdSpoolDocking *evd_spool_docking_close(EvdSpoolDocking *d)
{
        if (!d)
                return NULL;
        if (d->lock_fd >= 0) {
                (void)unlinkat(d->spool->open_fd, d->key, 0);
                close(d->lock_fd);
        }
        free(d);
        return NULL;
}

const char *evd_spool_docking_key(const EvdSpoolDocking *d)
{
        return d->key;
}

bool spool_docking_is_open(EvdSpool *s, const char *key)
{
        _cleanup_close_ int fd = openat(s->open_fd, key, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return false;
        if (flock(fd, LOCK_SH | LOCK_NB) < 0)
                return errno == EWOULDBLOCK;
        (void)unlinkat(s->open_fd, key, 0); /* its writer is gone */
        return false;
}

/* ---- appending ------------------------------------------------------------------------------------- */

int evd_spool_append(EvdSpool *s, EvdSpoolDocking *d, const EvdRecordEntry *rec, EvdError *err)
{
        EvdSpoolEntryHeader h = {
            .docking_key = d->key,
            .device = d->device_id[0] ? d->device_id : NULL,
            .db_tag = s->db_tag,
            .at_us = evd_clock_wall_us(),
        };
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r = evd_spool_entry_encode(&h, rec, &buf, &len, err);
        if (r < 0)
                return r;

        /* the next free sequence number: after every entry there is (others may append too) */
        if (s->next_seq == 0) {
                _cleanup_free_ SpoolEntryName *v = NULL;
                size_t n = 0;
                r = spool_entries_list(s, &v, &n);
                if (r < 0)
                        return evd_error_set_errno(err, r, "listing %s/entries", s->dir);
                s->next_seq = n ? v[n - 1].seq + 1 : 1;
        }
        const char *kind = evd_record_kind_to_string(rec->kind);
        for (unsigned tries = 0;; tries++) {
                char name[ENTRY_NAME_MAX];
                snprintf(name, sizeof(name), "%016" PRIx64 "-%s-%s-%s", s->next_seq, kind,
                         d->device_id[0] ? d->device_id : SPOOL_NO_DEVICE, s->db_tag);
                r = spool_write_durable(s->entries_fd, name, buf, len, true);
                if (r != -EEXIST)
                        break;
                if (tries >= SEQ_RETRY_MAX)
                        return evd_error_set(err, -EEXIST, "no free spool sequence number in %s/entries",
                                             s->dir);
                s->next_seq++;
        }
        if (r < 0)
                return evd_error_set_errno(err, r, "writing a spool entry to %s/entries", s->dir);
        s->next_seq++;
        if (rec->kind == EVD_RECORD_KIND_FILE)
                spool_index_note_file(s, d->device_id, rec->file);
        return 0;
}

/* ---- listing --------------------------------------------------------------------------------------- */

static void entry_summary(const EvdSpoolEntry *e, char *buf, size_t size)
{
        const EvdRecordEntry *rec = &e->rec;
        if (rec->kind == EVD_RECORD_KIND_FILE)
                snprintf(buf, size, "%s %s", evd_verdict_to_string(rec->file->verdict),
                         rec->file->original_path);
        else if (rec->kind == EVD_RECORD_KIND_FINDING)
                snprintf(buf, size, "%s", evd_verdict_to_string(rec->findings[0].verdict));
        else if (rec->result)
                snprintf(buf, size, "%s", strna(rec->result->summary));
        else if (rec->kind == EVD_RECORD_KIND_BEGIN)
                snprintf(buf, size, "%s at %s", strna(rec->docking->transport),
                         strna(rec->docking->location));
        else if (rec->kind == EVD_RECORD_KIND_LINK)
                snprintf(buf, size, "%s: file %" PRId64, strna(rec->link->relation), rec->link->file_id);
        else if (rec->kind == EVD_RECORD_KIND_DISC_JOB && rec->disc)
                snprintf(buf, size, "disc job %" PRId64 ": copy %u %s on %s%s%s", rec->disc->job_id,
                         rec->disc->copy, rec->disc->verified ? "verified" : "failed", rec->disc->drive,
                         rec->job_event ? ", then " : "",
                         rec->job_event ? strna(rec->job_event->state) : "");
        else if (rec->kind == EVD_RECORD_KIND_DISC_JOB)
                snprintf(buf, size, "disc job %" PRId64 ": %s", rec->job_event->job_id,
                         strna(rec->job_event->state));
}

int evd_spool_list(EvdSpool *s, EvdSpoolListFn fn, void *userdata, EvdError *err)
{
        _cleanup_free_ SpoolEntryName *v = NULL;
        size_t n = 0;
        int r = spool_entries_list(s, &v, &n);
        if (r < 0)
                return evd_error_set_errno(err, r, "listing %s/entries", s->dir);
        for (size_t i = 0; i < n; i++) {
                EvdSpoolEntry e;
                EvdError perr = {};
                EvdSpoolInfo info = {.seq = v[i].seq, .kind = v[i].kind};
                snprintf(info.device_id, sizeof(info.device_id), "%s", v[i].device);
                snprintf(info.db_tag, sizeof(info.db_tag), "%s", v[i].tag);
                struct stat st;
                if (fstatat(s->entries_fd, v[i].name, &st, AT_SYMLINK_NOFOLLOW) >= 0)
                        info.size = (uint64_t)st.st_size;
                char summary[300] = "";
                if (spool_entry_load(s, v[i].name, &e, &perr) < 0) {
                        info.corrupt = true;
                        snprintf(summary, sizeof(summary), "CORRUPT: %s", perr.msg);
                } else {
                        snprintf(info.docking_key, sizeof(info.docking_key), "%s", e.header.docking_key);
                        info.spooled_us = e.header.at_us;
                        entry_summary(&e, summary, sizeof(summary));
                }
                info.summary = summary;
                fn(&info, userdata);
                evd_spool_entry_clear(&e);
        }
        return 0;
}
