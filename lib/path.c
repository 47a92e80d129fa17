/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdint.h>

#include "path.h"
#include "text.h"

bool evd_utf8_valid(const char *s, size_t len)
{
        const unsigned char *p = (const unsigned char *)s, *end = p + len;
        while (p < end) {
                unsigned c = *p;
                size_t n;
                uint32_t cp;
                if (c < 0x80) {
                        p++;
                        continue;
                } else if ((c & 0xe0) == 0xc0) {
                        n = 1;
                        cp = c & 0x1f;
                } else if ((c & 0xf0) == 0xe0) {
                        n = 2;
                        cp = c & 0x0f;
                } else if ((c & 0xf8) == 0xf0) {
                        n = 3;
                        cp = c & 0x07;
                } else
                        return false;
                if ((size_t)(end - p) <= n)
                        return false;
                for (size_t i = 1; i <= n; i++) {
                        if ((p[i] & 0xc0) != 0x80)
                                return false;
                        cp = cp << 6 | (p[i] & 0x3f);
                }
                if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
                    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                p += n + 1;
        }
        return true;
}

int evd_path_check(const char *path, EvdError *err)
{
        char shown[256];
        if (!path || !path[0])
                return evd_error_set(err, -EINVAL, "empty file name");
        size_t len = strlen(path);
        evd_path_escape(path, shown, sizeof(shown));
        if (len > EVD_PATH_MAX)
                return evd_error_set(err, -EINVAL, "file name longer than %u bytes: %s", EVD_PATH_MAX,
                                     shown);
        if (path[0] == '/')
                return evd_error_set(err, -EINVAL, "absolute file name: %s", shown);
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)path[i];
                if (c < 0x20 || c == 0x7f || c == '\\')
                        return evd_error_set(err, -EINVAL, "control byte or backslash in file name: %s",
                                             shown);
        }
        if (!evd_utf8_valid(path, len))
                return evd_error_set(err, -EINVAL, "file name is not valid UTF-8: %s", shown);
        const char *p = path;
        while (*p) {
                const char *slash = strchr(p, '/');
                size_t n = slash ? (size_t)(slash - p) : strlen(p);
                if (n == 0)
                        return evd_error_set(err, -EINVAL, "empty component in file name: %s", shown);
                if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
                        return evd_error_set(err, -EINVAL, "'.' or '..' component in file name: %s", shown);
                p += n;
                if (*p == '/')
                        p++;
        }
        return 0;
}

char *evd_path_escape(const char *raw, char *out, size_t size)
{
        return evd_text_escape(raw, out, size, EVD_TEXT_ESCAPE_BACKSLASH);
}

char *evd_path_store_component(const char *raw, char *out, size_t max)
{
        const char *base = raw ? strrchr(raw, '/') : NULL;
        base = base ? base + 1 : (raw ? raw : "");
        size_t o = 0;
        for (size_t i = 0; base[i] && o + 1 < max; i++) {
                unsigned char c = (unsigned char)base[i];
                bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                          c == '-' || c == '_' || (c == '.' && o > 0);
                out[o++] = ok ? (char)c : '_';
        }
        if (o == 0 && max > 1)
                out[o++] = '_';
        out[o] = 0;
        return out;
}
