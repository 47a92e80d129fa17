/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Who may see what (docs/access.md). The database enforces it (migration 8: grants, row-level security,
 * and SECURITY DEFINER functions that check and custody-log every use); these calls are its C face.
 *
 * - Confidentiality per file or per case, set by an admin with a reason (append-only history; a file's own
 *   latest entry wins over its case's, which wins over the level the file was ingested with).
 * - Viewers see the normal files of their units (unit membership set by an admin).
 * - Everything else is reached through an access request (view or copy, files or a case, a purpose, a
 *   duration), approved or denied by another person (evidock_admin), and opened while the approval
 *   lasts: each open writes one custody event per file naming requester, approver and purpose.
 *
 * Who acts is the database login (session_user): the library never says who it is. Refusals by the
 * database are -EACCES (privilege, not approved, expired, someone else's request), -EPERM (deciding on
 * one's own request), -ENOENT (no such request, file or case), -EEXIST (already decided). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "error.h"
#include "hash.h"

typedef enum EvdConfidentiality {
        EVD_CONF_NORMAL = 0,
        EVD_CONF_RESTRICTED,
        EVD_CONF_CONFIDENTIAL,
        EVD_CONF_SECRET, /* for sites that need a secrecy level above confidential */
        _EVD_CONF_MAX,
} EvdConfidentiality;

const char *evd_confidentiality_to_string(EvdConfidentiality c); /* "normal", ... */
int evd_confidentiality_from_string(const char *s);              /* the level, or -EINVAL */

typedef enum EvdAccessUse {
        EVD_ACCESS_VIEW = 0,
        EVD_ACCESS_COPY,
} EvdAccessUse;

const char *evd_access_use_to_string(EvdAccessUse u); /* "view", "copy" */
int evd_access_use_from_string(const char *s);        /* the use, or -EINVAL */

#define EVD_ACCESS_MAX_FILES    10000u
#define EVD_ACCESS_MAX_DURATION (90 * 24 * 3600) /* seconds an approval may last at most */

/* Sets the level of one file (file_id > 0, case_number NULL) or of every file of a case (file_id 0).
 * reason: at least 3 characters. Admin only. Writes a custody event "confidentiality". */
int evd_access_set_level(EvdDb *db, int64_t file_id, const char *case_number, EvdConfidentiality level,
                         const char *reason, EvdError *err);

/* The effective level of a file (-ENOENT if no such file or not visible to the caller's role). */
int evd_access_get_level(EvdDb *db, int64_t file_id, EvdConfidentiality *ret_level, EvdError *err);

/* Adds a login to a unit (its viewers see the unit's normal files) or removes it. Admin only. */
int evd_access_unit_member(EvdDb *db, const char *login, const char *unit_code, bool add, EvdError *err);

typedef struct EvdAccessRequestSpec {
        EvdAccessUse use;
        const int64_t *file_ids; /* either file ids ... */
        size_t n_file_ids;
        const char *case_number; /* ... or a case */
        const char *purpose;     /* why; at least 3 characters */
        int64_t duration_s;      /* how long the access is wanted, 1 s .. EVD_ACCESS_MAX_DURATION */
} EvdAccessRequestSpec;

/* Files a request as the connected login. Writes a custody event "access_requested". */
int evd_access_request(EvdDb *db, const EvdAccessRequestSpec *spec, int64_t *ret_request_id, EvdError *err);

/* Approves (for at most duration_s from now, 0: as long as requested) or denies a request. The deciding
 * login must not be the requester (-EPERM) and must be an admin (-EACCES). Writes "access_approved" or
 * "access_denied". */
int evd_access_decide(EvdDb *db, int64_t request_id, bool approve, const char *reason, int64_t duration_s,
                      EvdError *err);

typedef enum EvdAccessState {
        EVD_ACCESS_PENDING = 0,
        EVD_ACCESS_APPROVED,
        EVD_ACCESS_DENIED,
        EVD_ACCESS_EXPIRED,
} EvdAccessState;

const char *evd_access_state_to_string(EvdAccessState s); /* "pending", "approved", "denied", "expired" */

typedef struct EvdAccessRequestRow {
        int64_t id;
        char *requester;
        EvdAccessUse use;
        char *files;       /* "1,2,3", or NULL when a case */
        char *case_number; /* or NULL */
        char *purpose;
        int64_t duration_s;
        int64_t requested_us;
        EvdAccessState state;
        char *decided_by; /* NULL while pending */
        char *reason;     /* the decision's reason, may be NULL */
        int64_t decided_us;
        int64_t expires_us; /* 0 unless approved */
} EvdAccessRequestRow;

/* The requests the caller may see (a viewer: its own; admin, auditor: all), newest first, at most max
 * (0: 1000). only_open: pending and unexpired approvals only. */
int evd_access_list(EvdDb *db, bool only_open, size_t max, EvdAccessRequestRow **ret_rows, size_t *ret_n,
                    EvdError *err);
EvdAccessRequestRow *evd_access_rows_free(EvdAccessRequestRow *rows, size_t n);
/* One request (-ENOENT if none, or not visible to a viewer because it is someone else's). Free with
 * evd_access_rows_free(row, 1). */
int evd_access_get(EvdDb *db, int64_t request_id, EvdAccessRequestRow **ret_row, EvdError *err);

/* One file reached through an approved request. */
typedef struct EvdAccessItem {
        int64_t file_id;
        char *device_id;
        char *case_number; /* may be NULL */
        EvdConfidentiality level;
        uint64_t size;
        uint8_t sha256[EVD_DIGEST_SIZE];
        char *original_path; /* relative to the store */
        char *archive_path;  /* may be NULL */
        bool has_archive_sha256;
        uint8_t archive_sha256[EVD_DIGEST_SIZE];
        bool has_record_hash;
        uint8_t record_hash[EVD_DIGEST_SIZE];
        char *chain_record; /* may be NULL (a foreign file) */
        bool has_seq;
        uint64_t seq;
        int64_t recorded_start_us; /* 0 if unknown */
        char *verdict;
        char *key_id; /* the recorder's key at ingest; may be NULL */
        char *suite;
        char *public_key_pem;
} EvdAccessItem;

/* Opens the files of an approved request for use (view, or copy: needs a copy approval), as the
 * requester, while the approval lasts. One custody event per file ("viewed" or "exported") in the same
 * transaction; note (may be NULL) is added to them (e.g. the export's destination). */
int evd_access_open(EvdDb *db, int64_t request_id, EvdAccessUse use, const char *note,
                    EvdAccessItem **ret_items, size_t *ret_n, EvdError *err);
EvdAccessItem *evd_access_items_free(EvdAccessItem *items, size_t n);

/* Before showing metadata of files (a log, a chain view): writes one custody event "listed" naming the
 * login and those of the files that are not normal (nothing when all are normal). Returns how many were
 * restricted or above. A caller that cannot log must not show them. */
int evd_access_log_listing(EvdDb *db, const int64_t *file_ids, size_t n, const char *what, EvdError *err);

/* Records a refusal that happened outside the database (or whose transaction rolled back): a custody
 * event "access_refused" naming the login, the request (0: none) and why. */
int evd_access_log_refusal(EvdDb *db, int64_t request_id, const char *why, EvdError *err);

/* The custody events of an approved copy's files and their dockings, for an export. */
typedef struct EvdAccessCustodyRow {
        int64_t id;
        int64_t time_us;
        char *kind;
        char *device_id; /* may be NULL */
        int64_t docking_id;
        int64_t file_id;
        char *detail;
        char *prev_hash; /* hex */
        char *hash;      /* hex */
        char *actor;     /* the login that wrote it; NULL for events before migration 8 */
} EvdAccessCustodyRow;

int evd_access_custody(EvdDb *db, int64_t request_id, EvdAccessCustodyRow **ret_rows, size_t *ret_n,
                       EvdError *err);
EvdAccessCustodyRow *evd_access_custody_free(EvdAccessCustodyRow *rows, size_t n);

/* The custody log's head (id 0 if empty): anybody may read it, to record it elsewhere. */
int evd_access_custody_head(EvdDb *db, int64_t *ret_id, char ret_hash[2 * EVD_DIGEST_SIZE + 1],
                            EvdError *err);

/* The connected login (session_user); caller frees. */
int evd_access_whoami(EvdDb *db, char **ret_login, EvdError *err);
