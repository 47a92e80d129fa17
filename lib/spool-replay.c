/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Replay of the spool into the database (spool.h, docs/spool.md "Exactly once"). Every entry becomes
 * rows through evd_record_entry_apply(), the code the record stage uses online, in one transaction,
 * and is deleted only after that transaction committed; replaying one again is harmless:
 *   FILE     the database's unique constraints refuse a second row (-EEXIST: "already recorded");
 *   END      docking_results allows one row per docking, and it goes first (-EEXIST: already);
 *   BEGIN / REFUSED  the new docking id is written to map/<key> (fsync'd) before the commit; a replay
 *            that finds the map asks the database whether that docking exists;
 *   FINDING  (docking-level, no unique key) replayed inside its docking's END transaction;
 *   LINK     file_links allows one record_found link per record (-EEXIST: already);
 *   DISC_JOB (no docking) its rows carry the entry's random spool key, unique (-EEXIST: already).
 * A session advisory lock held by the replaying connection makes a second replayer wait until the first
 * one's backend has finished (committed or rolled back), even if the first process was killed. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "clock.h"
#include "manifest.h"
#include "spool-internal.h"

#define DETAIL_MAX 640u /* a custody detail with its "[offline: spooled ...]" note */

typedef struct Replay {
        EvdSpool *s;
        EvdDb *db;
        EvdSpoolReplay *res;
        EvdError *err;
} Replay;

/* A docking-level finding waiting for its docking's END (same transaction). */
typedef struct Deferred {
        SpoolEntryName name;
        char key[EVD_SPOOL_KEY_SIZE]; /* "" once handled */
} Deferred;

static bool db_refused(int r)
{
        /* the database said no to this entry's content: it will say no again */
        return r == -EINVAL || r == -EPERM || r == -ENOENT || r == -EEXIST || r == -EBADMSG || r == -ERANGE;
}

/* Moves an entry aside with the reason next to it: never dropped. */
static void reject(Replay *p, const char *name, const char *why)
{
        char dst[ENTRY_NAME_MAX + 32], whyname[ENTRY_NAME_MAX + 40];
        snprintf(dst, sizeof(dst), "%s.%" PRId64, name, evd_clock_wall_us());
        snprintf(whyname, sizeof(whyname), "%s.why", dst);
        if (renameat(p->s->entries_fd, name, p->s->rejected_fd, dst) < 0)
                return; /* stays where it is: replayed (and rejected) again next time */
        (void)spool_fsync_dir(p->s->rejected_fd);
        (void)spool_fsync_dir(p->s->entries_fd);
        EvdSpoolWriter w;
        if (evd_spool_writer_begin(&w) >= 0) {
                evd_spool_writer_put(&w, "why", why);
                (void)spool_text_write(p->s->rejected_fd, whyname, &w, false);
        }
        p->res->rejected++;
        snprintf(p->res->last_rejected, sizeof(p->res->last_rejected), "%s: %s", name, why);
        evd_debug("spool: rejected %s: %s", name, why);
}

static int entry_delete(Replay *p, const char *name)
{
        if (unlinkat(p->s->entries_fd, name, 0) < 0 && errno != ENOENT)
                return evd_error_set_errno(p->err, -errno, "removing replayed spool entry %s", name);
        return 0;
}

/* map/<key>: the database docking id of a spooled docking ("d<id>": begun in the database already). */
static int map_read(EvdSpool *s, const char *key, int64_t *ret_id)
{
        if (key[0] == 'd')
                return spool_parse_i64(key + 1, ret_id) < 0 || *ret_id <= 0 ? -EBADMSG : 0;
        EvdSpoolText t;
        int r = spool_text_read(s->map_fd, key, 4096, &t, NULL);
        if (r >= 0)
                r = spool_parse_i64(evd_spool_text_get(&t, "docking_id"), ret_id) < 0 ? -EBADMSG : 0;
        evd_spool_text_clear(&t);
        return r;
}

typedef struct MapWrite {
        Replay *p;
        const char *key;
} MapWrite;

/* Before the commit of a replayed docking row: durably, so that a crash after the commit is noticed. */
static int map_write(int64_t docking_id, void *userdata)
{
        MapWrite *m = userdata;
        EvdSpoolWriter w;
        if (evd_spool_writer_begin(&w) < 0)
                return -ENOMEM;
        evd_spool_writer_putf(&w, "docking_id", "%" PRId64, docking_id);
        int r = spool_text_write(m->p->s->map_fd, m->key, &w, false);
        if (r < 0)
                return evd_error_set_errno(m->p->err, r, "writing %s/map/%s", m->p->s->dir, m->key);
        return 0;
}

/* "<detail> [offline: spooled <when>]" in buf. */
static const char *spooled_note(const EvdSpoolEntry *e, const char *detail, char *buf, size_t size)
{
        char when[EVD_TIME_STRLEN + 1];
        snprintf(buf, size, "%s [offline: spooled %s]", strna(detail),
                 evd_time_format(e->header.at_us, 0, when));
        return buf;
}

/* Custody details say when the step happened: the database clock stamps the replay. The entry's rec
 * then points to the annotated copies in ev/details. */
static void events_annotate(EvdSpoolEntry *e, EvdCustodyEntry ev[EVD_RECORD_EVENTS_MAX],
                            char (*details)[DETAIL_MAX])
{
        for (size_t i = 0; i < e->rec.n_events; i++) {
                ev[i] = e->rec.events[i];
                ev[i].detail = spooled_note(e, e->rec.events[i].detail, details[i], DETAIL_MAX);
        }
        e->rec.events = ev;
}

/* BEGIN and REFUSED: a new docking row with its custody (and for REFUSED its finding and result). */
static int replay_docking(Replay *p, const SpoolEntryName *n, EvdSpoolEntry *e)
{
        const char *key = e->header.docking_key;
        int64_t id = 0;
        int r = map_read(p->s, key, &id);
        if (r >= 0) {
                r = evd_db_docking_exists(p->db, id, p->err);
                if (r < 0)
                        return r;
                if (r > 0) { /* committed by a replay that stopped before deleting the entry */
                        p->res->already++;
                        return entry_delete(p, n->name);
                }
                (void)unlinkat(p->s->map_fd, key, 0);
        }
        EvdCustodyEntry ev[EVD_RECORD_EVENTS_MAX];
        char details[EVD_RECORD_EVENTS_MAX][DETAIL_MAX];
        events_annotate(e, ev, details);
        MapWrite m = {.p = p, .key = key};
        r = evd_record_entry_apply(p->db, &e->rec, 0, map_write, &m, &id, p->err);
        if (r < 0)
                return r;
        p->res->replayed++;
        r = entry_delete(p, n->name);
        if (r >= 0 && e->rec.kind == EVD_RECORD_KIND_REFUSED)
                (void)unlinkat(p->s->map_fd, key, 0);
        return r;
}

/* A docking whose begin entry is gone (damaged, so rejected, or missing): its other entries are not lost
 * with it. The docking row is rebuilt from what this entry carries (recorder, time; transport 'spool'),
 * with a custody event 'docked' that says so, through the same evd_record_entry_apply() as a replayed
 * BEGIN (its id is noted in map/<key> before the commit); the entries then replay under it. */
static int docking_rebuild(Replay *p, const SpoolEntryName *n, const EvdSpoolEntry *e, int64_t *ret_id)
{
        const EvdDbFile *f = e->rec.kind == EVD_RECORD_KIND_FILE ? e->rec.file : NULL;
        const char *device = f && f->device_id && evd_device_id_valid(f->device_id)      ? f->device_id
                             : e->header.device && evd_device_id_valid(e->header.device) ? e->header.device
                             : n->device[0]                                              ? n->device
                                                                                         : NULL;
        int64_t when = f && f->ingested_us > 0 ? f->ingested_us : e->header.at_us;
        EvdDbDocking d = {.device_id = device,
                          .identity = device ? device : "",
                          .transport = "spool",
                          .location =
                              "unknown: rebuilt from the spooled entries (the begin entry was damaged "
                              "or missing)",
                          .docked_us = when};
        char detail[DETAIL_MAX], at[EVD_TIME_STRLEN + 1];
        snprintf(detail, sizeof(detail),
                 "docking rebuilt from its spooled entries: its begin entry was damaged or missing (see "
                 "%s/rejected) [offline: spooled %s]",
                 p->s->dir, evd_time_format(when, 0, at));
        EvdCustodyEntry ev = {.kind = "docked", .device_id = device, .detail = detail};
        EvdRecordEntry rec = {
            .kind = EVD_RECORD_KIND_BEGIN, .device_id = device, .docking = &d, .events = &ev, .n_events = 1};
        MapWrite m = {.p = p, .key = e->header.docking_key};
        int r = evd_record_entry_apply(p->db, &rec, 0, map_write, &m, ret_id, p->err);
        if (r >= 0) {
                p->res->rebuilt++;
                evd_debug("spool: docking %s rebuilt as docking %" PRId64 " from %s", e->header.docking_key,
                          *ret_id, n->name);
        }
        return r;
}

/* FILE, LINK: one entry into its docking; -EEXIST means recorded before. */
static int replay_file(Replay *p, const SpoolEntryName *n, EvdSpoolEntry *e, int64_t docking_id)
{
        EvdCustodyEntry ev[EVD_RECORD_EVENTS_MAX];
        char details[EVD_RECORD_EVENTS_MAX][DETAIL_MAX];
        events_annotate(e, ev, details);
        int r = evd_record_entry_apply(p->db, &e->rec, docking_id, NULL, NULL, NULL, p->err);
        if (r == -EEXIST) /* recorded before: online before the outage, or by an interrupted replay */
                p->res->already++;
        else if (r < 0)
                return r;
        else
                p->res->replayed++;
        return entry_delete(p, n->name);
}

/* A fact of no docking (DISC_JOB): applied as it is. Its rows carry the entry's spool key, so a second
 * replay of it meets the unique key (-EEXIST: already recorded). The details say when it happened. */
static int replay_standalone(Replay *p, const SpoolEntryName *n, EvdSpoolEntry *e)
{
        char disc_detail[1024], event_detail[1024];
        EvdDbDisc disc;
        EvdDbDiscJobEvent ev;
        if (e->rec.disc) {
                disc = *e->rec.disc;
                disc.detail = spooled_note(e, disc.detail, disc_detail, sizeof(disc_detail));
                e->rec.disc = &disc;
        }
        if (e->rec.job_event) {
                ev = *e->rec.job_event;
                ev.detail = spooled_note(e, ev.detail, event_detail, sizeof(event_detail));
                e->rec.job_event = &ev;
        }
        int r = evd_record_entry_apply(p->db, &e->rec, 0, NULL, NULL, NULL, p->err);
        if (r == -EEXIST) {
                *p->err = (EvdError){};
                p->res->already++;
        } else if (r < 0)
                return r;
        else
                p->res->replayed++;
        return entry_delete(p, n->name);
}

/* The deferred findings of one docking, loaded: the corrupt ones are rejected on the way. */
typedef struct Findings {
        EvdSpoolEntry *entries;
        size_t n_entries;
        EvdFinding *f;
        size_t n;
} Findings;

static void findings_clear(Findings *fs)
{
        for (size_t i = 0; i < fs->n_entries; i++)
                evd_spool_entry_clear(&fs->entries[i]);
        free(fs->entries);
        free(fs->f);
        *fs = (Findings){};
}

static int findings_load(Replay *p, const char *key, Deferred *def, size_t n_def, Findings *fs)
{
        *fs = (Findings){};
        size_t n = 0;
        for (size_t i = 0; i < n_def; i++)
                n += def[i].key[0] && strcmp(def[i].key, key) == 0;
        fs->entries = calloc(n ? n : 1, sizeof(EvdSpoolEntry));
        fs->f = calloc(n ? n : 1, sizeof(EvdFinding));
        if (!fs->entries || !fs->f)
                return -ENOMEM;
        for (size_t i = 0; i < n_def; i++) {
                if (!def[i].key[0] || strcmp(def[i].key, key) != 0)
                        continue;
                EvdSpoolEntry *fe = &fs->entries[fs->n_entries++];
                EvdError perr = {};
                int r = spool_entry_load(p->s, def[i].name.name, fe, &perr);
                if (r < 0 || fe->rec.kind != EVD_RECORD_KIND_FINDING) {
                        reject(p, def[i].name.name,
                               r >= 0        ? "not a finding entry"
                               : perr.msg[0] ? perr.msg
                                             : strerror(-r));
                        def[i].key[0] = 0;
                        continue;
                }
                fs->f[fs->n++] = fe->rec.findings[0];
        }
        return 0;
}

/* Deletes the deferred findings of key (after their END committed, or was found committed). */
static void deferred_done(Replay *p, const char *key, Deferred *def, size_t n_def, bool already)
{
        for (size_t i = 0; i < n_def; i++)
                if (def[i].key[0] && strcmp(def[i].key, key) == 0) {
                        p->res->already += already;
                        (void)entry_delete(p, def[i].name.name);
                        def[i].key[0] = 0;
                }
}

/* END (or, for a docking whose writer died, a synthesised one, n NULL) with the docking's deferred
 * findings: one transaction. */
static int replay_end(Replay *p, const SpoolEntryName *n, EvdSpoolEntry *e, const char *key,
                      int64_t docking_id, Deferred *def, size_t n_def)
{
        char keybuf[EVD_SPOOL_KEY_SIZE];
        snprintf(keybuf, sizeof(keybuf), "%s", key); /* key may point into def */
        Findings fs;
        int r = findings_load(p, keybuf, def, n_def, &fs);
        if (r < 0) {
                findings_clear(&fs);
                return r;
        }
        EvdCustodyEntry ev[EVD_RECORD_EVENTS_MAX];
        char details[EVD_RECORD_EVENTS_MAX][DETAIL_MAX];
        events_annotate(e, ev, details);
        e->rec.findings = fs.f;
        e->rec.n_findings = fs.n;
        r = evd_record_entry_apply(p->db, &e->rec, docking_id, NULL, NULL, NULL, p->err);
        size_t n_findings = fs.n;
        findings_clear(&fs);
        e->rec.findings = NULL;
        e->rec.n_findings = 0;
        if (r == -EEXIST) { /* finished already: the findings went with it */
                *p->err = (EvdError){};
                deferred_done(p, keybuf, def, n_def, true);
                p->res->already += n != NULL;
                r = n ? entry_delete(p, n->name) : 0;
                (void)unlinkat(p->s->map_fd, keybuf, 0);
                return r;
        }
        if (r < 0)
                return r;
        deferred_done(p, keybuf, def, n_def, false);
        p->res->replayed += n_findings + (n != NULL);
        r = n ? entry_delete(p, n->name) : 0;
        (void)unlinkat(p->s->map_fd, keybuf, 0);
        return r;
}

/* Map files of dockings with nothing left to replay and no writer. */
static void maps_cleanup(EvdSpool *s)
{
        _cleanup_free_ SpoolEntryName *v = NULL;
        size_t n_v = 0;
        if (spool_entries_list(s, &v, &n_v) < 0)
                return;
        /* the docking keys still referenced */
        _cleanup_free_ char(*keys)[EVD_SPOOL_KEY_SIZE] = calloc(n_v ? n_v : 1, EVD_SPOOL_KEY_SIZE);
        if (!keys)
                return;
        for (size_t i = 0; i < n_v; i++) {
                EvdSpoolEntry e;
                if (spool_entry_load(s, v[i].name, &e, NULL) >= 0)
                        snprintf(keys[i], EVD_SPOOL_KEY_SIZE, "%s", e.header.docking_key);
                evd_spool_entry_clear(&e);
        }
        int fd = openat(s->map_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d) {
                closep(&fd);
                return;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                bool used = false;
                for (size_t i = 0; i < n_v && !used; i++)
                        used = strcmp(keys[i], de->d_name) == 0;
                if (!used && !spool_docking_is_open(s, de->d_name))
                        (void)unlinkat(s->map_fd, de->d_name, 0);
        }
        closedir(d);
}

/* The findings of a docking without an END whose writer died: an END is written for it. */
static int replay_orphan(Replay *p, Deferred *def, size_t i, size_t n_def)
{
        EvdSpool *s = p->s;
        char key[EVD_SPOOL_KEY_SIZE];
        snprintf(key, sizeof(key), "%s", def[i].key);
        int64_t docking_id = 0;
        if (map_read(s, key, &docking_id) < 0) {
                for (size_t k = i; k < n_def; k++)
                        if (def[k].key[0] && strcmp(def[k].key, key) == 0) {
                                reject(p, def[k].name.name, "its docking was never recorded");
                                def[k].key[0] = 0;
                        }
                return 0;
        }
        EvdVerdict worst = EVD_VERDICT_INTACT;
        for (size_t k = i; k < n_def; k++) {
                if (!def[k].key[0] || strcmp(def[k].key, key) != 0)
                        continue;
                EvdSpoolEntry fe;
                if (spool_entry_load(s, def[k].name.name, &fe, NULL) >= 0 &&
                    fe.rec.kind == EVD_RECORD_KIND_FINDING)
                        worst = evd_verdict_worst(worst, fe.rec.findings[0].verdict);
                evd_spool_entry_clear(&fe);
        }
        const char *device = def[i].name.device[0] ? def[i].name.device : NULL;
        EvdSpoolEntry end = {.header = {.docking_key = key, .device = device, .at_us = evd_clock_wall_us()}};
        end.result = (EvdDbDockingResult){
            .verdict = worst,
            .summary = "interrupted: the process spooling this docking stopped before its end; "
                       "its findings were replayed from the spool",
            .finished_us = end.header.at_us};
        end.events[0] = (EvdCustodyEntry){.kind = "interrupted",
                                          .device_id = device,
                                          .detail = "evidock stopped while spooling this docking"};
        end.rec = (EvdRecordEntry){.kind = EVD_RECORD_KIND_END,
                                   .device_id = device,
                                   .events = end.events,
                                   .n_events = 1,
                                   .result = &end.result};
        int r = replay_end(p, NULL, &end, key, docking_id, def, n_def);
        if (r < 0 && !evd_spool_db_unreachable(r) && db_refused(r)) {
                for (size_t k = i; k < n_def; k++)
                        if (def[k].key[0] && strcmp(def[k].key, key) == 0) {
                                reject(p, def[k].name.name, evd_error_message(p->err, r));
                                def[k].key[0] = 0;
                        }
                r = 0;
        }
        return r;
}

static int replay_pass(Replay *p, const char *tag)
{
        EvdSpool *s = p->s;
        _cleanup_free_ SpoolEntryName *v = NULL;
        size_t n = 0;
        int r = spool_entries_list(s, &v, &n);
        if (r < 0)
                return evd_error_set_errno(p->err, r, "listing %s/entries", s->dir);
        _cleanup_free_ Deferred *def = calloc(n ? n : 1, sizeof(Deferred));
        if (!def)
                return -ENOMEM;
        size_t n_def = 0;

        for (size_t i = 0; i < n; i++) {
                const SpoolEntryName *en = &v[i];
                if (strcmp(en->tag, tag) != 0 && strcmp(en->tag, SPOOL_NO_TAG) != 0) {
                        p->res->waiting++;
                        p->res->other_db++;
                        continue;
                }
                EvdSpoolEntry e;
                EvdError perr = {};
                r = spool_entry_load(s, en->name, &e, &perr);
                if (r < 0) {
                        evd_spool_entry_clear(&e);
                        if (r == -ENOENT)
                                continue; /* replayed meanwhile by a finished replay */
                        if (r == -ENOMEM)
                                return r;
                        reject(p, en->name, perr.msg[0] ? perr.msg : strerror(-r));
                        continue;
                }
                int64_t docking_id = 0;
                EvdRecordKind kind = e.rec.kind;
                if (evd_record_kind_standalone(kind))
                        r = replay_standalone(p, en, &e);
                else if (kind == EVD_RECORD_KIND_BEGIN || kind == EVD_RECORD_KIND_REFUSED)
                        r = replay_docking(p, en, &e);
                else if (map_read(s, e.header.docking_key, &docking_id) < 0 &&
                         (r = docking_rebuild(p, en, &e, &docking_id)) < 0) {
                        if (!evd_spool_db_unreachable(r) && db_refused(r)) {
                                /* the entry did nothing wrong: it waits (never dropped, never rejected
                                 * for its begin entry's damage) */
                                p->res->waiting++;
                                snprintf(p->res->last_waiting, sizeof(p->res->last_waiting),
                                         "%s: its docking could not be rebuilt: %s", en->name,
                                         evd_error_message(p->err, r));
                                *p->err = (EvdError){};
                                r = 0;
                        }
                } else if (kind == EVD_RECORD_KIND_FILE || kind == EVD_RECORD_KIND_LINK)
                        r = replay_file(p, en, &e, docking_id);
                else if (kind == EVD_RECORD_KIND_FINDING) {
                        def[n_def].name = *en;
                        snprintf(def[n_def].key, sizeof(def[n_def].key), "%s", e.header.docking_key);
                        n_def++;
                        r = 0;
                } else
                        r = replay_end(p, en, &e, e.header.docking_key, docking_id, def, n_def);
                if (r < 0 && !evd_spool_db_unreachable(r) && db_refused(r)) {
                        char why[600];
                        snprintf(why, sizeof(why), "the database refused it: %s",
                                 evd_error_message(p->err, r));
                        reject(p, en->name, why);
                        r = 0;
                }
                evd_spool_entry_clear(&e);
                if (r < 0)
                        return r;
        }

        /* findings of dockings without an END yet: wait while their writer runs; else it died */
        for (size_t i = 0; i < n_def; i++) {
                if (!def[i].key[0])
                        continue;
                const char *key = def[i].key;
                if (spool_docking_is_open(s, key)) {
                        char keybuf[EVD_SPOOL_KEY_SIZE];
                        snprintf(keybuf, sizeof(keybuf), "%s", key);
                        for (size_t k = i; k < n_def; k++)
                                if (def[k].key[0] && strcmp(def[k].key, keybuf) == 0) {
                                        p->res->waiting++;
                                        def[k].key[0] = 0;
                                }
                        continue;
                }
                r = replay_orphan(p, def, i, n_def);
                if (r < 0)
                        return r;
        }
        return 0;
}

int evd_spool_replay(EvdSpool *s, EvdDb *db, EvdSpoolReplay *ret, EvdError *err)
{
        EvdSpoolReplay local = {};
        EvdSpoolReplay *res = ret ? ret : &local;
        *res = (EvdSpoolReplay){};
        EvdError lerr = {};
        if (!err)
                err = &lerr;

        /* one replay per spool at a time in this host... */
        _cleanup_close_ int lock =
            openat(s->dir_fd, "replay.lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, SPOOL_FILE_MODE);
        if (lock < 0)
                return evd_error_set_errno(err, -errno, "opening %s/replay.lock", s->dir);
        (void)fchmod(lock, SPOOL_FILE_MODE); /* private, also when an older evidock made it 0640 */
        if (flock(lock, LOCK_EX | LOCK_NB) < 0)
                return errno == EWOULDBLOCK
                           ? evd_error_set(err, -EBUSY, "another replay of %s is running", s->dir)
                           : evd_error_set_errno(err, -errno, "locking %s/replay.lock", s->dir);

        unsigned n = 0;
        int r = evd_spool_backlog(s, &n);
        if (r < 0)
                return evd_error_set_errno(err, r, "listing %s/entries", s->dir);
        if (n == 0)
                return 0;

        char identity[300], tag[EVD_SPOOL_TAG_SIZE];
        r = spool_db_identity(db, identity, sizeof(identity), tag, err);
        if (r < 0)
                return r;
        /* ...and in the database: waits until a killed replayer's transaction has ended either way */
        r = evd_db_replay_lock(db, s->id, true, err);
        if (r < 0)
                return r;
        Replay p = {.s = s, .db = db, .res = res, .err = err};
        r = replay_pass(&p, tag);
        if (r < 0)
                (void)evd_db_rollback(db);
        (void)evd_db_replay_lock(db, s->id, false, NULL);
        if (r >= 0)
                maps_cleanup(s);
        return r;
}
