/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Real recorder media made with libavcodec/libavformat: H.264 + AAC in MP4 with the index (moov) at
 * the end as cameras write it, AAC in M4A, and JPEG photos, each with the recorder clock and the
 * device/officer IDs burned into the picture. */
#pragma once

#include <stdint.h>

#include "error.h"

typedef enum SimPreset {
        SIM_PRESET_TINY = 0, /* 192x108 @ 10 fps, ~200 kbit/s: for tests, a 2 s segment in well under 1 s */
        SIM_PRESET_1080P, /* 1920x1080 @ 30 fps, ~8 Mbit/s CBR (x264 with NAL HRD filler), like a camera */
        _SIM_PRESET_MAX,
} SimPreset;

const char *sim_preset_to_string(SimPreset p);
int sim_preset_from_string(const char *s); /* SimPreset or -EINVAL */

typedef struct SimMediaSpec {
        SimPreset preset;
        int64_t start_us;    /* UTC µs since the epoch: the first frame's recorder time */
        int64_t duration_us; /* video/audio length; ignored for photos */
        int tz_minutes;      /* recorder UTC offset: the burned-in clock shows local time */
        uint64_t seed;       /* content (noise, tone) depends only on this and the fields above */
        const char *device_id;
        const char *officer_id;
        const char *case_number; /* may be NULL */
} SimMediaSpec;

/* Each writes a new file at path (replacing it), or returns a negative errno with err naming the file
 * and the step that failed; a partial file is removed. */
int sim_media_make_video(const char *path, const SimMediaSpec *spec, EvdError *err);
int sim_media_make_audio(const char *path, const SimMediaSpec *spec, EvdError *err);
int sim_media_make_photo(const char *path, const SimMediaSpec *spec, EvdError *err);

/* "YYYY-MM-DD hh:mm:ss" of utc_us shifted by tz_minutes (the recorder's wall clock); out >= 20 bytes. */
void sim_format_clock(int64_t utc_us, int tz_minutes, char *out, size_t n);
