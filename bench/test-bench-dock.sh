#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Smoke of bench-dock (the 8-recorder rush benchmark, issue 14) so that it cannot rot: 2 tiny recorders
# (8 MiB FAT16 images), paced at 40 MB/s, read raw, then docked at the real evidockd together (one by one is
# the same code, one plug at a time); bench-dock itself checks that every docking finished and that each
# recorder's files are stored INTACT in the database. Timings are only checked to exist: on a loaded 2-core
# machine they say nothing. Prints TAP.
set -u
build=${EVIDOCK_BUILD_ROOT:?run through meson test}
work=$(mktemp -d /tmp/evidock-bench-dock.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "1..5"
t0=$(date +%s)
rc=0
out=$("$build/bench/bench-dock" --work "$work" --recorders 2 --preset tiny --videos 2 --duration 2 --photos 5 \
        --rate 40 --max-concurrent 2 --phases raw,together 2>"$work/err") || rc=$?
t1=$(date +%s)
echo "$out" | sed 's/^/# /'
if [ $rc = 0 ]; then
        echo "ok 1 - bench-dock read 2 paced recorders raw and docked them together at evidockd, rows checked"
else
        echo "not ok 1 - bench-dock failed (exit status $rc)"
        sed 's/^/# /' "$work/err"
fi
kv=$(sed -n 's/^kv: //p' <<<"$out")
get() { tr ' ' '\n' <<<"$kv" | sed -n "s/^$1=//p"; }
# recorder 1: 2 videos + 1 audio + 1 photo; recorder 2 (the photo one): 2 videos + 1 audio + 5 photos
[ "$(get files)" = 12 ] && echo "ok 2 - 12 media files on the two recorders" ||
        echo "not ok 2 - files=$(get files), expected 12"
awk -v a="$(get tog_s)" -v r="$(get raw_s)" 'BEGIN {exit !(a > 0 && r > 0)}' &&
        echo "ok 3 - docking times measured (together $(get tog_s) s, raw $(get raw_s) s)" ||
        echo "not ok 3 - no docking times in: $kv"
awk -v p="$(get tog_pss_mb)" -v c="$(get tog_cpu_s)" 'BEGIN {exit !(p > 1 && c > 0)}' &&
        echo "ok 4 - evidockd memory ($(get tog_pss_mb) MB PSS) and CPU ($(get tog_cpu_s) s) sampled" ||
        echo "not ok 4 - no memory/CPU figures in: $kv"
# Each emulated recorder has its own bus: two recorders paced at 2 MB/s read at once take about as long as
# one alone (the emulator used to sleep in umockdev's single worker thread: twice as long).
kv1=$("$build/bench/bench-dock" --work "$work" --recorders 1 --preset tiny --videos 2 --duration 2 --photos 5 \
        --rate 2 --phases raw 2>>"$work/err" | sed -n 's/^kv: //p')
one=$(tr ' ' '\n' <<<"$kv1" | sed -n 's/^raw_s=//p')
two=$("$build/bench/bench-dock" --work "$work" --recorders 2 --preset tiny --videos 2 --duration 2 --photos 5 \
        --rate 2 --phases raw 2>>"$work/err" | sed -n 's/^kv: .* raw_s=\([0-9.]*\) .*/\1/p')
awk -v a="${one:-0}" -v b="${two:-0}" 'BEGIN {exit !(a > 0 && b > 0 && b < 1.5 * a)}' &&
        echo "ok 5 - two paced recorders read at once in $two s, one alone in $one s: a bus each" ||
        echo "not ok 5 - two paced recorders read at once in ${two:-?} s, one alone in ${one:-?} s (a shared bus?)"
echo "# $(($(date +%s) - t0)) s"
