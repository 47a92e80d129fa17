/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The chain manifest, byte for byte as docs/chain-format.md specifies it.
 *
 * Parsing is strict in one simple way: after a line has been parsed field by field, it is formatted
 * again from the parsed values and must come out byte-identical. So there is exactly one valid spelling
 * of every record (no leading zeros, no optional escapes, no alternative time forms), and the bytes that
 * were signed are the bytes that a conforming writer produces. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "hash.h"
#include "manifest.h"
#include "text.h"
#include "signature.h"

#define MAGIC              "EVDCHAIN/1"
#define SIG_SEPARATOR      ";sig="
#define MAX_TEXT_VALUE     1024u /* file, case, by, reason: decoded bytes */
#define MAX_PUBLIC_KEY_DER 1024u /* an SPKI of our suites is < 100 bytes */
#define MAX_TZ_MINUTES     (14 * 60)

typedef enum Field {
        F_TYPE,
        F_SUITE,
        F_DEV,
        F_OFFICER,
        F_UNIT,
        F_SESSION,
        F_SEQ,
        F_START,
        F_END,
        F_METHOD,
        F_FILE,
        F_SIZE,
        F_HASH,
        F_CASE,
        F_DELETED,
        F_BY,
        F_REASON,
        F_PREV,
        F_KEY,
        F_PUB,
        _F_MAX,
} Field;

static const char *const field_names[_F_MAX] = {
    [F_TYPE] = "type",     [F_SUITE] = "suite",     [F_DEV] = "dev",         [F_OFFICER] = "officer",
    [F_UNIT] = "unit",     [F_SESSION] = "session", [F_SEQ] = "seq",         [F_START] = "start",
    [F_END] = "end",       [F_METHOD] = "method",   [F_FILE] = "file",       [F_SIZE] = "size",
    [F_HASH] = "hash",     [F_CASE] = "case",       [F_DELETED] = "deleted", [F_BY] = "by",
    [F_REASON] = "reason", [F_PREV] = "prev",       [F_KEY] = "key",         [F_PUB] = "pub",
};

#define COMMON_FIELDS F_TYPE, F_SUITE, F_DEV, F_OFFICER, F_UNIT, F_SESSION, F_SEQ, F_START
static const Field fields_gen[] = {COMMON_FIELDS, F_PREV, F_KEY, F_PUB, _F_MAX};
static const Field fields_seg[] = {COMMON_FIELDS, F_END,  F_METHOD, F_FILE, F_SIZE,
                                   F_HASH,        F_CASE, F_PREV,   F_KEY,  _F_MAX};
static const Field fields_end[] = {COMMON_FIELDS, F_END, F_PREV, F_KEY, _F_MAX};
static const Field fields_del[] = {COMMON_FIELDS, F_DELETED, F_BY, F_REASON, F_PREV, F_KEY, _F_MAX};

static const Field *const fields_by_type[_EVD_RECORD_TYPE_MAX] = {
    [EVD_RECORD_GENESIS] = fields_gen,
    [EVD_RECORD_SEGMENT] = fields_seg,
    [EVD_RECORD_END] = fields_end,
    [EVD_RECORD_DELETION] = fields_del,
};

static const char *const record_type_names[_EVD_RECORD_TYPE_MAX] = {
    [EVD_RECORD_GENESIS] = "GEN",
    [EVD_RECORD_SEGMENT] = "SEG",
    [EVD_RECORD_END] = "END",
    [EVD_RECORD_DELETION] = "DEL",
};

const char *evd_record_type_to_string(EvdRecordType t)
{
        if ((unsigned)t >= _EVD_RECORD_TYPE_MAX)
                return "?";
        return record_type_names[t];
}

static int record_type_from_string(const char *s, size_t n)
{
        for (unsigned i = 0; i < _EVD_RECORD_TYPE_MAX; i++)
                if (strlen(record_type_names[i]) == n && memcmp(s, record_type_names[i], n) == 0)
                        return (int)i;
        return -EINVAL;
}

/* ---- a bounded string builder ---- */

typedef struct Buf {
        char *p;
        size_t len, cap;
        size_t max; /* refuse to grow past this */
        bool overflow;
} Buf;

static bool buf_add(Buf *b, const void *data, size_t n)
{
        if (b->overflow)
                return false;
        if (b->len + n + 1 > b->max) {
                b->overflow = true;
                return false;
        }
        if (b->len + n + 1 > b->cap) {
                size_t cap = MAX(b->cap * 2, MAX((size_t)256, b->len + n + 1));
                cap = MIN(cap, b->max);
                char *p = realloc(b->p, cap);
                if (!p)
                        return false;
                b->p = p;
                b->cap = cap;
        }
        memcpy(b->p + b->len, data, n);
        b->len += n;
        b->p[b->len] = 0;
        return true;
}

static bool buf_adds(Buf *b, const char *s)
{
        return buf_add(b, s, strlen(s));
}

static bool needs_percent(unsigned char c)
{
        return c < 0x20 || c == 0x7f || c == '%' || c == ';' || c == '=';
}

