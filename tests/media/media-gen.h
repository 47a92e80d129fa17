/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Makes small real media files with libavcodec for the media tests: H.264 (libx264) + AAC in MP4 with
 * the index (moov) at the end, as body-worn cameras write them; AAC-only M4A; a JPEG (mjpeg). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Metadata the generator writes into the MP4 (it must not leak into the archive copy). */
#define MEDIA_GEN_SOURCE_TITLE   "SOURCE-TITLE-MUST-NOT-LEAK"
#define MEDIA_GEN_SOURCE_COMMENT "SOURCE-COMMENT-MUST-NOT-LEAK"

/* Writes an MP4 (video and/or audio) of the given length to path. Returns 0 or a negative errno. */
int media_gen_mp4(const char *path, bool video, bool audio, unsigned seconds);

/* Writes a 160x120 baseline JPEG with an extra APP1 segment after JFIF's APP0 to path. */
int media_gen_jpeg(const char *path);
