/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kv.h"
#include "macro.h"
#include "small-file.h"
#include "usb-profile.h"

static int parse_uint(const char *v, unsigned long max, unsigned long *ret)
{
        if (!*v || *v == '-' || *v == '+' || isspace((unsigned char)*v))
                return -EINVAL;
        char *end;
        errno = 0;
        unsigned long x = strtoul(v, &end, 0); /* 0x.. hex or decimal */
        if (errno || *end || x > max)
                return -EINVAL;
        *ret = x;
        return 0;
}

static int parse_hex16(const char *v, uint16_t *ret)
{
        /* VID/PID are written as in lsusb: four hex digits, optional 0x. */
        if (strncasecmp(v, "0x", 2) == 0)
                v += 2;
        if (strlen(v) != 4)
                return -EINVAL;
        unsigned x = 0;
        for (const char *p = v; *p; p++) {
                if (!isxdigit((unsigned char)*p))
                        return -EINVAL;
                x = x * 16 + (unsigned)(isdigit((unsigned char)*p) ? *p - '0'
                                                                   : tolower((unsigned char)*p) - 'a' + 10);
        }
        *ret = (uint16_t)x;
        return 0;
}

static int parse_bool(const char *v, bool *ret)
{
        if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1")) {
                *ret = true;
                return 0;
        }
        if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0")) {
                *ret = false;
                return 0;
        }
        return -EINVAL;
}

static int parse_endpoint(const char *v, bool in, uint8_t *ret)
{
        unsigned long x;
        if (!strcmp(v, "auto")) {
                *ret = 0;
                return 0;
        }
        if (parse_uint(v, 0xff, &x) < 0 || (x & 0x70) || (x & 0x0f) == 0 || !!(x & 0x80) != in)
                return -EINVAL;
        *ret = (uint8_t)x;
        return 0;
}

enum {
        KEY_NAME,
        KEY_VENDOR_ID,
        KEY_PRODUCT_ID,
        KEY_CONTROL_INTERFACE,
        KEY_STORAGE_INTERFACE,
        KEY_BULK_IN,
        KEY_BULK_OUT,
        KEY_LUN,
        KEY_SET_CLOCK,
        KEY_SWITCH_TO_STORAGE,
        KEY_CLOCK_UTC_OFFSET,
        KEY_TIMEOUT,
        KEY_RETRIES,
        _KEY_MAX,
};

static const char *const profile_keys[_KEY_MAX] = {
    [KEY_NAME] = "name",
    [KEY_VENDOR_ID] = "vendor_id",
    [KEY_PRODUCT_ID] = "product_id",
    [KEY_CONTROL_INTERFACE] = "control_interface",
    [KEY_STORAGE_INTERFACE] = "storage_interface",
    [KEY_BULK_IN] = "bulk_in_endpoint",
    [KEY_BULK_OUT] = "bulk_out_endpoint",
    [KEY_LUN] = "lun",
    [KEY_SET_CLOCK] = "set_clock",
    [KEY_SWITCH_TO_STORAGE] = "switch_to_storage",
    [KEY_CLOCK_UTC_OFFSET] = "clock_utc_offset_minutes",
    [KEY_TIMEOUT] = "transfer_timeout_ms",
    [KEY_RETRIES] = "max_retries",
};

static int profile_set(EvdUsbProfile *p, int key, const char *v)
{
        unsigned long x;
        int r = 0;

        switch (key) {
        case KEY_NAME:
                if (strlen(v) >= sizeof(p->name))
                        return -EINVAL;
                for (const char *c = v; *c; c++)
                        if ((unsigned char)*c < 0x20 || *c == 0x7f)
                                return -EINVAL;
                strcpy(p->name, v);
                return 0;
        case KEY_VENDOR_ID:
                return parse_hex16(v, &p->vendor_id);
        case KEY_PRODUCT_ID:
                return parse_hex16(v, &p->product_id);
        case KEY_CONTROL_INTERFACE:
                if (!strcmp(v, "none")) {
                        p->control_interface = -1;
                        return 0;
                }
                r = parse_uint(v, 255, &x);
                if (r >= 0)
                        p->control_interface = (int)x;
                return r;
        case KEY_STORAGE_INTERFACE:
                r = parse_uint(v, 255, &x);
                if (r >= 0)
                        p->storage_interface = (int)x;
                return r;
        case KEY_BULK_IN:
                return parse_endpoint(v, true, &p->bulk_in);
        case KEY_BULK_OUT:
                return parse_endpoint(v, false, &p->bulk_out);
        case KEY_LUN:
                r = parse_uint(v, 15, &x);
                if (r >= 0)
                        p->lun = (uint8_t)x;
                return r;
        case KEY_SET_CLOCK:
                return parse_bool(v, &p->set_clock);
        case KEY_SWITCH_TO_STORAGE:
                return parse_bool(v, &p->switch_to_storage);
        case KEY_CLOCK_UTC_OFFSET: {
                const char *d = v[0] == '-' || v[0] == '+' ? v + 1 : v;
                r = parse_uint(d, 14 * 60, &x);
                if (r >= 0)
                        p->clock_utc_offset_min = v[0] == '-' ? -(int)x : (int)x;
                return r;
        }
        case KEY_TIMEOUT:
                r = parse_uint(v, EVD_USB_TIMEOUT_MS_MAX, &x);
                if (r >= 0 && x == 0)
                        r = -EINVAL;
                if (r >= 0)
                        p->timeout_ms = (unsigned)x;
                return r;
        case KEY_RETRIES:
                r = parse_uint(v, EVD_USB_RETRIES_MAX, &x);
                if (r >= 0)
                        p->max_retries = (unsigned)x;
                return r;
        }
        return -EINVAL;
}

