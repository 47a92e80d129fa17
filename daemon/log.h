/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Daemon logging: to journald with structured fields when running under systemd, else to stderr.
 * Audit-relevant events carry a stable MESSAGE_ID (docs/journal.md); every MESSAGE_ID has an entry in
 * the journal's message catalog (systemd/evidock.catalog; docs/check-docs.sh holds them together). */
#pragma once

#include <stdarg.h>
#include <stdint.h>
#include <syslog.h>

#include "ingest.h"
#include "macro.h"

/* Stable MESSAGE_IDs of non-finding events. */
#define EVD_MID_DOCKED           "6f1c2a9e3d8b4c57a0e1f2d3c4b5a700"
#define EVD_MID_REFUSED          "6f1c2a9e3d8b4c57a0e1f2d3c4b5a701"
#define EVD_MID_FILE_DONE        "6f1c2a9e3d8b4c57a0e1f2d3c4b5a702"
#define EVD_MID_FILE_FAIL        "6f1c2a9e3d8b4c57a0e1f2d3c4b5a703"
#define EVD_MID_DOCKING_END      "6f1c2a9e3d8b4c57a0e1f2d3c4b5a704"
#define EVD_MID_STARTED          "6f1c2a9e3d8b4c57a0e1f2d3c4b5a705"
#define EVD_MID_FILE_LATE        "6f1c2a9e3d8b4c57a0e1f2d3c4b5a706"
#define EVD_MID_DOCKING_DEADLINE "6f1c2a9e3d8b4c57a0e1f2d3c4b5a707"
#define EVD_MID_DOCKING_STUCK    "6f1c2a9e3d8b4c57a0e1f2d3c4b5a708"
#define EVD_MID_DOCKING_STOPPED  "6f1c2a9e3d8b4c57a0e1f2d3c4b5a709"
#define EVD_MID_DAILY_SUMMARY    "6f1c2a9e3d8b4c57a0e1f2d3c4b5a70a"

/* What a line is about: each set member becomes a journal field (EVIDOCK_SOURCE, EVIDOCK_DEVICE,
 * EVIDOCK_OFFICER, EVIDOCK_DOCKING, EVIDOCK_FILE, EVIDOCK_VERDICT, EVIDOCK_DAY). */
typedef struct LogContext {
        const char *source; /* volume directory or USB port */
        const char *device; /* NULL or "": not identified yet */
        const char *officer;
        int64_t docking_id; /* 0: none (not begun, or offline) */
        const char *file;
        const char *verdict;
        const char *day; /* the daily summary: "YYYY-MM-DD" */
} LogContext;

void log_open(void);
void log_msg(int prio, const char *fmt, ...) _printf_(2, 3);
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* A line about a docking (or a file of it); message_id may be NULL. */
void log_context(int prio, const char *message_id, const LogContext *ctx, const char *fmt, ...)
    _printf_(4, 5);

/* Logs one ingest event (from any thread) with structured fields. */
void log_ingest_event(const EvdIngestEvent *ev, const char *source);

/* When a line at LOG_ERR or worse was last logged (µs since the epoch; 0: none since start). Any thread. */
int64_t log_last_error_us(void);

/* "evidockd VERSION started", with its MESSAGE_ID. */
void log_started(void);
