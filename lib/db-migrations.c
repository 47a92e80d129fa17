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

/* Migration 2: database roles (docs/operations.md, "Database roles"). Roles are cluster-wide and one
 * cluster may hold several evidock databases (and the tests' many), so each role is created only if
 * missing, and a concurrent creator is not an error. Group roles cannot log in: a site gives each person
 * or service its own LOGIN role and makes it a member of one group. This migration runs as the
 * connecting (superuser or CREATEROLE) role; every later one runs as evidock_owner (lib/db.c). */
/* clang-format off */
static const char migration_0002[] =
        "DO $$\n"
        "DECLARE r text;\n"
        "BEGIN\n"
        "        FOREACH r IN ARRAY ARRAY['evidock_owner', 'evidock_dock', 'evidock_admin', 'evidock_auditor',\n"
        "                                 'evidock_viewer'] LOOP\n"
        "                CONTINUE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r);\n"
        "                BEGIN\n"
        "                        EXECUTE format('CREATE ROLE %I NOLOGIN', r);\n"
        "                EXCEPTION\n"
        "                        WHEN duplicate_object OR unique_violation THEN NULL; /* created meanwhile */\n"
        "                        WHEN insufficient_privilege THEN\n"
        "                                RAISE EXCEPTION 'evidock: database role % does not exist and role % may not create it', r, session_user\n"
        "                                        USING ERRCODE = 'insufficient_privilege',\n"
        "                                              HINT = 'create the evidock roles first as a superuser (docs/operations.md, Database roles)';\n"
        "                END;\n"
        "        END LOOP;\n"
        /* PostgreSQL 15 gives nobody CREATE on schema public; the owner role needs it for later migrations
         * (unless it owns the database, which is what docs/operations.md recommends). */
        "        IF NOT has_schema_privilege('evidock_owner', 'public', 'CREATE') THEN\n"
        "                GRANT USAGE, CREATE ON SCHEMA public TO evidock_owner;\n"
        "        END IF;\n"
        "END\n"
        "$$;\n"

        /* The owner owns every object: nobody else can drop the append-only triggers or alter a table. */
        "ALTER FUNCTION evd_refuse_change() OWNER TO evidock_owner;\n"
        "DO $$\n"
        "DECLARE t text;\n"
        "BEGIN\n"
        "        FOREACH t IN ARRAY ARRAY['schema_migrations', 'device_events', 'dockings', 'docking_results',\n"
        "                                 'chain_heads', 'files', 'findings', 'custody_events'] LOOP\n"
        "                EXECUTE format('ALTER TABLE %I OWNER TO evidock_owner', t); /* with its sequence */\n"
        "                EXECUTE format('REVOKE ALL ON TABLE %I FROM PUBLIC', t);\n"
        "        END LOOP;\n"
        "END\n"
        "$$;\n"
        "ALTER VIEW devices_enrolled OWNER TO evidock_owner;\n"
        "REVOKE ALL ON TABLE devices_enrolled FROM PUBLIC;\n"

        /* Everybody may read the schema version (the library checks it on connecting). */
        "GRANT SELECT ON schema_migrations TO evidock_dock, evidock_admin, evidock_auditor, evidock_viewer;\n"

        /* The dock (evidockd): what ingest, the spool replay and reconciliation need, and nothing more. It
         * reads enrollment, never writes it; it writes no schema. */
        "GRANT SELECT ON device_events, devices_enrolled TO evidock_dock;\n"
        "GRANT SELECT, INSERT ON dockings, docking_results, chain_heads, files, findings, custody_events\n"
        "        TO evidock_dock;\n"
        "GRANT USAGE ON SEQUENCE dockings_id_seq, docking_results_id_seq, chain_heads_id_seq, files_id_seq,\n"
        "        findings_id_seq TO evidock_dock;\n"

        /* The admin: everything the dock may do, plus enrollment. Still append-only (the triggers). */
        "GRANT SELECT ON device_events, devices_enrolled, dockings, docking_results, chain_heads, files,\n"
        "        findings, custody_events TO evidock_admin;\n"
        "GRANT INSERT ON device_events, dockings, docking_results, chain_heads, files, findings, custody_events\n"
        "        TO evidock_admin;\n"
        "GRANT USAGE ON SEQUENCE device_events_id_seq, dockings_id_seq, docking_results_id_seq,\n"
        "        chain_heads_id_seq, files_id_seq, findings_id_seq TO evidock_admin;\n"

        /* The auditor reads everything, now and in every later migration, and changes nothing. */
        "GRANT SELECT ON device_events, devices_enrolled, dockings, docking_results, chain_heads, files,\n"
        "        findings, custody_events TO evidock_auditor;\n"
        "ALTER DEFAULT PRIVILEGES FOR ROLE evidock_owner IN SCHEMA public GRANT SELECT ON TABLES TO evidock_auditor;\n"

        /* The audit's cross-check looks up the events naming each file and docking. */
        "CREATE INDEX custody_events_file ON custody_events (file_id) WHERE file_id IS NOT NULL;\n"
        "CREATE INDEX custody_events_docking ON custody_events (docking_id) WHERE docking_id IS NOT NULL;\n";
