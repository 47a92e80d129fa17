/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* After ingest: cases, the association of files with cases after the fact, and marks (important 重点,
 * long-term 002:§18, legal hold). docs/lifecycle.md describes the model.
 *
 * Nothing here changes an evidence row or a stored file. Every change is a new append-only row naming
 * who (the database login, set by the database itself), when, why and which earlier row it supersedes,
 * and one custody event per file whose hash covers the same facts. The latest row per file wins:
 *
 *   current case of a file = the case of its latest association ('unassign': none);
 *                            with no association, the case number the recorder gave at ingest.
 *
 * The archive copy keeps the case tag it got at ingest (it is write-once). Where the current case
 * differs, every listing shows both; exports and discs carry the current one beside the tag.
 *
 * All functions take the connection's own transaction (or a savepoint inside the caller's): a bulk change
 * is recorded for every matched file or for none. Errors: negative errno and a message in *err:
 *   -ENOENT  unknown case, no such file, a selection that matches nothing
 *   -EALREADY the change is already the state (case closed twice, nothing to unassign)
 *   -EINVAL  a malformed value (case number, category, empty reason, reversed range)
 *   -E2BIG   a selection matches more than EVD_LIFECYCLE_MAX_FILES files */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "error.h"

#define EVD_LIFECYCLE_MAX_FILES  10000u /* files one command may change (bounds one transaction) */
#define EVD_CASE_NUMBER_MAX      64u    /* characters, no control characters, no leading blank */
#define EVD_LIFECYCLE_REASON_MAX 1000u  /* bytes of a reason text */

/* ---- which files ----------------------------------------------------------------------------------- */

typedef enum EvdFileSelectorKind {
        EVD_SELECT_FILE = 0,    /* one file by id */
        EVD_SELECT_DEVICE_SEQ,  /* a recorder's sequence numbers first..last (inclusive) */
        EVD_SELECT_OFFICER_TIME /* an officer's recordings starting in [from, to) (ingest time if unknown) */
} EvdFileSelectorKind;

typedef struct EvdFileSelector {
        EvdFileSelectorKind kind;
        int64_t file_id;
        const char *device_id;
        uint64_t seq_first, seq_last;
        const char *officer_id;
        int64_t from_us, to_us;
} EvdFileSelector;

/* "file 12", "device A1B2C3D seq 3-9", "officer 012345 from ... to ..." for messages. */
void evd_file_selector_describe(const EvdFileSelector *sel, char *buf, size_t size);
/* -EINVAL with a message when the selector cannot be used (empty ids, reversed range). */
int evd_file_selector_check(const EvdFileSelector *sel, EvdError *err);

/* What a bulk change did. file_ids lists the files that got a new row (caller frees). */
typedef struct EvdLifecycleChange {
        size_t n_matched;   /* files the selector matched */
        size_t n_changed;   /* files that got a new row */
        size_t n_unchanged; /* files already in that state */
        int64_t *file_ids;  /* the changed files, ascending */
} EvdLifecycleChange;
void evd_lifecycle_change_clear(EvdLifecycleChange *c);

/* ---- cases ----------------------------------------------------------------------------------------- */

int evd_case_number_check(const char *case_number, EvdError *err);
int evd_case_category_check(const char *category, EvdError *err); /* [a-z][a-z0-9_-]{0,31} */

typedef struct EvdCaseInfo {
        char *case_number;
        char *category;
        char *opened_by;
        int64_t opened_us;
        bool closed;
        int64_t closed_us; /* when closed: the 30-day archiving clock (000:§17) starts here */
        char *closed_by;
        size_t n_files; /* files currently in the case */
} EvdCaseInfo;

/* Opens a case (-EEXIST if it exists). */
int evd_case_open(EvdDb *db, const char *case_number, const char *category, const char *reason,
                  EvdError *err);
/* Closes an open case (-EALREADY if closed), or reopens a closed one. */
int evd_case_close(EvdDb *db, const char *case_number, const char *reason, EvdError *err);
int evd_case_reopen(EvdDb *db, const char *case_number, const char *reason, EvdError *err);
/* -ENOENT for an unknown case. Free with evd_case_info_free(). */
int evd_case_get(EvdDb *db, const char *case_number, EvdCaseInfo **ret, EvdError *err);
/* Every known case, by number. Free with evd_case_info_array_free(). */
int evd_case_list(EvdDb *db, EvdCaseInfo **ret, size_t *ret_n, EvdError *err);
void evd_case_info_free(EvdCaseInfo *c);
void evd_case_info_array_free(EvdCaseInfo *v, size_t n);
DEFINE_TRIVIAL_CLEANUP_FUNC(EvdCaseInfo *, evd_case_info_free);

/* Puts the selected files in an open, known case (superseding whatever case each was in). Files already
 * in it are left as they are. -ENOENT for an unknown case or an empty selection, -EPERM for a closed case.
 */
