/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Streaming hashes (SHA-256, SM3) over OpenSSL EVP. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "error.h"
#include "types.h"

#define EVD_DIGEST_SIZE 32u /* SHA-256 and SM3 */

typedef enum EvdHashAlg {
        EVD_HASH_SHA256 = 0,
        EVD_HASH_SM3,
} EvdHashAlg;

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MD_CTX *, EVP_MD_CTX_free);

/* The hash a suite uses for files and records. */
EvdHashAlg evd_suite_hash(EvdSuite s);

/* Starts a hash; *ret_ctx is freed with EVP_MD_CTX_free(). */
int evd_hash_begin(EvdHashAlg alg, EVP_MD_CTX **ret_ctx);
int evd_hash_update(EVP_MD_CTX *ctx, const void *buf, size_t n);
int evd_hash_end(EVP_MD_CTX *ctx, uint8_t ret_digest[EVD_DIGEST_SIZE]);

/* One-shot hash of a buffer. */
int evd_hash_buffer(EvdHashAlg alg, const void *buf, size_t n, uint8_t ret_digest[EVD_DIGEST_SIZE]);

/* Hash of a whole file descriptor from offset 0 (pread, does not move the file position). */
int evd_hash_fd(EvdHashAlg alg, int fd, uint8_t ret_digest[EVD_DIGEST_SIZE], uint64_t *ret_size);

/* Lower-case hex of n bytes into out (2n+1 bytes). Returns out. */
char *evd_hex(const uint8_t *bytes, size_t n, char *out);
/* The value of one hex digit (either case), or -1. */
int evd_hex_digit(char c);

/* Parses exactly 2n hex digits. -EINVAL otherwise. */
int evd_unhex(const char *hex, uint8_t *out, size_t n);
