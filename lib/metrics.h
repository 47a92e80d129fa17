/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Totals for monitoring (evidockd's Prometheus textfile, daemon/metrics.c): all-time counts read from the
 * database, so that they only ever grow, across restarts of the daemon, as Prometheus counters must. */
#pragma once

#include <stdint.h>

#include "error.h"
#include "macro.h"
#include "types.h"

#define EVD_METRICS_MAX_RECORDERS 10000u /* recorders listed with their last docking (label cardinality) */

typedef struct EvdDb EvdDb;

typedef struct EvdRecorderLastDock {
        char *device_id;
        int64_t last_docked_us;
} EvdRecorderLastDock;

typedef struct EvdMetricsTotals {
        int64_t dockings_finished;   /* with a docking result */
        int64_t dockings_refused;    /* no enrolled identity */
        int64_t dockings_unfinished; /* begun, no result (running, or stopped by a crash / an error) */
        int64_t files_by_verdict[_EVD_VERDICT_MAX];
        int64_t files_late;
        int64_t bytes_stored;  /* sum of the originals' sizes */
        int64_t bytes_last_7d; /* originals stored in the last 7 days (for the days-left forecast) */
        int64_t findings_by_verdict[_EVD_VERDICT_MAX];
        EvdRecorderLastDock *recorders; /* enrolled recorders that docked at least once, by device id */
        size_t n_recorders;
} EvdMetricsTotals;

/* Reads the totals in one snapshot. *ret is freed with evd_metrics_totals_free(). */
int evd_metrics_totals(EvdDb *db, EvdMetricsTotals **ret, EvdError *err);
EvdMetricsTotals *evd_metrics_totals_free(EvdMetricsTotals *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(EvdMetricsTotals *, evd_metrics_totals_free);
