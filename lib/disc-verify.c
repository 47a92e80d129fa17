/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "disc-verify.h"
#include "hash.h"

#define ISO_BLOCK  2048u
#define READ_CHUNK (1u << 20) /* one sequential read of the medium */

const char *evd_disc_drive_path(const char *drive)
{
        return strncmp(drive, "stdio:", 6) == 0 ? drive + 6 : drive;
}

EvdDiscReadback *evd_disc_readback_free(EvdDiscReadback *rb)
{
        if (!rb)
                return NULL;
        for (size_t i = 0; i < rb->n_files; i++)
                free(rb->files[i].path);
        free(rb->files);
        free(rb);
        return NULL;
}

typedef struct Extent {
        uint64_t start; /* byte offset on the medium */
        uint64_t len;   /* bytes of the file in this extent */
        size_t file;    /* index into files */
} Extent;

typedef struct Listing {
        EvdDiscReadback *rb;
        Extent *ext;
        size_t n_ext, cap_ext, cap_files;
        bool md5_seen, md5_bad;
        int error;
} Listing;

/* "File data lba:  0 ,       63 ,        1 ,        3 , '/bagit.txt'" */
static int listing_line(char channel, const char *text, void *userdata)
{
        Listing *l = userdata;
        if (channel != 'R')
                return 0;
        if (strncmp(text, "MD5 tag range:", 14) == 0) {
                l->md5_seen = true;
                if (!strstr(text, "+ md5_match"))
                        l->md5_bad = true;
                snprintf(l->rb->md5_detail, sizeof(l->rb->md5_detail), "%s", text);
                return 0;
        }
        if (strncmp(text, "File data lba:", 14) != 0)
                return 0;
        unsigned xt;
        unsigned long long lba, blocks, size;
        int off = 0;
        if (sscanf(text + 14, " %u , %llu , %llu , %llu , '%n", &xt, &lba, &blocks, &size, &off) != 4 ||
            off == 0)
                return 0;
        const char *name = text + 14 + off;
        size_t nlen = strlen(name);
        if (nlen < 2 || name[nlen - 1] != '\'' || name[0] != '/')
                return 0;
        nlen--; /* the closing quote */
        EvdDiscReadback *rb = l->rb;
        /* A file over 4 GiB is listed once per extent with the same path; the size is the file's. */
        size_t fi;
        bool same = rb->n_files > 0 && xt > 0 && strlen(rb->files[rb->n_files - 1].path) == nlen - 1 &&
                    strncmp(rb->files[rb->n_files - 1].path, name + 1, nlen - 1) == 0;
        if (same) {
                fi = rb->n_files - 1;
        } else {
                if (rb->n_files >= EVD_DISC_FILES_MAX) {
                        l->error = -E2BIG;
                        return -E2BIG;
                }
                if (rb->n_files == l->cap_files) {
                        size_t cap = MAX((size_t)64, l->cap_files * 2);
                        EvdDiscReadFile *f = realloc(rb->files, cap * sizeof(*f));
                        if (!f)
                                return l->error = -ENOMEM;
                        rb->files = f;
                        l->cap_files = cap;
                }
                fi = rb->n_files;
                rb->files[fi] = (EvdDiscReadFile){.path = strndup(name + 1, nlen - 1), .size = size};
                if (!rb->files[fi].path)
                        return l->error = -ENOMEM;
                rb->n_files++;
        }
        if (l->n_ext == l->cap_ext) {
                size_t cap = MAX((size_t)64, l->cap_ext * 2);
                Extent *e = realloc(l->ext, cap * sizeof(*e));
                if (!e)
                        return l->error = -ENOMEM;
                l->ext = e;
                l->cap_ext = cap;
        }
        /* The bytes of this extent: all of its blocks except in the last extent of the file. */
        uint64_t before = 0;
        for (size_t i = 0; i < l->n_ext; i++)
                if (l->ext[i].file == fi)
                        before += l->ext[i].len;
        uint64_t len = MIN((uint64_t)blocks * ISO_BLOCK, size > before ? size - before : 0);
        l->ext[l->n_ext++] = (Extent){.start = (uint64_t)lba * ISO_BLOCK, .len = len, .file = fi};
        return 0;
}

static int cmp_extent(const void *a, const void *b)
{
        const Extent *x = a, *y = b;
        return x->start < y->start ? -1 : x->start > y->start;
}