static bool buf_add_encoded(Buf *b, const char *s)
{
        static const char hex[] = "0123456789ABCDEF";
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                if (needs_percent(*p)) {
                        char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
                        if (!buf_add(b, e, 3))
                                return false;
                } else if (!buf_add(b, p, 1))
                        return false;
        }
        return true;
}

/* ---- base64 (RFC 4648 standard alphabet, WITHOUT '=' padding: values never contain a raw '=') ---- */

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static bool buf_add_base64(Buf *b, const uint8_t *data, size_t n)
{
        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t)data[i] << 16;
                if (i + 1 < n)
                        v |= (uint32_t)data[i + 1] << 8;
                if (i + 2 < n)
                        v |= data[i + 2];
                char q[4] = {b64_alphabet[(v >> 18) & 63], b64_alphabet[(v >> 12) & 63],
                             b64_alphabet[(v >> 6) & 63], b64_alphabet[v & 63]};
                if (!buf_add(b, q, n - i >= 3 ? 4 : n - i + 1))
                        return false;
        }
        return true;
}

static int b64_value(char c)
{
        const char *p = c ? strchr(b64_alphabet, c) : NULL;
        return p ? (int)(p - b64_alphabet) : -1;
}

/* Strict decoding of unpadded base64. Non-zero unused bits in the last character are not checked here:
 * the canonical re-encoding comparison rejects them. */
static int base64_decode(const char *s, size_t n, size_t max, uint8_t **ret, size_t *ret_len)
{
        if (n == 0 || n % 4 == 1 || n / 4 * 3 > max + 2)
                return -EINVAL;
        _cleanup_free_ uint8_t *out = malloc(n / 4 * 3 + 3);
        if (!out)
                return -ENOMEM;
        size_t o = 0;
        uint32_t acc = 0;
        unsigned bits = 0;
        for (size_t i = 0; i < n; i++) {
                int v = b64_value(s[i]);
                if (v < 0)
                        return -EINVAL;
                acc = acc << 6 | (uint32_t)v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[o++] = (uint8_t)(acc >> bits);
                        acc &= (1u << bits) - 1;
                }
        }
        if (o == 0 || o > max)
                return -EINVAL;
        *ret = steal_ptr(&out);
        *ret_len = o;
        return 0;
}

/* ---- time ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (era arithmetic, valid for any year). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
        y -= m <= 2;
        int64_t era = (y >= 0 ? y : y - 399) / 400;
        unsigned yoe = (unsigned)(y - era * 400);
        unsigned mp = m > 2 ? m - 3 : m + 9;
        unsigned doy = (153 * mp + 2) / 5 + d - 1;
        unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *ret_y, unsigned *ret_m, unsigned *ret_d)
{
        z += 719468;
        int64_t era = (z >= 0 ? z : z - 146096) / 146097;
        unsigned doe = (unsigned)(z - era * 146097);
        unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        unsigned mp = (5 * doy + 2) / 153;
        unsigned d = doy - (153 * mp + 2) / 5 + 1;
        unsigned m = mp < 10 ? mp + 3 : mp - 9;
        *ret_y = (int64_t)yoe + era * 400 + (m <= 2);
        *ret_m = m;
        *ret_d = d;
}

static bool is_leap(int64_t y)
{
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
        static const unsigned dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

static int64_t floor_div(int64_t a, int64_t b)
{
        int64_t q = a / b;
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

char *evd_time_format(int64_t utc_us, int tz_minutes, char buf[static EVD_TIME_STRLEN + 1])
{
        int64_t local_us = utc_us + (int64_t)tz_minutes * 60 * 1000000;
        int64_t days = floor_div(local_us, INT64_C(86400000000));
        int64_t rest = local_us - days * INT64_C(86400000000);
        int64_t y;
        unsigned m, d;
        civil_from_days(days, &y, &m, &d);
        unsigned secs = (unsigned)(rest / 1000000), us = (unsigned)(rest % 1000000);
        char frac[8] = "";
        if (us != 0)
                snprintf(frac, sizeof frac, ".%06u", us);
        int tz = tz_minutes < 0 ? -tz_minutes : tz_minutes;
        snprintf(buf, EVD_TIME_STRLEN + 1, "%04lld-%02u-%02uT%02u:%02u:%02u%s%c%02d:%02d", (long long)y, m,
                 d, secs / 3600, secs / 60 % 60, secs % 60, frac, tz_minutes < 0 ? '-' : '+', tz / 60,
                 tz % 60);
        return buf;
}

static bool parse_digits(const char *s, unsigned n, unsigned *ret)
{
        unsigned v = 0;
        for (unsigned i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return false;
                v = v * 10 + (unsigned)(s[i] - '0');
        }
        *ret = v;
        return true;
}

int evd_time_parse(const char *s, int64_t *ret_utc_us, int *ret_tz_minutes)
{
        /* YYYY-MM-DDTHH:MM:SS[.ffffff]+HH:MM */
        size_t n = strlen(s);
        if (n != 25 && n != 32)
                return -EINVAL;
        unsigned y, mo, d, h, mi, se, us = 0, tzh, tzm;
        if (!parse_digits(s, 4, &y) || s[4] != '-' || !parse_digits(s + 5, 2, &mo) || s[7] != '-' ||
            !parse_digits(s + 8, 2, &d) || s[10] != 'T' || !parse_digits(s + 11, 2, &h) || s[13] != ':' ||
            !parse_digits(s + 14, 2, &mi) || s[16] != ':' || !parse_digits(s + 17, 2, &se))
                return -EINVAL;
        const char *tz = s + 19;
        if (n == 32) {
                if (s[19] != '.' || !parse_digits(s + 20, 6, &us))
                        return -EINVAL;
                tz = s + 26;
        }
        if ((tz[0] != '+' && tz[0] != '-') || !parse_digits(tz + 1, 2, &tzh) || tz[3] != ':' ||
            !parse_digits(tz + 4, 2, &tzm))
                return -EINVAL;
        if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
            se > 59 || tzm > 59)
                return -EINVAL;
        int tz_minutes = (int)(tzh * 60 + tzm);
        if (tz_minutes > MAX_TZ_MINUTES)
                return -EINVAL;
        if (tz[0] == '-')
                tz_minutes = -tz_minutes;
        int64_t local_s = days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + se;
        *ret_utc_us = (local_s - (int64_t)tz_minutes * 60) * 1000000 + us;
        *ret_tz_minutes = tz_minutes;
        return 0;
}

