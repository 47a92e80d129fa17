/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The docking job kind: a volume directory or a USB recorder, run through the library's ingest on a
 * worker thread. The worker logs each ingest event (log.c) and posts its status to the loop. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "db.h"
#include "docking.h"
#include "log.h"
#include "manager-internal.h"
#include "output.h"
#include "source-usb.h"

/* ---- worker thread --------------------------------------------------------------------------------- */

static void docking_event(const EvdIngestEvent *ev, void *userdata)
{
        Job *j = userdata;
        Manager *m = j->manager;
        log_ingest_event(ev, j->source);
        EvdStatusJob *s = &j->wst;
        bool force = true;
        unsigned inc = 0;
        if (ev->device_id)
                snprintf(s->device_id, sizeof(s->device_id), "%s", ev->device_id);
        if (ev->officer_id)
                snprintf(s->officer_id, sizeof(s->officer_id), "%s", ev->officer_id);
        if (ev->docking_id > 0)
                s->docking_id = ev->docking_id;
        if (ev->files_total)
                s->files_total = ev->files_total;
        switch (ev->kind) {
        case EVD_INGEST_FILE_PROGRESS:
        case EVD_INGEST_FILE_BEGIN:
                force = ev->kind == EVD_INGEST_FILE_BEGIN;
                if (ev->kind == EVD_INGEST_FILE_BEGIN)
                        s->file_started_us = evd_clock_wall_us();
                s->file_index = ev->file_index;
                snprintf(s->state, sizeof(s->state), "copying");
                snprintf(s->file, sizeof(s->file), "%s", strna(ev->path));
                s->file_done = ev->done;
                s->file_total = ev->total;
                break;
        case EVD_INGEST_FILE_ARCHIVING:
                /* the archive copy of the file just copied: its own percent, MB/s and ETA */
                force = ev->done == 0;
                if (ev->done == 0)
                        s->file_started_us = evd_clock_wall_us();
                s->file_index = ev->file_index;
                snprintf(s->state, sizeof(s->state), "archiving");
                snprintf(s->file, sizeof(s->file), "%s", strna(ev->path));
                s->file_done = ev->done;
                s->file_total = ev->total;
                break;
        case EVD_INGEST_IDENTIFIED:
                snprintf(s->state, sizeof(s->state), "identified");
                break;
        case EVD_INGEST_FILE_DONE:
                s->files_done++;
                inc = 1;
                break;
        case EVD_INGEST_FILE_FAILED:
                snprintf(s->last_error, sizeof(s->last_error), "%s: %s", strna(ev->path),
                         strna(ev->message));
                break;
        case EVD_INGEST_REFUSED:
                snprintf(s->state, sizeof(s->state), "refused");
                break;
        default:
                break;
        }
        job_post_status(j, force, ev->kind != EVD_INGEST_FILE_FAILED, inc);
        if (ev->spooled && !j->spool_logged) {
                j->spool_logged = true;
                manager_database_state(m, -ECONNRESET, NULL);
                LogContext c = {.source = j->source, .device = ev->device_id, .officer = ev->officer_id};
                log_context(LOG_WARNING, NULL, &c,
                            "%s: the database is unreachable or behind: this docking goes on into the local "
                            "spool %s; it is recorded when the database is back",
                            j->source, m->cfg.spool_dir);
        }
}

