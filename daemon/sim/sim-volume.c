/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>

#include "evd-config.h"
#include "chain.h"
#include "clock.h"
#include "hash.h"
#include "sim-volume.h"
#include "small-file.h"

#define DEVICE_FILE "EVIDOCK/DEVICE.TXT"
#define CHAIN_FILE  "EVIDOCK/CHAIN.LOG"

static const char *const method_dirs[_EVD_METHOD_MAX] = {
    [EVD_METHOD_VIDEO] = "VIDEO", [EVD_METHOD_AUDIO] = "AUDIO", [EVD_METHOD_PHOTO] = "PHOTO"};
static const char *const method_exts[_EVD_METHOD_MAX] = {
    [EVD_METHOD_VIDEO] = "MP4", [EVD_METHOD_AUDIO] = "M4A", [EVD_METHOD_PHOTO] = "JPG"};

int sim_volume_add_note(SimVolume *v, const char *fmt, ...)
{
        char **n = realloc(v->notes, (v->n_notes + 1) * sizeof *n);
        if (!n)
                return -ENOMEM;
        v->notes = n;
        va_list ap;
        va_start(ap, fmt);
        int r = vasprintf(&v->notes[v->n_notes], fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        v->n_notes++;
        return 0;
}

static int write_file_at(int dir_fd, const char *path, const char *data, size_t len, mode_t mode)
{
        _cleanup_close_ int fd = openat(dir_fd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0)
                return negative_errno();
        while (len > 0) {
                ssize_t n = write(fd, data, len);
                if (n < 0)
                        return negative_errno();
                data += n;
                len -= (size_t)n;
        }
        return fsync(fd) < 0 ? negative_errno() : 0;
}

/* ---- key ---- */

static int load_or_generate_key(SimVolume *v, EvdError *err)
{
        const SimOptions *opt = v->opt;
        if (access(v->key_path, F_OK) == 0) {
                int r = evd_key_load_private_pem(v->key_path, &v->key, err);
                if (r < 0)
                        return evd_error_prefix(err, "key %s: ", v->key_path);
                r = evd_key_suite(v->key, &v->suite);
                if (r < 0)
                        return evd_error_set(err, r, "key %s: not a key of a chain suite", v->key_path);
                if (opt->suite_set && opt->suite != v->suite)
                        return evd_error_set(err, -EKEYREJECTED, "key %s is of suite %s, not %s",
                                             v->key_path, evd_suite_to_string(v->suite),
                                             evd_suite_to_string(opt->suite));
        } else {
                v->suite = opt->suite_set ? opt->suite : EVD_SUITE_ED25519_SHA256;
                int r = evd_key_generate(v->suite, &v->key, err);
                if (r < 0)
                        return evd_error_prefix(err, "generating a %s key: ", evd_suite_to_string(v->suite));
                _cleanup_free_ char *pem = NULL;
                r = evd_key_private_to_pem(v->key, &pem, err);
                if (r < 0)
                        return r;
                _cleanup_close_ int fd = open(v->key_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                if (fd < 0 || write(fd, pem, strlen(pem)) != (ssize_t)strlen(pem))
                        return evd_error_set_errno(err, negative_errno(), "cannot write key %s",
                                                   v->key_path);
        }
        return evd_key_id(v->key, v->key_id);
}

/* ---- identity ---- */

static void set_field(char *dst, size_t n, const char *value)
{
        snprintf(dst, n, "%s", value);
}

/* The identity the volume already has (--append), read as evidock reads it (lib/chain.h). */
static int read_device_file(SimVolume *v, EvdError *err)
{
        _cleanup_free_ char *buf = NULL;
        size_t len;
        int r = evd_small_file_read(v->dir_fd, DEVICE_FILE, EVD_DEVICE_TXT_MAX, &buf, &len);
        if (r < 0)
                return evd_error_set_errno(err, r, "%s/%s: cannot read", v->opt->out_dir, DEVICE_FILE);
        EvdDeviceInfo info;
        r = evd_device_info_parse(buf, len, &info, err);
        if (r < 0) {
                evd_error_prefix(err, "%s/%s: ", v->opt->out_dir, DEVICE_FILE);
                return r;
        }
        set_field(v->device_id, sizeof v->device_id, info.device_id);
        if (info.officer_id[0])
                set_field(v->officer_id, sizeof v->officer_id, info.officer_id);
        if (info.unit_code[0])
                set_field(v->unit_code, sizeof v->unit_code, info.unit_code);
        if (info.model[0])
                set_field(v->model, sizeof v->model, info.model);
        if (info.firmware[0])
                set_field(v->firmware, sizeof v->firmware, info.firmware);
        return 0;
}

static int read_existing_chain(SimVolume *v, EvdError *err)
{
        _cleanup_free_ char *buf = NULL;
        size_t len;
        int r = evd_small_file_read(v->dir_fd, CHAIN_FILE, EVD_MANIFEST_MAX_BYTES, &buf, &len);
        if (r < 0)
                return evd_error_set_errno(err, r, "%s/%s: cannot read the chain to append to",
                                           v->opt->out_dir, CHAIN_FILE);
        _cleanup_(evd_manifest_freep) EvdManifest *m = NULL;
        r = evd_manifest_parse(buf, len, &m);
        if (r < 0)
                return evd_error_set_errno(err, r, "%s/%s: cannot parse", v->opt->out_dir, CHAIN_FILE);
        if (m->n_records == 0)
                return evd_error_set(err, -EBADMSG, "%s/%s: no record to append to", v->opt->out_dir,
                                     CHAIN_FILE);
        const EvdRecord *head = &m->records[0];
        for (size_t i = 1; i < m->n_records; i++)
                if (m->records[i].seq >= head->seq)
                        head = &m->records[i];
        if (!head->key_id || strcmp(head->key_id, v->key_id) != 0)
                return evd_error_set(err, -EKEYREJECTED, "%s/%s is signed with key %s, but %s is key %s",
                                     v->opt->out_dir, CHAIN_FILE, strna(head->key_id), v->key_path,
                                     v->key_id);
        r = evd_record_copy(&v->head, head);
        if (r < 0)
                return r;
        v->have_head = true;

        /* Keep the old lines byte for byte. */
        for (char *p = buf; *p;) {
                char *nl = strchr(p, '\n');
                size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
                char **l = realloc(v->lines, (v->n_lines + 1) * sizeof *l);
                if (!l)
                        return -ENOMEM;
                v->lines = l;
                if (!(v->lines[v->n_lines] = strndup(p, n)))
                        return -ENOMEM;
                v->n_lines++;
                p += n;
        }
        return 0;
}

static bool all_in(const char *s, size_t n, const char *set)
{
        if (strlen(s) != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!strchr(set, s[i]))
                        return false;
        return true;
}

#define ALNUM "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

int sim_volume_open_key(SimVolume *v, const SimOptions *opt, EvdError *err)
{
        *v = (SimVolume){.opt = opt, .dir_fd = -1};
        int r;

        if (opt->key_path)
                v->key_path = strdup(opt->key_path);
        else {
                size_t n = strlen(opt->out_dir);
                while (n > 1 && opt->out_dir[n - 1] == '/')
                        n--;
                r = asprintf(&v->key_path, "%.*s.key", (int)n, opt->out_dir);
                if (r < 0)
                        v->key_path = NULL;
        }
        if (!v->key_path)
                return -ENOMEM;
        return load_or_generate_key(v, err);
}

int sim_volume_open(SimVolume *v, const SimOptions *opt, EvdError *err)
{
        int r = sim_volume_open_key(v, opt, err);
        if (r < 0)
                return r;

        if (!opt->append && mkdir(opt->out_dir, 0755) < 0 && errno != EEXIST)
                return evd_error_set_errno(err, negative_errno(), "cannot create %s", opt->out_dir);
        v->dir_fd = open(opt->out_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (v->dir_fd < 0)
                return evd_error_set_errno(err, negative_errno(), "cannot open %s", opt->out_dir);
        const char *dirs[] = {"EVIDOCK", "VIDEO", "AUDIO", "PHOTO"};
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++)
                if (mkdirat(v->dir_fd, dirs[i], 0755) < 0 && errno != EEXIST)
                        return evd_error_set_errno(err, negative_errno(), "cannot create %s/%s",
                                                   opt->out_dir, dirs[i]);

        set_field(v->device_id, sizeof v->device_id, "A1B2C3D");
        set_field(v->officer_id, sizeof v->officer_id, "123456");
        set_field(v->unit_code, sizeof v->unit_code, "110105000000");
        set_field(v->model, sizeof v->model, "EVD-SIM-1");
        set_field(v->firmware, sizeof v->firmware, EVD_VERSION);
        if (!opt->append && faccessat(v->dir_fd, CHAIN_FILE, F_OK, 0) == 0)
                return evd_error_set(err, -EEXIST,
                                     "%s already holds a chain (%s): use --append or an empty directory",
                                     opt->out_dir, CHAIN_FILE);
        if (opt->append) {
                r = read_device_file(v, err);
                if (r < 0)
                        return r;
                r = read_existing_chain(v, err);
                if (r < 0)
                        return r;
        }
        if (opt->device_id)
                set_field(v->device_id, sizeof v->device_id, opt->device_id);
        if (opt->officer_id)
                set_field(v->officer_id, sizeof v->officer_id, opt->officer_id);
        if (opt->unit_code)
                set_field(v->unit_code, sizeof v->unit_code, opt->unit_code);
        if (!all_in(v->device_id, 7, ALNUM))
                return evd_error_set(err, -EINVAL, "device id '%s' is not 7 letters/digits", v->device_id);
        if (!all_in(v->officer_id, 6, "0123456789"))
                return evd_error_set(err, -EINVAL, "officer id '%s' is not 6 digits", v->officer_id);
        if (!all_in(v->unit_code, 12, ALNUM))
                return evd_error_set(err, -EINVAL, "unit code '%s' is not 12 letters/digits", v->unit_code);
        return 0;
}

void sim_volume_done(SimVolume *v)
{
        for (size_t i = 0; i < v->n_entries; i++)
                evd_record_clear(&v->entries[i].rec);
        free(v->entries);
        for (size_t i = 0; i < v->n_lines; i++)
                free(v->lines[i]);
        free(v->lines);
        for (size_t i = 0; i < v->n_notes; i++)
                free(v->notes[i]);
        free(v->notes);
        evd_record_clear(&v->head);
        EVP_PKEY_free(v->key);
        free(v->key_path);
        if (v->dir_fd >= 0)
                close(v->dir_fd);
        *v = (SimVolume){.dir_fd = -1};
}

/* ---- plan ---- */

int sim_volume_file_name(const SimVolume *v, EvdMethod method, int64_t start_us, uint64_t seq,
                         const char *suffix, char **ret)
{
        time_t t = (time_t)(start_us / 1000000) + (time_t)v->opt->tz_minutes * 60;
        struct tm tm;
        gmtime_r(&t, &tm);
        int r = asprintf(ret, "%s/%s_%04d%02d%02d_%02d%02d%02d_%04u%s.%s", method_dirs[method], v->device_id,
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                         (unsigned)(seq % 10000), suffix ? suffix : "", method_exts[method]);
        return r < 0 ? -ENOMEM : 0;
}

static SimEntry *add_entry(SimVolume *v, EvdRecordType type, uint64_t session, uint64_t seq,
                           int64_t start_us, int64_t end_us)
{
        SimEntry *e = realloc(v->entries, (v->n_entries + 1) * sizeof *e);
        if (!e)
                return NULL;
        v->entries = e;
        e = &v->entries[v->n_entries];
        *e = (SimEntry){.links = true, .mutation = -1};
        e->rec.type = type;
        e->rec.suite = v->suite;
        e->rec.session = session;
        e->rec.seq = seq;
        e->rec.start_us = start_us;
        e->rec.end_us = end_us;
        e->rec.tz_minutes = v->opt->tz_minutes;
        e->rec.device_id = strdup(v->device_id);
        e->rec.officer_id = strdup(v->officer_id);
        e->rec.unit_code = strdup(v->unit_code);
        if (!e->rec.device_id || !e->rec.officer_id || !e->rec.unit_code) {
                evd_record_clear(&e->rec);
                return NULL;
        }
        v->n_entries++;
        return e;
}

ssize_t sim_volume_segment(const SimVolume *v, unsigned n)
{
        for (size_t i = 0; i < v->n_entries; i++)
                if (v->entries[i].rec.type == EVD_RECORD_SEGMENT && v->entries[i].links && n-- == 0)
                        return (ssize_t)i;
        return -1;
}

int sim_volume_plan(SimVolume *v, EvdError *err)
{
        const SimOptions *opt = v->opt;
        unsigned n_items = opt->videos + opt->audios + opt->photos;
        unsigned sessions = MAX(opt->sessions, 1u);

        if (n_items == 0)
                return evd_error_set(err, -EINVAL,
                                     "nothing to record (--videos, --audios and --photos are 0)");
        if (n_items > SIM_MAX_RECORDINGS)
                return evd_error_set(err, -EINVAL, "at most %u recordings per run", SIM_MAX_RECORDINGS);
        if (sim_volume_fault_on(v, SIM_FAULT_SESSION_BREAK) && sessions < 2)
                sessions = 2;
        if (sessions > n_items)
                return evd_error_set(err, -EINVAL, "%u sessions need at least %u recordings", sessions,
                                     sessions);

        int64_t total = (int64_t)(opt->videos + opt->audios) * opt->duration_us +
                        (int64_t)(sessions - 1) * SIM_SESSION_GAP_US;
        int64_t start;
        if (opt->start_set)
                start = opt->start_us;
        else {
                /* Whole seconds, so that file names and the manifest agree on the second. */
                start = (evd_clock_wall_us() / 1000000 - 60) * 1000000 - total;
                start -= start % 1000000;
                if (v->have_head && start < MAX(v->head.start_us, v->head.end_us) + SIM_SESSION_GAP_US)
                        start = MAX(v->head.start_us, v->head.end_us) + SIM_SESSION_GAP_US;
        }

        uint64_t seq = v->have_head ? v->head.seq + 1 : 0;
        uint64_t session = v->have_head ? v->head.session + 1 : 1;
        if (!v->have_head && !add_entry(v, EVD_RECORD_GENESIS, 0, seq++, start, start))
                return -ENOMEM;

        int64_t cursor = start;
        unsigned item = 0;
        for (unsigned s = 0; s < sessions; s++, session++) {
                unsigned count = n_items / sessions + (s < n_items % sessions ? 1 : 0);
                int64_t session_start = cursor;
                for (unsigned i = 0; i < count; i++, item++) {
                        EvdMethod method = item < opt->videos                 ? EVD_METHOD_VIDEO
                                           : item < opt->videos + opt->audios ? EVD_METHOD_AUDIO
                                                                              : EVD_METHOD_PHOTO;
                        int64_t dur = method == EVD_METHOD_PHOTO ? 0 : opt->duration_us;
                        SimEntry *e = add_entry(v, EVD_RECORD_SEGMENT, session, seq++, cursor, cursor + dur);
                        if (!e)
                                return -ENOMEM;
                        e->rec.method = method;
                        e->media_start_us = cursor;
                        e->media_duration_us = dur;
                        e->media_salt = item + 1;
                        if (opt->case_number && !(e->rec.case_number = strdup(opt->case_number)))
                                return -ENOMEM;
                        cursor += dur;
                }
                bool last = s + 1 == sessions;
                if (last && sim_volume_fault_on(v, SIM_FAULT_DELETION_LOGGED)) {
                        ssize_t target = sim_volume_segment(v, 1);
                        if (target < 0)
                                return evd_error_set(err, -EINVAL,
                                                     "deletion-logged needs at least 3 recordings");
                        SimEntry *e = add_entry(v, EVD_RECORD_DELETION, session, seq++, cursor, cursor);
                        if (!e)
                                return -ENOMEM;
                        e->rec.deleted_seq = v->entries[target].rec.seq;
                        e->rec.authorised_by = strdup("654321");
                        e->rec.reason = strdup("accidental recording, deletion approved by supervisor");
                        if (!e->rec.authorised_by || !e->rec.reason)
                                return -ENOMEM;
                }
                /* session-break: the first session just stops; the next one starts without an END. */
                if (!(s == 0 && sim_volume_fault_on(v, SIM_FAULT_SESSION_BREAK)))
                        if (!add_entry(v, EVD_RECORD_END, session, seq++, session_start, cursor))
                                return -ENOMEM;
                cursor += SIM_SESSION_GAP_US;
        }

        return 0;
}

int sim_volume_name_files(SimVolume *v)
{
        for (size_t i = 0; i < v->n_entries; i++) {
                SimEntry *e = &v->entries[i];
                if (e->rec.type != EVD_RECORD_SEGMENT || e->rec.file)
                        continue;
                int r =
                    sim_volume_file_name(v, e->rec.method, e->rec.start_us, e->rec.seq, NULL, &e->rec.file);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- media ---- */

int sim_volume_make_file(SimVolume *v, const char *path, EvdMethod method, int64_t start_us,
                         int64_t duration_us, uint64_t salt, EvdError *err)
{
        SimMediaSpec spec = {
            .preset = v->opt->preset,
            .start_us = start_us,
            .duration_us = duration_us,
            .tz_minutes = v->opt->tz_minutes,
            .seed = v->opt->seed * 0x100000001b3ull + salt,
            .device_id = v->device_id,
            .officer_id = v->officer_id,
            .case_number = v->opt->case_number,
        };
        _cleanup_free_ char *full = NULL;
        if (asprintf(&full, "%s/%s", v->opt->out_dir, path) < 0)
                return -ENOMEM;
        int r = method == EVD_METHOD_VIDEO   ? sim_media_make_video(full, &spec, err)
                : method == EVD_METHOD_AUDIO ? sim_media_make_audio(full, &spec, err)
                                             : sim_media_make_photo(full, &spec, err);
        if (r < 0)
                return r;
        /* The recorder's clock stamps the file when it closes it. */
        int64_t end_us = start_us + duration_us;
        struct timespec ts[2] = {{.tv_sec = end_us / 1000000, .tv_nsec = (end_us % 1000000) * 1000},
                                 {.tv_sec = end_us / 1000000, .tv_nsec = (end_us % 1000000) * 1000}};
        if (utimensat(v->dir_fd, path, ts, 0) < 0)
                return evd_error_set_errno(err, negative_errno(), "%s: cannot set the file time", full);
        return 0;
}

static int hash_file(SimVolume *v, EvdRecord *rec, EvdError *err)
{
        _cleanup_close_ int fd = openat(v->dir_fd, rec->file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return evd_error_set_errno(err, negative_errno(), "%s/%s: cannot open", v->opt->out_dir,
                                           rec->file);
        int r = evd_hash_fd(evd_suite_hash(rec->suite), fd, rec->file_hash, &rec->size);
        if (r < 0)
                return evd_error_set_errno(err, r, "%s/%s: cannot hash", v->opt->out_dir, rec->file);
        return 0;
}

int sim_volume_make_media(SimVolume *v, EvdError *err)
{
        for (size_t i = 0; i < v->n_entries; i++) {
                SimEntry *e = &v->entries[i];
                if (e->rec.type != EVD_RECORD_SEGMENT)
                        continue;
                int r = sim_volume_make_file(v, e->rec.file, e->rec.method, e->media_start_us,
                                             e->media_duration_us, e->media_salt, err);
                if (r < 0)
                        return r;
                r = hash_file(v, &e->rec, err);
                if (r < 0)
                        return r;
                v->n_files++;
                v->n_bytes += e->rec.size;
                v->total_duration_us += e->media_duration_us;
        }
        return 0;
}

/* ---- chain ---- */

static int sign_entry(SimVolume *v, SimEntry *e, const uint8_t prev[EVD_HASH_SIZE], EvdError *err)
{
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *foreign = NULL;
        int r;

        memcpy(e->rec.prev_hash, prev, EVD_HASH_SIZE);
        if (e->mutation == SIM_FAULT_LINK_MISMATCH)
                e->rec.prev_hash[0] ^= 0xff; /* a wrong link, but the record is properly signed */
        r = evd_record_sign(&e->rec, v->key, err);
        if (r < 0)
                return evd_error_prefix(err, "signing record seq %" PRIu64 ": ", e->rec.seq);

        if (e->mutation == SIM_FAULT_FOREIGN_KEY) {
                /* The record names the device's key but another key signed it: what a forger without the
                 * device key can produce. */
                r = evd_key_generate(v->suite, &foreign, err);
                if (r < 0)
                        return r;
                uint8_t *sig = NULL;
                size_t sig_len = 0;
                r = evd_signature_sign(v->suite, foreign, e->rec.tbs, e->rec.tbs_len, &sig, &sig_len, err);
                if (r < 0)
                        return r;
                free(e->rec.signature);
                e->rec.signature = sig;
                e->rec.signature_len = sig_len;
        }
        if (e->mutation == SIM_FAULT_SIGNATURE_INVALID) {
                /* Edit a signed field afterwards; the old signature stays, the hash follows the edit so
                 * that the next record still links. */
                char *edited = NULL;
                if (asprintf(&edited, "%sX", e->rec.case_number ? e->rec.case_number : "TAMPERED") < 0)
                        return -ENOMEM;
                free(e->rec.case_number);
                e->rec.case_number = edited;
                r = evd_record_canonicalize(&e->rec, err);
                if (r < 0)
                        return r;
        }
        if (e->mutation == SIM_FAULT_UNSIGNED) {
                free(e->rec.signature);
                e->rec.signature = NULL;
                e->rec.signature_len = 0;
        }
        return 0;
}

int sim_volume_sign(SimVolume *v, EvdError *err)
{
        uint8_t prev[EVD_HASH_SIZE] = {};
        if (v->have_head)
                memcpy(prev, v->head.record_hash, EVD_HASH_SIZE);
        for (size_t i = 0; i < v->n_entries; i++) {
                SimEntry *e = &v->entries[i];
                /* A conflicting copy claims the same place as the record before it: same prev. */
                const uint8_t *p = e->links ? prev : v->entries[i - 1].rec.prev_hash;
                int r = sign_entry(v, e, p, err);
                if (r < 0)
                        return r;
                if (e->links)
                        memcpy(prev, e->rec.record_hash, EVD_HASH_SIZE);
                char *line = NULL;
                r = evd_record_to_line(&e->rec, &line, err);
                if (r < 0)
                        return evd_error_prefix(err, "record seq %" PRIu64 ": ", e->rec.seq);
                char **l = realloc(v->lines, (v->n_lines + 1) * sizeof *l);
                if (!l) {
                        free(line);
                        return -ENOMEM;
                }
                v->lines = l;
                e->line_index = v->n_lines;
                v->lines[v->n_lines++] = line;
        }
        return 0;
}

int sim_volume_write(SimVolume *v, EvdError *err)
{
        char device_id[sizeof v->device_id];
        set_field(device_id, sizeof device_id, v->device_id);
        if (sim_volume_fault_on(v, SIM_FAULT_IDENTITY_MISMATCH)) {
                /* Another recorder's identity: the last character moves on by one. */
                char *c = &device_id[6];
                *c = *c == '9' ? '0' : *c == 'Z' ? 'A' : *c == 'z' ? 'a' : (char)(*c + 1);
                int r = sim_volume_add_note(v,
                                            "identity-mismatch: %s names device %s, the manifest %s (expect "
                                            "IDENTITY_MISMATCH for the volume)",
                                            DEVICE_FILE, device_id, v->device_id);
                if (r < 0)
                        return r;
        }
        _cleanup_free_ char *text = NULL;
        if (asprintf(
                &text,
                "device_id=%s\nofficer_id=%s\nunit_code=%s\nmodel=%s\nfirmware=%s\nsuite=%s\nkey_id=%s\n",
                device_id, v->officer_id, v->unit_code, v->model, v->firmware, evd_suite_to_string(v->suite),
                v->key_id) < 0)
                return -ENOMEM;
        int r = write_file_at(v->dir_fd, DEVICE_FILE, text, strlen(text), 0644);
        if (r < 0)
                return evd_error_set_errno(err, r, "%s/%s: cannot write", v->opt->out_dir, DEVICE_FILE);

        size_t len = 0;
        for (size_t i = 0; i < v->n_lines; i++)
                len += strlen(v->lines[i]);
        _cleanup_free_ char *all = malloc(len + 1);
        if (!all)
                return -ENOMEM;
        size_t pos = 0;
        for (size_t i = 0; i < v->n_lines; i++) {
                size_t n = strlen(v->lines[i]);
                memcpy(all + pos, v->lines[i], n);
                pos += n;
        }
        r = write_file_at(v->dir_fd, CHAIN_FILE, all, len, 0644);
        if (r < 0)
                return evd_error_set_errno(err, r, "%s/%s: cannot write", v->opt->out_dir, CHAIN_FILE);
        return 0;
}

void sim_volume_print_summary(const SimVolume *v)
{
        printf("volume %s: device %s, officer %s, unit %s, suite %s, key %s\n", v->opt->out_dir,
               v->device_id, v->officer_id, v->unit_code, evd_suite_to_string(v->suite), v->key_id);
        for (size_t i = 0; i < v->n_entries; i++) {
                const EvdRecord *r = &v->entries[i].rec;
                if (r->type != EVD_RECORD_SEGMENT)
                        continue;
                printf("  seq %-5" PRIu64 " %-44s %10" PRIu64 " bytes %7.1f s\n", r->seq, r->file, r->size,
                       (double)v->entries[i].media_duration_us / 1e6);
        }
        uint64_t first = v->n_entries ? v->entries[0].rec.seq : 0;
        uint64_t last = v->n_entries ? v->entries[v->n_entries - 1].rec.seq : 0;
        printf("files: %u, bytes: %" PRIu64 ", duration: %.1f s, records: seq %" PRIu64 "..%" PRIu64
               " (%zu lines in EVIDOCK/CHAIN.LOG)\n",
               v->n_files, v->n_bytes, (double)v->total_duration_us / 1e6, first, last, v->n_lines);
        for (size_t i = 0; i < v->n_notes; i++)
                printf("fault %s\n", v->notes[i]);
}
