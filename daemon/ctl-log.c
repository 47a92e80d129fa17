/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidockctl log: one line (or JSON object) per ingested file. */
#include <inttypes.h>

#include "ctl-common.h"
#include "macro.h"
#include "output.h"

static const char help[] =
    "Usage: evidockctl log [--since TIME] [--until TIME] [--device ID] [--format text|json] [--json]\n"
    "\n"
    "One line per ingested file, oldest first: ingest time, recorder, officer, clock offset, sequence,\n"
    "method, case, recording time, within 24 h or LATE, verdict, SHA-256 and stored path; findings\n"
    "indented below. With --json one JSON object per line (schema in evidockctl(1)).\n"
    "\n"
    "  -s, --since TIME     files ingested at or after TIME: 2026-11-22T08:00:00Z, 2026-11-22 08:00,\n"
    "                       2026-11-22, today, yesterday, or a duration ago (24h, 7d)\n"
    "  -u, --until TIME     files ingested before TIME (the same forms)\n"
    "  -d, --device ID      only this recorder (an unknown one is an error)\n"
    "  -f, --format FORMAT  text (default) or json\n"
    "      --json           the same as --format json\n"
    "  -h, --help           this help\n";

static int print_file_json(const EvdDbFileRow *f)
{
        _cleanup_(json_object_putp) json_object *o = ctl_json_file_row(f);
        return o ? ctl_json_print(o) : -ENOMEM;
}

static void print_file_text(const EvdDbFileRow *f)
{
        char t1[48], t2[48];
        char seq[32] = "-";
        if (f->has_seq)
                snprintf(seq, sizeof(seq), "%" PRIu64, f->seq);
        char clock[32] = "clock ?";
        if (f->has_clock_offset)
                snprintf(clock, sizeof(clock), "clock %+.1fs", (double)f->clock_offset_us / 1e6);
        printf("%s  %s  officer %s  %s  seq %-5s %-5s case %-14s rec %s  %s  %-17s %.12s  %s\n",
               format_time_local(f->ingested_us, t1, sizeof(t1)), f->device_id, strna(f->officer_id), clock,
               seq, f->method, f->case_number && f->case_number[0] ? text_shown(f->case_number) : "-",
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
}

static int log_run(Ctl *c, int argc, char **argv)
{
        static const struct option opts[] = {{"since", required_argument, NULL, 's'},
                                             {"until", required_argument, NULL, 'u'},
                                             {"device", required_argument, NULL, 'd'},
                                             {"format", required_argument, NULL, 'f'},
                                             CTL_OPTION_JSON,
                                             CTL_OPTION_HELP,
                                             {}};
        EvdDbLogFilter filter = {};
        int o;
        while ((o = ctl_getopt(c, argc, argv, opts, help)) > 0) {
                switch (o) {
                case 's':
                        if (ctl_parse_time(optarg, now_us(), &filter.since_us) < 0)
                                return ctl_usage_error(c, help, "cannot parse time '%s'", optarg);
                        filter.has_since = true;
                        break;
                case 'u':
                        if (ctl_parse_time(optarg, now_us(), &filter.until_us) < 0)
                                return ctl_usage_error(c, help, "cannot parse time '%s'", optarg);
                        filter.has_until = true;
                        break;
                case 'd':
                        filter.device_id = optarg;
                        break;
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
        for (size_t i = 0; i < log->n_files; i++) {
                if (!c->json)
                        print_file_text(&log->files[i]);
                else if (print_file_json(&log->files[i]) < 0)
                        return ctl_error(c, "cannot write the output");
        }
        if (log->truncated)
                fprintf(stderr,
                        "evidockctl log: output truncated at %zu rows; narrow it with --since/--device\n",
                        log->n_files);
        return EXIT_CLEAN;
}

const CtlCommand ctl_cmd_log = {
    .name = "log",
    .synopsis = "log [--since T] [--until T] [--device ID]",
    .summary = "one line / JSON object per ingested file",
    .run = log_run,
};
