/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Text from a recorder (case numbers, file names, identity files, manifest fields) is data, never
 * terminal or log commands. One rule says which text a recorder may hand us (evd_text_valid: the
 * manifest parser and the archive tagger both use it, so a case number the signed manifest carries is
 * never refused by the tagger), and one function says how any such text is shown (evd_text_escape:
 * every text output and log line goes through it). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define EVD_TEXT_MAX_BYTES 1024u /* one text value from a recorder (a case number, a field) */

/* True if s is valid UTF-8 (no overlongs, no surrogates) of at most max bytes without C0 control bytes
 * or DEL. C1 controls and bidirectional overrides are allowed here: they are data, harmless in the
 * database and in tags, and escaped wherever text is shown. */
bool evd_text_valid(const char *s, size_t max);

/* True for the code points evd_text_escape() escapes: C0 and C1 controls, DEL, the bidirectional
 * embedding/override/isolate marks (U+061C, U+200E-U+200F, U+202A-U+202E, U+2066-U+2069) and the line
 * and paragraph separators (U+2028, U+2029). */
bool evd_text_is_unsafe(unsigned cp);

typedef enum EvdTextEscapeFlags {
        EVD_TEXT_ESCAPE_BACKSLASH = 1 << 0, /* also escape '\' (\x5c): the escaped form is unambiguous */
} EvdTextEscapeFlags;

/* Writes a printable form of untrusted bytes for terminals and logs: invalid UTF-8 bytes and C0 controls
 * become \xNN, unsafe code points (see above) \u{XXXX}; everything else is kept as is (Chinese text
 * stays readable). Truncates at a character boundary to fit; always NUL-terminates (size > 0). Returns
 * out. */
char *evd_text_escape(const char *raw, char *out, size_t size, unsigned flags);

/* The same, without a bound: a new string (caller frees), NULL if out of memory; NULL in -> NULL. */
char *evd_text_escape_dup(const char *raw, unsigned flags);

/* Writes the escaped form of raw to f (no bound, no allocation). NULL writes nothing. */
void evd_text_fputs(const char *raw, FILE *f, unsigned flags);
