/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One docking, end to end: source -> copy+hash (one read) -> verify -> archive -> record.
 *
 * The same code runs in `evidockctl ingest` (foreground) and in evidockd (one job per recorder).
 * It knows nothing of configuration files, event loops or logging: the caller passes options and
 * receives events (for journald, progress bars, status). */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "error.h"
#include "source.h"
#include "spool.h"
#include "store.h"
#include "types.h"

#define EVD_INGEST_DEVICE_FILE     "EVIDOCK/DEVICE.TXT"
#define EVD_INGEST_MANIFEST_FILE   "EVIDOCK/CHAIN.LOG"
#define EVD_INGEST_DEVICE_FILE_MAX (64u * 1024u)
/* Docking-level findings of one verdict stored per docking; the rest are counted, and the count is stored
 * as one more finding of that verdict ("N more ... counted, not stored"). Per-file findings are bounded
 * per file (16 of evidock's own, 16 of the chain's). */
#define EVD_INGEST_FINDINGS_PER_KIND 100u

typedef enum EvdIngestEventKind {
        EVD_INGEST_DOCKED,         /* a source is being looked at */
        EVD_INGEST_IDENTIFIED,     /* device_id/officer_id known and enrolled */
        EVD_INGEST_REFUSED,        /* not enrolled / not identifiable: nothing is taken */
        EVD_INGEST_FINDING,        /* a verification finding (docking-level or per file) */
        EVD_INGEST_FILE_BEGIN,     /* copying starts (total = expected size) */
        EVD_INGEST_FILE_PROGRESS,  /* bytes done of total, at most every 1 MiB */
        EVD_INGEST_FILE_ARCHIVING, /* the archive copy: bytes of the original remuxed (done) of its size
                                    * (total), at most every 1 MiB, first with done 0 */
        EVD_INGEST_FILE_DONE,      /* stored, archived, recorded; verdict set */
        EVD_INGEST_FILE_SKIPPED,   /* ingested at an earlier docking */
        EVD_INGEST_FILE_FAILED,    /* could not be ingested now (error set); will be retried next docking */
        EVD_INGEST_DONE,           /* the docking is finished (summary in the return value) */
} EvdIngestEventKind;

typedef struct EvdIngestEvent {
        EvdIngestEventKind kind;
        int64_t docking_id;
        const char *device_id;  /* may be NULL before identification */
        const char *officer_id; /* may be NULL */
        const char *path;       /* file on the recorder, printable (escaped); NULL for docking events */
        bool has_seq;
        uint64_t seq;
        uint64_t done, total; /* FILE_BEGIN / FILE_PROGRESS / FILE_ARCHIVING */
        EvdVerdict verdict;   /* FINDING, FILE_DONE */
        const char *expected; /* FINDING evidence; may be NULL */
        const char *found;
        const char *message;       /* one human-readable line */
        const char *original_path; /* FILE_DONE: relative to the store root */
        const char *archive_path;  /* FILE_DONE: may be NULL */
        bool late;                 /* FILE_DONE: outside the 24-hour window */
        int error;                 /* FILE_FAILED: negative errno */
        bool spooled;              /* the docking goes to the local spool (database unreachable) */
        unsigned file_index;       /* 1-based number of the file being taken; 0 before the first */
        unsigned files_total;      /* files present to take in this docking; 0 until the chain is read */
} EvdIngestEvent;

typedef void (*EvdIngestEventFn)(const EvdIngestEvent *ev, void *userdata);

/* Values of *EvdIngestOptions.cancel: why the caller wants the docking to stop. */
enum { EVD_INGEST_CANCEL_NONE = 0, EVD_INGEST_CANCEL_STOP = 1, EVD_INGEST_CANCEL_DEADLINE = 2 };

