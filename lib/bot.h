/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* USB Mass Storage Bulk-Only Transport (BOT), read-only.
 *
 * Speaks exactly five SCSI commands: TEST UNIT READY, REQUEST SENSE, INQUIRY, READ CAPACITY(10) and
 * READ(10). No command that changes the medium exists in this code, not even as a constant: a
 * recorder's storage cannot be written through it. Every transfer has the configured timeout;
 * recovery after a stall, timeout or invalid status (Bulk-Only Mass Storage Reset + CLEAR_FEATURE
 * HALT on both endpoints) is tried at most max_retries times per command. */
#pragma once

#include <libusb.h>
#include <stdint.h>

#include "error.h"

#define EVD_BOT_MAX_TRANSFER   (1024u * 1024u) /* bytes per READ(10): large for throughput */
#define EVD_BOT_READY_TRIES    20u             /* TEST UNIT READY attempts while the medium comes up */
#define EVD_BOT_READY_DELAY_MS 100u

typedef struct EvdBotParams {
        libusb_device_handle *handle; /* borrowed; the interface must already be claimed */
        int interface;
        uint8_t bulk_in, bulk_out, lun;
        unsigned timeout_ms;  /* per transfer, > 0 */
        unsigned max_retries; /* recovery attempts per command */
} EvdBotParams;

typedef struct EvdBot EvdBot;

/* INQUIRY (must be a direct-access device), TEST UNIT READY until ready (bounded), READ CAPACITY(10).
 * Free with evd_bot_free(); the handle stays the caller's. */
int evd_bot_open(const EvdBotParams *params, EvdBot **ret, EvdError *err);
void evd_bot_free(EvdBot *bot);
DEFINE_TRIVIAL_CLEANUP_FUNC(EvdBot *, evd_bot_free);

uint32_t evd_bot_block_size(const EvdBot *bot);  /* 512..4096, a power of two */
uint64_t evd_bot_block_count(const EvdBot *bot); /* READ CAPACITY's last LBA + 1 */
const char *evd_bot_inquiry(const EvdBot *bot);  /* "VENDOR PRODUCT REV", printable ASCII */

/* Reads count blocks starting at lba into buf (count * block_size bytes), split into transfers of at
 * most EVD_BOT_MAX_TRANSFER. A range past the capacity is refused locally with -ERANGE before
 * anything is sent. -ENODEV when the device is gone, -ETIMEDOUT when it stopped answering, -EPROTO
 * when it broke the protocol (bad CSW signature/tag, short data without residue), -EIO when the
 * command failed (sense data in the message). */
int evd_bot_read(EvdBot *bot, uint64_t lba, uint32_t count, void *buf, EvdError *err);
