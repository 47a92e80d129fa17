/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The evidence database (PostgreSQL through libpq): enrollments, dockings, chain heads, ingested files,
 * findings. The schema and its rules are described in docs/database.md. All of evidock's SQL is in the
 * lib/db*.c files behind this header (layout and how to add an area: db-internal.h).
 *
 * Evidence rows are append-only: the database itself refuses UPDATE, DELETE and TRUNCATE on the evidence
 * tables (calls that would need one fail with -EPERM). State that changes (a device retired, a docking
 * finished, a chain head moved) is a new row; the latest row wins.
 *
 * An EvdDb is one connection: use it from one thread at a time (one EvdDb per worker).
 *
 * Times are int64 microseconds since the Unix epoch, UTC. Digests going in are raw 32-byte arrays
 * (NULL where optional and absent); digests coming out are lower-case hex strings.
 *
 * Errors: negative errno, and a one-line message in *err when given. Mapped from PostgreSQL:
 *   -EEXIST  a row that must be unique already exists (duplicate file, enrolling an enrolled device)
 *   -EPERM   the append-only guard refused a change
 *   -ENOENT  the thing looked up (or referenced, e.g. a docking id) does not exist
 *   -EINVAL  the database refused a value (a CHECK constraint) or an argument is invalid
 *   -ECONNREFUSED / -ECONNRESET  could not connect / the connection broke (-ETIMEDOUT: connect_timeout)
 *   -EACCES  the server refused the login (evd_db_login_refused()), or a privilege the role lacks
 *   -EPROTO  the database schema is newer than this library
 *   -EIO     anything else */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "device-id.h"
#include "error.h"
#include "finding.h"
#include "hash.h"
#include "types.h"

#define EVD_DB_LOG_MAX_ROWS 100000u /* upper bound of rows one log/chain query returns */
#define EVD_DB_HEX_SIZE     (2u * EVD_DIGEST_SIZE + 1u)

typedef struct EvdDb EvdDb;

/* Connects (conninfo is a libpq key=value string or URI) and applies every migration the database does
 * not have yet, each in its own transaction. Concurrent openers are serialized by an advisory lock, so
 * several processes may start at once. Error messages name the host/socket that refused, or the
 * migration that failed; a refused login is -EACCES (evd_db_login_refused()). connect_timeout, when the
 * conninfo has one, bounds the whole attempt (all its hosts), -ETIMEDOUT. *ret_db is freed with
 * evd_db_close(). */
int evd_db_open(const char *conninfo, EvdDb **ret_db, EvdError *err);
/* True for evd_db_open()'s "the server refused this login": a wrong password, a role or database that does
 * not exist, no pg_hba.conf entry, no CONNECT privilege (SQLSTATE class 28, 3D000, 42501). That is a
 * configuration error, not an outage (evd_spool_db_unreachable() is false for it): the message names the
 * role, the database and the host or socket. Also true for -EACCES from a privilege the role lacks (the
 * wrong role in the conninfo): a configuration error as well. */
bool evd_db_login_refused(int r);
/* Closes the connection (rolls back an open transaction). Accepts NULL. Returns NULL. */
EvdDb *evd_db_close(EvdDb *db);
DEFINE_TRIVIAL_CLEANUP_FUNC(EvdDb *, evd_db_close);

/* The newest migration this library knows, and the one the database is at. */
int evd_db_schema_version_known(void);
int evd_db_schema_version(EvdDb *db, int *ret_version, EvdError *err);

/* Optional explicit transaction around several calls (e.g. docking begin + custody "docked").
 * Calls that write several rows use their own transaction, or a savepoint inside the caller's. */
int evd_db_begin(EvdDb *db, EvdError *err);
int evd_db_commit(EvdDb *db, EvdError *err);
int evd_db_rollback(EvdDb *db); /* safe to call when no transaction is open */

/* Which database this is, as "<name>@<time of migration 1 in µs>": stable for the life of the database,
 * different for a re-created one (the spool stamps its entries with it). */
