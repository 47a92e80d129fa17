/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* All SQL of the after-ingest lifecycle: cases, case associations, marks, retention facts, disposal
 * (tables of migration 5, docs/lifecycle.md). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db-internal.h"
#include "db-lifecycle.h"

/* pg_advisory_xact_lock keys: one for every lifecycle change, one space for executing batches. */
#define LIFECYCLE_LOCK "7452330001"
#define DISPOSAL_LOCK  "745233" /* with the batch id as the second key */

/* ---- small helpers ---------------------------------------------------------------------------------- */

void evd_strv_free(char **v, size_t n)
{
        if (!v)
                return;
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

void evd_lifecycle_change_clear(EvdLifecycleChange *c)
{
        if (!c)
                return;
        free(c->file_ids);
        *c = (EvdLifecycleChange){};
}

static int check_reason(const char *reason, const char *what, EvdError *err)
{
        if (!reason || !reason[0])
                return evd_error_set(err, -EINVAL, "%s: a reason is required (--reason TEXT)", what);
        if (strlen(reason) > EVD_LIFECYCLE_REASON_MAX)
                return evd_error_set(err, -EINVAL, "%s: the reason is longer than %u bytes", what,
                                     EVD_LIFECYCLE_REASON_MAX);
        return 0;
}

int evd_case_number_check(const char *case_number, EvdError *err)
{
        if (!case_number || !case_number[0])
                return evd_error_set(err, -EINVAL, "no case number given");
        size_t n = strlen(case_number);
        if (n > EVD_CASE_NUMBER_MAX)
                return evd_error_set(err, -EINVAL, "case number '%.64s...' is longer than %u bytes",
                                     case_number, EVD_CASE_NUMBER_MAX);
        if (case_number[0] == ' ')
                return evd_error_set(err, -EINVAL, "case number '%s' starts with a blank", case_number);
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)case_number[i] < 0x20 || case_number[i] == 0x7f)
                        return evd_error_set(err, -EINVAL, "case number contains a control character");
        return 0;
}

int evd_case_category_check(const char *category, EvdError *err)
{
        size_t n = category ? strlen(category) : 0;
        bool ok = n >= 1 && n <= 32 && category[0] >= 'a' && category[0] <= 'z';
        for (size_t i = 1; ok && i < n; i++) {
                char c = category[i];
                ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        }
        if (!ok)
                return evd_error_set(err, -EINVAL,
                                     "case category '%s' is not valid: 1-32 of a-z 0-9 _ -, starting with a "
                                     "letter",
                                     strna(category));
        return 0;
}

void evd_file_selector_describe(const EvdFileSelector *sel, char *buf, size_t size)
{
        switch (sel->kind) {
        case EVD_SELECT_FILE:
                snprintf(buf, size, "file %" PRId64, sel->file_id);
                break;
        case EVD_SELECT_DEVICE_SEQ:
                snprintf(buf, size, "device %s seq %" PRIu64 "-%" PRIu64, strna(sel->device_id),
                         sel->seq_first, sel->seq_last);
                break;
        case EVD_SELECT_OFFICER_TIME: {
                char a[32], b[32];
                time_t ta = (time_t)(sel->from_us / 1000000), tb = (time_t)(sel->to_us / 1000000);
                struct tm tma, tmb;
                strftime(a, sizeof(a), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&ta, &tma));
                strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tb, &tmb));
                snprintf(buf, size, "officer %s from %s to %s", strna(sel->officer_id), a, b);
                break;
        }
        default:
                snprintf(buf, size, "(no selection)");
        }
}

int evd_file_selector_check(const EvdFileSelector *sel, EvdError *err)
{
        if (!sel)
                return evd_error_set(err, -EINVAL,
                                     "no files selected (--file, --device with --seq, or --officer "
                                     "with --from/--to)");
        switch (sel->kind) {
        case EVD_SELECT_FILE:
                if (sel->file_id <= 0)
                        return evd_error_set(err, -EINVAL, "file id %" PRId64 " is not valid", sel->file_id);
                return 0;
        case EVD_SELECT_DEVICE_SEQ:
                if (!sel->device_id || !sel->device_id[0])
                        return evd_error_set(err, -EINVAL, "a sequence range needs --device");
                if (sel->seq_first > sel->seq_last || sel->seq_last > INT64_MAX)
                        return evd_error_set(err, -EINVAL,
                                             "sequence range %" PRIu64 "-%" PRIu64 " is empty or reversed",
                                             sel->seq_first, sel->seq_last);
                return 0;
        case EVD_SELECT_OFFICER_TIME:
                if (!sel->officer_id || !sel->officer_id[0])
                        return evd_error_set(err, -EINVAL, "a time window needs --officer");
                if (sel->from_us >= sel->to_us)
                        return evd_error_set(err, -EINVAL,
                                             "time window is empty or reversed (--from must be "
                                             "before --to)");
                return 0;
        }
        return evd_error_set(err, -EINVAL, "unknown file selection");
}

/* WHERE clause on files f for a selector, parameters appended to p. */
static const char *selector_sql(const EvdFileSelector *sel, DbParams *p)
{
        switch (sel->kind) {
        case EVD_SELECT_FILE:
                db_param_i64(p, sel->file_id);
                return "f.id = $1";
        case EVD_SELECT_DEVICE_SEQ:
                db_param_text(p, sel->device_id);
                db_param_i64(p, (int64_t)sel->seq_first);
                db_param_i64(p, (int64_t)sel->seq_last);
                return "f.device_id = $1 AND f.seq BETWEEN $2 AND $3";
        case EVD_SELECT_OFFICER_TIME:
                db_param_text(p, sel->officer_id);
                db_param_time(p, sel->from_us);
                db_param_time(p, sel->to_us);
                return "f.officer_id = $1 AND coalesce(f.recorded_start, f.ingested_at) >= $2 "
                       "AND coalesce(f.recorded_start, f.ingested_at) < $3";
        }
        return "false";
}

int db_lifecycle_lock(EvdDb *db, EvdError *err)
{
        return db_exec(db, "locking the lifecycle tables",
                       "SELECT pg_advisory_xact_lock(" LIFECYCLE_LOCK ")", NULL, NULL, err);
}

