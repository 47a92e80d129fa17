/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidockctl: the admin CLI. It runs the engine offline (ingest) and reads the evidence database
 * (log, chain, devices, audit). It never changes evidence: the database refuses that anyway. */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include <libavutil/log.h>

#include "config.h"
#include "custody.h"
#include "db.h"
#include "evd-config.h"
#include "hash.h"
#include "ingest.h"
#include "output.h"
#include "reconcile.h"
#include "signature.h"
#include "source-usb.h"
#include "status.h"
#include "store.h"

enum {
        EXIT_CLEAN = 0,
        EXIT_ERROR = 1,
        EXIT_FINDINGS = 2,
        EXIT_REFUSED = 3,
        EXIT_SPOOLED = 4,
        EXIT_USAGE = 64
};

typedef struct Ctl {
        EvdConfig cfg;
        const char *config_path;
        bool json;
        bool quiet;
} Ctl;

static volatile int cancel_requested;

static void on_signal(int sig)
{
        cancel_requested = 1;
}

static int open_db(Ctl *c, EvdDb **ret)
{
        EvdError err = {};
        int r = evd_db_open(c->cfg.database_url, ret, &err);
        if (r < 0)
                fprintf(stderr, "evidockctl: cannot open the evidence database: %s\n",
                        evd_error_message(&err, r));
        return r;
}

/* The spool, if one is configured ("" disables it); NULL when it cannot be used (said on stderr unless
 * quiet: an admin without access to it needs no warning while the database is up). */
static EvdSpool *open_spool(Ctl *c, bool quiet)
{
        if (!c->cfg.spool_dir || !c->cfg.spool_dir[0])
                return NULL;
        EvdSpool *s = NULL;
        EvdError err = {};
        int r = evd_spool_open(c->cfg.spool_dir, &s, &err);
        if (r < 0 && !quiet)
                fprintf(stderr, "evidockctl: spool unusable: %s\n", evd_error_message(&err, r));
        return s;
}

/* Replays the spool into db; says what it did. Returns the replay's result. */
static int replay_spool(EvdSpool *s, EvdDb *db, bool quiet)
{
        EvdSpoolReplay rep = {};
        EvdError err = {};
        int r = evd_spool_replay(s, db, &rep, &err);
        if (rep.replayed || rep.already || rep.rejected || !quiet)
                fprintf(stderr,
                        "spool %s: replayed %u entries, %u already recorded, %u rejected, %u waiting%s%s\n",
                        evd_spool_dir(s), rep.replayed, rep.already, rep.rejected, rep.waiting,
                        rep.other_db ? " (some for another database)" : "",
                        r == -EBUSY ? " (another replay is running)" : "");
        if (rep.rejected)
                fprintf(stderr, "evidockctl: spool entry rejected (kept in %s/rejected): %s\n",
                        evd_spool_dir(s), rep.last_rejected);
        if (r < 0 && r != -EBUSY)
                fprintf(stderr, "evidockctl: spool replay stopped: %s\n", evd_error_message(&err, r));
        return r;
}

static void usage(FILE *f)
{
        fputs(
            "Usage: evidockctl [--config FILE] [--database URL] [--store DIR] [--json] COMMAND ...\n"
            "\n"
            "Commands:\n"
            "  ingest --source DIR|--image FILE [--case NUMBER] [--quiet]\n"
            "                                        ingest one recorder volume (a folder or a FAT/exFAT\n"
            "                                        card image) now, in the foreground\n"
            "  log [--since TIME] [--device ID] [--format text|json]\n"
            "                                        one line / JSON object per ingested file\n"
            "  chain DEVICE                          a recorder's chain: files by sequence, breaks, heads\n"
            "  device enroll --device ID --officer ID [--unit CODE] --key PUBKEY.pem\n"
            "  device list\n"
            "  device retire ID [--reason TEXT]\n"
            "  audit verify                          prove the custody log unaltered\n"
            "  reconcile                             check the store against the database (stored files\n"
            "                                        without rows, rows without files); deletes nothing\n"
            "  status                                what evidockd is doing (docked recorders, progress)\n"
            "  config                                print the effective configuration\n"
            "  spool list                            entries waiting in the local spool for the database\n"
            "  spool replay                          write them to the database now (in order, exactly "
            "once)\n"
            "\n"
            "Exit status: 0 clean; 1 error; 2 done with findings or files left for later; 3 recorder "
            "refused;\n"
            "4 ingested into the local spool (database unreachable): recorded when the database is back.\n"
            "See evidockctl(1).\n",
            f);
}

