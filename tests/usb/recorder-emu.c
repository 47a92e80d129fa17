/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <linux/ioctl.h> /* before usbdevice_fs.h */
#include <linux/usbdevice_fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "usb.h"
/* after our headers: GLib redefines MIN/MAX (with an #undef first) */
#include "recorder-emu.h"

#define EP_IN  0x81
#define EP_OUT 0x02
#define BLOCK  512u
/* a reap before the paced data is due waits at most this long; the token bucket banks up to this much
 * idle bus time so that the timer's lateness does not lower the rate */
#define PACE_TICK_MS 1

enum { BOT_IDLE, BOT_DATA, BOT_STATUS };

struct RecorderEmu {
        UMockdevTestbed *tb;
        UMockdevIoctlBase *handler;
        RecorderEmuConfig cfg;
        char serial[8], officer[7], unit[13];
        char devnode[32];
        char *syspath;
        int image_fd;
        uint64_t image_blocks;

        GMutex lock; /* the handler runs in umockdev's worker thread */
        bool gone, removed;
        bool storage_enabled, clock_set;
        int64_t clock_offset_s;
        unsigned rejected_opcodes, reads_seen;
        uint64_t empty_reaps; /* reaps answered with nothing (EAGAIN): the host polling */
        uint64_t bytes_read;
        int64_t pace_next_us; /* CLOCK_MONOTONIC: when the bus is free again (rate_bytes_per_s) */
        /* Pacing without sleeping in umockdev's worker thread, which serves every recorder of the
         * testbed (sleeping there made N paced recorders share one bus): the head bulk IN URB's data is
         * due at pace_due_us and delivered by the first reap after that; a reap that comes earlier is
         * answered (EAGAIN, or the URB) at most PACE_TICK_MS later from a timer in that thread, so the
         * host waits a little in its ioctl instead of spinning, and other recorders go on meanwhile. */
        void *pace_urb; /* the Urb whose bus time is booked, NULL: none */
        int64_t pace_due_us;
        GSource *reap_src;      /* the deferred reap, NULL: none */
        RecorderEmuRead *trace; /* recorder_emu_trace_reads(): READ(10)s as they were served */
        size_t trace_n, trace_cap;
        UMockdevIoctlClient *reap_client;
        bool stalled_once;

        /* Bulk-Only state */
        int bot_state;
        uint32_t tag;
        uint32_t host_len;     /* dCBWDataTransferLength */
        uint8_t status;        /* CSW status to send */
        bool data_from_image;  /* READ(10): data comes from the image */
        uint64_t image_offset; /* next byte to send for READ(10) */
        uint32_t data_left;
        uint8_t small[64]; /* data for the other commands */
        uint32_t small_len, small_pos;
        bool is_read;
        uint8_t sense_key, asc, ascq;

        /* Every open file descriptor (UMockdevIoctlClient) reaps only its own URBs. */
        GList *pending_in; /* Urb* of submitted bulk IN URBs not answered yet */
        GQueue done;       /* Urb* ready to be reaped */
};

typedef struct Urb {
        UMockdevIoctlClient *client; /* not referenced: only compared */
        UMockdevIoctlData *data;     /* referenced */
} Urb;

static Urb *urb_new(UMockdevIoctlClient *client, UMockdevIoctlData *data)
{
        Urb *u = g_new0(Urb, 1);
        u->client = client;
        u->data = data;
        return u;
}

static void put_be32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)(v >> 24);
        p[1] = (uint8_t)(v >> 16);
        p[2] = (uint8_t)(v >> 8);
        p[3] = (uint8_t)v;
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

static struct usbdevfs_urb *urb_of(UMockdevIoctlData *d)
{
        return (struct usbdevfs_urb *)d->data;
}

static void finish(RecorderEmu *e, Urb *u, int status, int actual)
{
        struct usbdevfs_urb *urb = urb_of(u->data);
        urb->status = status;
        urb->actual_length = actual;
        g_queue_push_tail(&e->done, u);
}

static void set_sense(RecorderEmu *e, uint8_t key, uint8_t asc, uint8_t ascq)
{
        e->sense_key = key;
        e->asc = asc;
        e->ascq = ascq;
}

/* --- SCSI target --- */

