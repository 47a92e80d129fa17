/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Retention: how long each recording is kept, and why. docs/lifecycle.md has the rules.
 *
 * Classes that can apply to one file; the longest one wins:
 *   ordinary   every recording: recording start (ingest time if unknown) + policy.ordinary_us
 *   evidence   the file is in a case: while the case is open, kept; once closed, closed + the case
 *              category's period (or policy.evidence_after_close_us), or permanent
 *   long_term  a long-term mark (002:§18): permanent
 * A legal hold does not move the date: it blocks any disposal while it is set.
 * A file may be disposed only when its date has passed and it is in no case, not long-term, not held.
 *
 * The evaluation is pure (no I/O); evd_retention_report() reads the facts from the database. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "error.h"
#include "store.h"

#define EVD_RETENTION_PERMANENT      INT64_MAX
#define EVD_RETENTION_MAX_CATEGORIES 32u

typedef struct EvdRetentionCategory {
        char name[33];          /* case category, [a-z][a-z0-9_-]* */
        int64_t after_close_us; /* EVD_RETENTION_PERMANENT: never expires */
} EvdRetentionCategory;

typedef struct EvdRetentionPolicy {
        int64_t ordinary_us;             /* from recording start */
        int64_t evidence_after_close_us; /* categories not listed; EVD_RETENTION_PERMANENT: never */
        EvdRetentionCategory categories[EVD_RETENTION_MAX_CATEGORIES];
        size_t n_categories;
} EvdRetentionPolicy;

/* The defaults: ordinary 180 days (the national rule's minimum of 6 months), evidence permanent. */
void evd_retention_policy_default(EvdRetentionPolicy *p);
/* Parses "criminal=permanent, administrative=3650d" into p->categories (replacing them). Durations as
 * evd_retention_parse_period(). -EINVAL with a message naming the bad item. */
int evd_retention_parse_categories(EvdRetentionPolicy *p, const char *s, EvdError *err);
/* "permanent", or a number with d (days), w (weeks), y (365 days), h, m, s. */
int evd_retention_parse_period(const char *s, int64_t *ret_us);

/* The facts about one file that retention needs (filled by evd_retention_report()). */
typedef struct EvdRetentionFacts {
        int64_t file_id;
        char *device_id;
        char *officer_id; /* may be NULL */
        bool has_seq;
        uint64_t seq;
        int64_t recorded_us; /* recording start, or ingest time when unknown */
        int64_t ingested_us;
        uint64_t size;
        char *recorder_case; /* may be NULL */
        char *current_case;  /* may be NULL */
        bool case_known;     /* current_case was opened with evidockctl case open */
        char *case_category; /* NULL when unknown */
        bool case_closed;
        int64_t case_closed_us;
        bool important;
        bool long_term;
        char *long_term_reason; /* code, e.g. "dispute" */
        bool hold;
        bool disposed;
        char *original_path;
        char *archive_path; /* may be NULL */
        char sha256[EVD_DB_HEX_SIZE];
        char archive_sha256[EVD_DB_HEX_SIZE]; /* "" when none */
} EvdRetentionFacts;

typedef enum EvdRetentionClass {
        EVD_RETENTION_ORDINARY = 0,
        EVD_RETENTION_EVIDENCE,
        EVD_RETENTION_LONG_TERM,
} EvdRetentionClass;

const char *evd_retention_class_to_string(EvdRetentionClass c); /* "ordinary", "evidence", "long_term" */

typedef struct EvdRetentionVerdict {
        EvdRetentionClass wins; /* the class with the latest date */
        int64_t keep_until_us;  /* EVD_RETENTION_PERMANENT: never expires (or not yet known) */
        bool held;              /* legal hold */
        bool blocked;           /* in a case, long-term or held: never disposable as it stands */
        char why[256];          /* "ordinary: recorded 2026-01-02 + 180d", "in case K-1 (open)", ... */
} EvdRetentionVerdict;

void evd_retention_evaluate(const EvdRetentionPolicy *p, const EvdRetentionFacts *f,
                            EvdRetentionVerdict *ret);
/* Disposable at time now: date passed, not blocked, not disposed already. */
bool evd_retention_disposable(const EvdRetentionFacts *f, const EvdRetentionVerdict *v, int64_t now_us);

typedef struct EvdRetentionReport {
        EvdRetentionFacts *files; /* every recorded file, by id */
        EvdRetentionVerdict *verdicts;
        size_t n_files;
        bool truncated; /* more than EVD_DB_LOG_MAX_ROWS files */
} EvdRetentionReport;

/* Reads every file's facts and evaluates them. Free with evd_retention_report_free(). */
int evd_retention_report(EvdDb *db, const EvdRetentionPolicy *p, EvdRetentionReport **ret, EvdError *err);
EvdRetentionReport *evd_retention_report_free(EvdRetentionReport *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(EvdRetentionReport *, evd_retention_report_free);

/* The storage budget for `evidockctl status`. */
typedef struct EvdStorageBudget {
        uint64_t fs_total_bytes; /* the store's filesystem */
        uint64_t fs_free_bytes;  /* available to evidock */
        uint64_t stored_bytes;   /* originals + archive copies not disposed (as on disk) */
        uint64_t reserve_bytes;
        uint64_t frees_7d_bytes; /* originals + archive copies disposable within 7 days from now */
        uint64_t frees_30d_bytes;
        uint64_t ingest_per_day_bytes; /* originals + archive copies of the last 7 days, per day */
        bool reserve_reached;
        double days_until_reserve; /* < 0: no recent ingest, no forecast */
} EvdStorageBudget;

int evd_storage_budget(const EvdRetentionReport *rep, EvdStore *store, uint64_t reserve_bytes,
                       int64_t now_us, EvdStorageBudget *ret, EvdError *err);
