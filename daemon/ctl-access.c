/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidockctl access: confidentiality, unit membership, requests, approvals and approved viewing
 * (docs/access.md). The database decides and logs (migration 8); this file parses, calls lib/access.h and
 * prints. A refusal is also written to the custody log (access_refused) with the login and the reason. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "access.h"
#include "ctl-common.h"
#include "hash.h"
#include "macro.h"
#include "output.h"

static int parse_duration_s(const char *s, int64_t *ret)
{
        int64_t us;
        if (evd_parse_duration_us(s, &us) < 0 || us < 1000000)
                return -EINVAL;
        *ret = us / 1000000;
        return 0;
}

static void request_freep(EvdAccessRequestRow **p)
{
        evd_access_rows_free(*p, *p ? 1 : 0);
}

static void format_time(int64_t us, char *buf, size_t size)
{
        if (!us) {
                snprintf(buf, size, "-");
                return;
        }
        time_t t = (time_t)(us / 1000000);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(buf, size, "%Y-%m-%d %H:%M", &tm);
}

/* Says the error, writes it to the custody log as a refusal when the database refused, and returns the
 * exit status (3: refused, 1: other errors). */
static int refused(Ctl *c, EvdDb *db, int64_t request_id, int r, EvdError *err)
{
        const char *msg = evd_error_message(err, r);
        bool refusal = r == -EACCES || r == -EPERM || r == -ENOENT || r == -EEXIST;
        if (refusal && db)
                (void)evd_access_log_refusal(db, request_id, msg, NULL);
        ctl_error(c, "%s", msg);
        return refusal ? EXIT_REFUSED : EXIT_ERROR;
}

int ctl_log_listing(EvdDb *db, const EvdDbFileRow *files, size_t n, const char *what, EvdError *err)
{
        if (n == 0)
                return 0;
        _cleanup_free_ int64_t *ids = calloc(n, sizeof(int64_t));
        if (!ids)
                return evd_error_set(err, -ENOMEM, "logging a listing: out of memory");
        for (size_t i = 0; i < n; i++)
                ids[i] = files[i].id;
        return evd_access_log_listing(db, ids, n, what, err);
}

/* ---- level ------------------------------------------------------------------------------------- */

static const char level_help[] =
    "Usage: evidockctl access level (--file ID|--case NUMBER) LEVEL --reason TEXT [--json]\n"
    "\n"
    "Sets the confidentiality of one file or of every file of a case: normal, restricted, confidential or\n"
    "secret. Admins only; the reason is required and goes into the history and the custody log.\n"
    "\n"
    "      --file ID        one file\n"
    "      --case NUMBER    every file of the case (also files docked later)\n"
    "      --reason TEXT    why (required)\n"
    "      --json           the result as one JSON object\n"
    "  -h, --help           this help\n";

static int level_run(Ctl *c, int argc, char **argv)
{
        const char *file = NULL, *case_number = NULL, *reason = NULL;
        const CtlOption opts[] = {{"file", 'f', .text = &file},
                                  {"case", 'C', .text = &case_number},
                                  {"reason", 'r', .text = &reason},
                                  {}};
        int parsed = ctl_parse(c, argc, argv, opts, 1, 1, level_help);
        if (parsed >= 0)
                return parsed;
        int level = evd_confidentiality_from_string(argv[optind]);
        if (level < 0)
                return ctl_usage_error(c, level_help, "LEVEL is normal, restricted, confidential or secret");
        if (!file == !case_number)
                return ctl_usage_error(c, level_help, "give --file ID or --case NUMBER");
        int64_t file_id = 0;
        if (file && ctl_parse_id(file, &file_id) < 0)
                return ctl_usage_error(c, level_help, "--file wants a file id");
        if (!reason || !*reason)
                return ctl_usage_error(c, level_help,
                                       "--reason TEXT is required (it goes into the custody log)");
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdError err = {};
        int r = evd_access_set_level(db, file_id, case_number, (EvdConfidentiality)level, reason, &err);
        if (r < 0)
                return refused(c, db, 0, r, &err);
        if (c->json) {
                _cleanup_(json_object_putp) json_object *j = json_object_new_object();
                if (!j)
                        return EXIT_ERROR;
                if (file_id)
                        json_object_object_add(j, "file_id", json_object_new_int64(file_id));
                else
                        json_object_object_add(j, "case_number", ctl_json_string(case_number));
                json_object_object_add(j, "level", ctl_json_string(argv[optind]));
                json_object_object_add(j, "reason", ctl_json_string(reason));
                return ctl_json_print(j) < 0 ? EXIT_ERROR : EXIT_CLEAN;
        }
        if (file_id)
                printf("file %" PRId64 " is now %s\n", file_id, argv[optind]);
        else
                printf("case %s is now %s\n", text_shown(case_number), argv[optind]);
        return EXIT_CLEAN;
}

