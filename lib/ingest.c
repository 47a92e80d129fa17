/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One docking: identify -> verify the chain manifest -> for each file: copy+hash (one read), check it
 * against its record, make the archive copy from the stored original, link both under their final
 * names, and record everything in one database transaction. A stage hands the next a value; nothing
 * reaches back. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <time.h>

#include "chain.h"
#include "clock.h"
#include "copy.h"
#include "custody.h"
#include "db-links.h"
#include "device-id.h"
#include "finding.h"
#include "hash.h"
#include "ingest.h"
#include "ingest-internal.h"
#include "manifest.h"
#include "media.h"
#include "media-worker.h"
#include "path.h"
#include "record.h"
#include "signature.h"

void evd_ingest_options_init(EvdIngestOptions *o)
{
        *o = (EvdIngestOptions){
            .late_after_us = 24LL * 3600 * 1000000,
            .archive_copy = true,
            .archive_while_copying = true,
            .media_timeout_us = 600LL * 1000000,
            .time_gap_tolerance_us = 2LL * 1000000,
            .clock_max_offset_us = 300LL * 1000000,
        };
}

#define STALL_STEP_BYTES (1024u * 1024u) /* a trickle below 1 MiB per deadline is no progress */

/* The docking moved: a file finished, a stage done (the stall deadline starts again). */
#define BATCH_BIG_FILE (8u * 1024u * 1024u) /* fills a batch alone (see "batches" below) */

static void docking_moved(Ingest *g)
{
        g->moved_us = (int64_t)evd_clock_monotonic_us();
        g->unmoved_bytes = 0;
}

/* Called before every read and file: -ECANCELED when the caller asked to stop, -ETIMEDOUT when the
 * docking has not moved for o->stall_timeout_us (both with the reason in err), else 0. */
static int docking_check(Ingest *g, EvdError *err)
{
        if (g->o->cancel && *g->o->cancel) {
                g->sum->cancelled = true;
                return evd_error_set(err, -ECANCELED, "docking of %s stopped on request",
                                     g->device_id[0] ? g->device_id : "a recorder");
        }
        int64_t t = g->o->stall_timeout_us;
        if (t > 0 && (int64_t)evd_clock_monotonic_us() - g->moved_us > t) {
                g->sum->stalled = true;
                return evd_error_set(err, -ETIMEDOUT,
                                     "docking of %s made no progress for %" PRId64 " s (the stall deadline)",
                                     g->device_id[0] ? g->device_id : "a recorder", t / 1000000);
        }
        return 0;
}

static void emit_msg(Ingest *g, EvdIngestEventKind kind, const char *fmt, ...) _printf_(3, 4);
static void emit_msg(Ingest *g, EvdIngestEventKind kind, const char *fmt, ...)
{
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        ingest_emit(g, (EvdIngestEvent){.kind = kind, .message = msg});
}

/* ---- recording ---------------------------------------------------------------------------------- */

static void emit_finding(Ingest *g, const EvdFinding *f, const char *path)
{
        bool has_seq = evd_finding_has_seq(f);
        ingest_emit(g,
                    (EvdIngestEvent){.kind = EVD_INGEST_FINDING,
                                     .path = path,
                                     .has_seq = has_seq,
                                     .seq = has_seq ? f->seq : 0,
                                     .verdict = f->verdict,
                                     .expected = f->expected,
                                     .found = f->found,
                                     .message = f->detail ? f->detail : evd_verdict_describe(f->verdict)});
}

static int record_docking_finding(Ingest *g, const EvdFinding *f, const char *path)
{
        /* Amplification bound: a manifest of 65,536 bad lines must not become 200,000 rows and as many
         * log lines per docking. Past EVD_INGEST_FINDINGS_PER_KIND of one verdict, findings are counted
         * (summary.findings, worst) and the count is recorded once at the end (findings_overflow). */
        unsigned v = (unsigned)f->verdict < _EVD_VERDICT_MAX ? (unsigned)f->verdict : 0;
        if (++g->kind_count[v] > EVD_INGEST_FINDINGS_PER_KIND) {
                g->sum->findings++;
                g->sum->worst = evd_verdict_worst(g->sum->worst, f->verdict);
                return 0;
        }
        g->sum->findings++;
        g->sum->worst = evd_verdict_worst(g->sum->worst, f->verdict);
        emit_finding(g, f, path);
        return evd_record_finding(g->rs, f, NULL);
}

/* ---- one file ------------------------------------------------------------------------------------ */

static void file_job_init(FileJob *j, EvdChainItem *it)
{
        *j = (FileJob){.item = it,
                       .path = it->file,
                       .record = it->record,
                       .orig_dir = -1,
                       .arch_dir = -1,
                       .ahead_fd = -1,
                       .orig = EVD_TMPFILE_INIT,
                       .arch = EVD_TMPFILE_INIT};
        evd_path_escape(j->path, j->shown, sizeof(j->shown));
}

static void file_job_add(FileJob *j, EvdVerdict v, bool has_seq, uint64_t seq, const char *expected,
                         const char *found, const char *detail)
{
        if (j->n_findings >= MAX_FILE_FINDINGS)
                return;
        /* out of memory: the finding is kept without its evidence strings rather than lost */
        EvdFinding *f = &j->findings[j->n_findings++];
        if (evd_finding_set(f, v, has_seq ? seq : EVD_FINDING_NO_SEQ, NULL, expected, found, detail) < 0)
                *f = (EvdFinding){.verdict = v, .seq = has_seq ? seq : EVD_FINDING_NO_SEQ};
}

/* Frees the job; what was not committed is discarded (a committed file keeps its name). */
static void file_job_clear(FileJob *j)
{
        for (size_t i = 0; i < j->n_findings; i++)
                evd_finding_clear(&j->findings[i]);
        j->n_findings = 0;
        evd_store_space_release(&j->space);
        (void)evd_tmpfile_sync_end(j->orig_sync, NULL); /* before its file goes */
        j->orig_sync = NULL;
        evd_tmpfile_discard(&j->orig);
        evd_tmpfile_discard(&j->arch);
        closep(&j->orig_dir);
        closep(&j->arch_dir);
        closep(&j->ahead_fd);
        j->ahead_fd = -1;
        free(j->orig_rel);
        free(j->arch_rel);
        free(j->orig_path);
        free(j->arch_path);
        j->orig_rel = j->arch_rel = j->orig_path = j->arch_path = NULL;
}

static void copy_progress(uint64_t done, uint64_t total, void *userdata)
{
        Progress *p = userdata;
        evd_store_space_written(p->space, p->space_part, done);
        ingest_emit(p->g, (EvdIngestEvent){.kind = EVD_INGEST_FILE_PROGRESS,
                                           .path = p->shown,
                                           .has_seq = p->has_seq,
                                           .seq = p->seq,
                                           .done = done,
                                           .total = total});
}

/* "Already ingested?" (in the database, or while it is unreachable in the spool). 1 yes, 0 no. */
static int file_known(Ingest *g, const uint8_t *record_hash, const char *source_path, const uint8_t *sha256,
                      EvdError *err)
{
        return evd_record_file_known(g->rs, g->device_id, record_hash, source_path, sha256, err);
}

/* If a file of this name exists already (a run that stored it and then crashed before recording it),
 * it is ours if its content is the same: reuse it; anything else is a real conflict. */
static int commit_or_reuse(EvdTmpFile *t, int dir_fd, const char *name, EvdError *err)
{
        /* synced already, with the rest of its batch; the directory is synced once for the batch */
        int r = evd_tmpfile_link(t, dir_fd, name, err);
        if (r != -EEXIST)
                return r;
        _cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return evd_error_set_errno(err, -errno, "opening existing %s", name);
        uint8_t have[EVD_DIGEST_SIZE], want[EVD_DIGEST_SIZE];
        uint64_t have_size = 0, want_size = 0;
        if (evd_hash_fd(EVD_HASH_SHA256, fd, have, &have_size) < 0 ||
            evd_hash_fd(EVD_HASH_SHA256, t->fd, want, &want_size) < 0)
                return evd_error_set(err, -EIO, "cannot compare %s with the file already stored", name);
        if (have_size != want_size || memcmp(have, want, EVD_DIGEST_SIZE) != 0)
                return evd_error_set(err, -EEXIST, "%s exists in the store with other content", name);
        evd_tmpfile_discard(t);
        return 0;
}

#define STORE_NAME_MAX   192u
#define STORE_NAME_TRIES 64u /* "~2" .. "~64": more files under one name than that is an attack */

/* Commits t as stem+ext, or, when that name holds other content, as stem~N+ext: every stored file gets a
 * name of its own (the sanitised component never contains '~', so "~N" names meet only each other).
 * ret_name (STORE_NAME_MAX) gets the name used. */
