/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What one disc of a set holds: a BagIt bag (lib/bag.h) laid out as docs/disc-format.md says.
 *
 * The small files (bag tag files, README.txt, index.html, records, chain records, keys, custody events,
 * case associations) are written into WORK/bag; the originals and archive copies are *not* copied: they
 * are listed in the manifest with their SHA-256 from the database and mapped by xorriso straight from
 * the store (WORK/graft holds the -map lines). The store is only read (open O_RDONLY, fstat).
 *
 * Everything on the disc is frozen by the part row (label, custody head, Bagging-Date): building the
 * same part again gives byte-identical files, so every copy of a disc is the same image. */
#pragma once

#include <stdint.h>

#include "db-disc.h"
#include "error.h"

typedef struct EvdDiscBagSpec {
        EvdDb *db;
        const char *store_root; /* absolute path of the store */
        const char *work_dir;   /* absolute path of an empty directory for WORK/bag and WORK/graft */
        const EvdDbDiscJob *job;
        const EvdDbDiscPart *part;
        const int64_t *file_ids; /* the recordings of this part, in plan order */
        size_t n_files;
} EvdDiscBagSpec;

typedef struct EvdDiscBagFile {
        char *path; /* on the disc, e.g. "data/originals/A1B2C3D/2026-12-04/x.MP4", "bagit.txt" */
        uint64_t size;
        uint8_t sha256[EVD_DIGEST_SIZE];
        int64_t file_id;  /* 0 unless role is original or archive */
        const char *role; /* "original", "archive", "meta" (under data/), "tag" */
} EvdDiscBagFile;

typedef struct EvdDiscBag {
        char *bag_dir;    /* WORK/bag */
        char *graft_path; /* WORK/graft: xorriso -options_from_file input */
        EvdDiscBagFile *files;
        size_t n_files;
        uint64_t bytes; /* sum of file sizes */
} EvdDiscBag;

/* Builds the bag of one part. Errors name the recording: -ENOENT an original or archive copy is missing
 * from the store, -EBADMSG its size differs from the database, -EINVAL a path cannot go on a disc. */
int evd_disc_bag_build(const EvdDiscBagSpec *spec, EvdDiscBag **ret, EvdError *err);
EvdDiscBag *evd_disc_bag_free(EvdDiscBag *bag);
DEFINE_TRIVIAL_CLEANUP_FUNC(EvdDiscBag *, evd_disc_bag_free);

/* The volume ID for a part: "EVD_<case>_<N>" in [A-Z0-9_], at most 32 characters (case letters
 * upper-cased, other characters '_', the case cut to fit; "EVD_J<job>_<N>" when a disc holds several
 * cases or none). out has 33 bytes. */
void evd_disc_volume_id(const char *case_numbers, int64_t job_id, unsigned part, char out[33]);
/* The label of a part, unique per database: "evd-j<job>-d<N>of<M>". */
void evd_disc_label(int64_t job_id, unsigned part, unsigned parts, char *out, size_t size);
