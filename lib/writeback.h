/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Writeback started behind a sequential writer, on a thread of its own.
 *
 * A copy into the store (copy.c) and an archive copy (media.c) write hundreds of MB that are fdatasync()ed
 * at the end; without a hint the kernel would start writing them only ~30 s later or at the end, and the
 * final fdatasync() would wait for all of it. So every EVD_WRITEBACK_STEP bytes the range written so far
 * is handed to sync_file_range(SYNC_FILE_RANGE_WRITE): the device writes while the copy goes on, and the
 * final fdatasync() finds little left to do. That call does real work (block allocation, building and
 * submitting the I/O: ~0.1 CPU s for a 606 MB file here), and it did it on the writer's own thread (for
 * the archive copy, the muxer's thread that bounds the whole ingest); here a helper thread makes the calls
 * and the writer only publishes how far it got (evd_writeback_advance(): a store and, at most once per
 * step, a wake-up).
 *
 * The range stops EVD_WRITEBACK_LAG short of what is written, on a EVD_WRITEBACK_ALIGN boundary: the page
 * cache holds a file in folios of up to 2 MiB that are locked while written back, and the writer is still
 * filling the last one (ext4's large folios: see media.c GROWING_LAG for what a reader there cost).
 *
 * Only a hint: nothing here makes anything durable, and a failing sync_file_range() (a pipe, a filesystem
 * that refuses it) stops the hints and nothing else. The caller's fdatasync() stays where it is. A
 * writer that seeks back (the Matroska muxer rewriting its head) just reports the furthest offset. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define EVD_WRITEBACK_STEP  (8u * 1024u * 1024u) /* start writeback of every this many bytes */
#define EVD_WRITEBACK_LAG   (4u * 1024u * 1024u) /* ... that are at least this far behind the writer */
#define EVD_WRITEBACK_ALIGN (2u * 1024u * 1024u) /* ... cut at a multiple of this */

/* The next range to start, given what was started ([0, started)) and what is written ([0, written)):
 * true and [*ret_from, *ret_to) when at least `step` bytes lie between `started` and the aligned point
 * `lag` behind `written`. */
bool evd_writeback_next(uint64_t started, uint64_t written, uint64_t step, uint64_t lag, uint64_t align,
                        uint64_t *ret_from, uint64_t *ret_to);

typedef struct EvdWritebackStats {
        uint64_t ranges;  /* sync_file_range() calls made */
        uint64_t started; /* bytes handed to them: [0, started) */
        int error;        /* the first failure (negative errno; the hints stopped there), or 0 */
        bool threaded;    /* false: no thread could be started, the calls were made by the writer */
} EvdWritebackStats;

typedef struct EvdWriteback EvdWriteback;

/* For fd (borrowed: must stay open until evd_writeback_stop()). The thread starts at the first range.
 * NULL on out of memory: then evd_writeback_advance() and _stop() accept NULL and do nothing. */
EvdWriteback *evd_writeback_new(int fd);
/* [0, written) is written. Never blocks on I/O (unless no thread could be started). */
void evd_writeback_advance(EvdWriteback *w, uint64_t written);
/* Stops the thread (the ranges asked for so far are handed over first) and frees w; *ret_stats may be
 * NULL. NULL is fine. */
void evd_writeback_stop(EvdWriteback *w, EvdWritebackStats *ret_stats);
