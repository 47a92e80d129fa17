/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidockctl disc queue|list|show|verify|cancel|run: burn-to-disc jobs (lib/disc-job.h,
 * docs/disc-format.md). evidockd runs queued jobs on the configured drives; `disc run` does the same in
 * the foreground. */
#include <inttypes.h>
#include <stdatomic.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>

#include "clock.h"
#include "ctl-common.h"
#include "db-disc.h"
#include "disc-job.h"
#include "macro.h"
#include "output.h"
#include "record.h"

/* "evidockctl:<user>": who asked, for the database. */
static const char *who(char *buf, size_t size)
{
        const struct passwd *pw = getpwuid(getuid());
        snprintf(buf, size, "evidockctl:%s", pw && pw->pw_name ? pw->pw_name : "?");
        return buf;
}

/* ---- queue --------------------------------------------------------------------------------------- */

#define QUEUE_MAX_FILES 1024u

static const char queue_help[] =
    "Usage: evidockctl disc queue [--case NUMBER] [--device ID] [--officer ID] [--since TIME] [--until "
    "TIME]\n"
    "                             [--file ID]... [--media TYPE] [--copies N] [--reason TEXT] [--json]\n"
    "\n"
    "Queues a burn-to-disc job: the recordings selected (all given filters must match; --file may repeat)\n"
    "are planned onto discs of the media type, a recording never split across two discs, and every disc\n"
    "is burned --copies times. evidockd (or `disc run`) burns it when a drive has a blank disc.\n"
    "\n"
    "  -c, --case NUMBER     recordings whose current case this is (case assign after ingest counts)\n"
    "  -d, --device ID       recordings of this recorder\n"
    "  -o, --officer ID      recordings of this officer\n"
    "  -s, --since TIME      recordings that started at or after TIME\n"
    "  -u, --until TIME      recordings that started before TIME\n"
    "  -f, --file ID         this recording (file id); may repeat\n"
    "  -m, --media TYPE      cd, dvd, dvd-dl, bd25, bd50, bd100 or a size (\"8M\"); default [disc] media\n"
    "  -n, --copies N        identical copies of every disc (1-9); default [disc] copies\n"
    "  -r, --reason TEXT     why (e.g. the long-term reason); goes into the custody log\n"
    "      --json            the new job as one JSON object\n"
    "  -h, --help            this help\n";

static int print_job_json(const EvdDbDiscJob *j, const EvdDbDiscRow *discs, size_t n_discs)
{
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "job_id", json_object_new_int64(j->id));
        json_object_object_add(o, "state", ctl_json_string(j->state));
        json_object_object_add(o, "state_at", ctl_json_time_local(j->state_us));
        json_object_object_add(o, "state_detail", ctl_json_string(j->state_detail));
        json_object_object_add(o, "created_at", ctl_json_time_local(j->created_us));
        json_object_object_add(o, "requested_by", ctl_json_string(j->requested_by));
        json_object_object_add(o, "reason", ctl_json_string(j->reason));
        json_object_object_add(o, "selector", ctl_json_string(j->selector));
        json_object_object_add(o, "case_numbers", ctl_json_string(j->case_numbers));
        json_object_object_add(o, "media", ctl_json_string(j->media));
        json_object_object_add(o, "media_bytes", json_object_new_uint64(j->media_bytes));
        json_object_object_add(o, "discs", json_object_new_int(j->parts));
        json_object_object_add(o, "copies", json_object_new_int(j->copies));
        json_object_object_add(o, "recordings", json_object_new_int(j->files));
        json_object_object_add(o, "payload_bytes", json_object_new_uint64(j->payload_bytes));
        json_object_object_add(o, "bag_group", ctl_json_string(j->group_id));
        json_object_object_add(o, "discs_verified", json_object_new_int(j->discs_verified));
        json_object_object_add(o, "discs_failed", json_object_new_int(j->discs_failed));
        if (discs) {
                json_object *a = json_object_new_array();
                json_object_object_add(o, "burned", a);
                for (size_t i = 0; a && i < n_discs; i++) {
                        json_object *d = json_object_new_object();
                        if (!d)
                                return -ENOMEM;
                        json_object_object_add(d, "disc_id", json_object_new_int64(discs[i].id));
                        json_object_object_add(d, "label", ctl_json_string(discs[i].label));
                        json_object_object_add(d, "disc", json_object_new_int(discs[i].part));
                        json_object_object_add(d, "copy", json_object_new_int(discs[i].copy));
                        json_object_object_add(d, "outcome", ctl_json_string(discs[i].outcome));
                        json_object_object_add(d, "drive", ctl_json_string(discs[i].drive));
                        json_object_object_add(
                            d, "image_sha256",
                            ctl_json_string(discs[i].image_sha256[0] ? discs[i].image_sha256 : NULL));
                        json_object_object_add(d, "files_checked",
                                               json_object_new_int(discs[i].files_checked));
                        json_object_object_add(d, "files_bad", json_object_new_int(discs[i].files_bad));
                        json_object_object_add(
                            d, "verified_at",
                            discs[i].verified_us ? ctl_json_time_local(discs[i].verified_us) : NULL);
                        json_object_object_add(d, "detail", ctl_json_string(discs[i].detail));
                        json_object_array_add(a, d);
                }
        }
        return ctl_json_print(o);
}

