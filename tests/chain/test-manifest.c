/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Manifest format: round trip, percent-encoding, strictness (every broken field is a line error). */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "hash.h"
#include "manifest.h"
#include "signature.h"

static EVP_PKEY *test_key;

static void fill_segment(EvdRecord *rec)
{
        *rec = (EvdRecord){
            .type = EVD_RECORD_SEGMENT,
            .suite = EVD_SUITE_ED25519_SHA256,
            .device_id = strdup("A123456"),
            .officer_id = strdup("012345"),
            .unit_code = strdup("440300000000"),
            .session = 3,
            .seq = 7,
            .tz_minutes = 480,
            .method = EVD_METHOD_VIDEO,
            .file = strdup("VIDEO/20261122_080000_A123456.MP4"),
            .size = 123456789,
            .case_number = strdup("案件;2026=1%"),
        };
        CHECK(evd_time_parse("2026-11-22T08:00:00+08:00", &rec->start_us, &rec->tz_minutes) == 0);
        CHECK(evd_time_parse("2026-11-22T08:10:00.500000+08:00", &rec->end_us, &rec->tz_minutes) == 0);
        for (unsigned i = 0; i < EVD_HASH_SIZE; i++) {
                rec->file_hash[i] = (uint8_t)i;
                rec->prev_hash[i] = (uint8_t)(0xff - i);
        }
}

static void test_time(void)
{
        int64_t us;
        int tz;
        char buf[EVD_TIME_STRLEN + 1];
        CHECK_OK(evd_time_parse("2026-11-22T08:00:00+08:00", &us, &tz));
        CHECK_INT(us, ==, INT64_C(1795305600) * 1000000); /* 2026-11-22T00:00:00Z */
        CHECK_INT(tz, ==, 480);
        CHECK_STREQ(evd_time_format(us, tz, buf), "2026-11-22T08:00:00+08:00");
        CHECK_STREQ(evd_time_format(us, 0, buf), "2026-11-22T00:00:00+00:00");
        CHECK_STREQ(evd_time_format(us + 1, -330, buf), "2026-11-21T18:30:00.000001-05:30");
        CHECK_OK(evd_time_parse("2024-02-29T23:59:59-05:30", &us, &tz));
        CHECK_STREQ(evd_time_format(us, tz, buf), "2024-02-29T23:59:59-05:30");
        CHECK_OK(evd_time_parse("1970-01-01T00:00:00+08:00", &us, &tz));
        CHECK_INT(us, ==, -INT64_C(8) * 3600 * 1000000);
        const char *bad[] = {
            "2026-11-22T08:00:00Z",
            "2026-11-22 08:00:00+08:00",
            "2025-02-29T08:00:00+08:00",
            "2026-13-01T08:00:00+08:00",
            "2026-11-22T24:00:00+08:00",
            "2026-11-22T08:00:60+08:00",
            "2026-11-22T08:00:00+15:00",
            "2026-11-22T08:00:00.5+08:00",
            "2026-11-22T08:00:00+0800",
            "1969-12-31T23:59:59+00:00",
            "",
        };
        for (unsigned i = 0; i < ELEMENTSOF(bad); i++)
                if (evd_time_parse(bad[i], &us, &tz) != -EINVAL)
                        CHECK_FAIL_("time '%s' accepted", bad[i]);
}

