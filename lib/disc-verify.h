/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Read-back of a written disc (or image): every file re-read from the medium and hashed, plus xorriso's
 * MD5 check of the session.
 *
 * xorriso lists where each file lies (-find / -exec report_lba) and checks the session's MD5 tag
 * (-check_media with -md5 on). Then the medium is read once from block 0 to the end of the ISO volume
 * (the volume space size of its primary volume descriptor): that one sequential read gives the SHA-256
 * of the image and of every file (files are contiguous extents; a file over 4 GiB has several). Memory
 * does not grow with the size of the disc.
 *
 * What was found is data (EvdDiscReadback); only "could not read at all" is an error. Comparing with
 * what should be there is evd_disc_readback_compare(). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "db-disc.h"
#include "disc-bag.h"
#include "disc-xorriso.h"
#include "error.h"

#define EVD_DISC_FILES_MAX 200000u /* files on one disc that a read-back accepts */

typedef struct EvdDiscReadFile {
        char *path; /* relative to the disc root, e.g. "data/x" */
        uint64_t size;
        uint8_t sha256[EVD_DIGEST_SIZE];
} EvdDiscReadFile;

typedef struct EvdDiscReadback {
        char volume_id[33];
        char label[72];        /* External-Identifier of bag-info.txt, "" if none */
        uint64_t image_blocks; /* 2048-byte blocks of the ISO volume */
        uint8_t image_sha256[EVD_DIGEST_SIZE];
        bool md5_session_ok; /* xorriso found the session MD5 tag and it matched */
        char md5_detail[160];
        EvdDiscReadFile *files;
        size_t n_files;
} EvdDiscReadback;

/* The device or file that holds a drive's medium: "stdio:/x.iso" -> "/x.iso", "/dev/sr0" as is. */
const char *evd_disc_drive_path(const char *drive);

/* Progress of the sequential read (bytes). May be NULL. */
typedef void (*EvdDiscReadProgress)(uint64_t done, uint64_t total, void *userdata);

/* Reads back the medium in drive (an xorriso drive address: "stdio:/path" or "/dev/srN"). run gives the
 * xorriso program, cancel flag and timeout (its line callback is not used). *ret is freed with
 * evd_disc_readback_free(). -ENOENT no medium / no such image, -EMEDIUMTYPE not an ISO 9660 volume,
 * -EIO read error (message says where). */
int evd_disc_read_back(const char *drive, const EvdXorrisoRun *run, EvdDiscReadProgress progress,
                       void *userdata, EvdDiscReadback **ret, EvdError *err);
EvdDiscReadback *evd_disc_readback_free(EvdDiscReadback *rb);
DEFINE_TRIVIAL_CLEANUP_FUNC(EvdDiscReadback *, evd_disc_readback_free);

typedef struct EvdDiscCompare {
        unsigned files_checked; /* files expected and found with the right size and SHA-256 */
        unsigned files_bad;     /* mismatching, missing or unexpected */
        char detail[512];       /* the first problems, "" when everything matches */
} EvdDiscCompare;

/* Compares a read-back with the expected files of a part (from the database). Returns 1 when every file
 * matches, nothing is missing or extra, and the session MD5 matched; 0 otherwise (*ret says what). */
int evd_disc_readback_compare(EvdDb *db, int64_t part_id, const EvdDiscReadback *rb, EvdDiscCompare *ret,
                              EvdError *err);
/* The same against the files of the bag the part was burned from (its frozen contents, which the disc
 * job checked against the database before burning): needs no database, so a disc burned while the
 * database went away is still verified, and its outcome recorded (spooled, record.h). */
int evd_disc_readback_compare_files(const EvdDiscBagFile *files, size_t n, const EvdDiscReadback *rb,
                                    EvdDiscCompare *ret, EvdError *err);
