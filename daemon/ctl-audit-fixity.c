/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidockctl audit fixity: re-hashes stored originals and archive copies against the database
 * (lib/fixity.h); every copy whose bytes no longer match is named and put in the custody log. */
#include <inttypes.h>

#include "ctl-common.h"
#include "fixity.h"
#include "output.h"

static const char fixity_help[] =
    "Usage: evidockctl audit fixity [--sample N | --full] [--resume] [--json]\n"
    "\n"
    "Re-hashes the stored originals and archive copies (SHA-256) and compares them with what the\n"
    "database recorded when they were ingested. A copy that changed, is missing or cannot be read is\n"
    "named here and recorded as a 'fixity_mismatch' custody event; each run records where it stopped\n"
    "('fixity_checked'). Nothing is ever changed. Exit status 0 all match, 2 mismatches found, 1 could\n"
    "not check.\n"
    "\n"
    "      --full           every file, from the first (the default)\n"
    "      --sample N       at most N files (e.g. a nightly share of the archive)\n"
    "      --resume         start after the file where the last run stopped (wraps to the first file\n"
    "                       once a run reached the newest one)\n"
    "      --json           the result as one JSON object\n"
    "  -h, --help           this help\n";

int ctl_audit_fixity_run(Ctl *c, int argc, char **argv);
int ctl_audit_fixity_run(Ctl *c, int argc, char **argv)
{
        static const struct option opts[] = {
            {"full", no_argument, NULL, 'f'},
            {"sample", required_argument, NULL, 's'},
            {"resume", no_argument, NULL, 'r'},
            CTL_OPTION_JSON,
            CTL_OPTION_HELP,
            {},
        };
        EvdFixityOptions o = {};
        bool full = false, sample = false;
        int opt;
        while ((opt = ctl_getopt(c, argc, argv, opts, fixity_help)) > 0) {
                switch (opt) {
                case 'f':
                        full = true;
                        break;
                case 's': {
                        char *end = NULL;
                        errno = 0;
                        unsigned long long n = strtoull(optarg, &end, 10);
                        if (errno || !end || *end || n == 0 || optarg[0] == '-')
                                return ctl_usage_error(c, fixity_help,
                                                       "--sample needs a positive number, not '%s'", optarg);
                        o.max_files = n;
                        sample = true;
                        break;
                }
                case 'r':
                        o.resume = true;
                        break;
                }
        }
        if (opt < 0)
                return ctl_opt_exit(opt);
        if (full && sample)
                return ctl_usage_error(c, fixity_help, "--full and --sample exclude each other");
        if (ctl_positional(c, argc, argv, 0, 0, fixity_help) < 0)
                return EXIT_USAGE;

        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdError err = {};
        _cleanup_(evd_store_freep) EvdStore *store = NULL;
        int r = evd_store_open(c->cfg.store_root, &store, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        _cleanup_(evd_fixity_report_freep) EvdFixityReport *rep = NULL;
        r = evd_fixity_check(db, store, &o, &rep, &err);
        if (r < 0)
                return ctl_error(c, "could not check: %s", evd_error_message(&err, r));

        if (c->json) {
                _cleanup_(json_object_putp) json_object *j = json_object_new_object();
                json_object *list = json_object_new_array();
                if (!j || !list) {
                        json_object_put(list);
                        return EXIT_ERROR;
                }
                json_object_object_add(j, "files", json_object_new_uint64(rep->files_checked));
                json_object_object_add(j, "copies", json_object_new_uint64(rep->copies_checked));
                json_object_object_add(j, "bytes", json_object_new_uint64(rep->bytes_hashed));
                json_object_object_add(j, "first_file_id", json_object_new_int64(rep->first_file_id));
                json_object_object_add(j, "last_file_id", json_object_new_int64(rep->last_file_id));
                json_object_object_add(j, "reached_end", json_object_new_boolean(rep->reached_end));
                json_object_object_add(j, "mismatches_total",
                                       json_object_new_uint64(rep->n_mismatches_total));
                for (size_t i = 0; i < rep->n_mismatches; i++) {
                        const EvdFixityMismatch *m = &rep->mismatches[i];
                        json_object *x = json_object_new_object();
                        if (!x)
                                return EXIT_ERROR;
                        json_object_object_add(x, "file_id", json_object_new_int64(m->file_id));
                        json_object_object_add(x, "copy",
                                               ctl_json_string(m->archive ? "archive" : "original"));
                        json_object_object_add(x, "path", ctl_json_string(m->path));
                        json_object_object_add(x, "problem",
                                               ctl_json_string(evd_fixity_problem_to_string(m->problem)));
                        json_object_object_add(x, "expected_sha256", ctl_json_string(m->expected_sha256));
                        json_object_object_add(x, "found_sha256",
                                               m->found_sha256[0] ? ctl_json_string(m->found_sha256) : NULL);
                        json_object_array_add(list, x);
                }
                json_object_object_add(j, "mismatches", list);
                if (ctl_json_print(j) < 0)
                        return EXIT_ERROR;
        } else {
                for (size_t i = 0; i < rep->n_mismatches; i++) {
                        const EvdFixityMismatch *m = &rep->mismatches[i];
                        printf("MISMATCH file %" PRId64 " %s %s: %s\n", m->file_id,
                               m->archive ? "archive copy" : "original",
                               evd_fixity_problem_to_string(m->problem), text_shown(m->detail));
                }
                if (rep->n_mismatches_total > rep->n_mismatches)
                        printf("... and %" PRIu64 " more mismatches (all in the custody log)\n",
                               rep->n_mismatches_total - rep->n_mismatches);
                printf("fixity: %" PRIu64 " files (ids %" PRId64 "..%" PRId64 "), %" PRIu64
                       " copies, %.1f MB re-hashed; "
                       "%" PRIu64 " mismatches%s\n",
                       rep->files_checked, rep->first_file_id, rep->last_file_id, rep->copies_checked,
                       (double)rep->bytes_hashed / 1e6, rep->n_mismatches_total,
                       rep->reached_end ? "" : "; more files after these (--resume continues)");
        }
        return rep->n_mismatches_total ? EXIT_FINDINGS : EXIT_CLEAN;
}