/* ---- unit ---------------------------------------------------------------------------------------- */

static const char unit_help[] =
    "Usage: evidockctl access unit add|remove LOGIN UNIT [--json]\n"
    "\n"
    "Adds a database login to a unit (as a viewer it then sees the unit's normal files) or removes it.\n"
    "Admins only.\n"
    "\n"
    "      --json           the result as one JSON object\n"
    "  -h, --help           this help\n";

static int unit_run(Ctl *c, int argc, char **argv)
{
        int r = ctl_parse_plain(c, argc, argv, 3, 3, unit_help);
        if (r >= 0)
                return r;
        const char *what = argv[optind], *login = argv[optind + 1], *unit = argv[optind + 2];
        bool add = strcmp(what, "add") == 0;
        if (!add && strcmp(what, "remove") != 0)
                return ctl_usage_error(c, unit_help, "'add' or 'remove', not '%s'", what);
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdError err = {};
        r = evd_access_unit_member(db, login, unit, add, &err);
        if (r < 0)
                return refused(c, db, 0, r, &err);
        if (c->json) {
                _cleanup_(json_object_putp) json_object *j = json_object_new_object();
                if (!j)
                        return EXIT_ERROR;
                json_object_object_add(j, "login", ctl_json_string(login));
                json_object_object_add(j, "unit", ctl_json_string(unit));
                json_object_object_add(j, "member", json_object_new_boolean(add));
                return ctl_json_print(j) < 0 ? EXIT_ERROR : EXIT_CLEAN;
        }
        printf("%s %s unit %s\n", login, add ? "added to" : "removed from", text_shown(unit));
        return EXIT_CLEAN;
}

/* ---- request ------------------------------------------------------------------------------------- */

static const char request_help[] =
    "Usage: evidockctl access request (--file ID...|--case NUMBER) (--view|--copy) --for DURATION\n"
    "                                 --purpose TEXT [--json]\n"
    "\n"
    "Asks to view or copy files (or a whole case) for a purpose and a time. Another admin approves or\n"
    "denies it; once approved, `access show ID` (view) and `evidockctl export ID` (copy) use it.\n"
    "\n"
    "      --file ID        a file (repeat for several)\n"
    "      --case NUMBER    every file of a case\n"
    "      --view           to view (default)\n"
    "      --copy           to copy out (export); includes viewing\n"
    "      --for DURATION   how long, e.g. 4h, 3d (at most 90d)\n"
    "      --purpose TEXT   why (required)\n"
    "      --json           the result as one JSON object\n"
    "  -h, --help           this help\n";

