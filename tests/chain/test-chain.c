/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Chain verification: each verdict from its condition, on exactly the items it concerns, with every
 * other item INTACT. Chains are written in the notation of chain-builder.h. */
#include <errno.h>
#include <string.h>

#include "chain-builder.h"
#include "check.h"
#include "hash.h"

static EVP_PKEY *key_a, *key_b;

/* Runs one scenario: build, mutate (callback), verify, expect. */
typedef int (*MutateFn)(TestChain *tc);

typedef struct Scenario {
        const char *pattern;
        MutateFn mutate;
        TestChainOptions opt;
        TestVerify tv;
        const char *items;
        const char *docking;
        int64_t head_seq; /* -1: no head */
} Scenario;

static int run_scenario(const Scenario *s)
{
        TestChain tc;
        EvdManifest *m = NULL;
        EvdChainReport *rep = NULL;
        int ok = -1;
        if (tc_build(&tc, EVD_SUITE_ED25519_SHA256, key_a, s->pattern, &s->opt) < 0) {
                printf("# build of %s failed\n", s->pattern);
                goto out;
        }
        if (s->mutate && s->mutate(&tc) < 0) {
                printf("# mutation failed\n");
                goto out;
        }
        if (tc_verify(&tc, &s->tv, &m, &rep) < 0)
                goto out;
        ok = 0;
        if (tc_expect_items(rep, s->items) < 0)
                ok = -1;
        if (tc_expect_docking(rep, s->docking) < 0)
                ok = -1;
        int64_t head = rep->new_head.valid ? (int64_t)rep->new_head.seq : -1;
        if (head != s->head_seq) {
                printf("# new head: expected %lld, got %lld\n", (long long)s->head_seq, (long long)head);
                ok = -1;
        }
out:
        evd_chain_report_free(rep);
        evd_manifest_free(m);
        tc_done(&tc);
        return ok;
}

#define SCENARIO(...) CHECK(run_scenario(&(Scenario){__VA_ARGS__}) == 0)

static void test_clean(void)
{
        SCENARIO(.pattern = "GSSSESSE", .items = "1=INTACT 2=INTACT 3=INTACT 5=INTACT 6=INTACT",
                 .docking = "", .head_seq = 7);
}

static void test_clean_all_suites(void)
{
        EvdSuite suites[] = {EVD_SUITE_P256_SHA256, EVD_SUITE_SM2_SM3};
        for (unsigned i = 0; i < ELEMENTSOF(suites); i++) {
                _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;
                CHECK_OK(evd_key_generate(suites[i], &k, NULL));
                TestChain tc;
                CHECK_OK(tc_build(&tc, suites[i], k, "GSSESE", NULL));
                EvdManifest *m = NULL;
                EvdChainReport *rep = NULL;
                int r = tc_verify(&tc, NULL, &m, &rep);
                bool good = r >= 0 && tc_expect_items(rep, "") == 0 && tc_expect_docking(rep, "") == 0 &&
                            rep->n_items == 3 && rep->new_head.valid && rep->new_head.seq == 5;
                evd_chain_report_free(rep);
                evd_manifest_free(m);
                tc_done(&tc);
                CHECK(good);
        }
}

static int drop_line_2(TestChain *tc)
{
        return tc_drop_line(tc, 2);
}

static int drop_line_and_file_2(TestChain *tc)
{
        int r = tc_drop_line(tc, 2);
        return r < 0 ? r : tc_drop_file(tc, "2");
}

static void test_drop(void)
{
        /* The record is gone but its file is still there: a file no record names, and a gap. */
        SCENARIO(.pattern = "GSSSESSE", .mutate = drop_line_2, .items = "2=SEGMENT_INSERTED 3=SEGMENT_GAP",
                 .docking = "SEGMENT_GAP", .head_seq = 1);
        SCENARIO(.pattern = "GSSSESSE", .mutate = drop_line_and_file_2, .items = "3=SEGMENT_GAP",
                 .docking = "SEGMENT_GAP", .head_seq = 1);
}

static int swap_2_3(TestChain *tc)
{
        return tc_swap(tc, 2, 3);
}

static void test_swap(void)
{
        SCENARIO(.pattern = "GSSSESSE", .mutate = swap_2_3,
                 .items = "2=SEGMENT_REORDERED 3=SEGMENT_REORDERED", .docking = "", .head_seq = 7);
}

