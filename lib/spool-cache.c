/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What an offline docking knows (spool.h, "the cache for offline dockings"): which database the spool
 * belongs to, the enrollments and chain heads as the database last had them, and which files are
 * recorded already (in the database, or waiting in the spool). */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>

#include "hash.h"
#include "spool-internal.h"

/* ---- the database's identity ----------------------------------------------------------------------- */

int spool_db_identity(EvdDb *db, char *ret, size_t size, char ret_tag[EVD_SPOOL_TAG_SIZE], EvdError *err)
{
        int r = evd_db_identity(db, ret, size, err);
        if (r < 0)
                return r;
        uint8_t d[EVD_DIGEST_SIZE];
        char hex[EVD_DB_HEX_SIZE];
        evd_hash_buffer(EVD_HASH_SHA256, ret, strlen(ret), d);
        evd_hex(d, EVD_DIGEST_SIZE, hex);
        snprintf(ret_tag, EVD_SPOOL_TAG_SIZE, "%.8s", hex);
        return 0;
}

/* ---- enrollments and heads ------------------------------------------------------------------------- */

static int cache_write(EvdSpool *s, const char *name, EvdSpoolWriter *w, EvdError *err)
{
        int r = spool_text_write(s->cache_fd, name, w, false);
        if (r < 0)
                return evd_error_set_errno(err, r, "writing the spool cache %s/cache/%s", s->dir, name);
        return 0;
}

static void cache_drop_heads(EvdSpool *s)
{
        int fd = openat(s->cache_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d) {
                closep(&fd);
                return;
        }
        struct dirent *de;
        while ((de = readdir(d)))
                if (strncmp(de->d_name, "head-", 5) == 0 || strncmp(de->d_name, "known-", 6) == 0)
                        (void)unlinkat(s->cache_fd, de->d_name, 0);
        closedir(d);
}

int evd_spool_cache_refresh(EvdSpool *s, EvdDb *db, EvdError *err)
{
        char identity[300], tag[EVD_SPOOL_TAG_SIZE];
        int r = spool_db_identity(db, identity, sizeof(identity), tag, err);
        if (r < 0)
                return r;
        EvdDbDevice *devs = NULL;
        size_t n = 0;
        r = evd_db_device_list(db, &devs, &n, err);
        if (r < 0)
                return r;
        EvdSpoolWriter o;
        if (evd_spool_writer_begin(&o) < 0) {
                evd_db_device_array_free(devs, n);
                return -ENOMEM;
        }
        evd_spool_writer_putf(&o, "n", "%zu", n);
        for (size_t i = 0; i < n; i++) {
                evd_spool_writer_put_at(&o, "d", i, "device", devs[i].device_id);
                evd_spool_writer_put_at(&o, "d", i, "officer", devs[i].officer_id);
                evd_spool_writer_put_at(&o, "d", i, "unit", devs[i].unit_code);
                evd_spool_writer_put_at(&o, "d", i, "suite", evd_suite_to_string(devs[i].suite));
                evd_spool_writer_put_at(&o, "d", i, "pem", devs[i].public_key_pem);
                evd_spool_writer_put_at(&o, "d", i, "key_id", devs[i].key_id);
        }
        evd_db_device_array_free(devs, n);
        if (strcmp(tag, s->db_tag) != 0) {
                /* another database: its heads are not ours */
                cache_drop_heads(s);
                EvdSpoolWriter od;
                if (evd_spool_writer_begin(&od) < 0) {
                        evd_spool_writer_abort(&o);
                        return -ENOMEM;
                }
                evd_spool_writer_put(&od, "identity", identity);
                evd_spool_writer_put(&od, "tag", tag);
                r = cache_write(s, "database", &od, err);
                if (r < 0) {
                        evd_spool_writer_abort(&o);
                        return r;
                }
                snprintf(s->db_tag, sizeof(s->db_tag), "%s", tag);
                spool_index_clear(s);
        }
        return cache_write(s, "enrollments", &o, err);
}

