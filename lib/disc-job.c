/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>

#include "clock.h"
#include "disc-bag.h"
#include "disc-job.h"
#include "disc-verify.h"
#include "record.h"

#define ISO_BLOCK 2048u

static const struct {
        const char *name;
        uint64_t bytes;
} media_types[] = {
    {"cd", 737280000ull},       /* CD-R 80 min: 360,000 sectors */
    {"dvd", 4707319808ull},     /* DVD±R: 2,298,496 sectors */
    {"dvd-dl", 8543666176ull},  /* DVD+R DL: 4,171,712 sectors */
    {"bd25", 25025314816ull},   /* BD-R: 12,219,392 sectors */
    {"bd50", 50050629632ull},   /* BD-R DL: 24,438,784 sectors */
    {"bd100", 100103356416ull}, /* BD-R XL TL: 48,878,592 sectors */
};

int evd_disc_media_parse(const char *s, char ret_name[17], uint64_t *ret_bytes, EvdError *err)
{
        if (!s || !*s)
                return evd_error_set(err, -EINVAL, "no media type given");
        for (size_t i = 0; i < ELEMENTSOF(media_types); i++)
                if (strcasecmp(s, media_types[i].name) == 0) {
                        snprintf(ret_name, 17, "%s", media_types[i].name);
                        *ret_bytes = media_types[i].bytes;
                        return 0;
                }
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        uint64_t mult = 1;
        if (end && (*end == 'K' || *end == 'k'))
                mult = 1ull << 10, end++;
        else if (end && (*end == 'M' || *end == 'm'))
                mult = 1ull << 20, end++;
        else if (end && (*end == 'G' || *end == 'g'))
                mult = 1ull << 30, end++;
        if (errno || end == s || *end || v == 0 || v > UINT64_MAX / mult || v * mult < (1ull << 20) ||
            s[0] == '-')
                return evd_error_set(
                    err, -EINVAL,
                    "media '%s': not cd, dvd, dvd-dl, bd25, bd50, bd100 or a size of at least 1M", s);
        *ret_bytes = v * mult;
        snprintf(ret_name, 17, "%.16s", s);
        for (char *p = ret_name; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                        *p = (char)(*p - 'A' + 'a');
        return 0;
}

static uint64_t blocks_of(uint64_t bytes)
{
        return (bytes + ISO_BLOCK - 1) / ISO_BLOCK * ISO_BLOCK;
}

int evd_disc_plan(const uint64_t *unit_bytes, size_t n, uint64_t media_bytes, unsigned *ret_part,
                  unsigned *ret_parts, size_t *ret_too_big, EvdError *err)
{
        if (media_bytes <= EVD_DISC_RESERVE_DISC)
                return evd_error_set(err, -EFBIG, "media of %" PRIu64 " bytes hold nothing", media_bytes);
        uint64_t room = media_bytes - EVD_DISC_RESERVE_DISC, used = 0;
        unsigned part = 1;
        for (size_t i = 0; i < n; i++) {
                uint64_t u = unit_bytes[i];
                if (u > room) {
                        if (ret_too_big)
                                *ret_too_big = i;
                        return evd_error_set(err, -EFBIG,
                                             "recording %zu needs %" PRIu64
                                             " bytes, more than one disc of %" PRIu64
                                             " bytes holds (%" PRIu64 " after the disc's own files)",
                                             i + 1, u, media_bytes, room);
                }
                if (used + u > room) {
                        part++;
                        used = 0;
                }
                used += u;
                ret_part[i] = part;
        }
        *ret_parts = part;
        return 0;
}

int evd_disc_job_queue(EvdDb *db, const EvdDiscJobSpec *spec, int64_t *ret_job_id, EvdError *err)
{
        if (!spec->requested_by || !*spec->requested_by)
                return evd_error_set(err, -EINVAL, "queueing a disc job: who asks for it is not given");
        char media[17];
        uint64_t media_bytes;
        int r = evd_disc_media_parse(spec->media ? spec->media : EVD_DISC_MEDIA_DEFAULT, media, &media_bytes,
                                     err);
        if (r < 0)
                return r;
        unsigned copies = spec->copies ? spec->copies : EVD_DISC_COPIES_DEFAULT;
        if (copies > 9)
                return evd_error_set(err, -EINVAL, "queueing a disc job: at most 9 copies");

        EvdDbDiscCandidate *c = NULL;
        size_t n = 0;
        r = evd_db_disc_select(db, &spec->select, &c, &n, err);
        if (r < 0)
                return r;
        _cleanup_free_ uint64_t *units = calloc(n, sizeof(uint64_t));
        _cleanup_free_ unsigned *parts = calloc(n, sizeof(unsigned));
        _cleanup_free_ int64_t *ids = calloc(n, sizeof(int64_t));
        if (!units || !parts || !ids) {
                evd_db_disc_candidates_free(c, n);
                return evd_error_set(err, -ENOMEM, "queueing a disc job: out of memory");
        }
        _cleanup_close_ int store_fd =
            spec->store_root ? open(spec->store_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
        uint64_t payload = 0;
        char cases[1024] = "";
        for (size_t i = 0; i < n; i++) {
                uint64_t archive = c[i].size + c[i].size / 50 + (64u << 10); /* estimate: stream copy */
                struct stat st;
                if (!c[i].archive_path)
                        archive = 0;
                else if (store_fd >= 0 &&
                         fstatat(store_fd, c[i].archive_path, &st, AT_SYMLINK_NOFOLLOW) == 0)
                        archive = (uint64_t)st.st_size;
                units[i] = blocks_of(c[i].size) + blocks_of(archive) + EVD_DISC_RESERVE_FILE;
                payload += c[i].size + archive;
                ids[i] = c[i].file_id;
                if (c[i].case_number && *c[i].case_number) {
                        /* The distinct case numbers, comma-separated (bounded). */
                        bool seen = false;
                        for (size_t j = 0; j < i && !seen; j++)
                                seen = c[j].case_number && strcmp(c[j].case_number, c[i].case_number) == 0;
                        size_t used = strlen(cases);
                        if (!seen && used + strlen(c[i].case_number) + 3 < sizeof(cases))
                                snprintf(cases + used, sizeof(cases) - used, "%s%s", used ? "," : "",
                                         c[i].case_number);
                }
        }
        unsigned n_parts = 0;
        size_t too_big = 0;
        r = evd_disc_plan(units, n, media_bytes, parts, &n_parts, &too_big, err);
        if (r == -EFBIG) {
                evd_error_set(
                    err, -EFBIG,
                    "recording %" PRId64 " (%s, %" PRIu64 " bytes with its archive copy) does not fit on "
                    "one %s disc (%" PRIu64 " bytes): choose larger media",
                    c[too_big].file_id, c[too_big].original_path, units[too_big], media, media_bytes);
        }
        /* The unit code: of the first recording's device (a job normally serves one unit). */
        char *unit = NULL;
        if (r >= 0) {
                EvdDbDevice *dev = NULL;
                if (evd_db_device_get(db, c[0].device_id, &dev, NULL) == 0 && dev->unit_code)
                        unit = strdup(dev->unit_code);
                evd_db_device_free(dev);
        }
        char selector[512];
        const EvdDbDiscSelector *s = &spec->select;
        snprintf(selector, sizeof(selector), "%s%s%s%s%s%s%s%s", s->case_number ? "case=" : "",
                 s->case_number ? s->case_number : "", s->device_id ? " device=" : "",
                 s->device_id ? s->device_id : "", s->officer_id ? " officer=" : "",
                 s->officer_id ? s->officer_id : "", s->n_file_ids ? " files=" : "",
                 s->n_file_ids ? "listed" : "");
        if (s->has_since || s->has_until) {
                size_t used = strlen(selector);
                snprintf(selector + used, sizeof(selector) - used, " time=[%" PRId64 ",%" PRId64 ")",
                         s->has_since ? s->since_us / 1000000 : 0, s->has_until ? s->until_us / 1000000 : 0);
        }
        if (r >= 0) {
                EvdDbDiscJobNew job = {
                    .requested_by = spec->requested_by,
                    .reason = spec->reason,
                    .selector = selector[0] == ' ' ? selector + 1 : selector,
                    .case_numbers = cases,
                    .unit_code = unit,
                    .media = media,
                    .media_bytes = media_bytes,
                    .copies = copies,
                    .parts = n_parts,
                    .payload_bytes = payload,
                    .file_ids = ids,
                    .file_parts = parts,
                    .n_files = n,
                };
                r = evd_db_disc_job_create(db, &job, ret_job_id, err);
        }
        free(unit);
        evd_db_disc_candidates_free(c, n);
        return r;
}

static bool state_ended(const char *s)
{
        return strcmp(s, "done") == 0 || strcmp(s, "failed") == 0 || strcmp(s, "cancelled") == 0;
}

int evd_disc_job_cancel(EvdDb *db, int64_t job_id, const char *by, const char *reason, EvdError *err)
{
        _cleanup_(evd_db_disc_job_freep) EvdDbDiscJob *job = NULL;
        int r = evd_db_disc_job_get(db, job_id, &job, err);
        if (r < 0)
                return r;
        if (state_ended(job->state))
                return evd_error_set(err, -EALREADY, "disc job %" PRId64 " has ended already (%s)", job_id,
                                     job->state);
        return evd_db_disc_job_event(db, job_id, "cancelled", 0, 0, NULL, by, reason ? reason : "cancelled",
                                     err);
}

const char *evd_disc_step_to_string(EvdDiscStep s)
{
        static const char *const names[] = {"idle",        "no-media", "verified",
                                            "disc-failed", "job-done", "job-failed"};
        return (unsigned)s < ELEMENTSOF(names) ? names[s] : "?";
}

/* ---- one step ---------------------------------------------------------------------------------------- */

typedef struct Step {
        const EvdDiscRunner *run;
        EvdDbDiscJob *job;
        unsigned part, copy;
        char *msg;
        size_t msg_size;
        EvdDiscProgress prog;
        double phase_start, last_report;
        char target[4200];  /* xorriso address written to */
        char final[4200];   /* dir: the name after verification */
        unsigned *verified; /* verified copies per part (from next_disc(), then counted here) */
} Step;

static void report(Step *s, const char *phase, uint64_t done, uint64_t total, bool force)
{
        if (!s->run->progress)
                return;
        double t = (double)evd_clock_monotonic_us() / 1e6;
        if (!s->prog.phase || strcmp(s->prog.phase, phase) != 0) {
                s->prog.phase = phase;
                s->phase_start = t;
                force = true;
        }
        if (!force && t - s->last_report < 1.0)
                return;
        s->last_report = t;
        double el = t - s->phase_start;
        s->prog.done = done;
        s->prog.total = total;
        s->prog.percent = total ? 100.0 * (double)done / (double)total : 0;
        s->prog.mbps = el > 0.05 ? (double)done / 1e6 / el : 0;
        s->prog.eta_s = s->prog.mbps > 0 && total >= done ? (double)(total - done) / 1e6 / s->prog.mbps : -1;
        s->run->progress(&s->prog, s->run->userdata);
}

static void _printf_(2, 3) step_msg(Step *s, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->msg, s->msg_size, fmt, ap);
        va_end(ap);
}

/* Every fact of a step goes through here, as one transaction: the disc burned (may be NULL) and the job's
 * next state (state NULL: none). Through the runner's record stage (the database, or the spool while it
 * is unreachable), or without one straight into the database; evd_record_entry_apply() either way. */
static int step_record(Step *s, const EvdDbDisc *disc, const char *state, unsigned part, unsigned copy,
                       const char *drive, const char *detail, int64_t *ret_disc_id, EvdError *err)
{
        EvdDbDiscJobEvent ev = {.job_id = s->job->id,
                                .state = state,
                                .part = part,
                                .copy = copy,
                                .drive = drive,
                                .by = s->run->who,
                                .detail = detail};
        if (s->run->record) {
                int r = evd_record_disc_job(s->run->record, disc, state ? &ev : NULL, ret_disc_id, err);
                return r < 0 ? r : 0;
        }
        EvdRecordEntry e = {.kind = EVD_RECORD_KIND_DISC_JOB, .disc = disc, .job_event = state ? &ev : NULL};
        return evd_record_entry_apply(s->run->db, &e, 0, NULL, NULL, ret_disc_id, err);
}

/* Records a state event unless the latest one says the same (waiting is re-checked every few seconds). */
static int job_event(Step *s, const char *state, const char *detail, EvdError *err)
{
        if (strcmp(s->job->state, state) == 0 && s->job->state_detail &&
            strcmp(s->job->state_detail, detail) == 0 && strcmp(state, "waiting_media") == 0)
                return 0;
        return step_record(s, NULL, state, s->part, s->copy, s->run->drive, detail, NULL, err);
}

typedef struct ProbeState {
        char status[160];
        bool blank, none;
} ProbeState;

static int probe_line(char channel, const char *text, void *userdata)
{
        ProbeState *ps = userdata;
        (void)channel;
        if (strncmp(text, "Media status :", 14) == 0) {
                snprintf(ps->status, sizeof(ps->status), "%s", text + 15);
                ps->blank = strstr(text, "is blank") != NULL;
                ps->none = strstr(text, "no media") != NULL || strstr(text, "is not present") != NULL;
        } else if (strncmp(text, "Media current:", 14) == 0 && strstr(text, "is not present")) {
                ps->none = true;
        }
        return 0;
}

/* Is there a blank in the drive? 1 yes, 0 no (msg says why). Sets s->target and s->final. */
static int probe_drive(Step *s, EvdError *err)
{
        const char *d = s->run->drive;
        char label[72];
        evd_disc_label(s->job->id, s->part, s->job->parts, label, sizeof(label));
        if (strncmp(d, "dir:", 4) == 0) {
                const char *dir = d + 4;
                struct stat st;
                if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
                        step_msg(s, "hot folder %s is not there", dir);
                        return 0;
                }
                snprintf(s->final, sizeof(s->final), "%s/%s-c%u.iso", dir, label, s->copy);
                snprintf(s->target, sizeof(s->target), "stdio:%s/.%s-c%u.iso.part", dir, label, s->copy);
                /* A leftover of an interrupted attempt: ours, never verified, so it goes. */
                unlink(s->target + 6);
                if (lstat(s->final, &st) == 0) {
                        step_msg(
                            s,
                            "hot folder %s already holds %s-c%u.iso, which was never recorded as verified: "
                            "move it away",
                            dir, label, s->copy);
                        return 0;
                }
                return 1;
        }
        const char *path = evd_disc_drive_path(d);
        snprintf(s->target, sizeof(s->target), "%s", d);
        s->final[0] = '\0';
        if (strncmp(d, "stdio:", 6) == 0) {
                struct stat st;
                if (stat(path, &st) < 0)
                        return errno == ENOENT
                                   ? 1
                                   : evd_error_set_errno(err, negative_errno(), "cannot stat %s", path);
                if (S_ISREG(st.st_mode) && st.st_size == 0)
                        return 1;
        } else {
                /* An optical drive: ask xorriso what is in it. */
                ProbeState ps = {};
                EvdXorrisoRun x = s->run->xorriso;
                x.line = probe_line;
                x.userdata = &ps;
                const char *args[] = {"-outdev", d, "-toc", NULL};
                EvdError xerr = {};
                int r = evd_xorriso_run(&x, args, NULL, &xerr);
                if (r == -ENOENT || r == -ECANCELED) {
                        if (err)
                                *err = xerr;
                        return r;
                }
                if (ps.none || (r < 0 && !ps.blank)) {
                        step_msg(s, "no disc in drive %s (%s)", d, ps.status[0] ? ps.status : xerr.msg);
                        return 0;
                }
                if (ps.blank)
                        return 1;
                step_msg(s, "drive %s holds a disc that is not blank (%s): insert a blank disc", d,
                         ps.status);
                return 0;
        }
        /* A written pseudo-disc: say whose it is. */
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        uint8_t pvd[ISO_BLOCK];
        char volid[33] = "";
        if (fd >= 0 && pread(fd, pvd, sizeof(pvd), 16 * ISO_BLOCK) == (ssize_t)sizeof(pvd) && pvd[0] == 1 &&
            memcmp(pvd + 1, "CD001", 5) == 0) {
                memcpy(volid, pvd + 40, 32);
                for (int i = 31; i >= 0 && (volid[i] == ' ' || volid[i] == '\0'); i--)
                        volid[i] = '\0';
        }
        step_msg(s, "drive %s holds a written disc%s%s%s: insert a blank disc", d,
                 volid[0] ? " (volume " : "", volid, volid[0] ? ")" : "");
        return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st, (void)flag, (void)ftw;
        remove(path);
        return 0;
}