static int request_run(Ctl *c, int argc, char **argv)
{
        static const struct option opts[] = {{"file", required_argument, NULL, 'f'},
                                             {"case", required_argument, NULL, 'C'},
                                             {"view", no_argument, NULL, 'v'},
                                             {"copy", no_argument, NULL, 'c'},
                                             {"for", required_argument, NULL, 'F'},
                                             {"purpose", required_argument, NULL, 'p'},
                                             CTL_OPTION_JSON,
                                             CTL_OPTION_HELP,
                                             {}};
        _cleanup_free_ int64_t *ids = calloc((size_t)argc + 1, sizeof(int64_t));
        if (!ids)
                return EXIT_ERROR;
        EvdAccessRequestSpec spec = {.use = EVD_ACCESS_VIEW, .file_ids = ids};
        const char *duration = NULL;
        int o;
        while ((o = ctl_getopt(c, argc, argv, opts, request_help)) > 0) {
                switch (o) {
                case 'f':
                        if (ctl_parse_id(optarg, &ids[spec.n_file_ids]) < 0)
                                return ctl_usage_error(c, request_help, "--file wants a file id, not '%s'",
                                                       optarg);
                        spec.n_file_ids++;
                        break;
                case 'C':
                        spec.case_number = optarg;
                        break;
                case 'v':
                        spec.use = EVD_ACCESS_VIEW;
                        break;
                case 'c':
                        spec.use = EVD_ACCESS_COPY;
                        break;
                case 'F':
                        duration = optarg;
                        break;
                case 'p':
                        spec.purpose = optarg;
                        break;
                }
        }
        if (o < 0)
                return ctl_opt_exit(o);
        if (ctl_positional(c, argc, argv, 0, 0, request_help) < 0)
                return EXIT_USAGE;
        if ((spec.n_file_ids > 0) == (spec.case_number != NULL))
                return ctl_usage_error(c, request_help, "give --file ID (one or more) or --case NUMBER");
        if (!duration || parse_duration_s(duration, &spec.duration_s) < 0)
                return ctl_usage_error(c, request_help, "--for DURATION is required (e.g. 4h, 3d)");
        if (!spec.purpose || !*spec.purpose)
                return ctl_usage_error(c, request_help, "--purpose TEXT is required");
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdError err = {};
        int64_t id = 0;
        int r = evd_access_request(db, &spec, &id, &err);
        if (r < 0)
                return refused(c, db, 0, r, &err);
        if (c->json) {
                _cleanup_(json_object_putp) json_object *j = json_object_new_object();
                if (!j)
                        return EXIT_ERROR;
                json_object_object_add(j, "request_id", json_object_new_int64(id));
                json_object_object_add(j, "state", ctl_json_string("pending"));
                return ctl_json_print(j) < 0 ? EXIT_ERROR : EXIT_CLEAN;
        }
        printf("access request %" PRId64 " filed: %s of %s%s for %s (pending)\n", id,
               evd_access_use_to_string(spec.use), spec.case_number ? "case " : "",
               spec.case_number ? text_shown(spec.case_number) : "the files", duration);
        return EXIT_CLEAN;
}

/* ---- approve / deny ------------------------------------------------------------------------------ */

static const char approve_help[] =
    "Usage: evidockctl access approve ID [--for DURATION] [--reason TEXT] [--json]\n"
    "\n"
    "Approves someone else's access request (admins only), from now for the requested time or less.\n"
    "\n"
    "      --for DURATION   shorter than requested\n"
    "      --reason TEXT    a note for the record\n"
    "      --json           the result as one JSON object\n"
    "  -h, --help           this help\n";

static const char deny_help[] = "Usage: evidockctl access deny ID --reason TEXT [--json]\n"
                                "\n"
                                "Denies someone else's access request (admins only).\n"
                                "\n"
                                "      --reason TEXT    why (required)\n"
                                "      --json           the result as one JSON object\n"
                                "  -h, --help           this help\n";

