/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The optical-disc tables (migration 6, docs/disc-format.md): jobs and their fixed plans, the append-only
 * state events of a job, the frozen contents of every disc of a set, every disc burned and every later
 * check of one. All SQL of the disc feature lives here; lib/disc-job.c decides what to call when.
 *
 * Conventions as in db.h: negative errno + *err, times in µs since the epoch (UTC), digests in as raw
 * 32 bytes, out as hex. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "db.h"

#define EVD_DB_DISC_MAX_FILES 100000u /* files one job may hold (bounds the plan) */

/* Which recordings a job takes. Fields are ANDed; unset ones do not filter. At least one must be set. */
typedef struct EvdDbDiscSelector {
        const char *case_number; /* the CURRENT case (files_case_current: the latest association, else
                                  * the recorder's), not files.case_number: docs/lifecycle.md */
        const char *device_id;
        const char *officer_id;
        bool has_since;
        int64_t since_us; /* recording start at or after */
        bool has_until;
        int64_t until_us;        /* recording start before */
        const int64_t *file_ids; /* explicit list (e.g. the files of a long-term mark) */
        size_t n_file_ids;
} EvdDbDiscSelector;

/* What planning needs of a selected file. */
typedef struct EvdDbDiscCandidate {
        int64_t file_id;
        uint64_t size;
        char *original_path; /* relative to the store root */
        char *archive_path;  /* may be NULL */
        char *case_number;   /* the current case; may be NULL */
        char *device_id;
} EvdDbDiscCandidate;

/* The selected files ordered by recording start (then id). -ENOENT if none; -E2BIG over
 * EVD_DB_DISC_MAX_FILES. Free with evd_db_disc_candidates_free(). */
int evd_db_disc_select(EvdDb *db, const EvdDbDiscSelector *sel, EvdDbDiscCandidate **ret, size_t *ret_n,
                       EvdError *err);
void evd_db_disc_candidates_free(EvdDbDiscCandidate *c, size_t n);

typedef struct EvdDbDiscJobNew {
        const char *requested_by;
        const char *reason;   /* may be NULL */
        const char *selector; /* human-readable description of the selection */
        const char *case_numbers;
        const char *unit_code; /* may be NULL */
        const char *media;
        uint64_t media_bytes;
        unsigned copies;
        unsigned parts;
        uint64_t payload_bytes;
        const int64_t *file_ids; /* n_files, in order */
        const unsigned *file_parts;
        size_t n_files;
} EvdDbDiscJobNew;

/* Inserts the job, its plan, the 'queued' event and a custody event "disc_job_queued" in one transaction
 * (a savepoint inside the caller's). */
int evd_db_disc_job_create(EvdDb *db, const EvdDbDiscJobNew *job, int64_t *ret_job_id, EvdError *err);

/* A state event of a job. */
typedef struct EvdDbDiscJobEvent {
        int64_t job_id;
        const char *state;   /* queued, waiting_media, burning, verifying, done, failed, cancelled */
        unsigned part, copy; /* 0: not applicable */
        const char *drive;   /* may be NULL */
        const char *by;
        const char *detail;    /* may be NULL */
        const char *spool_key; /* a spooled fact (record.h): 32 hex digits that make its replay write it
                                * once (-EEXIST the second time); NULL when written online */
} EvdDbDiscJobEvent;

/* Appends a state event. A state change that ends a job (done, failed, cancelled) also goes to the
 * custody log. -ENOENT if no such job. */
int evd_db_disc_job_event_add(EvdDb *db, const EvdDbDiscJobEvent *ev, EvdError *err);
/* The same with the fields as arguments (part/copy 0 and drive/detail NULL when not applicable). */
int evd_db_disc_job_event(EvdDb *db, int64_t job_id, const char *state, unsigned part, unsigned copy,
                          const char *drive, const char *by, const char *detail, EvdError *err);

typedef struct EvdDbDiscJob {
        int64_t id;
        int64_t created_us;
        char *requested_by;
        char *reason;
        char *selector;
        char *case_numbers;
        char *unit_code; /* may be NULL */
        char *media;
        uint64_t media_bytes;
        unsigned copies;
        unsigned parts;
        unsigned files;
        uint64_t payload_bytes;
        char *group_id;
        char *state; /* latest event */
        int64_t state_us;
        char *state_detail;
        char *state_drive; /* may be NULL */
        unsigned discs_verified;
        unsigned discs_failed;
} EvdDbDiscJob;

