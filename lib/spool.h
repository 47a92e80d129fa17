/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The local durable spool: while PostgreSQL is unreachable, the record stage (record.h) writes here every
 * entry (record-entry.h) the database would have received; when the database is back,
 * evd_spool_replay() writes them there in the order they were spooled, exactly once, through the same
 * evd_record_entry_apply() the stage uses online. docs/spool.md describes the layout and the guarantees.
 * Code: spool.c (directory, append, list), spool-codec.c (format), spool-cache.c (offline cache),
 * spool-replay.c (replay).
 *
 *   DIR/entries/<seq>-<kind>-<device>-<dbtag>   one entry per database transaction, written to a temp
 *                                              name, fsync'd, renamed (never replacing), dir fsync'd
 *   DIR/map/<docking key>                      spooled docking -> database docking id (written before
 *                                              the docking's transaction commits)
 *   DIR/open/<docking key>                     flock'd by the process still spooling that docking
 *   DIR/cache/                                 enrollments and chain heads, refreshed while online
 *   DIR/rejected/                              corrupt entries, or entries the database refused: kept
 *                                              with a .why file, never dropped
 *
 * An EvdSpool is used by one thread at a time; several processes and threads may each open their own on
 * the same directory (appends never replace each other; replays are serialised by a lock). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "error.h"
#include "record-entry.h"
#include "spool-codec.h"

#define EVD_SPOOL_LIST_MAX  1000000u              /* entries one replay pass or listing looks at */
#define EVD_SPOOL_CACHE_MAX (16u * 1024u * 1024u) /* bytes of the enrollment cache */
#define EVD_SPOOL_KNOWN_MAX 100000u               /* recorded files remembered per recorder */

typedef struct EvdSpool EvdSpool;

/* Opens (creating it and its subdirectories if needed) the spool at dir. Free with evd_spool_free(). */
int evd_spool_open(const char *dir, EvdSpool **ret, EvdError *err);
EvdSpool *evd_spool_free(EvdSpool *s); /* accepts NULL; returns NULL */
DEFINE_TRIVIAL_CLEANUP_FUNC(EvdSpool *, evd_spool_free);
const char *evd_spool_dir(const EvdSpool *s);

/* True for the errors that mean "the database is unreachable" (no answer, connection broken, timed out):
 * the ones after which ingest goes on into the spool. Not a login the server refused
 * (evd_db_login_refused(), db.h): that is a configuration error, not an outage. */
bool evd_spool_db_unreachable(int r);

/* ---- the cache for offline dockings ---------------------------------------------------------------- */

/* Notes which database db is (its name and creation time: entries spooled for one database are never
 * replayed into another) and rewrites the enrollment cache from it. */
int evd_spool_cache_refresh(EvdSpool *s, EvdDb *db, EvdError *err);
/* The cached enrollment of device_id; -ENOENT if not cached. Free with evd_db_device_free(). */
int evd_spool_cache_device(EvdSpool *s, const char *device_id, EvdDbDevice **ret_dev, EvdError *err);
/* The cached chain head; -ENOENT if none. */
int evd_spool_cache_head_get(EvdSpool *s, const char *device_id, EvdDbChainHead *ret_head, EvdError *err);
int evd_spool_cache_head_set(EvdSpool *s, const char *device_id, const EvdDbChainHead *head, EvdError *err);

/* Remembers that a file of device_id is recorded (in the database, or spooled), so that an offline
 * re-docking finds it with evd_spool_file_find() and does not copy it again. Collected in memory;
 * evd_spool_cache_known_save() merges them into the cache (at most EVD_SPOOL_KNOWN_MAX per recorder:
 * beyond that some are forgotten, which costs a copy, never a duplicate row). record_hash NULL: a foreign
 * file, named by source_path and sha256. */
int evd_spool_cache_known_add(EvdSpool *s, const char *device_id, const uint8_t *record_hash,
                              const char *source_path, const uint8_t *sha256);
int evd_spool_cache_known_save(EvdSpool *s, const char *device_id, EvdError *err);

/* ---- writing (ingest, offline) --------------------------------------------------------------------- */

/* The kind's name as in entry file names ("begin", "refused", ...): evd_record_kind_to_string(). */
const char *evd_spool_kind_to_string(EvdRecordKind k);

/* A docking being written to the spool; holds its open/ lock until closed. */
typedef struct EvdSpoolDocking EvdSpoolDocking;

/* Starts spooling a docking. db_docking_id > 0: the docking was begun in the database before it became
 * unreachable (its BEGIN is not spooled); 0: a new docking (spool a BEGIN or REFUSED first). */
int evd_spool_docking_open(EvdSpool *s, int64_t db_docking_id, const char *device_id, EvdSpoolDocking **ret,
                           EvdError *err);
EvdSpoolDocking *evd_spool_docking_close(EvdSpoolDocking *d); /* accepts NULL; returns NULL */
DEFINE_TRIVIAL_CLEANUP_FUNC(EvdSpoolDocking *, evd_spool_docking_close);
const char *evd_spool_docking_key(const EvdSpoolDocking *d);

/* Appends one entry durably (on return it survives a crash). */
int evd_spool_append(EvdSpool *s, EvdSpoolDocking *d, const EvdRecordEntry *rec, EvdError *err);

/* "Already ingested?" offline: 1 if a FILE entry for the same device and record hash (or, for a foreign
 * file, record_hash NULL, the same source path and SHA-256) waits in the spool, or the file is in the
 * known-files cache; else 0. */
int evd_spool_file_find(EvdSpool *s, const char *device_id, const uint8_t *record_hash,
                        const char *source_path, const uint8_t *sha256, EvdError *err);

/* Entries of device_id waiting for the current database (the one last seen by evd_spool_cache_refresh):
 * while there are some, that recorder's next docking goes to the spool too, to keep its order. */
int evd_spool_device_pending(EvdSpool *s, const char *device_id, unsigned *ret_n);

/* Entries of kind waiting for the current database (as evd_spool_device_pending()). */
int evd_spool_kind_pending(EvdSpool *s, EvdRecordKind kind, unsigned *ret_n);

/* ---- reading, replay ------------------------------------------------------------------------------- */

/* Entries waiting (all databases). */
int evd_spool_backlog(EvdSpool *s, unsigned *ret_n);

typedef struct EvdSpoolInfo {
        uint64_t seq;
        EvdRecordKind kind;
        char device_id[EVD_DEVICE_ID_SIZE]; /* "" if none (refused, unidentified) */
        char docking_key[EVD_SPOOL_KEY_SIZE];
        char db_tag[EVD_SPOOL_TAG_SIZE]; /* "00000000": database unknown when spooled */
        int64_t spooled_us;
        uint64_t size;
        const char *summary; /* one line: the file's path, the finding, ...; "" if none */
        bool corrupt;        /* unreadable or failing its checksum */
} EvdSpoolInfo;

typedef void (*EvdSpoolListFn)(const EvdSpoolInfo *info, void *userdata);

/* Calls fn for each entry in replay order. */
int evd_spool_list(EvdSpool *s, EvdSpoolListFn fn, void *userdata, EvdError *err);

typedef struct EvdSpoolReplay {
        unsigned replayed; /* entries whose transaction committed now */
        unsigned already;  /* entries the database had already (exactly once: a duplicate counts here) */
        unsigned rejected; /* corrupt, or refused by the database: moved to rejected/ with the reason */
        unsigned waiting;  /* entries left: for another database, or of a docking still being spooled */
        unsigned other_db; /* of those, spooled for another database */
        unsigned rebuilt;  /* dockings whose begin entry was gone, rebuilt from their other entries */
        char last_rejected[256]; /* why the last entry was rejected */
        char last_waiting[256];  /* why the last entry of this database waits ("" if none did) */
} EvdSpoolReplay;

/* Replays every entry for db's database in spool order, one transaction per entry, deleting each only
 * after its transaction committed. Stops at the first unreachable-database error (what was replayed
 * stays replayed). -EBUSY if another replay of this spool is running. *ret is filled in all cases. */
int evd_spool_replay(EvdSpool *s, EvdDb *db, EvdSpoolReplay *ret, EvdError *err);