int evd_db_identity(EvdDb *db, char *ret, size_t size, EvdError *err);

/* A session-level advisory lock named by key (class 'EVDS'), held until released or the connection ends:
 * serialises the spool replays of one spool across processes and hosts. lock false releases it. */
int evd_db_replay_lock(EvdDb *db, const char *key, bool lock, EvdError *err);

/* ---- devices ------------------------------------------------------------------------------------- */

typedef struct EvdDbDevice {
        char *device_id; /* evd_device_id_valid(): 1-15 ASCII letters or digits */
        char *officer_id;
        char *unit_code; /* may be NULL */
        EvdSuite suite;
        char *public_key_pem;
        char *key_id;        /* hex fingerprint of the public key */
        int64_t enrolled_us; /* set by the database; ignored by enroll */
} EvdDbDevice;

/* Enrolls a device. -EEXIST if it is enrolled already (retire it first to change key or officer). */
int evd_db_device_enroll(EvdDb *db, const EvdDbDevice *dev, EvdError *err);
/* The current enrollment. -ENOENT if never enrolled or retired. Free with evd_db_device_free(). */
int evd_db_device_get(EvdDb *db, const char *device_id, EvdDbDevice **ret_dev, EvdError *err);
/* All enrolled (not retired) devices, ordered by device_id. Free with evd_db_device_array_free(). */
int evd_db_device_list(EvdDb *db, EvdDbDevice **ret_devs, size_t *ret_n, EvdError *err);
/* Records a retirement (reason may be NULL). -ENOENT if the device is not enrolled. */
int evd_db_device_retire(EvdDb *db, const char *device_id, const char *reason, EvdError *err);

void evd_db_device_free(EvdDbDevice *dev);
void evd_db_device_array_free(EvdDbDevice *devs, size_t n);
DEFINE_TRIVIAL_CLEANUP_FUNC(EvdDbDevice *, evd_db_device_free);

/* ---- dockings ------------------------------------------------------------------------------------ */

typedef struct EvdDbDocking {
        const char *device_id; /* NULL: the recorder was refused or not identified */
        const char *identity;  /* what the recorder presented (e.g. "USB 1d6b:0104 serial X"); may be NULL */
        const char *transport; /* "usb", "dir", ... */
        const char *location;  /* dock port or directory; may be NULL */
        bool has_clock_offset;
        int64_t clock_offset_us; /* recorder clock minus dock clock */
        int64_t docked_us;
} EvdDbDocking;

int evd_db_docking_begin(EvdDb *db, const EvdDbDocking *docking, int64_t *ret_docking_id, EvdError *err);
/* 1 if a docking with this id exists, else 0. */
int evd_db_docking_exists(EvdDb *db, int64_t docking_id, EvdError *err);

typedef struct EvdDbDockingResult {
        unsigned files_seen;
        unsigned files_ingested;
        unsigned files_already; /* found already ingested, skipped */
        unsigned files_quarantined;
        EvdVerdict verdict;  /* the worst finding of the docking */
        const char *summary; /* may be NULL */
        int64_t finished_us;
} EvdDbDockingResult;

/* Records the end of a docking as a new row. -EEXIST if already finished, -ENOENT if no such docking. */
int evd_db_docking_finish(EvdDb *db, int64_t docking_id, const EvdDbDockingResult *result, EvdError *err);

/* ---- findings ------------------------------------------------------------------------------------ */

/* A docking-level finding (not about one stored file: a gap, a rollback, a missing file...). Findings are
 * EvdFinding (finding.h); its file field is not stored (a file's findings go with evd_db_file_record()). */
int evd_db_docking_finding_add(EvdDb *db, int64_t docking_id, const EvdFinding *finding, EvdError *err);

/* ---- chain heads --------------------------------------------------------------------------------- */

