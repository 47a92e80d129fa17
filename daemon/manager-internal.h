/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Inside evidockd's Manager. One file per concern:
 *
 *   manager.c           the event loop: start, signals (stop, reload), the 1-second tick, and the ONE
 *                       place where messages from other threads are handled (manager_dispatch)
 *   manager-mailbox.c   the one way back from any thread to the loop: a message queue + an eventfd
 *   manager-jobs.c      the job queue, worker threads, concurrency limit, retries, deadlines
 *   manager-docking.c   the docking job kind (a volume directory or a USB recorder -> evd_ingest_run)
 *   manager-watch.c     watched directories (inotify)
 *   manager-done-mark.c the "already done" marks of watched volumes (set by the docking, read by the watch)
 *   manager-usb.c       recorder profiles, USB hotplug (its own libusb event thread)
 *   manager-spool.c     the spool-replay thread
 *   manager-reconcile.c the store/database reconciliation thread
 *   manager-status.c    status.json and systemd's STATUS= line
 *   manager-metrics.c   the Prometheus metrics file and the daily summary in the journal
 *
 * Threads. Only the loop thread touches the Manager, the job list and the status. Every other thread
 * (workers, the USB event thread, the replay and reconcile threads) reports back by posting a Msg with
 * manager_post(); manager_dispatch() handles it on the loop thread. Flags the loop sets for a running
 * thread (cancel, stop) are C11 atomics.
 *
 * Adding a kind of background job (a disc burn, ...): write manager-<kind>.c with a `const JobKind
 * job_kind_<kind>` (run on a worker thread, finished back on the loop) and a function that builds a
 * Job with job_new() and hands it to job_enqueue(); declare both below. The queue, the concurrency
 * limit, status, SIGTERM, the no-progress deadline and retries then apply to it as to dockings. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <libusb.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "ingest.h"
#include "log.h"
#include "manager.h"
#include "metrics.h"
#include "spool.h"
#include "status.h"
#include "status-slot.h"
#include "store.h"
#include "usb.h"

/* While entries wait in the spool, a replay is tried this often; when only another database's entries
 * are left (nothing this database can take), less often. */
#define SPOOL_REPLAY_RETRY_USEC (3ULL * 1000000ULL)
#define SPOOL_REPLAY_IDLE_USEC  (60ULL * 1000000ULL)
/* A docking that goes on after it was told to stop (SIGTERM, or its deadline) is given this long before
 * evidockd stops waiting for it. */
#define EVD_MANAGER_STOP_GRACE_USEC (10ULL * 1000000ULL)
/* Finished jobs stay visible in status.json this long (and at most EVD_MANAGER_RECENT of them). */
#define EVD_MANAGER_RECENT 8u

/* Why a job was told to stop: Job.cancel (0 = keep going); the library's own values. */
enum {
        JOB_CANCEL_NONE = EVD_INGEST_CANCEL_NONE,
        JOB_CANCEL_STOP = EVD_INGEST_CANCEL_STOP,
        JOB_CANCEL_DEADLINE = EVD_INGEST_CANCEL_DEADLINE,
};

typedef struct Manager Manager;
typedef struct Job Job;

/* ---- messages (manager-mailbox.c) ------------------------------------------------------------------ */

typedef enum MsgKind {
        MSG_JOB_STATUS,     /* a worker's new status for its job (status + files_done_inc) */
        MSG_JOB_DONE,       /* a worker returned: job->result, job->err and the kind's results are set */
        MSG_DATABASE,       /* result (0: reached, < 0: why not) and err */
        MSG_USB_ARRIVED,    /* usb_dev (referenced) */
        MSG_USB_LEFT,       /* usb_dev (referenced) */
        MSG_REPLAY_DONE,    /* result, err, replay */
        MSG_RECONCILE_DONE, /* result */
        MSG_METRICS_DONE,   /* result, err, totals (taken by the handler) */
        MSG_DISC_STATUS,    /* a disc drive's state (disc_drive, disc): daemon/disc-runner.h */
} MsgKind;

