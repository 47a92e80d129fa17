/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* An emulated body-worn recorder on a umockdev testbed, for tests and for spawning the real daemon.
 *
 * The recorder has a vendor interface (0) answering the control protocol of docs/usb-protocol.md and a
 * Bulk-Only mass-storage interface (1, bulk IN 0x81 / OUT 0x02) backed by a disk-image FILE (read
 * only: the emulator opens it O_RDONLY and serves INQUIRY, TEST UNIT READY, REQUEST SENSE,
 * READ CAPACITY(10) and READ(10); every other opcode fails with ILLEGAL REQUEST and is counted).
 *
 * The process that owns the testbed must run with LD_PRELOAD=libumockdev-preload.so.0; a child it
 * spawns inherits LD_PRELOAD and UMOCKDEV_DIR and its transfers are answered here (the ioctl
 * handler runs in umockdev's worker thread, so the owner's main thread may block waiting for it).
 * Faults make the recorder lie in one specific way, for robustness tests. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <libusb.h>
#include <umockdev.h>

typedef enum RecorderEmuFault {
        RECORDER_EMU_FAULT_NONE = 0,
        RECORDER_EMU_FAULT_READ_HANGS,          /* READ(10) data never comes (the host must time out) */
        RECORDER_EMU_FAULT_READ_STALLS_ONCE,    /* first READ(10) data phase stalls; recovery must work */
        RECORDER_EMU_FAULT_CSW_BAD_TAG,         /* every READ(10) CSW carries a wrong tag */
        RECORDER_EMU_FAULT_CSW_BAD_SIGNATURE,   /* every READ(10) CSW has a wrong signature */
        RECORDER_EMU_FAULT_SMALL_CAPACITY,      /* READ CAPACITY reports half the image */
        RECORDER_EMU_FAULT_IDENTITY_GARBAGE,    /* GET_IDENTITY answers with control bytes */
        RECORDER_EMU_FAULT_TIME_GARBAGE,        /* GET_TIME answers "20261340256199" */
        RECORDER_EMU_FAULT_GARBAGE_DESCRIPTORS, /* configuration descriptor is nonsense */
        RECORDER_EMU_FAULT_UNPLUG_DURING_READ,  /* vanishes after unplug_after_reads READ(10)s */
} RecorderEmuFault;

typedef struct RecorderEmuConfig {
        uint16_t vendor_id, product_id;
        unsigned devnum;        /* 2..127, unique per testbed; bus is 1 */
        const char *image_path; /* disk image served as the medium */
        const char *serial;     /* 7 chars, default "A123456" */
        const char *officer;    /* 6 digits, default "012345" */
        const char *unit;       /* 12 chars, default "110105000000" */
        int64_t clock_offset_s; /* recorder clock minus real time */
        RecorderEmuFault fault;
        unsigned unplug_after_reads;
        uint64_t rate_bytes_per_s; /* pace READ(10) data like a real bus (USB 2: ~40 MB/s); 0: as fast as
                                    * the host takes it */
} RecorderEmuConfig;

typedef struct RecorderEmu RecorderEmu;

/* Attaches the ioctl handler and adds the device (one "add" uevent). NULL on failure (message on
 * stderr). */
RecorderEmu *recorder_emu_new(UMockdevTestbed *tb, const RecorderEmuConfig *cfg);
/* Pulls the plug: in-flight and later transfers fail with ENODEV/ESHUTDOWN, a "remove" uevent is sent
 * and the device is removed from the testbed. Idempotent. */
void recorder_emu_unplug(RecorderEmu *emu);
/* Unplugs (if still present) and frees. */
void recorder_emu_free(RecorderEmu *emu);

const char *recorder_emu_devnode(RecorderEmu *emu); /* "/dev/bus/usb/001/NNN" */
const char *recorder_emu_syspath(RecorderEmu *emu);
bool recorder_emu_clock_was_set(RecorderEmu *emu);
bool recorder_emu_storage_enabled(RecorderEmu *emu);
/* SCSI commands outside the read set that reached the emulator (must stay 0). */
unsigned recorder_emu_rejected_opcodes(RecorderEmu *emu);
uint64_t recorder_emu_bytes_read(RecorderEmu *emu);
/* READ(10) commands served (each a CBW, a data phase and a CSW). */
uint64_t recorder_emu_read_commands(RecorderEmu *emu);
/* Reaps answered with no URB (EAGAIN): how often the host polled in vain (libusb polls the emulated
 * device file, which is always ready). */
uint64_t recorder_emu_empty_reaps(RecorderEmu *emu);

/* One READ(10) as served: when its CBW came, when its last data byte went (0: not yet), what it read. */
typedef struct RecorderEmuRead {
        int64_t cmd_us, done_us; /* CLOCK_MONOTONIC (g_get_monotonic_time()) */
        uint64_t lba;
        uint32_t blocks; /* of 512 bytes */
} RecorderEmuRead;
/* Starts recording the next `capacity` READ(10)s (0: stops), dropping what was recorded. */
void recorder_emu_trace_reads(RecorderEmu *emu, size_t capacity);
/* What was recorded (g_free() it), and stops recording. */
size_t recorder_emu_trace_take(RecorderEmu *emu, RecorderEmuRead **ret);

/* Waits (handling libusb events) until libusb lists the device at bus 1 address devnum; a new reference
 * to it, or NULL after timeout_s. */
libusb_device *recorder_emu_wait_device(libusb_context *ctx, unsigned devnum, double timeout_s);
