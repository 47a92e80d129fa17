/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The supervision reports as text for a terminal: one table per grouping level, recorder text escaped. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "macro.h"
#include "path.h"
#include "report-render.h"

char *evd_report_format_duration(int64_t us, char *buf, size_t size)
{
        if (us <= 0) {
                snprintf(buf, size, "-");
                return buf;
        }
        int64_t min = us / 60000000, h = min / 60, d = h / 24;
        if (d >= 2)
                snprintf(buf, size, "%" PRId64 "d %" PRId64 "h", d, h % 24);
        else
                snprintf(buf, size, "%" PRId64 "h %02" PRId64 "m", h, min % 60);
        return buf;
}

/* "2024-06-10 08:00" in UTC. */
static void utc_label(int64_t us, char buf[static 32])
{
        time_t t = (time_t)(us / 1000000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(buf, 32, "%Y-%m-%d %H:%M", &tm);
}

/* Recorder-supplied text, with control characters and bidi overrides made visible. */
static const char *safe(const char *s, char *buf, size_t size)
{
        return s ? evd_path_escape(s, buf, size) : "-";
}

int evd_report_render_text(FILE *f, const EvdComplianceReport *r, const EvdReportRenderOptions *o)
{
        char a[32], b[32], esc[256];
        utc_label(r->since_us, a);
        utc_label(r->until_us, b);
        fprintf(f, "Compliance report %s .. %s UTC (goal: %.0f %% within 24 h)\n", a, b, o->goal * 100);
        static const EvdReportLevel order[] = {EVD_REPORT_TOTAL, EVD_REPORT_UNIT, EVD_REPORT_OFFICER,
                                               EVD_REPORT_DEVICE};
        for (size_t k = 0; k < ELEMENTSOF(order); k++) {
                fprintf(f, "\n%-16s %10s %10s %6s %8s %10s %9s %9s %10s\n", evd_report_level_to_string(order[k]),
                        "recordings", "within24h", "late", "rate", "worst", "findings", "with-case",
                        "lt-no-disc");
                for (size_t i = 0; i < r->n_rows; i++) {
                        const EvdComplianceRow *row = &r->rows[i];
                        if (row->level != order[k])
                                continue;
                        char delay[32];
                        double rate = evd_compliance_rate(row);
                        fprintf(f,
                                "%-16s %10" PRId64 " %10" PRId64 " %6" PRId64 " %7.1f%%%s %9s %9" PRId64
                                " %9" PRId64 " %9" PRId64 "\n",
                                row->key ? (row->key[0] ? safe(row->key, esc, sizeof(esc)) : "(unknown)")
                                         : "all",
                                row->recordings, row->within_24h, row->late, rate * 100,
                                rate + 1e-9 < o->goal ? "!" : " ",
                                evd_report_format_duration(row->worst_delay_us, delay, sizeof(delay)),
                                row->with_findings, row->case_linked, row->longterm_without_disc);
                }
        }
        if (r->rows_truncated)
                fprintf(f, "(only the first %u rows per level)\n", EVD_REPORT_MAX_GROUPS);

        fputs("\nFindings by verdict (on files / docking-level):\n", f);
        if (r->n_verdicts == 0)
                fputs("  none\n", f);
        for (size_t i = 0; i < r->n_verdicts; i++)
                fprintf(f, "  %-20s %6" PRId64 " %6" PRId64 "  %s\n",
                        evd_verdict_to_string(r->verdicts[i].verdict), r->verdicts[i].files,
                        r->verdicts[i].docking, evd_verdict_describe(r->verdicts[i].verdict));

        fprintf(f, "\nRecorders not docked for %.0f days:\n", (double)r->silent_after_us / 86400e6);
        if (r->n_silent == 0)
                fputs("  none\n", f);
        for (size_t i = 0; i < r->n_silent; i++) {
                const EvdSilentRecorder *s = &r->silent[i];
                char last[32] = "never";
                if (s->last_docked_us > 0)
                        utc_label(s->last_docked_us, last);
                char e1[64], e2[64];
                fprintf(f, "  %-15s officer %-10s last docked %s\n", safe(s->device_id, e1, sizeof(e1)),
                        safe(s->officer_id, e2, sizeof(e2)), last);
        }
        return ferror(f) ? -EIO : 0;
}

int evd_findings_render_text(FILE *f, const EvdFindingsReport *r)
{
        char a[32], b[32];
        utc_label(r->since_us, a);
        utc_label(r->until_us, b);
        fprintf(f, "Findings %s .. %s UTC: %zu%s\n", a, b, r->n_items,
                r->truncated ? " (cut at the bound)" : "");
        for (size_t i = 0; i < r->n_items; i++) {
                const EvdReportFinding *x = &r->items[i];
                char when[32], e1[128], e2[1100], e3[600];
                utc_label(x->docked_us, when);
                fprintf(f, "\n%s  docking %" PRId64 "  recorder %s  %s\n", when, x->docking_id,
                        safe(x->recorder, e1, sizeof(e1)), evd_verdict_to_string(x->verdict));
                if (x->file)
                        fprintf(f, "  file:     %s%s\n", safe(x->file, e2, sizeof(e2)),
                                x->stored ? "" : " (not stored)");
                if (x->has_seq)
                        fprintf(f, "  seq:      %" PRId64 "\n", x->seq);
                if (x->expected || x->found)
                        fprintf(f, "  expected: %s\n  found:    %s\n", safe(x->expected, e3, sizeof(e3)),
                                safe(x->found, e2, sizeof(e2)));
                if (x->detail)
                        fprintf(f, "  detail:   %s\n", safe(x->detail, e2, sizeof(e2)));
                fprintf(f, "  meaning:  %s\n", evd_verdict_describe(x->verdict));
        }
        return ferror(f) ? -EIO : 0;
}
