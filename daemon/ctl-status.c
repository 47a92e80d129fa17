/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidockctl status: what evidockd is doing, from the status file it publishes every second
 * (daemon/status.h), with a clear word when evidockd is not running or the file is stale. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/types.h>

#include "clock.h"
#include "ctl-common.h"
#include "macro.h"
#include "output.h"
#include "status.h"

static const char help[] =
    "Usage: evidockctl status [--json]\n"
    "\n"
    "What evidockd is doing: whether it runs, the database and the spool backlog, the store's free\n"
    "space, each docking with its progress (file n of m, percent, MB/s, time left), and each [disc]\n"
    "drive with its disc job's stage (building the bag, burning, verifying), disc n of m, copy,\n"
    "percent, MB/s and time left. Read from the status file evidockd rewrites every second\n"
    "($EVIDOCK_STATUS_FILE or /run/evidock/status.json).\n"
    "Exit status 0 when evidockd runs and its status is current, 1 when it is not running or the\n"
    "status is stale (older than 10 s).\n"
    "Then the storage budget, from the store and the database: store use, what retention frees in the\n"
    "next 7 and 30 days, the days until [store] reserve at the ingest rate of the last 7 days.\n"
    "\n"
    "      --json           the status file as published, plus evidockd_running, stale, age_s\n"
    "                       and storage_budget\n"
    "  -h, --help           this help\n";