static int pread_all(int fd, uint8_t *buf, size_t n, uint64_t off, size_t *ret_got)
{
        size_t got = 0;
        while (got < n) {
                ssize_t r = pread(fd, buf + got, n - got, (off_t)(off + got));
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (r == 0)
                        break;
                got += (size_t)r;
        }
        *ret_got = got;
        return 0;
}

static void parse_label(EvdDiscReadback *rb, const char *info, size_t n)
{
        static const char key[] = "External-Identifier:";
        for (size_t i = 0; i + sizeof(key) - 1 <= n; i++) {
                if ((i == 0 || info[i - 1] == '\n') && memcmp(info + i, key, sizeof(key) - 1) == 0) {
                        size_t j = i + sizeof(key) - 1, k = 0;
                        while (j < n && info[j] == ' ')
                                j++;
                        while (j < n && info[j] != '\n' && info[j] != '\r' && k + 1 < sizeof(rb->label))
                                rb->label[k++] = info[j++];
                        rb->label[k] = '\0';
                        return;
                }
        }
}

/* Streams the volume once: image hash plus every file's hash. */
static int stream(int fd, EvdDiscReadback *rb, Extent *ext, size_t n_ext, EvdDiscReadProgress progress,
                  void *userdata, const atomic_int *cancel, EvdError *err)
{
        qsort(ext, n_ext, sizeof(*ext), cmp_extent);
        size_t info_file = SIZE_MAX;
        for (size_t i = 0; i < rb->n_files; i++)
                if (strcmp(rb->files[i].path, "bag-info.txt") == 0)
                        info_file = i;
        char info[8192];
        size_t info_n = 0;

        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *image = NULL;
        if (evd_hash_begin(EVD_HASH_SHA256, &image) < 0)
                return evd_error_set(err, -ENOMEM, "read-back: cannot start a hash");
        /* One hash context per file, opened at its first extent, finished after its last. */
        EVP_MD_CTX **ctx = calloc(MAX(rb->n_files, (size_t)1), sizeof(*ctx));
        uint64_t *left = calloc(MAX(rb->n_files, (size_t)1), sizeof(*left));
        bool *done = calloc(MAX(rb->n_files, (size_t)1), sizeof(*done));
        uint8_t *buf = malloc(READ_CHUNK);
        int r = 0;
        if (!ctx || !left || !done || !buf)
                r = evd_error_set(err, -ENOMEM, "read-back: out of memory");
        for (size_t i = 0; r >= 0 && i < rb->n_files; i++)
                left[i] = rb->files[i].size;
        uint64_t total = rb->image_blocks * ISO_BLOCK, off = 0;
        size_t next = 0; /* first extent not finished */
        while (r >= 0 && off < total) {
                if (cancel && atomic_load(cancel)) {
                        r = evd_error_set(err, -ECANCELED, "read-back: cancelled");
                        break;
                }
                size_t want = (size_t)MIN((uint64_t)READ_CHUNK, total - off), got;
                r = pread_all(fd, buf, want, off, &got);
                if (r < 0) {
                        r = evd_error_set_errno(err, r, "read-back: read error at block %" PRIu64,
                                                off / ISO_BLOCK);
                        break;
                }
                if (got < want) {
                        r = evd_error_set(err, -EIO,
                                          "read-back: the medium ends at block %" PRIu64
                                          ", the volume says %" PRIu64,
                                          (off + got) / ISO_BLOCK, rb->image_blocks);
                        break;
                }
                evd_hash_update(image, buf, got);
                uint64_t end = off + got;
                for (size_t e = next; e < n_ext && ext[e].start < end; e++) {
                        uint64_t a = MAX(ext[e].start, off), b = MIN(ext[e].start + ext[e].len, end);
                        if (b > a) {
                                size_t fi = ext[e].file;
                                if (!ctx[fi] && evd_hash_begin(EVD_HASH_SHA256, &ctx[fi]) < 0) {
                                        r = evd_error_set(err, -ENOMEM, "read-back: cannot start a hash");
                                        break;
                                }
                                evd_hash_update(ctx[fi], buf + (a - off), (size_t)(b - a));
                                left[fi] -= MIN(left[fi], b - a);
                                if (left[fi] == 0) { /* done: keep only the digest */
                                        evd_hash_end(ctx[fi], rb->files[fi].sha256);
                                        EVP_MD_CTX_free(ctx[fi]);
                                        ctx[fi] = NULL;
                                        done[fi] = true;
                                }
                                if (fi == info_file && info_n < sizeof(info)) {
                                        size_t c = MIN((size_t)(b - a), sizeof(info) - info_n);
                                        memcpy(info + info_n, buf + (a - off), c);
                                        info_n += c;
                                }
                        }
                        if (ext[e].start + ext[e].len <= end && e == next)
                                next++;
                }
                off = end;
                if (progress)
                        progress(off, total, userdata);
        }
        for (size_t i = 0; ctx && left && done && i < rb->n_files; i++) {
                if (r >= 0 && left[i] != 0)
                        r = evd_error_set(err, -EIO, "read-back: '%s' lies outside the ISO volume",
                                          rb->files[i].path);
                if (r >= 0 && !done[i] && rb->files[i].size == 0) /* an empty file has no extent */
                        evd_hash_buffer(EVD_HASH_SHA256, "", 0, rb->files[i].sha256);
                EVP_MD_CTX_free(ctx[i]);
        }
        if (r >= 0)
                evd_hash_end(image, rb->image_sha256);
        if (info_file != SIZE_MAX)
                parse_label(rb, info, info_n);
        free(ctx);
        free(left);
        free(done);
        free(buf);
        return r;
}

