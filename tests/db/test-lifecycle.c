/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* After ingest (issue 11) against a real PostgreSQL and a real store: cases, associations and their
 * supersession, marks, retention (longest wins, hold), two-person disposal, a second execution, a crash
 * (SIGKILL) at each point of a disposal, reconcile and the custody log afterwards. */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "check.h"
#include "custody.h"
#include "db.h"
#include "disposal.h"
#include "hash.h"
#include "lifecycle.h"
#include "pg.h"
#include "reconcile.h"
#include "retention.h"
#include "store.h"

#define DAY_US ((int64_t)86400 * 1000000)

static char tmpdir[256];
static int64_t now_us;

typedef struct Env {
        char *conninfo;
        char *conninfo2; /* a second admin: another database login */
        EvdDb *db;
        EvdDb *db2;
        EvdStore *store;
        int64_t docking_id;
} Env;

static void env_done(Env *e)
{
        evd_db_close(e->db);
        evd_db_close(e->db2);
        evd_store_free(e->store);
        free(e->conninfo);
        free(e->conninfo2);
}

static int write_file(EvdStore *store, EvdStoreArea area, const char *name, const char *content,
                      char **ret_rel)
{
        _cleanup_close_ int dir = -1;
        _cleanup_free_ char *rel = NULL;
        int r = evd_store_dir(store, area, "A1B2C3D", "2020-01-02", &dir, &rel, NULL);
        if (r < 0)
                return r;
        int fd = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        if (fd < 0)
                return -errno;
        ssize_t n = write(fd, content, strlen(content));
        close(fd);
        if (n != (ssize_t)strlen(content))
                return -EIO;
        if (asprintf(ret_rel, "%s/%s", rel, name) < 0)
                return -ENOMEM;
        return 0;
}

/* A recorded file (seq, officer, recorded at, recorder's case) with its original and archive copy. */
static int64_t add_file(Env *e, uint64_t seq, const char *officer, int64_t recorded_us,
                        const char *recorder_case)
{
        char name[64], content[64], aname[64], acontent[64];
        snprintf(name, sizeof(name), "%06llu_x.MP4", (unsigned long long)seq);
        snprintf(aname, sizeof(aname), "%06llu_x.mkv", (unsigned long long)seq);
        snprintf(content, sizeof(content), "original %llu", (unsigned long long)seq);
        snprintf(acontent, sizeof(acontent), "archive %llu", (unsigned long long)seq);
        _cleanup_free_ char *orel = NULL, *arel = NULL;
        if (write_file(e->store, EVD_STORE_ORIGINALS, name, content, &orel) < 0 ||
            write_file(e->store, EVD_STORE_ARCHIVE, aname, acontent, &arel) < 0)
                return -1;
        uint8_t sha[EVD_DIGEST_SIZE], asha[EVD_DIGEST_SIZE], rec[EVD_DIGEST_SIZE];
        evd_hash_buffer(EVD_HASH_SHA256, content, strlen(content), sha);
        evd_hash_buffer(EVD_HASH_SHA256, acontent, strlen(acontent), asha);
        evd_hash_buffer(EVD_HASH_SHA256, name, strlen(name), rec);
        EvdDbFile f = {.docking_id = e->docking_id,
                       .device_id = "A1B2C3D",
                       .officer_id = officer,
                       .has_seq = true,
                       .seq = seq,
                       .method = EVD_METHOD_VIDEO,
                       .case_number = recorder_case,
                       .has_recorded = true,
                       .recorded_start_us = recorded_us,
                       .recorded_end_us = recorded_us + 60000000,
                       .ingested_us = recorded_us + 3600000000LL,
                       .stored_us = recorded_us + 3600000000LL,
                       .within_24h = true,
                       .size = strlen(content),
                       .sha256 = sha,
                       .record_hash = rec,
                       .source_path = name,
                       .original_path = orel,
                       .archive_path = arel,
                       .archive_sha256 = asha,
                       .verdict = EVD_VERDICT_INTACT,
                       .retention_class = "case"};
        int64_t id = 0;
        if (evd_db_file_record(e->db, &f, NULL, 0, NULL, 0, &id, NULL) < 0)
                return -1;
        return id;
}

