/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Error detail for callers.
 *
 * Library functions return 0 (or a count) on success and a negative errno on failure. Where the errno
 * alone cannot say what went wrong and where (which file, which line, which transfer), they also take
 * an optional EvdError *err that receives a one-line message. Pass NULL if you do not need it.
 * A verification *result* (a hash mismatch, a broken chain) is never an error: it is data in a report. */
#pragma once

#include "macro.h"

typedef struct EvdError {
        int code;      /* negative errno, 0 when unset */
        char msg[512]; /* UTF-8, no trailing newline */
} EvdError;

/* Sets *err (if non-NULL) and returns code, which must be negative. Typical use:
 *   return evd_error_set(err, -EINVAL, "manifest line %u: missing field 'seq'", line); */
int evd_error_set(EvdError *err, int code, const char *fmt, ...) _printf_(3, 4);

/* Like evd_error_set() but appends ": <strerror(-code)>". */
int evd_error_set_errno(EvdError *err, int code, const char *fmt, ...) _printf_(3, 4);

/* Prefixes an existing message with more context ("copying VIDEO/x.MP4: " + old message). */
int evd_error_prefix(EvdError *err, const char *fmt, ...) _printf_(2, 3);

/* Message for logging: err->msg if set, else strerror(-code). */
const char *evd_error_message(const EvdError *err, int code);

/* Debug logging from library code (never above debug, see docs/style). Goes to stderr only when
 * EVIDOCK_DEBUG is set in the environment. */
void evd_debug(const char *fmt, ...) _printf_(1, 2);
