/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidockctl export: the files of an approved copy request into a new folder below [access] export_root
 * (lib/export.h, docs/access.md). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "ctl-common.h"
#include "export.h"
#include "macro.h"

static const char help[] =
    "Usage: evidockctl export ID --to DIR [--encrypt-to CERT] [--json]\n"
    "\n"
    "Copies the files of your approved copy request ID into the new folder DIR below the export root\n"
    "([access] export_root): the originals (re-hashed while copied), a SHA-256 manifest, the recorders'\n"
    "chain records and keys, the custody events and a README saying how to check them. Each file's export\n"
    "is written to the custody log first (requester, approver, purpose, destination). Confidential and\n"
    "secret files leave only encrypted. A refusal is written to the custody log too. Exit status 0\n"
    "exported, 3 refused, 1 failed.\n"
    "\n"
    "      --to DIR           the new folder: below the export root (relative to it, or absolute)\n"
    "      --encrypt-to CERT  encrypt the recordings to this PEM X.509 certificate (RSA key), CMS with\n"
    "                         AES-256: `openssl cms -decrypt` with the recipient's key opens them\n"
    "      --json             the result as one JSON object\n"
    "  -h, --help             this help\n";

static int export_run(Ctl *c, int argc, char **argv)
{
        static const struct option opts[] = {{"to", required_argument, NULL, 't'},
                                             {"encrypt-to", required_argument, NULL, 'e'},
                                             CTL_OPTION_JSON,
                                             CTL_OPTION_HELP,
                                             {}};
        const char *to = NULL, *cert = NULL;
        int o;
        while ((o = ctl_getopt(c, argc, argv, opts, help)) > 0) {
                if (o == 't')
                        to = optarg;
                else if (o == 'e')
                        cert = optarg;
        }
        if (o < 0)
                return ctl_opt_exit(o);
        if (ctl_positional(c, argc, argv, 1, 1, help) < 0)
                return EXIT_USAGE;
        int64_t id;
        if (ctl_parse_id(argv[optind], &id) < 0)
                return ctl_usage_error(c, help, "ID is a request number, not '%s'", argv[optind]);
        if (!to || !*to)
                return ctl_usage_error(c, help, "--to DIR is required");
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        if (ctl_open_db(c, &db) < 0)
                return EXIT_ERROR;
        EvdExportOptions opts_x = {.store_root = c->cfg.store_root,
                                   .export_root = c->cfg.export_root,
                                   .dest = to,
                                   .request_id = id,
                                   .encrypt_to = cert};
        EvdExportResult res = {};
        EvdError err = {};
        int r = evd_export(db, &opts_x, &res, &err);
        if (r < 0) {
                ctl_error(c, "%s", evd_error_message(&err, r));
                return r == -EACCES || r == -EPERM || r == -ENOENT || r == -EEXIST ? EXIT_REFUSED
                                                                                   : EXIT_ERROR;
        }
        _cleanup_free_ char *path = res.path;
        if (c->json) {
                _cleanup_(json_object_putp) json_object *j = json_object_new_object();
                if (!j)
                        return EXIT_ERROR;
                json_object_object_add(j, "request_id", json_object_new_int64(id));
                json_object_object_add(j, "path", ctl_json_string(path));
                json_object_object_add(j, "files", json_object_new_uint64(res.n_files));
                json_object_object_add(j, "bytes", json_object_new_uint64(res.bytes));
                json_object_object_add(j, "encrypted", json_object_new_boolean(res.encrypted));
                json_object_object_add(j, "custody_head_id", json_object_new_int64(res.custody_head_id));
                json_object_object_add(j, "custody_head_hash", ctl_json_string(res.custody_head_hash));
                return ctl_json_print(j) < 0 ? EXIT_ERROR : EXIT_CLEAN;
        }
        printf("exported %zu file(s), %" PRIu64 " bytes%s, to %s\n", res.n_files, res.bytes,
               res.encrypted ? " (encrypted)" : "", path);
        printf("check it there with: sha256sum -c manifest-sha256.txt (README.txt says more)\n");
        return EXIT_CLEAN;
}

const CtlCommand ctl_cmd_export = {
    .name = "export",
    .synopsis = "export ID --to DIR [--encrypt-to CERT]",
    .summary = "copy the files of an approved request out, with what is needed to check them",
    .run = export_run,
};
