/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <zlib.h>

#include <libavutil/crc.h>

#include "media-worker-crc.h"

typedef uint32_t (*AvCrcFn)(const AVCRC *ctx, uint32_t crc, const uint8_t *buffer, size_t length);

/* Process-wide by nature: this replaces a symbol of the process. */
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static AvCrcFn library_av_crc; /* libavutil's own; NULL: not found (the byte loop below stands in) */
static const AVCRC *crc32_ieee_le;
static atomic_bool use_fast = true;
static atomic_uint_fast64_t fast_calls;

__attribute__((visibility("default"))) uint32_t av_crc(const AVCRC *ctx, uint32_t crc, const uint8_t *buffer,
                                                       size_t length);

static void install(void)
{
        library_av_crc = (AvCrcFn)dlsym(RTLD_NEXT, "av_crc");
        if (library_av_crc == av_crc) /* never ourselves */
                library_av_crc = NULL;
        crc32_ieee_le = av_crc_get_table(AV_CRC_32_IEEE_LE);
}

void evd_media_crc_install(void)
{
        pthread_once(&install_once, install);
}

bool evd_media_crc_set_fast(bool fast)
{
        return atomic_exchange(&use_fast, fast);
}

uint64_t evd_media_crc_fast_calls(void)
{
        return atomic_load(&fast_calls);
}

uint32_t av_crc(const AVCRC *ctx, uint32_t crc, const uint8_t *buffer, size_t length)
{
        evd_media_crc_install();
        if (ctx && ctx == crc32_ieee_le && atomic_load_explicit(&use_fast, memory_order_relaxed)) {
                atomic_fetch_add_explicit(&fast_calls, 1, memory_order_relaxed);
                /* av_crc() is the bare update (the caller inverts before and after, as the muxer does);
                 * zlib's crc32 inverts on the way in and out: undo both */
                return ~(uint32_t)crc32_z(~crc & 0xffffffffu, buffer, length);
        }
        if (library_av_crc)
                return library_av_crc(ctx, crc, buffer, length);
        /* libavutil's generic loop: the same result for any of its tables (their first 256 entries) */
        for (size_t i = 0; i < length; i++)
                crc = ctx[(uint8_t)crc ^ buffer[i]] ^ (crc >> 8);
        return crc;
}
