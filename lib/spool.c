/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The local durable spool (spool.h, docs/spool.md).
 *
 * Exactly once: every entry is replayed in one transaction and deleted only after it committed, so a
 * crash leaves it to be replayed again; each replay is idempotent:
 *   FILE     the database's unique constraints refuse a second row (-EEXIST: "already recorded");
 *   END      docking_results allows one row per docking: the finish goes first (-EEXIST: already);
 *   BEGIN / REFUSED  the new docking id is written to map/<key> (fsync'd) before the commit; a replay
 *            that finds the map asks the database whether that docking exists;
 *   FINDING  (docking-level, no unique key) replayed inside its docking's END transaction.
 * A session advisory lock held by the replaying connection makes a second replayer wait until the first
 * one's backend has finished (committed or rolled back), even if the first process was killed. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "clock.h"
#include "device-id.h"
#include "hash.h"
#include "kv.h"
#include "small-file.h"
#include "manifest.h"
#include "spool.h"

#define SPOOL_MAGIC     "evidock-spool 1\n"
#define SPOOL_NO_TAG    "00000000"
#define SPOOL_NO_DEVICE "-"
#define ENTRY_NAME_MAX  64u
#define SEQ_RETRY_MAX   100000u /* names tried when other writers took the next ones */

struct EvdSpool {
        char *dir;
        int dir_fd, entries_fd, map_fd, open_fd, cache_fd, rejected_fd;
        uint64_t next_seq; /* 0: not known yet (scan) */
        char db_tag[EVD_SPOOL_TAG_SIZE];
        char id[33]; /* random, names this spool for the database lock */
        /* "already spooled?" index of one device's FILE entries */
        char index_device[16];
        bool index_built;
        char **index;
        size_t n_index, size_index;
        /* files recorded during this run, for the known-files cache */
        char known_device[16];
        char **known;
        size_t n_known, size_known;
};

struct EvdSpoolDocking {
        EvdSpool *spool;
        char key[EVD_SPOOL_KEY_SIZE];
        char device_id[16];
        int lock_fd;
};

static const char *const kind_names[_EVD_SPOOL_KIND_MAX] = {
    [EVD_SPOOL_BEGIN] = "begin",     [EVD_SPOOL_REFUSED] = "refused", [EVD_SPOOL_FILE] = "file",
    [EVD_SPOOL_FINDING] = "finding", [EVD_SPOOL_END] = "end",
};

const char *evd_spool_kind_to_string(EvdSpoolKind k)
{
        return k >= 0 && k < _EVD_SPOOL_KIND_MAX ? kind_names[k] : NULL;
}

static int kind_from_string(const char *s)
{
        for (int k = 0; k < _EVD_SPOOL_KIND_MAX; k++)
                if (strcmp(s, kind_names[k]) == 0)
                        return k;
        return -EINVAL;
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

/* ---- encoding: "key=value" lines, values percent-encoded, a checksum line last ---------------------- */

static bool needs_escape(unsigned char c)
{
        return c < 0x20 || c == '%' || c >= 0x7f;
}

static void put_escaped(FILE *f, const char *s)
{
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                if (needs_escape(*p))
                        fprintf(f, "%%%02X", *p);
                else
                        fputc(*p, f);
        }
}

/* in place; -EINVAL on a bad escape or an encoded NUL */
static int unescape(char *s)
{
        char *o = s;
        for (char *p = s; *p; p++) {
                if (*p != '%') {
                        *o++ = *p;
                        continue;
                }
                int hi = evd_hex_digit(p[1]), lo = hi >= 0 ? evd_hex_digit(p[2]) : -1;
                if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                        return -EINVAL;
                *o++ = (char)(hi * 16 + lo);
                p += 2;
        }
        *o = 0;
        return 0;
}

typedef struct KvOut {
        FILE *f;
        char *buf;
        size_t len;
} KvOut;

static int kv_begin(KvOut *o)
{
        *o = (KvOut){};
        o->f = open_memstream(&o->buf, &o->len);
        if (!o->f)
                return -ENOMEM;
        fputs(SPOOL_MAGIC, o->f);
        return 0;
}

static void kv_put(KvOut *o, const char *key, const char *value)
{
        if (!value)
                return;
        fputs(key, o->f);
        fputc('=', o->f);
        put_escaped(o->f, value);
        fputc('\n', o->f);
}

static void kv_putf(KvOut *o, const char *key, const char *fmt, ...) _printf_(3, 4);
static void kv_putf(KvOut *o, const char *key, const char *fmt, ...)
{
        char v[128];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(v, sizeof(v), fmt, ap);
        va_end(ap);
        kv_put(o, key, v);
}

static void kv_put_hex(KvOut *o, const char *key, const uint8_t *digest)
{
        char hex[EVD_DB_HEX_SIZE];
        if (digest)
                kv_put(o, key, evd_hex(digest, EVD_DIGEST_SIZE, hex));
}

/* key "<prefix><i>.<field>" */
static void kv_put_at(KvOut *o, const char *prefix, size_t i, const char *field, const char *value)
{
        char key[48];
        snprintf(key, sizeof(key), "%s%zu.%s", prefix, i, field);
        kv_put(o, key, value);
}

/* Closes the stream and appends "sum=<sha256 of everything before>". *ret_buf is the caller's. */
static int kv_end(KvOut *o, char **ret_buf, size_t *ret_len)
{
        if (fflush(o->f) != 0 || ferror(o->f)) {
                fclose(o->f);
                free(o->buf);
                return -ENOMEM;
        }
        uint8_t d[EVD_DIGEST_SIZE];
        char hex[EVD_DB_HEX_SIZE];
        int r = evd_hash_buffer(EVD_HASH_SHA256, o->buf, o->len, d);
        if (r >= 0)
                fprintf(o->f, "sum=%s\n", evd_hex(d, EVD_DIGEST_SIZE, hex));
        if (fclose(o->f) != 0 || r < 0) {
                free(o->buf);
                return r < 0 ? r : -ENOMEM;
        }
        if (o->len > EVD_SPOOL_ENTRY_MAX) {
                free(o->buf);
                return -EFBIG;
        }
        *ret_buf = o->buf;
        *ret_len = o->len;
        return 0;
}

typedef struct KvItem {
        const char *key;
        char *value;
} KvItem;

typedef struct Kv {
        char *buf; /* owned */
        KvItem *items;
        size_t n;
} Kv;

static void kv_clear(Kv *kv)
{
        free(kv->buf);
        free(kv->items);
        *kv = (Kv){};
}

static int kv_item_cmp(const void *a, const void *b)
{
        return strcmp(((const KvItem *)a)->key, ((const KvItem *)b)->key);
}

/* Takes buf (len bytes, NUL-terminated after them). Checks the magic and the checksum. */
static int kv_parse(char *buf, size_t len, Kv *kv, EvdError *err)
{
        *kv = (Kv){.buf = buf};
        size_t magic = strlen(SPOOL_MAGIC);
        if (len < magic || memcmp(buf, SPOOL_MAGIC, magic) != 0 || buf[len - 1] != '\n')
                return evd_error_set(err, -EBADMSG, "not a spool file (no header, or cut short)");
        /* the last line: sum=<hex> over everything before it */
        size_t last = len - 1;
        while (last > 0 && buf[last - 1] != '\n')
                last--;
        if (len - last != 4 + 64 + 1 || memcmp(buf + last, "sum=", 4) != 0)
                return evd_error_set(err, -EBADMSG, "no checksum line (cut short?)");
        uint8_t want[EVD_DIGEST_SIZE], have[EVD_DIGEST_SIZE];
        int r;
        buf[len - 1] = 0;
        if (evd_unhex(buf + last + 4, want, EVD_DIGEST_SIZE) < 0 ||
            evd_hash_buffer(EVD_HASH_SHA256, buf, last, have) < 0 ||
            memcmp(want, have, EVD_DIGEST_SIZE) != 0)
                return evd_error_set(err, -EBADMSG, "checksum does not match the content (corrupt)");
        buf[last] = 0;
        size_t lines = 0;
        for (size_t i = magic; i < last; i++)
                lines += buf[i] == '\n';
        kv->items = calloc(lines ? lines : 1, sizeof(KvItem));
        if (!kv->items)
                return -ENOMEM;
        EvdKvReader rd;
        EvdKvLine l;
        evd_kv_reader_init(&rd, buf + magic, last - magic, EVD_KV_NEWLINE);
        while ((r = evd_kv_next(&rd, &l)) > 0) {
                if (unescape(l.value) < 0)
                        return evd_error_set(err, -EBADMSG, "bad escape in the value of %s", l.key);
                kv->items[kv->n++] = (KvItem){.key = l.key, .value = l.value};
        }
        if (r < 0)
                return evd_error_set(err, -EBADMSG, "line %u: %s", rd.line, rd.why);
        qsort(kv->items, kv->n, sizeof(KvItem), kv_item_cmp);
        for (size_t i = 1; i < kv->n; i++)
                if (strcmp(kv->items[i - 1].key, kv->items[i].key) == 0)
                        return evd_error_set(err, -EBADMSG, "key %s twice", kv->items[i].key);
        return 0;
}

static char *kv_get(const Kv *kv, const char *key)
{
        KvItem k = {.key = key}, *hit = bsearch(&k, kv->items, kv->n, sizeof(KvItem), kv_item_cmp);
        return hit ? hit->value : NULL;
}

static char *kv_get_at(const Kv *kv, const char *prefix, size_t i, const char *field)
{
        char key[48];
        snprintf(key, sizeof(key), "%s%zu.%s", prefix, i, field);
        return kv_get(kv, key);
}

static int parse_i64(const char *s, int64_t *ret)
{
        if (!s || !*s)
                return -EINVAL;
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || *end)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int parse_u64(const char *s, uint64_t *ret)
{
        if (!s || !*s || *s == '-')
                return -EINVAL;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || *end)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* ---- files --------------------------------------------------------------------------------------- */

static int fsync_dir(int dir_fd)
{
        return fsync(dir_fd) < 0 ? -errno : 0;
}

/* Writes buf as dir/name: temp name, fsync, rename (replacing unless noreplace), directory fsync. */
static int write_durable(int dir_fd, const char *name, const char *buf, size_t len, bool noreplace)
{
        char tmp[64];
        uint64_t rnd = 0;
        (void)!getrandom(&rnd, sizeof(rnd), 0);
        snprintf(tmp, sizeof(tmp), ".tmp-%016" PRIx64, rnd);
        _cleanup_close_ int fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
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
        return fsync_dir(dir_fd);
}

static int read_kv(int dir_fd, const char *name, size_t max, Kv *kv, EvdError *err)
{
        char *buf = NULL;
        size_t len = 0;
        int r = evd_small_file_read(dir_fd, name, max, &buf, &len);
        if (r < 0)
                return evd_error_set_errno(err, r, "reading %s", name);
        return kv_parse(buf, len, kv, err); /* kv owns buf, also on error */
}

static int subdir(int dir_fd, const char *name, int *ret_fd)
{
        if (mkdirat(dir_fd, name, 0750) < 0 && errno != EEXIST)
                return -errno;
        int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        *ret_fd = fd;
        return 0;
}

static int load_db_tag(EvdSpool *s)
{
        Kv kv = {};
        int r = read_kv(s->cache_fd, "database", 4096, &kv, NULL);
        const char *tag = r >= 0 ? kv_get(&kv, "tag") : NULL;
        snprintf(s->db_tag, sizeof(s->db_tag), "%s", tag && strlen(tag) == 8 ? tag : SPOOL_NO_TAG);
        kv_clear(&kv);
        return 0;
}

int evd_spool_open(const char *dir, EvdSpool **ret, EvdError *err)
{
        if (!dir || !*dir)
                return evd_error_set(err, -EINVAL, "no spool directory");
        _cleanup_(evd_spool_freep) EvdSpool *s = calloc(1, sizeof(*s));
        if (!s || !(s->dir = strdup(dir)))
                return -ENOMEM;
        s->dir_fd = s->entries_fd = s->map_fd = s->open_fd = s->cache_fd = s->rejected_fd = -1;
        if (mkdir(dir, 0750) < 0 && errno != EEXIST)
                return evd_error_set_errno(err, -errno, "creating spool directory %s", dir);
        s->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->dir_fd < 0)
                return evd_error_set_errno(err, -errno, "opening spool directory %s", dir);
        int r;
        if ((r = subdir(s->dir_fd, "entries", &s->entries_fd)) < 0 ||
            (r = subdir(s->dir_fd, "map", &s->map_fd)) < 0 ||
            (r = subdir(s->dir_fd, "open", &s->open_fd)) < 0 ||
            (r = subdir(s->dir_fd, "cache", &s->cache_fd)) < 0 ||
            (r = subdir(s->dir_fd, "rejected", &s->rejected_fd)) < 0)
                return evd_error_set_errno(err, r, "preparing spool directory %s", dir);
        /* the spool's own identity (for the database lock that serialises replays) */
        Kv kv = {};
        r = read_kv(s->dir_fd, "id", 4096, &kv, NULL);
        const char *id = r >= 0 ? kv_get(&kv, "id") : NULL;
        if (id && strlen(id) == 32)
                snprintf(s->id, sizeof(s->id), "%s", id);
        kv_clear(&kv);
        if (!s->id[0]) {
                uint8_t rnd[16];
                if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
                        return evd_error_set_errno(err, -EIO, "no random bytes for the spool id");
                evd_hex(rnd, sizeof(rnd), s->id);
                KvOut o;
                _cleanup_free_ char *buf = NULL;
                size_t len = 0;
                if (kv_begin(&o) < 0)
                        return -ENOMEM;
                kv_put(&o, "id", s->id);
                r = kv_end(&o, &buf, &len);
                if (r >= 0)
                        r = write_durable(s->dir_fd, "id", buf, len, true);
                if (r == -EEXIST) { /* another process was first: use its id */
                        r = read_kv(s->dir_fd, "id", 4096, &kv, err);
                        id = r >= 0 ? kv_get(&kv, "id") : NULL;
                        if (id && strlen(id) == 32)
                                snprintf(s->id, sizeof(s->id), "%s", id);
                        kv_clear(&kv);
                }
                if (r < 0)
                        return evd_error_set_errno(err, r, "writing %s/id", dir);
        }
        load_db_tag(s);
        *ret = steal_ptr(&s);
        return 0;
}

