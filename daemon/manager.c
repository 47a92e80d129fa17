/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include <glob.h>
#include <libusb.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <systemd/sd-journal.h>

#include "evd-config.h"

#include "db.h"
#include "ingest.h"
#include "log.h"
#include "manager.h"
#include "output.h"
#include "source-usb.h"
#include "reconcile.h"
#include "spool.h"
#include "status.h"
#include "store.h"
#include "usb.h"

/* While entries wait in the spool, a replay is tried this often; when only another database's entries
 * are left (nothing this database can take), less often. */
#define SPOOL_REPLAY_RETRY_USEC (3ULL * 1000000ULL)
#define SPOOL_REPLAY_IDLE_USEC  (60ULL * 1000000ULL)

typedef enum JobState { JOB_PENDING, JOB_RUNNING, JOB_FINISHED } JobState;

typedef struct Job {
        struct Job *next;
        Manager *manager;
        char *dir;                    /* a volume directory, or the USB port path "usb:B-P.P" */
        libusb_device *usb_dev;       /* referenced; NULL for a directory */
        const EvdUsbProfile *profile; /* the profile it matched */
        volatile int departed;        /* the recorder was unplugged */
        unsigned attempt;             /* retries so far (bounded by EVD_MANAGER_MAX_RETRIES) */
        char source[160];             /* for logs and status */
        JobState state;
        int result;
        EvdError err;
        EvdIngestSummary summary;
        unsigned slot;     /* index in status.jobs */
        bool spool_logged; /* "goes to the spool" said once per docking */
        pthread_t thread;
        uint64_t not_before_usec; /* CLOCK_MONOTONIC; retry delay */
} Job;

struct Manager {
        sd_event *event;
        char *config_path;
        bool config_required; /* named by --config or $EVIDOCK_CONFIG: must exist, also at a reload */
        EvdConfig cfg;
        EvdStore *store;
        int inotify_fd;
        int watch_wd[EVD_CONFIG_MAX_WATCH_DIRS];
        int done_fd; /* eventfd: a worker finished, or a USB device came or went */
        libusb_context *usb;
        pthread_t usb_thread;
        bool usb_thread_running;
        volatile int usb_stop;
        libusb_hotplug_callback_handle usb_hotplug;
        EvdUsbProfile *profiles;
        size_t n_profiles;
        /* hotplug callbacks run on the USB thread: they hand devices over through this list */
        struct UsbEvent {
                libusb_device *dev;
                bool arrived;
                struct UsbEvent *next;
        } * usb_events;
        Job *jobs; /* pending, running and finished-but-not-reaped */
        unsigned n_jobs, n_running;
        pthread_mutex_t lock; /* guards status and job states touched by workers */
        EvdStatus status;
        volatile int cancel;
        /* the spool: the loop thread counts its backlog and starts a replay thread when it is not empty */
        EvdSpool *spool; /* NULL: no spool configured (or unusable) */
        pthread_t replay_thread;
        /* reconciliation of the store against the database: at start-up, and again once a spool that
         * held it back is empty; never while a docking runs (its files would look unrecorded) */
        bool reconcile_pending, reconcile_after_replay, reconcile_running;
        volatile int reconcile_done;
        pthread_t reconcile_thread;
        bool replay_running;        /* loop thread only */
        bool replay_failing;        /* said once per outage */
        uint64_t replay_not_before; /* CLOCK_MONOTONIC */
        int replay_result;          /* the replay thread's, read after it set replay_done */
        bool replay_done;           /* under lock */
        EvdSpoolReplay replay_res;
        EvdError replay_err;
};

