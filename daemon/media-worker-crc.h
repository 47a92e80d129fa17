/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A faster av_crc() for the media worker: the same function, computed with zlib where it counts.
 *
 * The Matroska muxer protects every cluster with a CRC-32 element, which it computes with libavutil's
 * av_crc() (a table per byte, ~1.1 GB/s here): 0.45-0.5 CPU s for a 606 MB segment, the largest single
 * cost of the archive copy, on the thread that bounds the whole ingest (issue 14). This file defines
 * av_crc() itself; a program that exports it (evidock-media-worker: -Wl,--export-dynamic-symbol=av_crc,
 * see daemon/meson.build) takes the place of libavutil's for every library that calls it (ELF symbol
 * interposition, as a malloc replacement does). For the table the muxer uses (AV_CRC_32_IEEE_LE) the
 * update is zlib's crc32_z() (~3.8 GB/s), which computes the same CRC; every other table goes to
 * libavutil's own av_crc(). The bytes of an archive copy do not change (tests/media/test-media-crc.c
 * compares both ways on random data and on whole archive copies).
 *
 * Part of the worker program (and of its test), not of a library: it replaces a symbol process-wide. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Resolves libavutil's own av_crc() and the CRC-32 table. Call once at start-up, before the process is
 * confined (dlsym); without it the first av_crc() call does it. */
void evd_media_crc_install(void);

/* false: every call goes to libavutil's av_crc() (the tests compare both). Returns the previous value. */
bool evd_media_crc_set_fast(bool fast);

/* How many av_crc() calls took the zlib path so far (the tests check that the muxer's calls arrive). */
uint64_t evd_media_crc_fast_calls(void);
