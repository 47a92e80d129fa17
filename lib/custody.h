/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The chain-of-custody log: every step of an ingest (docked, identified, copied, verified, archived,
 * recorded, refused, ...) is one row of custody_events in the evidence database, hash-chained:
 *
 *   hash(n) = SHA-256( hash(n-1) || encoding(event n) )      hash(0) = 32 zero bytes
 *
 * Ids are gapless from 1. The byte encoding is specified in docs/database.md and implemented by
 * evd_custody_event_hash(). Appends are serialized by a transaction-level advisory lock, so concurrent
 * appenders (threads, processes, hosts) never fork the chain. Custody rows are append-only like every
 * evidence row. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "error.h"
#include "hash.h"

#define EVD_CUSTODY_KIND_MAX 32u /* kind: [a-z][a-z0-9_]*, enforced by the database */

/* Kinds the pipeline uses (any kind matching the pattern above is accepted). */
#define EVD_CUSTODY_DOCKED      "docked"
#define EVD_CUSTODY_IDENTIFIED  "identified"
#define EVD_CUSTODY_REFUSED     "refused"
#define EVD_CUSTODY_COPIED      "copied"
#define EVD_CUSTODY_VERIFIED    "verified"
#define EVD_CUSTODY_ARCHIVED    "archived"
#define EVD_CUSTODY_RECORDED    "recorded"
#define EVD_CUSTODY_QUARANTINED "quarantined"
#define EVD_CUSTODY_UNDOCKED    "undocked"

/* What a caller appends. Strings are borrowed for the duration of the call. */
typedef struct EvdCustodyEntry {
        const char *kind;
        const char *device_id; /* may be NULL */
        int64_t docking_id;    /* 0: none */
        int64_t file_id;       /* 0: none (evd_db_file_record() sets it to the new file) */
        const char *detail;    /* free text, UTF-8; NULL is stored as "" */
} EvdCustodyEntry;

/* A stored event, as hashed. */
typedef struct EvdCustodyEvent {
        int64_t id;
        int64_t time_us;
        const char *kind;
        const char *device_id; /* may be NULL */
        int64_t docking_id;    /* 0: none */
        int64_t file_id;       /* 0: none */
        const char *detail;    /* never NULL */
} EvdCustodyEvent;

/* Appends one event inside the caller's open transaction if there is one (then the event commits or
 * rolls back with it, and the custody lock is held until then), else in its own. The database clock sets
 * the time. *ret_id may be NULL. The transaction must be READ COMMITTED (the default). */
int evd_custody_append(EvdDb *db, const EvdCustodyEntry *entry, int64_t *ret_id, EvdError *err);

/* hash = SHA-256(prev || encoding(ev)); see docs/database.md. */
int evd_custody_event_hash(const EvdCustodyEvent *ev, const uint8_t prev[EVD_DIGEST_SIZE],
                           uint8_t ret_hash[EVD_DIGEST_SIZE]);

typedef enum EvdCustodyProblem {
        EVD_CUSTODY_OK = 0,
        EVD_CUSTODY_HASH_MISMATCH, /* the stored hash is not the hash of the stored fields */
        EVD_CUSTODY_PREV_MISMATCH, /* prev_hash does not name the event before */
        EVD_CUSTODY_ID_GAP,        /* an id is missing (an event was deleted) */
} EvdCustodyProblem;

const char *evd_custody_problem_to_string(EvdCustodyProblem p); /* "ok", "hash-mismatch", ... */

typedef struct EvdCustodyReport {
        bool ok;
        uint64_t n_events;    /* events checked (up to and including the first bad one) */
        int64_t first_bad_id; /* 0 when ok; for a gap, the first missing id */
        EvdCustodyProblem problem;
        char detail[256];                   /* human-readable why, "" when ok */
        uint8_t head_hash[EVD_DIGEST_SIZE]; /* hash of the last event (zero if empty); worth logging
                                             * elsewhere: it exposes a later truncation of the tail */
        int64_t head_id;                    /* 0 if empty */
} EvdCustodyReport;

/* Walks the whole log in id order (streamed, constant memory) and recomputes every hash. A broken chain
 * is a result (report.ok false), not an error; errors mean the log could not be read. */
int evd_custody_verify(EvdDb *db, EvdCustodyReport *ret_report, EvdError *err);
