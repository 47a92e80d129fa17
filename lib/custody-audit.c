/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The parts of the custody audit that need no database: names and the checkpoint line. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "custody-audit.h"

const char *evd_custody_gap_kind_to_string(EvdCustodyGapKind k)
{
        switch (k) {
        case EVD_CUSTODY_GAP_FILE:
                return "file";
        case EVD_CUSTODY_GAP_DOCKING:
                return "docking";
        case EVD_CUSTODY_GAP_RESULT:
                return "docking-result";
        }
        return "unknown";
}

const char *evd_checkpoint_outcome_to_string(EvdCheckpointOutcome o)
{
        switch (o) {
        case EVD_CHECKPOINT_MATCH:
                return "match";
        case EVD_CHECKPOINT_TAIL_CUT:
                return "tail-cut";
        case EVD_CHECKPOINT_REWRITTEN:
                return "rewritten";
        }
        return "unknown";
}

/* "head ID HASH" at s (s points at "head"); 0 and the checkpoint, or -EINVAL. */
static int parse_one(const char *s, EvdCustodyCheckpoint *cp)
{
        s += 4;
        if (*s != ' ')
                return -EINVAL;
        while (*s == ' ')
                s++;
        if (!isdigit((unsigned char)*s))
                return -EINVAL;
        errno = 0;
        char *end;
        long long id = strtoll(s, &end, 10);
        if (errno != 0 || id < 1 || *end != ' ')
                return -EINVAL;
        s = end;
        while (*s == ' ')
                s++;
        char hex[2 * EVD_DIGEST_SIZE + 1];
        size_t n = 0;
        while (n < 2 * EVD_DIGEST_SIZE && (isdigit((unsigned char)s[n]) || (s[n] >= 'a' && s[n] <= 'f'))) {
                hex[n] = s[n];
                n++;
        }
        hex[n] = '\0';
        if (n != 2 * EVD_DIGEST_SIZE || isxdigit((unsigned char)s[n]))
                return -EINVAL;
        if (evd_unhex(hex, cp->hash, EVD_DIGEST_SIZE) < 0)
                return -EINVAL;
        cp->id = id;
        return 0;
}

int evd_custody_checkpoint_parse(const char *text, EvdCustodyCheckpoint *ret_checkpoint)
{
        if (!text || !ret_checkpoint)
                return -EINVAL;
        bool found = false;
        EvdCustodyCheckpoint last = {};
        for (const char *p = strstr(text, "head"); p; p = strstr(p + 4, "head")) {
                /* a word of its own: "head" after the start, a space or a comma */
                if (p != text && p[-1] != ' ' && p[-1] != ',' && p[-1] != '\n' && p[-1] != '\t')
                        continue;
                EvdCustodyCheckpoint cp;
                if (parse_one(p, &cp) == 0) {
                        last = cp;
                        found = true;
                }
        }
        if (!found)
                return -ENOENT;
        *ret_checkpoint = last;
        return 0;
}
