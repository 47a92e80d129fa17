/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Daemon logging: to journald with structured fields when running under systemd, else to stderr.
 * Audit-relevant events carry a stable MESSAGE_ID (see docs/verdicts.md and docs/journal.md). */
#pragma once

#include <stdarg.h>
#include <syslog.h>

#include "ingest.h"
#include "macro.h"

/* Stable MESSAGE_IDs of non-finding events. */
#define EVD_MID_DOCKED      "6f1c2a9e3d8b4c57a0e1f2d3c4b5a700"
#define EVD_MID_REFUSED     "6f1c2a9e3d8b4c57a0e1f2d3c4b5a701"
#define EVD_MID_FILE_DONE   "6f1c2a9e3d8b4c57a0e1f2d3c4b5a702"
#define EVD_MID_FILE_FAIL   "6f1c2a9e3d8b4c57a0e1f2d3c4b5a703"
#define EVD_MID_DOCKING_END "6f1c2a9e3d8b4c57a0e1f2d3c4b5a704"
#define EVD_MID_STARTED     "6f1c2a9e3d8b4c57a0e1f2d3c4b5a705"

void log_open(void);
void log_msg(int prio, const char *fmt, ...) _printf_(2, 3);
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* Logs one ingest event (from any thread) with structured fields. */
void log_ingest_event(const EvdIngestEvent *ev, const char *source);

/* "evidockd VERSION started", with its MESSAGE_ID. */
void log_started(void);
