/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidockctl mark set|clear|list: important (重点), long-term (002:§18, queues a disc job) and legal hold
 * (blocks disposal), append-only like everything else (docs/lifecycle.md). */
#include <inttypes.h>

#include "ctl-common.h"
#include "ctl-select.h"
#include "disc-job.h"
#include "lifecycle.h"
#include "macro.h"
#include "output.h"

static const char set_help[] =
    "Usage: evidockctl mark set important|long-term|hold (--file ID | --device ID --seq N[-M] |\n"
    "                          --officer ID --from TIME --to TIME) [--ground G] --reason TEXT [--no-disc]\n"
    "\n"
    "Marks recordings:\n"
    "  important   重点: shown in listings, no effect on retention\n"
    "  long-term   kept permanently (002:§18); --ground says which of the four grounds:\n"
    "              dispute (the party disputes or complains), obstruction (obstruction, insult or assault\n"
    "              of officers), mass-incident (mass incident or emergency), other (say what in --reason).\n"
    "              Queues a burn-to-disc job for the newly marked recordings (unless --no-disc).\n"
    "  hold        legal hold: no disposal while it is set\n"
    "Recordings that have the mark already are left as they are. Who, when and why are recorded and\n"
    "hashed into the custody log.\n"
    "\n" CTL_SELECT_HELP
    "  -g, --ground G       long-term only: dispute, obstruction, mass-incident or other\n"
    "  -r, --reason TEXT    why\n"
    "      --no-disc        long-term: do not queue a disc job now\n"
    "      --json           what changed, as one JSON object\n"
    "  -h, --help           this help\n";

static const char clear_help[] =
    "Usage: evidockctl mark clear important|long-term|hold (--file ID | --device ID --seq N[-M] |\n"
    "                            --officer ID --from TIME --to TIME) --reason TEXT\n"
    "\n"
    "Clears a mark (a new record: the earlier one stays in the history).\n"
    "\n" CTL_SELECT_HELP "  -r, --reason TEXT    why\n"
    "      --json           what changed, as one JSON object\n"
    "  -h, --help           this help\n";

/* Queues one disc job for the newly marked long-term recordings (lib/disc-job.h). */
static void queue_disc(Ctl *c, EvdDb *db, const EvdLifecycleChange *ch, const char *reason)
{
        if (ch->n_changed == 0)
                return;
        EvdDiscJobSpec spec = {
            .select = {.file_ids = ch->file_ids, .n_file_ids = ch->n_changed},
            .requested_by = "mark:long_term",
            .reason = reason,
            .store_root = c->cfg.store_root,
        };
        EvdError err = {};
        int64_t job = 0;
        int r = evd_disc_job_queue(db, &spec, &job, &err);
        if (r < 0) {
                /* the mark stands; the disc job can be queued by hand */
                fprintf(stderr,
                        "evidockctl %s: the mark is set, but no disc job was queued: %s (queue one with "
                        "evidockctl disc queue)\n",
                        c->cmd, evd_error_message(&err, r));
                return;
        }
        if (!c->json && !c->quiet)
                printf("disc job %" PRId64 " queued for %zu recording(s)\n", job, ch->n_changed);
}

