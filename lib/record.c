/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The record stage (record.h): database while it is reachable, the spool when it is not. */
#include <inttypes.h>
#include <stdio.h>
#include <sys/random.h>

#include "hash.h"
#include "record.h"
#include "spool.h"

struct EvdRecordStage {
        EvdDb *db;                          /* NULL while offline */
        EvdSpool *spool;                    /* NULL: none configured, or unusable */
        EvdSpoolDocking *sd;                /* this docking in the spool, once it goes there */
        bool offline;                       /* writes go to the spool */
        char why[300];                      /* why it went offline */
        char device_id[EVD_DEVICE_ID_SIZE]; /* the docked recorder, once known */
        int64_t docking_id;                 /* in the database; 0: none (yet) */
        unsigned files_spooled;
        bool has_db_head; /* db_head came from the database */
        EvdDbChainHead db_head;
};

/* From now on this docking is written to the spool. err (if any) is cleared: the docking goes on. */
static void go_offline(EvdRecordStage *rs, const char *why, EvdError *err)
{
        if (rs->offline)
                return;
        rs->offline = true;
        rs->db = NULL;
        snprintf(rs->why, sizeof(rs->why), "%s", why);
        if (err)
                *err = (EvdError){};
        evd_debug("record: spooling to %s: %s", evd_spool_dir(rs->spool), why);
}

/* A database call failed with r: 1 when the docking goes on into the spool instead (the database is
 * unreachable and there is a spool), else r. */
static int db_failed(EvdRecordStage *rs, int r, EvdError *err)
{
        if (!rs->spool || !evd_spool_db_unreachable(r))
                return r;
        char why[sizeof(rs->why)];
        snprintf(why, sizeof(why), "database unreachable: %s", evd_error_message(err, r));
        if (rs->db)
                (void)evd_db_rollback(rs->db);
        go_offline(rs, why, err);
        return 1;
}

int evd_record_stage_new(EvdDb *db, const char *spool_dir, EvdRecordStage **ret, EvdError *err)
{
        _cleanup_(evd_record_stage_freep) EvdRecordStage *rs = calloc(1, sizeof(*rs));
        if (!rs)
                return -ENOMEM;
        rs->db = db;
        if (spool_dir && spool_dir[0]) {
                EvdError serr = {};
                int r = evd_spool_open(spool_dir, &rs->spool, &serr);
                if (r < 0 && !db)
                        return evd_error_set(err, r, "database unreachable, and the spool is unusable: %s",
                                             evd_error_message(&serr, r));
                if (r < 0)
                        evd_debug("record: no spool: %s", evd_error_message(&serr, r));
        }
        if (!db) {
                if (!rs->spool)
                        return evd_error_set(err, -ENOTCONN, "no database connection and no spool");
                go_offline(rs, "no database connection when the docking started", NULL);
        } else if (rs->spool) {
                /* what an offline docking needs later: enrollments, and which database this is */
                EvdError cerr = {};
                int r = evd_spool_cache_refresh(rs->spool, db, &cerr);
                if (r < 0 && db_failed(rs, r, &cerr) != 1)
                        evd_debug("record: spool cache not refreshed: %s", evd_error_message(&cerr, r));
        }
        *ret = steal_ptr(&rs);
        return 0;
}

EvdRecordStage *evd_record_stage_free(EvdRecordStage *rs)
{
        if (!rs)
                return NULL;
        evd_spool_docking_close(rs->sd);
        if (rs->spool && rs->device_id[0])
                (void)evd_spool_cache_known_save(rs->spool, rs->device_id, NULL);
        evd_spool_free(rs->spool);
        free(rs);
        return NULL;
}

int64_t evd_record_docking_id(const EvdRecordStage *rs)
{
        return rs->docking_id;
}

bool evd_record_spooled(const EvdRecordStage *rs, const char **ret_why)
{
        if (ret_why)
                *ret_why = rs->why;
        return rs->offline;
}

unsigned evd_record_files_spooled(const EvdRecordStage *rs)
{
        return rs->files_spooled;
}

/* ---- the two destinations ------------------------------------------------------------------------- */

/* Online: the entry's transaction. 0 written; 1 the database is unreachable, spool it; else the error. */
static int put_db(EvdRecordStage *rs, const EvdRecordEntry *e, int64_t *ret_docking_id, EvdError *err)
{
        if (rs->offline)
                return 1;
        int r = evd_record_entry_apply(rs->db, e, rs->docking_id, NULL, NULL, ret_docking_id, err);
        if (r >= 0 || r == -EEXIST)
                return r;
        return db_failed(rs, r, err);
}

static int put_spool(EvdRecordStage *rs, const EvdRecordEntry *e, EvdError *err)
{
        int r = 0;
        if (!rs->sd)
                r = evd_spool_docking_open(rs->spool, rs->docking_id, rs->device_id, &rs->sd, err);
        if (r >= 0)
                r = evd_spool_append(rs->spool, rs->sd, e, err);
        if (r < 0)
                evd_error_prefix(err, "database unreachable and the spool failed: ");
        return r;
}

