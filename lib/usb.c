/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <limits.h>
#include <time.h>

#include "clock.h"
#include "usb.h"

struct EvdUsbRecorder {
        libusb_device_handle *handle;
        EvdUsbProfile profile;
        uint8_t bulk_in, bulk_out;
        bool control_claimed, storage_claimed;
        char location[128];
};

int evd_usb_errno(int e)
{
        switch (e) {
        case LIBUSB_SUCCESS:
                return 0;
        case LIBUSB_ERROR_IO:
                return -EIO;
        case LIBUSB_ERROR_INVALID_PARAM:
                return -EINVAL;
        case LIBUSB_ERROR_ACCESS:
                return -EACCES;
        case LIBUSB_ERROR_NO_DEVICE:
                return -ENODEV;
        case LIBUSB_ERROR_NOT_FOUND:
                return -ENOENT;
        case LIBUSB_ERROR_BUSY:
                return -EBUSY;
        case LIBUSB_ERROR_TIMEOUT:
                return -ETIMEDOUT;
        case LIBUSB_ERROR_OVERFLOW:
                return -EOVERFLOW;
        case LIBUSB_ERROR_PIPE:
                return -EPIPE;
        case LIBUSB_ERROR_INTERRUPTED:
                return -EINTR;
        case LIBUSB_ERROR_NO_MEM:
                return -ENOMEM;
        case LIBUSB_ERROR_NOT_SUPPORTED:
                return -EOPNOTSUPP;
        default:
                return -EIO;
        }
}

void evd_usb_profile_init(EvdUsbProfile *ret)
{
        *ret = (EvdUsbProfile){
            .control_interface = -1,
            .storage_interface = -1,
            .switch_to_storage = true,
            .clock_utc_offset_min = EVD_USB_CLOCK_UTC_OFFSET_DEFAULT,
            .timeout_ms = EVD_USB_TIMEOUT_MS_DEFAULT,
            .max_retries = EVD_USB_RETRIES_DEFAULT,
        };
}

int evd_usb_profile_match(const EvdUsbProfile *profiles, size_t n, libusb_device *dev, EvdError *err)
{
        struct libusb_device_descriptor d;
        int r = libusb_get_device_descriptor(dev, &d);
        if (r < 0)
                return evd_error_set(err, evd_usb_errno(r), "usb %u-%u: cannot read device descriptor: %s",
                                     libusb_get_bus_number(dev), libusb_get_device_address(dev),
                                     libusb_strerror(r));
        for (size_t i = 0; i < n; i++)
                if (profiles[i].vendor_id == d.idVendor && profiles[i].product_id == d.idProduct)
                        return (int)MIN(i, (size_t)INT_MAX);
        return evd_error_set(err, -ENOENT, "usb %u-%u (%04x:%04x): no recorder profile matches",
                             libusb_get_bus_number(dev), libusb_get_device_address(dev), d.idVendor,
                             d.idProduct);
}

/* --- opening a recorder --- */

DEFINE_TRIVIAL_CLEANUP_FUNC(struct libusb_config_descriptor *, libusb_free_config_descriptor);

static const struct libusb_interface_descriptor *find_interface(const struct libusb_config_descriptor *c,
                                                                int number)
{
        for (int i = 0; i < c->bNumInterfaces; i++) {
                const struct libusb_interface *itf = &c->interface[i];
                /* Alternate setting 0 is the one in effect after claiming. */
                if (itf->num_altsetting > 0 && itf->altsetting[0].bInterfaceNumber == number)
                        return &itf->altsetting[0];
        }
        return NULL;
}

static int resolve_endpoints(EvdUsbRecorder *rec, const struct libusb_interface_descriptor *alt,
                             EvdError *err)
{
        uint8_t in = 0, out = 0;
        int n_in = 0, n_out = 0;

        for (int i = 0; i < alt->bNumEndpoints; i++) {
                const struct libusb_endpoint_descriptor *ep = &alt->endpoint[i];
                if ((ep->bmAttributes & LIBUSB_TRANSFER_TYPE_MASK) != LIBUSB_TRANSFER_TYPE_BULK)
                        continue;
                if (ep->bEndpointAddress & LIBUSB_ENDPOINT_IN) {
                        if (!rec->profile.bulk_in || rec->profile.bulk_in == ep->bEndpointAddress) {
                                in = ep->bEndpointAddress;
                                n_in++;
                        }
                } else if (!rec->profile.bulk_out || rec->profile.bulk_out == ep->bEndpointAddress) {
                        out = ep->bEndpointAddress;
                        n_out++;
                }
        }
        if (n_in != 1 || n_out != 1)
                return evd_error_set(
                    err, -EPROTO,
                    "%s: mass-storage interface %d needs exactly one bulk IN and one bulk OUT endpoint "
                    "(found %d IN, %d OUT)",
                    rec->location, rec->profile.storage_interface, n_in, n_out);
        rec->bulk_in = in;
        rec->bulk_out = out;
        return 0;
}