static void scsi_fail(RecorderEmu *e, uint8_t key, uint8_t asc, uint8_t ascq)
{
        set_sense(e, key, asc, ascq);
        e->status = 1;
        e->small_len = 0;
}

static uint64_t capacity_blocks(RecorderEmu *e)
{
        if (e->cfg.fault == RECORDER_EMU_FAULT_SMALL_CAPACITY)
                return e->image_blocks / 2;
        return e->image_blocks;
}

static void handle_cbw(RecorderEmu *e, const uint8_t *cbw)
{
        const uint8_t *cdb = cbw + 15;
        e->tag = get_le32(cbw + 4);
        e->host_len = get_le32(cbw + 8);
        e->status = 0;
        e->small_len = e->small_pos = 0;
        e->data_from_image = false;
        e->data_left = 0;
        e->is_read = false;

        switch (cdb[0]) {
        case 0x00: /* TEST UNIT READY */
                if (!e->storage_enabled)
                        scsi_fail(e, 0x02, 0x3a, 0x00);
                else
                        set_sense(e, 0, 0, 0);
                break;
        case 0x03: /* REQUEST SENSE */
                memset(e->small, 0, 18);
                e->small[0] = 0x70;
                e->small[2] = e->sense_key;
                e->small[7] = 10;
                e->small[12] = e->asc;
                e->small[13] = e->ascq;
                e->small_len = 18;
                set_sense(e, 0, 0, 0);
                break;
        case 0x12: /* INQUIRY */
                memset(e->small, 0, 36);
                e->small[0] = 0x00; /* direct access */
                e->small[1] = 0x80; /* removable */
                e->small[2] = 0x04;
                e->small[3] = 0x02;
                e->small[4] = 31;
                memcpy(e->small + 8, "EVIDOCK ", 8);
                memcpy(e->small + 16, "Recorder Emu    ", 16);
                memcpy(e->small + 32, "0.1 ", 4);
                e->small_len = 36;
                break;
        case 0x25: /* READ CAPACITY(10) */
                if (!e->storage_enabled) {
                        scsi_fail(e, 0x02, 0x3a, 0x00);
                        break;
                }
                put_be32(e->small, (uint32_t)(capacity_blocks(e) - 1));
                put_be32(e->small + 4, BLOCK);
                e->small_len = 8;
                break;
        case 0x28: { /* READ(10) */
                uint64_t lba =
                    (uint64_t)cdb[2] << 24 | (uint64_t)cdb[3] << 16 | (uint64_t)cdb[4] << 8 | cdb[5];
                uint32_t count = (uint32_t)cdb[7] << 8 | cdb[8];
                if (!e->storage_enabled) {
                        scsi_fail(e, 0x02, 0x3a, 0x00);
                        break;
                }
                if (lba + count > capacity_blocks(e)) {
                        scsi_fail(e, 0x05, 0x21, 0x00);
                        break;
                }
                e->reads_seen++;
                e->is_read = true;
                if (e->trace_n < e->trace_cap)
                        e->trace[e->trace_n++] =
                            (RecorderEmuRead){.cmd_us = g_get_monotonic_time(), .lba = lba, .blocks = count};
                e->data_from_image = true;
                e->image_offset = lba * BLOCK;
                e->data_left = count * BLOCK;
                break;
        }
        default:
                /* Anything else, in particular anything that would change the medium, is refused. */
                e->rejected_opcodes++;
                scsi_fail(e, 0x05, 0x20, 0x00);
                break;
        }
        if (!e->data_from_image)
                e->data_left = e->small_len;
        e->data_left = MIN(e->data_left, e->host_len);
        e->bot_state = e->data_left > 0 ? BOT_DATA : BOT_STATUS;
}

