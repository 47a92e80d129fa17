/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The spool's file format and its entries (spool-codec.h, docs/spool.md). */
#include <inttypes.h>
#include <stdarg.h>

#include "hash.h"
#include "kv.h"
#include "spool-internal.h"

#define EVD_SPOOL_MAGIC "evidock-spool 1\n"

/* ---- values: percent-encoded bytes below 0x20, '%' and from 0x7f ----------------------------------- */

static bool needs_escape(unsigned char c)
{
        return c < 0x20 || c == '%' || c >= 0x7f;
}

static void put_escaped(FILE *f, const char *s)
{
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                if (needs_escape(*p))
                        fprintf(f, "%%%02X", *p);
                else
                        fputc(*p, f);
        }
}

/* in place; -EINVAL on a bad escape or an encoded NUL */
static int unescape(char *s)
{
        char *o = s;
        for (char *p = s; *p; p++) {
                if (*p != '%') {
                        *o++ = *p;
                        continue;
                }
                int hi = evd_hex_digit(p[1]), lo = hi >= 0 ? evd_hex_digit(p[2]) : -1;
                if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                        return -EINVAL;
                *o++ = (char)(hi * 16 + lo);
                p += 2;
        }
        *o = 0;
        return 0;
}

/* ---- writing ------------------------------------------------------------------------------------- */

int evd_spool_writer_begin(EvdSpoolWriter *w)
{
        *w = (EvdSpoolWriter){};
        w->f = open_memstream(&w->buf, &w->len);
        if (!w->f)
                return -ENOMEM;
        fputs(EVD_SPOOL_MAGIC, w->f);
        return 0;
}

void evd_spool_writer_put(EvdSpoolWriter *w, const char *key, const char *value)
{
        if (!value)
                return;
        fputs(key, w->f);
        fputc('=', w->f);
        put_escaped(w->f, value);
        fputc('\n', w->f);
}

void evd_spool_writer_putf(EvdSpoolWriter *w, const char *key, const char *fmt, ...)
{
        char v[128];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(v, sizeof(v), fmt, ap);
        va_end(ap);
        evd_spool_writer_put(w, key, v);
}

void evd_spool_writer_put_hex(EvdSpoolWriter *w, const char *key, const uint8_t *digest)
{
        char hex[EVD_DB_HEX_SIZE];
        if (digest)
                evd_spool_writer_put(w, key, evd_hex(digest, EVD_DIGEST_SIZE, hex));
}

/* key "<prefix><i>.<field>" */
void evd_spool_writer_put_at(EvdSpoolWriter *w, const char *prefix, size_t i, const char *field,
                             const char *value)
{
        char key[48];
        snprintf(key, sizeof(key), "%s%zu.%s", prefix, i, field);
        evd_spool_writer_put(w, key, value);
}

/* Closes the stream and appends "sum=<sha256 of everything before>". */
int evd_spool_writer_end(EvdSpoolWriter *w, char **ret_buf, size_t *ret_len)
{
        uint8_t d[EVD_DIGEST_SIZE];
        char hex[EVD_DB_HEX_SIZE];
        int r = fflush(w->f) != 0 || ferror(w->f) ? -ENOMEM
                                                  : evd_hash_buffer(EVD_HASH_SHA256, w->buf, w->len, d);
        if (r >= 0)
                fprintf(w->f, "sum=%s\n", evd_hex(d, EVD_DIGEST_SIZE, hex));
        if (fclose(w->f) != 0 && r >= 0)
                r = -ENOMEM;
        w->f = NULL;
        if (r >= 0 && w->len > EVD_SPOOL_ENTRY_MAX)
                r = -EFBIG;
        if (r < 0) {
                evd_spool_writer_abort(w);
                return r;
        }
        *ret_buf = steal_ptr(&w->buf);
        *ret_len = w->len;
        *w = (EvdSpoolWriter){};
        return 0;
}

void evd_spool_writer_abort(EvdSpoolWriter *w)
{
        if (w->f)
                fclose(w->f);
        free(w->buf);
        *w = (EvdSpoolWriter){};
}

/* ---- reading ------------------------------------------------------------------------------------- */

void evd_spool_text_clear(EvdSpoolText *t)
{
        free(t->buf);
        free(t->items);
        *t = (EvdSpoolText){};
}

static int text_item_cmp(const void *a, const void *b)
{
        return strcmp(((const EvdSpoolTextItem *)a)->key, ((const EvdSpoolTextItem *)b)->key);
}

