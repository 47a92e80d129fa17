/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "access.h"
#include "export.h"
#include "hash.h"
#include "macro.h"
#include "path.h"

#define EXPORT_BUF (1024 * 1024)

static void x509_stack_freep(STACK_OF(X509) * *s)
{
        if (*s)
                sk_X509_pop_free(*s, X509_free);
}

/* Opens rel below dirfd without leaving it and without following any symlink. */
static int open_beneath(int dirfd, const char *rel, int flags)
{
        struct open_how how = {
            .flags = (uint64_t)(flags | O_CLOEXEC),
            .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
        return fd < 0 ? -errno : (int)fd;
}

static int write_all(int fd, const void *buf, size_t n)
{
        const char *p = buf;
        while (n > 0) {
                ssize_t w = write(fd, p, n);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += w;
                n -= (size_t)w;
        }
        return 0;
}

/* One export in progress. */
typedef struct Export {
        const EvdExportOptions *o;
        int dir_fd; /* DEST */
        char *path; /* DEST, absolute */
        FILE *manifest;
        char *manifest_buf;
        size_t manifest_len;
        STACK_OF(X509) * recipients; /* NULL: no encryption */
} Export;

/* Writes a whole small file DEST/name (new, 0640, synced) and adds it to the manifest. */
static int write_small(Export *x, const char *name, const char *data, size_t n, EvdError *err)
{
        _cleanup_close_ int fd =
            openat(x->dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
        if (fd < 0)
                return evd_error_set_errno(err, -errno, "export %s: creating %s", x->path, name);
        int r = write_all(fd, data, n);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r < 0)
                return evd_error_set_errno(err, r, "export %s: writing %s", x->path, name);
        uint8_t sha[EVD_DIGEST_SIZE];
        char hex[2 * EVD_DIGEST_SIZE + 1];
        evd_hash_buffer(EVD_HASH_SHA256, data, n, sha);
        fprintf(x->manifest, "%s  %s\n", evd_hex(sha, sizeof(sha), hex), name);
        return 0;
}

static int load_recipient(Export *x, EvdError *err)
{
        if (!x->o->encrypt_to)
                return 0;
        _cleanup_(fclosep) FILE *f = fopen(x->o->encrypt_to, "re");
        if (!f)
                return evd_error_set_errno(err, -errno, "export: reading certificate %s", x->o->encrypt_to);
        X509 *cert = PEM_read_X509(f, NULL, NULL, NULL);
        if (!cert)
                return evd_error_set(err, -EINVAL, "export: %s holds no PEM X.509 certificate",
                                     x->o->encrypt_to);
        EVP_PKEY *pk = X509_get0_pubkey(cert);
        if (!pk || EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA) {
                X509_free(cert);
                return evd_error_set(err, -EINVAL,
                                     "export: the certificate %s must carry an RSA key (CMS key transport)",
                                     x->o->encrypt_to);
        }
        x->recipients = sk_X509_new_null();
        if (!x->recipients || !sk_X509_push(x->recipients, cert)) {
                X509_free(cert);
                return evd_error_set(err, -ENOMEM, "export: out of memory");
        }
        return 0;
}

/* The destination, as a path relative to the export root: absolute paths must lie below the root. */
static int dest_relative(const EvdExportOptions *o, const char **ret_rel, EvdError *err)
{
        const char *dest = o->dest;
        if (!dest || !*dest)
                return evd_error_set(err, -EINVAL, "export: no destination");
        if (dest[0] == '/') {
                size_t n = strlen(o->export_root);
                while (n > 1 && o->export_root[n - 1] == '/')
                        n--;
                if (strncmp(dest, o->export_root, n) != 0 || dest[n] != '/')
                        return evd_error_set(err, -EACCES, "export path %s is outside the export root %s",
                                             dest, o->export_root);
                dest += n + 1;
        }
        EvdError perr = {};
        if (evd_path_check(dest, &perr) < 0)
                return evd_error_set(err, -EACCES,
                                     "export path %s is not a plain path below the export root %s: %s",
                                     o->dest, o->export_root, perr.msg);
        *ret_rel = dest;
        return 0;
}

/* Creates DEST (its parent must exist below the root; symlinks refused) and opens it. */
static int make_dest(Export *x, const char *rel, EvdError *err)
{
        const EvdExportOptions *o = x->o;
        _cleanup_close_ int root = open(o->export_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                return evd_error_set_errno(err, -errno, "export: opening the export root %s",
                                           o->export_root);
        _cleanup_free_ char *parent = strdup(rel);
        if (!parent)
                return evd_error_set(err, -ENOMEM, "export: out of memory");
        char *slash = strrchr(parent, '/');
        const char *leaf = rel;
        _cleanup_close_ int pfd = -1;
        if (slash) {
                *slash = '\0';
                leaf = rel + (slash - parent) + 1;
                pfd = open_beneath(root, parent, O_PATH | O_DIRECTORY);
                if (pfd < 0)
                        return evd_error_set_errno(err, pfd == -EXDEV || pfd == -ELOOP ? -EACCES : pfd,
                                                   "export: %s/%s is not a directory below the export root "
                                                   "(symlinks are not followed)",
                                                   o->export_root, parent);
        }
        int base = pfd >= 0 ? pfd : root;
        if (mkdirat(base, leaf, 0750) < 0) {
                if (errno == EEXIST)
                        return evd_error_set(err, -EEXIST,
                                             "export: %s/%s exists already: an export never "
                                             "overwrites, choose a new folder",
                                             o->export_root, rel);
                return evd_error_set_errno(err, -errno, "export: creating %s/%s", o->export_root, rel);
        }
        x->dir_fd = openat(base, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (x->dir_fd < 0)
                return evd_error_set_errno(err, -errno, "export: opening %s/%s", o->export_root, rel);
        size_t n = strlen(o->export_root);
        while (n > 1 && o->export_root[n - 1] == '/')
                n--;
        if (asprintf(&x->path, "%.*s/%s", (int)n, o->export_root, rel) < 0) {
                x->path = NULL;
                return evd_error_set(err, -ENOMEM, "export: out of memory");
        }
        const char *const subdirs[] = {"recordings", "chain", "keys"};
        for (size_t i = 0; i < ELEMENTSOF(subdirs); i++)
                if (mkdirat(x->dir_fd, subdirs[i], 0750) < 0)
                        return evd_error_set_errno(err, -errno, "export %s: creating %s", x->path,
                                                   subdirs[i]);
        return 0;
}

/* Copies (or encrypts) one stored original into recordings/, hashing what is read: it must be what the
 * database recorded. */
static int export_recording(Export *x, int store_fd, const EvdAccessItem *it, char *ret_name,
                            size_t name_size, EvdError *err)
{
        _cleanup_close_ int src =
            open_beneath(store_fd, it->original_path, O_RDONLY | O_NOCTTY | O_NONBLOCK);
        if (src < 0)
                return evd_error_set_errno(err, src,
                                           "export: opening stored original of file %" PRId64 " (%s)",
                                           it->file_id, it->original_path);
        struct stat st;
        if (fstat(src, &st) < 0 || !S_ISREG(st.st_mode))
                return evd_error_set(err, -EBADF,
                                     "export: the stored original of file %" PRId64 " (%s) is not a "
                                     "regular file",
                                     it->file_id, it->original_path);

        const char *base = strrchr(it->original_path, '/');
        char comp[128];
        evd_path_store_component(base ? base + 1 : it->original_path, comp, sizeof(comp));
        char rel[256];
        snprintf(ret_name, name_size, "%" PRId64 "-%s%s", it->file_id, comp, x->recipients ? ".cms" : "");
        snprintf(rel, sizeof(rel), "recordings/%s", ret_name);
        _cleanup_close_ int dst =
            openat(x->dir_fd, rel, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
        if (dst < 0)
                return evd_error_set_errno(err, -errno, "export %s: creating %s", x->path, rel);

        /* in <- md (hashes what passes) ; out */
        BIO *md = BIO_new(BIO_f_md());
        BIO *in = BIO_new_fd(src, BIO_NOCLOSE);
        BIO *out = BIO_new_fd(dst, BIO_NOCLOSE);
        BIO *chain = md && in ? BIO_push(md, in) : NULL;
        int r = 0;
        if (!chain || !out || !BIO_set_md(md, EVP_sha256())) {
                if (!chain) {
                        BIO_free(md);
                        BIO_free(in);
                }
                BIO_free(out);
                return evd_error_set(err, -ENOMEM, "export: out of memory");
        }
        if (x->recipients) {
                CMS_ContentInfo *cms =
                    CMS_encrypt(x->recipients, chain, EVP_aes_256_cbc(), CMS_BINARY | CMS_STREAM);
                if (!cms || !i2d_CMS_bio_stream(out, cms, chain, CMS_BINARY | CMS_STREAM) ||
                    BIO_flush(out) != 1)
                        r = evd_error_set(err, -EIO, "export %s: encrypting file %" PRId64 " failed: %s",
                                          x->path, it->file_id,
                                          strna(ERR_reason_error_string(ERR_get_error())));
                CMS_ContentInfo_free(cms);
        } else {
                _cleanup_free_ char *buf = malloc(EXPORT_BUF);
                if (!buf)
                        r = evd_error_set(err, -ENOMEM, "export: out of memory");
                while (r >= 0) {
                        int n = BIO_read(chain, buf, EXPORT_BUF);
                        if (n <= 0) {
                                if (n < 0 || BIO_should_retry(chain))
                                        r = evd_error_set(err, -EIO,
                                                          "export: reading the stored original of "
                                                          "file %" PRId64 " failed",
                                                          it->file_id);
                                break;
                        }
                        r = write_all(dst, buf, (size_t)n);
                        if (r < 0)
                                r = evd_error_set_errno(err, r, "export %s: writing %s", x->path, rel);
                }
        }
        unsigned char digest[EVP_MAX_MD_SIZE];
        if (r >= 0 && BIO_gets(md, (char *)digest, sizeof(digest)) != EVD_DIGEST_SIZE)
                r = evd_error_set(err, -EIO, "export: hashing file %" PRId64 " failed", it->file_id);
        if (r >= 0 && memcmp(digest, it->sha256, EVD_DIGEST_SIZE) != 0) {
                char want[65], got[65];
                r = evd_error_set(err, -EBADMSG,
                                  "export: the stored original of file %" PRId64
                                  " (%s) no longer has its recorded "
                                  "SHA-256 (%s, now %s): not exported",
                                  it->file_id, it->original_path, evd_hex(it->sha256, EVD_DIGEST_SIZE, want),
                                  evd_hex(digest, EVD_DIGEST_SIZE, got));
        }
        if (r >= 0 && fsync(dst) < 0)
                r = evd_error_set_errno(err, -errno, "export %s: syncing %s", x->path, rel);
        BIO_free_all(chain);
        BIO_free(out);
        if (r < 0) {
                (void)unlinkat(x->dir_fd, rel, 0);
                return r;
        }
        /* The manifest: the file as it is here (for an encrypted one, the .cms bytes). */
        uint8_t sha[EVD_DIGEST_SIZE];
        if (x->recipients) {
                _cleanup_close_ int rfd = openat(x->dir_fd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                if (rfd < 0 || evd_hash_fd(EVD_HASH_SHA256, rfd, sha, NULL) < 0)
                        return evd_error_set(err, -EIO, "export %s: hashing %s", x->path, rel);
        } else {
                memcpy(sha, it->sha256, sizeof(sha));
        }
        char hex[65];
        fprintf(x->manifest, "%s  %s\n", evd_hex(sha, sizeof(sha), hex), rel);
        return 0;
}

/* Text for a TSV cell: tabs, newlines and other control bytes escaped. */
static void tsv_cell(FILE *f, const char *s)
{
        for (; s && *s; s++) {
                unsigned char c = (unsigned char)*s;
                if (c == '\\')
                        fputs("\\\\", f);
                else if (c == '\t')
                        fputs("\\t", f);
                else if (c == '\n')
                        fputs("\\n", f);
                else if (c < 0x20 || c == 0x7f)
                        fprintf(f, "\\x%02x", c);
                else
                        fputc(c, f);
        }
}

static void iso_time(int64_t us, char *buf, size_t size)
{
        time_t t = (time_t)(us / 1000000);
        struct tm tm;
        gmtime_r(&t, &tm);
        snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%06" PRId64 "Z", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, us % 1000000);
}

static int write_memstream(Export *x, const char *name, FILE *f, char **buf, size_t *len, EvdError *err)
{
        if (fflush(f) != 0)
                return evd_error_set(err, -ENOMEM, "export: out of memory");
        return write_small(x, name, *buf, *len, err);
}

static int export_texts(Export *x, EvdDb *db, const EvdAccessItem *items, size_t n, char (*names)[160],
                        const EvdAccessRequestRow *req, EvdExportResult *res, EvdError *err)
{
        int r;
        /* recordings.tsv */
        {
                char *buf = NULL;
                size_t len = 0;
                _cleanup_(fclosep) FILE *f = open_memstream(&buf, &len);
                if (!f)
                        return evd_error_set(err, -ENOMEM, "export: out of memory");
                fputs("file_id\tdevice\tseq\tcase\tlevel\tverdict\tsize\tsha256\trecorded_start\tname\n", f);
                for (size_t i = 0; i < n; i++) {
                        const EvdAccessItem *it = &items[i];
                        char hex[65], t[40] = "";
                        if (it->recorded_start_us)
                                iso_time(it->recorded_start_us, t, sizeof(t));
                        fprintf(f, "%" PRId64 "\t%s\t", it->file_id, it->device_id);
                        if (it->has_seq)
                                fprintf(f, "%" PRIu64, it->seq);
                        fputc('\t', f);
                        tsv_cell(f, it->case_number);
                        fprintf(f, "\t%s\t%s\t%" PRIu64 "\t%s\t%s\trecordings/%s\n",
                                evd_confidentiality_to_string(it->level), it->verdict, it->size,
                                evd_hex(it->sha256, EVD_DIGEST_SIZE, hex), t, names[i]);
                }
                r = write_memstream(x, "recordings.tsv", f, &buf, &len, err);
                fclose(steal_ptr(&f));
                free(buf);
                if (r < 0)
                        return r;
        }
        /* chain/records.txt and keys/ */
        {
                char *buf = NULL;
                size_t len = 0;
                _cleanup_(fclosep) FILE *f = open_memstream(&buf, &len);
                if (!f)
                        return evd_error_set(err, -ENOMEM, "export: out of memory");
                fputs("# The recorders' chain records of the exported files (docs/chain-format.md): one "
                      "comment\n"
                      "# line naming the file, then the record as the recorder signed it.\n",
                      f);
                for (size_t i = 0; i < n; i++) {
                        const EvdAccessItem *it = &items[i];
                        if (!it->chain_record)
                                continue;
                        char hex[65];
                        fprintf(f, "# file %" PRId64 " device %s seq %" PRIu64 " record_hash %s\n",
                                it->file_id, it->device_id, it->seq,
                                it->has_record_hash ? evd_hex(it->record_hash, EVD_DIGEST_SIZE, hex) : "-");
                        tsv_cell(f, it->chain_record);
                        fputc('\n', f);
                }
                r = write_memstream(x, "chain/records.txt", f, &buf, &len, err);
                fclose(steal_ptr(&f));
                free(buf);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < n; i++) {
                        const EvdAccessItem *it = &items[i];
                        if (!it->public_key_pem || !it->key_id)
                                continue;
                        char name[128], kid[64];
                        evd_path_store_component(it->key_id, kid, sizeof(kid));
                        snprintf(name, sizeof(name), "keys/%s-%s.pem", it->device_id, kid);
                        if (faccessat(x->dir_fd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                                continue; /* one per key */
                        r = write_small(x, name, it->public_key_pem, strlen(it->public_key_pem), err);
                        if (r < 0)
                                return r;
                }
        }
        /* custody.tsv: the events of these files, the export's own included, and the head */
        {
                EvdAccessCustodyRow *rows = NULL;
                size_t nrows = 0;
                r = evd_access_custody(db, x->o->request_id, &rows, &nrows, err);
                if (r < 0)
                        return r;
                r = evd_access_custody_head(db, &res->custody_head_id, res->custody_head_hash, err);
                if (r < 0) {
                        evd_access_custody_free(rows, nrows);
                        return r;
                }
                char *buf = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&buf, &len);
                if (!f) {
                        evd_access_custody_free(rows, nrows);
                        return evd_error_set(err, -ENOMEM, "export: out of memory");
                }
                fprintf(f, "# custody log when exported: head %" PRId64 " %s\n", res->custody_head_id,
                        res->custody_head_hash);
                fputs("id\tat\tkind\tdevice\tdocking\tfile\tactor\tprev_hash\thash\tdetail\n", f);
                for (size_t i = 0; i < nrows; i++) {
                        const EvdAccessCustodyRow *c = &rows[i];
                        char t[40];
                        iso_time(c->time_us, t, sizeof(t));
                        fprintf(f, "%" PRId64 "\t%s\t%s\t%s\t%" PRId64 "\t%" PRId64 "\t", c->id, t, c->kind,
                                c->device_id ? c->device_id : "", c->docking_id, c->file_id);
                        tsv_cell(f, c->actor);
                        fprintf(f, "\t%s\t%s\t", c->prev_hash, c->hash);
                        tsv_cell(f, c->detail);
                        fputc('\n', f);
                }
                evd_access_custody_free(rows, nrows);
                r = write_memstream(x, "custody.tsv", f, &buf, &len, err);
                fclose(f);
                free(buf);
                if (r < 0)
                        return r;
        }
        /* README.txt */
        {
                char *buf = NULL;
                size_t len = 0;
                _cleanup_(fclosep) FILE *f = open_memstream(&buf, &len);
                if (!f)
                        return evd_error_set(err, -ENOMEM, "export: out of memory");
                char t[40];
                iso_time(req->decided_us, t, sizeof(t));
                fprintf(f, "evidock export of access request %" PRId64 "\n\n", req->id);
                fputs("Requested by:  ", f);
                tsv_cell(f, req->requester);
                fputs("\nApproved by:   ", f);
                tsv_cell(f, req->decided_by);
                fprintf(f, " at %s\nPurpose:       ", t);
                tsv_cell(f, req->purpose);
                fprintf(f, "\nRecordings:    %zu%s\n", n, x->recipients ? " (encrypted, see below)" : "");
                fprintf(f, "Custody log:   head %" PRId64 " %s (when exported)\n\n", res->custody_head_id,
                        res->custody_head_hash);
                fputs("How to check this export\n"
                      "------------------------\n"
                      "1. Every file is listed in manifest-sha256.txt:\n"
                      "       sha256sum -c manifest-sha256.txt\n"
                      "2. recordings.tsv gives, per recording, the SHA-256 the evidence database recorded "
                      "when it\n"
                      "   was docked; for a plain copy it is the line in the manifest. ",
                      f);
                if (x->recipients)
                        fputs(
                            "Encrypted recordings (.cms) are\n"
                            "   decrypted with the recipient's private key and then compared:\n"
                            "       openssl cms -decrypt -binary -inform DER -in recordings/ID-NAME.cms \\\n"
                            "           -recip recipient.crt -inkey recipient.key -out NAME\n"
                            "       sha256sum NAME\n",
                            f);
                else
                        fputs("\n", f);
                fputs(
                    "3. chain/records.txt holds the recorder's signed chain record of each recording and\n"
                    "   keys/ the recorder's public key as enrolled; a record names the recording's SHA-256 "
                    "and\n"
                    "   its signature verifies with that key (evidock docs/chain-format.md describes the "
                    "format;\n"
                    "   `evidockctl verify` on a dock checks it).\n"
                    "4. custody.tsv lists the chain-of-custody events of these recordings and their "
                    "dockings, this\n"
                    "   export's own events included (kind 'exported': who, approved by whom, why, where "
                    "to).\n"
                    "   Each event's hash is SHA-256 over the previous event's hash and the event's fields\n"
                    "   (docs/database.md, \"Custody hash\"); the head line lets the evidence office "
                    "confirm later\n"
                    "   that its log still holds this history (`evidockctl audit verify --checkpoint`).\n\n"
                    "This export is a copy under an approval: keeping, copying on or passing it beyond its\n"
                    "purpose is not allowed.\n",
                    f);
                r = write_memstream(x, "README.txt", f, &buf, &len, err);
                fclose(steal_ptr(&f));
                free(buf);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int refuse(EvdDb *db, int64_t request_id, int r, EvdError *err)
{
        /* the refusal is in err; log it (a failure to log does not hide the refusal) */
        (void)evd_db_rollback(db);
        (void)evd_access_log_refusal(db, request_id, err ? err->msg : "export refused", NULL);
        return r;
}

int evd_export(EvdDb *db, const EvdExportOptions *o, EvdExportResult *ret, EvdError *err)
{
        if (!o || !o->store_root || !o->export_root || !ret)
                return evd_error_set(err, -EINVAL, "export: store, export root and destination required");
        *ret = (EvdExportResult){};
        const char *rel = NULL;
        int r = dest_relative(o, &rel, err);
        if (r < 0)
                return refuse(db, o->request_id, r, err);

        Export x = {.o = o, .dir_fd = -1};
        x.manifest = open_memstream(&x.manifest_buf, &x.manifest_len);
        EvdAccessItem *items = NULL;
        size_t n = 0;
        EvdAccessRequestRow *req = NULL;
        char(*names)[160] = NULL;
        _cleanup_close_ int store_fd = -1;
        bool created = false, opened = false;
        if (!x.manifest) {
                r = evd_error_set(err, -ENOMEM, "export: out of memory");
                goto out;
        }
        r = load_recipient(&x, err);
        if (r < 0)
                goto out;
        store_fd = open(o->store_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (store_fd < 0) {
                r = evd_error_set_errno(err, -errno, "export: opening the store %s", o->store_root);
                goto out;
        }
        r = make_dest(&x, rel, err);
        if (r < 0) {
                if (r == -EACCES || r == -EEXIST)
                        (void)refuse(db, o->request_id, r, err);
                goto out;
        }
        created = true;

        /* The approval is checked and the export logged (one event per file) before anything is copied; a
         * confidential item without encryption rolls that back and is refused. */
        char note[600];
        snprintf(note, sizeof(note), "to %s%s", x.path, x.recipients ? " (encrypted)" : "");
        r = evd_db_begin(db, err);
        if (r >= 0)
                r = evd_access_open(db, o->request_id, EVD_ACCESS_COPY, note, &items, &n, err);
        for (size_t i = 0; r >= 0 && i < n; i++)
                if (items[i].level >= EVD_CONF_CONFIDENTIAL && !x.recipients)
                        r = evd_error_set(
                            err, -EACCES,
                            "export of request %" PRId64 ": file %" PRId64 " is %s and leaves the "
                            "dock only encrypted (give a recipient certificate)",
                            o->request_id, items[i].file_id, evd_confidentiality_to_string(items[i].level));
        if (r >= 0)
                r = evd_db_commit(db, err);
        if (r < 0) {
                if (r == -EACCES || r == -ENOENT || r == -EPERM)
                        (void)refuse(db, o->request_id, r, err);
                else
                        (void)evd_db_rollback(db);
                goto out;
        }
        opened = true;

        r = evd_access_get(db, o->request_id, &req, err);
        if (r < 0)
                goto out;
        names = calloc(n, sizeof(*names));
        if (!names) {
                r = evd_error_set(err, -ENOMEM, "export: out of memory");
                goto out;
        }
        for (size_t i = 0; i < n; i++) {
                r = export_recording(&x, store_fd, &items[i], names[i], sizeof(names[i]), err);
                if (r < 0)
                        goto out;
                ret->bytes += items[i].size;
        }
        r = export_texts(&x, db, items, n, names, req, ret, err);
        if (r < 0)
                goto out;
        fflush(x.manifest);
        {
                _cleanup_close_ int fd = openat(x.dir_fd, "manifest-sha256.txt",
                                                O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
                if (fd < 0 || write_all(fd, x.manifest_buf, x.manifest_len) < 0 || fsync(fd) < 0) {
                        r = evd_error_set_errno(err, -errno, "export %s: writing manifest-sha256.txt",
                                                x.path);
                        goto out;
                }
        }
        const char *const dirs[] = {"recordings", "chain", "keys", "."};
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                _cleanup_close_ int d = openat(x.dir_fd, dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (d >= 0)
                        (void)fsync(d);
        }
        ret->n_files = n;
        ret->encrypted = x.recipients != NULL;
        ret->path = steal_ptr(&x.path);
        r = 0;
out:
        if (r < 0 && created) {
                if (opened) {
                        /* The log says it was handed out: say that it failed, and leave a note in the
                         * folder. */
                        char why[700];
                        snprintf(why, sizeof(why), "export to %s failed: %s", strna(x.path),
                                 err ? err->msg : "?");
                        (void)evd_access_log_refusal(db, o->request_id, why, NULL);
                        int fd = openat(x.dir_fd, "EXPORT-INCOMPLETE.txt",
                                        O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0640);
                        if (fd >= 0) {
                                (void)write_all(fd, why, strlen(why));
                                (void)write_all(fd, "\n", 1);
                                close(fd);
                        }
                } else if (x.dir_fd >= 0) {
                        /* nothing was handed out: remove the empty folder again */
                        const char *const subdirs[] = {"recordings", "chain", "keys"};
                        for (size_t i = 0; i < ELEMENTSOF(subdirs); i++)
                                (void)unlinkat(x.dir_fd, subdirs[i], AT_REMOVEDIR);
                        _cleanup_close_ int root = open(o->export_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
                        if (root >= 0)
                                (void)unlinkat(root, rel, AT_REMOVEDIR);
                }
        }
        if (x.manifest)
                fclose(x.manifest);
        free(x.manifest_buf);
        if (x.dir_fd >= 0)
                close(x.dir_fd);
        free(x.path);
        x509_stack_freep(&x.recipients);
        evd_access_items_free(items, n);
        evd_access_rows_free(req, req ? 1 : 0);
        free(names);
        return r;
}
