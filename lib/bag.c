/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bag.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>

#define BAG_COPY_CHUNK (1u << 20) /* one read buffer while copying a payload file */

typedef struct BagInfo {
        char *label;
        char *value;
} BagInfo;

struct EvdBag {
        int dir_fd;     /* borrowed */
        int data_fd;    /* data/ */
        FILE *manifest; /* manifest-sha256.txt, written as files are added */
        FILE *index;    /* unnamed side file: "size listed hex path" per written or listed file */
        BagInfo info[EVD_BAG_INFO_MAX];
        size_t n_info;
        bool has_date;
        uint64_t payload_bytes;
        uint64_t payload_files;
        bool finished;
};

static void fclose_quiet(FILE *f)
{
        if (f)
                fclose(f);
}

EvdBag *evd_bag_free(EvdBag *bag)
{
        if (!bag)
                return NULL;
        if (bag->data_fd >= 0)
                close(bag->data_fd);
        fclose_quiet(bag->manifest);
        fclose_quiet(bag->index);
        for (size_t i = 0; i < bag->n_info; i++) {
                free(bag->info[i].label);
                free(bag->info[i].value);
        }
        free(bag);
        return NULL;
}

static FILE *fopenat_write(int dir_fd, const char *name)
{
        int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
                return NULL;
        FILE *f = fdopen(fd, "w");
        if (!f) {
                int saved = errno;
                close(fd);
                errno = saved;
        }
        return f;
}

static FILE *side_file(int dir_fd)
{
        int fd = openat(dir_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd < 0)
                return tmpfile(); /* a filesystem without O_TMPFILE */
        FILE *f = fdopen(fd, "w+");
        if (!f)
                close(fd);
        return f;
}

