/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidockctl report compliance|findings: the supervision reports (lib/report.h, docs/supervision.md). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "ctl-common.h"
#include "macro.h"
#include "output.h"
#include "report-render.h"
#include "report.h"

#define DAY_US INT64_C(86400000000)

static const char help_compliance[] =
    "Usage: evidockctl report compliance [--since TIME] [--until TIME] [--goal PCT] [--silent-days N]\n"
    "                                    [--format text|json|csv|html] [--bom] [--output FILE]\n"
    "\n"
    "Per unit, officer and recorder: recordings, stored within 24 h (002:\u00a716), late ones and the "
    "worst\n"
    "delay, files with findings, files with a case number; findings by verdict and per recorder; one line\n"
    "per day; recorders that have not docked for N days. Numbers are computed by the database.\n"
    "\n"
    "  -s, --since TIME      start of the period (default: 7 days before --until); ISO 8601 with Z or an\n"
    "                        offset, a local date/time, today, yesterday, or a duration ago (7d)\n"
    "  -u, --until TIME      end of the period, exclusive (default: now)\n"
    "  -g, --goal PCT        the 24-hour rate goal in percent (default 95)\n"
    "      --silent-days N   list recorders not docked for N days (default 3)\n"
    "  -f, --format FORMAT   text (default), json, csv or html (one self-contained page with charts)\n"
    "      --bom             CSV: begin with a UTF-8 byte-order mark (for spreadsheet programs)\n"
    "  -o, --output FILE     write to FILE (created, mode 0640) instead of standard output\n"
    "      --json            the same as --format json\n"
    "  -h, --help            this help\n";

static const char help_findings[] =
    "Usage: evidockctl report findings [--since TIME] [--until TIME] [--format text|json|csv] [--bom]\n"
    "                                  [--output FILE]\n"
    "\n"
    "Every finding of the period that is not INTACT, on a file or on a docking, with the recorder, the\n"
    "officer, the file, what was expected and found, and what the verdict means.\n"
    "\n"
    "  -s, --since TIME      start of the period (default: 7 days before --until)\n"
    "  -u, --until TIME      end of the period, exclusive (default: now)\n"
    "  -f, --format FORMAT   text (default), json or csv\n"
    "      --bom             CSV: begin with a UTF-8 byte-order mark\n"
    "  -o, --output FILE     write to FILE instead of standard output\n"
    "      --json            the same as --format json\n"
    "  -h, --help            this help\n";

typedef enum Format { FORMAT_TEXT, FORMAT_JSON, FORMAT_CSV, FORMAT_HTML } Format;

typedef struct ReportArgs {
        EvdReportQuery q;
        bool has_since;
        double goal;
        Format format;
        bool bom;
        const char *output;
} ReportArgs;

enum { OPT_SILENT_DAYS = 0x100, OPT_BOM };

