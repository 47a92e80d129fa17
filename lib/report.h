/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Supervision reports: the numbers a supervisor asks for (000:§19, 002:§16, 000:§17), computed by SQL in
 * the database (lib/db-report.c), handed back as plain data. Rendering (text, CSV, JSON, HTML) is the
 * caller's job (daemon/report-*.c).
 *
 * A period is [since, until) in microseconds since the epoch, UTC. A file belongs to the period by its
 * recording start (its ingest time when the recording time is unknown); a docking-level finding by the
 * docking's time. Days are UTC days.
 *
 * Every array is bounded (EVD_REPORT_MAX_*): a report never grows without limit with the database;
 * when a bound cuts a list, the *_truncated flag says so. Free everything with evd_report_free(). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "macro.h"
#include "types.h"

#define EVD_REPORT_MAX_DAYS     366u    /* a period longer than a year is refused (-EINVAL) */
#define EVD_REPORT_MAX_GROUPS   10000u  /* rows per grouping level (units, officers, recorders) */
#define EVD_REPORT_MAX_FINDINGS 100000u /* rows of the findings report */

typedef struct EvdDb EvdDb;

typedef enum EvdReportLevel {
        EVD_REPORT_TOTAL = 0,
        EVD_REPORT_UNIT,
        EVD_REPORT_OFFICER,
        EVD_REPORT_DEVICE,
        _EVD_REPORT_LEVEL_MAX,
} EvdReportLevel;

const char *evd_report_level_to_string(EvdReportLevel l); /* "total", "unit", "officer", "device" */

/* One line of the compliance table: all files of one unit, officer or recorder in the period. */
typedef struct EvdComplianceRow {
        EvdReportLevel level;
        char *key;          /* unit code / officer id / device id; "" where unknown; NULL for the total */
        int64_t recordings; /* files (recordings, photos, foreign files) */
        int64_t within_24h; /* stored within 24 hours of the recording's end (002:§16) */
        int64_t late;       /* not within 24 hours */
        int64_t worst_delay_us; /* longest recording end -> stored time among the late ones; 0 if none */
        int64_t with_findings;  /* files whose verdict is not INTACT */
        int64_t case_linked;    /* files with a current case (associated later, else the recorder's) */
        int64_t longterm_without_disc; /* marked long-term (002:§18), on no verified disc yet */
        int64_t bytes;
} EvdComplianceRow;

/* Findings of one verdict in the period. */
typedef struct EvdVerdictCount {
        EvdVerdict verdict;
        int64_t files;   /* findings on stored files */
        int64_t docking; /* docking-level findings (a gap, a missing file, a refusal...) */
} EvdVerdictCount;

/* Findings per recorder (refused recorders by what they presented). */
typedef struct EvdRecorderFindings {
        char *recorder;
        int64_t dockings;
        int64_t findings;
} EvdRecorderFindings;

/* One UTC day of the period. */
typedef struct EvdReportDay {
        int64_t day_us;      /* 00:00 UTC */
        int64_t recordings;  /* files recorded that day */
        int64_t late;        /* of those, not stored within 24 h */
        int64_t store_bytes; /* originals held at the end of the day (cumulative, all time) */
} EvdReportDay;

/* An enrolled recorder that has not docked for the given number of days (or never). */
typedef struct EvdSilentRecorder {
        char *device_id;
        char *officer_id;
        char *unit_code;        /* may be NULL */
        int64_t last_docked_us; /* 0: never docked */
} EvdSilentRecorder;

typedef struct EvdComplianceReport {
        int64_t since_us, until_us;
        int64_t silent_after_us; /* the "not docked for" threshold used */

        EvdComplianceRow *rows; /* ordered: total, then units, officers, devices, each by key */
        size_t n_rows;
        bool rows_truncated;

        EvdVerdictCount *verdicts; /* only verdicts that occurred, by verdict */
        size_t n_verdicts;

        EvdRecorderFindings *recorders; /* recorders with at least one finding, most findings first */
        size_t n_recorders;
        bool recorders_truncated;

        EvdReportDay *days; /* every day of the period, oldest first */
        size_t n_days;

        EvdSilentRecorder *silent; /* by last docking, oldest (never) first */
        size_t n_silent;
        bool silent_truncated;
} EvdComplianceReport;

typedef struct EvdReportQuery {
        int64_t since_us;
        int64_t until_us;
        int64_t silent_after_us; /* recorders not docked for this long are listed; 0: 3 days */
} EvdReportQuery;

/* Computes the compliance report. -EINVAL for an empty or reversed period or one over
 * EVD_REPORT_MAX_DAYS days. *ret is freed with evd_compliance_report_free(). */
int evd_report_compliance(EvdDb *db, const EvdReportQuery *q, EvdComplianceReport **ret, EvdError *err);
EvdComplianceReport *evd_compliance_report_free(EvdComplianceReport *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(EvdComplianceReport *, evd_compliance_report_free);

/* The 24-hour rate of a row in [0, 1]; 1 when it has no recordings. */
double evd_compliance_rate(const EvdComplianceRow *row);

/* ---- findings report: every finding of the period, for the person who must answer for it ---------- */

typedef struct EvdReportFinding {
        int64_t docked_us;
        int64_t docking_id;
        char *recorder;   /* device id, or what a refused recorder presented */
        char *officer_id; /* may be NULL */
        int64_t file_id;  /* 0: docking-level */
        char *file;       /* the file's path on the recorder (escaped, valid UTF-8); may be NULL */
        char *stored;     /* where the original is stored; may be NULL */
        EvdVerdict verdict;
        bool has_seq;
        int64_t seq;
        char *expected, *found, *detail; /* may be NULL */
} EvdReportFinding;

typedef struct EvdFindingsReport {
        int64_t since_us, until_us;
        EvdReportFinding *items; /* by docking time, then finding id */
        size_t n_items;
        bool truncated;
} EvdFindingsReport;

int evd_report_findings(EvdDb *db, const EvdReportQuery *q, EvdFindingsReport **ret, EvdError *err);
EvdFindingsReport *evd_findings_report_free(EvdFindingsReport *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(EvdFindingsReport *, evd_findings_report_free);
