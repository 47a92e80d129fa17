/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The compliance report as one self-contained HTML page: inline CSS and inline SVG charts, no script, no
 * network, no external file, so it opens from a USB stick or a disc on any browser. Charts where a
 * supervisor would rather look than read: recordings per day with the late ones, the 24-hour rate per
 * officer against the goal, findings per recorder, store use over time. Every number in a chart is also
 * in a table below it (a screen reader, a printout, a copy into a spreadsheet). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>

#include "macro.h"
#include "path.h"
#include "report-render.h"
#include "types.h"

#define CHART_W      720
#define BAR_ROW_H    22
#define LABEL_W      150
#define MAX_BAR_ROWS 40 /* officers/recorders drawn; the tables below list them all */

/* Text from the database may come from a recorder: control characters, bidi overrides and invalid UTF-8
 * are made visible by the library's escape (the same one as every other output), then HTML
 * metacharacters are escaped. */
static void html_text(FILE *f, const char *s)
{
        if (!s)
                return;
        size_t size = 4 * strlen(s) + 1;
        _cleanup_free_ char *esc = malloc(size);
        if (!esc) {
                fputs("(out of memory)", f);
                return;
        }
        evd_path_escape(s, esc, size);
        for (const char *p = esc; *p; p++)
                switch (*p) {
                case '<':
                        fputs("&lt;", f);
                        break;
                case '>':
                        fputs("&gt;", f);
                        break;
                case '&':
                        fputs("&amp;", f);
                        break;
                case '"':
                        fputs("&quot;", f);
                        break;
                case '\'':
                        fputs("&#39;", f);
                        break;
                default:
                        fputc(*p, f);
                }
}

