/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Inside lib/ingest*.c: an archive copy's request (its tags and the chain record attached) and its store
 * file, shared by the ordinary archive copy (ingest.c) and the one made while the file is still copied
 * (ingest-overlap.c). Calls neither. */
#include <string.h>

#include "ingest-internal.h"

/* The case number the archive copy carries: the operator's, the recorder's, the default, or none. */
const char *ingest_case_number_of(const Ingest *g, const FileJob *j)
{
        const EvdIngestOptions *o = g->o;
        const EvdRecord *rec = j->record;
        return o->case_number                                        ? o->case_number
               : rec && rec->case_number && rec->case_number[0]      ? rec->case_number
               : o->default_case_number && o->default_case_number[0] ? o->default_case_number
                                                                     : NULL;
}

void ingest_archive_request_init(Ingest *g, FileJob *j, const char *original_sha256, ArchiveRequest *a)
{
        const EvdIngestOptions *o = g->o;
        const EvdRecord *rec = j->record;
        bool timed = rec && rec->type == EVD_RECORD_SEGMENT;
        a->tags = (EvdArchiveTags){
            .case_number = j->case_number ? j->case_number : "UNASSIGNED",
            .method = rec ? rec->method : EVD_METHOD_UNKNOWN,
            .recorded_start = timed ? evd_time_format(rec->start_us, rec->tz_minutes, a->start) : "unknown",
            .recorded_end = timed ? evd_time_format(rec->end_us, rec->tz_minutes, a->end) : NULL,
            .maker = g->officer_id,
            .device_id = g->device_id,
            .original_sha256 = original_sha256,
            .original_name = j->shown,
            .confidentiality = o->confidentiality,
        };
        a->att = (EvdArchiveAttachment){.filename = "chain-record.txt", .mimetype = "text/plain"};
        a->line = NULL;
        if (rec && evd_record_to_line(rec, &a->line, NULL) >= 0) {
                a->att.data = a->line;
                a->att.size = strlen(a->line);
        }
}

/* The archive copy's directory and unnamed file (once: file_copy() opens them before the copy, so that a
 * new directory of the day is made durable while nothing else is dirty, not behind the original's data). */
int ingest_archive_open(Ingest *g, FileJob *j, EvdError *err)
{
        int r = 0;
        if (j->arch_dir < 0)
                r = evd_store_dir(g->store, EVD_STORE_ARCHIVE, g->device_id, j->day, &j->arch_dir,
                                  &j->arch_rel, err);
        if (r >= 0 && j->arch.fd < 0)
                r = evd_tmpfile_open(j->arch_dir, &j->arch, err);
        return r;
}
