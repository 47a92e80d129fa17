/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidockctl log: one line (or JSON object) per ingested file. */
#include <inttypes.h>
#include <string.h>

#include "clock.h"
#include "ctl-case-column.h"
#include "ctl-common.h"
#include "ctl-disc-holdings.h"
#include "macro.h"
#include "output.h"
#include "types.h"

static const char help[] =
    "Usage: evidockctl log [--since TIME] [--until TIME] [--today] [--device ID] [--late] [--findings]\n"
    "                      [--columns LIST] [--sort [-]COLUMN[,...]] [--format text|json] [--json]\n"
    "\n"
    "The ingest log, oldest ingested first: a table like the station listing (file name, recording time,\n"
    "type, size, device, duration, officer, case, state; the case is the current one, the recorder's\n"
    "beside it when they differ). With --json one JSON object per line (schema in\n"
    "evidockctl(1)); --columns line gives the older one-line-per-file form with findings indented below.\n"
    "\n"
    "  -s, --since TIME     files ingested at or after TIME: 2026-11-22T08:00:00Z, 2026-11-22 08:00,\n"
    "                       2026-11-22, today, yesterday, or a duration ago (24h, 7d)\n"
    "  -u, --until TIME     files ingested before TIME (the same forms)\n"
    "      --today          files ingested since local midnight\n"
    "  -d, --device ID      only this recorder (an unknown one is an error)\n"
    "      --late           only files not shown to be ingested within 24 h of recording\n"
    "      --findings       only files whose verdict is not INTACT or that have findings\n"
    "  -c, --columns LIST   text columns, comma-separated, in order: name recorded ingested type size\n"
    "                       device duration officer case state seq sha256 path (default\n"
    "                       name,recorded,type,size,device,duration,officer,case,state), or line\n"
    "  -o, --sort KEYS      sort by these columns, '-' before one for descending (--sort -size,recorded);\n"
    "                       default: ingest time. Applies to --json too\n"
    "  -f, --format FORMAT  text (default) or json (--columns with json is a usage error)\n"
    "      --json           the same as --format json\n"
    "  -h, --help           this help\n";

static int print_file_json(const EvdDbFileRow *f, const CtlCaseColumn *cases, size_t row,
                           const CtlDiscHoldings *discs)
{
        _cleanup_(json_object_putp) json_object *o = ctl_json_file_row(f);
        ctl_case_column_json(cases, row, o);
        if (o)
                ctl_disc_holdings_json(discs, f->id, o);
        return o ? ctl_json_print(o) : -ENOMEM;
}

static void print_file_text(const EvdDbFileRow *f, const CtlCaseColumn *cases, size_t row,
                            const CtlDiscHoldings *discs)
{
        char kase[200];
        char t1[48], t2[48];
        char seq[32] = "-";
        if (f->has_seq)
                snprintf(seq, sizeof(seq), "%" PRIu64, f->seq);
        char clock[32] = "clock ?";
        if (f->has_clock_offset)
                snprintf(clock, sizeof(clock), "clock %+.1fs", (double)f->clock_offset_us / 1e6);
        printf("%s  %s  officer %s  %s  seq %-5s %-5s case %-14s rec %s  %s  %-17s %.12s  %s\n",
               format_time_local(f->ingested_us, t1, sizeof(t1)), f->device_id, strna(f->officer_id), clock,
               seq, f->method, ctl_case_column_text(cases, row, f, kase, sizeof(kase)),
               f->has_recorded ? format_time_tz(f->recorded_start_us, f->tz_minutes, t2, sizeof(t2))
                               : "unknown",
               f->has_recorded ? (f->within_24h ? "in-24h" : "LATE  ") : "?     ", f->verdict, f->sha256,
               f->archive_path ? f->archive_path : f->original_path);
        for (size_t i = 0; i < f->n_findings; i++)
                printf("    finding %s: %s%s%s%s%s\n", f->findings[i].verdict,
                       text_shown(strna(f->findings[i].detail)), f->findings[i].expected ? " expected " : "",
                       f->findings[i].expected ? text_shown(f->findings[i].expected) : "",
                       f->findings[i].found ? " found " : "",
                       f->findings[i].found ? text_shown(f->findings[i].found) : "");
        ctl_disc_holdings_print(discs, f->id, "    ");
}

