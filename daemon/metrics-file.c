/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "metrics-file.h"

double metrics_store_days_left(const MetricsInput *in)
{
        if (!in->store_known || !in->totals || in->totals->bytes_last_7d <= 0)
                return INFINITY;
        double per_day = 2.0 * (double)in->totals->bytes_last_7d / 7.0;
        double room = (double)(in->store_free_bytes - in->store_reserve_bytes);
        return room <= 0 ? 0.0 : room / per_day;
}

static void header(FILE *f, const char *name, const char *type, const char *help)
{
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value: backslash, double quote and newline escaped, as the format requires. */
static void label_value(FILE *f, const char *s)
{
        for (; *s; s++) {
                if (*s == '\\' || *s == '"')
                        fputc('\\', f);
                if (*s == '\n') {
                        fputs("\\n", f);
                        continue;
                }
                fputc(*s, f);
        }
}

static void value(FILE *f, double v)
{
        if (isinf(v))
                fputs(v > 0 ? "+Inf\n" : "-Inf\n", f);
        else
                fprintf(f, "%.17g\n", v);
}

static void gauge(FILE *f, const char *name, const char *help, double v)
{
        header(f, name, "gauge", help);
        fprintf(f, "%s ", name);
        value(f, v);
}

int metrics_render(FILE *f, const MetricsInput *in)
{
        header(f, "evidock_build_info", "gauge", "evidock version running (always 1).");
        fputs("evidock_build_info{version=\"", f);
        label_value(f, in->version);
        fputs("\"} 1\n", f);
        gauge(f, "evidock_start_time_seconds", "When evidockd started, seconds since the epoch.",
              (double)in->started_us / 1e6);
        gauge(f, "evidock_metrics_time_seconds", "When this file was written, seconds since the epoch.",
              (double)in->now_us / 1e6);
        gauge(f, "evidock_database_up", "1 if the last database access of evidockd succeeded.",
              in->database_up ? 1 : 0);
        if (in->spool_backlog >= 0) {
                gauge(f, "evidock_spool_backlog", "Spool entries waiting for the database.",
                      (double)in->spool_backlog);
        }
        gauge(f, "evidock_queue_pending", "Dockings waiting for a worker.", in->queue_pending);
        gauge(f, "evidock_dockings_running", "Dockings being ingested now.", in->dockings_running);
        gauge(f, "evidock_last_error_time_seconds",
              "When evidockd last logged an error, seconds since the epoch (0: none since start).",
              (double)in->last_error_us / 1e6);
        if (in->store_known) {
                gauge(f, "evidock_store_free_bytes", "Free bytes on the store's filesystem.",
                      (double)in->store_free_bytes);
                gauge(f, "evidock_store_reserve_bytes", "Free space the store keeps in reserve.",
                      (double)in->store_reserve_bytes);
                gauge(f, "evidock_store_time_left_seconds",
                      "Time until the reserve is reached at the last 7 days' ingest rate (+Inf: no ingest).",
                      metrics_store_days_left(in) * 86400.0);
        }

        const EvdMetricsTotals *t = in->totals;
        if (t) {
                header(f, "evidock_dockings_total", "counter",
                       "Dockings recorded in the database, by outcome.");
                fprintf(f, "evidock_dockings_total{outcome=\"finished\"} %" PRId64 "\n",
                        t->dockings_finished);
                fprintf(f, "evidock_dockings_total{outcome=\"refused\"} %" PRId64 "\n", t->dockings_refused);
                fprintf(f, "evidock_dockings_total{outcome=\"unfinished\"} %" PRId64 "\n",
                        t->dockings_unfinished);
                header(f, "evidock_files_total", "counter", "Files recorded in the database, by verdict.");
                for (int v = 0; v < _EVD_VERDICT_MAX; v++)
                        fprintf(f, "evidock_files_total{verdict=\"%s\"} %" PRId64 "\n",
                                evd_verdict_to_string((EvdVerdict)v), t->files_by_verdict[v]);
                header(f, "evidock_files_late_total", "counter",
                       "Files not stored within 24 hours of the recording's end (002:§16).");
                fprintf(f, "evidock_files_late_total %" PRId64 "\n", t->files_late);
                header(f, "evidock_stored_bytes_total", "counter", "Bytes of originals stored.");
                fprintf(f, "evidock_stored_bytes_total %" PRId64 "\n", t->bytes_stored);
                header(f, "evidock_findings_total", "counter", "Findings recorded, by verdict.");
                for (int v = 0; v < _EVD_VERDICT_MAX; v++)
                        fprintf(f, "evidock_findings_total{verdict=\"%s\"} %" PRId64 "\n",
                                evd_verdict_to_string((EvdVerdict)v), t->findings_by_verdict[v]);
                header(f, "evidock_recorder_last_docked_time_seconds", "gauge",
                       "When each enrolled recorder last docked, seconds since the epoch.");
                for (size_t i = 0; i < t->n_recorders; i++) {
                        fputs("evidock_recorder_last_docked_time_seconds{device=\"", f);
                        label_value(f, t->recorders[i].device_id);
                        fputs("\"} ", f);
                        value(f, (double)t->recorders[i].last_docked_us / 1e6);
                }
        }
        return ferror(f) ? -EIO : 0;
}

int metrics_write(const char *path, const MetricsInput *in)
{
        size_t n = strlen(path);
        _cleanup_free_ char *tmp = malloc(n + 16);
        if (!tmp)
                return -ENOMEM;
        snprintf(tmp, n + 16, "%s.tmp.XXXXXX", path);
        int fd = mkstemp(tmp);
        if (fd < 0)
                return -errno;
        (void)fchmod(fd, 0644);
        FILE *f = fdopen(fd, "w");
        if (!f) {
                int r = -errno;
                close(fd);
                unlink(tmp);
                return r;
        }
        int r = metrics_render(f, in);
        if (r >= 0 && fflush(f) != 0)
                r = -errno;
        if (r >= 0 && fsync(fileno(f)) < 0)
                r = -errno;
        if (fclose(f) != 0 && r >= 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                unlink(tmp);
        return r;
}
