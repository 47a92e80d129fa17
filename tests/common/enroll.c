/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "enroll.h"
#include "macro.h"
#include "signature.h"

int test_enroll_volume(EvdDb *db, const char *volume, const char *device, const char *officer, EvdError *err)
{
        _cleanup_free_ char *pub = NULL;
        if (asprintf(&pub, "%s.pub", volume) < 0)
                return -ENOMEM;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        int r = evd_key_load_public_pem(pub, &key, err);
        if (r < 0)
                return r;
        EvdSuite suite;
        char key_id[EVD_KEY_ID_STRLEN + 1];
        if (evd_key_suite(key, &suite) < 0 || evd_key_id(key, key_id) < 0) {
                printf("# %s: not a recorder key of a known suite\n", pub);
                return -EINVAL;
        }
        _cleanup_free_ char *pem = NULL;
        r = evd_key_public_to_pem(key, &pem, err);
        if (r < 0)
                return r;
        EvdDbDevice d = {.device_id = (char *)device,
                         .officer_id = (char *)officer,
                         .unit_code = (char *)"440300000000",
                         .suite = suite,
                         .public_key_pem = pem,
                         .key_id = key_id};
        return evd_db_device_enroll(db, &d, err);
}
