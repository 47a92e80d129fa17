/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "usb-raw.h"

#include "bench-util.h"
#include "bot.h"
#include "macro.h"

int usb_raw_read_all(libusb_device *dev, const EvdUsbProfile *profile, void *buf, double *ret_s,
                     uint64_t *ret_bytes, EvdError *err)
{
        _cleanup_(evd_usb_recorder_closep) EvdUsbRecorder *rec = NULL;
        _cleanup_(evd_bot_freep) EvdBot *bot = NULL;
        int r = evd_usb_recorder_open(dev, profile, &rec, err);
        if (r >= 0 && profile->switch_to_storage)
                r = evd_usb_switch_to_storage(rec, err);
        if (r < 0)
                return r;
        EvdBotParams bp = {.handle = evd_usb_recorder_handle(rec),
                           .interface = profile->storage_interface,
                           .bulk_in = evd_usb_recorder_bulk_in(rec),
                           .bulk_out = evd_usb_recorder_bulk_out(rec),
                           .lun = profile->lun,
                           .timeout_ms = profile->timeout_ms,
                           .max_retries = profile->max_retries};
        r = evd_bot_open(&bp, &bot, err);
        if (r < 0)
                return r;
        uint32_t bs = evd_bot_block_size(bot);
        uint64_t blocks = evd_bot_block_count(bot), per = EVD_BOT_MAX_TRANSFER / bs;
        *ret_bytes = blocks * bs;
        double t0 = bench_now_s();
        for (uint64_t lba = 0; lba < blocks && r >= 0; lba += per)
                r = evd_bot_read(bot, lba, (uint32_t)MIN(per, blocks - lba), buf, err);
        *ret_s = bench_now_s() - t0;
        return r;
}
