/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Chain verification. Each check below is one condition of docs/verdicts.md; the order is:
 * identity, manifest lines, foreign records, duplicates/conflicts per seq, file order, signatures,
 * links/gaps/rollback, sessions and times, deletions, then the items per file and the new head. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "chain.h"
#include "hash.h"
#include "kv.h"
#include "signature.h"

typedef struct FindingList {
        EvdFinding *v;
        size_t n, cap;
} FindingList;

typedef struct RecState {
        bool own;       /* signed (claimed) by the enrolled key for the enrolled device and suite */
        bool duplicate; /* byte-identical copy of an earlier line */
        bool off_chain; /* a conflicting version for its seq that the chain does not go through */
        bool sig_ok;
        bool link_ok;
        bool deleted_logged; /* a clean DEL names this SEG */
        FindingList findings;
} RecState;

typedef struct Ctx {
        const EvdChainInput *in;
        const EvdManifest *m;
        size_t n; /* records */
        RecState *st;
        size_t *reps; /* the chain: one own record per seq, ascending seq */
        size_t n_reps;
        EvdChainHead head; /* known head (valid=false if none) */
        EvdChainReport *report;
        FindingList docking;
        size_t n_findings;
} Ctx;

static void finding_clear(EvdFinding *f)
{
        free(f->file);
        free(f->expected);
        free(f->found);
        free(f->detail);
}

static void finding_list_clear(FindingList *l)
{
        for (size_t i = 0; i < l->n; i++)
                finding_clear(&l->v[i]);
        free(l->v);
        *l = (FindingList){};
}

static int finding_list_push(Ctx *c, FindingList *l, EvdFinding *f)
{
        if (c->n_findings >= EVD_CHAIN_MAX_FINDINGS)
                return -E2BIG;
        if (l->n == l->cap) {
                size_t cap = MAX((size_t)4, l->cap * 2);
                EvdFinding *v = reallocarray(l->v, cap, sizeof *v);
                if (!v)
                        return -ENOMEM;
                l->v = v;
                l->cap = cap;
        }
        l->v[l->n++] = *f;
        c->n_findings++;
        *f = (EvdFinding){};
        return 0;
}

static char *strdup_or_null(const char *s)
{
        return s ? strdup(s) : NULL;
}

_printf_(8, 9) static int add_finding(Ctx *c, FindingList *l, EvdVerdict v, uint64_t seq, const char *file,
                                      const char *expected, const char *found, const char *fmt, ...)
{
        EvdFinding f = {.verdict = v, .seq = seq};
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&f.detail, fmt, ap);
        va_end(ap);
        if (n < 0) {
                f.detail = NULL;
                return -ENOMEM;
        }
        f.file = strdup_or_null(file);
        f.expected = strdup_or_null(expected);
        f.found = strdup_or_null(found);
        if ((file && !f.file) || (expected && !f.expected) || (found && !f.found)) {
                finding_clear(&f);
                return -ENOMEM;
        }
        int r = finding_list_push(c, l, &f);
        if (r < 0)
                finding_clear(&f);
        return r;
}

static int copy_finding(Ctx *c, FindingList *l, const EvdFinding *src)
{
        return add_finding(c, l, src->verdict, src->seq, src->file, src->expected, src->found, "%s",
                           src->detail);
}

/* A finding about record i. */
#define REC_FINDING(c, i, v, expected, found, ...)                                                          \
        add_finding((c), &(c)->st[i].findings, (v), (c)->m->records[i].seq, (c)->m->records[i].file,        \
                    (expected), (found), __VA_ARGS__)
#define DOCK_FINDING(c, v, seq, file, expected, found, ...)                                                 \
        add_finding((c), &(c)->docking, (v), (seq), (file), (expected), (found), __VA_ARGS__)

static char *hexs(const uint8_t h[EVD_HASH_SIZE], char buf[static 2 * EVD_HASH_SIZE + 1])
{
        return evd_hex(h, EVD_HASH_SIZE, buf);
}

/* ---- DEVICE.TXT ---- */

int evd_device_info_parse(const char *buf, size_t len, EvdDeviceInfo *ret, EvdError *err)
{
        if (len > EVD_DEVICE_TXT_MAX)
                return evd_error_set(err, -EFBIG, "DEVICE.TXT larger than %u bytes", EVD_DEVICE_TXT_MAX);
        EvdDeviceInfo info = {};
        struct {
                const char *key;
                char *dst;
                size_t size;
                bool seen;
        } keys[] = {
            {"device_id", info.device_id, sizeof info.device_id},
            {"officer_id", info.officer_id, sizeof info.officer_id},
            {"unit_code", info.unit_code, sizeof info.unit_code},
            {"suite", info.suite, sizeof info.suite},
            {"key_id", info.key_id, sizeof info.key_id},
            {"maker", info.maker, sizeof info.maker},
            {"model", info.model, sizeof info.model},
            {"firmware", info.firmware, sizeof info.firmware},
        };
        _cleanup_free_ char *copy = malloc(len + 1); /* the reader parses in place */
        if (!copy)
                return -ENOMEM;
        memcpy(copy, buf, len);
        copy[len] = 0;
        EvdKvReader rd;
        EvdKvLine l;
        int r;
        evd_kv_reader_init(&rd, copy, len, EVD_KV_NEWLINE | EVD_KV_COMMENTS);
        while ((r = evd_kv_next(&rd, &l)) > 0)
                for (size_t k = 0; k < ELEMENTSOF(keys); k++) {
                        if (strcmp(keys[k].key, l.key) != 0)
                                continue;
                        if (keys[k].seen)
                                return evd_error_set(err, -EBADMSG, "DEVICE.TXT line %u: duplicate key '%s'",
                                                     l.line, keys[k].key);
                        if (strlen(l.value) >= keys[k].size)
                                return evd_error_set(err, -EBADMSG,
                                                     "DEVICE.TXT line %u: value of '%s' too long", l.line,
                                                     keys[k].key);
                        strcpy(keys[k].dst, l.value);
                        keys[k].seen = true;
                }
        if (r < 0)
                return evd_error_set(err, r, "DEVICE.TXT line %u: %s", rd.line, rd.why);
        if (!info.device_id[0])
                return evd_error_set(err, -EBADMSG, "DEVICE.TXT has no device_id");
        *ret = info;
        return 0;
}

void evd_chain_input_init(EvdChainInput *in)
{
        *in = (EvdChainInput){
            .time_gap_tolerance_us = EVD_CHAIN_DEFAULT_TIME_GAP_US,
            .future_tolerance_us = EVD_CHAIN_DEFAULT_FUTURE_US,
            .max_clock_offset_us = EVD_CHAIN_DEFAULT_MAX_CLOCK_OFFSET_US,
        };
}

/* ---- identity ---- */