/* Parses the options both reports share (and, for compliance, --goal and --silent-days). */
static int parse_args(Ctl *c, int argc, char **argv, const char *help, bool compliance, ReportArgs *a)
{
        static const struct option opts[] = {{"since", required_argument, NULL, 's'},
                                             {"until", required_argument, NULL, 'u'},
                                             {"goal", required_argument, NULL, 'g'},
                                             {"silent-days", required_argument, NULL, OPT_SILENT_DAYS},
                                             {"format", required_argument, NULL, 'f'},
                                             {"bom", no_argument, NULL, OPT_BOM},
                                             {"output", required_argument, NULL, 'o'},
                                             CTL_OPTION_JSON,
                                             CTL_OPTION_HELP,
                                             {}};
        int64_t now = evd_clock_wall_us();
        *a = (ReportArgs){.q = {.until_us = now}, .goal = 0.95};
        int o;
        while ((o = ctl_getopt(c, argc, argv, opts, help)) > 0) {
                char *end;
                switch (o) {
                case 's':
                        if (ctl_parse_time(optarg, now, &a->q.since_us) < 0)
                                return ctl_usage_error(c, help, "cannot parse time '%s'", optarg);
                        a->has_since = true;
                        break;
                case 'u':
                        if (ctl_parse_time(optarg, now, &a->q.until_us) < 0)
                                return ctl_usage_error(c, help, "cannot parse time '%s'", optarg);
                        break;
                case 'g': {
                        if (!compliance)
                                return ctl_usage_error(c, help,
                                                       "--goal is an option of 'report compliance'");
                        errno = 0;
                        double g = strtod(optarg, &end);
                        if (errno || end == optarg || *end || !isfinite(g) || g < 0 || g > 100)
                                return ctl_usage_error(c, help, "--goal wants a percentage 0..100, not '%s'",
                                                       optarg);
                        a->goal = g / 100.0;
                        break;
                }
                case OPT_SILENT_DAYS: {
                        if (!compliance)
                                return ctl_usage_error(c, help,
                                                       "--silent-days is an option of 'report compliance'");
                        errno = 0;
                        long d = strtol(optarg, &end, 10);
                        if (errno || end == optarg || *end || d < 1 || d > 3650)
                                return ctl_usage_error(c, help, "--silent-days wants 1..3650 days, not '%s'",
                                                       optarg);
                        a->q.silent_after_us = d * DAY_US;
                        break;
                }
                case 'f':
                        if (strcmp(optarg, "text") == 0)
                                a->format = FORMAT_TEXT;
                        else if (strcmp(optarg, "json") == 0)
                                a->format = FORMAT_JSON;
                        else if (strcmp(optarg, "csv") == 0)
                                a->format = FORMAT_CSV;
                        else if (compliance && strcmp(optarg, "html") == 0)
                                a->format = FORMAT_HTML;
                        else
                                return ctl_usage_error(c, help, "--format is text, json, csv%s, not '%s'",
                                                       compliance ? " or html" : "", optarg);
                        break;
                case OPT_BOM:
                        a->bom = true;
                        break;
                case 'o':
                        a->output = optarg;
                        break;
                }
        }
        if (o < 0)
                return ctl_opt_exit(o);
        if (ctl_positional(c, argc, argv, 0, 0, help) < 0)
                return EXIT_USAGE;
        if (c->json)
                a->format = FORMAT_JSON;
        if (!a->has_since)
                a->q.since_us = a->q.until_us - 7 * DAY_US;
        if (a->q.until_us <= a->q.since_us)
                return ctl_usage_error(c, help, "the period is empty: --until must be after --since");
        if (a->bom && a->format != FORMAT_CSV)
                return ctl_usage_error(c, help, "--bom goes with --format csv");
        return -1;
}

/* Standard output, or the --output file (never replacing an existing file: a report is not evidence,
 * but an admin overwriting last month's by mistake would not expect it). */
static FILE *open_output(Ctl *c, const char *path)
{
        if (!path)
                return stdout;
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        if (fd < 0) {
                ctl_error(c, "cannot create %s: %m", path);
                return NULL;
        }
        FILE *f = fdopen(fd, "w");
        if (!f) {
                ctl_error(c, "cannot write %s: %m", path);
                close(fd);
        }
        return f;
}

static int close_output(Ctl *c, FILE *f, const char *path, int r)
{
        if (f != stdout) {
                if (fclose(f) != 0 && r >= 0)
                        r = -errno;
        } else if (fflush(f) != 0 && r >= 0)
                r = -errno;
        if (r < 0)
                return ctl_error(c, "writing %s: %s", path ? path : "the report", strerror(-r)), EXIT_ERROR;
        if (path)
                fprintf(stderr, "evidockctl %s: written to %s\n", c->cmd, path);
        return EXIT_CLEAN;
}

static json_object *json_period(const EvdReportQuery *q)
{
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "since", ctl_json_time(q->since_us, 0));
        json_object_object_add(o, "until", ctl_json_time(q->until_us, 0));
        return o;
}

