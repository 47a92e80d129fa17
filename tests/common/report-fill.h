/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Synthetic evidence rows for the report tests and bench/bench-report.c, written by SQL as the test
 * cluster's superuser (no custody log: the reports do not read it). The pattern is fixed, so a test can
 * compute every expected number on its own:
 *
 *   devices  RC00001 .. RC<devices>, officer O0001 .., unit 320100000001 (even) / 320100000002 (odd);
 *            plus RX00001 (enrolled, never docked) and RX00002 (last docked 10 days before since).
 *   dockings one per device at since; one refused docking (identity "USB 1234:5678 serial EVIL")
 *            at since + 1 h with a NOT_ENROLLED finding.
 *   files    i = 0 .. n-1: device (i % devices) + 1, recorded at since + i * step (step = the period /
 *            n), late (stored 30 h after its end) when i % 10 == 0, verdict HASH_MISMATCH (with a
 *            finding) when i % 50 == 0, a case number when i % 3 == 0, size 1000000 + i bytes. */
#pragma once

#include <stdint.h>

/* The SQL that does it (caller frees); NULL for bad arguments. */
char *test_report_fill_sql(int64_t since_us, int64_t until_us, int devices, int64_t n);

int test_report_fill(const char *conninfo, int64_t since_us, int64_t until_us, int devices, int64_t n);

/* The later facts a year of use brings (bench-report): every 20th file linked to a case after ingest
 * (case_associations; every 40th of those taken out of its case again), every 100th marked long-term. */
int test_report_fill_later_facts(const char *conninfo);
