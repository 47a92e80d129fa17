/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The SQL behind retention.c and disposal.c (implemented in db-lifecycle.c, with lifecycle.h's
 * functions). Not a public header. */
#pragma once

#include "disposal.h"
#include "lifecycle.h"
#include "retention.h"

/* Facts of every file (file_ids NULL) or of the listed ones, by id; at most EVD_DB_LOG_MAX_ROWS. */
int db_lifecycle_facts(EvdDb *db, const int64_t *file_ids, size_t n_ids, EvdRetentionFacts **ret,
                       size_t *ret_n, bool *ret_truncated, EvdError *err);
void db_lifecycle_facts_clear(EvdRetentionFacts *f);
void db_lifecycle_facts_free(EvdRetentionFacts *v, size_t n);

/* Serializes lifecycle changes (case, mark, disposal) inside the caller's transaction. */
int db_lifecycle_lock(EvdDb *db, EvdError *err);

int db_disposal_batch_insert(EvdDb *db, const char *reason, const int64_t *file_ids,
                             const int64_t *expired_us, size_t n, int64_t *ret_batch_id, EvdError *err);

/* Execution: a session-level lock on the batch (0: taken, -EBUSY: held by another session). */
int db_disposal_execution_lock(EvdDb *db, int64_t batch_id, bool take, EvdError *err);

/* Records one file's disposal (row + custody event) in one transaction. */
int db_disposal_record(EvdDb *db, int64_t batch_id, const EvdRetentionFacts *f, const char *detail,
                       EvdError *err);
/* A custody event only (a skipped file, or the end of an execution with its row). */
int db_disposal_note(EvdDb *db, int64_t file_id, const char *kind, const char *detail, EvdError *err);
int db_disposal_finish(EvdDb *db, int64_t batch_id, size_t n_disposed, size_t n_skipped, const char *detail,
                       EvdError *err);