static int check_identity_value(Ctx *c, const char *what, const char *source, const char *expected,
                                const char *found)
{
        if (!expected || !*expected || !found || !*found || strcmp(expected, found) == 0)
                return 0;
        return DOCK_FINDING(c, EVD_VERDICT_IDENTITY_MISMATCH, EVD_CHAIN_SEQ_NONE, NULL, expected, found,
                            "%s from %s differs from the enrolment", what, source);
}

static int check_identity(Ctx *c)
{
        const EvdChainInput *in = c->in;
        const EvdChainKey *k = in->key;
        int r;

        if (in->device_txt) {
                EvdError err = {};
                if (evd_device_info_parse(in->device_txt, in->device_txt_len, &c->report->device_info,
                                          &err) < 0) {
                        r = DOCK_FINDING(c, EVD_VERDICT_MANIFEST_INVALID, EVD_CHAIN_SEQ_NONE,
                                         EVD_CHAIN_DEVICE_PATH, NULL, NULL, "%s", err.msg);
                        if (r < 0)
                                return r;
                } else
                        c->report->has_device_info = true;
        }
        if (c->report->has_device_info) {
                const EvdDeviceInfo *d = &c->report->device_info;
                if ((r = check_identity_value(c, "device id", "DEVICE.TXT", k->device_id, d->device_id)) <
                        0 ||
                    (r = check_identity_value(c, "officer", "DEVICE.TXT", k->officer_id, d->officer_id)) <
                        0 ||
                    (r = check_identity_value(c, "key id", "DEVICE.TXT", k->key_id, d->key_id)) < 0 ||
                    (r = check_identity_value(c, "suite", "DEVICE.TXT", evd_suite_to_string(k->suite),
                                              d->suite)) < 0)
                        return r;
        }
        if (in->identity) {
                const EvdSourceIdentity *id = in->identity;
                if ((r = check_identity_value(c, "device id", "the transport", k->device_id,
                                              id->device_id)) < 0 ||
                    (r = check_identity_value(c, "officer", "the transport", k->officer_id,
                                              id->officer_id)) < 0)
                        return r;
                /* The transport and the volume disagreeing is suspicious even when the enrolment says
                 * nothing (officer not enrolled). */
                if (c->report->has_device_info && !k->officer_id &&
                    (r = check_identity_value(c, "officer", "the transport (vs DEVICE.TXT)",
                                              c->report->device_info.officer_id, id->officer_id)) < 0)
                        return r;
                if (c->report->has_device_info &&
                    (r = check_identity_value(c, "unit code", "the transport (vs DEVICE.TXT)",
                                              c->report->device_info.unit_code, id->unit_code)) < 0)
                        return r;
                if (id->has_clock && (id->clock_offset_us > in->max_clock_offset_us ||
                                      id->clock_offset_us < -in->max_clock_offset_us)) {
                        char e[64], f[64];
                        snprintf(e, sizeof e, "|offset| <= %" PRId64 " us", in->max_clock_offset_us);
                        snprintf(f, sizeof f, "%" PRId64 " us", id->clock_offset_us);
                        r = DOCK_FINDING(c, EVD_VERDICT_CLOCK_ANOMALY, EVD_CHAIN_SEQ_NONE, NULL, e, f,
                                         "recorder clock differs from the dock clock by more than allowed");
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* ---- records ---- */

static int cmp_by_seq(const void *a, const void *b, void *userdata)
{
        const EvdManifest *m = userdata;
        size_t i = *(const size_t *)a, j = *(const size_t *)b;
        uint64_t x = m->records[i].seq, y = m->records[j].seq;
        if (x != y)
                return x < y ? -1 : 1;
        return i < j ? -1 : i > j ? 1 : 0; /* stable: file order within one seq */
}

static bool same_line(const EvdRecord *a, const EvdRecord *b)
{
        return a->tbs_len == b->tbs_len && memcmp(a->tbs, b->tbs, a->tbs_len) == 0 &&
               a->signature_len == b->signature_len &&
               (a->signature_len == 0 || memcmp(a->signature, b->signature, a->signature_len) == 0);
}

static int classify_records(Ctx *c)
{
        const EvdChainKey *k = c->in->key;
        int r;
        for (size_t i = 0; i < c->n; i++) {
                const EvdRecord *rec = &c->m->records[i];
                bool own = rec->suite == k->suite && strcmp(rec->key_id, k->key_id) == 0 &&
                           strcmp(rec->device_id, k->device_id) == 0;
                c->st[i].own = own;
                if (own)
                        continue;
                char e[128], f[128];
                snprintf(e, sizeof e, "device %s, key %s, suite %s", k->device_id, k->key_id,
                         evd_suite_to_string(k->suite));
                snprintf(f, sizeof f, "device %s, key %s, suite %s", rec->device_id, rec->key_id,
                         evd_suite_to_string(rec->suite));
                r = REC_FINDING(c, i, EVD_VERDICT_SEGMENT_INSERTED, e, f,
                                "line %u: %s record seq %" PRIu64 " was not made by the enrolled recorder",
                                rec->line, evd_record_type_to_string(rec->type), rec->seq);
                if (r < 0)
                        return r;
        }
        return 0;
}

static bool link_matches(const EvdRecord *rec, const uint8_t hash[EVD_HASH_SIZE])
{
        return memcmp(rec->prev_hash, hash, EVD_HASH_SIZE) == 0;
}

/* Groups own records by seq: exact copies are SEGMENT_DUPLICATE, different versions SEGMENT_CONFLICT.
 * Picks the version the chain goes through (one that links and verifies, else the first). */
static int group_by_seq(Ctx *c, size_t *sorted, size_t n_sorted)
{
        int r;
        c->reps = calloc(MAX(n_sorted, (size_t)1), sizeof *c->reps);
        if (!c->reps)
                return -ENOMEM;
        for (size_t a = 0; a < n_sorted;) {
                size_t b = a;
                uint64_t seq = c->m->records[sorted[a]].seq;
                while (b < n_sorted && c->m->records[sorted[b]].seq == seq)
                        b++;
                /* [a, b): one seq */
                size_t n_versions = 0;
                for (size_t x = a; x < b; x++) {
                        size_t i = sorted[x];
                        const EvdRecord *rec = &c->m->records[i];
                        size_t original = SIZE_MAX;
                        for (size_t y = a; y < x && original == SIZE_MAX; y++)
                                if (!c->st[sorted[y]].duplicate && same_line(&c->m->records[sorted[y]], rec))
                                        original = sorted[y];
                        if (original != SIZE_MAX) {
                                char e[64], f[64];
                                snprintf(e, sizeof e, "seq %" PRIu64 " once (line %u)", seq,
                                         c->m->records[original].line);
                                snprintf(f, sizeof f, "again at line %u", rec->line);
                                c->st[i].duplicate = true;
                                r = REC_FINDING(c, i, EVD_VERDICT_SEGMENT_DUPLICATE, e, f,
                                                "record seq %" PRIu64 " appears twice in the manifest", seq);
                                if (r < 0)
                                        return r;
                        } else
                                n_versions++;
                }
                if (n_versions > 1) {
                        for (size_t x = a; x < b; x++) {
                                size_t i = sorted[x];
                                if (c->st[i].duplicate)
                                        continue;
                                char e[64], f[96], h[2 * EVD_HASH_SIZE + 1];
                                snprintf(e, sizeof e, "one record for seq %" PRIu64, seq);
                                snprintf(f, sizeof f, "%zu versions; this one (line %u) hashes to %.16s…",
                                         n_versions, c->m->records[i].line,
                                         hexs(c->m->records[i].record_hash, h));
                                r = REC_FINDING(c, i, EVD_VERDICT_SEGMENT_CONFLICT, e, f,
                                                "different records claim seq %" PRIu64, seq);
                                if (r < 0)
                                        return r;
                        }
                }
                /* The chain's version: the first that links to the chain's previous record and verifies. */
                size_t chosen = SIZE_MAX;
                const EvdRecord *before =
                    c->n_reps > 0 && c->m->records[c->reps[c->n_reps - 1]].seq + 1 == seq
                        ? &c->m->records[c->reps[c->n_reps - 1]]
                        : NULL;
                for (size_t x = a; x < b && chosen == SIZE_MAX; x++) {
                        size_t i = sorted[x];
                        if (c->st[i].duplicate || !c->st[i].sig_ok)
                                continue;
                        if ((before && link_matches(&c->m->records[i], before->record_hash)) ||
                            (!before && c->head.valid && c->head.seq + 1 == seq &&
                             link_matches(&c->m->records[i], c->head.record_hash)))
                                chosen = i;
                }
                for (size_t x = a; x < b && chosen == SIZE_MAX; x++)
                        if (!c->st[sorted[x]].duplicate)
                                chosen = sorted[x];
                for (size_t x = a; x < b; x++)
                        if (sorted[x] != chosen && !c->st[sorted[x]].duplicate)
                                c->st[sorted[x]].off_chain = true;
                c->reps[c->n_reps++] = chosen;
                a = b;
        }
        return 0;
}

/* Records of the chain in a different position in the file than in seq order. */
static int check_order(Ctx *c, const size_t *sorted, size_t n_sorted)
{
        size_t pos = 0;
        for (size_t i = 0; i < c->n; i++) {
                if (!c->st[i].own || c->st[i].duplicate)
                        continue;
                /* sorted[] without duplicates, walked in step with file order */
                while (pos < n_sorted && c->st[sorted[pos]].duplicate)
                        pos++;
                if (pos >= n_sorted)
                        break;
                size_t expected_i = sorted[pos++];
                const EvdRecord *rec = &c->m->records[i];
                if (c->m->records[expected_i].seq == rec->seq)
                        continue;
                char e[64], f[64];
                snprintf(e, sizeof e, "seq %" PRIu64 " at this position", c->m->records[expected_i].seq);
                snprintf(f, sizeof f, "seq %" PRIu64 " (line %u)", rec->seq, rec->line);
                int r =
                    REC_FINDING(c, i, EVD_VERDICT_SEGMENT_REORDERED, e, f,
                                "record seq %" PRIu64 " is out of sequence order in the manifest", rec->seq);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int check_signatures(Ctx *c)
{
        const EvdChainKey *k = c->in->key;
        for (size_t i = 0; i < c->n; i++) {
                const EvdRecord *rec = &c->m->records[i];
                if (!c->st[i].own)
                        continue;
                int r;
                if (!rec->signature) {
                        r = REC_FINDING(c, i, EVD_VERDICT_UNSIGNED, "signature by key", "no signature",
                                        "record seq %" PRIu64 " (line %u) is not signed", rec->seq,
                                        rec->line);
                        if (r < 0)
                                return r;
                        continue;
                }
                EvdError err = {};
                r = evd_signature_verify(k->suite, k->key, rec->tbs, rec->tbs_len, rec->signature,
                                         rec->signature_len, &err);
                if (r < 0)
                        return r;
                c->st[i].sig_ok = r == 1;
                if (r == 1)
                        continue;
                char e[96];
                snprintf(e, sizeof e, "valid %s signature by key %s", evd_suite_to_string(k->suite),
                         k->key_id);
                r = REC_FINDING(c, i, EVD_VERDICT_SIGNATURE_INVALID, e, "signature does not verify",
                                "record seq %" PRIu64 " (line %u) has an invalid signature", rec->seq,
                                rec->line);
                if (r < 0)
                        return r;
        }
        return 0;
}

static ssize_t rep_index_of_seq(const Ctx *c, uint64_t seq)
{
        size_t lo = 0, hi = c->n_reps;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                uint64_t s = c->m->records[c->reps[mid]].seq;
                if (s == seq)
                        return (ssize_t)mid;
                if (s < seq)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return -1;
}

/* Links, gaps, genesis, rollback against the known head. */
static int check_links(Ctx *c)
{
        static const uint8_t zero[EVD_HASH_SIZE];
        char e[160], f[160], h1[2 * EVD_HASH_SIZE + 1], h2[2 * EVD_HASH_SIZE + 1];
        int r;

        if (c->head.valid) {
                uint64_t last = c->n_reps ? c->m->records[c->reps[c->n_reps - 1]].seq : 0;
                if (c->n_reps == 0 || last < c->head.seq) {
                        snprintf(e, sizeof e, "head seq %" PRIu64 " (%s) or later", c->head.seq,
                                 hexs(c->head.record_hash, h1));
                        if (c->n_reps)
                                snprintf(f, sizeof f, "last seq %" PRIu64 " (%s)", last,
                                         hexs(c->m->records[c->reps[c->n_reps - 1]].record_hash, h2));
                        else
                                snprintf(f, sizeof f, "no record of this recorder");
                        r = DOCK_FINDING(
                            c, EVD_VERDICT_CHAIN_ROLLBACK, c->n_reps ? last : EVD_CHAIN_SEQ_NONE, NULL, e, f,
                            "the recorder's chain ends before the head verified at an earlier docking");
                        if (r < 0)
                                return r;
                }
                ssize_t at = rep_index_of_seq(c, c->head.seq);
                if (at >= 0) {
                        size_t i = c->reps[at];
                        if (memcmp(c->m->records[i].record_hash, c->head.record_hash, EVD_HASH_SIZE) != 0) {
                                snprintf(e, sizeof e, "%s", hexs(c->head.record_hash, h1));
                                snprintf(f, sizeof f, "%s", hexs(c->m->records[i].record_hash, h2));
                                r = DOCK_FINDING(
                                    c, EVD_VERDICT_CHAIN_ROLLBACK, c->head.seq, c->m->records[i].file, e, f,
                                    "record seq %" PRIu64 " is not the head verified at an earlier docking "
                                    "(the chain was rewound and rewritten)",
                                    c->head.seq);
                                if (r < 0)
                                        return r;
                        }
                }
        }

        for (size_t x = 0; x < c->n_reps; x++) {
                size_t i = c->reps[x];
                const EvdRecord *rec = &c->m->records[i];
                bool old = c->head.valid && rec->seq <= c->head.seq;
                const EvdRecord *before = x > 0 && c->m->records[c->reps[x - 1]].seq + 1 == rec->seq
                                              ? &c->m->records[c->reps[x - 1]]
                                              : NULL;
                c->st[i].link_ok = false;

                if (rec->seq == 0 || rec->type == EVD_RECORD_GENESIS) {
                        if (rec->seq != 0 || rec->type != EVD_RECORD_GENESIS || !link_matches(rec, zero)) {
                                snprintf(e, sizeof e, "GEN at seq 0 with prev 0…0");
                                snprintf(f, sizeof f, "%s at seq %" PRIu64 " with prev %s",
                                         evd_record_type_to_string(rec->type), rec->seq,
                                         hexs(rec->prev_hash, h1));
                                r = REC_FINDING(c, i, EVD_VERDICT_LINK_MISMATCH, e, f,
                                                "record seq %" PRIu64 " is not a proper chain start",
                                                rec->seq);
                                if (r < 0)
                                        return r;
                        } else
                                c->st[i].link_ok = true;
                        if (rec->type == EVD_RECORD_GENESIS && rec->public_key) {
                                char id[EVD_KEY_ID_STRLEN + 1];
                                r = evd_key_id_from_der(rec->public_key, rec->public_key_len, id);
                                if (r < 0)
                                        return r;
                                if (strcmp(id, c->in->key->key_id) != 0) {
                                        r = REC_FINDING(c, i, EVD_VERDICT_IDENTITY_MISMATCH,
                                                        c->in->key->key_id, id,
                                                        "the genesis record carries another public key than "
                                                        "the enrolled one");
                                        if (r < 0)
                                                return r;
                                }
                        }
                        continue;
                }

                /* Right after the known head, the trusted head hash is what the record must name (the
                 * manifest's own copy of the head record may have been rewritten). */
                const uint8_t *expected_prev = NULL;
                bool after_head = c->head.valid && c->head.seq + 1 == rec->seq;
                if (after_head)
                        expected_prev = c->head.record_hash;
                else if (before)
                        expected_prev = before->record_hash;

                if (!expected_prev) {
                        /* Records missing before this one. Below the known head, a manifest may have been
                         * pruned after an earlier docking: only a gap in the part not yet verified counts.
                         */
                        uint64_t from = x > 0 ? c->m->records[c->reps[x - 1]].seq + 1 : 0;
                        if (c->head.valid && from <= c->head.seq)
                                from = c->head.seq + 1;
                        if (from < rec->seq) {
                                snprintf(e, sizeof e, "seq %" PRIu64 "…%" PRIu64, from, rec->seq - 1);
                                snprintf(f, sizeof f, "next record present is seq %" PRIu64, rec->seq);
                                r = DOCK_FINDING(c, EVD_VERDICT_SEGMENT_GAP, rec->seq, NULL, e, f,
                                                 "%" PRIu64 " record(s) missing before seq %" PRIu64,
                                                 rec->seq - from, rec->seq);
                                if (r < 0)
                                        return r;
                                if (rec->type == EVD_RECORD_SEGMENT) {
                                        r = REC_FINDING(c, i, EVD_VERDICT_SEGMENT_GAP, e, f,
                                                        "record seq %" PRIu64 " follows missing records",
                                                        rec->seq);
                                        if (r < 0)
                                                return r;
                                }
                        } else if (!old) {
                                /* should not happen: no predecessor although nothing is missing */
                                r = REC_FINDING(c, i, EVD_VERDICT_LINK_MISMATCH, NULL, NULL,
                                                "record seq %" PRIu64 " has no predecessor to link to",
                                                rec->seq);
                                if (r < 0)
                                        return r;
                        } else
                                c->st[i].link_ok = true; /* pruned, verified before */
                        continue;
                }
                if (link_matches(rec, expected_prev)) {
                        c->st[i].link_ok = true;
                        continue;
                }
                /* A conflicting version of seq-1 that this record links to is still a broken chain, but say
                 * so. */
                snprintf(e, sizeof e, "prev %s", hexs(expected_prev, h1));
                snprintf(f, sizeof f, "prev %s", hexs(rec->prev_hash, h2));
                r = REC_FINDING(c, i, EVD_VERDICT_LINK_MISMATCH, e, f,
                                "record seq %" PRIu64 " does not link to the %s before it", rec->seq,
                                after_head ? "head verified at the last docking" : "record");
                if (r < 0)
                        return r;
        }
        /* Off-chain versions do not link by definition; their conflict finding says enough. */
        return 0;
}

static int64_t record_latest_us(const EvdRecord *rec)
{
        return MAX(rec->start_us, rec->end_us);
}

static int check_sessions_and_times(Ctx *c)
{
        const EvdChainInput *in = c->in;
        char e[128], f[128], t1[EVD_TIME_STRLEN + 1], t2[EVD_TIME_STRLEN + 1];
        int r;
        int64_t offset = in->identity && in->identity->has_clock ? in->identity->clock_offset_us : 0;
        bool first = true, has_seg = false, closed = false;
        uint64_t session = 0;
        const EvdRecord *last_continuous = NULL; /* last video/audio SEG of the current session */
        bool missing_since_continuous = false;   /* records missing since: the gap is SEGMENT_GAP's */
        int64_t max_time = INT64_MIN;

        for (size_t x = 0; x < c->n_reps; x++) {
                size_t i = c->reps[x];
                const EvdRecord *rec = &c->m->records[i];
                bool new_part = !c->head.valid || rec->seq > c->head.seq;
                if (x > 0 && c->m->records[c->reps[x - 1]].seq + 1 != rec->seq)
                        missing_since_continuous = true;
                if (c->head.valid && rec->seq == c->head.seq + 1)
                        max_time = MAX(max_time, c->head.end_us);

                /* Future (in dock time: recorder time minus its measured offset). */
                int64_t latest = record_latest_us(rec);
                if (new_part && in->now_us > 0 && latest - offset > in->now_us + in->future_tolerance_us) {
                        snprintf(e, sizeof e, "before %s (dock time + %" PRId64 " s)",
                                 evd_time_format(in->now_us + in->future_tolerance_us, rec->tz_minutes, t1),
                                 in->future_tolerance_us / 1000000);
                        snprintf(f, sizeof f, "%s", evd_time_format(latest, rec->tz_minutes, t2));
                        r = REC_FINDING(c, i, EVD_VERDICT_CLOCK_ANOMALY, e, f,
                                        "record seq %" PRIu64 " lies in the future", rec->seq);
                        if (r < 0)
                                return r;
                }
                if ((rec->type == EVD_RECORD_SEGMENT || rec->type == EVD_RECORD_END) &&
                    rec->end_us < rec->start_us) {
                        snprintf(e, sizeof e, "end >= start %s",
                                 evd_time_format(rec->start_us, rec->tz_minutes, t1));
                        snprintf(f, sizeof f, "end %s", evd_time_format(rec->end_us, rec->tz_minutes, t2));
                        r = REC_FINDING(c, i, EVD_VERDICT_CLOCK_ANOMALY, e, f,
                                        "record seq %" PRIu64 " ends before it starts", rec->seq);
                        if (r < 0)
                                return r;
                }

                if (rec->type == EVD_RECORD_DELETION) {
                        max_time = MAX(max_time, latest);
                        continue; /* deletions neither open nor close sessions */
                }

                if (first || rec->session != session) {
                        if (!first && rec->session < session) {
                                snprintf(e, sizeof e, "session > %" PRIu64, session);
                                snprintf(f, sizeof f, "session %" PRIu64, rec->session);
                                r = REC_FINDING(c, i, EVD_VERDICT_SESSION_BREAK, e, f,
                                                "session counter goes back at seq %" PRIu64, rec->seq);
                                if (r < 0)
                                        return r;
                        } else if (!first && has_seg && !closed) {
                                snprintf(e, sizeof e, "END of session %" PRIu64 " before seq %" PRIu64,
                                         session, rec->seq);
                                snprintf(f, sizeof f, "session %" PRIu64 " starts at seq %" PRIu64,
                                         rec->session, rec->seq);
                                if (rec->type == EVD_RECORD_SEGMENT) {
                                        r = REC_FINDING(c, i, EVD_VERDICT_SESSION_BREAK, e, f,
                                                        "session %" PRIu64 " ended without an END record",
                                                        session);
                                        if (r < 0)
                                                return r;
                                }
                                r = DOCK_FINDING(c, EVD_VERDICT_SESSION_BREAK, rec->seq, rec->file, e, f,
                                                 "session %" PRIu64 " ended without an END record", session);
                                if (r < 0)
                                        return r;
                        }
                        /* Time going backwards across sessions (or against the last docking's head). */
                        if (new_part && max_time != INT64_MIN && rec->start_us < max_time) {
                                snprintf(e, sizeof e, "start >= %s",
                                         evd_time_format(max_time, rec->tz_minutes, t1));
                                snprintf(f, sizeof f, "start %s",
                                         evd_time_format(rec->start_us, rec->tz_minutes, t2));
                                r = REC_FINDING(c, i, EVD_VERDICT_CLOCK_ANOMALY, e, f,
                                                "time goes backwards at seq %" PRIu64 " (session %" PRIu64
                                                ")",
                                                rec->seq, rec->session);
                                if (r < 0)
                                        return r;
                        }
                        first = false;
                        session = rec->session;
                        has_seg = closed = false;
                        last_continuous = NULL;
                        missing_since_continuous = false;
                } else if (closed && rec->type != EVD_RECORD_GENESIS) {
                        snprintf(e, sizeof e, "session > %" PRIu64 " after its END", session);
                        snprintf(f, sizeof f, "session %" PRIu64, rec->session);
                        r = REC_FINDING(c, i, EVD_VERDICT_SESSION_BREAK, e, f,
                                        "record seq %" PRIu64 " continues session %" PRIu64 " after its END",
                                        rec->seq, session);
                        if (r < 0)
                                return r;
                }

                if (rec->type == EVD_RECORD_SEGMENT) {
                        has_seg = true;
                        bool continuous = rec->method == EVD_METHOD_VIDEO || rec->method == EVD_METHOD_AUDIO;
                        if (continuous && last_continuous && new_part && !missing_since_continuous) {
                                int64_t gap = rec->start_us - last_continuous->end_us;
                                if (gap > in->time_gap_tolerance_us) {
                                        snprintf(
                                            e, sizeof e, "start <= %s + %" PRId64 " ms",
                                            evd_time_format(last_continuous->end_us, rec->tz_minutes, t1),
                                            in->time_gap_tolerance_us / 1000);
                                        snprintf(f, sizeof f, "start %s (gap %" PRId64 " ms)",
                                                 evd_time_format(rec->start_us, rec->tz_minutes, t2),
                                                 gap / 1000);
                                        r = REC_FINDING(c, i, EVD_VERDICT_TIME_GAP, e, f,
                                                        "%" PRId64 " s unaccounted for before seq %" PRIu64
                                                        " (after seq %" PRIu64 ")",
                                                        gap / 1000000, rec->seq, last_continuous->seq);
                                        if (r < 0)
                                                return r;
                                } else if (gap < 0) {
                                        snprintf(
                                            e, sizeof e, "start >= %s",
                                            evd_time_format(last_continuous->end_us, rec->tz_minutes, t1));
                                        snprintf(f, sizeof f, "start %s (overlap %" PRId64 " ms)",
                                                 evd_time_format(rec->start_us, rec->tz_minutes, t2),
                                                 -gap / 1000);
                                        r = REC_FINDING(c, i, EVD_VERDICT_TIME_OVERLAP, e, f,
                                                        "seq %" PRIu64 " overlaps seq %" PRIu64 " in time",
                                                        rec->seq, last_continuous->seq);
                                        if (r < 0)
                                                return r;
                                }
                        }
                        if (continuous) {
                                last_continuous = rec;
                                missing_since_continuous = false;
                        }
                } else if (rec->type == EVD_RECORD_END)
                        closed = true;
                max_time = MAX(max_time, latest);
        }
        return 0;
}

/* A DEL counts only when it is itself a clean part of the chain. */
static int check_deletions(Ctx *c)
{
        for (size_t x = 0; x < c->n_reps; x++) {
                size_t i = c->reps[x];
                const EvdRecord *rec = &c->m->records[i];
                if (rec->type != EVD_RECORD_DELETION || !c->st[i].sig_ok || !c->st[i].link_ok)
                        continue;
                ssize_t at = rec->deleted_seq < rec->seq ? rep_index_of_seq(c, rec->deleted_seq) : -1;
                if (at >= 0 && c->m->records[c->reps[at]].type == EVD_RECORD_SEGMENT)
                        c->st[c->reps[at]].deleted_logged = true;
        }
        return 0;
}

/* Two chain records naming the same file, or the same content under two names. */
static int check_same_content(Ctx *c)
{
        for (size_t x = 0; x < c->n_reps; x++) {
                size_t i = c->reps[x];
                const EvdRecord *rec = &c->m->records[i];
                if (rec->type != EVD_RECORD_SEGMENT)
                        continue;
                for (size_t y = 0; y < x; y++) {
                        const EvdRecord *o = &c->m->records[c->reps[y]];
                        if (o->type != EVD_RECORD_SEGMENT)
                                continue;
                        bool same_name = strcmp(o->file, rec->file) == 0;
                        bool same_content =
                            o->size == rec->size && memcmp(o->file_hash, rec->file_hash, EVD_HASH_SIZE) == 0;
                        if (!same_name && !same_content)
                                continue;
                        char e[64], f[64];
                        snprintf(e, sizeof e, "seq %" PRIu64 " only", o->seq);
                        snprintf(f, sizeof f, "also seq %" PRIu64, rec->seq);
                        int r = REC_FINDING(c, i, EVD_VERDICT_SEGMENT_DUPLICATE, e, f,
                                            same_name ? "file %s is recorded twice (seq %" PRIu64
                                                        " and %" PRIu64 ")"
                                                      : "the content of %s was recorded before (seq %" PRIu64
                                                        " and %" PRIu64 ")",
                                            rec->file, o->seq, rec->seq);
                        if (r < 0)
                                return r;
                        break;
                }
        }
        return 0;
}

/* ---- items ---- */

typedef struct NameRef {
        const char *name;
        size_t index;
} NameRef;

static int cmp_name(const void *a, const void *b)
{
        return strcmp(((const NameRef *)a)->name, ((const NameRef *)b)->name);
}

static const NameRef *name_find(const NameRef *v, size_t n, const char *name)
{
        NameRef key = {.name = name};
        const NameRef *hit = bsearch(&key, v, n, sizeof *v, cmp_name);
        if (!hit)
                return NULL;
        while (hit > v && strcmp(hit[-1].name, name) == 0)
                hit--;
        return hit;
}

static bool is_chain_file(const char *path)
{
        return strcmp(path, EVD_CHAIN_MANIFEST_PATH) == 0 || strcmp(path, EVD_CHAIN_DEVICE_PATH) == 0;
}

static int item_take_findings(Ctx *c, EvdChainItem *item, FindingList *from)
{
        FindingList l = {.v = item->findings, .n = item->n_findings, .cap = item->n_findings};
        for (size_t k = 0; k < from->n; k++) {
                int r = copy_finding(c, &l, &from->v[k]);
                if (r < 0) {
                        item->findings = l.v;
                        item->n_findings = l.n;
                        return r;
                }
        }
        item->findings = l.v;
        item->n_findings = l.n;
        return 0;
}

static int item_add(Ctx *c, EvdChainItem *item, EvdVerdict v, uint64_t seq, const char *expected,
                    const char *found, const char *detail)
{
        FindingList l = {.v = item->findings, .n = item->n_findings, .cap = item->n_findings};
        int r = add_finding(c, &l, v, seq, item->file, expected, found, "%s", detail);
        item->findings = l.v;
        item->n_findings = l.n;
        return r;
}

static uint64_t item_sort_seq(const EvdChainItem *it)
{
        return it->record ? it->record->seq : UINT64_MAX;
}

static int cmp_items(const void *a, const void *b)
{
        const EvdChainItem *x = a, *y = b;
        uint64_t s = item_sort_seq(x), t = item_sort_seq(y);
        if (s != t)
                return s < t ? -1 : 1;
        return strcmp(x->file, y->file);
}

static int build_items(Ctx *c)
{
        const EvdChainInput *in = c->in;
        EvdChainReport *rep = c->report;
        int r;

        /* Every record naming a file, own and foreign, sorted by name (own chain records first by seq). */
        _cleanup_free_ NameRef *named = calloc(MAX(c->n, (size_t)1), sizeof *named);
        _cleanup_free_ NameRef *present = calloc(MAX(in->n_files, (size_t)1), sizeof *present);
        _cleanup_free_ bool *covered = calloc(MAX(c->n, (size_t)1), sizeof *covered);
        if (!named || !present || !covered)
                return -ENOMEM;
        size_t n_named = 0, n_present = 0;
        for (size_t i = 0; i < c->n; i++)
                if (c->m->records[i].type == EVD_RECORD_SEGMENT && c->m->records[i].file)
                        named[n_named++] = (NameRef){c->m->records[i].file, i};
        qsort(named, n_named, sizeof *named, cmp_name);
        for (size_t k = 0; k < in->n_files; k++)
                if (in->files[k].path && !is_chain_file(in->files[k].path))
                        present[n_present++] = (NameRef){in->files[k].path, k};
        qsort(present, n_present, sizeof *present, cmp_name);

        size_t cap = n_present + n_named;
        rep->items = calloc(MAX(cap, (size_t)1), sizeof *rep->items);
        if (!rep->items)
                return -ENOMEM;

        bool identity_doubt = false;
        for (size_t k = 0; k < c->docking.n; k++)
                if (c->docking.v[k].verdict == EVD_VERDICT_IDENTITY_MISMATCH)
                        identity_doubt = true;

        /* Distinct names: present files, then absent files named by own records. */
        for (size_t pass = 0; pass < 2; pass++) {
                size_t count = pass == 0 ? n_present : n_named;
                for (size_t k = 0; k < count; k++) {
                        const char *name = pass == 0 ? present[k].name : named[k].name;
                        if (pass == 0 && k > 0 && strcmp(present[k - 1].name, name) == 0)
                                continue; /* a listing names each file once; be safe */
                        if (pass == 1 && (k > 0 && strcmp(named[k - 1].name, name) == 0))
                                continue;
                        if (pass == 1 && name_find(present, n_present, name))
                                continue;

                        /* The record the file belongs to: the chain's own record with the lowest seq, else
                         * an off-chain own version. Foreign records never own a file. */
                        const EvdRecord *owner = NULL;
                        size_t owner_i = SIZE_MAX;
                        bool any_own = false;
                        const NameRef *hit = name_find(named, n_named, name);
                        for (const NameRef *h = hit; h && h < named + n_named && strcmp(h->name, name) == 0;
                             h++) {
                                size_t i = h->index;
                                if (!c->st[i].own || c->st[i].duplicate)
                                        continue;
                                any_own = true;
                                const EvdRecord *rec = &c->m->records[i];
                                bool better = !owner || (c->st[owner_i].off_chain && !c->st[i].off_chain) ||
                                              (c->st[owner_i].off_chain == c->st[i].off_chain &&
                                               rec->seq < owner->seq);
                                if (better) {
                                        owner = rec;
                                        owner_i = i;
                                }
                        }
                        if (pass == 1) {
                                /* An absent file is an item only when a new own record names it. */
                                if (!any_own || (c->head.valid && owner->seq <= c->head.seq))
                                        continue;
                        }

                        EvdChainItem *item = &rep->items[rep->n_items++];
                        item->file = strdup(name);
                        if (!item->file)
                                return -ENOMEM;
                        item->present = pass == 0;
                        item->listed_size = pass == 0 ? in->files[present[k].index].size : 0;
                        item->record = owner;
                        item->already_verified = owner && c->head.valid && owner->seq <= c->head.seq;

                        /* Findings of every record naming this file (own, duplicates, foreign). */
                        for (const NameRef *h = hit; h && h < named + n_named && strcmp(h->name, name) == 0;
                             h++) {
                                r = item_take_findings(c, item, &c->st[h->index].findings);
                                if (r < 0)
                                        return r;
                                covered[h->index] = true;
                        }
                        /* Broken manifest lines that name it. */
                        bool broken_line = false;
                        for (size_t e = 0; c->m && e < c->m->n_errors; e++) {
                                if (!c->m->errors[e].file || strcmp(c->m->errors[e].file, name) != 0)
                                        continue;
                                char where[32];
                                snprintf(where, sizeof where, "line %u", c->m->errors[e].line);
                                r = item_add(c, item, EVD_VERDICT_MANIFEST_INVALID, EVD_CHAIN_SEQ_NONE,
                                             "a valid record", where, c->m->errors[e].message);
                                if (r < 0)
                                        return r;
                                broken_line = true;
                        }
                        if (!owner && !hit && !broken_line) {
                                bool unreadable = !c->m && in->manifest_unreadable;
                                r = item_add(c, item,
                                             c->m         ? EVD_VERDICT_SEGMENT_INSERTED
                                             : unreadable ? EVD_VERDICT_UNREADABLE
                                                          : EVD_VERDICT_MANIFEST_INVALID,
                                             EVD_CHAIN_SEQ_NONE, "a record naming this file", "none",
                                             c->m ? "no record of the chain names this file"
                                             : unreadable
                                                 ? "its record could not be read (" EVD_CHAIN_MANIFEST_PATH
                                                   " is unreadable)"
                                                 : "no chain manifest on the volume");
                                if (r < 0)
                                        return r;
                        }
                        if (!item->present && owner) {
                                bool logged = c->st[owner_i].deleted_logged;
                                char e[64];
                                snprintf(e, sizeof e, "%" PRIu64 " bytes", owner->size);
                                r = item_add(
                                    c, item, logged ? EVD_VERDICT_DELETION_LOGGED : EVD_VERDICT_MISSING,
                                    owner->seq, e, "not on the volume",
                                    logged ? "the file was deleted with an authorised-deletion record"
                                           : "a record names this file but it is not on the volume");
                                if (r < 0)
                                        return r;
                        }
                        if (identity_doubt && !item->already_verified) {
                                for (size_t d = 0; d < c->docking.n; d++) {
                                        if (c->docking.v[d].verdict != EVD_VERDICT_IDENTITY_MISMATCH)
                                                continue;
                                        r = item_add(c, item, EVD_VERDICT_IDENTITY_MISMATCH,
                                                     EVD_CHAIN_SEQ_NONE, c->docking.v[d].expected,
                                                     c->docking.v[d].found, c->docking.v[d].detail);
                                        if (r < 0)
                                                return r;
                                }
                        }
                }
        }

        /* Findings about records no item covers go to the docking. */
        for (size_t i = 0; i < c->n; i++) {
                if (covered[i])
                        continue;
                for (size_t k = 0; k < c->st[i].findings.n; k++) {
                        r = copy_finding(c, &c->docking, &c->st[i].findings.v[k]);
                        if (r < 0)
                                return r;
                }
        }
        /* SEGMENT_GAP and CHAIN_ROLLBACK on the docking also go to the item of the record they name. */
        for (size_t d = 0; d < c->docking.n; d++) {
                EvdFinding *f = &c->docking.v[d];
                if (f->verdict != EVD_VERDICT_CHAIN_ROLLBACK || f->seq == EVD_CHAIN_SEQ_NONE || !f->file)
                        continue;
                for (size_t k = 0; k < rep->n_items; k++)
                        if (rep->items[k].record && rep->items[k].record->seq == f->seq) {
                                r = item_add(c, &rep->items[k], f->verdict, f->seq, f->expected, f->found,
                                             f->detail);
                                if (r < 0)
                                        return r;
                        }
        }
        qsort(rep->items, rep->n_items, sizeof *rep->items, cmp_items);
        return 0;
}

/* The new head: from the known head (or GEN), as long as the next record is there, is the chain's
 * only version for its seq, links, and verifies. */
static void compute_new_head(Ctx *c)
{
        EvdChainHead head = c->head;
        ssize_t x;
        if (head.valid) {
                ssize_t at = rep_index_of_seq(c, head.seq);
                if (at >= 0 &&
                    memcmp(c->m->records[c->reps[at]].record_hash, head.record_hash, EVD_HASH_SIZE) != 0) {
                        c->report->new_head = head; /* forked: nothing new is trusted */
                        return;
                }
                x = rep_index_of_seq(c, head.seq + 1);
        } else
                x = rep_index_of_seq(c, 0);
        int64_t max_time = head.valid ? head.end_us : INT64_MIN;
        for (; x >= 0 && (size_t)x < c->n_reps; x++) {
                size_t i = c->reps[x];
                const EvdRecord *rec = &c->m->records[i];
                uint64_t want = head.valid ? head.seq + 1 : 0;
                if (rec->seq != want)
                        break;
                bool conflict = false;
                for (size_t k = 0; k < c->st[i].findings.n; k++)
                        if (c->st[i].findings.v[k].verdict == EVD_VERDICT_SEGMENT_CONFLICT)
                                conflict = true;
                if (conflict || !c->st[i].sig_ok || !c->st[i].link_ok)
                        break;
                if (head.valid ? !link_matches(rec, head.record_hash) : rec->type != EVD_RECORD_GENESIS)
                        break;
                max_time = MAX(max_time, record_latest_us(rec));
                head = (EvdChainHead){
                    .valid = true, .seq = rec->seq, .session = rec->session, .end_us = max_time};
                memcpy(head.record_hash, rec->record_hash, EVD_HASH_SIZE);
        }
        c->report->new_head = head;
}

static int manifest_findings(Ctx *c)
{
        int r;
        if (!c->m && c->in->manifest_unreadable)
                return DOCK_FINDING(c, EVD_VERDICT_UNREADABLE, EVD_CHAIN_SEQ_NONE, EVD_CHAIN_MANIFEST_PATH,
                                    "a readable chain manifest", c->in->manifest_unreadable,
                                    "the chain manifest is on the volume but cannot be read (%s): the "
                                    "recordings are kept without their records until it can be",
                                    c->in->manifest_unreadable);
        if (!c->m)
                return DOCK_FINDING(c, EVD_VERDICT_MANIFEST_INVALID, EVD_CHAIN_SEQ_NONE,
                                    EVD_CHAIN_MANIFEST_PATH, "a chain manifest", "none",
                                    "no chain manifest on the volume");
        for (size_t e = 0; e < c->m->n_errors; e++) {
                char where[32];
                snprintf(where, sizeof where, "line %u", c->m->errors[e].line);
                r = DOCK_FINDING(c, EVD_VERDICT_MANIFEST_INVALID, EVD_CHAIN_SEQ_NONE, c->m->errors[e].file,
                                 "a valid record", where, "%s line %u: %s", EVD_CHAIN_MANIFEST_PATH,
                                 c->m->errors[e].line, c->m->errors[e].message);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void ctx_done(Ctx *c)
{
        for (size_t i = 0; i < c->n; i++)
                finding_list_clear(&c->st[i].findings);
        free(c->st);
        free(c->reps);
        finding_list_clear(&c->docking);
}

static int verify_steps(Ctx *c)
{
        int r;
        if ((r = manifest_findings(c)) < 0 || (r = check_identity(c)) < 0 || (r = classify_records(c)) < 0 ||
            (r = check_signatures(c)) < 0)
                return r;

        _cleanup_free_ size_t *sorted = calloc(MAX(c->n, (size_t)1), sizeof *sorted);
        if (!sorted)
                return -ENOMEM;
        size_t n_sorted = 0;
        for (size_t i = 0; i < c->n; i++)
                if (c->st[i].own)
                        sorted[n_sorted++] = i;
        qsort_r(sorted, n_sorted, sizeof *sorted, cmp_by_seq, (void *)c->m);

        if ((r = group_by_seq(c, sorted, n_sorted)) < 0 || (r = check_order(c, sorted, n_sorted)) < 0 ||
            (r = check_links(c)) < 0 || (r = check_sessions_and_times(c)) < 0 ||
            (r = check_deletions(c)) < 0 || (r = check_same_content(c)) < 0)
                return r;
        compute_new_head(c);
        return build_items(c);
}

int evd_chain_verify(const EvdChainInput *in, EvdChainReport **ret_report, EvdError *err)
{
        if (!in || !in->key || !in->key->key || !in->key->key_id || !in->key->device_id ||
            (in->n_files && !in->files))
                return evd_error_set(err, -EINVAL,
                                     "chain verification needs the enrolled key, key id and device id");

        _cleanup_(evd_chain_report_freep) EvdChainReport *rep = calloc(1, sizeof *rep);
        if (!rep)
                return -ENOMEM;
        _cleanup_(ctx_done) Ctx c = {
            .in = in,
            .m = in->manifest,
            .n = in->manifest ? in->manifest->n_records : 0,
            .report = rep,
        };
        if (in->known_head && in->known_head->valid)
                c.head = *in->known_head;
        c.st = calloc(MAX(c.n, (size_t)1), sizeof *c.st);
        if (!c.st)
                return -ENOMEM;

        int r = verify_steps(&c);
        if (r == -E2BIG)
                return evd_error_set(err, r, "more than %u findings in one docking", EVD_CHAIN_MAX_FINDINGS);
        if (r < 0)
                return evd_error_set_errno(err, r, "verifying the chain");

        for (size_t x = 0; x < c.n_reps; x++)
                if (!c.head.valid || c.m->records[c.reps[x]].seq > c.head.seq)
                        rep->n_records_new++;
        rep->findings = steal_ptr(&c.docking.v);
        rep->n_findings = c.docking.n;
        c.docking.n = 0;
        *ret_report = steal_ptr(&rep);
        return 0;
}

void evd_chain_report_free(EvdChainReport *report)
{
        if (!report)
                return;
        for (size_t i = 0; i < report->n_findings; i++)
                finding_clear(&report->findings[i]);
        free(report->findings);
        for (size_t k = 0; k < report->n_items; k++) {
                EvdChainItem *it = &report->items[k];
                for (size_t i = 0; i < it->n_findings; i++)
                        finding_clear(&it->findings[i]);
                free(it->findings);
                free(it->file);
        }
        free(report->items);
        free(report);
}

int evd_chain_item_check_content(EvdChainItem *item, uint64_t size, const uint8_t hash[EVD_HASH_SIZE],
                                 EvdVerdict *ret_content)
{
        const EvdRecord *rec = item->record;
        if (!rec || rec->type != EVD_RECORD_SEGMENT)
                return -ENOENT;
        char e[2 * EVD_HASH_SIZE + 64], f[2 * EVD_HASH_SIZE + 64], h1[2 * EVD_HASH_SIZE + 1],
            h2[2 * EVD_HASH_SIZE + 1];
        snprintf(e, sizeof e, "%" PRIu64 " bytes, %s %s", rec->size,
                 rec->suite == EVD_SUITE_SM2_SM3 ? "sm3" : "sha256", hexs(rec->file_hash, h1));
        snprintf(f, sizeof f, "%" PRIu64 " bytes, %s %s", size,
                 rec->suite == EVD_SUITE_SM2_SM3 ? "sm3" : "sha256", evd_hex(hash, EVD_HASH_SIZE, h2));
        EvdVerdict v;
        const char *detail;
        if (size == rec->size && memcmp(hash, rec->file_hash, EVD_HASH_SIZE) == 0) {
                *ret_content = EVD_VERDICT_INTACT;
                return 0;
        } else if (size < rec->size) {
                v = EVD_VERDICT_TRUNCATED;
                detail = "the file is shorter than its record says";
        } else {
                v = EVD_VERDICT_HASH_MISMATCH;
                detail = "the file content does not match the hash in its record";
        }
        /* Bounded like every finding list, but an item gets at most one content finding per copy. */
        EvdFinding fd = {.verdict = v, .seq = rec->seq};
        fd.file = strdup(item->file);
        fd.expected = strdup(e);
        fd.found = strdup(f);
        fd.detail = strdup(detail);
        EvdFinding *nv = reallocarray(item->findings, item->n_findings + 1, sizeof *nv);
        if (!fd.file || !fd.expected || !fd.found || !fd.detail || !nv) {
                if (nv)
                        item->findings = nv;
                finding_clear(&fd);
                return -ENOMEM;
        }
        item->findings = nv;
        item->findings[item->n_findings++] = fd;
        *ret_content = v;
        return 0;
}

EvdVerdict evd_chain_item_verdict(const EvdChainItem *item)
{
        EvdVerdict worst = EVD_VERDICT_INTACT;
        for (size_t i = 0; i < item->n_findings; i++)
                worst = evd_verdict_worst(worst, item->findings[i].verdict);
        return worst;
}
