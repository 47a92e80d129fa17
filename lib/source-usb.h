/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* EvdSource implementations over the filesystem reader (fs.h): a docked USB recorder and a plain disk
 * image file. Both are read-only: the USB one speaks only the read commands of bot.h, the image one
 * opens the file O_RDONLY. */
#pragma once

#include <libusb.h>

#include "source.h"
#include "usb.h"

/* Opens a docked recorder: claims its interfaces (evd_usb_recorder_open), reads its identity and clock
 * offset over the vendor control protocol (if the profile has a control interface), sets its clock
 * only if profile->set_clock (after measuring the offset, so the offset reported is the one found at
 * docking), switches it to mass storage (if profile->switch_to_storage), then opens the Bulk-Only
 * transport and the FAT/exFAT volume. dev is referenced, not owned. Free with evd_source_free(). The
 * caller's libusb context must outlive the source. */
int evd_source_usb_new(libusb_device *dev, const EvdUsbProfile *profile, EvdSource **ret, EvdError *err);

/* A FAT/exFAT volume (or MBR-partitioned medium) in a disk image file, e.g. a card image. */
int evd_source_image_new(const char *path, EvdSource **ret, EvdError *err);