/* ---- the station listing (issue 12.4): chosen columns, sort keys, a CJK-aware table ------------- */

typedef enum {
        COL_NAME,
        COL_RECORDED,
        COL_INGESTED,
        COL_TYPE,
        COL_SIZE,
        COL_DEVICE,
        COL_DURATION,
        COL_OFFICER,
        COL_CASE,
        COL_STATE,
        COL_SEQ,
        COL_SHA256,
        COL_PATH,
        _COL_MAX,
} LogColumn;

static const struct {
        const char *name;
        const char *header;
        bool right;
} columns[_COL_MAX] = {
    [COL_NAME] = {"name", "NAME", false},
    [COL_RECORDED] = {"recorded", "RECORDED", false},
    [COL_INGESTED] = {"ingested", "INGESTED", false},
    [COL_TYPE] = {"type", "TYPE", false},
    [COL_SIZE] = {"size", "SIZE", true},
    [COL_DEVICE] = {"device", "DEVICE", false},
    [COL_DURATION] = {"duration", "DURATION", true},
    [COL_OFFICER] = {"officer", "OFFICER", false},
    [COL_CASE] = {"case", "CASE", false},
    [COL_STATE] = {"state", "STATE", false},
    [COL_SEQ] = {"seq", "SEQ", true},
    [COL_SHA256] = {"sha256", "SHA256", false},
    [COL_PATH] = {"path", "PATH", false},
};

/* Reads like the station software's listing: file, capture time, type, size, device, duration,
 * officer, case, upload state. */
static const char default_columns[] = "name,recorded,type,size,device,duration,officer,case,state";

#define MAX_LIST 32

static int column_from_string(const char *s, size_t len)
{
        for (int i = 0; i < _COL_MAX; i++)
                if (strlen(columns[i].name) == len && strncmp(columns[i].name, s, len) == 0)
                        return i;
        return -EINVAL;
}

/* Parses "a,b,-c" into column ids (desc[] set for a leading '-' when allow_desc). Returns the count, or
 * -EINVAL with *ret_bad pointing at the offending item. */
static int parse_column_list(const char *list, bool allow_desc, int *ret_cols, bool *ret_desc,
                             const char **ret_bad)
{
        int n = 0;
        const char *p = list;
        for (;;) {
                const char *e = strchrnul(p, ',');
                const char *item = p;
                bool desc = false;
                if (allow_desc && (*item == '-' || *item == '+')) {
                        desc = *item == '-';
                        item++;
                }
                int col = column_from_string(item, (size_t)(e - item));
                if (col < 0 || n >= MAX_LIST) {
                        *ret_bad = p;
                        return -EINVAL;
                }
                ret_cols[n] = col;
                if (ret_desc)
                        ret_desc[n] = desc;
                n++;
                if (!*e)
                        break;
                p = e + 1;
        }
        return n;
}

static const char *last_component(const char *path)
{
        if (!path)
                return NULL;
        const char *s = strrchr(path, '/');
        return s ? s + 1 : path;
}

static bool file_has_duration(const EvdDbFileRow *f)
{
        return f->has_recorded && f->recorded_end_us >= f->recorded_start_us;
}

static int64_t file_duration_us(const EvdDbFileRow *f)
{
        return file_has_duration(f) ? f->recorded_end_us - f->recorded_start_us : -1;
}

static bool file_quarantined(const EvdDbFileRow *f)
{
        int v = evd_verdict_from_string(f->verdict);
        return v >= 0 && evd_verdict_quarantines((EvdVerdict)v);
}

