/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The media worker's confinement (lib/confine.h), in a child process: reading goes on (files and
 * directories), writing through descriptors opened before goes on, and every way to change a file by
 * name or mode is refused. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "confine.h"

static char tmpdir[256];

/* Runs fn in a confined child; returns its exit status (0: every expectation held). */
static int in_confined_child(int (*fn)(int out_fd, const char *victim), int out_fd, const char *victim)
{
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                int r = evd_confine_no_writes();
                if (r < 0) {
                        printf("# confine: %s\n", strerror(-r));
                        _exit(100);
                }
                _exit(fn(out_fd, victim));
        }
        int status = 0;
        while (waitpid(pid, &status, 0) < 0)
                ;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#define EXPECT(cond)                                                                                        \
        do {                                                                                                \
                if (!(cond)) {                                                                              \
                        printf("# child: failed: %s (errno %s)\n", #cond, strerror(errno));                 \
                        fflush(stdout);                                                                     \
                        return __LINE__ % 100 + 1;                                                          \
                }                                                                                           \
        } while (0)

static int confined_checks(int out_fd, const char *victim)
{
        char proc[64];
        int src = open(victim, O_RDONLY | O_CLOEXEC);
        EXPECT(src >= 0);                                                         /* reading by name works */
        EXPECT(open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC) >= 0); /* so does a directory */
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", src);
        EXPECT(open(proc, O_RDWR) < 0 && errno == EPERM);
        EXPECT(open(proc, O_WRONLY | O_TRUNC) < 0 && errno == EPERM);
        EXPECT(open(victim, O_WRONLY | O_APPEND) < 0 && errno == EPERM);
        EXPECT(openat(AT_FDCWD, victim, O_RDWR) < 0 && errno == EPERM);
        EXPECT(fchmod(src, 0666) < 0 && errno == EPERM);
        EXPECT(chmod(victim, 0666) < 0 && errno == EPERM);
        EXPECT(truncate(victim, 0) < 0 && errno == EPERM);
        EXPECT(unlink(victim) < 0 && errno == EPERM);
        char other[300];
        snprintf(other, sizeof(other), "%s.moved", victim);
        EXPECT(rename(victim, other) < 0 && errno == EPERM);
        EXPECT(link(victim, other) < 0 && errno == EPERM);
        EXPECT(open(other, O_CREAT | O_RDONLY, 0644) < 0 && errno == EPERM);
        EXPECT(pwrite(out_fd, "ok", 2, 0) == 2); /* the output opened before still takes writes */
        return 0;
}

static void test_confined_worker_cannot_write_by_name(void)
{
        char victim[300], out[300];
        snprintf(victim, sizeof(victim), "%s/original.mp4", tmpdir);
        snprintf(out, sizeof(out), "%s/archive.mkv", tmpdir);
        int fd = open(victim, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0440);
        CHECK(fd >= 0 && write(fd, "evidence", 8) == 8);
        close(fd);
        int out_fd = open(out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        CHECK(out_fd >= 0);
        int st = in_confined_child(confined_checks, out_fd, victim);
        if (st == 100) {
                close(out_fd);
                SKIP("seccomp is not available here");
        }
        CHECK_INT(st, ==, 0);
        char buf[16] = {0};
        CHECK_INT(pread(out_fd, buf, 2, 0), ==, 2);
        CHECK_STREQ(buf, "ok");
        close(out_fd);
        fd = open(victim, O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0);
        CHECK_INT(read(fd, buf, sizeof(buf) - 1), ==, 8);
        close(fd);
        struct stat s;
        CHECK(stat(victim, &s) == 0 && (s.st_mode & 07777) == 0440);
}

int main(void)
{
        const char *base = getenv("TMPDIR") ?: "/tmp";
        snprintf(tmpdir, sizeof(tmpdir), "%s/evd-confine-XXXXXX", base);
        if (!mkdtemp(tmpdir)) {
                printf("Bail out! mkdtemp: %s\n", strerror(errno));
                return 1;
        }
        RUN(test_confined_worker_cannot_write_by_name);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
                printf("# could not remove %s\n", tmpdir);
        return check_finish();
}