static int dup_2(TestChain *tc)
{
        return tc_dup(tc, 2);
}

static void test_dup(void)
{
        SCENARIO(.pattern = "GSSSESSE", .mutate = dup_2, .items = "2=SEGMENT_DUPLICATE", .docking = "",
                 .head_seq = 7);
}

static int splice_b(TestChain *tc)
{
        TestChain b;
        TestChainOptions o = {.prefix = "B", .device_id = "B765432"};
        int r = tc_build(&b, EVD_SUITE_ED25519_SHA256, key_b, "GSSE", &o);
        if (r >= 0)
                r = tc_splice(tc, &b, 4);
        tc_done(&b);
        return r;
}

static void test_splice(void)
{
        /* Another recorder's records and files inside this volume: all of them inserted, ours intact. */
        SCENARIO(.pattern = "GSSSESSE", .mutate = splice_b,
                 .items = "B1=SEGMENT_INSERTED B2=SEGMENT_INSERTED", .docking = "SEGMENT_INSERTED",
                 .head_seq = 7);
}

static int resign_2(TestChain *tc)
{
        return tc_resign(tc, 2, key_b);
}

static int forge_2(TestChain *tc)
{
        return tc_forge(tc, 2, key_b);
}

static int strip_2(TestChain *tc)
{
        return tc_strip(tc, 2);
}

static int tamper_2(TestChain *tc)
{
        return tc_tamper_size(tc, 2);
}

static void test_signatures(void)
{
        /* Re-signed with another key (and saying so): not this recorder's record; the chain has a hole. */
        SCENARIO(.pattern = "GSSSESSE", .mutate = resign_2, .items = "2=SEGMENT_INSERTED 3=SEGMENT_GAP",
                 .docking = "SEGMENT_GAP", .head_seq = 1);
        /* Signed by another key while claiming ours. */
        SCENARIO(.pattern = "GSSSESSE", .mutate = forge_2, .items = "2=SIGNATURE_INVALID", .docking = "",
                 .head_seq = 1);
        SCENARIO(.pattern = "GSSSESSE", .mutate = strip_2, .items = "2=UNSIGNED", .docking = "",
                 .head_seq = 1);
        /* A field changed after signing: the signature fails, the file no longer matches, the next
         * record's link names the original. */
        SCENARIO(.pattern = "GSSSESSE", .mutate = tamper_2,
                 .items = "2=SIGNATURE_INVALID+TRUNCATED 3=LINK_MISMATCH", .docking = "", .head_seq = 1);
}

static int corrupt_files(TestChain *tc)
{
        int r = tc_corrupt_file(tc, "3");
        if (r >= 0)
                r = tc_truncate_file(tc, "5");
        return r;
}

static int remove_file_5(TestChain *tc)
{
        return tc_drop_file(tc, "5");
}

static int foreign_file(TestChain *tc)
{
        return tc_add_file(tc, "VIDEO/EXTRA.MP4", "not from the recorder");
}

static void test_files(void)
{
        SCENARIO(.pattern = "GSSSESSE", .mutate = corrupt_files, .items = "3=HASH_MISMATCH 5=TRUNCATED",
                 .docking = "", .head_seq = 7);
        SCENARIO(.pattern = "GSSSESSE", .mutate = remove_file_5, .items = "5=MISSING", .docking = "",
                 .head_seq = 7);
        SCENARIO(.pattern = "GSSSESSE", .mutate = foreign_file, .items = "EXTRA=SEGMENT_INSERTED",
                 .docking = "", .head_seq = 7);
        /* An authorised deletion covers the missing file: logged, not quarantined. */
        SCENARIO(.pattern = "GSSDSE", .items = "2=DELETION_LOGGED", .docking = "", .head_seq = 5);
}

static void test_deletion_not_quarantined(void)
{
        TestChain tc;
        CHECK_OK(tc_build(&tc, EVD_SUITE_ED25519_SHA256, key_a, "GSSDSE", NULL));
        EvdManifest *m = NULL;
        EvdChainReport *rep = NULL;
        CHECK_OK(tc_verify(&tc, NULL, &m, &rep));
        const EvdChainItem *it = tc_item(rep, "2");
        bool good = it && !it->present && it->record && it->record->seq == 2 &&
                    evd_chain_item_verdict(it) == EVD_VERDICT_DELETION_LOGGED &&
                    !evd_verdict_quarantines(evd_chain_item_verdict(it));
        evd_chain_report_free(rep);
        evd_manifest_free(m);
        tc_done(&tc);
        CHECK(good);
}

