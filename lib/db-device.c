/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Enrollment: enroll, look up, list, retire (device_events, view devices_enrolled). */
#include <inttypes.h>
#include <stdio.h>

#include "db-internal.h"
#include "db.h"

#define DB_LOCK_DEVICE_CLASS "1702259044" /* 'evid', with hashtext(device_id) as second key */

void evd_db_device_free(EvdDbDevice *dev)
{
        if (!dev)
                return;
        free(dev->device_id);
        free(dev->officer_id);
        free(dev->unit_code);
        free(dev->public_key_pem);
        free(dev->key_id);
        free(dev);
}

void evd_db_device_array_free(EvdDbDevice *devs, size_t n)
{
        for (size_t i = 0; devs && i < n; i++) {
                free(devs[i].device_id);
                free(devs[i].officer_id);
                free(devs[i].unit_code);
                free(devs[i].public_key_pem);
                free(devs[i].key_id);
        }
        free(devs);
}

#define DEVICE_COLUMNS "device_id, officer_id, unit_code, suite, public_key_pem, key_id, " DB_US("at")

static int device_from_row(const PGresult *res, int row, EvdDbDevice *dev, EvdError *err)
{
        int suite = evd_suite_from_string(PQgetvalue(res, row, 3));
        if (suite < 0)
                return evd_error_set(err, -EINVAL, "device %s: unknown signature suite '%s' in the database",
                                     PQgetvalue(res, row, 0), PQgetvalue(res, row, 3));
        *dev = (EvdDbDevice){
            .device_id = db_get_strdup(res, row, 0),
            .officer_id = db_get_strdup(res, row, 1),
            .unit_code = db_get_strdup(res, row, 2),
            .suite = (EvdSuite)suite,
            .public_key_pem = db_get_strdup(res, row, 4),
            .key_id = db_get_strdup(res, row, 5),
            .enrolled_us = db_get_i64(res, row, 6),
        };
        if (!dev->device_id || !dev->officer_id || !dev->public_key_pem || !dev->key_id ||
            (!dev->unit_code && !db_is_null(res, row, 2)))
                return evd_error_set(err, -ENOMEM, "reading device: out of memory");
        return 0;
}

static int device_lock_and_check(EvdDb *db, const char *device_id, const char *what, bool *ret_enrolled,
                                 EvdError *err)
{
        DbParams p = {};
        db_param_text(&p, device_id);
        /* Serializes enroll/retire of one device so that two admins cannot both enroll it. */
        int r = db_exec(db, what, "SELECT pg_advisory_xact_lock(" DB_LOCK_DEVICE_CLASS ", hashtext($1))", &p,
                        NULL, err);
        if (r < 0)
                return r;
        _cleanup_(PQclearp) PGresult *res = NULL;
        r = db_exec(db, what, "SELECT 1 FROM devices_enrolled WHERE device_id = $1", &p, &res, err);
        if (r < 0)
                return r;
        *ret_enrolled = PQntuples(res) > 0;
        return 0;
}

int evd_db_device_enroll(EvdDb *db, const EvdDbDevice *dev, EvdError *err)
{
        char what[64];
        snprintf(what, sizeof(what), "enrolling device %.16s", dev && dev->device_id ? dev->device_id : "?");
        if (!dev)
                return evd_error_set(err, -EINVAL, "%s: no device", what);
        int r = db_check_device_id(dev->device_id, what, err);
        if (r < 0)
                return r;
        const char *suite = evd_suite_to_string(dev->suite);
        if (!dev->officer_id || !dev->public_key_pem || !dev->key_id || !suite)
                return evd_error_set(err, -EINVAL,
                                     "%s: officer id, suite, public key and key id are required", what);

        bool nested, enrolled;
        r = db_tx_open(db, &nested, err);
        if (r < 0)
                return r;
        r = device_lock_and_check(db, dev->device_id, what, &enrolled, err);
        if (r >= 0 && enrolled)
                r = evd_error_set(err, -EEXIST, "%s: it is enrolled already (retire it first)", what);
        if (r >= 0) {
                DbParams p = {};
                db_param_text(&p, dev->device_id);
                db_param_text(&p, dev->officer_id);
                db_param_text(&p, dev->unit_code);
                db_param_text(&p, suite);
                db_param_text(&p, dev->public_key_pem);
                db_param_text(&p, dev->key_id);
                r = db_exec(db, what,
                            "INSERT INTO device_events (device_id, event, officer_id, unit_code, suite, "
                            "public_key_pem, key_id) VALUES ($1, 'enroll', $2, $3, $4, $5, $6)",
                            &p, NULL, err);
        }
        return db_tx_close(db, nested, r, err);
}

int evd_db_device_get(EvdDb *db, const char *device_id, EvdDbDevice **ret_dev, EvdError *err)
{
        char what[64];
        snprintf(what, sizeof(what), "looking up device %.16s", strna(device_id));
        int r = db_check_device_id(device_id, what, err);
        if (r < 0)
                return r;
        DbParams p = {};
        db_param_text(&p, device_id);
        _cleanup_(PQclearp) PGresult *res = NULL;
        r = db_exec(db, what, "SELECT " DEVICE_COLUMNS " FROM devices_enrolled WHERE device_id = $1", &p,
                    &res, err);
        if (r < 0)
                return r;
        if (PQntuples(res) == 0)
                return evd_error_set(err, -ENOENT, "device %s is not enrolled", device_id);

        _cleanup_(evd_db_device_freep) EvdDbDevice *dev = calloc(1, sizeof(*dev));
        if (!dev)
                return -ENOMEM;
        r = device_from_row(res, 0, dev, err);
        if (r < 0)
                return r;
        *ret_dev = steal_ptr(&dev);
        return 0;
}

int evd_db_device_list(EvdDb *db, EvdDbDevice **ret_devs, size_t *ret_n, EvdError *err)
{
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r =
            db_exec(db, "listing devices",
                    "SELECT " DEVICE_COLUMNS " FROM devices_enrolled ORDER BY device_id", NULL, &res, err);
        if (r < 0)
                return r;
        size_t n;
        EvdDbDevice *devs = db_rows_calloc(res, sizeof(*devs), &n, "the enrolled recorders", err);
        if (!devs)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                r = device_from_row(res, (int)i, &devs[i], err);
                if (r < 0) {
                        evd_db_device_array_free(devs, n);
                        return r;
                }
        }
        *ret_devs = devs;
        *ret_n = n;
        return 0;
}

int evd_db_device_retire(EvdDb *db, const char *device_id, const char *reason, EvdError *err)
{
        char what[64];
        snprintf(what, sizeof(what), "retiring device %.16s", strna(device_id));
        int r = db_check_device_id(device_id, what, err);
        if (r < 0)
                return r;
        bool nested, enrolled;
        r = db_tx_open(db, &nested, err);
        if (r < 0)
                return r;
        r = device_lock_and_check(db, device_id, what, &enrolled, err);
        if (r >= 0 && !enrolled)
                r = evd_error_set(err, -ENOENT, "%s: it is not enrolled", what);
        if (r >= 0) {
                DbParams p = {};
                db_param_text(&p, device_id);
                db_param_text(&p, reason);
                r = db_exec(db, what,
                            "INSERT INTO device_events (device_id, event, reason) VALUES ($1, 'retire', $2)",
                            &p, NULL, err);
        }
        return db_tx_close(db, nested, r, err);
}
