/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>

#include "db-disc.h"
#include "db-internal.h"

/* Advisory lock class of disc jobs ('disc'), job id as the second key: one worker per job. */
#define DISC_LOCK_CLASS "1684632419"
#define DISC_PAGE       1000 /* rows per page when streaming custody events */

static void copy_str(char *dst, size_t size, const PGresult *res, int row, int col)
{
        snprintf(dst, size, "%s", PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col));
}

/* ---- selection and jobs -------------------------------------------------------------------------- */

int evd_db_disc_select(EvdDb *db, const EvdDbDiscSelector *sel, EvdDbDiscCandidate **ret, size_t *ret_n,
                       EvdError *err)
{
        const char *what = "selecting recordings for a disc job";
        if (!sel->case_number && !sel->device_id && !sel->officer_id && !sel->has_since && !sel->has_until &&
            sel->n_file_ids == 0)
                return evd_error_set(err, -EINVAL, "%s: nothing selects the recordings", what);
        _cleanup_free_ char *ids = sel->n_file_ids ? db_id_array(sel->file_ids, sel->n_file_ids) : NULL;
        if (sel->n_file_ids && !ids)
                return evd_error_set(err, -ENOMEM, "%s: out of memory", what);
        DbParams p = {};
        db_param_text(&p, sel->case_number);
        db_param_text(&p, sel->device_id);
        db_param_text(&p, sel->officer_id);
        if (sel->has_since)
                db_param_time(&p, sel->since_us);
        else
                db_param_null(&p);
        if (sel->has_until)
                db_param_time(&p, sel->until_us);
        else
                db_param_null(&p);
        db_param_text(&p, ids);
        db_param_i64(&p, EVD_DB_DISC_MAX_FILES + 1);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(
            db, what,
            /* the case is the current one (associations after ingest), not the recorder's; the
             * files named by the recorder or an association first, then their current case */
            "SELECT f.id, f.size, f.original_path, f.archive_path, cc.current_case, f.device_id\n"
            "FROM files f JOIN files_case_current cc ON cc.file_id = f.id\n"
            "WHERE ($1::text IS NULL OR ((f.case_number = $1 OR f.id IN (SELECT a.file_id FROM\n"
            "        case_associations a WHERE a.case_number = $1)) AND cc.current_case = $1))\n"
            "  AND ($2::text IS NULL OR f.device_id = $2) AND ($3::text IS NULL OR f.officer_id = $3)\n"
            "  AND ($4::timestamptz IS NULL OR f.recorded_start >= $4)\n"
            "  AND ($5::timestamptz IS NULL OR f.recorded_start < $5)\n"
            "  AND ($6::int8[] IS NULL OR f.id = ANY($6::int8[]))\n"
            "ORDER BY f.recorded_start NULLS LAST, f.id LIMIT $7",
            &p, &res, err);
        if (r < 0)
                return r;
        int n = PQntuples(res);
        if (n == 0)
                return evd_error_set(err, -ENOENT, "%s: no recording matches", what);
        if ((size_t)n > EVD_DB_DISC_MAX_FILES)
                return evd_error_set(err, -E2BIG, "%s: more than %u recordings match; select fewer", what,
                                     EVD_DB_DISC_MAX_FILES);
        EvdDbDiscCandidate *c = calloc((size_t)n, sizeof(*c));
        if (!c)
                return evd_error_set(err, -ENOMEM, "%s: out of memory", what);
        for (int i = 0; i < n; i++) {
                c[i].file_id = db_get_i64(res, i, 0);
                c[i].size = (uint64_t)db_get_i64(res, i, 1);
                c[i].original_path = db_get_strdup(res, i, 2);
                c[i].archive_path = db_get_strdup(res, i, 3);
                c[i].case_number = db_get_strdup(res, i, 4);
                c[i].device_id = db_get_strdup(res, i, 5);
                if (!c[i].original_path || !c[i].device_id) {
                        evd_db_disc_candidates_free(c, (size_t)n);
                        return evd_error_set(err, -ENOMEM, "%s: out of memory", what);
                }
        }
        *ret = c;
        *ret_n = (size_t)n;
        return 0;
}

void evd_db_disc_candidates_free(EvdDbDiscCandidate *c, size_t n)
{
        if (!c)
                return;
        for (size_t i = 0; i < n; i++) {
                free(c[i].original_path);
                free(c[i].archive_path);
                free(c[i].case_number);
                free(c[i].device_id);
        }
        free(c);
}

static int job_custody(EvdDb *db, int64_t job_id, const char *kind, const char *detail, EvdError *err)
{
        char buf[1024];
        snprintf(buf, sizeof(buf), "disc job %" PRId64 ": %s", job_id, detail ? detail : "");
        EvdCustodyEntry e = {.kind = kind, .detail = buf};
        return custody_append_in_tx(db, &e, NULL, err);
}

