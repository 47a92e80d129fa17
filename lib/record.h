/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* clang-format off */
/* The record stage: the last stage of the pipeline (source -> copy+hash -> verify -> archive -> record).
 *
 * One EvdRecordStage per docking. It has one call per thing that is recorded, and one per thing the
 * pipeline looks up in the record; each goes to the database while it is reachable and to the local
 * spool (spool.h) when it is not. The caller never asks which: "online or offline" is decided here,
 * once, and reported only for the caller's log (evd_record_spooled()).
 *
 *   looked up                                       recorded (one database transaction, or one spool entry)
 *   evd_record_enrollment_get()  who a device is    evd_record_docking_begin()    docking row + custody
 *   evd_record_head_get()        its last head      evd_record_docking_refused()  a whole refused docking
 *   evd_record_file_known()      already recorded?  evd_record_finding()          a docking-level finding
 *   evd_record_stored_versions() stored otherwise?  evd_record_file()             file row, findings, custody
 *                                                   evd_record_file_link()        a fact on a stored file
 *                                                   evd_record_docking_end()      result, head, custody
 *   evd_record_waiting()         facts still spooled evd_record_disc_job()         a disc burned, a job's state
 *
 * The later facts evidockd learns unattended go through here too: a record linked to a stored copy
 * (during a docking) and a disc job's progress and outcome (evidockd's disc worker: a stage without a
 * docking, one per step). Admin acts (evidockctl case, mark, dispose, access) do not: they need the
 * current database for their lookups and approvals, so evidockctl refuses them while it is unreachable
 * and records nothing (record-entry.h).
 *
 * Online, each recorded call builds an EvdRecordEntry (record-entry.h) and writes it with
 * evd_record_entry_apply(); offline it appends the same entry to the spool, whose replay writes it with
 * the same evd_record_entry_apply(): the rows are the same either way (tests/db/test-record.c).
 *
 * It goes offline when the database was unreachable at the start (db NULL), when a call fails with an
 * "unreachable" error (evd_spool_db_unreachable(): the rest of the docking goes to the spool; the call
 * that failed is spooled), and when entries of the same recorder still wait in the spool at
 * evd_record_docking_begin() (its dockings reach the database in order). Offline, lookups use the
 * spool's cache: enrollments and heads as the database last had them, files recorded or spooled.
 *
 * Adding a recorded thing: record-entry.h says how (a kind, its transaction, its codec, a call here).
 *
 * Errors: negative errno and a message in err (db.h's mapping). -EEXIST from evd_record_file(): the file
 * is recorded already (not an error for the pipeline). An EvdRecordStage is used by one thread. */
/* clang-format on */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "error.h"
#include "record-entry.h"

typedef struct EvdRecordStage EvdRecordStage;

/* db: the connection (borrowed, may be NULL: the database was unreachable when the docking started);
 * spool_dir: the local spool (NULL or "": none, an outage then stops the docking with an error). Fails
 * when neither is usable. With both, the spool's cache is refreshed from the database. */
int evd_record_stage_new(EvdDb *db, const char *spool_dir, EvdRecordStage **ret, EvdError *err);
/* Saves the known-files cache of the docking's recorder and frees. Accepts NULL; returns NULL. */
EvdRecordStage *evd_record_stage_free(EvdRecordStage *rs);
DEFINE_TRIVIAL_CLEANUP_FUNC(EvdRecordStage *, evd_record_stage_free);

/* ---- looked up ----------------------------------------------------------------------------------- */

/* The enrollment of device_id; -ENOENT if not enrolled (offline: not in the cache). Free with
 * evd_db_device_free(). */
int evd_record_enrollment_get(EvdRecordStage *rs, const char *device_id, EvdDbDevice **ret, EvdError *err);
/* The last verified chain head of device_id; -ENOENT if none. */
int evd_record_head_get(EvdRecordStage *rs, const char *device_id, EvdDbChainHead *ret, EvdError *err);
/* "Already recorded?": 1 yes, 0 no. record_hash for a chained file; NULL and source_path + sha256 for a
 * foreign one. */
int evd_record_file_known(EvdRecordStage *rs, const char *device_id, const uint8_t *record_hash,
                          const char *source_path, const uint8_t *sha256, EvdError *err);

