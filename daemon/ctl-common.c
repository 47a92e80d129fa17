/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl-common.h"
#include "db-admin.h"
#include "evd-config.h"
#include "macro.h"
#include "manifest.h"
#include "output.h"
#include "spool.h"
#include "text.h"

/* ---- messages ----------------------------------------------------------------------------------- */

static void print_usage_line(FILE *f, const char *help)
{
        size_t n = strcspn(help, "\n");
        fprintf(f, "%.*s\n", (int)n, help);
}

int ctl_usage_error(Ctl *c, const char *help, const char *fmt, ...)
{
        va_list ap;
        char msg[2048];
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        fprintf(stderr, "evidockctl %s: ", c->cmd);
        evd_text_fputs(msg, stderr, 0); /* it may quote an argument or recorder text */
        fputc('\n', stderr);
        if (help)
                print_usage_line(stderr, help);
        fprintf(stderr, "Try 'evidockctl %s --help'.\n", c->cmd);
        return EXIT_USAGE;
}

int ctl_error(Ctl *c, const char *fmt, ...)
{
        va_list ap;
        char msg[2048];
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        fprintf(stderr, "evidockctl %s: ", c->cmd);
        evd_text_fputs(msg, stderr, 0); /* error messages quote recorder text */
        fputc('\n', stderr);
        return EXIT_ERROR;
}

/* ---- options ------------------------------------------------------------------------------------ */

int ctl_getopt(Ctl *c, int argc, char **argv, const struct option *opts, const char *help)
{
        /* ':' first: a missing argument is ':' (not '?'); getopt's own messages are off (they would
         * name argv[0], the command word, rather than evidockctl) */
        char shortopts[128] = ":";
        size_t n = 1;
        for (const struct option *o = opts; o->name && n + 3 < sizeof(shortopts); o++)
                if (!o->flag && o->val > ' ' && o->val < 0x7f) {
                        shortopts[n++] = (char)o->val;
                        if (o->has_arg == required_argument)
                                shortopts[n++] = ':';
                        else if (o->has_arg == optional_argument) {
                                shortopts[n++] = ':';
                                shortopts[n++] = ':';
                        }
                }
        shortopts[n] = 0;
        opterr = 0;
        for (;;) {
                int o = getopt_long(argc, argv, shortopts, opts, NULL);
                switch (o) {
                case -1:
                        return CTL_OPT_END;
                case 'h':
                        fputs(help, stdout);
                        return CTL_OPT_HELP_SHOWN;
                case 'j':
                        c->json = true;
                        continue;
                case ':':
                        ctl_usage_error(c, help, "option '%s' needs an argument", argv[optind - 1]);
                        return CTL_OPT_USAGE;
                case '?':
                        if (optopt)
                                ctl_usage_error(c, help, "unknown option '-%c'", optopt);
                        else
                                ctl_usage_error(c, help, "unknown option '%s'", argv[optind - 1]);
                        return CTL_OPT_USAGE;
                default:
                        return o;
                }
        }
}

int ctl_positional(Ctl *c, int argc, char **argv, int min, int max, const char *help)
{
        int n = argc - optind;
        if (n < min) {
                ctl_usage_error(c, help, "missing argument");
                return -1;
        }
        if (max >= 0 && n > max) {
                ctl_usage_error(c, help, "unexpected argument '%s'", argv[optind + max]);
                return -1;
        }
        return n;
}

int ctl_parse(Ctl *c, int argc, char **argv, const CtlOption *opts, int min, int max, const char *help)
{
        size_t n = 0;
        while (opts && opts[n].name)
                n++;
        _cleanup_free_ struct option *lo = calloc(n + 3, sizeof(*lo));
        if (!lo)
                return ctl_error(c, "out of memory");
        for (size_t i = 0; i < n; i++)
                lo[i] = (struct option){opts[i].name, opts[i].text ? required_argument : no_argument, NULL,
                                        opts[i].key};
        lo[n] = (struct option)CTL_OPTION_JSON;
        lo[n + 1] = (struct option)CTL_OPTION_HELP;
        int o;
        while ((o = ctl_getopt(c, argc, argv, lo, help)) > 0)
                for (size_t i = 0; i < n; i++)
                        if (opts[i].key == o) {
                                if (opts[i].flag)
                                        *opts[i].flag = true;
                                if (opts[i].text)
                                        *opts[i].text = optarg;
                                break;
                        }
        if (o < 0)
                return ctl_opt_exit(o);
        return ctl_positional(c, argc, argv, min, max, help) < 0 ? EXIT_USAGE : -1;
}

