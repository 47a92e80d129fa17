/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <systemd/sd-journal.h>

#include "clock.h"
#include "evd-config.h"
#include "log.h"
#include "text.h"

static bool use_journal;
static bool stderr_fields; /* EVIDOCK_LOG_FIELDS: the structured fields on stderr too */
static int max_prio = LOG_INFO;
static pthread_mutex_t stderr_lock = PTHREAD_MUTEX_INITIALIZER;

void log_open(void)
{
        /* Under systemd stderr is connected to the journal (JOURNAL_STREAM): send structured entries. */
        struct stat st;
        use_journal = getenv("JOURNAL_STREAM") && stat("/run/systemd/journal/socket", &st) == 0;
        stderr_fields = getenv("EVIDOCK_LOG_FIELDS") != NULL;
        if (getenv("EVIDOCK_DEBUG"))
                max_prio = LOG_DEBUG;
}

#define MAX_FIELDS 10

typedef struct Fields {
        char buf[MAX_FIELDS][1100];
        unsigned n;
} Fields;

static void field_add(Fields *f, const char *name, const char *value)
{
        if (!value || !*value || f->n >= MAX_FIELDS)
                return;
        snprintf(f->buf[f->n++], sizeof(f->buf[0]), "%s=%s", name, value);
}

static _Atomic int64_t last_error_us;

int64_t log_last_error_us(void)
{
        return last_error_us;
}

static void vlog_context(int prio, const char *message_id, const LogContext *ctx, const char *fmt,
                         va_list ap)
{
        if (prio <= LOG_ERR) {
                last_error_us = evd_clock_wall_us();
        }
        if (prio > max_prio)
                return;
        char raw[1024], msg[1024], shown_file[512], shown_source[512];
        vsnprintf(raw, sizeof(raw), fmt, ap);
        /* recorder text (file names, case numbers, messages quoting them) is data: no control, C1 or bidi
         * character reaches a terminal or the journal as itself */
        evd_text_escape(raw, msg, sizeof(msg), 0);
        static const LogContext none = {};
        if (!ctx)
                ctx = &none;
        Fields *f = malloc(sizeof(*f));
        if (!f)
                return;
        f->n = 0;
        char docking[24] = "";
        if (ctx->docking_id > 0)
                snprintf(docking, sizeof(docking), "%" PRId64, ctx->docking_id);
        field_add(f, "MESSAGE_ID", message_id);
        field_add(f, "EVIDOCK_SOURCE",
                  ctx->source ? evd_text_escape(ctx->source, shown_source, sizeof(shown_source), 0) : NULL);
        field_add(f, "EVIDOCK_DEVICE", ctx->device);
        field_add(f, "EVIDOCK_OFFICER", ctx->officer);
        field_add(f, "EVIDOCK_DOCKING", docking);
        field_add(f, "EVIDOCK_FILE",
                  ctx->file ? evd_text_escape(ctx->file, shown_file, sizeof(shown_file), 0) : NULL);
        field_add(f, "EVIDOCK_VERDICT", ctx->verdict);
        field_add(f, "EVIDOCK_DAY", ctx->day);
        if (use_journal) {
                char m[1100], p[16];
                snprintf(m, sizeof(m), "MESSAGE=%s", msg);
                snprintf(p, sizeof(p), "PRIORITY=%d", prio);
                struct iovec iov[MAX_FIELDS + 3];
                unsigned n = 0;
                iov[n++] = (struct iovec){m, strlen(m)};
                iov[n++] = (struct iovec){p, strlen(p)};
                iov[n++] = (struct iovec){(char *)"SYSLOG_IDENTIFIER=evidockd",
                                          strlen("SYSLOG_IDENTIFIER=evidockd")};
                for (unsigned i = 0; i < f->n; i++)
                        iov[n++] = (struct iovec){f->buf[i], strlen(f->buf[i])};
                sd_journal_sendv(iov, (int)n);
                free(f);
                return;
        }
        static const char *const names[] = {"emerg",   "alert",  "crit", "error",
                                            "warning", "notice", "info", "debug"};
        pthread_mutex_lock(&stderr_lock);
        fprintf(stderr, "evidockd[%s]: %s", names[prio & 7], msg);
        for (unsigned i = 0; i < f->n; i++)
                if (stderr_fields || strncmp(f->buf[i], "MESSAGE_ID=", 11) == 0)
                        fprintf(stderr, "  %s", f->buf[i]);
        fputc('\n', stderr);
        pthread_mutex_unlock(&stderr_lock);
        free(f);
}

