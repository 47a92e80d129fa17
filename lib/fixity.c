/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One fixity run (lib/fixity.h): database rows in batches, each copy re-hashed from the store, findings
 * and the position put in the custody log. */
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "custody.h"
#include "fixity.h"
#include "hash.h"

const char *evd_fixity_problem_to_string(EvdFixityProblem p)
{
        static const char *const names[_EVD_FIXITY_PROBLEM_MAX] = {
            [EVD_FIXITY_CHANGED] = "changed",
            [EVD_FIXITY_MISSING] = "missing",
            [EVD_FIXITY_UNREADABLE] = "unreadable",
        };
        return (unsigned)p < _EVD_FIXITY_PROBLEM_MAX ? names[p] : NULL;
}

EvdFixityReport *evd_fixity_report_free(EvdFixityReport *r)
{
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_mismatches; i++)
                free(r->mismatches[i].path);
        free(r->mismatches);
        free(r);
        return NULL;
}

/* Hashes one stored copy. Returns 0 with *ret_problem set (or -1 in it when the copy matches), < 0 only
 * for out of memory. */
static int check_copy(EvdStore *store, const char *path, const char *expected_hex, EvdFixityMismatch *m,
                      uint64_t *bytes)
{
        m->expected_sha256[0] = m->found_sha256[0] = 0;
        snprintf(m->expected_sha256, sizeof(m->expected_sha256), "%s", expected_hex);
        /* stored paths are relative, written by evidock; never follow a symlink planted in the store */
        _cleanup_close_ int fd =
            openat(evd_store_root_fd(store), path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
                int e = errno;
                m->problem = e == ENOENT ? EVD_FIXITY_MISSING : EVD_FIXITY_UNREADABLE;
                snprintf(m->detail, sizeof(m->detail), "%s: %s", path,
                         e == ENOENT ? "missing from the store" : strerror(e));
                return 0;
        }
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                m->problem = EVD_FIXITY_UNREADABLE;
                snprintf(m->detail, sizeof(m->detail), "%s: not a regular file", path);
                return 0;
        }
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        uint8_t d[EVD_DIGEST_SIZE];
        uint64_t size = 0;
        int r = evd_hash_fd(EVD_HASH_SHA256, fd, d, &size);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                m->problem = EVD_FIXITY_UNREADABLE;
                snprintf(m->detail, sizeof(m->detail), "%s: read error: %s", path, strerror(-r));
                return 0;
        }
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED); /* a full pass must not flush the page cache */
        *bytes += size;
        evd_hex(d, EVD_DIGEST_SIZE, m->found_sha256);
        if (strcmp(m->found_sha256, expected_hex) == 0) {
                m->problem = (EvdFixityProblem)-1;
                return 0;
        }
        m->problem = EVD_FIXITY_CHANGED;
        snprintf(m->detail, sizeof(m->detail), "%s: SHA-256 %s (%" PRIu64 " bytes), recorded %s", path,
                 m->found_sha256, size, expected_hex);
        return 0;
}

static int record_mismatch(EvdDb *db, EvdFixityReport *rep, const EvdFixityMismatch *m, const char *path,
                           EvdError *err)
{
        char detail[512];
        snprintf(detail, sizeof(detail), "fixity: %s %s: %s", m->archive ? "archive copy" : "original",
                 evd_fixity_problem_to_string(m->problem), m->detail);
        EvdCustodyEntry e = {.kind = EVD_CUSTODY_FIXITY_MISMATCH, .file_id = m->file_id, .detail = detail};
        int r = evd_custody_append(db, &e, NULL, err);
        if (r < 0)
                return evd_error_prefix(err, "recording the fixity mismatch of file %" PRId64 ": ",
                                        m->file_id),
                       r;
        rep->n_mismatches_total++;
        if (rep->n_mismatches >= EVD_FIXITY_MAX_REPORTED)
                return 0;
        EvdFixityMismatch *a = reallocarray(rep->mismatches, rep->n_mismatches + 1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        rep->mismatches = a;
        a[rep->n_mismatches] = *m;
        a[rep->n_mismatches].path = strdup(path);
        if (!a[rep->n_mismatches].path)
                return -ENOMEM;
        rep->n_mismatches++;
        return 0;
}

/* The position: file_id = the last file checked, or none once the pass reached the newest file. */
static int save_position(EvdDb *db, const EvdFixityReport *rep, bool final, EvdError *err)
{
        char detail[300];
        snprintf(detail, sizeof(detail),
                 "fixity %s: files %" PRId64 "..%" PRId64 " (%" PRIu64 " files, %" PRIu64 " copies, %" PRIu64
                 " bytes re-hashed), %" PRIu64 " mismatches%s",
                 final ? "run" : "checkpoint", rep->first_file_id, rep->last_file_id, rep->files_checked,
                 rep->copies_checked, rep->bytes_hashed, rep->n_mismatches_total,
                 rep->reached_end ? "; reached the newest file: the next resumed run starts over" : "");
        EvdCustodyEntry e = {.kind = EVD_CUSTODY_FIXITY_CHECKED,
                             .file_id = rep->reached_end ? 0 : rep->last_file_id,
                             .detail = detail};
        int r = evd_custody_append(db, &e, NULL, err);
        return r < 0 ? evd_error_prefix(err, "saving the fixity position: "), r : 0;
}

int evd_fixity_check(EvdDb *db, EvdStore *store, const EvdFixityOptions *opts, EvdFixityReport **ret_report,
                     EvdError *err)
{
        EvdFixityOptions o = opts ? *opts : (EvdFixityOptions){};
        _cleanup_(evd_fixity_report_freep) EvdFixityReport *rep = calloc(1, sizeof(*rep));
        if (!rep)
                return -ENOMEM;
        int64_t after = 0;
        int r;
        if (o.resume && (r = evd_db_fixity_position(db, &after, err)) < 0)
                return r;
        uint64_t since_checkpoint = 0;
        for (;;) {
                size_t want = EVD_FIXITY_BATCH;
                if (o.max_files && o.max_files - rep->files_checked < want)
                        want = (size_t)(o.max_files - rep->files_checked);
                if (want == 0)
                        break;
                EvdDbFixityRow *rows = NULL;
                size_t n = 0;
                r = evd_db_fixity_rows(db, after, want, &rows, &n, err);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < n && r >= 0; i++) {
                        const EvdDbFixityRow *f = &rows[i];
                        for (int copy = 0; copy < 2 && r >= 0; copy++) {
                                const char *path = copy ? f->archive_path : f->original_path;
                                if (!path)
                                        continue;
                                EvdFixityMismatch m = {.file_id = f->id, .archive = copy == 1};
                                r = check_copy(store, path, copy ? f->archive_sha256 : f->sha256, &m,
                                               &rep->bytes_hashed);
                                rep->copies_checked++;
                                if (r >= 0 && (int)m.problem >= 0)
                                        r = record_mismatch(db, rep, &m, path, err);
                        }
                        if (r < 0)
                                break;
                        if (!rep->first_file_id)
                                rep->first_file_id = f->id;
                        rep->last_file_id = after = f->id;
                        rep->files_checked++;
                        if (++since_checkpoint >= EVD_FIXITY_CHECKPOINT_FILES) {
                                since_checkpoint = 0;
                                r = save_position(db, rep, false, err);
                        }
                }
                evd_db_fixity_rows_free(rows, n);
                if (r < 0)
                        return r;
                if (n < want) {
                        rep->reached_end = true;
                        break;
                }
        }
        r = save_position(db, rep, true, err);
        if (r < 0)
                return r;
        *ret_report = steal_ptr(&rep);
        return 0;
}
