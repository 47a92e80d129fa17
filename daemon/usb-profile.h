/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Recorder profiles: conf/recorders.d/ *.conf, one recorder model per file, read by evidockd (USB
 * hotplug, manager-usb.c) and checked by `evidockctl config --check`. The library only knows the
 * EvdUsbProfile that these files fill (lib/usb.h); reading configuration is the daemon's job.
 *
 * Format: UTF-8 text, one "key = value" per line, '#' starts a comment line, blank lines are ignored,
 * CRLF line ends are accepted (lib/kv.h: EVD_KV_STRIP | EVD_KV_COMMENTS | EVD_KV_CRLF). An unknown key,
 * a duplicate key, a bad value or a missing required key (vendor_id, product_id, storage_interface) is
 * an error naming file:line. */
#pragma once

#include "error.h"
#include "usb.h"

#define EVD_USB_PROFILE_FILE_MAX (64u * 1024u) /* a profile file larger than this is refused */

/* Parses one profile file (a symlink is followed; it must be a regular file). *ret is set only on 0;
 * errors are -EINVAL (format), -EFBIG (size) or the -errno of reading, with file[:line] in err. */
int evd_usb_profile_parse_file(const char *path, EvdUsbProfile *ret, EvdError *err);
/* The same for text already in memory; origin names it in messages (and gives the default name). */
int evd_usb_profile_parse_string(const char *text, const char *origin, EvdUsbProfile *ret, EvdError *err);

/* One file of a profiles directory, as evd_usb_profile_list() read it. */
typedef struct EvdUsbProfileFile {
        char *path;
        int result; /* 0, or why it does not parse (err) */
        EvdError err;
        EvdUsbProfile profile; /* when result is 0 */
} EvdUsbProfileFile;

/* Every profile of dir (each *.conf, in name order), each parsed strictly: the one reading of
 * recorders.d for evidockd and `evidockctl config --check`. *ret_n is 0 when there is none. 0, or -ENOMEM,
 * or -EIO when the directory cannot be listed. Free *ret with evd_usb_profile_list_free(). */
int evd_usb_profile_list(const char *dir, EvdUsbProfileFile **ret, size_t *ret_n);
void evd_usb_profile_list_free(EvdUsbProfileFile *files, size_t n);