int ctl_parse_plain(Ctl *c, int argc, char **argv, int min, int max, const char *help)
{
        return ctl_parse(c, argc, argv, NULL, min, max, help);
}

int ctl_parse_id(const char *s, int64_t *ret)
{
        char *end = NULL;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || end == s || *end || v < 1)
                return -EINVAL;
        *ret = v;
        return 0;
}

int ctl_dispatch(Ctl *c, const CtlSubcommand *subs, size_t n_subs, int argc, char **argv)
{
        const char *group = argv[0];
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
                printf("Usage: evidockctl %s COMMAND [OPTIONS]\n\nCommands:\n", group);
                for (size_t i = 0; i < n_subs; i++)
                        printf("  %-12s %s\n", subs[i].name, subs[i].summary);
                printf("\n'evidockctl %s COMMAND --help' describes each. See evidockctl(1).\n", group);
                return EXIT_CLEAN;
        }
        if (argc >= 2 && argv[1][0] != '-')
                for (size_t i = 0; i < n_subs; i++)
                        if (strcmp(argv[1], subs[i].name) == 0) {
                                snprintf(c->cmd, sizeof(c->cmd), "%s %s", group, subs[i].name);
                                optind = 0; /* a fresh getopt scan of the subcommand's arguments */
                                return subs[i].run(c, argc - 1, argv + 1);
                        }
        fprintf(stderr, "evidockctl %s: %s%s%s\nUsage: evidockctl %s ", group,
                argc < 2 ? "a command is expected" : "unknown command '", argc < 2 ? "" : argv[1],
                argc < 2 ? "" : "'", group);
        for (size_t i = 0; i < n_subs; i++)
                fprintf(stderr, "%s%s", i ? "|" : "", subs[i].name);
        fprintf(stderr, " ...\nTry 'evidockctl %s --help'.\n", group);
        return EXIT_USAGE;
}

/* ---- configuration, database, spool ------------------------------------------------------------- */

int ctl_config(Ctl *c)
{
        if (c->cfg_loaded)
                return 0;
        EvdError err = {};
        int r = evd_config_init(&c->cfg);
        if (r < 0)
                return ctl_error(c, "out of memory"), r;
        const char *path = c->config_path ? c->config_path : getenv("EVIDOCK_CONFIG");
        if (path && !*path)
                path = NULL;
        r = evd_config_load(&c->cfg, path ? path : EVD_DEFAULT_CONFIG_FILE, path != NULL, &err);
        if (r < 0) {
                fprintf(stderr, "evidockctl: %s\n", evd_error_message(&err, r));
                evd_config_clear(&c->cfg);
                return r;
        }
        c->cfg_loaded = true;
        const char *db = c->db_override ? c->db_override : getenv("EVIDOCK_DATABASE");
        if (db && *db) {
                char *n = strdup(db);
                if (!n)
                        return -ENOMEM;
                free(c->cfg.database_url);
                c->cfg.database_url = n;
        }
        if (c->store_override) {
                if (c->store_override[0] != '/') {
                        fprintf(stderr, "evidockctl: --store needs an absolute path, not '%s'\n",
                                c->store_override);
                        return -EINVAL;
                }
                char *n = strdup(c->store_override);
                if (!n)
                        return -ENOMEM;
                free(c->cfg.store_root);
                c->cfg.store_root = n;
        }
        return 0;
}

int ctl_open_db(Ctl *c, EvdDb **ret)
{
        int r = ctl_config(c);
        if (r < 0)
                return r;
        EvdError err = {};
        r = evd_db_open(c->cfg.database_url, ret, &err);
        if (r < 0 && evd_spool_db_unreachable(r))
                /* only what evidock records unattended is spooled (record.h); a command is not: a person
                 * runs it again */
                fprintf(stderr,
                        "evidockctl %s: the evidence database is unreachable (%s): nothing was done and "
                        "nothing was recorded; commands are not spooled, run it again when the database is "
                        "back\n",
                        c->cmd, evd_error_message(&err, r));
        else if (r < 0 && evd_db_login_refused(r))
                /* a configuration error, not an outage: say what was refused and where */
                fprintf(stderr, "evidockctl %s: %s; nothing was done (fix [database] url)\n", c->cmd,
                        evd_error_message(&err, r));
        else if (r < 0)
                fprintf(stderr, "evidockctl %s: cannot open the evidence database: %s\n", c->cmd,
                        evd_error_message(&err, r));
        return r;
}