int evd_db_disc_job_create(EvdDb *db, const EvdDbDiscJobNew *job, int64_t *ret_job_id, EvdError *err)
{
        const char *what = "queueing a disc job";
        if (job->n_files == 0 || job->n_files > EVD_DB_DISC_MAX_FILES)
                return evd_error_set(err, -EINVAL, "%s: %zu recordings", what, job->n_files);
        bool nested;
        int r = db_tx_open(db, &nested, err);
        if (r < 0)
                return r;
        DbParams p = {};
        db_param_text(&p, job->requested_by);
        db_param_text(&p, job->reason ? job->reason : "");
        db_param_text(&p, job->selector);
        db_param_text(&p, job->case_numbers ? job->case_numbers : "");
        db_param_text(&p, job->unit_code);
        db_param_text(&p, job->media);
        db_param_i64(&p, (int64_t)job->media_bytes);
        db_param_i64(&p, job->copies);
        db_param_i64(&p, job->parts);
        db_param_i64(&p, (int64_t)job->n_files);
        db_param_i64(&p, (int64_t)job->payload_bytes);
        _cleanup_(PQclearp) PGresult *res = NULL;
        r = db_exec(db, what,
                    "INSERT INTO disc_jobs (requested_by, reason, selector, case_numbers, unit_code, media, "
                    "media_bytes, copies, parts, files, payload_bytes, group_id) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
                    "'evidock-' || md5(random()::text || clock_timestamp()::text)) RETURNING id",
                    &p, &res, err);
        if (r < 0)
                return db_tx_close(db, nested, r, err);
        int64_t id = db_get_i64(res, 0, 0);

        /* The plan in one statement: parallel arrays unnested. */
        _cleanup_free_ char *ids = db_id_array(job->file_ids, job->n_files);
        _cleanup_free_ int64_t *parts = calloc(job->n_files, sizeof(int64_t));
        if (!ids || !parts)
                return db_tx_close(db, nested, evd_error_set(err, -ENOMEM, "%s: out of memory", what), err);
        for (size_t i = 0; i < job->n_files; i++)
                parts[i] = job->file_parts[i];
        _cleanup_free_ char *part_arr = db_id_array(parts, job->n_files);
        if (!part_arr)
                return db_tx_close(db, nested, evd_error_set(err, -ENOMEM, "%s: out of memory", what), err);
        DbParams q = {};
        db_param_i64(&q, id);
        db_param_text(&q, ids);
        db_param_text(&q, part_arr);
        r = db_exec(
            db, what,
            "INSERT INTO disc_job_files (job_id, file_id, part, ord) "
            "SELECT $1, f, p, o::int FROM unnest($2::int8[], $3::int8[]) WITH ORDINALITY AS t(f, p, o)",
            &q, NULL, err);
        if (r >= 0) {
                DbParams e = {};
                db_param_i64(&e, id);
                db_param_text(&e, job->requested_by);
                r = db_exec(db, what,
                            "INSERT INTO disc_job_events (job_id, state, by_whom) VALUES ($1, 'queued', $2)",
                            &e, NULL, err);
        }
        if (r >= 0) {
                char detail[600];
                snprintf(detail, sizeof(detail),
                         "queued by %s: %zu recordings, %u disc(s) x %u copies of %s; %s", job->requested_by,
                         job->n_files, job->parts, job->copies, job->media, job->selector);
                r = job_custody(db, id, "disc_job_queued", detail, err);
        }
        r = db_tx_close(db, nested, r, err);
        if (r < 0)
                return r;
        if (ret_job_id)
                *ret_job_id = id;
        return 0;
}

int evd_db_disc_job_event(EvdDb *db, int64_t job_id, const char *state, unsigned part, unsigned copy,
                          const char *drive, const char *by, const char *detail, EvdError *err)
{
        EvdDbDiscJobEvent ev = {.job_id = job_id,
                                .state = state,
                                .part = part,
                                .copy = copy,
                                .drive = drive,
                                .by = by,
                                .detail = detail};
        return evd_db_disc_job_event_add(db, &ev, err);
}