/* ---- value checks ---- */

static bool valid_utf8(const char *s)
{
        const unsigned char *p = (const unsigned char *)s;
        while (*p) {
                unsigned c = *p, n;
                uint32_t cp;
                if (c < 0x80) {
                        p++;
                        continue;
                } else if (c >= 0xc2 && c <= 0xdf) {
                        n = 1;
                        cp = c & 0x1f;
                } else if (c >= 0xe0 && c <= 0xef) {
                        n = 2;
                        cp = c & 0x0f;
                } else if (c >= 0xf0 && c <= 0xf4) {
                        n = 3;
                        cp = c & 0x07;
                } else
                        return false;
                for (unsigned i = 1; i <= n; i++) {
                        if ((p[i] & 0xc0) != 0x80)
                                return false;
                        cp = cp << 6 | (p[i] & 0x3f);
                }
                if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
                    (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                p += n + 1;
        }
        return true;
}

static bool all_chars(const char *s, size_t n, const char *set)
{
        if (strlen(s) != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!s[i] || !strchr(set, s[i]))
                        return false;
        return true;
}

#define ALNUM  "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#define DIGITS "0123456789"

static bool valid_device_id(const char *s)
{
        return s && all_chars(s, 7, ALNUM);
}

static bool valid_officer_id(const char *s)
{
        return s && all_chars(s, 6, DIGITS);
}

static bool valid_unit_code(const char *s)
{
        return !s || all_chars(s, 12, ALNUM);
}

static bool valid_key_id(const char *s)
{
        return s && all_chars(s, EVD_KEY_ID_STRLEN, "0123456789abcdef");
}

static bool has_control_bytes(const char *s)
{
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        return true;
        return false;
}

/* A relative '/'-separated path without empty, "." or ".." components or control bytes. */
static bool valid_volume_path(const char *s)
{
        if (!s || !*s || strlen(s) > MAX_TEXT_VALUE || has_control_bytes(s) || !valid_utf8(s))
                return false;
        const char *p = s;
        for (;;) {
                const char *slash = strchr(p, '/');
                size_t n = slash ? (size_t)(slash - p) : strlen(p);
                if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
                        return false;
                if (!slash)
                        return true;
                p = slash + 1;
        }
}

static bool valid_text(const char *s, bool allow_empty)
{
        if (!s)
                return allow_empty;
        return (allow_empty || *s) && strlen(s) <= MAX_TEXT_VALUE && valid_utf8(s);
}

/* ---- formatting ---- */

static bool add_field(Buf *b, Field f, const EvdRecord *rec)
{
        char tmp[EVD_TIME_STRLEN + 1 > 2 * EVD_HASH_SIZE + 1 ? EVD_TIME_STRLEN + 1 : 2 * EVD_HASH_SIZE + 1];
        if (!buf_adds(b, ";") || !buf_adds(b, field_names[f]) || !buf_adds(b, "="))
                return false;
        switch (f) {
        case F_TYPE:
                return buf_adds(b, record_type_names[rec->type]);
        case F_SUITE:
                return buf_adds(b, evd_suite_to_string(rec->suite));
        case F_DEV:
                return buf_adds(b, rec->device_id);
        case F_OFFICER:
                return buf_adds(b, rec->officer_id);
        case F_UNIT:
                return rec->unit_code ? buf_adds(b, rec->unit_code) : true;
        case F_SESSION:
        case F_SEQ:
        case F_SIZE:
        case F_DELETED: {
                uint64_t v = f == F_SESSION ? rec->session
                             : f == F_SEQ   ? rec->seq
                             : f == F_SIZE  ? rec->size
                                            : rec->deleted_seq;
                snprintf(tmp, sizeof tmp, "%" PRIu64, v);
                return buf_adds(b, tmp);
        }
        case F_START:
                return buf_adds(b, evd_time_format(rec->start_us, rec->tz_minutes, tmp));
        case F_END:
                return buf_adds(b, evd_time_format(rec->end_us, rec->tz_minutes, tmp));
        case F_METHOD:
                return buf_adds(b, evd_method_to_string(rec->method));
        case F_FILE:
                return buf_add_encoded(b, rec->file);
        case F_HASH:
                return buf_adds(b, evd_hex(rec->file_hash, EVD_HASH_SIZE, tmp));
        case F_CASE:
                return rec->case_number ? buf_add_encoded(b, rec->case_number) : true;
        case F_BY:
                return buf_add_encoded(b, rec->authorised_by);
        case F_REASON:
                return rec->reason ? buf_add_encoded(b, rec->reason) : true;
        case F_PREV:
                return buf_adds(b, evd_hex(rec->prev_hash, EVD_HASH_SIZE, tmp));
        case F_KEY:
                return buf_adds(b, rec->key_id);
        case F_PUB:
                return buf_add_base64(b, rec->public_key, rec->public_key_len);
        default:
                return false;
        }
}

/* Checks the values a writer is about to format (the parser checks the same through parse_value). */
static int record_check(const EvdRecord *rec, EvdError *err)
{
        if ((unsigned)rec->type >= _EVD_RECORD_TYPE_MAX)
                return evd_error_set(err, -EINVAL, "record type %d out of range", (int)rec->type);
        if ((unsigned)rec->suite >= _EVD_SUITE_MAX)
                return evd_error_set(err, -EINVAL, "suite %d out of range", (int)rec->suite);
        if (!valid_device_id(rec->device_id))
                return evd_error_set(err, -EINVAL, "device id '%s' is not 7 letters/digits",
                                     strna(rec->device_id));
        if (!valid_officer_id(rec->officer_id))
                return evd_error_set(err, -EINVAL, "officer id '%s' is not 6 digits",
                                     strna(rec->officer_id));
        if (!valid_unit_code(rec->unit_code) || (rec->unit_code && !*rec->unit_code))
                return evd_error_set(err, -EINVAL, "unit code '%s' is not 12 letters/digits (or NULL)",
                                     rec->unit_code);
        if (!valid_key_id(rec->key_id))
                return evd_error_set(err, -EINVAL, "key id '%s' is not %u lower-case hex digits",
                                     strna(rec->key_id), EVD_KEY_ID_STRLEN);
        if (rec->tz_minutes < -MAX_TZ_MINUTES || rec->tz_minutes > MAX_TZ_MINUTES)
                return evd_error_set(err, -EINVAL, "UTC offset %d minutes out of range", rec->tz_minutes);
        char t[EVD_TIME_STRLEN + 1];
        int64_t back;
        int tz;
        if (evd_time_parse(evd_time_format(rec->start_us, rec->tz_minutes, t), &back, &tz) < 0 ||
            (rec->type != EVD_RECORD_GENESIS && rec->type != EVD_RECORD_DELETION &&
             evd_time_parse(evd_time_format(rec->end_us, rec->tz_minutes, t), &back, &tz) < 0))
                return evd_error_set(err, -EINVAL, "time out of range (years 1970-9999)");
        switch (rec->type) {
        case EVD_RECORD_GENESIS:
                if (!rec->public_key || rec->public_key_len == 0 || rec->public_key_len > MAX_PUBLIC_KEY_DER)
                        return evd_error_set(err, -EINVAL, "genesis record without public key");
                break;
        case EVD_RECORD_SEGMENT:
                if (rec->method == EVD_METHOD_UNKNOWN || (unsigned)rec->method >= _EVD_METHOD_MAX)
                        return evd_error_set(err, -EINVAL, "segment without method");
                if (!valid_volume_path(rec->file))
                        return evd_error_set(err, -EINVAL, "segment file '%s' is not a safe relative path",
                                             strna(rec->file));
                if (rec->case_number && !evd_text_valid(rec->case_number, EVD_TEXT_MAX_BYTES))
                        return evd_error_set(err, -EINVAL, "case number is not UTF-8 text");
                break;
        case EVD_RECORD_DELETION:
                if (!valid_text(rec->authorised_by, false))
                        return evd_error_set(err, -EINVAL, "deletion without authorised_by");
                if (!valid_text(rec->reason, true))
                        return evd_error_set(err, -EINVAL, "deletion reason is not UTF-8 text");
                break;
        default:
                break;
        }
        if (rec->signature && (rec->signature_len == 0 || rec->signature_len > EVD_SIGNATURE_MAX))
                return evd_error_set(err, -EINVAL, "signature length %zu out of range", rec->signature_len);
        return 0;
}

static int format_tbs(const EvdRecord *rec, Buf *b, EvdError *err)
{
        int r = record_check(rec, err);
        if (r < 0)
                return r;
        *b = (Buf){.max = EVD_MANIFEST_MAX_LINE + 1};
        if (!buf_adds(b, MAGIC))
                goto fail;
        for (const Field *f = fields_by_type[rec->type]; *f != _F_MAX; f++)
                if (!add_field(b, *f, rec))
                        goto fail;
        return 0;
fail:
        free(b->p);
        b->p = NULL;
        if (b->overflow)
                return evd_error_set(err, -E2BIG, "record longer than %u bytes", EVD_MANIFEST_MAX_LINE);
        return -ENOMEM;
}

int evd_record_canonicalize(EvdRecord *rec, EvdError *err)
{
        Buf b = {};
        int r = format_tbs(rec, &b, err);
        if (r < 0)
                return r;
        uint8_t digest[EVD_HASH_SIZE];
        r = evd_hash_buffer(evd_suite_hash(rec->suite), b.p, b.len, digest);
        if (r < 0) {
                free(b.p);
                return evd_error_set(err, r, "cannot hash record");
        }
        free(rec->tbs);
        rec->tbs = b.p;
        rec->tbs_len = b.len;
        memcpy(rec->record_hash, digest, EVD_HASH_SIZE);
        return 0;
}

int evd_record_sign(EvdRecord *rec, EVP_PKEY *key, EvdError *err)
{
        EvdSuite suite;
        if (evd_key_suite(key, &suite) < 0 || suite != rec->suite)
                return evd_error_set(err, -EKEYREJECTED, "key does not belong to suite %s",
                                     strna(evd_suite_to_string(rec->suite)));
        char id[EVD_KEY_ID_STRLEN + 1];
        int r = evd_key_id(key, id);
        if (r < 0)
                return evd_error_set(err, r, "cannot compute key id");
        char *key_id = strdup(id);
        if (!key_id)
                return -ENOMEM;
        free(rec->key_id);
        rec->key_id = key_id;
        if (rec->type == EVD_RECORD_GENESIS && !rec->public_key) {
                r = evd_key_public_to_der(key, &rec->public_key, &rec->public_key_len, err);
                if (r < 0)
                        return r;
        }
        r = evd_record_canonicalize(rec, err);
        if (r < 0)
                return r;
        uint8_t *sig = NULL;
        size_t sig_len = 0;
        r = evd_signature_sign(rec->suite, key, rec->tbs, rec->tbs_len, &sig, &sig_len, err);
        if (r < 0)
                return r;
        free(rec->signature);
        rec->signature = sig;
        rec->signature_len = sig_len;
        return 0;
}

static int format_line(const EvdRecord *rec, bool newline, Buf *ret, EvdError *err)
{
        Buf b = {};
        int r = format_tbs(rec, &b, err);
        if (r < 0)
                return r;
        if (rec->signature &&
            (!buf_adds(&b, SIG_SEPARATOR) || !buf_add_base64(&b, rec->signature, rec->signature_len))) {
                free(b.p);
                if (b.overflow)
                        return evd_error_set(err, -E2BIG, "record longer than %u bytes",
                                             EVD_MANIFEST_MAX_LINE);
                return -ENOMEM;
        }
        if (b.len > EVD_MANIFEST_MAX_LINE) {
                free(b.p);
                return evd_error_set(err, -E2BIG, "record longer than %u bytes", EVD_MANIFEST_MAX_LINE);
        }
        if (newline) {
                b.max++;
                if (!buf_adds(&b, "\n")) {
                        free(b.p);
                        return -ENOMEM;
                }
        }
        *ret = b;
        return 0;
}

int evd_record_to_line(const EvdRecord *rec, char **ret_line, EvdError *err)
{
        Buf b = {};
        int r = format_line(rec, true, &b, err);
        if (r < 0)
                return r;
        *ret_line = b.p;
        return 0;
}

void evd_record_clear(EvdRecord *rec)
{
        if (!rec)
                return;
        free(rec->device_id);
        free(rec->officer_id);
        free(rec->unit_code);
        free(rec->file);
        free(rec->key_id);
        free(rec->case_number);
        free(rec->authorised_by);
        free(rec->reason);
        free(rec->public_key);
        free(rec->signature);
        free(rec->tbs);
        *rec = (EvdRecord){};
}

static int dup_mem(void **dst, const void *src, size_t n)
{
        *dst = NULL;
        if (!src)
                return 0;
        *dst = malloc(n ? n : 1);
        if (!*dst)
                return -ENOMEM;
        memcpy(*dst, src, n);
        return 0;
}

static int dup_str(char **dst, const char *src)
{
        return dup_mem((void **)dst, src, src ? strlen(src) + 1 : 0);
}

int evd_record_copy(EvdRecord *dst, const EvdRecord *src)
{
        EvdRecord c = *src;
        c.device_id = c.officer_id = c.unit_code = c.file = c.key_id = c.case_number = c.authorised_by =
            c.reason = c.tbs = NULL;
        c.public_key = c.signature = NULL;
        if (dup_str(&c.device_id, src->device_id) < 0 || dup_str(&c.officer_id, src->officer_id) < 0 ||
            dup_str(&c.unit_code, src->unit_code) < 0 || dup_str(&c.file, src->file) < 0 ||
            dup_str(&c.key_id, src->key_id) < 0 || dup_str(&c.case_number, src->case_number) < 0 ||
            dup_str(&c.authorised_by, src->authorised_by) < 0 || dup_str(&c.reason, src->reason) < 0 ||
            dup_mem((void **)&c.tbs, src->tbs, src->tbs ? src->tbs_len + 1 : 0) < 0 ||
            dup_mem((void **)&c.public_key, src->public_key, src->public_key_len) < 0 ||
            dup_mem((void **)&c.signature, src->signature, src->signature_len) < 0) {
                evd_record_clear(&c);
                return -ENOMEM;
        }
        *dst = c;
        return 0;
}

/* ---- parsing ---- */

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

/* Decodes %XX escapes into a new NUL-terminated string. %00 is refused (strings are C strings). */
static int percent_decode(const char *s, size_t n, char **ret)
{
        _cleanup_free_ char *out = malloc(n + 1);
        if (!out)
                return -ENOMEM;
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
                if (s[i] != '%') {
                        out[o++] = s[i];
                        continue;
                }
                if (i + 2 >= n)
                        return -EINVAL;
                int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
                if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                        return -EINVAL;
                out[o++] = (char)(hi << 4 | lo);
                i += 2;
        }
        out[o] = 0;
        *ret = steal_ptr(&out);
        return 0;
}