static int claim(EvdUsbRecorder *rec, int number, EvdError *err)
{
        int r = libusb_claim_interface(rec->handle, number);
        if (r < 0)
                return evd_error_set(err, evd_usb_errno(r), "%s: cannot claim interface %d: %s",
                                     rec->location, number, libusb_strerror(r));
        return 0;
}

int evd_usb_recorder_open(libusb_device *dev, const EvdUsbProfile *profile, EvdUsbRecorder **ret,
                          EvdError *err)
{
        _cleanup_(evd_usb_recorder_closep) EvdUsbRecorder *rec = calloc(1, sizeof(*rec));
        if (!rec)
                return -ENOMEM;
        rec->profile = *profile;
        snprintf(rec->location, sizeof(rec->location), "usb %u-%u (%04x:%04x)", libusb_get_bus_number(dev),
                 libusb_get_device_address(dev), profile->vendor_id, profile->product_id);

        _cleanup_(libusb_free_config_descriptorp) struct libusb_config_descriptor *config = NULL;
        int r = libusb_get_active_config_descriptor(dev, &config);
        if (r < 0)
                return evd_error_set(err, evd_usb_errno(r) == -ENOENT ? -EPROTO : evd_usb_errno(r),
                                     "%s: cannot read the configuration descriptor: %s", rec->location,
                                     libusb_strerror(r));

        const struct libusb_interface_descriptor *storage =
            find_interface(config, profile->storage_interface);
        if (!storage)
                return evd_error_set(err, -EPROTO, "%s: no interface %d (storage_interface)", rec->location,
                                     profile->storage_interface);
        if (storage->bInterfaceClass != LIBUSB_CLASS_MASS_STORAGE || storage->bInterfaceSubClass != 0x06 ||
            storage->bInterfaceProtocol != 0x50)
                return evd_error_set(
                    err, -EPROTO,
                    "%s: interface %d is not SCSI Bulk-Only mass storage (class %02x/%02x/%02x)",
                    rec->location, profile->storage_interface, storage->bInterfaceClass,
                    storage->bInterfaceSubClass, storage->bInterfaceProtocol);
        r = resolve_endpoints(rec, storage, err);
        if (r < 0)
                return r;
        if (profile->control_interface >= 0) {
                const struct libusb_interface_descriptor *ctl =
                    find_interface(config, profile->control_interface);
                if (!ctl)
                        return evd_error_set(err, -EPROTO, "%s: no interface %d (control_interface)",
                                             rec->location, profile->control_interface);
                if (ctl->bInterfaceClass != LIBUSB_CLASS_VENDOR_SPEC)
                        return evd_error_set(
                            err, -EPROTO, "%s: interface %d is not vendor-specific (class %02x)",
                            rec->location, profile->control_interface, ctl->bInterfaceClass);
        }

        r = libusb_open(dev, &rec->handle);
        if (r < 0)
                return evd_error_set(err, evd_usb_errno(r), "%s: cannot open: %s", rec->location,
                                     libusb_strerror(r));
        /* A kernel usb-storage driver would mount nothing here (the dock's udev rule keeps it away),
         * but if one is bound it must let go so that only this read-only code talks to the device. */
        (void)libusb_set_auto_detach_kernel_driver(rec->handle, 1);

        if (profile->control_interface >= 0) {
                r = claim(rec, profile->control_interface, err);
                if (r < 0)
                        return r;
                rec->control_claimed = true;
        }
        r = claim(rec, profile->storage_interface, err);
        if (r < 0)
                return r;
        rec->storage_claimed = true;

        *ret = steal_ptr(&rec);
        return 0;
}

void evd_usb_recorder_close(EvdUsbRecorder *rec)
{
        if (!rec)
                return;
        if (rec->handle) {
                if (rec->storage_claimed)
                        (void)libusb_release_interface(rec->handle, rec->profile.storage_interface);
                if (rec->control_claimed)
                        (void)libusb_release_interface(rec->handle, rec->profile.control_interface);
                libusb_close(rec->handle);
        }
        free(rec);
}

