/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidockctl: the admin CLI. It runs the engine offline (ingest) and reads the evidence database
 * (log, chain, devices, audit). It never changes evidence: the database refuses that anyway.
 *
 * This file is main(): the global options and the table of command groups. Each group lives in its
 * own daemon/ctl-<group>.c and exports one `const CtlCommand ctl_cmd_<group>`. To add a group:
 *   1. write daemon/ctl-<group>.c after daemon/ctl-device.c (with subcommands: ctl_dispatch) or
 *      daemon/ctl-chain.c (without): options through ctl_getopt() with CTL_OPTION_HELP and
 *      CTL_OPTION_JSON, positional arguments through ctl_positional(), the database through
 *      ctl_open_db() only after option parsing, JSON through json-c and ctl_json_print();
 *   2. declare ctl_cmd_<group> in daemon/ctl-common.h and list it in `commands` below;
 *   3. add the file to `ctl_sources` in daemon/meson.build, the group to the synopsis in
 *      docs/man/evidockctl.1 and to the word lists in conf/bash-completion/evidockctl. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "ctl-common.h"
#include "evd-config.h"
#include "macro.h"

static const CtlCommand *const commands[] = {
    /* one per line, so that groups added in parallel merge */
    /* clang-format off */
        &ctl_cmd_ingest,
        &ctl_cmd_log,
        &ctl_cmd_chain,
        &ctl_cmd_device,
        &ctl_cmd_dockings,
        &ctl_cmd_audit,
        &ctl_cmd_reconcile,
        &ctl_cmd_spool,
        &ctl_cmd_status,
        &ctl_cmd_config,
        &ctl_cmd_report,
        &ctl_cmd_access,
        &ctl_cmd_export,
        &ctl_cmd_case,
        &ctl_cmd_mark,
        &ctl_cmd_retention,
        &ctl_cmd_dispose,
        &ctl_cmd_disc,
    /* clang-format on */
};

static void usage(FILE *f)
{
        fputs("Usage: evidockctl [--config FILE] [--database URL] [--store DIR] [--json] COMMAND ...\n"
              "\n"
              "Commands:\n",
              f);
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                fprintf(f, "  %-40s %s\n", commands[i]->synopsis, commands[i]->summary);
        fputs("\n"
              "'evidockctl COMMAND --help' describes a command and its options.\n"
              "Exit status: 0 clean; 1 error; 2 done with findings or files left for later; 3 recorder\n"
              "refused; 4 ingested into the local spool (database unreachable); 64 usage error.\n"
              "See evidockctl(1).\n",
              f);
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {{"config", required_argument, NULL, 'C'},
                                             {"database", required_argument, NULL, 'D'},
                                             {"store", required_argument, NULL, 'S'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'},
                                             {"version", no_argument, NULL, 'V'},
                                             {}};
        Ctl c = {};
        int o;
        opterr = 0;
        /* global options stop at the command word ('+') */
        while ((o = getopt_long(argc, argv, "+:C:D:S:jhV", opts, NULL)) >= 0) {
                switch (o) {
                case 'C':
                        c.config_path = optarg;
                        break;
                case 'D':
                        c.db_override = optarg;
                        break;
                case 'S':
                        c.store_override = optarg;
                        break;
                case 'j':
                        c.json = true;
                        break;
                case 'h':
                        usage(stdout);
                        return EXIT_CLEAN;
                case 'V':
                        printf("evidockctl %s\n", EVD_VERSION);
                        return EXIT_CLEAN;
                case ':':
                        fprintf(stderr, "evidockctl: option '%s' needs an argument\n", argv[optind - 1]);
                        fputs("Try 'evidockctl --help'.\n", stderr);
                        return EXIT_USAGE;
                default:
                        fprintf(stderr, "evidockctl: unknown option '%s'\n", argv[optind - 1]);
                        fputs("Try 'evidockctl --help'.\n", stderr);
                        return EXIT_USAGE;
                }
        }
        if (optind >= argc) {
                fputs("evidockctl: a command is expected\n", stderr);
                usage(stderr);
                return EXIT_USAGE;
        }
        const char *cmd = argv[optind];
        const CtlCommand *command = NULL;
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (strcmp(cmd, commands[i]->name) == 0)
                        command = commands[i];
        if (!command) {
                fprintf(stderr, "evidockctl: unknown command '%s'\nTry 'evidockctl --help'.\n", cmd);
                return EXIT_USAGE;
        }
        snprintf(c.cmd, sizeof(c.cmd), "%s", command->name);
        int argc_cmd = argc - optind;
        char **argv_cmd = argv + optind;
        optind = 0; /* a fresh getopt scan for the command's own options */
        int r = command->run(&c, argc_cmd, argv_cmd);
        if (fflush(stdout) != 0 && r == EXIT_CLEAN) {
                fprintf(stderr, "evidockctl %s: cannot write the output: %m\n", c.cmd);
                r = EXIT_ERROR;
        }
        if (c.cfg_loaded)
                evd_config_clear(&c.cfg);
        return r;
}
