/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidockctl case open|close|reopen|assign|unassign|show|list: cases and the association of recordings
 * with them after the fact (docs/lifecycle.md). Nothing here changes a recording or its row. */
#include <inttypes.h>

#include "ctl-common.h"
#include "ctl-select.h"
#include "lifecycle.h"
#include "macro.h"
#include "output.h"

/* Parses a command of the form `case VERB CASE [--category C] [selection] --reason TEXT`. */
typedef struct CaseArgs {
        const char *case_number;
        const char *category;
        const char *reason;
        CtlSelect sel;
} CaseArgs;

static int case_args(Ctl *c, int argc, char **argv, const char *help, bool with_category, bool with_select,
                     CaseArgs *a)
{
        static const struct option opts_plain[] = {
            {"reason", required_argument, NULL, 'r'}, CTL_OPTION_JSON, CTL_OPTION_HELP, {}};
        static const struct option opts_category[] = {{"category", required_argument, NULL, 'c'},
                                                      {"reason", required_argument, NULL, 'r'},
                                                      CTL_OPTION_JSON,
                                                      CTL_OPTION_HELP,
                                                      {}};
        static const struct option opts_select[] = {{"reason", required_argument, NULL, 'r'},
                                                    CTL_SELECT_OPTIONS,
                                                    CTL_OPTION_JSON,
                                                    CTL_OPTION_HELP,
                                                    {}};
        const struct option *opts = with_category ? opts_category : with_select ? opts_select : opts_plain;
        int o;
        while ((o = ctl_getopt(c, argc, argv, opts, help)) > 0) {
                if (o == 'r')
                        a->reason = optarg;
                else if (o == 'c')
                        a->category = optarg;
                else
                        ctl_select_option(&a->sel, o, optarg);
        }
        if (o < 0)
                return ctl_opt_exit(o);
        if (ctl_positional(c, argc, argv, 1, 1, help) < 0)
                return EXIT_USAGE;
        a->case_number = argv[optind];
        if (!a->reason)
                return ctl_usage_error(c, help, "--reason is required: every change says why");
        if (with_category && !a->category)
                return ctl_usage_error(c, help, "--category is required");
        return -1;
}

static const char open_help[] =
    "Usage: evidockctl case open CASE --category CATEGORY --reason TEXT\n"
    "\n"
    "Opens a case: its number and category (e.g. criminal, administrative,\n"
    "traffic; [retention] categories says how long each is kept after closing).\n"
    "\n"
    "  -c, --category NAME  the case category: a-z 0-9 _ -\n"
    "  -r, --reason TEXT    why (kept with who and when, in the custody log)\n"
    "      --json           the case as one JSON object\n"
    "  -h, --help           this help\n";

static const char close_help[] =
    "Usage: evidockctl case close CASE --reason TEXT\n"
    "\n"
    "Closes a case. Closing starts the 30-day clock for archiving its recordings into the case file\n"
    "(000:§17) and the retention period of its category. No recording can be assigned to a closed case.\n"
    "\n"
    "  -r, --reason TEXT    why\n"
    "      --json           the case as one JSON object\n"
    "  -h, --help           this help\n";

static const char reopen_help[] = "Usage: evidockctl case reopen CASE --reason TEXT\n"
                                  "\n"
                                  "Reopens a closed case.\n"
                                  "\n"
                                  "  -r, --reason TEXT    why\n"
                                  "      --json           the case as one JSON object\n"
                                  "  -h, --help           this help\n";

static json_object *case_json(const EvdCaseInfo *k)
{
        json_object *j = json_object_new_object();
        if (!j)
                return NULL;
        json_object_object_add(j, "case_number", ctl_json_string(k->case_number));
        json_object_object_add(j, "category", ctl_json_string(k->category));
        json_object_object_add(j, "opened_at", ctl_json_time_local(k->opened_us));
        json_object_object_add(j, "opened_by", ctl_json_string(k->opened_by));
        json_object_object_add(j, "closed_at", k->closed ? ctl_json_time_local(k->closed_us) : NULL);
        json_object_object_add(j, "closed_by", k->closed ? ctl_json_string(k->closed_by) : NULL);
        /* 000:§17: archived into the case file within 30 days of closing */
        json_object_object_add(j, "archive_due",
                               k->closed ? ctl_json_time_local(k->closed_us + (int64_t)30 * 86400 * 1000000)
                                         : NULL);
        json_object_object_add(j, "files", json_object_new_int64((int64_t)k->n_files));
        return j;
}