typedef struct Msg {
        struct Msg *next;
        MsgKind kind;
        bool embedded; /* part of a longer-lived object: not freed after handling */
        Job *job;
        libusb_device *usb_dev;
        bool flag;
        int result;
        EvdError err;
        EvdSpoolReplay replay;
        EvdStatusJob status;
        unsigned files_done_inc;
        bool progress; /* MSG_JOB_STATUS: the job moved on (restarts its deadline) */
        EvdMetricsTotals *totals;
        unsigned disc_drive;
        EvdStatusDisc disc;
} Msg;

typedef struct Mailbox {
        pthread_mutex_t lock;
        Msg *head, **tail;
        int fd; /* eventfd: readable while messages wait */
} Mailbox;

int mailbox_init(Mailbox *mb);
void mailbox_done(Mailbox *mb);
/* Any thread. Takes msg (from msg_new(), or an embedded one). Never fails. */
void mailbox_post(Mailbox *mb, Msg *msg);
/* Loop thread: all waiting messages, oldest first. */
Msg *mailbox_take(Mailbox *mb);
Msg *msg_new(MsgKind kind); /* NULL on ENOMEM */
void msg_free(Msg *msg);

/* ---- jobs (manager-jobs.c) ------------------------------------------------------------------------- */

typedef enum JobState { JOB_PENDING, JOB_RUNNING, JOB_FINISHED } JobState;

typedef struct JobKind {
        const char *name; /* "docking", ... for logs */
        /* Loop thread, just before the worker starts: copy what run() needs from the configuration
         * (a reload may change it meanwhile). May be NULL. */
        void (*prepare)(Manager *m, Job *j);
        /* Worker thread: does the job; returns 0 or a negative errno with j->err set. It must look at
         * j->cancel often enough (the library's cancel option), and may report progress with
         * job_post_status(). */
        int (*run)(Job *j);
        /* Loop thread, after run returned: says how it went. Returns true if the job should run again
         * later (it is requeued after EVD_MANAGER_RETRY_USEC, up to EVD_MANAGER_MAX_RETRIES times). */
        bool (*finished)(Manager *m, Job *j);
        /* Frees the kind's own data (j->data, j->usb_dev ...); may be NULL. */
        void (*free)(Job *j);
} JobKind;

struct Job {
        Job *next;
        Manager *manager;
        const JobKind *kind;
        char *key;        /* what it works on: a volume directory, "usb:B-P.P"; one job per key */
        char source[160]; /* for logs and status */
        /* loop thread only */
        JobState state;
        unsigned attempt;         /* retries so far */
        uint64_t not_before_usec; /* CLOCK_MONOTONIC; retry delay */
        uint64_t progress_usec;   /* CLOCK_MONOTONIC: the last sign of progress */
        uint64_t cancel_usec;     /* when it was told to stop; 0: not yet */
        bool abandoned;           /* still running past its grace time: its slot is freed */
        EvdStatusJob st;          /* what status.json shows for it */
        pthread_t thread;
        Msg done_msg; /* posted by the worker when run() returns: cannot fail */
        /* loop -> worker */
        atomic_int cancel; /* JOB_CANCEL_*: the library stops at the next file (or abandons it) */
        /* worker thread while running; the loop reads them after MSG_JOB_DONE */
        int result;
        EvdError err;
        EvdStatusJob wst;     /* the worker's copy of its status, posted with MSG_JOB_STATUS */
        uint64_t posted_usec; /* last progress posted (throttled) */
        /* worker -> loop: the latest status, coalesced (status-slot.h); status_msg is its one message */
        StatusSlot status_slot;
        Msg status_msg;
        /* the docking kind (manager-docking.c) */
        libusb_device *usb_dev; /* referenced; NULL for a directory */
        const EvdUsbProfile *profile;
        bool departed; /* loop: the recorder was unplugged */
        bool spool_logged;
        EvdIngestOptions opts; /* from the configuration at start (prepare) */
        EvdIngestSummary summary;
        char done_mark[96]; /* a volume directory: its fingerprint before the docking (manager-watch.c) */
        /* other kinds */
        void *data;
};