/* What the record holds of this recording under another name (online only: the spool does not know, so
 * offline it is 0). 1 and *ret_earlier: the same bytes at the same path were stored without a record
 * (link the record to it: evd_record_file_link()); 2 and *ret_other: another recording is stored for
 * this seq (a second history: record the file with it as its conflict); 0: neither. */
int evd_record_stored_versions(EvdRecordStage *rs, const char *device_id, const char *source_path,
                               const uint8_t *sha256, uint64_t seq, const uint8_t *record_hash,
                               int64_t *ret_earlier, EvdDbOtherVersion *ret_other, EvdError *err);

/* ---- recorded ------------------------------------------------------------------------------------ */

/* The docking starts: its row and custody events (docked, identified). The docking's recorder is
 * d->device_id. */
int evd_record_docking_begin(EvdRecordStage *rs, const EvdDbDocking *d, const EvdCustodyEntry *events,
                             size_t n_events, EvdError *err);
/* A refused docking, whole: its row (device_id NULL), the custody event, the finding, the result. */
int evd_record_docking_refused(EvdRecordStage *rs, const EvdDbDocking *d, const EvdCustodyEntry *event,
                               const EvdFinding *finding, const EvdDbDockingResult *result, EvdError *err);
/* A docking-level finding (not about one stored file). */
int evd_record_finding(EvdRecordStage *rs, const EvdFinding *finding, EvdError *err);
/* One stored file: its row, findings and custody events; with conflict (from evd_record_stored_versions(),
 * may be NULL) the SEGMENT_CONFLICT appended to the other version in the same transaction. 0: recorded
 * (or spooled: then without the conflict link); -EEXIST: it was recorded before (nothing written). */
int evd_record_file(EvdRecordStage *rs, const EvdDbFile *file, const EvdFinding *findings, size_t n_findings,
                    const EvdCustodyEntry *events, size_t n_events, const EvdDbOtherVersion *conflict,
                    EvdError *err);
/* A later fact about a stored recording (db-links.h): the link, its findings, its custody events, in this
 * docking (link->docking_id is ignored). 0: linked, linked before, or spooled (the replay links it). */
int evd_record_file_link(EvdRecordStage *rs, const EvdDbFileLink *link, const EvdFinding *findings,
                         size_t n_findings, const EvdCustodyEntry *events, size_t n_events, EvdError *err);
/* A disc burned (disc, may be NULL) and/or the next state of its job (next, may be NULL), in one
 * transaction (db-disc.h); their spool_key is set here when they are spooled. 0: recorded (*ret_disc_id,
 * may be NULL: the disc's id, 0 if none); 1: spooled (the replay records them; *ret_disc_id 0);
 * -EEXIST: this copy was verified already. */
int evd_record_disc_job(EvdRecordStage *rs, const EvdDbDisc *disc, const EvdDbDiscJobEvent *next,
                        int64_t *ret_disc_id, EvdError *err);
/* How many entries of kind wait in the spool for the current database (0 without a spool). A disc worker
 * does not start a step while DISC_JOB facts wait: the database does not know the job's state yet. */
int evd_record_waiting(EvdRecordStage *rs, EvdRecordKind kind, unsigned *ret_n, EvdError *err);
/* The docking ends: its result, the new head (NULL: it did not move), the custody event. Afterwards the
 * spool's cache holds the head this recorder's next offline docking verifies against. */
int evd_record_docking_end(EvdRecordStage *rs, const EvdDbChainHead *head, const EvdCustodyEntry *event,
                           const EvdDbDockingResult *result, EvdError *err);

/* ---- for the caller's report --------------------------------------------------------------------- */

/* The docking's database id; 0 before evd_record_docking_begin/refused() and while it is spooled. */
int64_t evd_record_docking_id(const EvdRecordStage *rs);
/* True once (part of) the docking goes to the spool; *ret_why (may be NULL) says why. */
bool evd_record_spooled(const EvdRecordStage *rs, const char **ret_why);
/* Files recorded into the spool only. */
unsigned evd_record_files_spooled(const EvdRecordStage *rs);
