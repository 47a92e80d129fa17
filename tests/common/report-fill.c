/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "pg.h"
#include "report-fill.h"

char *test_report_fill_sql(int64_t since_us, int64_t until_us, int devices, int64_t n)
{
        if (devices < 1 || n < 1 || until_us <= since_us)
                return NULL;
        int64_t step_us = (until_us - since_us) / n;
        size_t size = 8192;
        char *sql = malloc(size);
        if (!sql)
                return NULL;
        snprintf(sql, size,
                 "BEGIN;\n"
                 "CREATE TEMP TABLE fill_param AS SELECT to_timestamp(%" PRId64 " / 1e6) AS since,\n"
                 "       %d AS devices, %" PRId64 "::bigint AS n, %" PRId64 "::bigint AS step;\n"
                 "INSERT INTO device_events (device_id, event, officer_id, unit_code, suite, "
                 "public_key_pem, key_id)\n"
                 "SELECT 'RC' || lpad(d::text, 5, '0'), 'enroll', 'O' || lpad(d::text, 4, '0'),\n"
                 "       CASE WHEN d %% 2 = 0 THEN '320100000001' ELSE '320100000002' END,\n"
                 "       'ed25519-sha256', 'pem', 'kid'\n"
                 "FROM fill_param, generate_series(1, devices) d;\n"
                 "INSERT INTO device_events (device_id, event, officer_id, unit_code, suite, "
                 "public_key_pem, key_id)\n"
                 "VALUES ('RX00001', 'enroll', 'O9001', '320100000001', 'ed25519-sha256', 'pem', 'kid'),\n"
                 "       ('RX00002', 'enroll', 'O9002', '320100000001', 'ed25519-sha256', 'pem', 'kid');\n"
                 "INSERT INTO dockings (device_id, transport, docked_at)\n"
                 "SELECT 'RC' || lpad(d::text, 5, '0'), 'usb', since FROM fill_param, generate_series(1, "
                 "devices) d;\n"
                 "INSERT INTO dockings (device_id, transport, docked_at)\n"
                 "SELECT 'RX00002', 'usb', since - interval '10 days' FROM fill_param;\n"
                 "WITH r AS (INSERT INTO dockings (device_id, identity, transport, docked_at)\n"
                 "           SELECT NULL, 'USB 1234:5678 serial EVIL', 'usb', since + interval '1 hour'\n"
                 "           FROM fill_param RETURNING id)\n"
                 "INSERT INTO findings (docking_id, verdict, detail) SELECT id, 'NOT_ENROLLED', 'synthetic' "
                 "FROM r;\n"
                 "INSERT INTO files (docking_id, device_id, officer_id, seq, session, method, case_number,\n"
                 "                   recorded_start, recorded_end, tz_minutes, ingested_at, stored_at, "
                 "within_24h,\n"
                 "                   size, sha256, record_hash, source_path, original_path, verdict, "
                 "retention_class)\n"
                 "SELECT dk.id, s.dev, s.officer, s.i, 1, 'video',\n"
                 "       CASE WHEN s.i %% 3 = 0 THEN 'CASE-' || (s.i %% 7) END,\n"
                 "       s.t, s.t + interval '10 minutes', 480,\n"
                 "       s.t + CASE WHEN s.late THEN interval '30 hours 10 minutes' ELSE interval '2 hours' "
                 "END,\n"
                 "       s.t + CASE WHEN s.late THEN interval '30 hours 10 minutes' ELSE interval '2 hours' "
                 "END,\n"
                 "       NOT s.late, 1000000 + s.i,\n"
                 "       encode(sha256(convert_to('c' || s.i, 'UTF8')), 'hex'),\n"
                 "       encode(sha256(convert_to('r' || s.i, 'UTF8')), 'hex'),\n"
                 "       convert_to('VIDEO/' || s.i || '.MP4', 'UTF8'), '/store/' || s.i,\n"
                 "       CASE WHEN s.i %% 50 = 0 THEN 'HASH_MISMATCH' ELSE 'INTACT' END, 'case'\n"
                 "FROM (SELECT i, 'RC' || lpad((i %% devices + 1)::text, 5, '0') AS dev,\n"
                 "             'O' || lpad((i %% devices + 1)::text, 4, '0') AS officer,\n"
                 "             since + (i * step) * interval '1 microsecond' AS t, i %% 10 = 0 AS late\n"
                 "      FROM fill_param, generate_series(0, n - 1) i) s\n"
                 "JOIN dockings dk ON dk.device_id = s.dev;\n"
                 "INSERT INTO findings (docking_id, file_id, verdict, detail)\n"
                 "SELECT docking_id, id, verdict, 'synthetic' FROM files WHERE verdict <> 'INTACT';\n"
                 "COMMIT;\nANALYZE;\n",
                 since_us, devices, n, step_us);
        return sql;
}

int test_report_fill(const char *conninfo, int64_t since_us, int64_t until_us, int devices, int64_t n)
{
        char *sql = test_report_fill_sql(since_us, until_us, devices, n);
        if (!sql)
                return -1;
        char err[512] = "";
        int r = test_pg_exec(conninfo, sql, err, sizeof(err));
        if (r < 0)
                printf("# filling the report database: %s\n", err);
        free(sql);
        return r;
}

int test_report_fill_later_facts(const char *conninfo)
{
        char err[512] = "";
        int r = test_pg_exec(
            conninfo,
            "BEGIN;\n"
            "INSERT INTO case_associations (file_id, action, case_number, reason, actor, custody_event_id)\n"
            "SELECT id, 'assign', 'LINK-' || (id % 11), 'synthetic', 'bench', 1 FROM files WHERE id % 20 = "
            "0;\n"
            "INSERT INTO case_associations (file_id, action, case_number, supersedes, reason, actor,\n"
            "                               custody_event_id)\n"
            "SELECT file_id, 'unassign', case_number, id, 'synthetic', 'bench', 1 FROM case_associations\n"
            "WHERE file_id % 800 = 0;\n"
            "INSERT INTO file_marks (file_id, kind, action, reason_code, reason, actor, custody_event_id)\n"
            "SELECT id, 'long_term', 'set', 'dispute', 'synthetic', 'bench', 1 FROM files WHERE id % 100 = "
            "0;\n"
            "COMMIT;\nANALYZE case_associations, file_marks;\n",
            err, sizeof(err));
        if (r < 0)
                printf("# adding later facts to the report database: %s\n", err);
        return r;
}