/* ---- ingest -------------------------------------------------------------------------------------- */

typedef struct Progress {
        bool tty;
        bool quiet;
        time_t last;
} Progress;

static void ingest_event(const EvdIngestEvent *ev, void *userdata)
{
        Progress *p = userdata;
        switch (ev->kind) {
        case EVD_INGEST_FILE_PROGRESS:
                if (p->tty && !p->quiet && time(NULL) != p->last) {
                        p->last = time(NULL);
                        fprintf(stderr, "\r  %-48.48s %5.1f%% of %.1f MB", ev->path,
                                ev->total ? 100.0 * (double)ev->done / (double)ev->total : 0.0,
                                (double)ev->total / 1e6);
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
                        ev->path ? " on " : "", ev->path ? ev->path : "", ev->message,
                        ev->expected ? " (expected " : "", ev->expected ? ev->expected : "",
                        ev->found ? ", found " : "", ev->found ? ev->found : "");
                break;
        case EVD_INGEST_FILE_DONE:
                fprintf(stderr, "  %-10s %s -> %s%s\n", evd_verdict_to_string(ev->verdict), ev->path,
                        ev->archive_path ? ev->archive_path : ev->original_path,
                        ev->late ? " (LATE: outside 24 h)" : "");
                break;
        case EVD_INGEST_FILE_SKIPPED:
                fprintf(stderr, "  already    %s\n", ev->path);
                break;
        case EVD_INGEST_FILE_FAILED:
                fprintf(stderr, "  FAILED     %s: %s\n", ev->path ? ev->path : "", ev->message);
                break;
        default:
                fprintf(stderr, "%s\n", ev->message);
                break;
        }
}

static int cmd_ingest(Ctl *c, int argc, char **argv)
{
        static const struct option opts[] = {{"source", required_argument, NULL, 's'},
                                             {"image", required_argument, NULL, 'i'},
                                             {"case", required_argument, NULL, 'c'},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {}};
        const char *source = NULL, *case_number = NULL;
        bool image = false;
        int o;
        optind = 1;
        while ((o = getopt_long(argc, argv, "s:i:c:q", opts, NULL)) >= 0) {
                switch (o) {
                case 's':
                        source = optarg;
                        break;
                case 'i':
                        source = optarg;
                        image = true;
                        break;
                case 'c':
                        case_number = optarg;
                        break;
                case 'q':
                        c->quiet = true;
                        break;
                default:
                        return EXIT_USAGE;
                }
        }
        if (!source) {
                fprintf(stderr, "evidockctl ingest: --source DIR or --image FILE is required\n");
                return EXIT_USAGE;
        }
        EvdError err = {};
        _cleanup_(evd_source_freep) EvdSource *src = NULL;
        int r = image ? evd_source_image_new(source, &src, &err) : evd_source_dir_new(source, &src, &err);
        if (r < 0) {
                fprintf(stderr, "evidockctl: %s\n", evd_error_message(&err, r));
                return EXIT_ERROR;
        }
        _cleanup_(evd_store_freep) EvdStore *store = NULL;
        r = evd_store_open(c->cfg.store_root, &store, &err);
        if (r < 0) {
                fprintf(stderr, "evidockctl: %s\n", evd_error_message(&err, r));
                return EXIT_ERROR;
        }
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        _cleanup_(evd_spool_freep) EvdSpool *spool = NULL;
        r = evd_db_open(c->cfg.database_url, &db, &err);
        spool = open_spool(c, r >= 0);
        if (r < 0 && spool && evd_spool_db_unreachable(r))
                fprintf(stderr, "evidockctl: database unreachable (%s): ingesting into the local spool %s\n",
                        evd_error_message(&err, r), evd_spool_dir(spool));
        else if (r < 0) {
                fprintf(stderr, "evidockctl: cannot open the evidence database: %s\n",
                        evd_error_message(&err, r));
                return EXIT_ERROR;
        }
        /* what earlier dockings left in the spool goes to the database before this one */
        if (db && spool)
                (void)replay_spool(spool, db, true);
        spool = evd_spool_free(spool);
        err = (EvdError){};

        Progress prog = {.tty = isatty(STDERR_FILENO), .quiet = c->quiet};
        EvdIngestOptions io;
        evd_config_ingest_options(&c->cfg, &io);
        io.case_number = case_number;
        io.on_event = ingest_event;
        io.userdata = &prog;
        io.cancel = &cancel_requested;
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);

        EvdIngestSummary sum = {};
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        r = evd_ingest_run(src, store, db, &io, &sum, &err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        if (prog.tty)
                fputs("\r\033[K", stderr);
        fprintf(stderr,
                "docking %" PRId64 " of %s (officer %s): %u files seen, %u ingested, %u already ingested, "
                "%u quarantined, %u failed, %u late; %u findings, worst %s; %.1f MB in %.2f s (%.1f MB/s)\n",
                sum.docking_id, sum.device_id[0] ? sum.device_id : "?",
                sum.officer_id[0] ? sum.officer_id : "?", sum.files_seen, sum.files_ingested,
                sum.files_already, sum.files_quarantined, sum.files_failed, sum.files_late, sum.findings,
                evd_verdict_to_string(sum.worst), (double)sum.bytes_copied / 1e6, secs,
                secs > 0 ? (double)sum.bytes_copied / 1e6 / secs : 0.0);
        if (sum.spooled)
                fprintf(stderr,
                        "evidockctl: %u file(s) spooled in %s: %s; they are recorded when the database is "
                        "back (next ingest, evidockd, or `evidockctl spool replay`)\n",
                        sum.files_spooled, c->cfg.spool_dir, sum.spool_why);
        if (r < 0) {
                fprintf(stderr, "evidockctl: ingest of %s stopped: %s\n", source,
                        evd_error_message(&err, r));
                return EXIT_ERROR;
        }
        if (sum.refused)
                return EXIT_REFUSED;
        if (sum.spooled)
                return EXIT_SPOOLED;
        if (sum.worst != EVD_VERDICT_INTACT || sum.files_failed > 0 || sum.files_quarantined > 0)
                return EXIT_FINDINGS;
        return EXIT_CLEAN;
}

