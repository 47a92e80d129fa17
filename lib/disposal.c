/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Two-person disposal: propose, decide, execute (record first, then remove; resumable). */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db-internal.h"
#include "db-lifecycle.h"
#include "disposal.h"
#include "hash.h"

/* Why a file may not be disposed now, or NULL if it may. */
static const char *not_disposable(const EvdRetentionFacts *f, const EvdRetentionVerdict *v, int64_t now_us,
                                  char *buf, size_t size)
{
        if (f->disposed)
                return "it was disposed already";
        if (f->hold)
                return "it is under legal hold";
        if (f->long_term)
                return "it is marked long-term (002:§18)";
        if (f->current_case) {
                snprintf(buf, size, "it is evidence in case '%s'", f->current_case);
                return buf;
        }
        if (!evd_retention_disposable(f, v, now_us)) {
                snprintf(buf, size, "its retention has not expired (%s)", v->why);
                return buf;
        }
        return NULL;
}

int evd_disposal_propose(EvdDb *db, const EvdRetentionPolicy *p, int64_t now_us, const int64_t *file_ids,
                         size_t n, const char *reason, int64_t *ret_batch_id, size_t *ret_n_files,
                         EvdError *err)
{
        const char *what = "proposing a disposal batch";
        if (!reason || !reason[0])
                return evd_error_set(err, -EINVAL, "%s: a reason is required (--reason TEXT)", what);
        if (n > EVD_DISPOSAL_MAX_FILES)
                return evd_error_set(err, -E2BIG, "%s: more than %u files", what, EVD_DISPOSAL_MAX_FILES);

        bool nested;
        int r = db_tx_open(db, &nested, err);
        if (r < 0)
                return r;
        r = db_lifecycle_lock(db, err);
        EvdRetentionFacts *facts = NULL;
        size_t n_facts = 0;
        if (r >= 0)
                r = db_lifecycle_facts(db, n > 0 ? file_ids : NULL, n, &facts, &n_facts, NULL, err);
        /* every listed file must exist */
        for (size_t i = 0; r >= 0 && i < n; i++) {
                bool found = false;
                for (size_t j = 0; j < n_facts && !found; j++)
                        found = facts[j].file_id == file_ids[i];
                if (!found)
                        r = evd_error_set(err, -ENOENT, "%s: file %" PRId64 " does not exist", what,
                                          file_ids[i]);
        }
        int64_t *ids = NULL, *expired = NULL;
        size_t m = 0;
        if (r >= 0) {
                ids = calloc(n_facts ? n_facts : 1, sizeof(*ids));
                expired = calloc(n_facts ? n_facts : 1, sizeof(*expired));
                if (!ids || !expired)
                        r = -ENOMEM;
        }
        for (size_t i = 0; r >= 0 && i < n_facts; i++) {
                EvdRetentionVerdict v;
                evd_retention_evaluate(p, &facts[i], &v);
                char buf[320];
                const char *why = not_disposable(&facts[i], &v, now_us, buf, sizeof(buf));
                if (why && n > 0)
                        r = evd_error_set(err, -EPERM, "%s: file %" PRId64 " cannot be disposed: %s", what,
                                          facts[i].file_id, why);
                else if (!why && m < EVD_DISPOSAL_MAX_FILES) {
                        ids[m] = facts[i].file_id;
                        expired[m++] = v.keep_until_us;
                }
        }
        if (r >= 0 && m == 0)
                r = evd_error_set(err, -ENOENT,
                                  "%s: no recording is disposable now (see evidockctl retention "
                                  "report)",
                                  what);
        int64_t batch = 0;
        if (r >= 0)
                r = db_disposal_batch_insert(db, reason, ids, expired, m, &batch, err);
        free(ids);
        free(expired);
        db_lifecycle_facts_free(facts, n_facts);
        r = db_tx_close(db, nested, r, err);
        if (r < 0)
                return r;
        *ret_batch_id = batch;
        if (ret_n_files)
                *ret_n_files = m;
        return 0;
}