/* Takes buf (len bytes, NUL-terminated after them). Checks the magic and the checksum. */
int evd_spool_text_parse(char *buf, size_t len, EvdSpoolText *t, EvdError *err)
{
        *t = (EvdSpoolText){.buf = buf};
        size_t magic = strlen(EVD_SPOOL_MAGIC);
        if (len < magic || memcmp(buf, EVD_SPOOL_MAGIC, magic) != 0 || buf[len - 1] != '\n')
                return evd_error_set(err, -EBADMSG, "not a spool file (no header, or cut short)");
        /* the last line: sum=<hex> over everything before it */
        size_t last = len - 1;
        while (last > 0 && buf[last - 1] != '\n')
                last--;
        if (len - last != 4 + 64 + 1 || memcmp(buf + last, "sum=", 4) != 0)
                return evd_error_set(err, -EBADMSG, "no checksum line (cut short?)");
        uint8_t want[EVD_DIGEST_SIZE], have[EVD_DIGEST_SIZE];
        int r;
        buf[len - 1] = 0;
        if (evd_unhex(buf + last + 4, want, EVD_DIGEST_SIZE) < 0 ||
            evd_hash_buffer(EVD_HASH_SHA256, buf, last, have) < 0 ||
            memcmp(want, have, EVD_DIGEST_SIZE) != 0)
                return evd_error_set(err, -EBADMSG, "checksum does not match the content (corrupt)");
        buf[last] = 0;
        size_t lines = 0;
        for (size_t i = magic; i < last; i++)
                lines += buf[i] == '\n';
        t->items = calloc(lines ? lines : 1, sizeof(EvdSpoolTextItem));
        if (!t->items)
                return -ENOMEM;
        EvdKvReader rd;
        EvdKvLine l;
        evd_kv_reader_init(&rd, buf + magic, last - magic, EVD_KV_NEWLINE);
        while ((r = evd_kv_next(&rd, &l)) > 0) {
                if (unescape(l.value) < 0)
                        return evd_error_set(err, -EBADMSG, "bad escape in the value of %s", l.key);
                t->items[t->n++] = (EvdSpoolTextItem){.key = l.key, .value = l.value};
        }
        if (r < 0)
                return evd_error_set(err, -EBADMSG, "line %u: %s", rd.line, rd.why);
        qsort(t->items, t->n, sizeof(EvdSpoolTextItem), text_item_cmp);
        for (size_t i = 1; i < t->n; i++)
                if (strcmp(t->items[i - 1].key, t->items[i].key) == 0)
                        return evd_error_set(err, -EBADMSG, "key %s twice", t->items[i].key);
        return 0;
}

char *evd_spool_text_get(const EvdSpoolText *t, const char *key)
{
        EvdSpoolTextItem k = {.key = key},
                         *hit = bsearch(&k, t->items, t->n, sizeof(EvdSpoolTextItem), text_item_cmp);
        return hit ? hit->value : NULL;
}

char *evd_spool_text_get_at(const EvdSpoolText *t, const char *prefix, size_t i, const char *field)
{
        char key[48];
        snprintf(key, sizeof(key), "%s%zu.%s", prefix, i, field);
        return evd_spool_text_get(t, key);
}

int spool_parse_i64(const char *s, int64_t *ret)
{
        if (!s || !*s)
                return -EINVAL;
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || *end)
                return -EINVAL;
        *ret = v;
        return 0;
}

int spool_parse_u64(const char *s, uint64_t *ret)
{
        if (!s || !*s || *s == '-')
                return -EINVAL;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || *end)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* ---- entries ------------------------------------------------------------------------------------- */

static void put_docking(EvdSpoolWriter *w, const EvdDbDocking *d)
{
        evd_spool_writer_put(w, "d.device", d->device_id);
        evd_spool_writer_put(w, "d.identity", d->identity);
        evd_spool_writer_put(w, "d.transport", d->transport);
        evd_spool_writer_put(w, "d.location", d->location);
        if (d->has_clock_offset)
                evd_spool_writer_putf(w, "d.clock", "%" PRId64, d->clock_offset_us);
        evd_spool_writer_putf(w, "d.docked", "%" PRId64, d->docked_us);
}