void log_msg(int prio, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vlog_context(prio, NULL, NULL, fmt, ap);
        va_end(ap);
}

void log_context(int prio, const char *message_id, const LogContext *ctx, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vlog_context(prio, message_id, ctx, fmt, ap);
        va_end(ap);
}

void log_started(void)
{
        log_context(LOG_INFO, EVD_MID_STARTED, NULL, "evidockd %s started", EVD_VERSION);
}

void log_ingest_event(const EvdIngestEvent *ev, const char *source)
{
        LogContext c = {.source = source,
                        .device = ev->device_id,
                        .officer = ev->officer_id,
                        .docking_id = ev->docking_id,
                        .file = ev->path};
        char mid[33];
        switch (ev->kind) {
        case EVD_INGEST_DOCKED:
                log_context(LOG_INFO, EVD_MID_DOCKED, &c, "%s: %s", source, ev->message);
                break;
        case EVD_INGEST_IDENTIFIED:
                log_context(LOG_INFO, NULL, &c, "%s: %s", source, ev->message);
                break;
        case EVD_INGEST_REFUSED:
                c.device = NULL; /* not an enrolled ID (the one presented is in the message) */
                c.verdict = "NOT_ENROLLED";
                log_context(LOG_WARNING, EVD_MID_REFUSED, &c, "%s: %s", source, ev->message);
                break;
        case EVD_INGEST_FINDING:
                evd_verdict_message_id(ev->verdict, mid);
                c.verdict = evd_verdict_to_string(ev->verdict);
                log_context(LOG_WARNING, mid, &c, "%s: finding %s%s%s: %s%s%s%s%s", source, c.verdict,
                            ev->path ? " on " : "", ev->path ? ev->path : "", ev->message,
                            ev->expected ? "; expected " : "", ev->expected ? ev->expected : "",
                            ev->found ? "; found " : "", ev->found ? ev->found : "");
                break;
        case EVD_INGEST_FILE_DONE:
                c.verdict = evd_verdict_to_string(ev->verdict);
                log_context(LOG_INFO, EVD_MID_FILE_DONE, &c, "%s: stored %s seq %" PRIu64 " as %s%s%s: %s%s",
                            source, ev->path, ev->seq, ev->original_path, ev->archive_path ? " + " : "",
                            ev->archive_path ? ev->archive_path : "", c.verdict,
                            ev->late ? " (LATE: outside the 24-hour window)" : "");
                if (ev->late)
                        log_context(LOG_WARNING, EVD_MID_FILE_LATE, &c,
                                    "%s: LATE: %s seq %" PRIu64
                                    " was stored outside the window the rules allow "
                                    "after its recording ended",
                                    source, ev->path, ev->seq);
                break;
        case EVD_INGEST_FILE_SKIPPED:
                log_context(LOG_DEBUG, NULL, &c, "%s: %s already ingested", source, ev->path);
                break;
        case EVD_INGEST_FILE_FAILED:
                log_context(LOG_ERR, EVD_MID_FILE_FAIL, &c, "%s: %s not ingested now: %s", source,
                            strna(ev->path), ev->message);
                break;
        case EVD_INGEST_DONE:
                log_context(LOG_INFO, EVD_MID_DOCKING_END, &c, "%s: %s", source, ev->message);
                break;
        case EVD_INGEST_FILE_BEGIN:
        case EVD_INGEST_FILE_PROGRESS:
        case EVD_INGEST_FILE_ARCHIVING:
                break;
        }
}
