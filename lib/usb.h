/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Recorder profiles and the recorder's vendor control protocol (docs/usb-protocol.md).
 *
 * A profile says how one recorder model is reached: VID:PID, which interface speaks the vendor
 * control protocol, which interface is the mass-storage one, and which optional steps are allowed.
 * The daemon fills it from conf/recorders.d/ *.conf (daemon/usb-profile.h): profile files are
 * configuration, which the library does not read.
 *
 * The control protocol only reads (identity, clock) except for two requests: SET_TIME, which writes
 * the recorder's *clock* (never its storage) and is sent only when the profile says set_clock=yes,
 * and SET_MODE, which asks the recorder to expose its storage. Nothing here writes storage. */
#pragma once

#include <libusb.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"

#define EVD_USB_PROFILE_NAME_MAX         64
#define EVD_USB_TIMEOUT_MS_DEFAULT       5000u /* per transfer */
#define EVD_USB_TIMEOUT_MS_MAX           60000u
#define EVD_USB_RETRIES_DEFAULT          3u /* mass-storage recovery attempts per command */
#define EVD_USB_RETRIES_MAX              10u
#define EVD_USB_CLOCK_UTC_OFFSET_DEFAULT 480 /* minutes; recorders keep China Standard Time */

typedef struct EvdUsbProfile {
        char name[EVD_USB_PROFILE_NAME_MAX]; /* "name" key, else the file name without .conf */
        uint16_t vendor_id;
        uint16_t product_id;
        int control_interface; /* interface number of the vendor protocol; -1: the model has none */
        int storage_interface; /* interface number of the Bulk-Only mass-storage interface */
        uint8_t bulk_in;       /* endpoint address (0x8N); 0: discover from the descriptors */
        uint8_t bulk_out;      /* endpoint address (0x0N); 0: discover */
        uint8_t lun;
        bool set_clock;           /* send SET_TIME at docking (writes the recorder clock); default no */
        bool switch_to_storage;   /* send SET_MODE(storage) before using mass storage; default yes */
        int clock_utc_offset_min; /* time zone the recorder clock runs in, minutes east of UTC */
        unsigned timeout_ms;      /* every transfer */
        unsigned max_retries;     /* bounded mass-storage recovery (reset + clear halt) per command */
} EvdUsbProfile;

/* Fills *ret with the compiled defaults (no VID/PID: those must be configured). */
void evd_usb_profile_init(EvdUsbProfile *ret);

/* Finds the first profile whose VID:PID matches dev. Returns the index, or -ENOENT if none matches,
 * or another -errno if the device descriptor cannot be read. Only the device descriptor is used. */
int evd_usb_profile_match(const EvdUsbProfile *profiles, size_t n_profiles, libusb_device *dev,
                          EvdError *err);

/* --- the vendor control protocol (docs/usb-protocol.md) --- */

/* bmRequestType: vendor, recipient interface; wIndex = control interface number. */
#define EVD_USB_REQTYPE_IN       0xC1
#define EVD_USB_REQTYPE_OUT      0x41
#define EVD_USB_REQ_GET_IDENTITY 0x01 /* IN, 25 bytes: serial(7) officer(6) unit(12), ASCII */
#define EVD_USB_REQ_GET_TIME     0x02 /* IN, 14 bytes: YYYYMMDDhhmmss, recorder local time */
#define EVD_USB_REQ_SET_TIME     0x03 /* OUT, 14 bytes: YYYYMMDDhhmmss (the clock only) */
#define EVD_USB_REQ_SET_MODE     0x04 /* OUT, no data; wValue = EVD_USB_MODE_STORAGE */
#define EVD_USB_MODE_STORAGE     0x0001
#define EVD_USB_IDENTITY_LEN     25
#define EVD_USB_TIME_LEN         14

#define EVD_USB_SERIAL_LEN  7
#define EVD_USB_OFFICER_LEN 6
#define EVD_USB_UNIT_LEN    12

typedef struct EvdUsbIdentity {
        char device_serial[EVD_USB_SERIAL_LEN + 1]; /* [0-9A-Z]{7} */
        char officer_id[EVD_USB_OFFICER_LEN + 1];   /* [0-9]{6} */
        char unit_code[EVD_USB_UNIT_LEN + 1];       /* [0-9A-Z]{12} */
} EvdUsbIdentity;

/* An opened recorder: a libusb handle with its interfaces claimed and the endpoints resolved. */
typedef struct EvdUsbRecorder EvdUsbRecorder;

/* Opens dev with the given profile (copied). Checks the active configuration: the storage interface
 * must be mass storage / SCSI / Bulk-Only with one bulk IN and one bulk OUT endpoint (matching the
 * profile's addresses if set); the control interface must exist if configured. Claims both
 * interfaces (detaching a kernel driver if one is bound). Free with evd_usb_recorder_close(). */
int evd_usb_recorder_open(libusb_device *dev, const EvdUsbProfile *profile, EvdUsbRecorder **ret,
                          EvdError *err);
void evd_usb_recorder_close(EvdUsbRecorder *rec);
DEFINE_TRIVIAL_CLEANUP_FUNC(EvdUsbRecorder *, evd_usb_recorder_close);

/* Borrowed: valid until evd_usb_recorder_close(). */
libusb_device_handle *evd_usb_recorder_handle(EvdUsbRecorder *rec);
const EvdUsbProfile *evd_usb_recorder_profile(EvdUsbRecorder *rec);
uint8_t evd_usb_recorder_bulk_in(EvdUsbRecorder *rec);
uint8_t evd_usb_recorder_bulk_out(EvdUsbRecorder *rec);
/* "usb 1-2 (1d6b:0104)"-style description for logs and EvdSourceIdentity.location. */
const char *evd_usb_recorder_location(EvdUsbRecorder *rec);

/* GET_IDENTITY. Every reply is checked (length, charset): a malformed reply is -EPROTO with a message. */
int evd_usb_read_identity(EvdUsbRecorder *rec, EvdUsbIdentity *ret, EvdError *err);
/* GET_TIME: reads the recorder clock and returns recorder minus dock in microseconds. The dock time
 * is taken at the midpoint of the transfer; the recorder's resolution is one second. */
int evd_usb_read_clock_offset(EvdUsbRecorder *rec, int64_t *ret_offset_us, EvdError *err);
/* SET_TIME to the dock clock. Refused with -EPERM unless the profile has set_clock = yes. */
int evd_usb_set_clock(EvdUsbRecorder *rec, EvdError *err);
/* SET_MODE(storage): asks the recorder to expose its storage on the mass-storage interface. */
int evd_usb_switch_to_storage(EvdUsbRecorder *rec, EvdError *err);

/* Helpers shared with the test emulator: format/parse "YYYYMMDDhhmmss" for a UTC time in seconds
 * shifted by utc_offset_min. Parse returns -EPROTO for anything but 14 digits of a valid date. */
int evd_usb_time_format(int64_t unix_s, int utc_offset_min, char ret[static 15]);
int evd_usb_time_parse(const char *s, size_t len, int utc_offset_min, int64_t *ret_unix_s);

/* libusb error code -> negative errno. */
int evd_usb_errno(int libusb_error);
