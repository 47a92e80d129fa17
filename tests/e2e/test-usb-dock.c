/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Docking over USB through the REAL evidockd: recorders emulated with umockdev (tests/usb/recorder-emu)
 * serve FAT32 images of evidock-sim volumes; libusb hotplug in the daemon sees them arrive and leave.
 * This process owns the testbed and answers every transfer the daemon makes; it checks the result in
 * the real PostgreSQL. Prints TAP. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <umockdev.h>

#include "check.h"
#include "macro.h"
#include "pg.h"
#include "recorder-emu.h"

extern char **environ;

#define VID 0x2e8a
#define PID 0x0947
/* a profile whose transfers wait a minute (the maximum): a hung recorder holds its worker */
#define PID_HANGING 0x0948

static char work[256], conninfo_buf[1024], config[512], status_file[512];
static char *conninfo;
static const char *build_root;
static UMockdevTestbed *tb;
static pid_t daemon_pid = -1;

static int run(const char *fmt, ...) _printf_(1, 2);
static int run(const char *fmt, ...)
{
        char cmd[4096];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        int r = system(cmd);
        if (r != 0)
                printf("# command failed (%d): %s\n", r, cmd);
        return r;
}

/* A recorder volume made by evidock-sim, enrolled, and packed into a FAT32 image. */
static int make_recorder(const char *dev, const char *officer, unsigned videos, unsigned seconds,
                         const char *image)
{
        char vol[512];
        snprintf(vol, sizeof(vol), "%s/vol-%s", work, dev);
        if (run("'%s/daemon/sim/evidock-sim' --out '%s' --device %s --officer %s --unit 440300000000 --key "
                "'%s.key' "
                "--preset tiny --videos %u --audios 1 --photos 1 --duration %u --start-ago 1 --quiet "
                ">/dev/null",
                build_root, vol, dev, officer, vol, videos, seconds) != 0)
                return -1;
        if (run("'%s/daemon/sim/evidock-sim' --out '%s' --key '%s.key' --print-pubkey >'%s.pub' && "
                "EVIDOCK_CONFIG='%s' '%s/daemon/evidockctl' device enroll --device %s --officer %s --key "
                "'%s.pub' >/dev/null",
                build_root, vol, vol, vol, config, build_root, dev, officer, vol) != 0)
                return -1;
        return run("mkfs.vfat -F 32 -n REC -C '%s' 40960 >/dev/null && MTOOLS_SKIP_CHECK=1 mcopy -s -i '%s' "
                   "'%s'/* ::/",
                   image, image, vol);
}