EvdSpool *ctl_open_spool(Ctl *c, bool quiet)
{
        if (!c->cfg.spool_dir || !c->cfg.spool_dir[0])
                return NULL;
        EvdSpool *s = NULL;
        EvdError err = {};
        int r = evd_spool_open(c->cfg.spool_dir, &s, &err);
        if (r < 0 && !quiet)
                fprintf(stderr, "evidockctl %s: spool unusable: %s\n", c->cmd, evd_error_message(&err, r));
        return s;
}

int ctl_replay_spool(Ctl *c, EvdSpool *s, EvdDb *db, bool quiet)
{
        EvdSpoolReplay rep = {};
        EvdError err = {};
        int r = evd_spool_replay(s, db, &rep, &err);
        ctl_replay_report(c, evd_spool_dir(s), &rep, r, &err, quiet);
        return r;
}

void ctl_replay_report(Ctl *c, const char *spool_dir, const EvdSpoolReplay *rep, int r, const EvdError *err,
                       bool quiet)
{
        if (rep->replayed || rep->already || rep->rejected || !quiet)
                fprintf(stderr,
                        "spool %s: replayed %u entries, %u already recorded, %u rejected, %u waiting%s%s\n",
                        spool_dir, rep->replayed, rep->already, rep->rejected, rep->waiting,
                        rep->other_db ? " (some for another database)" : "",
                        r == -EBUSY ? " (another replay is running)" : "");
        if (rep->rejected)
                fprintf(stderr,
                        "evidockctl %s: %u spool entries rejected, kept in %s/rejected with the reason; "
                        "last: %s\n",
                        c->cmd, rep->rejected, spool_dir, rep->last_rejected);
        if (r < 0 && r != -EBUSY)
                fprintf(stderr, "evidockctl %s: spool replay stopped: %s\n", c->cmd,
                        evd_error_message(err, r));
}