int evd_disc_read_back(const char *drive, const EvdXorrisoRun *run, EvdDiscReadProgress progress,
                       void *userdata, EvdDiscReadback **ret, EvdError *err)
{
        const char *path = evd_disc_drive_path(drive);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return evd_error_set_errno(
                    err, errno == ENOENT || errno == ENOMEDIUM ? -ENOENT : negative_errno(),
                    "read-back: cannot open %s", path);
        /* The primary volume descriptor at block 16: type 1, "CD001", volume ID, volume space size. */
        uint8_t pvd[ISO_BLOCK];
        size_t got;
        int r = pread_all(fd, pvd, sizeof(pvd), 16u * ISO_BLOCK, &got);
        if (r < 0)
                return evd_error_set_errno(err, r, "read-back: cannot read the volume descriptor of %s",
                                           path);
        if (got < sizeof(pvd) || pvd[0] != 1 || memcmp(pvd + 1, "CD001", 5) != 0)
                return evd_error_set(err, -EMEDIUMTYPE, "read-back: %s holds no ISO 9660 volume", path);

        _cleanup_(evd_disc_readback_freep) EvdDiscReadback *rb = calloc(1, sizeof(*rb));
        if (!rb)
                return evd_error_set(err, -ENOMEM, "read-back: out of memory");
        memcpy(rb->volume_id, pvd + 40, 32);
        for (int i = 31; i >= 0 && (rb->volume_id[i] == ' ' || rb->volume_id[i] == '\0'); i--)
                rb->volume_id[i] = '\0';
        rb->image_blocks =
            (uint64_t)pvd[80] | (uint64_t)pvd[81] << 8 | (uint64_t)pvd[82] << 16 | (uint64_t)pvd[83] << 24;

        Listing l = {.rb = rb};
        EvdXorrisoRun x = *run;
        x.line = listing_line;
        x.userdata = &l;
        const char *args[] = {"-md5", "on",    "-indev",     drive, "-find",        "/",  "-type",
                              "f",    "-exec", "report_lba", "--",  "-check_media", "--", NULL};
        EvdError xerr = {};
        r = evd_xorriso_run(&x, args, NULL, &xerr);
        if (l.error < 0) {
                free(l.ext);
                return evd_error_set(err, l.error, "read-back of %s: %s", path,
                                     l.error == -E2BIG ? "too many files on the disc" : "out of memory");
        }
        if (r < 0 && r != -EIO) {
                free(l.ext);
                if (err)
                        *err = xerr;
                return r;
        }
        /* A non-zero exit with a complete listing (an MD5 mismatch is a SORRY) is a result, not an error. */
        if (r == -EIO && !l.md5_seen && rb->n_files == 0) {
                free(l.ext);
                return evd_error_set(err, -EIO, "read-back of %s: %s", path, xerr.msg);
        }
        rb->md5_session_ok = l.md5_seen && !l.md5_bad;
        if (!l.md5_seen)
                snprintf(rb->md5_detail, sizeof(rb->md5_detail), "no MD5 session tag found");
        r = stream(fd, rb, l.ext, l.n_ext, progress, userdata, run->cancel, err);
        free(l.ext);
        if (r < 0)
                return r;
        *ret = steal_ptr(&rb);
        return 0;
}

typedef struct Cmp {
        const EvdDiscReadback *rb;
        bool *seen;
        size_t *order; /* indices of rb->files sorted by path */
        EvdDiscCompare *out;
} Cmp;

