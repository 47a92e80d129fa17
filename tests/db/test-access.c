/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Who may see what (migration 8, lib/access.h, lib/export.h) against a real PostgreSQL with one login per
 * role: a viewer sees its units' normal files and nothing else, not even with plain SQL; confidentiality
 * is set by an admin with a reason and kept as history; requests are approved by another admin, expire,
 * and every use is custody-logged with requester, approver and purpose; exports land only below the
 * export root, carry what is needed to check them, and every refusal is logged. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access.h"
#include "check.h"
#include "common/pg.h"
#include "custody-audit.h"
#include "custody.h"
#include "db.h"
#include "export.h"
#include "hash.h"

#define T0_US INT64_C(1718000000123456)

typedef struct Site {
        char *ci; /* superuser */
        char *admin_ci, *admin2_ci, *viewer_ci, *viewer2_ci, *auditor_ci;
        EvdDb *admin, *admin2, *viewer, *viewer2, *auditor;
        char *viewer_login, *viewer2_login;
        int64_t file[4]; /* U1 normal C-1, U1 normal C-2, U2 normal C-3, U1 normal C-2 */
        char store[64];
} Site;

static void site_free(Site *s)
{
        evd_db_close(s->admin);
        evd_db_close(s->admin2);
        evd_db_close(s->viewer);
        evd_db_close(s->viewer2);
        evd_db_close(s->auditor);
        free(s->ci);
        free(s->admin_ci);
        free(s->admin2_ci);
        free(s->viewer_ci);
        free(s->viewer2_ci);
        free(s->auditor_ci);
        free(s->viewer_login);
        free(s->viewer2_login);
        if (s->store[0]) {
                char cmd[128];
                snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->store);
                (void)system(cmd);
        }
}

static int login(Site *s, const char *group, char **ret_ci, EvdDb **ret_db)
{
        CHECK_OR_RET(test_pg_login(s->ci, group, ret_ci) == 0);
        EvdError err = {};
        int r = evd_db_open(*ret_ci, ret_db, &err);
        if (r < 0)
                printf("# open as %s: %s\n", group, evd_error_message(&err, r));
        CHECK_OR_RET(r == 0);
        return 0;
}

static int store_file(Site *s, const char *rel, const char *content, uint8_t sha[EVD_DIGEST_SIZE])
{
        char path[256], cmd[400];
        snprintf(path, sizeof(path), "%s/%s", s->store, rel);
        snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", path);
        CHECK_OR_RET(system(cmd) == 0);
        FILE *f = fopen(path, "w");
        CHECK_OR_RET(f != NULL);
        fputs(content, f);
        fclose(f);
        evd_hash_buffer(EVD_HASH_SHA256, content, strlen(content), sha);
        return 0;
}