/* ---- log ----------------------------------------------------------------------------------------- */

static void print_file_json(const EvdDbFileRow *f)
{
        char t1[48], t2[48], t3[48];
        printf("{\"id\":%" PRId64 ",\"docking_id\":%" PRId64 ",\"device_id\":", f->id, f->docking_id);
        json_string(stdout, f->device_id);
        printf(",\"officer_id\":");
        json_string(stdout, f->officer_id);
        if (f->has_seq)
                printf(",\"seq\":%" PRIu64 ",\"session\":%" PRIu64, f->seq, f->session);
        else
                printf(",\"seq\":null,\"session\":null");
        printf(",\"method\":");
        json_string(stdout, f->method);
        printf(",\"case_number\":");
        json_string(stdout, f->case_number);
        printf(",\"recorded_start\":");
        json_string(stdout, f->has_recorded
                                ? format_time_tz(f->recorded_start_us, f->tz_minutes, t1, sizeof(t1))
                                : NULL);
        printf(",\"recorded_end\":");
        json_string(stdout, f->has_recorded
                                ? format_time_tz(f->recorded_end_us, f->tz_minutes, t2, sizeof(t2))
                                : NULL);
        printf(",\"ingested_at\":");
        json_string(stdout, format_time_local(f->ingested_us, t3, sizeof(t3)));
        printf(",\"stored_at\":");
        json_string(stdout, format_time_local(f->stored_us, t3, sizeof(t3)));
        printf(",\"within_24h\":%s,\"size\":%" PRIu64 ",\"sha256\":",
               f->has_recorded ? (f->within_24h ? "true" : "false") : "null", f->size);
        json_string(stdout, f->sha256);
        printf(",\"record_hash\":");
        json_string(stdout, f->record_hash[0] ? f->record_hash : NULL);
        printf(",\"source_path\":");
        json_string(stdout, f->source_path);
        if (f->has_clock_offset)
                printf(",\"clock_offset_ms\":%" PRId64, f->clock_offset_us / 1000);
        else
                printf(",\"clock_offset_ms\":null");
        printf(",\"original_path\":");
        json_string(stdout, f->original_path);
        printf(",\"archive_path\":");
        json_string(stdout, f->archive_path);
        printf(",\"archive_sha256\":");
        json_string(stdout, f->archive_sha256[0] ? f->archive_sha256 : NULL);
        printf(",\"verdict\":");
        json_string(stdout, f->verdict);
        printf(",\"confidentiality\":");
        json_string(stdout, f->confidentiality);
        printf(",\"retention_class\":");
        json_string(stdout, f->retention_class);
        printf(",\"findings\":[");
        for (size_t i = 0; i < f->n_findings; i++) {
                const EvdDbFindingRow *x = &f->findings[i];
                printf("%s{\"verdict\":", i ? "," : "");
                json_string(stdout, x->verdict);
                if (x->has_seq)
                        printf(",\"seq\":%" PRIu64, x->seq);
                printf(",\"expected\":");
                json_string(stdout, x->expected);
                printf(",\"found\":");
                json_string(stdout, x->found);
                printf(",\"detail\":");
                json_string(stdout, x->detail);
                printf("}");
        }
        printf("]}\n");
}