static int print_case(Ctl *c, EvdDb *db, const char *case_number)
{
        EvdError err = {};
        _cleanup_(evd_case_info_freep) EvdCaseInfo *k = NULL;
        int r = evd_case_get(db, case_number, &k, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        if (c->json) {
                _cleanup_(json_object_putp) json_object *j = case_json(k);
                return !j || ctl_json_print(j) < 0 ? EXIT_ERROR : EXIT_CLEAN;
        }
        char opened[48], closed[48], due[48];
        format_time_local(k->opened_us, opened, sizeof(opened));
        printf("case %s (%s): opened %s by %s", k->case_number, k->category, opened, k->opened_by);
        if (k->closed) {
                format_time_local(k->closed_us, closed, sizeof(closed));
                format_time_local(k->closed_us + (int64_t)30 * 86400 * 1000000, due, sizeof(due));
                printf(", closed %s by %s (archive into the case file by %s)", closed, strna(k->closed_by),
                       due);
        } else
                printf(", open");
        printf("; %zu recording(s)\n", k->n_files);
        return EXIT_CLEAN;
}

static int event_run(Ctl *c, int argc, char **argv, const char *help, const char *event)
{
        CaseArgs a = {};
        bool open = strcmp(event, "open") == 0;
        int r = case_args(c, argc, argv, help, open, false, &a);
        if (r >= 0)
                return r;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdError err = {};
        r = open                          ? evd_case_open(db, a.case_number, a.category, a.reason, &err)
            : strcmp(event, "close") == 0 ? evd_case_close(db, a.case_number, a.reason, &err)
                                          : evd_case_reopen(db, a.case_number, a.reason, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        return print_case(c, db, a.case_number);
}

static int open_run(Ctl *c, int argc, char **argv)
{
        return event_run(c, argc, argv, open_help, "open");
}

static int close_run(Ctl *c, int argc, char **argv)
{
        return event_run(c, argc, argv, close_help, "close");
}

static int reopen_run(Ctl *c, int argc, char **argv)
{
        return event_run(c, argc, argv, reopen_help, "reopen");
}

static const char assign_help[] =
    "Usage: evidockctl case assign CASE (--file ID | --device ID --seq N[-M] |\n"
    "                                    --officer ID --from TIME --to TIME) --reason TEXT\n"
    "\n"
    "Puts recordings in an open case after the fact. Each recording's previous case (the recorder's, or an\n"
    "earlier assignment) is superseded by a new record naming who, when and why; the recording, its row\n"
    "and its archive copy's case tag are not changed (evidockctl log shows both). Recordings already in\n"
    "the case are left as they are. Either every matched recording is assigned or none.\n"
    "\n" CTL_SELECT_HELP "  -r, --reason TEXT    why\n"
    "      --json           what changed, as one JSON object\n"
    "  -h, --help           this help\n";

static const char unassign_help[] =
    "Usage: evidockctl case unassign CASE (--file ID | --device ID --seq N[-M] |\n"
    "                                      --officer ID --from TIME --to TIME) --reason TEXT\n"
    "\n"
    "Takes the matched recordings that are in CASE out of it: they are then in no case (and fall back to\n"
    "ordinary retention). Recordings in another case are left alone.\n"
    "\n" CTL_SELECT_HELP "  -r, --reason TEXT    why\n"
    "      --json           what changed, as one JSON object\n"
    "  -h, --help           this help\n";

static int change_run(Ctl *c, int argc, char **argv, const char *help, bool assign)
{
        CaseArgs a = {};
        int r = case_args(c, argc, argv, help, false, true, &a);
        if (r >= 0)
                return r;
        EvdFileSelector sel;
        r = ctl_select_build(c, &a.sel, help, &sel);
        if (r != 0)
                return r;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdError err = {};
        EvdLifecycleChange ch = {};
        r = assign ? evd_case_assign(db, a.case_number, &sel, a.reason, &ch, &err)
                   : evd_case_unassign(db, a.case_number, &sel, a.reason, &ch, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        char done[128];
        snprintf(done, sizeof(done), "%s case %s", assign ? "assigned to" : "taken out of", a.case_number);
        r = ctl_select_print_change(c, &ch, done, assign ? "were in it already" : "were not in it");
        evd_lifecycle_change_clear(&ch);
        return r;
}

static int assign_run(Ctl *c, int argc, char **argv)
{
        return change_run(c, argc, argv, assign_help, true);
}

static int unassign_run(Ctl *c, int argc, char **argv)
{
        return change_run(c, argc, argv, unassign_help, false);
}

static const char show_help[] =
    "Usage: evidockctl case show CASE [--json]\n"
    "\n"
    "The case, the recordings in it now (with the case the recorder gave, which the archive copy is\n"
    "tagged with), and every association that named it: who, when, why, what it superseded.\n"
    "\n"
    "      --json           one JSON object\n"
    "  -h, --help           this help\n";

static int show_run(Ctl *c, int argc, char **argv)
{
        int r = ctl_parse_plain(c, argc, argv, 1, 1, show_help);
        if (r >= 0)
                return r;
        const char *case_number = argv[optind];
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdError err = {};
        _cleanup_(evd_case_info_freep) EvdCaseInfo *k = NULL;
        r = evd_case_get(db, case_number, &k, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        EvdCaseFile *files = NULL;
        EvdAssociation *hist = NULL;
        size_t nf = 0, nh = 0;
        r = evd_case_files(db, case_number, &files, &nf, &hist, &nh, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));

        if (c->json) {
                _cleanup_(json_object_putp) json_object *j = case_json(k);
                json_object *jf = json_object_new_array(), *jh = json_object_new_array();
                for (size_t i = 0; j && jf && i < nf; i++) {
                        json_object *o = json_object_new_object();
                        if (!o)
                                break;
                        json_object_object_add(o, "file_id", json_object_new_int64(files[i].file_id));
                        json_object_object_add(o, "device_id", ctl_json_string(files[i].device_id));
                        json_object_object_add(o, "officer_id", ctl_json_string(files[i].officer_id));
                        json_object_object_add(
                            o, "seq",
                            files[i].has_seq ? json_object_new_int64((int64_t)files[i].seq) : NULL);
                        json_object_object_add(o, "recorded_at", ctl_json_time_local(files[i].recorded_us));
                        json_object_object_add(o, "current_case", ctl_json_string(files[i].current_case));
                        json_object_object_add(o, "recorder_case", ctl_json_string(files[i].recorder_case));
                        json_object_object_add(
                            o, "association_id",
                            files[i].association_id ? json_object_new_int64(files[i].association_id) : NULL);
                        json_object_object_add(o, "sha256", ctl_json_string(files[i].sha256));
                        json_object_object_add(o, "disposed", json_object_new_boolean(files[i].disposed));
                        json_object_array_add(jf, o);
                }
                for (size_t i = 0; j && jh && i < nh; i++) {
                        json_object *o = json_object_new_object();
                        if (!o)
                                break;
                        json_object_object_add(o, "id", json_object_new_int64(hist[i].id));
                        json_object_object_add(o, "file_id", json_object_new_int64(hist[i].file_id));
                        json_object_object_add(o, "action", ctl_json_string(hist[i].action));
                        json_object_object_add(o, "supersedes",
                                               hist[i].supersedes ? json_object_new_int64(hist[i].supersedes)
                                                                  : NULL);
                        json_object_object_add(o, "by", ctl_json_string(hist[i].actor));
                        json_object_object_add(o, "at", ctl_json_time_local(hist[i].at_us));
                        json_object_object_add(o, "reason", ctl_json_string(hist[i].reason));
                        json_object_object_add(o, "custody_event_id",
                                               json_object_new_int64(hist[i].custody_event_id));
                        json_object_array_add(jh, o);
                }
                if (j) {
                        json_object_object_add(j, "recordings", jf);
                        json_object_object_add(j, "associations", jh);
                } else {
                        json_object_put(jf);
                        json_object_put(jh);
                }
                evd_case_file_array_free(files, nf);
                evd_association_array_free(hist, nh);
                return !j || ctl_json_print(j) < 0 ? EXIT_ERROR : EXIT_CLEAN;
        }

        r = print_case(c, db, case_number);
        static const char *const fh[] = {
            "FILE", "DEVICE", "SEQ", "OFFICER", "RECORDED", "RECORDER CASE (TAG)", "HOW", "STATE"};
        _cleanup_(ctl_table_freep) CtlTable *t = ctl_table_new(ELEMENTSOF(fh), fh);
        for (size_t i = 0; t && i < nf; i++) {
                char id[24], seq[24], when[48], how[48];
                snprintf(id, sizeof(id), "%" PRId64, files[i].file_id);
                snprintf(seq, sizeof(seq), "%" PRIu64, files[i].seq);
                format_time_local(files[i].recorded_us, when, sizeof(when));
                if (files[i].association_id)
                        snprintf(how, sizeof(how), "association %" PRId64, files[i].association_id);
                else
                        snprintf(how, sizeof(how), "from the recorder");
                bool differs = !files[i].recorder_case || strcmp(files[i].recorder_case, case_number) != 0;
                (void)ctl_table_addf(t, 8, id, files[i].device_id, files[i].has_seq ? seq : NULL,
                                     files[i].officer_id, when,
                                     files[i].recorder_case ? files[i].recorder_case : "(none)", how,
                                     files[i].disposed ? "disposed"
                                     : differs         ? "tag differs"
                                                       : "stored");
        }
        if (t && nf > 0) {
                printf("\n");
                ctl_table_print(t, stdout);
        }
        static const char *const hh[] = {"ID", "FILE", "ACTION", "SUPERSEDES", "BY", "AT", "REASON"};
        _cleanup_(ctl_table_freep) CtlTable *h = ctl_table_new(ELEMENTSOF(hh), hh);
        for (size_t i = 0; h && i < nh; i++) {
                char id[24], file[24], sup[24], when[48];
                snprintf(id, sizeof(id), "%" PRId64, hist[i].id);
                snprintf(file, sizeof(file), "%" PRId64, hist[i].file_id);
                snprintf(sup, sizeof(sup), "%" PRId64, hist[i].supersedes);
                format_time_local(hist[i].at_us, when, sizeof(when));
                (void)ctl_table_addf(h, 7, id, file, hist[i].action, hist[i].supersedes ? sup : NULL,
                                     hist[i].actor, when, hist[i].reason);
        }
        if (h && nh > 0) {
                printf("\nassociations:\n");
                ctl_table_print(h, stdout);
        }
        evd_case_file_array_free(files, nf);
        evd_association_array_free(hist, nh);
        return r;
}

static const char list_help[] = "Usage: evidockctl case list [--json]\n"
                                "\n"
                                "Every case: number, category, opened, closed, recordings in it now.\n"
                                "\n"
                                "      --json           one JSON object per case\n"
                                "  -h, --help           this help\n";

static int list_run(Ctl *c, int argc, char **argv)
{
        int r = ctl_parse_plain(c, argc, argv, 0, 0, list_help);
        if (r >= 0)
                return r;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdError err = {};
        EvdCaseInfo *v = NULL;
        size_t n = 0;
        r = evd_case_list(db, &v, &n, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        static const char *const headers[] = {"CASE", "CATEGORY", "OPENED", "CLOSED", "ARCHIVE BY", "FILES"};
        _cleanup_(ctl_table_freep) CtlTable *t =
            c->json ? NULL : ctl_table_new(ELEMENTSOF(headers), headers);
        r = EXIT_CLEAN;
        for (size_t i = 0; i < n; i++) {
                if (c->json) {
                        _cleanup_(json_object_putp) json_object *j = case_json(&v[i]);
                        if (!j || ctl_json_print(j) < 0)
                                r = EXIT_ERROR;
                        continue;
                }
                char opened[48], closed[48] = "-", due[48] = "-", files[24];
                format_time_local(v[i].opened_us, opened, sizeof(opened));
                if (v[i].closed) {
                        format_time_local(v[i].closed_us, closed, sizeof(closed));
                        format_time_local(v[i].closed_us + (int64_t)30 * 86400 * 1000000, due, sizeof(due));
                }
                snprintf(files, sizeof(files), "%zu", v[i].n_files);
                if (t)
                        (void)ctl_table_addf(t, 6, v[i].case_number, v[i].category, opened, closed, due,
                                             files);
        }
        if (t) {
                ctl_table_right(t, 5);
                ctl_table_print(t, stdout);
        }
        evd_case_info_array_free(v, n);
        return r;
}

static const CtlSubcommand subs[] = {
    {"open", "open a case (number, category)", open_run},
    {"close", "close a case: starts the 30-day archiving clock", close_run},
    {"reopen", "reopen a closed case", reopen_run},
    {"assign", "put recordings in a case (one, a seq range, an officer's window)", assign_run},
    {"unassign", "take recordings out of a case", unassign_run},
    {"show", "a case, its recordings and their association history", show_run},
    {"list", "every case", list_run},
};

static int case_run(Ctl *c, int argc, char **argv)
{
        return ctl_dispatch(c, subs, ELEMENTSOF(subs), argc, argv);
}

const CtlCommand ctl_cmd_case = {
    .name = "case",
    .synopsis = "case open|close|reopen|assign|unassign|show|list ...",
    .summary = "cases and the association of recordings with them after the fact",
    .run = case_run,
};