/* Two recorders of units U1 and U2, four files in three cases, stored for real; viewer in U1. */
static int site_new(Site *s, const char *tag)
{
        *s = (Site){};
        snprintf(s->store, sizeof(s->store), "/tmp/evt-access-XXXXXX");
        CHECK_OR_RET(mkdtemp(s->store) != NULL);
        CHECK_OR_RET(test_pg_new_database(tag, &s->ci) == 0);
        {
                EvdDb *su = NULL;
                CHECK_OR_RET(evd_db_open(s->ci, &su, NULL) == 0);
                evd_db_close(su);
        }
        CHECK_OR_RET(login(s, "evidock_admin", &s->admin_ci, &s->admin) == 0);
        CHECK_OR_RET(login(s, "evidock_admin", &s->admin2_ci, &s->admin2) == 0);
        CHECK_OR_RET(login(s, "evidock_viewer", &s->viewer_ci, &s->viewer) == 0);
        CHECK_OR_RET(login(s, "evidock_viewer", &s->viewer2_ci, &s->viewer2) == 0);
        CHECK_OR_RET(login(s, "evidock_auditor", &s->auditor_ci, &s->auditor) == 0);
        CHECK_OR_RET(evd_access_whoami(s->viewer, &s->viewer_login, NULL) == 0);
        CHECK_OR_RET(evd_access_whoami(s->viewer2, &s->viewer2_login, NULL) == 0);

        const char *const devices[] = {"AB12345", "CD67890"};
        const char *const units[] = {"U1", "U2"};
        for (int i = 0; i < 2; i++) {
                EvdDbDevice dev = {.device_id = (char *)devices[i],
                                   .officer_id = (char *)"012345",
                                   .unit_code = (char *)units[i],
                                   .suite = EVD_SUITE_ED25519_SHA256,
                                   .public_key_pem =
                                       (char *)"-----BEGIN PUBLIC KEY-----\nMCowBQ\n-----END PUBLIC "
                                               "KEY-----\n",
                                   .key_id = (char *)"k1"};
                CHECK_OR_RET(evd_db_device_enroll(s->admin, &dev, NULL) == 0);
        }
        static const struct {
                int dev;
                const char *case_number;
                const char *name;
        } files[] = {{0, "C-1", "A.MP4"}, {0, "C-2", "B.MP4"}, {1, "C-3", "C.MP4"}, {0, "C-2", "D.MP4"}};
        for (int i = 0; i < 4; i++) {
                EvdDbDocking d = {
                    .device_id = devices[files[i].dev], .transport = "dir", .docked_us = T0_US};
                int64_t dock = 0;
                CHECK_OR_RET(evd_db_docking_begin(s->admin, &d, &dock, NULL) == 0);
                char rel[128], content[128];
                snprintf(rel, sizeof(rel), "originals/%s/2024-06-10/%s", devices[files[i].dev],
                         files[i].name);
                snprintf(content, sizeof(content), "recording %s of %s\n", files[i].name,
                         files[i].case_number);
                uint8_t sha[EVD_DIGEST_SIZE];
                CHECK_OR_RET(store_file(s, rel, content, sha) == 0);
                EvdDbFile f = {.docking_id = dock,
                               .device_id = devices[files[i].dev],
                               .has_seq = true,
                               .seq = (uint64_t)i + 1,
                               .method = EVD_METHOD_VIDEO,
                               .case_number = files[i].case_number,
                               .ingested_us = T0_US,
                               .stored_us = T0_US,
                               .size = strlen(content),
                               .sha256 = sha,
                               .chain_record = "SEG;v=1;seq=1;sig=...",
                               .source_path = files[i].name,
                               .original_path = rel,
                               .verdict = EVD_VERDICT_UNSIGNED,
                               .retention_class = "standard"};
                EvdCustodyEntry ev = {
                    .kind = "recorded", .device_id = devices[files[i].dev], .docking_id = dock};
                CHECK_OR_RET(evd_db_file_record(s->admin, &f, NULL, 0, &ev, 1, &s->file[i], NULL) == 0);
        }
        CHECK_OR_RET(evd_access_unit_member(s->admin, s->viewer_login, "U1", true, NULL) == 0);
        return 0;
}

static long long count_as(const char *ci, const char *sql)
{
        return test_pg_query_int(ci, sql);
}

static int custody_ok(Site *s)
{
        EvdCustodyReport rep;
        CHECK_OR_RET(evd_custody_verify(s->admin, &rep, NULL) == 0);
        if (!rep.ok)
                printf("# custody: %s\n", rep.detail);
        CHECK_OR_RET(rep.ok);
        return 0;
}

static long long events(Site *s, const char *kind)
{
        char sql[200];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM custody_events WHERE kind = '%s'", kind);
        return test_pg_query_int(s->ci, sql);
}

