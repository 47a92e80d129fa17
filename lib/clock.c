/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <time.h>

#include "clock.h"

int64_t evd_clock_wall_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * EVD_USEC_PER_SEC + ts.tv_nsec / 1000;
}

uint64_t evd_clock_monotonic_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
