/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidockctl reconcile: the store against the database; deletes nothing but its own temporary files. */
#include <inttypes.h>

#include "ctl-common.h"
#include "macro.h"
#include "reconcile.h"
#include "store.h"

static const char help[] =
    "Usage: evidockctl reconcile [--json]\n"
    "\n"
    "Checks the store against the evidence database: stored files without a row, rows whose file is\n"
    "missing. Deletes nothing (only the store's own leftover temporary files). Exit status 2 when it\n"
    "finds either. Replay the spool first if it holds entries.\n"
    "\n"
    "      --json           each finding as one JSON object, then the totals as one more\n"
    "  -h, --help           this help\n";

static void print_finding(EvdReconcileKind kind, const char *path, int64_t file_id, void *userdata)
{
        Ctl *c = userdata;
        if (c->json) {
                _cleanup_(json_object_putp) json_object *j = json_object_new_object();
                if (!j)
                        return;
                json_object_object_add(j, "kind",
                                       json_object_new_string(kind == EVD_RECONCILE_FILE_WITHOUT_ROW
                                                                  ? "file_without_row"
                                                                  : "row_without_file"));
                json_object_object_add(j, "path", ctl_json_string(path));
                json_object_object_add(j, "file_id", file_id ? json_object_new_int64(file_id) : NULL);
                (void)ctl_json_print(j);
                return;
        }
        if (kind == EVD_RECONCILE_FILE_WITHOUT_ROW)
                printf("stored, not recorded: %s\n", path);
        else if (kind == EVD_RECONCILE_ROW_WITHOUT_FILE)
                printf("MISSING from the store: %s (file %" PRId64 ")\n", path, file_id);
}

static int reconcile_run(Ctl *c, int argc, char **argv)
{
        int r = ctl_parse_plain(c, argc, argv, 0, 0, help);
        if (r >= 0)
                return r;
        if (ctl_config(c) < 0)
                return EXIT_ERROR;
        EvdError err = {};
        _cleanup_(evd_store_freep) EvdStore *store = NULL;
        r = evd_store_open(c->cfg.store_root, &store, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        /* spooled files have no rows until the spool is replayed: they are not leftovers */
        if (c->cfg.spool_dir && c->cfg.spool_dir[0]) {
                _cleanup_(evd_spool_freep) EvdSpool *spool = NULL;
                unsigned backlog = 0;
                if (evd_spool_open(c->cfg.spool_dir, &spool, NULL) >= 0 &&
                    evd_spool_backlog(spool, &backlog) >= 0 && backlog > 0)
                        return ctl_error(c,
                                         "%u entries wait in the spool %s; replay them first (evidockctl "
                                         "spool replay)",
                                         backlog, c->cfg.spool_dir);
        }
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdReconcileReport rep = {};
        r = evd_reconcile(store, db, print_finding, c, &rep, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        if (c->json) {
                _cleanup_(json_object_putp) json_object *j = json_object_new_object();
                if (!j)
                        return EXIT_ERROR;
                json_object_object_add(j, "kind", json_object_new_string("totals"));
                json_object_object_add(j, "files_checked", json_object_new_int64(rep.files_checked));
                json_object_object_add(j, "rows_checked", json_object_new_int64(rep.rows_checked));
                json_object_object_add(j, "temp_removed", json_object_new_int64(rep.temp_removed));
                json_object_object_add(j, "files_without_row", json_object_new_int64(rep.files_without_row));
                json_object_object_add(j, "rows_without_file", json_object_new_int64(rep.rows_without_file));
                if (ctl_json_print(j) < 0)
                        return EXIT_ERROR;
        } else
                printf("%u stored files and %u recorded paths checked: %u temporary file(s) removed, %u "
                       "file(s) without a row, %u row(s) without a file\n",
                       rep.files_checked, rep.rows_checked, rep.temp_removed, rep.files_without_row,
                       rep.rows_without_file);
        return rep.files_without_row || rep.rows_without_file ? EXIT_FINDINGS : EXIT_CLEAN;
}

const CtlCommand ctl_cmd_reconcile = {
    .name = "reconcile",
    .synopsis = "reconcile",
    .summary = "check the store against the database; deletes nothing",
    .run = reconcile_run,
};
