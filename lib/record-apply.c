/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* An entry becomes database rows (record-entry.h): the one code path for online writes and for the
 * spool's replay. */
#include <inttypes.h>
#include <stdio.h>

#include "path.h"
#include "record-entry.h"

static const char *const kind_names[_EVD_RECORD_KIND_MAX] = {
    [EVD_RECORD_KIND_BEGIN] = "begin",       [EVD_RECORD_KIND_REFUSED] = "refused",
    [EVD_RECORD_KIND_FILE] = "file",         [EVD_RECORD_KIND_FINDING] = "finding",
    [EVD_RECORD_KIND_END] = "end",           [EVD_RECORD_KIND_LINK] = "link",
    [EVD_RECORD_KIND_DISC_JOB] = "disc_job",
};

const char *evd_record_kind_to_string(EvdRecordKind k)
{
        return k >= 0 && k < _EVD_RECORD_KIND_MAX ? kind_names[k] : NULL;
}

int evd_record_kind_from_string(const char *s)
{
        for (int k = 0; s && k < _EVD_RECORD_KIND_MAX; k++)
                if (strcmp(s, kind_names[k]) == 0)
                        return k;
        return -EINVAL;
}

bool evd_record_kind_standalone(EvdRecordKind k)
{
        return k == EVD_RECORD_KIND_DISC_JOB;
}

int evd_record_entry_check(const EvdRecordEntry *e, EvdError *err)
{
        const char *kind = e ? evd_record_kind_to_string(e->kind) : NULL;
        if (!kind || e->n_findings > EVD_RECORD_FINDINGS_MAX || e->n_events > EVD_RECORD_EVENTS_MAX ||
            (e->n_findings > 0 && !e->findings) || (e->n_events > 0 && !e->events) ||
            ((e->kind == EVD_RECORD_KIND_BEGIN || e->kind == EVD_RECORD_KIND_REFUSED) && !e->docking) ||
            ((e->kind == EVD_RECORD_KIND_REFUSED || e->kind == EVD_RECORD_KIND_END) && !e->result) ||
            (e->kind == EVD_RECORD_KIND_FILE && (!e->file || !e->file->sha256)) ||
            (e->kind == EVD_RECORD_KIND_FINDING && e->n_findings != 1) ||
            (e->kind == EVD_RECORD_KIND_LINK && (!e->link || !e->link->relation || !e->link->device_id)) ||
            (e->kind == EVD_RECORD_KIND_DISC_JOB &&
             ((!e->disc && !e->job_event) ||
              (e->disc && (!e->disc->drive || !e->disc->media || !e->disc->by)) ||
              (e->job_event && !e->job_event->state))))
                return evd_error_set(err, -EINVAL, "recorded entry '%s': incomplete", strna(kind));
        return 0;
}

/* Ends the entry's transaction: commit if r >= 0, else roll back. */
static int tx_end(EvdDb *db, int r, EvdError *err)
{
        if (r >= 0)
                r = evd_db_commit(db, err);
        if (r < 0)
                (void)evd_db_rollback(db);
        return r;
}

/* The custody events of an entry, with the docking they belong to. */
static void events_for(const EvdRecordEntry *e, int64_t docking_id,
                       EvdCustodyEntry out[EVD_RECORD_EVENTS_MAX])
{
        for (size_t i = 0; i < e->n_events; i++) {
                out[i] = e->events[i];
                out[i].docking_id = docking_id;
                out[i].file_id = 0;
        }
}

/* The rest of a docking transaction: custody events, docking-level findings, the result. */
static int docking_rows(EvdDb *db, const EvdRecordEntry *e, int64_t docking_id, bool with_result,
                        EvdError *err)
{
        EvdCustodyEntry ev[EVD_RECORD_EVENTS_MAX];
        events_for(e, docking_id, ev);
        int r = 0;
        for (size_t i = 0; r >= 0 && i < e->n_events; i++)
                r = evd_custody_append(db, &ev[i], NULL, err);
        for (size_t i = 0; r >= 0 && i < e->n_findings; i++)
                r = evd_db_docking_finding_add(db, docking_id, &e->findings[i], err);
        if (r >= 0 && with_result)
                r = evd_db_docking_finish(db, docking_id, e->result, err);
        return r;
}

static int apply_docking(EvdDb *db, const EvdRecordEntry *e, EvdRecordDockingFn on_docking, void *userdata,
                         int64_t *ret_docking_id, EvdError *err)
{
        int64_t id = 0;
        int r = evd_db_begin(db, err);
        if (r >= 0)
                r = evd_db_docking_begin(db, e->docking, &id, err);
        if (r >= 0 && on_docking)
                r = on_docking(id, userdata);
        if (r >= 0)
                r = docking_rows(db, e, id, e->kind == EVD_RECORD_KIND_REFUSED, err);
        r = tx_end(db, r, err);
        if (r < 0)
                return r;
        if (ret_docking_id)
                *ret_docking_id = id;
        return 0;
}