static int session_user(EvdDb *db, char *buf, size_t size, EvdError *err)
{
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, "asking who is acting", "SELECT session_user", NULL, &res, err);
        if (r < 0)
                return r;
        snprintf(buf, size, "%s", PQgetvalue(res, 0, 0));
        return 0;
}

/* Appends the custody event that hashes a lifecycle row's content; returns its id. */
static int custody(EvdDb *db, const char *kind, int64_t file_id, const char *device_id, int64_t *ret_id,
                   EvdError *err, const char *fmt, ...) _printf_(7, 8);
static int custody(EvdDb *db, const char *kind, int64_t file_id, const char *device_id, int64_t *ret_id,
                   EvdError *err, const char *fmt, ...)
{
        char detail[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof(detail), fmt, ap);
        va_end(ap);
        EvdCustodyEntry e = {.kind = kind, .device_id = device_id, .file_id = file_id, .detail = detail};
        return custody_append_in_tx(db, &e, ret_id, err);
}

/* The selected files with their current case and latest association (or mark), locked against other
 * lifecycle changes. */
typedef struct Selected {
        int64_t file_id;
        char device_id[16];
        char *current;     /* current case, or for marks: "set" when the mark is in force */
        int64_t latest_id; /* latest association / mark row, 0: none */
} Selected;

static void selected_free(Selected *v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(v[i].current);
        free(v);
}

static int select_files(EvdDb *db, const EvdFileSelector *sel, const char *join_sql, const char *what,
                        Selected **ret, size_t *ret_n, EvdError *err)
{
        DbParams p = {};
        const char *where = selector_sql(sel, &p);
        _cleanup_free_ char *sql = NULL;
        if (asprintf(&sql,
                     "SELECT f.id, f.device_id, x.cur, x.latest FROM files f %s WHERE %s "
                     "ORDER BY f.id LIMIT %u",
                     join_sql, where, EVD_LIFECYCLE_MAX_FILES + 1) < 0)
                return -ENOMEM;
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, what, sql, &p, &res, err);
        if (r < 0)
                return r;
        size_t n = (size_t)PQntuples(res);
        char desc[200];
        evd_file_selector_describe(sel, desc, sizeof(desc));
        if (n == 0)
                return evd_error_set(err, -ENOENT, "%s: %s matches no recorded file", what, desc);
        if (n > EVD_LIFECYCLE_MAX_FILES)
                return evd_error_set(err, -E2BIG, "%s: %s matches more than %u files: narrow it", what, desc,
                                     EVD_LIFECYCLE_MAX_FILES);
        Selected *v = calloc(n, sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                v[i].file_id = db_get_i64(res, (int)i, 0);
                snprintf(v[i].device_id, sizeof(v[i].device_id), "%s", PQgetvalue(res, (int)i, 1));
                v[i].current = db_get_strdup(res, (int)i, 2);
                v[i].latest_id = db_get_i64(res, (int)i, 3);
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static int change_add(EvdLifecycleChange *c, int64_t file_id)
{
        int64_t *v = realloc(c->file_ids, (c->n_changed + 1) * sizeof(*v));
        if (!v)
                return -ENOMEM;
        c->file_ids = v;
        c->file_ids[c->n_changed++] = file_id;
        return 0;
}

/* ---- cases ------------------------------------------------------------------------------------------ */

/* The latest event of a case: "open", "close", "reopen", or -ENOENT. */
static int case_state(EvdDb *db, const char *case_number, const char *what, bool *ret_closed, EvdError *err)
{
        DbParams p = {};
        db_param_text(&p, case_number);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, what,
                        "SELECT event FROM case_events WHERE case_number = $1 ORDER BY id DESC LIMIT 1", &p,
                        &res, err);
        if (r < 0)
                return r;
        if (PQntuples(res) == 0)
                return evd_error_set(err, -ENOENT,
                                     "%s: case '%s' is not known (open it first: evidockctl case open '%s' "
                                     "--category CATEGORY --reason TEXT)",
                                     what, case_number, case_number);
        *ret_closed = strcmp(PQgetvalue(res, 0, 0), "close") == 0;
        return 0;
}

static int case_event(EvdDb *db, const char *case_number, const char *event, const char *category,
                      const char *reason, EvdError *err)
{
        char what[160];
        snprintf(what, sizeof(what), "%s case '%.64s'",
                 strcmp(event, "open") == 0    ? "opening"
                 : strcmp(event, "close") == 0 ? "closing"
                                               : "reopening",
                 strna(case_number));
        int r = evd_case_number_check(case_number, err);
        if (r >= 0 && category)
                r = evd_case_category_check(category, err);
        if (r >= 0)
                r = check_reason(reason, what, err);
        if (r < 0)
                return r;

        bool nested;
        r = db_tx_open(db, &nested, err);
        if (r < 0)
                return r;
        r = db_lifecycle_lock(db, err);
        bool closed = false;
        int s = r < 0 ? r : case_state(db, case_number, what, &closed, NULL);
        if (r >= 0 && strcmp(event, "open") == 0 && s == 0)
                r = evd_error_set(err, -EEXIST, "%s: the case exists already", what);
        else if (r >= 0 && strcmp(event, "open") != 0) {
                if (s < 0)
                        r = case_state(db, case_number, what, &closed, err);
                else if (strcmp(event, "close") == 0 && closed)
                        r = evd_error_set(err, -EALREADY, "%s: the case is closed already", what);
                else if (strcmp(event, "reopen") == 0 && !closed)
                        r = evd_error_set(err, -EALREADY, "%s: the case is open", what);
        }
        char actor[128] = "";
        if (r >= 0)
                r = session_user(db, actor, sizeof(actor), err);
        int64_t ev = 0;
        if (r >= 0)
                r = custody(db,
                            strcmp(event, "open") == 0    ? "case_opened"
                            : strcmp(event, "close") == 0 ? "case_closed"
                                                          : "case_reopened",
                            0, NULL, &ev, err, "case '%s'%s%s by %s: %s", case_number,
                            category ? " category " : "", category ? category : "", actor, reason);
        if (r >= 0) {
                DbParams p = {};
                db_param_text(&p, case_number);
                db_param_text(&p, event);
                db_param_text(&p, category);
                db_param_text(&p, reason);
                db_param_i64(&p, ev);
                r = db_exec(
                    db, what,
                    "INSERT INTO case_events (case_number, event, category, reason, custody_event_id) "
                    "VALUES ($1, $2, $3, $4, $5)",
                    &p, NULL, err);
        }
        return db_tx_close(db, nested, r, err);
}

