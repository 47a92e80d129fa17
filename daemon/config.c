/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <strings.h>

#include "config.h"
#include "evd-config.h"
#include "ingest.h"
#include "kv.h"
#include "small-file.h"

static int set_str(char **dst, const char *v)
{
        char *n = strdup(v);
        if (!n)
                return -ENOMEM;
        free(*dst);
        *dst = n;
        return 0;
}

int evd_config_init(EvdConfig *c)
{
        *c = (EvdConfig){
            .store_reserve_bytes = 2ULL << 30,
            .late_after_us = 24LL * 3600 * 1000000,
            .max_file_bytes = 64ULL << 30,
            .archive_copy = true,
            .archive_while_copying = true,
            .media_timeout_us = 600LL * 1000000,
            .docking_deadline_us = 1200LL * 1000000,
            .time_gap_tolerance_us = 2LL * 1000000,
            .clock_max_offset_us = 300LL * 1000000,
            .overdue_after_us = 3LL * 86400 * 1000000,
            .usb_enabled = true,
            .usb_set_clock = false,
            .usb_max_concurrent = 2,
            .metrics_interval_us = 60LL * 1000000,
            .disc_copies = 2,
        };
        evd_retention_policy_default(&c->retention);
        if (set_str(&c->database_url, "dbname=evidock") < 0 ||
            set_str(&c->spool_dir, EVD_LOCALSTATEDIR "/spool") < 0 ||
            set_str(&c->store_root, EVD_LOCALSTATEDIR "/store") < 0 ||
            set_str(&c->default_case_number, "") < 0 || set_str(&c->confidentiality, "normal") < 0 ||
            set_str(&c->usb_profiles_dir, EVD_SYSCONFDIR "/recorders.d") < 0 ||
            set_str(&c->metrics_file, "") < 0 || set_str(&c->export_root, EVD_LOCALSTATEDIR "/export") < 0 ||
            set_str(&c->disc_drives, "") < 0 || set_str(&c->disc_media, "bd25") < 0 ||
            set_str(&c->disc_work_dir, EVD_LOCALSTATEDIR "/disc-work") < 0 ||
            set_str(&c->disc_xorriso, "xorriso") < 0) {
                evd_config_clear(c);
                return -ENOMEM;
        }
        return 0;
}

void evd_config_clear(EvdConfig *c)
{
        free(c->database_url);
        free(c->spool_dir);
        free(c->store_root);
        free(c->default_case_number);
        free(c->confidentiality);
        free(c->usb_profiles_dir);
        free(c->metrics_file);
        free(c->export_root);
        free(c->disc_drives);
        free(c->disc_media);
        free(c->disc_work_dir);
        free(c->disc_xorriso);
        for (unsigned i = 0; i < c->n_watch_dirs; i++)
                free(c->watch_dirs[i]);
        *c = (EvdConfig){};
}

void evd_config_ingest_options(const EvdConfig *c, EvdIngestOptions *o)
{
        evd_ingest_options_init(o);
        o->default_case_number = c->default_case_number;
        o->late_after_us = c->late_after_us;
        o->max_file_bytes = c->max_file_bytes;
        o->reserve_bytes = c->store_reserve_bytes;
        o->archive_copy = c->archive_copy;
        o->archive_while_copying = c->archive_while_copying;
        o->media_timeout_us = c->media_timeout_us;
        o->time_gap_tolerance_us = c->time_gap_tolerance_us;
        o->clock_max_offset_us = c->clock_max_offset_us;
        o->confidentiality = c->confidentiality;
        o->spool_dir = c->spool_dir && c->spool_dir[0] ? c->spool_dir : NULL;
}

/* A decimal number as the documentation shows it: digits, optionally a '.' and more digits. No sign,
 * no exponent, no hex, no "nan"/"inf" (strtod would take them all). Returns the end, or NULL. */
static const char *parse_decimal(const char *s, double *ret)
{
        const char *p = s;
        while (*p >= '0' && *p <= '9')
                p++;
        if (p == s)
                return NULL;
        if (*p == '.') {
                const char *f = ++p;
                while (*p >= '0' && *p <= '9')
                        p++;
                if (p == f)
                        return NULL;
        }
        char buf[64];
        if ((size_t)(p - s) >= sizeof(buf))
                return NULL;
        memcpy(buf, s, (size_t)(p - s));
        buf[p - s] = 0;
        errno = 0;
        double v = strtod(buf, NULL);
        if (errno || !(v >= 0))
                return NULL;
        *ret = v;
        return p;
}

