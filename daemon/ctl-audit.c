/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidockctl audit verify: proves the custody log unaltered (its hash chain, end to end). */
#include <inttypes.h>

#include "ctl-common.h"
#include "custody.h"
#include "hash.h"
#include "macro.h"

static const char verify_help[] =
    "Usage: evidockctl audit verify [--json]\n"
    "\n"
    "Recomputes the custody log's hash chain from the first event to the last and says whether it is\n"
    "intact. Exit status 0 intact, 2 broken (the first bad event is named), 1 could not verify.\n"
    "\n"
    "      --json           the result as one JSON object\n"
    "  -h, --help           this help\n";

static int verify_run(Ctl *c, int argc, char **argv)
{
        int r = ctl_parse_plain(c, argc, argv, 0, 0, verify_help);
        if (r >= 0)
                return r;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdError err = {};
        EvdCustodyReport rep = {};
        r = evd_custody_verify(db, &rep, &err);
        if (r < 0)
                return ctl_error(c, "could not verify: %s", evd_error_message(&err, r));
        char hex[2 * EVD_DIGEST_SIZE + 1];
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
                if (ctl_json_print(j) < 0)
                        return EXIT_ERROR;
        } else if (rep.ok)
                printf("custody log intact: %" PRIu64 " events, head %" PRId64 " %s\n", rep.n_events,
                       rep.head_id, evd_hex(rep.head_hash, EVD_DIGEST_SIZE, hex));
        else
                printf("custody log BROKEN at event %" PRId64 ": %s: %s\n", rep.first_bad_id,
                       evd_custody_problem_to_string(rep.problem), rep.detail);
        return rep.ok ? EXIT_CLEAN : EXIT_FINDINGS;
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
