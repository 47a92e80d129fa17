/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Manager's event loop: start-up, signals (stop, reload), the 1-second tick, and manager_dispatch(),
 * the one place where what other threads report is handled. The concerns live in manager-*.c (see
 * manager-internal.h for the layout). */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "clock.h"
#include "disc-runner.h"
#include "evd-config.h"
#include "log.h"
#include "manager-internal.h"
#include "output.h"

/* ---- messages from other threads ------------------------------------------------------------------- */

static void manager_dispatch(Manager *m)
{
        Msg *list = mailbox_take(&m->mailbox);
        while (list) {
                Msg *msg = list;
                list = msg->next;
                switch (msg->kind) {
                case MSG_JOB_STATUS:
                        jobs_on_status(m, msg);
                        msg = NULL; /* the job's own message: its worker may post it again now */
                        break;
                case MSG_JOB_DONE:
                        jobs_on_done(m, msg->job); /* frees the job, and with it msg */
                        msg = NULL;
                        break;
                case MSG_DATABASE:
                        status_database(m, msg->result, &msg->err);
                        break;
                case MSG_USB_ARRIVED:
                        usb_on_arrived(m, msg->usb_dev);
                        break;
                case MSG_USB_LEFT:
                        usb_on_left(m, msg->usb_dev);
                        break;
                case MSG_REPLAY_DONE:
                        spool_on_replay_done(m, msg);
                        m->database_seen = true;
                        break;
                case MSG_RECONCILE_DONE:
                        reconcile_on_done(m, msg);
                        break;
                case MSG_METRICS_DONE:
                        metrics_on_done(m, msg);
                        break;
                case MSG_DISC_STATUS:
                        status_on_disc(m, msg);
                        break;
                }
                msg_free(msg);
        }
}

/* What happens after anything changed: start what can start, publish, and end the loop once a stop
 * has no worker left to wait for. */
static void manager_step(Manager *m)
{
        reconcile_tick(m);
        jobs_dispatch(m);
        status_publish(m);
        if (!m->stopping)
                return;
        /* running jobs were told to stop; one that does not within the grace time is abandoned by
         * jobs_dispatch (n_running excludes it); the replay and reconcile threads get the same time */
        bool waiting = m->n_running > 0 || m->replay_running || m->reconcile_running || m->metrics_running;
        if (!waiting)
                (void)sd_event_exit(m->event, 0);
        else if (evd_clock_monotonic_us() - m->stop_usec > EVD_MANAGER_STOP_GRACE_USEC + 1000000) {
                log_error("still busy %llu s after the stop request: stopping without waiting",
                          (unsigned long long)((evd_clock_monotonic_us() - m->stop_usec) / 1000000));
                m->left_behind = true;
                (void)sd_event_exit(m->event, 0);
        }
}

static int on_mailbox(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Manager *m = userdata;
        manager_dispatch(m);
        manager_step(m);
        return 0;
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata)
{
        Manager *m = userdata;
        spool_tick(m);
        metrics_tick(m);
        manager_step(m);
        sd_event_source_set_time(s, usec + 1000000);
        sd_event_source_set_enabled(s, SD_EVENT_ONESHOT); /* a time source disables itself after firing */
        return 0;
}

/* ---- signals ------------------------------------------------------------------------------------- */

static int on_signal_stop(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        Manager *m = userdata;
        if (m->stopping) {
                log_warn("received %s again: stopping now without waiting for %u docking(s)",
                         strsignal((int)si->ssi_signo), jobs_alive(m));
                m->left_behind = true;
                return sd_event_exit(m->event, 0);
        }
        m->stopping = true;
        m->stop_usec = evd_clock_monotonic_us();
        unsigned n = jobs_alive(m);
        log_info("received %s: %s", strsignal((int)si->ssi_signo),
                 n ? "each docking stops after its current file, then evidockd stops" : "stopping");
        sd_notify(0, "STOPPING=1");
        jobs_cancel_all(m, JOB_CANCEL_STOP);
        manager_step(m);
        return 0;
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
                /* store root and watch dirs take effect at restart; the rest for the next dockings */
                m->cfg.late_after_us = cfg.late_after_us;
                m->cfg.max_file_bytes = cfg.max_file_bytes;
                m->cfg.store_reserve_bytes = cfg.store_reserve_bytes;
                m->cfg.archive_copy = cfg.archive_copy;
                m->cfg.media_timeout_us = cfg.media_timeout_us;
                m->cfg.docking_deadline_us = cfg.docking_deadline_us;
                m->cfg.usb_max_concurrent = cfg.usb_max_concurrent;
                evd_config_clear(&cfg);
                log_info("configuration %s reloaded", m->config_path);
        }
        sd_notify(0, "READY=1");
        return 0;
}