int evd_parse_duration_us(const char *s, int64_t *ret)
{
        double v;
        const char *end = parse_decimal(s, &v);
        if (!end)
                return -EINVAL;
        double mult;
        if (strcmp(end, "ms") == 0)
                mult = 1e3;
        else if (strcmp(end, "s") == 0 || *end == 0)
                mult = 1e6;
        else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
                mult = 60e6;
        else if (strcmp(end, "h") == 0)
                mult = 3600e6;
        else if (strcmp(end, "d") == 0)
                mult = 86400e6;
        else
                return -EINVAL;
        if (v * mult > 9e18)
                return -ERANGE;
        *ret = (int64_t)(v * mult);
        return 0;
}

int evd_parse_size_bytes(const char *s, uint64_t *ret)
{
        double v;
        const char *end = parse_decimal(s, &v);
        if (!end)
                return -EINVAL;
        double mult = 1;
        switch (toupper((unsigned char)*end)) {
        case 0:
                break;
        case 'K':
                mult = 1024.0;
                break;
        case 'M':
                mult = 1024.0 * 1024;
                break;
        case 'G':
                mult = 1024.0 * 1024 * 1024;
                break;
        case 'T':
                mult = 1024.0 * 1024 * 1024 * 1024;
                break;
        default:
                return -EINVAL;
        }
        if (*end && end[1] && !(toupper((unsigned char)end[1]) == 'B' && !end[2]) &&
            !(toupper((unsigned char)end[1]) == 'I' && toupper((unsigned char)end[2]) == 'B' && !end[3]))
                return -EINVAL;
        if (v * mult > 1.8e19)
                return -ERANGE;
        *ret = (uint64_t)(v * mult);
        return 0;
}

int evd_parse_bool(const char *s, bool *ret)
{
        static const char *const yes[] = {"yes", "true", "1", "on"}, *const no[] = {"no", "false", "0",
                                                                                    "off"};
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(s, yes[i]) == 0)
                        return *ret = true, 0;
                if (strcasecmp(s, no[i]) == 0)
                        return *ret = false, 0;
        }
        return -EINVAL;
}

/* T_PATH: an absolute path; T_PATH_OR_EMPTY: the same, or "" (the feature off) */
typedef enum {
        T_STR,
        T_PATH,
        T_PATH_OR_EMPTY,
        T_DURATION,
        T_SIZE,
        T_BOOL,
        T_UINT,
        T_DIRLIST,
        T_PERIOD,
        T_CATEGORIES
} KeyType;

typedef struct Key {
        const char *section, *name;
        KeyType type;
        size_t offset;
} Key;

#define K(sec, name, type, field)                                                                           \
        {                                                                                                   \
                sec, name, type, offsetof(EvdConfig, field)                                                 \
        }
static const Key keys[] = {
    K("database", "url", T_STR, database_url),
    K("database", "spool_dir", T_PATH_OR_EMPTY, spool_dir),
    K("store", "root", T_PATH, store_root),
    K("store", "reserve", T_SIZE, store_reserve_bytes),
    K("ingest", "default_case_number", T_STR, default_case_number),
    K("ingest", "late_after", T_DURATION, late_after_us),
    K("ingest", "max_file_size", T_SIZE, max_file_bytes),
    K("ingest", "archive_copy", T_BOOL, archive_copy),
    K("ingest", "archive_while_copying", T_BOOL, archive_while_copying),
    K("ingest", "media_timeout", T_DURATION, media_timeout_us),
    K("ingest", "docking_deadline", T_DURATION, docking_deadline_us),
    K("ingest", "time_gap_tolerance", T_DURATION, time_gap_tolerance_us),
    K("ingest", "clock_max_offset", T_DURATION, clock_max_offset_us),
    K("ingest", "confidentiality", T_STR, confidentiality),
    K("ingest", "overdue_after", T_DURATION, overdue_after_us),
    K("watch", "dir", T_DIRLIST, watch_dirs),
    K("usb", "enabled", T_BOOL, usb_enabled),
    K("usb", "profiles_dir", T_PATH, usb_profiles_dir),
    K("usb", "set_clock", T_BOOL, usb_set_clock),
    K("usb", "max_concurrent", T_UINT, usb_max_concurrent),
    K("metrics", "file", T_PATH_OR_EMPTY, metrics_file),
    K("metrics", "interval", T_DURATION, metrics_interval_us),
    K("access", "export_root", T_PATH, export_root),
    K("retention", "ordinary", T_PERIOD, retention.ordinary_us),
    K("retention", "evidence_after_close", T_PERIOD, retention.evidence_after_close_us),
    K("retention", "categories", T_CATEGORIES, retention),
    K("disc", "drives", T_STR, disc_drives),
    K("disc", "media", T_STR, disc_media),
    K("disc", "copies", T_UINT, disc_copies),
    K("disc", "work_dir", T_PATH, disc_work_dir),
    K("disc", "xorriso", T_STR, disc_xorriso),
};