static void print_file_text(const EvdDbFileRow *f)
{
        char t1[48], t2[48];
        char seq[32] = "-";
        if (f->has_seq)
                snprintf(seq, sizeof(seq), "%" PRIu64, f->seq);
        char clock[32] = "clock ?";
        if (f->has_clock_offset)
                snprintf(clock, sizeof(clock), "clock %+.1fs", (double)f->clock_offset_us / 1e6);
        printf("%s  %s  officer %s  %s  seq %-5s %-5s case %-14s rec %s  %s  %-17s %.12s  %s%s\n",
               format_time_local(f->ingested_us, t1, sizeof(t1)), f->device_id, strna(f->officer_id), clock,
               seq, f->method, f->case_number && f->case_number[0] ? f->case_number : "-",
               f->has_recorded ? format_time_tz(f->recorded_start_us, f->tz_minutes, t2, sizeof(t2))
                               : "unknown",
               f->has_recorded ? (f->within_24h ? "in-24h" : "LATE  ") : "?     ", f->verdict, f->sha256,
               f->archive_path ? f->archive_path : f->original_path, "");
        for (size_t i = 0; i < f->n_findings; i++)
                printf("    finding %s: %s%s%s%s%s\n", f->findings[i].verdict, strna(f->findings[i].detail),
                       f->findings[i].expected ? " expected " : "",
                       f->findings[i].expected ? f->findings[i].expected : "",
                       f->findings[i].found ? " found " : "",
                       f->findings[i].found ? f->findings[i].found : "");
}

static int cmd_log(Ctl *c, int argc, char **argv)
{
        static const struct option opts[] = {{"since", required_argument, NULL, 's'},
                                             {"device", required_argument, NULL, 'd'},
                                             {"format", required_argument, NULL, 'f'},
                                             {}};
        EvdDbLogFilter filter = {};
        bool json = c->json;
        int o;
        optind = 1;
        while ((o = getopt_long(argc, argv, "s:d:f:", opts, NULL)) >= 0) {
                switch (o) {
                case 's':
                        if (parse_time_arg(optarg, &filter.since_us) < 0) {
                                fprintf(stderr, "evidockctl log: cannot parse time '%s'\n", optarg);
                                return EXIT_USAGE;
                        }
                        filter.has_since = true;
                        break;
                case 'd':
                        filter.device_id = optarg;
                        break;
                case 'f':
                        if (strcmp(optarg, "json") == 0)
                                json = true;
                        else if (strcmp(optarg, "text") == 0)
                                json = false;
                        else {
                                fprintf(stderr, "evidockctl log: --format is text or json\n");
                                return EXIT_USAGE;
                        }
                        break;
                default:
                        return EXIT_USAGE;
                }
        }
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdError err = {};
        _cleanup_(evd_db_log_freep) EvdDbLog *log = NULL;
        int r = evd_db_log_query(db, &filter, &log, &err);
        if (r < 0) {
                fprintf(stderr, "evidockctl log: %s\n", evd_error_message(&err, r));
                return EXIT_ERROR;
        }
        for (size_t i = 0; i < log->n_files; i++)
                json ? print_file_json(&log->files[i]) : print_file_text(&log->files[i]);
        if (log->truncated)
                fprintf(stderr,
                        "evidockctl log: output truncated at %zu rows; narrow it with --since/--device\n",
                        log->n_files);
        return EXIT_CLEAN;
}

/* ---- chain --------------------------------------------------------------------------------------- */

