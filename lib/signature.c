/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "hash.h"
#include "signature.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free);

/* The last OpenSSL error as text, for EvdError messages; clears the queue so the next call starts clean. */
static const char *openssl_reason(char buf[static 256])
{
        unsigned long e = ERR_peek_last_error();
        if (e == 0)
                snprintf(buf, 256, "unknown OpenSSL error");
        else
                ERR_error_string_n(e, buf, 256);
        ERR_clear_error();
        return buf;
}

int evd_key_suite(EVP_PKEY *key, EvdSuite *ret_suite)
{
        if (!key)
                return -EINVAL;
        if (EVP_PKEY_is_a(key, "ED25519")) {
                *ret_suite = EVD_SUITE_ED25519_SHA256;
                return 0;
        }
        if (EVP_PKEY_is_a(key, "SM2")) {
                *ret_suite = EVD_SUITE_SM2_SM3;
                return 0;
        }
        if (EVP_PKEY_is_a(key, "EC")) {
                char group[64] = "";
                size_t len = 0;
                if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                                   &len) != 1) {
                        ERR_clear_error();
                        return -EKEYREJECTED;
                }
                if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0) {
                        *ret_suite = EVD_SUITE_P256_SHA256;
                        return 0;
                }
                /* OpenSSL 3.0 may present an SM2-curve key as "EC": it is still SM2. */
                if (strcmp(group, "SM2") == 0) {
                        *ret_suite = EVD_SUITE_SM2_SM3;
                        return 0;
                }
        }
        return -EKEYREJECTED;
}

int evd_key_generate(EvdSuite suite, EVP_PKEY **ret_key, EvdError *err)
{
        char reason[256];
        EVP_PKEY *key = NULL;

        switch (suite) {
        case EVD_SUITE_ED25519_SHA256:
                key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
                break;
        case EVD_SUITE_P256_SHA256:
                key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
                break;
        case EVD_SUITE_SM2_SM3:
                key = EVP_PKEY_Q_keygen(NULL, NULL, "SM2");
                break;
        default:
                return evd_error_set(err, -EINVAL, "unknown signature suite %d", (int)suite);
        }
        if (!key)
                return evd_error_set(err, -EIO, "generating a %s key: %s", evd_suite_to_string(suite),
                                     openssl_reason(reason));
        *ret_key = key;
        return 0;
}

/* Only keys of our three suites are accepted anywhere (a PEM with an RSA key is a configuration error). */
static int key_accept(EVP_PKEY **key, EVP_PKEY **ret_key, const char *what, EvdError *err)
{
        EvdSuite suite;
        if (evd_key_suite(*key, &suite) < 0)
                return evd_error_set(err, -EKEYREJECTED, "%s: key type %s is not a chain suite key", what,
                                     strna(EVP_PKEY_get0_type_name(*key)));
        *ret_key = steal_ptr(key);
        return 0;
}

int evd_key_private_from_pem(const void *pem, size_t len, EVP_PKEY **ret_key, EvdError *err)
{
        char reason[256];
        if (len > EVD_KEY_PEM_MAX || len > INT32_MAX)
                return evd_error_set(err, -EFBIG, "private key PEM larger than %u bytes", EVD_KEY_PEM_MAX);
        _cleanup_(BIO_freep) BIO *bio = BIO_new_mem_buf(pem, (int)len);
        if (!bio)
                return -ENOMEM;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        if (!key)
                return evd_error_set(err, -EBADMSG, "cannot read private key PEM: %s",
                                     openssl_reason(reason));
        return key_accept(&key, ret_key, "private key", err);
}

int evd_key_public_from_pem(const void *pem, size_t len, EVP_PKEY **ret_key, EvdError *err)
{
        char reason[256];
        if (len > EVD_KEY_PEM_MAX || len > INT32_MAX)
                return evd_error_set(err, -EFBIG, "public key PEM larger than %u bytes", EVD_KEY_PEM_MAX);
        _cleanup_(BIO_freep) BIO *bio = BIO_new_mem_buf(pem, (int)len);
        if (!bio)
                return -ENOMEM;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
        if (!key)
                return evd_error_set(err, -EBADMSG, "cannot read public key PEM: %s",
                                     openssl_reason(reason));
        return key_accept(&key, ret_key, "public key", err);
}

