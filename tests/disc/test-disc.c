/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Burn-to-disc jobs with the real xorriso on pseudo-drives (a hot folder "dir:" and "stdio:" files)
 * against a real scratch PostgreSQL. Every disc is also checked without evidock: extracted with
 * `xorriso -osirrox`, then `sha256sum -c` of both manifests, `xorriso -check_md5_r`, and the README's
 * openssl command on a chain record signed by a real Ed25519 key. */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "check.h"
#include "common/pg.h"
#include "custody.h"
#include "db-disc.h"
#include "db.h"
#include "disc-job.h"
#include "disc-verify.h"

#define DEV "DSC0001"

static char tmp_root[256];

static int _printf_(1, 2) sh(const char *fmt, ...)
{
        char cmd[4096];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        int st = system(cmd);
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Output of a shell command (first line, trimmed). */
static int _printf_(3, 4) sh_out(char *out, size_t size, const char *fmt, ...)
{
        char cmd[4096];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        FILE *p = popen(cmd, "r");
        if (!p)
                return -errno;
        out[0] = '\0';
        if (!fgets(out, (int)size, p))
                out[0] = '\0';
        out[strcspn(out, "\n")] = '\0';
        int st = pclose(p);
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

typedef struct Env {
        char *ci;
        EvdDb *db;
        char dir[300];   /* everything of this test */
        char store[320]; /* the store root */
        char work[320];  /* staging */
        char hot[320];   /* a hot folder */
        char key[320];   /* the recorder's private key (PEM) */
        int64_t file_ids[16];
        size_t n_files;
} Env;

static void env_free(Env *e)
{
        evd_db_close(e->db);
        free(e->ci);
        if (e->dir[0] && !getenv("EVIDOCK_TEST_KEEP"))
                sh("rm -rf '%s'", e->dir);
}

/* A database with one enrolled recorder (a real Ed25519 key) and a store dir. */
static int env_new(Env *e, const char *tag)
{
        *e = (Env){};
        CHECK_OR_RET(test_pg_new_database(tag, &e->ci) == 0);
        EvdError err = {};
        int r = evd_db_open(e->ci, &e->db, &err);
        if (r < 0)
                printf("# %s\n", err.msg);
        CHECK_OR_RET(r == 0);
        snprintf(e->dir, sizeof(e->dir), "%s/%s", tmp_root, tag);
        snprintf(e->store, sizeof(e->store), "%s/store", e->dir);
        snprintf(e->work, sizeof(e->work), "%s/work", e->dir);
        snprintf(e->hot, sizeof(e->hot), "%s/hot", e->dir);
        snprintf(e->key, sizeof(e->key), "%s/rec.key", e->dir);
        CHECK_OR_RET(sh("mkdir -p '%s/originals/" DEV "/2026-12-01' '%s/archive/" DEV
                        "/2026-12-01' '%s' '%s'",
                        e->store, e->store, e->work, e->hot) == 0);
        CHECK_OR_RET(
            sh("openssl genpkey -algorithm ed25519 -out '%s' 2>/dev/null && openssl pkey -in '%s' -pubout "
               "-out '%s.pub'",
               e->key, e->key, e->key) == 0);
        char pub_path[340], pem[1024] = "";
        snprintf(pub_path, sizeof(pub_path), "%s.pub", e->key);
        int fd = open(pub_path, O_RDONLY);
        CHECK_OR_RET(fd >= 0);
        ssize_t n = read(fd, pem, sizeof(pem) - 1);
        close(fd);
        CHECK_OR_RET(n > 0);
        EvdDbDevice dev = {.device_id = (char *)DEV,
                           .officer_id = (char *)"012345",
                           .unit_code = (char *)"440300000000",
                           .suite = EVD_SUITE_ED25519_SHA256,
                           .public_key_pem = pem,
                           .key_id = (char *)"8b0fd78a7ddf38f841ac2ee169641ca3"};
        CHECK_OR_RET(evd_db_device_enroll(e->db, &dev, NULL) == 0);
        return 0;
}

/* One recording: an original of size bytes (random) and an archive copy, in the store and the
 * database, with a chain record signed by the recorder key. */
static int add_recording(Env *e, unsigned seq, uint64_t size, const char *case_number)
{
        char name[64], orig[600], arch[600], rel_o[128], rel_a[128];
        snprintf(name, sizeof(name), DEV "_%04u.MP4", seq);
        snprintf(rel_o, sizeof(rel_o), "originals/" DEV "/2026-12-01/%s", name);
        snprintf(rel_a, sizeof(rel_a), "archive/" DEV "/2026-12-01/%s.mkv", name);
        snprintf(orig, sizeof(orig), "%s/%s", e->store, rel_o);
        snprintf(arch, sizeof(arch), "%s/%s", e->store, rel_a);
        CHECK_OR_RET(sh("head -c %llu /dev/urandom > '%s' && head -c %llu /dev/urandom > '%s'",
                        (unsigned long long)size, orig, (unsigned long long)(size / 2), arch) == 0);
        uint8_t sha[EVD_DIGEST_SIZE], asha[EVD_DIGEST_SIZE], rec[EVD_DIGEST_SIZE];
        uint64_t n;
        int fd = open(orig, O_RDONLY);
        CHECK_OR_RET(fd >= 0 && evd_hash_fd(EVD_HASH_SHA256, fd, sha, &n) == 0);
        close(fd);
        fd = open(arch, O_RDONLY);
        uint64_t an;
        CHECK_OR_RET(fd >= 0 && evd_hash_fd(EVD_HASH_SHA256, fd, asha, &an) == 0);
        close(fd);
        char hex[65];
        evd_hex(sha, EVD_DIGEST_SIZE, hex);
        /* The signed part of a chain record, then its signature (openssl, base64 without padding). */
        char tbs[600], tbs_path[400], sig_b64[200] = "";
        snprintf(tbs, sizeof(tbs),
                 "EVDCHAIN/1;type=SEG;suite=ed25519-sha256;dev=" DEV
                 ";officer=012345;unit=440300000000;session=1;"
                 "seq=%u;start=2026-12-01T08:00:00+08:00;end=2026-12-01T08:10:00+08:00;method=video;file="
                 "VIDEO/%s;"
                 "size=%llu;hash=%s;case=%s;prev=%064d;key=8b0fd78a7ddf38f841ac2ee169641ca3",
                 seq, name, (unsigned long long)size, hex, case_number ? case_number : "", 0);
        snprintf(tbs_path, sizeof(tbs_path), "%s/tbs.%u", e->dir, seq);
        fd = open(tbs_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        CHECK_OR_RET(fd >= 0 && write(fd, tbs, strlen(tbs)) == (ssize_t)strlen(tbs));
        close(fd);
        CHECK_OR_RET(sh_out(sig_b64, sizeof(sig_b64),
                            "openssl pkeyutl -sign -inkey '%s' -rawin -in '%s' | base64 -w0 | tr -d '='",
                            e->key, tbs_path) == 0);
        CHECK_OR_RET(strlen(sig_b64) == 86);
        char line[800];
        snprintf(line, sizeof(line), "%s;sig=%s", tbs, sig_b64);
        evd_hash_buffer(EVD_HASH_SHA256, tbs, strlen(tbs), rec);

        EvdDbDocking d = {.device_id = DEV, .transport = "dir", .docked_us = 1764547200000000 + seq};
        int64_t docking_id;
        CHECK_OR_RET(evd_db_docking_begin(e->db, &d, &docking_id, NULL) == 0);
        EvdDbFile f = {
            .docking_id = docking_id,
            .device_id = DEV,
            .officer_id = "012345",
            .has_seq = true,
            .seq = seq,
            .session = 1,
            .method = EVD_METHOD_VIDEO,
            .case_number = case_number,
            .has_recorded = true,
            .recorded_start_us = 1764547200000000 + (int64_t)seq * 60000000,
            .recorded_end_us = 1764547200000000 + (int64_t)seq * 60000000 + 30000000,
            .tz_minutes = 480,
            .ingested_us = 1764550000000000,
            .stored_us = 1764550000000000,
            .within_24h = true,
            .size = size,
            .sha256 = sha,
            .record_hash = rec,
            .chain_record = line,
            .source_path = name,
            .original_path = rel_o,
            .archive_path = rel_a,
            .archive_sha256 = asha,
            .archive_format = "matroska",
            .verdict = EVD_VERDICT_INTACT,
            .retention_class = "long_term",
        };
        EvdCustodyEntry ev[] = {{.kind = "copied", .detail = "test"},
                                {.kind = "recorded", .detail = "test"}};
        int64_t id;
        EvdError err = {};
        int r = evd_db_file_record(e->db, &f, NULL, 0, ev, ELEMENTSOF(ev), &id, &err);
        if (r < 0)
                printf("# file_record: %s\n", err.msg);
        CHECK_OR_RET(r == 0);
        e->file_ids[e->n_files++] = id;
        return 0;
}

static EvdDiscRunner runner(Env *e, const char *drive)
{
        return (EvdDiscRunner){.db = e->db,
                               .store_root = e->store,
                               .work_dir = e->work,
                               .drive = drive,
                               .who = "test",
                               .xorriso = {.timeout_s = 120}};
}

/* Runs steps until the job ends or a step does not make progress. Returns the last step. */
static EvdDiscStep run_until_end(EvdDiscRunner *rn, int64_t job, unsigned max_steps)
{
        EvdDiscStep step = EVD_DISC_STEP_IDLE;
        for (unsigned i = 0; i < max_steps; i++) {
                char msg[800];
                EvdError err = {};
                int r = evd_disc_run_step(rn, job, &step, msg, sizeof(msg), &err);
                printf("# step %u: %s %s%s\n", i, evd_disc_step_to_string(step), msg, r < 0 ? err.msg : "");
                if (r < 0 || step == EVD_DISC_STEP_JOB_DONE || step == EVD_DISC_STEP_JOB_FAILED ||
                    step == EVD_DISC_STEP_IDLE || step == EVD_DISC_STEP_NO_MEDIA)
                        break;
        }
        return step;
}

static int64_t queue(Env *e, const char *media, unsigned copies, const char *case_number)
{
        EvdDiscJobSpec spec = {.select = {.case_number = case_number},
                               .media = media,
                               .copies = copies,
                               .requested_by = "test",
                               .reason = "long-term: disputed case",
                               .store_root = e->store};
        if (!case_number) {
                spec.select.file_ids = e->file_ids;
                spec.select.n_file_ids = e->n_files;
        }
        int64_t job = 0;
        EvdError err = {};
        int r = evd_disc_job_queue(e->db, &spec, &job, &err);
        if (r < 0)
                printf("# queue: %s\n", err.msg);
        return r < 0 ? r : job;
}

/* Extracts an image with xorriso and runs the reader's checks from README.txt. */
static int independent_check(const char *iso, const char *out)
{
        if (sh("rm -rf '%s' && xorriso -osirrox on -indev '%s' -extract / '%s' >/dev/null 2>&1", out, iso,
               out) != 0)
                return -1;
        if (sh("cd '%s' && sha256sum --quiet -c tagmanifest-sha256.txt >/dev/null 2>&1 && "
               "sha256sum --quiet -c manifest-sha256.txt >/dev/null 2>&1",
               out) != 0)
                return 1;
        if (sh("xorriso -md5 on -indev '%s' -check_md5_r FAILURE / -- >/dev/null 2>&1", iso) != 0)
                return 2;
        return 0;
}

static long long q(Env *e, const char *sql)
{
        return test_pg_query_int(e->ci, sql);
}

static void test_two_identical_verified_discs(void)
{
        _cleanup_(env_free) Env e;
        CHECK(env_new(&e, "disc_two") == 0);
        for (unsigned i = 1; i <= 3; i++)
                CHECK(add_recording(&e, i, 300000 + i * 1000, "A4403-2026-刑-0042") == 0);
        int64_t job = queue(&e, "64M", 2, "A4403-2026-刑-0042");
        CHECK(job > 0);
        /* Nothing is retained before a disc is verified. */
        CHECK_INT(q(&e, "SELECT count(*) FROM disc_retained_files"), ==, 0);
        char drive[400];
        snprintf(drive, sizeof(drive), "dir:%s", e.hot);
        EvdDiscRunner rn = runner(&e, drive);
        CHECK_INT(run_until_end(&rn, 0, 6), ==, EVD_DISC_STEP_JOB_DONE);

        CHECK_INT(q(&e, "SELECT count(*) FROM discs WHERE outcome = 'verified'"), ==, 2);
        CHECK_INT(q(&e, "SELECT count(DISTINCT image_sha256) FROM discs WHERE outcome = 'verified'"), ==, 1);
        CHECK_INT(q(&e, "SELECT count(DISTINCT file_id) FROM disc_retained_files"), ==, 3);
        CHECK_INT(q(&e, "SELECT count(*) FROM custody_events WHERE kind = 'on_disc'"), ==, 6);
        CHECK_INT(q(&e, "SELECT count(*) FROM custody_events WHERE kind = 'disc_verified'"), ==, 2);
        char sql[200];
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM disc_job_state WHERE job_id = %lld AND state = 'done'",
                 (long long)job);
        CHECK_INT(q(&e, sql), ==, 1);
        CHECK_INT(q(&e, "SELECT count(*) FROM disc_job_events WHERE state = 'burning'"), ==, 2);

        /* Two identical image files in the hot folder, nothing else. */
        char c1[600], c2[600], a[100], b[100];
        snprintf(c1, sizeof(c1), "%s/evd-j%lld-d1of1-c1.iso", e.hot, (long long)job);
        snprintf(c2, sizeof(c2), "%s/evd-j%lld-d1of1-c2.iso", e.hot, (long long)job);
        CHECK(sh_out(a, sizeof(a), "sha256sum < '%s'", c1) == 0);
        CHECK(sh_out(b, sizeof(b), "sha256sum < '%s'", c2) == 0);
        CHECK_STREQ(a, b);
        CHECK(sh("test \"$(ls -A '%s' | wc -l)\" = 2", e.hot) == 0);

        /* Independent verification of both copies. */
        char out[400];
        snprintf(out, sizeof(out), "%s/x1", e.dir);
        CHECK_INT(independent_check(c1, out), ==, 0);
        snprintf(out, sizeof(out), "%s/x2", e.dir);
        CHECK_INT(independent_check(c2, out), ==, 0);
        /* bag-info.txt and the volume */
        CHECK(sh("grep -qx 'Bag-Count: 1 of 1' '%s/bag-info.txt' && grep -qx 'Case-Number: "
                 "A4403-2026-刑-0042' "
                 "'%s/bag-info.txt' && grep -q '^Payload-Oxum: ' '%s/bag-info.txt' && grep -q "
                 "'^Bag-Group-Identifier: evidock-' '%s/bag-info.txt' && grep -qx 'Recording-Count: 3' "
                 "'%s/bag-info.txt'",
                 out, out, out, out, out) == 0);
        CHECK(sh("xorriso -indev '%s' -pvd_info 2>&1 | grep -q \"Volume Id    : EVD_A4403_2026_\"", c1) ==
              0);
        /* Payload-Oxum counts what is under data/ */
        CHECK(sh("cd '%s' && oxum=$(sed -n 's/^Payload-Oxum: //p' bag-info.txt) && "
                 "test \"$oxum\" = \"$(find data -type f -printf '%%s\\n' | paste -sd+ | bc).$(find data "
                 "-type f | wc -l)\"",
                 out) == 0);
        /* README (both languages), index.html without script, the custody head, keys */
        CHECK(sh("grep -q 'sha256sum -c manifest-sha256.txt' '%s/data/README.txt' && grep -q '核验' "
                 "'%s/data/README.txt'",
                 out, out) == 0);
        CHECK(sh("grep -q 'A4403-2026-刑-0042' '%s/data/index.html' && ! grep -qi '<script' "
                 "'%s/data/index.html' && "
                 "! grep -qi 'http' '%s/data/index.html'",
                 out, out, out) == 0);
        CHECK(sh("test -s '%s/data/custody/head.json' && test \"$(wc -l < '%s/data/custody/events.jsonl')\" "
                 "= 6 && "
                 "ls '%s'/data/keys/" DEV "-*.pem >/dev/null",
                 out, out, out) == 0);
        /* The README's openssl command verifies the recorder's signature of each chain record. */
        char id[32];
        snprintf(id, sizeof(id), "%lld", (long long)e.file_ids[0]);
        CHECK(sh("cd '%s' && openssl pkeyutl -verify -pubin -inkey data/keys/" DEV
                 "-*.pem -rawin -in data/chain/%s.tbs "
                 "-sigfile data/chain/%s.sig >/dev/null",
                 out, id, id) == 0);
        /* and the original's hash is the one the record signs */
        CHECK(
            sh("cd '%s' && h=$(grep -o 'hash=[0-9a-f]*' data/chain/%s.tbs | cut -d= -f2) && grep -q \"^$h  "
               "data/originals/\" manifest-sha256.txt",
               out, id) == 0);

        /* evidockctl disc verify's engine: a later fixity check of copy 2 is ok and recorded. */
        EvdDiscCheckResult res;
        EvdXorrisoRun x = {.timeout_s = 120};
        EvdError err = {};
        CHECK_OK(evd_disc_check(e.db, c2, &x, "test", &res, &err));
        printf("# check: %s %s\n", res.outcome, res.detail);
        CHECK_STREQ(res.outcome, "ok");
        CHECK(res.image_matches);
        CHECK_INT(q(&e, "SELECT count(*) FROM disc_checks WHERE outcome = 'ok'"), ==, 1);

        /* Which discs hold a recording (for evidockctl chain/log). */
        EvdDbDiscHolding *h = NULL;
        size_t nh = 0;
        CHECK_OK(evd_db_disc_holdings(e.db, e.file_ids[1], &h, &nh, NULL));
        CHECK_INT(nh, ==, 2);
        free(h);

        /* The job has ended: another step finds nothing to do. */
        EvdDiscStep step;
        char msg[200];
        CHECK_OK(evd_disc_run_step(&rn, 0, &step, msg, sizeof(msg), NULL));
        CHECK_INT(step, ==, EVD_DISC_STEP_IDLE);
}

/* Flips one byte of an original's data in an image: evidock's check and the independent ones catch it. */
static void test_flipped_byte_caught(void)
{
        _cleanup_(env_free) Env e;
        CHECK(env_new(&e, "disc_flip") == 0);
        CHECK(add_recording(&e, 1, 200000, "C-1") == 0);
        CHECK(add_recording(&e, 2, 250000, "C-1") == 0);
        int64_t job = queue(&e, "64M", 1, "C-1");
        CHECK(job > 0);
        char drive[400];
        snprintf(drive, sizeof(drive), "dir:%s", e.hot);
        EvdDiscRunner rn = runner(&e, drive);
        CHECK_INT(run_until_end(&rn, job, 4), ==, EVD_DISC_STEP_JOB_DONE);
        char iso[600], bad[600];
        snprintf(iso, sizeof(iso), "%s/evd-j%lld-d1of1-c1.iso", e.hot, (long long)job);
        snprintf(bad, sizeof(bad), "%s/flipped.iso", e.dir);
        CHECK(sh("cp '%s' '%s'", iso, bad) == 0);
        /* where the second original lies on the disc */
        char lba[64];
        CHECK(sh_out(lba, sizeof(lba),
                     "xorriso -indev '%s' -find /data/originals -name '" DEV
                     "_0002.MP4' -exec report_lba -- 2>/dev/null "
                     "| sed -n \"s/^File data lba: *0 *, *\\([0-9]*\\) .*/\\1/p\"",
                     bad) == 0);
        CHECK(atoll(lba) > 16);
        CHECK(sh("printf '\\x5a' | dd of='%s' bs=1 seek=$((%s * 2048 + 4321)) conv=notrunc 2>/dev/null", bad,
                 lba) == 0);
        char out[400];
        snprintf(out, sizeof(out), "%s/xbad", e.dir);
        /* sha256sum -c of the manifest fails (and so does xorriso's own MD5 check) */
        CHECK_INT(independent_check(bad, out), ==, 1);
        CHECK(sh("xorriso -md5 on -indev '%s' -check_md5_r FAILURE / -- >/dev/null 2>&1", bad) != 0);
        CHECK_INT(independent_check(iso, out), ==, 0);

        EvdDiscCheckResult res;
        EvdXorrisoRun x = {.timeout_s = 120};
        CHECK_OK(evd_disc_check(e.db, bad, &x, "test", &res, NULL));
        printf("# check: %s %s\n", res.outcome, res.detail);
        CHECK_STREQ(res.outcome, "mismatch");
        CHECK_INT(res.files_bad, ==, 1);
        CHECK(!res.image_matches);
        CHECK(strstr(res.detail, DEV "_0002.MP4 differs from the database"));
        CHECK(strstr(res.detail, "md5_mismatch"));
        CHECK_INT(q(&e, "SELECT count(*) FROM disc_checks WHERE outcome = 'mismatch' AND files_bad = 1"), ==,
                  1);
        CHECK_INT(q(&e, "SELECT count(*) FROM custody_events WHERE kind = 'disc_checked'"), ==, 1);

        /* A disc that is not ours is recorded as unknown. */
        char foreign[600];
        snprintf(foreign, sizeof(foreign), "%s/foreign.iso", e.dir);
        CHECK(sh("xorriso -outdev '%s' -volid OTHER -map '%s/store/archive' /x -commit >/dev/null 2>&1",
                 foreign, e.dir) == 0);
        CHECK_OK(evd_disc_check(e.db, foreign, &x, "test", &res, NULL));
        CHECK_STREQ(res.outcome, "unknown_disc");
        /* Not an image at all. */
        CHECK_OK(evd_disc_check(e.db, "/etc/hostname", &x, "test", &res, NULL));
        CHECK_STREQ(res.outcome, "unreadable");
}

/* A job too large for one medium spans three; every disc is a complete bag of its own. */
static void test_spanning_three_media(void)
{
        _cleanup_(env_free) Env e;
        CHECK(env_new(&e, "disc_span") == 0);
        for (unsigned i = 1; i <= 5; i++)
                CHECK(add_recording(&e, i, 380000, "SPAN-1") == 0);
        /* 3.5 MiB media: 1.5 MiB after the disc's own reserve; a recording + archive copy is ~0.6 MB */
        int64_t job = queue(&e, "3584K", 1, "SPAN-1");
        CHECK(job > 0);
        CHECK_INT(q(&e, "SELECT parts FROM disc_jobs"), ==, 3);
        char drive[400];
        snprintf(drive, sizeof(drive), "dir:%s", e.hot);
        EvdDiscRunner rn = runner(&e, drive);
        CHECK_INT(run_until_end(&rn, job, 8), ==, EVD_DISC_STEP_JOB_DONE);
        CHECK_INT(q(&e, "SELECT count(*) FROM discs WHERE outcome = 'verified'"), ==, 3);
        /* each recording on exactly one disc */
        CHECK_INT(q(&e, "SELECT count(*) FROM disc_retained_files"), ==, 5);
        CHECK_INT(q(&e, "SELECT count(DISTINCT file_id) FROM disc_retained_files"), ==, 5);
        char group[128] = "";
        for (unsigned p = 1; p <= 3; p++) {
                char iso[600], out[400], g[128];
                snprintf(iso, sizeof(iso), "%s/evd-j%lld-d%uof3-c1.iso", e.hot, (long long)job, p);
                snprintf(out, sizeof(out), "%s/x%u", e.dir, p);
                CHECK_INT(independent_check(iso, out), ==, 0);
                CHECK(sh("grep -qx 'Bag-Count: %u of 3' '%s/bag-info.txt'", p, out) == 0);
                /* the medium's size is respected */
                CHECK(sh("test $(stat -c %%s '%s') -le %u", iso, 3584u << 10) == 0);
                CHECK(sh_out(g, sizeof(g), "sed -n 's/^Bag-Group-Identifier: //p' '%s/bag-info.txt'", out) ==
                      0);
                if (p == 1)
                        snprintf(group, sizeof(group), "%s", g);
                CHECK_STREQ(g, group);
        }
        /* One that cannot fit at all is refused when queued. */
        CHECK(add_recording(&e, 9, 1500000, "BIG-1") == 0);
        EvdDiscJobSpec spec = {.select = {.case_number = "BIG-1"}, .media = "3M", .requested_by = "test"};
        int64_t j2;
        EvdError err = {};
        CHECK_INT(evd_disc_job_queue(e.db, &spec, &j2, &err), ==, -EFBIG);
        printf("# %s\n", err.msg);
        CHECK(strstr(err.msg, "does not fit"));
}

static void kill_at(const EvdDiscProgress *p, void *u)
{
        const struct {
                const char *phase;
                unsigned part;
        } *die = u;
        if (strcmp(p->phase, die->phase) == 0 && p->part == die->part)
                kill(getpid(), SIGKILL);
}

static void cut_db(const EvdDiscProgress *p, void *u)
{
        if (strcmp(p->phase, "burning") == 0)
                test_pg_exec(
                    u,
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
                    "'evd_disc_child'",
                    NULL, 0);
}

/* Kill the worker between discs and while burning; the resumed job has every disc once. */
static void test_kill_resume(void)
{
        _cleanup_(env_free) Env e;
        CHECK(env_new(&e, "disc_kill") == 0);
        for (unsigned i = 1; i <= 5; i++)
                CHECK(add_recording(&e, i, 380000, "KILL-1") == 0);
        int64_t job = queue(&e, "3584K", 1, "KILL-1");
        CHECK(job > 0);
        CHECK_INT(q(&e, "SELECT parts FROM disc_jobs"), ==, 3);
        char drive[400];
        snprintf(drive, sizeof(drive), "dir:%s", e.hot);

        /* 1: a worker that dies (SIGKILL) as it starts building disc 2: between discs. */
        /* 2: a worker that dies while burning disc 3. */
        static const char *const die_phase[] = {"building", "burning"};
        static const unsigned die_part[] = {2, 3};
        for (unsigned k = 0; k < 2; k++) {
                fflush(stdout);
                pid_t pid = fork();
                CHECK(pid >= 0);
                if (pid == 0) {
                        EvdDb *db = NULL;
                        if (evd_db_open(e.ci, &db, NULL) < 0)
                                _exit(3);
                        EvdDiscRunner rn = runner(&e, drive);
                        rn.db = db;
                        struct Die {
                                const char *phase;
                                unsigned part;
                        } die = {die_phase[k], die_part[k]};
                        rn.userdata = &die;
                        rn.progress = NULL;
                        /* a progress callback that kills the worker */
                        rn.progress = kill_at;
                        for (unsigned i = 0; i < 10; i++) {
                                EvdDiscStep step;
                                char msg[300];
                                if (evd_disc_run_step(&rn, job, &step, msg, sizeof(msg), NULL) < 0)
                                        _exit(4);
                        }
                        _exit(5); /* never reached the kill point */
                }
                int st;
                waitpid(pid, &st, 0);
                CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        }
        CHECK_INT(q(&e, "SELECT count(*) FROM discs WHERE outcome = 'verified'"), ==, 2);
        CHECK_INT(q(&e, "SELECT count(*) FROM disc_job_state WHERE state = 'burning'"), ==, 1);
        /* Resume: the interrupted disc is recorded as failed, then the missing one is burned. */
        EvdDiscRunner rn = runner(&e, drive);
        CHECK_INT(run_until_end(&rn, 0, 6), ==, EVD_DISC_STEP_JOB_DONE);
        CHECK_INT(q(&e, "SELECT count(*) FROM discs WHERE outcome = 'verified'"), ==, 3);
        CHECK_INT(q(&e, "SELECT count(DISTINCT part_id) FROM discs WHERE outcome = 'verified'"), ==, 3);
        CHECK_INT(
            q(&e, "SELECT count(*) FROM discs WHERE outcome = 'failed' AND detail LIKE 'interrupted%'"), ==,
            1);
        CHECK_INT(q(&e, "SELECT count(*) FROM disc_retained_files"), ==, 5);
        CHECK_INT(q(&e, "SELECT count(DISTINCT file_id) FROM disc_retained_files"), ==, 5);
        /* the hot folder: the three discs, no leftovers */
        CHECK(sh("test \"$(ls -A '%s' | wc -l)\" = 3 && ls '%s' | grep -c 'c1.iso$' | grep -qx 3", e.hot,
                 e.hot) == 0);
}

/* Item 5: no blank, a disc of another job, a write error half way, xorriso missing, the database lost
 * while burning, an original missing from the store, a cancelled job. */
static void test_bad_cases(void)
{
        _cleanup_(env_free) Env e;
        CHECK(env_new(&e, "disc_bad") == 0);
        CHECK(add_recording(&e, 1, 700000, "BAD-1") == 0);
        CHECK(add_recording(&e, 2, 700000, "BAD-2") == 0);
        int64_t job = queue(&e, "64M", 1, "BAD-1");
        CHECK(job > 0);
        char sql[300];

        /* A stdio drive holding a written disc (another job's): no blank, waiting. */
        char pseudo[400], drive[420];
        snprintf(pseudo, sizeof(pseudo), "%s/drive.iso", e.dir);
        snprintf(drive, sizeof(drive), "stdio:%s", pseudo);
        CHECK(sh("xorriso -outdev '%s' -volid EVD_J99_1 -map '%s/store/archive' /x -commit >/dev/null 2>&1",
                 pseudo, e.dir) == 0);
        EvdDiscRunner rn = runner(&e, drive);
        EvdDiscStep step;
        char msg[800];
        EvdError err = {};
        CHECK_OK(evd_disc_run_step(&rn, job, &step, msg, sizeof(msg), &err));
        printf("# %s\n", msg);
        CHECK_INT(step, ==, EVD_DISC_STEP_NO_MEDIA);
        CHECK(strstr(msg, "EVD_J99_1") && strstr(msg, "insert a blank"));
        /* asked again: no second identical event */
        CHECK_OK(evd_disc_run_step(&rn, job, &step, msg, sizeof(msg), &err));
        CHECK_INT(q(&e, "SELECT count(*) FROM disc_job_events WHERE state = 'waiting_media'"), ==, 1);
        CHECK_INT(q(&e, "SELECT count(*) FROM discs"), ==, 0);

        /* A hot folder that vanished. */
        char gone[420];
        snprintf(gone, sizeof(gone), "dir:%s/nothere", e.dir);
        EvdDiscRunner rg = runner(&e, gone);
        CHECK_OK(evd_disc_run_step(&rg, job, &step, msg, sizeof(msg), &err));
        CHECK_INT(step, ==, EVD_DISC_STEP_NO_MEDIA);
        CHECK(strstr(msg, "not there"));

        /* xorriso missing: an error, nothing recorded as burned. */
        CHECK(sh("rm -f '%s'", pseudo) == 0);
        EvdDiscRunner rx = runner(&e, drive);
        rx.xorriso.program = "/nonexistent/xorriso";
        CHECK_INT(evd_disc_run_step(&rx, job, &step, msg, sizeof(msg), &err), ==, -ENOENT);
        printf("# %s\n", err.msg);
        CHECK(strstr(err.msg, "not installed"));
        CHECK_INT(q(&e, "SELECT count(*) FROM discs"), ==, 0);

        /* A write error half way (the pseudo-disc cannot grow past 256 KiB): a failed disc, recorded; the
         * job asks for a new blank. */
        struct rlimit old, lim = {.rlim_cur = 256 << 10, .rlim_max = RLIM_INFINITY};
        CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
        lim.rlim_max = old.rlim_max;
        signal(SIGXFSZ, SIG_IGN);
        CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
        int r = evd_disc_run_step(&rn, job, &step, msg, sizeof(msg), &err);
        setrlimit(RLIMIT_FSIZE, &old);
        signal(SIGXFSZ, SIG_DFL);
        printf("# write error: %s\n", msg);
        CHECK_OK(r);
        CHECK_INT(step, ==, EVD_DISC_STEP_DISC_FAILED);
        CHECK_INT(
            q(&e, "SELECT count(*) FROM discs WHERE outcome = 'failed' AND detail LIKE 'write failed%'"), ==,
            1);
        CHECK_INT(q(&e, "SELECT count(*) FROM disc_retained_files"), ==, 0);
        CHECK_INT(q(&e, "SELECT count(*) FROM custody_events WHERE kind = 'disc_failed'"), ==, 1);
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM disc_job_state WHERE job_id = %lld AND state = 'waiting_media'",
                 (long long)job);
        CHECK_INT(q(&e, sql), ==, 1);

        /* The database lost while burning: the step fails; the disc is never counted; the job resumes. */
        CHECK(sh("rm -f '%s'", pseudo) == 0);
        fflush(stdout);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                EvdDb *db = NULL;
                char ci[1024];
                snprintf(ci, sizeof(ci), "%s application_name=evd_disc_child", e.ci);
                if (evd_db_open(ci, &db, NULL) < 0)
                        _exit(3);
                EvdDiscRunner rc = runner(&e, drive);
                rc.db = db;
                /* Terminate our own backend as burning starts. */
                rc.progress = cut_db;
                rc.userdata = e.ci;
                EvdError cerr = {};
                int cr = evd_disc_run_step(&rc, job, &step, msg, sizeof(msg), &cerr);
                printf("# database lost: %d %s\n", cr, cerr.msg);
                fflush(stdout);
                _exit(cr == -ECONNRESET || cr == -EIO ? 0 : 1);
        }
        int st;
        waitpid(pid, &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        CHECK_INT(q(&e, "SELECT count(*) FROM discs WHERE outcome = 'verified'"), ==, 0);
        CHECK(sh("rm -f '%s'", pseudo) == 0);
        CHECK_OK(evd_disc_run_step(&rn, job, &step, msg, sizeof(msg), &err));
        printf("# resumed: %s\n", msg);
        CHECK_INT(step, ==, EVD_DISC_STEP_JOB_DONE);
        CHECK_INT(
            q(&e, "SELECT count(*) FROM discs WHERE outcome = 'failed' AND detail LIKE 'interrupted%'"), ==,
            1);
        CHECK_INT(q(&e, "SELECT count(*) FROM disc_retained_files"), ==, 1);

        /* An original missing from the store: the job fails with its name; nothing retained; the store is
         * untouched. */
        int64_t job2 = queue(&e, "64M", 1, "BAD-2");
        CHECK(job2 > 0);
        char orig[600];
        snprintf(orig, sizeof(orig), "%s/originals/" DEV "/2026-12-01/" DEV "_0002.MP4", e.store);
        CHECK(sh("mv '%s' '%s.away'", orig, orig) == 0);
        char hot[420];
        snprintf(hot, sizeof(hot), "dir:%s", e.hot);
        EvdDiscRunner rh = runner(&e, hot);
        CHECK_OK(evd_disc_run_step(&rh, job2, &step, msg, sizeof(msg), &err));
        printf("# %s\n", msg);
        CHECK_INT(step, ==, EVD_DISC_STEP_JOB_FAILED);
        CHECK(strstr(msg, "missing from the store") && strstr(msg, DEV "_0002.MP4"));
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM disc_job_state WHERE job_id = %lld AND state = 'failed'",
                 (long long)job2);
        CHECK_INT(q(&e, sql), ==, 1);
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM disc_retained_files WHERE file_id = %lld",
                 (long long)e.file_ids[1]);
        CHECK_INT(q(&e, sql), ==, 0);
        CHECK(sh("mv '%s.away' '%s'", orig, orig) == 0);
        CHECK(sh("test -z \"$(ls -A '%s')\"", e.work) == 0); /* staging removed */

        /* Cancel: a cancelled job is never taken again. */
        int64_t job3 = queue(&e, "64M", 1, "BAD-2");
        CHECK(job3 > 0);
        CHECK_OK(evd_disc_job_cancel(e.db, job3, "test", "not needed", NULL));
        CHECK_INT(evd_disc_job_cancel(e.db, job3, "test", "again", NULL), ==, -EALREADY);
        CHECK_OK(evd_disc_run_step(&rh, 0, &step, msg, sizeof(msg), &err));
        CHECK_INT(step, ==, EVD_DISC_STEP_IDLE);
        CHECK_INT(q(&e, "SELECT count(*) FROM custody_events WHERE kind = 'disc_job_cancelled'"), ==, 1);

        /* Append-only: a disc row cannot be changed. */
        char msgbuf[256];
        CHECK(test_pg_exec(e.ci, "UPDATE discs SET outcome = 'verified'", msgbuf, sizeof(msgbuf)) < 0);
        CHECK(test_pg_exec(e.ci, "DELETE FROM disc_job_events", msgbuf, sizeof(msgbuf)) < 0);
}