static void test_same_content_two_names(void)
{
        SCENARIO(.pattern = "GSSSE", .opt = {.same_content_as = {[3] = 2}}, .items = "3=SEGMENT_DUPLICATE",
                 .docking = "", .head_seq = 4);
}

static int conflict_2(TestChain *tc)
{
        return tc_conflict(tc, 2);
}

static void test_conflict(void)
{
        SCENARIO(.pattern = "GSSSESSE", .mutate = conflict_2,
                 .items = "2=SEGMENT_CONFLICT 2b=SEGMENT_CONFLICT", .docking = "", .head_seq = 1);
}

static void test_sessions_and_times(void)
{
        /* Session 1 followed by session 2 without END. */
        SCENARIO(.pattern = "GSS|SSE", .items = "3=SESSION_BREAK", .docking = "SESSION_BREAK",
                 .head_seq = 5);
        /* 5 s between segments 2 and 3 of one session (default tolerance 2 s). */
        SCENARIO(.pattern = "GSSSE",
                 .opt = {.shift_start_us = {[3] = 5000000}, .shift_end_us = {[3] = 5000000}},
                 .items = "3=TIME_GAP", .docking = "", .head_seq = 4);
        /* 1.5 s: within the default tolerance, beyond a 1 s tolerance. */
        SCENARIO(.pattern = "GSSSE",
                 .opt = {.shift_start_us = {[3] = 1500000}, .shift_end_us = {[3] = 1500000}}, .items = "",
                 .docking = "", .head_seq = 4);
        SCENARIO(.pattern = "GSSSE",
                 .opt = {.shift_start_us = {[3] = 1500000}, .shift_end_us = {[3] = 1500000}},
                 .tv = {.time_gap_tolerance_us = 1000000}, .items = "3=TIME_GAP", .docking = "",
                 .head_seq = 4);
        /* Segment 3 starts 5 s before segment 2 ends. */
        SCENARIO(.pattern = "GSSSE", .opt = {.shift_start_us = {[3] = -5000000}}, .items = "3=TIME_OVERLAP",
                 .docking = "", .head_seq = 4);
        /* End before start. */
        SCENARIO(.pattern = "GSSE", .opt = {.shift_end_us = {[2] = -700LL * 1000000}},
                 .items = "2=CLOCK_ANOMALY", .docking = "", .head_seq = 3);
        /* Session 2 starts before session 1 ended (time backwards across sessions). */
        SCENARIO(.pattern = "GSSESE",
                 .opt = {.shift_start_us = {[4] = -7200LL * 1000000, [5] = -7200LL * 1000000},
                         .shift_end_us = {[4] = -7200LL * 1000000, [5] = -7200LL * 1000000}},
                 .items = "4=CLOCK_ANOMALY", .docking = "", .head_seq = 5);
        /* Recorded "in the future": dock time before the second session. */
        SCENARIO(.pattern = "GSESE", .tv = {.now_us = INT64_C(1795305600) * 1000000 + 1800LL * 1000000},
                 .items = "1=CLOCK_ANOMALY 3=CLOCK_ANOMALY", .docking = "CLOCK_ANOMALY", .head_seq = 4);
}

static void test_identity(void)
{
        EvdSourceIdentity id = {.device_id = "Z999999", .transport = "usb"};
        SCENARIO(.pattern = "GSSE", .tv = {.identity = &id},
                 .items = "1=IDENTITY_MISMATCH 2=IDENTITY_MISMATCH", .docking = "IDENTITY_MISMATCH",
                 .head_seq = 3);
        SCENARIO(.pattern = "GSSE", .tv = {.device_txt = "device_id=A123456\nofficer_id=999999\nmodel=X1\n"},
                 .items = "1=IDENTITY_MISMATCH 2=IDENTITY_MISMATCH", .docking = "IDENTITY_MISMATCH",
                 .head_seq = 3);
        SCENARIO(.pattern = "GSSE",
                 .tv = {.device_txt = "device_id=A123456\nofficer_id=012345\nvendor_thing=1\n"}, .items = "",
                 .docking = "", .head_seq = 3);
        EvdSourceIdentity skewed = {
            .device_id = "A123456", .has_clock = 1, .clock_offset_us = 3600LL * 1000000};
        SCENARIO(.pattern = "GSSE", .tv = {.identity = &skewed}, .items = "", .docking = "CLOCK_ANOMALY",
                 .head_seq = 3);
}