int ctl_check_device(Ctl *c, EvdDb *db, const char *device_id)
{
        EvdError err = {};
        _cleanup_free_ char *similar = NULL;
        int r = evd_db_device_known(db, device_id, &similar, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        if (r > 0)
                return 0;
        if (similar)
                return ctl_error(
                    c, "no recorder '%s' is known; device IDs are case-sensitive: did you mean '%s'?",
                    device_id, similar);
        return ctl_error(c, "no recorder '%s' is known (never enrolled, never docked)%s", device_id,
                         !evd_device_id_valid(device_id) ? "; a device ID is 1 to 15 letters or digits"
                                                         : "");
}

/* ---- time arguments ----------------------------------------------------------------------------- */

static int64_t local_midnight_us(int64_t t_us, int days_back)
{
        time_t t = (time_t)(t_us / 1000000);
        struct tm tm;
        localtime_r(&t, &tm);
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        tm.tm_mday -= days_back;
        tm.tm_isdst = -1;
        return (int64_t)mktime(&tm) * 1000000;
}

int ctl_parse_time(const char *s, int64_t now, int64_t *ret_us)
{
        if (!s || !*s)
                return -EINVAL;
        if (strcmp(s, "now") == 0)
                return *ret_us = now, 0;
        if (strcmp(s, "today") == 0)
                return *ret_us = local_midnight_us(now, 0), 0;
        if (strcmp(s, "yesterday") == 0)
                return *ret_us = local_midnight_us(now, 1), 0;
        /* a duration needs its unit here: a bare number is neither a time nor clearly "ago" */
        int64_t ago;
        if (s[strlen(s) - 1] >= 'a' && evd_parse_duration_us(s, &ago) == 0)
                return *ret_us = now - ago, 0;
        size_t len = strlen(s);
        if (len > 1 && (s[len - 1] == 'Z' || s[len - 1] == 'z') && len < 64) {
                char buf[72];
                snprintf(buf, sizeof(buf), "%.*s+00:00", (int)(len - 1), s);
                int tz;
                if (evd_time_parse(buf, ret_us, &tz) == 0)
                        return 0;
                return -EINVAL;
        }
        int tz;
        if (evd_time_parse(s, ret_us, &tz) == 0)
                return 0;
        static const char *const formats[] = {"%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M",
                                              "%Y-%m-%dT%H:%M", "%Y-%m-%d"};
        for (size_t i = 0; i < ELEMENTSOF(formats); i++) {
                struct tm tm = {};
                const char *end = strptime(s, formats[i], &tm);
                if (!end || *end)
                        continue;
                tm.tm_isdst = -1;
                time_t t = mktime(&tm);
                if (t == (time_t)-1)
                        return -EINVAL;
                return *ret_us = (int64_t)t * 1000000, 0;
        }
        return -EINVAL;
}

/* ---- text tables -------------------------------------------------------------------------------- */

/* East Asian Wide and Fullwidth ranges (Unicode 15, UAX #11), plus the common emoji blocks. */
static bool codepoint_wide(uint32_t cp)
{
        static const uint32_t wide[][2] = {
            {0x1100, 0x115f},   {0x231a, 0x231b},   {0x2329, 0x232a},   {0x23e9, 0x23ec},
            {0x23f0, 0x23f0},   {0x23f3, 0x23f3},   {0x25fd, 0x25fe},   {0x2614, 0x2615},
            {0x2648, 0x2653},   {0x267f, 0x267f},   {0x2693, 0x2693},   {0x26a1, 0x26a1},
            {0x26aa, 0x26ab},   {0x26bd, 0x26be},   {0x26c4, 0x26c5},   {0x26ce, 0x26ce},
            {0x26d4, 0x26d4},   {0x26ea, 0x26ea},   {0x26f2, 0x26f3},   {0x26f5, 0x26f5},
            {0x26fa, 0x26fa},   {0x26fd, 0x26fd},   {0x2705, 0x2705},   {0x270a, 0x270b},
            {0x2728, 0x2728},   {0x274c, 0x274c},   {0x274e, 0x274e},   {0x2753, 0x2755},
            {0x2757, 0x2757},   {0x2795, 0x2797},   {0x27b0, 0x27b0},   {0x27bf, 0x27bf},
            {0x2b1b, 0x2b1c},   {0x2b50, 0x2b50},   {0x2b55, 0x2b55},   {0x2e80, 0x303e},
            {0x3041, 0x33ff},   {0x3400, 0x4dbf},   {0x4e00, 0x9fff},   {0xa000, 0xa4cf},
            {0xa960, 0xa97f},   {0xac00, 0xd7a3},   {0xf900, 0xfaff},   {0xfe10, 0xfe19},
            {0xfe30, 0xfe6f},   {0xff00, 0xff60},   {0xffe0, 0xffe6},   {0x16fe0, 0x16fe4},
            {0x17000, 0x18cd5}, {0x1b000, 0x1b2ff}, {0x1f004, 0x1f004}, {0x1f0cf, 0x1f0cf},
            {0x1f18e, 0x1f18e}, {0x1f191, 0x1f19a}, {0x1f200, 0x1f251}, {0x1f300, 0x1f64f},
            {0x1f680, 0x1f6ff}, {0x1f7e0, 0x1f7eb}, {0x1f90c, 0x1f9ff}, {0x1fa70, 0x1faff},
            {0x20000, 0x2fffd}, {0x30000, 0x3fffd},
        };
        for (size_t i = 0; i < ELEMENTSOF(wide); i++)
                if (cp >= wide[i][0] && cp <= wide[i][1])
                        return true;
        return false;
}

static bool codepoint_zero_width(uint32_t cp)
{
        return (cp >= 0x0300 && cp <= 0x036f) || (cp >= 0x1ab0 && cp <= 0x1aff) ||
               (cp >= 0x1dc0 && cp <= 0x1dff) || (cp >= 0x200b && cp <= 0x200f) ||
               (cp >= 0x20d0 && cp <= 0x20ff) || (cp >= 0xfe00 && cp <= 0xfe0f) ||
               (cp >= 0xfe20 && cp <= 0xfe2f) || cp == 0xfeff || (cp >= 0xe0100 && cp <= 0xe01ef);
}

/* Decodes one UTF-8 sequence at s; returns its length (0 if invalid). */
static size_t utf8_decode(const unsigned char *s, uint32_t *cp)
{
        if (s[0] < 0x80)
                return *cp = s[0], 1;
        size_t n = (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
        if (!n)
                return 0;
        uint32_t v = s[0] & (0x7f >> n);
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                v = v << 6 | (s[i] & 0x3f);
        }
        static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
        if (v < min[n] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
                return 0;
        return *cp = v, n;
}

size_t ctl_display_width(const char *s)
{
        size_t w = 0;
        const unsigned char *p = (const unsigned char *)s;
        while (*p) {
                uint32_t cp;
                size_t n = utf8_decode(p, &cp);
                if (!n) {
                        w++, p++;
                        continue;
                }
                p += n;
                w += codepoint_zero_width(cp) ? 0 : codepoint_wide(cp) ? 2 : 1;
        }
        return w;
}

struct CtlTable {
        unsigned n_cols;
        char **cells; /* row-major, row 0 = headers */
        size_t n_rows, allocated;
        bool right[16];
};

#define CTL_TABLE_MAX_COLS 16u

CtlTable *ctl_table_new(unsigned n_cols, const char *const headers[])
{
        if (n_cols == 0 || n_cols > CTL_TABLE_MAX_COLS)
                return NULL;
        CtlTable *t = calloc(1, sizeof(*t));
        if (!t)
                return NULL;
        t->n_cols = n_cols;
        if (ctl_table_add(t, headers) < 0) {
                free(t);
                return NULL;
        }
        return t;
}

void ctl_table_right(CtlTable *t, unsigned col)
{
        if (col < t->n_cols)
                t->right[col] = true;
}

int ctl_table_add(CtlTable *t, const char *const cells[])
{
        if (t->n_rows == t->allocated) {
                size_t a = t->allocated ? 2 * t->allocated : 16;
                char **n = reallocarray(t->cells, a * t->n_cols, sizeof(char *));
                if (!n)
                        return -ENOMEM;
                t->cells = n;
                t->allocated = a;
        }
        char **row = t->cells + t->n_rows * t->n_cols;
        for (unsigned i = 0; i < t->n_cols; i++) {
                /* cells hold database and recorder text: shown escaped (lib/text.h) */
                row[i] = evd_text_escape_dup(cells[i] ? cells[i] : "-", 0);
                if (!row[i]) {
                        while (i > 0)
                                free(row[--i]);
                        return -ENOMEM;
                }
        }
        t->n_rows++;
        return 0;
}

int ctl_table_addf(CtlTable *t, unsigned n, ...)
{
        const char *cells[CTL_TABLE_MAX_COLS] = {};
        va_list ap;
        va_start(ap, n);
        for (unsigned i = 0; i < n && i < CTL_TABLE_MAX_COLS; i++)
                cells[i] = va_arg(ap, const char *);
        va_end(ap);
        return n == t->n_cols ? ctl_table_add(t, cells) : -EINVAL;
}

size_t ctl_table_rows(const CtlTable *t)
{
        return t ? t->n_rows - 1 : 0;
}

void ctl_table_print(const CtlTable *t, FILE *f)
{
        size_t width[CTL_TABLE_MAX_COLS] = {};
        for (size_t r = 0; r < t->n_rows; r++)
                for (unsigned i = 0; i < t->n_cols; i++) {
                        size_t w = ctl_display_width(t->cells[r * t->n_cols + i]);
                        if (w > width[i])
                                width[i] = w;
                }
        for (size_t r = 0; r < t->n_rows; r++) {
                for (unsigned i = 0; i < t->n_cols; i++) {
                        const char *s = t->cells[r * t->n_cols + i];
                        size_t pad = width[i] - ctl_display_width(s);
                        bool last = i + 1 == t->n_cols;
                        if (t->right[i])
                                fprintf(f, "%*s%s", (int)pad, "", s);
                        else
                                fprintf(f, "%s%*s", s, last ? 0 : (int)pad, "");
                        fputs(last ? "\n" : "  ", f);
                }
        }
}

void ctl_table_free(CtlTable *t)
{
        if (!t)
                return;
        for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
                free(t->cells[i]);
        free(t->cells);
        free(t);
}

/* ---- JSON --------------------------------------------------------------------------------------- */

json_object *ctl_json_string(const char *s)
{
        if (!s)
                return NULL;
        size_t len = strlen(s);
        const unsigned char *p = (const unsigned char *)s;
        bool valid = true;
        for (size_t i = 0; i < len;) {
                uint32_t cp;
                size_t n = utf8_decode(p + i, &cp);
                if (!n) {
                        valid = false;
                        break;
                }
                i += n;
        }
        if (valid)
                return json_object_new_string_len(s, (int)len);
        _cleanup_free_ char *fixed = malloc(3 * len + 1);
        if (!fixed)
                return NULL;
        size_t o = 0;
        for (size_t i = 0; i < len;) {
                uint32_t cp;
                size_t n = utf8_decode(p + i, &cp);
                if (n) {
                        memcpy(fixed + o, s + i, n);
                        o += n, i += n;
                } else {
                        memcpy(fixed + o, "\xef\xbf\xbd", 3);
                        o += 3, i++;
                }
        }
        return json_object_new_string_len(fixed, (int)o);
}

json_object *ctl_json_time(int64_t utc_us, int tz_minutes)
{
        char t[48];
        return json_object_new_string(format_time_tz(utc_us, tz_minutes, t, sizeof(t)));
}

json_object *ctl_json_time_local(int64_t utc_us)
{
        char t[48];
        return json_object_new_string(format_time_local(utc_us, t, sizeof(t)));
}

int ctl_json_print(json_object *o)
{
        const char *s =
            json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s)
                return -ENOMEM;
        if (fputs(s, stdout) < 0 || fputc('\n', stdout) < 0)
                return -EIO;
        return 0;
}

/* ---- rows of the evidence database as JSON (schema in evidockctl(1)) ---------------------------- */

json_object *ctl_json_finding_row(const EvdDbFindingRow *x)
{
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "verdict", ctl_json_string(x->verdict));
        if (x->has_seq)
                json_object_object_add(o, "seq", json_object_new_uint64(x->seq));
        json_object_object_add(o, "expected", ctl_json_string(x->expected));
        json_object_object_add(o, "found", ctl_json_string(x->found));
        json_object_object_add(o, "detail", ctl_json_string(x->detail));
        return o;
}

