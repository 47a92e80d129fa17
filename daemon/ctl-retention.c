/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidockctl retention report: what expires when, and why each recording is kept. */
#include <inttypes.h>

#include "clock.h"
#include "ctl-common.h"
#include "macro.h"
#include "output.h"
#include "retention.h"
#include "store.h"

static const char report_help[] =
    "Usage: evidockctl retention report [--all] [--json]\n"
    "\n"
    "Every recording with the retention class that wins ([retention] in evidock.conf: ordinary from the\n"
    "recording, evidence from its case's closing, long-term permanent), the date it may be disposed of,\n"
    "and why it is kept: its case, a long-term mark, a legal hold. Recordings already disposed of are\n"
    "left out unless --all. Ends with what is disposable now and within 7 and 30 days.\n"
    "\n"
    "      --all            also the recordings that were disposed of\n"
    "      --json           one JSON object per recording, then the totals as one more\n"
    "  -h, --help           this help\n";

static void format_until(const EvdRetentionVerdict *v, char *buf, size_t size)
{
        if (v->keep_until_us == EVD_RETENTION_PERMANENT)
                snprintf(buf, size, "permanent");
        else
                format_time_local(v->keep_until_us, buf, size);
}

static const char *state_of(const EvdRetentionFacts *f, const EvdRetentionVerdict *v, int64_t now)
{
        if (f->disposed)
                return "disposed";
        if (v->held)
                return "held";
        if (evd_retention_disposable(f, v, now))
                return "disposable";
        if (v->blocked)
                return "kept";
        return "kept until date";
}

