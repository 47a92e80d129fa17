/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidockctl dockings: each docking of a period with its outcome, counts, findings, duration and the
 * recorder's clock offset; failed and refused ones included (they live only in tables otherwise). */
#include <inttypes.h>

#include "clock.h"
#include "ctl-common.h"
#include "db-admin.h"
#include "macro.h"
#include "output.h"

static const char help[] =
    "Usage: evidockctl dockings [--since TIME] [--until TIME] [--device ID] [--failed] [--refused] "
    "[--json]\n"
    "\n"
    "Each docking of the period, oldest first: when, recorder and officer (or what a refused recorder\n"
    "presented), outcome (clean, findings, stopped, unfinished, refused), files ingested of those seen,\n"
    "late files, findings, the worst verdict, how long it took and the recorder's clock offset.\n"
    "\n"
    "  -s, --since TIME     docked at or after TIME (default: 7d, the last seven days); TIME is\n"
    "                       2026-11-22T08:00:00Z, 2026-11-22 08:00, 2026-11-22, today, yesterday,\n"
    "                       now, or a duration ago (24h, 7d)\n"
    "  -u, --until TIME     docked before TIME\n"
    "  -d, --device ID      only this recorder (an unknown one is an error)\n"
    "  -f, --failed         only dockings that did not finish: stopped by an error, or unfinished\n"
    "                       (still running, or the dock stopped during them)\n"
    "  -r, --refused        only refused recorders (with --failed: either)\n"
    "      --json           one JSON object per docking (schema in evidockctl(1))\n"
    "  -h, --help           this help\n";

static void format_duration(int64_t us, char *buf, size_t size)
{
        if (us < 0)
                us = 0;
        int64_t s = us / 1000000;
        if (s < 60)
                snprintf(buf, size, "%.1fs", (double)us / 1e6);
        else if (s < 3600)
                snprintf(buf, size, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
        else
                snprintf(buf, size, "%" PRId64 "h%02" PRId64 "m", s / 3600, (s / 60) % 60);
}

static json_object *docking_json(const EvdDbDockingRow *d)
{
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "id", json_object_new_int64(d->id));
        json_object_object_add(o, "docked_at", ctl_json_time_local(d->docked_us));
        json_object_object_add(o, "finished_at", d->finished ? ctl_json_time_local(d->finished_us) : NULL);
        json_object_object_add(
            o, "duration_s",
            d->finished ? json_object_new_double((double)(d->finished_us - d->docked_us) / 1e6) : NULL);
        json_object_object_add(o, "device_id", ctl_json_string(d->device_id));
        json_object_object_add(o, "identity", ctl_json_string(d->identity));
        json_object_object_add(o, "officer_id", ctl_json_string(d->officer_id));
        json_object_object_add(o, "transport", ctl_json_string(d->transport));
        json_object_object_add(o, "location", ctl_json_string(d->location));
        json_object_object_add(o, "outcome", ctl_json_string(evd_docking_outcome_to_string(d->outcome)));
        json_object_object_add(o, "files_seen", json_object_new_int64(d->files_seen));
        json_object_object_add(o, "files_ingested", json_object_new_int64(d->files_ingested));
        json_object_object_add(o, "files_already", json_object_new_int64(d->files_already));
        json_object_object_add(o, "files_quarantined", json_object_new_int64(d->files_quarantined));
        json_object_object_add(o, "files_recorded", json_object_new_int64(d->files_recorded));
        json_object_object_add(o, "files_late", json_object_new_int64(d->files_late));
        json_object_object_add(o, "findings", json_object_new_int64(d->findings));
        json_object_object_add(o, "worst", ctl_json_string(d->verdict));
        json_object_object_add(o, "clock_offset_ms",
                               d->has_clock_offset ? json_object_new_int64(d->clock_offset_us / 1000)
                                                   : NULL);
        json_object_object_add(o, "summary", ctl_json_string(d->summary));
        return o;
}