static bool stored(Env *e, const char *rel)
{
        return faccessat(evd_store_root_fd(e->store), rel, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

static char *path_of(Env *e, int64_t file_id, bool archive)
{
        EvdDbLogFilter filter = {};
        _cleanup_(evd_db_log_freep) EvdDbLog *log = NULL;
        if (evd_db_log_query(e->db, &filter, &log, NULL) < 0)
                return NULL;
        for (size_t i = 0; i < log->n_files; i++)
                if (log->files[i].id == file_id)
                        return strdup(archive ? log->files[i].archive_path : log->files[i].original_path);
        return NULL;
}

static int env_init(Env *e, const char *tag)
{
        *e = (Env){};
        if (test_pg_new_database(tag, &e->conninfo) < 0)
                return -1;
        if (evd_db_open(e->conninfo, &e->db, NULL) < 0)
                return -1;
        /* a second admin: another database login in the admin group (migration 2) */
        char role[64], sql[512];
        snprintf(role, sizeof(role), "evt_admin2_%d_%s", (int)getpid(), tag);
        snprintf(sql, sizeof(sql), "DROP ROLE IF EXISTS %s; CREATE ROLE %s LOGIN IN ROLE evidock_admin;", role,
                 role);
        if (test_pg_exec(e->conninfo, sql, NULL, 0) < 0)
                return -1;
        if (asprintf(&e->conninfo2, "%s user=%s", e->conninfo, role) < 0)
                return -1;
        if (evd_db_open(e->conninfo2, &e->db2, NULL) < 0)
                return -1;
        EvdDbDevice dev = {.device_id = (char *)"A1B2C3D",
                           .officer_id = (char *)"012345",
                           .suite = EVD_SUITE_ED25519_SHA256,
                           .public_key_pem = (char *)"-----BEGIN PUBLIC KEY-----\n",
                           .key_id = (char *)"00"};
        if (evd_db_device_enroll(e->db, &dev, NULL) < 0)
                return -1;
        EvdDbDocking d = {.device_id = "A1B2C3D", .transport = "dir", .docked_us = now_us};
        if (evd_db_docking_begin(e->db, &d, &e->docking_id, NULL) < 0)
                return -1;
        char root[400];
        snprintf(root, sizeof(root), "%s/store-%s", tmpdir, tag);
        return evd_store_open(root, &e->store, NULL);
}

static void check_custody_ok(Env *e)
{
        EvdCustodyReport cr = {};
        CHECK_OK(evd_custody_verify(e->db, &cr, NULL));
        CHECK(cr.ok);
}

static void test_cases_and_associations(void)
{
        Env e;
        CHECK(env_init(&e, "assoc") == 0);
        int64_t old = now_us - 400 * DAY_US;
        int64_t f1 = add_file(&e, 1, "012345", old, NULL);
        int64_t f2 = add_file(&e, 2, "012345", old + 60000000, "REC-7");
        int64_t f3 = add_file(&e, 3, "099999", old + 120000000, NULL);
        CHECK(f1 > 0 && f2 > 0 && f3 > 0);
        EvdError err = {};

        /* cases */
        CHECK_INT(evd_case_open(e.db, "K-1", "criminal", NULL, &err), ==, -EINVAL);
        CHECK_INT(evd_case_open(e.db, "K-1", "Bad Cat", "x", &err), ==, -EINVAL);
        CHECK_INT(evd_case_open(e.db, "K\n1", "criminal", "x", &err), ==, -EINVAL);
        CHECK_OK(evd_case_open(e.db, "K-1", "criminal", "opened at the desk", &err));
        CHECK_INT(evd_case_open(e.db, "K-1", "criminal", "again", &err), ==, -EEXIST);
        CHECK_OK(evd_case_open(e.db, "K-2", "traffic", "second case", &err));

        /* unknown case, file that does not exist, range that matches nothing */
        EvdFileSelector one = {.kind = EVD_SELECT_FILE, .file_id = f1};
        EvdLifecycleChange c = {};
        CHECK_INT(evd_case_assign(e.db, "NOPE", &one, "why", &c, &err), ==, -ENOENT);
        CHECK(strstr(err.msg, "case 'NOPE' is not known") != NULL);
        EvdFileSelector ghost = {.kind = EVD_SELECT_FILE, .file_id = 999999};
        CHECK_INT(evd_case_assign(e.db, "K-1", &ghost, "why", &c, &err), ==, -ENOENT);
        CHECK(strstr(err.msg, "file 999999 matches no recorded file") != NULL);
        EvdFileSelector empty = {
            .kind = EVD_SELECT_DEVICE_SEQ, .device_id = "A1B2C3D", .seq_first = 50, .seq_last = 60};
        CHECK_INT(evd_case_assign(e.db, "K-1", &empty, "why", &c, &err), ==, -ENOENT);
        CHECK(strstr(err.msg, "seq 50-60 matches no recorded file") != NULL);
        EvdFileSelector reversed = {
            .kind = EVD_SELECT_DEVICE_SEQ, .device_id = "A1B2C3D", .seq_first = 9, .seq_last = 2};
        CHECK_INT(evd_case_assign(e.db, "K-1", &reversed, "why", &c, &err), ==, -EINVAL);
        CHECK_INT(evd_case_assign(e.db, "K-1", &one, "", &c, &err), ==, -EINVAL);
        CHECK_INT(test_pg_query_int(e.conninfo, "SELECT count(*) FROM case_associations"), ==, 0);

        /* bulk by device range: 1-2 into K-1 */
        EvdFileSelector range = {
            .kind = EVD_SELECT_DEVICE_SEQ, .device_id = "A1B2C3D", .seq_first = 1, .seq_last = 2};
        CHECK_OK(evd_case_assign(e.db, "K-1", &range, "linked at the dock", &c, &err));
        CHECK_INT(c.n_matched, ==, 2);
        CHECK_INT(c.n_changed, ==, 2);
        evd_lifecycle_change_clear(&c);
        /* again: nothing changes */
        CHECK_OK(evd_case_assign(e.db, "K-1", &range, "again", &c, &err));
        CHECK_INT(c.n_unchanged, ==, 2);
        CHECK_INT(c.n_changed, ==, 0);
        evd_lifecycle_change_clear(&c);

        /* by officer and time window: only officer 012345's two files */
        EvdFileSelector win = {.kind = EVD_SELECT_OFFICER_TIME,
                               .officer_id = "012345",
                               .from_us = old - 1,
                               .to_us = old + DAY_US};
        CHECK_OK(evd_case_assign(e.db, "K-2", &win, "it was the traffic stop", &c, &err));
        CHECK_INT(c.n_changed, ==, 2);
        evd_lifecycle_change_clear(&c);

        /* supersession: each file's rows form one line, the second supersedes the first */
        CHECK_INT(test_pg_query_int(e.conninfo, "SELECT count(*) FROM case_associations"), ==, 4);
        char sql[256];
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM case_associations a JOIN case_associations b ON b.supersedes = a.id "
                 "WHERE a.file_id = %lld AND a.case_number = 'K-1' AND b.case_number = 'K-2'",
                 (long long)f1);
        CHECK_INT(test_pg_query_int(e.conninfo, sql), ==, 1);
        /* the database refuses a second successor of the same row, and any change */
        char perr[256] = "";
        snprintf(sql, sizeof(sql),
                 "INSERT INTO case_associations (file_id, action, case_number, supersedes, reason, actor, "
                 "custody_event_id) SELECT file_id, 'assign', 'K-1', (SELECT min(id) FROM "
                 "case_associations), 'x', "
                 "'x', 1 FROM case_associations WHERE id = (SELECT min(id) FROM case_associations)");
        CHECK(test_pg_exec(e.conninfo, sql, perr, sizeof(perr)) < 0);
        CHECK(test_pg_exec(e.conninfo, "UPDATE case_associations SET case_number = 'X'", perr,
                           sizeof(perr)) < 0);
        CHECK(strstr(perr, "append-only") != NULL);
        CHECK(test_pg_exec(e.conninfo, "TRUNCATE file_marks", perr, sizeof(perr)) < 0);
        CHECK(test_pg_exec(e.conninfo, "TRUNCATE disposals", perr, sizeof(perr)) < 0);

        /* the current case beside the recorder's */
        int64_t ids[3] = {f1, f2, f3};
        char **cur = NULL, **rec = NULL;
        CHECK_OK(evd_case_current_of_files(e.db, ids, 3, &cur, &rec, &err));
        if (cur && rec) {
                CHECK_STREQ(cur[0], "K-2");
                CHECK(rec[0] == NULL);
                CHECK_STREQ(cur[1], "K-2");
                CHECK_STREQ(rec[1], "REC-7");
                CHECK(cur[2] == NULL);
        }
        evd_strv_free(cur, 3);
        evd_strv_free(rec, 3);

        /* unassign: only from the case a file is in */
        CHECK_INT(evd_case_unassign(e.db, "K-1", &one, "wrong case", &c, &err), ==, -EALREADY);
        CHECK_OK(evd_case_unassign(e.db, "K-2", &one, "not this case after all", &c, &err));
        CHECK_INT(c.n_changed, ==, 1);
        evd_lifecycle_change_clear(&c);
        CHECK_OK(evd_case_current_of_files(e.db, ids, 1, &cur, &rec, &err));
        if (cur)
                CHECK(cur[0] == NULL);
        evd_strv_free(cur, 1);
        evd_strv_free(rec, 1);

        /* case show: files and history; who is the database login */
        EvdCaseFile *files = NULL;
        EvdAssociation *hist = NULL;
        size_t nf = 0, nh = 0;
        CHECK_OK(evd_case_files(e.db, "K-2", &files, &nf, &hist, &nh, &err));
        CHECK_INT(nf, ==, 1);
        if (nf == 1) {
                CHECK_INT(files[0].file_id, ==, f2);
                CHECK_STREQ(files[0].recorder_case, "REC-7");
        }
        CHECK_INT(nh, ==, 3);
        if (nh >= 1)
                CHECK(hist[0].actor && hist[0].actor[0]);
        evd_case_file_array_free(files, nf);
        evd_association_array_free(hist, nh);

        /* close: no more assignments; the closing time is kept; close twice */
        CHECK_OK(evd_case_close(e.db, "K-2", "case file archived", &err));
        CHECK_INT(evd_case_close(e.db, "K-2", "again", &err), ==, -EALREADY);
        CHECK_INT(evd_case_assign(e.db, "K-2", &one, "late", &c, &err), ==, -EPERM);
        CHECK(strstr(err.msg, "closed") != NULL);
        _cleanup_(evd_case_info_freep) EvdCaseInfo *info = NULL;
        CHECK_OK(evd_case_get(e.db, "K-2", &info, &err));
        if (info) {
                CHECK(info->closed);
                CHECK(info->closed_us > 0);
                CHECK_INT(info->n_files, ==, 1);
                CHECK_STREQ(info->category, "traffic");
        }
        CHECK_OK(evd_case_reopen(e.db, "K-2", "new evidence", &err));
        EvdCaseInfo *all = NULL;
        size_t na = 0;
        CHECK_OK(evd_case_list(e.db, &all, &na, &err));
        CHECK_INT(na, ==, 2);
        evd_case_info_array_free(all, na);

        /* every change is in the custody log with who and why, and the log verifies */
        CHECK_INT(test_pg_query_int(e.conninfo,
                                    "SELECT count(*) FROM custody_events WHERE kind = 'case_assigned' "
                                    "AND detail LIKE '%by %traffic stop%'"),
                  ==, 2);
        CHECK_INT(test_pg_query_int(e.conninfo,
                                    "SELECT count(*) FROM case_associations a JOIN custody_events c "
                                    "ON c.id = a.custody_event_id AND c.file_id = a.file_id"),
                  ==, 5);
        check_custody_ok(&e);
        env_done(&e);
}

static void test_marks_and_retention(void)
{
        Env e;
        CHECK(env_init(&e, "marks") == 0);
        int64_t old = now_us - 400 * DAY_US, recent = now_us - 10 * DAY_US;
        int64_t f1 = add_file(&e, 1, "012345", old, NULL);
        int64_t f2 = add_file(&e, 2, "012345", old, NULL);
        int64_t f3 = add_file(&e, 3, "012345", old, NULL);
        int64_t f4 = add_file(&e, 4, "012345", recent, NULL);
        int64_t f5 = add_file(&e, 5, "012345", old, NULL);
        CHECK(f1 > 0 && f2 > 0 && f3 > 0 && f4 > 0 && f5 > 0);
        EvdError err = {};
        EvdLifecycleChange c = {};

        EvdFileSelector s2 = {.kind = EVD_SELECT_FILE, .file_id = f2};
        EvdFileSelector s3 = {.kind = EVD_SELECT_FILE, .file_id = f3};
        EvdFileSelector s5 = {.kind = EVD_SELECT_FILE, .file_id = f5};
        /* long-term needs one of the four reasons */
        CHECK_INT(evd_mark_set(e.db, EVD_MARK_LONG_TERM, &s2, EVD_LONG_TERM_NONE, "x", &c, &err), ==,
                  -EINVAL);
        CHECK(strstr(err.msg, "002:§18") != NULL);
        CHECK_INT(evd_mark_set(e.db, EVD_MARK_IMPORTANT, &s2, EVD_LONG_TERM_DISPUTE, "x", &c, &err), ==,
                  -EINVAL);
        CHECK_OK(evd_mark_set(e.db, EVD_MARK_LONG_TERM, &s2, EVD_LONG_TERM_OBSTRUCTION, "officer assaulted",
                              &c, &err));
        CHECK_INT(c.n_changed, ==, 1);
        if (c.n_changed == 1)
                CHECK_INT(c.file_ids[0], ==, f2);
        evd_lifecycle_change_clear(&c);
        CHECK_OK(evd_mark_set(e.db, EVD_MARK_HOLD, &s3, EVD_LONG_TERM_NONE, "court order 12", &c, &err));
        evd_lifecycle_change_clear(&c);
        CHECK_OK(evd_mark_set(e.db, EVD_MARK_IMPORTANT, &s5, EVD_LONG_TERM_NONE, "重点", &c, &err));
        evd_lifecycle_change_clear(&c);
        CHECK_INT(evd_mark_clear(e.db, EVD_MARK_HOLD, &s5, "no hold", &c, &err), ==, -EALREADY);
        CHECK_INT(evd_mark_kind_from_string("long-term"), ==, EVD_MARK_LONG_TERM);
        CHECK_INT(evd_long_term_reason_from_string("mass-incident"), ==, EVD_LONG_TERM_MASS_INCIDENT);
        CHECK_INT(evd_long_term_reason_from_string("bored"), ==, -EINVAL);

        EvdMark *marks = NULL;
        size_t nm = 0;
        CHECK_OK(evd_mark_list(e.db, 0, &marks, &nm, &err));
        CHECK_INT(nm, ==, 3);
        evd_mark_array_free(marks, nm);

        /* policy: ordinary 180 days; case categories */
        EvdRetentionPolicy p;
        evd_retention_policy_default(&p);
        CHECK_OK(evd_retention_parse_categories(&p, "criminal=permanent, traffic = 1y", &err));
        CHECK_INT(p.n_categories, ==, 2);
        CHECK_INT(evd_retention_parse_categories(&p, "traffic", &err), ==, -EINVAL);
        CHECK_INT(evd_retention_parse_categories(&p, "traffic=soon", &err), ==, -EINVAL);
        CHECK_INT(evd_retention_parse_categories(&p, "a=1d,a=2d", &err), ==, -EINVAL);
        CHECK_OK(evd_retention_parse_categories(&p, "criminal=permanent, traffic=1y", &err));
        int64_t us = 0;
        CHECK_OK(evd_retention_parse_period("180d", &us));
        CHECK_INT(us, ==, 180 * DAY_US);
        CHECK_INT(evd_retention_parse_period("-3d", &us), ==, -EINVAL);

        /* f1 in a closed traffic case, closed now: kept one more year (evidence wins over ordinary) */
        CHECK_OK(evd_case_open(e.db, "T-9", "traffic", "stop", &err));
        EvdFileSelector s1 = {.kind = EVD_SELECT_FILE, .file_id = f1};
        CHECK_OK(evd_case_assign(e.db, "T-9", &s1, "stop", &c, &err));
        evd_lifecycle_change_clear(&c);
        CHECK_OK(evd_case_close(e.db, "T-9", "done", &err));

        _cleanup_(evd_retention_report_freep) EvdRetentionReport *rep = NULL;
        CHECK_OK(evd_retention_report(e.db, &p, &rep, &err));
        CHECK(rep && rep->n_files == 5);
        /* f1: evidence, a year after closing; not disposable even then (in a case) */
        CHECK_INT(rep->verdicts[0].wins, ==, EVD_RETENTION_EVIDENCE);
        CHECK(rep->verdicts[0].keep_until_us > now_us + 300 * DAY_US);
        CHECK(rep->verdicts[0].blocked);
        CHECK(strstr(rep->verdicts[0].why, "T-9") != NULL);
        /* f2: long-term, permanent */
        CHECK_INT(rep->verdicts[1].wins, ==, EVD_RETENTION_LONG_TERM);
        CHECK(rep->verdicts[1].keep_until_us == EVD_RETENTION_PERMANENT);
        /* f3: expired but held */
        CHECK(rep->verdicts[2].held);
        CHECK(!evd_retention_disposable(&rep->files[2], &rep->verdicts[2], now_us));
        CHECK(strstr(rep->verdicts[2].why, "legal hold") != NULL);
        /* f4: ordinary, 170 days to go */
        CHECK(!evd_retention_disposable(&rep->files[3], &rep->verdicts[3], now_us));
        CHECK(evd_retention_disposable(&rep->files[3], &rep->verdicts[3], now_us + 171 * DAY_US));
        /* f5: important only: ordinary, expired */
        CHECK(rep->files[4].important);
        CHECK(evd_retention_disposable(&rep->files[4], &rep->verdicts[4], now_us));

        EvdStorageBudget b = {};
        CHECK_OK(evd_storage_budget(rep, e.store, 1024, now_us, &b, &err));
        CHECK(b.fs_total_bytes > 0);
        CHECK_INT(b.stored_bytes, >, 0);
        CHECK_INT(b.frees_7d_bytes, ==, strlen("original 5") + strlen("archive 5"));
        CHECK_INT(b.frees_30d_bytes, ==, b.frees_7d_bytes);
        check_custody_ok(&e);
        env_done(&e);
}

typedef struct Steps {
        unsigned recorded, removed, skipped, resumed;
        int kill_at_recorded; /* SIGKILL self at the n-th RECORDED (1-based), 0: never */
        int kill_at_removed;
} Steps;

static void on_step(const EvdDisposalStep *s, void *userdata)
{
        Steps *st = userdata;
        switch (s->kind) {
        case EVD_DISPOSAL_RECORDED:
                if (++st->recorded == (unsigned)st->kill_at_recorded)
                        kill(getpid(), SIGKILL);
                break;
        case EVD_DISPOSAL_REMOVED:
                if (++st->removed == (unsigned)st->kill_at_removed)
                        kill(getpid(), SIGKILL);
                break;
        case EVD_DISPOSAL_SKIPPED:
                st->skipped++;
                break;
        case EVD_DISPOSAL_RESUMED:
                st->resumed++;
                break;
        }
}

static void test_two_person_disposal(void)
{
        Env e;
        CHECK(env_init(&e, "dispose") == 0);
        int64_t old = now_us - 400 * DAY_US;
        int64_t f1 = add_file(&e, 1, "012345", old, NULL);
        int64_t f2 = add_file(&e, 2, "012345", old, NULL);
        int64_t f3 = add_file(&e, 3, "012345", old, NULL);
        int64_t f4 = add_file(&e, 4, "012345", old, NULL);
        int64_t f5 = add_file(&e, 5, "012345", now_us - DAY_US, NULL);
        CHECK(f1 > 0 && f2 > 0 && f3 > 0 && f4 > 0 && f5 > 0);
        EvdError err = {};
        EvdLifecycleChange c = {};
        EvdRetentionPolicy p;
        evd_retention_policy_default(&p);

        /* f3 held, f4 in a case */
        EvdFileSelector s3 = {.kind = EVD_SELECT_FILE, .file_id = f3};
        CHECK_OK(evd_mark_set(e.db, EVD_MARK_HOLD, &s3, EVD_LONG_TERM_NONE, "court", &c, &err));
        evd_lifecycle_change_clear(&c);
        CHECK_OK(evd_case_open(e.db, "C-4", "criminal", "x", &err));
        EvdFileSelector s4 = {.kind = EVD_SELECT_FILE, .file_id = f4};
        CHECK_OK(evd_case_assign(e.db, "C-4", &s4, "x", &c, &err));
        evd_lifecycle_change_clear(&c);

        /* named files that may not go: each refused with why */
        int64_t batch = 0;
        size_t n = 0;
        CHECK_INT(evd_disposal_propose(e.db, &p, now_us, &f3, 1, "cleanup", &batch, &n, &err), ==, -EPERM);
        CHECK(strstr(err.msg, "legal hold") != NULL);
        CHECK_INT(evd_disposal_propose(e.db, &p, now_us, &f4, 1, "cleanup", &batch, &n, &err), ==, -EPERM);
        CHECK(strstr(err.msg, "evidence in case 'C-4'") != NULL);
        CHECK_INT(evd_disposal_propose(e.db, &p, now_us, &f5, 1, "cleanup", &batch, &n, &err), ==, -EPERM);
        CHECK(strstr(err.msg, "not expired") != NULL);
        int64_t ghost = 424242;
        CHECK_INT(evd_disposal_propose(e.db, &p, now_us, &ghost, 1, "cleanup", &batch, &n, &err), ==,
                  -ENOENT);
        CHECK_INT(evd_disposal_propose(e.db, &p, now_us, NULL, 0, "", &batch, &n, &err), ==, -EINVAL);

        /* all expired: f1, f2 */
        CHECK_OK(evd_disposal_propose(e.db, &p, now_us, NULL, 0, "ordinary footage past 180 days", &batch,
                                      &n, &err));
        CHECK_INT(n, ==, 2);

        /* executing before approval; the proposer approving */
        Steps st = {};
        EvdDisposalResult res = {};
        CHECK_INT(evd_disposal_execute(e.db, e.store, &p, now_us, batch, on_step, &st, &res, &err), ==,
                  -EPERM);
        CHECK(strstr(err.msg, "not approved") != NULL);
        CHECK_INT(evd_disposal_decide(e.db, batch, true, "me too", &err), ==, -EPERM);
        CHECK(strstr(err.msg, "different admin") != NULL);
        /* the database refuses it as well, whatever the client says */
        char perr[256] = "";
        char sql[256];
        snprintf(sql, sizeof(sql),
                 "INSERT INTO disposal_decisions (batch_id, decision, reason, actor, custody_event_id) "
                 "VALUES (%lld, 'approve', 'x', 'someone-else', 1)",
                 (long long)batch);
        CHECK(test_pg_exec(e.conninfo, sql, perr, sizeof(perr)) < 0);
        CHECK(strstr(perr, "different admin") != NULL);
        CHECK_INT(evd_disposal_decide(e.db2, batch, true, "", &err), ==, -EINVAL);
        CHECK_OK(evd_disposal_decide(e.db2, batch, true, "checked: ordinary, expired", &err));
        CHECK_INT(evd_disposal_decide(e.db2, batch, false, "changed my mind", &err), ==, -EALREADY);

        /* a hold set after the approval still wins: f2 is skipped */
        EvdFileSelector s2 = {.kind = EVD_SELECT_FILE, .file_id = f2};
        CHECK_OK(evd_mark_set(e.db, EVD_MARK_HOLD, &s2, EVD_LONG_TERM_NONE, "late court order", &c, &err));
        evd_lifecycle_change_clear(&c);

        _cleanup_free_ char *o1 = path_of(&e, f1, false), *a1 = path_of(&e, f1, true),
                            *o2 = path_of(&e, f2, false);
        CHECK(o1 && a1 && o2);
        CHECK_OK(evd_disposal_execute(e.db, e.store, &p, now_us, batch, on_step, &st, &res, &err));
        CHECK_INT(res.n_disposed, ==, 1);
        CHECK_INT(res.n_skipped, ==, 1);
        CHECK(!stored(&e, o1));
        CHECK(!stored(&e, a1));
        CHECK(stored(&e, o2));
        /* rows and hashes stay; the disposal names the bytes */
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM disposals d JOIN files f ON f.id = d.file_id AND f.sha256 = d.sha256 "
                 "WHERE d.file_id = %lld",
                 (long long)f1);
        CHECK_INT(test_pg_query_int(e.conninfo, sql), ==, 1);
        CHECK_INT(test_pg_query_int(e.conninfo, "SELECT count(*) FROM files"), ==, 5);
        CHECK_INT(test_pg_query_int(e.conninfo,
                                    "SELECT count(*) FROM custody_events WHERE kind = 'disposal_skipped' "
                                    "AND detail LIKE '%legal hold%'"),
                  ==, 1);

        /* a second execution is refused */
        CHECK_INT(evd_disposal_execute(e.db, e.store, &p, now_us, batch, on_step, &st, &res, &err), ==,
                  -EALREADY);
        CHECK(strstr(err.msg, "executed already") != NULL);
        EvdDisposalBatch *bl = NULL;
        size_t nb = 0;
        CHECK_OK(evd_disposal_list(e.db, batch, &bl, &nb, &err));
        if (nb == 1)
                CHECK_INT(bl[0].state, ==, EVD_DISPOSAL_EXECUTED);
        evd_disposal_batch_array_free(bl, nb);

        /* reconcile: the disposed file is not missing; audit verify passes */
        EvdReconcileReport rr = {};
        CHECK_OK(evd_reconcile(e.store, e.db, NULL, NULL, &rr, &err));
        CHECK_INT(rr.rows_without_file, ==, 0);
        CHECK_INT(rr.rows_disposed, ==, 2);
        CHECK_INT(evd_disposal_file_disposed(e.db, f1, &err), ==, 1);
        CHECK_INT(evd_disposal_file_disposed(e.db, f2, &err), ==, 0);
        check_custody_ok(&e);

        /* a rejected batch cannot run */
        CHECK_OK(evd_mark_clear(e.db, EVD_MARK_HOLD, &s2, "order lifted", &c, &err));
        evd_lifecycle_change_clear(&c);
        CHECK_OK(evd_disposal_propose(e.db, &p, now_us, &f2, 1, "again", &batch, &n, &err));
        CHECK_OK(evd_disposal_decide(e.db2, batch, false, "keep it", &err));
        CHECK_INT(evd_disposal_execute(e.db, e.store, &p, now_us, batch, on_step, &st, &res, &err), ==,
                  -EPERM);
        CHECK(strstr(err.msg, "rejected") != NULL);
        CHECK(stored(&e, o2));
        env_done(&e);
}

