/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A BagIt writer (RFC 8493, version 1.0, SHA-256): a directory that anyone can check with `sha256sum -c`.
 *
 *   BAG/bagit.txt                 "BagIt-Version: 1.0" + "Tag-File-Character-Encoding: UTF-8"
 *   BAG/bag-info.txt              the caller's labels in order, then Payload-Oxum (and Bagging-Date
 *                                 unless the caller gave one)
 *   BAG/manifest-sha256.txt       "<hex>  data/<path>" for every payload file, in the order added
 *   BAG/tagmanifest-sha256.txt    the same for bagit.txt, bag-info.txt, manifest-sha256.txt and every
 *                                 extra tag file
 *   BAG/data/...                  the payload
 *
 * The two-space separator is valid BagIt ("one or more linear whitespace") and is what sha256sum -c
 * reads. So that both readers agree on every path, paths are refused (-EINVAL) when they contain a byte
 * BagIt would percent-encode or sha256sum would escape (CR, LF, '%', '\\'), a component "", "." or "..",
 * a leading '/', or are longer than EVD_BAG_PATH_MAX.
 *
 * A payload file is either written by the writer (from a buffer or copied from a file descriptor, hashed
 * in the same read) or only *listed* (evd_bag_add_listed): the caller places it in the bag itself, e.g.
 * an ISO image maps it from the store. Manifests are streamed to disk as files are added, so memory does
 * not grow with the number or size of files. Nothing is complete until evd_bag_finish() returned 0; a
 * bag that was not finished has no tagmanifest and no bag-info.txt. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "hash.h"

#define EVD_BAG_PATH_MAX  1024u /* bytes of one payload path (below data/) */
#define EVD_BAG_LABEL_MAX 128u  /* bytes of one bag-info label */
#define EVD_BAG_VALUE_MAX 4096u /* bytes of one bag-info value */
#define EVD_BAG_INFO_MAX  256u  /* bag-info entries */

typedef struct EvdBag EvdBag;

/* Starts a bag in the directory dir_fd (borrowed; it must be empty or at least hold none of the bag's
 * names): creates data/ and the payload manifest. *ret_bag is freed with evd_bag_free(). */
int evd_bag_new(int dir_fd, EvdBag **ret_bag, EvdError *err);
/* Frees the writer (an unfinished bag stays on disk, incomplete). Accepts NULL. Returns NULL. */
EvdBag *evd_bag_free(EvdBag *bag);
DEFINE_TRIVIAL_CLEANUP_FUNC(EvdBag *, evd_bag_free);

/* Checks a payload path (relative to data/) as described above: 0 or -EINVAL with the reason. */
int evd_bag_path_check(const char *path, EvdError *err);

/* Writes data/<path> from a buffer (parent directories are created). ret_sha256 may be NULL. */
int evd_bag_add_bytes(EvdBag *bag, const char *path, const void *buf, size_t n,
                      uint8_t ret_sha256[EVD_DIGEST_SIZE], EvdError *err);
/* Copies src_fd (from its offset 0 to EOF, pread) to data/<path>, hashing in the same read. ret_* may be
 * NULL. */
int evd_bag_add_copy(EvdBag *bag, const char *path, int src_fd, uint64_t *ret_size,
                     uint8_t ret_sha256[EVD_DIGEST_SIZE], EvdError *err);
/* Lists data/<path> in the manifest and the Payload-Oxum without writing it: the caller guarantees that
 * the bag, as delivered, holds exactly these bytes there. */
int evd_bag_add_listed(EvdBag *bag, const char *path, uint64_t size, const uint8_t sha256[EVD_DIGEST_SIZE],
                       EvdError *err);

/* Adds a bag-info.txt entry (kept in order; a label may repeat). Labels are [A-Za-z0-9-] and must not be
 * Payload-Oxum (the writer computes it); values are one line of UTF-8. */
int evd_bag_info_add(EvdBag *bag, const char *label, const char *value, EvdError *err);

/* Writes an extra tag file at the bag's top level (e.g. "README.txt"), listed in the tag manifest.
 * name is one path component. ret_sha256 may be NULL. */
int evd_bag_add_tag_file(EvdBag *bag, const char *name, const void *buf, size_t n,
                         uint8_t ret_sha256[EVD_DIGEST_SIZE], EvdError *err);

/* Payload totals so far (for Payload-Oxum and for callers planning sizes). */
uint64_t evd_bag_payload_bytes(const EvdBag *bag);
uint64_t evd_bag_payload_files(const EvdBag *bag);

/* Writes bag-info.txt, bagit.txt and tagmanifest-sha256.txt, syncs every file the writer wrote and the
 * directories. After this only evd_bag_free() and the walkers below may be called. */
int evd_bag_finish(EvdBag *bag, EvdError *err);

/* Every file the writer itself wrote or listed, with its path relative to the bag (e.g. "bagit.txt",
 * "data/x"), size and SHA-256, in the order written; valid after evd_bag_finish(). Streams from the
 * manifests on disk. fn returning < 0 stops the walk with that value. listed tells a file the caller
 * must place from one the writer wrote. */
typedef int (*EvdBagFileFn)(const char *path, uint64_t size, const uint8_t sha256[EVD_DIGEST_SIZE],
                            bool listed, void *userdata);
int evd_bag_walk(EvdBag *bag, EvdBagFileFn fn, void *userdata, EvdError *err);
