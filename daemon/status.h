/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidockd publishes what it is doing in a small JSON file (replaced atomically, at most once a second);
 * `evidockctl status` prints it. No IPC server to secure: the file is readable by the evidock group. */
#pragma once

#include <stdint.h>
#include <stdio.h>

#define EVD_STATUS_MAX_JOBS 32u

typedef struct EvdStatusJob {
        char source[160];   /* "usb 1-2" or a directory */
        char device_id[16]; /* "" until identified */
        char officer_id[16];
        int64_t docking_id; /* 0 until the docking row exists (or offline) */
        char state[16];     /* "queued", "identifying", "identified", "copying", "archiving", "stopping",
                             * "abandoned", "done", "refused", "failed", "deadline" */
        char file[160];     /* current file (escaped) */
        uint64_t file_done, file_total;
        int64_t file_started_us; /* when the current file began: MB/s and ETA */
        unsigned file_index;     /* the current file is file_index of files_total */
        unsigned files_done, files_total;
        int64_t clock_offset_us;
        int has_clock_offset;
        char last_error[200];
} EvdStatusJob;

/* A burn-to-disc drive of evidockd (daemon/disc-runner.h) and the disc job it is working on. */
#define EVD_STATUS_MAX_DISCS 8u
typedef struct EvdStatusDisc {
        char drive[128];      /* the [disc] drives address: /dev/srN, stdio:FILE, dir:DIR */
        int64_t job_id;       /* 0: the drive is idle (or waits for a blank, see last) */
        char stage[16];       /* "building" (the bag and its image), "burning", "verifying" (read-back) */
        unsigned disc, discs; /* disc n of the job's m (a job that does not fit spans several) */
        unsigned copy, copies;
        uint64_t done, total; /* bytes of this stage; total 0: not known yet */
        double percent;
        double mbps;        /* MB/s (10^6 bytes) so far in this stage */
        double eta_s;       /* seconds left in this stage; < 0: not known */
        int64_t updated_us; /* when the drive last reported */
        char last[200];     /* the drive's last outcome or wait ("disc job 3: all 1 disc(s) ..."); "" none */
} EvdStatusDisc;

typedef struct EvdStatus {
        int64_t started_us;
        int64_t updated_us;
        unsigned n_jobs;
        EvdStatusJob jobs[EVD_STATUS_MAX_JOBS];
        uint64_t store_free_bytes;
        uint64_t store_reserve_bytes;
        uint64_t store_promised_bytes; /* promised to copies in progress, not yet written (store.h) */
        int store_paused;              /* free minus promised is below the reserve: no new files taken */
        unsigned spool_backlog;        /* spool entries waiting for the database (one per file, plus one per
                                        * docking start, end and docking-level finding): docs/spool.md */
        int database_ok;
        char database_error[300]; /* "" or why the database refused evidock: a configuration error
                                   * (refused login), not an outage */
        char last_error[200];
        uint64_t files_ingested; /* since start */
        unsigned n_discs;        /* burn-to-disc drives, in [disc] drives order */
        EvdStatusDisc discs[EVD_STATUS_MAX_DISCS];
} EvdStatus;

/* A stale status file (evidockd rewrites it every second): older than this, evidockctl says so. */
#define EVD_STATUS_STALE_US (10LL * 1000000)

/* The status file: $EVIDOCK_STATUS_FILE or /run/evidock/status.json. */
const char *evd_status_path(void);

/* Writes st atomically (temp + rename). */
int evd_status_write(const EvdStatus *st);
