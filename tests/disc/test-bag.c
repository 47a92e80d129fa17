/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The BagIt writer: a bag it writes passes `sha256sum -c` of both manifests (the independent check a
 * reader runs), Payload-Oxum counts what is there, a changed byte is caught, bad paths are refused. */
#include <fcntl.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <sys/stat.h>

#include "bag.h"
#include "check.h"

static char *make_dir(void)
{
        char tmpl[] = "/tmp/evd-test-bag-XXXXXX";
        char *d = mkdtemp(tmpl);
        return d ? strdup(d) : NULL;
}

static int _printf_(1, 2) sh(const char *fmt, ...)
{
        char cmd[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        int st = system(cmd);
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int read_text(const char *dir, const char *name, char *buf, size_t size)
{
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
                return -errno;
        ssize_t n = read(fd, buf, size - 1);
        close(fd);
        if (n < 0)
                return -EIO;
        buf[n] = '\0';
        return (int)n;
}

static void test_bag_roundtrip(void)
{
        _cleanup_free_ char *dir = make_dir();
        CHECK(dir);
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY);
        CHECK(fd >= 0);
        _cleanup_(evd_bag_freep) EvdBag *bag = NULL;
        EvdError err = {};
        CHECK_OK(evd_bag_new(fd, &bag, &err));

        uint8_t sha[EVD_DIGEST_SIZE];
        CHECK_OK(evd_bag_add_bytes(bag, "records/1.json", "{\"a\": 1}\n", 9, sha, &err));
        CHECK_OK(evd_bag_add_bytes(bag, "案件/说明 with space.txt", "中文\n", 7, NULL, &err));
        /* a 3 MiB file copied (more than one read chunk) */
        char src[512];
        snprintf(src, sizeof(src), "%s.src", dir);
        CHECK(sh("head -c 3145739 /dev/urandom > '%s.src'", dir) == 0);
        _cleanup_close_ int sfd = open(src, O_RDONLY);
        CHECK(sfd >= 0);
        uint64_t size = 0;
        CHECK_OK(evd_bag_add_copy(bag, "originals/A1/big.bin", sfd, &size, NULL, &err));
        CHECK_INT(size, ==, 3145739);
        /* a listed file that the caller places itself */
        uint8_t listed_sha[EVD_DIGEST_SIZE];
        CHECK_OK(evd_hash_buffer(EVD_HASH_SHA256, "placed\n", 7, listed_sha));
        CHECK_OK(evd_bag_add_listed(bag, "archive/x.mkv", 7, listed_sha, &err));
        CHECK_OK(evd_bag_info_add(bag, "Bag-Count", "1 of 3", &err));
        CHECK_OK(evd_bag_info_add(bag, "Case-Number", "A440300-2026-案001", &err));
        CHECK_OK(evd_bag_add_tag_file(bag, "README.txt", "read me\n", 8, NULL, &err));
        CHECK_INT(evd_bag_payload_files(bag), ==, 4);
        CHECK_OK(evd_bag_finish(bag, &err));
        CHECK(evd_bag_add_bytes(bag, "late", "x", 1, NULL, NULL) == -EBUSY);

        char info[2048];
        CHECK(read_text(dir, "bag-info.txt", info, sizeof(info)) > 0);
        printf("# bag-info.txt:\n");
        for (const char *l = info; *l;) { /* every line a TAP comment */
                const char *nl = strchrnul(l, '\n');
                printf("#   %.*s\n", (int)(nl - l), l);
                l = *nl ? nl + 1 : nl;
        }
        char oxum[64];
        snprintf(oxum, sizeof(oxum), "Payload-Oxum: %d.4\n", 9 + 7 + 3145739 + 7);
        CHECK(strstr(info, oxum));
        CHECK(strstr(info, "Bag-Count: 1 of 3\n"));
        CHECK(strstr(info, "Bagging-Date: 20"));
        char bagit[256];
        CHECK(read_text(dir, "bagit.txt", bagit, sizeof(bagit)) > 0);
        CHECK_STREQ(bagit, "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n");

        /* Independent check: the listed file is missing until placed, then both manifests pass. */
        CHECK(sh("cd '%s' && sha256sum --quiet -c manifest-sha256.txt >/dev/null 2>&1", dir) != 0);
        CHECK(sh("mkdir -p '%s/data/archive' && printf 'placed\\n' > '%s/data/archive/x.mkv'", dir, dir) ==
              0);
        CHECK(sh("cd '%s' && sha256sum --quiet -c manifest-sha256.txt && sha256sum --quiet -c "
                 "tagmanifest-sha256.txt",
                 dir) == 0);
        /* The tag manifest covers README.txt, bagit.txt, bag-info.txt and manifest-sha256.txt. */
        char tm[2048];
        CHECK(read_text(dir, "tagmanifest-sha256.txt", tm, sizeof(tm)) > 0);
        CHECK(strstr(tm, "  README.txt\n") && strstr(tm, "  bagit.txt\n") &&
              strstr(tm, "  bag-info.txt\n") && strstr(tm, "  manifest-sha256.txt\n"));
        /* Payload-Oxum counts what is really under data/. */
        CHECK(sh("cd '%s' && test \"$(find data -type f | wc -l)\" = 4", dir) == 0);

        /* One flipped byte is caught. */
        CHECK(sh("cd '%s' && printf 'X' | dd of=data/originals/A1/big.bin bs=1 seek=1048577 conv=notrunc "
                 "2>/dev/null",
                 dir) == 0);
        CHECK(sh("cd '%s' && sha256sum --quiet -c manifest-sha256.txt >/dev/null 2>&1", dir) != 0);
        unlink(src);
        sh("rm -rf '%s'", dir);
}

static void test_bag_paths_refused(void)
{
        static const char *const bad[] = {"",         "/abs",          "a/../b",   "./a",         "a//b",
                                          "a/",       "with\nnewline", "per%cent", "back\\slash", "..",
                                          "tab\there"};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                EvdError err = {};
                if (evd_bag_path_check(bad[i], &err) != -EINVAL) {
                        printf("# accepted: '%s'\n", bad[i]);
                        CHECK(false);
                }
        }
        CHECK_OK(evd_bag_path_check("originals/A1B2C3D/2026-12-04/A1B2C3D_0007.MP4", NULL));
        CHECK_OK(evd_bag_path_check("案件/文件 1.txt", NULL));

        _cleanup_free_ char *dir = make_dir();
        CHECK(dir);
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY);
        _cleanup_(evd_bag_freep) EvdBag *bag = NULL;
        CHECK_OK(evd_bag_new(fd, &bag, NULL));
        CHECK(evd_bag_add_bytes(bag, "../escape", "x", 1, NULL, NULL) == -EINVAL);
        CHECK(evd_bag_info_add(bag, "Payload-Oxum", "1.1", NULL) == -EINVAL);
        CHECK(evd_bag_info_add(bag, "Bad Label", "x", NULL) == -EINVAL);
        CHECK(evd_bag_info_add(bag, "Ok", "two\nlines", NULL) == -EINVAL);
        CHECK(evd_bag_add_tag_file(bag, "manifest-md5.txt", "x", 1, NULL, NULL) == -EINVAL);
        CHECK(evd_bag_add_tag_file(bag, "bagit.txt", "x", 1, NULL, NULL) == -EINVAL);
        CHECK_OK(evd_bag_add_bytes(bag, "same", "x", 1, NULL, NULL));
        CHECK(evd_bag_add_bytes(bag, "same", "y", 1, NULL, NULL) == -EEXIST);
        /* An empty bag is still a valid bag. */
        sh("rm -rf '%s'", dir);
}

static void test_bag_empty(void)
{
        _cleanup_free_ char *dir = make_dir();
        CHECK(dir);
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY);
        _cleanup_(evd_bag_freep) EvdBag *bag = NULL;
        CHECK_OK(evd_bag_new(fd, &bag, NULL));
        CHECK_OK(evd_bag_info_add(bag, "Bagging-Date", "2026-12-04", NULL));
        CHECK_OK(evd_bag_finish(bag, NULL));
        char info[512];
        CHECK(read_text(dir, "bag-info.txt", info, sizeof(info)) > 0);
        CHECK_STREQ(info, "Bagging-Date: 2026-12-04\nPayload-Oxum: 0.0\n");
        CHECK(sh("cd '%s' && sha256sum --quiet -c tagmanifest-sha256.txt", dir) == 0);
        sh("rm -rf '%s'", dir);
}

int main(void)
{
        RUN(test_bag_roundtrip);
        RUN(test_bag_paths_refused);
        RUN(test_bag_empty);
        return check_finish();
}
