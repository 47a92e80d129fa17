/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidock-sim's model of a recorder volume: the plan of records, the media they cover, the signed
 * chain manifest and the identity file, and the faults that can be injected into them. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "error.h"
#include "manifest.h"
#include "sim-media.h"
#include "signature.h"

#define SIM_MAX_RECORDINGS 9000u                 /* file names carry a 4-digit sequence number */
#define SIM_SESSION_GAP_US (10LL * 60 * 1000000) /* between recording sessions */
#define SIM_TIME_GAP_US    (5LL * 60 * 1000000)  /* what the time-gap fault inserts */
#define SIM_FAULT_NOTE_MAX 512u

typedef enum SimFault {
        SIM_FAULT_HASH_MISMATCH,
        SIM_FAULT_TRUNCATED,
        SIM_FAULT_SIGNATURE_INVALID,
        SIM_FAULT_UNSIGNED,
        SIM_FAULT_LINK_MISMATCH,
        SIM_FAULT_SEGMENT_GAP,
        SIM_FAULT_SEGMENT_INSERTED,
        SIM_FAULT_SEGMENT_REORDERED,
        SIM_FAULT_SEGMENT_DUPLICATE,
        SIM_FAULT_SEGMENT_CONFLICT,
        SIM_FAULT_SESSION_BREAK,
        SIM_FAULT_TIME_GAP,
        SIM_FAULT_TIME_OVERLAP,
        SIM_FAULT_CLOCK_ANOMALY,
        SIM_FAULT_IDENTITY_MISMATCH,
        SIM_FAULT_DELETION_LOGGED,
        SIM_FAULT_MANIFEST_INVALID,
        SIM_FAULT_ROLLBACK,
        SIM_FAULT_FOREIGN_KEY,
        SIM_FAULT_BAD_NAME,
        _SIM_FAULT_MAX,
} SimFault;

typedef struct SimOptions {
        const char *out_dir;
        const char *device_id, *officer_id, *unit_code; /* NULL: default (or DEVICE.TXT with --append) */
        const char *key_path;                           /* NULL: "<out_dir>.key" */
        EvdSuite suite;
        bool suite_set;
        unsigned videos, audios, photos, sessions;
        int64_t duration_us;
        SimPreset preset;
        int64_t start_us;
        bool start_set;
        int tz_minutes;
        const char *case_number;
        bool append;
        uint64_t seed;
        uint32_t faults; /* bit per SimFault */
        bool quiet;
} SimOptions;

typedef struct SimEntry {
        EvdRecord rec;
        int64_t media_start_us, media_duration_us; /* what the picture shows: the nominal recording */
        uint64_t media_salt;                       /* varies content between files of one seed */
        bool links;        /* false: the next record's prev does not name this one (a conflicting copy) */
        int mutation;      /* SimFault applied while signing, or -1 */
        size_t line_index; /* into SimVolume.lines once signed */
} SimEntry;

typedef struct SimVolume {
        const SimOptions *opt;
        char *key_path;
        int dir_fd;
        EVP_PKEY *key;
        EvdSuite suite;
        char key_id[EVD_KEY_ID_STRLEN + 1];
        char device_id[16], officer_id[16], unit_code[16], model[64], firmware[64];

        EvdRecord head; /* last record of the existing chain (--append) */
        bool have_head;

        SimEntry *entries;
        size_t n_entries;
        char **lines; /* the whole CHAIN.LOG, each line with its '\n' */
        size_t n_lines;
        char **notes; /* one line per injected fault, for the summary */
        size_t n_notes;

        unsigned n_files;
        uint64_t n_bytes;
        int64_t total_duration_us;
} SimVolume;

/* Opens (creating) the volume directory, loads or generates the key, and with --append reads the
 * identity and the chain already there. */
int sim_volume_open(SimVolume *v, const SimOptions *opt, EvdError *err);
void sim_volume_done(SimVolume *v);
/* Only the key (--print-pubkey): "<out_dir>.key" or --key, loaded or generated (mode 0600). */
int sim_volume_open_key(SimVolume *v, const SimOptions *opt, EvdError *err);

int sim_volume_plan(SimVolume *v, EvdError *err);       /* records to write */
int sim_volume_name_files(SimVolume *v);                /* volume paths of the segments not named yet */
int sim_volume_make_media(SimVolume *v, EvdError *err); /* files written and hashed into their records */
int sim_volume_sign(SimVolume *v, EvdError *err);       /* links, signs, formats lines */
int sim_volume_write(SimVolume *v, EvdError *err);      /* DEVICE.TXT and CHAIN.LOG */
void sim_volume_print_summary(const SimVolume *v);

/* Index of the n-th (0-based) SEG entry, or -1. */
ssize_t sim_volume_segment(const SimVolume *v, unsigned n);
/* Picks the volume path for a recording (VIDEO/<dev>_<YYYYMMDD>_<hhmmss>_<seq4>.MP4, ...). */
int sim_volume_file_name(const SimVolume *v, EvdMethod method, int64_t start_us, uint64_t seq,
                         const char *suffix, char **ret);
/* Creates a recording at a volume path. */
int sim_volume_make_file(SimVolume *v, const char *path, EvdMethod method, int64_t start_us,
                         int64_t duration_us, uint64_t salt, EvdError *err);
int sim_volume_add_note(SimVolume *v, const char *fmt, ...) _printf_(2, 3);

/* Whether fault f is to be injected into this volume (--fault). */
static inline bool sim_volume_fault_on(const SimVolume *v, SimFault f)
{
        return v->opt->faults & (1u << f);
}
