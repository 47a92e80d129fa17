/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Core pieces: untrusted path checks, the directory source, the one-pass copy+hash into a store. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>

#include "check.h"
#include "copy.h"
#include "hash.h"
#include "path.h"
#include "source.h"
#include "store.h"
#include "text.h"
#include "types.h"

static char tmpdir[256];

static void make_file(const char *rel, const void *data, size_t len)
{
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
        FILE *f = fopen(path, "w");
        if (!f)
                abort();
        fwrite(data, 1, len, f);
        fclose(f);
}

static void test_path_check(void)
{
        EvdError e = {};
        CHECK_INT(evd_path_check("VIDEO/A1B2C3D_20261122_080000_0001.MP4", NULL), ==, 0);
        CHECK_INT(evd_path_check("PHOTO/现场照片.JPG", NULL), ==, 0);
        CHECK_INT(evd_path_check("../etc/passwd", &e), ==, -EINVAL);
        CHECK(strstr(e.msg, "..") != NULL);
        CHECK_INT(evd_path_check("VIDEO/../../x", NULL), ==, -EINVAL);
        CHECK_INT(evd_path_check("/abs", NULL), ==, -EINVAL);
        CHECK_INT(evd_path_check("a//b", NULL), ==, -EINVAL);
        CHECK_INT(evd_path_check("a/./b", NULL), ==, -EINVAL);
        CHECK_INT(evd_path_check("bad\xff\xfe.mp4", &e), ==, -EINVAL);
        CHECK(strstr(e.msg, "\\xff") != NULL);
        CHECK_INT(evd_path_check("ctl\nname", NULL), ==, -EINVAL);
        CHECK_INT(evd_path_check("", NULL), ==, -EINVAL);
        CHECK_INT(evd_path_check("\xc0\xaf", NULL), ==, -EINVAL); /* overlong '/' */
        char out[64];
        CHECK_STREQ(evd_path_store_component("VIDEO/../.hidden name.mp4", out, sizeof(out)),
                    "_hidden_name.mp4");
        CHECK_STREQ(evd_path_store_component("现场.JPG", out, sizeof(out)), "______.JPG");
}

static void test_verdict_names(void)
{
        for (int v = 0; v < _EVD_VERDICT_MAX; v++) {
                const char *n = evd_verdict_to_string((EvdVerdict)v);
                CHECK(n && strcmp(n, "UNKNOWN") != 0);
                CHECK_INT(evd_verdict_from_string(n), ==, v);
                char id[33];
                evd_verdict_message_id((EvdVerdict)v, id);
                CHECK_INT(strlen(id), ==, 32);
        }
        CHECK_STREQ(evd_verdict_to_string(EVD_VERDICT_SEGMENT_GAP), "SEGMENT_GAP");
        CHECK(!evd_verdict_quarantines(EVD_VERDICT_INTACT));
        CHECK(evd_verdict_quarantines(EVD_VERDICT_HASH_MISMATCH));
        CHECK_INT(evd_suite_from_string("sm2-sm3"), ==, EVD_SUITE_SM2_SM3);
        CHECK_INT(evd_suite_from_string("rsa"), ==, -EINVAL);
}