static int break_seq_2(TestChain *tc)
{
        return tc_break_line(tc, 2, ";seq=2;", ";seq=two;");
}

static void test_manifest_invalid(void)
{
        SCENARIO(.pattern = "GSSSE", .mutate = break_seq_2, .items = "2=MANIFEST_INVALID 3=SEGMENT_GAP",
                 .docking = "MANIFEST_INVALID+SEGMENT_GAP", .head_seq = 1);
        SCENARIO(.pattern = "GSSE", .tv = {.no_manifest = true},
                 .items = "1=MANIFEST_INVALID 2=MANIFEST_INVALID", .docking = "MANIFEST_INVALID",
                 .head_seq = -1);
        /* there but unreadable is not missing (issue 9): UNREADABLE naming it, no MANIFEST_INVALID */
        SCENARIO(.pattern = "GSSE", .tv = {.no_manifest = true, .manifest_unreadable = "medium error"},
                 .items = "1=UNREADABLE 2=UNREADABLE", .docking = "UNREADABLE", .head_seq = -1);
}

/* Three dockings of one recorder: the head carries over, old files are not new, rollback and fork. */
static void test_dockings(void)
{
        TestChain first, later, shorter, forked;
        EvdManifest *m = NULL;
        EvdChainReport *rep = NULL;
        TestChainOptions fork_opt = {.shift_start_us = {[4] = 1000000}, .shift_end_us = {[4] = 1000000}};
        CHECK_OK(tc_build(&first, EVD_SUITE_ED25519_SHA256, key_a, "GSSSESSE", NULL));
        CHECK_OK(tc_build(&later, EVD_SUITE_ED25519_SHA256, key_a, "GSSSESSESSE", NULL));
        CHECK_OK(tc_build(&shorter, EVD_SUITE_ED25519_SHA256, key_a, "GSSSE", NULL));
        CHECK_OK(tc_build(&forked, EVD_SUITE_ED25519_SHA256, key_a, "GSSSESSESSE", &fork_opt));

        CHECK_OK(tc_verify(&first, NULL, &m, &rep));
        EvdChainHead head = rep->new_head;
        evd_chain_report_free(rep);
        evd_manifest_free(m);
        CHECK(head.valid && head.seq == 7 && head.session == 2);

        /* Next docking: 8, 9, 10 are new and verified; 1..6 were verified before. */
        CHECK_OK(tc_verify(&later, &(TestVerify){.head = &head}, &m, &rep));
        bool good = tc_expect_items(rep, "") == 0 && tc_expect_docking(rep, "") == 0 &&
                    rep->new_head.seq == 10 && rep->n_records_new == 3 && tc_item(rep, "1") &&
                    tc_item(rep, "1")->already_verified && tc_item(rep, "8") &&
                    !tc_item(rep, "8")->already_verified;
        evd_chain_report_free(rep);
        evd_manifest_free(m);
        CHECK(good);

        /* A manifest that ends before the known head. */
        CHECK_OK(tc_verify(&shorter, &(TestVerify){.head = &head}, &m, &rep));
        good = tc_expect_docking(rep, "CHAIN_ROLLBACK") == 0 && tc_expect_items(rep, "") == 0 &&
               rep->new_head.seq == 7;
        evd_chain_report_free(rep);
        evd_manifest_free(m);
        CHECK(good);

        /* Rewritten from seq 4 on: the record at the head seq is not the head, the first new record does not
         * link to it. Nothing new is trusted. */
        CHECK_OK(tc_verify(&forked, &(TestVerify){.head = &head}, &m, &rep));
        good = tc_expect_docking(rep, "CHAIN_ROLLBACK") == 0 &&
               tc_expect_items(rep, "8=LINK_MISMATCH") == 0 && rep->new_head.seq == 7 &&
               memcmp(rep->new_head.record_hash, head.record_hash, EVD_HASH_SIZE) == 0;
        evd_chain_report_free(rep);
        evd_manifest_free(m);
        CHECK(good);

        /* A pruned manifest that starts right after the head is fine. */
        for (uint64_t s = 0; s <= 7; s++)
                CHECK_OK(tc_drop_line(&later, s));
        CHECK_OK(tc_verify(&later, &(TestVerify){.head = &head}, &m, &rep));
        good = tc_expect_docking(rep, "") == 0 && rep->new_head.seq == 10;
        /* the files of 1..6 are still on the volume, now without records */
        good = good && tc_expect_items(rep, "1=SEGMENT_INSERTED 2=SEGMENT_INSERTED 3=SEGMENT_INSERTED "
                                            "5=SEGMENT_INSERTED 6=SEGMENT_INSERTED") == 0;
        evd_chain_report_free(rep);
        evd_manifest_free(m);
        CHECK(good);

        tc_done(&first);
        tc_done(&later);
        tc_done(&shorter);
        tc_done(&forked);
}