static void put_findings(EvdSpoolWriter *w, const EvdFinding *f, size_t n)
{
        evd_spool_writer_putf(w, "n_findings", "%zu", n);
        for (size_t i = 0; i < n; i++) {
                char seq[24];
                evd_spool_writer_put_at(w, "f", i, "verdict", evd_verdict_to_string(f[i].verdict));
                if (evd_finding_has_seq(&f[i])) {
                        snprintf(seq, sizeof(seq), "%" PRIu64, f[i].seq);
                        evd_spool_writer_put_at(w, "f", i, "seq", seq);
                }
                evd_spool_writer_put_at(w, "f", i, "expected", f[i].expected);
                evd_spool_writer_put_at(w, "f", i, "found", f[i].found);
                evd_spool_writer_put_at(w, "f", i, "detail", f[i].detail);
        }
}

static void put_events(EvdSpoolWriter *w, const EvdCustodyEntry *e, size_t n)
{
        evd_spool_writer_putf(w, "n_events", "%zu", n);
        for (size_t i = 0; i < n; i++) {
                evd_spool_writer_put_at(w, "e", i, "kind", e[i].kind);
                evd_spool_writer_put_at(w, "e", i, "device", e[i].device_id);
                evd_spool_writer_put_at(w, "e", i, "detail", e[i].detail ? e[i].detail : "");
        }
}

static void put_result(EvdSpoolWriter *w, const EvdDbDockingResult *r)
{
        evd_spool_writer_putf(w, "r.seen", "%u", r->files_seen);
        evd_spool_writer_putf(w, "r.ingested", "%u", r->files_ingested);
        evd_spool_writer_putf(w, "r.already", "%u", r->files_already);
        evd_spool_writer_putf(w, "r.quarantined", "%u", r->files_quarantined);
        evd_spool_writer_put(w, "r.verdict", evd_verdict_to_string(r->verdict));
        evd_spool_writer_put(w, "r.summary", r->summary);
        evd_spool_writer_putf(w, "r.finished", "%" PRId64, r->finished_us);
}

static void put_file(EvdSpoolWriter *w, const EvdDbFile *f)
{
        evd_spool_writer_put(w, "file.device", f->device_id);
        evd_spool_writer_put(w, "file.officer", f->officer_id);
        if (f->has_seq)
                evd_spool_writer_putf(w, "file.seq", "%" PRIu64, f->seq);
        evd_spool_writer_putf(w, "file.session", "%" PRIu64, f->session);
        evd_spool_writer_put(w, "file.method", evd_method_to_string(f->method));
        evd_spool_writer_put(w, "file.case", f->case_number);
        if (f->has_recorded) {
                evd_spool_writer_putf(w, "file.recorded_start", "%" PRId64, f->recorded_start_us);
                evd_spool_writer_putf(w, "file.recorded_end", "%" PRId64, f->recorded_end_us);
        }
        evd_spool_writer_putf(w, "file.tz", "%d", f->tz_minutes);
        if (f->has_clock_offset)
                evd_spool_writer_putf(w, "file.clock", "%" PRId64, f->clock_offset_us);
        evd_spool_writer_putf(w, "file.ingested", "%" PRId64, f->ingested_us);
        evd_spool_writer_putf(w, "file.stored", "%" PRId64, f->stored_us);
        evd_spool_writer_put(w, "file.within_24h", f->within_24h ? "1" : "0");
        evd_spool_writer_putf(w, "file.size", "%" PRIu64, f->size);
        evd_spool_writer_put_hex(w, "file.sha256", f->sha256);
        evd_spool_writer_put_hex(w, "file.record_hash", f->record_hash);
        evd_spool_writer_put(w, "file.chain_record", f->chain_record);
        evd_spool_writer_put(w, "file.source_path", f->source_path);
        evd_spool_writer_put(w, "file.original_path", f->original_path);
        evd_spool_writer_put(w, "file.archive_path", f->archive_path);
        evd_spool_writer_put_hex(w, "file.archive_sha256", f->archive_sha256);
        evd_spool_writer_put(w, "file.archive_format", f->archive_format);
        evd_spool_writer_put_hex(w, "file.packets_sha256", f->packets_sha256);
        evd_spool_writer_put(w, "file.verdict", evd_verdict_to_string(f->verdict));
        evd_spool_writer_put(w, "file.confidentiality", f->confidentiality);
        evd_spool_writer_put(w, "file.retention", f->retention_class);
}