/* Jobs, newest first; active_only: not done, failed or cancelled. Free with evd_db_disc_jobs_free(). */
int evd_db_disc_job_list(EvdDb *db, bool active_only, EvdDbDiscJob **ret, size_t *ret_n, EvdError *err);
int evd_db_disc_job_get(EvdDb *db, int64_t job_id, EvdDbDiscJob **ret, EvdError *err); /* -ENOENT */
void evd_db_disc_jobs_free(EvdDbDiscJob *jobs, size_t n);
static inline void evd_db_disc_job_freep(EvdDbDiscJob **j)
{
        if (*j)
                evd_db_disc_jobs_free(*j, 1);
}

/* Takes the oldest runnable job (not done, failed or cancelled) that no other worker holds, with a
 * session advisory lock that dies with the connection (so a crashed worker's job is taken again).
 * Returns 1 and *ret_job_id, or 0 when there is none. Release with evd_db_disc_job_release(). */
int evd_db_disc_job_claim(EvdDb *db, int64_t *ret_job_id, EvdError *err);
/* Takes one given job (-EBUSY if another worker holds it). */
int evd_db_disc_job_lock(EvdDb *db, int64_t job_id, EvdError *err);
int evd_db_disc_job_release(EvdDb *db, int64_t job_id);

/* The files of one part of a job's plan, in plan order. */
int evd_db_disc_job_part_files(EvdDb *db, int64_t job_id, unsigned part, int64_t **ret_ids, size_t *ret_n,
                               EvdError *err);

/* How many verified discs exist per part: ret_counts[part-1] for part 1..parts (caller frees). */
int evd_db_disc_verified_counts(EvdDb *db, int64_t job_id, unsigned parts, unsigned **ret_counts,
                                EvdError *err);

typedef struct EvdDbDiscPart {
        int64_t id; /* 0: not created yet */
        int64_t job_id;
        unsigned part;
        char label[72];
        char volume_id[40];
        int64_t custody_upto;
        char bagging_date[16]; /* YYYY-MM-DD */
        int64_t snapshot_us;
        char image_sha256[EVD_DB_HEX_SIZE]; /* of the first verified copy; "" if none yet */
} EvdDbDiscPart;

/* The frozen contents of a part. 0 and the row, or -ENOENT if it was not built yet. */
int evd_db_disc_part_get(EvdDb *db, int64_t job_id, unsigned part, EvdDbDiscPart *ret, EvdError *err);
/* Finds a part by its label (what bag-info.txt's External-Identifier says). -ENOENT if unknown. */
int evd_db_disc_part_find(EvdDb *db, const char *label, EvdDbDiscPart *ret, EvdError *err);
/* The custody head to freeze now (id and its hash); id 0 if the log is empty. */
int evd_db_disc_custody_head(EvdDb *db, int64_t *ret_id, char ret_hash[EVD_DB_HEX_SIZE], EvdError *err);

typedef struct EvdDbDiscPartFile {
        const char *path; /* on the disc, relative to its root ("data/...", "bagit.txt") */
        uint64_t size;
        const uint8_t *sha256;
        int64_t file_id;  /* 0: not a recording's original or archive copy */
        const char *role; /* "original", "archive", "tag", "meta" */
} EvdDbDiscPartFile;

/* Records a part and all its files in one transaction; part->id is set. -EEXIST if it exists. */
int evd_db_disc_part_create(EvdDb *db, EvdDbDiscPart *part, const EvdDbDiscPartFile *files, size_t n,
                            EvdError *err);

/* Streams the expected files of a part, ordered by path. fn < 0 stops the walk with that value. */
typedef int (*EvdDbDiscPartFileFn)(const char *path, uint64_t size, const char *sha256_hex, int64_t file_id,
                                   const char *role, void *userdata);
int evd_db_disc_part_files(EvdDb *db, int64_t part_id, EvdDbDiscPartFileFn fn, void *userdata,
                           EvdError *err);

typedef struct EvdDbDisc {
        int64_t job_id;
        int64_t part_id;
        unsigned copy;
        bool verified;
        const char *drive;
        const char *media;
        const uint8_t *image_sha256; /* NULL if unknown */
        uint64_t image_blocks;
        unsigned files_checked;
        unsigned files_bad;
        int64_t burned_us; /* 0: not burned */
        int64_t verified_us;
        const char *by;
        const char *detail;
        const char *spool_key; /* as EvdDbDiscJobEvent's: NULL online */
} EvdDbDisc;

