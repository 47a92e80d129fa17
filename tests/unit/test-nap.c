/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* daemon/nap.h: a stoppable pause on CLOCK_MONOTONIC. This program replaces clock_gettime() (the
 * executable's definition wins for the code linked into it) with one whose wall clock is an hour
 * behind or ahead: a pause computed from the wall clock (as the disc runner's was) would then end at
 * once (a busy loop) or an hour late. Prints TAP. */
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "macro.h"
#include "nap.h"

static long wall_shift_s; /* what CLOCK_REALTIME reads off the real one */

int clock_gettime(clockid_t clk, struct timespec *ts)
{
        int r = (int)syscall(SYS_clock_gettime, clk, ts);
        if (r == 0 && (clk == CLOCK_REALTIME || clk == CLOCK_REALTIME_COARSE))
                ts->tv_sec += wall_shift_s;
        return r;
}

static double now_s(void)
{
        struct timespec ts;
        syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A pause of 0.5 s lasts 0.5 s whatever the wall clock says. */
static void test_pause_ignores_the_wall_clock(void)
{
        const long shifts[] = {-3600, 0, 3600};
        for (size_t i = 0; i < ELEMENTSOF(shifts); i++) {
                wall_shift_s = shifts[i];
                Nap n;
                CHECK_OK(nap_init(&n));
                double t0 = now_s();
                CHECK(nap_sleep(&n, 500000));
                double took = now_s() - t0;
                printf("# wall clock %+ld s: a pause of 0.5 s took %.3f s\n", shifts[i], took);
                CHECK(took >= 0.45);
                CHECK(took < 5.0);
                nap_done(&n);
        }
        wall_shift_s = 0;
}

static void *stopper(void *arg)
{
        usleep(200000);
        nap_stop(arg);
        return NULL;
}

/* nap_stop() from another thread ends a long pause at once, and every later one. */
static void test_stop(void)
{
        wall_shift_s = -3600;
        Nap n;
        CHECK_OK(nap_init(&n));
        CHECK(!nap_stopped(&n));
        pthread_t t;
        CHECK(pthread_create(&t, NULL, stopper, &n) == 0);
        double t0 = now_s();
        CHECK(!nap_sleep(&n, 60u * 1000000u));
        double took = now_s() - t0;
        pthread_join(t, NULL);
        printf("# stopped after %.3f s\n", took);
        CHECK(took >= 0.15 && took < 5.0);
        CHECK(nap_stopped(&n));
        t0 = now_s();
        CHECK(!nap_sleep(&n, 60u * 1000000u));
        CHECK(now_s() - t0 < 0.5);
        nap_done(&n);
        wall_shift_s = 0;
}

int main(void)
{
        RUN(test_pause_ignores_the_wall_clock);
        RUN(test_stop);
        return check_finish();
}
