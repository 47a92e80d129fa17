/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-resign: turns a recorder volume into the same volume of another signature suite.
 *
 *   bench-resign --volume DIR --suite SUITE --pubkey OUT.pem
 *
 * Encoding a 10-minute 1080p segment takes minutes; signing a manifest takes milliseconds. bench/run
 * therefore makes each large volume once (ed25519-sha256), hard-links its media into a new directory
 * (cp -al) and lets this program rewrite EVIDOCK/CHAIN.LOG and EVIDOCK/DEVICE.TXT there: every record
 * is re-signed with a new key of SUITE, segment hashes are recomputed with the suite's hash (SM3 for
 * sm2-sm3) and the records re-linked. The two EVIDOCK files are replaced (rename), never written in
 * place, so the source volume's hard-linked copies stay as they were. Writes the new public key to
 * OUT.pem for `evidockctl device enroll`. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chain.h"
#include "hash.h"
#include "manifest.h"
#include "signature.h"

#define READ_MAX EVD_MANIFEST_MAX_BYTES

static int read_file_at(int dir_fd, const char *path, char **ret_buf, size_t *ret_len)
{
        _cleanup_close_ int fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        _cleanup_free_ char *buf = malloc(READ_MAX + 1);
        if (!buf)
                return -ENOMEM;
        size_t len = 0;
        for (;;) {
                ssize_t n = read(fd, buf + len, READ_MAX - len);
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len == READ_MAX)
                        return -EFBIG;
        }
        buf[len] = 0;
        *ret_buf = steal_ptr(&buf);
        *ret_len = len;
        return 0;
}

/* Replaces path (a new inode: the old one may be hard-linked from the source volume). */
static int replace_file_at(int dir_fd, const char *path, const char *data, size_t len)
{
        char tmp[256];
        snprintf(tmp, sizeof(tmp), "%s.resign-tmp", path);
        _cleanup_close_ int fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        while (len > 0) {
                ssize_t n = write(fd, data, len);
                if (n < 0)
                        return -errno;
                data += n;
                len -= (size_t)n;
        }
        if (renameat(dir_fd, tmp, dir_fd, path) < 0)
                return -errno;
        return 0;
}

static int replace_string(char **field, const char *value)
{
        char *s = strdup(value);
        if (!s)
                return -ENOMEM;
        free(*field);
        *field = s;
        return 0;
}