static int commit_unique(EvdTmpFile *t, int dir_fd, const char *stem, const char *ext, char *ret_name,
                         EvdError *err)
{
        for (unsigned i = 1; i <= STORE_NAME_TRIES; i++) {
                char name[STORE_NAME_MAX];
                if (i == 1)
                        snprintf(name, sizeof(name), "%s%s", stem, ext);
                else
                        snprintf(name, sizeof(name), "%s~%u%s", stem, i, ext);
                int r = commit_or_reuse(t, dir_fd, name, err);
                if (r != -EEXIST) {
                        if (r >= 0)
                                snprintf(ret_name, STORE_NAME_MAX, "%s", name);
                        return r;
                }
        }
        return evd_error_set(err, -EEXIST, "%s%s: %u files of other content hold this name and its variants",
                             stem, ext, STORE_NAME_TRIES);
}

static const char *method_of(const FileJob *j)
{
        if (j->record)
                return evd_method_to_string(j->record->method);
        return "unknown";
}

/* What the copy reads through: the file as listed and no further (a file that grows while copied is cut
 * at its listed size, and `grew` says so), the cancel flag and the stall deadline before every read. */
typedef struct GuardedReader {
        EvdReader reader;
        EvdReader *inner;
        Ingest *g;
        uint64_t limit, done;
        bool at_limit, grew;
} GuardedReader;

static ssize_t guarded_read(EvdReader *r, void *buf, size_t n, EvdError *err)
{
        GuardedReader *q = r->userdata;
        int k = docking_check(q->g, err);
        if (k < 0)
                return k;
        if (q->done >= q->limit) {
                if (!q->at_limit) {
                        /* one byte past the listed size tells a file that grew from one that ends */
                        uint8_t extra;
                        EvdError ignored = {};
                        q->at_limit = true;
                        q->grew = evd_reader_read(q->inner, &extra, 1, &ignored) > 0;
                }
                return 0;
        }
        ssize_t got = evd_reader_read(q->inner, buf, (size_t)MIN((uint64_t)n, q->limit - q->done), err);
        if (got > 0) {
                q->done += (uint64_t)got;
                q->g->unmoved_bytes += (uint64_t)got;
                if (q->g->unmoved_bytes >= STALL_STEP_BYTES)
                        docking_moved(q->g);
        }
        return got;
}

static void guarded_close(EvdReader *r)
{
        /* the inner reader has its own owner */
}

static const EvdReaderOps guarded_reader_ops = {.read = guarded_read, .close = guarded_close};

/* ---- the steps of one file: place, copy, check, archive, commit, record ---------------------------
 *
 * Each step returns 0 to go on to the next, 1 when the file is handled (skipped as already recorded, or
 * its failure recorded as a finding: the docking goes on), or a negative errno when the docking must
 * stop (source gone, store full, database down without a spool; err says why). What a step leaves in
 * the FileJob is the next step's input; file_job_clear() discards what was not committed. */

/* The file that failed now: its finding, on the docking (it stays on the recorder for the next one). */
static int file_failed(Ingest *g, FileJob *j, int error, const char *why)
{
        const EvdRecord *rec = j->record;
        g->sum->files_failed++;
        ingest_emit(g,
                    (EvdIngestEvent){
                        .kind = EVD_INGEST_FILE_FAILED, .path = j->shown, .error = error, .message = why});
        EvdFinding f = {.verdict = EVD_VERDICT_UNREADABLE,
                        .seq = rec ? rec->seq : EVD_FINDING_NO_SEQ,
                        .detail = (char *)why};
        int r = record_docking_finding(g, &f, j->shown);
        return r < 0 ? r : 1;
}

static int file_skipped(Ingest *g, FileJob *j)
{
        g->sum->files_already++;
        ingest_emit(g, (EvdIngestEvent){.kind = EVD_INGEST_FILE_SKIPPED,
                                        .path = j->shown,
                                        .has_seq = j->record != NULL,
                                        .seq = j->record ? j->record->seq : 0});
        return 1;
}

/* The record of a recording stored earlier without it (same path, same bytes): link the record to that
 * copy instead of storing it a second time (db-links.h). The item's findings go to the stored file.
 * Returns 0 (linked, or left for the next docking if the database went away), or < 0. */
static int file_link_record(Ingest *g, FileJob *j, int64_t earlier_id, EvdError *err)
{
        const EvdRecord *rec = j->record;
        EvdVerdict verdict = evd_chain_item_verdict(j->item);
        for (size_t i = 0; i < j->n_findings; i++)
                verdict = evd_verdict_worst(verdict, j->findings[i].verdict);
        size_t n = 0, n_item = MIN(j->item->n_findings, (size_t)MAX_FILE_FINDINGS);
        EvdFinding dbf[2 * MAX_FILE_FINDINGS]; /* borrowed views of the chain's and our own findings */
        for (size_t i = 0; i < n_item; i++)
                dbf[n++] = j->item->findings[i];
        for (size_t i = 0; i < j->n_findings; i++)
                dbf[n++] = j->findings[i];
        _cleanup_free_ char *line = NULL;
        (void)evd_record_to_line(rec, &line, NULL);
        if (line && line[0] && line[strlen(line) - 1] == '\n')
                line[strlen(line) - 1] = 0;
        char hash_hex[2 * EVD_HASH_SIZE + 1], detail[400];
        evd_hex(rec->record_hash, EVD_HASH_SIZE, hash_hex);
        snprintf(detail, sizeof(detail),
                 "%s: record seq %" PRIu64 " (%.12s) names the recording stored as file %" PRId64
                 " without its record (same path, same bytes): linked, not stored again; verdict %s",
                 j->shown, rec->seq, hash_hex, earlier_id, evd_verdict_to_string(verdict));
        EvdDbFileLink link = {.docking_id = g->docking_id,
                              .device_id = g->device_id,
                              .file_id = earlier_id,
                              .relation = EVD_DB_LINK_RECORD_FOUND,
                              .has_seq = true,
                              .seq = rec->seq,
                              .record_hash = rec->record_hash,
                              .chain_record = line,
                              .verdict = verdict,
                              .detail = detail};
        EvdCustodyEntry ev = {.kind = "linked", .detail = detail};
        int r = evd_record_file_link(g->rs, &link, dbf, n, &ev, 1, err);
        if (r < 0) /* linked, or spooled (the replay links it) */
                return evd_error_prefix(err, "linking %s: ", j->shown), r;
        for (size_t i = 0; i < n; i++) {
                g->sum->findings++;
                emit_finding(g, &dbf[i], j->shown);
        }
        g->sum->worst = evd_verdict_worst(g->sum->worst, verdict);
        g->sum->files_already++;
        g->sum->files_linked++;
        ingest_emit(g, (EvdIngestEvent){.kind = EVD_INGEST_FILE_SKIPPED,
                                        .path = j->shown,
                                        .has_seq = true,
                                        .seq = rec->seq,
                                        .message = detail});
        return 0;
}

/* Place: is it new, may it be taken, is there room, and which day of the store it belongs to. */
static int file_place(Ingest *g, FileJob *j, EvdError *err)
{
        const EvdIngestOptions *o = g->o;
        const EvdRecord *rec = j->record;
        if (rec) {
                int r = file_known(g, rec->record_hash, NULL, NULL, err);
                if (r < 0)
                        return evd_error_prefix(err, "looking up %s: ", j->shown), r;
                if (r > 0)
                        return file_skipped(g, j);
        }
        if (evd_path_check(j->path, err) < 0)
                file_job_add(j, EVD_VERDICT_NAME_INVALID, rec != NULL, rec ? rec->seq : 0, NULL, j->shown,
                             err->msg);

        /* Over the size limit: that file's finding, before the space check (a volume that lists a 1 TiB
         * file must not stop the docking as "store full"); it stays on the recorder. */
        uint64_t claimed = MAX(j->item->listed_size, rec ? rec->size : 0);
        if (o->max_file_bytes && claimed > o->max_file_bytes) {
                char detail[300];
                snprintf(detail, sizeof(detail),
                         "%s: %" PRIu64 " bytes (%s), larger than the %" PRIu64
                         " bytes allowed (max_file_size): not copied, left on the recorder",
                         j->shown, claimed, j->item->listed_size >= claimed ? "listed" : "in its record",
                         o->max_file_bytes);
                return file_failed(g, j, -EFBIG, detail);
        }

        /* Disk space: the original and its archive copy must both fit above the reserve, beside what
         * the copies in progress (this docking's batch, other dockings) are still going to write. */
        int r = evd_store_space_reserve(g->store, claimed, claimed, o->reserve_bytes, &j->space, err);
        if (r < 0)
                return evd_error_prefix(
                           err, "%s: not taking more files; the recorder is left untouched: ", j->shown),
                       r;

        /* Where it goes: by recording day (recorder's local time), else by the day it was found. */
        if (rec && rec->type == EVD_RECORD_SEGMENT)
                evd_time_format(rec->start_us, rec->tz_minutes, j->day);
        else
                evd_time_format(g->now_us, 0, j->day);
        j->day[10] = 0;
        return 0;
}