/* What connecting and the spool replay before the docking did (evd_docking_run()). */
static void docking_started(const EvdDockingStart *start, void *userdata)
{
        Job *j = userdata;
        Manager *m = j->manager;
        manager_database_state(m, start->database_ok ? 0 : start->connect_error, start->connect_err);
        if (start->offline && start->login_refused) {
                /* a configuration error, not an outage: loud (status_database() logs it at error level
                 * too, and status.json / STATUS= show it); the evidence is kept meanwhile */
                j->spool_logged = true;
                LogContext c = {.source = j->source};
                log_context(LOG_ERR, NULL, &c,
                            "%s: the database REFUSED evidock's login (fix [database] url or the role, then "
                            "restart evidockd): %s; meanwhile the docking is kept in the store and the "
                            "local spool %s, "
                            "recorded once the login works",
                            j->source, evd_error_message(start->connect_err, start->connect_error),
                            m->cfg.spool_dir);
        } else if (start->offline)
                log_warn("%s: %s; the docking goes on into the local spool %s", j->source,
                         evd_error_message(start->connect_err, start->connect_error), m->cfg.spool_dir);
        if (!start->replayed)
                return;
        const EvdSpoolReplay *rep = &start->replay;
        if (rep->replayed || rep->already)
                log_info(
                    "%s: spool replayed before the docking: %u entries, %u already recorded, %u waiting",
                    j->source, rep->replayed, rep->already, rep->waiting);
        if (rep->rejected)
                log_error("spool: %u entries rejected (kept in %s/rejected): %s", rep->rejected,
                          m->cfg.spool_dir, rep->last_rejected);
        if (start->replay_error < 0 && start->replay_error != -EBUSY)
                log_warn("%s: spool replay before the docking stopped: %s", j->source,
                         evd_error_message(start->replay_err, start->replay_error));
}

/* Opens the database (or goes offline into the spool), replays what earlier dockings left in the spool,
 * then runs the docking: one library call (docking.h). */
static int docking_ingest(Job *j, EvdSource *src, EvdIngestOptions *o)
{
        Manager *m = j->manager;
        /* a refused login spools too (loudly): the evidence is safe until the configuration is fixed */
        return evd_docking_run(src, m->store, m->cfg.database_url, o, true, docking_started, &j->summary,
                               &j->err);
}

static void docking_prepare(Manager *m, Job *j)
{
        EvdIngestOptions *o = &j->opts;
        evd_config_ingest_options(&m->cfg, o);
        o->spool_dir = m->spool ? m->cfg.spool_dir : NULL; /* only if it could be opened at start */
        o->on_event = docking_event;
        o->userdata = j;
        o->cancel = &j->cancel;
        /* the library ends a docking that does not move for this long, and records it as stalled */
        o->stall_timeout_us = m->cfg.docking_deadline_us;
}

static int docking_run(Job *j)
{
        j->summary = (EvdIngestSummary){};
        j->spool_logged = false;
        j->done_mark[0] = 0;
        if (!j->usb_dev)
                (void)volume_fingerprint(j->key, j->done_mark, sizeof(j->done_mark));
        _cleanup_(evd_source_freep) EvdSource *src = NULL;
        int r = j->usb_dev ? evd_source_usb_new(j->usb_dev, j->profile, &src, &j->err)
                           : evd_source_dir_new(j->key, &src, &j->err);
        if (r >= 0)
                r = docking_ingest(j, src, &j->opts);
        /* a volume directory taken completely and unchanged meanwhile is not docked again at restart */
        if (r >= 0 && !j->usb_dev && j->done_mark[0] && !j->summary.refused &&
            j->summary.files_failed == 0) {
                char after[sizeof(j->done_mark)];
                if (volume_fingerprint(j->key, after, sizeof(after)) >= 0 &&
                    strcmp(after, j->done_mark) == 0)
                        volume_mark_done(j->key, j->done_mark);
        }
        return r;
}

/* ---- loop thread ----------------------------------------------------------------------------------- */

