/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidockctl device enroll|list|retire: the recorders the dock accepts. */
#include <inttypes.h>

#include "clock.h"
#include "ctl-common.h"
#include "custody.h"
#include "db-admin.h"
#include "macro.h"
#include "output.h"
#include "signature.h"

static const char enroll_help[] =
    "Usage: evidockctl device enroll --device ID --officer ID [--unit CODE] --key PUBKEY.pem\n"
    "\n"
    "Enrolls a recorder: its device ID, the officer it is issued to, and the public key its chain is\n"
    "signed with (PEM; Ed25519, ECDSA P-256 or SM2). A custody-log event records it.\n"
    "\n"
    "  -d, --device ID      the recorder's 7-character device ID\n"
    "  -o, --officer ID     the officer's ID\n"
    "  -u, --unit CODE      the unit code (optional)\n"
    "  -k, --key FILE       the recorder's public key (PEM)\n"
    "      --json           the enrollment as one JSON object\n"
    "  -h, --help           this help\n";

static int enroll_run(Ctl *c, int argc, char **argv)
{
        const char *dev = NULL, *officer = NULL, *unit = NULL, *keyfile = NULL;
        const CtlOption opts[] = {{"device", 'd', .text = &dev},
                                  {"officer", 'o', .text = &officer},
                                  {"unit", 'u', .text = &unit},
                                  {"key", 'k', .text = &keyfile},
                                  {}};
        int parsed = ctl_parse(c, argc, argv, opts, 0, 0, enroll_help);
        if (parsed >= 0)
                return parsed;
        if (!dev || !officer || !keyfile)
                return ctl_usage_error(c, enroll_help, "--device, --officer and --key are required");
        EvdError err = {};
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        int r = evd_key_load_public_pem(keyfile, &key, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        EvdSuite suite;
        r = evd_key_suite(key, &suite);
        if (r < 0)
                return ctl_error(c, "%s: key type fits no signature suite", keyfile);
        char key_id[EVD_KEY_ID_STRLEN + 1];
        _cleanup_free_ char *pem = NULL;
        if (evd_key_id(key, key_id) < 0 || evd_key_public_to_pem(key, &pem, &err) < 0)
                return ctl_error(c, "cannot export key %s", keyfile);
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdDbDevice d = {.device_id = (char *)dev,
                         .officer_id = (char *)officer,
                         .unit_code = (char *)unit,
                         .suite = suite,
                         .public_key_pem = pem,
                         .key_id = key_id};
        /* the enrollment and its custody-log event commit together or not at all */
        EvdCustodyEntry ev = {.kind = "enrolled", .device_id = dev, .detail = key_id};
        r = evd_db_begin(db, &err);
        if (r >= 0)
                r = evd_db_device_enroll(db, &d, &err);
        if (r >= 0)
                r = evd_custody_append(db, &ev, NULL, &err);
        if (r >= 0)
                r = evd_db_commit(db, &err);
        if (r < 0) {
                evd_db_rollback(db);
                return ctl_error(c, "%s", evd_error_message(&err, r));
        }
        if (c->json) {
                _cleanup_(json_object_putp) json_object *j = json_object_new_object();
                if (!j)
                        return EXIT_ERROR;
                json_object_object_add(j, "device_id", ctl_json_string(dev));
                json_object_object_add(j, "officer_id", ctl_json_string(officer));
                json_object_object_add(j, "unit_code", ctl_json_string(unit));
                json_object_object_add(j, "suite", ctl_json_string(evd_suite_to_string(suite)));
                json_object_object_add(j, "key_id", ctl_json_string(key_id));
                return ctl_json_print(j) < 0 ? EXIT_ERROR : EXIT_CLEAN;
        }
        printf("enrolled %s (officer %s, %s key %s)\n", dev, officer, evd_suite_to_string(suite), key_id);
        return EXIT_CLEAN;
}

static const char list_help[] =
    "Usage: evidockctl device list [--overdue] [--json]\n"
    "\n"
    "The enrolled recorders: device ID, officer, unit, when last docked, dockings, files, late files,\n"
    "and OVERDUE for a recorder not docked within [ingest] overdue_after (default 3d; never docked:\n"
    "counted from its enrollment), then its key.\n"
    "\n"
    "  -o, --overdue        only overdue recorders\n"
    "      --json           one JSON object per recorder\n"
    "  -h, --help           this help\n";

static bool overdue(const EvdDbDeviceOverview *d, int64_t after_us, int64_t now)
{
        return after_us > 0 && now - (d->docked ? d->last_docked_us : d->enrolled_us) > after_us;
}

static json_object *overview_json(const EvdDbDeviceOverview *d, bool is_overdue)
{
        json_object *j = json_object_new_object();
        if (!j)
                return NULL;
        json_object_object_add(j, "device_id", ctl_json_string(d->device_id));
        json_object_object_add(j, "officer_id", ctl_json_string(d->officer_id));
        json_object_object_add(j, "unit_code", ctl_json_string(d->unit_code));
        json_object_object_add(j, "suite", ctl_json_string(d->suite));
        json_object_object_add(j, "key_id", ctl_json_string(d->key_id));
        json_object_object_add(j, "enrolled_at", ctl_json_time_local(d->enrolled_us));
        json_object_object_add(j, "last_docked_at",
                               d->docked ? ctl_json_time_local(d->last_docked_us) : NULL);
        json_object_object_add(j, "dockings", json_object_new_uint64(d->dockings));
        json_object_object_add(j, "files", json_object_new_uint64(d->files));
        json_object_object_add(j, "files_late", json_object_new_uint64(d->files_late));
        json_object_object_add(j, "overdue", json_object_new_boolean(is_overdue));
        return j;
}

static int list_run(Ctl *c, int argc, char **argv)
{
        bool only_overdue = false;
        int parsed =
            ctl_parse(c, argc, argv, (const CtlOption[]){{"overdue", 'o', .flag = &only_overdue}, {}}, 0, 0,
                      list_help);
        if (parsed >= 0)
                return parsed;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdError err = {};
        EvdDbDeviceOverview *devs = NULL;
        size_t n = 0;
        int r = evd_db_device_overview(db, &devs, &n, &err);
        if (r < 0)
                return ctl_error(c, "%s", evd_error_message(&err, r));
        static const char *const headers[] = {"DEVICE", "OFFICER", "UNIT", "LAST DOCKED", "DOCKINGS",
                                              "FILES",  "LATE",    "",     "KEY"};
        _cleanup_(ctl_table_freep) CtlTable *t =
            c->json ? NULL : ctl_table_new(ELEMENTSOF(headers), headers);
        if (t)
                for (unsigned col = 4; col <= 6; col++)
                        ctl_table_right(t, col);
        int64_t now = evd_clock_wall_us();
        unsigned n_overdue = 0;
        r = c->json || t ? 0 : -ENOMEM;
        for (size_t i = 0; i < n && r >= 0; i++) {
                const EvdDbDeviceOverview *d = &devs[i];
                bool late = overdue(d, c->cfg.overdue_after_us, now);
                n_overdue += late;
                if (only_overdue && !late)
                        continue;
                if (c->json) {
                        _cleanup_(json_object_putp) json_object *j = overview_json(d, late);
                        r = j ? ctl_json_print(j) : -ENOMEM;
                        continue;
                }
                char when[48] = "never", dockings[24], files[24], nlate[24], key[96];
                if (d->docked)
                        format_time_local(d->last_docked_us, when, sizeof(when));
                snprintf(dockings, sizeof(dockings), "%" PRIu64, d->dockings);
                snprintf(files, sizeof(files), "%" PRIu64, d->files);
                snprintf(nlate, sizeof(nlate), "%" PRIu64, d->files_late);
                snprintf(key, sizeof(key), "%s %s", d->suite, d->key_id);
                r = ctl_table_addf(t, 9, d->device_id, d->officer_id, d->unit_code, when, dockings, files,
                                   nlate, late ? "OVERDUE" : "", key);
        }
        evd_db_device_overview_free(devs, n);
        if (r < 0)
                return ctl_error(c, "cannot write the output");
        if (t && ctl_table_rows(t))
                ctl_table_print(t, stdout);
        if (!c->json && c->cfg.overdue_after_us > 0 && n_overdue)
                fprintf(stderr, "%u of %zu recorders overdue (not docked for more than %" PRId64 " h)\n",
                        n_overdue, n, c->cfg.overdue_after_us / 3600000000);
        return EXIT_CLEAN;
}

static const char retire_help[] =
    "Usage: evidockctl device retire DEVICE --reason TEXT\n"
    "\n"
    "Retires a recorder (lost, broken, re-keyed): the dock then refuses it until it is enrolled again.\n"
    "The reason goes into the custody log and is required.\n"
    "\n"
    "  -r, --reason TEXT    why the recorder is retired\n"
    "      --json           the retirement as one JSON object\n"
    "  -h, --help           this help\n";

static int retire_run(Ctl *c, int argc, char **argv)
{
        const char *reason = NULL;
        int parsed = ctl_parse(c, argc, argv, (const CtlOption[]){{"reason", 'r', .text = &reason}, {}}, 1,
                               1, retire_help);
        if (parsed >= 0)
                return parsed;
        const char *dev = argv[optind];
        if (!reason || !*reason)
                return ctl_usage_error(c, retire_help,
                                       "--reason TEXT is required (it goes into the custody log)");
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdError err = {};
        /* the retirement and its custody-log event commit together or not at all */
        EvdCustodyEntry ev = {.kind = "retired", .device_id = dev, .detail = reason};
        int r = evd_db_begin(db, &err);
        if (r >= 0)
                r = evd_db_device_retire(db, dev, reason, &err);
        if (r >= 0)
                r = evd_custody_append(db, &ev, NULL, &err);
        if (r >= 0)
                r = evd_db_commit(db, &err);
        if (r < 0) {
                evd_db_rollback(db);
                return ctl_error(c, "%s", evd_error_message(&err, r));
        }
        if (c->json) {
                _cleanup_(json_object_putp) json_object *j = json_object_new_object();
                if (!j)
                        return EXIT_ERROR;
                json_object_object_add(j, "device_id", ctl_json_string(dev));
                json_object_object_add(j, "reason", ctl_json_string(reason));
                return ctl_json_print(j) < 0 ? EXIT_ERROR : EXIT_CLEAN;
        }
        printf("retired %s: %s\n", dev, reason);
        return EXIT_CLEAN;
}

static const CtlSubcommand subs[] = {
    {"enroll", "enroll a recorder with its officer and public key", enroll_run},
    {"list", "the enrolled recorders", list_run},
    {"retire", "retire a recorder (with a reason, into the custody log)", retire_run},
};

static int device_run(Ctl *c, int argc, char **argv)
{
        return ctl_dispatch(c, subs, ELEMENTSOF(subs), argc, argv);
}

const CtlCommand ctl_cmd_device = {
    .name = "device",
    .synopsis = "device enroll|list|retire ...",
    .summary = "the recorders the dock accepts",
    .run = device_run,
};