static int parse_u64(const char *s, uint64_t *ret)
{
        if (!*s || strlen(s) > 20)
                return -EINVAL;
        uint64_t v = 0;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                unsigned d = (unsigned)(*p - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        *ret = v;
        return 0;
}

typedef struct ParseState {
        EvdRecord *rec;
        bool have_start_tz;
} ParseState;

/* Parses one field value (already percent-decoded) into the record. Returns a static message on error. */
static const char *parse_value(ParseState *st, Field f, char **value)
{
        EvdRecord *rec = st->rec;
        const char *v = *value;
        int64_t t;
        int tz;
        switch (f) {
        case F_SUITE: {
                int s = evd_suite_from_string(v);
                if (s < 0)
                        return "unknown suite";
                rec->suite = (EvdSuite)s;
                return NULL;
        }
        case F_DEV:
                if (!valid_device_id(v))
                        return "is not 7 letters/digits";
                rec->device_id = steal_ptr(value);
                return NULL;
        case F_OFFICER:
                if (!valid_officer_id(v))
                        return "is not 6 digits";
                rec->officer_id = steal_ptr(value);
                return NULL;
        case F_UNIT:
                if (!*v)
                        return NULL;
                if (!valid_unit_code(v))
                        return "is not empty or 12 letters/digits";
                rec->unit_code = steal_ptr(value);
                return NULL;
        case F_SESSION:
                return parse_u64(v, &rec->session) < 0 ? "is not a number" : NULL;
        case F_SEQ:
                return parse_u64(v, &rec->seq) < 0 ? "is not a number" : NULL;
        case F_SIZE:
                return parse_u64(v, &rec->size) < 0 ? "is not a number" : NULL;
        case F_DELETED:
                return parse_u64(v, &rec->deleted_seq) < 0 ? "is not a number" : NULL;
        case F_START:
                if (evd_time_parse(v, &t, &tz) < 0)
                        return "is not a time like 2026-11-22T08:00:00+08:00";
                rec->start_us = rec->end_us = t;
                rec->tz_minutes = tz;
                st->have_start_tz = true;
                return NULL;
        case F_END:
                if (evd_time_parse(v, &t, &tz) < 0)
                        return "is not a time like 2026-11-22T08:00:00+08:00";
                if (!st->have_start_tz || tz != rec->tz_minutes)
                        return "has a UTC offset different from start";
                rec->end_us = t;
                return NULL;
        case F_METHOD:
                rec->method = evd_method_from_string(v);
                return rec->method == EVD_METHOD_UNKNOWN ? "is not video, audio or photo" : NULL;
        case F_FILE:
                if (!valid_volume_path(v))
                        return "is not a safe relative UTF-8 path";
                rec->file = steal_ptr(value);
                return NULL;
        case F_HASH:
                if (!all_chars(v, 2 * EVD_HASH_SIZE, "0123456789abcdef") ||
                    evd_unhex(v, rec->file_hash, EVD_HASH_SIZE) < 0)
                        return "is not 64 lower-case hex digits";
                return NULL;
        case F_PREV:
                if (!all_chars(v, 2 * EVD_HASH_SIZE, "0123456789abcdef") ||
                    evd_unhex(v, rec->prev_hash, EVD_HASH_SIZE) < 0)
                        return "is not 64 lower-case hex digits";
                return NULL;
        case F_CASE: /* the archive tagger applies the same rule (text.h): a case number it carries */
                if (!evd_text_valid(v, EVD_TEXT_MAX_BYTES))
                        return "is not UTF-8 text";
                if (*v)
                        rec->case_number = steal_ptr(value);
                return NULL;
        case F_BY:
                if (!valid_text(v, false))
                        return "is empty or not UTF-8 text";
                rec->authorised_by = steal_ptr(value);
                return NULL;
        case F_REASON:
                if (!valid_text(v, true))
                        return "is not UTF-8 text";
                if (*v)
                        rec->reason = steal_ptr(value);
                return NULL;
        case F_KEY:
                if (!valid_key_id(v))
                        return "is not 32 lower-case hex digits";
                rec->key_id = steal_ptr(value);
                return NULL;
        case F_PUB:
                if (base64_decode(v, strlen(v), MAX_PUBLIC_KEY_DER, &rec->public_key, &rec->public_key_len) <
                    0)
                        return "is not base64";
                return NULL;
        default:
                return "cannot be parsed";
        }
}

static int field_from_name(const char *s, size_t n)
{
        for (unsigned i = 0; i < _F_MAX; i++)
                if (strlen(field_names[i]) == n && memcmp(field_names[i], s, n) == 0)
                        return (int)i;
        return -1;
}

/* Ed25519 signatures are 64 bytes; ECDSA and SM2 ones a DER SEQUENCE with a short-form length. A cut or
 * padded signature is a broken line rather than a wrong signature. */
static bool signature_shape_ok(EvdSuite suite, const uint8_t *sig, size_t len)
{
        if (suite == EVD_SUITE_ED25519_SHA256)
                return len == 64;
        return len >= 8 && len <= 2 + 127 && sig[0] == 0x30 && sig[1] == len - 2;
}

#define LINE_ERROR(...) (evd_error_set(err, -EBADMSG, __VA_ARGS__))

static int parse_line(const char *line, size_t len, EvdRecord *ret_rec, EvdError *err)
{
        _cleanup_(evd_record_clear) EvdRecord rec = {};
        ParseState st = {.rec = &rec};

        if (len > EVD_MANIFEST_MAX_LINE)
                return LINE_ERROR("line longer than %u bytes", EVD_MANIFEST_MAX_LINE);
        if (len == 0)
                return LINE_ERROR("empty line");
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] == 0x7f)
                        return LINE_ERROR("control byte 0x%02x at column %zu", (unsigned char)line[i],
                                          i + 1);
        if (len < strlen(MAGIC) || memcmp(line, MAGIC, strlen(MAGIC)) != 0 ||
            (len > strlen(MAGIC) && line[strlen(MAGIC)] != ';'))
                return LINE_ERROR("line does not start with '" MAGIC ";'");

        /* tbs ends at ";sig=": values never contain a raw ';' or '=', so the first one is the separator. */
        size_t tbs_len = len;
        const char *sig = memmem(line, len, SIG_SEPARATOR, strlen(SIG_SEPARATOR));
        if (sig)
                tbs_len = (size_t)(sig - line);

        const Field *order = NULL;
        size_t pos = strlen(MAGIC);
        unsigned index = 0;
        bool seen[_F_MAX] = {};
        while (pos < tbs_len) {
                /* pos is at a ';' */
                const char *name = line + pos + 1;
                const char *end = memchr(name, ';', tbs_len - pos - 1);
                size_t field_len = end ? (size_t)(end - name) : tbs_len - pos - 1;
                const char *eq = memchr(name, '=', field_len);
                if (!eq)
                        return LINE_ERROR("field %u has no '='", index + 1);
                size_t name_len = (size_t)(eq - name);
                const char *raw = eq + 1;
                size_t raw_len = field_len - name_len - 1;
                if (memchr(raw, '=', raw_len))
                        return LINE_ERROR("field '%.*s' has an unencoded '='", (int)name_len, name);
                int f = field_from_name(name, name_len);
                if (f < 0)
                        return LINE_ERROR("unknown field '%.*s'", (int)MIN(name_len, 32), name);
                if (seen[f])
                        return LINE_ERROR("duplicate field '%s'", field_names[f]);
                seen[f] = true;
                if (index == 0) {
                        if (f != F_TYPE)
                                return LINE_ERROR("first field is '%s', not 'type'", field_names[f]);
                        int t = record_type_from_string(raw, raw_len);
                        if (t < 0)
                                return LINE_ERROR("unknown record type '%.*s'", (int)MIN(raw_len, 16), raw);
                        rec.type = (EvdRecordType)t;
                        order = fields_by_type[t];
                } else {
                        if (order[index] == _F_MAX)
                                return LINE_ERROR("unexpected field '%s' in a %s record", field_names[f],
                                                  record_type_names[rec.type]);
                        if ((Field)f != order[index])
                                return LINE_ERROR("field '%s' where '%s' belongs (%s record)",
                                                  field_names[f], field_names[order[index]],
                                                  record_type_names[rec.type]);
                        _cleanup_free_ char *value = NULL;
                        if (percent_decode(raw, raw_len, &value) < 0)
                                return LINE_ERROR("field '%s' has a bad %%-escape", field_names[f]);
                        const char *problem = parse_value(&st, (Field)f, &value);
                        if (problem)
                                return LINE_ERROR("field '%s' %s", field_names[f], problem);
                }
                index++;
                pos += 1 + field_len;
        }
        if (!order)
                return LINE_ERROR("line has no fields");
        if (order[index] != _F_MAX)
                return LINE_ERROR("missing field '%s' in a %s record", field_names[order[index]],
                                  record_type_names[rec.type]);

        if (sig) {
                const char *b64 = sig + strlen(SIG_SEPARATOR);
                size_t b64_len = len - tbs_len - strlen(SIG_SEPARATOR);
                if (memchr(b64, ';', b64_len))
                        return LINE_ERROR("field 'sig' is not the last field");
                if (base64_decode(b64, b64_len, EVD_SIGNATURE_MAX, &rec.signature, &rec.signature_len) < 0)
                        return LINE_ERROR("field 'sig' is not base64 of at most %u bytes",
                                          EVD_SIGNATURE_MAX);
                if (!signature_shape_ok(rec.suite, rec.signature, rec.signature_len))
                        return LINE_ERROR("field 'sig' does not have the shape of a %s signature",
                                          evd_suite_to_string(rec.suite));
        }

        /* One spelling per record: formatting the parsed values must give back the same bytes. */
        Buf canon = {};
        EvdError format_err = {};
        int r = format_line(&rec, false, &canon, &format_err);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return LINE_ERROR("record is not valid: %s", format_err.msg);
        bool same = canon.len == len && memcmp(canon.p, line, len) == 0;
        free(canon.p);
        if (!same)
                return LINE_ERROR(
                    "line is not in canonical form (escapes, numbers or times spelled differently)");

        rec.tbs = strndup(line, tbs_len);
        if (!rec.tbs)
                return -ENOMEM;
        rec.tbs_len = tbs_len;
        r = evd_hash_buffer(evd_suite_hash(rec.suite), rec.tbs, rec.tbs_len, rec.record_hash);
        if (r < 0)
                return r;
        *ret_rec = rec;
        rec = (EvdRecord){};
        return 0;
}

