/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The three suites: sign/verify, one-byte changes fail, PEM/DER round trips, key ids, SM2 with its
 * distinguishing ID (checked against the openssl command line when it is installed). */
#include <errno.h>
#include <string.h>
#include <sys/wait.h>

#include <openssl/err.h>

#include "check.h"
#include "hash.h"
#include "signature.h"

static const char message[] =
    "EVDCHAIN/1;type=SEG;suite=sm2-sm3;dev=A123456;officer=012345;file=VIDEO/视频.MP4";

static void check_suite(EvdSuite suite)
{
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *other = NULL;
        CHECK_OK(evd_key_generate(suite, &key, NULL));
        CHECK_OK(evd_key_generate(suite, &other, NULL));
        EvdSuite s;
        CHECK_OK(evd_key_suite(key, &s));
        CHECK_INT(s, ==, suite);

        _cleanup_free_ uint8_t *sig = NULL;
        size_t sig_len = 0;
        CHECK_OK(evd_signature_sign(suite, key, message, strlen(message), &sig, &sig_len, NULL));
        CHECK(sig_len > 0 && sig_len <= EVD_SIGNATURE_MAX);
        CHECK_INT(evd_signature_verify(suite, key, message, strlen(message), sig, sig_len, NULL), ==, 1);

        /* Any one-byte change of the message or of the signature fails. */
        char msg[sizeof message];
        for (size_t i = 0; i < strlen(message); i++) {
                memcpy(msg, message, sizeof message);
                msg[i] ^= 0x01;
                CHECK_INT(evd_signature_verify(suite, key, msg, strlen(message), sig, sig_len, NULL), ==, 0);
        }
        for (size_t i = 0; i < sig_len; i++) {
                sig[i] ^= 0x80;
                CHECK_INT(evd_signature_verify(suite, key, message, strlen(message), sig, sig_len, NULL), ==,
                          0);
                sig[i] ^= 0x80;
        }
        /* Truncated signature, another key, another suite. */
        CHECK_INT(evd_signature_verify(suite, key, message, strlen(message), sig, sig_len - 1, NULL), ==, 0);
        CHECK_INT(evd_signature_verify(suite, other, message, strlen(message), sig, sig_len, NULL), ==, 0);
        EvdSuite wrong = (EvdSuite)((suite + 1) % _EVD_SUITE_MAX);
        CHECK_INT(evd_signature_verify(wrong, key, message, strlen(message), sig, sig_len, NULL), ==, 0);
        _cleanup_free_ uint8_t *sig2 = NULL;
        size_t sig2_len;
        CHECK_INT(evd_signature_sign(wrong, key, message, strlen(message), &sig2, &sig2_len, NULL), ==,
                  -EKEYREJECTED);

        /* PEM and DER round trips keep the key id; the public half verifies. */
        char id[EVD_KEY_ID_STRLEN + 1], id2[EVD_KEY_ID_STRLEN + 1];
        CHECK_OK(evd_key_id(key, id));
        CHECK_INT(strlen(id), ==, 32);
        _cleanup_free_ char *pub_pem = NULL, *priv_pem = NULL;
        CHECK_OK(evd_key_public_to_pem(key, &pub_pem, NULL));
        CHECK(strstr(pub_pem, "-----BEGIN PUBLIC KEY-----"));
        CHECK_OK(evd_key_private_to_pem(key, &priv_pem, NULL));
        CHECK(strstr(priv_pem, "-----BEGIN PRIVATE KEY-----"));
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL, *priv = NULL;
        CHECK_OK(evd_key_public_from_pem(pub_pem, strlen(pub_pem), &pub, NULL));
        CHECK_OK(evd_key_private_from_pem(priv_pem, strlen(priv_pem), &priv, NULL));
        CHECK_OK(evd_key_suite(pub, &s));
        CHECK_INT(s, ==, suite);
        CHECK_OK(evd_key_suite(priv, &s));
        CHECK_INT(s, ==, suite);
        CHECK_OK(evd_key_id(pub, id2));
        CHECK_STREQ(id, id2);
        CHECK_INT(evd_signature_verify(suite, pub, message, strlen(message), sig, sig_len, NULL), ==, 1);
        _cleanup_free_ uint8_t *sig3 = NULL;
        size_t sig3_len;
        CHECK_OK(evd_signature_sign(suite, priv, message, strlen(message), &sig3, &sig3_len, NULL));
        CHECK_INT(evd_signature_verify(suite, key, message, strlen(message), sig3, sig3_len, NULL), ==, 1);

        /* key id = hex of the first 16 bytes of SHA-256 over the DER SPKI. */
        _cleanup_free_ uint8_t *der = NULL;
        size_t der_len;
        CHECK_OK(evd_key_public_to_der(key, &der, &der_len, NULL));
        uint8_t digest[EVD_DIGEST_SIZE];
        char hex[2 * EVD_DIGEST_SIZE + 1];
        CHECK_OK(evd_hash_buffer(EVD_HASH_SHA256, der, der_len, digest));
        CHECK(strncmp(evd_hex(digest, EVD_DIGEST_SIZE, hex), id, 32) == 0);
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *from_der = NULL;
        CHECK_OK(evd_key_public_from_der(der, der_len, &from_der, NULL));
        CHECK_INT(evd_key_public_from_der(der, der_len - 1, &from_der, NULL), ==, -EBADMSG);
}