static void test_round_trip(void)
{
        _cleanup_(evd_record_clear) EvdRecord rec = {};
        fill_segment(&rec);
        CHECK_OK(evd_record_sign(&rec, test_key, NULL));
        CHECK(rec.signature && rec.signature_len == 64);

        _cleanup_free_ char *line = NULL;
        CHECK_OK(evd_record_to_line(&rec, &line, NULL));
        /* Percent-encoding: ';' '=' '%' escaped, Chinese literal. */
        CHECK(strstr(line, ";case=案件%3B2026%3D1%25;prev="));
        CHECK(strstr(line, ";start=2026-11-22T08:00:00+08:00;end=2026-11-22T08:10:00.500000+08:00;"));
        CHECK(strncmp(line,
                      "EVDCHAIN/1;type=SEG;suite=ed25519-sha256;dev=A123456;officer=012345;"
                      "unit=440300000000;session=3;seq=7;",
                      95) == 0);
        CHECK(line[strlen(line) - 1] == '\n');

        _cleanup_(evd_manifest_freep) EvdManifest *m = NULL;
        CHECK_OK(evd_manifest_parse(line, strlen(line), &m));
        CHECK_INT(m->n_errors, ==, 0);
        CHECK_INT(m->n_records, ==, 1);
        EvdRecord *p = &m->records[0];
        CHECK_INT(p->line, ==, 1);
        CHECK_INT(p->tbs_len, ==, rec.tbs_len);
        CHECK(memcmp(p->tbs, rec.tbs, rec.tbs_len) == 0);
        CHECK(memcmp(p->record_hash, rec.record_hash, EVD_HASH_SIZE) == 0);
        CHECK_STREQ(p->case_number, "案件;2026=1%");
        CHECK_STREQ(p->file, rec.file);
        CHECK_STREQ(p->key_id, rec.key_id);
        CHECK_INT(p->start_us, ==, rec.start_us);
        CHECK_INT(p->end_us, ==, rec.end_us);
        CHECK_INT(p->size, ==, 123456789);
        CHECK(memcmp(p->file_hash, rec.file_hash, EVD_HASH_SIZE) == 0);
        CHECK(memcmp(p->prev_hash, rec.prev_hash, EVD_HASH_SIZE) == 0);
        CHECK_INT(p->signature_len, ==, rec.signature_len);
        CHECK(evd_signature_verify(p->suite, test_key, p->tbs, p->tbs_len, p->signature, p->signature_len,
                                   NULL) == 1);

        /* record_hash is the suite hash over exactly the bytes before ";sig=". */
        uint8_t h[EVD_HASH_SIZE];
        const char *sig = strstr(line, ";sig=");
        CHECK(sig);
        CHECK_OK(evd_hash_buffer(EVD_HASH_SHA256, line, (size_t)(sig - line), h));
        CHECK(memcmp(h, p->record_hash, EVD_HASH_SIZE) == 0);

        /* Re-formatting the parsed record gives the identical line. */
        _cleanup_free_ char *again = NULL;
        CHECK_OK(evd_record_to_line(p, &again, NULL));
        CHECK_STREQ(again, line);

        /* Deep copy. */
        _cleanup_(evd_record_clear) EvdRecord c = {};
        CHECK_OK(evd_record_copy(&c, p));
        CHECK(c.tbs != p->tbs && strcmp(c.tbs, p->tbs) == 0);
}

static void test_all_types_round_trip(void)
{
        char *lines[4] = {};
        EvdRecord recs[4] = {};
        for (unsigned t = 0; t < 4; t++) {
                EvdRecord *r = &recs[t];
                fill_segment(r);
                r->type = (EvdRecordType)t;
                if (t == EVD_RECORD_DELETION) {
                        r->deleted_seq = 5;
                        r->authorised_by = strdup("张三 000111");
                        r->reason = strdup("误录\n重复");
                }
                if (t == EVD_RECORD_END) {
                        free(r->unit_code);
                        r->unit_code = NULL; /* empty unit is allowed */
                }
                CHECK_OK(evd_record_sign(r, test_key, NULL));
                CHECK_OK(evd_record_to_line(r, &lines[t], NULL));
        }
        CHECK(strstr(lines[0], ";pub="));
        CHECK(strstr(lines[2], ";unit=;session="));
        CHECK(strstr(lines[3], ";deleted=5;by=张三 000111;reason=误录%0A重复;prev="));
        char all[8192] = "";
        for (unsigned t = 0; t < 4; t++)
                strcat(all, lines[t]);
        _cleanup_(evd_manifest_freep) EvdManifest *m = NULL;
        CHECK_OK(evd_manifest_parse(all, strlen(all), &m));
        for (size_t i = 0; i < m->n_errors; i++)
                printf("# line %u: %s\n", m->errors[i].line, m->errors[i].message);
        CHECK_INT(m->n_errors, ==, 0);
        CHECK_INT(m->n_records, ==, 4);
        for (unsigned t = 0; t < 4; t++) {
                CHECK_INT(m->records[t].type, ==, t);
                CHECK_INT(m->records[t].line, ==, t + 1);
                CHECK(memcmp(m->records[t].record_hash, recs[t].record_hash, EVD_HASH_SIZE) == 0);
        }
        CHECK(m->records[0].public_key_len == recs[0].public_key_len);
        CHECK(m->records[2].unit_code == NULL);
        CHECK_STREQ(m->records[3].reason, "误录\n重复");
        CHECK_INT(m->records[3].deleted_seq, ==, 5);
        CHECK_INT(m->records[0].end_us, ==, m->records[0].start_us);
        for (unsigned t = 0; t < 4; t++) {
                free(lines[t]);
                evd_record_clear(&recs[t]);
        }
}

