/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "chain-builder.h"
#include "hash.h"

#define SEGMENT_US (600LL * 1000000)
#define SESSION_US (3600LL * 1000000)

static int add_file(TestChain *tc, const char *path, char *content)
{
        if (tc->n_files >= ELEMENTSOF(tc->files))
                return -E2BIG;
        tc->files[tc->n_files] = (EvdSourceEntry){.path = strdup(path), .size = strlen(content)};
        tc->contents[tc->n_files] = content;
        tc->n_files++;
        return 0;
}

static char *file_content(const char *dev, uint64_t seq)
{
        char *s = NULL;
        if (asprintf(&s, "recording of %s number %" PRIu64 " -- pretend this is H.264", dev, seq) < 0)
                return NULL;
        return s;
}

int tc_build(TestChain *tc, EvdSuite suite, EVP_PKEY *key, const char *pattern, const TestChainOptions *opt)
{
        static const TestChainOptions defaults = {};
        if (!opt)
                opt = &defaults;
        *tc = (TestChain){.suite = suite, .key = key};
        snprintf(tc->device_id, sizeof tc->device_id, "%s", opt->device_id ?: "A123456");
        const char *prefix = opt->prefix ?: "";
        int r = evd_key_id(key, tc->key_id);
        if (r < 0)
                return r;
        tc->t0 = INT64_C(1795305600) * 1000000; /* 2026-11-22T08:00:00+08:00 */

        uint64_t seq = opt->first_seq, session = 0, last_seg = UINT64_MAX;
        bool open = false;
        int64_t session_start = tc->t0, next_start = tc->t0;
        uint8_t prev[EVD_HASH_SIZE] = {};
        for (const char *p = pattern; *p; p++) {
                if (*p == '|') {
                        open = false;
                        continue;
                }
                EvdRecord *rec = &tc->recs[tc->n];
                *rec = (EvdRecord){
                    .suite = suite,
                    .device_id = strdup(tc->device_id),
                    .officer_id = strdup("012345"),
                    .unit_code = strdup("440300000000"),
                    .seq = seq,
                    .tz_minutes = 480,
                };
                switch (*p) {
                case 'G':
                        rec->type = EVD_RECORD_GENESIS;
                        rec->start_us = rec->end_us = tc->t0;
                        break;
                case 'S': {
                        if (!open) {
                                session++;
                                open = true;
                                session_start = tc->t0 + (int64_t)session * SESSION_US;
                                next_start = session_start;
                        }
                        rec->type = EVD_RECORD_SEGMENT;
                        rec->method = EVD_METHOD_VIDEO;
                        rec->start_us = next_start;
                        rec->end_us = next_start + SEGMENT_US;
                        next_start = rec->end_us;
                        char path[64];
                        snprintf(path, sizeof path, "VIDEO/%s%" PRIu64 ".MP4", prefix, seq);
                        rec->file = strdup(path);
                        uint64_t content_seq =
                            seq < TC_MAX && opt->same_content_as[seq] ? opt->same_content_as[seq] : seq;
                        char *content = file_content(tc->device_id, content_seq);
                        if (!content)
                                return -ENOMEM;
                        rec->size = strlen(content);
                        r = evd_hash_buffer(evd_suite_hash(suite), content, rec->size, rec->file_hash);
                        if (r < 0)
                                return r;
                        r = add_file(tc, path, content);
                        if (r < 0)
                                return r;
                        rec->case_number = strdup("2026-案-0042");
                        last_seg = seq;
                        break;
                }
                case 'E':
                        rec->type = EVD_RECORD_END;
                        rec->start_us = session_start;
                        rec->end_us = next_start;
                        open = false;
                        break;
                case 'D': {
                        rec->type = EVD_RECORD_DELETION;
                        rec->start_us = rec->end_us = next_start + 1000000;
                        rec->deleted_seq = last_seg;
                        rec->authorised_by = strdup("000111 王警官");
                        rec->reason = strdup("recorded by mistake");
                        char name[32];
                        snprintf(name, sizeof name, "%s%" PRIu64, prefix, last_seg);
                        r = tc_drop_file(tc, name);
                        if (r < 0)
                                return r;
                        break;
                }
                default:
                        return -EINVAL;
                }
                rec->session = session;
                if (seq < TC_MAX) {
                        rec->start_us += opt->shift_start_us[seq];
                        rec->end_us += opt->shift_end_us[seq];
                        if (rec->type == EVD_RECORD_GENESIS || rec->type == EVD_RECORD_DELETION)
                                rec->end_us = rec->start_us;
                }
                memcpy(rec->prev_hash, prev, EVD_HASH_SIZE);
                EvdError err = {};
                r = evd_record_sign(rec, key, &err);
                if (r < 0) {
                        printf("# tc_build: %s\n", err.msg);
                        return r;
                }
                memcpy(prev, rec->record_hash, EVD_HASH_SIZE);
                tc->n++;
                seq++;
        }
        return 0;
}

