/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Burn-to-disc jobs: queueing (with the plan of which recording goes on which disc of a set) and running
 * one step of a job on one drive. docs/disc-format.md describes what a disc holds.
 *
 * A job's state lives in the database (append-only events: queued, waiting_media, burning, verifying,
 * done, failed, cancelled), so a job survives restarts: a step always starts from what the database
 * says is still missing (the lowest disc of the set that has fewer verified copies than asked for), so a
 * job killed between discs resumes without a duplicate or a gap. One worker holds a job at a time (a
 * session advisory lock that dies with its connection).
 *
 * Drives are xorriso addresses:
 *   /dev/srN          an optical drive: only a blank disc is written (never blanked or appended to)
 *   stdio:/path.iso   a pseudo-drive backed by a file: "blank" when the file is absent or empty
 *   dir:/path         a disc robot's hot folder: each disc is written as /path/<label>-c<copy>.iso
 *                     (as .<name>.part until it is verified, then renamed) */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "db-disc.h"
#include "disc-xorriso.h"
#include "error.h"

#define EVD_DISC_MEDIA_DEFAULT  "bd25"
#define EVD_DISC_COPIES_DEFAULT 2u
#define EVD_DISC_RESERVE_DISC   (2u << 20)  /* per disc: ISO structures, padding, README, index, keys */
#define EVD_DISC_RESERVE_FILE   (24u << 10) /* per recording: directory records, record JSON, chain files */
#define EVD_DISC_FAILURES_MAX   5u          /* failed discs of one job before it is given up */

/* Media sizes: "cd" (700 MB), "dvd" (4.7 GB), "dvd-dl", "bd25", "bd50", "bd100" (BD-XL), or a size in
 * bytes with an optional K/M/G suffix (binary), at least 1 MiB, e.g. "8M" (tests, special media).
 * ret_name gets the canonical name (16 bytes + NUL). */
int evd_disc_media_parse(const char *s, char ret_name[17], uint64_t *ret_bytes, EvdError *err);

/* Splits recordings (each unit = a recording with its archive copy and its share of metadata, sizes in
 * bytes) over discs of media_bytes, in order, never splitting a unit: ret_part[i] is the disc (1..)
 * of unit i. -EFBIG (naming the unit) if one unit does not fit on an empty disc. */
int evd_disc_plan(const uint64_t *unit_bytes, size_t n, uint64_t media_bytes, unsigned *ret_part,
                  unsigned *ret_parts, size_t *ret_too_big, EvdError *err);

typedef struct EvdDiscJobSpec {
        EvdDbDiscSelector select;
        const char *media;        /* NULL: EVD_DISC_MEDIA_DEFAULT */
        unsigned copies;          /* 0: EVD_DISC_COPIES_DEFAULT */
        const char *requested_by; /* required: who asked ("admin:alice", "mark:<id>") */
        const char *reason;       /* may be NULL: e.g. the long-term mark's reason */
        const char *store_root;   /* the store, to size archive copies; NULL: estimated */
} EvdDiscJobSpec;

/* Queues a job: selects the recordings, plans the discs, records job + plan + 'queued' + custody event.
 * Returns 0 and *ret_job_id. -ENOENT nothing selected, -EFBIG a recording does not fit the media. Called
 * by `evidockctl disc queue` and automatically when a long-term mark is set. */
int evd_disc_job_queue(EvdDb *db, const EvdDiscJobSpec *spec, int64_t *ret_job_id, EvdError *err);

/* Cancels a queued or waiting job (-EALREADY if it has ended). A job being burned stops after the disc
 * in progress. */
int evd_disc_job_cancel(EvdDb *db, int64_t job_id, const char *by, const char *reason, EvdError *err);

typedef struct EvdDiscProgress {
        const char *phase; /* "building", "burning", "verifying" */
        int64_t job_id;
        unsigned part, parts, copy, copies; /* disc part of parts, copy of copies */
        uint64_t done, total;               /* bytes */
        double percent;
        double mbps;  /* MB/s (10^6 bytes) so far in this phase */
        double eta_s; /* seconds left, < 0 unknown */
} EvdDiscProgress;

typedef struct EvdDiscRunner {
        EvdDb *db;
        const char *store_root; /* absolute */
        const char *work_dir;   /* absolute; staging bags are made (and removed) below it */
        const char *drive;      /* see above */
        const char *who;        /* recorded as by_whom: "evidockd", "evidockctl:user" */
        EvdXorrisoRun xorriso;  /* program, cancel, timeout; its line callback is not used */
        void (*progress)(const EvdDiscProgress *p, void *userdata); /* may be NULL; throttled to ~1/s */
        void *userdata;
        unsigned max_failures; /* 0: EVD_DISC_FAILURES_MAX */
        /* Where the step's facts (state events, the disc burned) are recorded: evidockd's record stage
         * (record.h: the database, or the spool while it is unreachable, so that a disc burned and
         * verified during an outage is not lost); NULL: straight into db (evidockctl disc run). Both go
         * through evd_record_entry_apply(). */
        struct EvdRecordStage *record;
} EvdDiscRunner;

typedef enum EvdDiscStep {
        EVD_DISC_STEP_IDLE = 0,    /* no runnable job */
        EVD_DISC_STEP_NO_MEDIA,    /* a job waits for a blank in this drive (message says why) */
        EVD_DISC_STEP_VERIFIED,    /* one disc burned and verified */
        EVD_DISC_STEP_DISC_FAILED, /* one disc burned and failed (recorded); the job wants a new blank */
        EVD_DISC_STEP_JOB_DONE,
        EVD_DISC_STEP_JOB_FAILED,
} EvdDiscStep;

const char *evd_disc_step_to_string(EvdDiscStep s);

/* Runs one step of a job on the runner's drive: job_id 0 takes the oldest runnable job. Outcomes (a
 * failed disc, a job given up, no blank) are data: *ret_step and a one-line message in msg. Errors are
 * what stopped the step itself (database lost, xorriso not installed, cancelled): the job then stays
 * where it was and is resumed later. Once the disc is burned the step needs no database: its outcome is
 * recorded through runner->record (spooled if the database went away meanwhile). -EAGAIN: facts of
 * disc jobs still wait in the runner's spool, so the database does not know where its jobs are; try
 * again after the spool's replay. */
int evd_disc_run_step(const EvdDiscRunner *runner, int64_t job_id, EvdDiscStep *ret_step, char *msg,
                      size_t msg_size, EvdError *err);

typedef struct EvdDiscCheckResult {
        const char *outcome; /* "ok", "mismatch", "unknown_disc", "unreadable" */
        char label[72];
        int64_t part_id;
        int64_t job_id;
        unsigned part, parts;
        unsigned files_checked, files_bad;
        char image_sha256[EVD_DB_HEX_SIZE];
        bool image_matches; /* equals the image SHA-256 recorded when it was burned */
        char detail[600];
} EvdDiscCheckResult;

/* `evidockctl disc verify`: reads back a disc or image inserted later (drive address or image path),
 * finds its part by the label in its bag-info.txt, compares everything with the database and records
 * the check (a row + custody event "disc_checked"). The outcome is data in *ret. */
int evd_disc_check(EvdDb *db, const char *drive, const EvdXorrisoRun *xorriso, const char *by,
                   EvdDiscCheckResult *ret, EvdError *err);
