/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reading ahead on a thread of its own, so that the bus keeps delivering while the caller is busy with
 * something else (internal to fs.c).
 *
 * A docking reads a recording, then spends 10-150 ms on things that do not need the recorder (the last
 * file's archive copy hashed and synced, its database rows, the next file's checks): on a 40 MB/s bus
 * each of those milliseconds is 40 KB not read. The prefetcher holds up to `slots` chunks of device
 * bytes that the reader of a file will want next (the file's plan: fs.c queues the device ranges of the
 * next chunks of the file it is reading, in file order) and reads them, one READ(10) after the other,
 * while the caller does whatever it does. The caller takes its bytes from there (waiting for a chunk
 * that is being read) or, for a range nobody queued, reads the device itself: both go through the same
 * device lock, so a read of the caller's waits at most for one chunk of the prefetcher.
 *
 * Nothing here knows about filesystems: chunks are device ranges (whole blocks). A chunk whose read failed
 * hands its error to the caller that wants it, as the caller's own read would have (the transport has
 * retried it already). The device is read-only: data read ahead never goes stale. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

/* Reads len bytes (whole blocks) at device offset off into buf: 0 or -errno with err set. Called from
 * the prefetcher's thread; serialises with the caller's own device reads (fs.c's device lock). */
typedef int (*EvdPrefetchReadFn)(void *userdata, uint64_t off, uint32_t len, void *buf, EvdError *err);

typedef struct EvdPrefetch EvdPrefetch;

/* slots chunks of at most chunk_bytes each (allocated now: slots x chunk_bytes of memory); the thread
 * starts now. -errno. */
int evd_prefetch_new(unsigned slots, uint32_t chunk_bytes, EvdPrefetchReadFn read, void *userdata,
                     EvdPrefetch **ret);
/* Stops the thread (after the read it is doing, if any) and frees. */
void evd_prefetch_free(EvdPrefetch *p);

/* Forgets the plan: queued chunks are dropped (one being read is finished, and kept like any chunk
 * read: its bytes stay available until the slot is reused). */
void evd_prefetch_reset(EvdPrefetch *p);
/* How many more chunks the plan may queue now. */
unsigned evd_prefetch_room(EvdPrefetch *p);
/* Appends [off, off + len) (whole blocks, len <= chunk_bytes) to the plan; false when there is no room. */
bool evd_prefetch_queue(EvdPrefetch *p, uint64_t off, uint32_t len);

/* The bytes at device offset off, up to n of them (fewer at the end of a chunk): from a chunk read ahead,
 * waiting while it is being read or is the next to be read, or (when `wait`) for any chunk of the plan
 * holding it. `consume`: the caller reads sequentially and will not come back; a chunk read to its end
 * leaves the plan, and so does every chunk queued before it (skipped). Returns the bytes copied, 0 when
 * the prefetcher does not have them (read the device), or the -errno of the chunk's failed read (err
 * set). */
ssize_t evd_prefetch_take(EvdPrefetch *p, uint64_t off, void *buf, size_t n, bool consume, bool wait,
                          EvdError *err);

typedef struct EvdPrefetchStats {
        uint64_t chunks_read; /* device reads made ahead */
        uint64_t bytes_read;
        uint64_t bytes_taken;   /* handed to the caller from chunks read ahead */
        uint64_t chunks_unused; /* read ahead and reused for something else before anyone took from them */
} EvdPrefetchStats;
void evd_prefetch_stats(EvdPrefetch *p, EvdPrefetchStats *ret);
