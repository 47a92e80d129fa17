/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Keys and signatures of the three chain suites (docs/chain-format.md, "Suites"):
 *   ed25519-sha256  Ed25519 (pure) over the message
 *   p256-sha256     ECDSA P-256 over SHA-256 of the message, DER-encoded signature
 *   sm2-sm3         SM2 over SM3 (GB/T 32918), distinguishing ID EVD_SM2_ID, DER-encoded signature
 *
 * Keys are plain EVP_PKEY handles: free them with EVP_PKEY_free() (EVP_PKEY_freep for _cleanup_).
 * Verification outcome is data: evd_signature_verify() returns 1 (valid) or 0 (invalid); a negative
 * errno only means "could not verify" (out of memory, unsupported suite). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "error.h"
#include "types.h"

/* The SM2 distinguishing ID: the GB/T 32918 / GM/T 0009 default, set explicitly on sign and verify. */
#define EVD_SM2_ID     "1234567812345678"
#define EVD_SM2_ID_LEN 16u

#define EVD_KEY_ID_SIZE   16u                    /* bytes of SHA-256(DER SPKI) that make the key id */
#define EVD_KEY_ID_STRLEN (2u * EVD_KEY_ID_SIZE) /* lower-case hex */
#define EVD_SIGNATURE_MAX 160u                   /* Ed25519: 64, ECDSA/SM2 DER: <= 72 */
#define EVD_KEY_PEM_MAX   (64u * 1024u)          /* PEM files larger than this are refused */

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free);

/* A new random key pair for the suite. */
int evd_key_generate(EvdSuite suite, EVP_PKEY **ret_key, EvdError *err);

/* The suite a key belongs to (Ed25519, EC on P-256, SM2); -EKEYREJECTED for any other key. */
int evd_key_suite(EVP_PKEY *key, EvdSuite *ret_suite);

/* PEM in memory ("PRIVATE KEY" PKCS#8 / "PUBLIC KEY" SPKI). Only keys of the three suites load;
 * others give -EKEYREJECTED. Caller frees *ret_key. */
int evd_key_private_from_pem(const void *pem, size_t len, EVP_PKEY **ret_key, EvdError *err);
int evd_key_public_from_pem(const void *pem, size_t len, EVP_PKEY **ret_key, EvdError *err);
int evd_key_public_from_der(const void *der, size_t len, EVP_PKEY **ret_key, EvdError *err);

/* The same from files (at most EVD_KEY_PEM_MAX bytes). */
int evd_key_load_private_pem(const char *path, EVP_PKEY **ret_key, EvdError *err);
int evd_key_load_public_pem(const char *path, EVP_PKEY **ret_key, EvdError *err);

/* Exports; the caller frees *ret_* with free(). PEM strings are NUL-terminated. */
int evd_key_public_to_pem(EVP_PKEY *key, char **ret_pem, EvdError *err);
int evd_key_private_to_pem(EVP_PKEY *key, char **ret_pem, EvdError *err);
int evd_key_public_to_der(EVP_PKEY *key, uint8_t **ret_der, size_t *ret_len, EvdError *err);

/* Key id: lower-case hex of the first 16 bytes of SHA-256 over the DER SubjectPublicKeyInfo. */
int evd_key_id(EVP_PKEY *key, char ret_id[static EVD_KEY_ID_STRLEN + 1]);
int evd_key_id_from_der(const void *der, size_t len, char ret_id[static EVD_KEY_ID_STRLEN + 1]);

/* Signs msg with key under suite (the key must belong to the suite: -EKEYREJECTED otherwise).
 * *ret_sig (at most EVD_SIGNATURE_MAX bytes) is freed by the caller. */
int evd_signature_sign(EvdSuite suite, EVP_PKEY *key, const void *msg, size_t len, uint8_t **ret_sig,
                       size_t *ret_sig_len, EvdError *err);

/* 1: the signature is valid for msg under key and suite; 0: it is not (also when the key does not
 * belong to the suite or the signature is malformed); <0: could not verify. */
int evd_signature_verify(EvdSuite suite, EVP_PKEY *key, const void *msg, size_t len, const uint8_t *sig,
                         size_t sig_len, EvdError *err);