/* clang-format on */

/* Migration 7: indexes for the supervision reports (lib/db-report.c). A file belongs to a report period by
 * its recording start, or its ingest time when that is unknown; findings and dockings by docking time;
 * "last docked" per recorder; the store use before a period. bench/bench-report.c measures them on a million files. */
/* clang-format off */
static const char migration_0007[] =
        "CREATE INDEX files_report_time ON files ((coalesce(recorded_start, ingested_at)));\n"
        "CREATE INDEX dockings_docked_at ON dockings (docked_at);\n"
        "CREATE INDEX dockings_device_docked ON dockings (device_id, docked_at);\n"
        /* Store use before a period: an index-only sum instead of reading every row. */
        "CREATE INDEX files_ingested_size ON files (ingested_at) INCLUDE (size);\n";
/* clang-format on */

/* Migration 6: optical-disc jobs (docs/disc-format.md, docs/database.md). A job's plan (which file goes
 * on which disc of the set) is fixed when it is queued, so a job that is resumed after a restart burns
 * exactly the discs it still lacks. Its state is the latest row of disc_job_events; every disc burned
 * (verified or failed) and every later check of a disc is its own row. */
/* clang-format off */
static const char migration_0006[] =
        "CREATE TABLE disc_jobs (\n"
        "        id bigserial PRIMARY KEY,\n"
        "        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),\n"
        "        requested_by text NOT NULL,\n"
        "        reason text NOT NULL DEFAULT '',\n"
        "        selector text NOT NULL,\n"
        "        case_numbers text NOT NULL DEFAULT '',\n"
        "        unit_code text,\n"
        "        media text NOT NULL CHECK (media ~ '^[a-z0-9-]{1,16}$'),\n"
        "        media_bytes bigint NOT NULL CHECK (media_bytes > 0),\n"
        "        copies integer NOT NULL CHECK (copies BETWEEN 1 AND 9),\n"
        "        parts integer NOT NULL CHECK (parts BETWEEN 1 AND 9999),\n"
        "        files integer NOT NULL CHECK (files >= 1),\n"
        "        payload_bytes bigint NOT NULL CHECK (payload_bytes >= 0),\n"
        "        group_id text NOT NULL UNIQUE\n"
        ");\n"
        "CREATE TABLE disc_job_files (\n"
        "        job_id bigint NOT NULL REFERENCES disc_jobs (id),\n"
        "        file_id bigint NOT NULL REFERENCES files (id),\n"
        "        part integer NOT NULL CHECK (part >= 1),\n"
        "        ord integer NOT NULL,\n"
        "        PRIMARY KEY (job_id, file_id)\n"
        ");\n"
        "CREATE INDEX disc_job_files_file ON disc_job_files (file_id);\n"
        "CREATE TABLE disc_job_events (\n"
        "        id bigserial PRIMARY KEY,\n"
        "        job_id bigint NOT NULL REFERENCES disc_jobs (id),\n"
        "        at timestamptz NOT NULL DEFAULT clock_timestamp(),\n"
        "        state text NOT NULL CHECK (state IN ('queued', 'waiting_media', 'burning', 'verifying',\n"
        "                                             'done', 'failed', 'cancelled')),\n"
        "        part integer,\n"
        "        copy integer,\n"
        "        drive text,\n"
        "        by_whom text NOT NULL DEFAULT '',\n"
        "        detail text NOT NULL DEFAULT ''\n"
        ");\n"
        "CREATE INDEX disc_job_events_job ON disc_job_events (job_id, id);\n"
        "CREATE VIEW disc_job_state AS\n"
        "        SELECT DISTINCT ON (job_id) job_id, id AS event_id, at, state, part, copy, drive, detail\n"
        "        FROM disc_job_events ORDER BY job_id, id DESC;\n"
        /* One row per disc of a set, written when it is first built: what goes on it is frozen here (the
         * custody log up to custody_upto, the Bagging-Date), so that every copy is bit-identical. */
        "CREATE TABLE disc_parts (\n"
        "        id bigserial PRIMARY KEY,\n"
        "        job_id bigint NOT NULL REFERENCES disc_jobs (id),\n"
        "        part integer NOT NULL CHECK (part >= 1),\n"
        "        label text NOT NULL UNIQUE CHECK (label ~ '^[A-Za-z0-9_-]{1,64}$'),\n"
        "        volume_id text NOT NULL CHECK (volume_id ~ '^[A-Z0-9_]{1,32}$'),\n"
        "        custody_upto bigint NOT NULL,\n"
        "        bagging_date date NOT NULL,\n"
        "        snapshot_at timestamptz NOT NULL,\n"
        "        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),\n"
        "        UNIQUE (job_id, part)\n"
        ");\n"
        /* Every file on a disc (payload and tag files) with the SHA-256 a read-back must find. */
        "CREATE TABLE disc_part_files (\n"
        "        part_id bigint NOT NULL REFERENCES disc_parts (id),\n"
        "        path text NOT NULL,\n"
        "        size bigint NOT NULL CHECK (size >= 0),\n"
        "        sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),\n"
        "        file_id bigint REFERENCES files (id),\n"
        "        role text NOT NULL CHECK (role IN ('original', 'archive', 'tag', 'meta')),\n"
        "        PRIMARY KEY (part_id, path)\n"
        ");\n"
        "CREATE INDEX disc_part_files_file ON disc_part_files (file_id) WHERE file_id IS NOT NULL;\n"
        /* A disc burned: verified (read back completely and matching) or failed. */
        "CREATE TABLE discs (\n"
        "        id bigserial PRIMARY KEY,\n"
        "        job_id bigint NOT NULL REFERENCES disc_jobs (id),\n"
        "        part_id bigint NOT NULL REFERENCES disc_parts (id),\n"
        "        copy integer NOT NULL CHECK (copy >= 1),\n"
        "        outcome text NOT NULL CHECK (outcome IN ('verified', 'failed')),\n"
        "        drive text NOT NULL,\n"
        "        media text NOT NULL,\n"
        "        image_sha256 text CHECK (image_sha256 ~ '^[0-9a-f]{64}$'),\n"
        "        image_blocks bigint,\n"
        "        files_checked integer NOT NULL DEFAULT 0,\n"
        "        files_bad integer NOT NULL DEFAULT 0,\n"
        "        burned_at timestamptz,\n"
        "        verified_at timestamptz,\n"
        "        by_whom text NOT NULL,\n"
        "        detail text NOT NULL DEFAULT '',\n"
        "        recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),\n"
        "        CHECK (outcome <> 'verified' OR (image_sha256 IS NOT NULL AND verified_at IS NOT NULL))\n"
        ");\n"
        "CREATE UNIQUE INDEX discs_verified_once ON discs (part_id, copy) WHERE outcome = 'verified';\n"
        /* Later checks of a disc or image (evidockctl disc verify: fixity audits). */
        "CREATE TABLE disc_checks (\n"
        "        id bigserial PRIMARY KEY,\n"
        "        part_id bigint REFERENCES disc_parts (id),\n"
        "        source text NOT NULL,\n"
        "        outcome text NOT NULL CHECK (outcome IN ('ok', 'mismatch', 'unknown_disc', 'unreadable')),\n"
        "        image_sha256 text CHECK (image_sha256 ~ '^[0-9a-f]{64}$'),\n"
        "        files_checked integer NOT NULL DEFAULT 0,\n"
        "        files_bad integer NOT NULL DEFAULT 0,\n"
        "        by_whom text NOT NULL,\n"
        "        detail text NOT NULL DEFAULT '',\n"
        "        at timestamptz NOT NULL DEFAULT clock_timestamp()\n"
        ");\n"
        /* A file is retained on disc once a verified disc holds it. */
        "CREATE VIEW disc_retained_files AS\n"
        "        SELECT pf.file_id, d.id AS disc_id, d.job_id, p.label, d.copy, d.verified_at\n"
        "        FROM disc_part_files pf JOIN disc_parts p ON p.id = pf.part_id\n"
        "        JOIN discs d ON d.part_id = p.id AND d.outcome = 'verified'\n"
        "        WHERE pf.file_id IS NOT NULL AND pf.role = 'original';\n"
        "DO $$\n"
        "DECLARE t text;\n"
        "BEGIN\n"
        "        FOREACH t IN ARRAY ARRAY['disc_jobs', 'disc_job_files', 'disc_job_events', 'disc_parts',\n"
        "                                 'disc_part_files', 'discs', 'disc_checks'] LOOP\n"
        "                EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I\n"
        "                                FOR EACH ROW EXECUTE FUNCTION evd_refuse_change()',\n"
        "                               t || '_append_only', t);\n"
        "                EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I\n"
        "                                FOR EACH STATEMENT EXECUTE FUNCTION evd_refuse_change()',\n"
        "                               t || '_no_truncate', t);\n"
        "                IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'evidock_admin') THEN\n"
        "                        EXECUTE format('GRANT SELECT, INSERT ON %I TO evidock_admin, evidock_dock', t);\n"
        "                        EXECUTE format('GRANT SELECT ON %I TO evidock_auditor', t);\n"
        "                END IF;\n"
        "        END LOOP;\n"
        "        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'evidock_admin') THEN\n"
        "                GRANT SELECT ON disc_job_state, disc_retained_files TO evidock_admin, evidock_dock,\n"
        "                        evidock_auditor;\n"
        "                GRANT USAGE ON SEQUENCE disc_jobs_id_seq, disc_job_events_id_seq, disc_parts_id_seq,\n"
        "                        discs_id_seq, disc_checks_id_seq TO evidock_admin, evidock_dock;\n"
        "        END IF;\n"
        "END\n"
        "$$;\n";