/* Records a burned disc and its custody events in one transaction: "disc_verified" or "disc_failed", and
 * for a verified disc one "on_disc" event per recording it holds. -EEXIST if this copy was verified
 * already (or this spool_key was recorded). */
int evd_db_disc_record(EvdDb *db, const EvdDbDisc *disc, int64_t *ret_disc_id, EvdError *err);

typedef struct EvdDbDiscCheck {
        int64_t part_id; /* 0: the disc is not one of ours */
        const char *source;
        const char *outcome; /* "ok", "mismatch", "unknown_disc", "unreadable" */
        const uint8_t *image_sha256;
        unsigned files_checked;
        unsigned files_bad;
        const char *by;
        const char *detail;
} EvdDbDiscCheck;

/* Records a check of a disc/image and a custody event "disc_checked". */
int evd_db_disc_check_record(EvdDb *db, const EvdDbDiscCheck *check, int64_t *ret_id, EvdError *err);

/* ---- what goes into a bag: text produced by the database as JSON, one object per line ---------------- */

typedef int (*EvdDbDiscTextFn)(const char *text, void *userdata);

/* Per file (in the order of ids): a JSON object with the file row (source_path as hex), its findings and
 * the current case association. fn gets each line with its file id through the userdata it passes. */
typedef struct EvdDbDiscFileInfo {
        int64_t id;
        char *device_id;
        char *officer_id;
        char *unit_code;
        char *method;
        char *case_number;
        char *recorded_start; /* ISO 8601 text or NULL */
        char *recorded_end;
        uint64_t size;
        char sha256[EVD_DB_HEX_SIZE];
        char *original_path;
        char *archive_path;
        char archive_sha256[EVD_DB_HEX_SIZE];
        char *verdict;
        char *confidentiality;
        char *chain_record; /* may be NULL */
        char *json;         /* the whole record as one JSON object */
} EvdDbDiscFileInfo;

int evd_db_disc_file_info(EvdDb *db, const int64_t *ids, size_t n, EvdDbDiscFileInfo **ret, EvdError *err);
void evd_db_disc_file_info_free(EvdDbDiscFileInfo *f, size_t n);

/* Every enrollment row up to upto_us (also of keys retired since) of the devices of these files: its key
 * and the row as JSON, by device then id. */
typedef int (*EvdDbDiscKeyFn)(const char *device_id, const char *key_id, const char *pem, const char *json,
                              void *userdata);
int evd_db_disc_keys(EvdDb *db, const int64_t *ids, size_t n, int64_t upto_us, EvdDbDiscKeyFn fn,
                     void *userdata, EvdError *err);
/* The custody events of these files with id <= upto, as JSON lines, in id order (streamed). */
int evd_db_disc_custody(EvdDb *db, const int64_t *ids, size_t n, int64_t upto, EvdDbDiscTextFn fn,
                        void *userdata, EvdError *err);
/* The custody event upto as JSON (the head the exported events chain to). */
int evd_db_disc_custody_event_json(EvdDb *db, int64_t id, char **ret_json, EvdError *err);

/* ---- which discs hold a recording (evidockctl chain/log) -----------------------------------------------
 */

typedef struct EvdDbDiscHolding {
        int64_t file_id;
        int64_t disc_id;
        int64_t job_id;
        char label[72];
        unsigned copy;
        int64_t verified_us;
} EvdDbDiscHolding;

int evd_db_disc_holdings(EvdDb *db, int64_t file_id, EvdDbDiscHolding **ret, size_t *ret_n, EvdError *err);
/* The same for many files at once, ordered by file id then disc id (caller frees *ret). */
int evd_db_disc_holdings_many(EvdDb *db, const int64_t *file_ids, size_t n, EvdDbDiscHolding **ret,
                              size_t *ret_n, EvdError *err);

/* Discs of a job, oldest first, for `disc show`. */
typedef struct EvdDbDiscRow {
        int64_t id;
        unsigned part;
        char label[72];
        unsigned copy;
        char outcome[16];
        char *drive;
        char image_sha256[EVD_DB_HEX_SIZE];
        unsigned files_checked, files_bad;
        int64_t verified_us;
        int64_t recorded_us;
        char *detail;
} EvdDbDiscRow;

int evd_db_disc_rows(EvdDb *db, int64_t job_id, EvdDbDiscRow **ret, size_t *ret_n, EvdError *err);
void evd_db_disc_rows_free(EvdDbDiscRow *rows, size_t n);
