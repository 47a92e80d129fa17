/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidockd: a thin main that hands over to the Manager. */
#include <getopt.h>
#include <stdio.h>

#include "config.h"
#include "evd-config.h"
#include "log.h"
#include "manager.h"

int main(int argc, char **argv)
{
        static const struct option opts[] = {{"config", required_argument, NULL, 'C'},
                                             {"help", no_argument, NULL, 'h'},
                                             {"version", no_argument, NULL, 'V'},
                                             {}};
        const char *config = getenv("EVIDOCK_CONFIG");
        int o;
        while ((o = getopt_long(argc, argv, "C:hV", opts, NULL)) >= 0) {
                switch (o) {
                case 'C':
                        config = optarg;
                        break;
                case 'h':
                        printf("Usage: evidockd [--config FILE]\n"
                               "Ingests docked body-worn recorders. See evidockd(8) and evidock.conf(5).\n");
                        return 0;
                case 'V':
                        printf("evidockd %s\n", EVD_VERSION);
                        return 0;
                default:
                        return 1;
                }
        }
        log_open();
        EvdError err = {};
        _cleanup_(manager_freep) Manager *m = NULL;
        int r = manager_new(config && *config ? config : NULL, &m, &err);
        if (r < 0) {
                log_error("cannot start: %s", evd_error_message(&err, r));
                return 1;
        }
        r = manager_run(m);
        if (r < 0) {
                log_error("event loop failed: %s", strerror(-r));
                return 1;
        }
        log_info("evidockd stopped");
        return 0;
}