int evd_record_parse_line(const char *line, size_t len, EvdRecord *ret_rec, EvdError *err)
{
        return parse_line(line, len, ret_rec, err);
}

void evd_manifest_free(EvdManifest *m)
{
        if (!m)
                return;
        for (size_t i = 0; i < m->n_records; i++)
                evd_record_clear(&m->records[i]);
        free(m->records);
        for (size_t i = 0; i < m->n_errors; i++) {
                free(m->errors[i].message);
                free(m->errors[i].file);
        }
        free(m->errors);
        free(m);
}

/* The "file" value of a line that did not parse, so that its file can still be named in the report. */
static char *line_error_file(const char *line, size_t len)
{
        const char *p = memmem(line, len, ";file=", 6);
        if (!p)
                return NULL;
        p += 6;
        const char *end = memchr(p, ';', (size_t)(line + len - p));
        size_t n = end ? (size_t)(end - p) : (size_t)(line + len - p);
        char *decoded = NULL;
        if (percent_decode(p, n, &decoded) < 0)
                return strndup(p, n);
        if (!*decoded) {
                free(decoded);
                return NULL;
        }
        return decoded;
}

static int grow(void **array, size_t *cap, size_t n, size_t elem)
{
        if (n < *cap)
                return 0;
        size_t c = MAX((size_t)16, *cap * 2);
        void *p = reallocarray(*array, c, elem);
        if (!p)
                return -ENOMEM;
        memset((char *)p + *cap * elem, 0, (c - *cap) * elem);
        *array = p;
        *cap = c;
        return 0;
}