int evd_db_disc_job_event_add(EvdDb *db, const EvdDbDiscJobEvent *ev, EvdError *err)
{
        int64_t job_id = ev->job_id;
        const char *state = ev->state ? ev->state : "", *by = ev->by, *detail = ev->detail;
        unsigned part = ev->part, copy = ev->copy;
        char what[96];
        snprintf(what, sizeof(what), "recording state '%s' of disc job %" PRId64, state, job_id);
        bool ends =
            strcmp(state, "done") == 0 || strcmp(state, "failed") == 0 || strcmp(state, "cancelled") == 0;
        bool nested = false;
        int r = 0;
        if (ends) {
                r = db_tx_open(db, &nested, err);
                if (r < 0)
                        return r;
        }
        DbParams p = {};
        db_param_i64(&p, job_id);
        db_param_text(&p, state);
        if (part)
                db_param_i64(&p, part);
        else
                db_param_null(&p);
        if (copy)
                db_param_i64(&p, copy);
        else
                db_param_null(&p);
        db_param_text(&p, ev->drive);
        db_param_text(&p, by ? by : "");
        db_param_text(&p, detail ? detail : "");
        db_param_text(&p, ev->spool_key);
        r = db_exec(db, what,
                    "INSERT INTO disc_job_events (job_id, state, part, copy, drive, by_whom, detail, "
                    "spool_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    &p, NULL, err);
        if (!ends)
                return r;
        if (r >= 0) {
                char kind[32];
                snprintf(kind, sizeof(kind), "disc_job_%s", state);
                char buf[700];
                snprintf(buf, sizeof(buf), "%s%s%s", by ? by : "", by && detail ? ": " : "",
                         detail ? detail : "");
                r = job_custody(db, job_id, kind, buf, err);
        }
        return db_tx_close(db, nested, r, err);
}

#define JOB_COLUMNS                                                                                         \
        "j.id, " DB_US(                                                                                     \
            "j.created_at") ", j.requested_by, j.reason, j.selector, j.case_numbers, j.unit_code, "         \
                            "j.media, j.media_bytes, j.copies, j.parts, j.files, j.payload_bytes, "         \
                            "j.group_id, s.state, " DB_US(                                                  \
                                "s.at") ", s.detail, s.drive, "                                             \
                                        "(SELECT count(*) FROM discs d WHERE d.job_id = j.id AND "          \
                                        "d.outcome = "                                                      \
                                        "'verified'), (SELECT count(*) FROM discs d WHERE d.job_id = j.id " \
                                        "AND "                                                              \
                                        "d.outcome = 'failed') FROM disc_jobs j JOIN disc_job_state s ON "  \
                                        "s.job_id = j.id "

static int jobs_from(const PGresult *res, EvdDbDiscJob **ret, size_t *ret_n)
{
        int n = PQntuples(res);
        EvdDbDiscJob *j = calloc((size_t)MAX(n, 1), sizeof(*j));
        if (!j)
                return -ENOMEM;
        for (int i = 0; i < n; i++) {
                j[i].id = db_get_i64(res, i, 0);
                j[i].created_us = db_get_i64(res, i, 1);
                j[i].requested_by = db_get_strdup(res, i, 2);
                j[i].reason = db_get_strdup(res, i, 3);
                j[i].selector = db_get_strdup(res, i, 4);
                j[i].case_numbers = db_get_strdup(res, i, 5);
                j[i].unit_code = db_get_strdup(res, i, 6);
                j[i].media = db_get_strdup(res, i, 7);
                j[i].media_bytes = (uint64_t)db_get_i64(res, i, 8);
                j[i].copies = (unsigned)db_get_i64(res, i, 9);
                j[i].parts = (unsigned)db_get_i64(res, i, 10);
                j[i].files = (unsigned)db_get_i64(res, i, 11);
                j[i].payload_bytes = (uint64_t)db_get_i64(res, i, 12);
                j[i].group_id = db_get_strdup(res, i, 13);
                j[i].state = db_get_strdup(res, i, 14);
                j[i].state_us = db_get_i64(res, i, 15);
                j[i].state_detail = db_get_strdup(res, i, 16);
                j[i].state_drive = db_get_strdup(res, i, 17);
                j[i].discs_verified = (unsigned)db_get_i64(res, i, 18);
                j[i].discs_failed = (unsigned)db_get_i64(res, i, 19);
                if (!j[i].requested_by || !j[i].media || !j[i].state || !j[i].group_id) {
                        evd_db_disc_jobs_free(j, (size_t)n);
                        return -ENOMEM;
                }
        }
        *ret = j;
        *ret_n = (size_t)n;
        return 0;
}

int evd_db_disc_job_list(EvdDb *db, bool active_only, EvdDbDiscJob **ret, size_t *ret_n, EvdError *err)
{
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r =
            db_exec(db, "listing disc jobs",
                    active_only ? "SELECT " JOB_COLUMNS
                                  "WHERE s.state NOT IN ('done', 'failed', 'cancelled') ORDER BY j.id DESC"
                                : "SELECT " JOB_COLUMNS "ORDER BY j.id DESC LIMIT 10000",
                    NULL, &res, err);
        if (r < 0)
                return r;
        r = jobs_from(res, ret, ret_n);
        return r < 0 ? evd_error_set(err, r, "listing disc jobs: out of memory") : 0;
}

int evd_db_disc_job_get(EvdDb *db, int64_t job_id, EvdDbDiscJob **ret, EvdError *err)
{
        DbParams p = {};
        db_param_i64(&p, job_id);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, "reading a disc job", "SELECT " JOB_COLUMNS "WHERE j.id = $1", &p, &res, err);
        if (r < 0)
                return r;
        if (PQntuples(res) != 1)
                return evd_error_set(err, -ENOENT, "no disc job %" PRId64, job_id);
        size_t n;
        r = jobs_from(res, ret, &n);
        return r < 0 ? evd_error_set(err, r, "reading a disc job: out of memory") : 0;
}

void evd_db_disc_jobs_free(EvdDbDiscJob *jobs, size_t n)
{
        if (!jobs)
                return;
        for (size_t i = 0; i < n; i++) {
                EvdDbDiscJob *j = &jobs[i];
                free(j->requested_by);
                free(j->reason);
                free(j->selector);
                free(j->case_numbers);
                free(j->unit_code);
                free(j->media);
                free(j->group_id);
                free(j->state);
                free(j->state_detail);
                free(j->state_drive);
        }
        free(jobs);
}

