/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Each fault produces exactly one condition on a deterministic target, so that the end-to-end tests can
 * assert the verdict. "Target" below is the 2nd segment record this run writes unless said otherwise;
 * docs/man/evidock-sim.1 lists what each fault does and the verdict it should produce. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "sim-fault.h"

static const char *const fault_names[_SIM_FAULT_MAX] = {
    [SIM_FAULT_HASH_MISMATCH] = "hash-mismatch",
    [SIM_FAULT_TRUNCATED] = "truncated",
    [SIM_FAULT_SIGNATURE_INVALID] = "signature-invalid",
    [SIM_FAULT_UNSIGNED] = "unsigned",
    [SIM_FAULT_LINK_MISMATCH] = "link-mismatch",
    [SIM_FAULT_SEGMENT_GAP] = "segment-gap",
    [SIM_FAULT_SEGMENT_INSERTED] = "segment-inserted",
    [SIM_FAULT_SEGMENT_REORDERED] = "segment-reordered",
    [SIM_FAULT_SEGMENT_DUPLICATE] = "segment-duplicate",
    [SIM_FAULT_SEGMENT_CONFLICT] = "segment-conflict",
    [SIM_FAULT_SESSION_BREAK] = "session-break",
    [SIM_FAULT_TIME_GAP] = "time-gap",
    [SIM_FAULT_TIME_OVERLAP] = "time-overlap",
    [SIM_FAULT_CLOCK_ANOMALY] = "clock-anomaly",
    [SIM_FAULT_IDENTITY_MISMATCH] = "identity-mismatch",
    [SIM_FAULT_DELETION_LOGGED] = "deletion-logged",
    [SIM_FAULT_MANIFEST_INVALID] = "manifest-invalid",
    [SIM_FAULT_ROLLBACK] = "rollback",
    [SIM_FAULT_FOREIGN_KEY] = "foreign-key",
    [SIM_FAULT_BAD_NAME] = "bad-name",
};

const char *sim_fault_to_string(SimFault f)
{
        return (unsigned)f < _SIM_FAULT_MAX ? fault_names[f] : NULL;
}

int sim_fault_from_string(const char *s)
{
        for (int i = 0; i < _SIM_FAULT_MAX; i++)
                if (strcmp(s, fault_names[i]) == 0)
                        return i;
        return -EINVAL;
}

static int need_segment(const SimVolume *v, SimFault f, unsigned n, SimEntry **ret, EvdError *err)
{
        ssize_t i = sim_volume_segment(v, n);
        if (i < 0)
                return evd_error_set(err, -EINVAL, "fault %s needs at least %u recordings", fault_names[f],
                                     n + 1);
        *ret = &v->entries[i];
        return 0;
}

static void shift_from(SimVolume *v, SimEntry *from, int64_t delta)
{
        for (SimEntry *e = from; e < v->entries + v->n_entries; e++) {
                if (e->rec.type == EVD_RECORD_END && e->rec.session == from->rec.session)
                        e->rec.end_us += delta; /* the session's start is before the shift */
                else {
                        e->rec.start_us += delta;
                        e->rec.end_us += delta;
                        e->media_start_us += delta;
                }
        }
}

static int time_fault(SimVolume *v, SimFault f, EvdError *err)
{
        SimEntry *first = NULL, *second = NULL;
        int r = need_segment(v, f, 0, &first, err);
        if (r >= 0)
                r = need_segment(v, f, 1, &second, err);
        if (r < 0)
                return r;
        if (first->rec.session != second->rec.session)
                return evd_error_set(err, -EINVAL,
                                     "fault %s needs the first two recordings in one session "
                                     "(fewer --sessions)",
                                     fault_names[f]);
        int64_t delta =
            f == SIM_FAULT_TIME_GAP ? SIM_TIME_GAP_US : -MAX(first->media_duration_us / 2, (int64_t)1000000);
        shift_from(v, second, delta);
        return sim_volume_add_note(
            v, "%s: seq %" PRIu64 " starts %+.1f s after seq %" PRIu64 " ends (expect %s)", fault_names[f],
            second->rec.seq, (double)delta / 1e6, first->rec.seq,
            f == SIM_FAULT_TIME_GAP ? "TIME_GAP" : "TIME_OVERLAP");
}