static void put_link(EvdSpoolWriter *w, const EvdDbFileLink *l)
{
        evd_spool_writer_put(w, "link.device", l->device_id);
        evd_spool_writer_putf(w, "link.file", "%" PRId64, l->file_id);
        evd_spool_writer_put(w, "link.relation", l->relation);
        if (l->other_file_id)
                evd_spool_writer_putf(w, "link.other", "%" PRId64, l->other_file_id);
        if (l->has_seq)
                evd_spool_writer_putf(w, "link.seq", "%" PRIu64, l->seq);
        evd_spool_writer_put_hex(w, "link.record_hash", l->record_hash);
        evd_spool_writer_put(w, "link.chain_record", l->chain_record);
        evd_spool_writer_put(w, "link.verdict", evd_verdict_to_string(l->verdict));
        evd_spool_writer_put(w, "link.detail", l->detail);
}

static void put_disc(EvdSpoolWriter *w, const EvdDbDisc *d)
{
        evd_spool_writer_putf(w, "disc.job", "%" PRId64, d->job_id);
        evd_spool_writer_putf(w, "disc.part", "%" PRId64, d->part_id);
        evd_spool_writer_putf(w, "disc.copy", "%u", d->copy);
        evd_spool_writer_put(w, "disc.outcome", d->verified ? "verified" : "failed");
        evd_spool_writer_put(w, "disc.drive", d->drive);
        evd_spool_writer_put(w, "disc.media", d->media);
        evd_spool_writer_put_hex(w, "disc.image_sha256", d->image_sha256);
        evd_spool_writer_putf(w, "disc.image_blocks", "%" PRIu64, d->image_blocks);
        evd_spool_writer_putf(w, "disc.checked", "%u", d->files_checked);
        evd_spool_writer_putf(w, "disc.bad", "%u", d->files_bad);
        evd_spool_writer_putf(w, "disc.burned", "%" PRId64, d->burned_us);
        evd_spool_writer_putf(w, "disc.verified_at", "%" PRId64, d->verified_us);
        evd_spool_writer_put(w, "disc.by", d->by);
        evd_spool_writer_put(w, "disc.detail", d->detail);
        evd_spool_writer_put(w, "disc.key", d->spool_key);
}

static void put_job_event(EvdSpoolWriter *w, const EvdDbDiscJobEvent *ev)
{
        evd_spool_writer_putf(w, "je.job", "%" PRId64, ev->job_id);
        evd_spool_writer_put(w, "je.state", ev->state);
        evd_spool_writer_putf(w, "je.part", "%u", ev->part);
        evd_spool_writer_putf(w, "je.copy", "%u", ev->copy);
        evd_spool_writer_put(w, "je.drive", ev->drive);
        evd_spool_writer_put(w, "je.by", ev->by);
        evd_spool_writer_put(w, "je.detail", ev->detail);
        evd_spool_writer_put(w, "je.key", ev->spool_key);
}

int evd_spool_entry_encode(const EvdSpoolEntryHeader *h, const EvdRecordEntry *e, char **ret_buf,
                           size_t *ret_len, EvdError *err)
{
        int r = evd_record_entry_check(e, err);
        if (r < 0)
                return r;
        EvdSpoolWriter w;
        if (evd_spool_writer_begin(&w) < 0)
                return -ENOMEM;
        evd_spool_writer_put(&w, "kind", evd_record_kind_to_string(e->kind));
        evd_spool_writer_put(&w, "docking", h->docking_key);
        evd_spool_writer_put(&w, "device", h->device);
        evd_spool_writer_put(&w, "db", h->db_tag);
        evd_spool_writer_putf(&w, "at", "%" PRId64, h->at_us);
        if (e->docking)
                put_docking(&w, e->docking);
        if (e->file)
                put_file(&w, e->file);
        put_findings(&w, e->findings, e->n_findings);
        put_events(&w, e->events, e->n_events);
        if (e->head) {
                evd_spool_writer_putf(&w, "h.seq", "%" PRIu64, e->head->seq);
                evd_spool_writer_putf(&w, "h.session", "%" PRIu64, e->head->session);
                evd_spool_writer_put_hex(&w, "h.hash", e->head->record_hash);
                if (e->head->has_end)
                        evd_spool_writer_putf(&w, "h.end", "%" PRId64, e->head->end_us);
        }
        if (e->result)
                put_result(&w, e->result);
        if (e->kind == EVD_RECORD_KIND_LINK)
                put_link(&w, e->link);
        if (e->kind == EVD_RECORD_KIND_DISC_JOB && e->disc)
                put_disc(&w, e->disc);
        if (e->kind == EVD_RECORD_KIND_DISC_JOB && e->job_event)
                put_job_event(&w, e->job_event);
        r = evd_spool_writer_end(&w, ret_buf, ret_len);
        if (r < 0)
                return evd_error_set_errno(err, r, "encoding a spool entry '%s'",
                                           evd_record_kind_to_string(e->kind));
        return 0;
}

