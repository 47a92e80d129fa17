/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Inside lib/ingest*.c: a docking's events to its caller (EvdIngestOptions.on_event), the archive copy's
 * progress among them. Called by ingest.c and ingest-overlap.c; calls neither. */
#include "ingest-internal.h"

/* Whether (part of) the docking goes to the spool; keeps the summary's spool fields current. Only for
 * what the caller is told: where things are recorded is the record stage's business. */
bool ingest_spooled(Ingest *g)
{
        const char *why = NULL;
        if (!g->rs || !evd_record_spooled(g->rs, &why))
                return false;
        g->sum->spooled = true;
        snprintf(g->sum->spool_why, sizeof(g->sum->spool_why), "%s", why);
        g->sum->files_spooled = evd_record_files_spooled(g->rs);
        return true;
}

void ingest_emit(Ingest *g, EvdIngestEvent ev)
{
        bool offline = ingest_spooled(g);
        if (!g->o->on_event)
                return;
        ev.docking_id = g->docking_id;
        ev.spooled = offline;
        ev.file_index = g->file_index;
        ev.files_total = g->files_total;
        if (!ev.device_id && g->device_id[0])
                ev.device_id = g->device_id;
        if (!ev.officer_id && g->officer_id[0])
                ev.officer_id = g->officer_id;
        g->o->on_event(&ev, g->o->userdata);
}

void ingest_archive_progress(uint64_t done, uint64_t total, void *userdata)
{
        Progress *p = userdata;
        evd_store_space_written(p->space, p->space_part, done);
        ingest_emit(p->g, (EvdIngestEvent){.kind = EVD_INGEST_FILE_ARCHIVING,
                                           .path = p->shown,
                                           .has_seq = p->has_seq,
                                           .seq = p->seq,
                                           .done = done,
                                           .total = total});
}
