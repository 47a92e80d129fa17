/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A minimal test harness that prints TAP (meson runs tests with protocol: 'tap').
 *
 *   static void test_something(void) { CHECK(x == 1); CHECK_STREQ(a, "b"); }
 *   int main(void) { RUN(test_something); return check_finish(); }
 *
 * A failed CHECK prints file:line and the expression, marks the running test failed and returns from
 * the current function. SKIP("reason", ...) ends the running test as skipped (TAP "ok N - name # SKIP
 * reason"): only for a test whose input is absent on this machine (the real camera files), never to hide
 * a failure. check_finish() prints the plan and "N passed, N failed, N skipped" and returns the exit code.
 */
#pragma once

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_n_run, check_n_failed, check_n_skipped, check_current_failed;
static char check_skip_reason[256];

#define CHECK_FAIL_(fmt, ...)                                                                               \
        do {                                                                                                \
                fprintf(stdout, "# %s:%d: " fmt "\n", __FILE__, __LINE__, __VA_ARGS__);                     \
                fflush(stdout);                                                                             \
                check_current_failed = 1;                                                                   \
        } while (0)

#define CHECK(cond)                                                                                         \
        do {                                                                                                \
                if (!(cond)) {                                                                              \
                        CHECK_FAIL_("CHECK failed: %s", #cond);                                             \
                        return;                                                                             \
                }                                                                                           \
        } while (0)

#define SKIP(...)                                                                                           \
        do {                                                                                                \
                snprintf(check_skip_reason, sizeof(check_skip_reason), __VA_ARGS__);                        \
                return;                                                                                     \
        } while (0)

/* For helpers that return int: on failure, returns -1. */
#define CHECK_OR_RET(cond)                                                                                  \
        do {                                                                                                \
                if (!(cond)) {                                                                              \
                        CHECK_FAIL_("CHECK failed: %s", #cond);                                             \
                        return -1;                                                                          \
                }                                                                                           \
        } while (0)

#define CHECK_INT(a, op, b)                                                                                 \
        do {                                                                                                \
                long long _a = (long long)(a), _b = (long long)(b);                                         \
                if (!(_a op _b)) {                                                                          \
                        CHECK_FAIL_("CHECK failed: %s %s %s (%lld vs %lld)", #a, #op, #b, _a, _b);          \
                        return;                                                                             \
                }                                                                                           \
        } while (0)

#define CHECK_STREQ(a, b)                                                                                   \
        do {                                                                                                \
                const char *_a = (a), *_b = (b);                                                            \
                if (!_a || !_b || strcmp(_a, _b) != 0) {                                                    \
                        CHECK_FAIL_("CHECK failed: %s == %s (\"%s\" vs \"%s\")", #a, #b,                    \
                                    _a ? _a : "(null)", _b ? _b : "(null)");                                \
                        return;                                                                             \
                }                                                                                           \
        } while (0)

/* r is a negative-errno return: fails with the error text. */
#define CHECK_OK(expr)                                                                                      \
        do {                                                                                                \
                long long _r = (long long)(expr);                                                           \
                if (_r < 0) {                                                                               \
                        CHECK_FAIL_("CHECK failed: %s returned %lld (%s)", #expr, _r, strerror((int)-_r));  \
                        return;                                                                             \
                }                                                                                           \
        } while (0)

#define RUN(fn)                                                                                             \
        do {                                                                                                \
                check_current_failed = 0;                                                                   \
                check_skip_reason[0] = '\0';                                                                \
                fn();                                                                                       \
                check_n_run++;                                                                              \
                if (check_current_failed)                                                                   \
                        check_n_failed++;                                                                   \
                else if (check_skip_reason[0])                                                              \
                        check_n_skipped++;                                                                  \
                if (!check_current_failed && check_skip_reason[0])                                          \
                        printf("ok %d - %s # SKIP %s\n", check_n_run, #fn, check_skip_reason);              \
                else                                                                                        \
                        printf("%s %d - %s\n", check_current_failed ? "not ok" : "ok", check_n_run, #fn);   \
                fflush(stdout);                                                                             \
        } while (0)

static inline int check_finish(void)
{
        printf("1..%d\n", check_n_run);
        printf("# %d passed, %d failed, %d skipped\n", check_n_run - check_n_failed - check_n_skipped,
               check_n_failed, check_n_skipped);
        return check_n_failed ? 1 : 0;
}
