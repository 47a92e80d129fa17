/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidockctl spool list|replay: the local durable spool that holds dockings while the database is
 * unreachable (docs/spool.md). */
#include <inttypes.h>

#include "ctl-common.h"
#include "macro.h"
#include "output.h"

static const char list_help[] = "Usage: evidockctl spool list [--json]\n"
                                "\n"
                                "The entries waiting in the local spool for the database, in replay order.\n"
                                "\n"
                                "      --json           one JSON object per entry\n"
                                "  -h, --help           this help\n";

typedef struct ListState {
        Ctl *c;
        CtlTable *table;
        unsigned n;
        int r;
} ListState;

static void list_one(const EvdSpoolInfo *i, void *userdata)
{
        ListState *s = userdata;
        char t[48], seq[24], size[24];
        s->n++;
        if (s->r < 0)
                return;
        if (s->c->json) {
                _cleanup_(json_object_putp) json_object *j = json_object_new_object();
                if (!j) {
                        s->r = -ENOMEM;
                        return;
                }
                json_object_object_add(j, "seq", json_object_new_uint64(i->seq));
                json_object_object_add(j, "kind", ctl_json_string(evd_spool_kind_to_string(i->kind)));
                json_object_object_add(j, "device_id",
                                       ctl_json_string(i->device_id[0] ? i->device_id : NULL));
                json_object_object_add(j, "docking_key",
                                       ctl_json_string(i->docking_key[0] ? i->docking_key : NULL));
                json_object_object_add(j, "spooled_at",
                                       i->spooled_us ? ctl_json_time_local(i->spooled_us) : NULL);
                json_object_object_add(j, "db_tag", ctl_json_string(i->db_tag));
                json_object_object_add(j, "size", json_object_new_uint64(i->size));
                json_object_object_add(j, "summary", ctl_json_string(i->summary));
                json_object_object_add(j, "corrupt", json_object_new_boolean(i->corrupt));
                s->r = ctl_json_print(j);
                return;
        }
        snprintf(seq, sizeof(seq), "%" PRIu64, i->seq);
        snprintf(size, sizeof(size), "%" PRIu64, i->size);
        s->r = ctl_table_addf(s->table, 8, seq, evd_spool_kind_to_string(i->kind),
                              i->device_id[0] ? i->device_id : "-", i->docking_key[0] ? i->docking_key : "?",
                              i->spooled_us ? format_time_local(i->spooled_us, t, sizeof(t)) : "?",
                              i->db_tag, size, i->corrupt ? "CORRUPT" : i->summary);
}

static int list_run(Ctl *c, int argc, char **argv)
{
        int r = ctl_parse_plain(c, argc, argv, 0, 0, list_help);
        if (r >= 0)
                return r;
        if (ctl_config(c) < 0)
                return EXIT_ERROR;
        _cleanup_(evd_spool_freep) EvdSpool *spool = ctl_open_spool(c, false);
        if (!spool)
                return ctl_error(c, "no usable spool (set [database] spool_dir)");
        static const char *const headers[] = {"SEQ",     "KIND", "DEVICE", "DOCKING",
                                              "SPOOLED", "DB",   "BYTES",  "WHAT"};
        _cleanup_(ctl_table_freep) CtlTable *t = ctl_table_new(ELEMENTSOF(headers), headers);
        if (!t)
                return EXIT_ERROR;
        ctl_table_right(t, 0);
        ctl_table_right(t, 6);
        ListState s = {.c = c, .table = t};
        EvdError err = {};
        r = evd_spool_list(spool, list_one, &s, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        if (s.r < 0)
                return ctl_error(c, "cannot write the output");
        if (!c->json && s.n)
                ctl_table_print(t, stdout);
        fprintf(stderr, "%u entries waiting in %s\n", s.n, evd_spool_dir(spool));
        return EXIT_CLEAN;
}

static const char replay_help[] =
    "Usage: evidockctl spool replay [--json]\n"
    "\n"
    "Writes the spooled entries to the database now, in order, exactly once. Exit status 2 when\n"
    "entries were rejected (kept in the spool's rejected/ folder with the reason) or still wait.\n"
    "\n"
    "      --json           the counts as one JSON object\n"
    "  -h, --help           this help\n";

static int replay_run(Ctl *c, int argc, char **argv)
{
        int r = ctl_parse_plain(c, argc, argv, 0, 0, replay_help);
        if (r >= 0)
                return r;
        if (ctl_config(c) < 0)
                return EXIT_ERROR;
        _cleanup_(evd_spool_freep) EvdSpool *spool = ctl_open_spool(c, false);
        if (!spool)
                return ctl_error(c, "no usable spool (set [database] spool_dir)");
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdSpoolReplay rep = {};
        EvdError err = {};
        r = evd_spool_replay(spool, db, &rep, &err);
        fprintf(stderr, "spool %s: replayed %u entries, %u already recorded, %u rejected, %u waiting%s\n",
                evd_spool_dir(spool), rep.replayed, rep.already, rep.rejected, rep.waiting,
                rep.other_db ? " (some for another database)" : "");
        if (rep.rejected)
                fprintf(stderr,
                        "evidockctl spool replay: %u spool entries rejected, kept in %s/rejected with the "
                        "reason; last: %s\n",
                        rep.rejected, evd_spool_dir(spool), rep.last_rejected);
        if (rep.rebuilt)
                fprintf(stderr,
                        "evidockctl spool replay: %u dockings rebuilt from their entries (their begin "
                        "entry was damaged or missing; custody 'docked' says so)\n",
                        rep.rebuilt);
        if (rep.last_waiting[0])
                fprintf(stderr, "evidockctl spool replay: entries wait; last: %s\n", rep.last_waiting);
        if (c->json) {
                _cleanup_(json_object_putp) json_object *j = json_object_new_object();
                if (!j)
                        return EXIT_ERROR;
                json_object_object_add(j, "replayed", json_object_new_int64(rep.replayed));
                json_object_object_add(j, "already", json_object_new_int64(rep.already));
                json_object_object_add(j, "rejected", json_object_new_int64(rep.rejected));
                json_object_object_add(j, "waiting", json_object_new_int64(rep.waiting));
                json_object_object_add(j, "other_db", json_object_new_int64(rep.other_db));
                json_object_object_add(j, "rebuilt", json_object_new_int64(rep.rebuilt));
                json_object_object_add(j, "last_rejected",
                                       ctl_json_string(rep.rejected ? rep.last_rejected : NULL));
                json_object_object_add(j, "error",
                                       r < 0 ? ctl_json_string(evd_error_message(&err, r)) : NULL);
                (void)ctl_json_print(j);
        }
        if (r < 0)
                return ctl_error(c, "spool replay stopped: %s", evd_error_message(&err, r));
        unsigned left = 0;
        /* 2: entries were rejected, or wait (another database's, or a docking still being spooled) */
        if (rep.rejected || (evd_spool_backlog(spool, &left) >= 0 && left > 0))
                return EXIT_FINDINGS;
        return EXIT_CLEAN;
}

static const CtlSubcommand subs[] = {
    {"list", "entries waiting in the local spool for the database", list_run},
    {"replay", "write them to the database now (in order, exactly once)", replay_run},
};

static int spool_run(Ctl *c, int argc, char **argv)
{
        return ctl_dispatch(c, subs, ELEMENTSOF(subs), argc, argv);
}

const CtlCommand ctl_cmd_spool = {
    .name = "spool",
    .synopsis = "spool list|replay",
    .summary = "the local spool that holds dockings while the database is down",
    .run = spool_run,
};