static void strv_free(char **v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

static int strv_push(char ***v, size_t *n, size_t *size, const char *item)
{
        if (*n == *size) {
                size_t ns = *size ? *size * 2 : 64;
                char **nv = realloc(*v, ns * sizeof(char *));
                if (!nv)
                        return -ENOMEM;
                *v = nv;
                *size = ns;
        }
        if (!((*v)[*n] = strdup(item)))
                return -ENOMEM;
        (*n)++;
        return 0;
}

static void index_clear(EvdSpool *s)
{
        for (size_t i = 0; i < s->n_index; i++)
                free(s->index[i]);
        free(s->index);
        s->index = NULL;
        s->n_index = s->size_index = 0;
        s->index_built = false;
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
        index_clear(s);
        strv_free(s->known, s->n_known);
        free(s->dir);
        free(s);
        return NULL;
}

/* ---- entry names: <seq:16 hex>-<kind>-<device or "-">-<db tag> ------------------------------------ */

typedef struct EntryName {
        uint64_t seq;
        EvdSpoolKind kind;
        char device[16];
        char tag[EVD_SPOOL_TAG_SIZE];
        char name[ENTRY_NAME_MAX];
} EntryName;

static int entry_name_parse(const char *name, EntryName *ret)
{
        if (strlen(name) >= ENTRY_NAME_MAX || name[0] == '.')
                return -EINVAL;
        char buf[ENTRY_NAME_MAX];
        snprintf(buf, sizeof(buf), "%s", name);
        char *parts[4];
        char *save = NULL, *p = buf;
        for (int i = 0; i < 4; i++, p = NULL)
                if (!(parts[i] = strtok_r(p, "-", &save)))
                        return -EINVAL;
        if (strtok_r(NULL, "-", &save) || strlen(parts[0]) != 16 || strlen(parts[3]) != 8 ||
            strlen(parts[2]) > 15)
                return -EINVAL;
        char *end;
        errno = 0;
        uint64_t seq = strtoull(parts[0], &end, 16);
        int k = kind_from_string(parts[1]);
        if (errno || *end || k < 0)
                return -EINVAL;
        *ret = (EntryName){.seq = seq, .kind = (EvdSpoolKind)k};
        snprintf(ret->device, sizeof(ret->device), "%s",
                 strcmp(parts[2], SPOOL_NO_DEVICE) == 0 ? "" : parts[2]);
        snprintf(ret->tag, sizeof(ret->tag), "%s", parts[3]);
        snprintf(ret->name, sizeof(ret->name), "%s", name);
        return 0;
}

static int entry_name_cmp(const void *a, const void *b)
{
        const EntryName *x = a, *y = b;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The entries, in spool order. At most EVD_SPOOL_LIST_MAX (the rest in a later pass). */
static int entries_list(EvdSpool *s, EntryName **ret, size_t *ret_n)
{
        int fd = openat(s->entries_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }
        EntryName *v = NULL;
        size_t n = 0, size = 0;
        struct dirent *de;
        while ((de = readdir(d)) && n < EVD_SPOOL_LIST_MAX) {
                EntryName e;
                if (entry_name_parse(de->d_name, &e) < 0)
                        continue; /* temp files, strangers */
                if (n == size) {
                        size_t ns = size ? size * 2 : 64;
                        EntryName *nv = realloc(v, ns * sizeof(*v));
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

int evd_spool_backlog(EvdSpool *s, unsigned *ret_n)
{
        _cleanup_free_ EntryName *v = NULL;
        size_t n = 0;
        int r = entries_list(s, &v, &n);
        if (r < 0)
                return r;
        *ret_n = (unsigned)n;
        return 0;
}

int evd_spool_device_pending(EvdSpool *s, const char *device_id, unsigned *ret_n)
{
        _cleanup_free_ EntryName *v = NULL;
        size_t n = 0;
        int r = entries_list(s, &v, &n);
        if (r < 0)
                return r;
        unsigned c = 0;
        for (size_t i = 0; i < n; i++)
                c += strcmp(v[i].device, device_id) == 0 &&
                     (strcmp(v[i].tag, s->db_tag) == 0 || strcmp(v[i].tag, SPOOL_NO_TAG) == 0);
        *ret_n = c;
        return 0;
}

/* ---- the database's identity ----------------------------------------------------------------------- */

static int db_identity(EvdDb *db, char *ret, size_t size, char ret_tag[EVD_SPOOL_TAG_SIZE], EvdError *err)
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

/* ---- cache ----------------------------------------------------------------------------------------- */

static int cache_write(EvdSpool *s, const char *name, KvOut *o, EvdError *err)
{
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r = kv_end(o, &buf, &len);
        if (r >= 0)
                r = write_durable(s->cache_fd, name, buf, len, false);
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
        int r = db_identity(db, identity, sizeof(identity), tag, err);
        if (r < 0)
                return r;
        EvdDbDevice *devs = NULL;
        size_t n = 0;
        r = evd_db_device_list(db, &devs, &n, err);
        if (r < 0)
                return r;
        KvOut o;
        if (kv_begin(&o) < 0) {
                evd_db_device_array_free(devs, n);
                return -ENOMEM;
        }
        kv_putf(&o, "n", "%zu", n);
        for (size_t i = 0; i < n; i++) {
                kv_put_at(&o, "d", i, "device", devs[i].device_id);
                kv_put_at(&o, "d", i, "officer", devs[i].officer_id);
                kv_put_at(&o, "d", i, "unit", devs[i].unit_code);
                kv_put_at(&o, "d", i, "suite", evd_suite_to_string(devs[i].suite));
                kv_put_at(&o, "d", i, "pem", devs[i].public_key_pem);
                kv_put_at(&o, "d", i, "key_id", devs[i].key_id);
        }
        evd_db_device_array_free(devs, n);
        if (strcmp(tag, s->db_tag) != 0) {
                /* another database: its heads are not ours */
                cache_drop_heads(s);
                KvOut od;
                if (kv_begin(&od) < 0) {
                        fclose(o.f);
                        free(o.buf);
                        return -ENOMEM;
                }
                kv_put(&od, "identity", identity);
                kv_put(&od, "tag", tag);
                r = cache_write(s, "database", &od, err);
                if (r < 0) {
                        fclose(o.f);
                        free(o.buf);
                        return r;
                }
                snprintf(s->db_tag, sizeof(s->db_tag), "%s", tag);
                index_clear(s);
        }
        return cache_write(s, "enrollments", &o, err);
}

int evd_spool_cache_device(EvdSpool *s, const char *device_id, EvdDbDevice **ret_dev, EvdError *err)
{
        Kv kv = {};
        int r = read_kv(s->cache_fd, "enrollments", EVD_SPOOL_CACHE_MAX, &kv, err);
        if (r == -ENOENT) {
                kv_clear(&kv);
                return -ENOENT;
        }
        if (r < 0) {
                kv_clear(&kv);
                return evd_error_prefix(err, "enrollment cache %s/cache: ", s->dir), r;
        }
        uint64_t n = 0;
        (void)parse_u64(kv_get(&kv, "n"), &n);
        r = -ENOENT;
        for (size_t i = 0; i < n; i++) {
                const char *id = kv_get_at(&kv, "d", i, "device");
                if (!id || strcmp(id, device_id) != 0)
                        continue;
                const char *officer = kv_get_at(&kv, "d", i, "officer"),
                           *unit = kv_get_at(&kv, "d", i, "unit"), *pem = kv_get_at(&kv, "d", i, "pem"),
                           *key_id = kv_get_at(&kv, "d", i, "key_id");
                int suite = evd_suite_from_string(strna(kv_get_at(&kv, "d", i, "suite")));
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
        kv_clear(&kv);
        return r;
}

int evd_spool_cache_head_get(EvdSpool *s, const char *device_id, EvdDbChainHead *ret_head, EvdError *err)
{
        if (!evd_device_id_valid(device_id))
                return -EINVAL;
        char name[32];
        snprintf(name, sizeof(name), "head-%s", device_id);
        Kv kv = {};
        int r = read_kv(s->cache_fd, name, 4096, &kv, err);
        if (r < 0) {
                kv_clear(&kv);
                return r == -ENOENT ? r : (evd_error_prefix(err, "spool cache: "), r);
        }
        EvdDbChainHead h = {};
        int64_t end = 0;
        const char *e = kv_get(&kv, "end");
        if (parse_u64(kv_get(&kv, "seq"), &h.seq) < 0 || parse_u64(kv_get(&kv, "session"), &h.session) < 0 ||
            evd_unhex(strna(kv_get(&kv, "hash")), h.record_hash, EVD_DIGEST_SIZE) < 0 ||
            (e && parse_i64(e, &end) < 0)) {
                kv_clear(&kv);
                return evd_error_set(err, -EBADMSG, "spool cache: %s is incomplete", name);
        }
        h.has_end = e != NULL;
        h.end_us = end;
        kv_clear(&kv);
        *ret_head = h;
        return 0;
}

int evd_spool_cache_head_set(EvdSpool *s, const char *device_id, const EvdDbChainHead *head, EvdError *err)
{
        if (!evd_device_id_valid(device_id))
                return -EINVAL;
        char name[32];
        snprintf(name, sizeof(name), "head-%s", device_id);
        KvOut o;
        if (kv_begin(&o) < 0)
                return -ENOMEM;
        kv_putf(&o, "seq", "%" PRIu64, head->seq);
        kv_putf(&o, "session", "%" PRIu64, head->session);
        kv_put_hex(&o, "hash", head->record_hash);
        if (head->has_end)
                kv_putf(&o, "end", "%" PRId64, head->end_us);
        return cache_write(s, name, &o, err);
}

/* ---- writing --------------------------------------------------------------------------------------- */

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
        d->lock_fd = openat(s->open_fd, d->key, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
        if (d->lock_fd < 0)
                return evd_error_set_errno(err, -errno, "creating %s/open/%s", s->dir, d->key);
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

static void put_docking(KvOut *o, const EvdDbDocking *d)
{
        kv_put(o, "d.device", d->device_id);
        kv_put(o, "d.identity", d->identity);
        kv_put(o, "d.transport", d->transport);
        kv_put(o, "d.location", d->location);
        if (d->has_clock_offset)
                kv_putf(o, "d.clock", "%" PRId64, d->clock_offset_us);
        kv_putf(o, "d.docked", "%" PRId64, d->docked_us);
}

static void put_findings(KvOut *o, const EvdFinding *f, size_t n)
{
        kv_putf(o, "n_findings", "%zu", n);
        for (size_t i = 0; i < n; i++) {
                char seq[24];
                kv_put_at(o, "f", i, "verdict", evd_verdict_to_string(f[i].verdict));
                if (evd_finding_has_seq(&f[i])) {
                        snprintf(seq, sizeof(seq), "%" PRIu64, f[i].seq);
                        kv_put_at(o, "f", i, "seq", seq);
                }
                kv_put_at(o, "f", i, "expected", f[i].expected);
                kv_put_at(o, "f", i, "found", f[i].found);
                kv_put_at(o, "f", i, "detail", f[i].detail);
        }
}

static void put_events(KvOut *o, const EvdCustodyEntry *e, size_t n)
{
        kv_putf(o, "n_events", "%zu", n);
        for (size_t i = 0; i < n; i++) {
                kv_put_at(o, "e", i, "kind", e[i].kind);
                kv_put_at(o, "e", i, "device", e[i].device_id);
                kv_put_at(o, "e", i, "detail", e[i].detail ? e[i].detail : "");
        }
}

static void put_result(KvOut *o, const EvdDbDockingResult *r)
{
        kv_putf(o, "r.seen", "%u", r->files_seen);
        kv_putf(o, "r.ingested", "%u", r->files_ingested);
        kv_putf(o, "r.already", "%u", r->files_already);
        kv_putf(o, "r.quarantined", "%u", r->files_quarantined);
        kv_put(o, "r.verdict", evd_verdict_to_string(r->verdict));
        kv_put(o, "r.summary", r->summary);
        kv_putf(o, "r.finished", "%" PRId64, r->finished_us);
}

static void put_file(KvOut *o, const EvdDbFile *f)
{
        kv_put(o, "file.device", f->device_id);
        kv_put(o, "file.officer", f->officer_id);
        if (f->has_seq)
                kv_putf(o, "file.seq", "%" PRIu64, f->seq);
        kv_putf(o, "file.session", "%" PRIu64, f->session);
        kv_put(o, "file.method", evd_method_to_string(f->method));
        kv_put(o, "file.case", f->case_number);
        if (f->has_recorded) {
                kv_putf(o, "file.recorded_start", "%" PRId64, f->recorded_start_us);
                kv_putf(o, "file.recorded_end", "%" PRId64, f->recorded_end_us);
        }
        kv_putf(o, "file.tz", "%d", f->tz_minutes);
        if (f->has_clock_offset)
                kv_putf(o, "file.clock", "%" PRId64, f->clock_offset_us);
        kv_putf(o, "file.ingested", "%" PRId64, f->ingested_us);
        kv_putf(o, "file.stored", "%" PRId64, f->stored_us);
        kv_put(o, "file.within_24h", f->within_24h ? "1" : "0");
        kv_putf(o, "file.size", "%" PRIu64, f->size);
        kv_put_hex(o, "file.sha256", f->sha256);
        kv_put_hex(o, "file.record_hash", f->record_hash);
        kv_put(o, "file.chain_record", f->chain_record);
        kv_put(o, "file.source_path", f->source_path);
        kv_put(o, "file.original_path", f->original_path);
        kv_put(o, "file.archive_path", f->archive_path);
        kv_put_hex(o, "file.archive_sha256", f->archive_sha256);
        kv_put(o, "file.archive_format", f->archive_format);
        kv_put_hex(o, "file.packets_sha256", f->packets_sha256);
        kv_put(o, "file.verdict", evd_verdict_to_string(f->verdict));
        kv_put(o, "file.confidentiality", f->confidentiality);
        kv_put(o, "file.retention", f->retention_class);
}

static int index_add(EvdSpool *s, const char *item)
{
        return strv_push(&s->index, &s->n_index, &s->size_index, item);
}

/* "r:<record hash>" for a chained file, "f:<sha256>:<source path>" for a foreign one */
static char *index_key(const char *record_hash_hex, const char *sha256_hex, const char *source_path)
{
        char *k = NULL;
        if (record_hash_hex)
                return asprintf(&k, "r:%s", record_hash_hex) < 0 ? NULL : k;
        return asprintf(&k, "f:%s:%s", strna(sha256_hex), strna(source_path)) < 0 ? NULL : k;
}

int evd_spool_append(EvdSpool *s, EvdSpoolDocking *d, const EvdSpoolRecord *rec, EvdError *err)
{
        const char *kind = evd_spool_kind_to_string(rec->kind);
        if (!kind || rec->n_findings > EVD_SPOOL_FINDINGS_MAX || rec->n_events > EVD_SPOOL_EVENTS_MAX ||
            ((rec->kind == EVD_SPOOL_BEGIN || rec->kind == EVD_SPOOL_REFUSED) && !rec->docking) ||
            ((rec->kind == EVD_SPOOL_REFUSED || rec->kind == EVD_SPOOL_END) && !rec->result) ||
            (rec->kind == EVD_SPOOL_FILE && (!rec->file || !rec->file->sha256)) ||
            (rec->kind == EVD_SPOOL_FINDING && rec->n_findings != 1))
                return evd_error_set(err, -EINVAL, "spool entry '%s': incomplete", strna(kind));

        int64_t at = evd_clock_wall_us();
        KvOut o;
        if (kv_begin(&o) < 0)
                return -ENOMEM;
        kv_put(&o, "kind", kind);
        kv_put(&o, "docking", d->key);
        kv_put(&o, "device", d->device_id[0] ? d->device_id : NULL);
        kv_put(&o, "db", s->db_tag);
        kv_putf(&o, "at", "%" PRId64, at);
        if (rec->docking)
                put_docking(&o, rec->docking);
        if (rec->file)
                put_file(&o, rec->file);
        put_findings(&o, rec->findings, rec->n_findings);
        put_events(&o, rec->events, rec->n_events);
        if (rec->head) {
                kv_putf(&o, "h.seq", "%" PRIu64, rec->head->seq);
                kv_putf(&o, "h.session", "%" PRIu64, rec->head->session);
                kv_put_hex(&o, "h.hash", rec->head->record_hash);
                if (rec->head->has_end)
                        kv_putf(&o, "h.end", "%" PRId64, rec->head->end_us);
        }
        if (rec->result)
                put_result(&o, rec->result);
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r = kv_end(&o, &buf, &len);
        if (r < 0)
                return evd_error_set_errno(err, r, "encoding a spool entry");

        /* the next free sequence number: after every entry there is (others may append too) */
        if (s->next_seq == 0) {
                _cleanup_free_ EntryName *v = NULL;
                size_t n = 0;
                r = entries_list(s, &v, &n);
                if (r < 0)
                        return evd_error_set_errno(err, r, "listing %s/entries", s->dir);
                s->next_seq = n ? v[n - 1].seq + 1 : 1;
        }
        for (unsigned tries = 0;; tries++) {
                char name[ENTRY_NAME_MAX];
                snprintf(name, sizeof(name), "%016" PRIx64 "-%s-%s-%s", s->next_seq, kind,
                         d->device_id[0] ? d->device_id : SPOOL_NO_DEVICE, s->db_tag);
                r = write_durable(s->entries_fd, name, buf, len, true);
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

        if (rec->kind == EVD_SPOOL_FILE && s->index_built && strcmp(s->index_device, d->device_id) == 0) {
                char rh[EVD_DB_HEX_SIZE], sh[EVD_DB_HEX_SIZE];
                _cleanup_free_ char *k = index_key(
                    rec->file->record_hash ? evd_hex(rec->file->record_hash, EVD_DIGEST_SIZE, rh) : NULL,
                    evd_hex(rec->file->sha256, EVD_DIGEST_SIZE, sh), rec->file->source_path);
                if (!k || index_add(s, k) < 0)
                        index_clear(s); /* rebuilt at the next lookup */
        }
        return 0;
}

/* the known-files cache of a device: k<i>=<index key> */
static int known_load(EvdSpool *s, const char *device_id, char ***v, size_t *n, size_t *size)
{
        char name[32];
        snprintf(name, sizeof(name), "known-%s", device_id);
        Kv kv = {};
        int r = read_kv(s->cache_fd, name, EVD_SPOOL_CACHE_MAX, &kv, NULL);
        uint64_t count = 0;
        if (r >= 0 && parse_u64(kv_get(&kv, "n"), &count) >= 0)
                for (size_t i = 0; i < count && r >= 0; i++) {
                        char key[24];
                        snprintf(key, sizeof(key), "k%zu", i);
                        const char *k = kv_get(&kv, key);
                        if (k)
                                r = strv_push(v, n, size, k);
                }
        kv_clear(&kv);
        return r == -ENOENT || r == -EBADMSG ? 0 : r; /* a broken cache costs copies, not correctness */
}

int evd_spool_cache_known_add(EvdSpool *s, const char *device_id, const uint8_t *record_hash,
                              const char *source_path, const uint8_t *sha256)
{
        if (!evd_device_id_valid(device_id) || (!record_hash && !sha256))
                return -EINVAL;
        if (strcmp(s->known_device, device_id) != 0) {
                strv_free(s->known, s->n_known);
                s->known = NULL;
                s->n_known = s->size_known = 0;
                snprintf(s->known_device, sizeof(s->known_device), "%s", device_id);
        }
        char rh[EVD_DB_HEX_SIZE], sh[EVD_DB_HEX_SIZE];
        _cleanup_free_ char *k =
            index_key(record_hash ? evd_hex(record_hash, EVD_DIGEST_SIZE, rh) : NULL,
                      sha256 ? evd_hex(sha256, EVD_DIGEST_SIZE, sh) : NULL, source_path);
        if (!k)
                return -ENOMEM;
        return strv_push(&s->known, &s->n_known, &s->size_known, k);
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
                r = strv_push(&v, &n, &size, s->known[i]);
        if (r < 0) {
                strv_free(v, n);
                return evd_error_set_errno(err, r, "merging the known-files cache");
        }
        qsort(v, n, sizeof(char *), strp_cmp);
        KvOut o;
        if (kv_begin(&o) < 0) {
                strv_free(v, n);
                return -ENOMEM;
        }
        size_t out = 0;
        for (size_t i = 0; i < n && out < EVD_SPOOL_KNOWN_MAX; i++) {
                if (i > 0 && strcmp(v[i], v[i - 1]) == 0)
                        continue;
                char key[24];
                snprintf(key, sizeof(key), "k%zu", out++);
                kv_put(&o, key, v[i]);
        }
        kv_putf(&o, "n", "%zu", out);
        strv_free(v, n);
        char name[32];
        snprintf(name, sizeof(name), "known-%s", device_id);
        r = cache_write(s, name, &o, err);
        if (r >= 0) {
                strv_free(s->known, s->n_known);
                s->known = NULL;
                s->n_known = s->size_known = 0;
        }
        return r;
}

static int index_build(EvdSpool *s, const char *device_id)
{
        index_clear(s);
        int r0 = known_load(s, device_id, &s->index, &s->n_index, &s->size_index);
        if (r0 < 0)
                return r0;
        _cleanup_free_ EntryName *v = NULL;
        size_t n = 0;
        int r = entries_list(s, &v, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                if (v[i].kind != EVD_SPOOL_FILE || strcmp(v[i].device, device_id) != 0)
                        continue;
                Kv kv = {};
                if (read_kv(s->entries_fd, v[i].name, EVD_SPOOL_ENTRY_MAX, &kv, NULL) >= 0) {
                        _cleanup_free_ char *k =
                            index_key(kv_get(&kv, "file.record_hash"), kv_get(&kv, "file.sha256"),
                                      kv_get(&kv, "file.source_path"));
                        r = k ? index_add(s, k) : -ENOMEM;
                }
                kv_clear(&kv);
                if (r < 0) {
                        index_clear(s);
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
        char rh[EVD_DB_HEX_SIZE], sh[EVD_DB_HEX_SIZE];
        _cleanup_free_ char *k =
            index_key(record_hash ? evd_hex(record_hash, EVD_DIGEST_SIZE, rh) : NULL,
                      sha256 ? evd_hex(sha256, EVD_DIGEST_SIZE, sh) : NULL, source_path);
        if (!k)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_index; i++)
                if (strcmp(s->index[i], k) == 0)
                        return 1;
        return 0;
}

/* ---- reading entries back -------------------------------------------------------------------------- */

typedef struct Entry {
        Kv kv;
        EvdSpoolKind kind;
        const char *docking_key;
        const char *device; /* may be NULL */
        int64_t at_us;
        EvdDbDocking docking;
        EvdDbFile file;
        uint8_t sha256[EVD_DIGEST_SIZE], record_hash[EVD_DIGEST_SIZE], archive_sha256[EVD_DIGEST_SIZE],
            packets_sha256[EVD_DIGEST_SIZE];
        EvdFinding *findings;
        size_t n_findings;
        EvdCustodyEntry events[EVD_SPOOL_EVENTS_MAX];
        size_t n_events;
        bool has_head;
        EvdDbChainHead head;
        bool has_result;
        EvdDbDockingResult result;
} Entry;

static void entry_clear(Entry *e)
{
        kv_clear(&e->kv);
        free(e->findings);
        *e = (Entry){};
}

static int get_hex_opt(const Kv *kv, const char *key, uint8_t *out, const uint8_t **ret)
{
        const char *v = kv_get(kv, key);
        *ret = NULL;
        if (!v)
                return 0;
        if (evd_unhex(v, out, EVD_DIGEST_SIZE) < 0)
                return -EINVAL;
        *ret = out;
        return 0;
}

#define BAD(what) evd_error_set(err, -EBADMSG, "field %s missing or invalid", what)

static int entry_parse(Entry *e, EvdError *err)
{
        const Kv *kv = &e->kv;
        int k = kind_from_string(strna(kv_get(kv, "kind")));
        if (k < 0)
                return BAD("kind");
        e->kind = (EvdSpoolKind)k;
        e->docking_key = kv_get(kv, "docking");
        if (!e->docking_key || strlen(e->docking_key) >= EVD_SPOOL_KEY_SIZE || strchr(e->docking_key, '/') ||
            e->docking_key[0] == '.')
                return BAD("docking");
        e->device = kv_get(kv, "device");
        if (parse_i64(kv_get(kv, "at"), &e->at_us) < 0)
                return BAD("at");
        int64_t i64;
        uint64_t u64;

        if (kv_get(kv, "d.transport")) {
                EvdDbDocking *d = &e->docking;
                d->device_id = kv_get(kv, "d.device");
                d->identity = kv_get(kv, "d.identity");
                d->transport = kv_get(kv, "d.transport");
                d->location = kv_get(kv, "d.location");
                if (kv_get(kv, "d.clock")) {
                        if (parse_i64(kv_get(kv, "d.clock"), &d->clock_offset_us) < 0)
                                return BAD("d.clock");
                        d->has_clock_offset = true;
                }
                if (parse_i64(kv_get(kv, "d.docked"), &d->docked_us) < 0)
                        return BAD("d.docked");
        } else if (e->kind == EVD_SPOOL_BEGIN || e->kind == EVD_SPOOL_REFUSED)
                return BAD("d.transport");

        if (e->kind == EVD_SPOOL_FILE) {
                EvdDbFile *f = &e->file;
                f->device_id = kv_get(kv, "file.device");
                f->officer_id = kv_get(kv, "file.officer");
                if (kv_get(kv, "file.seq")) {
                        if (parse_u64(kv_get(kv, "file.seq"), &f->seq) < 0)
                                return BAD("file.seq");
                        f->has_seq = true;
                }
                if (parse_u64(kv_get(kv, "file.session"), &f->session) < 0)
                        return BAD("file.session");
                f->method = evd_method_from_string(strna(kv_get(kv, "file.method")));
                f->case_number = kv_get(kv, "file.case");
                if (kv_get(kv, "file.recorded_start")) {
                        if (parse_i64(kv_get(kv, "file.recorded_start"), &f->recorded_start_us) < 0 ||
                            parse_i64(kv_get(kv, "file.recorded_end"), &f->recorded_end_us) < 0)
                                return BAD("file.recorded_*");
                        f->has_recorded = true;
                }
                if (parse_i64(kv_get(kv, "file.tz"), &i64) < 0 || i64 < -1440 || i64 > 1440)
                        return BAD("file.tz");
                f->tz_minutes = (int)i64;
                if (kv_get(kv, "file.clock")) {
                        if (parse_i64(kv_get(kv, "file.clock"), &f->clock_offset_us) < 0)
                                return BAD("file.clock");
                        f->has_clock_offset = true;
                }
                if (parse_i64(kv_get(kv, "file.ingested"), &f->ingested_us) < 0 ||
                    parse_i64(kv_get(kv, "file.stored"), &f->stored_us) < 0 ||
                    parse_u64(kv_get(kv, "file.size"), &f->size) < 0)
                        return BAD("file.ingested/stored/size");
                f->within_24h = strcmp(strna(kv_get(kv, "file.within_24h")), "1") == 0;
                const uint8_t *sha = NULL;
                if (get_hex_opt(kv, "file.sha256", e->sha256, &sha) < 0 || !sha)
                        return BAD("file.sha256");
                f->sha256 = sha;
                if (get_hex_opt(kv, "file.record_hash", e->record_hash, &f->record_hash) < 0 ||
                    get_hex_opt(kv, "file.archive_sha256", e->archive_sha256, &f->archive_sha256) < 0 ||
                    get_hex_opt(kv, "file.packets_sha256", e->packets_sha256, &f->packets_sha256) < 0)
                        return BAD("file digests");
                f->chain_record = kv_get(kv, "file.chain_record");
                f->source_path = kv_get(kv, "file.source_path");
                f->original_path = kv_get(kv, "file.original_path");
                f->archive_path = kv_get(kv, "file.archive_path");
                f->archive_format = kv_get(kv, "file.archive_format");
                int v = evd_verdict_from_string(strna(kv_get(kv, "file.verdict")));
                if (v < 0)
                        return BAD("file.verdict");
                f->verdict = (EvdVerdict)v;
                f->confidentiality = kv_get(kv, "file.confidentiality");
                f->retention_class = kv_get(kv, "file.retention");
                if (!f->device_id || !f->original_path || !f->retention_class)
                        return BAD("file.device/original_path/retention");
        }

        if (parse_u64(kv_get(kv, "n_findings"), &u64) < 0 || u64 > EVD_SPOOL_FINDINGS_MAX)
                return BAD("n_findings");
        e->findings = calloc(u64 ? u64 : 1, sizeof(EvdFinding));
        if (!e->findings)
                return -ENOMEM;
        e->n_findings = u64;
        for (size_t i = 0; i < e->n_findings; i++) {
                EvdFinding *f = &e->findings[i];
                int v = evd_verdict_from_string(strna(kv_get_at(kv, "f", i, "verdict")));
                if (v < 0)
                        return BAD("finding verdict");
                f->verdict = (EvdVerdict)v;
                f->seq = EVD_FINDING_NO_SEQ;
                const char *seq = kv_get_at(kv, "f", i, "seq");
                if (seq && (parse_u64(seq, &f->seq) < 0 || f->seq == EVD_FINDING_NO_SEQ))
                        return BAD("finding seq");
                f->expected = kv_get_at(kv, "f", i, "expected");
                f->found = kv_get_at(kv, "f", i, "found");
                f->detail = kv_get_at(kv, "f", i, "detail");
        }
        if (parse_u64(kv_get(kv, "n_events"), &u64) < 0 || u64 > EVD_SPOOL_EVENTS_MAX)
                return BAD("n_events");
        e->n_events = u64;
        for (size_t i = 0; i < e->n_events; i++) {
                e->events[i] = (EvdCustodyEntry){.kind = kv_get_at(kv, "e", i, "kind"),
                                                 .device_id = kv_get_at(kv, "e", i, "device"),
                                                 .detail = kv_get_at(kv, "e", i, "detail")};
                if (!e->events[i].kind)
                        return BAD("custody kind");
        }
        if (kv_get(kv, "h.seq")) {
                EvdDbChainHead *h = &e->head;
                if (parse_u64(kv_get(kv, "h.seq"), &h->seq) < 0 ||
                    parse_u64(kv_get(kv, "h.session"), &h->session) < 0 ||
                    evd_unhex(strna(kv_get(kv, "h.hash")), h->record_hash, EVD_DIGEST_SIZE) < 0)
                        return BAD("h.*");
                if (kv_get(kv, "h.end")) {
                        if (parse_i64(kv_get(kv, "h.end"), &h->end_us) < 0)
                                return BAD("h.end");
                        h->has_end = true;
                }
                e->has_head = true;
        }
        if (kv_get(kv, "r.verdict")) {
                EvdDbDockingResult *r = &e->result;
                uint64_t a, b, c, d;
                int v = evd_verdict_from_string(kv_get(kv, "r.verdict"));
                if (v < 0 || parse_u64(kv_get(kv, "r.seen"), &a) < 0 ||
                    parse_u64(kv_get(kv, "r.ingested"), &b) < 0 ||
                    parse_u64(kv_get(kv, "r.already"), &c) < 0 ||
                    parse_u64(kv_get(kv, "r.quarantined"), &d) < 0 ||
                    parse_i64(kv_get(kv, "r.finished"), &r->finished_us) < 0)
                        return BAD("r.*");
                *r = (EvdDbDockingResult){.files_seen = (unsigned)a,
                                          .files_ingested = (unsigned)b,
                                          .files_already = (unsigned)c,
                                          .files_quarantined = (unsigned)d,
                                          .verdict = (EvdVerdict)v,
                                          .summary = kv_get(kv, "r.summary"),
                                          .finished_us = r->finished_us};
                e->has_result = true;
        } else if (e->kind == EVD_SPOOL_REFUSED || e->kind == EVD_SPOOL_END)
                return BAD("r.verdict");
        if (e->kind == EVD_SPOOL_FINDING && e->n_findings != 1)
                return BAD("finding");
        return 0;
}

static int entry_load(EvdSpool *s, const char *name, Entry *e, EvdError *err)
{
        *e = (Entry){};
        int r = read_kv(s->entries_fd, name, EVD_SPOOL_ENTRY_MAX, &e->kv, err);
        if (r >= 0)
                r = entry_parse(e, err);
        return r;
}

int evd_spool_list(EvdSpool *s, EvdSpoolListFn fn, void *userdata, EvdError *err)
{
        _cleanup_free_ EntryName *v = NULL;
        size_t n = 0;
        int r = entries_list(s, &v, &n);
        if (r < 0)
                return evd_error_set_errno(err, r, "listing %s/entries", s->dir);
        for (size_t i = 0; i < n; i++) {
                Entry e;
                EvdError perr = {};
                EvdSpoolInfo info = {.seq = v[i].seq, .kind = v[i].kind};
                snprintf(info.device_id, sizeof(info.device_id), "%s", v[i].device);
                snprintf(info.db_tag, sizeof(info.db_tag), "%s", v[i].tag);
                struct stat st;
                if (fstatat(s->entries_fd, v[i].name, &st, AT_SYMLINK_NOFOLLOW) >= 0)
                        info.size = (uint64_t)st.st_size;
                char summary[300] = "";
                if (entry_load(s, v[i].name, &e, &perr) < 0) {
                        info.corrupt = true;
                        snprintf(summary, sizeof(summary), "CORRUPT: %s", perr.msg);
                } else {
                        snprintf(info.docking_key, sizeof(info.docking_key), "%s", e.docking_key);
                        info.spooled_us = e.at_us;
                        if (e.kind == EVD_SPOOL_FILE)
                                snprintf(summary, sizeof(summary), "%s %s",
                                         evd_verdict_to_string(e.file.verdict), e.file.original_path);
                        else if (e.kind == EVD_SPOOL_FINDING)
                                snprintf(summary, sizeof(summary), "%s",
                                         evd_verdict_to_string(e.findings[0].verdict));
                        else if (e.has_result)
                                snprintf(summary, sizeof(summary), "%s", strna(e.result.summary));
                        else if (e.kind == EVD_SPOOL_BEGIN)
                                snprintf(summary, sizeof(summary), "%s at %s", strna(e.docking.transport),
                                         strna(e.docking.location));
                }
                info.summary = summary;
                fn(&info, userdata);
                entry_clear(&e);
        }
        return 0;
}

/* ---- replay ---------------------------------------------------------------------------------------- */

typedef struct Replay {
        EvdSpool *s;
        EvdDb *db;
        EvdSpoolReplay *res;
        EvdError *err;
} Replay;

static bool db_refused(int r)
{
        /* the database said no to this entry's content: it will say no again */
        return r == -EINVAL || r == -EPERM || r == -ENOENT || r == -EEXIST || r == -EBADMSG || r == -ERANGE;
}

/* Moves an entry aside with the reason next to it: never dropped. */
static void reject(Replay *p, const char *name, const char *why)
{
        char dst[ENTRY_NAME_MAX + 32], whyname[ENTRY_NAME_MAX + 40];
        snprintf(dst, sizeof(dst), "%s.%" PRId64, name, evd_clock_wall_us());
        snprintf(whyname, sizeof(whyname), "%s.why", dst);
        if (renameat(p->s->entries_fd, name, p->s->rejected_fd, dst) < 0)
                return; /* stays where it is: replayed (and rejected) again next time */
        (void)fsync_dir(p->s->rejected_fd);
        (void)fsync_dir(p->s->entries_fd);
        KvOut o;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        if (kv_begin(&o) >= 0) {
                kv_put(&o, "why", why);
                if (kv_end(&o, &buf, &len) >= 0)
                        (void)write_durable(p->s->rejected_fd, whyname, buf, len, false);
        }
        p->res->rejected++;
        snprintf(p->res->last_rejected, sizeof(p->res->last_rejected), "%s: %s", name, why);
        evd_debug("spool: rejected %s: %s", name, why);
}

static int entry_delete(Replay *p, const char *name)
{
        if (unlinkat(p->s->entries_fd, name, 0) < 0 && errno != ENOENT)
                return evd_error_set_errno(p->err, -errno, "removing replayed spool entry %s", name);
        return 0;
}

static int map_read(EvdSpool *s, const char *key, int64_t *ret_id)
{
        if (key[0] == 'd')
                return parse_i64(key + 1, ret_id) < 0 || *ret_id <= 0 ? -EBADMSG : 0;
        Kv kv = {};
        int r = read_kv(s->map_fd, key, 4096, &kv, NULL);
        if (r >= 0)
                r = parse_i64(kv_get(&kv, "docking_id"), ret_id) < 0 ? -EBADMSG : 0;
        kv_clear(&kv);
        return r;
}

static int map_write(EvdSpool *s, const char *key, int64_t id)
{
        KvOut o;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        if (kv_begin(&o) < 0)
                return -ENOMEM;
        kv_putf(&o, "docking_id", "%" PRId64, id);
        int r = kv_end(&o, &buf, &len);
        return r < 0 ? r : write_durable(s->map_fd, key, buf, len, false);
}

static bool docking_open(EvdSpool *s, const char *key)
{
        _cleanup_close_ int fd = openat(s->open_fd, key, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return false;
        if (flock(fd, LOCK_SH | LOCK_NB) < 0)
                return errno == EWOULDBLOCK;
        (void)unlinkat(s->open_fd, key, 0); /* its writer is gone */
        return false;
}

/* Custody details say when the step happened: the database clock stamps the replay. */
static int events_annotate(const Entry *e, int64_t docking_id, EvdCustodyEntry *out, char (*details)[640])
{
        char when[EVD_TIME_STRLEN + 1];
        evd_time_format(e->at_us, 0, when);
        for (size_t i = 0; i < e->n_events; i++) {
                out[i] = e->events[i];
                out[i].docking_id = docking_id;
                out[i].file_id = 0;
                snprintf(details[i], sizeof(details[i]), "%s [offline: spooled %s]",
                         strna(e->events[i].detail), when);
                out[i].detail = details[i];
        }
        return 0;
}

/* BEGIN and REFUSED: a new docking row, its custody (and for REFUSED its finding and result), in one
 * transaction; the new id goes to map/<key> before the commit. */
static int replay_docking(Replay *p, const EntryName *n, Entry *e)
{
        int64_t id = 0;
        int r = map_read(p->s, e->docking_key, &id);
        if (r >= 0) {
                r = evd_db_docking_exists(p->db, id, p->err);
                if (r < 0)
                        return r;
                if (r > 0) { /* committed by a replay that stopped before deleting the entry */
                        p->res->already++;
                        return entry_delete(p, n->name);
                }
                (void)unlinkat(p->s->map_fd, e->docking_key, 0);
        }
        r = evd_db_begin(p->db, p->err);
        if (r < 0)
                return r;
        r = evd_db_docking_begin(p->db, &e->docking, &id, p->err);
        if (r >= 0) {
                r = map_write(p->s, e->docking_key, id);
                if (r < 0)
                        evd_error_set_errno(p->err, r, "writing %s/map/%s", p->s->dir, e->docking_key);
        }
        EvdCustodyEntry ev[EVD_SPOOL_EVENTS_MAX];
        char details[EVD_SPOOL_EVENTS_MAX][640];
        events_annotate(e, id, ev, details);
        for (size_t i = 0; r >= 0 && i < e->n_events; i++)
                r = evd_custody_append(p->db, &ev[i], NULL, p->err);
        for (size_t i = 0; r >= 0 && i < e->n_findings; i++)
                r = evd_db_docking_finding_add(p->db, id, &e->findings[i], p->err);
        if (r >= 0 && e->kind == EVD_SPOOL_REFUSED)
                r = evd_db_docking_finish(p->db, id, &e->result, p->err);
        if (r >= 0)
                r = evd_db_commit(p->db, p->err);
        if (r < 0) {
                (void)evd_db_rollback(p->db);
                return r;
        }
        p->res->replayed++;
        r = entry_delete(p, n->name);
        if (r >= 0 && e->kind == EVD_SPOOL_REFUSED)
                (void)unlinkat(p->s->map_fd, e->docking_key, 0);
        return r;
}

static int replay_file(Replay *p, const EntryName *n, Entry *e, int64_t docking_id)
{
        EvdCustodyEntry ev[EVD_SPOOL_EVENTS_MAX];
        char details[EVD_SPOOL_EVENTS_MAX][640];
        events_annotate(e, docking_id, ev, details);
        e->file.docking_id = docking_id;
        int r =
            evd_db_file_record(p->db, &e->file, e->findings, e->n_findings, ev, e->n_events, NULL, p->err);
        if (r == -EEXIST)
                p->res
                    ->already++; /* recorded before: online before the outage, or by an interrupted replay */
        else if (r < 0)
                return r;
        else
                p->res->replayed++;
        return entry_delete(p, n->name);
}

typedef struct Deferred {
        EntryName name;
        char key[EVD_SPOOL_KEY_SIZE];
} Deferred;

/* END (or, for a docking whose writer died, a synthesised one): finish first (unique per docking, so a
 * second replay stops there), then head, custody and the docking's deferred findings; one transaction. */
static int replay_end(Replay *p, const EntryName *n, Entry *e, const char *key, int64_t docking_id,
                      Deferred *def, size_t n_def)
{
        int r = evd_db_begin(p->db, p->err);
        if (r < 0)
                return r;
        r = evd_db_docking_finish(p->db, docking_id, &e->result, p->err);
        if (r == -EEXIST) {
                (void)evd_db_rollback(p->db);
                p->err->code = 0;
                p->err->msg[0] = 0;
                for (size_t i = 0; i < n_def; i++)
                        if (def[i].key[0] && strcmp(def[i].key, key) == 0) {
                                p->res->already++;
                                (void)entry_delete(p, def[i].name.name);
                                def[i].key[0] = 0;
                        }
                p->res->already += n != NULL;
                r = n ? entry_delete(p, n->name) : 0;
                (void)unlinkat(p->s->map_fd, key, 0);
                return r;
        }
        if (r >= 0 && e->has_head && e->device)
                r = evd_db_chain_head_set(p->db, e->device, docking_id, &e->head, p->err);
        EvdCustodyEntry ev[EVD_SPOOL_EVENTS_MAX];
        char details[EVD_SPOOL_EVENTS_MAX][640];
        events_annotate(e, docking_id, ev, details);
        for (size_t i = 0; r >= 0 && i < e->n_events; i++)
                r = evd_custody_append(p->db, &ev[i], NULL, p->err);
        unsigned n_findings = 0;
        for (size_t i = 0; r >= 0 && i < n_def; i++) {
                if (!def[i].key[0] || strcmp(def[i].key, key) != 0)
                        continue;
                Entry fe;
                EvdError perr = {};
                if (entry_load(p->s, def[i].name.name, &fe, &perr) < 0) {
                        entry_clear(&fe);
                        reject(p, def[i].name.name, perr.msg);
                        def[i].key[0] = 0;
                        continue;
                }
                r = evd_db_docking_finding_add(p->db, docking_id, &fe.findings[0], p->err);
                n_findings++;
                entry_clear(&fe);
        }
        if (r >= 0)
                r = evd_db_commit(p->db, p->err);
        if (r < 0) {
                (void)evd_db_rollback(p->db);
                return r;
        }
        for (size_t i = 0; i < n_def; i++)
                if (def[i].key[0] && strcmp(def[i].key, key) == 0) {
                        (void)entry_delete(p, def[i].name.name);
                        def[i].key[0] = 0;
                }
        p->res->replayed += n_findings + (n != NULL);
        r = n ? entry_delete(p, n->name) : 0;
        (void)unlinkat(p->s->map_fd, key, 0);
        return r;
}

/* Map files of dockings with nothing left to replay and no writer. */
static void maps_cleanup(EvdSpool *s)
{
        _cleanup_free_ EntryName *v = NULL;
        size_t n_v = 0;
        if (entries_list(s, &v, &n_v) < 0)
                return;
        /* the docking keys still referenced */
        _cleanup_free_ char(*keys)[EVD_SPOOL_KEY_SIZE] = calloc(n_v ? n_v : 1, EVD_SPOOL_KEY_SIZE);
        if (!keys)
                return;
        for (size_t i = 0; i < n_v; i++) {
                Entry e;
                if (entry_load(s, v[i].name, &e, NULL) >= 0)
                        snprintf(keys[i], EVD_SPOOL_KEY_SIZE, "%s", e.docking_key);
                entry_clear(&e);
        }
        int fd = openat(s->map_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d) {
                closep(&fd);
                return;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                bool used = false;
                for (size_t i = 0; i < n_v && !used; i++)
                        used = strcmp(keys[i], de->d_name) == 0;
                if (!used && !docking_open(s, de->d_name))
                        (void)unlinkat(s->map_fd, de->d_name, 0);
        }
        closedir(d);
}

static int replay_pass(Replay *p, const char *tag)
{
        EvdSpool *s = p->s;
        _cleanup_free_ EntryName *v = NULL;
        size_t n = 0;
        int r = entries_list(s, &v, &n);
        if (r < 0)
                return evd_error_set_errno(p->err, r, "listing %s/entries", s->dir);
        _cleanup_free_ Deferred *def = calloc(n ? n : 1, sizeof(Deferred));
        if (!def)
                return -ENOMEM;
        size_t n_def = 0;

        for (size_t i = 0; i < n; i++) {
                const EntryName *en = &v[i];
                if (strcmp(en->tag, tag) != 0 && strcmp(en->tag, SPOOL_NO_TAG) != 0) {
                        p->res->waiting++;
                        p->res->other_db++;
                        continue;
                }
                Entry e;
                EvdError perr = {};
                r = entry_load(s, en->name, &e, &perr);
                if (r < 0) {
                        entry_clear(&e);
                        if (r == -ENOENT)
                                continue; /* replayed meanwhile by a finished replay */
                        if (r == -ENOMEM)
                                return r;
                        reject(p, en->name, perr.msg[0] ? perr.msg : strerror(-r));
                        continue;
                }
                int64_t docking_id = 0;
                if (e.kind == EVD_SPOOL_BEGIN || e.kind == EVD_SPOOL_REFUSED)
                        r = replay_docking(p, en, &e);
                else if (map_read(s, e.docking_key, &docking_id) < 0) {
                        r = 0;
                        reject(
                            p, en->name,
                            "its docking was never recorded (its begin entry is missing or was rejected)");
                } else if (e.kind == EVD_SPOOL_FILE)
                        r = replay_file(p, en, &e, docking_id);
                else if (e.kind == EVD_SPOOL_FINDING) {
                        def[n_def].name = *en;
                        snprintf(def[n_def].key, sizeof(def[n_def].key), "%s", e.docking_key);
                        n_def++;
                        r = 0;
                } else
                        r = replay_end(p, en, &e, e.docking_key, docking_id, def, n_def);
                if (r < 0 && !evd_spool_db_unreachable(r) && db_refused(r)) {
                        char why[600];
                        snprintf(why, sizeof(why), "the database refused it: %s",
                                 evd_error_message(p->err, r));
                        reject(p, en->name, why);
                        r = 0;
                }
                entry_clear(&e);
                if (r < 0)
                        return r;
        }

        /* findings of dockings without an END yet: wait while their writer runs; else it died */
        for (size_t i = 0; i < n_def; i++) {
                if (!def[i].key[0])
                        continue;
                const char *key = def[i].key;
                if (docking_open(s, key)) {
                        for (size_t k = i; k < n_def; k++)
                                p->res->waiting += def[k].key[0] && strcmp(def[k].key, key) == 0;
                        for (size_t k = n_def; k-- > i;)
                                if (def[k].key[0] && strcmp(def[k].key, key) == 0)
                                        def[k].key[0] = 0;
                        continue;
                }
                char keybuf[EVD_SPOOL_KEY_SIZE];
                snprintf(keybuf, sizeof(keybuf), "%s", key);
                int64_t docking_id = 0;
                if (map_read(s, keybuf, &docking_id) < 0) {
                        for (size_t k = i; k < n_def; k++)
                                if (def[k].key[0] && strcmp(def[k].key, keybuf) == 0) {
                                        reject(p, def[k].name.name, "its docking was never recorded");
                                        def[k].key[0] = 0;
                                }
                        continue;
                }
                EvdVerdict worst = EVD_VERDICT_INTACT;
                for (size_t k = i; k < n_def; k++) {
                        if (!def[k].key[0] || strcmp(def[k].key, keybuf) != 0)
                                continue;
                        Entry fe;
                        if (entry_load(s, def[k].name.name, &fe, NULL) >= 0)
                                worst = evd_verdict_worst(worst, fe.findings[0].verdict);
                        entry_clear(&fe);
                }
                const char *device = def[i].name.device[0] ? def[i].name.device : NULL;
                Entry end = {.kind = EVD_SPOOL_END,
                             .has_result = true,
                             .at_us = evd_clock_wall_us(),
                             .device = device};
                end.result = (EvdDbDockingResult){
                    .verdict = worst,
                    .summary = "interrupted: the process spooling this docking stopped before its end; "
                               "its findings were replayed from the spool",
                    .finished_us = end.at_us};
                end.events[0] = (EvdCustodyEntry){.kind = "interrupted",
                                                  .device_id = device,
                                                  .detail = "evidock stopped while spooling this docking"};
                end.n_events = 1;
                r = replay_end(p, NULL, &end, keybuf, docking_id, def, n_def);
                if (r < 0 && !evd_spool_db_unreachable(r) && db_refused(r)) {
                        for (size_t k = i; k < n_def; k++)
                                if (def[k].key[0] && strcmp(def[k].key, keybuf) == 0) {
                                        reject(p, def[k].name.name, evd_error_message(p->err, r));
                                        def[k].key[0] = 0;
                                }
                        r = 0;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

int evd_spool_replay(EvdSpool *s, EvdDb *db, EvdSpoolReplay *ret, EvdError *err)
{
        EvdSpoolReplay local = {};
        EvdSpoolReplay *res = ret ? ret : &local;
        *res = (EvdSpoolReplay){};
        EvdError lerr = {};
        if (!err)
                err = &lerr;

        /* one replay per spool at a time in this host... */
        _cleanup_close_ int lock =
            openat(s->dir_fd, "replay.lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
        if (lock < 0)
                return evd_error_set_errno(err, -errno, "opening %s/replay.lock", s->dir);
        if (flock(lock, LOCK_EX | LOCK_NB) < 0)
                return errno == EWOULDBLOCK
                           ? evd_error_set(err, -EBUSY, "another replay of %s is running", s->dir)
                           : evd_error_set_errno(err, -errno, "locking %s/replay.lock", s->dir);

        unsigned n = 0;
        int r = evd_spool_backlog(s, &n);
        if (r < 0)
                return evd_error_set_errno(err, r, "listing %s/entries", s->dir);
        if (n == 0)
                return 0;

        char identity[300], tag[EVD_SPOOL_TAG_SIZE];
        r = db_identity(db, identity, sizeof(identity), tag, err);
        if (r < 0)
                return r;
        /* ...and in the database: waits until a killed replayer's transaction has ended either way */
        r = evd_db_replay_lock(db, s->id, true, err);
        if (r < 0)
                return r;
        Replay p = {.s = s, .db = db, .res = res, .err = err};
        r = replay_pass(&p, tag);
        if (r < 0)
                (void)evd_db_rollback(db);
        (void)evd_db_replay_lock(db, s->id, false, NULL);
        if (r >= 0)
                maps_cleanup(s);
        return r;
}