static int mark_change_run(Ctl *c, int argc, char **argv, bool set)
{
        const char *help = set ? set_help : clear_help;
        static const struct option set_opts[] = {{"ground", required_argument, NULL, 'g'},
                                                 {"reason", required_argument, NULL, 'r'},
                                                 {"no-disc", no_argument, NULL, 'N'},
                                                 CTL_SELECT_OPTIONS,
                                                 CTL_OPTION_JSON,
                                                 CTL_OPTION_HELP,
                                                 {}};
        static const struct option clear_opts[] = {{"reason", required_argument, NULL, 'r'},
                                                   CTL_SELECT_OPTIONS,
                                                   CTL_OPTION_JSON,
                                                   CTL_OPTION_HELP,
                                                   {}};
        CtlSelect sel_args = {};
        const char *ground = NULL, *reason = NULL;
        bool no_disc = false;
        int o;
        while ((o = ctl_getopt(c, argc, argv, set ? set_opts : clear_opts, help)) > 0) {
                if (o == 'g')
                        ground = optarg;
                else if (o == 'r')
                        reason = optarg;
                else if (o == 'N')
                        no_disc = true;
                else
                        ctl_select_option(&sel_args, o, optarg);
        }
        if (o < 0)
                return ctl_opt_exit(o);
        if (ctl_positional(c, argc, argv, 1, 1, help) < 0)
                return EXIT_USAGE;
        int kind = evd_mark_kind_from_string(argv[optind]);
        if (kind < 0)
                return ctl_usage_error(c, help, "unknown mark '%s': important, long-term or hold",
                                       argv[optind]);
        if (!reason)
                return ctl_usage_error(c, help, "--reason is required: every change says why");
        EvdLongTermReason code = EVD_LONG_TERM_NONE;
        if (set && kind == EVD_MARK_LONG_TERM) {
                if (!ground)
                        return ctl_usage_error(
                            c, help,
                            "a long-term mark needs --ground dispute|obstruction|mass-incident|other "
                            "(002:§18)");
                int g = evd_long_term_reason_from_string(ground);
                if (g < 0)
                        return ctl_usage_error(
                            c, help, "unknown ground '%s': dispute, obstruction, mass-incident or other",
                            ground);
                code = (EvdLongTermReason)g;
        } else if (ground)
                return ctl_usage_error(c, help, "--ground is only for setting a long-term mark");
        EvdFileSelector sel;
        int r = ctl_select_build(c, &sel_args, help, &sel);
        if (r != 0)
                return r;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdError err = {};
        EvdLifecycleChange ch = {};
        r = set ? evd_mark_set(db, (EvdMarkKind)kind, &sel, code, reason, &ch, &err)
                : evd_mark_clear(db, (EvdMarkKind)kind, &sel, reason, &ch, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        char done[64];
        snprintf(done, sizeof(done), "%s %s", set ? "marked" : "cleared of", evd_mark_kind_to_string(kind));
        r = ctl_select_print_change(c, &ch, done, set ? "had it already" : "did not have it");
        if (set && kind == EVD_MARK_LONG_TERM && !no_disc)
                queue_disc(c, db, &ch, reason);
        evd_lifecycle_change_clear(&ch);
        return r;
}

static int set_run(Ctl *c, int argc, char **argv)
{
        return mark_change_run(c, argc, argv, true);
}

static int clear_run(Ctl *c, int argc, char **argv)
{
        return mark_change_run(c, argc, argv, false);
}

static const char list_help[] = "Usage: evidockctl mark list [--file ID] [--json]\n"
                                "\n"
                                "The marks in force: recording, mark, ground, who, when, why.\n"
                                "\n"
                                "  -F, --file ID        only this recording's\n"
                                "      --json           one JSON object per mark\n"
                                "  -h, --help           this help\n";

static int list_run(Ctl *c, int argc, char **argv)
{
        const char *file = NULL;
        int q =
            ctl_parse(c, argc, argv, (const CtlOption[]){{"file", 'F', .text = &file}, {}}, 0, 0, list_help);
        if (q >= 0)
                return q;
        int64_t file_id = 0;
        if (file && ctl_parse_id(file, &file_id) < 0)
                return ctl_usage_error(c, list_help, "--file '%s' is not a file id", file);
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdError err = {};
        EvdMark *v = NULL;
        size_t n = 0;
        int r = evd_mark_list(db, file_id, &v, &n, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        static const char *const headers[] = {"FILE", "MARK", "GROUND", "BY", "AT", "REASON"};
        _cleanup_(ctl_table_freep) CtlTable *t =
            c->json ? NULL : ctl_table_new(ELEMENTSOF(headers), headers);
        r = EXIT_CLEAN;
        for (size_t i = 0; i < n; i++) {
                char id[24], when[48];
                snprintf(id, sizeof(id), "%" PRId64, v[i].file_id);
                format_time_local(v[i].at_us, when, sizeof(when));
                const char *ground = evd_long_term_reason_to_string(v[i].code);
                if (c->json) {
                        _cleanup_(json_object_putp) json_object *j = json_object_new_object();
                        if (!j) {
                                r = EXIT_ERROR;
                                break;
                        }
                        json_object_object_add(j, "file_id", json_object_new_int64(v[i].file_id));
                        json_object_object_add(j, "mark",
                                               ctl_json_string(evd_mark_kind_to_string(v[i].kind)));
                        json_object_object_add(j, "ground", ctl_json_string(ground));
                        json_object_object_add(j, "by", ctl_json_string(v[i].actor));
                        json_object_object_add(j, "at", ctl_json_time_local(v[i].at_us));
                        json_object_object_add(j, "reason", ctl_json_string(v[i].reason));
                        if (ctl_json_print(j) < 0)
                                r = EXIT_ERROR;
                } else if (t)
                        (void)ctl_table_addf(t, 6, id, evd_mark_kind_to_string(v[i].kind), ground,
                                             v[i].actor, when, v[i].reason);
        }
        if (t)
                ctl_table_print(t, stdout);
        evd_mark_array_free(v, n);
        return r;
}

static const CtlSubcommand subs[] = {
    {"set", "mark recordings important, long-term (002:§18) or on legal hold", set_run},
    {"clear", "clear a mark", clear_run},
    {"list", "the marks in force", list_run},
};

static int mark_run(Ctl *c, int argc, char **argv)
{
        return ctl_dispatch(c, subs, ELEMENTSOF(subs), argc, argv);
}

const CtlCommand ctl_cmd_mark = {
    .name = "mark",
    .synopsis = "mark set|clear|list ...",
    .summary = "important, long-term (002:§18) and legal-hold marks",
    .run = mark_run,
};
