/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include "kv.h"

void evd_kv_reader_init(EvdKvReader *rd, char *buf, size_t len, unsigned flags)
{
        *rd = (EvdKvReader){.p = buf, .end = buf + len, .flags = flags, .section = ""};
}

static bool blank(char c)
{
        return c == ' ' || c == '\t';
}

static char *strip(char *s, char *e)
{
        while (s < e && blank(*s))
                s++;
        while (e > s && blank(e[-1]))
                e--;
        *e = 0;
        return s;
}

static int bad(EvdKvReader *rd, const char *why)
{
        rd->why = why;
        rd->p = rd->end; /* nothing more after an error */
        return -EBADMSG;
}

static bool comment(const EvdKvReader *rd, const char *l, const char *e)
{
        if (!(rd->flags & EVD_KV_COMMENTS))
                return false;
        if (rd->flags & EVD_KV_STRIP)
                while (l < e && blank(*l))
                        l++;
        return l == e || *l == '#' || (*l == ';' && (rd->flags & EVD_KV_INI));
}

int evd_kv_next(EvdKvReader *rd, EvdKvLine *ret)
{
        while (rd->p < rd->end) {
                rd->line++;
                char *l = rd->p;
                char *nl = memchr(l, '\n', (size_t)(rd->end - l));
                if (!nl && (rd->flags & EVD_KV_NEWLINE))
                        return bad(rd, "no newline at the end (cut short?)");
                char *e = nl ? nl : rd->end;
                rd->p = nl ? nl + 1 : rd->end;
                if ((rd->flags & EVD_KV_CRLF) && e > l && e[-1] == '\r')
                        e--;
                if (rd->max_line && (size_t)(e - l) > rd->max_line)
                        return bad(rd, "line too long");
                if (comment(rd, l, e))
                        continue;
                if (memchr(l, '\0', (size_t)(e - l)) || memchr(l, '\r', (size_t)(e - l)))
                        return bad(rd, "control byte (NUL or CR) in the line");
                *e = 0;
                if (rd->flags & EVD_KV_INI) {
                        char *s = l, *t = e;
                        if (rd->flags & EVD_KV_STRIP)
                                s = strip(l, e), t = s + strlen(s);
                        if (*s == '[') { /* "[name]" and nothing else */
                                if (t - s < 3 || t[-1] != ']' || memchr(s, ']', (size_t)(t - s - 1)))
                                        return bad(rd, "malformed section header");
                                t[-1] = 0;
                                rd->section = s + 1;
                                *ret = (EvdKvLine){.value = s + 1, .section = rd->section, .line = rd->line};
                                return 1;
                        }
                }
                char *eq = strchr(l, '=');
                if (!eq)
                        return bad(rd, "not key=value");
                *eq = 0;
                char *key = l, *value = eq + 1;
                if (rd->flags & EVD_KV_STRIP) {
                        key = strip(key, eq);
                        value = strip(value, e);
                }
                if (!*key)
                        return bad(rd, "empty key");
                *ret = (EvdKvLine){.key = key, .value = value, .section = rd->section, .line = rd->line};
                return 1;
        }
        return 0;
}
