/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Running the xorriso program (GPL-2+: called as a program, never linked, so evidock stays LGPL).
 *
 * Every run uses `-pkt_output on`, so each line xorriso prints arrives as one packet "C:F: text" (C:
 * R result, I info, M mark; F 1 = end of line); the line is reassembled here and handed on. Problems
 * of severity SORRY or worse make xorriso exit non-zero (its default `-return_with SORRY 32`); such
 * messages are collected so that a failure can say what xorriso said. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"

#define EVD_XORRISO_LINE_MAX    8192u /* longest line kept (longer ones are cut) */
#define EVD_XORRISO_ARGS_MAX    64u   /* arguments of one run (graft lists go through -options_from_file) */
#define EVD_XORRISO_PROBLEM_MAX 480u  /* bytes of xorriso's own messages kept for an error */

typedef struct EvdXorrisoRun {
        const char *program; /* NULL: "xorriso" from PATH */
        /* Called for every complete line (channel 'R', 'I' or 'M'); may be NULL. < 0 stops xorriso
         * (it is killed) and the run returns that value. */
        int (*line)(char channel, const char *text, void *userdata);
        void *userdata;
        const atomic_int *cancel; /* non-NULL and non-zero: kill xorriso, return -ECANCELED */
        unsigned timeout_s;       /* no output for this long: kill, -ETIMEDOUT; 0: 600 s */
} EvdXorrisoRun;

/* Runs xorriso with args (NULL-terminated, without the program name; "-pkt_output on" is prepended).
 * Returns 0 when it exited 0. Otherwise a negative errno with a message naming what xorriso said:
 *   -ENOENT     the program is not installed
 *   -EIO        it exited non-zero (the message holds its SORRY/FAILURE/FATAL lines)
 *   -ETIMEDOUT  it printed nothing for timeout_s and was killed
 *   -ECANCELED  cancelled
 * *ret_exit (may be NULL) gets its exit status (or -1 if it did not exit normally). */
int evd_xorriso_run(const EvdXorrisoRun *run, const char *const *args, int *ret_exit, EvdError *err);

/* Quotes a path for an -options_from_file line; refuses (-EINVAL) what cannot be quoted safely (a
 * quote, a control byte). out has at least 2*strlen+3 bytes. */
int evd_xorriso_quote(const char *s, char *out, size_t size);