static int cmd_chain(Ctl *c, int argc, char **argv)
{
        if (argc != 2) {
                fprintf(stderr, "evidockctl chain: exactly one DEVICE expected\n");
                return EXIT_USAGE;
        }
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdError err = {};
        _cleanup_(evd_db_chain_view_freep) EvdDbChainView *v = NULL;
        int r = evd_db_chain_view(db, argv[1], &v, &err);
        if (r < 0) {
                fprintf(stderr, "evidockctl chain: %s\n", evd_error_message(&err, r));
                return EXIT_ERROR;
        }
        printf("chain of recorder %s: %zu files, %zu docking-level findings, %zu heads\n", argv[1],
               v->n_files, v->n_docking_findings, v->n_heads);
        /* Breaks are shown as the findings the verifier recorded (gaps are judged against the chain's
         * records, which include GEN/END/DEL records that have no file). */
        for (size_t i = 0; i < v->n_files; i++) {
                const EvdDbFileRow *f = &v->files[i];
                char t[48];
                char seq[24] = "foreign";
                if (f->has_seq)
                        snprintf(seq, sizeof(seq), "%" PRIu64, f->seq);
                printf("  seq %-7s session %-3" PRIu64 " %-5s %s  %-17s %.16s  %s\n", seq, f->session,
                       f->method,
                       f->has_recorded ? format_time_tz(f->recorded_start_us, f->tz_minutes, t, sizeof(t))
                                       : "time unknown",
                       f->verdict, f->sha256, f->original_path);
                for (size_t k = 0; k < f->n_findings; k++)
                        printf("      %s: %s\n", f->findings[k].verdict, strna(f->findings[k].detail));
        }
        for (size_t i = 0; i < v->n_docking_findings; i++) {
                const EvdDbFindingRow *x = &v->docking_findings[i];
                printf("  docking %" PRId64 " finding %s", x->docking_id, x->verdict);
                if (x->has_seq)
                        printf(" at seq %" PRIu64, x->seq);
                printf(": %s%s%s%s%s\n", strna(x->detail), x->expected ? "; expected " : "",
                       x->expected ? x->expected : "", x->found ? "; found " : "", x->found ? x->found : "");
        }
        for (size_t i = 0; i < v->n_heads; i++) {
                char hex[2 * EVD_DIGEST_SIZE + 1], t[48];
                printf("  head after docking %" PRId64 ": seq %" PRIu64 " session %" PRIu64 " %s  (%s)\n",
                       v->heads[i].docking_id, v->heads[i].seq, v->heads[i].session,
                       evd_hex(v->heads[i].record_hash, EVD_DIGEST_SIZE, hex),
                       format_time_local(v->heads[i].set_us, t, sizeof(t)));
        }
        return EXIT_CLEAN;
}

/* ---- device -------------------------------------------------------------------------------------- */

static int cmd_device(Ctl *c, int argc, char **argv)
{
        if (argc < 2) {
                fprintf(stderr, "evidockctl device: enroll, list or retire\n");
                return EXIT_USAGE;
        }
        const char *sub = argv[1];
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        EvdError err = {};
        int r;
        if (strcmp(sub, "enroll") == 0) {
                static const struct option opts[] = {{"device", required_argument, NULL, 'd'},
                                                     {"officer", required_argument, NULL, 'o'},
                                                     {"unit", required_argument, NULL, 'u'},
                                                     {"key", required_argument, NULL, 'k'},
                                                     {}};
                const char *dev = NULL, *officer = NULL, *unit = NULL, *keyfile = NULL;
                int o;
                optind = 1;
                while ((o = getopt_long(argc - 1, argv + 1, "d:o:u:k:", opts, NULL)) >= 0) {
                        switch (o) {
                        case 'd':
                                dev = optarg;
                                break;
                        case 'o':
                                officer = optarg;
                                break;
                        case 'u':
                                unit = optarg;
                                break;
                        case 'k':
                                keyfile = optarg;
                                break;
                        default:
                                return EXIT_USAGE;
                        }
                }
                if (!dev || !officer || !keyfile) {
                        fprintf(stderr,
                                "evidockctl device enroll: --device, --officer and --key are required\n");
                        return EXIT_USAGE;
                }
                _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
                r = evd_key_load_public_pem(keyfile, &key, &err);
                if (r < 0) {
                        fprintf(stderr, "evidockctl device enroll: %s\n", evd_error_message(&err, r));
                        return EXIT_ERROR;
                }
                EvdSuite suite;
                r = evd_key_suite(key, &suite);
                if (r < 0) {
                        fprintf(stderr, "evidockctl device enroll: %s: key type fits no signature suite\n",
                                keyfile);
                        return EXIT_ERROR;
                }
                char key_id[EVD_KEY_ID_STRLEN + 1];
                _cleanup_free_ char *pem = NULL;
                if (evd_key_id(key, key_id) < 0 || evd_key_public_to_pem(key, &pem, &err) < 0) {
                        fprintf(stderr, "evidockctl device enroll: cannot export key %s\n", keyfile);
                        return EXIT_ERROR;
                }
                if (open_db(c, &db) < 0)
                        return EXIT_ERROR;
                EvdDbDevice d = {.device_id = (char *)dev,
                                 .officer_id = (char *)officer,
                                 .unit_code = (char *)unit,
                                 .suite = suite,
                                 .public_key_pem = pem,
                                 .key_id = key_id};
                r = evd_db_device_enroll(db, &d, &err);
                if (r < 0) {
                        fprintf(stderr, "evidockctl device enroll: %s\n", evd_error_message(&err, r));
                        return EXIT_ERROR;
                }
                EvdCustodyEntry ev = {.kind = "enrolled", .device_id = dev, .detail = key_id};
                (void)evd_custody_append(db, &ev, NULL, NULL);
                printf("enrolled %s (officer %s, %s key %s)\n", dev, officer, evd_suite_to_string(suite),
                       key_id);
                return EXIT_CLEAN;
        }
        if (open_db(c, &db) < 0)
                return EXIT_ERROR;
        if (strcmp(sub, "list") == 0) {
                EvdDbDevice *devs = NULL;
                size_t n = 0;
                r = evd_db_device_list(db, &devs, &n, &err);
                if (r < 0) {
                        fprintf(stderr, "evidockctl device list: %s\n", evd_error_message(&err, r));
                        return EXIT_ERROR;
                }
                for (size_t i = 0; i < n; i++) {
                        char t[48];
                        printf("%s  officer %s  unit %s  %s key %s  enrolled %s\n", devs[i].device_id,
                               devs[i].officer_id, devs[i].unit_code ? devs[i].unit_code : "-",
                               evd_suite_to_string(devs[i].suite), devs[i].key_id,
                               format_time_local(devs[i].enrolled_us, t, sizeof(t)));
                }
                evd_db_device_array_free(devs, n);
                return EXIT_CLEAN;
        }
        if (strcmp(sub, "retire") == 0) {
                if (argc < 3) {
                        fprintf(stderr, "evidockctl device retire: DEVICE expected\n");
                        return EXIT_USAGE;
                }
                const char *reason = NULL;
                if (argc >= 5 && strcmp(argv[3], "--reason") == 0)
                        reason = argv[4];
                r = evd_db_device_retire(db, argv[2], reason, &err);
                if (r < 0) {
                        fprintf(stderr, "evidockctl device retire: %s\n", evd_error_message(&err, r));
                        return EXIT_ERROR;
                }
                EvdCustodyEntry ev = {.kind = "retired", .device_id = argv[2], .detail = reason};
                (void)evd_custody_append(db, &ev, NULL, NULL);
                printf("retired %s\n", argv[2]);
                return EXIT_CLEAN;
        }
        fprintf(stderr, "evidockctl device: unknown subcommand '%s'\n", sub);
        return EXIT_USAGE;
}

