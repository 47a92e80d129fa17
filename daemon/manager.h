/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon's one Manager: the event loop, the sources that appear (watched directories, USB
 * recorders), a bounded job queue and the worker threads that run the library's ingest. */
#pragma once

#include "config.h"
#include "error.h"

/* pending jobs; more are refused with a log line */
#define EVD_MANAGER_MAX_QUEUE 64u
/* a docking that stopped on an error is retried after this long ... */
#define EVD_MANAGER_RETRY_USEC (30ULL * 1000000ULL)
/* ... this many times, then it waits for a re-docking */
#define EVD_MANAGER_MAX_RETRIES 10u
/* a volume directory created in place may still fill: it is taken after this long */
#define EVD_MANAGER_SETTLE_USEC (3ULL * 1000000ULL)

typedef struct Manager Manager;

/* config_path NULL: the compiled default, which may be missing (then the defaults apply); a named file
 * must exist. */
int manager_new(const char *config_path, Manager **ret, EvdError *err);
void manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* Starts watching, scans what is already present, tells systemd READY=1 and runs until SIGTERM/SIGINT.
 * Returns 0 on a clean stop. */
int manager_run(Manager *m);