int evd_spool_cache_device(EvdSpool *s, const char *device_id, EvdDbDevice **ret_dev, EvdError *err)
{
        EvdSpoolText kv = {};
        int r = spool_text_read(s->cache_fd, "enrollments", EVD_SPOOL_CACHE_MAX, &kv, err);
        if (r == -ENOENT) {
                evd_spool_text_clear(&kv);
                return -ENOENT;
        }
        if (r < 0) {
                evd_spool_text_clear(&kv);
                return evd_error_prefix(err, "enrollment cache %s/cache: ", s->dir), r;
        }
        uint64_t n = 0;
        (void)spool_parse_u64(evd_spool_text_get(&kv, "n"), &n);
        r = -ENOENT;
        for (size_t i = 0; i < n; i++) {
                const char *id = evd_spool_text_get_at(&kv, "d", i, "device");
                if (!id || strcmp(id, device_id) != 0)
                        continue;
                const char *officer = evd_spool_text_get_at(&kv, "d", i, "officer"),
                           *unit = evd_spool_text_get_at(&kv, "d", i, "unit"),
                           *pem = evd_spool_text_get_at(&kv, "d", i, "pem"),
                           *key_id = evd_spool_text_get_at(&kv, "d", i, "key_id");
                int suite = evd_suite_from_string(strna(evd_spool_text_get_at(&kv, "d", i, "suite")));
                if (!officer || !pem || !key_id || suite < 0) {
                        r = evd_error_set(err, -EBADMSG, "enrollment cache: entry of %s incomplete",
                                          device_id);
                        break;
                }
                EvdDbDevice *dev = calloc(1, sizeof(*dev));
                if (!dev) {
                        r = -ENOMEM;
                        break;
                }
                *dev = (EvdDbDevice){.device_id = strdup(id),
                                     .officer_id = strdup(officer),
                                     .unit_code = unit ? strdup(unit) : NULL,
                                     .suite = (EvdSuite)suite,
                                     .public_key_pem = strdup(pem),
                                     .key_id = strdup(key_id)};
                if (!dev->device_id || !dev->officer_id || !dev->public_key_pem || !dev->key_id ||
                    (unit && !dev->unit_code)) {
                        evd_db_device_free(dev);
                        r = -ENOMEM;
                        break;
                }
                *ret_dev = dev;
                r = 0;
                break;
        }
        evd_spool_text_clear(&kv);
        return r;
}

int evd_spool_cache_head_get(EvdSpool *s, const char *device_id, EvdDbChainHead *ret_head, EvdError *err)
{
        if (!evd_device_id_valid(device_id))
                return -EINVAL;
        char name[32];
        snprintf(name, sizeof(name), "head-%s", device_id);
        EvdSpoolText kv = {};
        int r = spool_text_read(s->cache_fd, name, 4096, &kv, err);
        if (r < 0) {
                evd_spool_text_clear(&kv);
                return r == -ENOENT ? r : (evd_error_prefix(err, "spool cache: "), r);
        }
        EvdDbChainHead h = {};
        int64_t end = 0;
        const char *e = evd_spool_text_get(&kv, "end");
        if (spool_parse_u64(evd_spool_text_get(&kv, "seq"), &h.seq) < 0 ||
            spool_parse_u64(evd_spool_text_get(&kv, "session"), &h.session) < 0 ||
            evd_unhex(strna(evd_spool_text_get(&kv, "hash")), h.record_hash, EVD_DIGEST_SIZE) < 0 ||
            (e && spool_parse_i64(e, &end) < 0)) {
                evd_spool_text_clear(&kv);
                return evd_error_set(err, -EBADMSG, "spool cache: %s is incomplete", name);
        }
        h.has_end = e != NULL;
        h.end_us = end;
        evd_spool_text_clear(&kv);
        *ret_head = h;
        return 0;
}

int evd_spool_cache_head_set(EvdSpool *s, const char *device_id, const EvdDbChainHead *head, EvdError *err)
{
        if (!evd_device_id_valid(device_id))
                return -EINVAL;
        char name[32];
        snprintf(name, sizeof(name), "head-%s", device_id);
        EvdSpoolWriter o;
        if (evd_spool_writer_begin(&o) < 0)
                return -ENOMEM;
        evd_spool_writer_putf(&o, "seq", "%" PRIu64, head->seq);
        evd_spool_writer_putf(&o, "session", "%" PRIu64, head->session);
        evd_spool_writer_put_hex(&o, "hash", head->record_hash);
        if (head->has_end)
                evd_spool_writer_putf(&o, "end", "%" PRId64, head->end_us);
        return cache_write(s, name, &o, err);
}

/* ---- known files: "already ingested?" offline -------------------------------------------------------- */

/* the known-files cache of a device: k<i>=<index key> */
static int known_load(EvdSpool *s, const char *device_id, char ***v, size_t *n, size_t *size)
{
        char name[32];
        snprintf(name, sizeof(name), "known-%s", device_id);
        EvdSpoolText kv = {};
        int r = spool_text_read(s->cache_fd, name, EVD_SPOOL_CACHE_MAX, &kv, NULL);
        uint64_t count = 0;
        if (r >= 0 && spool_parse_u64(evd_spool_text_get(&kv, "n"), &count) >= 0)
                for (size_t i = 0; i < count && r >= 0; i++) {
                        char key[24];
                        snprintf(key, sizeof(key), "k%zu", i);
                        const char *k = evd_spool_text_get(&kv, key);
                        if (k)
                                r = spool_strv_push(v, n, size, k);
                }
        evd_spool_text_clear(&kv);
        return r == -ENOENT || r == -EBADMSG ? 0 : r; /* a broken cache costs copies, not correctness */
}