/* ---- audit --------------------------------------------------------------------------------------- */

static int cmd_audit(Ctl *c, int argc, char **argv)
{
        if (argc != 2 || strcmp(argv[1], "verify") != 0) {
                fprintf(stderr, "evidockctl audit: only 'audit verify' exists\n");
                return EXIT_USAGE;
        }
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdError err = {};
        EvdCustodyReport rep = {};
        int r = evd_custody_verify(db, &rep, &err);
        if (r < 0) {
                fprintf(stderr, "evidockctl audit verify: could not verify: %s\n",
                        evd_error_message(&err, r));
                return EXIT_ERROR;
        }
        char hex[2 * EVD_DIGEST_SIZE + 1];
        if (rep.ok) {
                printf("custody log intact: %" PRIu64 " events, head %" PRId64 " %s\n", rep.n_events,
                       rep.head_id, evd_hex(rep.head_hash, EVD_DIGEST_SIZE, hex));
                return EXIT_CLEAN;
        }
        printf("custody log BROKEN at event %" PRId64 ": %s: %s\n", rep.first_bad_id,
               evd_custody_problem_to_string(rep.problem), rep.detail);
        return EXIT_FINDINGS;
}

/* ---- spool --------------------------------------------------------------------------------------- */

static void spool_list_one(const EvdSpoolInfo *i, void *userdata)
{
        unsigned *n = userdata;
        char t[48];
        printf("%8" PRIu64 "  %-7s  %-8s  %-26s  %s  db %s  %6" PRIu64 " B  %s\n", i->seq,
               evd_spool_kind_to_string(i->kind), i->device_id[0] ? i->device_id : "-",
               i->docking_key[0] ? i->docking_key : "?",
               i->spooled_us ? format_time_local(i->spooled_us, t, sizeof(t)) : "?", i->db_tag, i->size,
               i->summary);
        (*n)++;
}