/* The text of one cell; NULL shows as "-". buf holds at least 160 bytes. */
static const char *cell_text(const EvdDbFileRow *f, LogColumn col, const CtlCaseColumn *cases, size_t row,
                             char *buf, size_t n)
{
        switch (col) {
        case COL_NAME:
                return f->source_path ? text_shown(last_component(f->source_path)) : NULL;
        case COL_RECORDED:
                return f->has_recorded ? format_time_tz(f->recorded_start_us, f->tz_minutes, buf, n) : NULL;
        case COL_INGESTED:
                return format_time_local(f->ingested_us, buf, n);
        case COL_TYPE:
                return f->method;
        case COL_SIZE:
                format_size(f->size, buf, n);
                return buf;
        case COL_DEVICE:
                return f->device_id;
        case COL_DURATION: {
                if (!file_has_duration(f))
                        return NULL;
                int64_t s = file_duration_us(f) / 1000000;
                snprintf(buf, n, "%" PRId64 ":%02d:%02d", s / 3600, (int)(s / 60 % 60), (int)(s % 60));
                return buf;
        }
        case COL_OFFICER:
                return f->officer_id ? text_shown(f->officer_id) : NULL;
        case COL_CASE:
                return ctl_case_column_text(cases, row, f, buf, n);
        case COL_STATE: {
                int o = snprintf(buf, n, "%s", f->verdict);
                if (!f->within_24h)
                        o += snprintf(buf + o, n - (size_t)o, " LATE");
                if (file_quarantined(f))
                        o += snprintf(buf + o, n - (size_t)o, " quarantined");
                if (f->n_findings > 0)
                        snprintf(buf + o, n - (size_t)o, " (%zu finding%s)", f->n_findings,
                                 f->n_findings == 1 ? "" : "s");
                return buf;
        }
        case COL_SEQ:
                if (!f->has_seq)
                        return NULL;
                snprintf(buf, n, "%" PRIu64, f->seq);
                return buf;
        case COL_SHA256:
                return f->sha256;
        case COL_PATH:
                return f->archive_path ? f->archive_path : f->original_path;
        default:
                return NULL;
        }
}

static int cmp_str(const char *a, const char *b)
{
        if (!a || !b)
                return !!a - !!b; /* missing first */
        return strcmp(a, b);
}

static int cmp_i64(int64_t a, int64_t b)
{
        return (a > b) - (a < b);
}

static int cmp_column(const EvdDbFileRow *a, const EvdDbFileRow *b, LogColumn col)
{
        switch (col) {
        case COL_NAME:
                return cmp_str(last_component(a->source_path), last_component(b->source_path));
        case COL_RECORDED:
                if (a->has_recorded != b->has_recorded)
                        return a->has_recorded - b->has_recorded;
                return cmp_i64(a->recorded_start_us, b->recorded_start_us);
        case COL_INGESTED:
                return cmp_i64(a->ingested_us, b->ingested_us);
        case COL_TYPE:
                return cmp_str(a->method, b->method);
        case COL_SIZE:
                return (a->size > b->size) - (a->size < b->size);
        case COL_DEVICE:
                return cmp_str(a->device_id, b->device_id);
        case COL_DURATION:
                return cmp_i64(file_duration_us(a), file_duration_us(b));
        case COL_OFFICER:
                return cmp_str(a->officer_id, b->officer_id);
        case COL_CASE:
                return cmp_str(a->case_number, b->case_number);
        case COL_STATE: {
                int r = cmp_str(a->verdict, b->verdict);
                return r ? r : (int)a->within_24h - (int)b->within_24h;
        }
        case COL_SEQ:
                if (a->has_seq != b->has_seq)
                        return a->has_seq - b->has_seq;
                return (a->seq > b->seq) - (a->seq < b->seq);
        case COL_SHA256:
                return strcmp(a->sha256, b->sha256);
        case COL_PATH:
                return cmp_str(a->archive_path ? a->archive_path : a->original_path,
                               b->archive_path ? b->archive_path : b->original_path);
        default:
                return 0;
        }
}

