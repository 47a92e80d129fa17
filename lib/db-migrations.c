/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The database schema as numbered migrations, embedded so that the library needs no files at run time.
 * A migration is never edited once released: change the schema by appending a new one.
 * docs/database.md describes the tables. */
#include "db-internal.h"

/* Migration 1: the evidence tables, the append-only guard and the custody log. */
/* clang-format off */
static const char migration_0001[] =
        /* One function guards every evidence table. SQLSTATE EVD01 lets the library map it to -EPERM. */
        "CREATE FUNCTION evd_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n"
        "        RAISE EXCEPTION 'evidock: % on table %.% refused: evidence tables are append-only',\n"
        "                TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME\n"
        "                USING ERRCODE = 'EVD01',\n"
        "                      HINT = 'record a change as a new row; the latest row wins';\n"
        "END\n"
        "$$;\n"

        /* Enrollment history: 'enroll' and 'retire' rows; the latest row per device says its state. */
        "CREATE TABLE device_events (\n"
        "        id bigserial PRIMARY KEY,\n"
        "        device_id text NOT NULL CHECK (device_id ~ '^[A-Za-z0-9]{7}$'),\n"
        "        event text NOT NULL CHECK (event IN ('enroll', 'retire')),\n"
        "        officer_id text,\n"
        "        unit_code text,\n"
        "        suite text,\n"
        "        public_key_pem text,\n"
        "        key_id text,\n"
        "        reason text,\n"
        "        at timestamptz NOT NULL DEFAULT clock_timestamp(),\n"
        "        CHECK (event <> 'enroll' OR (officer_id IS NOT NULL AND suite IS NOT NULL\n"
        "                                     AND public_key_pem IS NOT NULL AND key_id IS NOT NULL))\n"
        ");\n"
        "CREATE INDEX device_events_device ON device_events (device_id, id);\n"
        "CREATE VIEW devices_enrolled AS\n"
        "        SELECT * FROM (SELECT DISTINCT ON (device_id) * FROM device_events\n"
        "                       ORDER BY device_id, id DESC) latest\n"
        "        WHERE event = 'enroll';\n"

        /* One row per docking (also refused ones: device_id NULL, identity says what was presented). */
        "CREATE TABLE dockings (\n"
        "        id bigserial PRIMARY KEY,\n"
        "        device_id text,\n"
        "        identity text,\n"
        "        transport text NOT NULL,\n"
        "        location text,\n"
        "        clock_offset_us bigint,\n"
        "        docked_at timestamptz NOT NULL\n"
        ");\n"
        "CREATE TABLE docking_results (\n"
        "        id bigserial PRIMARY KEY,\n"
        "        docking_id bigint NOT NULL UNIQUE REFERENCES dockings (id),\n"
        "        finished_at timestamptz NOT NULL,\n"
        "        files_seen integer NOT NULL,\n"
        "        files_ingested integer NOT NULL,\n"
        "        files_already integer NOT NULL,\n"
        "        files_quarantined integer NOT NULL,\n"
        "        verdict text NOT NULL CHECK (verdict ~ '^[A-Z][A-Z_]*$'),\n"
        "        summary text\n"
        ");\n"

        /* Verified chain heads; the latest row per device is the current head. */
        "CREATE TABLE chain_heads (\n"
        "        id bigserial PRIMARY KEY,\n"
        "        device_id text NOT NULL,\n"
        "        docking_id bigint NOT NULL REFERENCES dockings (id),\n"
        "        seq bigint NOT NULL CHECK (seq >= 0),\n"
        "        session bigint NOT NULL,\n"
        "        record_hash text NOT NULL CHECK (record_hash ~ '^[0-9a-f]{64}$'),\n"
        "        end_at timestamptz,\n"
        "        set_at timestamptz NOT NULL DEFAULT clock_timestamp()\n"
        ");\n"
        "CREATE INDEX chain_heads_device ON chain_heads (device_id, id);\n"

        "CREATE TABLE files (\n"
        "        id bigserial PRIMARY KEY,\n"
        "        docking_id bigint NOT NULL REFERENCES dockings (id),\n"
        "        device_id text NOT NULL,\n"
        "        officer_id text,\n"
        "        seq bigint CHECK (seq >= 0),\n"
        "        session bigint,\n"
        "        method text NOT NULL,\n"
        "        case_number text,\n"
        "        recorded_start timestamptz,\n"
        "        recorded_end timestamptz,\n"
        "        tz_minutes integer,\n"
        "        clock_offset_us bigint,\n"
        "        ingested_at timestamptz NOT NULL,\n"
        "        stored_at timestamptz NOT NULL,\n"
        "        within_24h boolean NOT NULL,\n"
        "        size bigint NOT NULL CHECK (size >= 0),\n"
        "        sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),\n"
        "        record_hash text CHECK (record_hash ~ '^[0-9a-f]{64}$'),\n"
        "        chain_record text,\n"
        "        source_path bytea NOT NULL,\n"
        "        original_path text NOT NULL,\n"
        "        archive_path text,\n"
        "        archive_sha256 text CHECK (archive_sha256 ~ '^[0-9a-f]{64}$'),\n"
        "        archive_format text,\n"
        "        packets_sha256 text CHECK (packets_sha256 ~ '^[0-9a-f]{64}$'),\n"
        "        verdict text NOT NULL CHECK (verdict ~ '^[A-Z][A-Z_]*$'),\n"
        "        confidentiality text NOT NULL DEFAULT 'normal',\n"
        "        retention_class text NOT NULL\n"
        ");\n"
        /* "Already ingested?": a chained file is known by its record, a foreign file by where it was and
         * what it contained. */
        "CREATE UNIQUE INDEX files_chained_once ON files (device_id, record_hash)\n"
        "        WHERE record_hash IS NOT NULL;\n"
        "CREATE UNIQUE INDEX files_foreign_once ON files (device_id, source_path, sha256)\n"
        "        WHERE record_hash IS NULL;\n"
        "CREATE INDEX files_ingested_at ON files (ingested_at, id);\n"
        "CREATE INDEX files_device_seq ON files (device_id, seq);\n"

        "CREATE TABLE findings (\n"
        "        id bigserial PRIMARY KEY,\n"
        "        docking_id bigint NOT NULL REFERENCES dockings (id),\n"
        "        file_id bigint REFERENCES files (id),\n"
        "        verdict text NOT NULL CHECK (verdict ~ '^[A-Z][A-Z_]*$'),\n"
        "        seq bigint,\n"
        "        expected text,\n"
        "        found text,\n"
        "        detail text\n"
        ");\n"
        "CREATE INDEX findings_file ON findings (file_id);\n"
        "CREATE INDEX findings_docking ON findings (docking_id);\n"

        /* The custody log: ids are gapless from 1, each hash covers the previous one (docs/database.md). */
        "CREATE TABLE custody_events (\n"
        "        id bigint PRIMARY KEY CHECK (id >= 1),\n"
        "        at timestamptz NOT NULL,\n"
        "        kind text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,31}$'),\n"
        "        device_id text,\n"
        "        docking_id bigint REFERENCES dockings (id),\n"
        "        file_id bigint REFERENCES files (id),\n"
        "        detail text NOT NULL DEFAULT '',\n"
        "        prev_hash text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),\n"
        "        hash text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$')\n"
        ");\n"

        "DO $$\n"
        "DECLARE t text;\n"
        "BEGIN\n"
        "        FOREACH t IN ARRAY ARRAY['device_events', 'dockings', 'docking_results', 'chain_heads',\n"
        "                                 'files', 'findings', 'custody_events'] LOOP\n"
        "                EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I\n"
        "                                FOR EACH ROW EXECUTE FUNCTION evd_refuse_change()',\n"
        "                               t || '_append_only', t);\n"
        "                EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I\n"
        "                                FOR EACH STATEMENT EXECUTE FUNCTION evd_refuse_change()',\n"
        "                               t || '_no_truncate', t);\n"
        "        END LOOP;\n"
        "END\n"
        "$$;\n";
/* clang-format on */

/* Migration 7: indexes for the supervision reports (lib/db-report.c). A file belongs to a report period by
 * its recording start, or its ingest time when that is unknown; findings and dockings by docking time;
 * "last docked" per recorder. bench/bench-report.c measures them on a million files. */
/* clang-format off */
static const char migration_0007[] =
        "CREATE INDEX files_report_time ON files ((coalesce(recorded_start, ingested_at)));\n"
        "CREATE INDEX dockings_docked_at ON dockings (docked_at);\n"
        "CREATE INDEX dockings_device_docked ON dockings (device_id, docked_at);\n";
/* clang-format on */

static const EvdDbMigration migrations[] = {
    {1, "initial schema", migration_0001},
    {7, "report indexes", migration_0007},
};

const EvdDbMigration *evd_db_migrations(size_t *ret_n)
{
        *ret_n = ELEMENTSOF(migrations);
        return migrations;
}
