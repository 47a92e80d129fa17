/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What `evidockctl audit verify` checks beyond the hash chain itself (lib/custody.h):
 *
 * - the cross-check: every evidence row has the custody events written in its own transaction (a file
 *   its "recorded" or "quarantined" event, a docking at least one event naming it, a finished docking its
 *   "docking_done", "interrupted" or (a refused recorder) "refused" event). A row without them was
 *   inserted behind the library's back, or
 *   its events were cut away with the tail of the log;
 * - a checkpoint: a head (event id + hash) recorded outside the database earlier, e.g. the line
 *   "custody log intact: N events, head ID HASH" kept in the journal, a file or on paper. The log must
 *   still hold that event with that hash: otherwise its tail was cut (the log now ends before it) or it
 *   was rewritten (the hash differs). The chain alone cannot show either. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "error.h"
#include "hash.h"

typedef enum EvdCustodyGapKind {
        EVD_CUSTODY_GAP_FILE,    /* a files row without its recorded/quarantined event */
        EVD_CUSTODY_GAP_DOCKING, /* a dockings row without any event naming it */
        EVD_CUSTODY_GAP_RESULT,  /* a docking_results row without docking_done/interrupted/refused */
} EvdCustodyGapKind;

const char *evd_custody_gap_kind_to_string(EvdCustodyGapKind k); /* "file", "docking", "docking-result" */

/* One evidence row without its events. Strings are valid during the callback only. */
typedef struct EvdCustodyGap {
        EvdCustodyGapKind kind;
        int64_t id;            /* the file id, or the docking id */
        const char *device_id; /* "" when none (a refused docking) */
        const char *name;      /* a file's original_path; a docking's transport and identity */
} EvdCustodyGap;

typedef void (*EvdCustodyGapFn)(const EvdCustodyGap *gap, void *userdata);

#define EVD_CUSTODY_GAPS_LISTED 1000u /* at most this many gaps are passed to fn; all are counted */

/* Cross-checks the evidence tables against the custody log in one read-only snapshot. Calls fn (may be
 * NULL) for each gap, in order (files, dockings, results; by id), and sets *ret_n_gaps to how many there
 * are. Gaps are a result, not an error. */
int evd_custody_crosscheck(EvdDb *db, EvdCustodyGapFn fn, void *userdata, uint64_t *ret_n_gaps,
                           EvdError *err);

typedef struct EvdCustodyCheckpoint {
        int64_t id; /* >= 1 */
        uint8_t hash[EVD_DIGEST_SIZE];
} EvdCustodyCheckpoint;

/* Finds the last "head ID HASH" (ID decimal, HASH 64 lower-case hex digits) in text: the output of
 * `evidockctl audit verify`, a journal export of it, or a hand-written line. -ENOENT if there is none. */
int evd_custody_checkpoint_parse(const char *text, EvdCustodyCheckpoint *ret_checkpoint);

typedef enum EvdCheckpointOutcome {
        EVD_CHECKPOINT_MATCH,     /* the log still holds the recorded head with its hash */
        EVD_CHECKPOINT_TAIL_CUT,  /* the log ends before the recorded head */
        EVD_CHECKPOINT_REWRITTEN, /* the recorded event is there with another hash (or is missing) */
} EvdCheckpointOutcome;

const char *evd_checkpoint_outcome_to_string(EvdCheckpointOutcome o); /* "match", "tail-cut", "rewritten" */

typedef struct EvdCheckpointReport {
        EvdCheckpointOutcome outcome;
        int64_t head_id; /* the log's last event now (0 if empty) */
        char detail[300];
} EvdCheckpointReport;

/* Compares the log with a checkpoint. A mismatch is a result (report.outcome), not an error. */
int evd_custody_checkpoint_compare(EvdDb *db, const EvdCustodyCheckpoint *checkpoint,
                                   EvdCheckpointReport *ret_report, EvdError *err);
