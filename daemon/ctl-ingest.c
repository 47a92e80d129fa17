/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidockctl ingest: one recorder volume through the whole engine, now, in the foreground. */
#include <stdatomic.h>
#include <inttypes.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "ctl-common.h"
#include "docking.h"
#include "output.h"
#include "ingest.h"
#include "macro.h"
#include "store.h"
#include "source-usb.h"

static const char help[] =
    "Usage: evidockctl ingest (--source DIR | --image FILE) [--case NUMBER] [--quiet] [--json]\n"
    "\n"
    "Ingests one recorder volume (a folder, or a FAT/exFAT card image) now, in the foreground: copy,\n"
    "hash, verify the chain, archive copy, record. Progress and findings go to stderr.\n"
    "\n"
    "  -s, --source DIR    the recorder's volume as a directory\n"
    "  -i, --image FILE    the recorder's volume as a FAT32/exFAT image\n"
    "  -c, --case NUMBER   case number for files the recorder carries none for\n"
    "  -q, --quiet         only refusals and failures on stderr\n"
    "      --json          the docking summary as one JSON object on stdout\n"
    "  -h, --help          this help\n"
    "\n"
    "Exit status: 0 clean; 1 error; 2 findings or failed files; 3 recorder refused; 4 spooled.\n";

static atomic_int cancel_requested; /* lock-free: fine in a signal handler */

static void on_signal(int sig)
{
        cancel_requested = 1;
}

typedef struct Progress {
        bool tty;
        bool quiet;
        time_t last;
        Ctl *ctl;
        bool no_database; /* the database could not be opened and the docking not go offline */
        uint64_t t0_us;   /* when the ingest itself started (after connecting and the replay) */
} Progress;

/* What connecting and the spool replay before the docking did (evd_docking_run()). */
static void ingest_started(const EvdDockingStart *start, void *userdata)
{
        Progress *p = userdata;
        Ctl *c = p->ctl;
        p->no_database = !start->database_ok && !start->offline;
        if (start->offline)
                fprintf(stderr, "evidockctl: database unreachable (%s): ingesting into the local spool %s\n",
                        evd_error_message(start->connect_err, start->connect_error), c->cfg.spool_dir);
        if (start->replayed) /* what earlier dockings left in the spool went to the database first */
                ctl_replay_report(c, c->cfg.spool_dir, &start->replay, start->replay_error,
                                  start->replay_err, true);
        p->t0_us = evd_clock_monotonic_us();
}

static void ingest_event(const EvdIngestEvent *ev, void *userdata)
{
        Progress *p = userdata;
        switch (ev->kind) {
        case EVD_INGEST_FILE_PROGRESS:
        case EVD_INGEST_FILE_ARCHIVING:
                if (p->tty && !p->quiet && time(NULL) != p->last) {
                        p->last = time(NULL);
                        fprintf(stderr, "\r  [%u/%u] %-40.40s %5.1f%% of %.1f MB%s", ev->file_index,
                                ev->files_total, text_shown(ev->path),
                                ev->total ? 100.0 * (double)ev->done / (double)ev->total : 0.0,
                                (double)ev->total / 1e6,
                                ev->kind == EVD_INGEST_FILE_ARCHIVING ? " (archive copy)" : "");
                }
                return;
        case EVD_INGEST_FILE_BEGIN:
        case EVD_INGEST_DONE: /* the caller prints its own summary */
                return;
        default:
                break;
        }
        if (p->quiet && ev->kind != EVD_INGEST_REFUSED && ev->kind != EVD_INGEST_FILE_FAILED)
                return;
        if (p->tty)
                fputs("\r\033[K", stderr);
        switch (ev->kind) {
        case EVD_INGEST_FINDING:
                fprintf(stderr, "  finding %s%s%s: %s%s%s%s%s\n", evd_verdict_to_string(ev->verdict),
                        ev->path ? " on " : "", ev->path ? text_shown(ev->path) : "",
                        text_shown(ev->message), ev->expected ? " (expected " : "",
                        ev->expected ? text_shown(ev->expected) : "", ev->found ? ", found " : "",
                        ev->found ? text_shown(ev->found) : "");
                break;
        case EVD_INGEST_FILE_DONE:
                fprintf(stderr, "  %-10s %s -> %s%s\n", evd_verdict_to_string(ev->verdict),
                        text_shown(ev->path), ev->archive_path ? ev->archive_path : ev->original_path,
                        ev->late ? " (LATE: outside 24 h)" : "");
                break;
        case EVD_INGEST_FILE_SKIPPED:
                fprintf(stderr, "  already    %s\n", text_shown(ev->path));
                break;
        case EVD_INGEST_FILE_FAILED:
                fprintf(stderr, "  FAILED     %s: %s\n", ev->path ? text_shown(ev->path) : "",
                        text_shown(ev->message));
                break;
        default:
                fprintf(stderr, "%s\n", text_shown(ev->message));
                break;
        }
}

