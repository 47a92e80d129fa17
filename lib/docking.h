/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One docking as evidockd and `evidockctl ingest` both run it:
 *
 *   connect to the database (conninfo)  --unreachable, with a spool-->  the docking runs offline
 *                                        --login refused: an error, or offline if spool_if_refused
 *   replay what the spool holds          (earlier dockings reach the database before this one; none
 *                                        when the spool directory does not exist yet)
 *   ingest                               evd_ingest_run(), ingest.h
 *
 * on_start (may be NULL) is called once, before the ingest, with what connecting and replaying did, for
 * the caller's log and status; it gets opts->userdata. */
#pragma once

#include <stdbool.h>

#include "ingest.h"
#include "spool.h"

typedef struct EvdDockingStart {
        bool database_ok;  /* connected */
        int connect_error; /* < 0: why not */
        const EvdError *connect_err;
        bool login_refused; /* the server refused the login (evd_db_login_refused()): configuration */
        bool offline;       /* unreachable (or refused, spool_if_refused), with a spool: it goes there */
        bool replayed;      /* a spool replay ran */
        int replay_error;   /* < 0: it stopped early (-EBUSY: another replay is running) */
        const EvdError *replay_err;
        EvdSpoolReplay replay; /* what it did */
} EvdDockingStart;

typedef void (*EvdDockingStartFn)(const EvdDockingStart *start, void *userdata);

/* Runs one docking of src into store (opts->spool_dir: the spool, NULL: none). A login the database
 * refuses (a configuration error, not an outage) ends the docking with that error, unless spool_if_refused
 * (evidockd: the evidence is kept in the store and the spool until the login works; the caller must say
 * loudly why). Returns what
 * evd_ingest_run() returns; when the database cannot be opened and the docking cannot go offline, that
 * error (on_start has been called with it). *ret as evd_ingest_run(). */
int evd_docking_run(EvdSource *src, EvdStore *store, const char *conninfo, const EvdIngestOptions *opts,
                    bool spool_if_refused, EvdDockingStartFn on_start, EvdIngestSummary *ret, EvdError *err);
