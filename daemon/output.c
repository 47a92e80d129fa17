/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "clock.h"
#include "config.h"
#include "macro.h"
#include "manifest.h"
#include "output.h"
#include "path.h"
#include "text.h"

void json_string(FILE *f, const char *s)
{
        if (!s) {
                fputs("null", f);
                return;
        }
        fputc('"', f);
        size_t len = strlen(s);
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c == '"' || c == '\\')
                        fprintf(f, "\\%c", c);
                else if (c == '\n')
                        fputs("\\n", f);
                else if (c == '\t')
                        fputs("\\t", f);
                else if (c < 0x20 || c == 0x7f)
                        fprintf(f, "\\u%04x", c);
                else if (c >= 0x80) {
                        size_t n = (c & 0xe0) == 0xc0   ? 2
                                   : (c & 0xf0) == 0xe0 ? 3
                                   : (c & 0xf8) == 0xf0 ? 4
                                                        : 0;
                        if (n && i + n <= len && evd_utf8_valid(s + i, n)) {
                                unsigned cp = n == 2   ? (c & 0x1fu) << 6 | (s[i + 1] & 0x3fu)
                                              : n == 3 ? (c & 0x0fu) << 12 | (s[i + 1] & 0x3fu) << 6 |
                                                             (s[i + 2] & 0x3fu)
                                                       : 0x10000;
                                if (evd_text_is_unsafe(cp)) /* C1 controls, bidi marks: as escapes */
                                        fprintf(f, "\\u%04x", cp);
                                else
                                        fwrite(s + i, 1, n, f);
                                i += n - 1;
                        } else
                                fprintf(f, "\\u%04x", c);
                } else
                        fputc(c, f);
        }
        fputc('"', f);
}

char *format_time_tz(int64_t utc_us, int tz_minutes, char *buf, size_t size)
{
        time_t t = (time_t)(utc_us / 1000000) + (time_t)tz_minutes * 60;
        struct tm tm;
        gmtime_r(&t, &tm);
        int off = tz_minutes < 0 ? -tz_minutes : tz_minutes;
        snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, tz_minutes < 0 ? '-' : '+', off / 60,
                 off % 60);
        return buf;
}

char *format_time_local(int64_t utc_us, char *buf, size_t size)
{
        time_t t = (time_t)(utc_us / 1000000);
        struct tm tm;
        localtime_r(&t, &tm);
        return format_time_tz(utc_us, (int)(tm.tm_gmtoff / 60), buf, size);
}

int parse_time_arg(const char *s, int64_t *ret_us)
{
        int64_t ago;
        if (evd_parse_duration_us(s, &ago) == 0 && strpbrk(s, "smhd")) {
                *ret_us = evd_clock_wall_us() - ago;
                return 0;
        }
        int tz;
        if (evd_time_parse(s, ret_us, &tz) == 0)
                return 0;
        struct tm tm = {};
        const char *end = strptime(s, "%Y-%m-%d %H:%M:%S", &tm);
        if (!end || *end) {
                memset(&tm, 0, sizeof(tm));
                end = strptime(s, "%Y-%m-%d %H:%M", &tm);
        }
        if (!end || *end) {
                memset(&tm, 0, sizeof(tm));
                end = strptime(s, "%Y-%m-%d", &tm);
        }
        if (!end || *end)
                return -EINVAL;
        tm.tm_isdst = -1;
        time_t t = mktime(&tm);
        if (t == (time_t)-1)
                return -EINVAL;
        *ret_us = (int64_t)t * 1000000;
        return 0;
}

/* Appends one "key=value" pair in conninfo syntax (quoted when needed). */
static void append_pair(char *out, size_t size, size_t *len, const char *key, const char *val)
{
        bool quote = !*val || strpbrk(val, " \t\n\r\f\v'\\") != NULL;
        int n = snprintf(out + *len, *len < size ? size - *len : 0, "%s%s=%s", *len ? " " : "", key,
                         quote ? "'" : "");
        if (n > 0)
                *len += (size_t)n;
        for (const char *p = val; *p; p++) {
                if (*len + 3 >= size)
                        break;
                if (quote && (*p == '\'' || *p == '\\'))
                        out[(*len)++] = '\\';
                out[(*len)++] = *p;
        }
        if (quote && *len + 1 < size)
                out[(*len)++] = '\'';
        if (*len < size)
                out[*len] = 0;
}

/* libpq's own parser decides what the password is, in every form it accepts (key=value with or
 * without quotes and spaces, URIs with user:password@ or ?password=): the string is shown as libpq
 * understood it, in key=value form, with every secret option (libpq marks them with dispchar '*':
 * password, sslpassword) as ***. A string libpq cannot parse is not shown at all. */
void mask_password(const char *url, char *out, size_t size)
{
        if (size == 0)
                return;
        out[0] = 0;
        char *errmsg = NULL;
        PQconninfoOption *opts = PQconninfoParse(url ? url : "", &errmsg);
        if (!opts) {
                PQfreemem(errmsg);
                snprintf(out, size, "(not shown: libpq cannot parse it)");
                return;
        }
        size_t len = 0;
        for (PQconninfoOption *o = opts; o->keyword; o++) {
                if (!o->val)
                        continue;
                bool secret = o->dispchar && strchr(o->dispchar, '*');
                append_pair(out, size, &len, o->keyword, secret ? "***" : o->val);
        }
        PQconninfoFree(opts);
}

const char *text_shown(const char *s)
{
        /* rotating buffers: up to TEXT_SHOWN_SLOTS results may be used in one printf */
        static _Thread_local char slots[TEXT_SHOWN_SLOTS][TEXT_SHOWN_MAX];
        static _Thread_local unsigned next;
        if (!s)
                return "(null)";
        char *out = slots[next++ % TEXT_SHOWN_SLOTS];
        return evd_text_escape(s, out, TEXT_SHOWN_MAX, 0);
}

char *format_size(uint64_t bytes, char *buf, size_t size)
{
        static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
        double v = (double)bytes;
        size_t u = 0;
        while (v >= 1024.0 && u + 1 < ELEMENTSOF(units)) {
                v /= 1024.0;
                u++;
        }
        if (u == 0)
                snprintf(buf, size, "%" PRIu64 " B", bytes);
        else
                snprintf(buf, size, "%.1f %s", v, units[u]);
        return buf;
}
