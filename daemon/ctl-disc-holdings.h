/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Which verified discs hold each recording of a listing (evidockctl log, chain): "on disc: ..." beside a
 * file, "discs" in its JSON object. */
#pragma once

#include <json-c/json.h>

#include "db.h"

typedef struct CtlDiscHoldings CtlDiscHoldings;
/* Loads, in one query, the verified discs holding any of files[]; NULL (nothing shown) on failure. */
CtlDiscHoldings *ctl_disc_holdings_load(EvdDb *db, const EvdDbFileRow *files, size_t n);
/* "<indent>on disc: evd-j1-d1of1 copy 1, evd-j1-d1of1 copy 2" when file_id is on a verified disc. */
void ctl_disc_holdings_print(const CtlDiscHoldings *h, int64_t file_id, const char *indent);
/* Adds "discs": [{"disc_id", "job_id", "label", "copy", "verified_at"}...] to o (an empty array if none). */
void ctl_disc_holdings_json(const CtlDiscHoldings *h, int64_t file_id, json_object *o);
void ctl_disc_holdings_free(CtlDiscHoldings *h);
static inline void ctl_disc_holdings_freep(CtlDiscHoldings **h)
{
        ctl_disc_holdings_free(*h);
}