int evd_key_public_from_der(const void *der, size_t len, EVP_PKEY **ret_key, EvdError *err)
{
        char reason[256];
        if (len > EVD_KEY_PEM_MAX)
                return evd_error_set(err, -EFBIG, "public key DER larger than %u bytes", EVD_KEY_PEM_MAX);
        const unsigned char *p = der;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = d2i_PUBKEY(NULL, &p, (long)len);
        if (!key)
                return evd_error_set(err, -EBADMSG, "cannot read public key DER: %s",
                                     openssl_reason(reason));
        if (p != (const unsigned char *)der + len)
                return evd_error_set(err, -EBADMSG, "public key DER has %zu trailing bytes",
                                     (size_t)((const unsigned char *)der + len - p));
        return key_accept(&key, ret_key, "public key", err);
}

static int read_pem_file(const char *path, char **ret_buf, size_t *ret_len, EvdError *err)
{
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
                return evd_error_set_errno(err, negative_errno(), "cannot open %s", path);
        _cleanup_free_ char *buf = malloc(EVD_KEY_PEM_MAX + 1);
        if (!buf)
                return -ENOMEM;
        size_t n = fread(buf, 1, EVD_KEY_PEM_MAX + 1, f);
        if (ferror(f))
                return evd_error_set(err, -EIO, "cannot read %s", path);
        if (n > EVD_KEY_PEM_MAX)
                return evd_error_set(err, -EFBIG, "%s is larger than %u bytes", path, EVD_KEY_PEM_MAX);
        *ret_len = n;
        *ret_buf = steal_ptr(&buf);
        return 0;
}

int evd_key_load_private_pem(const char *path, EVP_PKEY **ret_key, EvdError *err)
{
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r = read_pem_file(path, &buf, &len, err);
        if (r < 0)
                return r;
        r = evd_key_private_from_pem(buf, len, ret_key, err);
        OPENSSL_cleanse(buf, len); /* private key material does not linger in freed heap */
        if (r < 0)
                return evd_error_prefix(err, "%s: ", path);
        return 0;
}

int evd_key_load_public_pem(const char *path, EVP_PKEY **ret_key, EvdError *err)
{
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r = read_pem_file(path, &buf, &len, err);
        if (r < 0)
                return r;
        r = evd_key_public_from_pem(buf, len, ret_key, err);
        if (r < 0)
                return evd_error_prefix(err, "%s: ", path);
        return 0;
}

static int bio_to_string(BIO *bio, char **ret)
{
        char *data = NULL;
        long n = BIO_get_mem_data(bio, &data);
        if (n < 0)
                return -EIO;
        char *s = malloc((size_t)n + 1);
        if (!s)
                return -ENOMEM;
        memcpy(s, data, (size_t)n);
        s[n] = 0;
        *ret = s;
        return 0;
}

int evd_key_public_to_pem(EVP_PKEY *key, char **ret_pem, EvdError *err)
{
        char reason[256];
        _cleanup_(BIO_freep) BIO *bio = BIO_new(BIO_s_mem());
        if (!bio)
                return -ENOMEM;
        if (PEM_write_bio_PUBKEY(bio, key) != 1)
                return evd_error_set(err, -EIO, "cannot write public key PEM: %s", openssl_reason(reason));
        return bio_to_string(bio, ret_pem);
}

int evd_key_private_to_pem(EVP_PKEY *key, char **ret_pem, EvdError *err)
{
        char reason[256];
        _cleanup_(BIO_freep) BIO *bio = BIO_new(BIO_s_secmem());
        if (!bio)
                return -ENOMEM;
        if (PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1)
                return evd_error_set(err, -EIO, "cannot write private key PEM: %s", openssl_reason(reason));
        return bio_to_string(bio, ret_pem);
}

int evd_key_public_to_der(EVP_PKEY *key, uint8_t **ret_der, size_t *ret_len, EvdError *err)
{
        char reason[256];
        unsigned char *der = NULL;
        int n = i2d_PUBKEY(key, &der);
        if (n <= 0)
                return evd_error_set(err, -EIO, "cannot encode public key: %s", openssl_reason(reason));
        /* Hand out malloc() memory so callers free() it like everything else. */
        uint8_t *copy = malloc((size_t)n);
        if (!copy) {
                OPENSSL_free(der);
                return -ENOMEM;
        }
        memcpy(copy, der, (size_t)n);
        OPENSSL_free(der);
        *ret_der = copy;
        *ret_len = (size_t)n;
        return 0;
}

int evd_key_id_from_der(const void *der, size_t len, char ret_id[static EVD_KEY_ID_STRLEN + 1])
{
        uint8_t digest[EVD_DIGEST_SIZE];
        int r = evd_hash_buffer(EVD_HASH_SHA256, der, len, digest);
        if (r < 0)
                return r;
        evd_hex(digest, EVD_KEY_ID_SIZE, ret_id);
        return 0;
}