static int report_run(Ctl *c, int argc, char **argv)
{
        static const struct option opts[] = {
            {"all", no_argument, NULL, 'a'}, CTL_OPTION_JSON, CTL_OPTION_HELP, {}};
        bool all = false;
        int o;
        while ((o = ctl_getopt(c, argc, argv, opts, report_help)) > 0)
                all = true;
        if (o < 0)
                return ctl_opt_exit(o);
        if (ctl_positional(c, argc, argv, 0, 0, report_help) < 0)
                return EXIT_USAGE;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdError err = {};
        _cleanup_(evd_retention_report_freep) EvdRetentionReport *rep = NULL;
        int r = evd_retention_report(db, &c->cfg.retention, &rep, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));

        int64_t now = evd_clock_wall_us(), day = (int64_t)86400 * 1000000;
        size_t n_now = 0, n_7 = 0, n_30 = 0, n_held = 0, n_case = 0, n_long = 0;
        uint64_t b_now = 0, b_7 = 0, b_30 = 0;
        static const char *const headers[] = {"FILE",  "DEVICE",     "SEQ",   "RECORDED", "CASE (RECORDER)",
                                              "CLASS", "KEEP UNTIL", "STATE", "WHY"};
        _cleanup_(ctl_table_freep) CtlTable *t =
            c->json ? NULL : ctl_table_new(ELEMENTSOF(headers), headers);
        r = EXIT_CLEAN;
        for (size_t i = 0; i < rep->n_files; i++) {
                const EvdRetentionFacts *f = &rep->files[i];
                const EvdRetentionVerdict *v = &rep->verdicts[i];
                if (!f->disposed) {
                        n_held += v->held;
                        n_case += !!f->current_case;
                        n_long += f->long_term;
                        if (evd_retention_disposable(f, v, now))
                                n_now++, b_now += f->size;
                        if (evd_retention_disposable(f, v, now + 7 * day))
                                n_7++, b_7 += f->size;
                        if (evd_retention_disposable(f, v, now + 30 * day))
                                n_30++, b_30 += f->size;
                }
                if (f->disposed && !all)
                        continue;
                char until[48], recorded[48], id[24], seq[24], kase[160];
                format_until(v, until, sizeof(until));
                format_time_local(f->recorded_us, recorded, sizeof(recorded));
                snprintf(id, sizeof(id), "%" PRId64, f->file_id);
                snprintf(seq, sizeof(seq), "%" PRIu64, f->seq);
                /* never a silent mismatch: the archive copy carries the recorder's case */
                bool differs = (f->current_case == NULL) != (f->recorder_case == NULL) ||
                               (f->current_case && strcmp(f->current_case, f->recorder_case) != 0);
                if (!differs)
                        snprintf(kase, sizeof(kase), "%s", f->current_case ? f->current_case : "-");
                else
                        snprintf(kase, sizeof(kase), "%s (%s)", f->current_case ? f->current_case : "none",
                                 f->recorder_case ? f->recorder_case : "none");
                const char *cls = evd_retention_class_to_string(v->wins);
                if (c->json) {
                        _cleanup_(json_object_putp) json_object *j = json_object_new_object();
                        if (!j)
                                return EXIT_ERROR;
                        json_object_object_add(j, "file_id", json_object_new_int64(f->file_id));
                        json_object_object_add(j, "device_id", ctl_json_string(f->device_id));
                        json_object_object_add(j, "seq",
                                               f->has_seq ? json_object_new_int64((int64_t)f->seq) : NULL);
                        json_object_object_add(j, "recorded_at", ctl_json_time_local(f->recorded_us));
                        json_object_object_add(j, "size", json_object_new_int64((int64_t)f->size));
                        json_object_object_add(j, "current_case", ctl_json_string(f->current_case));
                        json_object_object_add(j, "recorder_case", ctl_json_string(f->recorder_case));
                        json_object_object_add(j, "class", ctl_json_string(cls));
                        json_object_object_add(j, "keep_until",
                                               v->keep_until_us == EVD_RETENTION_PERMANENT
                                                   ? NULL
                                                   : ctl_json_time_local(v->keep_until_us));
                        json_object_object_add(
                            j, "permanent",
                            json_object_new_boolean(v->keep_until_us == EVD_RETENTION_PERMANENT));
                        json_object_object_add(j, "important", json_object_new_boolean(f->important));
                        json_object_object_add(j, "long_term", ctl_json_string(f->long_term_reason));
                        json_object_object_add(j, "hold", json_object_new_boolean(f->hold));
                        json_object_object_add(j, "state", ctl_json_string(state_of(f, v, now)));
                        json_object_object_add(j, "why", ctl_json_string(v->why));
                        if (ctl_json_print(j) < 0)
                                r = EXIT_ERROR;
                } else if (t) {
                        char why[300];
                        snprintf(why, sizeof(why), "%s%s", f->important ? "重点; " : "", v->why);
                        (void)ctl_table_addf(t, 9, id, f->device_id, f->has_seq ? seq : NULL, recorded, kase,
                                             cls, until, state_of(f, v, now), why);
                }
        }
        if (c->json) {
                _cleanup_(json_object_putp) json_object *j = json_object_new_object();
                if (!j)
                        return EXIT_ERROR;
                json_object_object_add(j, "kind", json_object_new_string("totals"));
                json_object_object_add(j, "recordings", json_object_new_int64((int64_t)rep->n_files));
                json_object_object_add(j, "in_case", json_object_new_int64((int64_t)n_case));
                json_object_object_add(j, "long_term", json_object_new_int64((int64_t)n_long));
                json_object_object_add(j, "held", json_object_new_int64((int64_t)n_held));
                json_object_object_add(j, "disposable_now", json_object_new_int64((int64_t)n_now));
                json_object_object_add(j, "disposable_7d", json_object_new_int64((int64_t)n_7));
                json_object_object_add(j, "disposable_30d", json_object_new_int64((int64_t)n_30));
                json_object_object_add(j, "truncated", json_object_new_boolean(rep->truncated));
                return ctl_json_print(j) < 0 ? EXIT_ERROR : r;
        }
        if (t)
                ctl_table_print(t, stdout);
        printf("\n%zu recording(s): %zu in a case, %zu long-term, %zu on legal hold\n"
               "disposable now: %zu (%" PRIu64 " bytes of originals); within 7 days: %zu (%" PRIu64
               "); within 30 days: %zu (%" PRIu64 ")\n",
               rep->n_files, n_case, n_long, n_held, n_now, b_now, n_7, b_7, n_30, b_30);
        if (rep->truncated)
                printf("(only the first %u recordings were read)\n", EVD_DB_LOG_MAX_ROWS);
        return r;
}

