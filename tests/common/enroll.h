/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "db.h"
#include "error.h"

/* Enrolls the recorder of a simulated volume: its public key from "<volume>.pub" (as evidock-sim writes
 * it), with the unit 440300000000. Negative errno with err set (or a TAP comment for a key error). */
int test_enroll_volume(EvdDb *db, const char *volume, const char *device, const char *officer,
                       EvdError *err);