void tc_done(TestChain *tc)
{
        for (size_t i = 0; i < tc->n; i++) {
                evd_record_clear(&tc->recs[i]);
                free(tc->raw[i]);
        }
        for (size_t i = 0; i < tc->n_files; i++) {
                free(tc->files[i].path);
                free(tc->contents[i]);
        }
        *tc = (TestChain){};
}

char *tc_text(const TestChain *tc)
{
        size_t cap = 1, len = 0;
        char *text = malloc(cap);
        if (!text)
                return NULL;
        text[0] = 0;
        for (size_t i = 0; i < tc->n; i++) {
                char *line = NULL;
                if (tc->raw[i])
                        line = strdup(tc->raw[i]);
                else if (evd_record_to_line(&tc->recs[i], &line, NULL) < 0)
                        line = NULL;
                if (!line) {
                        free(text);
                        return NULL;
                }
                size_t n = strlen(line);
                char *t = realloc(text, cap + n);
                if (!t) {
                        free(line);
                        free(text);
                        return NULL;
                }
                text = t;
                cap += n;
                memcpy(text + len, line, n + 1);
                len += n;
                free(line);
        }
        return text;
}

static ssize_t line_of_seq(const TestChain *tc, uint64_t seq)
{
        for (size_t i = 0; i < tc->n; i++)
                if (tc->recs[i].seq == seq)
                        return (ssize_t)i;
        return -ENOENT;
}

static void file_path(const char *name, char out[static 64])
{
        snprintf(out, 64, "VIDEO/%s.MP4", name);
}

static ssize_t file_index(const TestChain *tc, const char *name)
{
        char path[64];
        file_path(name, path);
        for (size_t i = 0; i < tc->n_files; i++)
                if (strcmp(tc->files[i].path, path) == 0)
                        return (ssize_t)i;
        return -ENOENT;
}

int tc_drop_line(TestChain *tc, uint64_t seq)
{
        ssize_t i = line_of_seq(tc, seq);
        if (i < 0)
                return (int)i;
        evd_record_clear(&tc->recs[i]);
        free(tc->raw[i]);
        memmove(&tc->recs[i], &tc->recs[i + 1], (tc->n - (size_t)i - 1) * sizeof tc->recs[0]);
        memmove(&tc->raw[i], &tc->raw[i + 1], (tc->n - (size_t)i - 1) * sizeof tc->raw[0]);
        tc->n--;
        tc->recs[tc->n] = (EvdRecord){};
        tc->raw[tc->n] = NULL;
        return 0;
}

int tc_drop_file(TestChain *tc, const char *name)
{
        ssize_t i = file_index(tc, name);
        if (i < 0)
                return (int)i;
        free(tc->files[i].path);
        free(tc->contents[i]);
        memmove(&tc->files[i], &tc->files[i + 1], (tc->n_files - (size_t)i - 1) * sizeof tc->files[0]);
        memmove(&tc->contents[i], &tc->contents[i + 1],
                (tc->n_files - (size_t)i - 1) * sizeof tc->contents[0]);
        tc->n_files--;
        return 0;
}

int tc_swap(TestChain *tc, uint64_t a, uint64_t b)
{
        ssize_t i = line_of_seq(tc, a), j = line_of_seq(tc, b);
        if (i < 0 || j < 0)
                return -ENOENT;
        EvdRecord t = tc->recs[i];
        tc->recs[i] = tc->recs[j];
        tc->recs[j] = t;
        char *r = tc->raw[i];
        tc->raw[i] = tc->raw[j];
        tc->raw[j] = r;
        return 0;
}