static void test_dir_source(void)
{
        char p[512];
        snprintf(p, sizeof(p), "%s/src", tmpdir);
        mkdir(p, 0755);
        snprintf(p, sizeof(p), "%s/src/VIDEO", tmpdir);
        mkdir(p, 0755);
        make_file("src/VIDEO/b.MP4", "bbbb", 4);
        make_file("src/VIDEO/a.MP4", "aa", 2);
        make_file("src/top.txt", "t", 1);
        char target[512];
        snprintf(target, sizeof(target), "%s/outside", tmpdir);
        make_file("outside", "secret", 6);
        snprintf(p, sizeof(p), "%s/src/VIDEO/link.MP4", tmpdir);
        CHECK_INT(symlink(target, p), ==, 0);

        snprintf(p, sizeof(p), "%s/src", tmpdir);
        _cleanup_(evd_source_freep) EvdSource *s = NULL;
        CHECK_OK(evd_source_dir_new(p, &s, NULL));
        EvdSourceEntry *e = NULL;
        size_t n = 0;
        CHECK_OK(evd_source_list(s, &e, &n, NULL));
        CHECK_INT(n, ==, 4); /* the symlink is listed as one, to be reported; it is not followed */
        CHECK_STREQ(e[0].path, "VIDEO/a.MP4");
        CHECK_STREQ(e[1].path, "VIDEO/b.MP4");
        CHECK_STREQ(e[2].path, "VIDEO/link.MP4");
        CHECK_INT(e[2].type, ==, EVD_SOURCE_SYMLINK);
        CHECK_STREQ(e[3].path, "top.txt");
        CHECK_INT(e[1].size, ==, 4);
        CHECK_INT(e[0].type, ==, EVD_SOURCE_FILE);
        CHECK_INT(evd_source_entries_files_first(e, n), ==, 3);
        CHECK_STREQ(e[2].path, "top.txt");
        CHECK_STREQ(e[3].path, "VIDEO/link.MP4");
        evd_source_entries_free(e, n);

        EvdError err = {};
        EvdReader *rd = NULL;
        CHECK_INT(evd_source_open(s, "VIDEO/link.MP4", &rd, &err), ==, -ENOTSUP);
        CHECK(strstr(err.msg, "link.MP4") != NULL && strstr(err.msg, "symlink") != NULL);
        CHECK_INT(evd_source_open(s, "../outside", &rd, NULL), <, 0);
        char *buf = NULL;
        size_t len = 0;
        CHECK_OK(evd_source_read_small(s, "VIDEO/b.MP4", 4, &buf, &len, NULL));
        CHECK_INT(len, ==, 4);
        free(buf);
        CHECK_INT(evd_source_read_small(s, "VIDEO/b.MP4", 3, &buf, &len, NULL), ==, -EFBIG);
}

/* Recorder text is shown escaped: C0/C1 controls, DEL, bidi overrides and invalid bytes never reach a
 * terminal as themselves; Chinese text stays readable. */
static void test_text_escape(void)
{
        char out[256];
        CHECK_STREQ(evd_text_escape("京公(朝)第00123号", out, sizeof(out), 0), "京公(朝)第00123号");
        CHECK_STREQ(evd_text_escape("a\x1b[31mb\x07", out, sizeof(out), 0), "a\\x1b[31mb\\x07");
        CHECK_STREQ(evd_text_escape("x\xc2\x9b"
                                    "2Jy",
                                    out, sizeof(out), 0),
                    "x\\u{009b}2Jy"); /* C1 CSI */
        CHECK_STREQ(evd_text_escape("gpj.\xe2\x80\xae"
                                    "MP4",
                                    out, sizeof(out), 0),
                    "gpj.\\u{202e}MP4");
        CHECK_STREQ(evd_text_escape("\xe2\x81\xa6"
                                    "a\xe2\x81\xa9\xe2\x80\x8f",
                                    out, sizeof(out), 0),
                    "\\u{2066}a\\u{2069}\\u{200f}");
        CHECK_STREQ(evd_text_escape("\xff\xc0\xaf", out, sizeof(out), 0), "\\xff\\xc0\\xaf");
        CHECK_STREQ(evd_text_escape("a\\b", out, sizeof(out), 0), "a\\b");
        CHECK_STREQ(evd_text_escape("a\\b", out, sizeof(out), EVD_TEXT_ESCAPE_BACKSLASH), "a\\x5cb");
        CHECK_STREQ(evd_path_escape("V/\xe2\x80\xae"
                                    "4PM.exe\n",
                                    out, sizeof(out)),
                    "V/\\u{202e}4PM.exe\\x0a");
        /* cut at a whole character or escape */
        CHECK_STREQ(evd_text_escape("ab\x1b", out, 5, 0), "ab");
        CHECK_STREQ(evd_text_escape("a号", out, 4, 0), "a");
        char *d = evd_text_escape_dup("\xc2\x85z", 0);
        CHECK(d);
        CHECK_STREQ(d, "\\u{0085}z");
        free(d);
        CHECK(evd_text_valid("京\xc2\x85\xe2\x80\xae", 64));
        CHECK(!evd_text_valid("a\tb", 64));
        CHECK(!evd_text_valid("\xed\xa0\x80", 64)); /* a surrogate */
        CHECK(!evd_text_valid("abcd", 3));
}

