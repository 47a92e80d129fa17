/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Exporting the files of an approved copy request to a new folder below the site's export root
 * (docs/access.md, "Exports"):
 *
 *   DEST/README.txt              what this is, who asked, who approved, why, and how to check it
 *   DEST/recordings/<id>-<name>  the stored originals, bit-exact (or <name>.cms: CMS-encrypted to a
 *                                recipient certificate, AES-256, `openssl cms -decrypt`)
 *   DEST/recordings.tsv          one line per recording: file id, device, seq, case, level, verdict, size,
 *                                SHA-256 of the original, its name here
 *   DEST/chain/records.txt       the recorders' signed chain records of these files
 *   DEST/keys/<device>-<key>.pem the recorders' public keys, as enrolled
 *   DEST/custody.tsv             the custody events of these files and their dockings (hash-chained ids,
 *                                prev_hash, hash), the export's own events included, and the log's head
 *   DEST/manifest-sha256.txt     SHA-256 of every file above (`sha256sum -c manifest-sha256.txt`)
 *
 * The database checks the approval and writes one custody event "exported" per file, naming requester,
 * approver, purpose and destination, before a byte is copied. Every original is re-hashed while it is
 * copied and must match the database. A destination outside the export root (absolute elsewhere, "..",
 * a symlink on the way), one that exists already, or a refused request is refused and the refusal is
 * custody-logged. Nothing is ever overwritten. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "error.h"

typedef struct EvdExportOptions {
        const char *store_root;  /* the store that files.original_path is relative to */
        const char *export_root; /* exports go only below this existing directory */
        const char *dest;        /* the new folder: relative to export_root, or absolute below it; its
                                  * parent must exist, it must not */
        int64_t request_id;      /* an approved, unexpired copy request of the connected login */
        const char *encrypt_to;  /* NULL, or a PEM X.509 certificate: recordings are encrypted to it.
                                  * Required when an item is confidential or secret. */
} EvdExportOptions;

typedef struct EvdExportResult {
        char *path; /* the export folder, absolute (caller frees) */
        size_t n_files;
        uint64_t bytes; /* of the originals */
        int64_t custody_head_id;
        char custody_head_hash[65];
        bool encrypted;
} EvdExportResult;

int evd_export(EvdDb *db, const EvdExportOptions *opts, EvdExportResult *ret, EvdError *err);