int tc_dup(TestChain *tc, uint64_t seq)
{
        ssize_t i = line_of_seq(tc, seq);
        if (i < 0)
                return (int)i;
        if (tc->n >= ELEMENTSOF(tc->recs))
                return -E2BIG;
        memmove(&tc->recs[i + 2], &tc->recs[i + 1], (tc->n - (size_t)i - 1) * sizeof tc->recs[0]);
        memmove(&tc->raw[i + 2], &tc->raw[i + 1], (tc->n - (size_t)i - 1) * sizeof tc->raw[0]);
        tc->raw[i + 1] = tc->raw[i] ? strdup(tc->raw[i]) : NULL;
        tc->n++;
        return evd_record_copy(&tc->recs[i + 1], &tc->recs[i]);
}

int tc_strip(TestChain *tc, uint64_t seq)
{
        ssize_t i = line_of_seq(tc, seq);
        if (i < 0)
                return (int)i;
        free(tc->recs[i].signature);
        tc->recs[i].signature = NULL;
        tc->recs[i].signature_len = 0;
        return 0;
}

int tc_resign(TestChain *tc, uint64_t seq, EVP_PKEY *other)
{
        ssize_t i = line_of_seq(tc, seq);
        if (i < 0)
                return (int)i;
        return evd_record_sign(&tc->recs[i], other, NULL);
}

int tc_forge(TestChain *tc, uint64_t seq, EVP_PKEY *other)
{
        ssize_t i = line_of_seq(tc, seq);
        if (i < 0)
                return (int)i;
        EvdRecord *rec = &tc->recs[i];
        int r = evd_record_canonicalize(rec, NULL);
        if (r < 0)
                return r;
        uint8_t *sig = NULL;
        size_t len = 0;
        r = evd_signature_sign(rec->suite, other, rec->tbs, rec->tbs_len, &sig, &len, NULL);
        if (r < 0)
                return r;
        free(rec->signature);
        rec->signature = sig;
        rec->signature_len = len;
        return 0;
}

int tc_tamper_size(TestChain *tc, uint64_t seq)
{
        ssize_t i = line_of_seq(tc, seq);
        if (i < 0)
                return (int)i;
        tc->recs[i].size++;
        return 0;
}

int tc_splice(TestChain *tc, const TestChain *other, size_t after_line)
{
        if (tc->n + other->n > ELEMENTSOF(tc->recs) || after_line > tc->n)
                return -E2BIG;
        memmove(&tc->recs[after_line + other->n], &tc->recs[after_line],
                (tc->n - after_line) * sizeof tc->recs[0]);
        memmove(&tc->raw[after_line + other->n], &tc->raw[after_line],
                (tc->n - after_line) * sizeof tc->raw[0]);
        for (size_t k = 0; k < other->n; k++) {
                int r = evd_record_copy(&tc->recs[after_line + k], &other->recs[k]);
                if (r < 0)
                        return r;
                tc->raw[after_line + k] = NULL;
        }
        tc->n += other->n;
        for (size_t k = 0; k < other->n_files; k++) {
                int r = add_file(tc, other->files[k].path, strdup(other->contents[k]));
                if (r < 0)
                        return r;
        }
        return 0;
}

int tc_conflict(TestChain *tc, uint64_t seq)
{
        ssize_t i = line_of_seq(tc, seq);
        if (i < 0 || tc->n >= ELEMENTSOF(tc->recs))
                return -ENOENT;
        EvdRecord copy;
        int r = evd_record_copy(&copy, &tc->recs[i]);
        if (r < 0)
                return r;
        char name[32], path[64];
        snprintf(name, sizeof name, "%" PRIu64 "b", seq);
        file_path(name, path);
        free(copy.file);
        copy.file = strdup(path);
        char *content = file_content("conflict", seq);
        copy.size = strlen(content);
        r = evd_hash_buffer(evd_suite_hash(copy.suite), content, copy.size, copy.file_hash);
        if (r < 0 || (r = evd_record_sign(&copy, tc->key, NULL)) < 0 ||
            (r = add_file(tc, path, content)) < 0)
                return r;
        memmove(&tc->recs[i + 2], &tc->recs[i + 1], (tc->n - (size_t)i - 1) * sizeof tc->recs[0]);
        memmove(&tc->raw[i + 2], &tc->raw[i + 1], (tc->n - (size_t)i - 1) * sizeof tc->raw[0]);
        tc->recs[i + 1] = copy;
        tc->raw[i + 1] = NULL;
        tc->n++;
        return 0;
}

