/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The vocabulary shared by every stage: recording methods, signature suites and verdicts.
 * Verdict names are stable identifiers: they are stored in the database, printed by evidockctl and
 * documented in docs/verdicts.md. Never rename or renumber one; add new ones at the end. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef enum EvdMethod {
        EVD_METHOD_UNKNOWN = 0,
        EVD_METHOD_VIDEO,
        EVD_METHOD_AUDIO,
        EVD_METHOD_PHOTO,
        _EVD_METHOD_MAX,
} EvdMethod;

typedef enum EvdSuite {
        EVD_SUITE_ED25519_SHA256 = 0, /* "ed25519-sha256" (default) */
        EVD_SUITE_P256_SHA256,        /* "p256-sha256": ECDSA P-256 over SHA-256 */
        EVD_SUITE_SM2_SM3,            /* "sm2-sm3": SM2 signature over SM3, GB/T 32918 + GB/T 32905 */
        _EVD_SUITE_MAX,
} EvdSuite;

typedef enum EvdVerdict {
        EVD_VERDICT_INTACT = 0,
        EVD_VERDICT_HASH_MISMATCH,     /* file content does not match the hash in its record */
        EVD_VERDICT_TRUNCATED,         /* file shorter than its record says */
        EVD_VERDICT_SIGNATURE_INVALID, /* record signature does not verify with the enrolled key */
        EVD_VERDICT_UNSIGNED,          /* record carries no signature */
        EVD_VERDICT_LINK_MISMATCH,     /* record's prev hash is not the hash of the record before it */
        EVD_VERDICT_SEGMENT_GAP,       /* sequence numbers missing */
        EVD_VERDICT_SEGMENT_INSERTED,  /* a file or record this recorder did not chain (foreign file) */
        EVD_VERDICT_SEGMENT_REORDERED, /* records out of sequence order */
        EVD_VERDICT_SEGMENT_DUPLICATE, /* the same record/file appears twice */
        EVD_VERDICT_SEGMENT_CONFLICT,  /* two different files for one place in the chain */
        EVD_VERDICT_CHAIN_ROLLBACK,    /* recorder head older than the head already seen */
        EVD_VERDICT_SESSION_BREAK,     /* a session ended without an end record */
        EVD_VERDICT_TIME_GAP,          /* unexplained time between consecutive segments of a session */
        EVD_VERDICT_TIME_OVERLAP,      /* segments overlap in time */
        EVD_VERDICT_CLOCK_ANOMALY,     /* times go backwards, lie in the future, or clock offset too large */
        EVD_VERDICT_IDENTITY_MISMATCH, /* USB identity, manifest and key disagree */
        EVD_VERDICT_DELETION_LOGGED,   /* an authorised-deletion record covers a missing segment */
        EVD_VERDICT_MANIFEST_INVALID,  /* the manifest (or a line of it) does not parse */
        EVD_VERDICT_MEDIA_INVALID,     /* the media does not demux / cannot be archived */
        EVD_VERDICT_NAME_INVALID, /* unsafe file name on the recorder ("../", control bytes, non-UTF-8) */
        EVD_VERDICT_UNREADABLE,   /* the file could not be read from the recorder */
        EVD_VERDICT_NOT_ENROLLED, /* the recorder is not enrolled (docking refused) */
        EVD_VERDICT_MISSING,      /* a record names a file that is not on the recorder */
        _EVD_VERDICT_MAX,
} EvdVerdict;

const char *evd_method_to_string(EvdMethod m);   /* "video", "audio", "photo", "unknown" */
EvdMethod evd_method_from_string(const char *s); /* EVD_METHOD_UNKNOWN if not recognised */

const char *evd_suite_to_string(EvdSuite s); /* NULL if out of range */
int evd_suite_from_string(const char *s);    /* EvdSuite, or -EINVAL */

const char *evd_verdict_to_string(EvdVerdict v); /* "INTACT", "HASH_MISMATCH", ... */
int evd_verdict_from_string(const char *s);      /* EvdVerdict, or -EINVAL */

/* A one-line human description of what the verdict means (for logs and docs). */
const char *evd_verdict_describe(EvdVerdict v);

/* Findings that leave the evidence itself in doubt put the file into quarantine (kept bit-exact,
 * apart from clean evidence). INTACT and DELETION_LOGGED do not. */
bool evd_verdict_quarantines(EvdVerdict v);

/* Stable journald MESSAGE_ID (128-bit, 32 hex chars) for a finding with this verdict. */
void evd_verdict_message_id(EvdVerdict v, char ret[static 33]);