static int ingest_flight_land(Ingest *g, EvdError *err);

/* Copy + hash: one read of every byte into an unnamed file in the store (and, for a long recording, its
 * archive copy made meanwhile: ingest_overlap_begin()). */
static int file_copy(Ingest *g, FileJob *j, EvdError *err)
{
        const EvdIngestOptions *o = g->o;
        const EvdRecord *rec = j->record;
        _cleanup_(evd_reader_closep) EvdReader *rd = NULL;
        int r = evd_source_open(g->src, j->path, &rd, err);
        if (r < 0) {
                /* the recorder lists it but it cannot be opened: nothing to keep, say so */
                file_job_add(j, EVD_VERDICT_UNREADABLE, rec != NULL, rec ? rec->seq : 0, NULL, NULL,
                             err->msg);
                g->sum->files_failed++;
                ingest_emit(g, (EvdIngestEvent){.kind = EVD_INGEST_FILE_FAILED,
                                                .path = j->shown,
                                                .error = r,
                                                .message = err->msg});
                r = record_docking_finding(g, &j->findings[j->n_findings - 1], j->shown);
                return r < 0 ? r : 1;
        }
        r = evd_store_dir(g->store, EVD_STORE_ORIGINALS, g->device_id, j->day, &j->orig_dir, &j->orig_rel,
                          err);
        if (r >= 0)
                r = evd_tmpfile_open(j->orig_dir, &j->orig, err);
        if (r >= 0 && o->archive_copy)
                r = ingest_archive_open(g, j, err);
        if (r >= 0 && ingest_overlap_wanted(g, j, rd)) {
                /* one job at a time in the docking's worker: the file before finishes first */
                r = ingest_flight_land(g, err);
                if (r >= 0)
                        r = ingest_overlap_begin(g, j, err);
        }
        if (r < 0)
                return r;

        Progress prog = {.g = g,
                         .shown = j->shown,
                         .has_seq = rec != NULL,
                         .seq = rec ? rec->seq : 0,
                         .space = &j->space,
                         .space_part = EVD_STORE_SPACE_ORIGINAL};
        ingest_emit(g, (EvdIngestEvent){.kind = EVD_INGEST_FILE_BEGIN,
                                        .path = j->shown,
                                        .has_seq = rec != NULL,
                                        .seq = rec ? rec->seq : 0,
                                        .total = rd->size});
        EvdCopyOptions co = {
            .want_sm3 = (rec ? rec->suite : g->dev->suite) == EVD_SUITE_SM2_SM3,
            .max_bytes = o->max_file_bytes,
            .progress = copy_progress,
            .userdata = &prog,
            /* no .cancel: the guarded reader checks it (and the stall deadline) before every read */
        };
        GuardedReader guard = {.reader = {.ops = &guarded_reader_ops, .size = j->item->listed_size},
                               .inner = rd,
                               .g = g,
                               .limit = j->item->listed_size};
        guard.reader.userdata = &guard;
        r = evd_copy_stream(&guard.reader, &j->orig, &co, &j->cr, err);
        if (r < 0) {
                if (j->overlapped)
                        ingest_overlap_discard(g, j);
                evd_tmpfile_discard(&j->orig);
                evd_error_prefix(err, "copying %s: ", j->shown);
                /* The docking stops when the store fails, or the recorder is gone or stopped answering;
                 * the next docking retries this file. One unreadable file (a medium error, a broken
                 * cluster chain, a file larger than allowed) is that file's finding, and the docking goes
                 * on with the others: it stays on the recorder and is tried again at the next docking. */
                bool recorder_gone = r == -ENODEV || r == -ENXIO || r == -ETIMEDOUT || r == -EPROTO;
                if (!j->cr.read_failed || recorder_gone || r == -ECANCELED || r == -ENOMEM ||
                    g->sum->stalled || g->sum->cancelled)
                        return r;
                return file_failed(g, j, r, err->msg);
        }
        g->sum->bytes_copied += j->cr.size;
        evd_hex(j->cr.sha256, EVD_DIGEST_SIZE, j->sha_hex);
        ingest_overlap_end(g, j);
        if (guard.grew) {
                /* what was listed is what the chain verified and what is stored; the rest is named */
                char detail[300];
                snprintf(detail, sizeof(detail),
                         "%s grew while it was copied: stored as listed, cut at %" PRIu64
                         " bytes; what was written after the listing is not in the store",
                         j->shown, j->item->listed_size);
                file_job_add(j, EVD_VERDICT_UNREADABLE, rec != NULL, rec ? rec->seq : 0, NULL, NULL, detail);
        }

        /* a foreign file is known by what it contains: only now can we ask */
        if (!rec) {
                r = file_known(g, NULL, j->path, j->cr.sha256, err);
                if (r < 0)
                        return r;
                if (r > 0) {
                        evd_tmpfile_discard(&j->orig);
                        return file_skipped(g, j);
                }
        }
        /* A big file is synced on its own (see "batches"): its original from now on, while its archive
         * copy is finished (and the next file copied), rather than after it. */
        if (j->cr.size >= BATCH_BIG_FILE)
                j->orig_sync = evd_tmpfile_sync_begin(&j->orig);
        return 0;
}

/* Check: what was read against its signed record; a foreign file against the chain's recordings. */
static int file_check(Ingest *g, FileJob *j, EvdError *err)
{
        const EvdRecord *rec = j->record;
        const EvdCopyResult *cr = &j->cr;
        /* A file no record names may still be a recording of this chain under a second name. */
        if (!rec && g->manifest) {
                const uint8_t *digest = g->dev->suite == EVD_SUITE_SM2_SM3 ? cr->sm3 : cr->sha256;
                for (size_t k = 0; k < g->manifest->n_records; k++) {
                        const EvdRecord *other = &g->manifest->records[k];
                        if (other->type != EVD_RECORD_SEGMENT || other->size != cr->size ||
                            memcmp(other->file_hash, digest, EVD_HASH_SIZE) != 0)
                                continue;
                        char expected[300], other_shown[256];
                        evd_path_escape(other->file, other_shown, sizeof(other_shown));
                        snprintf(expected, sizeof(expected), "one file for seq %" PRIu64 " (%s)", other->seq,
                                 other_shown);
                        file_job_add(j, EVD_VERDICT_SEGMENT_DUPLICATE, true, other->seq, expected, j->shown,
                                     "a second copy of a chained recording under another name");
                        break;
                }
        }

        /* content against the record */
        if (rec && rec->type == EVD_RECORD_SEGMENT) {
                EvdVerdict content;
                const uint8_t *digest = rec->suite == EVD_SUITE_SM2_SM3 ? cr->sm3 : cr->sha256;
                int r = evd_chain_item_check_content(j->item, cr->size, digest, &content);
                if (r < 0 && r != -ENOENT)
                        return evd_error_set(err, r, "checking %s against its record", j->shown);
        }

        /* What the record holds of this recording under another name (online only: the spool does not
         * know). The same bytes at the same path stored without a record: link the record to that copy.
         * Another recording for this seq stored from another history: SEGMENT_CONFLICT on both. */
        if (!rec)
                return 0;
        int64_t earlier = 0;
        int r = evd_record_stored_versions(g->rs, g->device_id, j->path, cr->sha256, rec->seq,
                                           rec->record_hash, &earlier, &j->other, err);
        if (r < 0)
                return evd_error_prefix(err, "looking up %s: ", j->shown), r;
        if (r == 1) {
                evd_tmpfile_discard(&j->orig);
                r = file_link_record(g, j, earlier, err);
                return r < 0 ? r : 1;
        }
        if (r == 2) {
                char e[200], f[200], h1[2 * EVD_HASH_SIZE + 1], h2[2 * EVD_HASH_SIZE + 1],
                    s1[2 * EVD_DIGEST_SIZE + 1], s2[2 * EVD_DIGEST_SIZE + 1];
                snprintf(e, sizeof(e),
                         "seq %" PRIu64 " as stored (file %" PRId64 "): record %.16s sha256 %.16s", rec->seq,
                         j->other.file_id, evd_hex(j->other.record_hash, EVD_HASH_SIZE, h1),
                         evd_hex(j->other.sha256, EVD_DIGEST_SIZE, s1));
                snprintf(f, sizeof(f), "record %.16s sha256 %.16s",
                         evd_hex(rec->record_hash, EVD_HASH_SIZE, h2),
                         evd_hex(cr->sha256, EVD_DIGEST_SIZE, s2));
                file_job_add(j, EVD_VERDICT_SEGMENT_CONFLICT, true, rec->seq, e, f,
                             "another recording for a sequence number stored at an earlier docking "
                             "(a second history of this recorder)");
                j->conflict = true;
        }
        return 0;
}