typedef struct EvdDbChainHead {
        uint64_t seq;
        uint64_t session;
        uint8_t record_hash[EVD_DIGEST_SIZE];
        bool has_end;
        int64_t end_us;     /* end time of the head record */
        int64_t docking_id; /* the docking that verified it (get only) */
        int64_t set_us;     /* when it was recorded (get only) */
} EvdDbChainHead;

/* The latest verified head of a device. -ENOENT if none was ever recorded. */
int evd_db_chain_head_get(EvdDb *db, const char *device_id, EvdDbChainHead *ret_head, EvdError *err);
/* Records a new verified head (a new row; head->docking_id/set_us are ignored). */
int evd_db_chain_head_set(EvdDb *db, const char *device_id, int64_t docking_id, const EvdDbChainHead *head,
                          EvdError *err);

/* ---- files --------------------------------------------------------------------------------------- */

struct EvdCustodyEntry; /* custody.h */

typedef struct EvdDbFile {
        int64_t docking_id;
        const char *device_id;
        const char *officer_id; /* may be NULL */
        bool has_seq;           /* false for a foreign file (not in the recorder's chain) */
        uint64_t seq;
        uint64_t session;
        EvdMethod method;
        const char *case_number; /* may be NULL */
        bool has_recorded;       /* recording times known */
        int64_t recorded_start_us;
        int64_t recorded_end_us;
        int tz_minutes; /* recorder's UTC offset */
        bool has_clock_offset;
        int64_t clock_offset_us;
        int64_t ingested_us;
        int64_t stored_us;
        bool within_24h; /* recording end -> safely stored within 24 h (computed by the caller) */
        uint64_t size;
        const uint8_t *sha256;         /* 32 bytes, required */
        const uint8_t *record_hash;    /* 32 bytes or NULL (foreign file) */
        const char *chain_record;      /* the manifest line, or NULL */
        const char *source_path;       /* path on the recorder: raw bytes (any encoding), stored as bytea */
        const char *original_path;     /* where the bit-exact original is stored */
        const char *archive_path;      /* may be NULL */
        const uint8_t *archive_sha256; /* 32 bytes or NULL */
        const char *archive_format;    /* e.g. "matroska"; may be NULL */
        const uint8_t *packets_sha256; /* 32 bytes or NULL */
        EvdVerdict verdict;            /* the worst finding for this file */
        const char *confidentiality;   /* NULL: "normal" */
        const char *retention_class;   /* required */
} EvdDbFile;

/* Records one ingested file, its findings and its custody events (each event's file_id is set to the new
 * file; its docking_id and device_id default to the file's) in ONE transaction (a savepoint if the caller
 * has one open): either all rows exist afterwards or none. -EEXIST if the file was ingested already (same
 * device and record hash, or for a foreign file same device, source path and SHA-256); nothing is written
 * then. *ret_file_id may be NULL. */
int evd_db_file_record(EvdDb *db, const EvdDbFile *file, const EvdFinding *findings, size_t n_findings,
                       const struct EvdCustodyEntry *events, size_t n_events, int64_t *ret_file_id,
                       EvdError *err);

/* "Already ingested?" Returns 1 and sets *ret_file_id (may be NULL) if so, 0 if not. */
int evd_db_file_find_chained(EvdDb *db, const char *device_id, const uint8_t record_hash[EVD_DIGEST_SIZE],
                             int64_t *ret_file_id, EvdError *err);
int evd_db_file_find_foreign(EvdDb *db, const char *device_id, const char *source_path,
                             const uint8_t sha256[EVD_DIGEST_SIZE], int64_t *ret_file_id, EvdError *err);

/* ---- queries for evidockctl ---------------------------------------------------------------------- */

typedef struct EvdDbFindingRow {
        int64_t id;
        int64_t docking_id;
        int64_t file_id; /* 0 for a docking-level finding */
        char *verdict;   /* verdict name as stored, e.g. "HASH_MISMATCH" */
        bool has_seq;
        uint64_t seq;
        char *expected; /* each may be NULL */
        char *found;
        char *detail;
} EvdDbFindingRow;

