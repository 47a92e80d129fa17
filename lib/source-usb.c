/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "bot.h"
#include "fs.h"
#include "source-usb.h"

typedef struct BlockSource {
        EvdSourceIdentity identity;
        EvdUsbRecorder *recorder; /* USB only */
        EvdBot *bot;              /* USB only */
        int image_fd;             /* image only, else -1 */
        EvdFs *fs;
} BlockSource;

static void block_source_free(BlockSource *bs)
{
        if (!bs)
                return;
        evd_fs_close(bs->fs); /* before the device it reads from */
        evd_bot_free(bs->bot);
        evd_usb_recorder_close(bs->recorder);
        if (bs->image_fd >= 0)
                close(bs->image_fd);
        free(bs);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(BlockSource *, block_source_free);

static ssize_t reader_read(EvdReader *r, void *buf, size_t n, EvdError *err)
{
        return evd_fs_file_read(r->userdata, buf, n, err);
}

static ssize_t reader_pread(EvdReader *r, void *buf, size_t n, uint64_t off, EvdError *err)
{
        return evd_fs_file_pread(r->userdata, buf, n, off, err);
}

static void reader_close(EvdReader *r)
{
        evd_fs_file_close(r->userdata);
        free(r);
}

static const EvdReaderOps reader_ops = {
    .read = reader_read,
    .pread = reader_pread,
    .close = reader_close,
};

static int source_list(EvdSource *s, EvdSourceEntry **ret_entries, size_t *ret_n, EvdError *err)
{
        BlockSource *bs = s->userdata;
        return evd_fs_list(bs->fs, ret_entries, ret_n, err);
}

static int source_open(EvdSource *s, const char *path, EvdReader **ret_reader, EvdError *err)
{
        BlockSource *bs = s->userdata;
        _cleanup_(evd_fs_file_closep) EvdFsFile *f = NULL;
        int r = evd_fs_file_open(bs->fs, path, &f, err);
        if (r < 0)
                return r;
        EvdReader *reader = calloc(1, sizeof(*reader));
        if (!reader)
                return -ENOMEM;
        reader->ops = &reader_ops;
        reader->size = evd_fs_file_size(f);
        reader->userdata = steal_ptr(&f);
        *ret_reader = reader;
        return 0;
}

static void source_read_next(EvdSource *s, const char *path)
{
        BlockSource *bs = s->userdata;
        evd_fs_read_next(bs->fs, path);
}

static int source_identity(EvdSource *s, EvdSourceIdentity *ret, EvdError *err)
{
        BlockSource *bs = s->userdata;
        *ret = bs->identity;
        return 0;
}

static void source_free(EvdSource *s)
{
        if (!s)
                return;
        block_source_free(s->userdata);
        free(s);
}

static const EvdSourceOps usb_ops = {
    .name = "usb",
    .list = source_list,
    .open = source_open,
    .identity = source_identity,
    .read_next = source_read_next,
    .free = source_free,
};

static const EvdSourceOps image_ops = {
    .name = "image",
    .list = source_list,
    .open = source_open,
    .identity = source_identity,
    .free = source_free,
};

static int wrap(BlockSource **bs, const EvdSourceOps *ops, EvdSource **ret)
{
        EvdSource *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->ops = ops;
        s->userdata = steal_ptr(bs);
        *ret = s;
        return 0;
}

/* --- USB --- */

static int usb_read_blocks(void *userdata, uint64_t lba, uint32_t count, void *buf, EvdError *err)
{
        return evd_bot_read(userdata, lba, count, buf, err);
}

int evd_source_usb_new(libusb_device *dev, const EvdUsbProfile *profile, EvdSource **ret, EvdError *err)
{
        _cleanup_(block_source_freep) BlockSource *bs = calloc(1, sizeof(*bs));
        if (!bs)
                return -ENOMEM;
        bs->image_fd = -1;
        strcpy(bs->identity.transport, "usb");

        int r = evd_usb_recorder_open(dev, profile, &bs->recorder, err);
        if (r < 0)
                return r;
        snprintf(bs->identity.location, sizeof(bs->identity.location), "%s",
                 evd_usb_recorder_location(bs->recorder));

        if (profile->control_interface >= 0) {
                EvdUsbIdentity id;
                r = evd_usb_read_identity(bs->recorder, &id, err);
                if (r < 0)
                        return r;
                snprintf(bs->identity.device_id, sizeof(bs->identity.device_id), "%s", id.device_serial);
                snprintf(bs->identity.officer_id, sizeof(bs->identity.officer_id), "%s", id.officer_id);
                snprintf(bs->identity.unit_code, sizeof(bs->identity.unit_code), "%s", id.unit_code);

                r = evd_usb_read_clock_offset(bs->recorder, &bs->identity.clock_offset_us, err);
                if (r < 0)
                        return r;
                bs->identity.has_clock = 1;

                if (profile->set_clock) {
                        r = evd_usb_set_clock(bs->recorder, err);
                        if (r < 0)
                                return r;
                }
                if (profile->switch_to_storage) {
                        r = evd_usb_switch_to_storage(bs->recorder, err);
                        if (r < 0)
                                return r;
                }
        }

        EvdBotParams params = {
            .handle = evd_usb_recorder_handle(bs->recorder),
            .interface = profile->storage_interface,
            .bulk_in = evd_usb_recorder_bulk_in(bs->recorder),
            .bulk_out = evd_usb_recorder_bulk_out(bs->recorder),
            .lun = profile->lun,
            .timeout_ms = profile->timeout_ms,
            .max_retries = profile->max_retries,
        };
        r = evd_bot_open(&params, &bs->bot, err);
        if (r < 0)
                return r;

        EvdFsDevice fsdev = {
            .block_size = evd_bot_block_size(bs->bot),
            .block_count = evd_bot_block_count(bs->bot),
            .read_blocks = usb_read_blocks,
            .userdata = bs->bot,
            .prefetch = true, /* the bus goes on while the docking does something else */
        };
        r = evd_fs_open(&fsdev, &bs->fs, err);
        if (r < 0) {
                evd_error_prefix(err, "%s: ", bs->identity.location);
                return r;
        }
        return wrap(&bs, &usb_ops, ret);
}

/* --- disk image file --- */

#define IMAGE_BLOCK_SIZE 512u

static int image_read_blocks(void *userdata, uint64_t lba, uint32_t count, void *buf, EvdError *err)
{
        BlockSource *bs = userdata;
        size_t len = (size_t)count * IMAGE_BLOCK_SIZE, done = 0;
        while (done < len) {
                ssize_t n = pread(bs->image_fd, (uint8_t *)buf + done, len - done,
                                  (off_t)(lba * IMAGE_BLOCK_SIZE + done));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return evd_error_set_errno(err, negative_errno(), "%s: read at block %" PRIu64,
                                                   bs->identity.location, lba);
                if (n == 0)
                        return evd_error_set(err, -EIO, "%s: image ends early at block %" PRIu64,
                                             bs->identity.location, lba);
                done += (size_t)n;
        }
        return 0;
}

int evd_source_image_new(const char *path, EvdSource **ret, EvdError *err)
{
        _cleanup_(block_source_freep) BlockSource *bs = calloc(1, sizeof(*bs));
        if (!bs)
                return -ENOMEM;
        strcpy(bs->identity.transport, "image");
        snprintf(bs->identity.location, sizeof(bs->identity.location), "%s", path);

        bs->image_fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (bs->image_fd < 0)
                return evd_error_set_errno(err, negative_errno(), "%s: cannot open", path);
        struct stat st;
        if (fstat(bs->image_fd, &st) < 0)
                return evd_error_set_errno(err, negative_errno(), "%s: cannot stat", path);
        if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
                return evd_error_set(err, -EINVAL, "%s: not a file or block device", path);
        uint64_t size = (uint64_t)st.st_size;
        if (S_ISBLK(st.st_mode)) {
                off_t end = lseek(bs->image_fd, 0, SEEK_END);
                if (end < 0)
                        return evd_error_set_errno(err, negative_errno(), "%s: cannot get size", path);
                size = (uint64_t)end;
        }
        if (size < IMAGE_BLOCK_SIZE)
                return evd_error_set(err, -EMEDIUMTYPE, "%s: too small for a volume", path);

        EvdFsDevice fsdev = {
            .block_size = IMAGE_BLOCK_SIZE,
            .block_count = size / IMAGE_BLOCK_SIZE,
            .read_blocks = image_read_blocks,
            .userdata = bs,
        };
        int r = evd_fs_open(&fsdev, &bs->fs, err);
        if (r < 0) {
                evd_error_prefix(err, "%s: ", path);
                return r;
        }
        return wrap(&bs, &image_ops, ret);
}