static void alarm_fired(int sig)
{
        (void)sig;
        static const char msg[] = "Bail out! a special file was opened blocking (no answer in 10 s)\n";
        (void)!write(STDOUT_FILENO, msg, sizeof(msg) - 1);
        _exit(1);
}

/* FIFOs, sockets, device nodes and symlinks on a volume are listed with their type, never opened: a
 * FIFO as the manifest used to block the docking forever. Too-deep directories are DAMAGED entries. */
static void test_dir_source_special_files(void)
{
        char p[600], vol[512];
        snprintf(vol, sizeof(vol), "%s/special", tmpdir);
        CHECK_INT(mkdir(vol, 0755), ==, 0);
        snprintf(p, sizeof(p), "%s/EVIDOCK", vol);
        CHECK_INT(mkdir(p, 0755), ==, 0);
        snprintf(p, sizeof(p), "%s/VIDEO", vol);
        CHECK_INT(mkdir(p, 0755), ==, 0);
        make_file("special/VIDEO/A.MP4", "aaaa", 4);
        snprintf(p, sizeof(p), "%s/EVIDOCK/CHAIN.LOG", vol);
        CHECK_INT(mkfifo(p, 0644), ==, 0);
        snprintf(p, sizeof(p), "%s/VIDEO/B.MP4", vol);
        CHECK_INT(mkfifo(p, 0644), ==, 0);
        int sock = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/VIDEO/S.MP4", vol);
        CHECK(sock >= 0 && bind(sock, (struct sockaddr *)&sa, sizeof(sa)) == 0);
        close(sock);
        bool have_dev = false;
        snprintf(p, sizeof(p), "%s/VIDEO/C.MP4", vol);
        if (mknod(p, S_IFCHR | 0644, makedev(1, 3)) == 0) /* /dev/null's numbers; needs root */
                have_dev = true;
        else
                printf("# mknod: %s: the device-node case is not covered here\n", strerror(errno));
        /* 20 nested directories: deeper than EVD_SOURCE_MAX_DEPTH */
        size_t o = (size_t)snprintf(p, sizeof(p), "%s", vol);
        for (int i = 0; i < 20; i++) {
                o += (size_t)snprintf(p + o, sizeof(p) - o, "/d");
                CHECK_INT(mkdir(p, 0755), ==, 0);
        }
        snprintf(p + o, sizeof(p) - o, "/DEEP.MP4");
        int fd = open(p, O_WRONLY | O_CREAT, 0644);
        CHECK(fd >= 0);
        close(fd);

        signal(SIGALRM, alarm_fired);
        alarm(10);
        _cleanup_(evd_source_freep) EvdSource *s = NULL;
        CHECK_OK(evd_source_dir_new(vol, &s, NULL));
        EvdSourceEntry *e = NULL;
        size_t n = 0;
        CHECK_OK(evd_source_list(s, &e, &n, NULL));
        size_t n_files = 0, n_fifo = 0, n_sock = 0, n_chr = 0, n_damaged = 0;
        bool chain_fifo = false;
        for (size_t i = 0; i < n; i++) {
                printf("# %s: %s%s%s\n", e[i].path, evd_source_entry_type_to_string(e[i].type),
                       e[i].detail ? ": " : "", e[i].detail ? e[i].detail : "");
                n_files += e[i].type == EVD_SOURCE_FILE;
                n_fifo += e[i].type == EVD_SOURCE_FIFO;
                n_sock += e[i].type == EVD_SOURCE_SOCKET;
                n_chr += e[i].type == EVD_SOURCE_CHAR_DEVICE;
                if (e[i].type == EVD_SOURCE_DAMAGED) {
                        n_damaged++;
                        CHECK(strstr(e[i].path, "d/d/d") != NULL);
                        CHECK(e[i].detail && strstr(e[i].detail, "deeper"));
                }
                chain_fifo |= strcmp(e[i].path, "EVIDOCK/CHAIN.LOG") == 0 && e[i].type == EVD_SOURCE_FIFO;
        }
        evd_source_entries_free(e, n);
        CHECK_INT(n_files, ==, 1);
        CHECK_INT(n_fifo, ==, 2);
        CHECK(chain_fifo);
        CHECK_INT(n_sock, ==, 1);
        CHECK_INT(n_chr, ==, have_dev ? 1 : 0);
        CHECK_INT(n_damaged, ==, 1);

        /* opening them is refused at once, never blocks */
        EvdError err = {};
        EvdReader *rd = NULL;
        CHECK_INT(evd_source_open(s, "VIDEO/B.MP4", &rd, &err), ==, -ENOTSUP);
        CHECK(strstr(err.msg, "fifo") != NULL);
        char *buf = NULL;
        CHECK_INT(evd_source_read_small(s, "EVIDOCK/CHAIN.LOG", 4096, &buf, NULL, NULL), ==, -ENOTSUP);
        CHECK_INT(evd_source_open(s, "VIDEO/S.MP4", &rd, NULL), ==, -ENOTSUP);
        if (have_dev)
                CHECK_INT(evd_source_open(s, "VIDEO/C.MP4", &rd, NULL), ==, -ENOTSUP);
        CHECK_INT(evd_source_open(s, "VIDEO", &rd, NULL), ==, -EISDIR);
        CHECK_OK(evd_source_read_small(s, "VIDEO/A.MP4", 16, &buf, NULL, NULL));
        CHECK_STREQ(buf, "aaaa");
        free(buf);
        alarm(0);
}

