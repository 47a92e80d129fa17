/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidockctl audit verify: proves the custody log unaltered (its hash chain, end to end), cross-checks the
 * evidence tables against it and compares it with a head recorded outside the database. */
#include <inttypes.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl-common.h"
#include "custody-audit.h"
#include "custody.h"
#include "output.h"
#include "hash.h"
#include "macro.h"

static const char verify_help[] =
    "Usage: evidockctl audit verify [--checkpoint FILE|--head ID:HASH] [--json]\n"
    "\n"
    "Recomputes the custody log's hash chain from the first event to the last, cross-checks the evidence\n"
    "tables against it (every file, docking and docking result has the events written with it; one that\n"
    "has not is named), and, given a head recorded earlier outside the database, checks that the log still\n"
    "holds it (a cut tail or a rewritten log shows only this way). Exit status 0 intact, 2 broken (what\n"
    "is named), 1 could not verify.\n"
    "\n"
    "      --checkpoint FILE  the last 'head ID HASH' in FILE ('-': standard input), e.g. a journal export\n"
    "                         of earlier 'custody log intact: ..., head ID HASH' lines\n"
    "      --head ID:HASH     a head written down by hand\n"
    "      --json             the result as one JSON object\n"
    "  -h, --help             this help\n";

typedef struct Gaps {
        json_object *list; /* --json */
        uint64_t shown;
} Gaps;

static void gap_print(const EvdCustodyGap *g, void *userdata)
{
        Gaps *gaps = userdata;
        static const char *const why[] = {
            [EVD_CUSTODY_GAP_FILE] = "has no recorded/quarantined custody event",
            [EVD_CUSTODY_GAP_DOCKING] = "has no custody event",
            [EVD_CUSTODY_GAP_RESULT] = "has a result but no docking_done/interrupted/refused custody event",
        };
        if (gaps->list) {
                json_object *o = json_object_new_object();
                if (!o)
                        return;
                json_object_object_add(o, "kind", ctl_json_string(evd_custody_gap_kind_to_string(g->kind)));
                json_object_object_add(o, "id", json_object_new_int64(g->id));
                json_object_object_add(o, "device_id", ctl_json_string(g->device_id));
                json_object_object_add(o, "name", ctl_json_string(g->name));
                json_object_array_add(gaps->list, o);
        } else {
                printf("  %s %" PRId64 " (%s%s%s) %s\n",
                       g->kind == EVD_CUSTODY_GAP_FILE ? "file" : "docking", g->id,
                       *g->device_id ? g->device_id : "-", *g->name ? " " : "", text_shown(g->name),
                       why[g->kind]);
        }
        gaps->shown++;
}

static int read_checkpoint(Ctl *c, const char *path, EvdCustodyCheckpoint *cp)
{
        FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
        if (!f) {
                ctl_error(c, "cannot read checkpoint %s: %s", path, strerror(errno));
                return -1;
        }
        /* the last head in the file wins; read it whole (a journal export of a year is a few MB) */
        char *text = NULL;
        size_t size = 0;
        FILE *m = open_memstream(&text, &size);
        char buf[65536];
        size_t n;
        while (m && (n = fread(buf, 1, sizeof(buf), f)) > 0)
                fwrite(buf, 1, n, m);
        bool bad = ferror(f);
        if (f != stdin)
                fclose(f);
        if (m)
                fclose(m);
        if (!m || bad) {
                free(text);
                ctl_error(c, "cannot read checkpoint %s", path);
                return -1;
        }
        int r = evd_custody_checkpoint_parse(text, cp);
        free(text);
        if (r < 0) {
                ctl_error(c, "%s holds no 'head ID HASH' (64 lower-case hex digits)", path);
                return -1;
        }
        return 0;
}