/* A new docking (BEGIN, REFUSED): its database id, or its spool entry. */
static int put_docking(EvdRecordStage *rs, const EvdRecordEntry *e, EvdError *err)
{
        int64_t id = 0;
        int r = put_db(rs, e, &id, err);
        if (r == 0)
                rs->docking_id = id;
        if (r != 1)
                return r;
        return put_spool(rs, e, err);
}

/* Offline re-dockings must find what is recorded now (in the database or the spool). */
static void remember(EvdRecordStage *rs, const char *device_id, const uint8_t *record_hash,
                     const char *source_path, const uint8_t *sha256)
{
        if (rs->spool && device_id)
                (void)evd_spool_cache_known_add(rs->spool, device_id, record_hash, source_path, sha256);
}

/* ---- looked up ------------------------------------------------------------------------------------ */

int evd_record_enrollment_get(EvdRecordStage *rs, const char *device_id, EvdDbDevice **ret, EvdError *err)
{
        if (!rs->offline) {
                int r = evd_db_device_get(rs->db, device_id, ret, err);
                if (r >= 0 || r == -ENOENT || db_failed(rs, r, err) != 1)
                        return r;
        }
        return evd_spool_cache_device(rs->spool, device_id, ret, err);
}

int evd_record_head_get(EvdRecordStage *rs, const char *device_id, EvdDbChainHead *ret, EvdError *err)
{
        if (!rs->offline) {
                int r = evd_db_chain_head_get(rs->db, device_id, ret, err);
                if (r >= 0) {
                        rs->db_head = *ret;
                        rs->has_db_head = true;
                }
                if (r >= 0 || r == -ENOENT || db_failed(rs, r, err) != 1)
                        return r;
        }
        return evd_spool_cache_head_get(rs->spool, device_id, ret, err);
}

int evd_record_file_known(EvdRecordStage *rs, const char *device_id, const uint8_t *record_hash,
                          const char *source_path, const uint8_t *sha256, EvdError *err)
{
        int r = -ENOTCONN;
        if (!rs->offline) {
                r = record_hash
                        ? evd_db_file_find_chained(rs->db, device_id, record_hash, NULL, err)
                        : evd_db_file_find_foreign(rs->db, device_id, source_path, sha256, NULL, err);
                /* a record may also have been linked to a copy stored without it (db-links.h) */
                if (r == 0 && record_hash)
                        r = evd_db_file_find_linked(rs->db, device_id, record_hash, NULL, err);
                if (r < 0 && db_failed(rs, r, err) != 1)
                        return r;
        }
        /* offline (now): the spool's FILE entries and the known-files cache */
        if (r < 0)
                r = evd_spool_file_find(rs->spool, device_id, record_hash, source_path, sha256, err);
        if (r > 0)
                remember(rs, device_id, record_hash, source_path, sha256);
        return r;
}

int evd_record_stored_versions(EvdRecordStage *rs, const char *device_id, const char *source_path,
                               const uint8_t *sha256, uint64_t seq, const uint8_t *record_hash,
                               int64_t *ret_earlier, EvdDbOtherVersion *ret_other, EvdError *err)
{
        if (rs->offline)
                return 0;
        int64_t earlier = 0;
        int r = evd_db_file_find_foreign(rs->db, device_id, source_path, sha256, &earlier, err);
        if (r > 0 && earlier > 0) {
                *ret_earlier = earlier;
                return 1;
        }
        if (r == 0)
                r = evd_db_file_find_other_version(rs->db, device_id, seq, record_hash, ret_other, err);
        if (r < 0)
                return db_failed(rs, r, err) == 1 ? 0 : r;
        return r > 0 ? 2 : 0;
}

/* ---- recorded ------------------------------------------------------------------------------------- */

int evd_record_docking_begin(EvdRecordStage *rs, const EvdDbDocking *d, const EvdCustodyEntry *events,
                             size_t n_events, EvdError *err)
{
        snprintf(rs->device_id, sizeof(rs->device_id), "%s",
                 evd_device_id_valid(d->device_id) ? d->device_id : "");
        /* this recorder's earlier dockings still in the spool go to the database first: keep its order */
        unsigned pending = 0;
        if (!rs->offline && rs->spool && rs->device_id[0] &&
            evd_spool_device_pending(rs->spool, rs->device_id, &pending) >= 0 && pending > 0) {
                char why[200];
                snprintf(why, sizeof(why), "%u entries of recorder %s still wait in the spool", pending,
                         rs->device_id);
                go_offline(rs, why, NULL);
        }
        EvdRecordEntry e = {.kind = EVD_RECORD_KIND_BEGIN,
                            .device_id = rs->device_id[0] ? rs->device_id : NULL,
                            .docking = d,
                            .events = events,
                            .n_events = n_events};
        return put_docking(rs, &e, err);
}

int evd_record_docking_refused(EvdRecordStage *rs, const EvdDbDocking *d, const EvdCustodyEntry *event,
                               const EvdFinding *finding, const EvdDbDockingResult *result, EvdError *err)
{
        EvdRecordEntry e = {.kind = EVD_RECORD_KIND_REFUSED,
                            .docking = d,
                            .findings = finding,
                            .n_findings = 1,
                            .events = event,
                            .n_events = 1,
                            .result = result};
        return put_docking(rs, &e, err);
}