static void test_media_and_plan(void)
{
        char name[17];
        uint64_t b;
        CHECK_OK(evd_disc_media_parse("BD25", name, &b, NULL));
        CHECK_STREQ(name, "bd25");
        CHECK_INT(b, ==, 25025314816ull);
        CHECK_OK(evd_disc_media_parse("dvd", name, &b, NULL));
        CHECK_INT(b, ==, 4707319808ull);
        CHECK_OK(evd_disc_media_parse("cd", name, &b, NULL));
        CHECK_OK(evd_disc_media_parse("bd100", name, &b, NULL));
        CHECK_OK(evd_disc_media_parse("8M", name, &b, NULL));
        CHECK_INT(b, ==, 8u << 20);
        CHECK(evd_disc_media_parse("floppy", name, &b, NULL) == -EINVAL);
        CHECK(evd_disc_media_parse("100K", name, &b, NULL) == -EINVAL);
        CHECK(evd_disc_media_parse("-5G", name, &b, NULL) == -EINVAL);

        /* in order, never split, next disc when full */
        uint64_t units[] = {600, 500, 100, 900, 1000};
        unsigned part[5], parts;
        uint64_t media = EVD_DISC_RESERVE_DISC + 1000;
        CHECK_OK(evd_disc_plan(units, 5, media, part, &parts, NULL, NULL));
        CHECK_INT(parts, ==, 4);
        CHECK(part[0] == 1 && part[1] == 2 && part[2] == 2 && part[3] == 3 && part[4] == 4);
        uint64_t big[] = {10, 1001};
        size_t too_big = 99;
        CHECK(evd_disc_plan(big, 2, media, part, &parts, &too_big, NULL) == -EFBIG);
        CHECK_INT(too_big, ==, 1);
}

int main(void)
{
        if (system("xorriso -version >/dev/null 2>&1") != 0) {
                printf("1..0 # SKIP xorriso is not installed (scripts/deps installs it)\n");
                return 77;
        }
        snprintf(tmp_root, sizeof(tmp_root), "/tmp/evd-test-disc-%d", (int)getpid());
        if (mkdir(tmp_root, 0755) < 0)
                return 1;
        RUN(test_media_and_plan);
        RUN(test_two_identical_verified_discs);
        RUN(test_flipped_byte_caught);
        RUN(test_spanning_three_media);
        RUN(test_kill_resume);
        RUN(test_bad_cases);
        if (!getenv("EVIDOCK_TEST_KEEP"))
                sh("rm -rf '%s'", tmp_root);
        return check_finish();
}
