/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Start-up reconciliation of the store against the database, after a crash or power loss:
 *
 *   temporary files   (".evd-tmp-*", only on filesystems without O_TMPFILE): removed — they were never
 *                     named, so nothing refers to them;
 *   files without a row (stored, then the run died before its transaction committed): kept, reported,
 *                     and recorded in the custody log; the next docking of that recorder reuses them
 *                     (same name, same content) and records them;
 *   rows without a file (evidence the database names but the store lacks): reported as errors and
 *                     recorded in the custody log. Nothing is ever deleted or "repaired".
 *   disposed files    (an approved disposal, lib/disposal.h, removed them): counted, not missing.
 *
 * Run it before any ingest starts (the daemon does at start-up; `evidockctl reconcile` by hand). */
#pragma once

#include "db.h"
#include "error.h"
#include "store.h"

typedef enum EvdReconcileKind {
        EVD_RECONCILE_TEMP_REMOVED,
        EVD_RECONCILE_FILE_WITHOUT_ROW,
        EVD_RECONCILE_ROW_WITHOUT_FILE,
} EvdReconcileKind;

typedef void (*EvdReconcileFn)(EvdReconcileKind kind, const char *path, int64_t file_id, void *userdata);

typedef struct EvdReconcileReport {
        unsigned temp_removed;
        unsigned files_checked;
        unsigned files_without_row;
        unsigned rows_checked; /* stored paths named by rows */
        unsigned rows_without_file;
        unsigned rows_disposed; /* rows whose files an approved disposal removed: not missing */
} EvdReconcileReport;

/* fn (may be NULL) is called for each finding. Returns 0 when the check ran to its end (findings are in
 * *ret), < 0 when it could not (database unreachable, store unreadable). */
int evd_reconcile(EvdStore *store, EvdDb *db, EvdReconcileFn fn, void *userdata, EvdReconcileReport *ret,
                  EvdError *err);