static char *strip(char *s)
{
        while (isspace((unsigned char)*s))
                s++;
        char *e = s + strlen(s);
        while (e > s && isspace((unsigned char)e[-1]))
                *--e = 0;
        return s;
}

/* The value part of a line: surrounding blanks removed; "double quotes" around it are removed (inside
 * them \" and \\ stand for " and \, and '#' is an ordinary character); outside quotes a '#' or ';' at
 * the start of the value or after a blank starts a comment. The result is written over s. NULL with
 * *why set when the quoting is broken. */
static char *parse_value(char *s, const char **why)
{
        s = strip(s);
        if (*s == '"') {
                char *o = s, *p = s + 1;
                for (; *p && *p != '"'; p++) {
                        if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
                                p++;
                        *o++ = *p;
                }
                if (*p != '"')
                        return *why = "a quote is not closed", NULL;
                *o = 0;
                char *rest = strip(p + 1);
                if (*rest && *rest != '#' && *rest != ';')
                        return *why = "text after the closing quote", NULL;
                return s;
        }
        for (char *p = s; *p; p++)
                if ((*p == '#' || *p == ';') && (p == s || isblank((unsigned char)p[-1]))) {
                        *p = 0;
                        break;
                }
        return strip(s);
}

static int apply(EvdConfig *c, const Key *k, const char *v, bool *dirs_reset)
{
        void *field = (char *)c + k->offset;
        switch (k->type) {
        case T_STR:
                return set_str(field, v);
        case T_PATH:
        case T_PATH_OR_EMPTY:
                if (v[0] != '/' && !(k->type == T_PATH_OR_EMPTY && v[0] == 0))
                        return -EINVAL;
                return set_str(field, v);
        case T_DURATION:
                return evd_parse_duration_us(v, field);
        case T_SIZE:
                return evd_parse_size_bytes(v, field);
        case T_BOOL:
                return evd_parse_bool(v, field);
        case T_PERIOD: /* "180d", "10y", "permanent" */
                return evd_retention_parse_period(v, field);
        case T_CATEGORIES: /* "criminal=permanent, traffic=3650d" */
                return evd_retention_parse_categories(field, v, NULL);
        case T_UINT: {
                char *end;
                errno = 0;
                unsigned long n = strtoul(v, &end, 10);
                if (v[0] < '0' || v[0] > '9' || errno || end == v || *end || n == 0 || n > 64)
                        return -EINVAL;
                *(unsigned *)field = (unsigned)n;
                return 0;
        }
        case T_DIRLIST:
                if (!*dirs_reset) { /* the file's list replaces the defaults */
                        for (unsigned i = 0; i < c->n_watch_dirs; i++)
                                free(c->watch_dirs[i]);
                        c->n_watch_dirs = 0;
                        *dirs_reset = true;
                }
                if (c->n_watch_dirs >= EVD_CONFIG_MAX_WATCH_DIRS)
                        return -E2BIG;
                if (v[0] != '/')
                        return -EINVAL;
                if (!(c->watch_dirs[c->n_watch_dirs] = strdup(v)))
                        return -ENOMEM;
                c->n_watch_dirs++;
                return 0;
        }
        return -EINVAL;
}