int evd_bag_new(int dir_fd, EvdBag **ret_bag, EvdError *err)
{
        EvdBag *bag = calloc(1, sizeof(*bag));
        if (!bag)
                return evd_error_set(err, -ENOMEM, "bag: out of memory");
        _cleanup_(evd_bag_freep) EvdBag *b = bag;
        b->dir_fd = dir_fd;
        b->data_fd = -1;
        if (mkdirat(dir_fd, "data", 0755) < 0)
                return evd_error_set_errno(err, negative_errno(), "bag: cannot create data/");
        b->data_fd = openat(dir_fd, "data", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (b->data_fd < 0)
                return evd_error_set_errno(err, negative_errno(), "bag: cannot open data/");
        b->manifest = fopenat_write(dir_fd, "manifest-sha256.txt");
        if (!b->manifest)
                return evd_error_set_errno(err, negative_errno(), "bag: cannot create manifest-sha256.txt");
        b->index = side_file(dir_fd);
        if (!b->index)
                return evd_error_set_errno(err, negative_errno(), "bag: cannot create a temporary file");
        *ret_bag = steal_ptr(&b);
        return 0;
}

int evd_bag_path_check(const char *path, EvdError *err)
{
        if (!path || !*path)
                return evd_error_set(err, -EINVAL, "bag: empty payload path");
        size_t n = strlen(path);
        if (n > EVD_BAG_PATH_MAX)
                return evd_error_set(err, -EINVAL, "bag: payload path longer than %u bytes",
                                     EVD_BAG_PATH_MAX);
        if (path[0] == '/')
                return evd_error_set(err, -EINVAL, "bag: payload path '%s' is absolute", path);
        for (const char *p = path; *p; p++)
                if (*p == '\n' || *p == '\r' || *p == '%' || *p == '\\' || (unsigned char)*p < 0x20 ||
                    *p == 0x7f)
                        return evd_error_set(
                            err, -EINVAL,
                            "bag: payload path '%s' holds a character that BagIt or sha256sum "
                            "would encode (control, '%%' or '\\')",
                            path);
        for (const char *c = path;;) {
                const char *slash = strchr(c, '/');
                size_t len = slash ? (size_t)(slash - c) : strlen(c);
                if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
                        return evd_error_set(err, -EINVAL,
                                             "bag: payload path '%s' has an empty, '.' or '..' part", path);
                if (!slash)
                        break;
                c = slash + 1;
        }
        return 0;
}

/* Creates the parent directories of path below dir_fd. */
static int mkdir_parents(int dir_fd, const char *path)
{
        char buf[EVD_BAG_PATH_MAX + 1];
        snprintf(buf, sizeof(buf), "%s", path);
        for (char *s = strchr(buf, '/'); s; s = strchr(s + 1, '/')) {
                *s = '\0';
                if (mkdirat(dir_fd, buf, 0755) < 0 && errno != EEXIST)
                        return negative_errno();
                *s = '/';
        }
        return 0;
}

static int bag_note(EvdBag *bag, const char *bag_path, uint64_t size, bool listed,
                    const uint8_t sha256[EVD_DIGEST_SIZE], bool payload, EvdError *err)
{
        char hex[EVD_DIGEST_SIZE * 2 + 1];
        evd_hex(sha256, EVD_DIGEST_SIZE, hex);
        if (payload) {
                if (fprintf(bag->manifest, "%s  %s\n", hex, bag_path) < 0)
                        return evd_error_set_errno(err, -EIO, "bag: cannot write manifest-sha256.txt");
                bag->payload_bytes += size;
                bag->payload_files++;
        }
        if (fprintf(bag->index, "%" PRIu64 " %d %s %s\n", size, listed ? 1 : 0, hex, bag_path) < 0)
                return evd_error_set_errno(err, -EIO, "bag: cannot write the file index");
        return 0;
}

static int write_all(int fd, const void *buf, size_t n)
{
        const uint8_t *p = buf;
        while (n > 0) {
                ssize_t w = write(fd, p, n);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                p += w;
                n -= (size_t)w;
        }
        return 0;
}

static int create_payload(EvdBag *bag, const char *path, EvdError *err)
{
        int r = evd_bag_path_check(path, err);
        if (r < 0)
                return r;
        if (bag->finished)
                return evd_error_set(err, -EBUSY, "bag: data/%s added after the bag was finished", path);
        r = mkdir_parents(bag->data_fd, path);
        if (r < 0)
                return evd_error_set_errno(err, r, "bag: cannot create the directories of data/%s", path);
        int fd = openat(bag->data_fd, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
                return evd_error_set_errno(err, negative_errno(), "bag: cannot create data/%s", path);
        return fd;
}

int evd_bag_add_bytes(EvdBag *bag, const char *path, const void *buf, size_t n,
                      uint8_t ret_sha256[EVD_DIGEST_SIZE], EvdError *err)
{
        _cleanup_close_ int fd = create_payload(bag, path, err);
        if (fd < 0)
                return fd;
        uint8_t digest[EVD_DIGEST_SIZE];
        int r = evd_hash_buffer(EVD_HASH_SHA256, buf, n, digest);
        if (r < 0)
                return evd_error_set_errno(err, r, "bag: cannot hash data/%s", path);
        r = write_all(fd, buf, n);
        if (r >= 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r < 0)
                return evd_error_set_errno(err, r, "bag: cannot write data/%s", path);
        char bag_path[EVD_BAG_PATH_MAX + 8];
        snprintf(bag_path, sizeof(bag_path), "data/%s", path);
        r = bag_note(bag, bag_path, n, false, digest, true, err);
        if (r < 0)
                return r;
        if (ret_sha256)
                memcpy(ret_sha256, digest, EVD_DIGEST_SIZE);
        return 0;
}

int evd_bag_add_copy(EvdBag *bag, const char *path, int src_fd, uint64_t *ret_size,
                     uint8_t ret_sha256[EVD_DIGEST_SIZE], EvdError *err)
{
        _cleanup_close_ int fd = create_payload(bag, path, err);
        if (fd < 0)
                return fd;
        _cleanup_free_ uint8_t *buf = malloc(BAG_COPY_CHUNK);
        if (!buf)
                return evd_error_set(err, -ENOMEM, "bag: out of memory");
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = NULL;
        int r = evd_hash_begin(EVD_HASH_SHA256, &ctx);
        if (r < 0)
                return evd_error_set_errno(err, r, "bag: cannot hash data/%s", path);
        uint64_t off = 0;
        for (;;) {
                ssize_t n = pread(src_fd, buf, BAG_COPY_CHUNK, (off_t)off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return evd_error_set_errno(err, negative_errno(),
                                                   "bag: cannot read the source of data/%s", path);
                }
                if (n == 0)
                        break;
                r = evd_hash_update(ctx, buf, (size_t)n);
                if (r >= 0)
                        r = write_all(fd, buf, (size_t)n);
                if (r < 0)
                        return evd_error_set_errno(err, r, "bag: cannot write data/%s", path);
                off += (uint64_t)n;
        }
        if (fsync(fd) < 0)
                return evd_error_set_errno(err, negative_errno(), "bag: cannot sync data/%s", path);
        uint8_t digest[EVD_DIGEST_SIZE];
        r = evd_hash_end(ctx, digest);
        if (r < 0)
                return evd_error_set_errno(err, r, "bag: cannot hash data/%s", path);
        char bag_path[EVD_BAG_PATH_MAX + 8];
        snprintf(bag_path, sizeof(bag_path), "data/%s", path);
        r = bag_note(bag, bag_path, off, false, digest, true, err);
        if (r < 0)
                return r;
        if (ret_size)
                *ret_size = off;
        if (ret_sha256)
                memcpy(ret_sha256, digest, EVD_DIGEST_SIZE);
        return 0;
}

int evd_bag_add_listed(EvdBag *bag, const char *path, uint64_t size, const uint8_t sha256[EVD_DIGEST_SIZE],
                       EvdError *err)
{
        int r = evd_bag_path_check(path, err);
        if (r < 0)
                return r;
        if (bag->finished)
                return evd_error_set(err, -EBUSY, "bag: data/%s added after the bag was finished", path);
        char bag_path[EVD_BAG_PATH_MAX + 8];
        snprintf(bag_path, sizeof(bag_path), "data/%s", path);
        return bag_note(bag, bag_path, size, true, sha256, true, err);
}

int evd_bag_info_add(EvdBag *bag, const char *label, const char *value, EvdError *err)
{
        if (!label || !*label || strlen(label) > EVD_BAG_LABEL_MAX)
                return evd_error_set(err, -EINVAL, "bag: bag-info label empty or longer than %u bytes",
                                     EVD_BAG_LABEL_MAX);
        for (const char *p = label; *p; p++)
                if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                      *p == '-'))
                        return evd_error_set(err, -EINVAL, "bag: bag-info label '%s' is not [A-Za-z0-9-]",
                                             label);
        if (strcasecmp(label, "Payload-Oxum") == 0)
                return evd_error_set(err, -EINVAL, "bag: Payload-Oxum is computed by the writer");
        if (!value || strlen(value) > EVD_BAG_VALUE_MAX || strpbrk(value, "\r\n"))
                return evd_error_set(err, -EINVAL,
                                     "bag: bag-info value of '%s' missing, too long or not one line", label);
        if (bag->n_info >= EVD_BAG_INFO_MAX)
                return evd_error_set(err, -E2BIG, "bag: more than %u bag-info entries", EVD_BAG_INFO_MAX);
        if (bag->finished)
                return evd_error_set(err, -EBUSY, "bag: bag-info entry added after the bag was finished");
        BagInfo *i = &bag->info[bag->n_info];
        i->label = strdup(label);
        i->value = strdup(value);
        if (!i->label || !i->value) {
                free(i->label);
                free(i->value);
                return evd_error_set(err, -ENOMEM, "bag: out of memory");
        }
        bag->n_info++;
        if (strcasecmp(label, "Bagging-Date") == 0)
                bag->has_date = true;
        return 0;
}