/* Answers pending bulk IN URBs as far as the state allows. */
static void pump(RecorderEmu *e)
{
        while (e->pending_in) {
                Urb *u = e->pending_in->data;
                UMockdevIoctlData *urb_data = u->data;
                struct usbdevfs_urb *urb = urb_of(urb_data);
                UMockdevIoctlData *buf = umockdev_ioctl_data_resolve(
                    urb_data, G_STRUCT_OFFSET(struct usbdevfs_urb, buffer), (gsize)urb->buffer_length, NULL);
                uint8_t *p = buf ? buf->data : NULL;
                uint32_t room = (uint32_t)urb->buffer_length;

                if (e->bot_state == BOT_DATA) {
                        if (e->is_read && e->cfg.fault == RECORDER_EMU_FAULT_READ_HANGS)
                                return; /* never answer: the host's timeout must fire */
                        if (e->is_read && e->cfg.fault == RECORDER_EMU_FAULT_READ_STALLS_ONCE &&
                            !e->stalled_once) {
                                e->stalled_once = true;
                                e->pending_in = g_list_delete_link(e->pending_in, e->pending_in);
                                finish(e, u, -EPIPE, 0);
                                e->status = 1;
                                set_sense(e, 0x03, 0x11, 0x00); /* unrecovered read error, this once */
                                e->bot_state = BOT_STATUS;
                                e->data_left = 0;
                                continue;
                        }
                        uint32_t n = MIN(room, e->data_left);
                        if (e->data_from_image && e->cfg.rate_bytes_per_s) {
                                /* the bus is busy for n bytes' time after it is free (a token bucket that
                                 * banks at most one timer tick of idle time); the data comes at the end */
                                int64_t now = g_get_monotonic_time();
                                if (e->pace_urb != u) {
                                        int64_t start = MAX(now - PACE_TICK_MS * 1000, e->pace_next_us);
                                        e->pace_next_us = start + (int64_t)((uint64_t)n * 1000000 /
                                                                            e->cfg.rate_bytes_per_s);
                                        e->pace_urb = u;
                                        e->pace_due_us = e->pace_next_us;
                                }
                                if (e->pace_due_us > now)
                                        return; /* a later reap delivers it */
                                e->pace_urb = NULL;
                        }
                        if (e->data_from_image) {
                                ssize_t got = pread(e->image_fd, p, n, (off_t)e->image_offset);
                                if (got != (ssize_t)n)
                                        memset(p, 0, n);
                                e->image_offset += n;
                                e->bytes_read += n;
                        } else {
                                memcpy(p, e->small + e->small_pos, n);
                                e->small_pos += n;
                        }
                        e->data_left -= n;
                        if (e->data_left == 0) {
                                e->bot_state = BOT_STATUS;
                                if (e->is_read && e->trace_n > 0 && !e->trace[e->trace_n - 1].done_us)
                                        e->trace[e->trace_n - 1].done_us = g_get_monotonic_time();
                        }
                        e->pending_in = g_list_delete_link(e->pending_in, e->pending_in);
                        finish(e, u, 0, (int)n);
                        continue;
                }
                if (e->bot_state == BOT_STATUS) {
                        uint32_t sent = e->data_from_image ? (e->host_len - (e->data_left)) : e->small_pos;
                        uint8_t csw[13];
                        put_le32(csw, 0x53425355u);
                        put_le32(csw + 4, e->tag);
                        put_le32(csw + 8, e->host_len - MIN(sent, e->host_len));
                        csw[12] = e->status;
                        if (e->is_read && e->cfg.fault == RECORDER_EMU_FAULT_CSW_BAD_TAG)
                                put_le32(csw + 4, e->tag ^ 0x5a5a);
                        if (e->is_read && e->cfg.fault == RECORDER_EMU_FAULT_CSW_BAD_SIGNATURE)
                                put_le32(csw, 0x12345678u);
                        uint32_t n = MIN(room, 13u);
                        memcpy(p, csw, n);
                        e->bot_state = BOT_IDLE;
                        e->pending_in = g_list_delete_link(e->pending_in, e->pending_in);
                        finish(e, u, 0, (int)n);
                        continue;
                }
                return; /* idle: nothing to send until the next command */
        }
}

/* --- control requests --- */

static int string_descriptor(uint8_t index, uint8_t *out, int room, RecorderEmu *e)
{
        const char *s;
        uint8_t tmp[64];
        int len;
        if (index == 0) {
                tmp[0] = 4, tmp[1] = 3, tmp[2] = 0x09, tmp[3] = 0x04;
                len = 4;
        } else {
                s = index == 1   ? "Evidock Test"
                    : index == 2 ? "Recorder Emu"
                    : index == 3 ? e->serial
                                 : NULL;
                if (!s)
                        return -1;
                len = 2;
                for (const char *c = s; *c && len + 2 <= (int)sizeof(tmp); c++) {
                        tmp[len++] = (uint8_t)*c;
                        tmp[len++] = 0;
                }
                tmp[0] = (uint8_t)len;
                tmp[1] = 3;
        }
        len = MIN(len, room);
        memcpy(out, tmp, (size_t)len);
        return len;
}