/* Runs the execution in a child that kills itself at a given step; returns the child's wait status. */
static int execute_in_child(Env *e, int64_t batch, int kill_at_recorded, int kill_at_removed)
{
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                EvdDb *db = NULL;
                EvdStore *store = NULL;
                if (evd_db_open(e->conninfo, &db, NULL) < 0 ||
                    evd_store_open(evd_store_root(e->store), &store, NULL) < 0)
                        _exit(2);
                EvdRetentionPolicy p;
                evd_retention_policy_default(&p);
                Steps st = {.kill_at_recorded = kill_at_recorded, .kill_at_removed = kill_at_removed};
                int r = evd_disposal_execute(db, store, &p, now_us, batch, on_step, &st, NULL, NULL);
                _exit(r < 0 ? 3 : 0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        return status;
}

static void test_kill_during_disposal(void)
{
        Env e;
        CHECK(env_init(&e, "kill") == 0);
        int64_t old = now_us - 400 * DAY_US;
        int64_t ids[4];
        char *orig[4] = {}, *arch[4] = {};
        for (unsigned i = 0; i < 4; i++) {
                ids[i] = add_file(&e, i + 1, "012345", old, NULL);
                CHECK(ids[i] > 0);
                orig[i] = path_of(&e, ids[i], false);
                arch[i] = path_of(&e, ids[i], true);
                CHECK(orig[i] && arch[i]);
        }
        EvdError err = {};
        EvdRetentionPolicy p;
        evd_retention_policy_default(&p);
        int64_t batch = 0;
        size_t n = 0;
        CHECK_OK(evd_disposal_propose(e.db, &p, now_us, NULL, 0, "expired", &batch, &n, &err));
        CHECK_OK(evd_disposal_decide(e.db2, batch, true, "ok", &err));

        /* killed after file 1 is removed and file 2 is recorded but not yet removed */
        int st = execute_in_child(&e, batch, 2, 0);
        CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        char sql[200];
        for (unsigned i = 0; i < 4; i++) {
                snprintf(sql, sizeof(sql), "SELECT count(*) FROM disposals WHERE file_id = %lld",
                         (long long)ids[i]);
                long long recorded = test_pg_query_int(e.conninfo, sql);
                /* never removed without a record */
                if (!stored(&e, orig[i]) || !stored(&e, arch[i]))
                        CHECK_INT(recorded, ==, 1);
                /* not recorded: untouched */
                if (recorded == 0)
                        CHECK(stored(&e, orig[i]) && stored(&e, arch[i]));
        }
        CHECK(!stored(&e, orig[0]));
        CHECK(stored(&e, orig[1])); /* recorded, removal pending */
        CHECK(stored(&e, orig[2]));
        CHECK_INT(test_pg_query_int(e.conninfo, "SELECT count(*) FROM disposals"), ==, 2);
        CHECK_INT(test_pg_query_int(e.conninfo, "SELECT count(*) FROM disposal_executions"), ==, 0);
        EvdDisposalBatch *bl = NULL;
        size_t nb = 0;
        CHECK_OK(evd_disposal_list(e.db, batch, &bl, &nb, &err));
        if (nb == 1)
                CHECK_INT(bl[0].state, ==, EVD_DISPOSAL_INTERRUPTED);
        evd_disposal_batch_array_free(bl, nb);

        /* killed again, right after removing the first new file (file 3) */
        st = execute_in_child(&e, batch, 0, 1);
        CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        CHECK(!stored(&e, orig[1]));
        CHECK(!stored(&e, orig[2]));
        CHECK(stored(&e, orig[3]));
        CHECK_INT(test_pg_query_int(e.conninfo, "SELECT count(*) FROM disposals"), ==, 3);

        /* the next execution resumes and finishes */
        Steps steps = {};
        EvdDisposalResult res = {};
        CHECK_OK(evd_disposal_execute(e.db, e.store, &p, now_us, batch, on_step, &steps, &res, &err));
        CHECK_INT(res.n_resumed, ==, 3);
        CHECK_INT(res.n_disposed, ==, 4);
        for (unsigned i = 0; i < 4; i++)
                CHECK(!stored(&e, orig[i]) && !stored(&e, arch[i]));
        CHECK_INT(evd_disposal_execute(e.db, e.store, &p, now_us, batch, on_step, &steps, &res, &err), ==,
                  -EALREADY);
        /* exactly one disposal row and one 'disposed' custody event per file */
        CHECK_INT(test_pg_query_int(e.conninfo, "SELECT count(*) FROM disposals"), ==, 4);
        CHECK_INT(
            test_pg_query_int(e.conninfo, "SELECT count(*) FROM custody_events WHERE kind = 'disposed'"), ==,
            4);
        EvdReconcileReport rr = {};
        CHECK_OK(evd_reconcile(e.store, e.db, NULL, NULL, &rr, &err));
        CHECK_INT(rr.rows_without_file, ==, 0);
        CHECK_INT(rr.rows_disposed, ==, 8);
        check_custody_ok(&e);
        for (unsigned i = 0; i < 4; i++) {
                free(orig[i]);
                free(arch[i]);
        }
        env_done(&e);
}

static void test_store_dispose_paths(void)
{
        char root[400];
        snprintf(root, sizeof(root), "%s/store-paths", tmpdir);
        _cleanup_(evd_store_freep) EvdStore *store = NULL;
        CHECK_OK(evd_store_open(root, &store, NULL));
        EvdError err = {};
        const char *bad[] = {"../x",      "originals/A/B",    "originals/A/B/C/D",
                             "etc/A/B/C", "originals/../B/C", "/originals/A/B/C",
                             ""};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                CHECK_INT(evd_store_dispose_file(store, bad[i], &err), ==, -EINVAL);
        CHECK_INT(evd_store_dispose_file(store, "originals/A1B2C3D/2020-01-02/none", &err), ==, 0);
}

int main(void)
{
        now_us = (int64_t)time(NULL) * 1000000;
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/evd-test-lifecycle-XXXXXX");
        if (!mkdtemp(tmpdir))
                return 99;
        RUN(test_cases_and_associations);
        RUN(test_marks_and_retention);
        RUN(test_two_person_disposal);
        RUN(test_kill_during_disposal);
        RUN(test_store_dispose_paths);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
        if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", tmpdir);
        return check_finish();
}