static long long q(const char *fmt, ...) _printf_(1, 2);
static long long q(const char *fmt, ...)
{
        char sql[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(sql, sizeof(sql), fmt, ap);
        va_end(ap);
        return test_pg_query_int(conninfo, sql);
}

static bool wait_files(const char *dev, long long want, int seconds)
{
        for (int i = 0; i < seconds * 10; i++) {
                if (q("SELECT count(*) FROM files WHERE device_id = '%s'", dev) >= want)
                        return true;
                usleep(100000);
        }
        return false;
}

static bool log_has(const char *needle)
{
        char cmd[1024];
        snprintf(cmd, sizeof(cmd), "grep -q '%s' '%s/daemon.log'", needle, work);
        return system(cmd) == 0;
}

static void start_daemon(void)
{
        char *argv[] = {NULL, "--config", config, NULL};
        char path[512];
        snprintf(path, sizeof(path), "%s/daemon/evidockd", build_root);
        argv[0] = path;
        setenv("EVIDOCK_STATUS_FILE", status_file, 1);
        char log[600];
        snprintf(log, sizeof(log), "%s/daemon.log", work);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (posix_spawn(&daemon_pid, path, &fa, NULL, argv, environ) != 0)
                daemon_pid = -1;
        posix_spawn_file_actions_destroy(&fa);
}

static void test_unknown_device_ignored(void)
{
        char img[512];
        snprintf(img, sizeof(img), "%s/unknown.img", work);
        CHECK(make_recorder("U0000X1", "099999", 1, 2, img) == 0);
        RecorderEmuConfig c = {.vendor_id = 0x1234,
                               .product_id = 0x5678,
                               .devnum = 9,
                               .image_path = img,
                               .serial = "U0000X1",
                               .officer = "099999"};
        RecorderEmu *emu = recorder_emu_new(tb, &c);
        CHECK(emu);
        sleep(3);
        CHECK_INT(q("SELECT count(*) FROM dockings"), ==, 0);
        CHECK_INT(recorder_emu_bytes_read(emu), ==, 0);
        recorder_emu_free(emu);
}

static void test_two_recorders_at_once(void)
{
        char a[512], b[512];
        snprintf(a, sizeof(a), "%s/a.img", work);
        snprintf(b, sizeof(b), "%s/b.img", work);
        CHECK(make_recorder("A123456", "012345", 3, 2, a) == 0);
        CHECK(make_recorder("B765432", "054321", 2, 2, b) == 0);
        RecorderEmuConfig ca = {.vendor_id = VID,
                                .product_id = PID,
                                .devnum = 3,
                                .image_path = a,
                                .serial = "A123456",
                                .officer = "012345",
                                .unit = "440300000000",
                                .clock_offset_s = 90};
        RecorderEmuConfig cb = {.vendor_id = VID,
                                .product_id = PID,
                                .devnum = 4,
                                .image_path = b,
                                .serial = "B765432",
                                .officer = "054321",
                                .unit = "440300000000",
                                .clock_offset_s = -30};
        RecorderEmu *ea = recorder_emu_new(tb, &ca), *eb = recorder_emu_new(tb, &cb);
        CHECK(ea && eb);
        bool ok_a = wait_files("A123456", 5, 90), ok_b = wait_files("B765432", 4, 90);
        if (!ok_a || !ok_b)
                run("tail -20 '%s/daemon.log' | sed 's/^/# /'", work);
        CHECK(ok_a && ok_b);
        CHECK_INT(q("SELECT count(*) FROM files WHERE device_id = 'A123456' AND officer_id = '012345' AND "
                    "verdict = 'INTACT'"),
                  ==, 5);
        CHECK_INT(q("SELECT count(*) FROM files WHERE device_id = 'B765432' AND officer_id = '054321' AND "
                    "verdict = 'INTACT'"),
                  ==, 4);
        /* the clock offsets measured at docking, within transfer jitter */
        CHECK_INT(q("SELECT count(*) FROM files WHERE device_id = 'A123456' AND abs(clock_offset_us - "
                    "90000000) < 2000000"),
                  ==, 5);
        CHECK_INT(q("SELECT count(*) FROM files WHERE device_id = 'B765432' AND abs(clock_offset_us + "
                    "30000000) < 2000000"),
                  ==, 4);
        CHECK_INT(q("SELECT count(*) FROM dockings WHERE transport = 'usb'"), ==, 2);
        /* read-only: no SCSI command outside the read set reached either recorder */
        CHECK_INT(recorder_emu_rejected_opcodes(ea), ==, 0);
        CHECK_INT(recorder_emu_rejected_opcodes(eb), ==, 0);
        CHECK(!recorder_emu_clock_was_set(ea));
        recorder_emu_free(ea);
        recorder_emu_free(eb);
}

static void test_unplug_mid_file_and_redock(void)
{
        char c[512];
        snprintf(c, sizeof(c), "%s/c.img", work);
        CHECK(make_recorder("C000111", "012346", 6, 40, c) == 0);
        RecorderEmuConfig cc = {.vendor_id = VID,
                                .product_id = PID,
                                .devnum = 5,
                                .image_path = c,
                                .serial = "C000111",
                                .officer = "012346",
                                .unit = "440300000000",
                                .fault = RECORDER_EMU_FAULT_UNPLUG_DURING_READ,
                                .unplug_after_reads = 5};
        RecorderEmu *e1 = recorder_emu_new(tb, &cc);
        CHECK(e1);
        /* the recorder vanishes after five READ(10)s of up to 1 MiB: in the middle of a ~6 MB volume */
        sleep(6);
        long long partial = q("SELECT count(*) FROM files WHERE device_id = 'C000111'");
        printf("# unplugged after %llu bytes read, %lld file(s) recorded before\n",
               (unsigned long long)recorder_emu_bytes_read(e1), partial);
        CHECK(partial < 8);
        recorder_emu_free(e1);
        char cmd[700];
        snprintf(cmd, sizeof(cmd), "find '%s/store' -name '.evd-tmp*' | grep -q .", work);
        CHECK(system(cmd) != 0); /* no half file anywhere */
        /* docked again, healthy: everything is finished, nothing twice */
        cc.fault = RECORDER_EMU_FAULT_NONE;
        cc.devnum = 6;
        RecorderEmu *e2 = recorder_emu_new(tb, &cc);
        CHECK(e2);
        bool ok = wait_files("C000111", 8, 90);
        if (!ok)
                run("tail -20 '%s/daemon.log' | sed 's/^/# /'", work);
        CHECK(ok);
        sleep(1);
        CHECK_INT(q("SELECT count(*) FROM files WHERE device_id = 'C000111'"), ==, 8);
        CHECK_INT(q("SELECT count(DISTINCT sha256) FROM files WHERE device_id = 'C000111'"), ==, 8);
        if (q("SELECT count(*) FROM files WHERE device_id = 'C000111' AND verdict <> 'INTACT'") != 0)
                run("psql '%s' -qAt -c \"select files.seq, files.verdict, f.verdict, f.detail from files "
                    "join findings f on f.file_id = files.id where files.device_id = 'C000111'\" | sed "
                    "'s/^/# /'",
                    conninfo);
        CHECK_INT(q("SELECT count(*) FROM files WHERE device_id = 'C000111' AND verdict <> 'INTACT'"), ==,
                  0);
        recorder_emu_free(e2);
}

static void test_daemon_stops_cleanly(void)
{
        CHECK(daemon_pid > 0);
        kill(daemon_pid, SIGTERM);
        int status = 0;
        for (int i = 0; i < 200 && waitpid(daemon_pid, &status, WNOHANG) == 0; i++)
                usleep(100000);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        daemon_pid = -1;
}

/* Issue 9 item 3: a recorder that never answers its READs is stopped by the docking deadline, gives its
 * worker slot back, and SIGTERM still stops evidockd within seconds. A second evidockd with one worker
 * slot and a 3-second deadline. */
static void test_deadline_frees_slot_and_stop_escalates(void)
{
        char conf2[600], h[512], g[512];
        snprintf(conf2, sizeof(conf2), "%s/evidock-deadline.conf", work);
        CHECK(run("sed 's/^max_concurrent = .*/max_concurrent = 1/' '%s' >'%s' && printf "
                  "'[ingest]\\ndocking_deadline = 3s\\n' >>'%s'",
                  config, conf2, conf2) == 0);
        snprintf(config, sizeof(config), "%s", conf2);
        start_daemon();
        CHECK(daemon_pid > 0);
        snprintf(h, sizeof(h), "%s/h.img", work);
        snprintf(g, sizeof(g), "%s/g.img", work);
        CHECK(make_recorder("H000001", "012347", 1, 2, h) == 0);
        CHECK(make_recorder("G000001", "012348", 1, 2, g) == 0);
        RecorderEmuConfig ch = {.vendor_id = VID,
                                .product_id = PID_HANGING,
                                .devnum = 7,
                                .image_path = h,
                                .serial = "H000001",
                                .officer = "012347",
                                .unit = "440300000000",
                                .fault = RECORDER_EMU_FAULT_READ_HANGS};
        RecorderEmuConfig cg = {.vendor_id = VID,
                                .product_id = PID,
                                .devnum = 8,
                                .image_path = g,
                                .serial = "G000001",
                                .officer = "012348",
                                .unit = "440300000000"};
        RecorderEmu *eh = recorder_emu_new(tb, &ch);
        CHECK(eh);
        sleep(2); /* the hung one takes the only worker slot first */
        RecorderEmu *eg = recorder_emu_new(tb, &cg);
        CHECK(eg);
        /* the hung docking is told to stop at 3 s, given up on 10 s later; then the healthy one runs */
        bool ok = wait_files("G000001", 3, 90);
        if (!ok)
                run("tail -20 '%s/daemon.log' | sed 's/^/# /'", work);
        CHECK(ok);
        CHECK(log_has("MESSAGE_ID=6f1c2a9e3d8b4c57a0e1f2d3c4b5a707")); /* deadline */
        CHECK(log_has("MESSAGE_ID=6f1c2a9e3d8b4c57a0e1f2d3c4b5a708")); /* left behind, slot freed */
        CHECK_INT(q("SELECT count(*) FROM files WHERE device_id = 'H000001'"), ==, 0);
        /* the hung worker is still inside its one-minute transfer: SIGTERM must not wait for it */
        kill(daemon_pid, SIGTERM);
        int status = 0, waited = 0;
        while (waited < 300 && waitpid(daemon_pid, &status, WNOHANG) == 0) {
                usleep(100000);
                waited++;
        }
        printf("# evidockd stopped %.1f s after SIGTERM\n", waited / 10.0);
        CHECK(waited < 200);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        if (waited >= 300) {
                kill(daemon_pid, SIGKILL);
                waitpid(daemon_pid, NULL, 0);
        }
        daemon_pid = -1;
        recorder_emu_free(eg);
        recorder_emu_free(eh);
}

int main(int argc, char **argv)
{
        /* umockdev's preload must be in place before any libusb/udev use: re-exec once with it */
        const char *pre = getenv("LD_PRELOAD");
        if (!pre || !strstr(pre, "libumockdev-preload")) {
                char buf[1024];
                snprintf(buf, sizeof(buf), "libumockdev-preload.so.0%s%s", pre ? ":" : "", pre ? pre : "");
                setenv("LD_PRELOAD", buf, 1);
                execv("/proc/self/exe", argv);
                printf("Bail out! cannot re-exec with LD_PRELOAD: %s\n", strerror(errno));
                return 1;
        }
        build_root = getenv("EVIDOCK_BUILD_ROOT");
        if (!build_root) {
                printf("Bail out! EVIDOCK_BUILD_ROOT not set: run through meson test\n");
                return 1;
        }
        snprintf(work, sizeof(work), "/tmp/evidock-usbdock-XXXXXX");
        if (!mkdtemp(work))
                return 1;
        tb = umockdev_testbed_new();
        if (!umockdev_in_mock_environment()) {
                printf("Bail out! not running under umockdev\n");
                return 1;
        }
        if (test_pg_new_database("usbdock", &conninfo) < 0) {
                printf("Bail out! no test database\n");
                return 1;
        }
        snprintf(conninfo_buf, sizeof(conninfo_buf), "%s", conninfo);
        snprintf(config, sizeof(config), "%s/evidock.conf", work);
        snprintf(status_file, sizeof(status_file), "%s/status.json", work);
        run("mkdir -p '%s/profiles' && printf 'name = emulated\\nvendor_id = %04x\\nproduct_id = %04x\\n"
            "control_interface = 0\\nstorage_interface = 1\\ntransfer_timeout_ms = 2000\\nmax_retries = "
            "1\\n' "
            ">'%s/profiles/emulated.conf'",
            work, VID, PID, work);
        run("printf 'name = hanging\\nvendor_id = %04x\\nproduct_id = %04x\\ncontrol_interface = 0\\n"
            "storage_interface = 1\\ntransfer_timeout_ms = 60000\\nmax_retries = 1\\n' "
            ">'%s/profiles/hanging.conf'",
            VID, PID_HANGING, work);
        FILE *f = fopen(config, "w");
        if (!f)
                return 1;
        fprintf(f,
                "[database]\nurl = %s\n[store]\nroot = %s/store\nreserve = 1M\n[usb]\nprofiles_dir = "
                "%s/profiles\n"
                "max_concurrent = 2\n",
                conninfo, work, work);
        fclose(f);
        start_daemon();
        sleep(1);

        RUN(test_unknown_device_ignored);
        RUN(test_two_recorders_at_once);
        RUN(test_unplug_mid_file_and_redock);
        RUN(test_daemon_stops_cleanly);
        RUN(test_deadline_frees_slot_and_stop_escalates);

        if (daemon_pid > 0) {
                kill(daemon_pid, SIGKILL);
                waitpid(daemon_pid, NULL, 0);
        }
        run("rm -rf '%s'", work);
        g_object_unref(tb);
        free(conninfo);
        return check_finish();
}
