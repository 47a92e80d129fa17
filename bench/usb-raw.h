/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The raw bus rate of a docked (emulated) recorder: every block of its medium in READ(10)s of
 * EVD_BOT_MAX_TRANSFER bytes, nothing else (bench-usb row (1), bench-dock's raw phase). */
#pragma once

#include <libusb.h>

#include "error.h"
#include "usb.h"

/* Opens dev with profile (switching it to storage when the profile says so), reads every block into buf
 * (EVD_BOT_MAX_TRANSFER bytes) and closes it. Only the reads are timed (*ret_s); *ret_bytes = the medium's
 * size. 0 or a negative errno with err set. */
int usb_raw_read_all(libusb_device *dev, const EvdUsbProfile *profile, void *buf, double *ret_s,
                     uint64_t *ret_bytes, EvdError *err);
