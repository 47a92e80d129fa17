/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

/* Decodes one UTF-8 character at s (n bytes left): its length, or 0 if the bytes are not valid UTF-8
 * (overlong, surrogate, beyond U+10FFFF, cut short). */
static size_t utf8_decode(const unsigned char *s, size_t n, unsigned *ret_cp)
{
        unsigned c = s[0];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
                *ret_cp = c;
                return 1;
        } else if ((c & 0xe0) == 0xc0)
                len = 2, cp = c & 0x1f;
        else if ((c & 0xf0) == 0xe0)
                len = 3, cp = c & 0x0f;
        else if ((c & 0xf8) == 0xf0)
                len = 4, cp = c & 0x07;
        else
                return 0;
        if (n < len)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (s[i] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        *ret_cp = cp;
        return len;
}

bool evd_text_valid(const char *s, size_t max)
{
        if (!s)
                return false;
        size_t n = strlen(s);
        if (n > max)
                return false;
        const unsigned char *p = (const unsigned char *)s;
        for (size_t i = 0; i < n;) {
                unsigned cp;
                size_t len = utf8_decode(p + i, n - i, &cp);
                if (len == 0 || cp < 0x20 || cp == 0x7f)
                        return false;
                i += len;
        }
        return true;
}

bool evd_text_is_unsafe(unsigned cp)
{
        return cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
               (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 ||
               cp == 0x2029;
}

/* Calls put(piece, len, userdata) for each piece of the escaped form; stops when put returns false. */
typedef bool (*PutFn)(const char *piece, size_t len, void *userdata);

static void escape_each(const char *raw, unsigned flags, PutFn put, void *userdata)
{
        const unsigned char *p = (const unsigned char *)raw;
        size_t n = strlen(raw);
        for (size_t i = 0; i < n;) {
                unsigned cp;
                char buf[16];
                size_t len = utf8_decode(p + i, n - i, &cp);
                bool ok;
                if (len == 0) {
                        snprintf(buf, sizeof(buf), "\\x%02x", p[i]);
                        ok = put(buf, strlen(buf), userdata);
                        len = 1;
                } else if (cp < 0x20 || cp == 0x7f || (cp == '\\' && (flags & EVD_TEXT_ESCAPE_BACKSLASH))) {
                        snprintf(buf, sizeof(buf), "\\x%02x", cp);
                        ok = put(buf, strlen(buf), userdata);
                } else if (evd_text_is_unsafe(cp)) {
                        snprintf(buf, sizeof(buf), "\\u{%04x}", cp);
                        ok = put(buf, strlen(buf), userdata);
                } else
                        ok = put((const char *)p + i, len, userdata);
                if (!ok)
                        return;
                i += len;
        }
}

typedef struct Bounded {
        char *out;
        size_t size, o;
} Bounded;

static bool put_bounded(const char *piece, size_t len, void *userdata)
{
        Bounded *b = userdata;
        if (b->o + len + 1 > b->size)
                return false; /* whole characters or escapes only */
        memcpy(b->out + b->o, piece, len);
        b->o += len;
        return true;
}

char *evd_text_escape(const char *raw, char *out, size_t size, unsigned flags)
{
        if (size == 0)
                return out;
        Bounded b = {.out = out, .size = size};
        if (raw)
                escape_each(raw, flags, put_bounded, &b);
        out[b.o] = 0;
        return out;
}

typedef struct Growing {
        char *buf;
        size_t len, allocated;
        bool failed;
} Growing;

static bool put_growing(const char *piece, size_t len, void *userdata)
{
        Growing *g = userdata;
        if (g->len + len + 1 > g->allocated) {
                size_t na = (g->len + len + 1) * 2;
                char *nb = realloc(g->buf, na);
                if (!nb) {
                        g->failed = true;
                        return false;
                }
                g->buf = nb;
                g->allocated = na;
        }
        memcpy(g->buf + g->len, piece, len);
        g->len += len;
        g->buf[g->len] = 0;
        return true;
}

char *evd_text_escape_dup(const char *raw, unsigned flags)
{
        if (!raw)
                return NULL;
        Growing g = {};
        if (!put_growing("", 0, &g))
                return NULL;
        escape_each(raw, flags, put_growing, &g);
        if (g.failed) {
                free(g.buf);
                return NULL;
        }
        return g.buf;
}

static bool put_file(const char *piece, size_t len, void *userdata)
{
        return fwrite(piece, 1, len, userdata) == len;
}

void evd_text_fputs(const char *raw, FILE *f, unsigned flags)
{
        if (raw)
                escape_each(raw, flags, put_file, f);
}