/* Archive: the Matroska/JPEG copy, made in the media worker from the unnamed original (still in the page
 * cache). A file the worker cannot archive gets MEDIA_INVALID; its original is kept all the same. */
static int file_archive_failed(Ingest *g, FileJob *j, int r, EvdError *merr, EvdError *err);

static int file_archive(Ingest *g, FileJob *j, EvdError *err)
{
        const EvdIngestOptions *o = g->o;
        const EvdRecord *rec = j->record;
        j->case_number = ingest_case_number_of(g, j);
        if (!o->archive_copy)
                return 0;
        j->aprog = (Progress){.g = g,
                              .shown = j->shown,
                              .has_seq = rec != NULL,
                              .seq = rec ? rec->seq : 0,
                              .space = &j->space,
                              .space_part = EVD_STORE_SPACE_ARCHIVE};
        if (j->archiving) { /* made while the file was copied: the worker is finishing it */
                ingest_archive_progress(0, j->cr.size, &j->aprog);
                return 0;
        }
        int r = ingest_archive_open(g, j, err);
        if (r < 0)
                return r;
        ArchiveRequest a;
        ingest_archive_request_init(g, j, j->sha_hex, &a);
        _cleanup_free_ char *line = a.line;
        EvdMediaOptions mo = {.deadline_usec = evd_clock_monotonic_us() + (uint64_t)o->media_timeout_us,
                              .cancel = o->cancel,
                              .progress = ingest_archive_progress,
                              .progress_userdata = &j->aprog};
        if (!g->media && evd_media_session_new(NULL, &g->media) < 0)
                return evd_error_set(err, -ENOMEM, "archiving %s: out of memory", j->shown);
        ingest_archive_progress(0, j->cr.size, &j->aprog);
        /* in the docking's media worker, a process of its own: a file that crashes or hangs the demuxer
         * costs only its archive copy (and that worker: the next file gets a fresh one). It works while
         * this thread copies the next file; file_archive_end() collects it. */
        EvdError merr = {};
        r = evd_media_session_submit(g->media, j->orig.fd, j->shown, &a.tags, &a.att, a.att.data ? 1 : 0,
                                     &mo, j->arch.fd, &merr);
        if (r >= 0) {
                j->archiving = true;
                return 0;
        }
        return file_archive_failed(g, j, r, &merr, err);
}

/* The archive copy could not be made: the store's or the installation's problem stops the docking; the
 * media's is the file's finding (MEDIA_INVALID), and its original is kept bit-exact all the same. */
static int file_archive_failed(Ingest *g, FileJob *j, int r, EvdError *merr, EvdError *err)
{
        const EvdRecord *rec = j->record;
        evd_tmpfile_discard(&j->arch);
        /* no space, no media worker (-ENOEXEC), a stop request: not the file's fault; retried next docking
         */
        if (r == -ECANCELED)
                g->sum->cancelled = true;
        if (r == -ENOSPC || r == -EDQUOT || r == -ENOMEM || r == -ENOEXEC || r == -ECANCELED)
                return evd_error_set(err, r, "archiving %s: %s", j->shown, evd_error_message(merr, r));
        file_job_add(j, EVD_VERDICT_MEDIA_INVALID, rec != NULL, rec ? rec->seq : 0, NULL, NULL,
                     evd_error_message(merr, r));
        return 0;
}

/* The end of the archive step: the worker's result, and the archive copy's own SHA-256. */
static int file_archive_end(Ingest *g, FileJob *j, EvdError *err)
{
        if (!j->archiving)
                return 0;
        j->archiving = false;
        EvdError merr = {};
        int r = evd_media_session_wait(g->media, &j->ar, &merr);
        docking_moved(g); /* the worker has its own deadline (media_timeout) */
        if (r >= 0) {
                /* a failure here is the store's (a disk error), not the media's: stop the docking. A big
                 * file fills a batch alone: its archive copy is synced while it is hashed (and its
                 * original, unless that sync began at the end of its copy); the batch then finds them
                 * synced. The others are synced with the rest of their batch. */
                if (j->cr.size >= BATCH_BIG_FILE) {
                        bool orig_too = !j->orig_sync && !j->orig_synced;
                        r = evd_tmpfile_hash_and_sync(&j->arch, orig_too ? &j->orig : NULL, j->arch_sha,
                                                      err);
                        if (r < 0)
                                return evd_error_prefix(err, "archive copy of %s: ", j->shown), r;
                        j->arch_synced = true;
                        j->orig_synced |= orig_too;
                } else {
                        r = evd_hash_fd(EVD_HASH_SHA256, j->arch.fd, j->arch_sha, NULL);
                        if (r < 0)
                                return evd_error_set_errno(err, r, "hashing the archive copy of %s",
                                                           j->shown);
                }
                j->archived = true;
                return 0;
        }
        if (j->overlapped && r != -ECANCELED) {
                /* whatever went wrong while the file was still being copied: the ordinary way, from the
                 * stored original, decides (the same media error again is the file's finding) */
                evd_debug("%s: archive copy made again from the stored original: %s", j->shown,
                          evd_error_message(&merr, r));
                g->sum->overlap_fallbacks++;
                ingest_overlap_discard(g, j);
                r = file_archive(g, j, err);
                return r < 0 ? r : file_archive_end(g, j, err);
        }
        return file_archive_failed(g, j, r, &merr, err);
}

/* Commit: the verdict decides the area (quarantine or not); both files get their final names. */
static int file_commit(Ingest *g, FileJob *j, EvdError *err)
{
        const EvdRecord *rec = j->record;
        /* A copy of a chained recording is more precisely a duplicate than an insertion: the chain only
         * knew that no record names the file; the content says which record it copies. */
        for (size_t i = 0; i < j->n_findings; i++)
                j->duplicate |= j->findings[i].verdict == EVD_VERDICT_SEGMENT_DUPLICATE;
        j->worst = j->duplicate ? EVD_VERDICT_SEGMENT_DUPLICATE : evd_chain_item_verdict(j->item);
        for (size_t i = 0; i < j->n_findings; i++)
                j->worst = evd_verdict_worst(j->worst, j->findings[i].verdict);
        j->quarantine = evd_verdict_quarantines(j->worst);
        int r;
        if (j->quarantine) {
                closep(&j->orig_dir);
                free(j->orig_rel);
                j->orig_rel = NULL;
                r = evd_store_dir(g->store, EVD_STORE_QUARANTINE, g->device_id, j->day, &j->orig_dir,
                                  &j->orig_rel, err);
                if (r >= 0 && j->archived) {
                        closep(&j->arch_dir);
                        free(j->arch_rel);
                        j->arch_dir = fcntl(j->orig_dir, F_DUPFD_CLOEXEC, 3);
                        j->arch_rel = strdup(j->orig_rel);
                        if (j->arch_dir < 0 || !j->arch_rel)
                                r = evd_error_set_errno(err, j->arch_dir < 0 ? -errno : -ENOMEM,
                                                        "quarantine directory for %s", j->shown);
                }
                if (r < 0)
                        return r;
        }

        /* Final names come only from validated values: seq, hash, a sanitised component. Two files may
         * still meet under one name (A.MP4 and A.MOV archive to A.mkv; VIDEO/A.MP4 and PHOTO/A.MP4 have
         * one component): commit_unique() then picks the next free "~N" name. */
        char comp[96];
        evd_path_store_component(j->path, comp, sizeof(comp));
        if (rec)
                snprintf(j->stem, sizeof(j->stem), "%06" PRIu64 "_%.12s_%s", rec->seq, j->sha_hex, comp);
        else
                snprintf(j->stem, sizeof(j->stem), "x_%.12s_%s", j->sha_hex, comp);
        /* the archive copy has the original's stem and the archive format's extension */
        char *dot = strrchr(j->stem, '.');
        if (dot && dot > j->stem) {
                snprintf(j->ext, sizeof(j->ext), "%s", dot);
                *dot = 0;
        }
        return 0;
}

/* Name: once the batch's data is synced, both files get their final names (the directories are synced
 * after the whole batch is named). */
static int file_name(Ingest *g, FileJob *j, EvdError *err)
{
        char name[STORE_NAME_MAX], arch_name[STORE_NAME_MAX];
        int r = commit_unique(&j->orig, j->orig_dir, j->stem, j->ext, name, err);
        if (r < 0)
                return r;
        if (j->archived) {
                char arch_ext[16];
                snprintf(arch_ext, sizeof(arch_ext), ".%s", evd_archive_format_extension(j->ar.format));
                r = commit_unique(&j->arch, j->arch_dir, j->stem, arch_ext, arch_name, err);
                if (r < 0)
                        return r;
        }
        j->stored_us = evd_clock_wall_us();
        if (asprintf(&j->orig_path, "%s/%s", j->orig_rel, name) < 0 ||
            (j->archived && asprintf(&j->arch_path, "%s/%s", j->arch_rel, arch_name) < 0)) {
                j->orig_path = j->arch_path = NULL;
                return evd_error_set(err, -ENOMEM, "recording %s: out of memory", j->shown);
        }
        return 0;
}