int evd_manifest_parse(const void *buf, size_t len, EvdManifest **ret_manifest)
{
        if (len > EVD_MANIFEST_MAX_BYTES)
                return -EFBIG;
        _cleanup_(evd_manifest_freep) EvdManifest *m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        size_t cap_records = 0, cap_errors = 0;
        const char *p = buf, *end = p + len;
        unsigned line_no = 0;
        while (p < end) {
                if (++line_no > EVD_MANIFEST_MAX_LINES)
                        return -EFBIG;
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
                EvdRecord rec = {};
                EvdError err = {};
                int r;
                if (!nl)
                        r = evd_error_set(&err, -EBADMSG, "last line has no newline (incomplete write)");
                else
                        r = parse_line(p, n, &rec, &err);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        if (grow((void **)&m->errors, &cap_errors, m->n_errors, sizeof *m->errors) < 0)
                                return -ENOMEM;
                        EvdManifestLineError *e = &m->errors[m->n_errors];
                        e->line = line_no;
                        e->message = strdup(err.msg[0] ? err.msg : "line does not parse");
                        e->file = line_error_file(p, MIN(n, (size_t)EVD_MANIFEST_MAX_LINE));
                        m->n_errors++;
                        if (!e->message)
                                return -ENOMEM;
                } else {
                        if (grow((void **)&m->records, &cap_records, m->n_records, sizeof *m->records) < 0) {
                                evd_record_clear(&rec);
                                return -ENOMEM;
                        }
                        rec.line = line_no;
                        m->records[m->n_records++] = rec;
                }
                p = nl ? nl + 1 : end;
        }
        *ret_manifest = steal_ptr(&m);
        return 0;
}
