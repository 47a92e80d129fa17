/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>

#include "clock.h"
#include "disc-job.h"
#include "disc-runner.h"
#include "log.h"
#include "macro.h"
#include "nap.h"
#include "record.h"

typedef struct Drive {
        DiscRunner *runner;
        char *address;
        pthread_t thread;
        bool started;
        char last_msg[512]; /* what was last said about waiting, so it is said once */
        time_t last_progress;
        unsigned index;
        EvdStatusDisc st; /* what was reported last (worker thread only) */
} Drive;

struct DiscRunner {
        char *database_url, *store_root, *work_dir, *xorriso, *spool_dir;
        Drive drives[DISC_RUNNER_MAX_DRIVES];
        unsigned n_drives;
        DiscRunnerReport report;
        void *userdata;
        Nap nap; /* the drives' pauses; nap.stop is also the library's cancel flag */
};

/* Sleeps up to s seconds, or until stopped. */
static void nap(DiscRunner *r, unsigned s)
{
        (void)nap_sleep(&r->nap, (uint64_t)s * 1000000u);
}

static void report(Drive *d)
{
        d->st.updated_us = evd_clock_wall_us();
        if (d->runner->report)
                d->runner->report(d->index, &d->st, d->runner->userdata);
}

/* The drive is between jobs (or waits): no stage, and what happened last. */
static void report_idle(Drive *d, const char *last)
{
        EvdStatusDisc st = {};
        snprintf(st.drive, sizeof(st.drive), "%s", d->address);
        snprintf(st.last, sizeof(st.last), "%s", last ? last : d->st.last);
        st.eta_s = -1;
        if (d->st.job_id == 0 && strcmp(st.last, d->st.last) == 0 && d->st.updated_us)
                return; /* nothing new */
        d->st = st;
        report(d);
}

static void on_progress(const EvdDiscProgress *p, void *userdata)
{
        Drive *d = userdata;
        EvdStatusDisc *st = &d->st;
        st->job_id = p->job_id;
        snprintf(st->stage, sizeof(st->stage), "%s", p->phase ? p->phase : "");
        st->disc = p->part;
        st->discs = p->parts;
        st->copy = p->copy;
        st->copies = p->copies;
        st->done = p->done;
        st->total = p->total;
        st->percent = p->percent;
        st->mbps = p->mbps;
        st->eta_s = p->eta_s;
        report(d); /* the library calls at most about once a second */

        time_t now = time(NULL);
        if (p->total && p->done < p->total && now - d->last_progress < (time_t)DISC_RUNNER_PROGRESS_S)
                return;
        d->last_progress = now;
        if (p->total)
                log_info("disc job %" PRId64 " disc %u/%u copy %u on %s: %s %.0f%%, %.1f MB/s, ETA %.0f s",
                         p->job_id, p->part, p->parts, p->copy, d->address, p->phase, p->percent, p->mbps,
                         p->eta_s < 0 ? 0 : p->eta_s);
        else
                log_info("disc job %" PRId64 " disc %u/%u copy %u on %s: %s", p->job_id, p->part, p->parts,
                         p->copy, d->address, p->phase);
}

/* Says msg once (until another one is said). */
static void say_once(Drive *d, int prio, const char *msg)
{
        if (strcmp(d->last_msg, msg) != 0)
                log_msg(prio, "disc drive %s: %s", d->address, msg);
        snprintf(d->last_msg, sizeof(d->last_msg), "%s", msg);
}