static int cmp_index(const void *a, const void *b, void *userdata)
{
        const EvdDiscReadback *rb = userdata;
        return strcmp(rb->files[*(const size_t *)a].path, rb->files[*(const size_t *)b].path);
}

static void cmp_note(EvdDiscCompare *c, const char *path, const char *what)
{
        c->files_bad++;
        size_t used = strlen(c->detail);
        if (used + 8 < sizeof(c->detail))
                snprintf(c->detail + used, sizeof(c->detail) - used, "%s%s %s", used ? "; " : "", path,
                         what);
}

static int cmp_file(const char *path, uint64_t size, const char *sha256_hex, int64_t file_id,
                    const char *role, void *userdata)
{
        (void)file_id, (void)role;
        Cmp *c = userdata;
        size_t lo = 0, hi = c->rb->n_files;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int d = strcmp(c->rb->files[c->order[mid]].path, path);
                if (d == 0) {
                        lo = mid;
                        break;
                }
                if (d < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (lo < c->rb->n_files && strcmp(c->rb->files[c->order[lo]].path, path) == 0 &&
            !c->seen[c->order[lo]]) {
                size_t i = c->order[lo];
                const EvdDiscReadFile *f = &c->rb->files[i];
                c->seen[i] = true;
                char hex[EVD_DB_HEX_SIZE];
                if (f->size != size || strcmp(evd_hex(f->sha256, EVD_DIGEST_SIZE, hex), sha256_hex) != 0)
                        cmp_note(c->out, path, "differs from the database");
                else
                        c->out->files_checked++;
                return 0;
        }
        cmp_note(c->out, path, "is missing");
        return 0;
}

/* Compares rb with the expected files that expect() streams into cmp_file(). */
static int compare_with(const EvdDiscReadback *rb, int (*expect)(Cmp *c, const void *src, EvdError *err),
                        const void *src, EvdDiscCompare *ret, EvdError *err)
{
        *ret = (EvdDiscCompare){};
        _cleanup_free_ bool *seen = calloc(MAX(rb->n_files, (size_t)1), sizeof(bool));
        _cleanup_free_ size_t *order = calloc(MAX(rb->n_files, (size_t)1), sizeof(size_t));
        if (!seen || !order)
                return evd_error_set(err, -ENOMEM, "comparing a disc: out of memory");
        for (size_t i = 0; i < rb->n_files; i++)
                order[i] = i;
        qsort_r(order, rb->n_files, sizeof(size_t), cmp_index, (void *)rb);
        Cmp c = {.rb = rb, .seen = seen, .order = order, .out = ret};
        int r = expect(&c, src, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < rb->n_files; i++)
                if (!seen[i])
                        cmp_note(ret, rb->files[i].path, "is on the disc but not in the database");
        if (!rb->md5_session_ok) {
                size_t used = strlen(ret->detail);
                snprintf(ret->detail + used, sizeof(ret->detail) - used, "%sxorriso MD5 session check: %s",
                         used ? "; " : "", rb->md5_detail);
        }
        return ret->files_bad == 0 && rb->md5_session_ok ? 1 : 0;
}

typedef struct PartSource {
        EvdDb *db;
        int64_t part_id;
} PartSource;

static int expect_part(Cmp *c, const void *src, EvdError *err)
{
        const PartSource *ps = src;
        return evd_db_disc_part_files(ps->db, ps->part_id, cmp_file, c, err);
}

int evd_disc_readback_compare(EvdDb *db, int64_t part_id, const EvdDiscReadback *rb, EvdDiscCompare *ret,
                              EvdError *err)
{
        PartSource ps = {.db = db, .part_id = part_id};
        return compare_with(rb, expect_part, &ps, ret, err);
}

typedef struct BagSource {
        const EvdDiscBagFile *files;
        size_t n;
} BagSource;

static int expect_bag(Cmp *c, const void *src, EvdError *err)
{
        (void)err;
        const BagSource *bs = src;
        char hex[EVD_DB_HEX_SIZE];
        for (size_t i = 0; i < bs->n; i++)
                (void)cmp_file(bs->files[i].path, bs->files[i].size,
                               evd_hex(bs->files[i].sha256, EVD_DIGEST_SIZE, hex), bs->files[i].file_id,
                               bs->files[i].role, c);
        return 0;
}

int evd_disc_readback_compare_files(const EvdDiscBagFile *files, size_t n, const EvdDiscReadback *rb,
                                    EvdDiscCompare *ret, EvdError *err)
{
        BagSource bs = {.files = files, .n = n};
        return compare_with(rb, expect_bag, &bs, ret, err);
}
