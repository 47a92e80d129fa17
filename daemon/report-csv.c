/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The supervision reports as CSV (RFC 4180, UTF-8, optional byte-order mark for spreadsheet programs).
 * A cell starting with = + - @ is prefixed with ' so that a spreadsheet never runs recorder text as a
 * formula. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "report-render.h"

static void csv_cell(FILE *f, const char *s)
{
        if (!s)
                return;
        fputc('"', f);
        if (strchr("=+-@\t\r", s[0]) && s[0])
                fputc('\'', f);
        for (const char *p = s; *p; p++) {
                if (*p == '"')
                        fputc('"', f);
                fputc(*p, f);
        }
        fputc('"', f);
}

static void iso_utc(int64_t us, char buf[static 32])
{
        time_t t = (time_t)(us / 1000000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int evd_report_render_csv(FILE *f, const EvdComplianceReport *r, const EvdReportRenderOptions *o)
{
        if (o->csv_bom)
                fputs("\xEF\xBB\xBF", f);
        fputs("level,key,recordings,within_24h,late,rate,worst_delay_s,with_findings,case_linked,bytes,"
              "longterm_without_disc\r\n",
              f);
        for (size_t i = 0; i < r->n_rows; i++) {
                const EvdComplianceRow *row = &r->rows[i];
                fprintf(f, "%s,", evd_report_level_to_string(row->level));
                csv_cell(f, row->key);
                fprintf(f,
                        ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%.4f,%" PRId64 ",%" PRId64 ",%" PRId64
                        ",%" PRId64 ",%" PRId64 "\r\n",
                        row->recordings, row->within_24h, row->late, evd_compliance_rate(row),
                        row->worst_delay_us / 1000000, row->with_findings, row->case_linked, row->bytes,
                        row->longterm_without_disc);
        }
        return ferror(f) ? -EIO : 0;
}

int evd_findings_render_csv(FILE *f, const EvdFindingsReport *r, const EvdReportRenderOptions *o)
{
        if (o->csv_bom)
                fputs("\xEF\xBB\xBF", f);
        fputs("docked_at,docking_id,recorder,officer,file_id,file,verdict,seq,expected,found,detail,"
              "meaning\r\n",
              f);
        for (size_t i = 0; i < r->n_items; i++) {
                const EvdReportFinding *x = &r->items[i];
                char when[32];
                iso_utc(x->docked_us, when);
                fprintf(f, "%s,%" PRId64 ",", when, x->docking_id);
                csv_cell(f, x->recorder);
                fputc(',', f);
                csv_cell(f, x->officer_id);
                fprintf(f, ",%" PRId64 ",", x->file_id);
                csv_cell(f, x->file);
                fprintf(f, ",%s,", evd_verdict_to_string(x->verdict));
                if (x->has_seq)
                        fprintf(f, "%" PRId64, x->seq);
                fputc(',', f);
                csv_cell(f, x->expected);
                fputc(',', f);
                csv_cell(f, x->found);
                fputc(',', f);
                csv_cell(f, x->detail);
                fputc(',', f);
                csv_cell(f, evd_verdict_describe(x->verdict));
                fputs("\r\n", f);
        }
        return ferror(f) ? -EIO : 0;
}