/* Record: the row, its findings and its custody events, through the record stage (record.h). */
static int file_record(Ingest *g, FileJob *j, EvdError *err)
{
        const EvdIngestOptions *o = g->o;
        const EvdRecord *rec = j->record;
        _cleanup_free_ char *line = NULL;
        if (rec)
                (void)evd_record_to_line(rec, &line, NULL);
        if (line) {
                size_t n = strlen(line);
                if (n && line[n - 1] == '\n')
                        line[n - 1] = 0;
        }

        /* the 24-hour rule: recording end (recorder clock, corrected by the measured offset) -> stored */
        bool timed = rec && rec->type == EVD_RECORD_SEGMENT;
        int64_t end_dock = timed ? rec->end_us - (g->ident.has_clock ? g->ident.clock_offset_us : 0) : 0;
        bool within = timed && j->stored_us - end_dock <= o->late_after_us;
        if (timed && !within)
                g->sum->files_late++;

        size_t n_dbf = 0, n_item = MIN(j->item->n_findings, (size_t)MAX_FILE_FINDINGS);
        EvdFinding dbf[2 * MAX_FILE_FINDINGS]; /* borrowed views of the chain's and our own findings */
        for (size_t i = 0; i < n_item; i++) {
                const EvdFinding *f = &j->item->findings[i];
                if (j->duplicate && f->verdict == EVD_VERDICT_SEGMENT_INSERTED)
                        continue;
                dbf[n_dbf++] = *f;
        }
        for (size_t i = 0; i < j->n_findings; i++)
                dbf[n_dbf++] = j->findings[i];
        char d_copied[256], d_verified[128], d_archived[256], d_recorded[200];
        snprintf(d_copied, sizeof(d_copied), "%s -> %s sha256 %s size %" PRIu64, j->shown, j->orig_path,
                 j->sha_hex, j->cr.size);
        snprintf(d_verified, sizeof(d_verified), "%s", evd_verdict_to_string(j->worst));
        snprintf(d_archived, sizeof(d_archived), "%s%s%s", j->archived ? j->arch_path : "no archive copy",
                 j->ar.n_not_carried ? "; streams kept only in the original: " : "",
                 j->ar.n_not_carried ? "yes" : "");
        snprintf(d_recorded, sizeof(d_recorded), "case %s method %s officer %s%s",
                 j->case_number ? j->case_number : "-", method_of(j), g->officer_id,
                 within  ? ""
                 : timed ? " LATE"
                         : "");
        EvdCustodyEntry ev[] = {
            {.kind = EVD_CUSTODY_COPIED,
             .device_id = g->device_id,
             .docking_id = g->docking_id,
             .detail = d_copied},
            {.kind = EVD_CUSTODY_VERIFIED,
             .device_id = g->device_id,
             .docking_id = g->docking_id,
             .detail = d_verified},
            {.kind = EVD_CUSTODY_ARCHIVED,
             .device_id = g->device_id,
             .docking_id = g->docking_id,
             .detail = d_archived},
            {.kind = j->quarantine ? EVD_CUSTODY_QUARANTINED : EVD_CUSTODY_RECORDED,
             .device_id = g->device_id,
             .docking_id = g->docking_id,
             .detail = d_recorded},
        };
        EvdDbFile row = {
            .docking_id = g->docking_id,
            .device_id = g->device_id,
            .officer_id = g->officer_id,
            .has_seq = rec != NULL,
            .seq = rec ? rec->seq : 0,
            .session = rec ? rec->session : 0,
            .method = rec ? rec->method : (j->archived ? j->ar.method : EVD_METHOD_UNKNOWN),
            .case_number = j->case_number,
            .has_recorded = timed,
            .recorded_start_us = timed ? rec->start_us : 0,
            .recorded_end_us = timed ? rec->end_us : 0,
            .tz_minutes = rec ? rec->tz_minutes : 0,
            .has_clock_offset = g->ident.has_clock,
            .clock_offset_us = g->ident.clock_offset_us,
            .ingested_us = g->now_us,
            .stored_us = j->stored_us,
            .within_24h = within,
            .size = j->cr.size,
            .sha256 = j->cr.sha256,
            .record_hash = rec ? rec->record_hash : NULL,
            .chain_record = line,
            .source_path = j->path,
            .original_path = j->orig_path,
            .archive_path = j->arch_path,
            .archive_sha256 = j->archived ? j->arch_sha : NULL,
            .archive_format = j->archived ? evd_archive_format_extension(j->ar.format) : NULL,
            .packets_sha256 = j->archived ? j->ar.packets_sha256 : NULL,
            .verdict = j->worst,
            .confidentiality = o->confidentiality,
            .retention_class = o->retention_class ? o->retention_class : "case",
        };
        int r = evd_record_file(g->rs, &row, dbf, n_dbf, ev, ELEMENTSOF(ev), j->conflict ? &j->other : NULL,
                                err);
        if (r == -EEXIST) {
                /* recorded by a run that got this far before: the stored files are the same ones */
                g->sum->files_already++;
                ingest_emit(g, (EvdIngestEvent){.kind = EVD_INGEST_FILE_SKIPPED, .path = j->shown});
                return 0;
        }
        if (r < 0)
                return evd_error_prefix(err, "recording %s: ", j->shown), r;
        for (size_t i = 0; i < n_dbf; i++) {
                g->sum->findings++;
                emit_finding(g, &dbf[i], j->shown);
        }
        g->sum->worst = evd_verdict_worst(g->sum->worst, j->worst);
        g->sum->files_ingested++;
        if (j->quarantine)
                g->sum->files_quarantined++;
        ingest_emit(g, (EvdIngestEvent){.kind = EVD_INGEST_FILE_DONE,
                                        .path = j->shown,
                                        .has_seq = rec != NULL,
                                        .seq = rec ? rec->seq : 0,
                                        .verdict = j->worst,
                                        .original_path = j->orig_path,
                                        .archive_path = j->arch_path,
                                        .late = timed && !within,
                                        .message = d_recorded});
        return 0;
}

/* ---- batches: the durable part of several files at once ------------------------------------------
 *
 * A file whose bytes are copied, checked and archived waits in the docking's batch (unnamed, unsynced,
 * nothing reported). batch_flush() then makes the whole batch durable in three steps, whatever its size:
 * every original and archive copy fdatasync()ed at once (one journal commit for all instead of two per
 * file), each named, each store directory fsync()ed once; only then is each file recorded (its row, its
 * findings and custody events: one transaction each, through the record stage) and reported done. The
 * durability rule is the one of a single file: a row only for bytes that are on disk under their name.
 * A crash in between leaves named files without rows, as one between naming and recording always could:
 * the next docking finds them under the same names with the same content and records them (commit_or_reuse).
 * Large files fill a batch alone (their sync is long anyway), and no file waits longer than BATCH_WAIT_US
 * for the others (what is done shows up, in the database and the status, as it goes); a file no record
 * names flushes the batch first, since "already stored?" is then asked by content, which the store must
 * already show. */
#define BATCH_FILES   32u
#define BATCH_BYTES   (64u * 1024u * 1024u)
#define BATCH_WAIT_US (100 * 1000) /* a file waits at most this long for the rest of its batch */

static int batch_flush(Ingest *g, EvdError *err)
{
        size_t n = g->n_pending;
        if (n == 0)
                return 0;
        int r = 0;
        _cleanup_free_ EvdTmpFile **files = calloc(2 * n, sizeof(*files));
        _cleanup_free_ int *dirs = calloc(2 * n, sizeof(*dirs));
        size_t n_files = 0, n_dirs = 0, named = 0;
        if (!files || !dirs)
                r = evd_error_set(err, -ENOMEM, "syncing the store: out of memory");
        for (size_t i = 0; r >= 0 && i < n; i++) {
                FileJob *j = &g->pending[i];
                if (!j->orig_synced)
                        files[n_files++] = &j->orig;
                if (j->archived && !j->arch_synced)
                        files[n_files++] = &j->arch;
        }
        if (r >= 0)
                r = evd_tmpfiles_sync(files, n_files, err);
        for (; r >= 0 && named < n; named++) {
                FileJob *j = &g->pending[named];
                r = file_name(g, j, err);
                if (r >= 0) {
                        dirs[n_dirs++] = j->orig_dir;
                        if (j->archived)
                                dirs[n_dirs++] = j->arch_dir;
                }
        }
        /* what was named is synced even when a later name failed: those files are kept */
        int k = evd_dirs_sync(dirs, n_dirs, r < 0 ? NULL : err);
        if (r >= 0)
                r = k;
        docking_moved(g);
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = file_record(g, &g->pending[i], err);
        for (size_t i = 0; i < n; i++)
                file_job_clear(&g->pending[i]);
        g->n_pending = 0;
        g->pending_bytes = 0;
        return r;
}

