/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidockctl status: what evidockd is doing, from the status file it publishes (daemon/status.h). */
#include "ctl-common.h"
#include "macro.h"
#include "status.h"

static const char help[] =
    "Usage: evidockctl status [--json]\n"
    "\n"
    "What evidockd is doing: docked recorders and their progress, the store, the database, the spool.\n"
    "Read from the status file evidockd publishes ($EVIDOCK_STATUS_FILE or /run/evidock/status.json).\n"
    "\n"
    "      --json           the status file as published\n"
    "  -h, --help           this help\n";

static int status_run(Ctl *c, int argc, char **argv)
{
        int r = ctl_parse_plain(c, argc, argv, 0, 0, help);
        if (r >= 0)
                return r;
        return evd_status_print(stdout) < 0 ? EXIT_ERROR : EXIT_CLEAN;
}

const CtlCommand ctl_cmd_status = {
    .name = "status",
    .synopsis = "status",
    .summary = "what evidockd is doing (docked recorders, progress)",
    .run = status_run,
};
