/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>

#include "clock.h"
#include "disc-xorriso.h"

extern char **environ;

int evd_xorriso_quote(const char *s, char *out, size_t size)
{
        size_t n = strlen(s);
        if (n + 3 > size)
                return -ENAMETOOLONG;
        for (const char *p = s; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '\'' || *p == '"')
                        return -EINVAL;
        out[0] = '\'';
        memcpy(out + 1, s, n);
        out[n + 1] = '\'';
        out[n + 2] = '\0';
        return 0;
}

typedef struct RunState {
        const EvdXorrisoRun *run;
        char line[EVD_XORRISO_LINE_MAX];
        size_t line_n; /* bytes of the current packet line */
        char text[EVD_XORRISO_LINE_MAX];
        size_t text_n; /* reassembled text of packets with F=0 so far */
        char problems[EVD_XORRISO_PROBLEM_MAX];
        int stop; /* < 0: the callback asked to stop */
} RunState;

static void note_problem(RunState *s, const char *text)
{
        if (!strstr(text, ": SORRY :") && !strstr(text, ": FAILURE :") && !strstr(text, ": FATAL :") &&
            !strstr(text, ": ABORT :") && !strstr(text, "MISMATCH") && !strstr(text, "mismatch"))
                return;
        size_t used = strlen(s->problems);
        if (used + 4 >= sizeof(s->problems))
                return;
        snprintf(s->problems + used, sizeof(s->problems) - used, "%s%s", used ? " | " : "", text);
}

/* One physical line "C:F: payload". F=0: the payload continues in the next packet. */
static void packet_line(RunState *s)
{
        s->line[s->line_n] = '\0';
        const char *l = s->line;
        char channel = '?';
        bool last = true;
        if (s->line_n >= 5 && l[1] == ':' && (l[2] == '0' || l[2] == '1') && l[3] == ':' && l[4] == ' ') {
                channel = l[0];
                last = l[2] == '1';
                l += 5;
        }
        size_t n = strlen(l);
        if (s->text_n + n >= sizeof(s->text))
                n = sizeof(s->text) - 1 - s->text_n;
        memcpy(s->text + s->text_n, l, n);
        s->text_n += n;
        s->text[s->text_n] = '\0';
        if (!last)
                return;
        note_problem(s, s->text);
        if (s->run->line && s->stop >= 0) {
                int r = s->run->line(channel, s->text, s->run->userdata);
                if (r < 0)
                        s->stop = r;
        }
        s->text_n = 0;
}

static void feed(RunState *s, const char *buf, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                if (buf[i] == '\n') {
                        packet_line(s);
                        s->line_n = 0;
                } else if (s->line_n + 1 < sizeof(s->line)) {
                        s->line[s->line_n++] = buf[i];
                }
        }
}

int evd_xorriso_run(const EvdXorrisoRun *run, const char *const *args, int *ret_exit, EvdError *err)
{
        const char *program = run->program ? run->program : "xorriso";
        const char *argv[EVD_XORRISO_ARGS_MAX + 4];
        size_t n = 0;
        argv[n++] = program;
        argv[n++] = "-pkt_output";
        argv[n++] = "on";
        for (size_t i = 0; args[i]; i++) {
                if (n >= ELEMENTSOF(argv) - 1)
                        return evd_error_set(err, -E2BIG, "xorriso: more than %u arguments",
                                             EVD_XORRISO_ARGS_MAX);
                argv[n++] = args[i];
        }
        argv[n] = NULL;
        if (ret_exit)
                *ret_exit = -1;

        int pipefd[2];
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return evd_error_set_errno(err, negative_errno(), "xorriso: cannot create a pipe");
        _cleanup_close_ int rd = pipefd[0];
        _cleanup_close_ int wr = pipefd[1];
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, wr, 1);
        posix_spawn_file_actions_adddup2(&fa, wr, 2);
        posix_spawnattr_t attr;
        posix_spawnattr_init(&attr);
        sigset_t none;
        sigemptyset(&none);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
        pid_t pid;
        int r = posix_spawnp(&pid, program, &fa, &attr, (char *const *)argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        if (r != 0) {
                if (r == ENOENT)
                        return evd_error_set(
                            err, -ENOENT,
                            "xorriso: the program '%s' is not installed (Debian package xorriso)", program);
                return evd_error_set_errno(err, -r, "xorriso: cannot start '%s'", program);
        }
        close(steal_fd(&wr));

        RunState *s = calloc(1, sizeof(*s));
        if (!s) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                return evd_error_set(err, -ENOMEM, "xorriso: out of memory");
        }
        s->run = run;
        unsigned timeout = run->timeout_s ? run->timeout_s : 600;
        int64_t last_output = (int64_t)(evd_clock_monotonic_us() / 1000000u);
        int killed = 0; /* the reason, as a negative errno */
        for (;;) {
                if (run->cancel && atomic_load(run->cancel) && !killed)
                        killed = -ECANCELED;
                if (s->stop < 0 && !killed)
                        killed = s->stop;
                if (!killed &&
                    (int64_t)(evd_clock_monotonic_us() / 1000000u) - last_output > (int64_t)timeout)
                        killed = -ETIMEDOUT;
                if (killed) {
                        kill(pid, SIGKILL);
                        break;
                }
                struct pollfd pfd = {.fd = rd, .events = POLLIN};
                int pr = poll(&pfd, 1, 500);
                if (pr < 0 && errno != EINTR)
                        break;
                if (pr <= 0)
                        continue;
                char buf[4096];
                ssize_t got = read(rd, buf, sizeof(buf));
                if (got < 0 && errno == EINTR)
                        continue;
                if (got <= 0)
                        break;
                last_output = (int64_t)(evd_clock_monotonic_us() / 1000000u);
                feed(s, buf, (size_t)got);
        }
        if (s->line_n > 0)
                packet_line(s);
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        int exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (ret_exit)
                *ret_exit = exit_code;
        if (killed == -ECANCELED)
                r = evd_error_set(err, -ECANCELED, "xorriso: cancelled");
        else if (killed == -ETIMEDOUT)
                r = evd_error_set(err, -ETIMEDOUT, "xorriso: no progress for %u s, killed", timeout);
        else if (killed < 0)
                r = killed;
        else if (exit_code > 0)
                r = evd_error_set(err, -EIO, "xorriso failed (exit status %d): %s", exit_code,
                                  s->problems[0] ? s->problems : "no message");
        else if (exit_code < 0)
                r = evd_error_set(err, -EIO, "xorriso was killed by a signal: %s",
                                  s->problems[0] ? s->problems : "no message");
        else
                r = 0;
        free(s);
        return r;
}