static size_t count_dir_entries(int dir_fd)
{
        int fd = dup(dir_fd);
        DIR *d = fdopendir(fd);
        rewinddir(d); /* the dup shares the offset with dir_fd */
        size_t n = 0;
        struct dirent *de;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.' || strncmp(de->d_name, EVD_TMPFILE_PREFIX, 9) == 0)
                        n++;
        closedir(d);
        return n;
}

static void test_copy_and_commit(void)
{
        /* 5.5 MiB of patterned data: several chunks through the pipeline plus a partial one */
        size_t len = 5 * 1024 * 1024 + 512 * 1024 + 7;
        uint8_t *data = malloc(len);
        for (size_t i = 0; i < len; i++)
                data[i] = (uint8_t)(i * 2654435761u >> 13);
        make_file("src/VIDEO/big.MP4", data, len);
        uint8_t want[EVD_DIGEST_SIZE], want_sm3[EVD_DIGEST_SIZE];
        CHECK_OK(evd_hash_buffer(EVD_HASH_SHA256, data, len, want));
        CHECK_OK(evd_hash_buffer(EVD_HASH_SM3, data, len, want_sm3));
        free(data);

        char p[512];
        snprintf(p, sizeof(p), "%s/src", tmpdir);
        _cleanup_(evd_source_freep) EvdSource *s = NULL;
        CHECK_OK(evd_source_dir_new(p, &s, NULL));
        snprintf(p, sizeof(p), "%s/store", tmpdir);
        _cleanup_(evd_store_freep) EvdStore *st = NULL;
        CHECK_OK(evd_store_open(p, &st, NULL));
        _cleanup_close_ int dir_fd = -1;
        _cleanup_free_ char *rel = NULL;
        CHECK_OK(evd_store_dir(st, EVD_STORE_ORIGINALS, "A1B2C3D", "2026-11-22", &dir_fd, &rel, NULL));
        CHECK_STREQ(rel, "originals/A1B2C3D/2026-11-22");
        CHECK_INT(evd_store_dir(st, EVD_STORE_ORIGINALS, "../x", "2026-11-22", &dir_fd, NULL, NULL), ==,
                  -EINVAL);

        _cleanup_(evd_reader_closep) EvdReader *rd = NULL;
        CHECK_OK(evd_source_open(s, "VIDEO/big.MP4", &rd, NULL));
        EvdTmpFile t = EVD_TMPFILE_INIT;
        CHECK_OK(evd_tmpfile_open(dir_fd, &t, NULL));
        EvdCopyResult res = {};
        EvdCopyOptions o = {.want_sm3 = true};
        CHECK_OK(evd_copy_stream(rd, &t, &o, &res, NULL));
        CHECK_INT(res.size, ==, len);
        CHECK(memcmp(res.sha256, want, EVD_DIGEST_SIZE) == 0);
        CHECK(res.has_sm3 && memcmp(res.sm3, want_sm3, EVD_DIGEST_SIZE) == 0);
        /* nothing visible under any name before the commit */
        CHECK_INT(count_dir_entries(dir_fd), ==, 0);
        CHECK_OK(evd_tmpfile_commit(&t, -1, "0001_big.MP4", NULL));
        CHECK_INT(count_dir_entries(dir_fd), ==, 1);
        _cleanup_close_ int fd = openat(dir_fd, "0001_big.MP4", O_RDONLY);
        CHECK(fd >= 0);
        uint8_t got[EVD_DIGEST_SIZE];
        uint64_t sz = 0;
        CHECK_OK(evd_hash_fd(EVD_HASH_SHA256, fd, got, &sz));
        CHECK(sz == len && memcmp(got, want, EVD_DIGEST_SIZE) == 0);

        /* a second file under the same name is refused, the first stays intact */
        EvdTmpFile t2 = EVD_TMPFILE_INIT;
        CHECK_OK(evd_tmpfile_open(dir_fd, &t2, NULL));
        CHECK_INT(write(t2.fd, "x", 1), ==, 1);
        EvdError err = {};
        CHECK_INT(evd_tmpfile_commit(&t2, -1, "0001_big.MP4", &err), ==, -EEXIST);
        CHECK(strstr(err.msg, "0001_big.MP4") != NULL);
        evd_tmpfile_discard(&t2);
        CHECK_INT(count_dir_entries(dir_fd), ==, 1);

        /* a size bound stops the copy with a clear error and nothing is named */
        _cleanup_(evd_reader_closep) EvdReader *rd2 = NULL;
        CHECK_OK(evd_source_open(s, "VIDEO/big.MP4", &rd2, NULL));
        EvdTmpFile t3 = EVD_TMPFILE_INIT;
        CHECK_OK(evd_tmpfile_open(dir_fd, &t3, NULL));
        EvdCopyOptions lim = {.max_bytes = 1024 * 1024};
        CHECK_INT(evd_copy_stream(rd2, &t3, &lim, &res, &err), ==, -EFBIG);
        CHECK(strstr(err.msg, "larger") != NULL);
        CHECK(res.read_failed); /* the source's fault, not the store's */
        evd_tmpfile_discard(&t3);
        CHECK_INT(count_dir_entries(dir_fd), ==, 1);
}

