/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The archive store on the dock's disk:
 *
 *   ROOT/originals/<device>/<YYYY-MM-DD>/<name>    evidential originals, bit-exact, clean verdicts
 *   ROOT/archive/<device>/<YYYY-MM-DD>/<name>.<ext> archive copies (Matroska / tagged JPEG)
 *   ROOT/quarantine/<device>/<YYYY-MM-DD>/<name>   originals (and archive copies) with findings
 *
 * Files are written once and never modified. The one removal is an approved disposal (lib/disposal.h),
 * through evd_store_dispose_file(), after the database has recorded it. Names are derived only from
 * validated data (device ID, seq, hash), never from raw recorder file names. */
#pragma once

#include <stdint.h>

#include "error.h"

typedef enum EvdStoreArea {
        EVD_STORE_ORIGINALS = 0,
        EVD_STORE_ARCHIVE,
        EVD_STORE_QUARANTINE,
        _EVD_STORE_AREA_MAX,
} EvdStoreArea;

typedef struct EvdStore EvdStore;

/* Opens (creating if needed) the store at root. */
int evd_store_open(const char *root, EvdStore **ret, EvdError *err);
void evd_store_free(EvdStore *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(EvdStore *, evd_store_free);

const char *evd_store_root(const EvdStore *s);
int evd_store_root_fd(const EvdStore *s); /* borrowed: do not close */

/* Opens the directory for (area, device, day), creating and syncing it as needed. device must be a
 * validated ID ([A-Za-z0-9_-]); day is "YYYY-MM-DD". Caller closes *ret_fd. *ret_rel (caller frees)
 * is the directory path relative to the root, for the database. */
int evd_store_dir(EvdStore *s, EvdStoreArea area, const char *device, const char *day, int *ret_fd,
                  char **ret_rel, EvdError *err);

/* Bytes available to evidock on the store's filesystem. */
int evd_store_free_bytes(EvdStore *s, uint64_t *ret);

/* Space promised to files being copied: the free space alone does not show what copies and archive
 * copies in progress (several dockings of this process at once, files waiting in a batch) are still
 * going to write. One account per EvdStore, thread-safe: a file reserves what it will write before its
 * copy starts, says as it goes how much of that is written (from then on the free space shows it), and
 * releases the rest when it is done or abandoned. Two dockings can then not both take the last free
 * space: the second one is refused before it copies. */
typedef struct EvdStoreSpace {
        EvdStore *store;  /* NULL: nothing held (a zeroed EvdStoreSpace) */
        uint64_t size[2]; /* the parts: the original, its archive copy */
        uint64_t left[2]; /* of each, still to be written (still promised) */
} EvdStoreSpace;

enum { EVD_STORE_SPACE_ORIGINAL = 0, EVD_STORE_SPACE_ARCHIVE = 1 };

/* Reserves original + archive bytes when the free space, less what is promised to others, keeps
 * reserve_bytes free after them; else -ENOSPC with err saying the free, promised and needed MB. */
int evd_store_space_reserve(EvdStore *s, uint64_t original, uint64_t archive, uint64_t reserve_bytes,
                            EvdStoreSpace *ret, EvdError *err);
/* done bytes of part (EVD_STORE_SPACE_*) are written: no longer promised. Never grows the promise. */
void evd_store_space_written(EvdStoreSpace *sp, unsigned part, uint64_t done);
/* Gives back what is still promised. Accepts a zeroed or released EvdStoreSpace. */
void evd_store_space_release(EvdStoreSpace *sp);
/* Bytes promised to copies in progress now. */
uint64_t evd_store_space_promised(EvdStore *s);

/* Removes leftover temporary files (EVD_TMPFILE_PREFIX) from interrupted runs below the store;
 * returns how many were removed. Only used at start-up, before any ingest runs. */
int evd_store_remove_leftovers(EvdStore *s, EvdError *err);

const char *evd_store_area_name(EvdStoreArea a);

/* Removes one stored file, for an approved and recorded disposal only (lib/disposal.c): rel is a path
 * relative to the root of the form AREA/DEVICE/DAY/NAME as the database names it; nothing else is
 * accepted (-EINVAL). The directory is synced afterwards. Returns 1 if removed, 0 if it was absent
 * already (a resumed disposal). */
int evd_store_dispose_file(EvdStore *s, const char *rel, EvdError *err);
