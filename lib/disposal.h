/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Disposal of expired ordinary recordings, by two people, on an append-only store (docs/lifecycle.md):
 *
 *   propose  an admin lists expired files (or asks for all of them) with a reason -> a batch;
 *   decide   a DIFFERENT admin (database login) approves or rejects it with a reason;
 *   execute  for each file of an approved batch, in order: check it is still disposable (no hold, no case,
 *            no long-term mark since) and that the stored bytes are the recorded ones; record the
 *            disposal (a `disposals` row and a custody event with the hashes) in one transaction; then
 *            remove the original and the archive copy from the store. The file's rows and hashes stay.
 *
 * Crash safety: a file is recorded before its bytes are removed and its bytes are only removed once
 * recorded, so after a crash each file is either untouched and not recorded, or recorded (and its removal
 * is finished when the batch is executed again: an interrupted batch resumes). A batch whose execution
 * finished is never executed again (-EALREADY). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "error.h"
#include "retention.h"
#include "store.h"

#define EVD_DISPOSAL_MAX_FILES 10000u /* files in one batch */

/* Proposes a batch. file_ids NULL/n 0: every file disposable now. A listed file that is not disposable
 * is an error naming it and why (in a case, held, long-term, not expired, disposed). -ENOENT when nothing
 * is disposable. */
int evd_disposal_propose(EvdDb *db, const EvdRetentionPolicy *p, int64_t now_us, const int64_t *file_ids,
                         size_t n, const char *reason, int64_t *ret_batch_id, size_t *ret_n_files,
                         EvdError *err);

/* Approves or rejects. -EPERM for the proposer, -EALREADY when decided, -ENOENT for no such batch. */
int evd_disposal_decide(EvdDb *db, int64_t batch_id, bool approve, const char *reason, EvdError *err);

typedef enum EvdDisposalStepKind {
        EVD_DISPOSAL_RECORDED = 0, /* the disposal is committed; the bytes are removed next */
        EVD_DISPOSAL_REMOVED,      /* original and archive copy removed */
        EVD_DISPOSAL_SKIPPED,      /* not disposed: why says why (held, in a case, bytes differ...) */
        EVD_DISPOSAL_RESUMED,      /* recorded by an interrupted run; removal finished now */
} EvdDisposalStepKind;

typedef struct EvdDisposalStep {
        EvdDisposalStepKind kind;
        int64_t file_id;
        const char *original_path;
        const char *why; /* SKIPPED only */
} EvdDisposalStep;

typedef void (*EvdDisposalFn)(const EvdDisposalStep *step, void *userdata);

typedef struct EvdDisposalResult {
        size_t n_disposed; /* by this run, including resumed ones */
        size_t n_resumed;
        size_t n_skipped;
        uint64_t bytes_freed;
} EvdDisposalResult;

/* Executes an approved batch. -EALREADY if it was executed, -EPERM if not approved (or rejected),
 * -EBUSY if another process is executing it now. */
int evd_disposal_execute(EvdDb *db, EvdStore *store, const EvdRetentionPolicy *p, int64_t now_us,
                         int64_t batch_id, EvdDisposalFn fn, void *userdata, EvdDisposalResult *ret,
                         EvdError *err);

typedef enum EvdDisposalState {
        EVD_DISPOSAL_PROPOSED = 0,
        EVD_DISPOSAL_APPROVED,
        EVD_DISPOSAL_REJECTED,
        EVD_DISPOSAL_INTERRUPTED, /* approved, some files disposed, execution not finished */
        EVD_DISPOSAL_EXECUTED,
} EvdDisposalState;

const char *evd_disposal_state_to_string(EvdDisposalState s);

typedef struct EvdDisposalBatch {
        int64_t id;
        EvdDisposalState state;
        char *proposed_by;
        int64_t proposed_us;
        char *reason;
        char *decided_by; /* NULL until decided */
        int64_t decided_us;
        char *decision_reason;
        size_t n_files;
        size_t n_disposed;
        int64_t *file_ids; /* the batch's files, ascending */
} EvdDisposalBatch;

/* batch_id 0: every batch (without file lists), newest first. */
int evd_disposal_list(EvdDb *db, int64_t batch_id, EvdDisposalBatch **ret, size_t *ret_n, EvdError *err);
void evd_disposal_batch_array_free(EvdDisposalBatch *v, size_t n);

/* 1 if the file was disposed (its bytes are meant to be gone), 0 if not. */
int evd_disposal_file_disposed(EvdDb *db, int64_t file_id, EvdError *err);
