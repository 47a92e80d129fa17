/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "finding.h"

static int dup_opt(char **dst, const char *s)
{
        *dst = s ? strdup(s) : NULL;
        return !s || *dst ? 0 : -ENOMEM;
}

int evd_finding_set(EvdFinding *f, EvdVerdict verdict, uint64_t seq, const char *file, const char *expected,
                    const char *found, const char *detail)
{
        *f = (EvdFinding){.verdict = verdict, .seq = seq};
        if (dup_opt(&f->file, file) < 0 || dup_opt(&f->expected, expected) < 0 ||
            dup_opt(&f->found, found) < 0 || dup_opt(&f->detail, detail) < 0) {
                evd_finding_clear(f);
                return -ENOMEM;
        }
        return 0;
}

void evd_finding_clear(EvdFinding *f)
{
        free(f->file);
        free(f->expected);
        free(f->found);
        free(f->detail);
        *f = (EvdFinding){.seq = EVD_FINDING_NO_SEQ};
}

void evd_findings_free(EvdFinding *f, size_t n)
{
        for (size_t i = 0; f && i < n; i++)
                evd_finding_clear(&f[i]);
        free(f);
}

EvdVerdict evd_verdict_worst(EvdVerdict worst_so_far, EvdVerdict v)
{
        if (worst_so_far == EVD_VERDICT_INTACT ||
            (!evd_verdict_quarantines(worst_so_far) && evd_verdict_quarantines(v)))
                return v;
        return worst_so_far;
}
