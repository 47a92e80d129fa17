/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The two clocks evidock reads, as int64/uint64 microseconds. One place, so that every "now" in the
 * library means the same thing:
 *
 *   evd_clock_wall_us()       CLOCK_REALTIME: times that are recorded (docked, stored, spooled, ...)
 *   evd_clock_monotonic_us()  CLOCK_MONOTONIC: deadlines and durations, immune to clock steps */
#pragma once

#include <stdint.h>

#define EVD_USEC_PER_SEC INT64_C(1000000)

/* Microseconds since the Unix epoch, UTC. */
int64_t evd_clock_wall_us(void);

/* Microseconds since an arbitrary start (boot); only differences mean something. */
uint64_t evd_clock_monotonic_us(void);