int evd_case_open(EvdDb *db, const char *case_number, const char *category, const char *reason,
                  EvdError *err)
{
        if (!category)
                return evd_error_set(err, -EINVAL, "opening case '%s': a category is required (--category)",
                                     strna(case_number));
        return case_event(db, case_number, "open", category, reason, err);
}

int evd_case_close(EvdDb *db, const char *case_number, const char *reason, EvdError *err)
{
        return case_event(db, case_number, "close", NULL, reason, err);
}

int evd_case_reopen(EvdDb *db, const char *case_number, const char *reason, EvdError *err)
{
        return case_event(db, case_number, "reopen", NULL, reason, err);
}

void evd_case_info_free(EvdCaseInfo *c)
{
        evd_case_info_array_free(c, c ? 1 : 0);
}

void evd_case_info_array_free(EvdCaseInfo *v, size_t n)
{
        for (size_t i = 0; v && i < n; i++) {
                free(v[i].case_number);
                free(v[i].category);
                free(v[i].opened_by);
                free(v[i].closed_by);
        }
        free(v);
}

#define CASE_COLUMNS                                                                                        \
        "c.case_number, c.category, c.opened_by, " DB_US(                                                   \
            "c.opened_at") ", c.closed_at IS NOT NULL, "                                                    \
                           "" DB_US("c.closed_at") ", c.closed_by, "                                        \
                                                   "(SELECT count(*) FROM files_case_current x "            \
                                                   "WHERE x.current_case = c.case_number)"