static int print_summary_json(const EvdIngestSummary *sum, const char *source, double secs, int status)
{
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "source", ctl_json_string(source));
        json_object_object_add(o, "docking_id",
                               sum->docking_id ? json_object_new_int64(sum->docking_id) : NULL);
        json_object_object_add(o, "device_id", ctl_json_string(sum->device_id[0] ? sum->device_id : NULL));
        json_object_object_add(o, "officer_id",
                               ctl_json_string(sum->officer_id[0] ? sum->officer_id : NULL));
        json_object_object_add(o, "refused", json_object_new_boolean(sum->refused));
        json_object_object_add(o, "spooled", json_object_new_boolean(sum->spooled));
        json_object_object_add(o, "files_seen", json_object_new_int64(sum->files_seen));
        json_object_object_add(o, "files_ingested", json_object_new_int64(sum->files_ingested));
        json_object_object_add(o, "files_already", json_object_new_int64(sum->files_already));
        json_object_object_add(o, "files_quarantined", json_object_new_int64(sum->files_quarantined));
        json_object_object_add(o, "files_failed", json_object_new_int64(sum->files_failed));
        json_object_object_add(o, "files_late", json_object_new_int64(sum->files_late));
        json_object_object_add(o, "files_spooled", json_object_new_int64(sum->files_spooled));
        json_object_object_add(o, "findings", json_object_new_int64(sum->findings));
        json_object_object_add(o, "worst", json_object_new_string(evd_verdict_to_string(sum->worst)));
        json_object_object_add(o, "bytes_copied", json_object_new_uint64(sum->bytes_copied));
        json_object_object_add(o, "seconds", json_object_new_double(secs));
        json_object_object_add(o, "exit_status", json_object_new_int(status));
        return ctl_json_print(o);
}

