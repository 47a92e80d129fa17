/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Later facts about a stored recording (issue 9): evidence rows are never changed, so what a later
 * docking learns about a file stored earlier is a new row in file_links (migration 4), the findings it
 * brings (rows in findings with that file's id and the later docking's id) and a custody event.
 *
 *   record_found  a recording stored without its record (docked before the recorder wrote it, or while
 *                 CHAIN.LOG could not be read) is presented again with its record: the same bytes at the
 *                 same path. The record is linked to the stored copy; nothing is stored a second time.
 *   conflict      a later docking presents another recording for a sequence number already stored (same
 *                 key, a second history): the new version is stored in quarantine with SEGMENT_CONFLICT,
 *                 and the stored one gets the finding appended (file_id = the stored one,
 *                 other_file_id = the new one).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "custody.h"
#include "db.h"

#define EVD_DB_LINK_RECORD_FOUND "record_found"
#define EVD_DB_LINK_CONFLICT     "conflict"

typedef struct EvdDbFileLink {
        int64_t docking_id; /* the docking that learnt it */
        const char *device_id;
        int64_t file_id;       /* the stored recording the fact is about */
        const char *relation;  /* EVD_DB_LINK_* */
        int64_t other_file_id; /* conflict: the other version; 0: none */
        bool has_seq;
        uint64_t seq;
        const uint8_t *record_hash; /* 32 bytes; required for record_found */
        const char *chain_record;   /* the manifest line; may be NULL */
        EvdVerdict verdict;         /* of the fact: the record's verdict, or SEGMENT_CONFLICT */
        const char *detail;         /* one line */
} EvdDbFileLink;

/* Records one link, the findings it brings (each stored with file_id = link->file_id and docking_id =
 * link->docking_id) and its custody events (file_id, docking_id and device_id default to the link's) in
 * ONE transaction (a savepoint if one is open). -EEXIST when the record is linked already. */
int evd_db_file_link(EvdDb *db, const EvdDbFileLink *link, const EvdFinding *findings, size_t n_findings,
                     const EvdCustodyEntry *events, size_t n_events, EvdError *err);

/* A stored recording that a record was linked to ("already ingested?" for a record): 1 and
 * *ret_file_id (may be NULL), or 0. */
int evd_db_file_find_linked(EvdDb *db, const char *device_id, const uint8_t record_hash[EVD_DIGEST_SIZE],
                            int64_t *ret_file_id, EvdError *err);

/* Another version of seq: the first stored chained recording of this device with this seq and another
 * record hash (also one linked by record_found). 1 and *ret (may be NULL), or 0. */
typedef struct EvdDbOtherVersion {
        int64_t file_id;
        uint8_t record_hash[EVD_DIGEST_SIZE];
        uint8_t sha256[EVD_DIGEST_SIZE];
} EvdDbOtherVersion;
int evd_db_file_find_other_version(EvdDb *db, const char *device_id, uint64_t seq,
                                   const uint8_t record_hash[EVD_DIGEST_SIZE], EvdDbOtherVersion *ret,
                                   EvdError *err);