/* ---- life cycle ---------------------------------------------------------------------------------- */

int manager_new(const char *config_path, Manager **ret, EvdError *err)
{
        _cleanup_(manager_freep) Manager *m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->inotify_fd = -1;
        int r = mailbox_init(&m->mailbox);
        if (r < 0)
                return evd_error_set_errno(err, r, "cannot create the event queue");
        m->config_required = config_path != NULL;
        m->config_path = strdup(config_path ? config_path : EVD_DEFAULT_CONFIG_FILE);
        if (!m->config_path)
                return -ENOMEM;
        r = load_config(m, &m->cfg, err);
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
                m->status.spool_backlog = backlog;
        }
        m->reconcile_pending = true; /* after READY, once nothing is being ingested (see reconcile_tick) */
        m->status.started_us = evd_clock_wall_us();
        *ret = steal_ptr(&m);
        return 0;
}

void manager_free(Manager *m)
{
        if (!m)
                return;
        if (m->left_behind || jobs_alive(m) > 0)
                return; /* a thread that did not stop still uses the Manager: leave it all to the exit */
        disc_runner_stop(m->disc);
        m->disc = NULL;
        usb_stop(m);
        spool_join(m);
        reconcile_join(m);
        metrics_join(m);
        mailbox_done(&m->mailbox); /* before libusb_exit: messages may hold devices */
        while (m->jobs) {
                Job *j = m->jobs;
                m->jobs = j->next;
                job_free(j);
        }
        usb_free(m);
        evd_spool_free(m->spool);
        watch_stop(m);
        evd_store_free(m->store);
        evd_config_clear(&m->cfg);
        free(m->config_path);
        free(m->metrics_db_url);
        sd_event_unref(m->event);
        free(m);
}

/* A disc drive's worker thread: its state goes to the loop like every other thread's news. */
static void disc_report(unsigned drive, const EvdStatusDisc *st, void *userdata)
{
        Manager *m = userdata;
        Msg *msg = msg_new(MSG_DISC_STATUS);
        if (!msg)
                return; /* the next report (about a second later) will do */
        msg->disc_drive = drive;
        msg->disc = *st;
        mailbox_post(&m->mailbox, msg);
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

        r = sd_event_add_io(m->event, NULL, m->mailbox.fd, EPOLLIN, on_mailbox, m);
        if (r < 0)
                return r;
        r = watch_start(m);
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
        manager_dispatch(m); /* recorders already docked (hotplug enumeration) */
        manager_step(m);
        char db_shown[256];
        mask_password(m->cfg.database_url, db_shown, sizeof(db_shown));
        log_msg(LOG_INFO, "evidockd ready: store %s, database %s, %u watch dir(s)", m->cfg.store_root,
                db_shown, m->cfg.n_watch_dirs);
        log_started();
        sd_notify(0, "READY=1");
        if (disc_runner_start(&m->cfg, disc_report, m, &m->disc) < 0)
                log_error("cannot start the disc workers: out of memory");
        r = sd_event_loop(m->event);
        disc_runner_stop(m->disc);
        m->disc = NULL;
        usb_stop(m);
        if (!m->left_behind) {
                spool_join(m);
                reconcile_join(m);
                metrics_join(m);
        }
        manager_dispatch(m); /* workers that finished meanwhile */
        jobs_join(m, false);
        return r;
}
