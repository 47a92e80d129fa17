/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <time.h>

#include "bot.h"
#include "usb.h"

/* The only SCSI operation codes this file knows. Each of them transfers data from the device to the
 * host (or none): there is deliberately no way to express a command that writes the medium. */
enum {
        SCSI_TEST_UNIT_READY = 0x00,
        SCSI_REQUEST_SENSE = 0x03,
        SCSI_INQUIRY = 0x12,
        SCSI_READ_CAPACITY_10 = 0x25,
        SCSI_READ_10 = 0x28,
};

#define CBW_SIGNATURE     0x43425355u /* "USBC" */
#define CSW_SIGNATURE     0x53425355u /* "USBS" */
#define CBW_LEN           31
#define CSW_LEN           13
#define BOT_RESET_REQUEST 0xFF /* Bulk-Only Mass Storage Reset (class, interface) */

struct EvdBot {
        EvdBotParams p;
        uint32_t tag;
        uint32_t block_size;
        uint64_t block_count;
        char inquiry[40];
        char where[48];
};

typedef struct BotCommand {
        const char *name;
        uint8_t cdb[10];
        uint8_t cdb_len;
        uint32_t data_len; /* device-to-host bytes expected; 0 for none */
} BotCommand;

static bool opcode_allowed(uint8_t op)
{
        switch (op) {
        case SCSI_TEST_UNIT_READY:
        case SCSI_REQUEST_SENSE:
        case SCSI_INQUIRY:
        case SCSI_READ_CAPACITY_10:
        case SCSI_READ_10:
                return true;
        default:
                return false;
        }
}

