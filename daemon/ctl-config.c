/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidockctl config: the effective configuration, passwords masked. */
#include <inttypes.h>
#include <stdlib.h>

#include "ctl-common.h"
#include "macro.h"
#include "output.h"
#include "usb-profile.h"
#include "usb.h"

static const char help[] =
    "Usage: evidockctl config [--check] [--json]\n"
    "\n"
    "Prints the effective configuration (the config file over the compiled defaults, with --database\n"
    "and --store applied) in evidock.conf syntax. The database password is shown as ***.\n"
    "\n"
    "  -c, --check          check the configuration and every recorder profile in [usb] profiles_dir\n"
    "                       (as evidockd would at start) instead; exit status 1 if anything is wrong\n"
    "      --json           one JSON object, sections as members\n"
    "  -h, --help           this help\n";

static int print_json(const EvdConfig *cfg, const char *url)
{
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        json_object *db = json_object_new_object(), *store = json_object_new_object(),
                    *ingest = json_object_new_object(), *watch = json_object_new_array(),
                    *usb = json_object_new_object(), *disc = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "database", db);
        json_object_object_add(o, "store", store);
        json_object_object_add(o, "ingest", ingest);
        json_object_object_add(o, "watch", watch);
        json_object_object_add(o, "usb", usb);
        json_object_object_add(o, "disc", disc);
        if (!db || !store || !ingest || !watch || !usb || !disc)
                return -ENOMEM;
        json_object_object_add(db, "url", ctl_json_string(url));
        json_object_object_add(db, "spool_dir", ctl_json_string(cfg->spool_dir));
        json_object_object_add(store, "root", ctl_json_string(cfg->store_root));
        json_object_object_add(store, "reserve_bytes", json_object_new_uint64(cfg->store_reserve_bytes));
        json_object_object_add(ingest, "default_case_number", ctl_json_string(cfg->default_case_number));
        json_object_object_add(ingest, "late_after_s", json_object_new_int64(cfg->late_after_us / 1000000));
        json_object_object_add(ingest, "max_file_size_bytes", json_object_new_uint64(cfg->max_file_bytes));
        json_object_object_add(ingest, "archive_copy", json_object_new_boolean(cfg->archive_copy));
        json_object_object_add(ingest, "archive_while_copying",
                               json_object_new_boolean(cfg->archive_while_copying));
        json_object_object_add(ingest, "media_timeout_s",
                               json_object_new_int64(cfg->media_timeout_us / 1000000));
        json_object_object_add(ingest, "time_gap_tolerance_ms",
                               json_object_new_int64(cfg->time_gap_tolerance_us / 1000));
        json_object_object_add(ingest, "clock_max_offset_s",
                               json_object_new_int64(cfg->clock_max_offset_us / 1000000));
        json_object_object_add(ingest, "confidentiality", ctl_json_string(cfg->confidentiality));
        json_object_object_add(ingest, "overdue_after_s",
                               json_object_new_int64(cfg->overdue_after_us / 1000000));
        for (unsigned i = 0; i < cfg->n_watch_dirs; i++)
                json_object_array_add(watch, ctl_json_string(cfg->watch_dirs[i]));
        json_object_object_add(usb, "enabled", json_object_new_boolean(cfg->usb_enabled));
        json_object_object_add(usb, "profiles_dir", ctl_json_string(cfg->usb_profiles_dir));
        json_object_object_add(usb, "set_clock", json_object_new_boolean(cfg->usb_set_clock));
        json_object_object_add(usb, "max_concurrent", json_object_new_int64(cfg->usb_max_concurrent));
        json_object *metrics = json_object_new_object();
        json_object_object_add(o, "metrics", metrics);
        json_object_object_add(metrics, "file", ctl_json_string(cfg->metrics_file));
        json_object_object_add(metrics, "interval_s",
                               json_object_new_int64(cfg->metrics_interval_us / 1000000));
        json_object *access = json_object_new_object();
        if (access) {
                json_object_object_add(access, "export_root", ctl_json_string(cfg->export_root));
                json_object_object_add(o, "access", access);
        }
        json_object_object_add(disc, "drives", ctl_json_string(cfg->disc_drives));
        json_object_object_add(disc, "media", ctl_json_string(cfg->disc_media));
        json_object_object_add(disc, "copies", json_object_new_int64(cfg->disc_copies));
        json_object_object_add(disc, "work_dir", ctl_json_string(cfg->disc_work_dir));
        json_object_object_add(disc, "xorriso", ctl_json_string(cfg->disc_xorriso));
        return ctl_json_print(o);
}

/* The recorder profiles as evidockd loads them (every *.conf of profiles_dir, strictly), and two
 * profiles for one VID:PID (evidockd would silently use the first). */