int evd_case_assign(EvdDb *db, const char *case_number, const EvdFileSelector *sel, const char *reason,
                    EvdLifecycleChange *ret, EvdError *err);
/* Takes the selected files that are currently in case_number out of it (they are then in no case).
 * -EALREADY when none of them is in it. */
int evd_case_unassign(EvdDb *db, const char *case_number, const EvdFileSelector *sel, const char *reason,
                      EvdLifecycleChange *ret, EvdError *err);

/* A file as a case sees it: the current case beside the recorder's (archive tag). */
typedef struct EvdCaseFile {
        int64_t file_id;
        char *device_id;
        char *officer_id; /* may be NULL */
        bool has_seq;
        uint64_t seq;
        int64_t recorded_us;    /* recording start, or ingest time */
        char *recorder_case;    /* what the recorder gave = the archive copy's tag; may be NULL */
        char *current_case;     /* may be NULL */
        int64_t association_id; /* 0: the recorder's case holds */
        char sha256[EVD_DB_HEX_SIZE];
        bool disposed;
} EvdCaseFile;

typedef struct EvdAssociation {
        int64_t id;
        int64_t file_id;
        char *action; /* "assign" | "unassign" */
        char *case_number;
        int64_t supersedes; /* 0: the first of this file */
        char *reason;
        char *actor;
        int64_t at_us;
        int64_t custody_event_id;
} EvdAssociation;

/* Files currently in the case (by id) and every association row naming it (by id). */
int evd_case_files(EvdDb *db, const char *case_number, EvdCaseFile **ret_files, size_t *ret_n_files,
                   EvdAssociation **ret_history, size_t *ret_n_history, EvdError *err);
void evd_case_file_array_free(EvdCaseFile *v, size_t n);
void evd_association_array_free(EvdAssociation *v, size_t n);

/* The current and recorder case of each given file, for log/chain/export/disc listings. ret_current[i]
 * and ret_recorder[i] (caller frees each and the arrays) are NULL when a file is in no case. */
int evd_case_current_of_files(EvdDb *db, const int64_t *file_ids, size_t n, char ***ret_current,
                              char ***ret_recorder, EvdError *err);
void evd_strv_free(char **v, size_t n);

/* ---- marks ----------------------------------------------------------------------------------------- */

typedef enum EvdMarkKind {
        EVD_MARK_IMPORTANT = 0, /* 重点 */
        EVD_MARK_LONG_TERM,     /* long-term retention (002:§18): permanent, queues a disc job */
        EVD_MARK_HOLD,          /* legal hold: blocks any disposal */
        _EVD_MARK_KIND_MAX,
} EvdMarkKind;

/* The four reasons of 002:§18 for a long-term mark. */
typedef enum EvdLongTermReason {
        EVD_LONG_TERM_NONE = 0,
        EVD_LONG_TERM_DISPUTE,       /* the party disputes or complains */
        EVD_LONG_TERM_OBSTRUCTION,   /* obstruction, insult or assault of officers */
        EVD_LONG_TERM_MASS_INCIDENT, /* mass incident or emergency */
        EVD_LONG_TERM_OTHER,         /* other: the reason text says what */
        _EVD_LONG_TERM_REASON_MAX,
} EvdLongTermReason;

const char *evd_mark_kind_to_string(EvdMarkKind k);              /* "important", "long_term", "hold" */
int evd_mark_kind_from_string(const char *s);                    /* also "long-term"; -EINVAL */
const char *evd_long_term_reason_to_string(EvdLongTermReason r); /* "dispute", ... */
int evd_long_term_reason_from_string(const char *s);             /* also "mass-incident"; -EINVAL */

/* Sets a mark on the selected files (long_term needs a reason code; every mark a reason text). Files that
 * have the mark already are left as they are. */
int evd_mark_set(EvdDb *db, EvdMarkKind kind, const EvdFileSelector *sel, EvdLongTermReason code,
                 const char *reason, EvdLifecycleChange *ret, EvdError *err);
/* Clears it (-EALREADY when none of the selected files has it). */
int evd_mark_clear(EvdDb *db, EvdMarkKind kind, const EvdFileSelector *sel, const char *reason,
                   EvdLifecycleChange *ret, EvdError *err);

typedef struct EvdMark {
        int64_t id;
        int64_t file_id;
        EvdMarkKind kind;
        EvdLongTermReason code; /* long_term only */
        char *reason;
        char *actor;
        int64_t at_us;
} EvdMark;

/* Marks in force (not cleared), by file then kind; file_id 0: every file. */
int evd_mark_list(EvdDb *db, int64_t file_id, EvdMark **ret, size_t *ret_n, EvdError *err);
void evd_mark_array_free(EvdMark *v, size_t n);

/* A long-term mark queues a disc job (issue 10) where that queue exists: evd_mark_set() returns the newly
 * marked files in ret->file_ids, and the caller (evidockctl mark) queues one job for them after the
 * commit. */
