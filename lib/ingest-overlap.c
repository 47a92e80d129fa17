/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "clock.h"
#include "ingest-internal.h"
#include "read-ahead.h"

/* ---- archive while copying ------------------------------------------------------------------------
 *
 * One long recording would otherwise be copied (and hashed), then remuxed, then synced, one after the
 * other. Instead, before the copy of an MP4/MOV/M4A of at least EVD_READ_AHEAD_MIN_BYTES from a source that
 * can read at an offset, the top-level boxes are located with a few small reads (mp4-layout.h) and what
 * follows the mdat box (recorders put the index, moov, there) is read ahead into a sealed memfd
 * (read-ahead.h, at most EVD_READ_AHEAD_MAX bytes). The media worker then demuxes the temporary original
 * while the copy writes it: the bytes read ahead come from the memfd, the others from the growing file as
 * soon as the copy has written them (media.h, EvdMediaGrowing). The original's SHA-256 is known only at the
 * end: the tag holds a random placeholder that the worker replaces once told the hash
 * (evd_media_session_source_done()).
 *
 * The index bytes are read twice from the recorder (ahead, and by the copy); every byte is still hashed
 * once, from the sequential copy, and that copy is what is stored. After the copy, the bytes read ahead
 * are compared with the stored original at the same offsets (from the page cache): any difference (the
 * file changed under us), a copy that ended at another size or failed, or any failure of the worker in
 * this mode discards the overlapped archive copy, and it is made again the ordinary way, from the stored
 * original; the result is byte for byte what the ordinary way gives (tests/e2e/test-pipeline.c). One
 * worker per docking: the file before is landed first. Durability, batches and records are unchanged. */
void ingest_overlap_discard(Ingest *g, FileJob *j)
{
        evd_media_session_abandon(g->media); /* kills the worker: the next job gets a fresh one */
        evd_tmpfile_discard(&j->arch);
        closep(&j->arch_dir);
        j->arch_dir = -1;
        free(j->arch_rel);
        j->arch_rel = NULL;
        closep(&j->ahead_fd);
        j->ahead_fd = -1;
        j->archiving = j->overlapped = false;
}

/* Before the copy: whether the file lends itself to it (a long recording whose index could be read
 * ahead, into j->ahead_fd). Nothing here is the file's fault: false means the ordinary way. */
bool ingest_overlap_wanted(Ingest *g, FileJob *j, EvdReader *rd)
{
        const EvdIngestOptions *o = g->o;
        const EvdRecord *rec = j->record;
        if (!o->archive_copy || !o->archive_while_copying || !rec || rec->type != EVD_RECORD_SEGMENT ||
            j->item->listed_size < EVD_READ_AHEAD_MIN_BYTES || !evd_reader_can_pread(rd))
                return false;
        const char *why = NULL;
        if (evd_read_ahead_mp4_index(rd, j->item->listed_size, &j->layout, &j->ahead_fd, &why) <= 0) {
                evd_debug("%s: archived after its copy: %s", j->shown, why);
                return false;
        }
        return true;
}

/* Then, once the worker is free (the file before landed): start the archive copy. 0 (started or not:
 * nothing here is the file's fault), or a negative errno that stops the docking (the store, the
 * installation). */
int ingest_overlap_begin(Ingest *g, FileJob *j, EvdError *err)
{
        const EvdIngestOptions *o = g->o;
        const EvdRecord *rec = j->record;
        int r = ingest_archive_open(g, j, err);
        if (r < 0)
                return r;
        if (evd_read_ahead_placeholder(j->placeholder) < 0) {
                ingest_overlap_discard(g, j);
                return 0;
        }
        j->case_number = ingest_case_number_of(g, j);
        ArchiveRequest a;
        ingest_archive_request_init(g, j, j->placeholder, &a);
        _cleanup_free_ char *line = a.line;
        j->aprog = (Progress){.g = g,
                              .shown = j->shown,
                              .has_seq = true,
                              .seq = rec->seq,
                              .space = &j->space,
                              .space_part = EVD_STORE_SPACE_ARCHIVE};
        /* the copy's time on top of the remux's: at least 1 MiB/s (the stall deadline watches the copy) */
        uint64_t copy_allowance = (j->item->listed_size >> 20) * 1000000u;
        EvdMediaOptions mo = {.deadline_usec =
                                  evd_clock_monotonic_us() + (uint64_t)o->media_timeout_us + copy_allowance,
                              .cancel = o->cancel,
                              .progress = ingest_archive_progress,
                              .progress_userdata = &j->aprog};
        if (!g->media && evd_media_session_new(NULL, &g->media) < 0)
                return evd_error_set(err, -ENOMEM, "archiving %s: out of memory", j->shown);
        EvdError merr = {};
        r = evd_media_session_submit_growing(g->media, j->orig.fd, j->shown, &a.tags, &a.att,
                                             a.att.data ? 1 : 0, &mo, j->item->listed_size, j->ahead_fd,
                                             j->layout.tail_offset, j->arch.fd, &merr);
        if (r < 0) {
                ingest_overlap_discard(g, j);
                if (r == -ENOEXEC || r == -ENOMEM) /* the installation's problem, as for any archive copy */
                        return evd_error_set(err, r, "archiving %s: %s", j->shown,
                                             evd_error_message(&merr, r));
                return 0;
        }
        j->archiving = j->overlapped = true;
        g->sum->files_overlapped++;
        return 0;
}

/* After a complete copy: the worker gets the hash, or the overlapped archive copy is given up (and made
 * the ordinary way by file_archive()). */
void ingest_overlap_end(Ingest *g, FileJob *j)
{
        if (!j->overlapped)
                return;
        const char *why = NULL;
        EvdError merr = {};
        if (j->cr.size != j->item->listed_size)
                why = "the copy ended at another size";
        else if (!evd_read_ahead_matches(j->ahead_fd, j->orig.fd, &j->layout))
                why = "the bytes read ahead differ from the ones copied (the file changed)";
        else if (evd_media_session_source_done(g->media, j->cr.size, j->sha_hex, &merr) < 0)
                why = evd_error_message(&merr, -EPIPE);
        closep(&j->ahead_fd); /* the worker holds its own copy of the descriptor */
        j->ahead_fd = -1;
        if (!why)
                return;
        evd_debug("%s: archive copy made again from the stored original: %s", j->shown, why);
        g->sum->overlap_fallbacks++;
        ingest_overlap_discard(g, j);
}