static uint64_t mono_usec(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void job_free(Job *j)
{
        if (j->usb_dev)
                libusb_unref_device(j->usb_dev);
        free(j->dir);
        free(j);
}

static bool job_exists(Manager *m, const char *dir)
{
        for (Job *j = m->jobs; j; j = j->next)
                if (strcmp(j->dir, dir) == 0 && j->state != JOB_FINISHED)
                        return true;
        return false;
}

static int job_queue_dir(Manager *m, const char *dir, uint64_t delay_usec, unsigned attempt)
{
        if (job_exists(m, dir))
                return 0;
        if (m->n_jobs >= EVD_MANAGER_MAX_QUEUE) {
                log_error("job queue full (%u dockings): not taking %s now", EVD_MANAGER_MAX_QUEUE, dir);
                return -ENOBUFS;
        }
        Job *j = calloc(1, sizeof(*j));
        if (!j || !(j->dir = strdup(dir))) {
                free(j);
                return -ENOMEM;
        }
        j->manager = m;
        j->attempt = attempt;
        j->not_before_usec = mono_usec() + delay_usec;
        snprintf(j->source, sizeof(j->source), "%s", dir);
        Job **p = &m->jobs;
        while (*p)
                p = &(*p)->next;
        *p = j;
        m->n_jobs++;
        log_info("volume %s queued", dir);
        return 0;
}

/* ---- worker -------------------------------------------------------------------------------------- */

static void worker_event(const EvdIngestEvent *ev, void *userdata)
{
        Job *j = userdata;
        Manager *m = j->manager;
        log_ingest_event(ev, j->source);
        pthread_mutex_lock(&m->lock);
        EvdStatusJob *s = &m->status.jobs[j->slot];
        if (ev->device_id)
                snprintf(s->device_id, sizeof(s->device_id), "%s", ev->device_id);
        if (ev->officer_id)
                snprintf(s->officer_id, sizeof(s->officer_id), "%s", ev->officer_id);
        switch (ev->kind) {
        case EVD_INGEST_FILE_BEGIN:
        case EVD_INGEST_FILE_PROGRESS:
                if (ev->kind == EVD_INGEST_FILE_BEGIN)
                        s->file_started_us = now_us();
                s->file_index = ev->file_index;
                s->files_total = ev->files_total;
                snprintf(s->state, sizeof(s->state), "copying");
                snprintf(s->file, sizeof(s->file), "%s", strna(ev->path));
                s->file_done = ev->done;
                s->file_total = ev->total;
                break;
        case EVD_INGEST_IDENTIFIED:
                snprintf(s->state, sizeof(s->state), "identified");
                break;
        case EVD_INGEST_FILE_DONE:
                s->files_done++;
                m->status.files_ingested++;
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
        bool say_spooling = ev->spooled && !j->spool_logged;
        j->spool_logged |= ev->spooled;
        if (say_spooling)
                m->status.database_ok = false;
        pthread_mutex_unlock(&m->lock);
        if (say_spooling)
                log_warn("%s: the database is unreachable or behind: this docking goes on into the local "
                         "spool %s; "
                         "it is recorded when the database is back",
                         j->source, m->cfg.spool_dir);
}

static void *worker_main(void *arg)
{
        Job *j = arg;
        Manager *m = j->manager;
        EvdIngestOptions o;
        evd_config_ingest_options(&m->cfg, &o);
        o.spool_dir = m->spool ? m->cfg.spool_dir : NULL; /* only if it could be opened at start */
        o.on_event = worker_event;
        o.userdata = j;
        o.cancel = &m->cancel;

        j->err = (EvdError){};
        j->summary = (EvdIngestSummary){};
        _cleanup_(evd_source_freep) EvdSource *src = NULL;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        int r = j->usb_dev ? evd_source_usb_new(j->usb_dev, j->profile, &src, &j->err)
                           : evd_source_dir_new(j->dir, &src, &j->err);
        if (r >= 0) {
                r = evd_db_open(m->cfg.database_url, &db, &j->err);
                pthread_mutex_lock(&m->lock);
                m->status.database_ok = r >= 0;
                pthread_mutex_unlock(&m->lock);
                if (r < 0 && o.spool_dir && evd_spool_db_unreachable(r)) {
                        log_warn("%s: %s; the docking goes on into the local spool %s", j->source,
                                 evd_error_message(&j->err, r), o.spool_dir);
                        j->err = (EvdError){};
                        r = 0; /* db NULL: offline */
                }
        }
        if (r >= 0 && db && o.spool_dir) {
                /* earlier dockings' entries go first (unless the replay thread is at it already) */
                _cleanup_(evd_spool_freep) EvdSpool *spool = NULL;
                EvdSpoolReplay rep = {};
                EvdError rerr = {};
                int q = evd_spool_open(o.spool_dir, &spool, &rerr);
                if (q >= 0)
                        q = evd_spool_replay(spool, db, &rep, &rerr);
                if (rep.replayed || rep.already)
                        log_info("%s: spool replayed before the docking: %u entries, %u already recorded, "
                                 "%u waiting",
                                 j->source, rep.replayed, rep.already, rep.waiting);
                if (rep.rejected)
                        log_error("spool: %u entries rejected (kept in %s/rejected): %s", rep.rejected,
                                  o.spool_dir, rep.last_rejected);
                if (q < 0 && q != -EBUSY)
                        log_warn("%s: spool replay before the docking stopped: %s", j->source,
                                 evd_error_message(&rerr, q));
        }
        if (r >= 0)
                r = evd_ingest_run(src, m->store, db, &o, &j->summary, &j->err);
        j->result = r;
        pthread_mutex_lock(&m->lock);
        j->state = JOB_FINISHED;
        EvdStatusJob *s = &m->status.jobs[j->slot];
        snprintf(s->state, sizeof(s->state), "%s",
                 r < 0                ? "failed"
                 : j->summary.refused ? "refused"
                                      : "done");
        if (r < 0)
                snprintf(s->last_error, sizeof(s->last_error), "%s", evd_error_message(&j->err, r));
        pthread_mutex_unlock(&m->lock);
        uint64_t one = 1;
        (void)!write(m->done_fd, &one, sizeof(one));
        return NULL;
}

static void status_publish(Manager *m)
{
        pthread_mutex_lock(&m->lock);
        m->status.updated_us = now_us();
        uint64_t free_bytes = 0;
        if (evd_store_free_bytes(m->store, &free_bytes) >= 0)
                m->status.store_free_bytes = free_bytes;
        m->status.store_reserve_bytes = m->cfg.store_reserve_bytes;
        m->status.store_paused = free_bytes < m->cfg.store_reserve_bytes;
        EvdStatus copy = m->status;
        pthread_mutex_unlock(&m->lock);
        int r = evd_status_write(&copy);
        if (r < 0)
                log_debug("cannot write status file %s: %s", evd_status_path(), strerror(-r));
        char line[256];
        unsigned running = 0;
        for (unsigned i = 0; i < copy.n_jobs; i++)
                running += strcmp(copy.jobs[i].state, "copying") == 0 ||
                           strcmp(copy.jobs[i].state, "identifying") == 0;
        snprintf(line, sizeof(line), "STATUS=%u docking(s) active, %" PRIu64 " files ingested since start%s",
                 running, copy.files_ingested, copy.store_paused ? "; STORE BELOW RESERVE" : "");
        sd_notify(0, line);
}

/* Starts pending jobs up to the concurrency limit; reaps finished ones. */
static void jobs_dispatch(Manager *m)
{
        uint64_t now = mono_usec();
        Job **p = &m->jobs;
        while (*p) {
                Job *j = *p;
                if (j->state == JOB_FINISHED) {
                        pthread_join(j->thread, NULL);
                        m->n_running--;
                        const EvdIngestSummary *s = &j->summary;
                        if (j->result < 0) {
                                log_error("%s: docking stopped: %s; retrying in %llus", j->source,
                                          evd_error_message(&j->err, j->result),
                                          (unsigned long long)(EVD_MANAGER_RETRY_USEC / 1000000));
                                pthread_mutex_lock(&m->lock);
                                snprintf(m->status.last_error, sizeof(m->status.last_error), "%s: %s",
                                         j->source, evd_error_message(&j->err, j->result));
                                pthread_mutex_unlock(&m->lock);
                        } else if (s->spooled) {
                                unsigned backlog = 0;
                                if (m->spool)
                                        (void)evd_spool_backlog(m->spool, &backlog);
                                log_warn("%s: docking of %s spooled: %u ingested (%u into the spool), %u "
                                         "already, %u "
                                         "quarantined, %u failed, worst %s; spool backlog %u entries (%s)",
                                         j->source, s->device_id, s->files_ingested, s->files_spooled,
                                         s->files_already, s->files_quarantined, s->files_failed,
                                         evd_verdict_to_string(s->worst), backlog, s->spool_why);
                        } else
                                log_info("%s: docking %" PRId64
                                         " finished: %u ingested, %u already, %u quarantined, %u "
                                         "failed, worst %s",
                                         j->source, s->docking_id, s->files_ingested, s->files_already,
                                         s->files_quarantined, s->files_failed,
                                         evd_verdict_to_string(s->worst));
                        /* retry what stopped on an error while the source is still there; an unplugged
                         * recorder is picked up again when it is docked again */
                        bool present = j->usb_dev ? !j->departed : access(j->dir, F_OK) == 0;
                        bool retry = (j->result < 0 || s->files_failed > 0) && !m->cancel && present;
                        if (retry && j->attempt >= EVD_MANAGER_MAX_RETRIES) {
                                log_error(
                                    "%s: giving up after %u attempts; it is taken again when it is docked "
                                    "again (or after a restart)",
                                    j->source, j->attempt + 1);
                                retry = false;
                        }
                        if (j->usb_dev && j->departed)
                                log_info("%s: recorder unplugged; the docking %s", j->source,
                                         j->result < 0 ? "was abandoned and is resumed at the next docking"
                                                       : "had finished");
                        _cleanup_free_ char *dir = retry && !j->usb_dev ? strdup(j->dir) : NULL;
                        unsigned attempt = j->attempt + 1;
                        if (retry && j->usb_dev) { /* requeue the same job object */
                                j->attempt++;
                                j->state = JOB_PENDING;
                                j->not_before_usec = now + EVD_MANAGER_RETRY_USEC;
                                p = &j->next;
                                continue;
                        }
                        *p = j->next;
                        m->n_jobs--;
                        job_free(j);
                        if (dir)
                                (void)job_queue_dir(m, dir, EVD_MANAGER_RETRY_USEC, attempt);
                        continue;
                }
                if (j->state == JOB_PENDING && !m->cancel && !m->reconcile_pending &&
                    !m->reconcile_running && m->n_running < m->cfg.usb_max_concurrent &&
                    j->not_before_usec <= now) {
                        pthread_mutex_lock(&m->lock);
                        unsigned slot = m->status.n_jobs < EVD_STATUS_MAX_JOBS ? m->status.n_jobs++
                                                                               : EVD_STATUS_MAX_JOBS - 1;
                        j->slot = slot;
                        m->status.jobs[slot] = (EvdStatusJob){};
                        snprintf(m->status.jobs[slot].source, sizeof(m->status.jobs[slot].source), "%s",
                                 j->source);
                        snprintf(m->status.jobs[slot].state, sizeof(m->status.jobs[slot].state),
                                 "identifying");
                        j->state = JOB_RUNNING;
                        pthread_mutex_unlock(&m->lock);
                        if (pthread_create(&j->thread, NULL, worker_main, j) != 0) {
                                log_error("%s: cannot start a worker thread", j->source);
                                j->state = JOB_PENDING;
                                j->not_before_usec = now + EVD_MANAGER_RETRY_USEC;
                        } else
                                m->n_running++;
                }
                p = &j->next;
        }
}

/* ---- spool replay -------------------------------------------------------------------------------- */

static void *replay_main(void *arg)
{
        Manager *m = arg;
        EvdSpoolReplay res = {};
        EvdError err = {};
        _cleanup_(evd_spool_freep) EvdSpool *spool = NULL;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        int r = evd_spool_open(m->cfg.spool_dir, &spool, &err);
        if (r >= 0)
                r = evd_db_open(m->cfg.database_url, &db, &err);
        if (r >= 0)
                r = evd_spool_replay(spool, db, &res, &err);
        pthread_mutex_lock(&m->lock);
        m->status.database_ok = db && !evd_spool_db_unreachable(r);
        m->replay_res = res;
        m->replay_err = err;
        m->replay_result = r;
        m->replay_done = true;
        pthread_mutex_unlock(&m->lock);
        uint64_t one = 1;
        (void)!write(m->done_fd, &one, sizeof(one));
        return NULL;
}

static void replay_reap(Manager *m)
{
        pthread_mutex_lock(&m->lock);
        bool done = m->replay_done;
        pthread_mutex_unlock(&m->lock);
        if (!m->replay_running || !done)
                return;
        pthread_join(m->replay_thread, NULL);
        m->replay_running = false;
        m->replay_done = false;
        const EvdSpoolReplay *res = &m->replay_res;
        int r = m->replay_result;
        uint64_t next = SPOOL_REPLAY_RETRY_USEC;
        if (r >= 0) {
                if (res->replayed || res->already || res->rejected)
                        log_info(
                            "spool %s: replayed %u entries, %u already recorded, %u rejected; %u waiting",
                            m->cfg.spool_dir, res->replayed, res->already, res->rejected, res->waiting);
                if (m->replay_failing && !res->waiting)
                        log_info("spool %s: the database is back; the spool is empty", m->cfg.spool_dir);
                if (!res->waiting && m->reconcile_after_replay) {
                        m->reconcile_after_replay = false;
                        m->reconcile_pending = true;
                }
                m->replay_failing = false;
                if (res->waiting && res->waiting == res->other_db)
                        next = SPOOL_REPLAY_IDLE_USEC;
        } else if (r != -EBUSY && !m->replay_failing) {
                unsigned backlog = 0;
                (void)evd_spool_backlog(m->spool, &backlog);
                log_warn("spool %s: %u entries wait for the database: %s; retrying every %llu s",
                         m->cfg.spool_dir, backlog, evd_error_message(&m->replay_err, r),
                         (unsigned long long)(SPOOL_REPLAY_RETRY_USEC / 1000000));
                m->replay_failing = true;
        }
        if (res->rejected)
                log_error("spool %s: %u entries rejected (kept in %s/rejected, nothing dropped): %s",
                          m->cfg.spool_dir, res->rejected, m->cfg.spool_dir, res->last_rejected);
        m->replay_not_before = mono_usec() + next;
}

/* From the 1-second tick: the backlog for the status, and a replay when entries wait. */
static void spool_tick(Manager *m)
{
        if (!m->spool)
                return;
        replay_reap(m);
        unsigned backlog = 0;
        if (evd_spool_backlog(m->spool, &backlog) < 0)
                return;
        pthread_mutex_lock(&m->lock);
        m->status.spool_backlog = backlog;
        pthread_mutex_unlock(&m->lock);
        if (backlog == 0 || m->replay_running || m->cancel || mono_usec() < m->replay_not_before)
                return;
        if (pthread_create(&m->replay_thread, NULL, replay_main, m) != 0) {
                log_error("cannot start the spool replay thread");
                m->replay_not_before = mono_usec() + SPOOL_REPLAY_RETRY_USEC;
                return;
        }
        m->replay_running = true;
}

static void replay_join(Manager *m)
{
        if (m->replay_running) {
                pthread_join(m->replay_thread, NULL);
                m->replay_running = false;
        }
}

/* ---- reconciliation ------------------------------------------------------------------------------ */

static void on_reconcile_finding(EvdReconcileKind kind, const char *path, int64_t file_id, void *userdata)
{
        if (kind == EVD_RECONCILE_FILE_WITHOUT_ROW)
                log_warn(
                    "reconciliation: %s is stored but not recorded (an interrupted run); it is kept, and "
                    "recorded when its recorder docks again",
                    path);
        else if (kind == EVD_RECONCILE_ROW_WITHOUT_FILE)
                log_error("reconciliation: file %" PRId64 " names %s, which is MISSING from the store",
                          file_id, path);
}

/* After a crash or power loss: settle what an interrupted run left (see reconcile.h). */
static void *reconcile_main(void *arg)
{
        Manager *m = arg;
        EvdError err = {};
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        int r = evd_db_open(m->cfg.database_url, &db, &err);
        pthread_mutex_lock(&m->lock);
        m->status.database_ok = r >= 0;
        pthread_mutex_unlock(&m->lock);
        EvdReconcileReport rep = {};
        if (r >= 0)
                r = evd_reconcile(m->store, db, on_reconcile_finding, m, &rep, &err);
        if (r < 0)
                log_warn("reconciliation of %s not done: %s", m->cfg.store_root, evd_error_message(&err, r));
        else
                log_msg(rep.rows_without_file   ? LOG_ERR
                        : rep.files_without_row ? LOG_WARNING
                                                : LOG_INFO,
                        "reconciliation of %s: %u stored files and %u recorded paths checked; %u temporary "
                        "file(s) "
                        "removed, %u file(s) without a row, %u row(s) without a file",
                        m->cfg.store_root, rep.files_checked, rep.rows_checked, rep.temp_removed,
                        rep.files_without_row, rep.rows_without_file);
        m->reconcile_done = 1;
        uint64_t one = 1;
        (void)!write(m->done_fd, &one, sizeof(one));
        return NULL;
}

/* From the tick: start a pending reconciliation when nothing is being ingested; files waiting in the
 * spool have no rows by design, so then it waits for the spool to be replayed. */
static void reconcile_tick(Manager *m)
{
        if (m->reconcile_running && m->reconcile_done) {
                pthread_join(m->reconcile_thread, NULL);
                m->reconcile_running = false;
                m->reconcile_done = 0;
        }
        if (!m->reconcile_pending || m->reconcile_running || m->n_running > 0 || m->cancel)
                return;
        unsigned backlog = 0;
        if (m->spool && evd_spool_backlog(m->spool, &backlog) >= 0 && backlog > 0) {
                log_info("reconciliation postponed: %u spool entries wait for the database", backlog);
                m->reconcile_pending = false;
                m->reconcile_after_replay = true;
                return;
        }
        m->reconcile_pending = false;
        if (pthread_create(&m->reconcile_thread, NULL, reconcile_main, m) != 0) {
                log_error("cannot start the reconciliation thread");
                return;
        }
        m->reconcile_running = true;
}

/* ---- USB recorders ------------------------------------------------------------------------------- */

static void usb_port_name(libusb_device *dev, char *buf, size_t size)
{
        uint8_t ports[8];
        int n = libusb_get_port_numbers(dev, ports, (int)sizeof(ports));
        int o = snprintf(buf, size, "usb:%u-", libusb_get_bus_number(dev));
        for (int i = 0; i < n && o > 0 && (size_t)o < size; i++)
                o += snprintf(buf + o, size - (size_t)o, i ? ".%u" : "%u", ports[i]);
        if (n <= 0 && o > 0 && (size_t)o < size)
                snprintf(buf + o, size - (size_t)o, "addr%u", libusb_get_device_address(dev));
}

static Job *job_find_usb(Manager *m, libusb_device *dev)
{
        for (Job *j = m->jobs; j; j = j->next)
                if (j->usb_dev == dev)
                        return j;
        return NULL;
}

static void usb_arrived(Manager *m, libusb_device *dev)
{
        EvdError err = {};
        int k = evd_usb_profile_match(m->profiles, m->n_profiles, dev, &err);
        struct libusb_device_descriptor d = {};
        (void)libusb_get_device_descriptor(dev, &d);
        if (k < 0) {
                log_debug("USB device %04x:%04x matches no recorder profile: ignored", d.idVendor,
                          d.idProduct);
                return;
        }
        char port[64];
        usb_port_name(dev, port, sizeof(port));
        if (job_find_usb(m, dev))
                return;
        if (m->n_jobs >= EVD_MANAGER_MAX_QUEUE) {
                log_error("job queue full: recorder at %s not taken now", port);
                return;
        }
        Job *j = calloc(1, sizeof(*j));
        if (!j || !(j->dir = strdup(port))) {
                free(j);
                return;
        }
        j->manager = m;
        j->usb_dev = libusb_ref_device(dev);
        j->profile = &m->profiles[k];
        snprintf(j->source, sizeof(j->source), "%s (%04x:%04x, profile %s)", port, d.idVendor, d.idProduct,
                 m->profiles[k].name);
        Job **p = &m->jobs;
        while (*p)
                p = &(*p)->next;
        *p = j;
        m->n_jobs++;
        log_info("recorder docked at %s", j->source);
}

static void usb_departed(Manager *m, libusb_device *dev)
{
        Job *j = job_find_usb(m, dev);
        if (!j)
                return;
        j->departed = 1;
        log_info("recorder at %s unplugged", j->source);
        if (j->state == JOB_PENDING) { /* never started or waiting for a retry: drop it */
                Job **p = &m->jobs;
                while (*p != j)
                        p = &(*p)->next;
                *p = j->next;
                m->n_jobs--;
                job_free(j);
        }
}

/* Runs on the USB event thread: only hands the device over; all work happens elsewhere. */
static int LIBUSB_CALL on_usb_hotplug(libusb_context *ctx, libusb_device *dev, libusb_hotplug_event event,
                                      void *userdata)
{
        Manager *m = userdata;
        struct UsbEvent *e = calloc(1, sizeof(*e));
        if (!e)
                return 0;
        e->dev = libusb_ref_device(dev);
        e->arrived = event == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED;
        pthread_mutex_lock(&m->lock);
        struct UsbEvent **p = &m->usb_events;
        while (*p)
                p = &(*p)->next;
        *p = e;
        pthread_mutex_unlock(&m->lock);
        uint64_t one = 1;
        (void)!write(m->done_fd, &one, sizeof(one));
        return 0;
}

static void usb_events_process(Manager *m)
{
        pthread_mutex_lock(&m->lock);
        struct UsbEvent *list = m->usb_events;
        m->usb_events = NULL;
        pthread_mutex_unlock(&m->lock);
        while (list) {
                struct UsbEvent *e = list;
                list = e->next;
                if (e->arrived)
                        usb_arrived(m, e->dev);
                else
                        usb_departed(m, e->dev);
                libusb_unref_device(e->dev);
                free(e);
        }
}

static void *usb_thread_main(void *arg)
{
        Manager *m = arg;
        while (!m->usb_stop) {
                struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
                int r = libusb_handle_events_timeout_completed(m->usb, &tv, NULL);
                if (r < 0 && r != LIBUSB_ERROR_INTERRUPTED && r != LIBUSB_ERROR_TIMEOUT) {
                        log_error("USB event handling failed: %s", libusb_error_name(r));
                        sleep(1);
                }
        }
        return NULL;
}

static int usb_profiles_load(Manager *m)
{
        _cleanup_free_ char *pattern = NULL;
        if (asprintf(&pattern, "%s/*.conf", m->cfg.usb_profiles_dir) < 0)
                return -ENOMEM;
        glob_t g = {};
        int gr = glob(pattern, 0, NULL, &g);
        if (gr != 0) {
                globfree(&g);
                if (gr == GLOB_NOMATCH)
                        log_warn("no recorder profiles in %s: USB recorders are ignored",
                                 m->cfg.usb_profiles_dir);
                return 0;
        }
        m->profiles = calloc(g.gl_pathc, sizeof(*m->profiles));
        if (!m->profiles) {
                globfree(&g);
                return -ENOMEM;
        }
        for (size_t i = 0; i < g.gl_pathc; i++) {
                EvdError err = {};
                EvdUsbProfile *p = &m->profiles[m->n_profiles];
                int r = evd_usb_profile_parse_file(g.gl_pathv[i], p, &err);
                if (r < 0) {
                        /* strict: a broken profile is an error, as for the main configuration */
                        log_error("%s", evd_error_message(&err, r));
                        globfree(&g);
                        return r;
                }
                if (m->cfg.usb_set_clock)
                        p->set_clock = true;
                m->n_profiles++;
                log_info("recorder profile %s: %04x:%04x", p->name, p->vendor_id, p->product_id);
        }
        globfree(&g);
        return 0;
}

static int usb_start(Manager *m)
{
        if (!m->cfg.usb_enabled)
                return 0;
        int r = usb_profiles_load(m);
        if (r < 0)
                return r;
        if (m->n_profiles == 0)
                return 0;
        r = libusb_init(&m->usb);
        if (r < 0) {
                log_error("cannot initialise libusb: %s; USB recorders are not detected",
                          libusb_error_name(r));
                m->usb = NULL;
                return 0;
        }
        if (!libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG)) {
                log_error("libusb has no hotplug support here; USB recorders are not detected");
                return 0;
        }
        /* ENUMERATE: recorders already docked at start-up arrive like new ones */
        r = libusb_hotplug_register_callback(
            m->usb, LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT,
            LIBUSB_HOTPLUG_ENUMERATE, LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY,
            LIBUSB_HOTPLUG_MATCH_ANY, on_usb_hotplug, m, &m->usb_hotplug);
        if (r < 0) {
                log_error("cannot register for USB hotplug: %s", libusb_error_name(r));
                return 0;
        }
        if (pthread_create(&m->usb_thread, NULL, usb_thread_main, m) != 0)
                return -EAGAIN;
        m->usb_thread_running = true;
        log_info("watching USB for %zu recorder profile(s)", m->n_profiles);
        return 0;
}

static void usb_stop(Manager *m)
{
        if (!m->usb)
                return;
        m->usb_stop = 1;
        if (m->usb_thread_running) {
                libusb_hotplug_deregister_callback(m->usb, m->usb_hotplug); /* wakes the event thread */
                pthread_join(m->usb_thread, NULL);
                m->usb_thread_running = false;
        }
}

/* ---- event sources ------------------------------------------------------------------------------- */

static int on_worker_done(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Manager *m = userdata;
        uint64_t n;
        (void)!read(fd, &n, sizeof(n));
        usb_events_process(m);
        reconcile_tick(m);
        jobs_dispatch(m);
        replay_reap(m);
        status_publish(m);
        return 0;
}

static int on_inotify(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Manager *m = userdata;
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        ssize_t n = read(fd, buf, sizeof(buf));
        for (char *p = buf; n > 0 && p < buf + n;) {
                struct inotify_event *ev = (struct inotify_event *)p;
                p += sizeof(*ev) + ev->len;
                if (!(ev->mask & IN_ISDIR) || !ev->len || ev->name[0] == '.')
                        continue;
                /* A directory renamed into place is complete; one created in place (mkdir + mount, cp -r)
                 * may still be filling: give it time to settle. */
                uint64_t delay = ev->mask & IN_MOVED_TO ? 0 : EVD_MANAGER_SETTLE_USEC;
                for (unsigned i = 0; i < m->cfg.n_watch_dirs; i++)
                        if (m->watch_wd[i] == ev->wd) {
                                _cleanup_free_ char *dir = NULL;
                                if (asprintf(&dir, "%s/%s", m->cfg.watch_dirs[i], ev->name) >= 0)
                                        (void)job_queue_dir(m, dir, delay, 0);
                        }
        }
        jobs_dispatch(m);
        return 0;
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata)
{
        Manager *m = userdata;
        spool_tick(m);
        reconcile_tick(m);
        jobs_dispatch(m);
        status_publish(m);
        sd_event_source_set_time(s, usec + 1000000);
        sd_event_source_set_enabled(s, SD_EVENT_ONESHOT); /* a time source disables itself after firing */
        return 0;
}

static int scan_watch_dir(Manager *m, const char *dir)
{
        DIR *d = opendir(dir);
        if (!d)
                return -errno;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.' || de->d_type != DT_DIR)
                        continue;
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "%s/%s", dir, de->d_name) >= 0)
                        (void)job_queue_dir(m, p, 0, 0);
        }
        closedir(d);
        return 0;
}

