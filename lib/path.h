/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* File names from a recorder are untrusted input. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define EVD_PATH_MAX 1024u /* longer recorder paths are NAME_INVALID */

/* Checks a relative, '/'-separated path from a recorder: non-empty, not absolute, no empty, "." or ".."
 * components, no control bytes, valid UTF-8, at most EVD_PATH_MAX bytes. Returns 0 if safe, -EINVAL
 * with the reason in err otherwise. */
int evd_path_check(const char *path, EvdError *err);

/* True if s is valid UTF-8 (no overlongs, no surrogates). */
bool evd_utf8_valid(const char *s, size_t len);

/* Writes a printable, escaped form of untrusted bytes for logs and messages: evd_text_escape() (text.h)
 * with backslashes escaped too, so the form is unambiguous. Always NUL-terminates out (size > 0).
 * Returns out. */
char *evd_path_escape(const char *raw, char *out, size_t size);

/* A safe file-name component derived from the last component of a recorder path for use inside the
 * store: [A-Za-z0-9._-] kept, everything else '_', never starting with '.', at most max-1 bytes. */
char *evd_path_store_component(const char *raw, char *out, size_t max);
