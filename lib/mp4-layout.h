/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Where the index of an MP4/MOV/M4A file lies, found with a few small positioned reads of its top-level
 * boxes (never the payload). Recorders write the samples first (mdat) and the index (moov) last: the
 * archive copy can be made while the file is still being copied only if the index is read first, ahead
 * of the sequential copy (ingest.c). Everything here is bounded and hostile-proof: box sizes are checked
 * against the file size (32- and 64-bit sizes, size 0 = "to the end"), at most EVD_MP4_MAX_BOXES
 * top-level boxes are looked at, and anything unusual (no index, two mdat, fragments, a truncated or
 * overlong box, unprintable box types, a tail larger than allowed) means "no layout": the caller then
 * does what it did without one. Nothing is parsed inside a box. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "error.h"

#define EVD_MP4_MAX_BOXES 64u /* top-level boxes looked at; more = no layout */

/* Reads up to n bytes at offset off; bytes read (fewer only at the end), -errno. */
typedef ssize_t (*EvdMp4ReadFn)(void *userdata, void *buf, size_t n, uint64_t off, EvdError *err);

typedef struct EvdMp4Layout {
        uint64_t mdat_offset, mdat_size; /* the one mdat box, header included */
        uint64_t moov_offset, moov_size; /* the one moov box, header included */
        /* What follows the mdat, to the end of the file: the bytes to read ahead (the index, when it is at
         * the end, and any small box after it). tail_size may be 0 (moov before mdat, nothing after). */
        uint64_t tail_offset, tail_size;
        unsigned n_boxes;
} EvdMp4Layout;

/* Walks the top-level boxes of a file of file_size bytes through read. Returns 1 and fills *ret when the
 * file has the layout above with tail_size <= max_tail; 0 when it has not (*ret_why, if non-NULL, says
 * why: a static string); a negative errno when a read failed (err says where). */
int evd_mp4_layout(EvdMp4ReadFn read, void *userdata, uint64_t file_size, uint64_t max_tail,
                   EvdMp4Layout *ret, const char **ret_why, EvdError *err);
