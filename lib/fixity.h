/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fixity: re-hashes what the store holds and compares it with what the database recorded at ingest, so
 * that an original or archive copy whose bytes changed after it was committed (a disk fault, a process
 * that should not have written it, a hand edit) is found and put on record.
 *
 * One run walks the files table in id order, from the first file or (resume) from where the previous
 * run stopped, for at most max_files files (a sample) or to the newest file (a full pass). For each file
 * it hashes the original and, if there is one, the archive copy (SHA-256, streamed), and every copy that
 * is missing, unreadable or hashes differently becomes:
 *   - a custody event EVD_CUSTODY_FIXITY_MISMATCH (file_id = the file; detail names the copy, what was
 *     expected and what was found), appended as soon as it is found;
 *   - an entry of the report.
 * The position is saved in the custody log too: an EVD_CUSTODY_FIXITY_CHECKED event at the end of the run
 * and every EVD_FIXITY_CHECKPOINT_FILES files, whose file_id is the last file checked (NULL once a pass
 * reached the newest file, so the next resumed run starts over). An interrupted run resumes from its
 * last checkpoint. Nothing in the store or in the evidence tables is ever changed. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "error.h"
#include "store.h"

#define EVD_CUSTODY_FIXITY_CHECKED  "fixity_checked"
#define EVD_CUSTODY_FIXITY_MISMATCH "fixity_mismatch"
#define EVD_FIXITY_BATCH            256u   /* file rows read from the database at a time */
#define EVD_FIXITY_CHECKPOINT_FILES 10000u /* files between two saved positions */
#define EVD_FIXITY_MAX_REPORTED     10000u /* mismatches kept in the report (all are in the custody log) */

typedef struct EvdFixityOptions {
        uint64_t max_files; /* 0: to the newest file (a full pass); N: stop after N files (a sample) */
        bool resume;        /* start after the position the last run saved; false: from the first file */
} EvdFixityOptions;

typedef enum EvdFixityProblem {
        EVD_FIXITY_CHANGED = 0, /* the bytes hash to something else */
        EVD_FIXITY_MISSING,     /* no such file in the store */
        EVD_FIXITY_UNREADABLE,  /* it exists but cannot be read (or is not a regular file) */
        _EVD_FIXITY_PROBLEM_MAX,
} EvdFixityProblem;

const char *evd_fixity_problem_to_string(EvdFixityProblem p); /* "changed", "missing", "unreadable" */

typedef struct EvdFixityMismatch {
        int64_t file_id;
        char *path;   /* relative to the store root, as the database has it */
        bool archive; /* false: the original; true: the archive copy */
        EvdFixityProblem problem;
        char expected_sha256[65];
        char found_sha256[65]; /* "" unless the file was read to its end */
        char detail[256];      /* human-readable: what, where, why */
} EvdFixityMismatch;

typedef struct EvdFixityReport {
        uint64_t files_checked;  /* file rows */
        uint64_t copies_checked; /* originals + archive copies */
        uint64_t bytes_hashed;
        int64_t first_file_id, last_file_id; /* the id range covered; 0 if no file was checked */
        bool reached_end;                    /* the run reached the newest file */
        EvdFixityMismatch *mismatches;       /* the first EVD_FIXITY_MAX_REPORTED, by file id */
        size_t n_mismatches;
        uint64_t n_mismatches_total;
} EvdFixityReport;

/* Runs one fixity check (see above). Mismatches are results, not errors: errors mean the check could
 * not be made (database unreachable, the custody event could not be written, out of memory). Free the
 * report with evd_fixity_report_free(). */
int evd_fixity_check(EvdDb *db, EvdStore *store, const EvdFixityOptions *opts, EvdFixityReport **ret_report,
                     EvdError *err);
EvdFixityReport *evd_fixity_report_free(EvdFixityReport *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(EvdFixityReport *, evd_fixity_report_free);

/* ---- its database queries (lib/db-fixity.c) ---------------------------------------------------------- */

typedef struct EvdDbFixityRow {
        int64_t id;
        uint64_t size;
        char *original_path;
        char sha256[EVD_DB_HEX_SIZE];
        char *archive_path; /* NULL: no archive copy */
        char archive_sha256[EVD_DB_HEX_SIZE];
} EvdDbFixityRow;

/* Up to limit file rows with id > after_id, by id. Free with evd_db_fixity_rows_free(). */
int evd_db_fixity_rows(EvdDb *db, int64_t after_id, size_t limit, EvdDbFixityRow **ret_rows, size_t *ret_n,
                       EvdError *err);
void evd_db_fixity_rows_free(EvdDbFixityRow *rows, size_t n);

/* The position the last fixity run saved (the file_id of the newest EVD_CUSTODY_FIXITY_CHECKED event);
 * 0 if there is none or the last pass reached the end. */
int evd_db_fixity_position(EvdDb *db, int64_t *ret_after_id, EvdError *err);