int evd_db_disc_job_claim(EvdDb *db, int64_t *ret_job_id, EvdError *err)
{
        /* Candidates first, then try the lock on each: pg_try_advisory_lock in a WHERE clause could take
         * locks on rows the query then discards. */
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r =
            db_exec(db, "looking for a disc job to run",
                    "SELECT job_id FROM disc_job_state WHERE state NOT IN ('done', 'failed', 'cancelled') "
                    "ORDER BY job_id LIMIT 100",
                    NULL, &res, err);
        if (r < 0)
                return r;
        for (int i = 0; i < PQntuples(res); i++) {
                int64_t id = db_get_i64(res, i, 0);
                r = evd_db_disc_job_lock(db, id, err);
                if (r == -EBUSY)
                        continue;
                if (r < 0)
                        return r;
                /* Re-check under the lock: it may have ended while we looked. */
                DbParams p = {};
                db_param_i64(&p, id);
                _cleanup_(PQclearp) PGresult *st = NULL;
                r = db_exec(db, "looking for a disc job to run",
                            "SELECT state FROM disc_job_state WHERE job_id = $1", &p, &st, err);
                if (r < 0) {
                        evd_db_disc_job_release(db, id);
                        return r;
                }
                const char *s = PQntuples(st) ? PQgetvalue(st, 0, 0) : "";
                if (strcmp(s, "done") == 0 || strcmp(s, "failed") == 0 || strcmp(s, "cancelled") == 0) {
                        evd_db_disc_job_release(db, id);
                        continue;
                }
                *ret_job_id = id;
                return 1;
        }
        return 0;
}

int evd_db_disc_job_lock(EvdDb *db, int64_t job_id, EvdError *err)
{
        DbParams p = {};
        db_param_i64(&p, job_id);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, "locking a disc job",
                        "SELECT pg_try_advisory_lock(" DISC_LOCK_CLASS ", ($1::bigint % 2147483647)::int)",
                        &p, &res, err);
        if (r < 0)
                return r;
        if (!db_get_bool(res, 0, 0))
                return evd_error_set(err, -EBUSY, "disc job %" PRId64 " is being run by another worker",
                                     job_id);
        return 0;
}

int evd_db_disc_job_release(EvdDb *db, int64_t job_id)
{
        DbParams p = {};
        db_param_i64(&p, job_id);
        return db_exec(db, "unlocking a disc job",
                       "SELECT pg_advisory_unlock(" DISC_LOCK_CLASS ", ($1::bigint % 2147483647)::int)", &p,
                       NULL, NULL);
}

int evd_db_disc_job_part_files(EvdDb *db, int64_t job_id, unsigned part, int64_t **ret_ids, size_t *ret_n,
                               EvdError *err)
{
        DbParams p = {};
        db_param_i64(&p, job_id);
        db_param_i64(&p, part);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, "reading the plan of a disc job",
                        "SELECT file_id FROM disc_job_files WHERE job_id = $1 AND part = $2 ORDER BY ord",
                        &p, &res, err);
        if (r < 0)
                return r;
        int n = PQntuples(res);
        int64_t *ids = calloc((size_t)MAX(n, 1), sizeof(int64_t));
        if (!ids)
                return evd_error_set(err, -ENOMEM, "reading the plan of a disc job: out of memory");
        for (int i = 0; i < n; i++)
                ids[i] = db_get_i64(res, i, 0);
        *ret_ids = ids;
        *ret_n = (size_t)n;
        return 0;
}

int evd_db_disc_verified_counts(EvdDb *db, int64_t job_id, unsigned parts, unsigned **ret_counts,
                                EvdError *err)
{
        DbParams p = {};
        db_param_i64(&p, job_id);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, "counting the verified discs of a job",
                        "SELECT p.part, count(*) FROM discs d JOIN disc_parts p ON p.id = d.part_id "
                        "WHERE d.job_id = $1 AND d.outcome = 'verified' GROUP BY p.part",
                        &p, &res, err);
        if (r < 0)
                return r;
        unsigned *c = calloc(MAX(parts, 1u), sizeof(unsigned));
        if (!c)
                return evd_error_set(err, -ENOMEM, "counting discs: out of memory");
        for (int i = 0; i < PQntuples(res); i++) {
                int64_t part = db_get_i64(res, i, 0);
                if (part >= 1 && part <= (int64_t)parts)
                        c[part - 1] = (unsigned)db_get_i64(res, i, 1);
        }
        *ret_counts = c;
        return 0;
}

/* ---- parts ---------------------------------------------------------------------------------------- */

#define PART_COLUMNS                                                                                        \
        "p.id, p.job_id, p.part, p.label, p.volume_id, p.custody_upto, p.bagging_date::text, " DB_US(       \
            "p.snapshot_at") ", (SELECT d.image_sha256 FROM discs d WHERE d.part_id = p.id AND d.outcome "  \
                             "= "                                                                           \
                             "'verified' ORDER BY d.id LIMIT 1) FROM disc_parts p "

static void part_from(const PGresult *res, EvdDbDiscPart *ret)
{
        *ret = (EvdDbDiscPart){};
        ret->id = db_get_i64(res, 0, 0);
        ret->job_id = db_get_i64(res, 0, 1);
        ret->part = (unsigned)db_get_i64(res, 0, 2);
        copy_str(ret->label, sizeof(ret->label), res, 0, 3);
        copy_str(ret->volume_id, sizeof(ret->volume_id), res, 0, 4);
        ret->custody_upto = db_get_i64(res, 0, 5);
        copy_str(ret->bagging_date, sizeof(ret->bagging_date), res, 0, 6);
        ret->snapshot_us = db_get_i64(res, 0, 7);
        copy_str(ret->image_sha256, sizeof(ret->image_sha256), res, 0, 8);
}