/* The result goes first: docking_results holds one row per docking, so a second END stops there. */
static int apply_end(EvdDb *db, const EvdRecordEntry *e, int64_t docking_id, EvdError *err)
{
        int r = evd_db_begin(db, err);
        if (r >= 0)
                r = evd_db_docking_finish(db, docking_id, e->result, err);
        if (r >= 0 && e->head && e->device_id)
                r = evd_db_chain_head_set(db, e->device_id, docking_id, e->head, err);
        if (r >= 0)
                r = docking_rows(db, e, docking_id, false, err);
        return tx_end(db, r, err);
}

/* The other version of the file's seq gets the conflict appended: a link, its finding, a custody event. */
static int conflict_link(EvdDb *db, const EvdRecordEntry *e, int64_t docking_id, int64_t file_id,
                         EvdError *err)
{
        const EvdDbFile *row = e->file;
        char shown[512], expected[120], found[200], detail[400];
        evd_path_escape(row->source_path, shown, sizeof(shown));
        snprintf(expected, sizeof(expected), "the recording stored for seq %" PRIu64 " (file %" PRId64 ")",
                 row->seq, e->conflict->file_id);
        snprintf(found, sizeof(found),
                 "another recording for seq %" PRIu64 " at docking %" PRId64 ": file %" PRId64 " (%s)",
                 row->seq, docking_id, file_id, shown);
        snprintf(detail, sizeof(detail),
                 "a later docking presented another recording for seq %" PRIu64
                 " (a second history of this recorder): kept in quarantine as file %" PRId64,
                 row->seq, file_id);
        EvdFinding x = {.verdict = EVD_VERDICT_SEGMENT_CONFLICT,
                        .seq = row->seq,
                        .expected = expected,
                        .found = found,
                        .detail = detail};
        EvdDbFileLink link = {.docking_id = docking_id,
                              .device_id = row->device_id,
                              .file_id = e->conflict->file_id,
                              .relation = EVD_DB_LINK_CONFLICT,
                              .other_file_id = file_id,
                              .has_seq = true,
                              .seq = row->seq,
                              .record_hash = row->record_hash,
                              .chain_record = row->chain_record,
                              .verdict = EVD_VERDICT_SEGMENT_CONFLICT,
                              .detail = detail};
        EvdCustodyEntry c = {.kind = "finding_added", .detail = detail};
        return evd_db_file_link(db, &link, &x, 1, &c, 1, err);
}

static int apply_file(EvdDb *db, const EvdRecordEntry *e, int64_t docking_id, EvdError *err)
{
        EvdDbFile f = *e->file;
        f.docking_id = docking_id;
        EvdCustodyEntry ev[EVD_RECORD_EVENTS_MAX];
        events_for(e, docking_id, ev);
        if (!e->conflict)
                return evd_db_file_record(db, &f, e->findings, e->n_findings, ev, e->n_events, NULL, err);
        int64_t id = 0;
        int r = evd_db_begin(db, err);
        if (r >= 0)
                r = evd_db_file_record(db, &f, e->findings, e->n_findings, ev, e->n_events, &id, err);
        if (r >= 0)
                r = conflict_link(db, e, docking_id, id, err);
        return tx_end(db, r, err);
}

static int apply_link(EvdDb *db, const EvdRecordEntry *e, int64_t docking_id, EvdError *err)
{
        EvdDbFileLink link = *e->link;
        link.docking_id = docking_id;
        return evd_db_file_link(db, &link, e->findings, e->n_findings, e->events, e->n_events, err);
}

/* A disc burned and the job's next state: one transaction, so that a job never says "done" without the
 * disc that completed it. */
static int apply_disc_job(EvdDb *db, const EvdRecordEntry *e, int64_t *ret_id, EvdError *err)
{
        int64_t id = 0;
        int r = evd_db_begin(db, err);
        if (r >= 0 && e->disc)
                r = evd_db_disc_record(db, e->disc, &id, err);
        if (r >= 0 && e->job_event)
                r = evd_db_disc_job_event_add(db, e->job_event, err);
        r = tx_end(db, r, err);
        if (r >= 0 && ret_id)
                *ret_id = id;
        return r;
}

int evd_record_entry_apply(EvdDb *db, const EvdRecordEntry *e, int64_t docking_id,
                           EvdRecordDockingFn on_docking, void *userdata, int64_t *ret_id, EvdError *err)
{
        int r = evd_record_entry_check(e, err);
        if (r < 0)
                return r;
        switch (e->kind) {
        case EVD_RECORD_KIND_BEGIN:
        case EVD_RECORD_KIND_REFUSED:
                return apply_docking(db, e, on_docking, userdata, ret_id, err);
        case EVD_RECORD_KIND_FILE:
                return apply_file(db, e, docking_id, err);
        case EVD_RECORD_KIND_FINDING:
                return evd_db_docking_finding_add(db, docking_id, &e->findings[0], err);
        case EVD_RECORD_KIND_END:
                return apply_end(db, e, docking_id, err);
        case EVD_RECORD_KIND_LINK:
                return apply_link(db, e, docking_id, err);
        case EVD_RECORD_KIND_DISC_JOB:
                return apply_disc_job(db, e, ret_id, err);
        case _EVD_RECORD_KIND_MAX:
                break;
        }
        return evd_error_set(err, -EINVAL, "recorded entry of unknown kind %d", (int)e->kind);
}
