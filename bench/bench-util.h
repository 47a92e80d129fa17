/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the benchmark programs share: clocks, medians, shell commands, and re-running themselves under
 * umockdev's preload library (a fresh process per round: see bench-usb.c). */
#pragma once

#include <stdint.h>

#define BENCH_MAX_SAMPLES 99u

double bench_now_s(void); /* CLOCK_MONOTONIC, seconds */
double bench_cpu_s(void); /* CPU seconds of this process, all threads */
/* Median of n (1..BENCH_MAX_SAMPLES) values; v is not reordered. */
double bench_median(const double *v, unsigned n);

/* Runs a shell command (system()); on failure says so on stderr, prefixed with prog. 0, -EIO, or
 * -ENAMETOOLONG. */
int bench_sh(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Runs this program again (/proc/self/exe) with argv[0..argc) plus extra[0..n_extra), and
 * libumockdev-preload.so.0 put first in LD_PRELOAD; waits for it. 0 when it exited 0, -EIO otherwise. */
int bench_respawn_umockdev(const char *prog, char **argv, int argc, char **extra, int n_extra);