/* Returns bytes of IN data written after the setup packet, or -1 to stall. */
static int handle_control(RecorderEmu *e, uint8_t *setup, uint8_t *data, int room)
{
        uint8_t type = setup[0], req = setup[1];
        uint16_t value = (uint16_t)(setup[2] | setup[3] << 8);
        uint16_t length = (uint16_t)(setup[6] | setup[7] << 8);
        room = MIN(room, (int)length);

        if (type == 0x80 && req == 6 && (value >> 8) == 3)
                return string_descriptor((uint8_t)value, data, room, e);
        if (type == EVD_USB_REQTYPE_IN && req == EVD_USB_REQ_GET_IDENTITY) {
                char id[EVD_USB_IDENTITY_LEN + 1];
                snprintf(id, sizeof(id), "%s%s%s", e->serial, e->officer, e->unit);
                if (e->cfg.fault == RECORDER_EMU_FAULT_IDENTITY_GARBAGE)
                        memcpy(id,
                               "A1\x01"
                               "3456012345110105000000",
                               EVD_USB_IDENTITY_LEN);
                int n = MIN(room, EVD_USB_IDENTITY_LEN);
                memcpy(data, id, (size_t)n);
                return n;
        }
        if (type == EVD_USB_REQTYPE_IN && req == EVD_USB_REQ_GET_TIME) {
                char t[15];
                evd_usb_time_format((int64_t)time(NULL) + e->clock_offset_s,
                                    EVD_USB_CLOCK_UTC_OFFSET_DEFAULT, t);
                if (e->cfg.fault == RECORDER_EMU_FAULT_TIME_GARBAGE)
                        memcpy(t, "20261340256199", 14);
                int n = MIN(room, EVD_USB_TIME_LEN);
                memcpy(data, t, (size_t)n);
                return n;
        }
        if (type == EVD_USB_REQTYPE_OUT && req == EVD_USB_REQ_SET_TIME) {
                int64_t s;
                if (length != EVD_USB_TIME_LEN ||
                    evd_usb_time_parse((const char *)data, EVD_USB_TIME_LEN,
                                       EVD_USB_CLOCK_UTC_OFFSET_DEFAULT, &s) < 0)
                        return -1;
                e->clock_offset_s = s - (int64_t)time(NULL);
                e->clock_set = true;
                return 0;
        }
        if (type == EVD_USB_REQTYPE_OUT && req == EVD_USB_REQ_SET_MODE && value == EVD_USB_MODE_STORAGE) {
                e->storage_enabled = true;
                return 0;
        }
        if (type == 0x21 && req == 0xff) { /* Bulk-Only Mass Storage Reset */
                e->bot_state = BOT_IDLE;
                return 0;
        }
        if (type == 0xa1 && req == 0xfe) { /* Get Max LUN */
                if (room < 1)
                        return -1;
                data[0] = 0;
                return 1;
        }
        return -1;
}

/* --- usbfs ioctls --- */

static gint same_client_addr(gconstpointer data, gconstpointer addr)
{
        return ((const Urb *)data)->data->client_addr != (gulong)addr;
}

/* Hands client its next finished URB (or, unplugged, one in flight as shut down) and completes its reap
 * ioctl; false if there is none. Called with the lock held. */
static bool reap(RecorderEmu *e, UMockdevIoctlClient *client)
{
        Urb *u = NULL;
        for (GList *l = e->done.head; l; l = l->next)
                if (((Urb *)l->data)->client == client) {
                        u = l->data;
                        g_queue_delete_link(&e->done, l);
                        break;
                }
        if (!u && e->gone)
                for (GList *l = e->pending_in; l; l = l->next)
                        if (((Urb *)l->data)->client == client) {
                                /* Unplugged with URBs in flight: they come back as shut down. */
                                u = l->data;
                                e->pending_in = g_list_delete_link(e->pending_in, l);
                                if (e->pace_urb == u)
                                        e->pace_urb = NULL;
                                urb_of(u->data)->status = -ESHUTDOWN;
                                urb_of(u->data)->actual_length = 0;
                                break;
                        }
        if (!u)
                return false;
        UMockdevIoctlData *arg = umockdev_ioctl_client_get_arg(client);
        UMockdevIoctlData *ptr = umockdev_ioctl_data_resolve(arg, 0, sizeof(gpointer), NULL);
        umockdev_ioctl_data_set_ptr(ptr, 0, u->data);
        umockdev_ioctl_data_unref(u->data);
        g_free(u);
        umockdev_ioctl_client_complete(client, 0, 0);
        return true;
}

