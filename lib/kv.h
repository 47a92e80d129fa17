/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* "key=value" lines, one at a time, parsed in place: the one line reader behind every key=value text of
 * evidock: the spool's entries and cache, a recorder's DEVICE.TXT (lib/chain.c), the recorder profiles
 * (daemon/usb-profile.c) and evidock.conf (daemon/config.c).
 *
 *   char *buf = ...;  (NUL-terminated, modified in place: '=' and '\n' become NULs)
 *   EvdKvReader rd;
 *   evd_kv_reader_init(&rd, buf, len, EVD_KV_STRIP | EVD_KV_COMMENTS);
 *   EvdKvLine l;
 *   while ((r = evd_kv_next(&rd, &l)) > 0)
 *           use l.key, l.value (pointers into buf), l.line
 *   r < 0: -EBADMSG, rd.line is the bad line, rd.why says what is wrong with it
 *
 * What a value means (escapes, quotes, numbers, duplicates, unknown keys) is the caller's business. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define EVD_KV_STRIP (1u << 0) /* blanks (space, tab) around keys and values are dropped: "key = value" */
#define EVD_KV_COMMENTS                                                                                     \
        (1u << 1)                /* empty lines and lines starting with '#' are skipped (with EVD_KV_STRIP: \
                                  * also blank lines and '#' after blanks) */
#define EVD_KV_NEWLINE (1u << 2) /* the last line must end in '\n' (a cut-short file is an error) */
#define EVD_KV_CRLF                                                                                         \
        (1u << 3) /* a '\r' right before the '\n' is dropped (a file saved on Windows); any                 \
                   * other CR is still an error */
#define EVD_KV_INI                                                                                          \
        (1u << 4) /* "[section]" lines (returned with key NULL, see EvdKvLine) and ';' as                   \
                   * a second comment character (with EVD_KV_COMMENTS) */

typedef struct EvdKvReader {
        char *p, *end;
        unsigned flags;
        size_t
            max_line;  /* longest line allowed in bytes, without its newline; 0: no limit (set after init) */
        unsigned line; /* number of the line returned last (1-based) */
        const char *why;     /* after -EBADMSG: what is wrong with line `line` */
        const char *section; /* EVD_KV_INI: the name of the last "[section]" line, "" before the first */
} EvdKvReader;

typedef struct EvdKvLine {
        char *key;           /* never empty; NULL for a "[section]" line (EVD_KV_INI) */
        char *value;         /* may be empty; for a "[section]" line the section name (never empty) */
        const char *section; /* EVD_KV_INI: the section this line is in ("" before the first); else "" */
        unsigned line;
} EvdKvLine;

void evd_kv_reader_init(EvdKvReader *rd, char *buf, size_t len, unsigned flags);

/* 1 and the next line in *ret; 0 at the end; -EBADMSG for a line without '=', with an empty key, with a
 * NUL or CR byte, longer than max_line, a malformed "[section]" line (EVD_KV_INI), or (EVD_KV_NEWLINE) a
 * last line without its newline. Comment lines are skipped before they are checked. */
int evd_kv_next(EvdKvReader *rd, EvdKvLine *ret);
