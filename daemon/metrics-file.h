/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidockd's monitoring file: Prometheus text exposition format (version 0.0.4), written atomically for
 * node_exporter's textfile collector ([metrics] file in evidock.conf; off by default). Counters come from
 * the database (lib/metrics.h) so they survive restarts; gauges from the daemon's own state. Names follow
 * the Prometheus conventions: evidock_ prefix, base units (bytes, seconds), _total for counters.
 * docs/monitoring.md lists every metric and an example alert set. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "metrics.h"

typedef struct MetricsInput {
        const char *version;
        int64_t now_us;
        int64_t started_us;
        const EvdMetricsTotals *totals; /* NULL: the database could not be read this time */
        bool database_up;
        int64_t spool_backlog; /* entries waiting for the database; -1: no spool */
        bool store_known;
        int64_t store_free_bytes;
        int64_t store_reserve_bytes;
        unsigned queue_pending;
        unsigned dockings_running;
        int64_t last_error_us; /* 0: none since start */
} MetricsInput;

/* Days until the store's free space reaches the reserve at the last 7 days' ingest rate (originals and
 * their archive copies, about twice the originals' bytes); +Inf when nothing was ingested. */
double metrics_store_days_left(const MetricsInput *in);

int metrics_render(FILE *f, const MetricsInput *in);

/* Writes the file atomically: a temporary file in the same directory, fsync, rename. Mode 0644 (the
 * collector runs as another user; nothing secret is in it). */
int metrics_write(const char *path, const MetricsInput *in);