static int verify_run(Ctl *c, int argc, char **argv)
{
        static const struct option opts[] = {{"checkpoint", required_argument, NULL, 'c'},
                                             {"head", required_argument, NULL, 'H'},
                                             CTL_OPTION_JSON,
                                             CTL_OPTION_HELP,
                                             {}};
        const char *checkpoint = NULL, *head = NULL;
        int o;
        while ((o = ctl_getopt(c, argc, argv, opts, verify_help)) > 0) {
                if (o == 'c')
                        checkpoint = optarg;
                else if (o == 'H')
                        head = optarg;
        }
        if (o < 0)
                return ctl_opt_exit(o);
        if (ctl_positional(c, argc, argv, 0, 0, verify_help) < 0)
                return EXIT_USAGE;
        if (checkpoint && head)
                return ctl_usage_error(c, verify_help, "--checkpoint and --head exclude each other");
        bool have_cp = false;
        EvdCustodyCheckpoint cp = {};
        if (head) {
                char line[160];
                snprintf(line, sizeof(line), "head %s", head);
                char *colon = strchr(line, ':');
                if (colon)
                        *colon = ' ';
                if (!colon || evd_custody_checkpoint_parse(line, &cp) < 0)
                        return ctl_usage_error(c, verify_help,
                                               "--head wants ID:HASH (64 lower-case hex digits)");
                have_cp = true;
        } else if (checkpoint) {
                if (read_checkpoint(c, checkpoint, &cp) < 0)
                        return EXIT_ERROR;
                have_cp = true;
        }

        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdError err = {};
        EvdCustodyReport rep = {};
        int r = evd_custody_verify(db, &rep, &err);
        if (r < 0)
                return ctl_error(c, "could not verify: %s", evd_error_message(&err, r));
        char hex[2 * EVD_DIGEST_SIZE + 1];
        if (!c->json) {
                if (rep.ok)
                        printf("custody log intact: %" PRIu64 " events, head %" PRId64 " %s\n", rep.n_events,
                               rep.head_id, evd_hex(rep.head_hash, EVD_DIGEST_SIZE, hex));
                else
                        printf("custody log BROKEN at event %" PRId64 ": %s: %s\n", rep.first_bad_id,
                               evd_custody_problem_to_string(rep.problem), rep.detail);
        }

        /* Evidence rows without their custody events. */
        _cleanup_(json_object_putp) json_object *gap_list = c->json ? json_object_new_array() : NULL;
        Gaps gaps = {.list = gap_list};
        uint64_t n_gaps = 0;
        r = evd_custody_crosscheck(db, gap_print, &gaps, &n_gaps, &err);
        if (r < 0)
                return ctl_error(c, "could not cross-check: %s", evd_error_message(&err, r));
        if (!c->json) {
                if (n_gaps == 0)
                        printf("evidence rows and custody log agree\n");
                else if (n_gaps > gaps.shown)
                        printf("%" PRIu64 " evidence rows without their custody events (the first %" PRIu64
                               " above)\n",
                               n_gaps, gaps.shown);
                else
                        printf("%" PRIu64 " evidence row(s) without their custody events (above)\n", n_gaps);
        }

        /* A head recorded outside the database. */
        EvdCheckpointReport cr = {};
        if (have_cp) {
                r = evd_custody_checkpoint_compare(db, &cp, &cr, &err);
                if (r < 0)
                        return ctl_error(c, "could not compare with the checkpoint: %s",
                                         evd_error_message(&err, r));
                if (!c->json)
                        printf("checkpoint head %" PRId64 ": %s: %s\n", cp.id,
                               cr.outcome == EVD_CHECKPOINT_MATCH ? "still in the log" : "MISMATCH",
                               cr.detail);
        }
        bool ok = rep.ok && n_gaps == 0 && (!have_cp || cr.outcome == EVD_CHECKPOINT_MATCH);

        if (c->json) {
                _cleanup_(json_object_putp) json_object *j = json_object_new_object();
                if (!j)
                        return EXIT_ERROR;
                json_object_object_add(j, "intact", json_object_new_boolean(rep.ok));
                json_object_object_add(j, "events", json_object_new_uint64(rep.n_events));
                if (rep.ok) {
                        json_object_object_add(j, "head_id", json_object_new_int64(rep.head_id));
                        json_object_object_add(
                            j, "head_hash", ctl_json_string(evd_hex(rep.head_hash, EVD_DIGEST_SIZE, hex)));
                } else {
                        json_object_object_add(j, "first_bad_id", json_object_new_int64(rep.first_bad_id));
                        json_object_object_add(j, "problem",
                                               ctl_json_string(evd_custody_problem_to_string(rep.problem)));
                        json_object_object_add(j, "detail", ctl_json_string(rep.detail));
                }
                json_object_object_add(j, "rows_without_events", json_object_new_uint64(n_gaps));
                json_object_object_add(j, "rows", json_object_get(gap_list));
                if (have_cp) {
                        json_object *k = json_object_new_object();
                        if (k) {
                                json_object_object_add(k, "id", json_object_new_int64(cp.id));
                                json_object_object_add(
                                    k, "outcome",
                                    ctl_json_string(evd_checkpoint_outcome_to_string(cr.outcome)));
                                json_object_object_add(k, "detail", ctl_json_string(cr.detail));
                                json_object_object_add(j, "checkpoint", k);
                        }
                }
                json_object_object_add(j, "ok", json_object_new_boolean(ok));
                if (ctl_json_print(j) < 0)
                        return EXIT_ERROR;
        }
        return ok ? EXIT_CLEAN : EXIT_FINDINGS;
}

int ctl_audit_fixity_run(Ctl *c, int argc, char **argv); /* ctl-audit-fixity.c */

static const CtlSubcommand subs[] = {
    {"verify", "prove the custody log unaltered", verify_run},
    {"fixity", "re-hash stored files against the database", ctl_audit_fixity_run},
};

static int audit_run(Ctl *c, int argc, char **argv)
{
        return ctl_dispatch(c, subs, ELEMENTSOF(subs), argc, argv);
}

const CtlCommand ctl_cmd_audit = {
    .name = "audit",
    .synopsis = "audit verify|fixity",
    .summary = "prove the custody log unaltered and the stored files unchanged",
    .run = audit_run,
};
