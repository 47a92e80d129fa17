/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidockctl dispose propose|approve|reject|execute|list: two-person disposal of expired ordinary
 * recordings (docs/lifecycle.md). Never automatic. */
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>

#include "clock.h"
#include "ctl-common.h"
#include "disposal.h"
#include "macro.h"
#include "output.h"
#include "store.h"

#define CTL_DISPOSE_MAX_FILES 1000u /* --file given on one command line */

static const char propose_help[] =
    "Usage: evidockctl dispose propose [--file ID]... --reason TEXT\n"
    "\n"
    "Proposes a disposal batch: the named recordings, or without --file every recording that is\n"
    "disposable now (retention expired; in no case; not long-term; not on legal hold). A named recording\n"
    "that is not disposable is refused with the reason. A different admin must approve the batch before\n"
    "it can be executed.\n"
    "\n"
    "  -F, --file ID        a recording (repeat for more)\n"
    "  -r, --reason TEXT    why\n"
    "      --json           the batch as one JSON object\n"
    "  -h, --help           this help\n";

static int propose_run(Ctl *c, int argc, char **argv)
{
        static const struct option opts[] = {{"file", required_argument, NULL, 'F'},
                                             {"reason", required_argument, NULL, 'r'},
                                             CTL_OPTION_JSON,
                                             CTL_OPTION_HELP,
                                             {}};
        int64_t ids[CTL_DISPOSE_MAX_FILES];
        size_t n = 0;
        const char *reason = NULL;
        int o;
        while ((o = ctl_getopt(c, argc, argv, opts, propose_help)) > 0) {
                if (o == 'r')
                        reason = optarg;
                else if (n >= CTL_DISPOSE_MAX_FILES)
                        return ctl_usage_error(c, propose_help, "more than %u --file options",
                                               CTL_DISPOSE_MAX_FILES);
                else if (ctl_parse_id(optarg, &ids[n++]) < 0)
                        return ctl_usage_error(c, propose_help, "--file '%s' is not a file id", optarg);
        }
        if (o < 0)
                return ctl_opt_exit(o);
        if (ctl_positional(c, argc, argv, 0, 0, propose_help) < 0)
                return EXIT_USAGE;
        if (!reason)
                return ctl_usage_error(c, propose_help, "--reason is required");
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdError err = {};
        int64_t batch = 0;
        size_t m = 0;
        int r = evd_disposal_propose(db, &c->cfg.retention, evd_clock_wall_us(), n ? ids : NULL, n, reason,
                                     &batch, &m, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        if (c->json) {
                _cleanup_(json_object_putp) json_object *j = json_object_new_object();
                if (!j)
                        return EXIT_ERROR;
                json_object_object_add(j, "batch", json_object_new_int64(batch));
                json_object_object_add(j, "files", json_object_new_int64((int64_t)m));
                json_object_object_add(j, "state", json_object_new_string("proposed"));
                return ctl_json_print(j) < 0 ? EXIT_ERROR : EXIT_CLEAN;
        }
        printf("disposal batch %" PRId64 " proposed: %zu recording(s). A different admin approves it with\n"
               "  evidockctl dispose approve %" PRId64 " --reason TEXT\n",
               batch, m, batch);
        return EXIT_CLEAN;
}

static const char approve_help[] =
    "Usage: evidockctl dispose approve BATCH --reason TEXT\n"
    "\n"
    "Approves a proposed batch. Only an admin other than the proposer (another\n"
    "database login) may; the database refuses it otherwise.\n"
    "\n"
    "  -r, --reason TEXT    why\n"
    "      --json           the decision as one JSON object\n"
    "  -h, --help           this help\n";

static const char reject_help[] = "Usage: evidockctl dispose reject BATCH --reason TEXT\n"
                                  "\n"
                                  "Rejects a proposed batch: it can never be executed.\n"
                                  "\n"
                                  "  -r, --reason TEXT    why\n"
                                  "      --json           the decision as one JSON object\n"
                                  "  -h, --help           this help\n";

static int decide(Ctl *c, int argc, char **argv, bool approve)
{
        const char *help = approve ? approve_help : reject_help;
        const char *reason = NULL;
        int q =
            ctl_parse(c, argc, argv, (const CtlOption[]){{"reason", 'r', .text = &reason}, {}}, 1, 1, help);
        if (q >= 0)
                return q;
        int64_t batch;
        if (ctl_parse_id(argv[optind], &batch) < 0)
                return ctl_usage_error(c, help, "'%s' is not a batch number", argv[optind]);
        if (!reason)
                return ctl_usage_error(c, help, "--reason is required");
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdError err = {};
        int r = evd_disposal_decide(db, batch, approve, reason, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        if (c->json) {
                _cleanup_(json_object_putp) json_object *j = json_object_new_object();
                if (!j)
                        return EXIT_ERROR;
                json_object_object_add(j, "batch", json_object_new_int64(batch));
                json_object_object_add(j, "state",
                                       json_object_new_string(approve ? "approved" : "rejected"));
                return ctl_json_print(j) < 0 ? EXIT_ERROR : EXIT_CLEAN;
        }
        printf("disposal batch %" PRId64 " %s\n", batch, approve ? "approved" : "rejected");
        return EXIT_CLEAN;
}

static int approve_run(Ctl *c, int argc, char **argv)
{
        return decide(c, argc, argv, true);
}

static int reject_run(Ctl *c, int argc, char **argv)
{
        return decide(c, argc, argv, false);
}

static const char execute_help[] =
    "Usage: evidockctl dispose execute BATCH [--json]\n"
    "\n"
    "Executes an approved batch: for each recording, checks again that it may go (a case, a long-term\n"
    "mark or a hold set since the proposal keeps it) and that the stored bytes are the recorded ones,\n"
    "records the disposal (row + custody event naming the hashes), then removes the original and the\n"
    "archive copy. Every row and hash stays in the database. An interrupted execution (crash, kill) is\n"
    "finished by running this again; a finished batch is never executed twice. Exit status 2 when\n"
    "recordings were skipped.\n"
    "\n"
    "      --json           one JSON object per recording, then the totals\n"
    "  -h, --help           this help\n";

static void on_step(const EvdDisposalStep *s, void *userdata)
{
        Ctl *c = userdata;
        static const char *const kinds[] = {"recorded", "removed", "skipped", "resumed"};
        if (c->json) {
                if (s->kind == EVD_DISPOSAL_RECORDED)
                        return;
                _cleanup_(json_object_putp) json_object *j = json_object_new_object();
                if (!j)
                        return;
                json_object_object_add(j, "file_id", json_object_new_int64(s->file_id));
                json_object_object_add(j, "step", json_object_new_string(kinds[s->kind]));
                json_object_object_add(j, "path", ctl_json_string(s->original_path));
                json_object_object_add(j, "why", ctl_json_string(s->why));
                (void)ctl_json_print(j);
                return;
        }
        if (s->kind == EVD_DISPOSAL_REMOVED)
                printf("disposed of file %" PRId64 " (%s)\n", s->file_id, s->original_path);
        else if (s->kind == EVD_DISPOSAL_RESUMED)
                printf("disposed of file %" PRId64 " (%s; recorded by an interrupted run)\n", s->file_id,
                       s->original_path);
        else if (s->kind == EVD_DISPOSAL_SKIPPED)
                printf("KEPT file %" PRId64 ": %s\n", s->file_id, s->why);
        fflush(stdout);
}

static int execute_run(Ctl *c, int argc, char **argv)
{
        int r = ctl_parse_plain(c, argc, argv, 1, 1, execute_help);
        if (r >= 0)
                return r;
        int64_t batch;
        if (ctl_parse_id(argv[optind], &batch) < 0)
                return ctl_usage_error(c, execute_help, "'%s' is not a batch number", argv[optind]);
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdError err = {};
        _cleanup_(evd_store_freep) EvdStore *store = NULL;
        r = evd_store_open(c->cfg.store_root, &store, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        /* a disposal in progress is finished or resumed, never half-cancelled by ^C */
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        EvdDisposalResult res = {};
        r = evd_disposal_execute(db, store, &c->cfg.retention, evd_clock_wall_us(), batch, on_step, c, &res,
                                 &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        if (c->json) {
                _cleanup_(json_object_putp) json_object *j = json_object_new_object();
                if (!j)
                        return EXIT_ERROR;
                json_object_object_add(j, "kind", json_object_new_string("totals"));
                json_object_object_add(j, "batch", json_object_new_int64(batch));
                json_object_object_add(j, "disposed", json_object_new_int64((int64_t)res.n_disposed));
                json_object_object_add(j, "resumed", json_object_new_int64((int64_t)res.n_resumed));
                json_object_object_add(j, "skipped", json_object_new_int64((int64_t)res.n_skipped));
                json_object_object_add(j, "bytes_freed", json_object_new_int64((int64_t)res.bytes_freed));
                if (ctl_json_print(j) < 0)
                        return EXIT_ERROR;
        } else
                printf("disposal batch %" PRId64
                       " executed: %zu recording(s) disposed of (%zu finished from an "
                       "interrupted run), %zu kept, %" PRIu64 " bytes freed\n",
                       batch, res.n_disposed, res.n_resumed, res.n_skipped, res.bytes_freed);
        return res.n_skipped ? EXIT_FINDINGS : EXIT_CLEAN;
}

static const char list_help[] = "Usage: evidockctl dispose list [BATCH] [--json]\n"
                                "\n"
                                "Disposal batches, newest first: state (proposed, approved, rejected,\n"
                                "interrupted, executed), who proposed and decided, why; with BATCH, also\n"
                                "its recordings.\n"
                                "\n"
                                "      --json           one JSON object per batch\n"
                                "  -h, --help           this help\n";

static int list_run(Ctl *c, int argc, char **argv)
{
        int r = ctl_parse_plain(c, argc, argv, 0, 1, list_help);
        if (r >= 0)
                return r;
        int64_t batch = 0;
        if (optind < argc && ctl_parse_id(argv[optind], &batch) < 0)
                return ctl_usage_error(c, list_help, "'%s' is not a batch number", argv[optind]);
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdError err = {};
        EvdDisposalBatch *v = NULL;
        size_t n = 0;
        r = evd_disposal_list(db, batch, &v, &n, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        static const char *const headers[] = {"BATCH",       "STATE",  "FILES",      "DISPOSED",
                                              "PROPOSED BY", "REASON", "DECIDED BY", "DECISION REASON"};
        _cleanup_(ctl_table_freep) CtlTable *t =
            c->json ? NULL : ctl_table_new(ELEMENTSOF(headers), headers);
        r = EXIT_CLEAN;
        for (size_t i = 0; i < n; i++) {
                const EvdDisposalBatch *b = &v[i];
                if (c->json) {
                        _cleanup_(json_object_putp) json_object *j = json_object_new_object();
                        if (!j) {
                                r = EXIT_ERROR;
                                break;
                        }
                        json_object_object_add(j, "batch", json_object_new_int64(b->id));
                        json_object_object_add(j, "state",
                                               ctl_json_string(evd_disposal_state_to_string(b->state)));
                        json_object_object_add(j, "files", json_object_new_int64((int64_t)b->n_files));
                        json_object_object_add(j, "disposed", json_object_new_int64((int64_t)b->n_disposed));
                        json_object_object_add(j, "proposed_by", ctl_json_string(b->proposed_by));
                        json_object_object_add(j, "proposed_at", ctl_json_time_local(b->proposed_us));
                        json_object_object_add(j, "reason", ctl_json_string(b->reason));
                        json_object_object_add(j, "decided_by", ctl_json_string(b->decided_by));
                        json_object_object_add(j, "decided_at",
                                               b->decided_by ? ctl_json_time_local(b->decided_us) : NULL);
                        json_object_object_add(j, "decision_reason", ctl_json_string(b->decision_reason));
                        if (b->file_ids) {
                                json_object *ids = json_object_new_array();
                                for (size_t k = 0; ids && k < b->n_files; k++)
                                        json_object_array_add(ids, json_object_new_int64(b->file_ids[k]));
                                json_object_object_add(j, "file_ids", ids);
                        }
                        if (ctl_json_print(j) < 0)
                                r = EXIT_ERROR;
                        continue;
                }
                char id[24], files[24], disposed[24];
                snprintf(id, sizeof(id), "%" PRId64, b->id);
                snprintf(files, sizeof(files), "%zu", b->n_files);
                snprintf(disposed, sizeof(disposed), "%zu", b->n_disposed);
                if (t)
                        (void)ctl_table_addf(t, 8, id, evd_disposal_state_to_string(b->state), files,
                                             disposed, b->proposed_by, b->reason, b->decided_by,
                                             b->decision_reason);
        }
        if (t)
                ctl_table_print(t, stdout);
        if (!c->json && n == 1 && v[0].file_ids) {
                printf("recordings:");
                for (size_t k = 0; k < v[0].n_files; k++)
                        printf(" %" PRId64, v[0].file_ids[k]);
                printf("\n");
        }
        evd_disposal_batch_array_free(v, n);
        return r;
}

static const CtlSubcommand subs[] = {
    {"propose", "propose a batch of expired recordings for disposal", propose_run},
    {"approve", "approve a batch (a different admin)", approve_run},
    {"reject", "reject a batch", reject_run},
    {"execute", "dispose of an approved batch (resumes an interrupted one)", execute_run},
    {"list", "disposal batches and their state", list_run},
};

static int dispose_run(Ctl *c, int argc, char **argv)
{
        return ctl_dispatch(c, subs, ELEMENTSOF(subs), argc, argv);
}

const CtlCommand ctl_cmd_dispose = {
    .name = "dispose",
    .synopsis = "dispose propose|approve|reject|execute|list ...",
    .summary = "two-person disposal of expired ordinary recordings",
    .run = dispose_run,
};