/* Loop thread: the journal fields of a job (valid while j is). */
LogContext job_log_context(const Job *j);
/* A new job of kind for key (strdup'ed); NULL on ENOMEM. */
Job *job_new(Manager *m, const JobKind *kind, const char *key);
void job_free(Job *j);
/* Appends j to the queue (takes it; frees it when refused). -EEXIST when a job for the same key is
 * pending or running, -ENOBUFS when the queue is full. */
int job_enqueue(Manager *m, Job *j, uint64_t delay_usec);
Job *job_find(Manager *m, const char *key);
/* Loop thread: starts pending jobs up to the concurrency limit, reaps finished ones, enforces deadlines. */
void jobs_dispatch(Manager *m);
/* Loop thread: a job's worker has ended (MSG_JOB_DONE). */
void jobs_on_done(Manager *m, Job *j);
/* Loop thread: tells every job to stop (JOB_CANCEL_STOP). */
void jobs_cancel_all(Manager *m, int why);
/* How many worker threads are still running (abandoned ones included). */
unsigned jobs_alive(Manager *m);
/* Loop thread, at exit: joins finished workers; names the ones still running. */
void jobs_join(Manager *m, bool wait);
/* manager-job-status.c. Worker thread: posts j->wst (throttled unless force); progress: the job moved on (bytes copied, a file
 * finished: its deadline starts again), not merely failed at something. The latest status overwrites the
 * previous one (status-slot.h): a throttled one is taken at the next message or status_publish(). */
void job_post_status(Job *j, bool force, bool progress, unsigned files_done_inc);
/* Loop thread: applies the job's latest status from its worker, if a fresh one waits (from_message: for
 * its MSG_JOB_STATUS). */
void job_status_take(Manager *m, Job *j, bool from_message);
/* Loop thread: a MSG_JOB_STATUS arrived. */
void jobs_on_status(Manager *m, Msg *msg);
/* Any thread: tells the loop whether the database answered: r is evd_db_open()'s result (0 reached; a
 * refused login is shown as a database error, not an outage), err its message (may be NULL). */
void manager_database_state(Manager *m, int r, const EvdError *err);

/* ---- the docking kind (manager-docking.c) ----------------------------------------------------------- */

extern const JobKind job_kind_docking;
/* Queues a docking of a volume directory. */
int docking_queue_dir(Manager *m, const char *dir, uint64_t delay_usec, unsigned attempt);
/* Queues a docking of a USB recorder matching profile. */
int docking_queue_usb(Manager *m, libusb_device *dev, const EvdUsbProfile *profile, const char *port,
                      const char *source);

/* ---- watched directories (manager-watch.c) ---------------------------------------------------------- */

int watch_start(Manager *m);
void watch_stop(Manager *m);

/* ---- done marks of watched volumes (manager-done-mark.c) ------------------------------------------- */

/* Worker thread: fingerprint of a volume directory (names, types, sizes, times of everything in it). */
int volume_fingerprint(const char *dir, char *buf, size_t size);
/* 1 when dir was ingested completely and is unchanged since (its done mark matches). */
int volume_is_done(const char *dir);
/* Worker thread: remembers that dir, with fingerprint mark, was ingested completely. */
void volume_mark_done(const char *dir, const char *mark);
/* Drops the marks in watch_dir whose volume is gone. */
void volume_marks_prune(const char *watch_dir);

/* ---- USB recorders (manager-usb.c) ----------------------------------------------------------------- */

