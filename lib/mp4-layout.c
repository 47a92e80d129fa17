/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdbool.h>
#include <string.h>

#include "mp4-layout.h"

static uint32_t be32(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int no_layout(const char **ret_why, const char *why)
{
        if (ret_why)
                *ret_why = why;
        return 0;
}

/* the first box types libavformat's mov demuxer is chosen for (media.c sniffs the same) */
static bool first_type_ok(const uint8_t *t)
{
        static const char *const types[] = {"ftyp", "moov", "mdat", "free", "skip", "wide"};
        for (size_t i = 0; i < ELEMENTSOF(types); i++)
                if (memcmp(t, types[i], 4) == 0)
                        return true;
        return false;
}

int evd_mp4_layout(EvdMp4ReadFn read, void *userdata, uint64_t file_size, uint64_t max_tail,
                   EvdMp4Layout *ret, const char **ret_why, EvdError *err)
{
        EvdMp4Layout l = {0};
        bool have_mdat = false, have_moov = false;
        uint64_t off = 0;

        if (file_size < 16)
                return no_layout(ret_why, "too short");
        while (off < file_size) {
                if (l.n_boxes >= EVD_MP4_MAX_BOXES)
                        return no_layout(ret_why, "too many top-level boxes");
                uint8_t h[16];
                size_t want = (size_t)MIN((uint64_t)sizeof(h), file_size - off);
                if (want < 8)
                        return no_layout(ret_why, "bytes after the last box");
                ssize_t k = read(userdata, h, want, off, err);
                if (k < 0)
                        return (int)k;
                if ((size_t)k < want)
                        return no_layout(ret_why, "the file is shorter than its size");
                for (unsigned i = 4; i < 8; i++)
                        if (h[i] < 0x20 || h[i] > 0x7e)
                                return no_layout(ret_why, "a box type that is not text");
                if (l.n_boxes == 0 && !first_type_ok(h + 4))
                        return no_layout(ret_why, "not an MP4 file");
                uint64_t size = be32(h), header = 8;
                if (size == 1) {
                        if (want < 16)
                                return no_layout(ret_why, "a truncated 64-bit box header");
                        size = (uint64_t)be32(h + 8) << 32 | be32(h + 12);
                        header = 16;
                } else if (size == 0)
                        size = file_size - off; /* to the end of the file */
                if (size < header)
                        return no_layout(ret_why, "a box smaller than its header");
                if (size > file_size - off)
                        return no_layout(ret_why, "a box past the end of the file");
                if (memcmp(h + 4, "mdat", 4) == 0) {
                        if (have_mdat)
                                return no_layout(ret_why, "more than one mdat box");
                        have_mdat = true;
                        l.mdat_offset = off;
                        l.mdat_size = size;
                } else if (memcmp(h + 4, "moov", 4) == 0) {
                        if (have_moov)
                                return no_layout(ret_why, "more than one moov box");
                        have_moov = true;
                        l.moov_offset = off;
                        l.moov_size = size;
                } else if (memcmp(h + 4, "moof", 4) == 0 || memcmp(h + 4, "mfra", 4) == 0)
                        return no_layout(ret_why, "a fragmented file");
                l.n_boxes++;
                off += size;
        }
        if (!have_mdat)
                return no_layout(ret_why, "no mdat box");
        if (!have_moov)
                return no_layout(ret_why, "no moov box");
        l.tail_offset = l.mdat_offset + l.mdat_size;
        l.tail_size = file_size - l.tail_offset;
        if (l.tail_size > max_tail)
                return no_layout(ret_why, "the boxes after the mdat are larger than allowed");
        *ret = l;
        return 1;
}