static json_object *json_compliance(const EvdComplianceReport *r, double goal)
{
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        EvdReportQuery q = {.since_us = r->since_us, .until_us = r->until_us};
        json_object_object_add(o, "report", json_object_new_string("compliance"));
        json_object_object_add(o, "period", json_period(&q));
        json_object_object_add(o, "goal", json_object_new_double(goal));
        json_object_object_add(o, "silent_after_days",
                               json_object_new_double((double)r->silent_after_us / DAY_US));
        json_object *rows = json_object_new_array();
        for (size_t i = 0; i < r->n_rows; i++) {
                const EvdComplianceRow *x = &r->rows[i];
                json_object *j = json_object_new_object();
                json_object_object_add(j, "level",
                                       json_object_new_string(evd_report_level_to_string(x->level)));
                json_object_object_add(j, "key", ctl_json_string(x->key));
                json_object_object_add(j, "recordings", json_object_new_int64(x->recordings));
                json_object_object_add(j, "within_24h", json_object_new_int64(x->within_24h));
                json_object_object_add(j, "late", json_object_new_int64(x->late));
                json_object_object_add(j, "rate", json_object_new_double(evd_compliance_rate(x)));
                json_object_object_add(j, "worst_delay_s",
                                       json_object_new_int64(x->worst_delay_us / 1000000));
                json_object_object_add(j, "with_findings", json_object_new_int64(x->with_findings));
                json_object_object_add(j, "case_linked", json_object_new_int64(x->case_linked));
                json_object_object_add(j, "longterm_without_disc",
                                       json_object_new_int64(x->longterm_without_disc));
                json_object_object_add(j, "bytes", json_object_new_int64(x->bytes));
                json_object_array_add(rows, j);
        }
        json_object_object_add(o, "rows", rows);
        json_object_object_add(o, "rows_truncated", json_object_new_boolean(r->rows_truncated));
        json_object *verdicts = json_object_new_array();
        for (size_t i = 0; i < r->n_verdicts; i++) {
                json_object *j = json_object_new_object();
                json_object_object_add(
                    j, "verdict", json_object_new_string(evd_verdict_to_string(r->verdicts[i].verdict)));
                json_object_object_add(j, "files", json_object_new_int64(r->verdicts[i].files));
                json_object_object_add(j, "docking", json_object_new_int64(r->verdicts[i].docking));
                json_object_array_add(verdicts, j);
        }
        json_object_object_add(o, "findings_by_verdict", verdicts);
        json_object *recs = json_object_new_array();
        for (size_t i = 0; i < r->n_recorders; i++) {
                json_object *j = json_object_new_object();
                json_object_object_add(j, "recorder", ctl_json_string(r->recorders[i].recorder));
                json_object_object_add(j, "dockings", json_object_new_int64(r->recorders[i].dockings));
                json_object_object_add(j, "findings", json_object_new_int64(r->recorders[i].findings));
                json_object_array_add(recs, j);
        }
        json_object_object_add(o, "findings_by_recorder", recs);
        json_object *days = json_object_new_array();
        for (size_t i = 0; i < r->n_days; i++) {
                json_object *j = json_object_new_object();
                json_object_object_add(j, "day", ctl_json_time(r->days[i].day_us, 0));
                json_object_object_add(j, "recordings", json_object_new_int64(r->days[i].recordings));
                json_object_object_add(j, "late", json_object_new_int64(r->days[i].late));
                json_object_object_add(j, "store_bytes", json_object_new_int64(r->days[i].store_bytes));
                json_object_array_add(days, j);
        }
        json_object_object_add(o, "days", days);
        json_object *silent = json_object_new_array();
        for (size_t i = 0; i < r->n_silent; i++) {
                const EvdSilentRecorder *s = &r->silent[i];
                json_object *j = json_object_new_object();
                json_object_object_add(j, "device", ctl_json_string(s->device_id));
                json_object_object_add(j, "officer", ctl_json_string(s->officer_id));
                json_object_object_add(j, "unit", ctl_json_string(s->unit_code));
                json_object_object_add(j, "last_docked",
                                       s->last_docked_us > 0 ? ctl_json_time(s->last_docked_us, 0) : NULL);
                json_object_array_add(silent, j);
        }
        json_object_object_add(o, "silent_recorders", silent);
        return o;
}