typedef struct EvdIngestOptions {
        const char *case_number;         /* overrides what the recorder carries; NULL: keep it */
        const char *default_case_number; /* when the recorder carries none; NULL or "": none */
        int64_t late_after_us;           /* 24 h by the rules */
        uint64_t max_file_bytes;         /* 0: no limit */
        uint64_t reserve_bytes;          /* keep this much free in the store: refuse files beyond it */
        bool archive_copy;
        /* Make the archive copy of a long MP4/MOV/M4A recording while the recording itself is still being
         * copied (its index read ahead of the copy; see ingest-overlap.c). On by default; off: each archive
         * copy starts when its file's copy has ended. */
        bool archive_while_copying;
        int64_t media_timeout_us;
        int64_t time_gap_tolerance_us;
        int64_t clock_max_offset_us;
        const char *confidentiality; /* NULL: "normal" */
        const char *retention_class; /* NULL: "case" (kept as long as the case file) */
        const char *spool_dir;       /* the local spool (spool.h); NULL: none, an outage stops the docking */
        EvdIngestEventFn on_event;   /* may be NULL */
        void *userdata;
        /* non-zero (EVD_INGEST_CANCEL_*): stop at the next read (the file in hand is abandoned) */
        const atomic_int *cancel;
        /* The no-progress deadline: when the docking has not moved for this long (moving: another MiB
         * read from the recorder, a file finished, a stage done), it ends at its next read or file,
         * recorded as such (custody event "stalled", docking result "stalled: ..."), and
         * evd_ingest_run() returns -ETIMEDOUT with summary.stalled set. Every read checks it and
         * *cancel, so a docking ends within one read of either (a read is bounded by its transport:
         * USB timeouts; special files are never opened). 0: no deadline. */
        int64_t stall_timeout_us;
} EvdIngestOptions;

/* Fills the defaults the rules imply (24 h window, archive copy on, ...). */
void evd_ingest_options_init(EvdIngestOptions *o);

typedef struct EvdIngestSummary {
        int64_t docking_id;
        char device_id[16];
        char officer_id[16];
        bool refused;            /* not enrolled / not identified: nothing taken */
        unsigned files_seen;     /* files on the volume (manifest and device file excluded) */
        unsigned files_ingested; /* stored + recorded in this run */
        unsigned files_already;  /* ingested at an earlier docking */
        unsigned files_linked;   /* of files_already: stored earlier without their record, which is now
                                  * linked to them (db-links.h) */
        unsigned files_quarantined;
        unsigned files_failed; /* could not be ingested now (retried next time) */
        unsigned files_late;   /* ingested now, outside the 24-hour window */
        unsigned findings;     /* all findings, docking-level included */
        EvdVerdict worst;      /* INTACT when everything verified */
        uint64_t bytes_copied;
        bool spooled; /* (part of) the docking went to the spool: the database has not got it yet */
        unsigned files_spooled;     /* of files_ingested, recorded in the spool only */
        char spool_why[256];        /* why it was spooled */
        bool stalled;               /* ended by the no-progress deadline (stall_timeout_us) */
        bool cancelled;             /* ended because *cancel was set */
        unsigned media_workers;     /* media worker processes started: 1 when every archive copy went
                                     * cleanly (one per docking), one more after each file that failed in it */
        unsigned files_overlapped;  /* archive copies made while their file was copied */
        unsigned overlap_fallbacks; /* of those started so, made again from the stored original (the
                                     * bytes read ahead differed, the copy ended elsewhere, the worker
                                     * failed) */
} EvdIngestSummary;

/* Runs one docking. Returns 0 when the docking was processed to its end (whatever the verdicts: they
 * are in *ret and in the database, or in the spool), or a negative errno when it could not be (database
 * unreachable without a spool, store full, source failed): files finished before the error stay stored
 * and recorded; the rest are picked up at the next docking. *ret is filled in both cases as far as it got.
 *
 * Everything is recorded through the record stage (record.h), which chooses the database or the spool:
 * db NULL means the caller could not reach the database: the docking runs offline into
 * opts->spool_dir (required then), against the enrollments and chain heads cached there. With db set and
 * a spool, the docking switches to the spool when the database becomes unreachable mid-way, and also
 * when entries of the same recorder still wait in the spool (its order is kept). evd_docking_run()
 * (docking.h) connects, replays the spool and then calls this: use it unless you hold a connection. */
int evd_ingest_run(EvdSource *src, EvdStore *store, EvdDb *db, const EvdIngestOptions *opts,
                   EvdIngestSummary *ret, EvdError *err);
