/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Inside lib/ingest*.c: one docking's state and one file's way through its steps (ingest.c), shared with
 * the archive copy made while the same file is copied (ingest-overlap.c). Not an API. */
#pragma once

#include "chain.h"
#include "clock.h"
#include "copy.h"
#include "finding.h"
#include "hash.h"
#include "ingest.h"
#include "manifest.h"
#include "media.h"
#include "media-worker.h"
#include "mp4-layout.h"
#include "record.h"
#include "signature.h"
#include "store.h"

#define MAX_FILE_FINDINGS 16u /* findings kept per file; more are summarised in the last one */

typedef struct Ingest {
        EvdSource *src;
        EvdStore *store;
        const EvdIngestOptions *o;
        EvdIngestSummary *sum;
        EvdSourceIdentity ident;
        unsigned file_index, files_total; /* file n of m, for the events */
        char device_id[16], officer_id[16], unit_code[32];
        EvdDbDevice *dev;
        EVP_PKEY *key;
        int64_t docking_id;
        EvdManifest *manifest;
        EvdSourceEntry *entries;
        size_t n_entries;
        int64_t now_us;
        EvdRecordStage *rs;     /* the record stage: database, or the spool while it is unreachable */
        int64_t moved_us;       /* CLOCK_MONOTONIC when the docking last moved (the stall deadline) */
        uint64_t unmoved_bytes; /* read since then: every STALL_STEP_BYTES is a move */
        unsigned kind_count[_EVD_VERDICT_MAX]; /* docking-level findings of each verdict so far */
        EvdMediaSession *media;  /* the docking's media worker (started at the first archive copy) */
        struct FileJob *slots;   /* two: the file being copied, and the one being archived (flight) */
        struct FileJob *flight;  /* the file whose archive copy the media worker is making, or NULL */
        struct FileJob *pending; /* files copied and archived, waiting to be synced, named and recorded */
        size_t n_pending;
        uint64_t pending_bytes;
        int64_t pending_since_us; /* CLOCK_MONOTONIC when the oldest pending file joined the batch */
} Ingest;

typedef struct Progress {
        Ingest *g;
        const char *shown;
        bool has_seq;
        uint64_t seq;
        EvdStoreSpace
            *space; /* the file's reservation in the store: what is written is no longer promised */
        unsigned space_part;
} Progress;

/* One file on its way through the steps of ingest_file(): what each step hands the next. */
typedef struct FileJob {
        EvdChainItem *item;                     /* the chain's view of this file (findings so far) */
        const char *path;                       /* raw path on the volume */
        const EvdRecord *record;                /* NULL: a file no record of this chain names */
        EvdFinding findings[MAX_FILE_FINDINGS]; /* evidock's own: name, readability, media */
        size_t n_findings;
        char shown[512]; /* path, printable */
        /* place */
        char day[EVD_TIME_STRLEN + 1]; /* YYYY-MM-DD of the store directory */
        EvdStoreSpace space;           /* what its copies will still write (store.h) */
        /* copy */
        int orig_dir; /* store directory of the original (quarantine once the verdict says so) */
        char *orig_rel;
        EvdTmpFile orig; /* the original, unnamed until committed */
        EvdCopyResult cr;
        char sha_hex[2 * EVD_DIGEST_SIZE + 1];
        /* check */
        bool conflict;           /* another recording is stored for this seq (a second history) */
        EvdDbOtherVersion other; /* that one */
        /* archive */
        const char *case_number; /* NULL: none */
        int arch_dir;
        char *arch_rel;
        EvdTmpFile arch;
        bool archiving;  /* submitted to the media worker, not waited for yet */
        bool overlapped; /* ... while this file was (or is) copied: see "archive while copying" */
        char placeholder[2 * EVD_DIGEST_SIZE + 1]; /* its original_sha256 tag until the copy ends */
        EvdMp4Layout layout;
        int ahead_fd; /* the bytes after the mdat, read ahead of the copy (sealed memfd); -1: none */
        bool archived;
        /* a big file is synced on its own, not with its batch: the original from the end of its copy
         * (orig_sync, beside the rest of its archive copy), the archive copy while it is hashed */
        EvdTmpFileSync *orig_sync; /* the original's fdatasync() under way, or NULL */
        bool orig_synced, arch_synced;
        Progress aprog; /* the archive step's progress events (used until the wait) */
        EvdArchiveResult ar;
        uint8_t arch_sha[EVD_DIGEST_SIZE];
        /* commit */
        char stem[160], ext[96]; /* the store name without "~N" and extension */
        bool duplicate;          /* a foreign file that copies a chained recording */
        EvdVerdict worst;
        bool quarantine;
        char *orig_path, *arch_path; /* relative to the store root */
        int64_t stored_us;
} FileJob;

/* What a file's archive copy carries: the tags (original_sha256: the copy's hash, or the placeholder
 * while the copy runs) and the chain record as an attachment (*ret_line holds its text). */
typedef struct ArchiveRequest {
        char start[EVD_TIME_STRLEN + 1], end[EVD_TIME_STRLEN + 1];
        EvdArchiveTags tags;
        EvdArchiveAttachment att;
        char *line;
} ArchiveRequest;

/* ingest-events.c: the docking's events to its caller; whether (part of) it goes to the spool (keeps the
 * summary's spool fields current). */
void ingest_emit(Ingest *g, EvdIngestEvent ev);
bool ingest_spooled(Ingest *g);
void ingest_archive_progress(uint64_t done, uint64_t total, void *userdata);

/* ingest-archive.c: what the ordinary archive copy (ingest.c) and the overlap (ingest-overlap.c) share. */
const char *ingest_case_number_of(const Ingest *g, const FileJob *j);
void ingest_archive_request_init(Ingest *g, FileJob *j, const char *original_sha256, ArchiveRequest *a);
int ingest_archive_open(Ingest *g, FileJob *j, EvdError *err);

/* ingest-overlap.c: the archive copy of a long recording made while it is copied. wanted() before the
 * copy (reads the MP4 index ahead; false: the ordinary way), begin() once the file before has landed
 * (0, started or not: nothing there is the file's fault, or a negative errno that stops the docking);
 * end() after a complete copy (the worker gets the hash, or the overlapped copy is given up and made the
 * ordinary way); discard() gives it up (the worker is killed: the next job gets a fresh one). */
bool ingest_overlap_wanted(Ingest *g, FileJob *j, EvdReader *rd);
int ingest_overlap_begin(Ingest *g, FileJob *j, EvdError *err);
void ingest_overlap_end(Ingest *g, FileJob *j);
void ingest_overlap_discard(Ingest *g, FileJob *j);