libusb_device_handle *evd_usb_recorder_handle(EvdUsbRecorder *rec)
{
        return rec->handle;
}

const EvdUsbProfile *evd_usb_recorder_profile(EvdUsbRecorder *rec)
{
        return &rec->profile;
}

uint8_t evd_usb_recorder_bulk_in(EvdUsbRecorder *rec)
{
        return rec->bulk_in;
}

uint8_t evd_usb_recorder_bulk_out(EvdUsbRecorder *rec)
{
        return rec->bulk_out;
}

const char *evd_usb_recorder_location(EvdUsbRecorder *rec)
{
        return rec->location;
}

/* --- the control protocol --- */

static int control_in(EvdUsbRecorder *rec, uint8_t request, const char *what, uint8_t *buf, uint16_t len,
                      EvdError *err)
{
        if (rec->profile.control_interface < 0)
                return evd_error_set(err, -EOPNOTSUPP, "%s: profile '%s' has no control interface",
                                     rec->location, rec->profile.name);
        int r = libusb_control_transfer(rec->handle, EVD_USB_REQTYPE_IN, request, 0,
                                        (uint16_t)rec->profile.control_interface, buf, len,
                                        rec->profile.timeout_ms);
        if (r < 0)
                return evd_error_set(err, evd_usb_errno(r), "%s: %s request failed: %s", rec->location, what,
                                     libusb_strerror(r));
        return r;
}

static int control_out(EvdUsbRecorder *rec, uint8_t request, uint16_t value, const char *what, uint8_t *buf,
                       uint16_t len, EvdError *err)
{
        if (rec->profile.control_interface < 0)
                return evd_error_set(err, -EOPNOTSUPP, "%s: profile '%s' has no control interface",
                                     rec->location, rec->profile.name);
        int r = libusb_control_transfer(rec->handle, EVD_USB_REQTYPE_OUT, request, value,
                                        (uint16_t)rec->profile.control_interface, buf, len,
                                        rec->profile.timeout_ms);
        if (r < 0)
                return evd_error_set(err, evd_usb_errno(r), "%s: %s request failed: %s", rec->location, what,
                                     libusb_strerror(r));
        if (r != len)
                return evd_error_set(err, -EPROTO, "%s: %s request: device took %d of %u bytes",
                                     rec->location, what, r, len);
        return 0;
}

static bool all_in_class(const uint8_t *s, size_t n, bool letters)
{
        for (size_t i = 0; i < n; i++) {
                bool ok = (s[i] >= '0' && s[i] <= '9') || (letters && s[i] >= 'A' && s[i] <= 'Z');
                if (!ok)
                        return false;
        }
        return true;
}

int evd_usb_read_identity(EvdUsbRecorder *rec, EvdUsbIdentity *ret, EvdError *err)
{
        /* Ask for more than the reply should be, so that a device sending too much is noticed. */
        uint8_t buf[EVD_USB_IDENTITY_LEN + 8];
        int r = control_in(rec, EVD_USB_REQ_GET_IDENTITY, "GET_IDENTITY", buf, sizeof(buf), err);
        if (r < 0)
                return r;
        if (r != EVD_USB_IDENTITY_LEN)
                return evd_error_set(err, -EPROTO, "%s: GET_IDENTITY reply is %d bytes, expected %d",
                                     rec->location, r, EVD_USB_IDENTITY_LEN);
        const uint8_t *serial = buf, *officer = buf + EVD_USB_SERIAL_LEN,
                      *unit = buf + EVD_USB_SERIAL_LEN + EVD_USB_OFFICER_LEN;
        if (!all_in_class(serial, EVD_USB_SERIAL_LEN, true))
                return evd_error_set(err, -EPROTO, "%s: GET_IDENTITY: device serial is not 7 of [0-9A-Z]",
                                     rec->location);
        if (!all_in_class(officer, EVD_USB_OFFICER_LEN, false))
                return evd_error_set(err, -EPROTO, "%s: GET_IDENTITY: officer number is not 6 digits",
                                     rec->location);
        if (!all_in_class(unit, EVD_USB_UNIT_LEN, true))
                return evd_error_set(err, -EPROTO, "%s: GET_IDENTITY: unit code is not 12 of [0-9A-Z]",
                                     rec->location);
        EvdUsbIdentity id = {};
        memcpy(id.device_serial, serial, EVD_USB_SERIAL_LEN);
        memcpy(id.officer_id, officer, EVD_USB_OFFICER_LEN);
        memcpy(id.unit_code, unit, EVD_USB_UNIT_LEN);
        *ret = id;
        return 0;
}