static int check_profiles(const EvdConfig *cfg)
{
        EvdUsbProfileFile *files = NULL;
        size_t n = 0;
        int r = evd_usb_profile_list(cfg->usb_profiles_dir, &files, &n);
        if (r < 0) {
                fprintf(stderr, "evidockctl config: cannot list %s: %s\n", cfg->usb_profiles_dir,
                        strerror(-r));
                return r;
        }
        if (n == 0) {
                printf("no recorder profiles in %s: USB recorders are ignored%s\n", cfg->usb_profiles_dir,
                       cfg->usb_enabled ? "" : " (and [usb] enabled = no)");
                return 0;
        }
        int bad = 0;
        for (size_t i = 0; i < n; i++) {
                const EvdUsbProfileFile *f = &files[i];
                if (f->result < 0) {
                        fprintf(stderr, "evidockctl config: %s\n", evd_error_message(&f->err, f->result));
                        bad++;
                        continue;
                }
                for (size_t k = 0; k < i; k++)
                        if (files[k].result == 0 && files[k].profile.vendor_id &&
                            files[k].profile.vendor_id == f->profile.vendor_id &&
                            files[k].profile.product_id == f->profile.product_id) {
                                fprintf(
                                    stderr,
                                    "evidockctl config: %s: recorder %04x:%04x has a profile already (%s); "
                                    "evidockd would use only the first\n",
                                    f->path, f->profile.vendor_id, f->profile.product_id, files[k].path);
                                bad++;
                        }
                printf("profile %s: %s, %04x:%04x\n", f->path, f->profile.name, f->profile.vendor_id,
                       f->profile.product_id);
        }
        evd_usb_profile_list_free(files, n);
        return bad ? -EINVAL : 0;
}

static int config_run(Ctl *c, int argc, char **argv)
{
        static const struct option opts[] = {
            {"check", no_argument, NULL, 'c'}, CTL_OPTION_JSON, CTL_OPTION_HELP, {}};
        bool check = false;
        int o;
        while ((o = ctl_getopt(c, argc, argv, opts, help)) > 0)
                if (o == 'c')
                        check = true;
        if (o < 0)
                return ctl_opt_exit(o);
        if (ctl_positional(c, argc, argv, 0, 0, help) < 0)
                return EXIT_USAGE;
        if (ctl_config(c) < 0)
                return EXIT_ERROR;
        if (check) {
                int r = check_profiles(&c->cfg);
                if (r < 0)
                        return EXIT_ERROR;
                printf("configuration OK\n");
                return EXIT_CLEAN;
        }
        const EvdConfig *cfg = &c->cfg;
        char url[512];
        mask_password(cfg->database_url, url, sizeof(url));
        if (c->json)
                return print_json(cfg, url) < 0 ? EXIT_ERROR : EXIT_CLEAN;
        printf("[database]\nurl = %s\nspool_dir = %s\n[store]\nroot = %s\nreserve = %" PRIu64 "\n", url,
               cfg->spool_dir, cfg->store_root, cfg->store_reserve_bytes);
        printf("[ingest]\ndefault_case_number = %s\nlate_after = %" PRId64 "s\nmax_file_size = %" PRIu64
               "\narchive_copy = %s\narchive_while_copying = %s\nmedia_timeout = %" PRId64
               "s\ntime_gap_tolerance = %" PRId64 "ms\nclock_max_offset = %" PRId64
               "s\nconfidentiality = %s\noverdue_after = %" PRId64 "s\n",
               cfg->default_case_number, cfg->late_after_us / 1000000, cfg->max_file_bytes,
               cfg->archive_copy ? "yes" : "no", cfg->archive_while_copying ? "yes" : "no",
               cfg->media_timeout_us / 1000000, cfg->time_gap_tolerance_us / 1000,
               cfg->clock_max_offset_us / 1000000, cfg->confidentiality, cfg->overdue_after_us / 1000000);
        printf("[watch]\n");
        for (unsigned i = 0; i < cfg->n_watch_dirs; i++)
                printf("dir = %s\n", cfg->watch_dirs[i]);
        printf("[usb]\nenabled = %s\nprofiles_dir = %s\nset_clock = %s\nmax_concurrent = %u\n",
               cfg->usb_enabled ? "yes" : "no", cfg->usb_profiles_dir, cfg->usb_set_clock ? "yes" : "no",
               cfg->usb_max_concurrent);
        printf("[metrics]\nfile = %s\ninterval = %" PRId64 "s\n", cfg->metrics_file,
               cfg->metrics_interval_us / 1000000);
        printf("[access]\nexport_root = %s\n", cfg->export_root);
        printf("[disc]\ndrives = %s\nmedia = %s\ncopies = %u\nwork_dir = %s\nxorriso = %s\n",
               cfg->disc_drives, cfg->disc_media, cfg->disc_copies, cfg->disc_work_dir, cfg->disc_xorriso);
        return EXIT_CLEAN;
}

const CtlCommand ctl_cmd_config = {
    .name = "config",
    .synopsis = "config",
    .summary = "print the effective configuration",
    .run = config_run,
};