json_object *ctl_json_file_row(const EvdDbFileRow *f)
{
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "id", json_object_new_int64(f->id));
        json_object_object_add(o, "docking_id", json_object_new_int64(f->docking_id));
        json_object_object_add(o, "device_id", ctl_json_string(f->device_id));
        json_object_object_add(o, "officer_id", ctl_json_string(f->officer_id));
        json_object_object_add(o, "seq", f->has_seq ? json_object_new_uint64(f->seq) : NULL);
        json_object_object_add(o, "session", f->has_seq ? json_object_new_uint64(f->session) : NULL);
        json_object_object_add(o, "method", ctl_json_string(f->method));
        json_object_object_add(o, "case_number", ctl_json_string(f->case_number));
        json_object_object_add(o, "recorded_start",
                               f->has_recorded ? ctl_json_time(f->recorded_start_us, f->tz_minutes) : NULL);
        json_object_object_add(o, "recorded_end",
                               f->has_recorded ? ctl_json_time(f->recorded_end_us, f->tz_minutes) : NULL);
        json_object_object_add(o, "ingested_at", ctl_json_time_local(f->ingested_us));
        json_object_object_add(o, "stored_at", ctl_json_time_local(f->stored_us));
        json_object_object_add(o, "within_24h",
                               f->has_recorded ? json_object_new_boolean(f->within_24h) : NULL);
        json_object_object_add(o, "size", json_object_new_uint64(f->size));
        json_object_object_add(o, "sha256", ctl_json_string(f->sha256));
        json_object_object_add(o, "record_hash", ctl_json_string(f->record_hash[0] ? f->record_hash : NULL));
        json_object_object_add(o, "source_path", ctl_json_string(f->source_path));
        json_object_object_add(o, "clock_offset_ms",
                               f->has_clock_offset ? json_object_new_int64(f->clock_offset_us / 1000)
                                                   : NULL);
        json_object_object_add(o, "original_path", ctl_json_string(f->original_path));
        json_object_object_add(o, "archive_path", ctl_json_string(f->archive_path));
        json_object_object_add(o, "archive_sha256",
                               ctl_json_string(f->archive_sha256[0] ? f->archive_sha256 : NULL));
        json_object_object_add(o, "verdict", ctl_json_string(f->verdict));
        json_object_object_add(o, "confidentiality", ctl_json_string(f->confidentiality));
        json_object_object_add(o, "retention_class", ctl_json_string(f->retention_class));
        json_object *findings = json_object_new_array();
        json_object_object_add(o, "findings", findings);
        for (size_t i = 0; findings && i < f->n_findings; i++)
                json_object_array_add(findings, ctl_json_finding_row(&f->findings[i]));
        return o;
}
