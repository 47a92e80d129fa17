/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The monitoring file (daemon/metrics.c, lib/db-metrics.c) from a real database, checked by a real parser:
 * promtool from Debian's prometheus package (scripts/deps installs it). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "common/pg.h"
#include "common/report-fill.h"
#include "db.h"
#include "metrics-file.h"
#include "metrics.h"

#define DAY_US INT64_C(86400000000)
#define N      500

static char *conninfo;
static EvdDb *db;
static char dir[] = "/tmp/evidock-metrics-XXXXXX";

static int run_promtool(const char *path, char *out, size_t size)
{
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "promtool check metrics < '%s' 2>&1", path);
        FILE *p = popen(cmd, "r");
        if (!p)
                return -errno;
        size_t n = fread(out, 1, size - 1, p);
        out[n] = 0;
        int status = pclose(p);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *slurp(const char *path)
{
        FILE *f = fopen(path, "re");
        if (!f)
                return NULL;
        char *buf = calloc(1, 1 << 20);
        if (buf)
                (void)!fread(buf, 1, (1 << 20) - 1, f);
        fclose(f);
        return buf;
}

static void test_totals(void)
{
        _cleanup_(evd_metrics_totals_freep) EvdMetricsTotals *t = NULL;
        CHECK_OK(evd_metrics_totals(db, &t, NULL));
        CHECK_INT(t->dockings_refused, ==, 1);
        CHECK_INT(t->dockings_unfinished, ==,
                  3 + 1); /* the filled dockings (3 devices + RX00002) have no results */
        int64_t files = 0;
        for (int v = 0; v < _EVD_VERDICT_MAX; v++)
                files += t->files_by_verdict[v];
        CHECK_INT(files, ==, N);
        CHECK_INT(t->files_by_verdict[EVD_VERDICT_HASH_MISMATCH], ==, N / 50);
        CHECK_INT(t->files_late, ==, N / 10);
        CHECK_INT(t->findings_by_verdict[EVD_VERDICT_NOT_ENROLLED], ==, 1);
        CHECK_INT(t->n_recorders, ==, 4); /* RC00001..3 and RX00002; RX00001 never docked */
        CHECK_STREQ(t->recorders[0].device_id, "RC00001");
}

static void test_promtool(void)
{
        _cleanup_(evd_metrics_totals_freep) EvdMetricsTotals *t = NULL;
        CHECK_OK(evd_metrics_totals(db, &t, NULL));
        MetricsInput in = {
            .version = "0.1.0 \"test\"",
            .now_us = INT64_C(1718000000000000),
            .started_us = INT64_C(1717990000000000),
            .totals = t,
            .database_up = true,
            .spool_backlog = 3,
            .store_known = true,
            .store_free_bytes = INT64_C(100) << 30,
            .store_reserve_bytes = INT64_C(10) << 30,
            .queue_pending = 2,
            .dockings_running = 1,
        };
        char path[128];
        snprintf(path, sizeof(path), "%s/evidock.prom", dir);
        CHECK_OK(metrics_write(path, &in));
        char out[4096];
        int rc = run_promtool(path, out, sizeof(out));
        if (rc != 0)
                printf("# promtool (exit %d): %s\n", rc, out);
        CHECK_INT(rc, ==, 0);
        _cleanup_free_ char *text = slurp(path);
        CHECK(text != NULL);
        char line[128];
        snprintf(line, sizeof(line), "\nevidock_files_total{verdict=\"HASH_MISMATCH\"} %d\n", N / 50);
        CHECK(strstr(text, line) != NULL);
        CHECK(strstr(text, "\nevidock_spool_backlog 3\n") != NULL);
        CHECK(strstr(text, "evidock_build_info{version=\"0.1.0 \\\"test\\\"\"} 1\n") != NULL);
        CHECK(strstr(text, "\nevidock_dockings_total{outcome=\"refused\"} 1\n") != NULL);
        /* No temporary file left beside it. */
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) -eq 1", dir);
        CHECK_INT(system(cmd), ==, 0);

        /* promtool really parses: a broken file fails. */
        FILE *f = fopen(path, "ae");
        CHECK(f != NULL);
        fputs("evidock_broken{ 1\n", f);
        fclose(f);
        CHECK(run_promtool(path, out, sizeof(out)) != 0);
}