/* ---- decoding: every field checked ----------------------------------------------------------------- */

#define BAD(what) evd_error_set(err, -EBADMSG, "field %s missing or invalid", what)

static int get_hex_opt(const EvdSpoolText *t, const char *key, uint8_t *out, const uint8_t **ret)
{
        const char *v = evd_spool_text_get(t, key);
        *ret = NULL;
        if (!v)
                return 0;
        if (evd_unhex(v, out, EVD_DIGEST_SIZE) < 0)
                return -EINVAL;
        *ret = out;
        return 0;
}

static int get_verdict(const char *s, EvdVerdict *ret)
{
        int v = evd_verdict_from_string(strna(s));
        if (v < 0)
                return v;
        *ret = (EvdVerdict)v;
        return 0;
}

static int decode_docking(EvdSpoolEntry *e, EvdError *err)
{
        const EvdSpoolText *t = &e->text;
        EvdDbDocking *d = &e->docking;
        d->device_id = evd_spool_text_get(t, "d.device");
        d->identity = evd_spool_text_get(t, "d.identity");
        d->transport = evd_spool_text_get(t, "d.transport");
        d->location = evd_spool_text_get(t, "d.location");
        if (evd_spool_text_get(t, "d.clock")) {
                if (spool_parse_i64(evd_spool_text_get(t, "d.clock"), &d->clock_offset_us) < 0)
                        return BAD("d.clock");
                d->has_clock_offset = true;
        }
        if (spool_parse_i64(evd_spool_text_get(t, "d.docked"), &d->docked_us) < 0)
                return BAD("d.docked");
        e->rec.docking = d;
        return 0;
}

static int decode_file(EvdSpoolEntry *e, EvdError *err)
{
        const EvdSpoolText *t = &e->text;
        EvdDbFile *f = &e->file;
        int64_t i64;
        f->device_id = evd_spool_text_get(t, "file.device");
        f->officer_id = evd_spool_text_get(t, "file.officer");
        if (evd_spool_text_get(t, "file.seq")) {
                if (spool_parse_u64(evd_spool_text_get(t, "file.seq"), &f->seq) < 0)
                        return BAD("file.seq");
                f->has_seq = true;
        }
        if (spool_parse_u64(evd_spool_text_get(t, "file.session"), &f->session) < 0)
                return BAD("file.session");
        f->method = evd_method_from_string(strna(evd_spool_text_get(t, "file.method")));
        f->case_number = evd_spool_text_get(t, "file.case");
        if (evd_spool_text_get(t, "file.recorded_start")) {
                if (spool_parse_i64(evd_spool_text_get(t, "file.recorded_start"), &f->recorded_start_us) <
                        0 ||
                    spool_parse_i64(evd_spool_text_get(t, "file.recorded_end"), &f->recorded_end_us) < 0)
                        return BAD("file.recorded_*");
                f->has_recorded = true;
        }
        if (spool_parse_i64(evd_spool_text_get(t, "file.tz"), &i64) < 0 || i64 < -1440 || i64 > 1440)
                return BAD("file.tz");
        f->tz_minutes = (int)i64;
        if (evd_spool_text_get(t, "file.clock")) {
                if (spool_parse_i64(evd_spool_text_get(t, "file.clock"), &f->clock_offset_us) < 0)
                        return BAD("file.clock");
                f->has_clock_offset = true;
        }
        if (spool_parse_i64(evd_spool_text_get(t, "file.ingested"), &f->ingested_us) < 0 ||
            spool_parse_i64(evd_spool_text_get(t, "file.stored"), &f->stored_us) < 0 ||
            spool_parse_u64(evd_spool_text_get(t, "file.size"), &f->size) < 0)
                return BAD("file.ingested/stored/size");
        f->within_24h = strcmp(strna(evd_spool_text_get(t, "file.within_24h")), "1") == 0;
        const uint8_t *sha = NULL;
        if (get_hex_opt(t, "file.sha256", e->sha256, &sha) < 0 || !sha)
                return BAD("file.sha256");
        f->sha256 = sha;
        if (get_hex_opt(t, "file.record_hash", e->record_hash, &f->record_hash) < 0 ||
            get_hex_opt(t, "file.archive_sha256", e->archive_sha256, &f->archive_sha256) < 0 ||
            get_hex_opt(t, "file.packets_sha256", e->packets_sha256, &f->packets_sha256) < 0)
                return BAD("file digests");
        f->chain_record = evd_spool_text_get(t, "file.chain_record");
        f->source_path = evd_spool_text_get(t, "file.source_path");
        f->original_path = evd_spool_text_get(t, "file.original_path");
        f->archive_path = evd_spool_text_get(t, "file.archive_path");
        f->archive_format = evd_spool_text_get(t, "file.archive_format");
        if (get_verdict(evd_spool_text_get(t, "file.verdict"), &f->verdict) < 0)
                return BAD("file.verdict");
        f->confidentiality = evd_spool_text_get(t, "file.confidentiality");
        f->retention_class = evd_spool_text_get(t, "file.retention");
        if (!f->device_id || !f->source_path || !f->original_path || !f->retention_class)
                return BAD("file.device/source_path/original_path/retention");
        e->rec.file = f;
        return 0;
}

