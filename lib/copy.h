/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One pass over a recorder file: every byte is read once, hashed and written to an unnamed temporary
 * file in the store. Only a complete, synced file ever gets a name (evd_tmpfile_commit), so a crash, an
 * unplug or a full disk can never leave a half file under a final name. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "hash.h"
#include "source.h"

#define EVD_COPY_CHUNK (1024u * 1024u) /* bytes per read; the pipeline holds EVD_COPY_SLOTS of them */
#define EVD_COPY_SLOTS 4u

/* A file being written in a store directory. With O_TMPFILE (ext4, xfs, btrfs, tmpfs) it has no name
 * until committed; elsewhere it is ".evd-tmp-XXXXXX", which reconciliation at start-up removes. */
typedef struct EvdTmpFile {
        int fd;         /* -1 when closed */
        int dir_fd;     /* borrowed: must outlive the EvdTmpFile */
        char *tmp_name; /* NULL when O_TMPFILE is used */
} EvdTmpFile;

#define EVD_TMPFILE_INIT                                                                                    \
        {                                                                                                   \
                .fd = -1, .dir_fd = -1, .tmp_name = NULL                                                    \
        }
#define EVD_TMPFILE_PREFIX ".evd-tmp-"

int evd_tmpfile_open(int dir_fd, EvdTmpFile *ret, EvdError *err);

/* fdatasync()s the file, gives it name in directory target_dir_fd (on the same filesystem as the
 * directory it was opened in; -1: that directory), never replacing an existing file (-EEXIST), and
 * fsync()s the target directory. On success the EvdTmpFile is closed. */
int evd_tmpfile_commit(EvdTmpFile *t, int target_dir_fd, const char *name, EvdError *err);

/* For a batch of files: evd_tmpfiles_sync() fdatasync()s them all at once (the filesystem commits its
 * journal once for the lot rather than once per file), evd_tmpfile_link() then names each without
 * syncing again (like evd_tmpfile_commit(), never replacing a name, -EEXIST), and evd_dirs_sync()
 * fsync()s each target directory once. A file counts as stored only after all three. */
int evd_tmpfiles_sync(EvdTmpFile *const *files, size_t n, EvdError *err);
int evd_tmpfile_link(EvdTmpFile *t, int target_dir_fd, const char *name, EvdError *err);
int evd_dirs_sync(const int *dir_fds, size_t n, EvdError *err);

/* SHA-256 of the whole file (from offset 0) while its data, and that of `also` (another file, e.g. the
 * original of an archive copy; NULL: none), is flushed to disk (fdatasync) on another thread: the hash
 * reads from the page cache, so the two overlap. A later sync of either then finds nothing left to do. */
int evd_tmpfile_hash_and_sync(EvdTmpFile *t, EvdTmpFile *also, uint8_t ret_sha256[EVD_DIGEST_SIZE],
                              EvdError *err);

/* A file's own fdatasync() started on another thread, e.g. a long recording's original as soon as it is
 * copied, while its archive copy is still being made: on a disk with a volatile write cache the sync
 * (its cache flush) then runs beside the archive copy instead of after it. Not a hint: the file counts as
 * synced once evd_tmpfile_sync_end() returned 0, and its error is that sync's error. Until then the
 * EvdTmpFile must stay open. NULL: not begun (out of memory; the caller syncs the usual way). Without a
 * thread, _begin() syncs at once. _end() on NULL returns 0; _end(s, NULL) joins and drops the result. */
typedef struct EvdTmpFileSync EvdTmpFileSync;
EvdTmpFileSync *evd_tmpfile_sync_begin(EvdTmpFile *t);
int evd_tmpfile_sync_end(EvdTmpFileSync *s, EvdError *err);

/* Closes and forgets an uncommitted file (the data is gone). Safe on a closed/initialised one. */
void evd_tmpfile_discard(EvdTmpFile *t);

typedef void (*EvdProgressFn)(uint64_t done, uint64_t total, void *userdata);

typedef struct EvdCopyOptions {
        bool want_sm3;          /* also compute SM3 (for the sm2-sm3 suite) in the same pass */
        uint64_t max_bytes;     /* stop with -EFBIG past this many bytes; 0: no limit */
        EvdProgressFn progress; /* called at most every EVD_COPY_CHUNK bytes; may be NULL */
        void *userdata;
        const atomic_int *cancel; /* if set and non-zero: stop with -ECANCELED */
} EvdCopyOptions;

typedef struct EvdCopyResult {
        bool read_failed; /* also set when evd_copy_stream() fails: the error came from the source (the
                           * recorder), not from the store */
        uint64_t size;
        uint8_t sha256[EVD_DIGEST_SIZE];
        uint8_t sm3[EVD_DIGEST_SIZE];
        bool has_sm3;
} EvdCopyResult;

/* Reads src to its end, hashing while writing into out (an open EvdTmpFile). Reading, hashing and
 * writing run concurrently on EVD_COPY_SLOTS buffers. Errors name the side that failed (read: the
 * recorder; write: the store). The data is not synced here: evd_tmpfile_commit() does that; its writeback
 * is started behind the writer (writeback.h), so that sync finds little left to do. */
int evd_copy_stream(EvdReader *src, EvdTmpFile *out, const EvdCopyOptions *opts, EvdCopyResult *ret,
                    EvdError *err);