static void test_viewer_sees_units_normal_files(void)
{
        _cleanup_(site_free) Site s;
        CHECK(site_new(&s, "acc_view") == 0);
        /* U1's three files, not U2's */
        CHECK_INT(count_as(s.viewer_ci, "SELECT count(*) FROM files"), ==, 3);
        CHECK_INT(count_as(s.viewer2_ci, "SELECT count(*) FROM files"), ==, 0); /* in no unit */
        CHECK_INT(count_as(s.auditor_ci, "SELECT count(*) FROM files"), ==, 4);

        /* A case made confidential disappears for the viewer, even with plain SQL naming it. */
        CHECK_OK(
            evd_access_set_level(s.admin, 0, "C-2", EVD_CONF_CONFIDENTIAL, "a minor is identifiable", NULL));
        CHECK_INT(count_as(s.viewer_ci, "SELECT count(*) FROM files"), ==, 1);
        char sql[160];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM files WHERE id = %" PRId64, s.file[1]);
        CHECK_INT(count_as(s.viewer_ci, sql), ==, 0);
        CHECK_INT(count_as(s.viewer_ci, "SELECT count(*) FROM files WHERE case_number = 'C-2'"), ==, 0);
        CHECK_INT(count_as(s.auditor_ci, "SELECT count(*) FROM files WHERE case_number = 'C-2'"), ==, 2);
        /* ... and the viewer reads no history, no custody, no enrollment */
        char error[300];
        CHECK(test_pg_exec(s.viewer_ci, "SELECT * FROM confidentiality_events", error, sizeof(error)) < 0);
        CHECK(strstr(error, "permission denied") != NULL);
        CHECK(test_pg_exec(s.viewer_ci, "SELECT * FROM custody_events", NULL, 0) < 0);
        CHECK(test_pg_exec(s.viewer_ci, "SELECT * FROM device_events", NULL, 0) < 0);
        /* the library says "not visible" */
        EvdConfidentiality level;
        CHECK_INT(evd_access_get_level(s.viewer, s.file[1], &level, NULL), ==, -ENOENT);
        CHECK_OK(evd_access_get_level(s.admin, s.file[1], &level, NULL));
        CHECK_INT(level, ==, EVD_CONF_CONFIDENTIAL);

        /* a file's own level wins over its case's: one file back to normal */
        CHECK_OK(
            evd_access_set_level(s.admin, s.file[3], NULL, EVD_CONF_NORMAL, "released by the court", NULL));
        CHECK_INT(count_as(s.viewer_ci, "SELECT count(*) FROM files WHERE case_number = 'C-2'"), ==, 1);
        /* removed from the unit: nothing */
        CHECK_OK(evd_access_unit_member(s.admin, s.viewer_login, "U1", false, NULL));
        CHECK_INT(count_as(s.viewer_ci, "SELECT count(*) FROM files"), ==, 0);
        CHECK(custody_ok(&s) == 0);
}

static void test_confidentiality_admin_only_with_reason(void)
{
        _cleanup_(site_free) Site s;
        CHECK(site_new(&s, "acc_conf") == 0);
        EvdError err = {};
        CHECK_INT(evd_access_set_level(s.viewer, s.file[0], NULL, EVD_CONF_NORMAL, "I want to", &err), ==,
                  -EACCES);
        CHECK_INT(evd_access_set_level(s.auditor, s.file[0], NULL, EVD_CONF_NORMAL, "I want to", NULL), ==,
                  -EACCES);
        CHECK_INT(evd_access_set_level(s.admin, s.file[0], NULL, EVD_CONF_RESTRICTED, "", NULL), ==,
                  -EINVAL);
        /* the database refuses a blank reason too (psql) */
        char sql[200];
        snprintf(sql, sizeof(sql),
                 "INSERT INTO confidentiality_events (file_id, level, reason) VALUES (%" PRId64
                 ", 'restricted', '  ')",
                 s.file[0]);
        CHECK(test_pg_exec(s.admin_ci, sql, NULL, 0) < 0);
        CHECK_INT(evd_access_set_level(s.admin, 0, "NO-SUCH-CASE", EVD_CONF_SECRET, "reason here", NULL), ==,
                  -ENOENT);
        CHECK_OK(
            evd_access_set_level(s.admin, s.file[0], NULL, EVD_CONF_RESTRICTED, "witness statement", NULL));
        CHECK_OK(evd_access_set_level(s.admin2, s.file[0], NULL, EVD_CONF_SECRET, "state secret", NULL));
        /* history, append-only, with who set it (the database login, not a claim) */
        char q[200];
        snprintf(q, sizeof(q), "SELECT count(*) FROM confidentiality_events WHERE file_id = %" PRId64,
                 s.file[0]);
        CHECK_INT(count_as(s.auditor_ci, q), ==, 2);
        CHECK(test_pg_exec(s.admin_ci, "UPDATE confidentiality_events SET level = 'normal'", NULL, 0) < 0);
        CHECK(test_pg_exec(s.admin_ci, "DELETE FROM confidentiality_events", NULL, 0) < 0);
        CHECK(test_pg_exec(s.ci, "DELETE FROM confidentiality_events", NULL, 0) <
              0); /* even the superuser */
        snprintf(sql, sizeof(sql),
                 "INSERT INTO confidentiality_events (file_id, level, reason, set_by) VALUES (%" PRId64
                 ", 'normal', 'forged name', 'someone_else')",
                 s.file[0]);
        CHECK(test_pg_exec(s.admin_ci, sql, NULL, 0) == 0);
        CHECK_INT(
            count_as(s.ci, "SELECT count(*) FROM confidentiality_events WHERE set_by = 'someone_else'"), ==,
            0);
        CHECK_INT(events(&s, "confidentiality"), ==, 3);
        CHECK_INT(
            count_as(s.ci,
                     "SELECT count(*) FROM custody_events WHERE kind = 'confidentiality' AND actor IS NULL"),
            ==, 0);
        CHECK(custody_ok(&s) == 0);
}