static int write_tag(EvdBag *bag, const char *name, const void *buf, size_t n, FILE *tagmanifest,
                     uint8_t ret_sha256[EVD_DIGEST_SIZE], EvdError *err)
{
        _cleanup_close_ int fd = openat(bag->dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
                return evd_error_set_errno(err, negative_errno(), "bag: cannot create %s", name);
        int r = write_all(fd, buf, n);
        if (r >= 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r < 0)
                return evd_error_set_errno(err, r, "bag: cannot write %s", name);
        uint8_t digest[EVD_DIGEST_SIZE];
        r = evd_hash_buffer(EVD_HASH_SHA256, buf, n, digest);
        if (r < 0)
                return evd_error_set_errno(err, r, "bag: cannot hash %s", name);
        if (tagmanifest) {
                char hex[EVD_DIGEST_SIZE * 2 + 1];
                if (fprintf(tagmanifest, "%s  %s\n", evd_hex(digest, EVD_DIGEST_SIZE, hex), name) < 0)
                        return evd_error_set_errno(err, -EIO, "bag: cannot write tagmanifest-sha256.txt");
        }
        r = bag_note(bag, name, n, false, digest, false, err);
        if (r < 0)
                return r;
        if (ret_sha256)
                memcpy(ret_sha256, digest, EVD_DIGEST_SIZE);
        return 0;
}

/* Extra tag files are written at once but listed in the tag manifest at finish: keep their names. */
int evd_bag_add_tag_file(EvdBag *bag, const char *name, const void *buf, size_t n,
                         uint8_t ret_sha256[EVD_DIGEST_SIZE], EvdError *err)
{
        int r = evd_bag_path_check(name, err);
        if (r < 0)
                return r;
        if (strchr(name, '/') || strcmp(name, "data") == 0 || strncmp(name, "manifest-", 9) == 0 ||
            strncmp(name, "tagmanifest-", 12) == 0 || strcmp(name, "bagit.txt") == 0 ||
            strcmp(name, "bag-info.txt") == 0 || strcmp(name, "fetch.txt") == 0)
                return evd_error_set(err, -EINVAL, "bag: '%s' is not a name for an extra tag file", name);
        if (bag->finished)
                return evd_error_set(err, -EBUSY, "bag: tag file %s added after the bag was finished", name);
        return write_tag(bag, name, buf, n, NULL, ret_sha256, err);
}

uint64_t evd_bag_payload_bytes(const EvdBag *bag)
{
        return bag->payload_bytes;
}

uint64_t evd_bag_payload_files(const EvdBag *bag)
{
        return bag->payload_files;
}

/* A growing string for the small tag files. */
typedef struct Text {
        char *s;
        size_t n, cap;
} Text;

static int _printf_(2, 3) text_add(Text *t, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int need = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (need < 0)
                return -EINVAL;
        if (t->n + (size_t)need + 1 > t->cap) {
                size_t cap = MAX(t->cap * 2, t->n + (size_t)need + 1);
                char *s = realloc(t->s, cap);
                if (!s)
                        return -ENOMEM;
                t->s = s;
                t->cap = cap;
        }
        va_start(ap, fmt);
        vsnprintf(t->s + t->n, t->cap - t->n, fmt, ap);
        va_end(ap);
        t->n += (size_t)need;
        return 0;
}

int evd_bag_finish(EvdBag *bag, EvdError *err)
{
        if (bag->finished)
                return evd_error_set(err, -EBUSY, "bag: finished twice");
        int r;
        if (fflush(bag->manifest) != 0 || fsync(fileno(bag->manifest)) < 0)
                return evd_error_set_errno(err, negative_errno(), "bag: cannot write manifest-sha256.txt");
        if (fflush(bag->index) != 0)
                return evd_error_set_errno(err, negative_errno(), "bag: cannot write the file index");

        /* The extra tag files written so far, before the standard ones are noted in the index. */
        _cleanup_fclose_ FILE *tagmanifest = fopenat_write(bag->dir_fd, "tagmanifest-sha256.txt");
        if (!tagmanifest)
                return evd_error_set_errno(err, negative_errno(),
                                           "bag: cannot create tagmanifest-sha256.txt");
        rewind(bag->index);
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;
        while (getline(&line, &cap, bag->index) > 0) {
                uint64_t size;
                int listed;
                char hex[EVD_DIGEST_SIZE * 2 + 1], path[EVD_BAG_PATH_MAX + 8];
                if (sscanf(line, "%" SCNu64 " %d %64s %1031[^\n]", &size, &listed, hex, path) != 4)
                        return evd_error_set(err, -EIO, "bag: the file index is damaged");
                if (strncmp(path, "data/", 5) != 0 && fprintf(tagmanifest, "%s  %s\n", hex, path) < 0)
                        return evd_error_set_errno(err, -EIO, "bag: cannot write tagmanifest-sha256.txt");
        }
        if (fseek(bag->index, 0, SEEK_END) < 0)
                return evd_error_set_errno(err, negative_errno(), "bag: cannot seek the file index");

        /* manifest-sha256.txt itself, now complete. */
        _cleanup_close_ int mfd = openat(bag->dir_fd, "manifest-sha256.txt", O_RDONLY | O_CLOEXEC);
        if (mfd < 0)
                return evd_error_set_errno(err, negative_errno(), "bag: cannot reopen manifest-sha256.txt");
        uint8_t mdigest[EVD_DIGEST_SIZE];
        uint64_t msize = 0;
        r = evd_hash_fd(EVD_HASH_SHA256, mfd, mdigest, &msize);
        if (r < 0)
                return evd_error_set_errno(err, r, "bag: cannot hash manifest-sha256.txt");
        char hex[EVD_DIGEST_SIZE * 2 + 1];
        if (fprintf(tagmanifest, "%s  manifest-sha256.txt\n", evd_hex(mdigest, EVD_DIGEST_SIZE, hex)) < 0)
                return evd_error_set_errno(err, -EIO, "bag: cannot write tagmanifest-sha256.txt");
        r = bag_note(bag, "manifest-sha256.txt", msize, false, mdigest, false, err);
        if (r < 0)
                return r;

        static const char bagit[] = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n";
        r = write_tag(bag, "bagit.txt", bagit, strlen(bagit), tagmanifest, NULL, err);
        if (r < 0)
                return r;

        Text info = {};
        for (size_t i = 0; i < bag->n_info && r >= 0; i++)
                r = text_add(&info, "%s: %s\n", bag->info[i].label, bag->info[i].value);
        if (r >= 0 && !bag->has_date) {
                time_t now = time(NULL);
                struct tm tm;
                char day[16];
                strftime(day, sizeof(day), "%Y-%m-%d", gmtime_r(&now, &tm));
                r = text_add(&info, "Bagging-Date: %s\n", day);
        }
        if (r >= 0)
                r = text_add(&info, "Payload-Oxum: %" PRIu64 ".%" PRIu64 "\n", bag->payload_bytes,
                             bag->payload_files);
        if (r < 0) {
                free(info.s);
                return evd_error_set(err, r, "bag: out of memory");
        }
        r = write_tag(bag, "bag-info.txt", info.s, info.n, tagmanifest, NULL, err);
        free(info.s);
        if (r < 0)
                return r;

        if (fflush(tagmanifest) != 0 || fsync(fileno(tagmanifest)) < 0)
                return evd_error_set_errno(err, negative_errno(),
                                           "bag: cannot write tagmanifest-sha256.txt");
        r = fclose(steal_ptr(&tagmanifest));
        if (r != 0)
                return evd_error_set_errno(err, -EIO, "bag: cannot close tagmanifest-sha256.txt");
        /* The tag manifest itself is in no manifest, but a caller listing the bag's files needs it too. */
        _cleanup_close_ int tfd = openat(bag->dir_fd, "tagmanifest-sha256.txt", O_RDONLY | O_CLOEXEC);
        uint8_t tdigest[EVD_DIGEST_SIZE];
        uint64_t tsize = 0;
        if (tfd < 0 || evd_hash_fd(EVD_HASH_SHA256, tfd, tdigest, &tsize) < 0)
                return evd_error_set_errno(err, -EIO, "bag: cannot hash tagmanifest-sha256.txt");
        r = bag_note(bag, "tagmanifest-sha256.txt", tsize, false, tdigest, false, err);
        if (r < 0)
                return r;
        if (fsync(bag->data_fd) < 0 || fsync(bag->dir_fd) < 0)
                return evd_error_set_errno(err, negative_errno(), "bag: cannot sync the bag directory");
        if (fflush(bag->index) != 0)
                return evd_error_set_errno(err, negative_errno(), "bag: cannot write the file index");
        bag->finished = true;
        return 0;
}

int evd_bag_walk(EvdBag *bag, EvdBagFileFn fn, void *userdata, EvdError *err)
{
        if (!bag->finished)
                return evd_error_set(err, -EBUSY, "bag: walked before it was finished");
        rewind(bag->index);
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;
        while (getline(&line, &cap, bag->index) > 0) {
                uint64_t size;
                int listed;
                char hex[EVD_DIGEST_SIZE * 2 + 1], path[EVD_BAG_PATH_MAX + 8];
                uint8_t digest[EVD_DIGEST_SIZE];
                if (sscanf(line, "%" SCNu64 " %d %64s %1031[^\n]", &size, &listed, hex, path) != 4 ||
                    evd_unhex(hex, digest, EVD_DIGEST_SIZE) < 0)
                        return evd_error_set(err, -EIO, "bag: the file index is damaged");
                int r = fn(path, size, digest, listed != 0, userdata);
                if (r < 0)
                        return r;
        }
        if (ferror(bag->index))
                return evd_error_set_errno(err, -EIO, "bag: cannot read the file index");
        return 0;
}