/* The stored bytes are the recorded ones (1), differ (0, *why set), or are absent (-ENOENT). */
static int stored_bytes_match(EvdStore *store, const char *rel, const char *hex, uint64_t *ret_size)
{
        int fd = openat(evd_store_root_fd(store), rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        uint8_t digest[EVD_DIGEST_SIZE];
        uint64_t size = 0;
        int r = evd_hash_fd(EVD_HASH_SHA256, fd, digest, &size);
        close(fd);
        if (r < 0)
                return r;
        char got[EVD_DB_HEX_SIZE];
        evd_hex(digest, sizeof(digest), got);
        *ret_size += size;
        return strcmp(got, hex) == 0;
}

static void step(EvdDisposalFn fn, void *userdata, EvdDisposalStepKind kind, const EvdRetentionFacts *f,
                 const char *why)
{
        if (!fn)
                return;
        EvdDisposalStep s = {
            .kind = kind, .file_id = f->file_id, .original_path = f->original_path, .why = why};
        fn(&s, userdata);
}

static int remove_bytes(EvdStore *store, const EvdRetentionFacts *f, EvdError *err)
{
        int r = evd_store_dispose_file(store, f->original_path, err);
        if (r >= 0 && f->archive_path)
                r = evd_store_dispose_file(store, f->archive_path, err);
        if (r < 0)
                return evd_error_prefix(err,
                                        "file %" PRId64 " (its disposal is recorded; execute the batch "
                                        "again to finish): ",
                                        f->file_id);
        return 0;
}

/* One file of the batch. Returns < 0 only when the execution must stop. */
static int execute_one(EvdDb *db, EvdStore *store, const EvdRetentionPolicy *p, int64_t now_us,
                       const EvdDisposalBatch *b, EvdRetentionFacts *f, EvdDisposalFn fn, void *userdata,
                       EvdDisposalResult *res, EvdError *err)
{
        if (f->disposed) {
                /* recorded by an interrupted run: finish the removal */
                int r = remove_bytes(store, f, err);
                if (r < 0)
                        return r;
                res->n_disposed++;
                res->n_resumed++;
                step(fn, userdata, EVD_DISPOSAL_RESUMED, f, NULL);
                return 0;
        }

        EvdRetentionVerdict v;
        evd_retention_evaluate(p, f, &v);
        char buf[320], why[400];
        const char *no = not_disposable(f, &v, now_us, buf, sizeof(buf));
        uint64_t size = 0;
        if (!no) {
                int m = stored_bytes_match(store, f->original_path, f->sha256, &size);
                if (m == 0)
                        no = "the stored original differs from its recorded SHA-256 (left in place: check "
                             "it)";
                else if (m == -ENOENT)
                        no = "the stored original is missing (see evidockctl reconcile)";
                else if (m < 0)
                        return evd_error_set_errno(err, m, "reading %s/%s", evd_store_root(store),
                                                   f->original_path);
        }
        if (!no && f->archive_path && f->archive_sha256[0]) {
                int m = stored_bytes_match(store, f->archive_path, f->archive_sha256, &size);
                if (m == 0)
                        no = "the stored archive copy differs from its recorded SHA-256 (left in place: "
                             "check it)";
                else if (m < 0 && m != -ENOENT)
                        return evd_error_set_errno(err, m, "reading %s/%s", evd_store_root(store),
                                                   f->archive_path);
        }
        if (no) {
                snprintf(why, sizeof(why), "batch %" PRId64 ": file %" PRId64 " not disposed: %s", b->id,
                         f->file_id, no);
                int r = db_disposal_note(db, f->file_id, "disposal_skipped", why, err);
                if (r < 0)
                        return r;
                res->n_skipped++;
                step(fn, userdata, EVD_DISPOSAL_SKIPPED, f, no);
                return 0;
        }

        char detail[1024];
        snprintf(
            detail, sizeof(detail),
            "batch %" PRId64 " (proposed by %s, approved by %s: %s): removed original %s sha256 %s%s%s%s%s",
            b->id, strna(b->proposed_by), strna(b->decided_by), strna(b->decision_reason), f->original_path,
            f->sha256, f->archive_path ? " and archive copy " : "", f->archive_path ? f->archive_path : "",
            f->archive_sha256[0] ? " sha256 " : "", f->archive_sha256);
        int r = db_disposal_record(db, b->id, f, detail, err);
        if (r < 0)
                return r;
        f->disposed = true;
        step(fn, userdata, EVD_DISPOSAL_RECORDED, f, NULL);
        r = remove_bytes(store, f, err);
        if (r < 0)
                return r;
        res->n_disposed++;
        res->bytes_freed += size;
        step(fn, userdata, EVD_DISPOSAL_REMOVED, f, NULL);
        return 0;
}

int evd_disposal_execute(EvdDb *db, EvdStore *store, const EvdRetentionPolicy *p, int64_t now_us,
                         int64_t batch_id, EvdDisposalFn fn, void *userdata, EvdDisposalResult *ret,
                         EvdError *err)
{
        EvdDisposalResult res = {};
        int r = db_disposal_execution_lock(db, batch_id, true, err);
        if (r < 0)
                return r;
        EvdDisposalBatch *b = NULL;
        size_t nb = 0;
        r = evd_disposal_list(db, batch_id, &b, &nb, err);
        if (r >= 0) {
                switch (b[0].state) {
                case EVD_DISPOSAL_EXECUTED:
                        r = evd_error_set(err, -EALREADY,
                                          "disposal batch %" PRId64 " was executed already: nothing done",
                                          batch_id);
                        break;
                case EVD_DISPOSAL_REJECTED:
                        r = evd_error_set(err, -EPERM, "disposal batch %" PRId64 " was rejected by %s: %s",
                                          batch_id, strna(b[0].decided_by), strna(b[0].decision_reason));
                        break;
                case EVD_DISPOSAL_PROPOSED:
                        r = evd_error_set(
                            err, -EPERM,
                            "disposal batch %" PRId64 " is not approved yet (a different admin "
                            "approves it: evidockctl dispose approve %" PRId64 " --reason TEXT)",
                            batch_id, batch_id);
                        break;
                default:
                        break;
                }
        }
        EvdRetentionFacts *facts = NULL;
        size_t n = 0;
        if (r >= 0)
                r = db_lifecycle_facts(db, b[0].file_ids, b[0].n_files, &facts, &n, NULL, err);
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = execute_one(db, store, p, now_us, &b[0], &facts[i], fn, userdata, &res, err);
        if (r >= 0) {
                char detail[256];
                snprintf(detail, sizeof(detail), "batch %" PRId64 ": %zu file(s) disposed, %zu skipped",
                         batch_id, res.n_disposed, res.n_skipped);
                r = db_disposal_finish(db, batch_id, res.n_disposed, res.n_skipped, detail, err);
        }
        db_lifecycle_facts_free(facts, n);
        evd_disposal_batch_array_free(b, nb);
        (void)db_disposal_execution_lock(db, batch_id, false, NULL);
        if (r < 0)
                return r;
        if (ret)
                *ret = res;
        return 0;
}
