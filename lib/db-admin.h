/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The dock administrator's views of the evidence database (evidockctl dockings, device list, and the
 * "is this recorder known at all" check behind every command that takes a device ID). Read-only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"

#define EVD_DB_ADMIN_MAX_ROWS 10000u /* a listing returns at most this many rows (then truncated) */

/* How a docking ended, from its rows. */
typedef enum EvdDockingOutcome {
        EVD_DOCKING_CLEAN,      /* finished, every file INTACT, nothing quarantined */
        EVD_DOCKING_FINDINGS,   /* finished with findings or quarantined files */
        EVD_DOCKING_STOPPED,    /* finished early: an error stopped it (files left for the next docking) */
        EVD_DOCKING_UNFINISHED, /* no result row: still running, or the dock crashed during it */
        EVD_DOCKING_REFUSED,    /* the recorder was not identified, not enrolled, or retired */
        _EVD_DOCKING_OUTCOME_MAX,
} EvdDockingOutcome;

const char *evd_docking_outcome_to_string(EvdDockingOutcome o); /* "clean", "findings", ... */

typedef struct EvdDbDockingRow {
        int64_t id;
        char *device_id;  /* NULL for a refused docking */
        char *identity;   /* what the recorder presented; may be NULL */
        char *officer_id; /* the enrollment's officer at the time of the docking; may be NULL */
        char *transport;  /* "usb", "dir", ... */
        char *location;   /* may be NULL */
        int64_t docked_us;
        bool finished;
        int64_t finished_us; /* when finished */
        bool has_clock_offset;
        int64_t clock_offset_us; /* recorder clock minus dock clock */
        unsigned files_seen, files_ingested, files_already, files_quarantined; /* 0 unless finished */
        unsigned files_recorded; /* file rows of this docking */
        unsigned files_late;     /* of those, outside the 24-hour window */
        unsigned findings;       /* finding rows of this docking (file and docking level) */
        char *verdict;           /* the worst verdict; NULL unless finished */
        char *summary;           /* the result's summary, or why it stopped / was refused; may be NULL */
        EvdDockingOutcome outcome;
} EvdDbDockingRow;

typedef struct EvdDbDockingFilter {
        bool has_since;
        int64_t since_us; /* docked at or after */
        bool has_until;
        int64_t until_us;      /* docked before */
        const char *device_id; /* NULL: all */
        bool failed;           /* only STOPPED and UNFINISHED */
        bool refused;          /* only REFUSED (with failed: either) */
        size_t max_rows;       /* 0 or more than EVD_DB_ADMIN_MAX_ROWS: EVD_DB_ADMIN_MAX_ROWS */
} EvdDbDockingFilter;

typedef struct EvdDbDockingList {
        EvdDbDockingRow *rows; /* by docking time, then id */
        size_t n_rows;
        bool truncated; /* more matched than max_rows: the newest are left out */
} EvdDbDockingList;

/* Lists dockings. filter may be NULL (all). Free with evd_db_docking_list_free(). */
int evd_db_dockings_query(EvdDb *db, const EvdDbDockingFilter *filter, EvdDbDockingList **ret_list,
                          EvdError *err);
EvdDbDockingList *evd_db_docking_list_free(EvdDbDockingList *list);
DEFINE_TRIVIAL_CLEANUP_FUNC(EvdDbDockingList *, evd_db_docking_list_free);

/* An enrolled recorder with what the database knows of its dockings. */
typedef struct EvdDbDeviceOverview {
        char *device_id;
        char *officer_id;
        char *unit_code; /* may be NULL */
        char *suite;
        char *key_id;
        int64_t enrolled_us;
        bool docked; /* ever docked (accepted or not finished; refused dockings carry no device) */
        int64_t last_docked_us;
        uint64_t dockings;
        uint64_t files;
        uint64_t files_late;
} EvdDbDeviceOverview;

/* Every enrolled (not retired) recorder, by device ID. Free with evd_db_device_overview_free(). */
int evd_db_device_overview(EvdDb *db, EvdDbDeviceOverview **ret_rows, size_t *ret_n, EvdError *err);
void evd_db_device_overview_free(EvdDbDeviceOverview *rows, size_t n);

/* 1 if device_id was ever enrolled or docked (retired recorders included), 0 if not. When it is not,
 * and ret_similar is not NULL, *ret_similar gets a known ID that differs only in letter case (caller
 * frees), or NULL. */
int evd_db_device_known(EvdDb *db, const char *device_id, char **ret_similar, EvdError *err);