static int ingest_run(Ctl *c, int argc, char **argv)
{
        static const struct option opts[] = {{"source", required_argument, NULL, 's'},
                                             {"image", required_argument, NULL, 'i'},
                                             {"case", required_argument, NULL, 'c'},
                                             {"quiet", no_argument, NULL, 'q'},
                                             CTL_OPTION_JSON,
                                             CTL_OPTION_HELP,
                                             {}};
        const char *source = NULL, *case_number = NULL;
        bool image = false;
        int o;
        while ((o = ctl_getopt(c, argc, argv, opts, help)) > 0) {
                switch (o) {
                case 's':
                case 'i':
                        if (source)
                                return ctl_usage_error(c, help, "give one --source or --image");
                        source = optarg;
                        image = o == 'i';
                        break;
                case 'c':
                        case_number = optarg;
                        break;
                case 'q':
                        c->quiet = true;
                        break;
                }
        }
        if (o < 0)
                return ctl_opt_exit(o);
        if (ctl_positional(c, argc, argv, 0, 0, help) < 0)
                return EXIT_USAGE;
        if (!source)
                return ctl_usage_error(c, help, "--source DIR or --image FILE is required");
        if (ctl_config(c) < 0)
                return EXIT_ERROR;
        EvdError err = {};
        _cleanup_(evd_source_freep) EvdSource *src = NULL;
        int r = image ? evd_source_image_new(source, &src, &err) : evd_source_dir_new(source, &src, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        _cleanup_(evd_store_freep) EvdStore *store = NULL;
        r = evd_store_open(c->cfg.store_root, &store, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        Progress prog = {.tty = isatty(STDERR_FILENO), .quiet = c->quiet, .ctl = c};
        EvdIngestOptions io;
        evd_config_ingest_options(&c->cfg, &io);
        io.case_number = case_number;
        io.on_event = ingest_event;
        io.userdata = &prog;
        io.cancel = &cancel_requested;
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);

        /* connect (or go offline into the spool), replay earlier dockings' entries, ingest */
        EvdIngestSummary sum = {};
        prog.t0_us = evd_clock_monotonic_us();
        r = evd_docking_run(src, store, c->cfg.database_url, &io, false, ingest_started, &sum, &err);
        if (r < 0 && prog.no_database && evd_db_login_refused(r))
                /* a configuration error, not an outage: nothing goes into the spool */
                return ctl_error(c, "%s; nothing was ingested and nothing spooled (fix [database] url)",
                                 evd_error_message(&err, r));
        if (r < 0 && prog.no_database)
                return ctl_error(c, "cannot open the evidence database: %s", evd_error_message(&err, r));
        double secs = (double)(evd_clock_monotonic_us() - prog.t0_us) / 1e6;
        if (prog.tty)
                fputs("\r\033[K", stderr);
        /* a docking that went to the spool gets its number when the spool is replayed */
        char docking[48] = "docking (spooled: numbered at replay)";
        if (sum.docking_id)
                snprintf(docking, sizeof(docking), "docking %" PRId64, sum.docking_id);
        fprintf(stderr,
                "%s of %s (officer %s): %u files seen, %u ingested, %u already ingested, "
                "%u quarantined, %u failed, %u late; %u findings, worst %s; %.1f MB in %.2f s (%.1f MB/s)\n",
                docking, sum.device_id[0] ? sum.device_id : "?", sum.officer_id[0] ? sum.officer_id : "?",
                sum.files_seen, sum.files_ingested, sum.files_already, sum.files_quarantined,
                sum.files_failed, sum.files_late, sum.findings, evd_verdict_to_string(sum.worst),
                (double)sum.bytes_copied / 1e6, secs,
                secs > 0 ? (double)sum.bytes_copied / 1e6 / secs : 0.0);
        if (sum.spooled)
                fprintf(stderr,
                        "evidockctl: %u file(s) spooled in %s: %s; they are recorded when the database is "
                        "back (next ingest, evidockd, or `evidockctl spool replay`)\n",
                        sum.files_spooled, c->cfg.spool_dir, sum.spool_why);
        int status;
        if (r < 0) {
                fprintf(stderr, "evidockctl: ingest of %s stopped: %s\n", source,
                        evd_error_message(&err, r));
                status = EXIT_ERROR;
        } else if (sum.refused)
                status = EXIT_REFUSED;
        else if (sum.spooled)
                status = EXIT_SPOOLED;
        else if (sum.worst != EVD_VERDICT_INTACT || sum.files_failed > 0 || sum.files_quarantined > 0)
                status = EXIT_FINDINGS;
        else
                status = EXIT_CLEAN;
        if (c->json && print_summary_json(&sum, source, secs, status) < 0)
                return EXIT_ERROR;
        return status;
}

const CtlCommand ctl_cmd_ingest = {
    .name = "ingest",
    .synopsis = "ingest --source DIR|--image FILE",
    .summary = "ingest one recorder volume now, in the foreground",
    .run = ingest_run,
};