/* The timer of a deferred reap (umockdev's worker thread): the URB if its data is due by now, else EAGAIN
 * (the host asks again). */
static gboolean reap_deferred(gpointer userdata)
{
        RecorderEmu *e = userdata;
        g_mutex_lock(&e->lock);
        if (e->reap_src == g_main_current_source()) { /* not taken back by recorder_emu_free() */
                UMockdevIoctlClient *client = e->reap_client;
                pump(e);
                if (!reap(e, client)) {
                        e->empty_reaps++;
                        umockdev_ioctl_client_complete(client, -1, e->gone ? ENODEV : EAGAIN);
                }
                g_object_unref(client);
                g_source_unref(e->reap_src);
                e->reap_src = NULL;
                e->reap_client = NULL;
        }
        g_mutex_unlock(&e->lock);
        return G_SOURCE_REMOVE;
}

static gboolean handle_ioctl(UMockdevIoctlBase *handler, UMockdevIoctlClient *client, gpointer userdata)
{
        RecorderEmu *e = userdata;
        gulong request = umockdev_ioctl_client_get_request(client);
        UMockdevIoctlData *arg = umockdev_ioctl_client_get_arg(client);

        g_mutex_lock(&e->lock);
        switch (request) {
        case USBDEVFS_GET_CAPABILITIES: {
                UMockdevIoctlData *d = umockdev_ioctl_data_resolve(arg, 0, sizeof(guint32), NULL);
                /* One bulk transfer = one URB, whatever its size. */
                *(guint32 *)d->data = USBDEVFS_CAP_BULK_SCATTER_GATHER | USBDEVFS_CAP_NO_PACKET_SIZE_LIM;
                umockdev_ioctl_client_complete(client, 0, 0);
                break;
        }
        case USBDEVFS_GETDRIVER:
        case USBDEVFS_IOCTL: /* only used here to disconnect a kernel driver: there is none */
                umockdev_ioctl_client_complete(client, -1, ENODATA);
                break;
        case USBDEVFS_DISCONNECT_CLAIM: /* claim, no driver to disconnect */
        case USBDEVFS_CLAIMINTERFACE:
        case USBDEVFS_RELEASEINTERFACE:
        case USBDEVFS_CLEAR_HALT:
        case USBDEVFS_RESETEP:
        case USBDEVFS_SETINTERFACE:
        case USBDEVFS_RESET:
                if (e->gone)
                        umockdev_ioctl_client_complete(client, -1, ENODEV);
                else
                        umockdev_ioctl_client_complete(client, 0, 0);
                break;
        case USBDEVFS_SUBMITURB: {
                if (e->gone) {
                        umockdev_ioctl_client_complete(client, -1, ENODEV);
                        break;
                }
                UMockdevIoctlData *urb_data =
                    umockdev_ioctl_data_resolve(arg, 0, sizeof(struct usbdevfs_urb), NULL);
                struct usbdevfs_urb *urb = urb_of(urb_data);
                UMockdevIoctlData *buf = NULL;
                if (urb->buffer_length > 0)
                        buf = umockdev_ioctl_data_resolve(urb_data,
                                                          G_STRUCT_OFFSET(struct usbdevfs_urb, buffer),
                                                          (gsize)urb->buffer_length, NULL);
                Urb *u = urb_new(client, umockdev_ioctl_data_ref(urb_data));

                if (urb->type == USBDEVFS_URB_TYPE_CONTROL) {
                        int n = -1;
                        if (buf && urb->buffer_length >= 8)
                                n = handle_control(e, buf->data, buf->data + 8, urb->buffer_length - 8);
                        if (n < 0)
                                finish(e, u, -EPIPE, 0);
                        else
                                finish(e, u, 0, (buf->data[0] & 0x80) ? n : urb->buffer_length - 8);
                } else if (urb->type == USBDEVFS_URB_TYPE_BULK && urb->endpoint == EP_OUT) {
                        if (buf && urb->buffer_length == 31 && get_le32(buf->data) == 0x43425355u &&
                            e->bot_state == BOT_IDLE) {
                                if (e->cfg.fault == RECORDER_EMU_FAULT_UNPLUG_DURING_READ &&
                                    buf->data[15] == 0x28 && e->reads_seen >= e->cfg.unplug_after_reads) {
                                        e->gone = true;
                                        finish(e, u, -ESHUTDOWN, 0);
                                } else {
                                        handle_cbw(e, buf->data);
                                        finish(e, u, 0, 31);
                                }
                        } else
                                finish(e, u, -EPIPE, 0);
                } else if (urb->type == USBDEVFS_URB_TYPE_BULK && urb->endpoint == EP_IN) {
                        e->pending_in = g_list_append(e->pending_in, u);
                        pump(e);
                } else
                        finish(e, u, -EPIPE, 0);
                umockdev_ioctl_client_complete(client, 0, 0);
                break;
        }
        case USBDEVFS_REAPURB:
        case USBDEVFS_REAPURBNDELAY:
                pump(e); /* paced data that is due by now */
                if (reap(e, client))
                        break;
                if (!e->gone && e->pace_urb && ((Urb *)e->pace_urb)->client == client && !e->reap_src) {
                        /* paced data not due yet: answer from a timer in this (umockdev's) thread */
                        e->reap_client = g_object_ref(client);
                        e->reap_src = g_timeout_source_new(PACE_TICK_MS);
                        g_source_set_callback(e->reap_src, reap_deferred, e, NULL);
                        g_source_attach(e->reap_src, g_main_context_get_thread_default());
                        break;
                }
                e->empty_reaps++;
                umockdev_ioctl_client_complete(client, -1, e->gone ? ENODEV : EAGAIN);
                break;
        case USBDEVFS_DISCARDURB: {
                GList *l = g_list_find_custom(e->pending_in, *(void **)arg->data, same_client_addr);
                if (l) {
                        Urb *u = l->data;
                        e->pending_in = g_list_delete_link(e->pending_in, l);
                        if (e->pace_urb == u)
                                e->pace_urb = NULL;
                        finish(e, u, -ENOENT, 0);
                        umockdev_ioctl_client_complete(client, 0, 0);
                } else
                        umockdev_ioctl_client_complete(client, -1, EINVAL);
                break;
        }
        default:
                g_mutex_unlock(&e->lock);
                return FALSE;
        }
        g_mutex_unlock(&e->lock);
        return TRUE;
}

