/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The recorder's chain manifest (EVIDOCK/CHAIN.LOG on the volume): parse, format, sign.
 * The byte format is specified in docs/chain-format.md; this header is its C face.
 *
 * Parsing never fails because of content: a line that does not parse becomes an EvdManifestLineError
 * (verdict MANIFEST_INVALID for whatever that line would have covered); only resource problems
 * (-ENOMEM, -EFBIG past the bounds below) are errors. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "error.h"
#include "types.h"

#define EVD_MANIFEST_MAX_BYTES (16u * 1024u * 1024u) /* a recorder writes ~300 bytes per segment */
#define EVD_MANIFEST_MAX_LINE  4096u                 /* longer lines are MANIFEST_INVALID */
#define EVD_MANIFEST_MAX_LINES 65536u
#define EVD_HASH_SIZE          32u /* SHA-256 and SM3 */

typedef enum EvdRecordType {
        EVD_RECORD_GENESIS = 0, /* "GEN": first record of a recorder's chain, seq 0, prev all zero */
        EVD_RECORD_SEGMENT,     /* "SEG": one recording file */
        EVD_RECORD_END,         /* "END": end of a recording session */
        EVD_RECORD_DELETION,    /* "DEL": authorised deletion of an earlier segment */
        _EVD_RECORD_TYPE_MAX,
} EvdRecordType;

typedef struct EvdRecord {
        unsigned line; /* 1-based line number in the manifest it was parsed from; 0 if built in memory */
        EvdRecordType type;
        EvdSuite suite;
        char *device_id;  /* 7-character device serial (GA/T 947 style) */
        char *officer_id; /* 6-digit officer number */
        char *unit_code;  /* 12-character unit code; may be NULL */
        uint64_t session; /* boot/session counter */
        uint64_t seq;     /* position in the chain, 0 = genesis, +1 per record */
        int64_t start_us; /* UTC, microseconds since the epoch, as the recorder wrote it */
        int64_t end_us;
        int tz_minutes;   /* the recorder's UTC offset at recording time, e.g. +480 */
        EvdMethod method; /* SEG only */
        char *file;       /* SEG only: path on the volume relative to its root, '/'-separated, as written */
        uint64_t size;    /* SEG only */
        uint8_t file_hash[EVD_HASH_SIZE]; /* SEG only: suite hash of the file content */
        uint8_t prev_hash[EVD_HASH_SIZE]; /* record_hash of the record before; zero for genesis */
        char *key_id;                     /* hex fingerprint of the signing public key */
        char *case_number;                /* optional (NULL): case number entered on the recorder */
        uint64_t deleted_seq;             /* DEL only: the seq of the segment deleted */
        char *authorised_by;              /* DEL only */
        char *reason;                     /* DEL only */
        uint8_t *public_key;              /* GEN only: DER SubjectPublicKeyInfo of the chain key ("pub") */
        size_t public_key_len;
        uint8_t *signature; /* NULL when the record is unsigned */
        size_t signature_len;
        char *tbs; /* the canonical to-be-signed bytes (the line up to ";sig="), NUL-terminated */
        size_t tbs_len;
        uint8_t record_hash[EVD_HASH_SIZE]; /* suite hash over tbs: what the next record's prev names */
} EvdRecord;

typedef struct EvdManifestLineError {
        unsigned line;
        char *message; /* what is wrong, e.g. "field 'seq' is not a number" */
        char *file;    /* best effort: the decoded "file" value if the broken line names one, else NULL */
} EvdManifestLineError;

typedef struct EvdManifest {
        EvdRecord *records; /* in file order, not sorted */
        size_t n_records;
        EvdManifestLineError *errors;
        size_t n_errors;
} EvdManifest;

int evd_manifest_parse(const void *buf, size_t len, EvdManifest **ret_manifest);
void evd_manifest_free(EvdManifest *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(EvdManifest *, evd_manifest_free);

const char *evd_record_type_to_string(EvdRecordType t); /* "GEN", "SEG", "END", "DEL" */

/* Builds rec->tbs and rec->record_hash from the fields (canonical encoding). */
int evd_record_canonicalize(EvdRecord *rec, EvdError *err);

/* Canonicalizes and signs rec with key (suite must match the key type); sets signature. */
int evd_record_sign(EvdRecord *rec, EVP_PKEY *key, EvdError *err);

/* Returns the full manifest line (tbs + ";sig=..." or without it if unsigned), newline-terminated.
 * Caller frees. */
int evd_record_to_line(const EvdRecord *rec, char **ret_line, EvdError *err);

/* Frees the strings and buffers inside rec (not rec itself). */
void evd_record_clear(EvdRecord *rec);

/* Parses one line (without the trailing LF) into *ret_rec (caller clears it with evd_record_clear()).
 * -EBADMSG if the line does not parse; the reason goes to err. */
int evd_record_parse_line(const char *line, size_t len, EvdRecord *ret_rec, EvdError *err);

/* Deep copy (strings, signature, key, tbs). dst is overwritten; clear it afterwards. */
int evd_record_copy(EvdRecord *dst, const EvdRecord *src);

/* ISO 8601 with offset as used in the manifest: "2026-11-22T08:00:00+08:00" (".ffffff" only when the
 * microseconds are not zero). buf needs EVD_TIME_STRLEN + 1 bytes. */
#define EVD_TIME_STRLEN 32u
char *evd_time_format(int64_t utc_us, int tz_minutes, char buf[static EVD_TIME_STRLEN + 1]);
int evd_time_parse(const char *s, int64_t *ret_utc_us, int *ret_tz_minutes);