int evd_spool_cache_known_add(EvdSpool *s, const char *device_id, const uint8_t *record_hash,
                              const char *source_path, const uint8_t *sha256)
{
        if (!evd_device_id_valid(device_id) || (!record_hash && !sha256))
                return -EINVAL;
        if (strcmp(s->known_device, device_id) != 0) {
                spool_strv_free(s->known, s->n_known);
                s->known = NULL;
                s->n_known = s->size_known = 0;
                snprintf(s->known_device, sizeof(s->known_device), "%s", device_id);
        }
        _cleanup_free_ char *k = spool_index_key_of(record_hash, sha256, source_path);
        if (!k)
                return -ENOMEM;
        return spool_strv_push(&s->known, &s->n_known, &s->size_known, k);
}

static int strp_cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

int evd_spool_cache_known_save(EvdSpool *s, const char *device_id, EvdError *err)
{
        if (!evd_device_id_valid(device_id) || strcmp(s->known_device, device_id) != 0 || s->n_known == 0)
                return 0;
        char **v = NULL;
        size_t n = 0, size = 0;
        int r = known_load(s, device_id, &v, &n, &size);
        for (size_t i = 0; r >= 0 && i < s->n_known; i++)
                r = spool_strv_push(&v, &n, &size, s->known[i]);
        if (r < 0) {
                spool_strv_free(v, n);
                return evd_error_set_errno(err, r, "merging the known-files cache");
        }
        qsort(v, n, sizeof(char *), strp_cmp);
        EvdSpoolWriter o;
        if (evd_spool_writer_begin(&o) < 0) {
                spool_strv_free(v, n);
                return -ENOMEM;
        }
        size_t out = 0;
        for (size_t i = 0; i < n && out < EVD_SPOOL_KNOWN_MAX; i++) {
                if (i > 0 && strcmp(v[i], v[i - 1]) == 0)
                        continue;
                char key[24];
                snprintf(key, sizeof(key), "k%zu", out++);
                evd_spool_writer_put(&o, key, v[i]);
        }
        evd_spool_writer_putf(&o, "n", "%zu", out);
        spool_strv_free(v, n);
        char name[32];
        snprintf(name, sizeof(name), "known-%s", device_id);
        r = cache_write(s, name, &o, err);
        if (r >= 0) {
                spool_strv_free(s->known, s->n_known);
                s->known = NULL;
                s->n_known = s->size_known = 0;
        }
        return r;
}

static int index_build(EvdSpool *s, const char *device_id)
{
        spool_index_clear(s);
        int r = known_load(s, device_id, &s->index, &s->n_index, &s->size_index);
        if (r < 0)
                return r;
        _cleanup_free_ SpoolEntryName *v = NULL;
        size_t n = 0;
        r = spool_entries_list(s, &v, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                if (v[i].kind != EVD_RECORD_KIND_FILE || strcmp(v[i].device, device_id) != 0)
                        continue;
                EvdSpoolEntry e;
                if (spool_entry_load(s, v[i].name, &e, NULL) >= 0) {
                        const EvdDbFile *f = e.rec.file;
                        _cleanup_free_ char *k =
                            spool_index_key_of(f->record_hash, f->sha256, f->source_path);
                        r = k ? spool_index_add(s, k) : -ENOMEM;
                }
                evd_spool_entry_clear(&e);
                if (r < 0) {
                        spool_index_clear(s);
                        return r;
                }
        }
        snprintf(s->index_device, sizeof(s->index_device), "%s", device_id);
        s->index_built = true;
        return 0;
}

int evd_spool_file_find(EvdSpool *s, const char *device_id, const uint8_t *record_hash,
                        const char *source_path, const uint8_t *sha256, EvdError *err)
{
        if (!s->index_built || strcmp(s->index_device, device_id) != 0) {
                int r = index_build(s, device_id);
                if (r < 0)
                        return evd_error_set_errno(err, r, "reading the spool %s", s->dir);
        }
        _cleanup_free_ char *k = spool_index_key_of(record_hash, sha256, source_path);
        if (!k)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_index; i++)
                if (strcmp(s->index[i], k) == 0)
                        return 1;
        return 0;
}