/* DEVICE.TXT with its suite= and key_id= lines replaced; every other line kept as it was. */
static int device_txt_rewrite(const char *text, const char *suite, const char *key_id, char **ret)
{
        size_t cap = strlen(text) + 256;
        _cleanup_free_ char *out = malloc(cap);
        if (!out)
                return -ENOMEM;
        size_t pos = 0;
        for (const char *l = text; *l;) {
                const char *nl = strchr(l, '\n');
                size_t n = nl ? (size_t)(nl - l) + 1 : strlen(l);
                int w;
                if (strncmp(l, "suite=", 6) == 0)
                        w = snprintf(out + pos, cap - pos, "suite=%s\n", suite);
                else if (strncmp(l, "key_id=", 7) == 0)
                        w = snprintf(out + pos, cap - pos, "key_id=%s\n", key_id);
                else
                        w = snprintf(out + pos, cap - pos, "%.*s", (int)n, l);
                if (w < 0 || (size_t)w >= cap - pos)
                        return -E2BIG;
                pos += (size_t)w;
                l += n;
        }
        *ret = steal_ptr(&out);
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
            {"volume", required_argument, NULL, 'v'},
            {"suite", required_argument, NULL, 's'},
            {"pubkey", required_argument, NULL, 'p'},
            {},
        };
        const char *volume = NULL, *suite_name = NULL, *pub_path = NULL;
        int c;
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                switch (c) {
                case 'v':
                        volume = optarg;
                        break;
                case 's':
                        suite_name = optarg;
                        break;
                case 'p':
                        pub_path = optarg;
                        break;
                default:
                        return 2;
                }
        }
        int s = suite_name ? evd_suite_from_string(suite_name) : -EINVAL;
        if (!volume || !pub_path || s < 0) {
                fprintf(stderr,
                        "usage: bench-resign --volume DIR --suite ed25519-sha256|p256-sha256|sm2-sm3 "
                        "--pubkey OUT.pem\n");
                return 2;
        }
        EvdSuite suite = (EvdSuite)s;

        EvdError err = {};
        _cleanup_close_ int vol_fd = open(volume, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_free_ char *mbuf = NULL, *dev_txt = NULL, *new_dev_txt = NULL, *pem = NULL, *all = NULL;
        size_t mlen = 0, dlen = 0;
        int r = vol_fd < 0 ? -errno : read_file_at(vol_fd, EVD_CHAIN_MANIFEST_PATH, &mbuf, &mlen);
        if (r >= 0)
                r = read_file_at(vol_fd, EVD_CHAIN_DEVICE_PATH, &dev_txt, &dlen);
        if (r < 0) {
                fprintf(stderr, "bench-resign: reading %s: %s\n", volume, strerror(-r));
                return 1;
        }
        _cleanup_(evd_manifest_freep) EvdManifest *m = NULL;
        r = evd_manifest_parse(mbuf, mlen, &m);
        if (r < 0 || m->n_errors > 0) {
                fprintf(stderr, "bench-resign: %s: the manifest does not parse cleanly\n", volume);
                return 1;
        }

        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        char key_id[EVD_KEY_ID_STRLEN + 1];
        _cleanup_free_ uint8_t *der = NULL;
        size_t der_len = 0;
        r = evd_key_generate(suite, &key, &err);
        if (r >= 0)
                r = evd_key_id(key, key_id);
        if (r >= 0)
                r = evd_key_public_to_der(key, &der, &der_len, &err);
        if (r >= 0)
                r = evd_key_public_to_pem(key, &pem, &err);
        if (r < 0) {
                fprintf(stderr, "bench-resign: %s key: %s\n", suite_name, evd_error_message(&err, r));
                return 1;
        }

        size_t cap = 0, pos = 0;
        uint8_t prev[EVD_HASH_SIZE] = {};
        for (size_t i = 0; i < m->n_records; i++) {
                EvdRecord rec = {};
                r = evd_record_copy(&rec, &m->records[i]);
                if (r < 0)
                        break;
                rec.suite = suite;
                r = replace_string(&rec.key_id, key_id);
                if (r >= 0 && rec.type == EVD_RECORD_GENESIS) {
                        uint8_t *k = malloc(der_len);
                        if (!k)
                                r = -ENOMEM;
                        else {
                                memcpy(k, der, der_len);
                                free(rec.public_key);
                                rec.public_key = k;
                                rec.public_key_len = der_len;
                        }
                }
                if (r >= 0 && rec.type == EVD_RECORD_SEGMENT) {
                        _cleanup_close_ int fd = openat(vol_fd, rec.file, O_RDONLY | O_CLOEXEC);
                        r = fd < 0 ? -errno
                                   : evd_hash_fd(evd_suite_hash(suite), fd, rec.file_hash, &rec.size);
                        if (r < 0)
                                fprintf(stderr, "bench-resign: %s/%s: %s\n", volume, rec.file, strerror(-r));
                }
                /* a manifest that starts past GEN (anchored) keeps its first prev as it was */
                if (r >= 0 && i > 0)
                        memcpy(rec.prev_hash, prev, EVD_HASH_SIZE);
                if (r >= 0)
                        r = evd_record_sign(&rec, key, &err);
                _cleanup_free_ char *line = NULL;
                if (r >= 0)
                        r = evd_record_to_line(&rec, &line, &err);
                if (r >= 0) {
                        memcpy(prev, rec.record_hash, EVD_HASH_SIZE);
                        size_t n = strlen(line);
                        if (pos + n + 1 > cap) {
                                size_t ncap = MAX(2 * cap, pos + n + 1 + 4096);
                                char *a = realloc(all, ncap);
                                if (!a)
                                        r = -ENOMEM;
                                else {
                                        all = a;
                                        cap = ncap;
                                }
                        }
                        if (r >= 0) {
                                memcpy(all + pos, line, n);
                                pos += n;
                        }
                }
                evd_record_clear(&rec);
                if (r < 0)
                        break;
        }
        if (r >= 0)
                r = device_txt_rewrite(dev_txt, evd_suite_to_string(suite), key_id, &new_dev_txt);
        if (r >= 0)
                r = replace_file_at(vol_fd, EVD_CHAIN_MANIFEST_PATH, all ? all : "", pos);
        if (r >= 0)
                r = replace_file_at(vol_fd, EVD_CHAIN_DEVICE_PATH, new_dev_txt, strlen(new_dev_txt));
        if (r >= 0)
                r = replace_file_at(AT_FDCWD, pub_path, pem, strlen(pem));
        if (r < 0) {
                fprintf(stderr, "bench-resign: %s: %s\n", volume, evd_error_message(&err, r));
                return 1;
        }
        return 0;
}
