/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small output helpers shared by evidockctl and evidockd: JSON strings, times. */
#pragma once

#include <stdint.h>
#include <stdio.h>

/* Writes s as a JSON string literal (with quotes); NULL as null. Invalid UTF-8 bytes become \u00XX
 * escapes of the byte so the output is always valid JSON. */
void json_string(FILE *f, const char *s);

/* "2026-11-22T08:00:00+08:00" for utc_us in the given UTC offset (minutes). buf >= 40 bytes. */
char *format_time_tz(int64_t utc_us, int tz_minutes, char *buf, size_t size);
/* The same in the dock's local time zone. */
char *format_time_local(int64_t utc_us, char *buf, size_t size);

/* A byte count for people, in binary units: "512 B", "1.5 KiB", "4.7 GiB". buf >= 16 bytes. */
char *format_size(uint64_t bytes, char *buf, size_t size);

/* A libpq conninfo or URI for logs and `evidockctl config`, as libpq parses it (key=value form), with
 * the password and every other secret option shown as "***"; a string libpq cannot parse is not shown. */
void mask_password(const char *url, char *out, size_t size);

/* Parses "2026-11-22T08:00:00+08:00", "2026-11-22 08:00", "2026-11-22" (local midnight) or a relative
 * duration "24h" / "30m" / "7d" meaning that long ago. */
int parse_time_arg(const char *s, int64_t *ret_us);

/* Text from a recorder or the database, shown on a terminal: evd_text_escape() (lib/text.h) without
 * escaping backslashes. NULL gives "(null)". The result lives until TEXT_SHOWN_SLOTS more calls on this
 * thread; longer text is cut at TEXT_SHOWN_MAX - 1 bytes. */
#define TEXT_SHOWN_SLOTS 16u
#define TEXT_SHOWN_MAX   4096u
const char *text_shown(const char *s);