int evd_db_disc_part_get(EvdDb *db, int64_t job_id, unsigned part, EvdDbDiscPart *ret, EvdError *err)
{
        DbParams p = {};
        db_param_i64(&p, job_id);
        db_param_i64(&p, part);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, "reading a disc of a set",
                        "SELECT " PART_COLUMNS "WHERE p.job_id = $1 AND p.part = $2", &p, &res, err);
        if (r < 0)
                return r;
        if (PQntuples(res) != 1)
                return -ENOENT;
        part_from(res, ret);
        return 0;
}

int evd_db_disc_part_find(EvdDb *db, const char *label, EvdDbDiscPart *ret, EvdError *err)
{
        DbParams p = {};
        db_param_text(&p, label);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, "looking up a disc label", "SELECT " PART_COLUMNS "WHERE p.label = $1", &p, &res,
                        err);
        if (r < 0)
                return r;
        if (PQntuples(res) != 1)
                return evd_error_set(err, -ENOENT, "no disc labelled '%s' was ever built here", label);
        part_from(res, ret);
        return 0;
}

int evd_db_disc_custody_head(EvdDb *db, int64_t *ret_id, char ret_hash[EVD_DB_HEX_SIZE], EvdError *err)
{
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, "reading the custody head",
                        "SELECT id, hash FROM custody_events ORDER BY id DESC LIMIT 1", NULL, &res, err);
        if (r < 0)
                return r;
        *ret_id = PQntuples(res) ? db_get_i64(res, 0, 0) : 0;
        if (ret_hash)
                snprintf(ret_hash, EVD_DB_HEX_SIZE, "%s", PQntuples(res) ? PQgetvalue(res, 0, 1) : "");
        return 0;
}

int evd_db_disc_part_create(EvdDb *db, EvdDbDiscPart *part, const EvdDbDiscPartFile *files, size_t n,
                            EvdError *err)
{
        const char *what = "recording the contents of a disc";
        bool nested;
        int r = db_tx_open(db, &nested, err);
        if (r < 0)
                return r;
        DbParams p = {};
        db_param_i64(&p, part->job_id);
        db_param_i64(&p, part->part);
        db_param_text(&p, part->label);
        db_param_text(&p, part->volume_id);
        db_param_i64(&p, part->custody_upto);
        db_param_text(&p, part->bagging_date);
        db_param_time(&p, part->snapshot_us);
        _cleanup_(PQclearp) PGresult *res = NULL;
        r = db_exec(db, what,
                    "INSERT INTO disc_parts (job_id, part, label, volume_id, custody_upto, bagging_date, "
                    "snapshot_at) VALUES ($1, $2, $3, $4, $5, $6::date, $7) RETURNING id",
                    &p, &res, err);
        if (r < 0)
                return db_tx_close(db, nested, r, err);
        int64_t id = db_get_i64(res, 0, 0);
        for (size_t i = 0; i < n && r >= 0; i++) {
                DbParams q = {};
                db_param_i64(&q, id);
                db_param_text(&q, files[i].path);
                db_param_i64(&q, (int64_t)files[i].size);
                db_param_hex(&q, files[i].sha256);
                if (files[i].file_id > 0)
                        db_param_i64(&q, files[i].file_id);
                else
                        db_param_null(&q);
                db_param_text(&q, files[i].role);
                r = db_exec(db, what,
                            "INSERT INTO disc_part_files (part_id, path, size, sha256, file_id, role) "
                            "VALUES ($1, $2, $3, $4, $5, $6)",
                            &q, NULL, err);
        }
        r = db_tx_close(db, nested, r, err);
        if (r < 0)
                return r;
        part->id = id;
        return 0;
}