typedef struct SortSpec {
        int cols[MAX_LIST];
        bool desc[MAX_LIST];
        int n;
} SortSpec;

/* qsort has no context argument; the comparator reads the spec through this pointer (one sort at a
 * time in a single-threaded tool). */
static const SortSpec *sort_spec;

static int cmp_files(const void *x, const void *y)
{
        const EvdDbFileRow *a = x, *b = y;
        for (int i = 0; i < sort_spec->n; i++) {
                int r = cmp_column(a, b, (LogColumn)sort_spec->cols[i]);
                if (r)
                        return sort_spec->desc[i] ? -r : r;
        }
        /* the query's order: ingest time, then id */
        int r = cmp_i64(a->ingested_us, b->ingested_us);
        return r ? r : cmp_i64(a->id, b->id);
}

static int print_table(const EvdDbLog *log, const int *cols, int n_cols, const CtlCaseColumn *cases)
{
        const char *headers[MAX_LIST];
        for (int i = 0; i < n_cols; i++)
                headers[i] = columns[cols[i]].header;
        _cleanup_(ctl_table_freep) CtlTable *t = ctl_table_new((unsigned)n_cols, headers);
        if (!t)
                return -ENOMEM;
        for (int i = 0; i < n_cols; i++)
                if (columns[cols[i]].right)
                        ctl_table_right(t, (unsigned)i);
        char bufs[MAX_LIST][160];
        for (size_t r = 0; r < log->n_files; r++) {
                const char *cells[MAX_LIST];
                for (int i = 0; i < n_cols; i++)
                        cells[i] = cell_text(&log->files[r], (LogColumn)cols[i], cases, r, bufs[i],
                                             sizeof(bufs[i]));
                if (ctl_table_add(t, cells) < 0)
                        return -ENOMEM;
        }
        ctl_table_print(t, stdout);
        return 0;
}