static void day_label(int64_t us, char buf[static 16])
{
        time_t t = (time_t)(us / 1000000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(buf, 16, "%m-%d", &tm);
}

static void date_label(int64_t us, char buf[static 32])
{
        time_t t = (time_t)(us / 1000000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(buf, 32, "%Y-%m-%d %H:%M UTC", &tm);
}

/* A "nice" upper bound for an axis: 1, 2 or 5 times a power of ten, at least max. */
static double axis_max(double max)
{
        if (max <= 0)
                return 1;
        double p = pow(10, floor(log10(max)));
        for (double m = 1; m <= 10; m = m == 1 ? 2 : m == 2 ? 5 : 10)
                if (m * p >= max)
                        return m * p;
        return 10 * p;
}

static void chart_daily(FILE *f, const EvdComplianceReport *r)
{
        const int h = 220, top = 20, bottom = 40, left = 50;
        int64_t max = 0;
        for (size_t i = 0; i < r->n_days; i++)
                if (r->days[i].recordings > max)
                        max = r->days[i].recordings;
        double ymax = axis_max((double)max);
        double plot_h = h - top - bottom, plot_w = CHART_W - left - 10;
        double slot = r->n_days > 0 ? plot_w / (double)r->n_days : plot_w;

        fprintf(f,
                "<svg class=\"chart\" role=\"img\" aria-label=\"Recordings per day\" width=\"%d\" "
                "height=\"%d\" viewBox=\"0 0 %d %d\" xmlns=\"http://www.w3.org/2000/svg\">\n",
                CHART_W, h, CHART_W, h);
        for (int t = 0; t <= 4; t++) {
                double y = top + plot_h - plot_h * t / 4.0;
                fprintf(f,
                        "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" class=\"grid\"/>"
                        "<text x=\"%d\" y=\"%.1f\" class=\"axis\" text-anchor=\"end\">%.0f</text>\n",
                        left, y, CHART_W - 10, y, left - 6, y + 4, ymax * t / 4.0);
        }
        for (size_t i = 0; i < r->n_days; i++) {
                const EvdReportDay *d = &r->days[i];
                double x = left + slot * (double)i + slot * 0.15, w = slot * 0.7;
                double h_all = plot_h * (double)d->recordings / ymax;
                double h_late = plot_h * (double)d->late / ymax;
                double y0 = top + plot_h;
                fprintf(f,
                        "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" class=\"ok\">"
                        "<title>%" PRId64 " recordings, %" PRId64 " late</title></rect>\n",
                        x, y0 - h_all, w, h_all - h_late, d->recordings, d->late);
                if (d->late > 0)
                        fprintf(
                            f,
                            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" class=\"late\"/>\n",
                            x, y0 - h_late, w, h_late);
                /* Label every day for a week, fewer for longer periods. */
                size_t every = r->n_days <= 14 ? 1 : r->n_days / 10 + 1;
                if (i % every == 0) {
                        char lbl[16];
                        day_label(d->day_us, lbl);
                        fprintf(
                            f, "<text x=\"%.1f\" y=\"%d\" class=\"axis\" text-anchor=\"middle\">%s</text>\n",
                            x + w / 2, h - bottom + 16, lbl);
                }
        }
        fprintf(f,
                "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" class=\"ok\"/>"
                "<text x=\"%d\" y=\"%d\" class=\"axis\">within 24 h</text>"
                "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" class=\"late\"/>"
                "<text x=\"%d\" y=\"%d\" class=\"axis\">late</text>\n</svg>\n",
                left, h - 16, left + 16, h - 6, left + 110, h - 16, left + 126, h - 6);
}

static int cmp_rate(const void *a, const void *b)
{
        const EvdComplianceRow *x = *(const EvdComplianceRow *const *)a,
                               *y = *(const EvdComplianceRow *const *)b;
        double rx = evd_compliance_rate(x), ry = evd_compliance_rate(y);
        if (rx != ry)
                return rx < ry ? -1 : 1;
        return strcmp(x->key, y->key);
}

/* The officers furthest below the goal first: the chart shows at most MAX_BAR_ROWS of them. */
static void chart_rates(FILE *f, const EvdComplianceReport *r, double goal)
{
        const EvdComplianceRow *rows[MAX_BAR_ROWS];
        size_t n_all = 0;
        for (size_t i = 0; i < r->n_rows; i++)
                n_all += r->rows[i].level == EVD_REPORT_OFFICER;
        _cleanup_free_ const EvdComplianceRow **all = calloc(n_all ? n_all : 1, sizeof(*all));
        if (!all) {
                fputs("<p>(out of memory)</p>\n", f);
                return;
        }
        size_t k = 0;
        for (size_t i = 0; i < r->n_rows; i++)
                if (r->rows[i].level == EVD_REPORT_OFFICER)
                        all[k++] = &r->rows[i];
        qsort(all, n_all, sizeof(*all), cmp_rate);
        size_t n = n_all < MAX_BAR_ROWS ? n_all : MAX_BAR_ROWS;
        memcpy(rows, all, n * sizeof(*rows));

        int h = 30 + (int)n * BAR_ROW_H + 20;
        double plot_w = CHART_W - LABEL_W - 60;
        fprintf(f,
                "<svg class=\"chart\" role=\"img\" aria-label=\"24-hour rate per officer\" width=\"%d\" "
                "height=\"%d\" viewBox=\"0 0 %d %d\" xmlns=\"http://www.w3.org/2000/svg\">\n",
                CHART_W, h, CHART_W, h);
        for (k = 0; k < n; k++) {
                const EvdComplianceRow *row = rows[k];
                double rate = evd_compliance_rate(row);
                double y = 20 + (double)k * BAR_ROW_H;
                fprintf(f, "<text x=\"%d\" y=\"%.1f\" class=\"label\" text-anchor=\"end\">", LABEL_W - 6,
                        y + 14);
                html_text(f, row->key[0] ? row->key : "(no officer)");
                fprintf(f,
                        "</text><rect x=\"%d\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" class=\"%s\">"
                        "<title>%.1f %%</title></rect>"
                        "<text x=\"%.1f\" y=\"%.1f\" class=\"axis\">%.1f %%</text>\n",
                        LABEL_W, y + 2, plot_w * rate, BAR_ROW_H - 6, rate + 1e-9 >= goal ? "ok" : "late",
                        rate * 100, LABEL_W + plot_w * rate + 4, y + 14, rate * 100);
        }
        double gx = LABEL_W + plot_w * goal;
        fprintf(
            f,
            "<line x1=\"%.1f\" y1=\"12\" x2=\"%.1f\" y2=\"%d\" class=\"goal\"/>"
            "<text x=\"%.1f\" y=\"10\" class=\"axis\" text-anchor=\"middle\">goal %.0f %%</text>\n</svg>\n",
            gx, gx, h - 10, gx, goal * 100);
        if (n_all > n)
                fprintf(f,
                        "<p>The %zu officers furthest below the goal; all %zu are in the table below.</p>\n",
                        n, n_all);
}

static void chart_recorders(FILE *f, const EvdComplianceReport *r)
{
        size_t n = r->n_recorders < MAX_BAR_ROWS ? r->n_recorders : MAX_BAR_ROWS;
        int64_t max = n > 0 ? r->recorders[0].findings : 0; /* most findings first */
        double xmax = axis_max((double)max);
        int h = 20 + (int)n * BAR_ROW_H + 10;
        double plot_w = CHART_W - LABEL_W - 60;
        fprintf(f,
                "<svg class=\"chart\" role=\"img\" aria-label=\"Findings per recorder\" width=\"%d\" "
                "height=\"%d\" viewBox=\"0 0 %d %d\" xmlns=\"http://www.w3.org/2000/svg\">\n",
                CHART_W, h, CHART_W, h);
        for (size_t i = 0; i < n; i++) {
                const EvdRecorderFindings *x = &r->recorders[i];
                double y = 10 + (double)i * BAR_ROW_H, w = plot_w * (double)x->findings / xmax;
                fprintf(f, "<text x=\"%d\" y=\"%.1f\" class=\"label\" text-anchor=\"end\">", LABEL_W - 6,
                        y + 14);
                html_text(f, x->recorder);
                fprintf(f,
                        "</text><rect x=\"%d\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" class=\"late\"/>"
                        "<text x=\"%.1f\" y=\"%.1f\" class=\"axis\">%" PRId64 "</text>\n",
                        LABEL_W, y + 2, w, BAR_ROW_H - 6, LABEL_W + w + 4, y + 14, x->findings);
        }
        fputs("</svg>\n", f);
}

static void chart_store(FILE *f, const EvdComplianceReport *r)
{
        const int h = 200, top = 20, bottom = 30, left = 70;
        int64_t max = 0;
        for (size_t i = 0; i < r->n_days; i++)
                if (r->days[i].store_bytes > max)
                        max = r->days[i].store_bytes;
        double gib = 1024.0 * 1024 * 1024;
        double ymax = axis_max((double)max / gib);
        double plot_h = h - top - bottom, plot_w = CHART_W - left - 10;
        fprintf(f,
                "<svg class=\"chart\" role=\"img\" aria-label=\"Store use over time\" width=\"%d\" "
                "height=\"%d\" viewBox=\"0 0 %d %d\" xmlns=\"http://www.w3.org/2000/svg\">\n",
                CHART_W, h, CHART_W, h);
        for (int t = 0; t <= 4; t++) {
                double y = top + plot_h - plot_h * t / 4.0;
                fprintf(f,
                        "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" class=\"grid\"/>"
                        "<text x=\"%d\" y=\"%.1f\" class=\"axis\" text-anchor=\"end\">%.*f GiB</text>\n",
                        left, y, CHART_W - 10, y, left - 6, y + 4, ymax >= 4 ? 0 : 2, ymax * t / 4.0);
        }
        fputs("<polyline class=\"store\" points=\"", f);
        for (size_t i = 0; i < r->n_days; i++) {
                double x =
                    left + (r->n_days > 1 ? plot_w * (double)i / (double)(r->n_days - 1) : plot_w / 2);
                double y = top + plot_h - plot_h * ((double)r->days[i].store_bytes / gib) / ymax;
                fprintf(f, "%.1f,%.1f ", x, y);
        }
        fputs("\"/>\n", f);
        if (r->n_days > 0) {
                char a[16], b[16];
                day_label(r->days[0].day_us, a);
                day_label(r->days[r->n_days - 1].day_us, b);
                fprintf(f,
                        "<text x=\"%d\" y=\"%d\" class=\"axis\">%s</text>"
                        "<text x=\"%d\" y=\"%d\" class=\"axis\" text-anchor=\"end\">%s</text>\n",
                        left, h - 8, a, CHART_W - 10, h - 8, b);
        }
        fputs("</svg>\n", f);
}

static void table_rows(FILE *f, const EvdComplianceReport *r, EvdReportLevel level, const char *title,
                       double goal)
{
        fprintf(f,
                "<h3>%s</h3>\n<table>\n<tr><th>%s</th><th>recordings</th><th>within 24 h</th><th>late</th>"
                "<th>rate</th><th>worst delay</th><th>with findings</th><th>with case</th><th>long-term, no "
                "verified disc</th></tr>\n",
                title, evd_report_level_to_string(level));
        for (size_t i = 0; i < r->n_rows; i++) {
                const EvdComplianceRow *row = &r->rows[i];
                if (row->level != level)
                        continue;
                double rate = evd_compliance_rate(row);
                char delay[32];
                evd_report_format_duration(row->worst_delay_us, delay, sizeof(delay));
                fputs("<tr><td>", f);
                html_text(f, row->key ? (row->key[0] ? row->key : "(unknown)") : "all");
                fprintf(f,
                        "</td><td>%" PRId64 "</td><td>%" PRId64 "</td><td%s>%" PRId64 "</td>"
                        "<td%s>%.1f %%</td><td>%s</td><td>%" PRId64 "</td><td>%" PRId64 "</td><td%s>%" PRId64
                        "</td></tr>\n",
                        row->recordings, row->within_24h, row->late > 0 ? " class=\"bad\"" : "", row->late,
                        rate + 1e-9 < goal ? " class=\"bad\"" : "", rate * 100, row->late > 0 ? delay : "-",
                        row->with_findings, row->case_linked,
                        row->longterm_without_disc > 0 ? " class=\"bad\"" : "", row->longterm_without_disc);
        }
        fputs("</table>\n", f);
}

int evd_report_render_html(FILE *f, const EvdComplianceReport *r, const EvdFindingsReport *findings,
                           const EvdReportRenderOptions *o)
{
        char since[32], until[32], now[32];
        date_label(r->since_us, since);
        date_label(r->until_us, until);
        date_label(o->generated_us, now);
        const EvdComplianceRow *total =
            r->n_rows > 0 && r->rows[0].level == EVD_REPORT_TOTAL ? &r->rows[0] : NULL;

        fputs("<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n"
              "<title>evidock compliance report · 合规报告</title>\n<style>\n"
              "body{font-family:sans-serif;margin:2em;color:#222;max-width:60em}\n"
              "table{border-collapse:collapse;margin:0.5em 0 1.5em}\n"
              "td,th{border:1px solid #bbb;padding:0.2em 0.6em;text-align:right}\n"
              "td:first-child,th:first-child{text-align:left}\n"
              "th{background:#eee}.bad{color:#b00;font-weight:bold}\n"
              ".kpi{display:inline-block;border:1px solid #bbb;padding:0.5em 1em;margin:0 1em 1em 0}\n"
              ".kpi b{display:block;font-size:1.6em}\n"
              "svg .ok{fill:#3a7d44}svg .late{fill:#c0392b}svg .grid{stroke:#ddd}\n"
              "svg .goal{stroke:#222;stroke-dasharray:4 3}svg .axis{font-size:11px;fill:#444}\n"
              "svg .label{font-size:12px;fill:#222}svg .store{fill:none;stroke:#2c5f8a;stroke-width:2}\n"
              "</style>\n</head>\n<body>\n",
              f);
        fprintf(f,
                "<h1>Compliance report · 执法记录合规报告</h1>\n<p>Period: %s &ndash; %s. Generated %s by "
                "evidock. "
                "Goal: %.0f %% of recordings stored within 24 hours of their end (002:&sect;16).</p>\n",
                since, until, now, o->goal * 100);
        if (total) {
                char delay[32];
                evd_report_format_duration(total->worst_delay_us, delay, sizeof(delay));
                fprintf(f,
                        "<div class=\"kpi\">recordings<b id=\"kpi-recordings\">%" PRId64 "</b></div>"
                        "<div class=\"kpi\">within 24 h<b id=\"kpi-rate\">%.1f %%</b></div>"
                        "<div class=\"kpi\">late<b id=\"kpi-late\">%" PRId64 "</b></div>"
                        "<div class=\"kpi\">worst delay<b>%s</b></div>"
                        "<div class=\"kpi\">with findings<b>%" PRId64 "</b></div>"
                        "<div class=\"kpi\">recorders silent &ge; %.0f d<b>%zu</b></div>\n",
                        total->recordings, evd_compliance_rate(total) * 100, total->late,
                        total->late > 0 ? delay : "-", total->with_findings,
                        (double)r->silent_after_us / 86400e6, r->n_silent);
        }

        fputs("<h2>Recordings per day · 每日记录数</h2>\n", f);
        chart_daily(f, r);
        fputs("<h2>24-hour rate per officer · 民警24小时存储率</h2>\n", f);
        chart_rates(f, r, o->goal);
        fputs("<h2>Findings per recorder · 各记录仪异常</h2>\n", f);
        if (r->n_recorders == 0)
                fputs("<p>No findings in this period.</p>\n", f);
        else
                chart_recorders(f, r);
        fputs("<h2>Store use · 存储使用</h2>\n", f);
        chart_store(f, r);

        fputs("<h2>Tables · 明细</h2>\n", f);
        table_rows(f, r, EVD_REPORT_UNIT, "Per unit", o->goal);
        table_rows(f, r, EVD_REPORT_OFFICER, "Per officer", o->goal);
        table_rows(f, r, EVD_REPORT_DEVICE, "Per recorder", o->goal);
        if (r->rows_truncated)
                fprintf(f, "<p class=\"bad\">Only the first %u rows per level are shown.</p>\n",
                        EVD_REPORT_MAX_GROUPS);

        fputs("<h3>Findings by verdict</h3>\n<table>\n<tr><th>verdict</th><th>on files</th>"
              "<th>docking-level</th><th>meaning</th></tr>\n",
              f);
        for (size_t i = 0; i < r->n_verdicts; i++)
                fprintf(f, "<tr><td>%s</td><td>%" PRId64 "</td><td>%" PRId64 "</td><td>%s</td></tr>\n",
                        evd_verdict_to_string(r->verdicts[i].verdict), r->verdicts[i].files,
                        r->verdicts[i].docking, evd_verdict_describe(r->verdicts[i].verdict));
        fputs("</table>\n", f);

        fprintf(f, "<h3>Recorders not docked for %.0f days</h3>\n", (double)r->silent_after_us / 86400e6);
        if (r->n_silent == 0)
                fputs("<p>None.</p>\n", f);
        else {
                fputs(
                    "<table>\n<tr><th>recorder</th><th>officer</th><th>unit</th><th>last docked</th></tr>\n",
                    f);
                for (size_t i = 0; i < r->n_silent; i++) {
                        const EvdSilentRecorder *s = &r->silent[i];
                        char last[32] = "never";
                        if (s->last_docked_us > 0)
                                date_label(s->last_docked_us, last);
                        fputs("<tr><td>", f);
                        html_text(f, s->device_id);
                        fputs("</td><td>", f);
                        html_text(f, s->officer_id);
                        fputs("</td><td>", f);
                        html_text(f, s->unit_code);
                        fprintf(f, "</td><td>%s</td></tr>\n", last);
                }
                fputs("</table>\n", f);
        }

        if (findings) {
                fprintf(f, "<h2>Findings · 异常清单</h2>\n<p>%zu finding(s)%s.</p>\n", findings->n_items,
                        findings->truncated ? " (list cut at the bound)" : "");
                if (findings->n_items > 0)
                        fputs("<table>\n<tr><th>docked</th><th>recorder</th><th>officer</th><th>file</th>"
                              "<th>verdict</th><th>detail</th></tr>\n",
                              f);
                for (size_t i = 0; i < findings->n_items; i++) {
                        const EvdReportFinding *x = &findings->items[i];
                        char when[32];
                        date_label(x->docked_us, when);
                        fprintf(f, "<tr><td>%s</td><td>", when);
                        html_text(f, x->recorder);
                        fputs("</td><td>", f);
                        html_text(f, x->officer_id);
                        fputs("</td><td>", f);
                        html_text(f, x->file ? x->file : "(docking)");
                        fprintf(f, "</td><td>%s</td><td>", evd_verdict_to_string(x->verdict));
                        html_text(f, x->detail ? x->detail : evd_verdict_describe(x->verdict));
                        fputs("</td></tr>\n", f);
                }
                if (findings->n_items > 0)
                        fputs("</table>\n", f);
        }
        fputs("</body>\n</html>\n", f);
        return ferror(f) ? -EIO : 0;
}