int sim_fault_plan_times(SimVolume *v, EvdError *err)
{
        SimEntry *t = NULL;
        int r;

        if (sim_volume_fault_on(v, SIM_FAULT_TIME_GAP) && (r = time_fault(v, SIM_FAULT_TIME_GAP, err)) < 0)
                return r;
        if (sim_volume_fault_on(v, SIM_FAULT_TIME_OVERLAP) &&
            (r = time_fault(v, SIM_FAULT_TIME_OVERLAP, err)) < 0)
                return r;

        if (sim_volume_fault_on(v, SIM_FAULT_SESSION_BREAK)) {
                /* sim_volume_plan() left out the first session's END record. */
                uint64_t first = v->entries[v->n_entries - 1].rec.session;
                for (size_t i = 0; i < v->n_entries; i++)
                        if (v->entries[i].rec.type == EVD_RECORD_SEGMENT)
                                first = MIN(first, v->entries[i].rec.session);
                r = sim_volume_add_note(v,
                                        "session-break: session %" PRIu64
                                        " has no END record, session %" PRIu64
                                        " follows (expect SESSION_BREAK)",
                                        first, first + 1);
                if (r < 0)
                        return r;
        }

        if (sim_volume_fault_on(v, SIM_FAULT_CLOCK_ANOMALY)) {
                /* The last segment: nothing follows it in time, so only its own clock is wrong. */
                ssize_t last = -1;
                for (size_t i = 0; i < v->n_entries; i++)
                        if (v->entries[i].rec.type == EVD_RECORD_SEGMENT)
                                last = (ssize_t)i;
                if (last < 0)
                        return evd_error_set(err, -EINVAL, "fault clock-anomaly needs a recording");
                t = &v->entries[last];
                t->rec.end_us = t->rec.start_us - MAX(t->media_duration_us, (int64_t)60000000);
                r = sim_volume_add_note(v,
                                        "clock-anomaly: seq %" PRIu64
                                        " ends %.1f s before it starts (expect "
                                        "CLOCK_ANOMALY)",
                                        t->rec.seq, (double)(t->rec.start_us - t->rec.end_us) / 1e6);
                if (r < 0)
                        return r;
        }

        return 0;
}