/* Removes a staging directory made by us (below the runner's work_dir). */
static void remove_tree(const char *path)
{
        if (path && *path)
                nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Builds the bag of the step's part: the first time, freezing what goes on it (part row + files). */
static int build_part(Step *s, const char *work, EvdDbDiscPart *part, EvdDiscBag **ret_bag, EvdError *err)
{
        EvdDb *db = s->run->db;
        _cleanup_free_ int64_t *ids = NULL;
        size_t n = 0;
        int r = evd_db_disc_job_part_files(db, s->job->id, s->part, &ids, &n, err);
        if (r < 0)
                return r;
        if (n == 0)
                return evd_error_set(err, -ENOENT,
                                     "disc job %" PRId64 ": disc %u has no recordings in its plan",
                                     s->job->id, s->part);
        r = evd_db_disc_part_get(db, s->job->id, s->part, part, err);
        bool first = r == -ENOENT;
        if (r < 0 && !first)
                return r;
        if (first) {
                *part = (EvdDbDiscPart){.job_id = s->job->id, .part = s->part};
                evd_disc_label(s->job->id, s->part, s->job->parts, part->label, sizeof(part->label));
                evd_disc_volume_id(s->job->case_numbers, s->job->id, s->part, part->volume_id);
                r = evd_db_disc_custody_head(db, &part->custody_upto, NULL, err);
                if (r < 0)
                        return r;
                part->snapshot_us = evd_clock_wall_us();
                time_t t = (time_t)(part->snapshot_us / 1000000);
                struct tm tm;
                strftime(part->bagging_date, sizeof(part->bagging_date), "%Y-%m-%d", gmtime_r(&t, &tm));
        }
        EvdDiscBagSpec spec = {
            .db = db,
            .store_root = s->run->store_root,
            .work_dir = work,
            .job = s->job,
            .part = part,
            .file_ids = ids,
            .n_files = n,
        };
        _cleanup_(evd_disc_bag_freep) EvdDiscBag *bag = NULL;
        r = evd_disc_bag_build(&spec, &bag, err);
        if (r < 0)
                return r;
        if (first) {
                _cleanup_free_ EvdDbDiscPartFile *pf = calloc(bag->n_files, sizeof(*pf));
                if (!pf)
                        return evd_error_set(err, -ENOMEM, "out of memory");
                for (size_t i = 0; i < bag->n_files; i++)
                        pf[i] = (EvdDbDiscPartFile){.path = bag->files[i].path,
                                                    .size = bag->files[i].size,
                                                    .sha256 = bag->files[i].sha256,
                                                    .file_id = bag->files[i].file_id,
                                                    .role = bag->files[i].role};
                r = evd_db_disc_part_create(db, part, pf, bag->n_files, err);
                if (r < 0)
                        return r;
        }
        *ret_bag = steal_ptr(&bag);
        return 0;
}

/* What the rebuilt bag holds must be what was frozen the first time (else the store or the database
 * changed underneath: a job failure, never a silent new content). */
typedef struct Same {
        const EvdDiscBag *bag;
        size_t matched;
        char first_diff[300];
} Same;

static int same_file(const char *path, uint64_t size, const char *sha256_hex, int64_t file_id,
                     const char *role, void *userdata)
{
        (void)file_id, (void)role;
        Same *sm = userdata;
        for (size_t i = 0; i < sm->bag->n_files; i++) {
                const EvdDiscBagFile *f = &sm->bag->files[i];
                if (strcmp(f->path, path) != 0)
                        continue;
                char hex[EVD_DB_HEX_SIZE];
                if (f->size == size && strcmp(evd_hex(f->sha256, EVD_DIGEST_SIZE, hex), sha256_hex) == 0)
                        sm->matched++;
                else if (!sm->first_diff[0])
                        snprintf(sm->first_diff, sizeof(sm->first_diff), "%s", path);
                return 0;
        }
        if (!sm->first_diff[0])
                snprintf(sm->first_diff, sizeof(sm->first_diff), "%s", path);
        return 0;
}

/* Progress of a burn from xorriso's "UPDATE : Writing: <sectors>s <pct>% ..." lines. */
typedef struct BurnState {
        Step *s;
        uint64_t total;
} BurnState;

static int burn_line(char channel, const char *text, void *userdata)
{
        BurnState *b = userdata;
        (void)channel;
        const char *w = strstr(text, "UPDATE : Writing:");
        unsigned long long sectors;
        if (w && sscanf(w + 17, " %llus", &sectors) == 1)
                report(b->s, "burning", (uint64_t)sectors * ISO_BLOCK, b->total, false);
        return 0;
}

typedef struct SizeState {
        uint64_t blocks;
} SizeState;

static int size_line(char channel, const char *text, void *userdata)
{
        SizeState *z = userdata;
        unsigned long long b;
        if (channel == 'R' && sscanf(text, "Image size : %llus", &b) == 1)
                z->blocks = b;
        return 0;
}

static void read_progress(uint64_t done, uint64_t total, void *userdata)
{
        report(userdata, "verifying", done, total, false);
}

/* The xorriso arguments that make the image: fixed dates so that every copy is identical. */
static void image_args(const char **a, size_t *n, const char *target, const EvdDbDiscPart *part,
                       const char *graft, char date[17])
{
        time_t t = (time_t)(part->snapshot_us / 1000000);
        struct tm tm;
        strftime(date, 17, "%Y%m%d%H%M%S00", gmtime_r(&t, &tm));
        const char *fixed[] = {"-abort_on",
                               "FAILURE",
                               "-outdev",
                               target,
                               "-volid",
                               part->volume_id,
                               "-compliance",
                               "iso_9660_level=3",
                               "-joliet",
                               "on",
                               "-rockridge",
                               "on",
                               "-md5",
                               "on",
                               "-volume_date",
                               "uuid",
                               date,
                               "-volume_date",
                               "c",
                               date,
                               "-volume_date",
                               "m",
                               date,
                               "-volume_date",
                               "all_file_dates",
                               date,
                               "-options_from_file",
                               graft,
                               "-chown_r",
                               "0",
                               "/",
                               "--",
                               "-chgrp_r",
                               "0",
                               "/",
                               "--"};
        for (size_t i = 0; i < ELEMENTSOF(fixed); i++)
                a[(*n)++] = fixed[i];
}

static int burn_and_verify(Step *s, const EvdDbDiscPart *part, const EvdDiscBag *bag, bool *ret_verified,
                           char *detail, size_t detail_size, EvdDbDisc *disc,
                           uint8_t image_sha[EVD_DIGEST_SIZE], EvdError *err)
{
        const char *a[64];
        size_t n = 0;
        char date[17];
        /* The size first, without touching the medium (xorriso would take a stdio target as written). */
        image_args(a, &n, "stdio:/dev/null", part, bag->graft_path, date);
        a[n++] = "-print_size";
        a[n] = NULL;
        SizeState z = {};
        EvdXorrisoRun x = s->run->xorriso;
        x.line = size_line;
        x.userdata = &z;
        int r = evd_xorriso_run(&x, a, NULL, err);
        if (r < 0)
                return r;
        if (z.blocks == 0)
                return evd_error_set(err, -EIO, "xorriso -print_size reported no image size");
        if (z.blocks * ISO_BLOCK > s->job->media_bytes) {
                snprintf(detail, detail_size,
                         "disc too small: the image of %s needs %" PRIu64 " bytes, %s holds %" PRIu64,
                         part->label, z.blocks * ISO_BLOCK, s->job->media, s->job->media_bytes);
                return -EFBIG;
        }

        r = job_event(s, "burning", part->label, err);
        if (r < 0)
                return r;
        n = 0;
        image_args(a, &n, s->target, part, bag->graft_path, date);
        a[n++] = "-commit";
        a[n] = NULL;
        BurnState bs = {.s = s, .total = z.blocks * ISO_BLOCK};
        x.line = burn_line;
        x.userdata = &bs;
        EvdError berr = {};
        disc->burned_us = 0;
        report(s, "burning", 0, bs.total, true);
        r = evd_xorriso_run(&x, a, NULL, &berr);
        if (r == -ENOENT || r == -ECANCELED) {
                if (err)
                        *err = berr;
                return r;
        }
        if (r < 0) {
                snprintf(detail, detail_size, "write failed: %s", berr.msg);
                *ret_verified = false;
                return 0;
        }
        disc->burned_us = evd_clock_wall_us();
        report(s, "burning", bs.total, bs.total, true);

        r = job_event(s, "verifying", part->label, err);
        if (r < 0)
                return r;
        _cleanup_(evd_disc_readback_freep) EvdDiscReadback *rb = NULL;
        EvdError rerr = {};
        r = evd_disc_read_back(s->target, &s->run->xorriso, read_progress, s, &rb, &rerr);
        if (r == -ENOENT && strstr(rerr.msg, "xorriso")) {
                if (err)
                        *err = rerr;
                return r;
        }
        if (r == -ECANCELED) {
                if (err)
                        *err = rerr;
                return r;
        }
        if (r < 0) {
                snprintf(detail, detail_size, "read-back failed: %s", rerr.msg);
                *ret_verified = false;
                return 0;
        }
        EvdDiscCompare cmp;
        r = evd_disc_readback_compare_files(bag->files, bag->n_files, rb, &cmp, err);
        if (r < 0)
                return r;
        memcpy(image_sha, rb->image_sha256, EVD_DIGEST_SIZE);
        disc->image_sha256 = image_sha;
        disc->image_blocks = rb->image_blocks;
        disc->files_checked = cmp.files_checked;
        disc->files_bad = cmp.files_bad;
        bool ok = r == 1;
        char hex[EVD_DB_HEX_SIZE];
        evd_hex(rb->image_sha256, EVD_DIGEST_SIZE, hex);
        if (ok && part->image_sha256[0] && strcmp(part->image_sha256, hex) != 0) {
                ok = false;
                snprintf(detail, detail_size, "image %s differs from the first verified copy (%s)", hex,
                         part->image_sha256);
        } else if (ok && strcmp(rb->volume_id, part->volume_id) != 0) {
                ok = false;
                snprintf(detail, detail_size, "volume ID '%s' read back, '%s' expected", rb->volume_id,
                         part->volume_id);
        } else if (!ok) {
                snprintf(detail, detail_size, "read-back: %s", cmp.detail);
        } else {
                snprintf(detail, detail_size,
                         "%u files read back and matching, xorriso MD5 session check: match",
                         cmp.files_checked);
        }
        disc->verified_us = ok ? evd_clock_wall_us() : 0;
        *ret_verified = ok;
        return 0;
}

/* The lowest part of the lowest copy still missing after s->verified: sets s->part/s->copy, or returns
 * 0 when complete. */
static int next_missing(Step *s)
{
        for (unsigned c = 1; c <= s->job->copies; c++)
                for (unsigned p = 1; p <= s->job->parts; p++)
                        if (s->verified[p - 1] < c) {
                                s->part = p;
                                s->copy = s->verified[p - 1] + 1;
                                return 1;
                        }
        return 0;
}

/* The same from the database's counts (kept in s->verified: after the burn the step counts itself, so
 * that its outcome needs no database). */
static int next_disc(Step *s, EvdError *err)
{
        free(s->verified);
        s->verified = NULL;
        int r = evd_db_disc_verified_counts(s->run->db, s->job->id, s->job->parts, &s->verified, err);
        if (r < 0)
                return r;
        return next_missing(s);
}

static int run_locked(Step *s, EvdDiscStep *ret_step, EvdError *err)
{
        EvdDb *db = s->run->db;
        int r;
        if (state_ended(s->job->state)) {
                step_msg(s, "disc job %" PRId64 " has ended (%s)", s->job->id, s->job->state);
                *ret_step = EVD_DISC_STEP_IDLE;
                return 0;
        }
        r = next_disc(s, err);
        if (r < 0)
                return r;
        if (r == 0) {
                step_msg(s, "disc job %" PRId64 ": all %u disc(s) x %u copies verified", s->job->id,
                         s->job->parts, s->job->copies);
                *ret_step = EVD_DISC_STEP_JOB_DONE;
                return step_record(s, NULL, "done", 0, 0, NULL, s->msg, NULL, err);
        }

        /* A previous attempt that stopped while burning or verifying (worker killed, database lost) left
         * a disc nobody verified: record it as failed, so that it is never counted. */
        if ((strcmp(s->job->state, "burning") == 0 || strcmp(s->job->state, "verifying") == 0)) {
                unsigned p = s->part, c = s->copy;
                EvdDbDiscPart part;
                /* The interrupted disc is the one the event named. */
                _cleanup_(evd_db_disc_job_freep) EvdDbDiscJob *unused = NULL;
                (void)unused;
                char detail[300];
                snprintf(detail, sizeof(detail),
                         "interrupted while %s on %s (worker stopped or database lost); "
                         "that disc is not counted",
                         s->job->state, s->job->state_drive ? s->job->state_drive : "?");
                bool built = evd_db_disc_part_get(db, s->job->id, p, &part, NULL) == 0;
                EvdDbDisc d = {.job_id = s->job->id,
                               .part_id = built ? part.id : 0,
                               .copy = c,
                               .verified = false,
                               .drive = s->job->state_drive ? s->job->state_drive : "?",
                               .media = s->job->media,
                               .by = s->run->who,
                               .detail = detail};
                r = step_record(s, built ? &d : NULL, "queued", p, c, NULL,
                                "resumed after an interrupted attempt", NULL, err);
                if (r < 0)
                        return r;
                s->job->discs_failed += built;
                free(s->job->state);
                s->job->state = strdup("queued");
                if (!s->job->state)
                        return evd_error_set(err, -ENOMEM, "out of memory");
        }

        r = probe_drive(s, err);
        if (r < 0)
                return r;
        if (r == 0) {
                *ret_step = EVD_DISC_STEP_NO_MEDIA;
                char detail[600];
                snprintf(detail, sizeof(detail), "disc %u of %u, copy %u: %s", s->part, s->job->parts,
                         s->copy, s->msg);
                snprintf(s->msg, s->msg_size, "%s", detail);
                return job_event(s, "waiting_media", detail, err);
        }

        /* Stage the bag. */
        char work[4200];
        snprintf(work, sizeof(work), "%s/evd-disc-j%" PRId64 "-XXXXXX", s->run->work_dir, s->job->id);
        if (!mkdtemp(work))
                return evd_error_set_errno(err, negative_errno(), "cannot create a staging directory in %s",
                                           s->run->work_dir);
        EvdDbDiscPart part;
        _cleanup_(evd_disc_bag_freep) EvdDiscBag *bag = NULL;
        s->prog.job_id = s->job->id;
        s->prog.part = s->part;
        s->prog.parts = s->job->parts;
        s->prog.copy = s->copy;
        s->prog.copies = s->job->copies;
        report(s, "building", 0, 0, true);
        r = build_part(s, work, &part, &bag, err);
        if (r == -ENOENT || r == -EBADMSG || r == -EINVAL) {
                /* The evidence itself is not there or not as recorded: no new blank fixes that. */
                char detail[600];
                snprintf(detail, sizeof(detail), "disc %u: %s", s->part, evd_error_message(err, r));
                remove_tree(work);
                step_msg(s, "disc job %" PRId64 " failed: %s", s->job->id, detail);
                *ret_step = EVD_DISC_STEP_JOB_FAILED;
                return step_record(s, NULL, "failed", s->part, s->copy, s->run->drive, detail, NULL, err);
        }
        if (r < 0) {
                remove_tree(work);
                return r;
        }
        Same sm = {.bag = bag};
        r = evd_db_disc_part_files(db, part.id, same_file, &sm, err);
        if (r >= 0 && (sm.first_diff[0] || sm.matched != bag->n_files)) {
                char detail[600];
                snprintf(detail, sizeof(detail),
                         "disc %s rebuilt differs from what was frozen for it (%s): the store "
                         "or the database changed",
                         part.label, sm.first_diff[0] ? sm.first_diff : "file count");
                remove_tree(work);
                step_msg(s, "disc job %" PRId64 " failed: %s", s->job->id, detail);
                *ret_step = EVD_DISC_STEP_JOB_FAILED;
                return step_record(s, NULL, "failed", s->part, s->copy, s->run->drive, detail, NULL, err);
        }
        if (r < 0) {
                remove_tree(work);
                return r;
        }

        bool verified = false;
        char detail[700] = "";
        uint8_t image_sha[EVD_DIGEST_SIZE];
        EvdDbDisc disc = {.job_id = s->job->id,
                          .part_id = part.id,
                          .copy = s->copy,
                          .drive = s->run->drive,
                          .media = s->job->media,
                          .by = s->run->who};
        r = burn_and_verify(s, &part, bag, &verified, detail, sizeof(detail), &disc, image_sha, err);
        remove_tree(work);
        if (r == -EFBIG) {
                step_msg(s, "disc job %" PRId64 " failed: %s", s->job->id, detail);
                *ret_step = EVD_DISC_STEP_JOB_FAILED;
                return step_record(s, NULL, "failed", s->part, s->copy, s->run->drive, detail, NULL, err);
        }
        if (r < 0) {
                if (s->final[0])
                        unlink(s->target + 6);
                return r;
        }
        if (verified && s->final[0] && rename(s->target + 6, s->final) < 0) {
                verified = false;
                snprintf(detail, sizeof(detail), "cannot move the verified image to %s: %s", s->final,
                         strerror(errno));
        }
        if (!verified && s->final[0])
                unlink(s->target + 6);
        disc.verified = verified;
        disc.detail = detail;
        if (!verified)
                disc.verified_us = 0;
        /* The disc and the job's next state: one fact, computed here (the job is ours: its lock), so that
         * it needs no database -- spooled if the database went away during the burn. */
        int64_t disc_id = 0;
        char disc_name[40] = "(spooled)";
        unsigned burned_part = s->part, burned_copy = s->copy;
        if (verified) {
                s->verified[s->part - 1]++;
                bool more = next_missing(s) > 0;
                r = step_record(s, &disc, more ? "queued" : "done", more ? s->part : 0, more ? s->copy : 0,
                                NULL, more ? "next disc" : "all discs verified", &disc_id, err);
                if (r < 0)
                        return r;
                if (disc_id)
                        snprintf(disc_name, sizeof(disc_name), "%" PRId64, disc_id);
                step_msg(s, "disc %s: %s copy %u verified on %s (%s)", disc_name, part.label, burned_copy,
                         s->run->drive, detail);
                *ret_step = EVD_DISC_STEP_VERIFIED;
                if (!more) {
                        *ret_step = EVD_DISC_STEP_JOB_DONE;
                        size_t used = strlen(s->msg);
                        snprintf(s->msg + used, s->msg_size - used, "; job %" PRId64 " done", s->job->id);
                }
                return 0;
        }
        unsigned failed = s->job->discs_failed + 1;
        unsigned max = s->run->max_failures ? s->run->max_failures : EVD_DISC_FAILURES_MAX;
        char why[800];
        if (failed >= max)
                snprintf(why, sizeof(why), "%u discs failed (last: %s)", failed, detail);
        else
                snprintf(why, sizeof(why), "disc %u of %u, copy %u failed (%s): insert a new blank disc",
                         burned_part, s->job->parts, burned_copy, detail);
        r = step_record(s, &disc, failed >= max ? "failed" : "waiting_media", burned_part, burned_copy,
                        s->run->drive, why, &disc_id, err);
        if (r < 0)
                return r;
        if (disc_id)
                snprintf(disc_name, sizeof(disc_name), "%" PRId64, disc_id);
        step_msg(s, "disc %s: %s copy %u FAILED on %s: %s", disc_name, part.label, burned_copy,
                 s->run->drive, detail);
        *ret_step = failed >= max ? EVD_DISC_STEP_JOB_FAILED : EVD_DISC_STEP_DISC_FAILED;
        return 0;
}

int evd_disc_run_step(const EvdDiscRunner *runner, int64_t job_id, EvdDiscStep *ret_step, char *msg,
                      size_t msg_size, EvdError *err)
{
        *ret_step = EVD_DISC_STEP_IDLE;
        if (msg_size)
                msg[0] = '\0';
        int r;
        if (runner->record) {
                /* a fact of a step spooled during an outage: the database's state of the jobs is behind */
                unsigned waiting = 0;
                r = evd_record_waiting(runner->record, EVD_RECORD_KIND_DISC_JOB, &waiting, err);
                if (r < 0)
                        return r;
                if (waiting > 0)
                        return evd_error_set(
                            err, -EAGAIN,
                            "%u disc job fact(s) wait in the spool for the database: the next "
                            "step waits for their replay",
                            waiting);
        }
        if (job_id > 0) {
                r = evd_db_disc_job_lock(runner->db, job_id, err);
                if (r < 0)
                        return r;
        } else {
                r = evd_db_disc_job_claim(runner->db, &job_id, err);
                if (r <= 0) {
                        if (r == 0)
                                snprintf(msg, msg_size, "no disc job to run");
                        return r;
                }
        }
        Step s = {.run = runner, .msg = msg, .msg_size = msg_size};
        r = evd_db_disc_job_get(runner->db, job_id, &s.job, err);
        if (r >= 0)
                r = run_locked(&s, ret_step, err);
        evd_db_disc_jobs_free(s.job, s.job ? 1 : 0);
        free(s.verified);
        evd_db_disc_job_release(runner->db, job_id);
        return r;
}

/* ---- disc verify (a fixity check later) -------------------------------------------------------------- */

int evd_disc_check(EvdDb *db, const char *drive, const EvdXorrisoRun *xorriso, const char *by,
                   EvdDiscCheckResult *ret, EvdError *err)
{
        *ret = (EvdDiscCheckResult){.outcome = "unreadable"};
        char addr[4200];
        /* A plain path is an image file. */
        if (drive[0] == '/' && strncmp(drive, "/dev/", 5) != 0)
                snprintf(addr, sizeof(addr), "stdio:%s", drive);
        else
                snprintf(addr, sizeof(addr), "%s", drive);
        _cleanup_(evd_disc_readback_freep) EvdDiscReadback *rb = NULL;
        EvdError rerr = {};
        int r = evd_disc_read_back(addr, xorriso, NULL, NULL, &rb, &rerr);
        if (r == -ENOENT && strstr(rerr.msg, "xorriso")) {
                if (err)
                        *err = rerr;
                return r;
        }
        EvdDbDiscCheck c = {.source = drive, .by = by};
        if (r < 0) {
                snprintf(ret->detail, sizeof(ret->detail), "%s", rerr.msg);
                c.outcome = ret->outcome = "unreadable";
                c.detail = ret->detail;
                return evd_db_disc_check_record(db, &c, NULL, err);
        }
        evd_hex(rb->image_sha256, EVD_DIGEST_SIZE, ret->image_sha256);
        c.image_sha256 = rb->image_sha256;
        snprintf(ret->label, sizeof(ret->label), "%s", rb->label);
        EvdDbDiscPart part;
        EvdError ferr = {};
        r = rb->label[0] ? evd_db_disc_part_find(db, rb->label, &part, &ferr) : -ENOENT;
        if (r == -ENOENT) {
                snprintf(ret->detail, sizeof(ret->detail),
                         "volume '%s'%s%s%s is not a disc this database knows", rb->volume_id,
                         rb->label[0] ? " labelled '" : " without a bag-info label", rb->label,
                         rb->label[0] ? "'" : "");
                c.outcome = ret->outcome = "unknown_disc";
                c.detail = ret->detail;
                return evd_db_disc_check_record(db, &c, NULL, err);
        }
        if (r < 0) {
                if (err)
                        *err = ferr;
                return r;
        }
        ret->part_id = c.part_id = part.id;
        ret->job_id = part.job_id;
        ret->part = part.part;
        _cleanup_(evd_db_disc_job_freep) EvdDbDiscJob *job = NULL;
        if (evd_db_disc_job_get(db, part.job_id, &job, NULL) == 0)
                ret->parts = job->parts;
        EvdDiscCompare cmp;
        r = evd_disc_readback_compare(db, part.id, rb, &cmp, err);
        if (r < 0)
                return r;
        ret->files_checked = c.files_checked = cmp.files_checked;
        ret->files_bad = c.files_bad = cmp.files_bad;
        ret->image_matches = part.image_sha256[0] && strcmp(part.image_sha256, ret->image_sha256) == 0;
        bool ok = r == 1 && ret->image_matches;
        if (ok)
                snprintf(
                    ret->detail, sizeof(ret->detail),
                    "%u files match the database, image SHA-256 as burned, xorriso MD5 session check: match",
                    cmp.files_checked);
        else
                snprintf(ret->detail, sizeof(ret->detail), "%s%s%s", cmp.detail,
                         cmp.detail[0] && !ret->image_matches ? "; " : "",
                         ret->image_matches
                             ? ""
                             : "image SHA-256 differs from the one recorded when it was burned");
        c.outcome = ret->outcome = ok ? "ok" : "mismatch";
        c.detail = ret->detail;
        return evd_db_disc_check_record(db, &c, NULL, err);
}