typedef struct EvdDbFileRow {
        int64_t id;
        int64_t docking_id;
        char *device_id;
        char *officer_id; /* may be NULL */
        bool has_seq;
        uint64_t seq;
        uint64_t session;
        char *method;      /* "video", "audio", "photo", "unknown" */
        char *case_number; /* may be NULL */
        bool has_recorded;
        int64_t recorded_start_us;
        int64_t recorded_end_us;
        int tz_minutes;
        int64_t ingested_us;
        int64_t stored_us;
        bool within_24h;
        uint64_t size;
        char sha256[EVD_DB_HEX_SIZE];
        char record_hash[EVD_DB_HEX_SIZE]; /* "" for a foreign file */
        char *original_path;
        char *archive_path;                   /* may be NULL */
        char archive_sha256[EVD_DB_HEX_SIZE]; /* "" if not archived */
        char *verdict;
        char *confidentiality;
        char *retention_class;
        bool has_clock_offset;
        int64_t clock_offset_us;   /* recorder clock minus dock clock at the docking */
        char *source_path;         /* path on the recorder: raw bytes as stored (may be non-UTF-8) */
        EvdDbFindingRow *findings; /* this file's findings, by id */
        size_t n_findings;
} EvdDbFileRow;

typedef struct EvdDbLogFilter {
        bool has_since;
        int64_t since_us; /* files ingested at or after this time */
        bool has_until;
        int64_t until_us;      /* files ingested before this time */
        const char *device_id; /* NULL: all devices */
        size_t max_rows;       /* 0: EVD_DB_LOG_MAX_ROWS; larger values are clamped to it */
        bool late_only;        /* only files not shown to be ingested within 24 h of recording */
        bool findings_only;    /* only files whose verdict is not INTACT or that have findings */
} EvdDbLogFilter;

typedef struct EvdDbLog {
        EvdDbFileRow *files; /* ordered by ingest time, then id */
        size_t n_files;
        bool truncated; /* more rows matched than max_rows */
} EvdDbLog;

/* For `evidockctl log [--since TIME] [--device ID]`. filter may be NULL (everything). Free with
 * evd_db_log_free(). */
int evd_db_log_query(EvdDb *db, const EvdDbLogFilter *filter, EvdDbLog **ret_log, EvdError *err);
EvdDbLog *evd_db_log_free(EvdDbLog *log);
DEFINE_TRIVIAL_CLEANUP_FUNC(EvdDbLog *, evd_db_log_free);

typedef struct EvdDbChainView {
        char *device_id;
        EvdDbFileRow *files; /* chained files by seq then id, then foreign files by ingest time */
        size_t n_files;
        EvdDbFindingRow *docking_findings; /* findings not tied to a file, by id */
        size_t n_docking_findings;
        EvdDbChainHead *heads; /* every recorded head, oldest first */
        size_t n_heads;
        bool truncated; /* a list hit EVD_DB_LOG_MAX_ROWS */
} EvdDbChainView;

/* For `evidockctl chain DEVICE`. A device with no rows gives an empty view, not an error. */
int evd_db_chain_view(EvdDb *db, const char *device_id, EvdDbChainView **ret_view, EvdError *err);
EvdDbChainView *evd_db_chain_view_free(EvdDbChainView *view);
DEFINE_TRIVIAL_CLEANUP_FUNC(EvdDbChainView *, evd_db_chain_view_free);

/* ---- reconciliation ------------------------------------------------------------------------------ */

/* 1 if a file row names path (relative to the store root) as its original or archive copy, else 0. */
int evd_db_path_known(EvdDb *db, const char *path, EvdError *err);

/* Calls fn for every stored path the database knows (originals and archive copies), streamed row by
 * row (constant memory). fn returning < 0 stops the walk with that value. */
typedef int (*EvdDbPathFn)(const char *path, int64_t file_id, void *userdata);
int evd_db_stored_paths(EvdDb *db, EvdDbPathFn fn, void *userdata, EvdError *err);