int evd_usb_profile_parse_string(const char *text, const char *origin, EvdUsbProfile *ret, EvdError *err)
{
        EvdUsbProfile p;
        bool seen[_KEY_MAX] = {};

        evd_usb_profile_init(&p);
        _cleanup_free_ char *copy = strdup(text);
        if (!copy)
                return -ENOMEM;

        EvdKvReader rd;
        EvdKvLine l;
        int r;
        evd_kv_reader_init(&rd, copy, strlen(copy), EVD_KV_STRIP | EVD_KV_COMMENTS | EVD_KV_CRLF);
        while ((r = evd_kv_next(&rd, &l)) > 0) {
                int k;
                for (k = 0; k < _KEY_MAX; k++)
                        if (!strcmp(l.key, profile_keys[k]))
                                break;
                if (k == _KEY_MAX)
                        return evd_error_set(err, -EINVAL, "%s:%u: unknown key '%s'", origin, l.line, l.key);
                if (seen[k])
                        return evd_error_set(err, -EINVAL, "%s:%u: duplicate key '%s'", origin, l.line,
                                             l.key);
                seen[k] = true;
                if (!*l.value)
                        return evd_error_set(err, -EINVAL, "%s:%u: empty value for '%s'", origin, l.line,
                                             l.key);
                if (profile_set(&p, k, l.value) < 0)
                        return evd_error_set(err, -EINVAL, "%s:%u: invalid value '%s' for '%s'", origin,
                                             l.line, l.value, l.key);
        }
        if (r < 0)
                return evd_error_set(err, -EINVAL, "%s:%u: %s (expected 'key = value')", origin, rd.line,
                                     rd.why);

        static const int required[] = {KEY_VENDOR_ID, KEY_PRODUCT_ID, KEY_STORAGE_INTERFACE};
        for (size_t i = 0; i < ELEMENTSOF(required); i++)
                if (!seen[required[i]])
                        return evd_error_set(err, -EINVAL, "%s: missing required key '%s'", origin,
                                             profile_keys[required[i]]);
        if (p.control_interface == p.storage_interface)
                return evd_error_set(err, -EINVAL,
                                     "%s: control_interface and storage_interface are the same", origin);
        if (p.control_interface < 0) {
                /* Both steps are control requests: asking for them without the interface is a mistake. */
                if (p.set_clock || (seen[KEY_SWITCH_TO_STORAGE] && p.switch_to_storage))
                        return evd_error_set(err, -EINVAL,
                                             "%s: set_clock/switch_to_storage need a control_interface",
                                             origin);
                p.switch_to_storage = false;
        }
        if (!seen[KEY_NAME]) {
                const char *base = strrchr(origin, '/');
                base = base ? base + 1 : origin;
                snprintf(p.name, sizeof(p.name), "%.*s", (int)strcspn(base, "."), base);
        }
        *ret = p;
        return 0;
}

int evd_usb_profile_parse_file(const char *path, EvdUsbProfile *ret, EvdError *err)
{
        _cleanup_free_ char *buf = NULL;
        int r = evd_small_file_read_flags(AT_FDCWD, path, EVD_USB_PROFILE_FILE_MAX, EVD_SMALL_FILE_FOLLOW,
                                          &buf, NULL);
        if (r == -EFBIG)
                return evd_error_set(err, r, "%s: larger than %u bytes", path, EVD_USB_PROFILE_FILE_MAX);
        if (r == -EBADMSG)
                return evd_error_set(err, -EINVAL, "%s: not a regular file, or it contains a NUL byte",
                                     path);
        if (r < 0)
                return evd_error_set_errno(err, r, "%s: cannot read", path);
        return evd_usb_profile_parse_string(buf, path, ret, err);
}

int evd_usb_profile_list(const char *dir, EvdUsbProfileFile **ret, size_t *ret_n)
{
        *ret = NULL;
        *ret_n = 0;
        _cleanup_free_ char *pattern = NULL;
        if (asprintf(&pattern, "%s/*.conf", dir) < 0)
                return -ENOMEM;
        glob_t g = {};
        int gr = glob(pattern, 0, NULL, &g); /* sorted by name */
        if (gr == GLOB_NOMATCH) {
                globfree(&g);
                return 0;
        }
        if (gr != 0) {
                globfree(&g);
                return gr == GLOB_NOSPACE ? -ENOMEM : -EIO;
        }
        EvdUsbProfileFile *files = calloc(g.gl_pathc, sizeof(*files));
        if (!files) {
                globfree(&g);
                return -ENOMEM;
        }
        for (size_t i = 0; i < g.gl_pathc; i++) {
                EvdUsbProfileFile *f = &files[i];
                f->path = strdup(g.gl_pathv[i]);
                f->result = f->path ? evd_usb_profile_parse_file(f->path, &f->profile, &f->err) : -ENOMEM;
                if (!f->path) {
                        evd_usb_profile_list_free(files, i + 1);
                        globfree(&g);
                        return -ENOMEM;
                }
        }
        *ret = files;
        *ret_n = g.gl_pathc;
        globfree(&g);
        return 0;
}

void evd_usb_profile_list_free(EvdUsbProfileFile *files, size_t n)
{
        for (size_t i = 0; files && i < n; i++)
                free(files[i].path);
        free(files);
}
