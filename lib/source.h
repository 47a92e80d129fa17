/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A recorder's storage, read-only. Two implementations: a directory (source-dir.c: a volume that is
 * already visible as a folder) and a USB recorder (source-usb.c: Bulk-Only mass storage + a filesystem
 * read in user space). There is no write operation anywhere in this interface, by design.
 *
 * Paths are relative to the volume root, '/'-separated, as raw bytes from the filesystem (they may be
 * hostile: "../", control bytes, invalid UTF-8). Callers check them with evd_path_check() (path.h)
 * before using them for anything but lookups in the same source. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

#define EVD_SOURCE_MAX_ENTRIES                                                                              \
        100000u                  /* entries listed at most; then one DAMAGED entry says the rest is not */
#define EVD_SOURCE_MAX_DEPTH 16u /* deeper directories are not walked (a DAMAGED entry names them) */

typedef struct EvdSource EvdSource;
typedef struct EvdReader EvdReader;

/* What a listed entry is. Only EVD_SOURCE_FILE entries are candidate recordings; every other entry is
 * something next to the recordings that the docking must report (it is never opened, read or followed):
 * a special file, a symlink, or a part of the volume that could not be listed (DAMAGED: a damaged or
 * hostile filesystem; its detail says what and where). The zero value is EVD_SOURCE_FILE. */
typedef enum EvdSourceEntryType {
        EVD_SOURCE_FILE = 0,
        EVD_SOURCE_SYMLINK,
        EVD_SOURCE_FIFO,
        EVD_SOURCE_SOCKET,
        EVD_SOURCE_CHAR_DEVICE,
        EVD_SOURCE_BLOCK_DEVICE,
        EVD_SOURCE_OTHER,   /* any other non-regular entry the filesystem reports */
        EVD_SOURCE_DAMAGED, /* path: the directory (or "" for the volume) that could not be listed */
        _EVD_SOURCE_ENTRY_TYPE_MAX,
} EvdSourceEntryType;

typedef struct EvdSourceEntry {
        char *path;       /* relative path, raw bytes, NUL-terminated ("" only for a DAMAGED volume) */
        uint64_t size;    /* as the filesystem reports it (may lie: readers stop at the real end) */
        int64_t mtime_us; /* modification time as stored, microseconds since the epoch (0 if unknown) */
        EvdSourceEntryType type;
        char *detail; /* DAMAGED: what could not be listed and why (printable); else NULL */
} EvdSourceEntry;

/* "file", "symlink", "fifo", "socket", "character device", "block device", "special file",
 * "damaged filesystem"; NULL if out of range. */
const char *evd_source_entry_type_to_string(EvdSourceEntryType t);

/* Reorders entries so that the regular files come first (each group keeps its order) and returns how
 * many regular files there are: entries[0..ret) are candidate recordings, entries[ret..n) must be
 * reported. */
size_t evd_source_entries_files_first(EvdSourceEntry *entries, size_t n);

typedef struct EvdSourceIdentity {
        char device_id[16];      /* 7-character serial; "" if the source cannot tell */
        char officer_id[16];     /* 6 digits */
        char unit_code[32];      /* 12 characters */
        int has_clock;           /* 1 if clock_offset_us is meaningful */
        int64_t clock_offset_us; /* recorder clock minus dock clock, measured at docking */
        char transport[16];      /* "dir", "usb" */
        char location[128];      /* human-readable: directory path or "usb 1-2 (1d6b:0104)" */
} EvdSourceIdentity;

typedef struct EvdSourceOps {
        const char *name; /* "dir", "usb" */
        /* Lists the volume recursively, bounded by the limits above: every regular file, every other entry
         * with its type (never followed or opened), and what could not be listed as DAMAGED entries.
         * Errors are reserved for a listing that could not be made at all (the recorder vanished or
         * failed to read, out of memory): damage found on the volume is data, not an error. */
        int (*list)(EvdSource *s, EvdSourceEntry **ret_entries, size_t *ret_n, EvdError *err);
        /* Opens one regular file for sequential reading; anything else is refused with -ENOTSUP without
         * being opened (or, if it changed type in between, without blocking). */
        int (*open)(EvdSource *s, const char *path, EvdReader **ret_reader, EvdError *err);
        /* What the transport itself says about the recorder (USB: the control protocol; dir: nothing). */
        int (*identity)(EvdSource *s, EvdSourceIdentity *ret, EvdError *err);
        /* Optional: the caller will read path after the file it is reading now (evd_source_read_next()). */
        void (*read_next)(EvdSource *s, const char *path);
        void (*free)(EvdSource *s);
} EvdSourceOps;

struct EvdSource {
        const EvdSourceOps *ops;
        void *userdata;
};

typedef struct EvdReaderOps {
        /* Reads up to n bytes at the current position; returns bytes read, 0 at end of file, -errno. */
        ssize_t (*read)(EvdReader *r, void *buf, size_t n, EvdError *err);
        /* Optional (NULL: the source cannot): reads up to n bytes at offset off without moving the position
         * of read; returns bytes read, 0 at or past the end, -errno. Used for a few small reads ahead of
         * the sequential copy (the MP4 index at the end of a recording, copy-ahead.h). */
        ssize_t (*pread)(EvdReader *r, void *buf, size_t n, uint64_t off, EvdError *err);
        void (*close)(EvdReader *r);
} EvdReaderOps;

struct EvdReader {
        const EvdReaderOps *ops;
        void *userdata;
        uint64_t size; /* expected size (from the directory entry); the real end is where read returns 0 */
};

int evd_source_list(EvdSource *s, EvdSourceEntry **ret_entries, size_t *ret_n, EvdError *err);
int evd_source_open(EvdSource *s, const char *path, EvdReader **ret_reader, EvdError *err);
int evd_source_identity(EvdSource *s, EvdSourceIdentity *ret, EvdError *err);
/* A hint: the caller will read path, from its start, after the file it is reading now; a source that
 * reads ahead (USB) goes on with it once that one is read. Nothing fails; no effect for a directory. */
void evd_source_read_next(EvdSource *s, const char *path);
void evd_source_free(EvdSource *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(EvdSource *, evd_source_free);

void evd_source_entries_free(EvdSourceEntry *entries, size_t n);

ssize_t evd_reader_read(EvdReader *r, void *buf, size_t n, EvdError *err);
/* A positioned read (see EvdReaderOps.pread): -ENOTSUP if the reader has none. */
ssize_t evd_reader_pread(EvdReader *r, void *buf, size_t n, uint64_t off, EvdError *err);
bool evd_reader_can_pread(const EvdReader *r);
void evd_reader_close(EvdReader *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(EvdReader *, evd_reader_close);

/* Reads a whole small file (manifest, identity file) into memory, NUL-terminated. Files larger than
 * max are refused with -EFBIG. */
int evd_source_read_small(EvdSource *s, const char *path, size_t max, char **ret_buf, size_t *ret_len,
                          EvdError *err);

/* The directory source: dir must be an existing directory; it is opened O_RDONLY|O_DIRECTORY and every
 * file below it, after its type was checked, with O_RDONLY|O_NOFOLLOW|O_NONBLOCK|O_NOATIME (where
 * permitted) and checked again with fstat: a FIFO, socket or device node is never opened (it could block
 * or wake a driver), a symlink never followed. Opening a non-regular file fails with -ENOTSUP. */
int evd_source_dir_new(const char *dir, EvdSource **ret, EvdError *err);