int tc_corrupt_file(TestChain *tc, const char *name)
{
        ssize_t i = file_index(tc, name);
        if (i < 0)
                return (int)i;
        tc->contents[i][3] ^= 0x20;
        return 0;
}

int tc_truncate_file(TestChain *tc, const char *name)
{
        ssize_t i = file_index(tc, name);
        if (i < 0)
                return (int)i;
        tc->contents[i][strlen(tc->contents[i]) / 2] = 0;
        tc->files[i].size = strlen(tc->contents[i]);
        return 0;
}

int tc_add_file(TestChain *tc, const char *path, const char *content)
{
        return add_file(tc, path, strdup(content));
}

int tc_break_line(TestChain *tc, uint64_t seq, const char *from, const char *to)
{
        ssize_t i = line_of_seq(tc, seq);
        if (i < 0)
                return (int)i;
        char *line = NULL;
        int r = evd_record_to_line(&tc->recs[i], &line, NULL);
        if (r < 0)
                return r;
        char *at = strstr(line, from);
        if (!at) {
                free(line);
                return -ENOENT;
        }
        char *edited = NULL;
        if (asprintf(&edited, "%.*s%s%s", (int)(at - line), line, to, at + strlen(from)) < 0)
                edited = NULL;
        free(line);
        if (!edited)
                return -ENOMEM;
        free(tc->raw[i]);
        tc->raw[i] = edited;
        return 0;
}

int tc_verify(TestChain *tc, const TestVerify *tv, EvdManifest **ret_m, EvdChainReport **ret_rep)
{
        static const TestVerify defaults = {};
        if (!tv)
                tv = &defaults;
        EvdManifest *m = NULL;
        int r;
        if (!tv->no_manifest) {
                char *text = tc_text(tc);
                if (!text)
                        return -ENOMEM;
                r = evd_manifest_parse(text, strlen(text), &m);
                free(text);
                if (r < 0)
                        return r;
        }
        EvdChainKey key = {
            .suite = tc->suite,
            .key = tc->key,
            .key_id = tc->key_id,
            .device_id = tc->device_id,
            .officer_id = "012345",
        };
        /* The listing includes the chain files themselves, which must never become items. */
        EvdSourceEntry files[2 * TC_MAX + 2];
        memcpy(files, tc->files, tc->n_files * sizeof files[0]);
        files[tc->n_files] = (EvdSourceEntry){.path = (char *)"EVIDOCK/CHAIN.LOG", .size = 1};
        files[tc->n_files + 1] = (EvdSourceEntry){.path = (char *)"EVIDOCK/DEVICE.TXT", .size = 1};

        EvdChainInput in;
        evd_chain_input_init(&in);
        in.manifest = m;
        in.manifest_unreadable = tv->manifest_unreadable;
        in.key = &key;
        in.known_head = tv->head;
        in.identity = tv->identity;
        in.device_txt = tv->device_txt;
        in.device_txt_len = tv->device_txt ? strlen(tv->device_txt) : 0;
        in.files = files;
        in.n_files = tc->n_files + 2;
        in.now_us = tv->now_us ?: tc->t0 + 30LL * 86400 * 1000000;
        if (tv->time_gap_tolerance_us)
                in.time_gap_tolerance_us = tv->time_gap_tolerance_us;
        EvdChainReport *rep = NULL;
        EvdError err = {};
        r = evd_chain_verify(&in, &rep, &err);
        if (r < 0) {
                printf("# evd_chain_verify: %s\n", err.msg);
                evd_manifest_free(m);
                return r;
        }
        /* The copy step: hash what is on the volume and check it against the item's record. */
        for (size_t k = 0; k < rep->n_items; k++) {
                EvdChainItem *it = &rep->items[k];
                if (!it->present || !it->record)
                        continue;
                for (size_t f = 0; f < tc->n_files; f++) {
                        if (strcmp(tc->files[f].path, it->file) != 0)
                                continue;
                        uint8_t h[EVD_HASH_SIZE];
                        size_t len = strlen(tc->contents[f]);
                        r = evd_hash_buffer(evd_suite_hash(tc->suite), tc->contents[f], len, h);
                        EvdVerdict v;
                        if (r >= 0)
                                r = evd_chain_item_check_content(it, len, h, &v);
                        if (r < 0 && r != -ENOENT) {
                                evd_chain_report_free(rep);
                                evd_manifest_free(m);
                                return r;
                        }
                }
        }
        *ret_m = m;
        *ret_rep = rep;
        return 0;
}