static void put_le32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
        p[2] = (uint8_t)(v >> 16);
        p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t get_be32(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int reset_recovery(EvdBot *b)
{
        /* USB MSC BOT 1.0 §5.3.4: reset, then clear HALT on both bulk endpoints. Each step is bounded
         * by the transfer timeout; the results matter only for a vanished device. */
        int r = libusb_control_transfer(b->p.handle, LIBUSB_REQUEST_TYPE_CLASS | LIBUSB_RECIPIENT_INTERFACE,
                                        BOT_RESET_REQUEST, 0, (uint16_t)b->p.interface, NULL, 0,
                                        b->p.timeout_ms);
        if (r == LIBUSB_ERROR_NO_DEVICE)
                return -ENODEV;
        r = libusb_clear_halt(b->p.handle, b->p.bulk_in);
        if (r == LIBUSB_ERROR_NO_DEVICE)
                return -ENODEV;
        r = libusb_clear_halt(b->p.handle, b->p.bulk_out);
        if (r == LIBUSB_ERROR_NO_DEVICE)
                return -ENODEV;
        evd_debug("%s: bulk-only reset recovery done", b->where);
        return 0;
}

static int bulk(EvdBot *b, uint8_t ep, uint8_t *buf, int len, int *ret_actual)
{
        int actual = 0;
        int r = libusb_bulk_transfer(b->p.handle, ep, buf, len, &actual, b->p.timeout_ms);
        *ret_actual = actual;
        return r;
}

/* One attempt at a command: CBW, optional data-in phase, CSW. Returns 0 with the CSW status (0 passed,
 * 1 failed, 2 phase error) and the bytes received, or a negative errno for a transport failure. */
static int bot_transport(EvdBot *b, const BotCommand *c, uint8_t *data, uint32_t *ret_got,
                         uint8_t *ret_status, EvdError *err)
{
        if (!opcode_allowed(c->cdb[0]))
                return evd_error_set(err, -EPERM, "%s: SCSI opcode 0x%02x is not allowed", b->where,
                                     c->cdb[0]);

        uint8_t cbw[CBW_LEN] = {};
        uint32_t tag = ++b->tag;
        put_le32(cbw, CBW_SIGNATURE);
        put_le32(cbw + 4, tag);
        put_le32(cbw + 8, c->data_len);
        cbw[12] = c->data_len ? 0x80 : 0x00; /* direction: always device-to-host */
        cbw[13] = b->p.lun;
        cbw[14] = c->cdb_len;
        memcpy(cbw + 15, c->cdb, c->cdb_len);

        int actual, r = bulk(b, b->p.bulk_out, cbw, CBW_LEN, &actual);
        if (r < 0)
                return evd_error_set(err, evd_usb_errno(r), "%s: %s: sending the command failed: %s",
                                     b->where, c->name, libusb_strerror(r));
        if (actual != CBW_LEN)
                return evd_error_set(err, -EPROTO, "%s: %s: device took %d of %d command bytes", b->where,
                                     c->name, actual, CBW_LEN);

        uint32_t got = 0;
        if (c->data_len > 0) {
                r = bulk(b, b->p.bulk_in, data, (int)c->data_len, &actual);
                if (r == LIBUSB_ERROR_PIPE) {
                        /* A stall in the data phase is legal (less data than asked): clear it, read CSW. */
                        int q = libusb_clear_halt(b->p.handle, b->p.bulk_in);
                        if (q == LIBUSB_ERROR_NO_DEVICE)
                                return evd_error_set(err, -ENODEV, "%s: %s: device gone", b->where, c->name);
                } else if (r < 0)
                        return evd_error_set(err, evd_usb_errno(r), "%s: %s: data phase failed: %s",
                                             b->where, c->name, libusb_strerror(r));
                got = (uint32_t)actual;
        }

        uint8_t csw[CSW_LEN];
        for (int attempt = 0;; attempt++) {
                r = bulk(b, b->p.bulk_in, csw, CSW_LEN, &actual);
                if (r == LIBUSB_ERROR_PIPE && attempt == 0) {
                        int q = libusb_clear_halt(b->p.handle, b->p.bulk_in);
                        if (q == LIBUSB_ERROR_NO_DEVICE)
                                return evd_error_set(err, -ENODEV, "%s: %s: device gone", b->where, c->name);
                        continue;
                }
                break;
        }
        if (r < 0)
                return evd_error_set(err, evd_usb_errno(r), "%s: %s: status phase failed: %s", b->where,
                                     c->name, libusb_strerror(r));
        if (actual != CSW_LEN)
                return evd_error_set(err, -EPROTO, "%s: %s: status is %d bytes, expected %d", b->where,
                                     c->name, actual, CSW_LEN);
        if (get_le32(csw) != CSW_SIGNATURE)
                return evd_error_set(err, -EPROTO, "%s: %s: bad status signature 0x%08x", b->where, c->name,
                                     get_le32(csw));
        if (get_le32(csw + 4) != tag)
                return evd_error_set(err, -EPROTO, "%s: %s: status tag %u does not match command tag %u",
                                     b->where, c->name, get_le32(csw + 4), tag);
        uint32_t residue = get_le32(csw + 8);
        if (csw[12] > 2)
                return evd_error_set(err, -EPROTO, "%s: %s: invalid status byte %u", b->where, c->name,
                                     csw[12]);
        if (residue > c->data_len)
                return evd_error_set(err, -EPROTO, "%s: %s: residue %u larger than the %u bytes asked for",
                                     b->where, c->name, residue, c->data_len);
        if (csw[12] == 0 && got > c->data_len - residue)
                return evd_error_set(err, -EPROTO, "%s: %s: sent %u bytes but residue says %u", b->where,
                                     c->name, got, c->data_len - residue);
        *ret_got = got;
        *ret_status = csw[12];
        return 0;
}

static int request_sense(EvdBot *b, uint8_t *ret_key, uint8_t *ret_asc, uint8_t *ret_ascq)
{
        BotCommand c = {.name = "REQUEST SENSE",
                        .cdb = {SCSI_REQUEST_SENSE, 0, 0, 0, 18, 0},
                        .cdb_len = 6,
                        .data_len = 18};
        uint8_t sense[18] = {};
        uint32_t got;
        uint8_t status;
        int r = bot_transport(b, &c, sense, &got, &status, NULL);
        if (r < 0)
                return r;
        if (status != 0 || got < 14 || (sense[0] & 0x7e) != 0x70)
                return -EPROTO;
        *ret_key = sense[2] & 0x0f;
        *ret_asc = sense[12];
        *ret_ascq = sense[13];
        return 0;
}

/* A command with bounded recovery. -EAGAIN means the device reported NOT READY / UNIT ATTENTION. */
static int bot_command(EvdBot *b, const BotCommand *c, uint8_t *data, uint32_t *ret_got, EvdError *err)
{
        int r = -EIO;
        for (unsigned attempt = 0; attempt <= b->p.max_retries; attempt++) {
                uint32_t got = 0;
                uint8_t status = 0;
                EvdError local = {};

                r = bot_transport(b, c, data, &got, &status, err ? &local : NULL);
                if (r == -ENODEV) {
                        if (err)
                                *err = local;
                        return r;
                }
                if (r == 0 && status == 0) {
                        *ret_got = got;
                        return 0;
                }
                if (r == 0 && status == 1) {
                        uint8_t key = 0, asc = 0, ascq = 0;
                        int q = request_sense(b, &key, &asc, &ascq);
                        if (q == -ENODEV)
                                return evd_error_set(err, q, "%s: %s: device gone", b->where, c->name);
                        if (q < 0)
                                return evd_error_set(err, -EIO, "%s: %s failed (no sense data)", b->where,
                                                     c->name);
                        if (key == 0x02 || key == 0x06)
                                return evd_error_set(err, -EAGAIN, "%s: %s: not ready (sense %x/%02x/%02x)",
                                                     b->where, c->name, key, asc, ascq);
                        return evd_error_set(err, -EIO, "%s: %s failed (sense key %x, asc %02x, ascq %02x)",
                                             b->where, c->name, key, asc, ascq);
                }
                if (r == 0) /* phase error */
                        r = evd_error_set(err ? &local : NULL, -EPROTO, "%s: %s: phase error", b->where,
                                          c->name);
                if (err)
                        *err = local;
                evd_debug("%s: %s attempt %u failed: %s", b->where, c->name, attempt + 1,
                          evd_error_message(&local, r));
                int q = reset_recovery(b);
                if (q == -ENODEV)
                        return evd_error_set(err, q, "%s: %s: device gone during recovery", b->where,
                                             c->name);
        }
        if (err)
                evd_error_prefix(err, "after %u attempts: ", b->p.max_retries + 1);
        return r;
}

static void sleep_ms(unsigned ms)
{
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

static void copy_printable(char *dst, const uint8_t *src, size_t n)
{
        for (size_t i = 0; i < n; i++)
                dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? (char)src[i] : '?';
        dst[n] = 0;
}

int evd_bot_open(const EvdBotParams *params, EvdBot **ret, EvdError *err)
{
        if (!params->handle || params->timeout_ms == 0 || !(params->bulk_in & 0x80) ||
            (params->bulk_out & 0x80))
                return evd_error_set(err, -EINVAL, "bulk-only: invalid parameters");

        _cleanup_(evd_bot_freep) EvdBot *b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->p = *params;
        libusb_device *dev = libusb_get_device(params->handle);
        snprintf(b->where, sizeof(b->where), "usb %u-%u mass storage", libusb_get_bus_number(dev),
                 libusb_get_device_address(dev));

        uint8_t inq[36] = {};
        uint32_t got;
        BotCommand inquiry = {
            .name = "INQUIRY", .cdb = {SCSI_INQUIRY, 0, 0, 0, 36, 0}, .cdb_len = 6, .data_len = 36};
        int r = bot_command(b, &inquiry, inq, &got, err);
        if (r < 0)
                return r;
        if (got < 36)
                return evd_error_set(err, -EPROTO, "%s: INQUIRY reply is %u bytes, expected 36", b->where,
                                     got);
        if ((inq[0] & 0x1f) != 0x00)
                return evd_error_set(err, -EPROTO, "%s: not a direct-access block device (type 0x%02x)",
                                     b->where, inq[0] & 0x1f);
        char vendor[9], product[17], rev[5];
        copy_printable(vendor, inq + 8, 8);
        copy_printable(product, inq + 16, 16);
        copy_printable(rev, inq + 32, 4);
        snprintf(b->inquiry, sizeof(b->inquiry), "%s %s %s", vendor, product, rev);

        BotCommand tur = {.name = "TEST UNIT READY", .cdb = {SCSI_TEST_UNIT_READY}, .cdb_len = 6};
        for (unsigned i = 0;; i++) {
                r = bot_command(b, &tur, NULL, &got, err);
                if (r != -EAGAIN || i + 1 >= EVD_BOT_READY_TRIES)
                        break;
                sleep_ms(EVD_BOT_READY_DELAY_MS);
        }
        if (r < 0)
                return r;

        uint8_t cap[8] = {};
        BotCommand readcap = {
            .name = "READ CAPACITY(10)", .cdb = {SCSI_READ_CAPACITY_10}, .cdb_len = 10, .data_len = 8};
        r = bot_command(b, &readcap, cap, &got, err);
        if (r < 0)
                return r;
        if (got != 8)
                return evd_error_set(err, -EPROTO, "%s: READ CAPACITY reply is %u bytes, expected 8",
                                     b->where, got);
        uint32_t last_lba = get_be32(cap), block_size = get_be32(cap + 4);
        if (block_size < 512 || block_size > 4096 || (block_size & (block_size - 1)))
                return evd_error_set(err, -EPROTO, "%s: unsupported block size %u", b->where, block_size);
        if (last_lba == 0xffffffffu)
                return evd_error_set(err, -EOPNOTSUPP,
                                     "%s: medium larger than READ CAPACITY(10) can express", b->where);
        b->block_size = block_size;
        b->block_count = (uint64_t)last_lba + 1;
        evd_debug("%s: %s, %" PRIu64 " blocks of %u bytes", b->where, b->inquiry, b->block_count,
                  b->block_size);
        *ret = steal_ptr(&b);
        return 0;
}

void evd_bot_free(EvdBot *bot)
{
        free(bot);
}

uint32_t evd_bot_block_size(const EvdBot *bot)
{
        return bot->block_size;
}

uint64_t evd_bot_block_count(const EvdBot *bot)
{
        return bot->block_count;
}

const char *evd_bot_inquiry(const EvdBot *bot)
{
        return bot->inquiry;
}

int evd_bot_read(EvdBot *b, uint64_t lba, uint32_t count, void *buf, EvdError *err)
{
        if (count == 0)
                return 0;
        if (lba >= b->block_count || count > b->block_count - lba)
                return evd_error_set(err, -ERANGE,
                                     "%s: read of %u blocks at %" PRIu64 " is past the capacity (%" PRIu64
                                     " blocks)",
                                     b->where, count, lba, b->block_count);

        uint32_t per_transfer = EVD_BOT_MAX_TRANSFER / b->block_size;
        uint8_t *p = buf;
        while (count > 0) {
                uint32_t n = MIN(count, per_transfer);
                BotCommand c = {.name = "READ(10)", .cdb_len = 10, .data_len = n * b->block_size};
                c.cdb[0] = SCSI_READ_10;
                c.cdb[2] = (uint8_t)(lba >> 24);
                c.cdb[3] = (uint8_t)(lba >> 16);
                c.cdb[4] = (uint8_t)(lba >> 8);
                c.cdb[5] = (uint8_t)lba;
                c.cdb[7] = (uint8_t)(n >> 8);
                c.cdb[8] = (uint8_t)n;
                uint32_t got = 0;
                int r = bot_command(b, &c, p, &got, err);
                if (r < 0) {
                        evd_error_prefix(err, "block %" PRIu64 ": ", lba);
                        return r;
                }
                if (got != c.data_len)
                        return evd_error_set(err, -EIO,
                                             "%s: READ(10) at block %" PRIu64 " returned %u of %u bytes",
                                             b->where, lba, got, c.data_len);
                p += c.data_len;
                lba += n;
                count -= n;
        }
        return 0;
}
