/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Which recordings an evidockctl case/mark command acts on: one file, a recorder's range of sequence
 * numbers, or an officer's recordings in a time window (the bulk case). Shared by ctl-case.c and
 * ctl-mark.c. */
#pragma once

#include "ctl-common.h"
#include "lifecycle.h"

typedef struct CtlSelect {
        const char *file, *device, *seq, *officer, *from, *to;
} CtlSelect;

/* Add to the command's struct option table. */
#define CTL_SELECT_OPTIONS                                                                                  \
        {"file", required_argument, NULL, 'F'}, {"device", required_argument, NULL, 'd'},                   \
            {"seq", required_argument, NULL, 'q'}, {"officer", required_argument, NULL, 'o'},               \
            {"from", required_argument, NULL, 'f'},                                                         \
        {                                                                                                   \
                "to", required_argument, NULL, 't'                                                          \
        }

/* The help lines for them. */
#define CTL_SELECT_HELP                                                                                     \
        "  -F, --file ID        one recording (its file id, as evidockctl log prints it)\n"                 \
        "  -d, --device ID      with --seq: a recorder's recordings by sequence number\n"                   \
        "  -q, --seq N[-M]      the sequence number or inclusive range\n"                                   \
        "  -o, --officer ID     with --from and --to: an officer's recordings in a time window\n"           \
        "  -f, --from TIME      window start (recording start at or after it)\n"                            \
        "  -t, --to TIME        window end (recording start before it)\n"

/* Takes option o if it is one of the above: returns true. */
bool ctl_select_option(CtlSelect *s, int o, const char *arg);

/* Builds the selector; a missing or contradictory selection is a usage error (said on stderr, returns
 * EXIT_USAGE); 0 on success. */
int ctl_select_build(Ctl *c, const CtlSelect *s, const char *help, EvdFileSelector *ret);

/* Prints what a change did ("3 of 3 recordings assigned to case K-1, 0 already were"), or as JSON. */
int ctl_select_print_change(Ctl *c, const EvdLifecycleChange *ch, const char *done, const char *already);