/* The file whose archive copy the worker made while the next one was copied: its result, its verdict,
 * its place in the batch. */
static int ingest_flight_land(Ingest *g, EvdError *err)
{
        FileJob *j = g->flight;
        if (!j)
                return 0;
        g->flight = NULL;
        int r = file_archive_end(g, j, err);
        if (r >= 0 && j->orig_sync) { /* the original's own sync, begun at the end of its copy */
                r = evd_tmpfile_sync_end(j->orig_sync, err);
                j->orig_sync = NULL;
                if (r < 0)
                        evd_error_prefix(err, "%s: ", j->shown);
                else
                        j->orig_synced = true;
        }
        if (r >= 0)
                r = file_commit(g, j, err);
        if (r < 0) {
                file_job_clear(j);
                return r;
        }
        int64_t now = (int64_t)evd_clock_monotonic_us();
        if (g->n_pending == 0)
                g->pending_since_us = now;
        g->pending_bytes += j->cr.size;
        evd_store_space_release(&j->space); /* written: the free space shows it from now on */
        g->pending[g->n_pending++] = *j;    /* moved: the slot is free again */
        *j = (FileJob){.orig = EVD_TMPFILE_INIT,
                       .arch = EVD_TMPFILE_INIT,
                       .orig_dir = -1,
                       .arch_dir = -1,
                       .ahead_fd = -1};
        if (g->n_pending == BATCH_FILES || g->pending_bytes >= BATCH_BYTES ||
            now - g->pending_since_us >= BATCH_WAIT_US)
                return batch_flush(g, err);
        return 0;
}

/* One file, step by step, up to its place in the batch: place, copy and check it (while the media worker
 * archives the file before it), then land that one, then hand this one to the worker. Returns 0 when the
 * file was handled (in flight, in the batch, skipped, or its failure recorded as a finding), a negative
 * errno when the docking must stop (source gone, store full, database down without a spool): per-file
 * read failures are findings and do not stop the docking. */
static int ingest_file(Ingest *g, EvdChainItem *it, EvdError *err)
{
        static int (*const steps[])(Ingest *, FileJob *, EvdError *) = {
            file_place,
            file_copy,
            file_check,
        };
        int r;
        if (!g->pending && !(g->pending = calloc(BATCH_FILES, sizeof(FileJob))))
                return evd_error_set(err, -ENOMEM, "out of memory");
        if (!g->slots) {
                if (!(g->slots = calloc(2, sizeof(FileJob))))
                        return evd_error_set(err, -ENOMEM, "out of memory");
                for (unsigned i = 0; i < 2; i++)
                        g->slots[i] = (FileJob){.orig = EVD_TMPFILE_INIT,
                                                .arch = EVD_TMPFILE_INIT,
                                                .ahead_fd = -1,
                                                .orig_dir = -1,
                                                .arch_dir = -1};
        }
        /* a file no record names is looked up by content: what is pending must be in the store first */
        if (!it->record && ((r = ingest_flight_land(g, err)) < 0 || (r = batch_flush(g, err)) < 0))
                return r;
        /* a long copy ahead (at a USB recorder's 40 MB/s, 8 MiB take 200 ms): what waits is made durable
         * and recorded first, rather than after it */
        if (g->n_pending && (it->listed_size >= BATCH_BIG_FILE ||
                             (int64_t)evd_clock_monotonic_us() - g->pending_since_us >= BATCH_WAIT_US)) {
                r = batch_flush(g, err);
                if (r < 0)
                        return r;
        }
        FileJob *j = g->flight == &g->slots[0] ? &g->slots[1] : &g->slots[0];
        file_job_init(j, it);
        for (size_t i = 0; i < ELEMENTSOF(steps); i++) {
                r = steps[i](g, j, err);
                if (r != 0) {
                        if (j->archiving) /* overlapped, and not wanted any more */
                                ingest_overlap_discard(g, j);
                        file_job_clear(j);
                        return r < 0 ? r : 0;
                }
        }
        r = ingest_flight_land(g, err);
        if (r >= 0)
                r = file_archive(g, j, err);
        if (r < 0) {
                file_job_clear(j);
                return r;
        }
        g->flight = j;
        /* nothing to wait for (no archive copy wanted, or it failed at once): straight on */
        return j->archiving ? 0 : ingest_flight_land(g, err);
}

/* ---- one docking --------------------------------------------------------------------------------- */

static void ingest_clear(Ingest *g)
{
        evd_media_session_abandon(g->media); /* a job still in flight (the docking stopped early) */
        for (size_t i = 0; i < g->n_pending; i++)
                file_job_clear(&g->pending[i]); /* never named: nothing of them is left */
        free(g->pending);
        if (g->slots) {
                file_job_clear(&g->slots[0]);
                file_job_clear(&g->slots[1]);
        }
        free(g->slots);
        g->sum->media_workers = evd_media_session_workers_started(g->media);
        evd_media_session_free(g->media);
        evd_db_device_free(g->dev);
        EVP_PKEY_free(g->key);
        evd_manifest_free(g->manifest);
        evd_source_entries_free(g->entries, g->n_entries);
        (void)ingest_spooled(g); /* the summary as far as it got */
        evd_record_stage_free(g->rs);
}

static EvdDbDockingResult docking_result(Ingest *g, const char *summary)
{
        return (EvdDbDockingResult){
            .files_seen = g->sum->files_seen,
            .files_ingested = g->sum->files_ingested,
            .files_already = g->sum->files_already,
            .files_quarantined = g->sum->files_quarantined,
            .verdict = g->sum->worst,
            .summary = summary,
            .finished_us = evd_clock_wall_us(),
        };
}

/* The end of a docking, one transaction: the new head (if it moved), a custody event, the result. */
static int docking_end(Ingest *g, const EvdDbChainHead *head, const char *kind, const char *detail,
                       const char *summary, EvdError *err)
{
        EvdDbDockingResult res = docking_result(g, summary);
        EvdCustodyEntry e = {
            .kind = kind, .device_id = g->device_id[0] ? g->device_id : NULL, .detail = detail};
        return evd_record_docking_end(g->rs, head, &e, &res, err);
}

/* A recorder that cannot be identified or is not enrolled: its identity is logged and recorded, nothing
 * of it is read beyond the identity file. One transaction (or one spool entry). */
static int refuse(Ingest *g, const char *claimed, const char *why)
{
        EvdDbDocking d = {.device_id = NULL,
                          .identity = claimed,
                          .transport = g->ident.transport[0] ? g->ident.transport : "dir",
                          .location = g->ident.location,
                          .has_clock_offset = g->ident.has_clock,
                          .clock_offset_us = g->ident.clock_offset_us,
                          .docked_us = g->now_us};
        g->sum->refused = true;
        g->sum->worst = EVD_VERDICT_NOT_ENROLLED;
        char msg[300], detail[300];
        snprintf(msg, sizeof(msg), "recorder '%s' refused: %s", claimed, why);
        snprintf(detail, sizeof(detail), "%s: %s", claimed, why);
        char found[300], why_copy[300];
        snprintf(found, sizeof(found), "%s", claimed);
        snprintf(why_copy, sizeof(why_copy), "%s", why);
        EvdFinding df = {.verdict = EVD_VERDICT_NOT_ENROLLED,
                         .seq = EVD_FINDING_NO_SEQ,
                         .found = found,
                         .detail = why_copy};
        EvdCustodyEntry e = {.kind = EVD_CUSTODY_REFUSED, .detail = detail};
        EvdDbDockingResult res = docking_result(g, why);
        int r = evd_record_docking_refused(g->rs, &d, &e, &df, &res, NULL);
        if (r < 0)
                return r;
        g->docking_id = g->sum->docking_id = evd_record_docking_id(g->rs);
        ingest_emit(g, (EvdIngestEvent){.kind = EVD_INGEST_REFUSED, .message = msg, .found = claimed});
        return 0;
}

/* The start of a docking, one transaction: the docking row and the custody events "docked" and
 * "identified" (or one spool entry). */
static int docking_begin(Ingest *g, const EvdDbDocking *d, const char *docked, const char *identified,
                         EvdError *err)
{
        EvdCustodyEntry ev[] = {
            {.kind = EVD_CUSTODY_DOCKED, .device_id = g->device_id, .detail = docked},
            {.kind = EVD_CUSTODY_IDENTIFIED, .device_id = g->device_id, .detail = identified},
        };
        int r = evd_record_docking_begin(g->rs, d, ev, ELEMENTSOF(ev), err);
        if (r < 0)
                return r;
        g->docking_id = g->sum->docking_id = evd_record_docking_id(g->rs);
        return 0;
}

