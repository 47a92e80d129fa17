/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The local durable spool: while PostgreSQL is unreachable, ingest goes on and writes here everything the
 * database would have received; when the database is back, evd_spool_replay() writes it there in the
 * order it was spooled, exactly once. docs/spool.md describes the layout and the guarantees.
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

#include "custody.h"
#include "db.h"
#include "error.h"

#define EVD_SPOOL_ENTRY_MAX    (4u * 1024u * 1024u)  /* bytes of one entry file */
#define EVD_SPOOL_FINDINGS_MAX 4096u                 /* findings in one entry */
#define EVD_SPOOL_EVENTS_MAX   16u                   /* custody events in one entry */
#define EVD_SPOOL_LIST_MAX     1000000u              /* entries one replay pass or listing looks at */
#define EVD_SPOOL_CACHE_MAX    (16u * 1024u * 1024u) /* bytes of the enrollment cache */
#define EVD_SPOOL_KEY_SIZE     40u                   /* docking key, NUL included */
#define EVD_SPOOL_TAG_SIZE     9u                    /* database tag: 8 hex + NUL */
#define EVD_SPOOL_KNOWN_MAX    100000u               /* recorded files remembered per recorder */

typedef struct EvdSpool EvdSpool;

/* Opens (creating it and its subdirectories if needed) the spool at dir. Free with evd_spool_free(). */
int evd_spool_open(const char *dir, EvdSpool **ret, EvdError *err);
EvdSpool *evd_spool_free(EvdSpool *s); /* accepts NULL; returns NULL */
DEFINE_TRIVIAL_CLEANUP_FUNC(EvdSpool *, evd_spool_free);
const char *evd_spool_dir(const EvdSpool *s);

/* True for the errors that mean "the database is unreachable" (connect refused, connection broken):
 * the ones after which ingest goes on into the spool. */
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

typedef enum EvdSpoolKind {
        EVD_SPOOL_BEGIN,   /* a docking starts: docking row + custody (docked, identified) */
        EVD_SPOOL_REFUSED, /* a refused docking, whole: docking row, finding, custody, result */
        EVD_SPOOL_FILE,    /* one file: row + findings + custody, as evd_db_file_record() takes them */
        EVD_SPOOL_FINDING, /* a docking-level finding (replayed with the docking's END) */
        EVD_SPOOL_END,     /* the docking ends: head (optional), custody, result */
        _EVD_SPOOL_KIND_MAX,
} EvdSpoolKind;

const char *evd_spool_kind_to_string(EvdSpoolKind k); /* "begin", "refused", ... */

/* What one entry holds. Strings and arrays are borrowed. Custody events' docking_id/file_id are ignored
 * (set at replay). */
typedef struct EvdSpoolRecord {
        EvdSpoolKind kind;
        const EvdDbDocking *docking; /* BEGIN, REFUSED */
        const EvdDbFile *file;       /* FILE; its docking_id is ignored */
        const EvdFinding *findings;  /* REFUSED, FILE, FINDING (exactly one) */
        size_t n_findings;
        const EvdCustodyEntry *events;
        size_t n_events;
        const EvdDbChainHead *head;       /* END; NULL: the head did not move */
        const EvdDbDockingResult *result; /* REFUSED, END */
} EvdSpoolRecord;

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
int evd_spool_append(EvdSpool *s, EvdSpoolDocking *d, const EvdSpoolRecord *rec, EvdError *err);

/* "Already ingested?" offline: 1 if a FILE entry for the same device and record hash (or, for a foreign
 * file, record_hash NULL, the same source path and SHA-256) waits in the spool, or the file is in the
 * known-files cache; else 0. */
int evd_spool_file_find(EvdSpool *s, const char *device_id, const uint8_t *record_hash,
                        const char *source_path, const uint8_t *sha256, EvdError *err);

/* Entries of device_id waiting for the current database (the one last seen by evd_spool_cache_refresh):
 * while there are some, that recorder's next docking goes to the spool too, to keep its order. */
int evd_spool_device_pending(EvdSpool *s, const char *device_id, unsigned *ret_n);

/* ---- reading, replay ------------------------------------------------------------------------------- */

/* Entries waiting (all databases). */
int evd_spool_backlog(EvdSpool *s, unsigned *ret_n);

typedef struct EvdSpoolInfo {
        uint64_t seq;
        EvdSpoolKind kind;
        char device_id[16]; /* "" if none (refused, unidentified) */
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
        char last_rejected[256]; /* why the last entry was rejected */
} EvdSpoolReplay;

/* Replays every entry for db's database in spool order, one transaction per entry, deleting each only
 * after its transaction committed. Stops at the first unreachable-database error (what was replayed
 * stays replayed). -EBUSY if another replay of this spool is running. *ret is filled in all cases. */
int evd_spool_replay(EvdSpool *s, EvdDb *db, EvdSpoolReplay *ret, EvdError *err);
