/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Builds signed recorder chains in memory from a short notation, mutates them, and verifies them:
 *
 *   G genesis   S video segment   E end of session   D authorised deletion of the last S (file removed)
 *   | the next S starts a new session without an END (a session break)
 *
 * Files are "VIDEO/<prefix><seq>.MP4" (prefix "" for the main recorder, e.g. "B" for another one), so
 * tests name items as "3" or "B3". Mutations work on manifest lines in file order, by seq. */
#pragma once

#include "chain.h"
#include "manifest.h"
#include "signature.h"

#define TC_MAX 64

typedef struct TestChainOptions {
        int64_t shift_start_us[TC_MAX]; /* per seq, applied before signing */
        int64_t shift_end_us[TC_MAX];
        const char *prefix;               /* file-name prefix; default "" */
        const char *device_id;            /* default "A123456" */
        uint64_t first_seq;               /* default 0 (G at 0) */
        uint64_t same_content_as[TC_MAX]; /* per seq: the file holds the content of that seq (0: its own) */
} TestChainOptions;

typedef struct TestChain {
        EvdSuite suite;
        EVP_PKEY *key; /* borrowed */
        char key_id[EVD_KEY_ID_STRLEN + 1];
        char device_id[8];
        EvdRecord recs[2 * TC_MAX]; /* manifest lines in file order */
        char *raw[2 * TC_MAX];      /* a line's text when it was edited by hand (else formatted from recs) */
        size_t n;
        EvdSourceEntry files[2 * TC_MAX];
        char *contents[2 * TC_MAX]; /* parallel to files */
        size_t n_files;
        int64_t t0;
} TestChain;

int tc_build(TestChain *tc, EvdSuite suite, EVP_PKEY *key, const char *pattern, const TestChainOptions *opt);
void tc_done(TestChain *tc);

/* Manifest text of the current lines (caller frees). */
char *tc_text(const TestChain *tc);

/* Mutations (return < 0 if the seq is not there). */
int tc_drop_line(TestChain *tc, uint64_t seq);
int tc_drop_file(TestChain *tc, const char *name); /* "3" or "B3" */
int tc_swap(TestChain *tc, uint64_t a, uint64_t b);
int tc_dup(TestChain *tc, uint64_t seq);
int tc_strip(TestChain *tc, uint64_t seq);
int tc_resign(TestChain *tc, uint64_t seq, EVP_PKEY *other); /* key field becomes other's id */
int tc_forge(TestChain *tc, uint64_t seq, EVP_PKEY *other);  /* signed by other, key field kept */
int tc_tamper_size(TestChain *tc, uint64_t seq);             /* size+1, old signature kept */
int tc_splice(TestChain *tc, const TestChain *other, size_t after_line); /* other's lines + files */
int tc_conflict(TestChain *tc, uint64_t seq); /* 2nd signed version naming <seq>b */
int tc_corrupt_file(TestChain *tc, const char *name);
int tc_truncate_file(TestChain *tc, const char *name);
int tc_add_file(TestChain *tc, const char *path, const char *content);
int tc_break_line(TestChain *tc, uint64_t seq, const char *from, const char *to); /* raw text edit */

/* Verifies tc against its own key; runs the content check on every present item with a record.
 * Returns the report (caller frees) and the parsed manifest (caller frees after the report). */
typedef struct TestVerify {
        const EvdChainHead *head;
        const EvdSourceIdentity *identity;
        const char *device_txt;
        int64_t now_us;                /* 0: t0 + 30 days */
        int64_t time_gap_tolerance_us; /* 0: default */
        bool no_manifest;
        const char *manifest_unreadable; /* with no_manifest: CHAIN.LOG there but unreadable (why) */
} TestVerify;

int tc_verify(TestChain *tc, const TestVerify *tv, EvdManifest **ret_m, EvdChainReport **ret_rep);

/* "3=SEGMENT_GAP 4=SIGNATURE_INVALID+TRUNCATED": exact verdict sets for those items, INTACT (no finding)
 * for every other item. Prints mismatches as TAP comments; returns 0 if all match. */
int tc_expect_items(const EvdChainReport *rep, const char *spec);
/* Exact set of distinct docking-level verdicts, e.g. "SEGMENT_GAP" or "" for none. */
int tc_expect_docking(const EvdChainReport *rep, const char *spec);
const EvdChainItem *tc_item(const EvdChainReport *rep, const char *name);
