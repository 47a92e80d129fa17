/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A text written into a finished Matroska file replaced in place by another of the same length: the
 * archive copy made while its original is still being copied carries a placeholder for the original's
 * SHA-256 (media.h, EvdMediaGrowing), known only at the end. The CRC-32 of the top-level element that
 * holds it (the Tags element, which libavformat writes before the clusters, with a CRC-32) is
 * recomputed, so the file is byte for byte the one the muxer would have written with the final text. */
#pragma once

#include <stdint.h>

#include "error.h"

#define EVD_MKV_PATCH_SCAN (16u * 1024u * 1024u) /* the placeholder is looked for in the first bytes only   \
                                                  */

/* Replaces the one occurrence of placeholder (16..1024 bytes, chosen so that it cannot occur by chance,
 * e.g. a random nonce) in the first EVD_MKV_PATCH_SCAN bytes of the size-byte Matroska file fd (open for
 * reading and writing) by value (the same length). -EBADMSG when it occurs other than once or the EBML
 * structure around it is broken; name is for messages. */
int evd_mkv_patch_text(int fd, uint64_t size, const char *placeholder, const char *value, const char *name,
                       EvdError *err);
