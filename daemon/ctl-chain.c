/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidockctl chain DEVICE: a recorder's chain as recorded: files by sequence, breaks, heads. */
#include <inttypes.h>

#include "ctl-case-column.h"
#include "ctl-common.h"
#include "ctl-disc-holdings.h"
#include "hash.h"
#include "macro.h"
#include "output.h"

static const char help[] =
    "Usage: evidockctl chain [--json] DEVICE\n"
    "\n"
    "A recorder's chain as recorded: its files by sequence number (then files outside the chain), the\n"
    "findings of each, docking-level findings (gaps, forks, clock), and the chain head after each\n"
    "docking. An unknown recorder is an error.\n"
    "\n"
    "      --json      one JSON object: device_id, files (as in `log --json`), docking_findings, heads\n"
    "  -h, --help      this help\n";

static int print_json(const EvdDbChainView *v, const CtlCaseColumn *cases, const CtlDiscHoldings *discs)
{
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "device_id", ctl_json_string(v->device_id));
        json_object *files = json_object_new_array(), *dfind = json_object_new_array(),
                    *heads = json_object_new_array();
        json_object_object_add(o, "files", files);
        json_object_object_add(o, "docking_findings", dfind);
        json_object_object_add(o, "heads", heads);
        if (!files || !dfind || !heads)
                return -ENOMEM;
        for (size_t i = 0; i < v->n_files; i++) {
                json_object *f = ctl_json_file_row(&v->files[i]);
                ctl_case_column_json(cases, i, f);
                if (f)
                        ctl_disc_holdings_json(discs, v->files[i].id, f);
                json_object_array_add(files, f);
        }
        for (size_t i = 0; i < v->n_docking_findings; i++) {
                json_object *f = ctl_json_finding_row(&v->docking_findings[i]);
                if (f)
                        json_object_object_add(f, "docking_id",
                                               json_object_new_int64(v->docking_findings[i].docking_id));
                json_object_array_add(dfind, f);
        }
        for (size_t i = 0; i < v->n_heads; i++) {
                char hex[2 * EVD_DIGEST_SIZE + 1];
                json_object *h = json_object_new_object();
                if (!h)
                        return -ENOMEM;
                json_object_object_add(h, "docking_id", json_object_new_int64(v->heads[i].docking_id));
                json_object_object_add(h, "seq", json_object_new_uint64(v->heads[i].seq));
                json_object_object_add(h, "session", json_object_new_uint64(v->heads[i].session));
                json_object_object_add(
                    h, "record_hash",
                    json_object_new_string(evd_hex(v->heads[i].record_hash, EVD_DIGEST_SIZE, hex)));
                json_object_object_add(h, "set_at", ctl_json_time_local(v->heads[i].set_us));
                json_object_array_add(heads, h);
        }
        json_object_object_add(o, "truncated", json_object_new_boolean(v->truncated));
        return ctl_json_print(o);
}

static void print_text(const EvdDbChainView *v, const CtlCaseColumn *cases, const CtlDiscHoldings *discs)
{
        printf("chain of recorder %s: %zu files, %zu docking-level findings, %zu heads\n", v->device_id,
               v->n_files, v->n_docking_findings, v->n_heads);
        /* Breaks are shown as the findings the verifier recorded (gaps are judged against the chain's
         * records, which include GEN/END/DEL records that have no file). */
        for (size_t i = 0; i < v->n_files; i++) {
                const EvdDbFileRow *f = &v->files[i];
                char t[48];
                char seq[24] = "foreign";
                if (f->has_seq)
                        snprintf(seq, sizeof(seq), "%" PRIu64, f->seq);
                char kase[200];
                printf("  seq %-7s session %-3" PRIu64 " %-5s %s  case %s  %-17s %.16s  %s\n", seq,
                       f->session, f->method,
                       f->has_recorded ? format_time_tz(f->recorded_start_us, f->tz_minutes, t, sizeof(t))
                                       : "time unknown",
                       ctl_case_column_text(cases, i, f, kase, sizeof(kase)), f->verdict, f->sha256,
                       f->original_path);
                for (size_t k = 0; k < f->n_findings; k++)
                        printf("      %s: %s\n", f->findings[k].verdict,
                               text_shown(strna(f->findings[k].detail)));
                ctl_disc_holdings_print(discs, f->id, "      ");
        }
        for (size_t i = 0; i < v->n_docking_findings; i++) {
                const EvdDbFindingRow *x = &v->docking_findings[i];
                printf("  docking %" PRId64 " finding %s", x->docking_id, x->verdict);
                if (x->has_seq)
                        printf(" at seq %" PRIu64, x->seq);
                printf(": %s%s%s%s%s\n", text_shown(strna(x->detail)), x->expected ? "; expected " : "",
                       x->expected ? text_shown(x->expected) : "", x->found ? "; found " : "",
                       x->found ? text_shown(x->found) : "");
        }
        for (size_t i = 0; i < v->n_heads; i++) {
                char hex[2 * EVD_DIGEST_SIZE + 1], t[48];
                printf("  head after docking %" PRId64 ": seq %" PRIu64 " session %" PRIu64 " %s  (%s)\n",
                       v->heads[i].docking_id, v->heads[i].seq, v->heads[i].session,
                       evd_hex(v->heads[i].record_hash, EVD_DIGEST_SIZE, hex),
                       format_time_local(v->heads[i].set_us, t, sizeof(t)));
        }
        if (v->truncated)
                fprintf(stderr, "evidockctl chain: the listing was truncated at the row limit\n");
}

static int chain_run(Ctl *c, int argc, char **argv)
{
        int r = ctl_parse_plain(c, argc, argv, 1, 1, help);
        if (r >= 0)
                return r;
        const char *device = argv[optind];
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        if (ctl_check_device(c, db, device) != 0)
                return EXIT_ERROR;
        EvdError err = {};
        _cleanup_(evd_db_chain_view_freep) EvdDbChainView *v = NULL;
        r = evd_db_chain_view(db, device, &v, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        /* showing restricted files is a view: logged before anything is shown (docs/access.md) */
        r = ctl_log_listing(db, v->files, v->n_files, "evidockctl chain show", &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        /* the current case beside the recorder's (docs/lifecycle.md), and the verified discs */
        _cleanup_(ctl_disc_holdings_freep) CtlDiscHoldings *discs =
            ctl_disc_holdings_load(db, v->files, v->n_files);
        CtlCaseColumn cases;
        ctl_case_column_load(&cases, db, v->files, v->n_files);
        if (c->json)
                r = print_json(v, &cases, discs) < 0 ? ctl_error(c, "cannot write the output") : EXIT_CLEAN;
        else {
                print_text(v, &cases, discs);
                r = EXIT_CLEAN;
        }
        ctl_case_column_clear(&cases);
        return r;
}

const CtlCommand ctl_cmd_chain = {
    .name = "chain",
    .synopsis = "chain DEVICE",
    .summary = "a recorder's chain: files by sequence, breaks, heads",
    .run = chain_run,
};