int evd_record_finding(EvdRecordStage *rs, const EvdFinding *finding, EvdError *err)
{
        EvdRecordEntry e = {.kind = EVD_RECORD_KIND_FINDING, .findings = finding, .n_findings = 1};
        int r = put_db(rs, &e, NULL, err);
        if (r != 1)
                return r;
        return put_spool(rs, &e, err);
}

int evd_record_file(EvdRecordStage *rs, const EvdDbFile *file, const EvdFinding *findings, size_t n_findings,
                    const EvdCustodyEntry *events, size_t n_events, const EvdDbOtherVersion *conflict,
                    EvdError *err)
{
        EvdRecordEntry e = {.kind = EVD_RECORD_KIND_FILE,
                            .device_id = file->device_id,
                            .file = file,
                            .conflict = conflict,
                            .findings = findings,
                            .n_findings = n_findings,
                            .events = events,
                            .n_events = n_events};
        int r = put_db(rs, &e, NULL, err);
        if (r == 1) { /* its store files are kept and named: the row waits in the spool */
                r = put_spool(rs, &e, err);
                if (r >= 0)
                        rs->files_spooled++;
        }
        if (r >= 0 || r == -EEXIST)
                remember(rs, file->device_id, file->record_hash, file->source_path, file->sha256);
        return r;
}

int evd_record_docking_end(EvdRecordStage *rs, const EvdDbChainHead *head, const EvdCustodyEntry *event,
                           const EvdDbDockingResult *result, EvdError *err)
{
        EvdRecordEntry e = {.kind = EVD_RECORD_KIND_END,
                            .device_id = rs->device_id[0] ? rs->device_id : NULL,
                            .head = head,
                            .events = event,
                            .n_events = 1,
                            .result = result};
        int r = put_db(rs, &e, NULL, err);
        if (r == 1)
                r = put_spool(rs, &e, err);
        if (r < 0)
                return r;
        /* the head an offline docking of this recorder verifies against next */
        if (rs->spool && rs->device_id[0] && (head || (rs->has_db_head && !rs->offline)))
                (void)evd_spool_cache_head_set(rs->spool, rs->device_id, head ? head : &rs->db_head, NULL);
        return 0;
}

int evd_record_file_link(EvdRecordStage *rs, const EvdDbFileLink *link, const EvdFinding *findings,
                         size_t n_findings, const EvdCustodyEntry *events, size_t n_events, EvdError *err)
{
        EvdRecordEntry e = {.kind = EVD_RECORD_KIND_LINK,
                            .device_id = link->device_id,
                            .link = link,
                            .findings = findings,
                            .n_findings = n_findings,
                            .events = events,
                            .n_events = n_events};
        int r = put_db(rs, &e, NULL, err);
        if (r == -EEXIST) { /* linked by a run that got this far before */
                if (err)
                        *err = (EvdError){};
                r = 0;
        }
        if (r == 1)
                r = put_spool(rs, &e, err);
        if (r < 0)
                return r;
        remember(rs, link->device_id, link->record_hash, NULL, NULL);
        return 0;
}

/* A random key for a spooled fact without a natural unique key (db-disc.h spool_key). */
static int spool_key_new(char out[33], EvdError *err)
{
        uint8_t rnd[16];
        if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
                return evd_error_set(err, -EIO, "no random bytes for a spool key");
        evd_hex(rnd, sizeof(rnd), out);
        return 0;
}

int evd_record_disc_job(EvdRecordStage *rs, const EvdDbDisc *disc, const EvdDbDiscJobEvent *next,
                        int64_t *ret_disc_id, EvdError *err)
{
        if (ret_disc_id)
                *ret_disc_id = 0;
        EvdRecordEntry e = {.kind = EVD_RECORD_KIND_DISC_JOB, .disc = disc, .job_event = next};
        int r = put_db(rs, &e, ret_disc_id, err);
        if (r != 1)
                return r;
        /* spooled: the rows get keys that make their replay write them once */
        char disc_key[33], event_key[33];
        EvdDbDisc d;
        EvdDbDiscJobEvent ev;
        if (disc) {
                d = *disc;
                if ((r = spool_key_new(disc_key, err)) < 0)
                        return r;
                d.spool_key = disc_key;
                e.disc = &d;
        }
        if (next) {
                ev = *next;
                if ((r = spool_key_new(event_key, err)) < 0)
                        return r;
                ev.spool_key = event_key;
                e.job_event = &ev;
        }
        r = put_spool(rs, &e, err);
        return r < 0 ? r : 1;
}

int evd_record_waiting(EvdRecordStage *rs, EvdRecordKind kind, unsigned *ret_n, EvdError *err)
{
        *ret_n = 0;
        if (!rs->spool)
                return 0;
        int r = evd_spool_kind_pending(rs->spool, kind, ret_n);
        if (r < 0)
                return evd_error_set_errno(err, r, "listing %s/entries", evd_spool_dir(rs->spool));
        return 0;
}