static int compute_budget(Ctl *c, EvdStorageBudget *ret, char **ret_root)
{
        if (ctl_config(c) < 0)
                return -EINVAL;
        EvdError err = {};
        _cleanup_(evd_store_freep) EvdStore *store = NULL;
        int r = evd_store_open(c->cfg.store_root, &store, &err);
        if (r < 0)
                return fprintf(stderr, "storage budget: %s\n", evd_error_message(&err, r)), r;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return -ECONNREFUSED;
        _cleanup_(evd_retention_report_freep) EvdRetentionReport *rep = NULL;
        r = evd_retention_report(db, &c->cfg.retention, &rep, &err);
        if (r >= 0)
                r = evd_storage_budget(rep, store, c->cfg.store_reserve_bytes, evd_clock_wall_us(), ret,
                                       &err);
        if (r < 0)
                return fprintf(stderr, "storage budget: %s\n", evd_error_message(&err, r)), r;
        if (!(*ret_root = strdup(evd_store_root(store))))
                return -ENOMEM;
        return 0;
}

json_object *ctl_retention_budget_json(Ctl *c)
{
        EvdStorageBudget b = {};
        _cleanup_free_ char *root = NULL;
        if (compute_budget(c, &b, &root) < 0)
                return NULL;
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "store", ctl_json_string(root));
        json_object_object_add(o, "fs_total_bytes", json_object_new_int64((int64_t)b.fs_total_bytes));
        json_object_object_add(o, "fs_free_bytes", json_object_new_int64((int64_t)b.fs_free_bytes));
        json_object_object_add(o, "stored_bytes", json_object_new_int64((int64_t)b.stored_bytes));
        json_object_object_add(o, "reserve_bytes", json_object_new_int64((int64_t)b.reserve_bytes));
        json_object_object_add(o, "frees_7d_bytes", json_object_new_int64((int64_t)b.frees_7d_bytes));
        json_object_object_add(o, "frees_30d_bytes", json_object_new_int64((int64_t)b.frees_30d_bytes));
        json_object_object_add(o, "ingest_per_day_bytes",
                               json_object_new_int64((int64_t)b.ingest_per_day_bytes));
        json_object_object_add(o, "reserve_reached", json_object_new_boolean(b.reserve_reached));
        json_object_object_add(o, "days_until_reserve",
                               b.days_until_reserve < 0 ? NULL
                                                        : json_object_new_double(b.days_until_reserve));
        return o;
}

int ctl_retention_print_budget(Ctl *c)
{
        EvdStorageBudget b = {};
        _cleanup_free_ char *root = NULL;
        int r = compute_budget(c, &b, &root);
        if (r < 0)
                return r;
        char total[32], fr[32], stored[32], reserve[32], f7[32], f30[32], rate[32];
        format_size(b.fs_total_bytes, total, sizeof(total));
        format_size(b.fs_free_bytes, fr, sizeof(fr));
        format_size(b.stored_bytes, stored, sizeof(stored));
        format_size(b.reserve_bytes, reserve, sizeof(reserve));
        format_size(b.frees_7d_bytes, f7, sizeof(f7));
        format_size(b.frees_30d_bytes, f30, sizeof(f30));
        format_size(b.ingest_per_day_bytes, rate, sizeof(rate));
        printf("\nstorage budget (%s):\n", root);
        printf("  store:        %s of recordings; %s free of %s (reserve %s)\n", stored, fr, total, reserve);
        printf("  retention frees: %s within 7 days, %s within 30 days (after two-person disposal)\n", f7,
               f30);
        if (b.reserve_reached)
                printf("  RESERVE REACHED: new recordings are not taken until space is freed\n");
        else if (b.days_until_reserve < 0)
                printf("  ingest rate:  nothing ingested in the last 7 days: no forecast\n");
        else
                printf("  ingest rate:  %s/day (last 7 days, originals + archive copies): reserve reached "
                       "in %.0f "
                       "day(s)\n",
                       rate, b.days_until_reserve);
        return 0;
}

static const CtlSubcommand subs[] = {
    {"report", "what expires when, and why each recording is kept", report_run},
};

static int retention_run(Ctl *c, int argc, char **argv)
{
        return ctl_dispatch(c, subs, ELEMENTSOF(subs), argc, argv);
}

const CtlCommand ctl_cmd_retention = {
    .name = "retention",
    .synopsis = "retention report",
    .summary = "retention classes: what expires when, and why each recording is kept",
    .run = retention_run,
};