/* Replaces the first occurrence of from with to in line (a valid line) and expects a line error. */
static int expect_line_error(const char *line, const char *from, const char *to)
{
        char buf[8192];
        const char *at = strstr(line, from);
        CHECK_OR_RET(at);
        size_t pre = (size_t)(at - line);
        snprintf(buf, sizeof buf, "%.*s%s%s", (int)pre, line, to, at + strlen(from));
        _cleanup_(evd_manifest_freep) EvdManifest *m = NULL;
        CHECK_OR_RET(evd_manifest_parse(buf, strlen(buf), &m) == 0);
        if (m->n_records != 0 || m->n_errors != 1) {
                CHECK_FAIL_("mutation '%s' -> '%s' was accepted", from, to);
                return -1;
        }
        CHECK_OR_RET(m->errors[0].line == 1 && m->errors[0].message && *m->errors[0].message);
        return 0;
}

static void test_field_errors(void)
{
        _cleanup_(evd_record_clear) EvdRecord rec = {};
        fill_segment(&rec);
        CHECK_OK(evd_record_sign(&rec, test_key, NULL));
        _cleanup_free_ char *line = NULL;
        CHECK_OK(evd_record_to_line(&rec, &line, NULL));

        static const char *const mutations[][2] = {
            {"EVDCHAIN/1", "EVDCHAIN/2"},
            {"EVDCHAIN/1;", "EVDCHAIN/1;;"},
            {"type=SEG", "type=SEX"},
            {"type=SEG;", ""},
            {"suite=ed25519-sha256", "suite=rsa"},
            {"dev=A123456", "dev=A12345"},
            {"dev=A123456", "dev=A12345!"},
            {"officer=012345", "officer=01234a"},
            {"unit=440300000000", "unit=4403"},
            {"session=3", "session=03"},
            {"session=3", "session=-3"},
            {"session=3", "session=99999999999999999999"},
            {"seq=7", "seq="},
            {"seq=7", "seq=7;seq=7"},
            {";seq=7;", ";seq=7;bogus=1;"},
            {"start=2026-11-22T08:00:00+08:00", "start=2026-11-22T08:00:00Z"},
            {"end=2026-11-22T08:10:00.500000+08:00", "end=2026-11-22T00:10:00.500000+00:00"},
            {"method=video", "method=movie"},
            {"file=VIDEO/", "file=/VIDEO/"},
            {"file=VIDEO/", "file=../VIDEO/"},
            {"file=VIDEO/", "file=VIDEO//"},
            {"file=VIDEO/", "file=VIDEO/%00"},
            {"file=VIDEO/", "file=VIDEO/%2"},
            {"file=VIDEO/", "file=VIDEO/%41"},  /* an escape that is not needed: not canonical */
            {"file=VIDEO/", "file=VIDEO/\xff"}, /* not UTF-8 */
            {"size=123456789", "size=12x"},
            {"hash=00", "hash=0"},
            {"hash=000102", "hash=0A0102"},
            {"case=案件%3B", "case=案件;"},
            {"case=案件%3B", "case=案件%3b"},
            {"prev=ff", "prev=gf"},
            {";key=", ";kex="},
            {";prev=", ";pre="},
            {";sig=", ";sig=!!"},
            {";sig=", ";sig=AAAA;x="},
            {";sig=", ";signature="},
            {"\n", "\r\n"},
            {"\n", ";\n"},
            {"\n", ""},
            {";method=video;file=", ";file=VIDEO/x;method=video;file="},
        };
        for (unsigned i = 0; i < ELEMENTSOF(mutations); i++)
                if (expect_line_error(line, mutations[i][0], mutations[i][1]) < 0)
                        return;

        /* Every truncation of the line is an error, never a crash. */
        for (size_t n = 0; n < strlen(line) - 1; n++) {
                char buf[8192];
                memcpy(buf, line, n);
                buf[n] = '\n';
                _cleanup_(evd_manifest_freep) EvdManifest *m = NULL;
                CHECK_OK(evd_manifest_parse(buf, n + 1, &m));
                CHECK_INT(m->n_records + m->n_errors, ==, 1);
                /* Only cutting the whole ";sig=..." leaves a valid (unsigned) record. */
                if (m->n_records == 1)
                        CHECK(m->records[0].signature == NULL &&
                              n == (size_t)(strstr(line, ";sig=") - line));
        }
}

