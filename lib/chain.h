/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Chain verification for one docking: what the recorder's manifest, identity and files say, checked
 * against the enrolled key and the head verified at earlier dockings.
 *
 * The outcome is data (an EvdChainReport), never an error: a return < 0 only means "could not verify"
 * (-ENOMEM, -E2BIG past EVD_CHAIN_MAX_FINDINGS, -EINVAL for a missing input). Nothing is repaired.
 * docs/verdicts.md says which condition produces which verdict and what evidence it carries.
 *
 * Use:
 *   EvdChainInput in;
 *   evd_chain_input_init(&in);
 *   in.manifest = m; in.key = &key; in.known_head = &head; ...
 *   _cleanup_(evd_chain_report_freep) EvdChainReport *rep = NULL;
 *   r = evd_chain_verify(&in, &rep, &err);
 *   for each rep->items[i] that is present and not yet in the database:
 *           copy + hash with evd_suite_hash(key.suite), then
 *           evd_chain_item_check_content(&rep->items[i], size, hash, &content_verdict);
 *           verdict = evd_chain_item_verdict(&rep->items[i]);
 *   store rep->new_head. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "error.h"
#include "finding.h"
#include "manifest.h"
#include "source.h"
#include "types.h"

#define EVD_CHAIN_SEQ_NONE EVD_FINDING_NO_SEQ /* EvdFinding.seq when the finding is not about one record */

#define EVD_CHAIN_DEFAULT_TIME_GAP_US         (2LL * 1000000)      /* between segments of a session */
#define EVD_CHAIN_DEFAULT_FUTURE_US           (5LL * 60 * 1000000) /* recorder times past dock now + this */
#define EVD_CHAIN_DEFAULT_MAX_CLOCK_OFFSET_US (5LL * 60 * 1000000) /* |recorder clock - dock clock| */
#define EVD_CHAIN_MAX_FINDINGS                (1024u * 1024u)      /* per docking; more: -E2BIG */
#define EVD_DEVICE_TXT_MAX                    (64u * 1024u)

/* Volume files that belong to the chain machinery, never items. */
#define EVD_CHAIN_MANIFEST_PATH "EVIDOCK/CHAIN.LOG"
#define EVD_CHAIN_DEVICE_PATH   "EVIDOCK/DEVICE.TXT"

/* EVIDOCK/DEVICE.TXT (docs/chain-format.md). Empty strings for keys that are absent. */
typedef struct EvdDeviceInfo {
        char device_id[16];
        char officer_id[16];
        char unit_code[32];
        char suite[32];
        char key_id[40];
        char maker[64];
        char model[64];
        char firmware[64];
} EvdDeviceInfo;

/* -EBADMSG with the reason (and line) in err when the text does not follow the format; -EFBIG past
 * EVD_DEVICE_TXT_MAX. */
int evd_device_info_parse(const char *buf, size_t len, EvdDeviceInfo *ret, EvdError *err);

/* The enrolled recorder: whom the dock trusts. All pointers are borrowed for the call. */
typedef struct EvdChainKey {
        EvdSuite suite;
        EVP_PKEY *key;          /* public key suffices */
        const char *key_id;     /* evd_key_id() of key */
        const char *device_id;  /* enrolled serial */
        const char *officer_id; /* enrolled officer; NULL: not checked */
} EvdChainKey;

/* The last head verified for a recorder, kept by the caller between dockings. */
typedef struct EvdChainHead {
        bool valid; /* false: no head yet (first docking) */
        uint64_t seq;
        uint64_t session;
        uint8_t record_hash[EVD_HASH_SIZE];
        int64_t end_us; /* latest recorder time (UTC us) in the chain up to the head */
} EvdChainHead;

typedef struct EvdChainInput {
        const EvdManifest *manifest; /* NULL: no readable CHAIN.LOG on the volume */
        /* Non-NULL (with manifest NULL): CHAIN.LOG is on the volume but could not be read, and why. The
         * docking then gets UNREADABLE naming it, and each file "its record could not be read" (also
         * UNREADABLE), instead of "no chain manifest" (MANIFEST_INVALID). */
        const char *manifest_unreadable;
        const char *device_txt; /* raw DEVICE.TXT; NULL: not on the volume */
        size_t device_txt_len;
        const EvdChainKey *key;            /* required */
        const EvdChainHead *known_head;    /* NULL or !valid: none yet */
        const EvdSourceIdentity *identity; /* what the transport reported; NULL: nothing */
        const EvdSourceEntry *files;       /* listing of the volume (borrowed) */
        size_t n_files;
        int64_t now_us;                /* dock time, UTC us */
        int64_t time_gap_tolerance_us; /* evd_chain_input_init() sets the defaults above */
        int64_t future_tolerance_us;
        int64_t max_clock_offset_us;
} EvdChainInput;

void evd_chain_input_init(EvdChainInput *in);

/* EvdFinding: finding.h (one shape for every stage). */

typedef struct EvdChainItem {
        char *file;              /* path on the volume (from the listing, or the record's name if absent) */
        bool present;            /* false: a record names it but it is not on the volume */
        uint64_t listed_size;    /* from the listing; 0 if absent */
        const EvdRecord *record; /* borrowed from the manifest (keep it alive); NULL: no record of this
                                  * chain names the file (foreign file, or manifest missing/broken) */
        bool already_verified;   /* record->seq <= known head seq: ingested at an earlier docking */
        EvdFinding *findings;    /* every finding that concerns this file */
        size_t n_findings;
} EvdChainItem;

typedef struct EvdChainReport {
        /* Findings about the docking as a whole: manifest lines, gaps, rollback, identity, clock, and
         * findings about records that name no file on the volume (GEN/END/DEL, foreign records whose
         * file is absent). SEGMENT_GAP, CHAIN_ROLLBACK, IDENTITY_MISMATCH are here AND on the items
         * they concern. */
        EvdFinding *findings;
        size_t n_findings;
        /* One item per file on the volume (EVIDOCK/CHAIN.LOG and EVIDOCK/DEVICE.TXT excepted), then one
         * per file named by a new record but absent; ordered by record seq, foreign files last. */
        EvdChainItem *items;
        size_t n_items;
        /* The head to store: last record of the unbroken, cleanly verified chain from the known head
         * (or from GEN). Equal to the known head when nothing new verified; !valid if none at all. */
        EvdChainHead new_head;
        bool has_device_info;
        EvdDeviceInfo device_info;
        size_t n_records_new; /* records with seq > known head seq (all records if no head) */
} EvdChainReport;

/* Verifies one docking. *ret_report is owned by the caller (evd_chain_report_free); it borrows the
 * manifest's records, so free the report before the manifest. */
int evd_chain_verify(const EvdChainInput *in, EvdChainReport **ret_report, EvdError *err);

void evd_chain_report_free(EvdChainReport *report);
DEFINE_TRIVIAL_CLEANUP_FUNC(EvdChainReport *, evd_chain_report_free);

/* After copying an item: size and suite hash of what was actually read. Adds HASH_MISMATCH or
 * TRUNCATED (shorter than recorded) to the item, or nothing; *ret_content is INTACT, HASH_MISMATCH or
 * TRUNCATED. -ENOENT if the item has no SEG record to compare with (its findings say why). */
int evd_chain_item_check_content(EvdChainItem *item, uint64_t size, const uint8_t hash[EVD_HASH_SIZE],
                                 EvdVerdict *ret_content);

/* The item's verdict: INTACT without findings, else its first quarantining finding's verdict, else its
 * first finding's (e.g. DELETION_LOGGED). */
EvdVerdict evd_chain_item_verdict(const EvdChainItem *item);
