/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>

#include <systemd/sd-journal.h>

#include "evd-config.h"
#include "log.h"
#include "text.h"

static bool use_journal;
static int max_prio = LOG_INFO;
static pthread_mutex_t stderr_lock = PTHREAD_MUTEX_INITIALIZER;

void log_open(void)
{
        /* Under systemd stderr is connected to the journal (JOURNAL_STREAM): send structured entries. */
        struct stat st;
        use_journal = getenv("JOURNAL_STREAM") && stat("/run/systemd/journal/socket", &st) == 0;
        if (getenv("EVIDOCK_DEBUG"))
                max_prio = LOG_DEBUG;
}

static void vlog_fields(int prio, const char *message_id, const char *device, const char *path,
                        const char *verdict, const char *fmt, va_list ap)
{
        if (prio > max_prio)
                return;
        char raw[1024], msg[1024], shown_path[512];
        vsnprintf(raw, sizeof(raw), fmt, ap);
        /* recorder text (file names, case numbers, messages quoting them) is data: no control, C1 or bidi
         * character reaches a terminal or the journal as itself */
        evd_text_escape(raw, msg, sizeof(msg), 0);
        if (path)
                path = evd_text_escape(path, shown_path, sizeof(shown_path), 0);
        if (use_journal) {
                sd_journal_send(
                    "MESSAGE=%s", msg, "PRIORITY=%d", prio, "SYSLOG_IDENTIFIER=evidockd",
                    message_id ? "MESSAGE_ID=%s" : "EVIDOCK_NONE=%s", message_id ? message_id : "",
                    device ? "EVIDOCK_DEVICE=%s" : "EVIDOCK_NONE=%s", device ? device : "",
                    path ? "EVIDOCK_FILE=%s" : "EVIDOCK_NONE=%s", path ? path : "",
                    verdict ? "EVIDOCK_VERDICT=%s" : "EVIDOCK_NONE=%s", verdict ? verdict : "", NULL);
                return;
        }
        static const char *const names[] = {"emerg",   "alert",  "crit", "error",
                                            "warning", "notice", "info", "debug"};
        pthread_mutex_lock(&stderr_lock);
        fprintf(stderr, "evidockd[%s]: %s%s%s\n", names[prio & 7], msg, message_id ? "  MESSAGE_ID=" : "",
                message_id ? message_id : "");
        pthread_mutex_unlock(&stderr_lock);
}

void log_msg(int prio, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vlog_fields(prio, NULL, NULL, NULL, NULL, fmt, ap);
        va_end(ap);
}

static void log_fields(int prio, const char *mid, const char *device, const char *path, const char *verdict,
                       const char *fmt, ...) _printf_(6, 7);
static void log_fields(int prio, const char *mid, const char *device, const char *path, const char *verdict,
                       const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vlog_fields(prio, mid, device, path, verdict, fmt, ap);
        va_end(ap);
}

void log_started(void)
{
        log_fields(LOG_INFO, EVD_MID_STARTED, NULL, NULL, NULL, "evidockd %s started", EVD_VERSION);
}

void log_ingest_event(const EvdIngestEvent *ev, const char *source)
{
        const char *dev = ev->device_id;
        char mid[33];
        switch (ev->kind) {
        case EVD_INGEST_DOCKED:
                log_fields(LOG_INFO, EVD_MID_DOCKED, dev, NULL, NULL, "%s: %s", source, ev->message);
                break;
        case EVD_INGEST_IDENTIFIED:
                log_fields(LOG_INFO, NULL, dev, NULL, NULL, "%s: %s", source, ev->message);
                break;
        case EVD_INGEST_REFUSED:
                log_fields(LOG_WARNING, EVD_MID_REFUSED, dev, NULL, "NOT_ENROLLED", "%s: %s", source,
                           ev->message);
                break;
        case EVD_INGEST_FINDING:
                evd_verdict_message_id(ev->verdict, mid);
                log_fields(ev->verdict == EVD_VERDICT_DELETION_LOGGED ? LOG_NOTICE : LOG_WARNING, mid, dev,
                           ev->path, evd_verdict_to_string(ev->verdict), "%s: finding %s%s%s: %s%s%s%s%s",
                           source, evd_verdict_to_string(ev->verdict), ev->path ? " on " : "",
                           ev->path ? ev->path : "", ev->message, ev->expected ? "; expected " : "",
                           ev->expected ? ev->expected : "", ev->found ? "; found " : "",
                           ev->found ? ev->found : "");
                break;
        case EVD_INGEST_FILE_DONE:
                log_fields(LOG_INFO, EVD_MID_FILE_DONE, dev, ev->path, evd_verdict_to_string(ev->verdict),
                           "%s: stored %s seq %" PRIu64 " as %s%s%s: %s%s", source, ev->path, ev->seq,
                           ev->original_path, ev->archive_path ? " + " : "",
                           ev->archive_path ? ev->archive_path : "", evd_verdict_to_string(ev->verdict),
                           ev->late ? " (LATE: outside the 24-hour window)" : "");
                break;
        case EVD_INGEST_FILE_SKIPPED:
                log_fields(LOG_DEBUG, NULL, dev, ev->path, NULL, "%s: %s already ingested", source,
                           ev->path);
                break;
        case EVD_INGEST_FILE_FAILED:
                log_fields(LOG_ERR, EVD_MID_FILE_FAIL, dev, ev->path, NULL, "%s: %s not ingested now: %s",
                           source, strna(ev->path), ev->message);
                break;
        case EVD_INGEST_DONE:
                log_fields(LOG_INFO, EVD_MID_DOCKING_END, dev, NULL, NULL, "%s: %s", source, ev->message);
                break;
        case EVD_INGEST_FILE_BEGIN:
        case EVD_INGEST_FILE_PROGRESS:
                break;
        }
}
