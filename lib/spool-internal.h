/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared by the spool's files only, not a public header:
 *
 *   spool.c         the directory: open, entry names and order, appending, listing, docking locks
 *   spool-codec.c   the file format and the entries (spool-codec.h)
 *   spool-cache.c   what an offline docking knows: database identity, enrollments, heads, known files
 *   spool-replay.c  replay into the database, exactly once, through evd_record_entry_apply() */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "device-id.h"
#include "spool-codec.h"
#include "spool.h"

#define SPOOL_NO_TAG    "00000000"
#define SPOOL_NO_DEVICE "-"
#define ENTRY_NAME_MAX  64u
/* The spool is private to the service (docs/spool.md): directories 0700, every file 0600, also when an
 * older evidock made them 0750/0640 (fixed when opened). */
#define SPOOL_DIR_MODE  0700
#define SPOOL_FILE_MODE 0600

struct EvdSpool {
        char *dir;
        int dir_fd, entries_fd, map_fd, open_fd, cache_fd, rejected_fd;
        uint64_t next_seq; /* 0: not known yet (scan) */
        char db_tag[EVD_SPOOL_TAG_SIZE];
        char id[33]; /* random, names this spool for the database lock */
        /* "already spooled?" index of one device's FILE entries (spool-index.c; built by spool-cache.c) */
        char index_device[EVD_DEVICE_ID_SIZE];
        bool index_built;
        char **index;
        size_t n_index, size_index;
        /* files recorded during this run, for the known-files cache */
        char known_device[EVD_DEVICE_ID_SIZE];
        char **known;
        size_t n_known, size_known;
};

struct EvdSpoolDocking {
        EvdSpool *spool;
        char key[EVD_SPOOL_KEY_SIZE];
        char device_id[EVD_DEVICE_ID_SIZE];
        int lock_fd;
};

/* ---- spool.c ---------------------------------------------------------------------------------------- */

/* entries/<seq:16 hex>-<kind>-<device or "-">-<db tag> */
typedef struct SpoolEntryName {
        uint64_t seq;
        EvdRecordKind kind;
        char device[EVD_DEVICE_ID_SIZE];
        char tag[EVD_SPOOL_TAG_SIZE];
        char name[ENTRY_NAME_MAX];
} SpoolEntryName;

/* The entries in spool order, at most EVD_SPOOL_LIST_MAX. *ret is freed by the caller. */
int spool_entries_list(EvdSpool *s, SpoolEntryName **ret, size_t *ret_n);
/* Reads and decodes entries/<name>. Clear *e in all cases. */
int spool_entry_load(EvdSpool *s, const char *name, EvdSpoolEntry *e, EvdError *err);
/* True while the process spooling that docking holds its open/<key> lock; removes a stale lock file. */
bool spool_docking_is_open(EvdSpool *s, const char *key);

/* Writes buf as dir/name: temp name, fsync, rename (replacing unless noreplace), directory fsync. */
int spool_write_durable(int dir_fd, const char *name, const char *buf, size_t len, bool noreplace);
int spool_fsync_dir(int dir_fd);
/* A small file in the spool's format: writes w's text (the writer is finished), or reads and parses one
 * of at most max bytes (clear *t in all cases). */
int spool_text_write(int dir_fd, const char *name, EvdSpoolWriter *w, bool noreplace);
int spool_text_read(int dir_fd, const char *name, size_t max, EvdSpoolText *t, EvdError *err);

int spool_parse_i64(const char *s, int64_t *ret); /* -EINVAL unless exactly a decimal number */
int spool_parse_u64(const char *s, uint64_t *ret);

/* ---- spool-cache.c ---------------------------------------------------------------------------------- */

/* The current database's identity and its tag (first 8 hex digits of its SHA-256). */
int spool_db_identity(EvdDb *db, char *ret, size_t size, char ret_tag[EVD_SPOOL_TAG_SIZE], EvdError *err);

/* ---- spool-index.c: the "already spooled?" index (used by spool.c and spool-cache.c) ----------------- */

void spool_strv_free(char **v, size_t n);
int spool_strv_push(char ***v, size_t *n, size_t *size, const char *item); /* a copy of item */
void spool_index_clear(EvdSpool *s);
int spool_index_add(EvdSpool *s, const char *key);
/* "r:<record hash>" for a chained file, "f:<sha256>:<source path>" for a foreign one (each may be NULL). */
char *spool_index_key_of(const uint8_t *record_hash, const uint8_t *sha256, const char *source_path);
/* A FILE entry was appended: keep the index current (when it is built for that device). */
void spool_index_note_file(EvdSpool *s, const char *device_id, const EvdDbFile *file);