/* The example alert rules shipped in conf/prometheus/ parse and name only metrics evidockd writes. */
static void test_alert_rules(void)
{
        const char *src = getenv("EVIDOCK_SOURCE_ROOT");
        CHECK(src != NULL);
        char cmd[512], out[4096];
        snprintf(cmd, sizeof(cmd), "promtool check rules '%s/conf/prometheus/evidock-alerts.yml' 2>&1", src);
        FILE *p = popen(cmd, "r");
        CHECK(p != NULL);
        size_t n = fread(out, 1, sizeof(out) - 1, p);
        out[n] = 0;
        int status = pclose(p);
        if (status != 0)
                printf("# %s\n", out);
        CHECK_INT(status, ==, 0);
        CHECK(strstr(out, "SUCCESS") != NULL);

        /* Every metric name the rules use is one evidockd writes. */
        EvdMetricsTotals t = {0};
        EvdRecorderLastDock rec = {.device_id = (char *)"RC00001", .last_docked_us = 1};
        t.recorders = &rec;
        t.n_recorders = 1;
        MetricsInput in = {.version = "x", .totals = &t, .spool_backlog = 0, .store_known = true};
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);
        CHECK(f != NULL);
        CHECK_OK(metrics_render(f, &in));
        fclose(f);
        snprintf(cmd, sizeof(cmd), "%s/conf/prometheus/evidock-alerts.yml", src);
        _cleanup_free_ char *rules = slurp(cmd);
        _cleanup_free_ char *rendered = text;
        CHECK(rules != NULL);
        int names = 0;
        for (const char *q = rules; (q = strstr(q, "evidock_")); q += 8) {
                char name[64];
                size_t k = 0;
                while (k < sizeof(name) - 1 &&
                       (q[k] == '_' || (q[k] >= 'a' && q[k] <= 'z') || (q[k] >= '0' && q[k] <= '9')))
                        name[k] = q[k], k++;
                name[k] = 0;
                char want[80];
                snprintf(want, sizeof(want), "# TYPE %s ", name);
                if (!strstr(rendered, want))
                        printf("# the alert rules use %s, which evidockd does not write\n", name);
                CHECK(strstr(rendered, want) != NULL);
                names++;
        }
        CHECK_INT(names, >=, 7);
}

static void test_days_left(void)
{
        EvdMetricsTotals t = {.bytes_last_7d = INT64_C(7)
                                               << 30}; /* 1 GiB a day, 2 GiB with archive copies */
        MetricsInput in = {.totals = &t,
                           .store_known = true,
                           .store_free_bytes = INT64_C(30) << 30,
                           .store_reserve_bytes = INT64_C(10) << 30};
        CHECK(fabs(metrics_store_days_left(&in) - 10.0) < 1e-9);
        in.store_free_bytes = INT64_C(5) << 30;
        CHECK(metrics_store_days_left(&in) == 0.0);
        t.bytes_last_7d = 0;
        CHECK(isinf(metrics_store_days_left(&in)));
        in.totals = NULL;
        CHECK(isinf(metrics_store_days_left(&in)));
}

int main(void)
{
        if (!mkdtemp(dir) || test_pg_new_database("metrics", &conninfo) < 0 ||
            evd_db_open(conninfo, &db, NULL) < 0 ||
            test_report_fill(conninfo, INT64_C(1717977600000000), INT64_C(1717977600000000) + 7 * DAY_US, 3,
                             N) < 0) {
                printf("not ok 1 - set-up\n1..1\n");
                return 1;
        }
        RUN(test_totals);
        RUN(test_promtool);
        RUN(test_days_left);
        RUN(test_alert_rules);
        evd_db_close(db);
        free(conninfo);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        (void)!system(cmd);
        return check_finish();
}