static void *drive_main(void *arg)
{
        Drive *d = arg;
        DiscRunner *r = d->runner;
        EvdDb *db = NULL;
        report_idle(d, "");
        /* One record stage per connection: a step's facts go to the database, or to the spool when it
         * went away during the step (then the connection is dropped and opened again). */
        EvdRecordStage *rs = NULL;
        while (!nap_stopped(&r->nap)) {
                EvdError err = {};
                if (!db && evd_db_open(r->database_url, &db, &err) < 0) {
                        log_warn("disc drive %s: no database (%s); trying again in %u s", d->address,
                                 err.msg, DISC_RUNNER_RETRY_S);
                        nap(r, DISC_RUNNER_RETRY_S);
                        continue;
                }
                int q = rs ? 0 : evd_record_stage_new(db, r->spool_dir, &rs, &err);
                if (q < 0) {
                        log_error("disc drive %s: %s", d->address, evd_error_message(&err, q));
                        nap(r, DISC_RUNNER_RETRY_S);
                        continue;
                }
                EvdDiscRunner rn = {.db = db,
                                    .record = rs,
                                    .store_root = r->store_root,
                                    .work_dir = r->work_dir,
                                    .drive = d->address,
                                    .who = "evidockd",
                                    .xorriso = {.program = r->xorriso, .cancel = &r->nap.stop},
                                    .progress = on_progress,
                                    .userdata = d};
                EvdDiscStep step;
                char msg[1024];
                q = evd_disc_run_step(&rn, 0, &step, msg, sizeof(msg), &err);
                const char *why = NULL;
                if (evd_record_spooled(rs, &why)) {
                        /* the database went away during the step: what it recorded waits in the spool */
                        log_warn("disc drive %s: %s; this step's outcome is kept in the spool %s until the "
                                 "database is back",
                                 d->address, why, r->spool_dir);
                        rs = evd_record_stage_free(rs);
                        db = evd_db_close(db);
                }
                if (q == -EAGAIN && rs) {
                        say_once(d, LOG_INFO, evd_error_message(&err, q));
                        report_idle(d, evd_error_message(&err, q));
                        nap(r, DISC_RUNNER_IDLE_S);
                        continue;
                }
                if (q < 0) {
                        if (q == -ECANCELED && nap_stopped(&r->nap))
                                break;
                        log_error("disc drive %s: %s", d->address, evd_error_message(&err, q));
                        report_idle(d, evd_error_message(&err, q));
                        if (q == -ECONNRESET || q == -ECONNREFUSED) {
                                rs = evd_record_stage_free(rs);
                                db = evd_db_close(db);
                        }
                        nap(r, DISC_RUNNER_RETRY_S);
                        continue;
                }
                report_idle(d, step == EVD_DISC_STEP_IDLE ? NULL : msg);
                switch (step) {
                case EVD_DISC_STEP_IDLE:
                        d->last_msg[0] = '\0';
                        nap(r, DISC_RUNNER_IDLE_S);
                        break;
                case EVD_DISC_STEP_NO_MEDIA:
                        say_once(d, LOG_WARNING, msg);
                        nap(r, DISC_RUNNER_IDLE_S);
                        break;
                case EVD_DISC_STEP_VERIFIED:
                case EVD_DISC_STEP_JOB_DONE:
                        d->last_msg[0] = '\0';
                        log_info("%s", msg);
                        break;
                case EVD_DISC_STEP_DISC_FAILED:
                case EVD_DISC_STEP_JOB_FAILED:
                        d->last_msg[0] = '\0';
                        log_error("%s", msg);
                        break;
                }
        }
        evd_record_stage_free(rs);
        evd_db_close(db);
        return NULL;
}

static void runner_free(DiscRunner *r)
{
        if (!r)
                return;
        for (unsigned i = 0; i < r->n_drives; i++)
                free(r->drives[i].address);
        free(r->database_url);
        free(r->store_root);
        free(r->work_dir);
        free(r->xorriso);
        free(r->spool_dir);
        nap_done(&r->nap);
        free(r);
}

int disc_runner_start(const EvdConfig *cfg, DiscRunnerReport report_cb, void *userdata, DiscRunner **ret)
{
        *ret = NULL;
        if (!cfg->disc_drives || !*cfg->disc_drives)
                return 0;
        DiscRunner *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->report = report_cb;
        r->userdata = userdata;
        if (nap_init(&r->nap) < 0) {
                free(r);
                return -ENOMEM;
        }
        r->database_url = strdup(cfg->database_url);
        r->store_root = strdup(cfg->store_root);
        r->work_dir = strdup(cfg->disc_work_dir);
        r->xorriso = strdup(cfg->disc_xorriso);
        r->spool_dir = strdup(cfg->spool_dir ? cfg->spool_dir : "");
        _cleanup_free_ char *list = strdup(cfg->disc_drives);
        if (!r->database_url || !r->store_root || !r->work_dir || !r->xorriso || !r->spool_dir || !list) {
                runner_free(r);
                return -ENOMEM;
        }
        if (mkdir(r->work_dir, 0700) < 0 && errno != EEXIST)
                log_warn("cannot create the disc work directory %s: %s", r->work_dir, strerror(errno));
        char *save = NULL;
        for (char *t = strtok_r(list, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
                if (r->n_drives >= DISC_RUNNER_MAX_DRIVES || r->n_drives >= EVD_STATUS_MAX_DISCS) {
                        log_warn("[disc] drives: more than %u drives, %s and later ignored",
                                 DISC_RUNNER_MAX_DRIVES, t);
                        break;
                }
                Drive *d = &r->drives[r->n_drives];
                d->runner = r;
                d->index = r->n_drives;
                d->address = strdup(t);
                if (!d->address) {
                        disc_runner_stop(r);
                        return -ENOMEM;
                }
                r->n_drives++;
                if (pthread_create(&d->thread, NULL, drive_main, d) != 0) {
                        log_error("cannot start the disc worker for %s", t);
                        continue;
                }
                d->started = true;
                log_info("burning disc jobs on %s", t);
        }
        *ret = r;
        return 0;
}

void disc_runner_stop(DiscRunner *r)
{
        if (!r)
                return;
        nap_stop(&r->nap);
        for (unsigned i = 0; i < r->n_drives; i++)
                if (r->drives[i].started)
                        pthread_join(r->drives[i].thread, NULL);
        runner_free(r);
}
