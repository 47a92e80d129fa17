/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <unistd.h>

#include "hash.h"

EvdHashAlg evd_suite_hash(EvdSuite s)
{
        return s == EVD_SUITE_SM2_SM3 ? EVD_HASH_SM3 : EVD_HASH_SHA256;
}

int evd_hash_begin(EvdHashAlg alg, EVP_MD_CTX **ret_ctx)
{
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!ctx)
                return -ENOMEM;
        const EVP_MD *md = alg == EVD_HASH_SM3 ? EVP_sm3() : EVP_sha256();
        if (!md || EVP_DigestInit_ex(ctx, md, NULL) != 1)
                return -EOPNOTSUPP;
        *ret_ctx = steal_ptr(&ctx);
        return 0;
}

int evd_hash_update(EVP_MD_CTX *ctx, const void *buf, size_t n)
{
        return EVP_DigestUpdate(ctx, buf, n) == 1 ? 0 : -EIO;
}

int evd_hash_end(EVP_MD_CTX *ctx, uint8_t ret_digest[EVD_DIGEST_SIZE])
{
        unsigned len = 0;
        if (EVP_DigestFinal_ex(ctx, ret_digest, &len) != 1 || len != EVD_DIGEST_SIZE)
                return -EIO;
        return 0;
}

int evd_hash_buffer(EvdHashAlg alg, const void *buf, size_t n, uint8_t ret_digest[EVD_DIGEST_SIZE])
{
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = NULL;
        int r = evd_hash_begin(alg, &ctx);
        if (r < 0)
                return r;
        r = evd_hash_update(ctx, buf, n);
        if (r < 0)
                return r;
        return evd_hash_end(ctx, ret_digest);
}

int evd_hash_fd(EvdHashAlg alg, int fd, uint8_t ret_digest[EVD_DIGEST_SIZE], uint64_t *ret_size)
{
        enum { BUF = 256 * 1024 };
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = NULL;
        _cleanup_free_ uint8_t *buf = malloc(BUF);
        if (!buf)
                return -ENOMEM;
        int r = evd_hash_begin(alg, &ctx);
        if (r < 0)
                return r;
        uint64_t off = 0;
        for (;;) {
                ssize_t n = pread(fd, buf, BUF, (off_t)off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                r = evd_hash_update(ctx, buf, (size_t)n);
                if (r < 0)
                        return r;
                off += (uint64_t)n;
        }
        r = evd_hash_end(ctx, ret_digest);
        if (r < 0)
                return r;
        if (ret_size)
                *ret_size = off;
        return 0;
}

char *evd_hex(const uint8_t *bytes, size_t n, char *out)
{
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[bytes[i] >> 4];
                out[2 * i + 1] = digits[bytes[i] & 15];
        }
        out[2 * n] = 0;
        return out;
}

int evd_hex_digit(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int evd_unhex(const char *hex, uint8_t *out, size_t n)
{
        if (!hex || strlen(hex) != 2 * n)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                int hi = evd_hex_digit(hex[2 * i]), lo = evd_hex_digit(hex[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        return -EINVAL;
                out[i] = (uint8_t)(hi << 4 | lo);
        }
        return 0;
}
