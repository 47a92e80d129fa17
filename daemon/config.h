/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidock.conf: INI-style sections with key = value (lines read by lib/kv.h, values by parse_value()).
 * Strict: an unknown section or key, a duplicate key, or a value that does not parse is an error naming
 * file:line. conf/evidock.conf lists every key, commented out, at its compiled default. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "retention.h"

#define EVD_CONFIG_MAX_WATCH_DIRS 16
#define EVD_CONFIG_FILE_MAX       (1024u * 1024u) /* a larger configuration file is refused */
#define EVD_CONFIG_LINE_MAX       1022u           /* bytes of one line, without its newline */

typedef struct EvdConfig {
        /* [database] */
        char *database_url; /* libpq conninfo or URI */
        char *spool_dir;    /* local durable spool while the database is unreachable */
        /* [store] */
        char *store_root;
        uint64_t store_reserve_bytes; /* stop taking new files when free space falls below this */
        /* [ingest] */
        char *default_case_number;     /* used when the recorder carries none; "" = none */
        int64_t late_after_us;         /* the 24-hour rule: recording end -> safely stored */
        uint64_t max_file_bytes;       /* a larger file on a recorder is refused (UNREADABLE) */
        bool archive_copy;             /* make the Matroska / tagged archive copy */
        bool archive_while_copying;    /* ... of a long MP4 while it is still copied (ingest.h) */
        int64_t media_timeout_us;      /* bound on making one archive copy */
        int64_t docking_deadline_us;   /* evidockd: a docking without progress this long is stopped; 0 off */
        int64_t time_gap_tolerance_us; /* gap between segments of one session that is still continuous */
        int64_t clock_max_offset_us;   /* recorder clock further off than this: CLOCK_ANOMALY */
        char *confidentiality;         /* default confidentiality mark: normal | restricted | secret */
        int64_t overdue_after_us;      /* a recorder not docked for this long is overdue; 0: never */
        /* [watch] */
        char *watch_dirs[EVD_CONFIG_MAX_WATCH_DIRS]; /* each subdirectory appearing here is a volume */
        unsigned n_watch_dirs;
        /* [usb] */
        bool usb_enabled;
        char *usb_profiles_dir;
        bool usb_set_clock;
        unsigned
            usb_max_concurrent; /* per-transfer timeouts are per recorder profile (transfer_timeout_ms) */
        /* [metrics] */
        char *metrics_file;          /* Prometheus textfile written by evidockd; "" = off */
        int64_t metrics_interval_us; /* how often it is rewritten (and the daily summary checked) */
        /* [access] */
        char *export_root; /* evidockctl export writes only below this directory */
        /* [retention] ordinary, evidence_after_close, categories (docs/lifecycle.md) */
        EvdRetentionPolicy retention;
        /* [disc] burn-to-disc jobs (docs/disc-format.md) */
        char *disc_drives;    /* space-separated drives evidockd burns on: /dev/srN, stdio:FILE, dir:DIR */
        char *disc_media;     /* default media type of a job: cd, dvd, dvd-dl, bd25, bd50, bd100 or a size */
        unsigned disc_copies; /* identical copies of every disc */
        char *disc_work_dir;  /* staging of the small files of a disc being burned */
        char *disc_xorriso;   /* the xorriso program */
} EvdConfig;

/* Fills defaults (no file read). */
int evd_config_init(EvdConfig *c);

/* Reads path over the defaults. -ENOENT if missing and !must_exist is not an error (returns 0). */
int evd_config_load(EvdConfig *c, const char *path, bool must_exist, EvdError *err);

void evd_config_clear(EvdConfig *c);

/* Helpers shared with evidockctl option parsing. */
int evd_parse_duration_us(const char *s, int64_t *ret); /* "24h", "90s", "2m", "500ms", "1d" */
int evd_parse_size_bytes(const char *s, uint64_t *ret); /* "2G", "512M", "100K", "123" */
int evd_parse_bool(const char *s, bool *ret);           /* yes/no/true/false/1/0/on/off */

struct EvdIngestOptions;
/* Fills the ingest options that come from the configuration (callers add events, cancel, case). The
 * strings are borrowed from c. */
void evd_config_ingest_options(const EvdConfig *c, struct EvdIngestOptions *o);

#define EVD_DEFAULT_CONFIG_FILE EVD_SYSCONFDIR "/evidock.conf"