int evd_db_disc_part_files(EvdDb *db, int64_t part_id, EvdDbDiscPartFileFn fn, void *userdata, EvdError *err)
{
        DbParams p = {};
        db_param_i64(&p, part_id);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, "reading the contents of a disc",
                        "SELECT path, size, sha256, file_id, role FROM disc_part_files WHERE part_id = $1 "
                        "ORDER BY path COLLATE \"C\"",
                        &p, &res, err);
        if (r < 0)
                return r;
        for (int i = 0; i < PQntuples(res); i++) {
                r = fn(PQgetvalue(res, i, 0), (uint64_t)db_get_i64(res, i, 1), PQgetvalue(res, i, 2),
                       db_get_i64(res, i, 3), PQgetvalue(res, i, 4), userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- discs and checks ----------------------------------------------------------------------------- */

int evd_db_disc_record(EvdDb *db, const EvdDbDisc *disc, int64_t *ret_disc_id, EvdError *err)
{
        const char *what = "recording a burned disc";
        bool nested;
        int r = db_tx_open(db, &nested, err);
        if (r < 0)
                return r;
        DbParams p = {};
        db_param_i64(&p, disc->job_id);
        db_param_i64(&p, disc->part_id);
        db_param_i64(&p, disc->copy);
        db_param_text(&p, disc->verified ? "verified" : "failed");
        db_param_text(&p, disc->drive);
        db_param_text(&p, disc->media);
        db_param_hex(&p, disc->image_sha256);
        if (disc->image_blocks)
                db_param_i64(&p, (int64_t)disc->image_blocks);
        else
                db_param_null(&p);
        db_param_i64(&p, disc->files_checked);
        db_param_i64(&p, disc->files_bad);
        if (disc->burned_us)
                db_param_time(&p, disc->burned_us);
        else
                db_param_null(&p);
        if (disc->verified_us)
                db_param_time(&p, disc->verified_us);
        else
                db_param_null(&p);
        db_param_text(&p, disc->by);
        db_param_text(&p, disc->detail ? disc->detail : "");
        db_param_text(&p, disc->spool_key);
        _cleanup_(PQclearp) PGresult *res = NULL;
        r = db_exec(
            db, what,
            "INSERT INTO discs (job_id, part_id, copy, outcome, drive, media, image_sha256, image_blocks, "
            "files_checked, files_bad, burned_at, verified_at, by_whom, detail, spool_key) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id, "
            "(SELECT label FROM disc_parts WHERE id = $2)",
            &p, &res, err);
        if (r < 0)
                return db_tx_close(db, nested, r, err);
        int64_t id = db_get_i64(res, 0, 0);
        char detail[900];
        snprintf(detail, sizeof(detail), "disc %" PRId64 " (%s copy %u, job %" PRId64 ") on %s: %s%s%s", id,
                 PQgetvalue(res, 0, 1), disc->copy, disc->job_id, disc->drive,
                 disc->verified ? "verified" : "failed", disc->detail && *disc->detail ? ": " : "",
                 disc->detail ? disc->detail : "");
        EvdCustodyEntry e = {.kind = disc->verified ? "disc_verified" : "disc_failed", .detail = detail};
        r = custody_append_in_tx(db, &e, NULL, err);
        if (r >= 0 && disc->verified) {
                /* One event per recording on the disc, in the recording's own history. */
                DbParams q = {};
                db_param_i64(&q, disc->part_id);
                _cleanup_(PQclearp) PGresult *files = NULL;
                r = db_exec(db, what,
                            "SELECT pf.file_id, f.device_id FROM disc_part_files pf JOIN files f ON f.id = "
                            "pf.file_id WHERE pf.part_id = $1 AND pf.role = 'original' ORDER BY pf.file_id",
                            &q, &files, err);
                char fdetail[200];
                snprintf(fdetail, sizeof(fdetail), "on verified disc %" PRId64 " (%s copy %u)", id,
                         PQgetvalue(res, 0, 1), disc->copy);
                for (int i = 0; r >= 0 && i < PQntuples(files); i++) {
                        EvdCustodyEntry fe = {.kind = "on_disc",
                                              .device_id = PQgetvalue(files, i, 1),
                                              .file_id = db_get_i64(files, i, 0),
                                              .detail = fdetail};
                        r = custody_append_in_tx(db, &fe, NULL, err);
                }
        }
        r = db_tx_close(db, nested, r, err);
        if (r < 0)
                return r;
        if (ret_disc_id)
                *ret_disc_id = id;
        return 0;
}

int evd_db_disc_check_record(EvdDb *db, const EvdDbDiscCheck *check, int64_t *ret_id, EvdError *err)
{
        const char *what = "recording a disc check";
        bool nested;
        int r = db_tx_open(db, &nested, err);
        if (r < 0)
                return r;
        DbParams p = {};
        if (check->part_id > 0)
                db_param_i64(&p, check->part_id);
        else
                db_param_null(&p);
        db_param_text(&p, check->source);
        db_param_text(&p, check->outcome);
        db_param_hex(&p, check->image_sha256);
        db_param_i64(&p, check->files_checked);
        db_param_i64(&p, check->files_bad);
        db_param_text(&p, check->by);
        db_param_text(&p, check->detail ? check->detail : "");
        _cleanup_(PQclearp) PGresult *res = NULL;
        r = db_exec(
            db, what,
            "INSERT INTO disc_checks (part_id, source, outcome, image_sha256, files_checked, files_bad, "
            "by_whom, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id, "
            "coalesce((SELECT label FROM disc_parts WHERE id = $1), 'unknown disc')",
            &p, &res, err);
        if (r >= 0) {
                char detail[900];
                snprintf(detail, sizeof(detail), "check %s of %s (%s): %s, %u files checked, %u bad%s%s",
                         PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), check->source, check->outcome,
                         check->files_checked, check->files_bad, check->detail && *check->detail ? ": " : "",
                         check->detail ? check->detail : "");
                EvdCustodyEntry e = {.kind = "disc_checked", .detail = detail};
                r = custody_append_in_tx(db, &e, NULL, err);
        }
        int64_t id = r >= 0 ? db_get_i64(res, 0, 0) : 0;
        r = db_tx_close(db, nested, r, err);
        if (r < 0)
                return r;
        if (ret_id)
                *ret_id = id;
        return 0;
}

/* ---- bag contents ---------------------------------------------------------------------------------- */

int evd_db_disc_file_info(EvdDb *db, const int64_t *ids, size_t n, EvdDbDiscFileInfo **ret, EvdError *err)
{
        const char *what = "reading the recordings of a disc";
        _cleanup_free_ char *arr = db_id_array(ids, n);
        if (!arr)
                return evd_error_set(err, -ENOMEM, "%s: out of memory", what);
        DbParams p = {};
        db_param_text(&p, arr);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(
            db, what,
            "SELECT f.id, f.device_id, f.officer_id, "
            " (SELECT unit_code FROM device_events e WHERE e.device_id = f.device_id AND e.event = 'enroll' "
            "  ORDER BY e.id DESC LIMIT 1), f.method, f.case_number, "
            " to_char(f.recorded_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
            " to_char(f.recorded_end AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
            " f.size, f.sha256, f.original_path, f.archive_path, f.archive_sha256, f.verdict, "
            "f.confidentiality, "
            " f.chain_record, "
            " (to_jsonb(f) - 'source_path' || jsonb_build_object("
            "   'source_path_hex', encode(f.source_path, 'hex'), "
            "   'findings', coalesce((SELECT jsonb_agg(to_jsonb(x) ORDER BY x.id) FROM findings x "
            "                         WHERE x.file_id = f.id), '[]'::jsonb)))::text "
            "FROM unnest($1::int8[]) WITH ORDINALITY AS u(id, o) JOIN files f ON f.id = u.id ORDER BY u.o",
            &p, &res, err);
        if (r < 0)
                return r;
        if ((size_t)PQntuples(res) != n)
                return evd_error_set(err, -ENOENT, "%s: %zu of %zu recordings are not in the database", what,
                                     n - (size_t)PQntuples(res), n);
        EvdDbDiscFileInfo *f = calloc(MAX(n, (size_t)1), sizeof(*f));
        if (!f)
                return evd_error_set(err, -ENOMEM, "%s: out of memory", what);
        for (int i = 0; i < (int)n; i++) {
                f[i].id = db_get_i64(res, i, 0);
                f[i].device_id = db_get_strdup(res, i, 1);
                f[i].officer_id = db_get_strdup(res, i, 2);
                f[i].unit_code = db_get_strdup(res, i, 3);
                f[i].method = db_get_strdup(res, i, 4);
                f[i].case_number = db_get_strdup(res, i, 5);
                f[i].recorded_start = db_get_strdup(res, i, 6);
                f[i].recorded_end = db_get_strdup(res, i, 7);
                f[i].size = (uint64_t)db_get_i64(res, i, 8);
                copy_str(f[i].sha256, sizeof(f[i].sha256), res, i, 9);
                f[i].original_path = db_get_strdup(res, i, 10);
                f[i].archive_path = db_get_strdup(res, i, 11);
                copy_str(f[i].archive_sha256, sizeof(f[i].archive_sha256), res, i, 12);
                f[i].verdict = db_get_strdup(res, i, 13);
                f[i].confidentiality = db_get_strdup(res, i, 14);
                f[i].chain_record = db_get_strdup(res, i, 15);
                f[i].json = db_get_strdup(res, i, 16);
                if (!f[i].device_id || !f[i].method || !f[i].original_path || !f[i].verdict || !f[i].json) {
                        evd_db_disc_file_info_free(f, n);
                        return evd_error_set(err, -ENOMEM, "%s: out of memory", what);
                }
        }
        *ret = f;
        return 0;
}

void evd_db_disc_file_info_free(EvdDbDiscFileInfo *f, size_t n)
{
        if (!f)
                return;
        for (size_t i = 0; i < n; i++) {
                free(f[i].device_id);
                free(f[i].officer_id);
                free(f[i].unit_code);
                free(f[i].method);
                free(f[i].case_number);
                free(f[i].recorded_start);
                free(f[i].recorded_end);
                free(f[i].original_path);
                free(f[i].archive_path);
                free(f[i].verdict);
                free(f[i].confidentiality);
                free(f[i].chain_record);
                free(f[i].json);
        }
        free(f);
}

int evd_db_disc_keys(EvdDb *db, const int64_t *ids, size_t n, int64_t upto_us, EvdDbDiscKeyFn fn,
                     void *userdata, EvdError *err)
{
        _cleanup_free_ char *arr = db_id_array(ids, n);
        if (!arr)
                return evd_error_set(err, -ENOMEM, "reading recorder keys: out of memory");
        DbParams p = {};
        db_param_text(&p, arr);
        db_param_time(&p, upto_us);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, "reading recorder keys",
                        "SELECT e.device_id, e.key_id, e.public_key_pem, to_jsonb(e)::text FROM "
                        "device_events e WHERE e.event = 'enroll' AND e.device_id IN "
                        "(SELECT device_id FROM files WHERE id = ANY($1::int8[])) AND e.at <= $2 ORDER BY "
                        "e.device_id, e.id",
                        &p, &res, err);
        if (r < 0)
                return r;
        for (int i = 0; i < PQntuples(res); i++) {
                r = fn(PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
                       PQgetvalue(res, i, 3), userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

#define CUSTODY_JSON                                                                                        \
        "jsonb_build_object('id', c.id, 'at', c.at, 'at_us', " DB_US(                                       \
            "c.at") ", 'kind', c.kind, 'device_id', c.device_id, 'docking_id', c.docking_id, 'file_id', "   \
                    "c.file_id, 'detail', c.detail, 'prev_hash', c.prev_hash, 'hash', c.hash)::text"

int evd_db_disc_custody(EvdDb *db, const int64_t *ids, size_t n, int64_t upto, EvdDbDiscTextFn fn,
                        void *userdata, EvdError *err)
{
        _cleanup_free_ char *arr = db_id_array(ids, n);
        if (!arr)
                return evd_error_set(err, -ENOMEM, "reading custody events: out of memory");
        int64_t after = 0;
        for (;;) {
                DbParams p = {};
                db_param_text(&p, arr);
                db_param_i64(&p, after);
                db_param_i64(&p, upto);
                db_param_i64(&p, DISC_PAGE);
                _cleanup_(PQclearp) PGresult *res = NULL;
                int r = db_exec(
                    db, "reading custody events",
                    "SELECT c.id, " CUSTODY_JSON " FROM custody_events c "
                    "WHERE c.file_id = ANY($1::int8[]) AND c.id > $2 AND c.id <= $3 ORDER BY c.id LIMIT $4",
                    &p, &res, err);
                if (r < 0)
                        return r;
                int rows = PQntuples(res);
                for (int i = 0; i < rows; i++) {
                        r = fn(PQgetvalue(res, i, 1), userdata);
                        if (r < 0)
                                return r;
                        after = db_get_i64(res, i, 0);
                }
                if (rows < DISC_PAGE)
                        return 0;
        }
}

int evd_db_disc_custody_event_json(EvdDb *db, int64_t id, char **ret_json, EvdError *err)
{
        DbParams p = {};
        db_param_i64(&p, id);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, "reading the custody head",
                        "SELECT " CUSTODY_JSON " FROM custody_events c WHERE c.id = $1", &p, &res, err);
        if (r < 0)
                return r;
        if (PQntuples(res) != 1)
                return evd_error_set(err, -ENOENT, "custody event %" PRId64 " does not exist", id);
        char *s = db_get_strdup(res, 0, 0);
        if (!s)
                return evd_error_set(err, -ENOMEM, "reading the custody head: out of memory");
        *ret_json = s;
        return 0;
}

int evd_db_disc_holdings_many(EvdDb *db, const int64_t *file_ids, size_t n, EvdDbDiscHolding **ret,
                              size_t *ret_n, EvdError *err)
{
        _cleanup_free_ char *arr = db_id_array(file_ids, n);
        if (!arr)
                return evd_error_set(err, -ENOMEM, "finding the discs of recordings: out of memory");
        DbParams p = {};
        db_param_text(&p, arr);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, "finding the discs of recordings",
                        "SELECT file_id, disc_id, job_id, label, copy, " DB_US(
                            "verified_at") " FROM disc_retained_files "
                                           "WHERE file_id = ANY($1::int8[]) ORDER BY file_id, disc_id",
                        &p, &res, err);
        if (r < 0)
                return r;
        int rows = PQntuples(res);
        EvdDbDiscHolding *h = calloc((size_t)MAX(rows, 1), sizeof(*h));
        if (!h)
                return evd_error_set(err, -ENOMEM, "finding the discs of recordings: out of memory");
        for (int i = 0; i < rows; i++) {
                h[i].file_id = db_get_i64(res, i, 0);
                h[i].disc_id = db_get_i64(res, i, 1);
                h[i].job_id = db_get_i64(res, i, 2);
                copy_str(h[i].label, sizeof(h[i].label), res, i, 3);
                h[i].copy = (unsigned)db_get_i64(res, i, 4);
                h[i].verified_us = db_get_i64(res, i, 5);
        }
        *ret = h;
        *ret_n = (size_t)rows;
        return 0;
}

int evd_db_disc_holdings(EvdDb *db, int64_t file_id, EvdDbDiscHolding **ret, size_t *ret_n, EvdError *err)
{
        return evd_db_disc_holdings_many(db, &file_id, 1, ret, ret_n, err);
}

int evd_db_disc_rows(EvdDb *db, int64_t job_id, EvdDbDiscRow **ret, size_t *ret_n, EvdError *err)
{
        DbParams p = {};
        db_param_i64(&p, job_id);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(
            db, "listing the discs of a job",
            "SELECT d.id, p.part, p.label, d.copy, d.outcome, d.drive, d.image_sha256, d.files_checked, "
            "d.files_bad, " DB_US("d.verified_at") ", " DB_US(
                "d.recorded_at") ", d.detail "
                                 "FROM discs d JOIN disc_parts p ON p.id = d.part_id WHERE d.job_id = $1 "
                                 "ORDER BY d.id",
            &p, &res, err);
        if (r < 0)
                return r;
        int n = PQntuples(res);
        EvdDbDiscRow *d = calloc((size_t)MAX(n, 1), sizeof(*d));
        if (!d)
                return evd_error_set(err, -ENOMEM, "listing discs: out of memory");
        for (int i = 0; i < n; i++) {
                d[i].id = db_get_i64(res, i, 0);
                d[i].part = (unsigned)db_get_i64(res, i, 1);
                copy_str(d[i].label, sizeof(d[i].label), res, i, 2);
                d[i].copy = (unsigned)db_get_i64(res, i, 3);
                copy_str(d[i].outcome, sizeof(d[i].outcome), res, i, 4);
                d[i].drive = db_get_strdup(res, i, 5);
                copy_str(d[i].image_sha256, sizeof(d[i].image_sha256), res, i, 6);
                d[i].files_checked = (unsigned)db_get_i64(res, i, 7);
                d[i].files_bad = (unsigned)db_get_i64(res, i, 8);
                d[i].verified_us = db_get_i64(res, i, 9);
                d[i].recorded_us = db_get_i64(res, i, 10);
                d[i].detail = db_get_strdup(res, i, 11);
        }
        *ret = d;
        *ret_n = (size_t)n;
        return 0;
}

void evd_db_disc_rows_free(EvdDbDiscRow *rows, size_t n)
{
        if (!rows)
                return;
        for (size_t i = 0; i < n; i++) {
                free(rows[i].drive);
                free(rows[i].detail);
        }
        free(rows);
}