int usb_start(Manager *m);
void usb_stop(Manager *m);
void usb_free(Manager *m);
void usb_on_arrived(Manager *m, libusb_device *dev);
void usb_on_left(Manager *m, libusb_device *dev);

/* ---- background threads: spool replay (manager-spool.c), reconciliation (manager-reconcile.c) ---- */

void spool_tick(Manager *m);
void spool_on_replay_done(Manager *m, Msg *msg);
void spool_join(Manager *m);

void reconcile_tick(Manager *m);
void reconcile_on_done(Manager *m, Msg *msg);
void reconcile_join(Manager *m);

/* ---- supervision: metrics file and daily summary (manager-metrics.c) -------------------------------- */

void metrics_tick(Manager *m);
void metrics_on_done(Manager *m, Msg *msg);
void metrics_join(Manager *m);

/* ---- status (manager-status.c) --------------------------------------------------------------------- */

void status_publish(Manager *m);
/* A job's final status kept for status.json (recent dockings). */
void status_remember(Manager *m, const EvdStatusJob *st);
/* A disc drive's state (MSG_DISC_STATUS) for status.json. */
void status_on_disc(Manager *m, const Msg *msg);
/* Whether the database answered (r as manager_database_state()): status.database_ok, .database_error
 * (a refused login, logged at error level when it starts or its reason changes). */
void status_database(Manager *m, int r, const EvdError *err);

/* ---- the Manager ----------------------------------------------------------------------------------- */

struct Manager {
        sd_event *event;
        char *config_path;
        bool config_required; /* named by --config or $EVIDOCK_CONFIG: must exist, also at a reload */
        EvdConfig cfg;
        EvdStore *store;
        Mailbox mailbox;
        /* jobs */
        Job *jobs; /* pending, running and finished-but-not-reaped */
        unsigned n_jobs, n_running;
        bool stopping; /* SIGTERM: no new jobs; the loop ends when the workers are done */
        uint64_t stop_usec;
        bool left_behind; /* stopped without waiting for every thread: manager_free frees nothing */
        /* watched directories */
        int inotify_fd;
        int watch_wd[EVD_CONFIG_MAX_WATCH_DIRS];
        /* USB */
        libusb_context *usb;
        pthread_t usb_thread;
        bool usb_thread_running;
        atomic_bool usb_stop;
        libusb_hotplug_callback_handle usb_hotplug;
        EvdUsbProfile *profiles;
        size_t n_profiles;
        /* the spool: the loop counts its backlog and starts a replay thread when it is not empty */
        EvdSpool *spool; /* NULL: no spool configured (or unusable) */
        pthread_t replay_thread;
        bool replay_running;
        bool replay_failing;        /* said once per outage */
        uint64_t replay_not_before; /* CLOCK_MONOTONIC */
        Msg replay_msg;
        /* reconciliation of the store against the database: at start-up, and again once a spool that
         * held it back is empty; never while a docking runs (its files would look unrecorded) */
        bool reconcile_pending, reconcile_after_replay, reconcile_running;
        pthread_t reconcile_thread;
        Msg reconcile_msg;
        /* the metrics file and the daily summary: one thread at a time, every [metrics] interval */
        bool metrics_running, metrics_want_totals, metrics_failing;
        pthread_t metrics_thread;
        Msg metrics_msg;
        uint64_t metrics_not_before;       /* CLOCK_MONOTONIC */
        int64_t metrics_summarized_day_us; /* the UTC day up to which summaries are done */
        int64_t metrics_summary_day_us;    /* the day the running thread summarizes; 0: none */
        char *metrics_db_url;              /* the thread's copy */
        /* status: loop thread only */
        EvdStatus status;
        bool database_seen; /* status.database_ok is known */
        EvdStatusJob recent[EVD_MANAGER_RECENT];
        unsigned n_recent;
        char status_line[256];   /* the last STATUS= sent */
        struct DiscRunner *disc; /* burn-to-disc workers, one per [disc] drive (daemon/disc-runner.h) */
};