static int queue_run(Ctl *c, int argc, char **argv)
{
        static const struct option opts[] = {{"case", required_argument, NULL, 'c'},
                                             {"device", required_argument, NULL, 'd'},
                                             {"officer", required_argument, NULL, 'o'},
                                             {"since", required_argument, NULL, 's'},
                                             {"until", required_argument, NULL, 'u'},
                                             {"file", required_argument, NULL, 'f'},
                                             {"media", required_argument, NULL, 'm'},
                                             {"copies", required_argument, NULL, 'n'},
                                             {"reason", required_argument, NULL, 'r'},
                                             CTL_OPTION_JSON,
                                             CTL_OPTION_HELP,
                                             {}};
        EvdDiscJobSpec spec = {};
        int64_t files[QUEUE_MAX_FILES];
        size_t n_files = 0;
        const char *copies = NULL;
        int o;
        while ((o = ctl_getopt(c, argc, argv, opts, queue_help)) > 0) {
                switch (o) {
                case 'c':
                        spec.select.case_number = optarg;
                        break;
                case 'd':
                        spec.select.device_id = optarg;
                        break;
                case 'o':
                        spec.select.officer_id = optarg;
                        break;
                case 's':
                case 'u': {
                        int64_t us;
                        if (ctl_parse_time(optarg, evd_clock_wall_us(), &us) < 0)
                                return ctl_usage_error(c, queue_help, "cannot read the time '%s'", optarg);
                        if (o == 's')
                                spec.select.has_since = true, spec.select.since_us = us;
                        else
                                spec.select.has_until = true, spec.select.until_us = us;
                        break;
                }
                case 'f':
                        if (n_files >= QUEUE_MAX_FILES)
                                return ctl_usage_error(c, queue_help, "at most %u --file", QUEUE_MAX_FILES);
                        if (ctl_parse_id(optarg, &files[n_files]) < 0)
                                return ctl_usage_error(c, queue_help, "--file takes a file id, not '%s'",
                                                       optarg);
                        n_files++;
                        break;
                case 'm':
                        spec.media = optarg;
                        break;
                case 'n':
                        copies = optarg;
                        break;
                case 'r':
                        spec.reason = optarg;
                        break;
                }
        }
        if (o < 0)
                return ctl_opt_exit(o);
        if (ctl_positional(c, argc, argv, 0, 0, queue_help) < 0)
                return EXIT_USAGE;
        spec.select.file_ids = files;
        spec.select.n_file_ids = n_files;
        if (!spec.select.case_number && !spec.select.device_id && !spec.select.officer_id &&
            !spec.select.has_since && !spec.select.has_until && n_files == 0)
                return ctl_usage_error(c, queue_help,
                                       "say which recordings: --case, --device, --officer, "
                                       "--since/--until or --file");
        if (copies) {
                int64_t n;
                if (ctl_parse_id(copies, &n) < 0 || n > 9)
                        return ctl_usage_error(c, queue_help, "--copies takes 1 to 9");
                spec.copies = (unsigned)n;
        }
        char asker[128];
        spec.requested_by = who(asker, sizeof(asker));
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        if (!spec.media)
                spec.media = c->cfg.disc_media;
        if (!spec.copies)
                spec.copies = c->cfg.disc_copies;
        spec.store_root = c->cfg.store_root;
        EvdError err = {};
        int64_t job_id = 0;
        int r = evd_disc_job_queue(db, &spec, &job_id, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        _cleanup_(evd_db_disc_job_freep) EvdDbDiscJob *j = NULL;
        r = evd_db_disc_job_get(db, job_id, &j, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        if (c->json)
                return print_job_json(j, NULL, 0) < 0 ? EXIT_ERROR : EXIT_CLEAN;
        printf("queued disc job %" PRId64 ": %u recording(s), %u %s disc(s) x %u copies, %.1f MB\n", j->id,
               j->files, j->parts, j->media, j->copies, (double)j->payload_bytes / 1e6);
        return EXIT_CLEAN;
}

/* ---- list / show ---------------------------------------------------------------------------------- */

static const char list_help[] =
    "Usage: evidockctl disc list [--all] [--json]\n"
    "\n"
    "Burn-to-disc jobs that have not ended (with --all: every job), newest first.\n"
    "\n"
    "  -a, --all       also jobs that are done, failed or cancelled\n"
    "      --json      one JSON object per job\n"
    "  -h, --help      this help\n";

static int list_run(Ctl *c, int argc, char **argv)
{
        bool all = false;
        int q =
            ctl_parse(c, argc, argv, (const CtlOption[]){{"all", 'a', .flag = &all}, {}}, 0, 0, list_help);
        if (q >= 0)
                return q;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdError err = {};
        EvdDbDiscJob *jobs = NULL;
        size_t n = 0;
        int r = evd_db_disc_job_list(db, !all, &jobs, &n, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        static const char *const headers[] = {"JOB",   "STATE",    "CASES",  "FILES",
                                              "DISCS", "VERIFIED", "FAILED", "SINCE"};
        _cleanup_(ctl_table_freep) CtlTable *t =
            c->json ? NULL : ctl_table_new(ELEMENTSOF(headers), headers);
        for (size_t i = 0; i < n && r >= 0; i++) {
                if (c->json) {
                        r = print_job_json(&jobs[i], NULL, 0);
                        continue;
                }
                char id[24], files[16], discs[48], ver[16], fail[16], when[48];
                snprintf(id, sizeof(id), "%" PRId64, jobs[i].id);
                snprintf(files, sizeof(files), "%u", jobs[i].files);
                snprintf(discs, sizeof(discs), "%u %s x%u", jobs[i].parts, jobs[i].media, jobs[i].copies);
                snprintf(ver, sizeof(ver), "%u", jobs[i].discs_verified);
                snprintf(fail, sizeof(fail), "%u", jobs[i].discs_failed);
                format_time_local(jobs[i].state_us, when, sizeof(when));
                r = t ? ctl_table_addf(t, 8, id, jobs[i].state, text_shown(jobs[i].case_numbers), files,
                                       discs, ver, fail, when)
                      : -ENOMEM;
        }
        evd_db_disc_jobs_free(jobs, n);
        if (r < 0)
                return ctl_error(c, "cannot write the output");
        if (t) {
                ctl_table_right(t, 0);
                ctl_table_print(t, stdout);
        }
        return EXIT_CLEAN;
}

static const char show_help[] =
    "Usage: evidockctl disc show [--json] JOB\n"
    "\n"
    "One burn-to-disc job: its selection, state, and every disc burned for it (label,\n"
    "copy, verified or failed and why, image SHA-256).\n"
    "\n"
    "      --json      one JSON object\n"
    "  -h, --help      this help\n";

static int show_run(Ctl *c, int argc, char **argv)
{
        int r = ctl_parse_plain(c, argc, argv, 1, 1, show_help);
        if (r >= 0)
                return r;
        int64_t id;
        if (ctl_parse_id(argv[optind], &id) < 0)
                return ctl_usage_error(c, show_help, "'%s' is not a job number", argv[optind]);
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdError err = {};
        _cleanup_(evd_db_disc_job_freep) EvdDbDiscJob *j = NULL;
        r = evd_db_disc_job_get(db, id, &j, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        EvdDbDiscRow *d = NULL;
        size_t n = 0;
        r = evd_db_disc_rows(db, id, &d, &n, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        if (c->json) {
                r = print_job_json(j, d, n);
                evd_db_disc_rows_free(d, n);
                return r < 0 ? EXIT_ERROR : EXIT_CLEAN;
        }
        char when[48];
        printf("job %" PRId64 ": %s since %s%s%s\n", j->id, j->state,
               format_time_local(j->state_us, when, sizeof(when)),
               j->state_detail && *j->state_detail ? " -- " : "",
               j->state_detail ? text_shown(j->state_detail) : "");
        printf("  selection:   %s\n", text_shown(j->selector));
        printf("  cases:       %s\n", *j->case_numbers ? text_shown(j->case_numbers) : "-");
        printf("  recordings:  %u (%.1f MB)\n", j->files, (double)j->payload_bytes / 1e6);
        printf("  discs:       %u x %s (%" PRIu64 " bytes), %u copies each; bag group %s\n", j->parts,
               j->media, j->media_bytes, j->copies, j->group_id);
        printf("  asked by:    %s at %s%s%s\n", text_shown(j->requested_by),
               format_time_local(j->created_us, when, sizeof(when)), *j->reason ? ", reason: " : "",
               text_shown(j->reason));
        printf("  verified:    %u of %u, failed: %u\n", j->discs_verified, j->parts * j->copies,
               j->discs_failed);
        for (size_t i = 0; i < n; i++)
                printf("  disc %" PRId64 "  %s copy %u  %-8s  %s  %s\n", d[i].id, d[i].label, d[i].copy,
                       d[i].outcome, d[i].image_sha256[0] ? d[i].image_sha256 : "-",
                       text_shown(d[i].detail));
        evd_db_disc_rows_free(d, n);
        return EXIT_CLEAN;
}

/* ---- verify / cancel -------------------------------------------------------------------------------- */

static const char verify_help[] =
    "Usage: evidockctl disc verify [--json] DISC\n"
    "\n"
    "Re-checks a disc burned earlier (a fixity audit): DISC is a drive (/dev/sr0, stdio:/path) or an image\n"
    "file. Every file is read back and compared with the database, the image SHA-256 with the one recorded\n"
    "when it was burned, and xorriso checks the disc's MD5 session tag. The result is recorded (a row and "
    "a\n"
    "custody-log event). Exit status 0 when the disc is intact, 2 when it is not (or not one of ours).\n"
    "\n"
    "      --json      the result as one JSON object\n"
    "  -h, --help      this help\n";

static int verify_run(Ctl *c, int argc, char **argv)
{
        int r = ctl_parse_plain(c, argc, argv, 1, 1, verify_help);
        if (r >= 0)
                return r;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdXorrisoRun x = {.program = c->cfg.disc_xorriso};
        char asker[128];
        EvdDiscCheckResult res;
        EvdError err = {};
        r = evd_disc_check(db, argv[optind], &x, who(asker, sizeof(asker)), &res, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        bool ok = strcmp(res.outcome, "ok") == 0;
        if (c->json) {
                _cleanup_(json_object_putp) json_object *o = json_object_new_object();
                if (!o)
                        return EXIT_ERROR;
                json_object_object_add(o, "source", ctl_json_string(argv[optind]));
                json_object_object_add(o, "outcome", ctl_json_string(res.outcome));
                json_object_object_add(o, "label", ctl_json_string(res.label[0] ? res.label : NULL));
                json_object_object_add(o, "job_id", res.job_id ? json_object_new_int64(res.job_id) : NULL);
                json_object_object_add(o, "disc", res.part ? json_object_new_int(res.part) : NULL);
                json_object_object_add(o, "discs", res.parts ? json_object_new_int(res.parts) : NULL);
                json_object_object_add(o, "files_checked", json_object_new_int(res.files_checked));
                json_object_object_add(o, "files_bad", json_object_new_int(res.files_bad));
                json_object_object_add(o, "image_sha256",
                                       ctl_json_string(res.image_sha256[0] ? res.image_sha256 : NULL));
                json_object_object_add(o, "image_matches", json_object_new_boolean(res.image_matches));
                json_object_object_add(o, "detail", ctl_json_string(res.detail));
                if (ctl_json_print(o) < 0)
                        return EXIT_ERROR;
        } else {
                printf("%s: %s%s%s%s -- %s\n", argv[optind], ok ? "OK" : "NOT OK (", ok ? "" : res.outcome,
                       ok ? "" : ")", res.label[0] ? "" : "", text_shown(res.detail));
                if (res.label[0])
                        printf("  disc %s (job %" PRId64
                               ", disc %u of %u): %u files checked, %u bad; image %s\n",
                               res.label, res.job_id, res.part, res.parts, res.files_checked, res.files_bad,
                               res.image_sha256);
        }
        return ok ? EXIT_CLEAN : EXIT_FINDINGS;
}

static const char cancel_help[] =
    "Usage: evidockctl disc cancel JOB --reason TEXT\n"
    "\n"
    "Cancels a job that has not ended. A disc being burned is finished first.\n"
    "\n"
    "  -r, --reason TEXT    why (goes into the custody log; required)\n"
    "      --json           the job as one JSON object\n"
    "  -h, --help           this help\n";

static int cancel_run(Ctl *c, int argc, char **argv)
{
        const char *reason = NULL;
        int parsed = ctl_parse(c, argc, argv, (const CtlOption[]){{"reason", 'r', .text = &reason}, {}}, 1,
                               1, cancel_help);
        if (parsed >= 0)
                return parsed;
        int64_t id;
        if (ctl_parse_id(argv[optind], &id) < 0)
                return ctl_usage_error(c, cancel_help, "'%s' is not a job number", argv[optind]);
        if (!reason || !*reason)
                return ctl_usage_error(c, cancel_help,
                                       "--reason TEXT is required (it goes into the custody log)");
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        char asker[128];
        EvdError err = {};
        int r = evd_disc_job_cancel(db, id, who(asker, sizeof(asker)), reason, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        _cleanup_(evd_db_disc_job_freep) EvdDbDiscJob *j = NULL;
        if (c->json && evd_db_disc_job_get(db, id, &j, &err) == 0)
                return print_job_json(j, NULL, 0) < 0 ? EXIT_ERROR : EXIT_CLEAN;
        printf("disc job %" PRId64 " cancelled\n", id);
        return EXIT_CLEAN;
}

/* ---- run ------------------------------------------------------------------------------------------ */

static const char run_help[] =
    "Usage: evidockctl disc run --drive DRIVE [--job ID] [--workdir DIR]\n"
    "\n"
    "Burns queued jobs in the foreground on one drive until nothing is left to do on it (no job, or a job\n"
    "that waits for a blank disc), as evidockd does for every [disc] drive. DRIVE is /dev/srN, stdio:FILE\n"
    "(a pseudo-drive; blank when FILE is absent or empty) or dir:DIR (a disc robot's hot folder: one image\n"
    "file per disc). Progress goes to stderr. Exit status 0 when the jobs are done, 2 when a job failed or\n"
    "waits for media, 4 when the database went away during a burn: the disc's outcome is then kept in the\n"
    "spool ([database] spool_dir) and recorded when the database is back.\n"
    "\n"
    "  -D, --drive DRIVE     the drive\n"
    "  -J, --job ID          only this job\n"
    "  -w, --workdir DIR    staging directory (default [disc] work_dir)\n"
    "      --json            one JSON object per step\n"
    "  -h, --help            this help\n";

static atomic_int run_cancel; /* lock-free: fine in a signal handler */

static void on_signal(int sig)
{
        (void)sig;
        run_cancel = 1;
}

static void run_progress(const EvdDiscProgress *p, void *userdata)
{
        (void)userdata;
        if (p->total)
                fprintf(stderr, "job %" PRId64 " disc %u/%u copy %u: %s %5.1f%%  %.1f MB/s  ETA %.0f s\n",
                        p->job_id, p->part, p->parts, p->copy, p->phase, p->percent, p->mbps,
                        p->eta_s < 0 ? 0 : p->eta_s);
        else
                fprintf(stderr, "job %" PRId64 " disc %u/%u copy %u: %s\n", p->job_id, p->part, p->parts,
                        p->copy, p->phase);
}

static int run_run(Ctl *c, int argc, char **argv)
{
        const char *drive = NULL, *work = NULL, *job_arg = NULL;
        const CtlOption opts[] = {{"drive", 'D', .text = &drive},
                                  {"job", 'J', .text = &job_arg},
                                  {"workdir", 'w', .text = &work},
                                  {}};
        int parsed = ctl_parse(c, argc, argv, opts, 0, 0, run_help);
        if (parsed >= 0)
                return parsed;
        int64_t job = 0;
        if (job_arg && ctl_parse_id(job_arg, &job) < 0)
                return ctl_usage_error(c, run_help, "'%s' is not a job number", job_arg);
        if (!drive)
                return ctl_usage_error(c, run_help, "--drive DRIVE is required");
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        if (!work)
                work = c->cfg.disc_work_dir;
        if (mkdir(work, 0700) < 0 && errno != EEXIST)
                return ctl_error(c, "cannot create the work directory %s: %m", work);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        /* the facts of a step: a disc burned while the database went away is spooled, not lost */
        _cleanup_(evd_record_stage_freep) EvdRecordStage *rs = NULL;
        EvdError serr = {};
        int q = evd_record_stage_new(db, c->cfg.spool_dir, &rs, &serr);
        if (q < 0)
                return ctl_error(c, "%s", evd_error_message(&serr, q));
        char asker[128];
        EvdDiscRunner rn = {.db = db,
                            .record = rs,
                            .store_root = c->cfg.store_root,
                            .work_dir = work,
                            .drive = drive,
                            .who = who(asker, sizeof(asker)),
                            .xorriso = {.program = c->cfg.disc_xorriso, .cancel = &run_cancel},
                            .progress = c->json ? NULL : run_progress};
        int status = EXIT_CLEAN;
        for (unsigned i = 0; i < 10000 && !run_cancel; i++) {
                EvdDiscStep step;
                char msg[1024];
                EvdError err = {};
                int r = evd_disc_run_step(&rn, job, &step, msg, sizeof(msg), &err);
                const char *why = NULL;
                if (evd_record_spooled(rs, &why)) {
                        if (r >= 0)
                                printf("%s\n", text_shown(msg));
                        fprintf(
                            stderr,
                            "evidockctl disc run: %s: this step's outcome is kept in the spool %s; it is "
                            "recorded when the database is back (evidockd, or evidockctl spool replay)\n",
                            why, c->cfg.spool_dir);
                        return EXIT_SPOOLED;
                }
                if (r < 0)
                        return ctl_error(c, "%s", evd_error_message(&err, r));
                if (c->json) {
                        _cleanup_(json_object_putp) json_object *j = json_object_new_object();
                        if (j) {
                                json_object_object_add(j, "step",
                                                       ctl_json_string(evd_disc_step_to_string(step)));
                                json_object_object_add(j, "message", ctl_json_string(msg));
                                ctl_json_print(j);
                        }
                } else {
                        printf("%s\n", text_shown(msg));
                        fflush(stdout);
                }
                if (step == EVD_DISC_STEP_IDLE)
                        break;
                if (step == EVD_DISC_STEP_NO_MEDIA || step == EVD_DISC_STEP_JOB_FAILED) {
                        status = EXIT_FINDINGS;
                        if (step == EVD_DISC_STEP_NO_MEDIA)
                                break;
                }
                if (step == EVD_DISC_STEP_JOB_DONE && job)
                        break;
        }
        return run_cancel ? EXIT_ERROR : status;
}

static int disc_run(Ctl *c, int argc, char **argv)
{
        static const CtlSubcommand subs[] = {
            {"queue", "queue a burn-to-disc job", queue_run},
            {"list", "list the jobs", list_run},
            {"show", "one job and its discs", show_run},
            {"verify", "re-check a disc or image and record the result", verify_run},
            {"cancel", "cancel a job", cancel_run},
            {"run", "burn queued jobs on a drive in the foreground", run_run},
        };
        return ctl_dispatch(c, subs, ELEMENTSOF(subs), argc, argv);
}

const CtlCommand ctl_cmd_disc = {
    .name = "disc",
    .synopsis = "disc queue|list|show|verify|cancel|run ...",
    .summary = "burn recordings to optical discs anyone can verify (BagIt + ISO 9660)",
    .run = disc_run,
};