static int cases_query(EvdDb *db, const char *case_number, const char *what, EvdCaseInfo **ret,
                       size_t *ret_n, EvdError *err)
{
        DbParams p = {};
        db_param_text(&p, case_number);
        _cleanup_(PQclearp) PGresult *res = NULL;
        EvdCaseInfo *v = NULL;
        size_t n = 0;
        int r = db_query_rows(db, what,
                              "SELECT " CASE_COLUMNS
                              " FROM cases_current c WHERE $1::text IS NULL OR c.case_number = $1 "
                              "ORDER BY c.case_number LIMIT 100000",
                              &p, sizeof(*v), &res, &v, &n, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                int row = (int)i;
                v[i].case_number = db_get_strdup(res, row, 0);
                v[i].category = db_get_strdup(res, row, 1);
                v[i].opened_by = db_get_strdup(res, row, 2);
                v[i].opened_us = db_get_i64(res, row, 3);
                v[i].closed = db_get_bool(res, row, 4);
                v[i].closed_us = db_get_i64(res, row, 5);
                v[i].closed_by = db_get_strdup(res, row, 6);
                v[i].n_files = (size_t)db_get_i64(res, row, 7);
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

int evd_case_get(EvdDb *db, const char *case_number, EvdCaseInfo **ret, EvdError *err)
{
        char what[128];
        snprintf(what, sizeof(what), "reading case '%.64s'", strna(case_number));
        int r = evd_case_number_check(case_number, err);
        if (r < 0)
                return r;
        EvdCaseInfo *v = NULL;
        size_t n = 0;
        r = cases_query(db, case_number, what, &v, &n, err);
        if (r < 0)
                return r;
        if (n == 0) {
                evd_case_info_array_free(v, 0);
                return evd_error_set(err, -ENOENT, "%s: no such case", what);
        }
        *ret = v;
        return 0;
}

int evd_case_list(EvdDb *db, EvdCaseInfo **ret, size_t *ret_n, EvdError *err)
{
        return cases_query(db, NULL, "listing cases", ret, ret_n, err);
}

static const char association_join[] =
    "JOIN LATERAL (SELECT cur.current_case AS cur, cur.association_id AS latest FROM files_case_current cur "
    "WHERE cur.file_id = f.id) x ON true";

static int association_insert(EvdDb *db, const Selected *s, const char *action, const char *case_number,
                              const char *reason, const char *actor, const char *what, EvdError *err)
{
        char sup[32] = "none";
        if (s->latest_id > 0)
                snprintf(sup, sizeof(sup), "%" PRId64, s->latest_id);
        int64_t ev = 0;
        int r =
            custody(db, strcmp(action, "assign") == 0 ? "case_assigned" : "case_unassigned", s->file_id,
                    s->device_id, &ev, err, "%s case '%s' (was '%s', supersedes association %s) by %s: %s",
                    action, case_number, s->current ? s->current : "", sup, actor, reason);
        if (r < 0)
                return r;
        DbParams p = {};
        db_param_i64(&p, s->file_id);
        db_param_text(&p, action);
        db_param_text(&p, case_number);
        if (s->latest_id > 0)
                db_param_i64(&p, s->latest_id);
        else
                db_param_null(&p);
        db_param_text(&p, reason);
        db_param_i64(&p, ev);
        return db_exec(db, what,
                       "INSERT INTO case_associations (file_id, action, case_number, supersedes, reason, "
                       "custody_event_id) VALUES ($1, $2, $3, $4, $5, $6)",
                       &p, NULL, err);
}

static int case_change(EvdDb *db, bool assign, const char *case_number, const EvdFileSelector *sel,
                       const char *reason, EvdLifecycleChange *ret, EvdError *err)
{
        char what[200], desc[160];
        int r = evd_file_selector_check(sel, err);
        if (r < 0)
                return r;
        evd_file_selector_describe(sel, desc, sizeof(desc));
        snprintf(what, sizeof(what), "%s %s %s case '%.64s'", assign ? "assigning" : "unassigning", desc,
                 assign ? "to" : "from", strna(case_number));
        r = evd_case_number_check(case_number, err);
        if (r >= 0)
                r = check_reason(reason, what, err);
        if (r < 0)
                return r;

        EvdLifecycleChange c = {};
        Selected *v = NULL;
        size_t n = 0;
        bool nested;
        r = db_tx_open(db, &nested, err);
        if (r < 0)
                return r;
        r = db_lifecycle_lock(db, err);
        if (r >= 0 && assign) {
                bool closed = false;
                r = case_state(db, case_number, what, &closed, err);
                if (r >= 0 && closed)
                        r = evd_error_set(err, -EPERM, "%s: the case is closed (reopen it first)", what);
        }
        if (r >= 0)
                r = select_files(db, sel, association_join, what, &v, &n, err);
        char actor[128] = "";
        if (r >= 0)
                r = session_user(db, actor, sizeof(actor), err);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                bool in_case = v[i].current && strcmp(v[i].current, case_number) == 0;
                if (assign == in_case) {
                        c.n_unchanged++;
                        continue;
                }
                r = association_insert(db, &v[i], assign ? "assign" : "unassign", case_number, reason, actor,
                                       what, err);
                if (r >= 0)
                        r = change_add(&c, v[i].file_id);
        }
        if (r >= 0 && !assign && c.n_changed == 0)
                r = evd_error_set(err, -EALREADY, "%s: none of the %zu matched file(s) is in that case",
                                  what, n);
        c.n_matched = n;
        selected_free(v, n);
        r = db_tx_close(db, nested, r, err);
        if (r < 0 || !ret) {
                evd_lifecycle_change_clear(&c);
                return r;
        }
        *ret = c;
        return 0;
}

int evd_case_assign(EvdDb *db, const char *case_number, const EvdFileSelector *sel, const char *reason,
                    EvdLifecycleChange *ret, EvdError *err)
{
        return case_change(db, true, case_number, sel, reason, ret, err);
}

int evd_case_unassign(EvdDb *db, const char *case_number, const EvdFileSelector *sel, const char *reason,
                      EvdLifecycleChange *ret, EvdError *err)
{
        return case_change(db, false, case_number, sel, reason, ret, err);
}

void evd_case_file_array_free(EvdCaseFile *v, size_t n)
{
        for (size_t i = 0; v && i < n; i++) {
                free(v[i].device_id);
                free(v[i].officer_id);
                free(v[i].recorder_case);
                free(v[i].current_case);
        }
        free(v);
}

void evd_association_array_free(EvdAssociation *v, size_t n)
{
        for (size_t i = 0; v && i < n; i++) {
                free(v[i].action);
                free(v[i].case_number);
                free(v[i].reason);
                free(v[i].actor);
        }
        free(v);
}

int evd_case_files(EvdDb *db, const char *case_number, EvdCaseFile **ret_files, size_t *ret_n_files,
                   EvdAssociation **ret_history, size_t *ret_n_history, EvdError *err)
{
        char what[128];
        snprintf(what, sizeof(what), "listing the files of case '%.64s'", strna(case_number));
        int r = evd_case_number_check(case_number, err);
        if (r < 0)
                return r;
        DbParams p = {};
        db_param_text(&p, case_number);
        _cleanup_(PQclearp) PGresult *res = NULL;
        EvdCaseFile *files = NULL;
        size_t n = 0;
        r = db_query_rows(
            db, what,
            "SELECT f.id, f.device_id, f.officer_id, f.seq, " DB_US(
                "coalesce(f.recorded_start, f.ingested_at)") ", c.recorder_case, c.current_case, "
                                                             "c.association_id, f.sha256, "
                                                             "EXISTS (SELECT 1 FROM disposals d WHERE "
                                                             "d.file_id = f.id) "
                                                             "FROM files_case_current c JOIN files f ON "
                                                             "f.id = c.file_id WHERE c.current_case = $1 "
                                                             "ORDER BY f.id LIMIT 100000",
            &p, sizeof(*files), &res, &files, &n, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                int row = (int)i;
                files[i].file_id = db_get_i64(res, row, 0);
                files[i].device_id = db_get_strdup(res, row, 1);
                files[i].officer_id = db_get_strdup(res, row, 2);
                files[i].has_seq = !db_is_null(res, row, 3);
                files[i].seq = (uint64_t)db_get_i64(res, row, 3);
                files[i].recorded_us = db_get_i64(res, row, 4);
                files[i].recorder_case = db_get_strdup(res, row, 5);
                files[i].current_case = db_get_strdup(res, row, 6);
                files[i].association_id = db_get_i64(res, row, 7);
                snprintf(files[i].sha256, sizeof(files[i].sha256), "%s", PQgetvalue(res, row, 8));
                files[i].disposed = db_get_bool(res, row, 9);
        }

        PQclear(steal_ptr(&res));
        EvdAssociation *h = NULL;
        size_t m = 0;
        r = db_query_rows(db, what,
                          "SELECT id, file_id, action, case_number, supersedes, reason, actor, " DB_US(
                              "at") ", custody_event_id FROM case_associations WHERE case_number = $1 "
                                    "ORDER BY id LIMIT 100000",
                          &p, sizeof(*h), &res, &h, &m, err);
        if (r < 0) {
                evd_case_file_array_free(files, n);
                return r;
        }
        for (size_t i = 0; i < m; i++) {
                int row = (int)i;
                h[i].id = db_get_i64(res, row, 0);
                h[i].file_id = db_get_i64(res, row, 1);
                h[i].action = db_get_strdup(res, row, 2);
                h[i].case_number = db_get_strdup(res, row, 3);
                h[i].supersedes = db_get_i64(res, row, 4);
                h[i].reason = db_get_strdup(res, row, 5);
                h[i].actor = db_get_strdup(res, row, 6);
                h[i].at_us = db_get_i64(res, row, 7);
                h[i].custody_event_id = db_get_i64(res, row, 8);
        }
        *ret_files = files;
        *ret_n_files = n;
        *ret_history = h;
        *ret_n_history = m;
        return 0;
}

int evd_case_current_of_files(EvdDb *db, const int64_t *file_ids, size_t n, char ***ret_current,
                              char ***ret_recorder, EvdError *err)
{
        char **cur = calloc(n ? n : 1, sizeof(char *)), **rec = calloc(n ? n : 1, sizeof(char *));
        if (!cur || !rec) {
                free(cur);
                free(rec);
                return -ENOMEM;
        }
        /* one query: ids as a literal array */
        _cleanup_free_ char *arr = db_id_array(file_ids, n);
        int r = arr ? 0 : -ENOMEM;
        _cleanup_(PQclearp) PGresult *res = NULL;
        if (r >= 0) {
                DbParams p = {};
                db_param_text(&p, arr);
                r = db_exec(db, "reading the current cases of files",
                            "SELECT file_id, current_case, recorder_case FROM files_case_current "
                            "WHERE file_id = ANY($1::bigint[])",
                            &p, &res, err);
        }
        for (int row = 0; r >= 0 && row < PQntuples(res); row++) {
                int64_t id = db_get_i64(res, row, 0);
                for (size_t i = 0; i < n; i++)
                        if (file_ids[i] == id && !cur[i] && !rec[i]) {
                                cur[i] = db_get_strdup(res, row, 1);
                                rec[i] = db_get_strdup(res, row, 2);
                        }
        }
        if (r < 0) {
                evd_strv_free(cur, n);
                evd_strv_free(rec, n);
                return r;
        }
        *ret_current = cur;
        *ret_recorder = rec;
        return 0;
}

/* ---- marks ------------------------------------------------------------------------------------------ */

static const char *const mark_kinds[_EVD_MARK_KIND_MAX] = {
    [EVD_MARK_IMPORTANT] = "important",
    [EVD_MARK_LONG_TERM] = "long_term",
    [EVD_MARK_HOLD] = "hold",
};

static const char *const long_term_reasons[_EVD_LONG_TERM_REASON_MAX] = {
    [EVD_LONG_TERM_DISPUTE] = "dispute",
    [EVD_LONG_TERM_OBSTRUCTION] = "obstruction",
    [EVD_LONG_TERM_MASS_INCIDENT] = "mass_incident",
    [EVD_LONG_TERM_OTHER] = "other",
};

const char *evd_mark_kind_to_string(EvdMarkKind k)
{
        return (unsigned)k < _EVD_MARK_KIND_MAX ? mark_kinds[k] : NULL;
}

/* "long-term" and "long_term" alike */
static bool same_name(const char *a, const char *b)
{
        for (; *a && *b; a++, b++)
                if (*a != *b && !((*a == '-' || *a == '_') && (*b == '-' || *b == '_')))
                        return false;
        return *a == *b;
}

int evd_mark_kind_from_string(const char *s)
{
        for (unsigned i = 0; s && i < _EVD_MARK_KIND_MAX; i++)
                if (same_name(s, mark_kinds[i]))
                        return (int)i;
        return -EINVAL;
}

const char *evd_long_term_reason_to_string(EvdLongTermReason r)
{
        return (unsigned)r < _EVD_LONG_TERM_REASON_MAX ? long_term_reasons[r] : NULL;
}

int evd_long_term_reason_from_string(const char *s)
{
        for (unsigned i = 1; s && i < _EVD_LONG_TERM_REASON_MAX; i++)
                if (same_name(s, long_term_reasons[i]))
                        return (int)i;
        return -EINVAL;
}

static int mark_change(EvdDb *db, bool set, EvdMarkKind kind, const EvdFileSelector *sel,
                       EvdLongTermReason code, const char *reason, EvdLifecycleChange *ret, EvdError *err)
{
        const char *k = evd_mark_kind_to_string(kind);
        if (!k)
                return evd_error_set(err, -EINVAL, "unknown mark (important, long-term or hold)");
        char what[200], desc[160];
        int r = evd_file_selector_check(sel, err);
        if (r < 0)
                return r;
        evd_file_selector_describe(sel, desc, sizeof(desc));
        snprintf(what, sizeof(what), "%s mark '%s' %s %s", set ? "setting" : "clearing", k,
                 set ? "on" : "of", desc);
        r = check_reason(reason, what, err);
        if (r < 0)
                return r;
        const char *code_s = NULL;
        if (set && kind == EVD_MARK_LONG_TERM) {
                code_s = evd_long_term_reason_to_string(code);
                if (!code_s)
                        return evd_error_set(
                            err, -EINVAL,
                            "%s: a long-term mark needs one of the reasons of 002:§18: dispute, "
                            "obstruction, mass-incident, other (with the text in --reason)",
                            what);
        } else if (code != EVD_LONG_TERM_NONE)
                return evd_error_set(err, -EINVAL, "%s: a reason code is only for setting a long-term mark",
                                     what);

        _cleanup_free_ char *join = NULL;
        if (asprintf(
                &join,
                "LEFT JOIN LATERAL (SELECT CASE WHEN m.action = 'set' THEN 'set' END AS cur, m.id AS latest "
                "FROM file_marks m WHERE m.file_id = f.id AND m.kind = '%s' ORDER BY m.id DESC LIMIT 1) x "
                "ON true",
                k) < 0)
                return -ENOMEM;

        EvdLifecycleChange c = {};
        Selected *v = NULL;
        size_t n = 0;
        bool nested;
        r = db_tx_open(db, &nested, err);
        if (r < 0)
                return r;
        r = db_lifecycle_lock(db, err);
        if (r >= 0)
                r = select_files(db, sel, join, what, &v, &n, err);
        char actor[128] = "";
        if (r >= 0)
                r = session_user(db, actor, sizeof(actor), err);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                if (set == (v[i].current != NULL)) {
                        c.n_unchanged++;
                        continue;
                }
                char sup[32] = "none";
                if (v[i].latest_id > 0)
                        snprintf(sup, sizeof(sup), "%" PRId64, v[i].latest_id);
                int64_t ev = 0;
                r = custody(db, set ? "mark_set" : "mark_cleared", v[i].file_id, v[i].device_id, &ev, err,
                            "%s %s%s%s (supersedes mark %s) by %s: %s", set ? "set" : "clear", k,
                            code_s ? " reason " : "", code_s ? code_s : "", sup, actor, reason);
                if (r < 0)
                        break;
                DbParams p = {};
                db_param_i64(&p, v[i].file_id);
                db_param_text(&p, k);
                db_param_text(&p, set ? "set" : "clear");
                db_param_text(&p, code_s);
                db_param_text(&p, reason);
                if (v[i].latest_id > 0)
                        db_param_i64(&p, v[i].latest_id);
                else
                        db_param_null(&p);
                db_param_i64(&p, ev);
                r = db_exec(
                    db, what,
                    "INSERT INTO file_marks (file_id, kind, action, reason_code, reason, supersedes, "
                    "custody_event_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &p, NULL, err);
                if (r >= 0)
                        r = change_add(&c, v[i].file_id);
        }
        if (r >= 0 && !set && c.n_changed == 0)
                r = evd_error_set(err, -EALREADY, "%s: none of the %zu matched file(s) has that mark", what,
                                  n);
        c.n_matched = n;
        selected_free(v, n);
        r = db_tx_close(db, nested, r, err);
        if (r < 0 || !ret) {
                evd_lifecycle_change_clear(&c);
                return r;
        }
        *ret = c;
        return 0;
}

int evd_mark_set(EvdDb *db, EvdMarkKind kind, const EvdFileSelector *sel, EvdLongTermReason code,
                 const char *reason, EvdLifecycleChange *ret, EvdError *err)
{
        return mark_change(db, true, kind, sel, code, reason, ret, err);
}

int evd_mark_clear(EvdDb *db, EvdMarkKind kind, const EvdFileSelector *sel, const char *reason,
                   EvdLifecycleChange *ret, EvdError *err)
{
        return mark_change(db, false, kind, sel, EVD_LONG_TERM_NONE, reason, ret, err);
}

void evd_mark_array_free(EvdMark *v, size_t n)
{
        for (size_t i = 0; v && i < n; i++) {
                free(v[i].reason);
                free(v[i].actor);
        }
        free(v);
}

int evd_mark_list(EvdDb *db, int64_t file_id, EvdMark **ret, size_t *ret_n, EvdError *err)
{
        DbParams p = {};
        db_param_i64(&p, file_id);
        _cleanup_(PQclearp) PGresult *res = NULL;
        EvdMark *v = NULL;
        size_t n = 0;
        int r = db_query_rows(
            db, "listing marks",
            "SELECT id, file_id, kind, reason_code, reason, actor, " DB_US(
                "at") " FROM file_marks_current WHERE action = 'set' AND ($1 = 0 OR file_id = $1) "
                      "ORDER BY file_id, kind LIMIT 100000",
            &p, sizeof(*v), &res, &v, &n, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                int row = (int)i;
                v[i].id = db_get_i64(res, row, 0);
                v[i].file_id = db_get_i64(res, row, 1);
                v[i].kind = (EvdMarkKind)evd_mark_kind_from_string(PQgetvalue(res, row, 2));
                int c =
                    db_is_null(res, row, 3) ? 0 : evd_long_term_reason_from_string(PQgetvalue(res, row, 3));
                v[i].code = c > 0 ? (EvdLongTermReason)c : EVD_LONG_TERM_NONE;
                v[i].reason = db_get_strdup(res, row, 4);
                v[i].actor = db_get_strdup(res, row, 5);
                v[i].at_us = db_get_i64(res, row, 6);
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

/* ---- retention facts -------------------------------------------------------------------------------- */

void db_lifecycle_facts_clear(EvdRetentionFacts *f)
{
        free(f->device_id);
        free(f->officer_id);
        free(f->recorder_case);
        free(f->current_case);
        free(f->case_category);
        free(f->long_term_reason);
        free(f->original_path);
        free(f->archive_path);
        *f = (EvdRetentionFacts){};
}

void db_lifecycle_facts_free(EvdRetentionFacts *v, size_t n)
{
        for (size_t i = 0; v && i < n; i++)
                db_lifecycle_facts_clear(&v[i]);
        free(v);
}

int db_lifecycle_facts(EvdDb *db, const int64_t *file_ids, size_t n_ids, EvdRetentionFacts **ret,
                       size_t *ret_n, bool *ret_truncated, EvdError *err)
{
        _cleanup_free_ char *arr = NULL;
        if (file_ids && !(arr = db_id_array(file_ids, n_ids)))
                return -ENOMEM;
        DbParams p = {};
        db_param_text(&p, arr);
        db_param_i64(&p, EVD_DB_LOG_MAX_ROWS + 1);
        _cleanup_(PQclearp) PGresult *res = NULL;
        /* clang-format off */
        int r = db_exec(db, "reading retention facts",
                        "SELECT f.id, f.device_id, f.officer_id, f.seq,\n"
                        "       " DB_US("coalesce(f.recorded_start, f.ingested_at)") ",\n"
                        "       " DB_US("f.ingested_at") ", f.size, cc.recorder_case, cc.current_case,\n"
                        "       k.case_number IS NOT NULL, k.category, k.closed_at IS NOT NULL,\n"
                        "       " DB_US("k.closed_at") ",\n"
                        "       EXISTS (SELECT 1 FROM file_marks_current m WHERE m.file_id = f.id\n"
                        "               AND m.kind = 'important' AND m.action = 'set'),\n"
                        "       lt.reason_code,\n"
                        "       EXISTS (SELECT 1 FROM file_marks_current m WHERE m.file_id = f.id\n"
                        "               AND m.kind = 'hold' AND m.action = 'set'),\n"
                        "       d.id IS NOT NULL, f.original_path, f.archive_path, f.sha256, f.archive_sha256\n"
                        "FROM files f JOIN files_case_current cc ON cc.file_id = f.id\n"
                        "LEFT JOIN cases_current k ON k.case_number = cc.current_case\n"
                        "LEFT JOIN file_marks_current lt ON lt.file_id = f.id AND lt.kind = 'long_term'\n"
                        "                                AND lt.action = 'set'\n"
                        "LEFT JOIN disposals d ON d.file_id = f.id\n"
                        "WHERE $1::bigint[] IS NULL OR f.id = ANY($1::bigint[])\n"
                        "ORDER BY f.id LIMIT $2",
                        &p, &res, err);
        /* clang-format on */
        if (r < 0)
                return r;
        size_t n = (size_t)PQntuples(res);
        bool truncated = n > EVD_DB_LOG_MAX_ROWS;
        if (truncated)
                n = EVD_DB_LOG_MAX_ROWS;
        EvdRetentionFacts *v = calloc(n ? n : 1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                int row = (int)i;
                EvdRetentionFacts *f = &v[i];
                f->file_id = db_get_i64(res, row, 0);
                f->device_id = db_get_strdup(res, row, 1);
                f->officer_id = db_get_strdup(res, row, 2);
                f->has_seq = !db_is_null(res, row, 3);
                f->seq = (uint64_t)db_get_i64(res, row, 3);
                f->recorded_us = db_get_i64(res, row, 4);
                f->ingested_us = db_get_i64(res, row, 5);
                f->size = (uint64_t)db_get_i64(res, row, 6);
                f->recorder_case = db_get_strdup(res, row, 7);
                f->current_case = db_get_strdup(res, row, 8);
                f->case_known = db_get_bool(res, row, 9);
                f->case_category = db_get_strdup(res, row, 10);
                f->case_closed = db_get_bool(res, row, 11);
                f->case_closed_us = db_get_i64(res, row, 12);
                f->important = db_get_bool(res, row, 13);
                f->long_term = !db_is_null(res, row, 14);
                f->long_term_reason = db_get_strdup(res, row, 14);
                f->hold = db_get_bool(res, row, 15);
                f->disposed = db_get_bool(res, row, 16);
                f->original_path = db_get_strdup(res, row, 17);
                f->archive_path = db_get_strdup(res, row, 18);
                snprintf(f->sha256, sizeof(f->sha256), "%s", PQgetvalue(res, row, 19));
                snprintf(f->archive_sha256, sizeof(f->archive_sha256), "%s", PQgetvalue(res, row, 20));
                if (!f->device_id || !f->original_path) {
                        db_lifecycle_facts_free(v, n);
                        return -ENOMEM;
                }
        }
        *ret = v;
        *ret_n = n;
        if (ret_truncated)
                *ret_truncated = truncated;
        return 0;
}

/* ---- disposal --------------------------------------------------------------------------------------- */

int db_disposal_batch_insert(EvdDb *db, const char *reason, const int64_t *file_ids,
                             const int64_t *expired_us, size_t n, int64_t *ret_batch_id, EvdError *err)
{
        const char *what = "proposing a disposal batch";
        char actor[128] = "";
        int r = session_user(db, actor, sizeof(actor), err);
        int64_t ev = 0;
        if (r >= 0)
                r = custody(db, "disposal_proposed", 0, NULL, &ev, err,
                            "%zu file(s) proposed for disposal by %s: %s", n, actor, reason);
        _cleanup_(PQclearp) PGresult *res = NULL;
        if (r >= 0) {
                DbParams p = {};
                db_param_text(&p, reason);
                db_param_i64(&p, ev);
                r = db_exec(
                    db, what,
                    "INSERT INTO disposal_batches (reason, custody_event_id) VALUES ($1, $2) RETURNING id",
                    &p, &res, err);
        }
        if (r < 0)
                return r;
        int64_t batch = db_get_i64(res, 0, 0);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                DbParams p = {};
                db_param_i64(&p, batch);
                db_param_i64(&p, file_ids[i]);
                db_param_time(&p, expired_us[i]);
                r = db_exec(
                    db, what,
                    "INSERT INTO disposal_batch_files (batch_id, file_id, expired_at) VALUES ($1, $2, $3)",
                    &p, NULL, err);
        }
        if (r >= 0)
                *ret_batch_id = batch;
        return r;
}

int evd_disposal_decide(EvdDb *db, int64_t batch_id, bool approve, const char *reason, EvdError *err)
{
        char what[96];
        snprintf(what, sizeof(what), "%s disposal batch %" PRId64, approve ? "approving" : "rejecting",
                 batch_id);
        int r = check_reason(reason, what, err);
        if (r < 0)
                return r;
        bool nested;
        r = db_tx_open(db, &nested, err);
        if (r < 0)
                return r;
        r = db_lifecycle_lock(db, err);
        _cleanup_(PQclearp) PGresult *res = NULL;
        if (r >= 0) {
                DbParams p = {};
                db_param_i64(&p, batch_id);
                r = db_exec(
                    db, what,
                    "SELECT b.actor, b.actor = session_user, d.decision, d.actor FROM disposal_batches b "
                    "LEFT JOIN disposal_decisions d ON d.batch_id = b.id WHERE b.id = $1",
                    &p, &res, err);
        }
        if (r >= 0 && PQntuples(res) == 0)
                r = evd_error_set(err, -ENOENT, "%s: no such batch", what);
        else if (r >= 0 && !db_is_null(res, 0, 2))
                r = evd_error_set(err, -EALREADY, "%s: the batch was %s already by %s", what,
                                  strcmp(PQgetvalue(res, 0, 2), "approve") == 0 ? "approved" : "rejected",
                                  PQgetvalue(res, 0, 3));
        else if (r >= 0 && db_get_bool(res, 0, 1))
                r = evd_error_set(
                    err, -EPERM,
                    "%s: the batch was proposed by %s; a different admin (another database login) "
                    "must decide on it",
                    what, PQgetvalue(res, 0, 0));
        char actor[128] = "";
        if (r >= 0)
                r = session_user(db, actor, sizeof(actor), err);
        int64_t ev = 0;
        if (r >= 0)
                r = custody(db, approve ? "disposal_approved" : "disposal_rejected", 0, NULL, &ev, err,
                            "batch %" PRId64 " (proposed by %s) %s by %s: %s", batch_id,
                            PQgetvalue(res, 0, 0), approve ? "approved" : "rejected", actor, reason);
        if (r >= 0) {
                DbParams p = {};
                db_param_i64(&p, batch_id);
                db_param_text(&p, approve ? "approve" : "reject");
                db_param_text(&p, reason);
                db_param_i64(&p, ev);
                r = db_exec(db, what,
                            "INSERT INTO disposal_decisions (batch_id, decision, reason, custody_event_id) "
                            "VALUES ($1, $2, $3, $4)",
                            &p, NULL, err);
        }
        return db_tx_close(db, nested, r, err);
}

int db_disposal_execution_lock(EvdDb *db, int64_t batch_id, bool take, EvdError *err)
{
        DbParams p = {};
        db_param_i64(&p, batch_id);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, "locking a disposal batch",
                        take ? "SELECT pg_try_advisory_lock(" DISPOSAL_LOCK ", $1::int)"
                             : "SELECT pg_advisory_unlock(" DISPOSAL_LOCK ", $1::int)",
                        &p, &res, err);
        if (r < 0)
                return r;
        if (take && !db_get_bool(res, 0, 0))
                return evd_error_set(
                    err, -EBUSY, "disposal batch %" PRId64 " is being executed by another process right now",
                    batch_id);
        return 0;
}

int db_disposal_record(EvdDb *db, int64_t batch_id, const EvdRetentionFacts *f, const char *detail,
                       EvdError *err)
{
        char what[96];
        snprintf(what, sizeof(what), "recording the disposal of file %" PRId64, f->file_id);
        bool nested;
        int r = db_tx_open(db, &nested, err);
        if (r < 0)
                return r;
        int64_t ev = 0;
        r = custody(db, "disposed", f->file_id, f->device_id, &ev, err, "%s", detail);
        if (r >= 0) {
                DbParams p = {};
                db_param_i64(&p, batch_id);
                db_param_i64(&p, f->file_id);
                db_param_text(&p, f->sha256);
                db_param_text(&p, f->archive_sha256[0] ? f->archive_sha256 : NULL);
                db_param_text(&p, f->original_path);
                db_param_text(&p, f->archive_path);
                db_param_i64(&p, ev);
                r = db_exec(
                    db, what,
                    "INSERT INTO disposals (batch_id, file_id, sha256, archive_sha256, original_path, "
                    "archive_path, custody_event_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &p, NULL, err);
        }
        return db_tx_close(db, nested, r, err);
}

int db_disposal_note(EvdDb *db, int64_t file_id, const char *kind, const char *detail, EvdError *err)
{
        EvdCustodyEntry e = {.kind = kind, .file_id = file_id, .detail = detail};
        return evd_custody_append(db, &e, NULL, err);
}

int db_disposal_finish(EvdDb *db, int64_t batch_id, size_t n_disposed, size_t n_skipped, const char *detail,
                       EvdError *err)
{
        bool nested;
        int r = db_tx_open(db, &nested, err);
        if (r < 0)
                return r;
        int64_t ev = 0;
        r = custody(db, "disposal_executed", 0, NULL, &ev, err, "%s", detail);
        if (r >= 0) {
                DbParams p = {};
                db_param_i64(&p, batch_id);
                db_param_i64(&p, (int64_t)n_disposed);
                db_param_i64(&p, (int64_t)n_skipped);
                db_param_i64(&p, ev);
                r = db_exec(db, "recording the end of a disposal",
                            "INSERT INTO disposal_executions (batch_id, files_disposed, files_skipped, "
                            "custody_event_id) VALUES ($1, $2, $3, $4)",
                            &p, NULL, err);
        }
        return db_tx_close(db, nested, r, err);
}

const char *evd_disposal_state_to_string(EvdDisposalState s)
{
        static const char *const names[] = {"proposed", "approved", "rejected", "interrupted", "executed"};
        return (unsigned)s < ELEMENTSOF(names) ? names[s] : NULL;
}

void evd_disposal_batch_array_free(EvdDisposalBatch *v, size_t n)
{
        for (size_t i = 0; v && i < n; i++) {
                free(v[i].proposed_by);
                free(v[i].reason);
                free(v[i].decided_by);
                free(v[i].decision_reason);
                free(v[i].file_ids);
        }
        free(v);
}

int evd_disposal_list(EvdDb *db, int64_t batch_id, EvdDisposalBatch **ret, size_t *ret_n, EvdError *err)
{
        DbParams p = {};
        db_param_i64(&p, batch_id);
        _cleanup_(PQclearp) PGresult *res = NULL;
        EvdDisposalBatch *v = NULL;
        size_t n = 0;
        int r = db_query_rows(
            db, "listing disposal batches",
            "SELECT b.id, b.actor, " DB_US("b.at") ", b.reason, d.decision, d.actor, " DB_US(
                "d.at") ", d.reason, e.id IS NOT NULL, "
                        "(SELECT count(*) FROM disposal_batch_files x WHERE x.batch_id = b.id), "
                        "(SELECT count(*) FROM disposals x WHERE x.batch_id = b.id) "
                        "FROM disposal_batches b LEFT JOIN disposal_decisions d ON d.batch_id = b.id "
                        "LEFT JOIN disposal_executions e ON e.batch_id = b.id "
                        "WHERE $1 = 0 OR b.id = $1 ORDER BY b.id DESC LIMIT 10000",
            &p, sizeof(*v), &res, &v, &n, err);
        if (r < 0)
                return r;
        if (batch_id > 0 && n == 0) {
                free(v);
                return evd_error_set(err, -ENOENT, "disposal batch %" PRId64 " does not exist", batch_id);
        }
        for (size_t i = 0; i < n; i++) {
                int row = (int)i;
                EvdDisposalBatch *b = &v[i];
                b->id = db_get_i64(res, row, 0);
                b->proposed_by = db_get_strdup(res, row, 1);
                b->proposed_us = db_get_i64(res, row, 2);
                b->reason = db_get_strdup(res, row, 3);
                const char *decision = db_is_null(res, row, 4) ? NULL : PQgetvalue(res, row, 4);
                b->decided_by = db_get_strdup(res, row, 5);
                b->decided_us = db_get_i64(res, row, 6);
                b->decision_reason = db_get_strdup(res, row, 7);
                b->n_files = (size_t)db_get_i64(res, row, 9);
                b->n_disposed = (size_t)db_get_i64(res, row, 10);
                b->state = !decision                         ? EVD_DISPOSAL_PROPOSED
                           : strcmp(decision, "reject") == 0 ? EVD_DISPOSAL_REJECTED
                           : db_get_bool(res, row, 8)        ? EVD_DISPOSAL_EXECUTED
                           : b->n_disposed > 0               ? EVD_DISPOSAL_INTERRUPTED
                                                             : EVD_DISPOSAL_APPROVED;
        }
        if (batch_id > 0 && n == 1) {
                PQclear(steal_ptr(&res));
                size_t m = 0;
                r = db_query_rows(
                    db, "listing the files of a disposal batch",
                    "SELECT file_id FROM disposal_batch_files WHERE batch_id = $1 ORDER BY file_id", &p,
                    sizeof(int64_t), &res, &v[0].file_ids, &m, err);
                for (size_t i = 0; r >= 0 && i < m; i++)
                        v[0].file_ids[i] = db_get_i64(res, (int)i, 0);
                if (r < 0) {
                        evd_disposal_batch_array_free(v, n);
                        return r;
                }
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

int evd_disposal_file_disposed(EvdDb *db, int64_t file_id, EvdError *err)
{
        DbParams p = {};
        db_param_i64(&p, file_id);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, "asking whether a file was disposed",
                        "SELECT 1 FROM disposals WHERE file_id = $1", &p, &res, err);
        if (r < 0)
                return r;
        return PQntuples(res) > 0;
}