/* A verifier finding that is about the docking, or about a record whose file is not on the volume. */
static int record_chain_finding(Ingest *g, const EvdFinding *f, const char *file)
{
        char shown[512];
        return record_docking_finding(g, f, file ? evd_path_escape(file, shown, sizeof(shown)) : NULL);
}

#define MAX_VOLUME_ENTRY_FINDINGS 64u /* special files / damage reported one by one; more are counted */

/* What the listing found besides regular files (special files, symlinks, damaged parts of the
 * filesystem): each is an UNREADABLE finding naming the path and what it is; never opened or followed. */
static int record_volume_entries(Ingest *g, const EvdSourceEntry *e, size_t n)
{
        for (size_t i = 0; i < n && i < MAX_VOLUME_ENTRY_FINDINGS; i++) {
                char shown[512], detail[1024];
                const char *type = evd_source_entry_type_to_string(e[i].type);
                evd_path_escape(e[i].path, shown, sizeof(shown));
                if (e[i].type == EVD_SOURCE_DAMAGED)
                        snprintf(detail, sizeof(detail), "damaged filesystem at '%s': %s",
                                 shown[0] ? shown : "/", e[i].detail ? e[i].detail : "cannot be listed");
                else
                        snprintf(detail, sizeof(detail),
                                 "'%s' is a %s, not a regular file: not opened, not stored", shown, type);
                EvdFinding x = {.verdict = EVD_VERDICT_UNREADABLE,
                                .seq = EVD_FINDING_NO_SEQ,
                                .expected = (char *)"regular file",
                                .found = (char *)type,
                                .detail = detail};
                int r = record_docking_finding(g, &x, shown);
                if (r < 0)
                        return r;
        }
        if (n > MAX_VOLUME_ENTRY_FINDINGS) {
                char detail[200];
                snprintf(detail, sizeof(detail),
                         "%zu more entries that are not regular files or could not be "
                         "listed: not reported one by one",
                         n - MAX_VOLUME_ENTRY_FINDINGS);
                EvdFinding x = {
                    .verdict = EVD_VERDICT_UNREADABLE, .seq = EVD_FINDING_NO_SEQ, .detail = detail};
                return record_docking_finding(g, &x, NULL);
        }
        return 0;
}