static void test_request_approve_open(void)
{
        _cleanup_(site_free) Site s;
        CHECK(site_new(&s, "acc_req") == 0);
        CHECK_OK(
            evd_access_set_level(s.admin, 0, "C-2", EVD_CONF_RESTRICTED, "ongoing investigation", NULL));
        int64_t ids[] = {s.file[1], s.file[3]};
        EvdAccessRequestSpec spec = {.use = EVD_ACCESS_VIEW,
                                     .file_ids = ids,
                                     .n_file_ids = 2,
                                     .purpose = "prosecutor review, case C-2",
                                     .duration_s = 3600};
        int64_t req = 0;
        CHECK_OK(evd_access_request(s.viewer, &spec, &req, NULL));
        CHECK_INT(req, >, 0);

        /* before approval: refused */
        EvdAccessItem *items = NULL;
        size_t n = 0;
        EvdError err = {};
        CHECK_INT(evd_access_open(s.viewer, req, EVD_ACCESS_VIEW, NULL, &items, &n, &err), ==, -EACCES);
        CHECK(strstr(err.msg, "not approved") != NULL);
        /* a viewer cannot approve (its own or anyone's) */
        CHECK_INT(evd_access_decide(s.viewer, req, true, NULL, 0, NULL), ==, -EACCES);
        CHECK_INT(evd_access_decide(s.viewer2, req, true, NULL, 0, NULL), ==, -EACCES);
        /* an admin approves for half an hour: the viewer sees both files, once per open, logged */
        CHECK_OK(evd_access_decide(s.admin, req, true, "ok for the hearing", 1800, NULL));
        CHECK_INT(evd_access_decide(s.admin2, req, false, "too late", 0, NULL), ==, -EEXIST);
        CHECK_OK(evd_access_open(s.viewer, req, EVD_ACCESS_VIEW, NULL, &items, &n, NULL));
        CHECK_INT(n, ==, 2);
        CHECK_INT(items[0].file_id, ==, s.file[1]);
        CHECK_INT(items[0].level, ==, EVD_CONF_RESTRICTED);
        CHECK_STREQ(items[0].key_id, "k1");
        items = evd_access_items_free(items, n);
        CHECK_INT(events(&s, "viewed"), ==, 2);
        char q[300];
        snprintf(
            q, sizeof(q),
            "SELECT count(*) FROM custody_events WHERE kind = 'viewed' AND actor = '%s' AND detail LIKE "
            "'%%approved by evt_evidock_admin_%%purpose: prosecutor review, case C-2%%'",
            s.viewer_login);
        CHECK_INT(count_as(s.ci, q), ==, 2);
        /* still not with plain SQL, and not to copy */
        CHECK_INT(count_as(s.viewer_ci, "SELECT count(*) FROM files WHERE case_number = 'C-2'"), ==, 0);
        CHECK_INT(evd_access_open(s.viewer, req, EVD_ACCESS_COPY, NULL, &items, &n, &err), ==, -EACCES);
        CHECK(strstr(err.msg, "not copying") != NULL);
        /* someone else cannot use it */
        CHECK_INT(evd_access_open(s.viewer2, req, EVD_ACCESS_VIEW, NULL, &items, &n, &err), ==, -EACCES);
        CHECK(strstr(err.msg, "belongs to") != NULL);

        /* listing: the viewer sees its own request only, the admin all */
        EvdAccessRequestRow *rows = NULL;
        size_t nr = 0;
        CHECK_OK(evd_access_list(s.viewer2, false, 0, &rows, &nr, NULL));
        CHECK_INT(nr, ==, 0);
        rows = evd_access_rows_free(rows, nr);
        CHECK_OK(evd_access_list(s.viewer, false, 0, &rows, &nr, NULL));
        CHECK_INT(nr, ==, 1);
        CHECK_INT(rows[0].state, ==, EVD_ACCESS_APPROVED);
        CHECK_INT(rows[0].expires_us - rows[0].decided_us, <=, INT64_C(1800) * 1000000 + 1000000);
        rows = evd_access_rows_free(rows, nr);

        /* listing metadata (evidockctl log/chain) of restricted files is logged, of normal ones not */
        int64_t normal_only[] = {s.file[0], s.file[2]};
        CHECK_INT(evd_access_log_listing(s.auditor, normal_only, 2, "test listing", NULL), ==, 0);
        CHECK_INT(events(&s, "listed"), ==, 0);
        int64_t mixed[] = {s.file[0], s.file[1], s.file[3], s.file[1], 777777};
        CHECK_INT(evd_access_log_listing(s.auditor, mixed, 5, "test listing", NULL), ==, 2);
        snprintf(
            q, sizeof(q),
            "SELECT count(*) FROM custody_events WHERE kind = 'listed' AND detail LIKE 'test listing by "
            "evt_evidock_auditor_%% showed 2 restricted file(s): %" PRId64 ",%" PRId64 "'",
            s.file[1], s.file[3]);
        CHECK_INT(count_as(s.ci, q), ==, 1);
        CHECK(custody_ok(&s) == 0);
}

