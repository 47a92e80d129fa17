/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Start-up reconciliation against a real PostgreSQL: temp files go, files without rows and rows
 * without files are found, reported and put in the custody log, nothing is deleted. */
#include <fcntl.h>
#include <sys/stat.h>

#include "check.h"
#include "copy.h"
#include "custody.h"
#include "db.h"
#include "hash.h"
#include "pg.h"
#include "reconcile.h"
#include "store.h"

static char tmpdir[256];

typedef struct Seen {
        unsigned temp, unrecorded, missing;
        char last_unrecorded[256], last_missing[256];
} Seen;

static void on_finding(EvdReconcileKind kind, const char *path, int64_t file_id, void *userdata)
{
        Seen *s = userdata;
        if (kind == EVD_RECONCILE_TEMP_REMOVED)
                s->temp++;
        else if (kind == EVD_RECONCILE_FILE_WITHOUT_ROW) {
                s->unrecorded++;
                snprintf(s->last_unrecorded, sizeof(s->last_unrecorded), "%s", path);
        } else {
                s->missing++;
                snprintf(s->last_missing, sizeof(s->last_missing), "%s", path);
        }
}

static int write_file(int dir_fd, const char *name, const char *content)
{
        int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        if (fd < 0)
                return -errno;
        ssize_t n = write(fd, content, strlen(content));
        close(fd);
        return n == (ssize_t)strlen(content) ? 0 : -EIO;
}

static int record(EvdDb *db, int64_t docking_id, const char *original, const char *archive, const char *seed)
{
        uint8_t sha[EVD_DIGEST_SIZE], rec[EVD_DIGEST_SIZE];
        evd_hash_buffer(EVD_HASH_SHA256, seed, strlen(seed), sha);
        evd_hash_buffer(EVD_HASH_SHA256, original, strlen(original), rec);
        EvdDbFile f = {.docking_id = docking_id,
                       .device_id = "A1B2C3D",
                       .officer_id = "012345",
                       .has_seq = true,
                       .seq = 1,
                       .method = EVD_METHOD_VIDEO,
                       .ingested_us = 1,
                       .stored_us = 1,
                       .size = 1,
                       .sha256 = sha,
                       .record_hash = rec,
                       .source_path = "VIDEO/x.MP4",
                       .original_path = original,
                       .archive_path = archive,
                       .verdict = EVD_VERDICT_INTACT,
                       .retention_class = "case"};
        return evd_db_file_record(db, &f, NULL, 0, NULL, 0, NULL, NULL);
}

static void test_reconcile(void)
{
        _cleanup_free_ char *conninfo = NULL;
        CHECK(test_pg_new_database("reconcile", &conninfo) == 0);
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        CHECK_OK(evd_db_open(conninfo, &db, NULL));
        EvdDbDevice dev = {.device_id = (char *)"A1B2C3D",
                           .officer_id = (char *)"012345",
                           .suite = EVD_SUITE_ED25519_SHA256,
                           .public_key_pem = (char *)"-----BEGIN PUBLIC KEY-----\n",
                           .key_id = (char *)"00"};
        CHECK_OK(evd_db_device_enroll(db, &dev, NULL));
        EvdDbDocking d = {.device_id = "A1B2C3D", .transport = "dir", .docked_us = 1};
        int64_t docking_id = 0;
        CHECK_OK(evd_db_docking_begin(db, &d, &docking_id, NULL));

        char root[300];
        snprintf(root, sizeof(root), "%s/store", tmpdir);
        _cleanup_(evd_store_freep) EvdStore *store = NULL;
        CHECK_OK(evd_store_open(root, &store, NULL));
        _cleanup_close_ int orig = -1, arch = -1;
        CHECK_OK(evd_store_dir(store, EVD_STORE_ORIGINALS, "A1B2C3D", "2026-11-22", &orig, NULL, NULL));
        CHECK_OK(evd_store_dir(store, EVD_STORE_ARCHIVE, "A1B2C3D", "2026-11-22", &arch, NULL, NULL));

        /* recorded and present: fine */
        CHECK_OK(write_file(orig, "000001_ok.MP4", "ok"));
        CHECK_OK(write_file(arch, "000001_ok.mkv", "ok"));
        CHECK_OK(record(db, docking_id, "originals/A1B2C3D/2026-11-22/000001_ok.MP4",
                        "archive/A1B2C3D/2026-11-22/000001_ok.mkv", "ok"));
        /* stored, but the run died before its row was written */
        CHECK_OK(write_file(orig, "000002_unrecorded.MP4", "u"));
        /* a leftover temporary file of a filesystem without O_TMPFILE */
        CHECK_OK(write_file(orig, EVD_TMPFILE_PREFIX "1234", "half"));
        /* recorded, but its file is gone from the store */
        CHECK_OK(record(db, docking_id, "originals/A1B2C3D/2026-11-22/000003_gone.MP4", NULL, "gone"));

        Seen seen = {};
        EvdReconcileReport rep = {};
        EvdError err = {};
        int r = evd_reconcile(store, db, on_finding, &seen, &rep, &err);
        if (r < 0)
                printf("# %s\n", evd_error_message(&err, r));
        CHECK_OK(r);
        CHECK_INT(rep.temp_removed, ==, 1);
        CHECK_INT(rep.files_checked, ==, 3);
        CHECK_INT(rep.files_without_row, ==, 1);
        CHECK_STREQ(seen.last_unrecorded, "originals/A1B2C3D/2026-11-22/000002_unrecorded.MP4");
        CHECK_INT(rep.rows_checked, ==, 3);
        CHECK_INT(rep.rows_without_file, ==, 1);
        CHECK_STREQ(seen.last_missing, "originals/A1B2C3D/2026-11-22/000003_gone.MP4");
        /* nothing deleted but the temporary file */
        CHECK(faccessat(orig, "000002_unrecorded.MP4", F_OK, 0) == 0);
        CHECK(faccessat(orig, EVD_TMPFILE_PREFIX "1234", F_OK, 0) < 0);
        /* both findings are in the custody log, which still verifies */
        CHECK_INT(test_pg_query_int(
                      conninfo, "SELECT count(*) FROM custody_events WHERE kind = 'reconcile_unrecorded'"),
                  ==, 1);
        CHECK_INT(test_pg_query_int(conninfo,
                                    "SELECT count(*) FROM custody_events WHERE kind = 'reconcile_missing'"),
                  ==, 1);
        EvdCustodyReport cr = {};
        CHECK_OK(evd_custody_verify(db, &cr, NULL));
        CHECK(cr.ok);
        /* the connection is usable after the streamed query */
        CHECK_INT(evd_db_path_known(db, "originals/A1B2C3D/2026-11-22/000001_ok.MP4", NULL), ==, 1);
}

int main(void)
{
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/evd-test-reconcile-XXXXXX");
        if (!mkdtemp(tmpdir))
                return 99;
        RUN(test_reconcile);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
        if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", tmpdir);
        return check_finish();
}