static void test_line_error_names_file(void)
{
        const char *text = "EVDCHAIN/1;type=SEG;file=VIDEO/%3Bx.MP4;junk\n\nnot a record\n";
        _cleanup_(evd_manifest_freep) EvdManifest *m = NULL;
        CHECK_OK(evd_manifest_parse(text, strlen(text), &m));
        CHECK_INT(m->n_records, ==, 0);
        CHECK_INT(m->n_errors, ==, 3);
        CHECK_STREQ(m->errors[0].file, "VIDEO/;x.MP4");
        CHECK_INT(m->errors[1].line, ==, 2);
        CHECK(m->errors[1].file == NULL);
        CHECK_INT(m->errors[2].line, ==, 3);
}

static void test_bounds(void)
{
        _cleanup_free_ char *big = malloc(EVD_MANIFEST_MAX_BYTES + 1);
        CHECK(big);
        memset(big, '\n', EVD_MANIFEST_MAX_BYTES + 1);
        EvdManifest *m = NULL;
        CHECK_INT(evd_manifest_parse(big, EVD_MANIFEST_MAX_BYTES + 1, &m), ==, -EFBIG);
        CHECK_INT(evd_manifest_parse(big, EVD_MANIFEST_MAX_LINES + 1, &m), ==, -EFBIG);
        CHECK(m == NULL);
        /* A line longer than the bound is a line error. */
        memset(big, 'x', EVD_MANIFEST_MAX_LINE + 10);
        big[EVD_MANIFEST_MAX_LINE + 10] = '\n';
        CHECK_OK(evd_manifest_parse(big, EVD_MANIFEST_MAX_LINE + 11, &m));
        CHECK_INT(m->n_errors, ==, 1);
        CHECK(strstr(m->errors[0].message, "longer"));
        evd_manifest_free(m);

        /* A writer refuses to produce a line the parser would refuse. */
        _cleanup_(evd_record_clear) EvdRecord rec = {};
        fill_segment(&rec);
        free(rec.case_number);
        rec.case_number = malloc(1001);
        memset(rec.case_number, ';', 1000);
        rec.case_number[1000] = 0;
        free(rec.file);
        rec.file = strdup(rec.case_number); /* 2 x 3000 bytes once escaped */
        EvdError err = {};
        CHECK_INT(evd_record_sign(&rec, test_key, &err), ==, -E2BIG);
        CHECK(strstr(err.msg, "longer"));

        /* Writer-side validation. */
        _cleanup_(evd_record_clear) EvdRecord bad = {};
        fill_segment(&bad);
        free(bad.file);
        bad.file = strdup("../etc/passwd");
        CHECK_INT(evd_record_sign(&bad, test_key, NULL), ==, -EINVAL);
}

int main(void)
{
        if (evd_key_generate(EVD_SUITE_ED25519_SHA256, &test_key, NULL) < 0)
                return 1;
        RUN(test_time);
        RUN(test_round_trip);
        RUN(test_all_types_round_trip);
        RUN(test_field_errors);
        RUN(test_line_error_names_file);
        RUN(test_bounds);
        EVP_PKEY_free(test_key);
        return check_finish();
}