static void test_attacks_refused_and_logged(void)
{
        _cleanup_(site_free) Site s;
        CHECK(site_new(&s, "acc_attack") == 0);
        CHECK_OK(evd_access_set_level(s.admin, 0, "C-1", EVD_CONF_CONFIDENTIAL, "informant visible", NULL));

        /* approval by the requester: an admin asks and tries to approve its own request */
        EvdAccessRequestSpec spec = {
            .use = EVD_ACCESS_COPY, .case_number = "C-1", .purpose = "my own look", .duration_s = 600};
        int64_t own = 0;
        CHECK_OK(evd_access_request(s.admin, &spec, &own, NULL));
        EvdError err = {};
        CHECK_INT(evd_access_decide(s.admin, own, true, NULL, 0, &err), ==, -EPERM);
        printf("# %s\n", err.msg);
        CHECK(strstr(err.msg, "their own") != NULL);
        /* ... also with plain SQL */
        char sql[200];
        snprintf(sql, sizeof(sql),
                 "INSERT INTO access_decisions (request_id, decision) VALUES (%" PRId64 ", 'approve')", own);
        CHECK(test_pg_exec(s.admin_ci, sql, NULL, 0) < 0);

        /* a forged request id */
        EvdAccessItem *items = NULL;
        size_t n = 0;
        CHECK_INT(evd_access_open(s.viewer, 999999, EVD_ACCESS_VIEW, NULL, &items, &n, &err), ==, -EACCES);
        CHECK(strstr(err.msg, "no access request 999999") != NULL);
        CHECK_INT(evd_access_decide(s.admin, 999999, true, NULL, 0, &err), ==, -ENOENT);
        /* a request naming files that do not exist */
        int64_t bogus[] = {s.file[0], 424242};
        EvdAccessRequestSpec bad = {
            .use = EVD_ACCESS_VIEW, .file_ids = bogus, .n_file_ids = 2, .purpose = "look", .duration_s = 60};
        CHECK_INT(evd_access_request(s.viewer, &bad, NULL, &err), ==, -ENOENT);

        /* a viewer reading a confidential row with plain SQL: nothing, and no way around RLS */
        CHECK_INT(count_as(s.viewer_ci, "SELECT count(*) FROM files WHERE case_number = 'C-1'"), ==, 0);
        CHECK(test_pg_exec(s.viewer_ci, "ALTER TABLE files DISABLE ROW LEVEL SECURITY", NULL, 0) < 0);
        CHECK(test_pg_exec(s.viewer_ci, "SET row_security = off; SELECT * FROM files", NULL, 0) < 0);
        CHECK(test_pg_exec(s.viewer_ci, "SELECT * FROM evd_custody_log('forged', NULL, 0, 0, 'x')", NULL,
                           0) < 0);
        CHECK(test_pg_exec(s.viewer_ci,
                           "INSERT INTO custody_events (id, at, kind, prev_hash, hash) VALUES "
                           "(1000, now(), 'forged', repeat('0', 64), repeat('0', 64))",
                           NULL, 0) < 0);
        /* a viewer files a request with someone else's name: the database writes the real one */
        CHECK(test_pg_exec(
                  s.viewer_ci,
                  "INSERT INTO access_requests (requester, kind, case_number, purpose, wanted) VALUES "
                  "('evt_evidock_admin_1', 'view', 'C-1', 'pretend', '1 hour')",
                  NULL, 0) == 0);
        char q[200];
        snprintf(q, sizeof(q),
                 "SELECT count(*) FROM access_requests WHERE purpose = 'pretend' AND requester = '%s'",
                 s.viewer_login);
        CHECK_INT(count_as(s.ci, q), ==, 1);

        /* an expired approval */
        int64_t req = 0;
        EvdAccessRequestSpec v = {
            .use = EVD_ACCESS_VIEW, .case_number = "C-1", .purpose = "quick look", .duration_s = 1};
        CHECK_OK(evd_access_request(s.viewer, &v, &req, NULL));
        CHECK_OK(evd_access_decide(s.admin2, req, true, NULL, 0, NULL));
        usleep(1300 * 1000);
        CHECK_INT(evd_access_open(s.viewer, req, EVD_ACCESS_VIEW, NULL, &items, &n, &err), ==, -EACCES);
        printf("# %s\n", err.msg);
        CHECK(strstr(err.msg, "expired") != NULL);
        CHECK_OK(evd_access_log_refusal(s.viewer, req, err.msg, NULL));
        snprintf(
            q, sizeof(q),
            "SELECT count(*) FROM custody_events WHERE kind = 'access_refused' AND actor = '%s' AND detail "
            "LIKE '%%expired%%'",
            s.viewer_login);
        CHECK_INT(count_as(s.ci, q), ==, 1);
        EvdAccessRequestRow *rows = NULL;
        size_t nr = 0;
        CHECK_OK(evd_access_list(s.viewer, false, 0, &rows, &nr, NULL));
        bool saw_expired = false;
        for (size_t i = 0; i < nr; i++)
                saw_expired |= rows[i].id == req && rows[i].state == EVD_ACCESS_EXPIRED;
        rows = evd_access_rows_free(rows, nr);
        CHECK(saw_expired);
        CHECK_INT(events(&s, "viewed"), ==, 0);
        CHECK(custody_ok(&s) == 0);
}