static int cmd_spool(Ctl *c, int argc, char **argv)
{
        if (argc != 2 || (strcmp(argv[1], "list") != 0 && strcmp(argv[1], "replay") != 0)) {
                fprintf(stderr, "usage: evidockctl spool list|replay\n");
                return EXIT_USAGE;
        }
        _cleanup_(evd_spool_freep) EvdSpool *spool = open_spool(c, false);
        if (!spool) {
                fprintf(stderr, "evidockctl: no usable spool (set [database] spool_dir)\n");
                return EXIT_ERROR;
        }
        EvdError err = {};
        if (strcmp(argv[1], "list") == 0) {
                unsigned n = 0;
                int r = evd_spool_list(spool, spool_list_one, &n, &err);
                if (r < 0) {
                        fprintf(stderr, "evidockctl: %s\n", evd_error_message(&err, r));
                        return EXIT_ERROR;
                }
                fprintf(stderr, "%u entries waiting in %s\n", n, evd_spool_dir(spool));
                return EXIT_CLEAN;
        }
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdSpoolReplay rep = {};
        int r = evd_spool_replay(spool, db, &rep, &err);
        fprintf(stderr, "spool %s: replayed %u entries, %u already recorded, %u rejected, %u waiting%s\n",
                evd_spool_dir(spool), rep.replayed, rep.already, rep.rejected, rep.waiting,
                rep.other_db ? " (some for another database)" : "");
        if (rep.rejected)
                fprintf(
                    stderr,
                    "evidockctl: %u spool entries rejected, kept in %s/rejected with the reason; last: %s\n",
                    rep.rejected, evd_spool_dir(spool), rep.last_rejected);
        if (r < 0) {
                fprintf(stderr, "evidockctl: spool replay stopped: %s\n", evd_error_message(&err, r));
                return EXIT_ERROR;
        }
        unsigned left = 0;
        /* 2: entries were rejected, or wait (another database's, or a docking still being spooled) */
        if (rep.rejected || (evd_spool_backlog(spool, &left) >= 0 && left > 0))
                return EXIT_FINDINGS;
        return EXIT_CLEAN;
}

/* ---- reconcile ----------------------------------------------------------------------------------- */

static void print_reconcile_finding(EvdReconcileKind kind, const char *path, int64_t file_id, void *userdata)
{
        if (kind == EVD_RECONCILE_FILE_WITHOUT_ROW)
                printf("stored, not recorded: %s\n", path);
        else if (kind == EVD_RECONCILE_ROW_WITHOUT_FILE)
                printf("MISSING from the store: %s (file %" PRId64 ")\n", path, file_id);
}

static int cmd_reconcile(Ctl *c, int argc, char **argv)
{
        EvdError err = {};
        _cleanup_(evd_store_freep) EvdStore *store = NULL;
        int r = evd_store_open(c->cfg.store_root, &store, &err);
        if (r < 0) {
                fprintf(stderr, "evidockctl reconcile: %s\n", evd_error_message(&err, r));
                return EXIT_ERROR;
        }
        /* spooled files have no rows until the spool is replayed: they are not leftovers */
        if (c->cfg.spool_dir && c->cfg.spool_dir[0]) {
                _cleanup_(evd_spool_freep) EvdSpool *spool = NULL;
                unsigned backlog = 0;
                if (evd_spool_open(c->cfg.spool_dir, &spool, NULL) >= 0 &&
                    evd_spool_backlog(spool, &backlog) >= 0 && backlog > 0) {
                        fprintf(stderr,
                                "evidockctl reconcile: %u entries wait in the spool %s; replay them first "
                                "(evidockctl spool replay)\n",
                                backlog, c->cfg.spool_dir);
                        return EXIT_ERROR;
                }
        }
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdReconcileReport rep = {};
        r = evd_reconcile(store, db, print_reconcile_finding, NULL, &rep, &err);
        if (r < 0) {
                fprintf(stderr, "evidockctl reconcile: %s\n", evd_error_message(&err, r));
                return EXIT_ERROR;
        }
        printf("%u stored files and %u recorded paths checked: %u temporary file(s) removed, %u file(s) "
               "without a "
               "row, %u row(s) without a file\n",
               rep.files_checked, rep.rows_checked, rep.temp_removed, rep.files_without_row,
               rep.rows_without_file);
        return rep.files_without_row || rep.rows_without_file ? EXIT_FINDINGS : EXIT_CLEAN;
}

/* ---- status / config ----------------------------------------------------------------------------- */

static int cmd_status(Ctl *c, int argc, char **argv)
{
        return evd_status_print(stdout) < 0 ? EXIT_ERROR : EXIT_CLEAN;
}