/* One finding per verdict that went past EVD_INGEST_FINDINGS_PER_KIND: how many were not stored. */
static int findings_overflow(Ingest *g)
{
        for (unsigned v = 0; v < _EVD_VERDICT_MAX; v++) {
                if (g->kind_count[v] <= EVD_INGEST_FINDINGS_PER_KIND)
                        continue;
                unsigned more = g->kind_count[v] - EVD_INGEST_FINDINGS_PER_KIND;
                char found[64], detail[300];
                snprintf(found, sizeof(found), "%u findings", g->kind_count[v]);
                snprintf(detail, sizeof(detail),
                         "%u more %s findings on this docking were counted, not stored (the first %u are)",
                         more, evd_verdict_to_string((EvdVerdict)v), EVD_INGEST_FINDINGS_PER_KIND);
                EvdFinding f = {
                    .verdict = (EvdVerdict)v, .seq = EVD_FINDING_NO_SEQ, .found = found, .detail = detail};
                g->kind_count[v] = 0; /* this one is stored whatever the count */
                int r = record_docking_finding(g, &f, NULL);
                g->kind_count[v] = EVD_INGEST_FINDINGS_PER_KIND + more;
                g->sum->findings--; /* a summary, not one more finding */
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A docking that started (docking_begin) and cannot go on: it still ends with its result and a custody
 * event ("stalled" for the no-progress deadline, else "interrupted") saying why. Returns r. */
static int docking_stop(Ingest *g, int r, EvdError *err)
{
        char why[sizeof(err->msg)];
        snprintf(why, sizeof(why), "%s", err && err->msg[0] ? err->msg : strerror(-r));
        (void)findings_overflow(g);
        const char *kind = g->sum->stalled ? "stalled" : "interrupted";
        char summary[sizeof(why) + 16];
        snprintf(summary, sizeof(summary), "%s: %s", kind, why);
        (void)docking_end(g, NULL, kind, why, summary, NULL);
        emit_msg(g, EVD_INGEST_DONE, "docking %" PRId64 " %s%s: %s", g->docking_id,
                 g->sum->stalled ? "ended by the stall deadline" : "stopped",
                 ingest_spooled(g) ? " (in the local spool: the database gets it when it is back)" : "",
                 why);
        return r;
}

int evd_ingest_run(EvdSource *src, EvdStore *store, EvdDb *db, const EvdIngestOptions *opts,
                   EvdIngestSummary *ret, EvdError *err)
{
        EvdIngestSummary local_sum = {};
        EvdIngestSummary *sum = ret ? ret : &local_sum;
        *sum = (EvdIngestSummary){.worst = EVD_VERDICT_INTACT};
        _cleanup_(ingest_clear) Ingest g = {.src = src, .store = store, .o = opts, .sum = sum};
        g.now_us = evd_clock_wall_us();
        docking_moved(&g);
        int r;
        r = evd_record_stage_new(db, opts->spool_dir, &g.rs, err);
        if (r < 0)
                return r;
        r = evd_source_identity(src, &g.ident, err);
        if (r < 0)
                return evd_error_prefix(err, "identifying the recorder: "), r;
        emit_msg(&g, EVD_INGEST_DOCKED, "recorder docked at %s (%s)", g.ident.location, g.ident.transport);

        /* who is it: the transport's word first (USB), else the identity file on the volume */
        _cleanup_free_ char *device_txt = NULL;
        size_t device_txt_len = 0;
        (void)evd_source_read_small(src, EVD_INGEST_DEVICE_FILE, EVD_INGEST_DEVICE_FILE_MAX, &device_txt,
                                    &device_txt_len, NULL);
        EvdDeviceInfo info = {};
        if (device_txt)
                (void)evd_device_info_parse(device_txt, device_txt_len, &info, NULL);
        /* The manifest says who made the chain; read it before deciding whom we talk to. */
        _cleanup_free_ char *mbuf = NULL;
        size_t mlen = 0;
        EvdError mrerr = {};
        char manifest_unreadable[sizeof(mrerr.msg)] = "";
        r = evd_source_read_small(src, EVD_INGEST_MANIFEST_FILE, EVD_MANIFEST_MAX_BYTES, &mbuf, &mlen,
                                  &mrerr);
        if (r >= 0) {
                r = evd_manifest_parse(mbuf, mlen, &g.manifest);
                if (r < 0)
                        return evd_error_set_errno(err, r, "parsing %s", EVD_INGEST_MANIFEST_FILE);
        } else if (r != -ENOENT)
                /* there but unreadable (a medium error, over 16 MiB, not a regular file) is not "missing" */
                snprintf(manifest_unreadable, sizeof(manifest_unreadable), "%s",
                         evd_error_message(&mrerr, r));
        const char *manifest_dev =
            g.manifest && g.manifest->n_records ? g.manifest->records[0].device_id : NULL;

        /* Claims in order of trust: the transport (USB identity), the identity file, the manifest. The
         * first enrolled one is used; if the others disagree, chain verification names it
         * (IDENTITY_MISMATCH) — a lying identity file does not get a recorder refused, nor accepted. */
        const char *claims[] = {g.ident.device_id, info.device_id, manifest_dev};
        const char *claimed = NULL;
        for (size_t k = 0; k < ELEMENTSOF(claims); k++) {
                if (!claims[k] || !claims[k][0])
                        continue;
                if (!claimed)
                        claimed = claims[k]; /* what we name if nothing is enrolled */
                if (!evd_device_id_valid(claims[k]))
                        continue;
                r = evd_record_enrollment_get(g.rs, claims[k], &g.dev, err);
                if (r >= 0) {
                        claimed = claims[k];
                        break;
                }
                if (r != -ENOENT)
                        return r;
        }
        char claimed_shown[64];
        evd_path_escape(claimed ? claimed : "", claimed_shown, sizeof(claimed_shown));
        if (!claimed) {
                r = refuse(&g, "",
                           "recorder did not identify itself (no USB identity, no " EVD_INGEST_DEVICE_FILE
                           ", no chain manifest)");
                return r < 0 ? evd_error_set_errno(err, r, "recording a refused docking") : 0;
        }
        snprintf(sum->device_id, sizeof(sum->device_id), "%s", claimed_shown);
        if (!g.dev) {
                r = refuse(&g, claimed_shown,
                           !evd_device_id_valid(claimed) ? "recorder presented an invalid device ID"
                           : ingest_spooled(&g) ? "recorder is not in this dock's enrollment cache (the "
                                                  "database is unreachable)"
                                                : "recorder is not enrolled (evidockctl device enroll)");
                return r < 0 ? evd_error_set_errno(err, r, "recording a refused docking") : 0;
        }
        snprintf(g.device_id, sizeof(g.device_id), "%s", claimed);
        snprintf(g.officer_id, sizeof(g.officer_id), "%s", g.dev->officer_id);
        snprintf(sum->officer_id, sizeof(sum->officer_id), "%s", g.dev->officer_id);
        r = evd_key_public_from_pem(g.dev->public_key_pem, strlen(g.dev->public_key_pem), &g.key, err);
        if (r < 0)
                return evd_error_prefix(err, "enrolled key of %s: ", g.device_id), r;

        EvdDbDocking d = {.device_id = g.device_id,
                          .identity = claimed_shown,
                          .transport = g.ident.transport[0] ? g.ident.transport : "dir",
                          .location = g.ident.location,
                          .has_clock_offset = g.ident.has_clock,
                          .clock_offset_us = g.ident.clock_offset_us,
                          .docked_us = g.now_us};
        char clock[64] = "clock offset unknown";
        if (g.ident.has_clock)
                snprintf(clock, sizeof(clock), "clock offset %+.3f s",
                         (double)g.ident.clock_offset_us / 1e6);
        char docked[400], identified[200];
        snprintf(docked, sizeof(docked), "%s at %s; %s", g.ident.transport, g.ident.location, clock);
        snprintf(identified, sizeof(identified), "device %s officer %s key %s", g.device_id, g.officer_id,
                 g.dev->key_id);
        r = docking_begin(&g, &d, docked, identified, err);
        if (r < 0)
                return evd_error_prefix(err, "recording the docking: "), r;
        emit_msg(&g, EVD_INGEST_IDENTIFIED, "recorder %s of officer %s identified; %s%s", g.device_id,
                 g.officer_id, clock,
                 ingest_spooled(&g) ? "; database unreachable: the docking goes to the local spool" : "");

        /* the chain: manifest + listing against the enrolled key and the known head */
        r = evd_source_list(src, &g.entries, &g.n_entries, err);
        if (r < 0)
                return evd_error_prefix(err, "listing the recorder: "), docking_stop(&g, r, err);
        docking_moved(&g);
        /* only regular files are candidate recordings; everything else is reported, never opened */
        size_t n_files = evd_source_entries_files_first(g.entries, g.n_entries);
        r = record_volume_entries(&g, g.entries + n_files, g.n_entries - n_files);
        if (r < 0)
                return evd_error_set_errno(err, r, "recording a finding of docking %" PRId64, g.docking_id),
                       docking_stop(&g, r, err);
        EvdDbChainHead dbhead = {};
        EvdChainHead known = {};
        r = evd_record_head_get(g.rs, g.device_id, &dbhead, err);
        if (r >= 0) {
                known = (EvdChainHead){.valid = true,
                                       .seq = dbhead.seq,
                                       .session = dbhead.session,
                                       .end_us = dbhead.has_end ? dbhead.end_us : 0};
                memcpy(known.record_hash, dbhead.record_hash, EVD_HASH_SIZE);
        } else if (r != -ENOENT)
                return docking_stop(&g, r, err);
        EvdChainKey key = {.suite = g.dev->suite,
                           .key = g.key,
                           .key_id = g.dev->key_id,
                           .device_id = g.device_id,
                           .officer_id = g.dev->officer_id};
        EvdChainInput in;
        evd_chain_input_init(&in);
        in.manifest = g.manifest;
        in.manifest_unreadable = manifest_unreadable[0] ? manifest_unreadable : NULL;
        in.device_txt = device_txt;
        in.device_txt_len = device_txt_len;
        in.key = &key;
        in.known_head = &known;
        in.identity = &g.ident;
        in.files = g.entries;
        in.n_files = n_files;
        in.now_us = g.now_us;
        if (opts->time_gap_tolerance_us > 0)
                in.time_gap_tolerance_us = opts->time_gap_tolerance_us;
        if (opts->clock_max_offset_us > 0)
                in.max_clock_offset_us = opts->clock_max_offset_us;
        _cleanup_(evd_chain_report_freep) EvdChainReport *rep = NULL;
        r = evd_chain_verify(&in, &rep, err);
        if (r < 0)
                return evd_error_prefix(err, "could not verify the chain of %s: ", g.device_id),
                       docking_stop(&g, r, err);
        docking_moved(&g);

        for (size_t i = 0; i < rep->n_findings; i++) {
                r = record_chain_finding(&g, &rep->findings[i], rep->findings[i].file);
                if (r < 0)
                        return evd_error_set_errno(err, r, "recording a finding of docking %" PRId64,
                                                   g.docking_id),
                               docking_stop(&g, r, err);
        }

        int stop = 0;
        for (size_t i = 0; i < rep->n_items; i++) /* for "file n of m" in the events */
                g.files_total += rep->items[i].present;
        /* The docking's media worker starts now, while the first file is copied, rather than after it
         * (a process that loads FFmpeg's libraries: tens of ms). One that cannot start now is tried again,
         * and reported, at the first archive copy. */
        if (opts->archive_copy && g.files_total && (g.media || evd_media_session_new(NULL, &g.media) >= 0))
                (void)evd_media_session_prestart(g.media);
        for (size_t i = 0; i < rep->n_items; i++) {
                EvdChainItem *it = &rep->items[i];
                if (!it->present) {
                        /* a record names a file the recorder does not have: the evidence is the record */
                        for (size_t k = 0; k < it->n_findings; k++) {
                                r = record_chain_finding(&g, &it->findings[k], it->file);
                                if (r < 0)
                                        return evd_error_set_errno(err, r, "recording a finding"),
                                               docking_stop(&g, r, err);
                        }
                        continue;
                }
                sum->files_seen++;
                g.file_index++;
                if (stop)
                        continue;
                r = docking_check(&g, err);
                if (r < 0) {
                        stop = r;
                        continue;
                }
                /* the file after this one: the source may read it ahead once this one is read (a USB
                 * recorder's bus then goes on while this one is checked, archived and recorded) */
                for (size_t k = i + 1; k < rep->n_items; k++)
                        if (rep->items[k].present) {
                                evd_source_read_next(src, rep->items[k].file);
                                break;
                        }
                r = ingest_file(&g, it, err);
                docking_moved(&g);
                if (r < 0)
                        stop = r; /* count the rest as seen; they stay on the recorder for next time */
        }
        /* what is copied and archived is kept, also when the docking stops (a stop request, a recorder
         * gone); after a store or database failure this fails too, and the files wait for next time */
        EvdError ferr = {};
        r = ingest_flight_land(&g, stop < 0 ? &ferr : err);
        if (r >= 0)
                r = batch_flush(&g, stop < 0 ? &ferr : err);
        if (stop < 0)
                return docking_stop(&g, stop, err);
        if (r < 0)
                return docking_stop(&g, r, err);

        EvdDbChainHead h = {}, *moved = NULL;
        if (rep->new_head.valid &&
            (!known.valid || rep->new_head.seq != known.seq ||
             memcmp(rep->new_head.record_hash, known.record_hash, EVD_HASH_SIZE) != 0)) {
                h = (EvdDbChainHead){.seq = rep->new_head.seq,
                                     .session = rep->new_head.session,
                                     .has_end = true,
                                     .end_us = rep->new_head.end_us};
                memcpy(h.record_hash, rep->new_head.record_hash, EVD_HASH_SIZE);
                moved = &h;
        }
        char summary[256];
        snprintf(summary, sizeof(summary),
                 "%u files seen, %u ingested, %u already, %u quarantined, %u failed, %u late; worst %s",
                 sum->files_seen, sum->files_ingested, sum->files_already, sum->files_quarantined,
                 sum->files_failed, sum->files_late, evd_verdict_to_string(sum->worst));
        r = findings_overflow(&g);
        if (r < 0)
                return evd_error_set_errno(err, r, "recording the finding counts of docking %" PRId64,
                                           g.docking_id),
                       docking_stop(&g, r, err);
        r = docking_end(&g, moved, "docking_done", summary, summary, err);
        if (r < 0)
                return evd_error_prefix(err, "finishing docking %" PRId64 ": ", g.docking_id), r;
        if (ingest_spooled(&g))
                emit_msg(&g, EVD_INGEST_DONE, "docking of %s spooled (%u files in the spool%s%s): %s",
                         g.device_id, sum->files_spooled, sum->spool_why[0] ? "; " : "", sum->spool_why,
                         summary);
        else
                emit_msg(&g, EVD_INGEST_DONE, "docking %" PRId64 " of %s finished: %s", g.docking_id,
                         g.device_id, summary);
        return 0;
}