static bool docking_finished(Manager *m, Job *j)
{
        const EvdIngestSummary *s = &j->summary;
        if (s->device_id[0])
                snprintf(j->st.device_id, sizeof(j->st.device_id), "%s", s->device_id);
        if (s->officer_id[0])
                snprintf(j->st.officer_id, sizeof(j->st.officer_id), "%s", s->officer_id);
        if (s->docking_id > 0)
                j->st.docking_id = s->docking_id;
        LogContext c = job_log_context(j);
        int why = atomic_load(&j->cancel);
        bool deadline = s->stalled || why == JOB_CANCEL_DEADLINE;
        snprintf(j->st.state, sizeof(j->st.state), "%s",
                 j->result < 0 && deadline ? "deadline"
                 : j->result < 0           ? "failed"
                 : s->refused              ? "refused"
                                           : "done");
        if (j->result < 0) {
                snprintf(j->st.last_error, sizeof(j->st.last_error), "%s",
                         evd_error_message(&j->err, j->result));
                if (deadline)
                        log_context(LOG_ERR, EVD_MID_DOCKING_DEADLINE, &c,
                                    "%s: docking stopped at its deadline: no progress for %llu s "
                                    "(docking_deadline): %s",
                                    j->source, (unsigned long long)(m->cfg.docking_deadline_us / 1000000),
                                    evd_error_message(&j->err, j->result));
                else
                        log_context(LOG_ERR, EVD_MID_DOCKING_STOPPED, &c, "%s: docking %s: %s", j->source,
                                    why == JOB_CANCEL_STOP ? "stopped because evidockd stops" : "stopped",
                                    evd_error_message(&j->err, j->result));
                snprintf(m->status.last_error, sizeof(m->status.last_error), "%s: %s", j->source,
                         evd_error_message(&j->err, j->result));
        } else if (s->spooled) {
                unsigned backlog = 0;
                if (m->spool)
                        (void)evd_spool_backlog(m->spool, &backlog);
                log_context(LOG_WARNING, NULL, &c,
                            "%s: docking of %s spooled: %u ingested (%u into the spool), %u already, %u "
                            "quarantined, %u failed, worst %s; spool backlog %u entries (%s)",
                            j->source, s->device_id, s->files_ingested, s->files_spooled, s->files_already,
                            s->files_quarantined, s->files_failed, evd_verdict_to_string(s->worst), backlog,
                            s->spool_why);
        } else
                log_context(LOG_INFO, NULL, &c,
                            "%s: docking %" PRId64 " finished: %u ingested, %u already, %u quarantined, %u "
                            "failed, worst %s",
                            j->source, s->docking_id, s->files_ingested, s->files_already,
                            s->files_quarantined, s->files_failed, evd_verdict_to_string(s->worst));
        if (j->usb_dev && j->departed)
                log_info("%s: recorder unplugged; the docking %s", j->source,
                         j->result < 0 ? "was abandoned and is resumed at the next docking"
                                       : "had finished");
        /* retry what stopped on an error while the source is still there; an unplugged recorder is picked
         * up again when it is docked again */
        bool present = j->usb_dev ? !j->departed : access(j->key, F_OK) == 0;
        bool retry = (j->result < 0 || s->files_failed > 0) && present;
        if (retry)
                log_info("%s: retrying in %llu s", j->source,
                         (unsigned long long)(EVD_MANAGER_RETRY_USEC / 1000000));
        return retry;
}

static void docking_free(Job *j)
{
        if (j->usb_dev)
                libusb_unref_device(j->usb_dev);
        j->usb_dev = NULL;
}

const JobKind job_kind_docking = {
    .name = "docking",
    .prepare = docking_prepare,
    .run = docking_run,
    .finished = docking_finished,
    .free = docking_free,
};

int docking_queue_dir(Manager *m, const char *dir, uint64_t delay_usec, unsigned attempt)
{
        if (job_find(m, dir))
                return 0;
        Job *j = job_new(m, &job_kind_docking, dir);
        if (!j)
                return -ENOMEM;
        j->attempt = attempt;
        int r = job_enqueue(m, j, delay_usec);
        if (r >= 0)
                log_info("volume %s queued", dir);
        return r;
}

int docking_queue_usb(Manager *m, libusb_device *dev, const EvdUsbProfile *profile, const char *port,
                      const char *source)
{
        if (job_find(m, port))
                return 0;
        Job *j = job_new(m, &job_kind_docking, port);
        if (!j)
                return -ENOMEM;
        j->usb_dev = libusb_ref_device(dev);
        j->profile = profile;
        snprintf(j->source, sizeof(j->source), "%s", source);
        int r = job_enqueue(m, j, 0);
        if (r >= 0)
                log_info("recorder docked at %s", source);
        return r;
}