static int add_row(CtlTable *t, const EvdDbDockingRow *d)
{
        char id[24], when[48], files[48], late[16], findings[16], duration[24] = "-", clock[24] = "-";
        _cleanup_free_ char *who = NULL;
        snprintf(id, sizeof(id), "%" PRId64, d->id);
        format_time_local(d->docked_us, when, sizeof(when));
        if (d->finished)
                snprintf(files, sizeof(files), "%u/%u", d->files_ingested, d->files_seen);
        else
                snprintf(files, sizeof(files), "%u/?", d->files_recorded);
        snprintf(late, sizeof(late), "%u", d->files_late);
        snprintf(findings, sizeof(findings), "%u", d->findings);
        if (d->finished)
                format_duration(d->finished_us - d->docked_us, duration, sizeof(duration));
        if (d->has_clock_offset)
                snprintf(clock, sizeof(clock), "%+.1fs", (double)d->clock_offset_us / 1e6);
        if (!d->device_id &&
            asprintf(&who, "(%s)", d->identity ? text_shown(d->identity) : "unidentified") < 0)
                return -ENOMEM;
        return ctl_table_addf(t, 11, id, when, d->device_id ? d->device_id : who, d->officer_id,
                              evd_docking_outcome_to_string(d->outcome), files, late, findings,
                              d->verdict ? d->verdict : "-", duration, clock);
}

static int dockings_run(Ctl *c, int argc, char **argv)
{
        static const struct option opts[] = {{"since", required_argument, NULL, 's'},
                                             {"until", required_argument, NULL, 'u'},
                                             {"device", required_argument, NULL, 'd'},
                                             {"failed", no_argument, NULL, 'f'},
                                             {"refused", no_argument, NULL, 'r'},
                                             CTL_OPTION_JSON,
                                             CTL_OPTION_HELP,
                                             {}};
        EvdDbDockingFilter filter = {.has_since = true};
        int64_t now = evd_clock_wall_us();
        (void)ctl_parse_time("7d", now, &filter.since_us);
        int o;
        while ((o = ctl_getopt(c, argc, argv, opts, help)) > 0) {
                switch (o) {
                case 's':
                        if (ctl_parse_time(optarg, now, &filter.since_us) < 0)
                                return ctl_usage_error(c, help, "cannot parse time '%s'", optarg);
                        break;
                case 'u':
                        if (ctl_parse_time(optarg, now, &filter.until_us) < 0)
                                return ctl_usage_error(c, help, "cannot parse time '%s'", optarg);
                        filter.has_until = true;
                        break;
                case 'd':
                        filter.device_id = optarg;
                        break;
                case 'f':
                        filter.failed = true;
                        break;
                case 'r':
                        filter.refused = true;
                        break;
                }
        }
        if (o < 0)
                return ctl_opt_exit(o);
        if (ctl_positional(c, argc, argv, 0, 0, help) < 0)
                return EXIT_USAGE;
        if (filter.has_until && filter.until_us <= filter.since_us)
                return ctl_usage_error(c, help, "--until must be after --since");
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        if (filter.device_id && ctl_check_device(c, db, filter.device_id) != 0)
                return EXIT_ERROR;
        EvdError err = {};
        _cleanup_(evd_db_docking_list_freep) EvdDbDockingList *list = NULL;
        int r = evd_db_dockings_query(db, &filter, &list, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        static const char *const headers[] = {"ID",   "DOCKED",   "RECORDER", "OFFICER",  "OUTCOME", "FILES",
                                              "LATE", "FINDINGS", "WORST",    "DURATION", "CLOCK"};
        _cleanup_(ctl_table_freep) CtlTable *t =
            c->json ? NULL : ctl_table_new(ELEMENTSOF(headers), headers);
        if (!c->json && !t)
                return EXIT_ERROR;
        if (t)
                for (unsigned col = 5; col <= 7; col++)
                        ctl_table_right(t, col);
        for (size_t i = 0; i < list->n_rows && r >= 0; i++) {
                if (t) {
                        r = add_row(t, &list->rows[i]);
                        continue;
                }
                _cleanup_(json_object_putp) json_object *j = docking_json(&list->rows[i]);
                r = j ? ctl_json_print(j) : -ENOMEM;
        }
        if (r < 0)
                return ctl_error(c, "cannot write the output");
        if (t) {
                if (ctl_table_rows(t))
                        ctl_table_print(t, stdout);
                else
                        fprintf(stderr, "no dockings in the period\n");
        }
        if (list->truncated)
                fprintf(stderr, "evidockctl dockings: only the first %zu shown; narrow the period\n",
                        list->n_rows);
        return EXIT_CLEAN;
}

const CtlCommand ctl_cmd_dockings = {
    .name = "dockings",
    .synopsis = "dockings [--since T] [--failed] [--refused]",
    .summary = "each docking: outcome, counts, findings, duration, clock",
    .run = dockings_run,
};