int sim_fault_plan_records(SimVolume *v, EvdError *err)
{
        SimEntry *t = NULL;
        int r;

        struct {
                SimFault fault;
                const char *verdict;
        } marks[] = {
            {SIM_FAULT_SIGNATURE_INVALID, "SIGNATURE_INVALID: case number edited after signing"},
            {SIM_FAULT_UNSIGNED, "UNSIGNED: signature stripped"},
            {SIM_FAULT_LINK_MISMATCH, "LINK_MISMATCH: prev hash wrong, record properly signed"},
            {SIM_FAULT_FOREIGN_KEY, "SIGNATURE_INVALID: names the device key, signed by another"},
        };
        for (size_t i = 0; i < ELEMENTSOF(marks); i++) {
                if (!sim_volume_fault_on(v, marks[i].fault))
                        continue;
                r = need_segment(v, marks[i].fault, 1, &t, err);
                if (r < 0)
                        return r;
                if (t->mutation >= 0)
                        return evd_error_set(err, -EINVAL, "faults %s and %s both edit seq %" PRIu64,
                                             fault_names[t->mutation], fault_names[marks[i].fault],
                                             t->rec.seq);
                t->mutation = (int)marks[i].fault;
                r = sim_volume_add_note(v, "%s: %s seq %" PRIu64 " (expect %s)", fault_names[marks[i].fault],
                                        t->rec.file ? t->rec.file : "record", t->rec.seq, marks[i].verdict);
                if (r < 0)
                        return r;
        }

        if (sim_volume_fault_on(v, SIM_FAULT_SEGMENT_CONFLICT)) {
                r = need_segment(v, SIM_FAULT_SEGMENT_CONFLICT, 1, &t, err);
                if (r < 0)
                        return r;
                /* A second, properly signed record for the same seq, right after it, with another file. */
                size_t at = (size_t)(t - v->entries) + 1;
                SimEntry *grown = realloc(v->entries, (v->n_entries + 1) * sizeof *grown);
                if (!grown)
                        return -ENOMEM;
                v->entries = grown;
                t = &v->entries[at - 1];
                memmove(&v->entries[at + 1], &v->entries[at], (v->n_entries - at) * sizeof *grown);
                v->n_entries++;
                SimEntry *c = &v->entries[at];
                *c = (SimEntry){.links = false,
                                .mutation = -1,
                                .media_start_us = t->media_start_us,
                                .media_duration_us = t->media_duration_us,
                                .media_salt = t->media_salt + 7777};
                r = evd_record_copy(&c->rec, &t->rec);
                if (r < 0)
                        return r;
                free(c->rec.file);
                c->rec.file = NULL;
                r = sim_volume_file_name(v, c->rec.method, c->rec.start_us, c->rec.seq, "_2", &c->rec.file);
                if (r < 0)
                        return r;
                r = sim_volume_add_note(v,
                                        "segment-conflict: seq %" PRIu64 " also claimed by %s (expect "
                                        "SEGMENT_CONFLICT)",
                                        c->rec.seq, c->rec.file);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- after signing: files and lines ---- */

static int line_remove(SimVolume *v, size_t index)
{
        free(v->lines[index]);
        memmove(&v->lines[index], &v->lines[index + 1], (v->n_lines - index - 1) * sizeof *v->lines);
        v->n_lines--;
        for (size_t i = 0; i < v->n_entries; i++)
                if (v->entries[i].line_index > index)
                        v->entries[i].line_index--;
        return 0;
}

static int line_insert(SimVolume *v, size_t index, const char *text)
{
        char **l = realloc(v->lines, (v->n_lines + 1) * sizeof *l);
        if (!l)
                return -ENOMEM;
        v->lines = l;
        char *copy = strdup(text);
        if (!copy)
                return -ENOMEM;
        memmove(&v->lines[index + 1], &v->lines[index], (v->n_lines - index) * sizeof *v->lines);
        v->lines[index] = copy;
        v->n_lines++;
        for (size_t i = 0; i < v->n_entries; i++)
                if (v->entries[i].line_index >= index)
                        v->entries[i].line_index++;
        return 0;
}

static int unlink_file(SimVolume *v, const char *path, EvdError *err)
{
        if (unlinkat(v->dir_fd, path, 0) < 0 && errno != ENOENT)
                return evd_error_set_errno(err, negative_errno(), "%s/%s: cannot remove", v->opt->out_dir,
                                           path);
        return 0;
}

static uint64_t last_seq(const SimVolume *v)
{
        return v->n_entries ? v->entries[v->n_entries - 1].rec.seq : 0;
}

static int copy_file(SimVolume *v, const char *from, const char *to, EvdError *err)
{
        _cleanup_close_ int in = openat(v->dir_fd, from, O_RDONLY | O_CLOEXEC);
        if (in < 0)
                return evd_error_set_errno(err, negative_errno(), "%s/%s: cannot open", v->opt->out_dir,
                                           from);
        _cleanup_close_ int out = openat(v->dir_fd, to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (out < 0)
                return evd_error_set_errno(err, negative_errno(), "%s/%s: cannot create", v->opt->out_dir,
                                           to);
        char buf[64 * 1024];
        for (;;) {
                ssize_t n = read(in, buf, sizeof buf);
                if (n < 0)
                        return evd_error_set_errno(err, negative_errno(), "%s/%s: read", v->opt->out_dir,
                                                   from);
                if (n == 0)
                        return 0;
                if (write(out, buf, (size_t)n) != n)
                        return evd_error_set_errno(err, negative_errno(), "%s/%s: write", v->opt->out_dir,
                                                   to);
        }
}

static int fault_file_damage(SimVolume *v, SimFault f, EvdError *err)
{
        SimEntry *t = NULL;
        if (f == SIM_FAULT_HASH_MISMATCH) {
                /* inside a video: the 2nd one if there are two, else the 1st */
                for (unsigned n = 0, videos = 0; sim_volume_segment(v, n) >= 0; n++) {
                        SimEntry *e = &v->entries[sim_volume_segment(v, n)];
                        if (e->rec.method == EVD_METHOD_VIDEO && videos++ < 2)
                                t = e;
                }
                if (!t)
                        return evd_error_set(err, -EINVAL, "fault hash-mismatch needs a video");
        } else {
                int r = need_segment(v, f, 1, &t, err);
                if (r < 0)
                        return r;
        }
        _cleanup_close_ int fd = openat(v->dir_fd, t->rec.file, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return evd_error_set_errno(err, negative_errno(), "%s/%s: cannot open", v->opt->out_dir,
                                           t->rec.file);
        uint64_t offset = t->rec.size / 2;
        if (f == SIM_FAULT_HASH_MISMATCH) {
                uint8_t b;
                if (pread(fd, &b, 1, (off_t)offset) != 1)
                        return evd_error_set_errno(err, negative_errno(), "%s: read", t->rec.file);
                b ^= 0xff;
                if (pwrite(fd, &b, 1, (off_t)offset) != 1)
                        return evd_error_set_errno(err, negative_errno(), "%s: write", t->rec.file);
                return sim_volume_add_note(v,
                                           "hash-mismatch: %s seq %" PRIu64 ": byte at offset %" PRIu64
                                           " inverted (expect HASH_MISMATCH)",
                                           t->rec.file, t->rec.seq, offset);
        }
        if (ftruncate(fd, (off_t)offset) < 0)
                return evd_error_set_errno(err, negative_errno(), "%s: truncate", t->rec.file);
        return sim_volume_add_note(
            v, "truncated: %s seq %" PRIu64 ": cut from %" PRIu64 " to %" PRIu64 " bytes (expect TRUNCATED)",
            t->rec.file, t->rec.seq, t->rec.size, offset);
}

static int fault_rollback(SimVolume *v, EvdError *err)
{
        size_t keep = (v->n_lines + 1) / 2;
        size_t dropped = v->n_lines - keep;
        while (v->n_lines > keep) {
                const char *line = v->lines[v->n_lines - 1];
                EvdRecord rec = {};
                if (evd_record_parse_line(line, strlen(line) - 1, &rec, NULL) >= 0) {
                        int r = rec.type == EVD_RECORD_SEGMENT ? unlink_file(v, rec.file, err) : 0;
                        evd_record_clear(&rec);
                        if (r < 0)
                                return r;
                }
                line_remove(v, v->n_lines - 1);
        }
        /* Entries past the cut no longer describe the volume. */
        for (size_t i = 0; i < v->n_entries; i++)
                if (v->entries[i].line_index >= keep && v->entries[i].rec.type == EVD_RECORD_SEGMENT) {
                        v->n_files--;
                        v->n_bytes -= v->entries[i].rec.size;
                        v->total_duration_us -= v->entries[i].media_duration_us;
                }
        return sim_volume_add_note(v,
                                   "rollback: CHAIN.LOG cut to its first %zu of %zu records, their files "
                                   "removed (expect CHAIN_ROLLBACK after the full volume was docked)",
                                   keep, keep + dropped);
}

int sim_fault_after_sign(SimVolume *v, EvdError *err)
{
        SimEntry *t = NULL;
        int r;

        if (sim_volume_fault_on(v, SIM_FAULT_HASH_MISMATCH) &&
            (r = fault_file_damage(v, SIM_FAULT_HASH_MISMATCH, err)) < 0)
                return r;
        if (sim_volume_fault_on(v, SIM_FAULT_TRUNCATED) &&
            (r = fault_file_damage(v, SIM_FAULT_TRUNCATED, err)) < 0)
                return r;

        if (sim_volume_fault_on(v, SIM_FAULT_DELETION_LOGGED)) {
                r = need_segment(v, SIM_FAULT_DELETION_LOGGED, 1, &t, err);
                if (r < 0 || (r = unlink_file(v, t->rec.file, err)) < 0)
                        return r;
                uint64_t del_seq = 0;
                for (size_t i = 0; i < v->n_entries; i++)
                        if (v->entries[i].rec.type == EVD_RECORD_DELETION)
                                del_seq = v->entries[i].rec.seq;
                r = sim_volume_add_note(v,
                                        "deletion-logged: %s seq %" PRIu64
                                        " removed, DEL record seq %" PRIu64
                                        " covers it (expect DELETION_LOGGED)",
                                        t->rec.file, t->rec.seq, del_seq);
                if (r < 0)
                        return r;
        }

        if (sim_volume_fault_on(v, SIM_FAULT_SEGMENT_DUPLICATE)) {
                _cleanup_free_ char *name = NULL;
                r = need_segment(v, SIM_FAULT_SEGMENT_DUPLICATE, 1, &t, err);
                if (r < 0)
                        return r;
                r = sim_volume_file_name(v, t->rec.method, t->rec.start_us, last_seq(v) + 2, NULL, &name);
                if (r < 0 || (r = copy_file(v, t->rec.file, name, err)) < 0)
                        return r;
                r = sim_volume_add_note(
                    v, "segment-duplicate: %s is a copy of %s seq %" PRIu64 " (expect SEGMENT_DUPLICATE)",
                    name, t->rec.file, t->rec.seq);
                if (r < 0)
                        return r;
        }

        if (sim_volume_fault_on(v, SIM_FAULT_SEGMENT_INSERTED) ||
            sim_volume_fault_on(v, SIM_FAULT_BAD_NAME)) {
                r = need_segment(v, SIM_FAULT_SEGMENT_INSERTED, 0, &t, err);
                if (r < 0)
                        return r;
                int64_t at =
                    MAX(v->entries[v->n_entries - 1].rec.start_us, v->entries[v->n_entries - 1].rec.end_us);
                int64_t dur = v->opt->duration_us;
                if (sim_volume_fault_on(v, SIM_FAULT_SEGMENT_INSERTED)) {
                        _cleanup_free_ char *name = NULL;
                        r = sim_volume_file_name(v, EVD_METHOD_VIDEO, at, last_seq(v) + 1, NULL, &name);
                        if (r < 0 ||
                            (r = sim_volume_make_file(v, name, EVD_METHOD_VIDEO, at, dur, 9001, err)) < 0)
                                return r;
                        r = sim_volume_add_note(v,
                                                "segment-inserted: %s is on the volume but in no record "
                                                "(expect SEGMENT_INSERTED)",
                                                name);
                        if (r < 0)
                                return r;
                }
                if (sim_volume_fault_on(v, SIM_FAULT_BAD_NAME)) {
                        /* Not UTF-8: Latin-1 bytes, as a careless PC tool might write them. */
                        _cleanup_free_ char *name = NULL;
                        r = sim_volume_file_name(v, EVD_METHOD_VIDEO, at, last_seq(v) + 3, "_\xc9\xff",
                                                 &name);
                        if (r < 0 ||
                            (r = sim_volume_make_file(v, name, EVD_METHOD_VIDEO, at, dur, 9003, err)) < 0)
                                return r;
                        r = sim_volume_add_note(
                            v,
                            "bad-name: a video whose name has the non-UTF-8 bytes C9 FF "
                            "(%s, escaped) is on the volume, in no record (expect NAME_INVALID)",
                            "VIDEO/..._\\xC9\\xFF.MP4");
                        if (r < 0)
                                return r;
                }
        }

        if (sim_volume_fault_on(v, SIM_FAULT_MANIFEST_INVALID)) {
                r = need_segment(v, SIM_FAULT_MANIFEST_INVALID, 1, &t, err);
                if (r < 0)
                        return r;
                r = line_insert(v, t->line_index + 1,
                                "EVDCHAIN/1;type=SEG;~~~ damaged by a power cut ~~~\n");
                if (r < 0)
                        return r;
                r = sim_volume_add_note(
                    v,
                    "manifest-invalid: line %zu of CHAIN.LOG is garbage (after seq %" PRIu64
                    "; expect MANIFEST_INVALID)",
                    t->line_index + 2, t->rec.seq);
                if (r < 0)
                        return r;
        }

        if (sim_volume_fault_on(v, SIM_FAULT_SEGMENT_REORDERED)) {
                r = need_segment(v, SIM_FAULT_SEGMENT_REORDERED, 1, &t, err);
                if (r < 0)
                        return r;
                size_t a = t->line_index;
                if (a + 1 >= v->n_lines)
                        return evd_error_set(err, -EINVAL,
                                             "fault segment-reordered needs a record after seq %" PRIu64,
                                             t->rec.seq);
                char *tmp = v->lines[a];
                v->lines[a] = v->lines[a + 1];
                v->lines[a + 1] = tmp;
                r = sim_volume_add_note(
                    v,
                    "segment-reordered: CHAIN.LOG lines %zu and %zu swapped (seq %" PRIu64
                    " and the record after it; expect SEGMENT_REORDERED)",
                    a + 1, a + 2, t->rec.seq);
                if (r < 0)
                        return r;
        }

        if (sim_volume_fault_on(v, SIM_FAULT_SEGMENT_GAP)) {
                r = need_segment(v, SIM_FAULT_SEGMENT_GAP, 1, &t, err);
                if (r < 0)
                        return r;
                if (sim_volume_segment(v, 2) < 0)
                        return evd_error_set(err, -EINVAL, "fault segment-gap needs at least 3 recordings");
                r = unlink_file(v, t->rec.file, err);
                if (r < 0)
                        return r;
                line_remove(v, t->line_index);
                v->n_files--;
                v->n_bytes -= t->rec.size;
                v->total_duration_us -= t->media_duration_us;
                r = sim_volume_add_note(v,
                                        "segment-gap: seq %" PRIu64 " (%s) removed with its file (expect "
                                        "SEGMENT_GAP)",
                                        t->rec.seq, t->rec.file);
                if (r < 0)
                        return r;
        }

        if (sim_volume_fault_on(v, SIM_FAULT_ROLLBACK) && (r = fault_rollback(v, err)) < 0)
                return r;
        return 0;
}
