/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the record stage records: one entry is one database transaction. The same entry is written to
 * the database online, encoded into the spool offline (spool-codec.h), and decoded and written to the
 * database at replay, always by evd_record_entry_apply(): the online and the replayed rows come from
 * the same code. record.h is the stage that builds entries; this header is the vocabulary it shares
 * with the spool.
 *
 * Which facts are recorded here (docs/spool.md, "What is spooled"): everything evidock records without a
 * person waiting for it -- a docking and its files, and the later facts evidockd learns unattended (a
 * record linked to a stored copy, a disc burned and its job's state). An admin act (case link, mark,
 * disposal, access decision) is not: it needs lookups and sometimes approval against the current
 * database, and a person is there to run it again, so evidockctl refuses it while the database is
 * unreachable and records nothing.
 *
 * Adding a new recorded thing:
 *   1. a kind below (at the end: the name goes into spool files, never rename one; no '-' in it) and its
 *      fields in EvdRecordEntry (borrowed pointers), with its check in evd_record_entry_check();
 *   2. its transaction in evd_record_entry_apply() (record-apply.c), calling its lib/db-<area>.c; its
 *      replay must be harmless the second time: a unique key that says -EEXIST ("already recorded"),
 *      e.g. a spool_key column filled only for spooled facts (migration 9);
 *   3. its fields in the spool codec (spool-codec.c: encode and decode, and a corpus file in
 *      tests/fuzz/corpus-spool-entry);
 *   4. one call in record.h that builds the entry (online or spooled is decided there, not by the caller);
 *   5. if it needs an existing docking, the replay finds its docking id like FILE does; if it belongs to
 *      no docking, list it in evd_record_kind_standalone() (spool-replay.c applies it as it is). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "custody.h"
#include "db-disc.h"
#include "db-links.h"
#include "db.h"
#include "error.h"
#include "finding.h"

#define EVD_RECORD_EVENTS_MAX   16u   /* custody events in one entry */
#define EVD_RECORD_FINDINGS_MAX 4096u /* findings in one entry */

typedef enum EvdRecordKind {
        EVD_RECORD_KIND_BEGIN,    /* a docking starts: docking row + custody (docked, identified) */
        EVD_RECORD_KIND_REFUSED,  /* a refused docking, whole: docking row, custody, finding, result */
        EVD_RECORD_KIND_FILE,     /* one file: row + its findings + its custody events */
        EVD_RECORD_KIND_FINDING,  /* one docking-level finding */
        EVD_RECORD_KIND_END,      /* the docking ends: result, head (if it moved), custody, findings */
        EVD_RECORD_KIND_LINK,     /* a later fact on a stored file (db-links.h), learnt by a docking */
        EVD_RECORD_KIND_DISC_JOB, /* a disc burned (verified or failed) and/or a disc job's next state */
        _EVD_RECORD_KIND_MAX,
} EvdRecordKind;

const char *
evd_record_kind_to_string(EvdRecordKind k);     /* "begin", "refused", "file", ...; NULL if invalid */
int evd_record_kind_from_string(const char *s); /* EvdRecordKind, or -EINVAL */
/* True for the kinds that belong to no docking (DISC_JOB): applied with docking_id 0. */
bool evd_record_kind_standalone(EvdRecordKind k);

/* One recorded thing. Everything is borrowed for the duration of a call. Custody events' docking_id and
 * file_id are ignored: evd_record_entry_apply() sets them. */
typedef struct EvdRecordEntry {
        EvdRecordKind kind;
        const char *device_id;             /* the docked recorder; NULL if refused or unidentified */
        const EvdDbDocking *docking;       /* BEGIN, REFUSED */
        const EvdDbFile *file;             /* FILE (its docking_id is ignored) */
        const EvdDbOtherVersion *conflict; /* FILE: another recording stored for its seq (db-links.h): the
                                            * SEGMENT_CONFLICT is appended to it in the same transaction.
                                            * Online only: the spool does not carry it (the file's own
                                            * SEGMENT_CONFLICT finding it does). */
        const EvdFinding *findings;        /* REFUSED, FILE, FINDING (exactly one); END: docking-level
                                            * findings written with the end (the replay's deferred ones) */
        size_t n_findings;                 /* at most EVD_RECORD_FINDINGS_MAX */
        const EvdCustodyEntry *events;     /* at most EVD_RECORD_EVENTS_MAX */
        size_t n_events;
        const EvdDbChainHead *head;       /* END: the new head of device_id; NULL: it did not move */
        const EvdDbDockingResult *result; /* REFUSED, END */
        const EvdDbFileLink *link;        /* LINK (its docking_id is ignored); findings and events with it */
        const EvdDbDisc *disc;            /* DISC_JOB: a disc burned; NULL: none */
        const EvdDbDiscJobEvent *job_event; /* DISC_JOB: the job's next state; NULL: none (one of the two
                                             * at least; both: one transaction, the disc first) */
} EvdRecordEntry;

/* 0 if the entry has what its kind needs, else -EINVAL with what is missing. */
int evd_record_entry_check(const EvdRecordEntry *e, EvdError *err);

/* Called by evd_record_entry_apply() for BEGIN and REFUSED once the docking row exists, before the
 * commit (the spool's replay notes the new id there, durably). A return < 0 rolls the entry back. */
typedef int (*EvdRecordDockingFn)(int64_t docking_id, void *userdata);

/* Writes one entry to the database in ONE transaction (the caller has none open):
 *   BEGIN, REFUSED  a new docking row (*ret_id, may be NULL), on_docking (may be NULL), the
 *                   custody events, the findings, the result (REFUSED)
 *   FILE            evd_db_file_record() into docking_id, and with a conflict the link on the other
 *                   version; -EEXIST: recorded already, nothing written
 *   FINDING         one docking-level finding of docking_id
 *   END             the result of docking_id first (-EEXIST: finished already, nothing written), then
 *                   the head, the custody events, the findings
 *   LINK            evd_db_file_link() with docking_id (-EEXIST: linked already)
 *   DISC_JOB        evd_db_disc_record() then evd_db_disc_job_event_add() (-EEXIST: this copy was
 *                   verified already, or this spooled fact was recorded); *ret_id (may be NULL):
 *                   the new disc's id, 0 if none
 * Errors as db.h; nothing is written on error. */
int evd_record_entry_apply(EvdDb *db, const EvdRecordEntry *e, int64_t docking_id,
                           EvdRecordDockingFn on_docking, void *userdata, int64_t *ret_id, EvdError *err);