static int decode_findings(EvdSpoolEntry *e, EvdError *err)
{
        const EvdSpoolText *t = &e->text;
        uint64_t n;
        if (spool_parse_u64(evd_spool_text_get(t, "n_findings"), &n) < 0 || n > EVD_RECORD_FINDINGS_MAX)
                return BAD("n_findings");
        e->findings = calloc(n ? n : 1, sizeof(EvdFinding));
        if (!e->findings)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                EvdFinding *f = &e->findings[i];
                if (get_verdict(evd_spool_text_get_at(t, "f", i, "verdict"), &f->verdict) < 0)
                        return BAD("finding verdict");
                f->seq = EVD_FINDING_NO_SEQ;
                const char *seq = evd_spool_text_get_at(t, "f", i, "seq");
                if (seq && (spool_parse_u64(seq, &f->seq) < 0 || f->seq == EVD_FINDING_NO_SEQ))
                        return BAD("finding seq");
                f->expected = evd_spool_text_get_at(t, "f", i, "expected");
                f->found = evd_spool_text_get_at(t, "f", i, "found");
                f->detail = evd_spool_text_get_at(t, "f", i, "detail");
        }
        e->rec.findings = e->findings;
        e->rec.n_findings = n;
        return 0;
}

static int decode_events(EvdSpoolEntry *e, EvdError *err)
{
        const EvdSpoolText *t = &e->text;
        uint64_t n;
        if (spool_parse_u64(evd_spool_text_get(t, "n_events"), &n) < 0 || n > EVD_RECORD_EVENTS_MAX)
                return BAD("n_events");
        for (size_t i = 0; i < n; i++) {
                e->events[i] = (EvdCustodyEntry){.kind = evd_spool_text_get_at(t, "e", i, "kind"),
                                                 .device_id = evd_spool_text_get_at(t, "e", i, "device"),
                                                 .detail = evd_spool_text_get_at(t, "e", i, "detail")};
                if (!e->events[i].kind)
                        return BAD("custody kind");
        }
        e->rec.events = e->events;
        e->rec.n_events = n;
        return 0;
}

static int decode_head(EvdSpoolEntry *e, EvdError *err)
{
        const EvdSpoolText *t = &e->text;
        EvdDbChainHead *h = &e->head;
        if (!evd_spool_text_get(t, "h.seq"))
                return 0;
        if (spool_parse_u64(evd_spool_text_get(t, "h.seq"), &h->seq) < 0 ||
            spool_parse_u64(evd_spool_text_get(t, "h.session"), &h->session) < 0 ||
            evd_unhex(strna(evd_spool_text_get(t, "h.hash")), h->record_hash, EVD_DIGEST_SIZE) < 0)
                return BAD("h.*");
        if (evd_spool_text_get(t, "h.end")) {
                if (spool_parse_i64(evd_spool_text_get(t, "h.end"), &h->end_us) < 0)
                        return BAD("h.end");
                h->has_end = true;
        }
        e->rec.head = h;
        return 0;
}