static int64_t get_i64(json_object *o, const char *key)
{
        json_object *v;
        return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static const char *get_str(json_object *o, const char *key)
{
        json_object *v;
        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
                   ? json_object_get_string(v)
                   : NULL;
}

static bool get_bool(json_object *o, const char *key)
{
        json_object *v;
        return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

static void print_job(json_object *j, int64_t now)
{
        const char *dev = get_str(j, "device_id"), *officer = get_str(j, "officer_id"),
                   *state = get_str(j, "state"), *file = get_str(j, "file"), *err = get_str(j, "last_error");
        printf("  %s: %s%s%s%s  %s\n", text_shown(strna(get_str(j, "source"))),
               dev ? dev : "(not identified)", officer ? " (officer " : "", officer ? officer : "",
               officer ? ")" : "", state ? state : "?");
        int64_t done = get_i64(j, "file_done"), total = get_i64(j, "file_total"),
                started = get_i64(j, "file_started_us");
        int64_t idx = get_i64(j, "file_index"), n = get_i64(j, "files_total");
        bool archiving = state && strcmp(state, "archiving") == 0;
        if (file && state && (strcmp(state, "copying") == 0 || archiving)) {
                char of[48] = "";
                if (n > 0)
                        snprintf(of, sizeof(of), "file %" PRId64 " of %" PRId64 ": ", idx, n);
                if (archiving)
                        snprintf(of + strlen(of), sizeof(of) - strlen(of), "archive copy of ");
                if (!archiving && total > 0 && done >= total) {
                        /* copied and hashed; now the archive copy and the database row */
                        printf("    %s%s: copied (%.1f MB), archiving and recording\n", of, text_shown(file),
                               (double)total / 1e6);
                } else {
                        double secs = started > 0 && now > started ? (double)(now - started) / 1e6 : 0;
                        double rate = secs > 0.2 ? (double)done / secs : 0;
                        char eta[32] = "?";
                        if (rate > 0) {
                                int64_t left = (int64_t)((double)(total - done) / rate);
                                snprintf(eta, sizeof(eta), "%" PRId64 ":%02" PRId64, left / 60, left % 60);
                        }
                        printf("    %s%s: %.1f%% of %.1f MB, %.1f MB/s, %s left\n", of, text_shown(file),
                               total > 0 ? 100.0 * (double)done / (double)total : 0.0, (double)total / 1e6,
                               rate / 1e6, eta);
                }
        }
        printf("    %" PRId64 " file(s) done", get_i64(j, "files_done"));
        json_object *v;
        if (json_object_object_get_ex(j, "clock_offset_ms", &v))
                printf(", recorder clock %+.1f s", (double)json_object_get_int64(v) / 1e3);
        printf("\n");
        if (err)
                printf("    last error: %s\n", text_shown(err));
}

static double get_double(json_object *o, const char *key, double none)
{
        json_object *v;
        return json_object_object_get_ex(o, key, &v) && v ? json_object_get_double(v) : none;
}

static const char *stage_shown(const char *stage)
{
        if (!stage)
                return "?";
        if (strcmp(stage, "building") == 0)
                return "building the bag and its image";
        if (strcmp(stage, "burning") == 0)
                return "burning";
        if (strcmp(stage, "verifying") == 0)
                return "verifying (read-back)";
        return stage;
}

/* A burn-to-disc drive: idle, or its job's stage with disc n of m, copy, percent, MB/s and time left. */
static void print_disc(json_object *d)
{
        const char *last = get_str(d, "last");
        int64_t job = get_i64(d, "job_id");
        printf("  %s: ", text_shown(strna(get_str(d, "drive"))));
        if (job <= 0) {
                printf("idle%s%s\n", last ? "; last: " : "", last ? text_shown(last) : "");
                return;
        }
        printf("disc job %" PRId64 ", disc %" PRId64 " of %" PRId64 ", copy %" PRId64 " of %" PRId64 ": %s",
               job, get_i64(d, "disc"), get_i64(d, "discs"), get_i64(d, "copy"), get_i64(d, "copies"),
               stage_shown(get_str(d, "stage")));
        int64_t total = get_i64(d, "total_bytes");
        if (total > 0) {
                double eta = get_double(d, "eta_s", -1);
                char left[32] = "?";
                if (eta >= 0)
                        snprintf(left, sizeof(left), "%" PRId64 ":%02" PRId64, (int64_t)eta / 60,
                                 (int64_t)eta % 60);
                printf(" %.1f%% of %.1f MB, %.1f MB/s, %s left", get_double(d, "percent", 0),
                       (double)total / 1e6, get_double(d, "mbps", 0), left);
        }
        printf("\n");
}

static int daemon_status(Ctl *c)
{
        const char *path = evd_status_path();
        _cleanup_(json_object_putp) json_object *st = json_object_from_file(path);
        if (!st) {
                int e = errno;
                if (c->json) {
                        _cleanup_(json_object_putp) json_object *j = json_object_new_object();
                        json_object_object_add(j, "evidockd_running", json_object_new_boolean(false));
                        json_object_object_add(j, "status_file", ctl_json_string(path));
                        json_object_object_add(j, "error", ctl_json_string(strerror(e)));
                        json_object_object_add(j, "storage_budget", ctl_retention_budget_json(c));
                        (void)ctl_json_print(j);
                }
                fprintf(stderr, "evidockd is not running, or has not published its status yet (%s: %s)\n",
                        path, e == ENOENT ? "no such file" : json_util_get_last_err());
                return EXIT_ERROR;
        }
        int64_t now = evd_clock_wall_us(), updated = get_i64(st, "updated_us");
        pid_t pid = (pid_t)get_i64(st, "pid");
        /* EPERM: it runs as another user (evidock) */
        bool running = pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
        double age = updated > 0 ? (double)(now - updated) / 1e6 : -1;
        bool stale = updated <= 0 || now - updated > EVD_STATUS_STALE_US;
        if (c->json) {
                json_object_object_add(st, "evidockd_running", json_object_new_boolean(running && !stale));
                json_object_object_add(st, "stale", json_object_new_boolean(stale));
                json_object_object_add(st, "age_s", age >= 0 ? json_object_new_double(age) : NULL);
                json_object_object_add(st, "storage_budget", ctl_retention_budget_json(c));
                if (ctl_json_print(st) < 0)
                        return EXIT_ERROR;
                return running && !stale ? EXIT_CLEAN : EXIT_ERROR;
        }
        if (!running)
                printf("evidockd is NOT RUNNING: its last status (below, as of %s, %.0f s ago) is not "
                       "current\n",
                       strna(get_str(st, "updated")), age);
        else if (stale)
                printf("evidockd (pid %d) runs but its status is STALE: last updated %s, %.0f s ago (it "
                       "rewrites it "
                       "every second; is it stuck?)\n",
                       (int)pid, strna(get_str(st, "updated")), age);
        else
                printf("evidockd is running (pid %d) since %s; status as of %.1f s ago\n", (int)pid,
                       strna(get_str(st, "started")), age);
        char freeb[32], reserve[32];
        format_size((uint64_t)get_i64(st, "store_free_bytes"), freeb, sizeof(freeb));
        format_size((uint64_t)get_i64(st, "store_reserve_bytes"), reserve, sizeof(reserve));
        int64_t backlog = get_i64(st, "spool_backlog");
        const char *db_error = get_str(st, "database_error");
        if (db_error)
                printf("database: ERROR, not an outage: %s (a configuration error: fix [database] url or "
                       "the role, then restart evidockd; dockings go to the local spool meanwhile)",
                       text_shown(db_error));
        else
                printf("database: %s",
                       get_bool(st, "database_ok") ? "ok" : "UNREACHABLE (dockings go to the local spool)");
        if (backlog > 0)
                printf("; spool backlog %" PRId64 " entries waiting for the database", backlog);
        char promised[80] = "";
        int64_t promised_bytes = get_i64(st, "store_promised_bytes");
        if (promised_bytes > 0) {
                char b[24];
                format_size((uint64_t)promised_bytes, b, sizeof(b));
                snprintf(promised, sizeof(promised), " (%s of it promised to copies in progress)", b);
        }
        printf("\nstore: %s free%s, reserve %s%s\n", freeb, promised, reserve,
               get_bool(st, "store_paused") ? "; BELOW THE RESERVE: no new files are taken" : "");
        printf("files ingested since start: %" PRId64 "\n", get_i64(st, "files_ingested"));
        const char *err = get_str(st, "last_error");
        if (err)
                printf("last error: %s\n", text_shown(err));
        json_object *jobs;
        size_t n = json_object_object_get_ex(st, "jobs", &jobs) && json_object_is_type(jobs, json_type_array)
                       ? json_object_array_length(jobs)
                       : 0;
        if (n == 0)
                printf("no recorder docked\n");
        else
                printf("dockings:\n");
        for (size_t i = 0; i < n; i++)
                print_job(json_object_array_get_idx(jobs, i), updated > 0 ? updated : now);
        json_object *discs;
        n = json_object_object_get_ex(st, "discs", &discs) && json_object_is_type(discs, json_type_array)
                ? json_object_array_length(discs)
                : 0;
        if (n > 0)
                printf("disc drives:\n");
        for (size_t i = 0; i < n; i++)
                print_disc(json_object_array_get_idx(discs, i));
        return running && !stale ? EXIT_CLEAN : EXIT_ERROR;
}

static int status_run(Ctl *c, int argc, char **argv)
{
        int r = ctl_parse_plain(c, argc, argv, 0, 0, help);
        if (r >= 0)
                return r;
        r = daemon_status(c); /* with --json, the storage budget is a key of its object */
        /* then the storage budget, from the store and the database, whether evidockd runs or not */
        if (!c->json && ctl_retention_print_budget(c) < 0)
                r = EXIT_ERROR;
        return r;
}

const CtlCommand ctl_cmd_status = {
    .name = "status",
    .synopsis = "status",
    .summary = "what evidockd is doing: dockings and their progress",
    .run = status_run,
};
