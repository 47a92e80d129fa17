/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A FAT12/16/32 or exFAT volume read in user space (The Sleuth Kit) from a block-read callback.
 *
 * Read-only by construction: the callback can only read. The volume may start at block 0 or be the
 * first FAT/exFAT partition of an MBR. Walking never searches for orphans (that would read nearly
 * the whole medium) and is bounded by EVD_SOURCE_MAX_DEPTH / EVD_SOURCE_MAX_ENTRIES (source.h); a
 * directory that contains itself (a loop) is walked once. A block cache (EVD_FS_META_SLOTS windows
 * of EVD_FS_META_WINDOW bytes for the FAT and directories, EVD_FS_CACHE_SLOTS of EVD_FS_CACHE_WINDOW
 * for file data) turns the filesystem code's small reads into few device reads: a recording's 1 MiB
 * chunks go straight into the caller's buffer, a small file is one read of its own blocks, and small
 * files laid out one after the other (as a recorder writes them) are read a whole window at a time.
 * A file of the last listing is opened by its directory entry, without looking its path up again.
 *
 * Not thread-safe: one EvdFs and its files are used from one thread at a time. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "source.h"

#define EVD_FS_CACHE_WINDOW (1024u * 1024u) /* file data: bytes per read-ahead device read */
#define EVD_FS_CACHE_SLOTS  2u              /* file data windows */
#define EVD_FS_META_WINDOW                                                                                  \
        (64u * 1024u)                     /* FAT and directories: bytes per device read (TSK reads 64 KiB)  \
                                           */
#define EVD_FS_META_SLOTS 64u             /* so at most 6 MiB of cache per volume (allocated as used) */
#define EVD_FS_READ_CHUNK (1024u * 1024u) /* largest single read of a file (one device transfer) */
/* With EvdFsDevice.prefetch: a file of at least EVD_FS_PREFETCH_MIN bytes is read ahead, up to
 * EVD_FS_PREFETCH_SLOTS chunks of EVD_FS_READ_CHUNK, on a thread of the volume's own (fs-prefetch.h). */
#define EVD_FS_PREFETCH_MIN   (4u * 1024u * 1024u)
#define EVD_FS_PREFETCH_SLOTS 8u

typedef struct EvdFsDevice {
        uint32_t block_size; /* 512..4096 */
        uint64_t block_count;
        /* Reads count whole blocks at lba; 0 or -errno (with a message in err). */
        int (*read_blocks)(void *userdata, uint64_t lba, uint32_t count, void *buf, EvdError *err);
        void *userdata; /* borrowed: must outlive the EvdFs */
        /* Read big files ahead on a thread of the volume's (up to 8 MiB more memory): the bus keeps
         * reading while the caller does other things between its reads. read_blocks is then called from
         * that thread too (never two calls at once). */
        bool prefetch;
} EvdFsDevice;

typedef struct EvdFs EvdFs;

/* What the volume cost in device reads so far (for tests and benchmarks). */
typedef struct EvdFsStats {
        uint64_t device_reads; /* read_blocks() calls (READ(10) commands up to 1 MiB each over USB) */
        uint64_t device_bytes;
        uint64_t read_aheads; /* file reads that continued the last one and read a whole window */
        uint64_t cache_hits;  /* file reads answered from memory */
        uint64_t
            prefetch_reads; /* device reads made ahead on the prefetcher's thread (EvdFsDevice.prefetch) */
        uint64_t prefetch_bytes_taken; /* file bytes handed out from them */
} EvdFsStats;
typedef struct EvdFsFile EvdFsFile;

/* Opens the filesystem. -EMEDIUMTYPE if there is no FAT/exFAT volume; -EUCLEAN if the volume says it
 * is larger than the device (a lying capacity or a truncated image). */
int evd_fs_open(const EvdFsDevice *dev, EvdFs **ret, EvdError *err);
void evd_fs_close(EvdFs *fs);
DEFINE_TRIVIAL_CLEANUP_FUNC(EvdFs *, evd_fs_close);

const char *evd_fs_type(const EvdFs *fs); /* "fat12", "fat16", "fat32", "exfat" */

/* Lists all allocated regular files, recursively. Paths are relative ("DCIM/100/A.MP4"), raw bytes as
 * the filesystem stores them (UTF-8 from long names). mtime_us is as TSK reads it: FAT stores local
 * time without a zone, which TSK interprets in the dock's time zone. The array is the caller's: free it with
 * evd_source_entries_free().
 *
 * A damaged or hostile filesystem is data, not an error: a directory that cannot be read (a broken
 * cluster chain), an entry claiming bytes past the end of the volume or hidden from TSK, a directory
 * nested deeper than EVD_SOURCE_MAX_DEPTH, one that loops back, and more than EVD_SOURCE_MAX_ENTRIES
 * entries each become an EVD_SOURCE_DAMAGED entry whose path names the directory (or file) and whose
 * detail says what is wrong; the rest of the volume is still listed. Errors (< 0) mean the device
 * failed (the recorder vanished, a read error: the device's own code and message) or out of memory. */
int evd_fs_list(EvdFs *fs, EvdSourceEntry **ret_entries, size_t *ret_n, EvdError *err);

/* Opens one regular file by relative path. The file keeps fs alive only by contract: close files
 * before the fs. */
int evd_fs_file_open(EvdFs *fs, const char *path, EvdFsFile **ret, EvdError *err);
uint64_t evd_fs_file_size(const EvdFsFile *f);
/* Reads sequentially; returns bytes read, 0 at the end, -errno. If the file's size is larger than its
 * cluster chain or runs past the end of the volume, the bytes that exist are returned first and then
 * -EUCLEAN with a message saying where the file really ends. */
ssize_t evd_fs_file_read(EvdFsFile *f, void *buf, size_t n, EvdError *err);
/* The same at byte offset off, leaving the position of evd_fs_file_read() where it was (a few small
 * reads ahead of a sequential copy: the MP4 index at the end of a recording). */
ssize_t evd_fs_file_pread(EvdFsFile *f, void *buf, size_t n, uint64_t off, EvdError *err);
/* With EvdFsDevice.prefetch: the caller will read path (from its start) after the file it reads now, so
 * once that one is read ahead to its end, the prefetcher goes on with path (a file of at least
 * EVD_FS_PREFETCH_MIN bytes; the last announcement counts). A hint: nothing fails, nothing is read before
 * the caller reads the file before it. */
void evd_fs_read_next(EvdFs *fs, const char *path);
void evd_fs_file_close(EvdFsFile *f);
void evd_fs_stats(const EvdFs *fs, EvdFsStats *ret);
DEFINE_TRIVIAL_CLEANUP_FUNC(EvdFsFile *, evd_fs_file_close);
