/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A finding: one verification outcome with its evidence, the same shape from the chain verifier
 * (chain.h) through ingest to the database and the spool. And the one rule for "the worst verdict" of a
 * file or a docking.
 *
 * The strings of an EvdFinding that came from evd_finding_set() or the chain verifier are owned by it
 * (evd_finding_clear()); a finding handed to the database or the spool is only read during the call. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "types.h"

#define EVD_FINDING_NO_SEQ UINT64_MAX /* EvdFinding.seq when the finding is not about one record */

typedef struct EvdFinding {
        EvdVerdict verdict;
        uint64_t seq;   /* record the finding is about, or EVD_FINDING_NO_SEQ */
        char *file;     /* volume path it is about, or NULL (the database keeps it by file row instead) */
        char *expected; /* evidence: what the chain/enrolment says it should be; may be NULL */
        char *found;    /* evidence: what was found; may be NULL */
        char *detail;   /* one human-readable line; may be NULL (then evd_verdict_describe() says it) */
} EvdFinding;

static inline bool evd_finding_has_seq(const EvdFinding *f)
{
        return f->seq != EVD_FINDING_NO_SEQ;
}

/* Fills *f with copies of the strings (each may be NULL). -ENOMEM (and *f cleared) if a copy fails. */
int evd_finding_set(EvdFinding *f, EvdVerdict verdict, uint64_t seq, const char *file, const char *expected,
                    const char *found, const char *detail);
/* Frees the strings and resets *f to an INTACT finding without seq. */
void evd_finding_clear(EvdFinding *f);
void evd_findings_free(EvdFinding *f, size_t n); /* clears n findings and frees the array; NULL ok */

/* The worst verdict rule, for a file (over its findings) and a docking (over its files and findings):
 * any finding is worse than INTACT, a quarantining one (evd_verdict_quarantines()) is worse than one
 * that is not; between equals the first one stays. Fold it:
 *   EvdVerdict worst = EVD_VERDICT_INTACT;  for each v: worst = evd_verdict_worst(worst, v); */
EvdVerdict evd_verdict_worst(EvdVerdict worst_so_far, EvdVerdict v);