/* Many chunks through the pipeline, several times, with both hashes: the hasher and the writer run at
 * different speeds, and a slot must never be refilled before both are done with it. */
static void test_copy_hash_many_chunks(void)
{
        size_t len = 40u * 1024 * 1024 + 12345;
        uint8_t *data = malloc(len);
        CHECK(data);
        uint32_t x = 2463534242u;
        for (size_t i = 0; i < len; i++) {
                x ^= x << 13, x ^= x >> 17, x ^= x << 5;
                data[i] = (uint8_t)x;
        }
        make_file("src/VIDEO/many.MP4", data, len);
        uint8_t want[EVD_DIGEST_SIZE], want_sm3[EVD_DIGEST_SIZE];
        CHECK_OK(evd_hash_buffer(EVD_HASH_SHA256, data, len, want));
        CHECK_OK(evd_hash_buffer(EVD_HASH_SM3, data, len, want_sm3));
        free(data);
        char p[512];
        snprintf(p, sizeof(p), "%s/src", tmpdir);
        _cleanup_(evd_source_freep) EvdSource *s = NULL;
        CHECK_OK(evd_source_dir_new(p, &s, NULL));
        snprintf(p, sizeof(p), "%s/store", tmpdir);
        _cleanup_(evd_store_freep) EvdStore *st = NULL;
        CHECK_OK(evd_store_open(p, &st, NULL));
        _cleanup_close_ int dir_fd = -1;
        CHECK_OK(evd_store_dir(st, EVD_STORE_ORIGINALS, "A1B2C3D", "2026-11-23", &dir_fd, NULL, NULL));
        for (int round = 0; round < 4; round++) {
                _cleanup_(evd_reader_closep) EvdReader *rd = NULL;
                CHECK_OK(evd_source_open(s, "VIDEO/many.MP4", &rd, NULL));
                EvdTmpFile t = EVD_TMPFILE_INIT;
                CHECK_OK(evd_tmpfile_open(dir_fd, &t, NULL));
                EvdCopyOptions o = {.want_sm3 = round % 2 == 0};
                EvdCopyResult res = {};
                CHECK_OK(evd_copy_stream(rd, &t, &o, &res, NULL));
                uint8_t stored[EVD_DIGEST_SIZE];
                uint64_t sz = 0;
                CHECK_OK(evd_hash_fd(EVD_HASH_SHA256, t.fd, stored, &sz));
                uint8_t synced[EVD_DIGEST_SIZE];
                CHECK_OK(evd_tmpfile_hash_and_sync(&t, round % 2 ? &t : NULL, synced, NULL));
                CHECK(memcmp(synced, want, EVD_DIGEST_SIZE) == 0);
                evd_tmpfile_discard(&t);
                CHECK_INT(res.size, ==, len);
                CHECK(memcmp(stored, want, EVD_DIGEST_SIZE) == 0);     /* what was written */
                CHECK(memcmp(res.sha256, want, EVD_DIGEST_SIZE) == 0); /* what was hashed */
                if (o.want_sm3)
                        CHECK(memcmp(res.sm3, want_sm3, EVD_DIGEST_SIZE) == 0);
        }
}

static void test_hex(void)
{
        uint8_t b[3] = {0x00, 0xab, 0xff}, back[3];
        char h[7];
        CHECK_STREQ(evd_hex(b, 3, h), "00abff");
        CHECK_OK(evd_unhex("00ABff", back, 3));
        CHECK(memcmp(b, back, 3) == 0);
        CHECK_INT(evd_unhex("00ab", back, 3), ==, -EINVAL);
        CHECK_INT(evd_unhex("00abzz", back, 3), ==, -EINVAL);
}

int main(void)
{
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/evd-test-core-XXXXXX");
        if (!mkdtemp(tmpdir))
                return 99;
        RUN(test_path_check);
        RUN(test_verdict_names);
        RUN(test_hex);
        RUN(test_text_escape);
        RUN(test_dir_source);
        RUN(test_dir_source_special_files);
        RUN(test_copy_and_commit);
        RUN(test_copy_hash_many_chunks);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
        if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", tmpdir);
        return check_finish();
}