/* --- device --- */

static char *descriptors_hex(const RecorderEmuConfig *cfg)
{
        uint8_t d[64];
        size_t n = 0;
        const uint8_t device[18] = {18,
                                    1,
                                    0x00,
                                    0x02,
                                    0,
                                    0,
                                    0,
                                    64,
                                    (uint8_t)cfg->vendor_id,
                                    (uint8_t)(cfg->vendor_id >> 8),
                                    (uint8_t)cfg->product_id,
                                    (uint8_t)(cfg->product_id >> 8),
                                    0x00,
                                    0x01,
                                    1,
                                    2,
                                    3,
                                    1};
        memcpy(d, device, sizeof(device));
        n = sizeof(device);
        if (cfg->fault == RECORDER_EMU_FAULT_GARBAGE_DESCRIPTORS) {
                /* A configuration whose lengths contradict each other. */
                const uint8_t junk[] = {9, 2, 0xff, 0x7f, 9, 1, 0, 0x80, 50, 3, 4, 0, 0, 0xff, 0xff, 0xff};
                memcpy(d + n, junk, sizeof(junk));
                n += sizeof(junk);
        } else {
                const uint8_t config[] = {
                    9,    2, 41,    0, 2,    1,    0,    0x80, 50, 9,      4, 0,    0,    0,
                    0xff, 0, 0,     0,                            /* interface 0: vendor control protocol */
                    9,    4, 1,     0, 2,    0x08, 0x06, 0x50, 0, /* interface 1: mass storage, SCSI, BOT */
                    7,    5, EP_IN, 2, 0x00, 0x02, 0,    7,    5,  EP_OUT, 2, 0x00, 0x02, 0,
                };
                memcpy(d + n, config, sizeof(config));
                n += sizeof(config);
        }
        GString *s = g_string_new(NULL);
        for (size_t i = 0; i < n; i++)
                g_string_append_printf(s, "%02x", d[i]);
        return g_string_free(s, FALSE);
}