const EvdChainItem *tc_item(const EvdChainReport *rep, const char *name)
{
        char path[64];
        file_path(name, path);
        for (size_t k = 0; k < rep->n_items; k++)
                if (strcmp(rep->items[k].file, path) == 0)
                        return &rep->items[k];
        return NULL;
}

/* Distinct verdicts of a finding list as "A+B" in enum order. */
static void verdict_set(const EvdFinding *f, size_t n, char *out, size_t size)
{
        out[0] = 0;
        for (unsigned v = 0; v < _EVD_VERDICT_MAX; v++) {
                bool has = false;
                for (size_t i = 0; i < n; i++)
                        has = has || f[i].verdict == v;
                if (!has)
                        continue;
                if (out[0])
                        strncat(out, "+", size - strlen(out) - 1);
                strncat(out, evd_verdict_to_string(v), size - strlen(out) - 1);
        }
}

/* Normalises "B+A" into enum order so specs can list verdicts in any order. */
static void normalise(const char *spec, char *out, size_t size)
{
        EvdFinding f[16] = {};
        size_t n = 0;
        char buf[256];
        snprintf(buf, sizeof buf, "%s", spec);
        for (char *save = NULL, *tok = strtok_r(buf, "+", &save); tok && n < 16;
             tok = strtok_r(NULL, "+", &save)) {
                int v = evd_verdict_from_string(tok);
                if (v == EVD_VERDICT_INTACT)
                        continue; /* INTACT = no finding */
                f[n++].verdict = v < 0 ? _EVD_VERDICT_MAX : (EvdVerdict)v;
        }
        verdict_set(f, n, out, size);
}

int tc_expect_items(const EvdChainReport *rep, const char *spec)
{
        int bad = 0;
        _cleanup_free_ bool *matched = calloc(rep->n_items + 1, sizeof *matched);
        if (!matched)
                return -ENOMEM;
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", spec);
        for (char *save = NULL, *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
                char *eq = strchr(tok, '=');
                if (!eq)
                        return -EINVAL;
                *eq = 0;
                const EvdChainItem *it = tc_item(rep, tok);
                if (!it) {
                        printf("# item %s: missing from the report\n", tok);
                        bad++;
                        continue;
                }
                matched[it - rep->items] = true;
                char want[256], got[256];
                normalise(eq + 1, want, sizeof want);
                verdict_set(it->findings, it->n_findings, got, sizeof got);
                if (strcmp(want, got) != 0) {
                        printf("# item %s: expected %s, got %s\n", tok, want, got[0] ? got : "INTACT");
                        bad++;
                }
        }
        for (size_t k = 0; k < rep->n_items; k++) {
                if (matched[k] || rep->items[k].n_findings == 0)
                        continue;
                char got[256];
                verdict_set(rep->items[k].findings, rep->items[k].n_findings, got, sizeof got);
                printf("# item %s: expected INTACT, got %s (%s)\n", rep->items[k].file, got,
                       rep->items[k].findings[0].detail);
                bad++;
        }
        return bad ? -1 : 0;
}

int tc_expect_docking(const EvdChainReport *rep, const char *spec)
{
        char want[256], got[256];
        normalise(spec, want, sizeof want);
        verdict_set(rep->findings, rep->n_findings, got, sizeof got);
        if (strcmp(want, got) != 0) {
                printf("# docking: expected '%s', got '%s'\n", want, got);
                for (size_t i = 0; i < rep->n_findings; i++)
                        printf("#   %s seq %" PRIu64 ": %s\n",
                               evd_verdict_to_string(rep->findings[i].verdict), rep->findings[i].seq,
                               rep->findings[i].detail);
                return -1;
        }
        return 0;
}