static int decode_result(EvdSpoolEntry *e, EvdError *err)
{
        const EvdSpoolText *t = &e->text;
        EvdDbDockingResult *r = &e->result;
        if (!evd_spool_text_get(t, "r.verdict"))
                return 0;
        uint64_t a, b, c, d;
        if (get_verdict(evd_spool_text_get(t, "r.verdict"), &r->verdict) < 0 ||
            spool_parse_u64(evd_spool_text_get(t, "r.seen"), &a) < 0 || a > UINT32_MAX ||
            spool_parse_u64(evd_spool_text_get(t, "r.ingested"), &b) < 0 || b > UINT32_MAX ||
            spool_parse_u64(evd_spool_text_get(t, "r.already"), &c) < 0 || c > UINT32_MAX ||
            spool_parse_u64(evd_spool_text_get(t, "r.quarantined"), &d) < 0 || d > UINT32_MAX ||
            spool_parse_i64(evd_spool_text_get(t, "r.finished"), &r->finished_us) < 0)
                return BAD("r.*");
        r->files_seen = (unsigned)a;
        r->files_ingested = (unsigned)b;
        r->files_already = (unsigned)c;
        r->files_quarantined = (unsigned)d;
        r->summary = evd_spool_text_get(t, "r.summary");
        e->rec.result = r;
        return 0;
}

/* an id of a database row: > 0 */
static int get_id(const EvdSpoolText *t, const char *key, int64_t *ret)
{
        return spool_parse_i64(evd_spool_text_get(t, key), ret) < 0 || *ret <= 0 ? -EINVAL : 0;
}

static int get_unsigned(const EvdSpoolText *t, const char *key, unsigned *ret)
{
        uint64_t v;
        if (spool_parse_u64(evd_spool_text_get(t, key), &v) < 0 || v > UINT32_MAX)
                return -EINVAL;
        *ret = (unsigned)v;
        return 0;
}

/* a spooled fact's key: 32 lower-case hex digits, or absent */
static bool spool_key_ok(const char *k)
{
        if (!k)
                return true;
        size_t n = strlen(k);
        for (size_t i = 0; i < n; i++)
                if (!(k[i] >= '0' && k[i] <= '9') && !(k[i] >= 'a' && k[i] <= 'f'))
                        return false;
        return n == 32;
}

static int decode_link(EvdSpoolEntry *e, EvdError *err)
{
        const EvdSpoolText *t = &e->text;
        EvdDbFileLink *l = &e->link;
        l->device_id = evd_spool_text_get(t, "link.device");
        l->relation = evd_spool_text_get(t, "link.relation");
        if (!l->device_id || !evd_device_id_valid(l->device_id) || !l->relation)
                return BAD("link.device/relation");
        if (get_id(t, "link.file", &l->file_id) < 0)
                return BAD("link.file");
        if (evd_spool_text_get(t, "link.other") && get_id(t, "link.other", &l->other_file_id) < 0)
                return BAD("link.other");
        if (evd_spool_text_get(t, "link.seq")) {
                if (spool_parse_u64(evd_spool_text_get(t, "link.seq"), &l->seq) < 0)
                        return BAD("link.seq");
                l->has_seq = true;
        }
        if (get_hex_opt(t, "link.record_hash", e->link_hash, &l->record_hash) < 0)
                return BAD("link.record_hash");
        if (get_verdict(evd_spool_text_get(t, "link.verdict"), &l->verdict) < 0)
                return BAD("link.verdict");
        l->chain_record = evd_spool_text_get(t, "link.chain_record");
        l->detail = evd_spool_text_get(t, "link.detail");
        e->rec.link = l;
        return 0;
}

static int decode_disc(EvdSpoolEntry *e, EvdError *err)
{
        const EvdSpoolText *t = &e->text;
        EvdDbDisc *d = &e->disc;
        const char *outcome = evd_spool_text_get(t, "disc.outcome");
        if (!outcome || (strcmp(outcome, "verified") != 0 && strcmp(outcome, "failed") != 0))
                return BAD("disc.outcome");
        d->verified = strcmp(outcome, "verified") == 0;
        if (get_id(t, "disc.job", &d->job_id) < 0 || get_id(t, "disc.part", &d->part_id) < 0 ||
            get_unsigned(t, "disc.copy", &d->copy) < 0 || d->copy == 0)
                return BAD("disc.job/part/copy");
        if (spool_parse_u64(evd_spool_text_get(t, "disc.image_blocks"), &d->image_blocks) < 0 ||
            get_unsigned(t, "disc.checked", &d->files_checked) < 0 ||
            get_unsigned(t, "disc.bad", &d->files_bad) < 0 ||
            spool_parse_i64(evd_spool_text_get(t, "disc.burned"), &d->burned_us) < 0 ||
            spool_parse_i64(evd_spool_text_get(t, "disc.verified_at"), &d->verified_us) < 0)
                return BAD("disc.image_blocks/checked/bad/burned/verified_at");
        if (get_hex_opt(t, "disc.image_sha256", e->image_sha256, &d->image_sha256) < 0)
                return BAD("disc.image_sha256");
        d->drive = evd_spool_text_get(t, "disc.drive");
        d->media = evd_spool_text_get(t, "disc.media");
        d->by = evd_spool_text_get(t, "disc.by");
        d->detail = evd_spool_text_get(t, "disc.detail");
        d->spool_key = evd_spool_text_get(t, "disc.key");
        if (!d->drive || !d->media || !d->by || !spool_key_ok(d->spool_key))
                return BAD("disc.drive/media/by/key");
        e->rec.disc = d;
        return 0;
}