static bool confidentiality_valid(const char *s)
{
        return strcmp(s, "normal") == 0 || strcmp(s, "restricted") == 0 || strcmp(s, "secret") == 0;
}

int evd_config_load(EvdConfig *c, const char *path, bool must_exist, EvdError *err)
{
        /* A symlink is followed and any readable file will do (a link into a configuration-management
         * tree, /dev/null for the compiled defaults), as with fopen() before. */
        _cleanup_free_ char *buf = NULL;
        size_t len;
        int r = evd_small_file_read_flags(AT_FDCWD, path, EVD_CONFIG_FILE_MAX,
                                          EVD_SMALL_FILE_FOLLOW | EVD_SMALL_FILE_ANY_TYPE, &buf, &len);
        if (r == -ENOENT && !must_exist)
                return 0;
        if (r == -EFBIG)
                return evd_error_set(err, r, "configuration %s is larger than %u bytes", path,
                                     EVD_CONFIG_FILE_MAX);
        if (r == -EBADMSG)
                return evd_error_set(err, -EINVAL, "configuration %s contains a NUL byte", path);
        if (r < 0)
                return evd_error_set_errno(err, r, "cannot open configuration %s", path);

        /* INI: [section], key = value, '#' and ';' comment lines, CRLF accepted; what a value means
         * (quotes, trailing comments) is parse_value()'s. */
        EvdKvReader rd;
        EvdKvLine l;
        evd_kv_reader_init(&rd, buf, len, EVD_KV_STRIP | EVD_KV_COMMENTS | EVD_KV_CRLF | EVD_KV_INI);
        rd.max_line = EVD_CONFIG_LINE_MAX;
        bool seen[ELEMENTSOF(keys)] = {}, dirs_reset = false;
        while ((r = evd_kv_next(&rd, &l)) > 0) {
                if (!l.key) { /* [section] */
                        bool known = false;
                        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                                known |= strcmp(keys[i].section, l.section) == 0;
                        if (!known)
                                return evd_error_set(err, -EINVAL, "%s:%u: unknown section [%s]", path,
                                                     l.line, l.section);
                        continue;
                }
                const char *why = NULL, *name = l.key;
                char *value = parse_value(l.value, &why);
                if (!value)
                        return evd_error_set(err, -EINVAL, "%s:%u: %s", path, l.line, why);
                if (!l.section[0])
                        return evd_error_set(err, -EINVAL, "%s:%u: key '%s' outside a section", path, l.line,
                                             name);
                size_t i;
                for (i = 0; i < ELEMENTSOF(keys); i++)
                        if (strcmp(keys[i].section, l.section) == 0 && strcmp(keys[i].name, name) == 0)
                                break;
                if (i == ELEMENTSOF(keys))
                        return evd_error_set(err, -EINVAL, "%s:%u: unknown key '%s' in section [%s]", path,
                                             l.line, name, l.section);
                if (seen[i] && keys[i].type != T_DIRLIST)
                        return evd_error_set(err, -EINVAL, "%s:%u: key '%s' given twice", path, l.line,
                                             name);
                seen[i] = true;
                r = apply(c, &keys[i], value, &dirs_reset);
                if (r == -ENOMEM)
                        return r;
                if (r >= 0 && keys[i].offset == offsetof(EvdConfig, confidentiality) &&
                    !confidentiality_valid(value))
                        r = -EINVAL;
                if (r == -EINVAL &&
                    (keys[i].type == T_PATH || keys[i].type == T_DIRLIST || keys[i].type == T_PATH_OR_EMPTY))
                        return evd_error_set(err, r, "%s:%u: %s.%s must be an absolute path%s, not '%s'",
                                             path, l.line, l.section, name,
                                             keys[i].type == T_PATH_OR_EMPTY ? " (or empty)" : "", value);
                if (r < 0)
                        return evd_error_set(err, r, "%s:%u: invalid value '%s' for %s.%s", path, l.line,
                                             value, l.section, name);
        }
        if (r < 0)
                return evd_error_set(err, -EINVAL, "%s:%u: %s", path, rd.line, rd.why);
        return 0;
}