static void test_evidence_strings(void)
{
        TestChain tc;
        CHECK_OK(tc_build(&tc, EVD_SUITE_ED25519_SHA256, key_a, "GSSE", NULL));
        CHECK_OK(tc_corrupt_file(&tc, "2"));
        EvdManifest *m = NULL;
        EvdChainReport *rep = NULL;
        CHECK_OK(tc_verify(&tc, NULL, &m, &rep));
        const EvdChainItem *it = tc_item(rep, "2");
        char hex[2 * EVD_HASH_SIZE + 1];
        bool good = it && it->n_findings == 1 && it->findings[0].verdict == EVD_VERDICT_HASH_MISMATCH &&
                    it->findings[0].seq == 2 && strcmp(it->findings[0].file, "VIDEO/2.MP4") == 0 &&
                    strstr(it->findings[0].expected, evd_hex(it->record->file_hash, EVD_HASH_SIZE, hex)) &&
                    it->findings[0].found && !strstr(it->findings[0].found, hex);
        /* No record for a foreign item: the content check has nothing to compare with. */
        EvdChainItem foreign = {.file = (char *)"x"};
        EvdVerdict v;
        uint8_t h[EVD_HASH_SIZE] = {};
        good = good && evd_chain_item_check_content(&foreign, 1, h, &v) == -ENOENT;
        evd_chain_report_free(rep);
        evd_manifest_free(m);
        tc_done(&tc);
        CHECK(good);
}

static void test_device_txt(void)
{
        EvdDeviceInfo info;
        EvdError err = {};
        const char *txt = "# comment\ndevice_id=A123456\nofficer_id=012345\nmodel=DSJ-X1 执法记录仪\n\n";
        CHECK_OK(evd_device_info_parse(txt, strlen(txt), &info, &err));
        CHECK_STREQ(info.device_id, "A123456");
        CHECK_STREQ(info.officer_id, "012345");
        CHECK(strstr(info.model, "执法记录仪"));
        CHECK_INT(evd_device_info_parse("device_id=A\ndevice_id=B\n", 24, &info, &err), ==, -EBADMSG);
        CHECK(strstr(err.msg, "duplicate"));
        CHECK_INT(evd_device_info_parse("officer_id=012345\n", 18, &info, &err), ==, -EBADMSG);
        CHECK_INT(evd_device_info_parse("device_id=A123456", 17, &info, &err), ==, -EBADMSG);
}

int main(void)
{
        if (evd_key_generate(EVD_SUITE_ED25519_SHA256, &key_a, NULL) < 0 ||
            evd_key_generate(EVD_SUITE_ED25519_SHA256, &key_b, NULL) < 0)
                return 1;
        RUN(test_clean);
        RUN(test_clean_all_suites);
        RUN(test_drop);
        RUN(test_swap);
        RUN(test_dup);
        RUN(test_splice);
        RUN(test_signatures);
        RUN(test_files);
        RUN(test_deletion_not_quarantined);
        RUN(test_conflict);
        RUN(test_same_content_two_names);
        RUN(test_sessions_and_times);
        RUN(test_identity);
        RUN(test_manifest_invalid);
        RUN(test_dockings);
        RUN(test_evidence_strings);
        RUN(test_device_txt);
        EVP_PKEY_free(key_a);
        EVP_PKEY_free(key_b);
        return check_finish();
}
