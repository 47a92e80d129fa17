/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>

#include "ctl-common.h"
#include "ctl-disc-holdings.h"
#include "db-disc.h"

struct CtlDiscHoldings {
        EvdDbDiscHolding *h;
        size_t n;
};

CtlDiscHoldings *ctl_disc_holdings_load(EvdDb *db, const EvdDbFileRow *files, size_t n)
{
        if (n == 0)
                return NULL;
        _cleanup_free_ int64_t *ids = calloc(n, sizeof(int64_t));
        CtlDiscHoldings *h = calloc(1, sizeof(*h));
        if (!ids || !h) {
                free(h);
                return NULL;
        }
        for (size_t i = 0; i < n; i++)
                ids[i] = files[i].id;
        if (evd_db_disc_holdings_many(db, ids, n, &h->h, &h->n, NULL) < 0) {
                free(h);
                return NULL;
        }
        return h;
}

/* The first holding of file_id (they are sorted by file id), or NULL. */
static const EvdDbDiscHolding *first_of(const CtlDiscHoldings *h, int64_t file_id)
{
        size_t lo = 0, hi = h ? h->n : 0;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (h->h[mid].file_id < file_id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return h && lo < h->n && h->h[lo].file_id == file_id ? &h->h[lo] : NULL;
}

void ctl_disc_holdings_print(const CtlDiscHoldings *h, int64_t file_id, const char *indent)
{
        const EvdDbDiscHolding *x = first_of(h, file_id);
        if (!x)
                return;
        printf("%son disc:", indent);
        for (const EvdDbDiscHolding *end = h->h + h->n; x < end && x->file_id == file_id; x++)
                printf("%s %s copy %u", x == first_of(h, file_id) ? "" : ",", x->label, x->copy);
        printf("\n");
}

void ctl_disc_holdings_json(const CtlDiscHoldings *h, int64_t file_id, json_object *o)
{
        json_object *a = json_object_new_array();
        if (!o || !a) {
                json_object_put(a);
                return;
        }
        const EvdDbDiscHolding *x = first_of(h, file_id);
        for (const EvdDbDiscHolding *end = h ? h->h + h->n : NULL; x && x < end && x->file_id == file_id;
             x++) {
                json_object *d = json_object_new_object();
                if (!d)
                        break;
                json_object_object_add(d, "disc_id", json_object_new_int64(x->disc_id));
                json_object_object_add(d, "job_id", json_object_new_int64(x->job_id));
                json_object_object_add(d, "label", ctl_json_string(x->label));
                json_object_object_add(d, "copy", json_object_new_int(x->copy));
                json_object_object_add(d, "verified_at", ctl_json_time_local(x->verified_us));
                json_object_array_add(a, d);
        }
        json_object_object_add(o, "discs", a);
}

void ctl_disc_holdings_free(CtlDiscHoldings *h)
{
        if (!h)
                return;
        free(h->h);
        free(h);
}