/* clang-format on */

/* Migration 4 (issue 9): later facts about a stored recording (lib/db-links.h). A record found for a
 * recording stored without one, and a second version of a stored sequence number, are rows here (plus
 * findings and custody events), never changes to the files row. */
/* clang-format off */
static const char migration_0004[] =
        "CREATE TABLE file_links (\n"
        "        id bigserial PRIMARY KEY,\n"
        "        docking_id bigint NOT NULL REFERENCES dockings (id),\n"
        "        device_id text NOT NULL,\n"
        "        file_id bigint NOT NULL REFERENCES files (id),\n"
        "        relation text NOT NULL CHECK (relation IN ('record_found', 'conflict')),\n"
        "        other_file_id bigint REFERENCES files (id),\n"
        "        seq bigint CHECK (seq >= 0),\n"
        "        record_hash text CHECK (record_hash ~ '^[0-9a-f]{64}$'),\n"
        "        chain_record text,\n"
        "        verdict text NOT NULL CHECK (verdict ~ '^[A-Z][A-Z_]*$'),\n"
        "        detail text,\n"
        "        at timestamptz NOT NULL DEFAULT clock_timestamp(),\n"
        "        CHECK (relation <> 'record_found' OR record_hash IS NOT NULL),\n"
        "        CHECK (relation <> 'conflict' OR other_file_id IS NOT NULL)\n"
        ");\n"
        /* a record names one recording: linked once */
        "CREATE UNIQUE INDEX file_links_record_once ON file_links (device_id, record_hash)\n"
        "        WHERE relation = 'record_found';\n"
        "CREATE INDEX file_links_file ON file_links (file_id);\n"
        "CREATE INDEX file_links_device_seq ON file_links (device_id, seq);\n"
        "CREATE TRIGGER file_links_append_only BEFORE UPDATE OR DELETE ON file_links\n"
        "        FOR EACH ROW EXECUTE FUNCTION evd_refuse_change();\n"
        "CREATE TRIGGER file_links_no_truncate BEFORE TRUNCATE ON file_links\n"
        "        FOR EACH STATEMENT EXECUTE FUNCTION evd_refuse_change();\n"
        /* the roles of migration 2, where they exist: ingest (and the admin) append, the auditor reads */
        "DO $$\n"
        "BEGIN\n"
        "        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'evidock_dock') THEN\n"
        "                GRANT SELECT, INSERT ON file_links TO evidock_dock;\n"
        "                GRANT USAGE ON SEQUENCE file_links_id_seq TO evidock_dock;\n"
        "        END IF;\n"
        "        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'evidock_admin') THEN\n"
        "                GRANT SELECT, INSERT ON file_links TO evidock_admin;\n"
        "                GRANT USAGE ON SEQUENCE file_links_id_seq TO evidock_admin;\n"
        "        END IF;\n"
        "        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'evidock_auditor') THEN\n"
        "                GRANT SELECT ON file_links TO evidock_auditor;\n"
        "        END IF;\n"
        "END\n"
        "$$;\n";
/* clang-format on */

/* Migration 3 (record): one device-ID rule everywhere, the documented one (docs/architecture.md,
 * "Identify"; lib/device-id.h): 1 to 15 ASCII letters or digits. Migration 1 allowed exactly 7, so a
 * recorder presenting another length could be neither looked up nor refused on the record. */
/* clang-format off */
static const char migration_0003[] =
        "ALTER TABLE device_events DROP CONSTRAINT device_events_device_id_check;\n"
        "ALTER TABLE device_events ADD CONSTRAINT device_events_device_id_check\n"
        "        CHECK (device_id ~ '^[A-Za-z0-9]{1,15}$');\n";
/* clang-format on */

static const EvdDbMigration migrations[] = {
    {1, "initial schema", migration_0001},
    {2, "database roles and privileges", migration_0002},
    {3, "device ids of 1 to 15 letters or digits", migration_0003},
    {4, "later facts about stored recordings (file_links)", migration_0004},
    {6, "optical disc jobs", migration_0006},
    {7, "report indexes", migration_0007},
};

const EvdDbMigration *evd_db_migrations(size_t *ret_n)
{
        *ret_n = ELEMENTSOF(migrations);
        return migrations;
}