int evd_usb_time_format(int64_t unix_s, int utc_offset_min, char ret[static 15])
{
        time_t t = (time_t)(unix_s + (int64_t)utc_offset_min * 60);
        struct tm tm;
        if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 1000 || tm.tm_year + 1900 > 9999)
                return -ERANGE;
        snprintf(ret, 15, "%04d%02d%02d%02d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec);
        return 0;
}

int evd_usb_time_parse(const char *s, size_t len, int utc_offset_min, int64_t *ret_unix_s)
{
        if (len != EVD_USB_TIME_LEN || !all_in_class((const uint8_t *)s, len, false))
                return -EPROTO;
        int v[6];
        static const int widths[6] = {4, 2, 2, 2, 2, 2};
        for (int i = 0, pos = 0; i < 6; pos += widths[i], i++) {
                v[i] = 0;
                for (int j = 0; j < widths[i]; j++)
                        v[i] = v[i] * 10 + (s[pos + j] - '0');
        }
        struct tm tm = {
            .tm_year = v[0] - 1900,
            .tm_mon = v[1] - 1,
            .tm_mday = v[2],
            .tm_hour = v[3],
            .tm_min = v[4],
            .tm_sec = v[5],
        };
        if (v[0] < 1970 || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 ||
            v[5] > 59)
                return -EPROTO;
        time_t t = timegm(&tm);
        struct tm check;
        /* timegm() normalises 31 February into March: a round trip catches it. */
        if (t == (time_t)-1 || !gmtime_r(&t, &check) || check.tm_mday != v[2] || check.tm_mon != v[1] - 1)
                return -EPROTO;
        *ret_unix_s = (int64_t)t - (int64_t)utc_offset_min * 60;
        return 0;
}

int evd_usb_read_clock_offset(EvdUsbRecorder *rec, int64_t *ret_offset_us, EvdError *err)
{
        uint8_t buf[EVD_USB_TIME_LEN + 8];
        int64_t before = evd_clock_wall_us();
        int r = control_in(rec, EVD_USB_REQ_GET_TIME, "GET_TIME", buf, sizeof(buf), err);
        int64_t after = evd_clock_wall_us();
        if (r < 0)
                return r;
        if (r != EVD_USB_TIME_LEN)
                return evd_error_set(err, -EPROTO, "%s: GET_TIME reply is %d bytes, expected %d",
                                     rec->location, r, EVD_USB_TIME_LEN);
        int64_t device_s;
        if (evd_usb_time_parse((const char *)buf, (size_t)r, rec->profile.clock_utc_offset_min, &device_s) <
            0)
                return evd_error_set(err, -EPROTO,
                                     "%s: GET_TIME reply '%.*s' is not a valid YYYYMMDDhhmmss time",
                                     rec->location, r, (const char *)buf);
        /* The recorder sampled its clock somewhere during the transfer: the midpoint halves the error. */
        int64_t dock_us = before + (after - before) / 2;
        *ret_offset_us = device_s * 1000000 - dock_us;
        return 0;
}

int evd_usb_set_clock(EvdUsbRecorder *rec, EvdError *err)
{
        if (!rec->profile.set_clock)
                return evd_error_set(err, -EPERM,
                                     "%s: profile '%s' does not allow setting the recorder clock",
                                     rec->location, rec->profile.name);
        char text[15];
        /* Round to the nearest second: the recorder keeps whole seconds. */
        int r = evd_usb_time_format((evd_clock_wall_us() + 500000) / 1000000,
                                    rec->profile.clock_utc_offset_min, text);
        if (r < 0)
                return evd_error_set(err, r, "%s: cannot format the dock time", rec->location);
        return control_out(rec, EVD_USB_REQ_SET_TIME, 0, "SET_TIME", (uint8_t *)text, EVD_USB_TIME_LEN, err);
}

int evd_usb_switch_to_storage(EvdUsbRecorder *rec, EvdError *err)
{
        return control_out(rec, EVD_USB_REQ_SET_MODE, EVD_USB_MODE_STORAGE, "SET_MODE", NULL, 0, err);
}