static int log_run(Ctl *c, int argc, char **argv)
{
        static const struct option opts[] = {{"since", required_argument, NULL, 's'},
                                             {"until", required_argument, NULL, 'u'},
                                             {"device", required_argument, NULL, 'd'},
                                             {"format", required_argument, NULL, 'f'},
                                             {"today", no_argument, NULL, 'T'},
                                             {"late", no_argument, NULL, 'L'},
                                             {"findings", no_argument, NULL, 'F'},
                                             {"columns", required_argument, NULL, 'c'},
                                             {"sort", required_argument, NULL, 'o'},
                                             CTL_OPTION_JSON,
                                             CTL_OPTION_HELP,
                                             {}};
        EvdDbLogFilter filter = {};
        const char *columns_arg = NULL;
        SortSpec sort = {};
        bool today = false;
        int o;
        while ((o = ctl_getopt(c, argc, argv, opts, help)) > 0) {
                switch (o) {
                case 's':
                        if (ctl_parse_time(optarg, evd_clock_wall_us(), &filter.since_us) < 0)
                                return ctl_usage_error(c, help, "cannot parse time '%s'", optarg);
                        filter.has_since = true;
                        break;
                case 'u':
                        if (ctl_parse_time(optarg, evd_clock_wall_us(), &filter.until_us) < 0)
                                return ctl_usage_error(c, help, "cannot parse time '%s'", optarg);
                        filter.has_until = true;
                        break;
                case 'd':
                        filter.device_id = optarg;
                        break;
                case 'T':
                        today = true;
                        break;
                case 'L':
                        filter.late_only = true;
                        break;
                case 'F':
                        filter.findings_only = true;
                        break;
                case 'c':
                        columns_arg = optarg;
                        break;
                case 'o': {
                        const char *bad = NULL;
                        int n = parse_column_list(optarg, true, sort.cols, sort.desc, &bad);
                        if (n < 0)
                                return ctl_usage_error(c, help, "unknown sort key '%.*s' in --sort '%s'",
                                                       (int)strcspn(bad, ","), bad, optarg);
                        sort.n = n;
                        break;
                }
                case 'f':
                        if (strcmp(optarg, "json") == 0)
                                c->json = true;
                        else if (strcmp(optarg, "text") == 0)
                                c->json = false;
                        else
                                return ctl_usage_error(c, help, "--format is text or json, not '%s'",
                                                       optarg);
                        break;
                }
        }
        if (o < 0)
                return ctl_opt_exit(o);
        if (ctl_positional(c, argc, argv, 0, 0, help) < 0)
                return EXIT_USAGE;
        int cols[MAX_LIST];
        int n_cols = 0;
        bool line_form = columns_arg && strcmp(columns_arg, "line") == 0;
        if (columns_arg && c->json)
                return ctl_usage_error(c, help, "--columns is for the text listing, not --json");
        if (!c->json && !line_form) {
                const char *bad = NULL;
                n_cols =
                    parse_column_list(columns_arg ? columns_arg : default_columns, false, cols, NULL, &bad);
                if (n_cols < 0)
                        return ctl_usage_error(c, help, "unknown column '%.*s' in --columns '%s'",
                                               (int)strcspn(bad, ","), bad, columns_arg);
        }
        if (today) {
                int64_t midnight;
                if (ctl_parse_time("today", evd_clock_wall_us(), &midnight) < 0)
                        return ctl_error(c, "cannot compute local midnight");
                if (!filter.has_since || filter.since_us < midnight)
                        filter.since_us = midnight;
                filter.has_since = true;
        }
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        if (filter.device_id && ctl_check_device(c, db, filter.device_id) != 0)
                return EXIT_ERROR;
        EvdError err = {};
        _cleanup_(evd_db_log_freep) EvdDbLog *log = NULL;
        int r = evd_db_log_query(db, &filter, &log, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        /* showing restricted files is a view: logged before anything is shown (docs/access.md) */
        r = ctl_log_listing(db, log->files, log->n_files, "evidockctl log", &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        if (sort.n > 0) {
                sort_spec = &sort;
                qsort(log->files, log->n_files, sizeof(*log->files), cmp_files);
                sort_spec = NULL;
        }
        /* the current case beside the recorder's (docs/lifecycle.md), by row after sorting; the discs */
        _cleanup_(ctl_disc_holdings_freep) CtlDiscHoldings *discs =
            ctl_disc_holdings_load(db, log->files, log->n_files);
        CtlCaseColumn cases;
        ctl_case_column_load(&cases, db, log->files, log->n_files);
        if (!c->json && !line_form) {
                r = print_table(log, cols, n_cols, &cases);
                ctl_case_column_clear(&cases);
                if (r < 0)
                        return ctl_error(c, "out of memory");
        } else {
                for (size_t i = 0; i < log->n_files; i++) {
                        if (!c->json)
                                print_file_text(&log->files[i], &cases, i, discs);
                        else if (print_file_json(&log->files[i], &cases, i, discs) < 0) {
                                ctl_case_column_clear(&cases);
                                return ctl_error(c, "cannot write the output");
                        }
                }
                ctl_case_column_clear(&cases);
        }
        if (log->truncated)
                fprintf(stderr,
                        "evidockctl log: output truncated at %zu rows; narrow it with --since/--device\n",
                        log->n_files);
        return EXIT_CLEAN;
}

const CtlCommand ctl_cmd_log = {
    .name = "log",
    .synopsis =
        "log [--since T] [--until T] [--today] [--device ID] [--late] [--findings] [--columns L] [--sort K]",
    .summary = "one line / JSON object per ingested file",
    .run = log_run,
};
