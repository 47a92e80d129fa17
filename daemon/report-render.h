/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Rendering of the supervision reports (lib/report.h) for evidockctl report: text for a terminal, CSV for a
 * spreadsheet, one self-contained HTML page with charts. The numbers all come from the library (SQL);
 * nothing here computes more than a percentage. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "report.h"

typedef struct EvdReportRenderOptions {
        double goal;          /* the 24-hour rate goal, 0..1 (e.g. 0.95) */
        int64_t generated_us; /* when the report was made (printed in it) */
        bool csv_bom;         /* CSV: start with a UTF-8 byte-order mark (for spreadsheet programs) */
} EvdReportRenderOptions;

/* "3h 05m", "2d 4h", "-" for 0. */
char *evd_report_format_duration(int64_t us, char *buf, size_t size);

int evd_report_render_text(FILE *f, const EvdComplianceReport *r, const EvdReportRenderOptions *o);
int evd_report_render_csv(FILE *f, const EvdComplianceReport *r, const EvdReportRenderOptions *o);
int evd_report_render_html(FILE *f, const EvdComplianceReport *r, const EvdFindingsReport *findings,
                           const EvdReportRenderOptions *o);

int evd_findings_render_text(FILE *f, const EvdFindingsReport *r);
int evd_findings_render_csv(FILE *f, const EvdFindingsReport *r, const EvdReportRenderOptions *o);