RecorderEmu *recorder_emu_new(UMockdevTestbed *tb, const RecorderEmuConfig *cfg)
{
        RecorderEmu *e = g_new0(RecorderEmu, 1);
        e->tb = g_object_ref(tb);
        e->cfg = *cfg;
        e->clock_offset_s = cfg->clock_offset_s;
        g_mutex_init(&e->lock);
        g_queue_init(&e->done);
        snprintf(e->serial, sizeof(e->serial), "%s", cfg->serial ? cfg->serial : "A123456");
        snprintf(e->officer, sizeof(e->officer), "%s", cfg->officer ? cfg->officer : "012345");
        snprintf(e->unit, sizeof(e->unit), "%s", cfg->unit ? cfg->unit : "110105000000");
        snprintf(e->devnode, sizeof(e->devnode), "/dev/bus/usb/001/%03u", cfg->devnum);

        e->image_fd = open(cfg->image_path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (e->image_fd < 0 || fstat(e->image_fd, &st) < 0) {
                fprintf(stderr, "recorder-emu: cannot open %s: %m\n", cfg->image_path);
                recorder_emu_free(e);
                return NULL;
        }
        e->image_blocks = (uint64_t)st.st_size / BLOCK;

        e->handler = umockdev_ioctl_base_new();
        g_signal_connect(e->handler, "handle-ioctl", G_CALLBACK(handle_ioctl), e);
        GError *error = NULL;
        /* Pitfall: the handler must be attached before the device appears. */
        if (!umockdev_testbed_attach_ioctl(tb, e->devnode, e->handler, &error)) {
                fprintf(stderr, "recorder-emu: attach_ioctl: %s\n", error->message);
                g_error_free(error);
                recorder_emu_free(e);
                return NULL;
        }

        g_autofree char *hex = descriptors_hex(cfg);
        e->syspath = g_strdup_printf("/sys/devices/pci0000:00/0000:00:14.0/usb1/1-%u", cfg->devnum);
        g_autofree char *desc = g_strdup_printf("P: /devices/pci0000:00/0000:00:14.0/usb1/1-%u\n"
                                                "N: bus/usb/001/%03u\n"
                                                "E: SUBSYSTEM=usb\n"
                                                "E: DEVTYPE=usb_device\n"
                                                "E: DRIVER=usb\n"
                                                "E: BUSNUM=001\n"
                                                "E: DEVNUM=%03u\n"
                                                "E: DEVNAME=/dev/bus/usb/001/%03u\n"
                                                "E: PRODUCT=%x/%x/100\n"
                                                "A: busnum=1\\n\n"
                                                "A: devnum=%u\\n\n"
                                                "A: bConfigurationValue=1\\n\n"
                                                "A: speed=480\\n\n"
                                                "H: descriptors=%s\n",
                                                cfg->devnum, cfg->devnum, cfg->devnum, cfg->devnum,
                                                cfg->vendor_id, cfg->product_id, cfg->devnum, hex);
        /* add_from_string creates everything before it sends "add" (add_device does not). */
        if (!umockdev_testbed_add_from_string(tb, desc, &error)) {
                fprintf(stderr, "recorder-emu: add_from_string: %s\n", error->message);
                g_error_free(error);
                recorder_emu_free(e);
                return NULL;
        }
        return e;
}

void recorder_emu_unplug(RecorderEmu *e)
{
        if (!e || e->removed)
                return;
        g_mutex_lock(&e->lock);
        e->gone = true;
        g_mutex_unlock(&e->lock);
        if (e->syspath) {
                /* remove_device sends no uevent of its own. */
                umockdev_testbed_uevent(e->tb, e->syspath, "remove");
                umockdev_testbed_remove_device(e->tb, e->syspath);
        }
        e->removed = true;
}

void recorder_emu_free(RecorderEmu *e)
{
        if (!e)
                return;
        recorder_emu_unplug(e);
        g_mutex_lock(&e->lock);
        if (e->reap_src) { /* a reap still deferred: answer it now; its timer finds reap_src gone */
                g_source_destroy(e->reap_src);
                g_source_unref(e->reap_src);
                e->reap_src = NULL;
                umockdev_ioctl_client_complete(e->reap_client, -1, ENODEV);
                g_object_unref(e->reap_client);
                e->reap_client = NULL;
        }
        g_mutex_unlock(&e->lock);
        g_usleep(20000); /* a timer that was already running has returned (it checks reap_src) */
        if (e->handler) {
                umockdev_testbed_detach_ioctl(e->tb, e->devnode, NULL);
                g_object_unref(e->handler);
        }
        g_mutex_lock(&e->lock);
        for (GList *l = e->pending_in; l; l = l->next) {
                umockdev_ioctl_data_unref(((Urb *)l->data)->data);
                g_free(l->data);
        }
        g_list_free(e->pending_in);
        Urb *u;
        while ((u = g_queue_pop_head(&e->done))) {
                umockdev_ioctl_data_unref(u->data);
                g_free(u);
        }
        g_mutex_unlock(&e->lock);
        g_mutex_clear(&e->lock);
        if (e->image_fd >= 0)
                close(e->image_fd);
        g_free(e->syspath);
        g_free(e->trace);
        g_object_unref(e->tb);
        g_free(e);
}

const char *recorder_emu_devnode(RecorderEmu *e)
{
        return e->devnode;
}

const char *recorder_emu_syspath(RecorderEmu *e)
{
        return e->syspath;
}

bool recorder_emu_clock_was_set(RecorderEmu *e)
{
        g_mutex_lock(&e->lock);
        bool r = e->clock_set;
        g_mutex_unlock(&e->lock);
        return r;
}

bool recorder_emu_storage_enabled(RecorderEmu *e)
{
        g_mutex_lock(&e->lock);
        bool r = e->storage_enabled;
        g_mutex_unlock(&e->lock);
        return r;
}

unsigned recorder_emu_rejected_opcodes(RecorderEmu *e)
{
        g_mutex_lock(&e->lock);
        unsigned r = e->rejected_opcodes;
        g_mutex_unlock(&e->lock);
        return r;
}

uint64_t recorder_emu_empty_reaps(RecorderEmu *e)
{
        g_mutex_lock(&e->lock);
        uint64_t r = e->empty_reaps;
        g_mutex_unlock(&e->lock);
        return r;
}

uint64_t recorder_emu_read_commands(RecorderEmu *e)
{
        g_mutex_lock(&e->lock);
        uint64_t r = e->reads_seen;
        g_mutex_unlock(&e->lock);
        return r;
}

void recorder_emu_trace_reads(RecorderEmu *e, size_t capacity)
{
        g_mutex_lock(&e->lock);
        g_free(e->trace);
        e->trace = capacity ? g_new0(RecorderEmuRead, capacity) : NULL;
        e->trace_n = 0;
        e->trace_cap = capacity;
        g_mutex_unlock(&e->lock);
}

size_t recorder_emu_trace_take(RecorderEmu *e, RecorderEmuRead **ret)
{
        g_mutex_lock(&e->lock);
        size_t n = e->trace_n;
        *ret = e->trace;
        e->trace = NULL;
        e->trace_n = e->trace_cap = 0;
        g_mutex_unlock(&e->lock);
        return n;
}

uint64_t recorder_emu_bytes_read(RecorderEmu *e)
{
        g_mutex_lock(&e->lock);
        uint64_t r = e->bytes_read;
        g_mutex_unlock(&e->lock);
        return r;
}

libusb_device *recorder_emu_wait_device(libusb_context *ctx, unsigned devnum, double timeout_s)
{
        int64_t end = g_get_monotonic_time() + (int64_t)(timeout_s * 1e6);
        while (g_get_monotonic_time() < end) {
                libusb_device **list;
                ssize_t n = libusb_get_device_list(ctx, &list);
                libusb_device *found = NULL;
                for (ssize_t i = 0; i < n; i++)
                        if (libusb_get_bus_number(list[i]) == 1 &&
                            libusb_get_device_address(list[i]) == devnum)
                                found = libusb_ref_device(list[i]);
                if (n >= 0)
                        libusb_free_device_list(list, 1);
                if (found)
                        return found;
                struct timeval tv = {0, 10000};
                libusb_handle_events_timeout_completed(ctx, &tv, NULL);
        }
        return NULL;
}
