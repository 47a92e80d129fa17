/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The media worker's messages (media-worker.h describes them), shared by its two sides only, not a public
 * header: media-worker.c (the parent's side, in libevidock) and media-worker-serve.c (the worker's side,
 * linked into evidock-media-worker only). Static inline: each side gets its own copy, and neither
 * library exports these short names. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "media-worker.h"

#define REQUEST_MAGIC  "EVDMWQ03"
#define REPLY_MAGIC    "EVDMWR02"
#define PROGRESS_MAGIC "EVDMWP02"
#define DONE_MAGIC     "EVDMWD03"
#define MAGIC_BYTES    8u
#define FRAME_HEADER   4u                       /* u32 length of the frame body */
#define PROGRESS_BODY  (MAGIC_BYTES + 16u)      /* magic u64 done u64 total */
#define DONE_BODY      (MAGIC_BYTES + 8u + 64u) /* magic u64 size, 64 hex digits */
#define STR_NULL       UINT32_MAX
#define TEXT_MAX       4096u /* a name or tag value in a message; media.c bounds tag values further */
#define MESSAGE_MAX    (sizeof(((EvdError *)0)->msg) - 1)
/* strings in a request: 10 named + key/value per extra tag + 3 per attachment */
#define REQUEST_MAX_FIELDS (10u + 2u * EVD_MEDIA_MAX_EXTRA_TAGS + 3u * EVD_MEDIA_MAX_ATTACHMENTS)

typedef struct Buf {
        uint8_t *data;
        size_t len, cap;
        size_t max; /* the bound of this message */
        int error;  /* first failure: -E2BIG past max, -ENOMEM */
} Buf;

static inline void buf_done(Buf *b)
{
        free(b->data);
        b->data = NULL;
}

static inline void buf_put(Buf *b, const void *p, size_t n)
{
        if (b->error)
                return;
        if (n > b->max - b->len) {
                b->error = -E2BIG;
                return;
        }
        if (n > b->cap - b->len) {
                size_t cap = MAX(b->cap, (size_t)4096);
                while (cap - b->len < n)
                        cap *= 2;
                cap = MIN(cap, b->max);
                uint8_t *d = realloc(b->data, cap);
                if (!d) {
                        b->error = -ENOMEM;
                        return;
                }
                b->data = d;
                b->cap = cap;
        }
        if (n)
                memcpy(b->data + b->len, p, n);
        b->len += n;
}

static inline void put_u8(Buf *b, uint8_t v)
{
        buf_put(b, &v, 1);
}

static inline void put_u32(Buf *b, uint32_t v)
{
        uint8_t x[4] = {v >> 24, v >> 16, v >> 8, v};
        buf_put(b, x, sizeof(x));
}

static inline void put_u64(Buf *b, uint64_t v)
{
        put_u32(b, (uint32_t)(v >> 32));
        put_u32(b, (uint32_t)v);
}

static inline void put_bytes(Buf *b, const void *p, size_t n, size_t max)
{
        if (n > max) {
                if (!b->error)
                        b->error = -E2BIG;
                return;
        }
        put_u32(b, (uint32_t)n);
        buf_put(b, p, n);
}

static inline void put_str(Buf *b, const char *s)
{
        if (!s) {
                put_u32(b, STR_NULL);
                return;
        }
        put_bytes(b, s, strlen(s), TEXT_MAX);
}

typedef struct Reader {
        const uint8_t *p;
        size_t len, off;
        bool bad;
        /* strings are copied here, NUL-terminated; NULL: get_str() writes into caller buffers only */
        char *arena;
        size_t arena_len, arena_off;
} Reader;

static inline const uint8_t *get_raw(Reader *r, size_t n)
{
        if (r->bad || n > r->len - r->off) {
                r->bad = true;
                return NULL;
        }
        const uint8_t *p = r->p + r->off;
        r->off += n;
        return p;
}

static inline uint8_t get_u8(Reader *r)
{
        const uint8_t *p = get_raw(r, 1);
        return p ? p[0] : 0;
}

static inline uint32_t get_u32(Reader *r)
{
        const uint8_t *p = get_raw(r, 4);
        return p ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3] : 0;
}

static inline uint64_t get_u64(Reader *r)
{
        uint64_t hi = get_u32(r);
        return hi << 32 | get_u32(r);
}

/* A length-prefixed field: *ret_p points into the message, NULL for the NULL marker. */
static inline void get_field(Reader *r, size_t max, const uint8_t **ret_p, size_t *ret_n)
{
        uint32_t n = get_u32(r);
        *ret_p = NULL;
        *ret_n = 0;
        if (r->bad || n == STR_NULL)
                return;
        if (n > max) {
                r->bad = true;
                return;
        }
        *ret_p = get_raw(r, n);
        *ret_n = n;
}

/* A string copied into the arena (or NULL); a string holding NUL is malformed. */
static inline const char *get_str(Reader *r, size_t max)
{
        const uint8_t *p;
        size_t n;
        get_field(r, max, &p, &n);
        if (!p)
                return NULL;
        if (memchr(p, 0, n) || n + 1 > r->arena_len - r->arena_off) {
                r->bad = true;
                return NULL;
        }
        char *s = r->arena + r->arena_off;
        memcpy(s, p, n);
        s[n] = 0;
        r->arena_off += n + 1;
        return s;
}

/* A string into a fixed array; too long, NULL or holding NUL is malformed. */
static inline void get_str_into(Reader *r, char *dst, size_t size)
{
        const uint8_t *p;
        size_t n;
        get_field(r, size - 1, &p, &n);
        if (!p || memchr(p, 0, n)) {
                r->bad = true;
                dst[0] = 0;
                return;
        }
        memcpy(dst, p, n);
        dst[n] = 0;
}

/* A frame is a u32 length and that many bytes of body; frame_end() fills in the length. */
static inline size_t frame_begin(Buf *b)
{
        size_t start = b->len;
        put_u32(b, 0);
        return start;
}

static inline void frame_end(Buf *b, size_t start)
{
        if (b->error)
                return;
        uint32_t n = (uint32_t)(b->len - start - FRAME_HEADER);
        uint8_t x[4] = {n >> 24, n >> 16, n >> 8, n};
        memcpy(b->data + start, x, sizeof(x));
}

static inline uint32_t be32(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
