/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target for the spool's entry decoder (lib/spool-codec.c): a spool directory may be damaged or
 * tampered with, and every entry in it is decoded before it is replayed or listed.
 *
 * Invariants checked (abort() on violation, so both libFuzzer and the plain corpus run catch them):
 *   - decoding never crashes, and fails only with -EBADMSG or -ENOMEM;
 *   - what decodes passes evd_record_entry_check() (the replay may hand it to the database as it is);
 *   - it encodes again, and the encoding decodes to the same entry (kind, docking, counts, file, link,
 *     disc, job event). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool-codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same_str(const char *a, const char *b)
{
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_same(const EvdSpoolEntry *a, const EvdSpoolEntry *b)
{
        const EvdRecordEntry *x = &a->rec, *y = &b->rec;
        if (x->kind != y->kind || x->n_findings != y->n_findings || x->n_events != y->n_events ||
            !same_str(a->header.docking_key, b->header.docking_key) ||
            !same_str(x->device_id, y->device_id) || a->header.at_us != b->header.at_us ||
            !x->head != !y->head || !x->result != !y->result || !x->file != !y->file ||
            !x->docking != !y->docking || !x->link != !y->link || !x->disc != !y->disc ||
            !x->job_event != !y->job_event)
                abort();
        if (x->link && (x->link->file_id != y->link->file_id || x->link->verdict != y->link->verdict ||
                        !same_str(x->link->relation, y->link->relation) || x->link->seq != y->link->seq))
                abort();
        if (x->disc &&
            (x->disc->job_id != y->disc->job_id || x->disc->copy != y->disc->copy ||
             x->disc->verified != y->disc->verified || !same_str(x->disc->spool_key, y->disc->spool_key)))
                abort();
        if (x->job_event && (x->job_event->job_id != y->job_event->job_id ||
                             !same_str(x->job_event->state, y->job_event->state) ||
                             !same_str(x->job_event->spool_key, y->job_event->spool_key)))
                abort();
        for (size_t i = 0; i < x->n_findings; i++)
                if (x->findings[i].verdict != y->findings[i].verdict ||
                    x->findings[i].seq != y->findings[i].seq ||
                    !same_str(x->findings[i].detail, y->findings[i].detail))
                        abort();
        for (size_t i = 0; i < x->n_events; i++)
                if (!same_str(x->events[i].kind, y->events[i].kind) ||
                    !same_str(x->events[i].detail ? x->events[i].detail : "", y->events[i].detail))
                        abort();
        if (x->file &&
            (x->file->size != y->file->size || memcmp(x->file->sha256, y->file->sha256, 32) != 0 ||
             !same_str(x->file->source_path, y->file->source_path) || x->file->verdict != y->file->verdict))
                abort();
        if (x->result &&
            (x->result->verdict != y->result->verdict || x->result->files_seen != y->result->files_seen))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > EVD_SPOOL_ENTRY_MAX)
                return 0; /* the reader refuses larger files before decoding */
        char *buf = malloc(size + 1);
        if (!buf)
                abort();
        memcpy(buf, data, size);
        buf[size] = 0;
        EvdSpoolEntry e;
        EvdError err = {};
        int r = evd_spool_entry_decode(buf, size, &e, &err);
        if (r < 0) {
                if (r != -EBADMSG && r != -ENOMEM)
                        abort();
                evd_spool_entry_clear(&e);
                return 0;
        }
        if (evd_record_entry_check(&e.rec, NULL) < 0)
                abort();

        char *out = NULL;
        size_t len = 0;
        r = evd_spool_entry_encode(&e.header, &e.rec, &out, &len, NULL);
        if (r == -EFBIG) { /* canonical form a little longer than a near-limit input */
                evd_spool_entry_clear(&e);
                return 0;
        }
        if (r < 0)
                abort();
        EvdSpoolEntry again;
        if (evd_spool_entry_decode(out, len, &again, NULL) < 0)
                abort();
        check_same(&e, &again);
        evd_spool_entry_clear(&again);
        evd_spool_entry_clear(&e);
        return 0;
}