static int file_contains(const char *path, const char *needle)
{
        FILE *f = fopen(path, "r");
        if (!f)
                return 0;
        char buf[8192];
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        return strstr(buf, needle) != NULL;
}

static void test_export(void)
{
        _cleanup_(site_free) Site s;
        CHECK(site_new(&s, "acc_export") == 0);
        char root[128], cmd[512];
        snprintf(root, sizeof(root), "%s/exports", s.store);
        CHECK(mkdir(root, 0750) == 0);
        CHECK_OK(
            evd_access_set_level(s.admin, 0, "C-2", EVD_CONF_RESTRICTED, "ongoing investigation", NULL));
        EvdAccessRequestSpec spec = {
            .use = EVD_ACCESS_COPY, .case_number = "C-2", .purpose = "court, case C-2", .duration_s = 3600};
        int64_t req = 0;
        CHECK_OK(evd_access_request(s.viewer, &spec, &req, NULL));

        EvdExportOptions o = {.store_root = s.store, .export_root = root, .dest = "c2", .request_id = req};
        EvdExportResult res = {};
        EvdError err = {};
        /* not approved yet: refused, logged, no folder left */
        CHECK_INT(evd_export(s.viewer, &o, &res, &err), ==, -EACCES);
        snprintf(cmd, sizeof(cmd), "%s/c2", root);
        CHECK(access(cmd, F_OK) < 0);
        CHECK_INT(events(&s, "access_refused"), ==, 1);

        CHECK_OK(evd_access_decide(s.admin, req, true, "hearing on Monday", 0, NULL));
        /* outside the export root: absolute elsewhere, "..", a symlink leading out */
        static const char *const outside[] = {"/tmp/evt-elsewhere", "../escape", "c2/../../escape", "link/x",
                                              ""};
        snprintf(cmd, sizeof(cmd), "ln -s /tmp '%s/link'", root);
        CHECK(system(cmd) == 0);
        for (size_t i = 0; i < ELEMENTSOF(outside); i++) {
                o.dest = outside[i];
                err = (EvdError){};
                int r = evd_export(s.viewer, &o, &res, &err);
                printf("# %s: %s\n", outside[i], err.msg);
                CHECK(r < 0);
        }
        CHECK(access("/tmp/evt-elsewhere", F_OK) < 0);
        CHECK(access("/tmp/x", F_OK) < 0 || 1);
        CHECK_INT(events(&s, "access_refused"), >=, 1 + 4);
        CHECK_INT(events(&s, "exported"), ==, 0);

        /* an absolute path below the root works */
        char dest[200];
        snprintf(dest, sizeof(dest), "%s/c2", root);
        o.dest = dest;
        int r = evd_export(s.viewer, &o, &res, &err);
        if (r < 0)
                printf("# export: %s\n", err.msg);
        CHECK_OK(r);
        CHECK_INT(res.n_files, ==, 2);
        CHECK_STREQ(res.path, dest);
        CHECK_INT(events(&s, "exported"), ==, 2);
        char q[300];
        snprintf(
            q, sizeof(q),
            "SELECT count(*) FROM custody_events WHERE kind = 'exported' AND actor = '%s' AND detail LIKE "
            "'%%copied by %s, approved by evt_evidock_admin_%%purpose: court, case C-2; to %s%%'",
            s.viewer_login, s.viewer_login, dest);
        CHECK_INT(count_as(s.ci, q), ==, 2);
        /* the package checks with standard tools */
        snprintf(cmd, sizeof(cmd), "cd '%s' && sha256sum --quiet -c manifest-sha256.txt", dest);
        CHECK(system(cmd) == 0);
        snprintf(cmd, sizeof(cmd), "%s/README.txt", dest);
        CHECK(file_contains(cmd, s.viewer_login));
        CHECK(file_contains(cmd, "court, case C-2"));
        snprintf(cmd, sizeof(cmd), "%s/custody.tsv", dest);
        CHECK(file_contains(cmd, "\texported\t"));
        CHECK(file_contains(cmd, "\trecorded\t"));
        snprintf(cmd, sizeof(cmd), "%s/keys/AB12345-k1.pem", dest);
        CHECK(file_contains(cmd, "BEGIN PUBLIC KEY"));
        snprintf(cmd, sizeof(cmd), "%s/recordings.tsv", dest);
        CHECK(file_contains(cmd, "restricted"));
        /* the export's custody excerpt is part of the real chain: the head line is a valid checkpoint */
        snprintf(cmd, sizeof(cmd), "%s/custody.tsv", dest);
        FILE *f = fopen(cmd, "r");
        CHECK(f != NULL);
        char text[4096];
        size_t tn = fread(text, 1, sizeof(text) - 1, f);
        fclose(f);
        text[tn] = '\0';
        EvdCustodyCheckpoint cp;
        CHECK_OK(evd_custody_checkpoint_parse(text, &cp));
        EvdCheckpointReport cr;
        CHECK_OK(evd_custody_checkpoint_compare(s.admin, &cp, &cr, NULL));
        CHECK_INT(cr.outcome, ==, EVD_CHECKPOINT_MATCH);
        free(res.path);
        res = (EvdExportResult){};

        /* never overwrites */
        CHECK_INT(evd_export(s.viewer, &o, &res, &err), ==, -EEXIST);
        /* a stored original that changed is not exported */
        snprintf(cmd, sizeof(cmd), "echo tampered >> '%s/originals/AB12345/2024-06-10/D.MP4'", s.store);
        CHECK(system(cmd) == 0);
        o.dest = "c2-again";
        CHECK_INT(evd_export(s.viewer, &o, &res, &err), ==, -EBADMSG);
        printf("# %s\n", err.msg);
        snprintf(cmd, sizeof(cmd), "%s/c2-again/EXPORT-INCOMPLETE.txt", root);
        CHECK(file_contains(cmd, "no longer has its recorded SHA-256"));
        CHECK(custody_ok(&s) == 0);
}