static void test_ed25519(void)
{
        check_suite(EVD_SUITE_ED25519_SHA256);
}

static void test_p256(void)
{
        check_suite(EVD_SUITE_P256_SHA256);
}

static void test_sm2_sm3(void)
{
        check_suite(EVD_SUITE_SM2_SM3);
}

static void test_bad_pem(void)
{
        EVP_PKEY *key = NULL;
        EvdError err = {};
        CHECK_INT(evd_key_public_from_pem("garbage", 7, &key, &err), ==, -EBADMSG);
        CHECK(err.msg[0]);
        CHECK_INT(evd_key_load_private_pem("/nonexistent/key.pem", &key, &err), ==, -ENOENT);
        CHECK(strstr(err.msg, "/nonexistent/key.pem"));
        /* An RSA key is not a chain key. */
        EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
        CHECK(rsa);
        _cleanup_free_ char *pem = NULL;
        int r = evd_key_public_to_pem(rsa, &pem, NULL);
        EVP_PKEY_free(rsa);
        CHECK_OK(r);
        CHECK_INT(evd_key_public_from_pem(pem, strlen(pem), &key, &err), ==, -EKEYREJECTED);
        CHECK(key == NULL);
}

/* Interoperability: a signature made by the openssl command line with the documented distinguishing
 * ID verifies; one made with another ID does not. Skipped when the CLI is missing. */
static int run(const char *cmd)
{
        int status = system(cmd);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_sm2_openssl_cli(void)
{
        if (run("openssl version >/dev/null 2>&1") != 0) {
                printf("# openssl CLI missing: interop check skipped\n");
                return;
        }
        char dir[] = "/tmp/evd-sm2-XXXXXX";
        CHECK(mkdtemp(dir));
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        CHECK_OK(evd_key_generate(EVD_SUITE_SM2_SM3, &key, NULL));
        _cleanup_free_ char *pem = NULL;
        CHECK_OK(evd_key_private_to_pem(key, &pem, NULL));
        char path[256], cmd[1024];
        snprintf(path, sizeof path, "%s/key.pem", dir);
        FILE *f = fopen(path, "we");
        CHECK(f);
        fputs(pem, f);
        fclose(f);
        snprintf(path, sizeof path, "%s/msg", dir);
        f = fopen(path, "we");
        CHECK(f);
        fputs(message, f);
        fclose(f);
        const char *ids[] = {EVD_SM2_ID, "ALICE123@YAHOO.COM"};
        for (unsigned i = 0; i < 2; i++) {
                snprintf(
                    cmd, sizeof cmd,
                    "openssl dgst -sm3 -sign %s/key.pem -sigopt distid:%s -out %s/sig %s/msg 2>/dev/null",
                    dir, ids[i], dir, dir);
                CHECK_INT(run(cmd), ==, 0);
                snprintf(path, sizeof path, "%s/sig", dir);
                f = fopen(path, "re");
                CHECK(f);
                uint8_t sig[256];
                size_t n = fread(sig, 1, sizeof sig, f);
                fclose(f);
                CHECK_INT(
                    evd_signature_verify(EVD_SUITE_SM2_SM3, key, message, strlen(message), sig, n, NULL), ==,
                    i == 0 ? 1 : 0);
        }
        /* And the other way round: the CLI verifies ours with the documented ID. */
        _cleanup_free_ uint8_t *sig = NULL;
        size_t sig_len;
        CHECK_OK(evd_signature_sign(EVD_SUITE_SM2_SM3, key, message, strlen(message), &sig, &sig_len, NULL));
        snprintf(path, sizeof path, "%s/sig", dir);
        f = fopen(path, "we");
        CHECK(f);
        fwrite(sig, 1, sig_len, f);
        fclose(f);
        snprintf(cmd, sizeof cmd,
                 "openssl dgst -sm3 -prverify %s/key.pem -sigopt distid:%s -signature %s/sig %s/msg "
                 ">/dev/null 2>&1",
                 dir, EVD_SM2_ID, dir, dir);
        CHECK_INT(run(cmd), ==, 0);
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        CHECK_INT(run(cmd), ==, 0);
}

int main(void)
{
        RUN(test_ed25519);
        RUN(test_p256);
        RUN(test_sm2_sm3);
        RUN(test_bad_pem);
        RUN(test_sm2_openssl_cli);
        return check_finish();
}
