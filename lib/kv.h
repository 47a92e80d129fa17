/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* "key=value" lines, one at a time, parsed in place: the one reader behind the spool's entries and cache,
 * and available to every other key=value text (identity files, profiles, configuration).
 *
 *   char *buf = ...;  (NUL-terminated, modified in place: '=' and '\n' become NULs)
 *   EvdKvReader rd;
 *   evd_kv_reader_init(&rd, buf, len, EVD_KV_STRIP | EVD_KV_COMMENTS);
 *   EvdKvLine l;
 *   while ((r = evd_kv_next(&rd, &l)) > 0)
 *           use l.key, l.value (pointers into buf), l.line
 *   r < 0: -EBADMSG, rd.line is the bad line, rd.why says what is wrong with it
 *
 * What a value means (escapes, numbers, duplicates, unknown keys) is the caller's business. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define EVD_KV_STRIP    (1u << 0) /* blanks (space, tab) around keys and values are dropped: "key = value" */
#define EVD_KV_COMMENTS (1u << 1) /* empty lines and lines starting with '#' (after blanks) are skipped */
#define EVD_KV_NEWLINE  (1u << 2) /* the last line must end in '\n' (a cut-short file is an error) */

typedef struct EvdKvReader {
        char *p, *end;
        unsigned flags;
        unsigned line;   /* number of the line returned last (1-based) */
        const char *why; /* after -EBADMSG: what is wrong with line `line` */
} EvdKvReader;

typedef struct EvdKvLine {
        char *key;   /* never empty */
        char *value; /* may be empty */
        unsigned line;
} EvdKvLine;

void evd_kv_reader_init(EvdKvReader *rd, char *buf, size_t len, unsigned flags);

/* 1 and the next line in *ret; 0 at the end; -EBADMSG for a line without '=', with an empty key, with a
 * NUL or CR byte, or (EVD_KV_NEWLINE) without its final newline. */
int evd_kv_next(EvdKvReader *rd, EvdKvLine *ret);