static int decode_job_event(EvdSpoolEntry *e, EvdError *err)
{
        const EvdSpoolText *t = &e->text;
        EvdDbDiscJobEvent *ev = &e->job_event;
        if (get_id(t, "je.job", &ev->job_id) < 0 || get_unsigned(t, "je.part", &ev->part) < 0 ||
            get_unsigned(t, "je.copy", &ev->copy) < 0)
                return BAD("je.job/part/copy");
        ev->state = evd_spool_text_get(t, "je.state");
        ev->drive = evd_spool_text_get(t, "je.drive");
        ev->by = evd_spool_text_get(t, "je.by");
        ev->detail = evd_spool_text_get(t, "je.detail");
        ev->spool_key = evd_spool_text_get(t, "je.key");
        if (!ev->state || !ev->state[0] || !spool_key_ok(ev->spool_key))
                return BAD("je.state/key");
        e->rec.job_event = ev;
        return 0;
}

int evd_spool_entry_decode(char *buf, size_t len, EvdSpoolEntry *e, EvdError *err)
{
        *e = (EvdSpoolEntry){};
        int r = evd_spool_text_parse(buf, len, &e->text, err);
        if (r < 0)
                return r;
        const EvdSpoolText *t = &e->text;
        int k = evd_record_kind_from_string(evd_spool_text_get(t, "kind"));
        if (k < 0)
                return BAD("kind");
        e->rec.kind = (EvdRecordKind)k;
        EvdSpoolEntryHeader *h = &e->header;
        h->docking_key = evd_spool_text_get(t, "docking");
        if (!h->docking_key || !h->docking_key[0] || strlen(h->docking_key) >= EVD_SPOOL_KEY_SIZE ||
            strchr(h->docking_key, '/') || h->docking_key[0] == '.')
                return BAD("docking");
        h->device = evd_spool_text_get(t, "device");
        h->db_tag = evd_spool_text_get(t, "db");
        if (spool_parse_i64(evd_spool_text_get(t, "at"), &h->at_us) < 0)
                return BAD("at");
        e->rec.device_id = h->device;

        if (evd_spool_text_get(t, "d.transport")) {
                r = decode_docking(e, err);
                if (r < 0)
                        return r;
        }
        if (e->rec.kind == EVD_RECORD_KIND_FILE && (r = decode_file(e, err)) < 0)
                return r;
        if (e->rec.kind == EVD_RECORD_KIND_LINK && (r = decode_link(e, err)) < 0)
                return r;
        if (e->rec.kind == EVD_RECORD_KIND_DISC_JOB && evd_spool_text_get(t, "disc.outcome") &&
            (r = decode_disc(e, err)) < 0)
                return r;
        if (e->rec.kind == EVD_RECORD_KIND_DISC_JOB && evd_spool_text_get(t, "je.state") &&
            (r = decode_job_event(e, err)) < 0)
                return r;
        if ((r = decode_findings(e, err)) < 0 || (r = decode_events(e, err)) < 0 ||
            (r = decode_head(e, err)) < 0 || (r = decode_result(e, err)) < 0)
                return r;
        /* what the kind needs (a docking for BEGIN, a result for END, ...) */
        EvdError cerr = {};
        if (evd_record_entry_check(&e->rec, &cerr) < 0)
                return evd_error_set(err, -EBADMSG, "%s", cerr.msg);
        return 0;
}

void evd_spool_entry_clear(EvdSpoolEntry *e)
{
        evd_spool_text_clear(&e->text);
        free(e->findings);
        *e = (EvdSpoolEntry){};
}
