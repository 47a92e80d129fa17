/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Prints "NAME MESSAGE_ID yes|no" for every verdict, from the library itself, so that check-docs.sh can
 * hold docs/journal.md to what evidockd really logs. */
#include <stdio.h>

#include "types.h"

int main(void)
{
        for (int v = 0; v < _EVD_VERDICT_MAX; v++) {
                char id[33];
                evd_verdict_message_id((EvdVerdict)v, id);
                printf("%s %s %s\n", evd_verdict_to_string((EvdVerdict)v), id,
                       evd_verdict_quarantines((EvdVerdict)v) ? "yes" : "no");
        }
        return 0;
}
