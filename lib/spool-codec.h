/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The spool's file format (docs/spool.md, "Layout and format"): a header line "evidock-spool 1",
 * key=value lines with percent-encoded values, and a last line "sum=<SHA-256 of everything before>".
 * Entries, cache files, map files and the spool id are all written in it; an entry carries one
 * EvdRecordEntry (record-entry.h) plus where it belongs (docking key, recorder, database tag, time).
 *
 * The decoder takes hostile input (a spool directory may be damaged or tampered with): every field is
 * checked, nothing is trusted to be NUL-terminated or bounded except by this code; fuzzed by
 * tests/fuzz/fuzz-spool-entry.c. */
#pragma once

#include <stdint.h>
#include <stdio.h>

#include "record-entry.h"

#define EVD_SPOOL_ENTRY_MAX (4u * 1024u * 1024u) /* bytes of one entry file */
#define EVD_SPOOL_KEY_SIZE  40u                  /* docking key, NUL included */
#define EVD_SPOOL_TAG_SIZE  9u                   /* database tag: 8 hex + NUL */

/* ---- the text format ------------------------------------------------------------------------------ */

typedef struct EvdSpoolWriter {
        FILE *f;
        char *buf;
        size_t len;
} EvdSpoolWriter;

int evd_spool_writer_begin(EvdSpoolWriter *w);                                    /* -ENOMEM */
void evd_spool_writer_put(EvdSpoolWriter *w, const char *key, const char *value); /* value NULL: no line */
void evd_spool_writer_putf(EvdSpoolWriter *w, const char *key, const char *fmt, ...) _printf_(3, 4);
void evd_spool_writer_put_hex(EvdSpoolWriter *w, const char *key, const uint8_t *digest); /* NULL: none */
/* key "<prefix><i>.<field>" (a list: "f0.verdict", "f1.verdict", ...) */
void evd_spool_writer_put_at(EvdSpoolWriter *w, const char *prefix, size_t i, const char *field,
                             const char *value);
/* Appends the checksum line and hands the text over (*ret_buf freed by the caller). -EFBIG beyond
 * EVD_SPOOL_ENTRY_MAX. The writer is finished either way. */
int evd_spool_writer_end(EvdSpoolWriter *w, char **ret_buf, size_t *ret_len);
void evd_spool_writer_abort(EvdSpoolWriter *w);

typedef struct EvdSpoolTextItem {
        const char *key;
        char *value;
} EvdSpoolTextItem;

/* A parsed text: keys and values point into buf. */
typedef struct EvdSpoolText {
        char *buf;
        EvdSpoolTextItem *items; /* sorted by key */
        size_t n;
} EvdSpoolText;

/* Takes buf (len bytes, a NUL after them), also on error. Checks the header, the checksum, the lines, the
 * escapes, and that no key comes twice: -EBADMSG with the reason in err. Clear *ret in all cases. */
int evd_spool_text_parse(char *buf, size_t len, EvdSpoolText *ret, EvdError *err);
char *evd_spool_text_get(const EvdSpoolText *t, const char *key); /* NULL if absent */
char *evd_spool_text_get_at(const EvdSpoolText *t, const char *prefix, size_t i, const char *field);
void evd_spool_text_clear(EvdSpoolText *t);

/* ---- entries -------------------------------------------------------------------------------------- */

/* Where an entry belongs. */
typedef struct EvdSpoolEntryHeader {
        const char *docking_key; /* the spooled docking (map/<key>); no '/', not starting with '.' */
        const char *device;      /* the docked recorder; NULL if none */
        const char *db_tag;      /* the database it was spooled for */
        int64_t at_us;           /* when it was spooled */
} EvdSpoolEntryHeader;

/* A decoded entry: rec and header point into the storage that follows. */
typedef struct EvdSpoolEntry {
        EvdSpoolEntryHeader header;
        EvdRecordEntry rec;
        /* storage */
        EvdSpoolText text;
        EvdDbDocking docking;
        EvdDbFile file;
        uint8_t sha256[EVD_DIGEST_SIZE], record_hash[EVD_DIGEST_SIZE], archive_sha256[EVD_DIGEST_SIZE],
            packets_sha256[EVD_DIGEST_SIZE];
        EvdFinding *findings;
        EvdCustodyEntry events[EVD_RECORD_EVENTS_MAX];
        EvdDbChainHead head;
        EvdDbDockingResult result;
        EvdDbFileLink link;
        uint8_t link_hash[EVD_DIGEST_SIZE], image_sha256[EVD_DIGEST_SIZE];
        EvdDbDisc disc;
        EvdDbDiscJobEvent job_event;
} EvdSpoolEntry;

/* Encodes one entry (evd_record_entry_check() first). *ret_buf is freed by the caller. */
int evd_spool_entry_encode(const EvdSpoolEntryHeader *h, const EvdRecordEntry *e, char **ret_buf,
                           size_t *ret_len, EvdError *err);
/* Decodes an entry file. Takes buf (len bytes, a NUL after them), also on error: -EBADMSG with the field
 * in err for anything malformed, -ENOMEM. Clear *ret with evd_spool_entry_clear() in all cases. */
int evd_spool_entry_decode(char *buf, size_t len, EvdSpoolEntry *ret, EvdError *err);
void evd_spool_entry_clear(EvdSpoolEntry *e);