static int on_signal_stop(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        Manager *m = userdata;
        log_info("received %s: finishing the current file of each docking, then stopping",
                 strsignal((int)si->ssi_signo));
        sd_notify(0, "STOPPING=1");
        m->cancel = 1;
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static int load_config(Manager *m, EvdConfig *cfg, EvdError *err)
{
        int r = evd_config_init(cfg);
        if (r < 0)
                return r;
        r = evd_config_load(cfg, m->config_path, m->config_required, err);
        if (r < 0) {
                evd_config_clear(cfg);
                return r;
        }
        return 0;
}

static int on_signal_reload(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        Manager *m = userdata;
        EvdConfig cfg;
        EvdError err = {};
        sd_notify(0, "RELOADING=1");
        int r = load_config(m, &cfg, &err);
        if (r < 0)
                log_error("reload refused, keeping the running configuration: %s",
                          evd_error_message(&err, r));
        else {
                /* store root and watch dirs take effect at restart; the rest now */
                m->cfg.late_after_us = cfg.late_after_us;
                m->cfg.max_file_bytes = cfg.max_file_bytes;
                m->cfg.store_reserve_bytes = cfg.store_reserve_bytes;
                m->cfg.archive_copy = cfg.archive_copy;
                m->cfg.media_timeout_us = cfg.media_timeout_us;
                m->cfg.usb_max_concurrent = cfg.usb_max_concurrent;
                evd_config_clear(&cfg);
                log_info("configuration %s reloaded", m->config_path);
        }
        sd_notify(0, "READY=1");
        return 0;
}

int manager_new(const char *config_path, Manager **ret, EvdError *err)
{
        _cleanup_(manager_freep) Manager *m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->inotify_fd = m->done_fd = -1;
        pthread_mutex_init(&m->lock, NULL);
        m->config_required = config_path != NULL;
        m->config_path = strdup(config_path ? config_path : EVD_DEFAULT_CONFIG_FILE);
        if (!m->config_path)
                return -ENOMEM;
        int r = load_config(m, &m->cfg, err);
        if (r < 0)
                return r;
        r = evd_store_open(m->cfg.store_root, &m->store, err);
        if (r < 0)
                return r;
        r = evd_store_remove_leftovers(m->store, err);
        if (r < 0)
                return r;
        if (r > 0)
                log_info("removed %d temporary file(s) left by an interrupted run in %s", r,
                         m->cfg.store_root);
        if (m->cfg.spool_dir && m->cfg.spool_dir[0]) {
                EvdError serr = {};
                r = evd_spool_open(m->cfg.spool_dir, &m->spool, &serr);
                if (r < 0)
                        log_error("spool unusable, dockings stop while the database is unreachable: %s",
                                  evd_error_message(&serr, r));
                unsigned backlog = 0;
                if (m->spool && evd_spool_backlog(m->spool, &backlog) >= 0 && backlog > 0)
                        log_warn("spool %s: %u entries wait for the database", m->cfg.spool_dir, backlog);
        }
        m->reconcile_pending = true; /* after READY, once nothing is being ingested (see reconcile_tick) */
        m->status.started_us = now_us();
        *ret = steal_ptr(&m);
        return 0;
}

void manager_free(Manager *m)
{
        if (!m)
                return;
        m->cancel = 1;
        for (Job *j = m->jobs; j; j = j->next)
                if (j->state != JOB_PENDING)
                        pthread_join(j->thread, NULL);
        while (m->jobs) {
                Job *j = m->jobs;
                m->jobs = j->next;
                job_free(j);
        }
        usb_stop(m);
        replay_join(m);
        if (m->reconcile_running) {
                pthread_join(m->reconcile_thread, NULL);
                m->reconcile_running = false;
        }
        evd_spool_free(m->spool);
        while (m->usb_events) {
                struct UsbEvent *e = m->usb_events;
                m->usb_events = e->next;
                libusb_unref_device(e->dev);
                free(e);
        }
        if (m->usb)
                libusb_exit(m->usb);
        free(m->profiles);
        closep(&m->inotify_fd);
        closep(&m->done_fd);
        evd_store_free(m->store);
        evd_config_clear(&m->cfg);
        free(m->config_path);
        sd_event_unref(m->event);
        pthread_mutex_destroy(&m->lock);
        free(m);
}

int manager_run(Manager *m)
{
        int r = sd_event_default(&m->event);
        if (r < 0)
                return r;
        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &ss, NULL);
        sd_event_add_signal(m->event, NULL, SIGTERM, on_signal_stop, m);
        sd_event_add_signal(m->event, NULL, SIGINT, on_signal_stop, m);
        sd_event_add_signal(m->event, NULL, SIGHUP, on_signal_reload, m);
        sd_event_set_watchdog(m->event, true);

        m->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (m->done_fd < 0)
                return -errno;
        r = sd_event_add_io(m->event, NULL, m->done_fd, EPOLLIN, on_worker_done, m);
        if (r < 0)
                return r;

        m->inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (m->inotify_fd < 0)
                return -errno;
        for (unsigned i = 0; i < m->cfg.n_watch_dirs; i++) {
                const char *d = m->cfg.watch_dirs[i];
                if (mkdir(d, 0750) < 0 && errno != EEXIST)
                        log_warn("cannot create watch directory %s: %s", d, strerror(errno));
                m->watch_wd[i] = inotify_add_watch(m->inotify_fd, d, IN_CREATE | IN_MOVED_TO | IN_ONLYDIR);
                if (m->watch_wd[i] < 0) {
                        log_error("cannot watch %s: %s", d, strerror(errno));
                        continue;
                }
                scan_watch_dir(m, d);
                log_info("watching %s for recorder volumes", d);
        }
        r = sd_event_add_io(m->event, NULL, m->inotify_fd, EPOLLIN, on_inotify, m);
        if (r < 0)
                return r;
        uint64_t now;
        sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        r = sd_event_add_time(m->event, NULL, CLOCK_MONOTONIC, now + 1000000, 100000, on_tick, m);
        if (r < 0)
                return r;

        r = usb_start(m);
        if (r < 0)
                return r;
        jobs_dispatch(m);
        status_publish(m);
        char db_shown[256];
        mask_password(m->cfg.database_url, db_shown, sizeof(db_shown));
        log_msg(LOG_INFO, "evidockd ready: store %s, database %s, %u watch dir(s)", m->cfg.store_root,
                db_shown, m->cfg.n_watch_dirs);
        log_started();
        sd_notify(0, "READY=1");
        r = sd_event_loop(m->event);
        usb_stop(m);
        replay_join(m);
        if (m->reconcile_running) {
                pthread_join(m->reconcile_thread, NULL);
                m->reconcile_running = false;
        }
        /* let running dockings finish their current file (they see m->cancel) */
        for (Job *j = m->jobs; j; j = j->next)
                if (j->state == JOB_RUNNING || j->state == JOB_FINISHED) {
                        pthread_join(j->thread, NULL);
                        j->state = JOB_PENDING; /* joined: manager_free must not join again */
                }
        return r;
}
