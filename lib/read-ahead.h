/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The index of a recording read from the recorder ahead of its sequential copy, so that its archive copy
 * can be made while it is copied (ingest.c, "archive while copying"; media.h, EvdMediaGrowing): the
 * bytes after the mdat box (mp4-layout.h) go into a sealed memfd, and once the copy has ended they are
 * compared with the stored original at the same offsets. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "mp4-layout.h"
#include "source.h"

#define EVD_READ_AHEAD_MIN_BYTES (8u * 1024u * 1024u) /* smaller files gain little: the next file overlaps  \
                                                       */
/* memory: the index of a 10-minute 1080p recorder file is ~0.5 MB */
#define EVD_READ_AHEAD_MAX (16u * 1024u * 1024u)

/* Locates the boxes of the size-byte file open in rd (which must have a positioned read) and reads the
 * bytes after its mdat (at most EVD_READ_AHEAD_MAX) into a sealed memfd (*ret_fd, the caller's). 1: done;
 * 0: not possible (*ret_why, a static string, says why: no such layout, a read failed). */
int evd_read_ahead_mp4_index(EvdReader *rd, uint64_t size, EvdMp4Layout *ret_layout, int *ret_fd,
                             const char **ret_why);

/* Whether the file original_fd holds the bytes of ahead_fd at layout->tail_offset. */
bool evd_read_ahead_matches(int ahead_fd, int original_fd, const EvdMp4Layout *layout);

/* A placeholder for the original's SHA-256 in an archive copy made before the hash is known: 64 random
 * lower-case hex digits (no file holds them by chance). 0, or -errno. */
int evd_read_ahead_placeholder(char ret[65]);
