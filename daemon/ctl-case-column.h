/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The current case of each file of a listing (evidockctl log, chain), beside the one the recorder gave
 * at ingest (which the archive copy is tagged with): never a silent mismatch (docs/lifecycle.md). */
#pragma once

#include <json-c/json.h>

#include "db.h"

typedef struct CtlCaseColumn {
        char **current;  /* NULL entry: in no case */
        char **recorder; /* the files row's case_number */
        size_t n;
} CtlCaseColumn;

/* Loads it for rows[0..n). On error, says so on stderr and leaves the column empty (n 0): the listing
 * then shows the recorder's case only. */
void ctl_case_column_load(CtlCaseColumn *col, EvdDb *db, const EvdDbFileRow *rows, size_t n);
void ctl_case_column_clear(CtlCaseColumn *col);

/* "K-2", or "K-2 (recorder: REC-7)" / "none (recorder: REC-7)" when they differ; "-" for no case. */
const char *ctl_case_column_text(const CtlCaseColumn *col, size_t i, const EvdDbFileRow *row, char *buf,
                                 size_t size);
/* Adds "current_case" (and keeps "case_number", the recorder's) to a file row's JSON object. */
void ctl_case_column_json(const CtlCaseColumn *col, size_t i, json_object *row);