static int decide(Ctl *c, int argc, char **argv, bool approve)
{
        const char *help = approve ? approve_help : deny_help;
        const char *reason = NULL, *duration = NULL;
        const CtlOption opts[] = {{"reason", 'r', .text = &reason}, {"for", 'F', .text = &duration}, {}};
        const CtlOption deny_opts[] = {{"reason", 'r', .text = &reason}, {}};
        int parsed = ctl_parse(c, argc, argv, approve ? opts : deny_opts, 1, 1, help);
        if (parsed >= 0)
                return parsed;
        int64_t id, duration_s = 0;
        if (ctl_parse_id(argv[optind], &id) < 0)
                return ctl_usage_error(c, help, "ID is a request number, not '%s'", argv[optind]);
        if (duration && parse_duration_s(duration, &duration_s) < 0)
                return ctl_usage_error(c, help, "--for wants a duration (e.g. 4h, 3d)");
        if (!approve && (!reason || !*reason))
                return ctl_usage_error(c, help, "--reason TEXT is required");
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdError err = {};
        int r = evd_access_decide(db, id, approve, reason, duration_s, &err);
        if (r < 0)
                return refused(c, db, id, r, &err);
        _cleanup_(request_freep) EvdAccessRequestRow *row = NULL;
        r = evd_access_get(db, id, &row, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        char until[32];
        format_time(row->expires_us, until, sizeof(until));
        if (c->json) {
                _cleanup_(json_object_putp) json_object *j = json_object_new_object();
                if (!j)
                        return EXIT_ERROR;
                json_object_object_add(j, "request_id", json_object_new_int64(id));
                json_object_object_add(j, "state", ctl_json_string(evd_access_state_to_string(row->state)));
                json_object_object_add(j, "requester", ctl_json_string(row->requester));
                json_object_object_add(j, "decided_by", ctl_json_string(row->decided_by));
                if (row->expires_us)
                        json_object_object_add(j, "expires", ctl_json_time_local(row->expires_us));
                return ctl_json_print(j) < 0 ? EXIT_ERROR : EXIT_CLEAN;
        }
        if (approve)
                printf("access request %" PRId64 " of %s approved until %s\n", id, row->requester, until);
        else
                printf("access request %" PRId64 " of %s denied\n", id, row->requester);
        return EXIT_CLEAN;
}

static int approve_run(Ctl *c, int argc, char **argv)
{
        return decide(c, argc, argv, true);
}

static int deny_run(Ctl *c, int argc, char **argv)
{
        return decide(c, argc, argv, false);
}

/* ---- list ---------------------------------------------------------------------------------------- */

static const char list_help[] = "Usage: evidockctl access list [--open] [--json]\n"
                                "\n"
                                "Lists access requests, newest first: a viewer its own, admins and auditors "
                                "all.\n"
                                "\n"
                                "      --open           only pending ones and approvals still running\n"
                                "      --json           one JSON object per request\n"
                                "  -h, --help           this help\n";

static int list_run(Ctl *c, int argc, char **argv)
{
        bool only_open = false;
        int parsed = ctl_parse(c, argc, argv, (const CtlOption[]){{"open", 'o', .flag = &only_open}, {}}, 0,
                               0, list_help);
        if (parsed >= 0)
                return parsed;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdError err = {};
        EvdAccessRequestRow *rows = NULL;
        size_t n = 0;
        int r = evd_access_list(db, only_open, 0, &rows, &n, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        static const char *const headers[] = {"ID",  "STATE",      "USE",   "REQUESTER", "WHAT",
                                              "FOR", "DECIDED BY", "UNTIL", "PURPOSE"};
        _cleanup_(ctl_table_freep) CtlTable *t =
            c->json ? NULL : ctl_table_new(ELEMENTSOF(headers), headers);
        int status = EXIT_CLEAN;
        for (size_t i = 0; i < n; i++) {
                const EvdAccessRequestRow *q = &rows[i];
                char id[24], what[200], dur[32], until[32];
                snprintf(id, sizeof(id), "%" PRId64, q->id);
                if (q->case_number)
                        snprintf(what, sizeof(what), "case %s", text_shown(q->case_number));
                else
                        snprintf(what, sizeof(what), "files %s", q->files ? q->files : "?");
                if (q->duration_s % 86400 == 0)
                        snprintf(dur, sizeof(dur), "%" PRId64 "d", q->duration_s / 86400);
                else if (q->duration_s % 3600 == 0)
                        snprintf(dur, sizeof(dur), "%" PRId64 "h", q->duration_s / 3600);
                else
                        snprintf(dur, sizeof(dur), "%" PRId64 "s", q->duration_s);
                format_time(q->expires_us, until, sizeof(until));
                if (c->json) {
                        _cleanup_(json_object_putp) json_object *j = json_object_new_object();
                        if (!j)
                                return EXIT_ERROR;
                        json_object_object_add(j, "request_id", json_object_new_int64(q->id));
                        json_object_object_add(j, "state",
                                               ctl_json_string(evd_access_state_to_string(q->state)));
                        json_object_object_add(j, "use", ctl_json_string(evd_access_use_to_string(q->use)));
                        json_object_object_add(j, "requester", ctl_json_string(q->requester));
                        json_object_object_add(j, "files", ctl_json_string(q->files));
                        json_object_object_add(j, "case_number", ctl_json_string(q->case_number));
                        json_object_object_add(j, "purpose", ctl_json_string(q->purpose));
                        json_object_object_add(j, "duration_s", json_object_new_int64(q->duration_s));
                        json_object_object_add(j, "requested", ctl_json_time_local(q->requested_us));
                        json_object_object_add(j, "decided_by", ctl_json_string(q->decided_by));
                        json_object_object_add(j, "reason", ctl_json_string(q->reason));
                        if (q->expires_us)
                                json_object_object_add(j, "expires", ctl_json_time_local(q->expires_us));
                        if (ctl_json_print(j) < 0)
                                status = EXIT_ERROR;
                } else if (t) {
                        ctl_table_addf(t, ELEMENTSOF(headers), id, evd_access_state_to_string(q->state),
                                       evd_access_use_to_string(q->use), q->requester, what, dur,
                                       q->decided_by, until, text_shown(q->purpose));
                }
        }
        evd_access_rows_free(rows, n);
        if (t) {
                if (ctl_table_rows(t) == 0)
                        printf("no access requests\n");
                else
                        ctl_table_print(t, stdout);
        }
        return status;
}

/* ---- show ---------------------------------------------------------------------------------------- */

static const char show_help[] =
    "Usage: evidockctl access show ID [--json]\n"
    "\n"
    "Shows the files of your approved request ID (each viewing is written to the custody log with the\n"
    "request's approver and purpose): id, recorder, seq, case, level, verdict, size, SHA-256, stored path.\n"
    "\n"
    "      --json           one JSON object per file\n"
    "  -h, --help           this help\n";

static int show_run(Ctl *c, int argc, char **argv)
{
        int r = ctl_parse_plain(c, argc, argv, 1, 1, show_help);
        if (r >= 0)
                return r;
        int64_t id;
        if (ctl_parse_id(argv[optind], &id) < 0)
                return ctl_usage_error(c, show_help, "ID is a request number, not '%s'", argv[optind]);
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdError err = {};
        EvdAccessItem *items = NULL;
        size_t n = 0;
        r = evd_access_open(db, id, EVD_ACCESS_VIEW, "evidockctl access show", &items, &n, &err);
        if (r < 0)
                return refused(c, db, id, r, &err);
        static const char *const headers[] = {"FILE",    "DEVICE", "SEQ",     "CASE",     "LEVEL",
                                              "VERDICT", "SIZE",   "SHA-256", "STORED AS"};
        _cleanup_(ctl_table_freep) CtlTable *t =
            c->json ? NULL : ctl_table_new(ELEMENTSOF(headers), headers);
        if (t)
                ctl_table_right(t, 6);
        int status = EXIT_CLEAN;
        for (size_t i = 0; i < n; i++) {
                const EvdAccessItem *it = &items[i];
                char fid[24], seq[24], size[24], hex[2 * EVD_DIGEST_SIZE + 1];
                snprintf(fid, sizeof(fid), "%" PRId64, it->file_id);
                snprintf(seq, sizeof(seq), it->has_seq ? "%" PRIu64 : "-", it->seq);
                snprintf(size, sizeof(size), "%" PRIu64, it->size);
                evd_hex(it->sha256, EVD_DIGEST_SIZE, hex);
                if (c->json) {
                        _cleanup_(json_object_putp) json_object *j = json_object_new_object();
                        if (!j)
                                break;
                        json_object_object_add(j, "file_id", json_object_new_int64(it->file_id));
                        json_object_object_add(j, "device_id", ctl_json_string(it->device_id));
                        if (it->has_seq)
                                json_object_object_add(j, "seq", json_object_new_uint64(it->seq));
                        json_object_object_add(j, "case_number", ctl_json_string(it->case_number));
                        json_object_object_add(j, "level",
                                               ctl_json_string(evd_confidentiality_to_string(it->level)));
                        json_object_object_add(j, "verdict", ctl_json_string(it->verdict));
                        json_object_object_add(j, "size", json_object_new_uint64(it->size));
                        json_object_object_add(j, "sha256", ctl_json_string(hex));
                        json_object_object_add(j, "original_path", ctl_json_string(it->original_path));
                        if (ctl_json_print(j) < 0)
                                status = EXIT_ERROR;
                } else if (t) {
                        ctl_table_addf(t, ELEMENTSOF(headers), fid, it->device_id, seq,
                                       it->case_number ? text_shown(it->case_number) : NULL,
                                       evd_confidentiality_to_string(it->level), it->verdict, size, hex,
                                       text_shown(it->original_path));
                }
        }
        evd_access_items_free(items, n);
        if (t)
                ctl_table_print(t, stdout);
        return status;
}

static const CtlSubcommand subs[] = {
    {"request", "ask to view or copy files or a case", request_run},
    {"approve", "approve someone else's request", approve_run},
    {"deny", "deny someone else's request", deny_run},
    {"list", "list access requests", list_run},
    {"show", "view the files of an approved request (logged)", show_run},
    {"level", "set the confidentiality of a file or a case", level_run},
    {"unit", "add a login to a unit or remove it", unit_run},
};

static int access_run(Ctl *c, int argc, char **argv)
{
        return ctl_dispatch(c, subs, ELEMENTSOF(subs), argc, argv);
}

const CtlCommand ctl_cmd_access = {
    .name = "access",
    .synopsis = "access request|approve|deny|list|show|level|unit ...",
    .summary = "who may see what: requests, approvals, confidentiality",
    .run = access_run,
};