static json_object *json_findings(const EvdFindingsReport *r)
{
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        EvdReportQuery q = {.since_us = r->since_us, .until_us = r->until_us};
        json_object_object_add(o, "report", json_object_new_string("findings"));
        json_object_object_add(o, "period", json_period(&q));
        json_object_object_add(o, "truncated", json_object_new_boolean(r->truncated));
        json_object *items = json_object_new_array();
        for (size_t i = 0; i < r->n_items; i++) {
                const EvdReportFinding *x = &r->items[i];
                json_object *j = json_object_new_object();
                json_object_object_add(j, "docked_at", ctl_json_time(x->docked_us, 0));
                json_object_object_add(j, "docking", json_object_new_int64(x->docking_id));
                json_object_object_add(j, "recorder", ctl_json_string(x->recorder));
                json_object_object_add(j, "officer", ctl_json_string(x->officer_id));
                json_object_object_add(j, "file_id",
                                       x->file_id > 0 ? json_object_new_int64(x->file_id) : NULL);
                json_object_object_add(j, "file", ctl_json_string(x->file));
                json_object_object_add(j, "verdict",
                                       json_object_new_string(evd_verdict_to_string(x->verdict)));
                json_object_object_add(j, "seq", x->has_seq ? json_object_new_int64(x->seq) : NULL);
                json_object_object_add(j, "expected", ctl_json_string(x->expected));
                json_object_object_add(j, "found", ctl_json_string(x->found));
                json_object_object_add(j, "detail", ctl_json_string(x->detail));
                json_object_object_add(j, "meaning",
                                       json_object_new_string(evd_verdict_describe(x->verdict)));
                json_object_array_add(items, j);
        }
        json_object_object_add(o, "findings", items);
        return o;
}

static int write_json(FILE *f, json_object *o)
{
        if (!o)
                return -ENOMEM;
        const char *s =
            json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s)
                return -ENOMEM;
        fputs(s, f);
        fputc('\n', f);
        return ferror(f) ? -EIO : 0;
}

static int compliance_run(Ctl *c, int argc, char **argv)
{
        ReportArgs a;
        int r = parse_args(c, argc, argv, help_compliance, true, &a);
        if (r >= 0)
                return r;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdError err = {};
        _cleanup_(evd_compliance_report_freep) EvdComplianceReport *rep = NULL;
        r = evd_report_compliance(db, &a.q, &rep, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        _cleanup_(evd_findings_report_freep) EvdFindingsReport *fr = NULL;
        if (a.format == FORMAT_HTML) {
                r = evd_report_findings(db, &a.q, &fr, &err);
                if (r < 0)
                        return ctl_error(c, "%s", evd_error_message(&err, r));
        }
        FILE *f = open_output(c, a.output);
        if (!f)
                return EXIT_ERROR;
        EvdReportRenderOptions ro = {.goal = a.goal, .generated_us = evd_clock_wall_us(), .csv_bom = a.bom};
        switch (a.format) {
        case FORMAT_TEXT:
                r = evd_report_render_text(f, rep, &ro);
                break;
        case FORMAT_CSV:
                r = evd_report_render_csv(f, rep, &ro);
                break;
        case FORMAT_HTML:
                r = evd_report_render_html(f, rep, fr, &ro);
                break;
        case FORMAT_JSON: {
                _cleanup_(json_object_putp) json_object *o = json_compliance(rep, a.goal);
                r = write_json(f, o);
                break;
        }
        }
        return close_output(c, f, a.output, r);
}

static int findings_run(Ctl *c, int argc, char **argv)
{
        ReportArgs a;
        int r = parse_args(c, argc, argv, help_findings, false, &a);
        if (r >= 0)
                return r;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdError err = {};
        _cleanup_(evd_findings_report_freep) EvdFindingsReport *rep = NULL;
        r = evd_report_findings(db, &a.q, &rep, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        FILE *f = open_output(c, a.output);
        if (!f)
                return EXIT_ERROR;
        EvdReportRenderOptions ro = {.generated_us = evd_clock_wall_us(), .csv_bom = a.bom};
        if (a.format == FORMAT_CSV)
                r = evd_findings_render_csv(f, rep, &ro);
        else if (a.format == FORMAT_JSON) {
                _cleanup_(json_object_putp) json_object *o = json_findings(rep);
                r = write_json(f, o);
        } else
                r = evd_findings_render_text(f, rep);
        return close_output(c, f, a.output, r);
}

static const CtlSubcommand subs[] = {
    {"compliance", "24-hour compliance per unit, officer and recorder; charts with --format html",
     compliance_run},
    {"findings", "every finding of a period with its explanation", findings_run},
};

static int report_run(Ctl *c, int argc, char **argv)
{
        return ctl_dispatch(c, subs, ELEMENTSOF(subs), argc, argv);
}

const CtlCommand ctl_cmd_report = {
    .name = "report",
    .synopsis = "report compliance|findings [--since T] [--until T] [--format F]",
    .summary = "supervision reports (24-hour compliance, findings)",
    .run = report_run,
};