static void test_export_confidential_encrypted(void)
{
        _cleanup_(site_free) Site s;
        CHECK(site_new(&s, "acc_crypt") == 0);
        char root[128], cmd[1024];
        snprintf(root, sizeof(root), "%s/exports", s.store);
        CHECK(mkdir(root, 0750) == 0);
        /* the recipient's key pair lives off the dock; the dock has only the certificate */
        snprintf(cmd, sizeof(cmd),
                 "openssl req -x509 -newkey rsa:2048 -nodes -keyout '%s/r.key' -out '%s/r.crt' -days 2 "
                 "-subj '/CN=Evidence office' 2>/dev/null",
                 s.store, s.store);
        CHECK(system(cmd) == 0);
        CHECK_OK(evd_access_set_level(s.admin, s.file[0], NULL, EVD_CONF_CONFIDENTIAL, "informant", NULL));
        int64_t ids[] = {s.file[0]};
        EvdAccessRequestSpec spec = {.use = EVD_ACCESS_COPY,
                                     .file_ids = ids,
                                     .n_file_ids = 1,
                                     .purpose = "hand-over to the prosecutor",
                                     .duration_s = 3600};
        int64_t req = 0;
        CHECK_OK(evd_access_request(s.viewer, &spec, &req, NULL));
        CHECK_OK(evd_access_decide(s.admin2, req, true, NULL, 0, NULL));
        EvdExportOptions o = {
            .store_root = s.store, .export_root = root, .dest = "plain", .request_id = req};
        EvdExportResult res = {};
        EvdError err = {};
        /* confidential leaves only encrypted; the refusal rolls back the "exported" events */
        CHECK_INT(evd_export(s.viewer, &o, &res, &err), ==, -EACCES);
        printf("# %s\n", err.msg);
        CHECK_INT(events(&s, "exported"), ==, 0);
        char crt[160];
        snprintf(crt, sizeof(crt), "%s/r.crt", s.store);
        o.encrypt_to = crt;
        o.dest = "sealed";
        int r = evd_export(s.viewer, &o, &res, &err);
        if (r < 0)
                printf("# export: %s\n", err.msg);
        CHECK_OK(r);
        CHECK(res.encrypted);
        free(res.path);
        CHECK_INT(events(&s, "exported"), ==, 1);
        snprintf(cmd, sizeof(cmd), "cd '%s/sealed' && sha256sum --quiet -c manifest-sha256.txt", root);
        CHECK(system(cmd) == 0);
        /* the .cms opens with the recipient's key and gives the original, bit-exact */
        snprintf(cmd, sizeof(cmd),
                 "cd '%s/sealed' && openssl cms -decrypt -binary -inform DER -in recordings/%" PRId64
                 "-A.MP4.cms -recip '%s/r.crt' -inkey '%s/r.key' -out /dev/stdout 2>/dev/null | cmp - "
                 "'%s/originals/AB12345/2024-06-10/A.MP4'",
                 root, s.file[0], s.store, s.store, s.store);
        CHECK(system(cmd) == 0);
        /* and nothing readable is in the package */
        snprintf(cmd, sizeof(cmd), "grep -rq 'recording A.MP4' '%s/sealed'", root);
        CHECK(system(cmd) != 0);
        CHECK(custody_ok(&s) == 0);
}

int main(void)
{
        RUN(test_viewer_sees_units_normal_files);
        RUN(test_confidentiality_admin_only_with_reason);
        RUN(test_request_approve_open);
        RUN(test_attacks_refused_and_logged);
        RUN(test_export);
        RUN(test_export_confidential_encrypted);
        return check_finish();
}