int evd_key_id(EVP_PKEY *key, char ret_id[static EVD_KEY_ID_STRLEN + 1])
{
        _cleanup_free_ uint8_t *der = NULL;
        size_t len = 0;
        int r = evd_key_public_to_der(key, &der, &len, NULL);
        if (r < 0)
                return r;
        return evd_key_id_from_der(der, len, ret_id);
}

/* A DigestSign/DigestVerify context for the suite. The SM2 distinguishing ID lives on a separate
 * EVP_PKEY_CTX that the EVP_MD_CTX does not own, so it is handed back for the caller to free after
 * the EVP_MD_CTX. */
static int suite_context(EvdSuite suite, EVP_PKEY *key, bool signing, EVP_MD_CTX **ret_md,
                         EVP_PKEY_CTX **ret_sm2_ctx)
{
        EvdSuite key_suite;
        if (evd_key_suite(key, &key_suite) < 0 || key_suite != suite)
                return -EKEYREJECTED;

        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *sm2_ctx = NULL;
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
        if (!md)
                return -ENOMEM;

        const EVP_MD *digest = NULL;
        switch (suite) {
        case EVD_SUITE_ED25519_SHA256:
                digest = NULL; /* pure Ed25519: the message is signed as is */
                break;
        case EVD_SUITE_P256_SHA256:
                digest = EVP_sha256();
                break;
        case EVD_SUITE_SM2_SM3:
                digest = EVP_sm3();
                sm2_ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
                if (!sm2_ctx)
                        return -ENOMEM;
                if (EVP_PKEY_CTX_set1_id(sm2_ctx, EVD_SM2_ID, EVD_SM2_ID_LEN) != 1)
                        return -EIO;
                EVP_MD_CTX_set_pkey_ctx(md, sm2_ctx);
                break;
        default:
                return -EINVAL;
        }

        int ok = signing ? EVP_DigestSignInit(md, NULL, digest, NULL, key)
                         : EVP_DigestVerifyInit(md, NULL, digest, NULL, key);
        if (ok != 1)
                return -EIO;
        *ret_md = steal_ptr(&md);
        *ret_sm2_ctx = steal_ptr(&sm2_ctx);
        return 0;
}

int evd_signature_sign(EvdSuite suite, EVP_PKEY *key, const void *msg, size_t len, uint8_t **ret_sig,
                       size_t *ret_sig_len, EvdError *err)
{
        char reason[256];
        /* Declared before md so that it is freed after it (cleanups run in reverse order). */
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *sm2_ctx = NULL;
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = NULL;
        int r = suite_context(suite, key, true, &md, &sm2_ctx);
        if (r == -EKEYREJECTED)
                return evd_error_set(err, r, "key is not a %s key", strna(evd_suite_to_string(suite)));
        if (r < 0)
                return evd_error_set(err, r, "cannot set up %s signing: %s",
                                     strna(evd_suite_to_string(suite)), openssl_reason(reason));

        size_t sig_len = 0;
        if (EVP_DigestSign(md, NULL, &sig_len, msg, len) != 1 || sig_len > EVD_SIGNATURE_MAX)
                return evd_error_set(err, -EIO, "cannot size signature: %s", openssl_reason(reason));
        _cleanup_free_ uint8_t *sig = malloc(sig_len);
        if (!sig)
                return -ENOMEM;
        if (EVP_DigestSign(md, sig, &sig_len, msg, len) != 1)
                return evd_error_set(err, -EIO, "signing failed: %s", openssl_reason(reason));
        *ret_sig = steal_ptr(&sig);
        *ret_sig_len = sig_len;
        return 0;
}

int evd_signature_verify(EvdSuite suite, EVP_PKEY *key, const void *msg, size_t len, const uint8_t *sig,
                         size_t sig_len, EvdError *err)
{
        char reason[256];
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *sm2_ctx = NULL;
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = NULL;
        if ((unsigned)suite >= _EVD_SUITE_MAX)
                return evd_error_set(err, -EINVAL, "unknown signature suite %d", (int)suite);
        if (!sig || sig_len == 0 || sig_len > EVD_SIGNATURE_MAX)
                return 0;
        int r = suite_context(suite, key, false, &md, &sm2_ctx);
        if (r == -EKEYREJECTED)
                return 0; /* a key of another suite cannot have made a valid signature of this suite */
        if (r < 0)
                return evd_error_set(err, r, "cannot set up %s verification: %s",
                                     strna(evd_suite_to_string(suite)), openssl_reason(reason));
        int ok = EVP_DigestVerify(md, sig, sig_len, msg, len);
        ERR_clear_error(); /* a failed verification leaves decoding errors behind */
        return ok == 1 ? 1 : 0;
}