static int cmd_config(Ctl *c, int argc, char **argv)
{
        char url[512];
        mask_password(c->cfg.database_url, url, sizeof(url));
        printf("[database]\nurl = %s\nspool_dir = %s\n[store]\nroot = %s\nreserve = %" PRIu64 "\n", url,
               c->cfg.spool_dir, c->cfg.store_root, c->cfg.store_reserve_bytes);
        printf("[ingest]\ndefault_case_number = %s\nlate_after = %" PRId64 "s\nmax_file_size = %" PRIu64
               "\narchive_copy = %s\nmedia_timeout = %" PRId64 "s\ntime_gap_tolerance = %" PRId64
               "ms\nclock_max_offset = %" PRId64 "s\nconfidentiality = %s\n",
               c->cfg.default_case_number, c->cfg.late_after_us / 1000000, c->cfg.max_file_bytes,
               c->cfg.archive_copy ? "yes" : "no", c->cfg.media_timeout_us / 1000000,
               c->cfg.time_gap_tolerance_us / 1000, c->cfg.clock_max_offset_us / 1000000,
               c->cfg.confidentiality);
        printf("[watch]\n");
        for (unsigned i = 0; i < c->cfg.n_watch_dirs; i++)
                printf("dir = %s\n", c->cfg.watch_dirs[i]);
        printf("[usb]\nenabled = %s\nprofiles_dir = %s\nset_clock = %s\nmax_concurrent = %u\n",
               c->cfg.usb_enabled ? "yes" : "no", c->cfg.usb_profiles_dir,
               c->cfg.usb_set_clock ? "yes" : "no", c->cfg.usb_max_concurrent);
        return EXIT_CLEAN;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {{"config", required_argument, NULL, 'C'},
                                             {"database", required_argument, NULL, 'D'},
                                             {"store", required_argument, NULL, 'S'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'},
                                             {"version", no_argument, NULL, 'V'},
                                             {}};
        Ctl c = {};
        const char *db_url = NULL, *store = NULL;
        int o;
        /* global options stop at the command word */
        while ((o = getopt_long(argc, argv, "+C:D:S:jhV", opts, NULL)) >= 0) {
                switch (o) {
                case 'C':
                        c.config_path = optarg;
                        break;
                case 'D':
                        db_url = optarg;
                        break;
                case 'S':
                        store = optarg;
                        break;
                case 'j':
                        c.json = true;
                        break;
                case 'h':
                        usage(stdout);
                        return EXIT_CLEAN;
                case 'V':
                        printf("evidockctl %s\n", EVD_VERSION);
                        return EXIT_CLEAN;
                default:
                        usage(stderr);
                        return EXIT_USAGE;
                }
        }
        if (optind >= argc) {
                usage(stderr);
                return EXIT_USAGE;
        }
        av_log_set_level(AV_LOG_ERROR);
        EvdError err = {};
        if (evd_config_init(&c.cfg) < 0)
                return EXIT_ERROR;
        const char *path = c.config_path ? c.config_path : getenv("EVIDOCK_CONFIG");
        int r = evd_config_load(&c.cfg, path ? path : EVD_DEFAULT_CONFIG_FILE, path != NULL, &err);
        if (r < 0) {
                fprintf(stderr, "evidockctl: %s\n", evd_error_message(&err, r));
                evd_config_clear(&c.cfg);
                return EXIT_ERROR;
        }
        if (!db_url)
                db_url = getenv("EVIDOCK_DATABASE");
        if (db_url) {
                free(c.cfg.database_url);
                c.cfg.database_url = strdup(db_url);
        }
        if (store) {
                free(c.cfg.store_root);
                c.cfg.store_root = strdup(store);
        }
        if (!c.cfg.database_url || !c.cfg.store_root)
                return EXIT_ERROR;

        static const struct {
                const char *name;
                int (*fn)(Ctl *, int, char **);
        } cmds[] = {
            {"ingest", cmd_ingest}, {"log", cmd_log},       {"chain", cmd_chain},
            {"device", cmd_device}, {"audit", cmd_audit},   {"reconcile", cmd_reconcile},
            {"status", cmd_status}, {"config", cmd_config}, {"spool", cmd_spool},
        };
        const char *cmd = argv[optind];
        r = EXIT_USAGE;
        bool found = false;
        for (size_t i = 0; i < ELEMENTSOF(cmds); i++)
                if (strcmp(cmd, cmds[i].name) == 0) {
                        r = cmds[i].fn(&c, argc - optind, argv + optind);
                        found = true;
                        break;
                }
        if (!found) {
                fprintf(stderr, "evidockctl: unknown command '%s'\n", cmd);
                usage(stderr);
        }
        evd_config_clear(&c.cfg);
        return r;
}
