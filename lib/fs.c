/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdarg.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <tsk/libtsk.h>
/* sys/param.h (via TSK) has its own MIN/MAX; ours (macro.h) are the same but must not clash. */
#undef MIN
#undef MAX

#include "fs.h"
#include "fs-prefetch.h"

/* A run of device bytes held in memory: a window of the filesystem's metadata (FAT, directories) or a
 * read of file data with what follows it (read-ahead). */
typedef struct CacheSlot {
        uint64_t start; /* device byte offset of buf[0] */
        uint32_t len;   /* valid bytes; 0: empty */
        uint64_t used;  /* LRU clock */
        uint8_t *buf;
} CacheSlot;

/* A path of the last listing and the TSK inode it names: opening a listed file goes straight to its
 * directory entry instead of looking the path up again (which reads and parses the whole directory, a
 * fragmented one spread over the card, for every file). */
typedef struct IndexEntry {
        char *path;
        TSK_INUM_T inum; /* 0: the path is listed twice, look it up as before */
} IndexEntry;

/* TSK wants a struct that starts with its TSK_IMG_INFO; the rest is ours. */
typedef struct FsImage {
        TSK_IMG_INFO info;
        EvdFs *fs;
} FsImage;

struct EvdFs {
        EvdFsDevice dev;
        uint64_t dev_bytes;
        FsImage image;
        bool image_open;
        TSK_FS_INFO *tsk;
        uint64_t volume_offset;
        /* Where TSK's FAT inode numbers point: inode i is the 32-byte entry
         * (i - 3) of the directory-entry array that starts at first_data_sector. */
        uint64_t first_data_sector;
        uint32_t sector_size;
        uint32_t cluster_bytes;
        /* Separate pools, so that reading many small files never evicts the FAT and directory windows that
         * opening the next one needs, nor the other way round. */
        CacheSlot meta[EVD_FS_META_SLOTS];  /* EVD_FS_META_WINDOW each, aligned */
        CacheSlot data[EVD_FS_CACHE_SLOTS]; /* up to EVD_FS_CACHE_WINDOW each */
        IndexEntry *index;                  /* sorted by path */
        size_t n_index;
        /* The device offset just after the last file bytes handed out (0: none yet). A file read starting
         * there or within the unused rest of that cluster continues a sequential layout (files written
         * one after the other, as on a recorder's card): it reads ahead. */
        uint64_t seq_next;
        EvdFsStats stats; /* under dev_lock */
        uint64_t clock;
        /* Every device read, the prefetcher's included, one at a time (fs-prefetch.h): dev_busy while
         * one is under way; the caller's reads go before the prefetcher's (dev_waiting). */
        pthread_mutex_t dev_lock;
        pthread_cond_t dev_free;
        bool dev_busy;
        unsigned dev_waiting;
        /* dev.prefetch: the chunks of the big file read last (the plan's file, pf_file) are read ahead on
         * the prefetcher's thread, pf_next bytes of it queued so far (pf_run: the run of pf_next). */
        EvdPrefetch *pf;
        EvdFsFile *pf_file;
        uint64_t pf_next;
        const TSK_FS_ATTR_RUN *pf_run;
        /* evd_fs_read_next(): the file the caller reads after the plan's, a handle of the volume's own
         * until the caller opens that file (pf_file is this handle once the plan went on to it; a file
         * announced meanwhile waits in pf_later); and the file whose plan ended while its reader had not
         * taken all its chunks yet (its reads still wait for them). */
        EvdFsFile *pf_after;
        char *pf_later;
        EvdFsFile *pf_prev;
        /* The device error behind the last failed read: TSK only passes on "read failed". */
        int io_code;
        EvdError io_err;
};

struct EvdFsFile {
        EvdFs *fs;
        TSK_FS_FILE *file;
        const TSK_FS_ATTR *attr;    /* the data and its cluster runs; owned by file */
        const TSK_FS_ATTR_RUN *run; /* cursor: the run of the last read */
        char *path;
        uint64_t size;
        uint64_t offset;
};

static void io_error_clear(EvdFs *fs)
{
        /* -ENODEV stays: the device will not come back. */
        if (fs->io_code != -ENODEV) {
                fs->io_code = 0;
                fs->io_err = (EvdError){};
        }
}

static CacheSlot *pool_find(EvdFs *fs, CacheSlot *pool, size_t n, uint64_t pos)
{
        for (size_t i = 0; i < n; i++) {
                CacheSlot *s = &pool[i];
                if (s->len > 0 && pos >= s->start && pos - s->start < s->len) {
                        s->used = ++fs->clock;
                        return s;
                }
        }
        return NULL;
}

static CacheSlot *cache_find(EvdFs *fs, uint64_t pos)
{
        CacheSlot *s = pool_find(fs, fs->data, EVD_FS_CACHE_SLOTS, pos);
        return s ? s : pool_find(fs, fs->meta, EVD_FS_META_SLOTS, pos);
}

/* Every device read: len bytes at byte offset off (whole blocks), one at a time. The prefetcher's
 * (`ahead`) wait while a read of the caller's is waiting: a mutex alone would let the prefetcher's thread,
 * which takes it again at once, starve the caller until its plan is read. */
static int dev_read(EvdFs *fs, uint64_t off, uint32_t len, void *buf, bool ahead, EvdError *err)
{
        pthread_mutex_lock(&fs->dev_lock);
        if (!ahead)
                fs->dev_waiting++;
        while (fs->dev_busy || (ahead && fs->dev_waiting > 0))
                pthread_cond_wait(&fs->dev_free, &fs->dev_lock);
        if (!ahead)
                fs->dev_waiting--;
        fs->dev_busy = true;
        fs->stats.device_reads++;
        fs->stats.device_bytes += len;
        pthread_mutex_unlock(&fs->dev_lock);
        int r = fs->dev.read_blocks(fs->dev.userdata, off / fs->dev.block_size, len / fs->dev.block_size,
                                    buf, err);
        pthread_mutex_lock(&fs->dev_lock);
        fs->dev_busy = false;
        pthread_cond_broadcast(&fs->dev_free);
        pthread_mutex_unlock(&fs->dev_lock);
        return r;
}

static int prefetch_read(void *userdata, uint64_t off, uint32_t len, void *buf, EvdError *err)
{
        return dev_read(userdata, off, len, buf, true, err);
}

/* Reads len bytes at start (block multiples, len <= capacity) into the empty or least recently used slot
 * of pool. NULL with fs->io_code/io_err set on failure. */
static CacheSlot *cache_fill(EvdFs *fs, CacheSlot *pool, size_t n, uint32_t capacity, uint64_t start,
                             uint32_t len)
{
        if (fs->io_code == -ENODEV)
                return NULL;
        CacheSlot *victim = &pool[0];
        for (size_t i = 0; i < n && victim->len > 0; i++)
                if (pool[i].len == 0 || pool[i].used < victim->used)
                        victim = &pool[i];
        if (!victim->buf) {
                victim->buf = malloc(capacity);
                if (!victim->buf) {
                        fs->io_code =
                            evd_error_set(&fs->io_err, -ENOMEM, "out of memory for the block cache");
                        return NULL;
                }
        }
        victim->len = 0;
        int r = dev_read(fs, start, len, victim->buf, false, &fs->io_err);
        if (r < 0) {
                fs->io_code = r;
                if (!fs->io_err.msg[0])
                        evd_error_set_errno(&fs->io_err, r, "reading %u bytes at offset %" PRIu64, len,
                                            start);
                return NULL;
        }
        victim->start = start;
        victim->len = len;
        victim->used = ++fs->clock;
        return victim;
}

static ssize_t image_read(TSK_IMG_INFO *img, TSK_OFF_T off, char *buf, size_t len)
{
        EvdFs *fs = ((FsImage *)img)->fs;
        if (off < 0)
                return -1;
        uint64_t pos = (uint64_t)off;
        if (pos >= fs->dev_bytes)
                return 0;
        len = (size_t)MIN((uint64_t)len, fs->dev_bytes - pos);

        size_t done = 0;
        while (done < len) {
                CacheSlot *s = cache_find(fs, pos);
                if (!s) {
                        /* what TSK asks for (its own cache reads 64 KiB pieces at any sector: windows of
                         * ours would read two for many of them), in whole blocks */
                        uint32_t bs = fs->dev.block_size;
                        uint64_t start = pos - pos % bs;
                        uint64_t end =
                            MIN(MAX((pos + (len - done) + bs - 1) / bs * bs, start + EVD_FS_META_WINDOW),
                                fs->dev_bytes);
                        s = cache_fill(fs, fs->meta, EVD_FS_META_SLOTS, EVD_FS_META_WINDOW, start,
                                       (uint32_t)MIN(end - start, (uint64_t)EVD_FS_META_WINDOW));
                }
                if (!s) {
                        tsk_error_reset();
                        tsk_error_set_errno(TSK_ERR_IMG_READ);
                        tsk_error_set_errstr("%s", evd_error_message(&fs->io_err, fs->io_code));
                        return -1;
                }
                size_t in_slot = (size_t)(pos - s->start);
                size_t n = MIN(len - done, (size_t)s->len - in_slot);
                memcpy(buf + done, s->buf + in_slot, n);
                done += n;
                pos += n;
        }
        return (ssize_t)done;
}

static void image_close(TSK_IMG_INFO *img)
{
        /* The FsImage is part of EvdFs and freed with it. */
}

static void image_stat(TSK_IMG_INFO *img, FILE *f)
{
        fprintf(f, "evidock block device\n");
}

/* A failure inside TSK: prefer the device error that caused it, else TSK's own message. */
static int fs_failure(EvdFs *fs, int fallback, EvdError *err, const char *prefix)
{
        if (fs->io_code < 0) {
                int code = fs->io_code;
                if (err)
                        *err = fs->io_err;
                evd_error_prefix(err, "%s", prefix);
                io_error_clear(fs);
                return code;
        }
        const char *msg = tsk_error_get();
        int r = evd_error_set(err, fallback, "%s%s", msg ? msg : "filesystem error", "");
        evd_error_prefix(err, "%s", prefix);
        tsk_error_reset();
        return r;
}

static void file_free(EvdFsFile *f);

static void index_free(EvdFs *fs)
{
        for (size_t i = 0; i < fs->n_index; i++)
                free(fs->index[i].path);
        free(fs->index);
        fs->index = NULL;
        fs->n_index = 0;
}

void evd_fs_close(EvdFs *fs)
{
        if (!fs)
                return;
        evd_prefetch_free(fs->pf); /* its thread reads the device: first */
        file_free(fs->pf_after);
        free(fs->pf_later);
        if (fs->tsk)
                tsk_fs_close(fs->tsk);
        if (fs->image_open)
                tsk_img_close(&fs->image.info);
        for (size_t i = 0; i < EVD_FS_META_SLOTS; i++)
                free(fs->meta[i].buf);
        for (size_t i = 0; i < EVD_FS_CACHE_SLOTS; i++)
                free(fs->data[i].buf);
        index_free(fs);
        pthread_cond_destroy(&fs->dev_free);
        pthread_mutex_destroy(&fs->dev_lock);
        free(fs);
}

static TSK_FS_INFO *open_at(EvdFs *fs, uint64_t offset)
{
        TSK_FS_INFO *t = tsk_fs_open_img(&fs->image.info, (TSK_OFF_T)offset, TSK_FS_TYPE_FAT_DETECT);
        if (t)
                fs->volume_offset = offset;
        return t;
}

int evd_fs_open(const EvdFsDevice *dev, EvdFs **ret, EvdError *err)
{
        if (dev->block_size < 512 || dev->block_size > 4096 || (dev->block_size & (dev->block_size - 1)) ||
            dev->block_count == 0 || dev->block_count > INT64_MAX / dev->block_size || !dev->read_blocks)
                return evd_error_set(err, -EINVAL, "invalid block device parameters");
        if (EVD_FS_META_WINDOW % dev->block_size)
                return evd_error_set(err, -EINVAL, "block size %u does not divide the cache window",
                                     dev->block_size);

        _cleanup_(evd_fs_closep) EvdFs *fs = calloc(1, sizeof(*fs));
        if (!fs)
                return -ENOMEM;
        pthread_mutex_init(&fs->dev_lock, NULL);
        pthread_cond_init(&fs->dev_free, NULL);
        fs->dev = *dev;
        fs->dev_bytes = dev->block_count * dev->block_size;
        fs->image.fs = fs;

        if (!tsk_img_open_external(&fs->image, (TSK_OFF_T)fs->dev_bytes, dev->block_size, image_read,
                                   image_close, image_stat))
                return evd_error_set(err, -EIO, "cannot set up the image: %s", strna(tsk_error_get()));
        fs->image_open = true;

        fs->tsk = open_at(fs, 0);
        if (!fs->tsk && fs->io_code == 0) {
                /* Not at block 0: try the partitions of an MBR (SD cards usually have one). */
                tsk_error_reset();
                TSK_VS_INFO *vs = tsk_vs_open(&fs->image.info, 0, TSK_VS_TYPE_DOS);
                if (vs) {
                        for (TSK_PNUM_T i = 0; i < vs->part_count && !fs->tsk && fs->io_code == 0; i++) {
                                const TSK_VS_PART_INFO *part = tsk_vs_part_get(vs, i);
                                if (part && (part->flags & TSK_VS_PART_FLAG_ALLOC))
                                        fs->tsk = open_at(fs, (uint64_t)part->start * vs->block_size);
                        }
                        tsk_vs_close(vs);
                }
        }
        if (!fs->tsk) {
                if (fs->io_code < 0)
                        return fs_failure(fs, -EIO, err, "opening the volume: ");
                tsk_error_reset();
                return evd_error_set(err, -EMEDIUMTYPE, "no FAT or exFAT filesystem found");
        }
        /* TSK would read a truncated volume's missing blocks as zeros: refuse instead. */
        if (fs->tsk->last_block_act < fs->tsk->last_block)
                return evd_error_set(err, -EUCLEAN,
                                     "%s volume is %" PRIu64 " bytes but the device has only %" PRIu64
                                     " bytes from the volume start (capacity too small or medium truncated)",
                                     evd_fs_type(fs),
                                     (uint64_t)(fs->tsk->last_block + 1) * fs->tsk->block_size,
                                     fs->dev_bytes - fs->volume_offset);

        /* The layout TSK numbers directory entries by (its firstdatasect), from the boot sector. */
        uint8_t boot[512];
        if (tsk_fs_read(fs->tsk, 0, (char *)boot, sizeof(boot)) != (ssize_t)sizeof(boot))
                return fs_failure(fs, -EIO, err, "reading the boot sector: ");
        if (fs->tsk->ftype == TSK_FS_TYPE_EXFAT) {
                fs->sector_size = boot[108] >= 9 && boot[108] <= 12 ? 1u << boot[108] : 0;
                fs->cluster_bytes = boot[109] <= 25 - boot[108] ? fs->sector_size << boot[109] : 0;
                fs->first_data_sector = (uint64_t)boot[88] | (uint64_t)boot[89] << 8 |
                                        (uint64_t)boot[90] << 16 | (uint64_t)boot[91] << 24;
        } else {
                fs->sector_size = (uint32_t)(boot[11] | boot[12] << 8);
                fs->cluster_bytes = fs->sector_size * boot[13];
                uint32_t fat_sectors = (uint32_t)(boot[22] | boot[23] << 8);
                if (fat_sectors == 0)
                        fat_sectors = (uint32_t)boot[36] | (uint32_t)boot[37] << 8 |
                                      (uint32_t)boot[38] << 16 | (uint32_t)boot[39] << 24;
                fs->first_data_sector =
                    (uint64_t)(boot[14] | boot[15] << 8) + (uint64_t)boot[16] * fat_sectors;
        }
        if (fs->sector_size < 512 || fs->sector_size > 4096 || (fs->sector_size & (fs->sector_size - 1)))
                return evd_error_set(err, -EUCLEAN, "boot sector: invalid sector size %u", fs->sector_size);

        *ret = steal_ptr(&fs);
        return 0;
}

const char *evd_fs_type(const EvdFs *fs)
{
        switch (fs->tsk->ftype) {
        case TSK_FS_TYPE_FAT12:
                return "fat12";
        case TSK_FS_TYPE_FAT16:
                return "fat16";
        case TSK_FS_TYPE_FAT32:
                return "fat32";
        case TSK_FS_TYPE_EXFAT:
                return "exfat";
        default:
                return "unknown";
        }
}

/* --- listing --- */

typedef struct Walk {
        EvdFs *fs;
        EvdSourceEntry *entries;
        size_t n, allocated;
        bool full;           /* EVD_SOURCE_MAX_ENTRIES reached: one DAMAGED entry says so, the walk stops */
        bool device_failed;  /* the last failure was the device's, not the filesystem's: stop */
        uint64_t *seen_dirs; /* first content block of each walked directory: loop detection */
        size_t n_seen, seen_allocated;
        struct {
                size_t entry; /* in entries */
                TSK_INUM_T inum;
        } * files; /* the regular files listed and their inodes: the index for opening them */
        size_t n_files, files_allocated;
        EvdError *err;
} Walk;

static int grow(void **array, size_t *allocated, size_t need, size_t elem)
{
        if (need <= *allocated)
                return 0;
        size_t n = MAX(need, *allocated * 2 + 16);
        void *p = reallocarray(*array, n, elem);
        if (!p)
                return -ENOMEM;
        *array = p;
        *allocated = n;
        return 0;
}

/* Adds an entry (path is the caller's, taken over). When the listing is full, adds the one DAMAGED entry
 * that says so instead and returns 1: the walk stops. */
static int walk_add(Walk *w, char *path, EvdSourceEntryType type, uint64_t size, int64_t mtime_us,
                    char *detail)
{
        _cleanup_free_ char *p = path, *d = detail;
        if (w->full)
                return 1;
        if (!p || (type == EVD_SOURCE_DAMAGED && !d))
                return -ENOMEM;
        if (w->n >= EVD_SOURCE_MAX_ENTRIES) {
                w->full = true;
                free(p);
                free(d);
                p = strdup("");
                d = NULL;
                if (!p || asprintf(&d, "more than %u entries on the volume: the rest is not listed",
                                   EVD_SOURCE_MAX_ENTRIES) < 0) {
                        d = NULL;
                        return -ENOMEM;
                }
                type = EVD_SOURCE_DAMAGED;
                size = 0;
                mtime_us = 0;
        }
        if (grow((void **)&w->entries, &w->allocated, w->n + 1, sizeof(EvdSourceEntry)) < 0)
                return -ENOMEM;
        w->entries[w->n++] = (EvdSourceEntry){
            .path = steal_ptr(&p),
            .size = size,
            .mtime_us = mtime_us,
            .type = type,
            .detail = steal_ptr(&d),
        };
        return w->full ? 1 : 0;
}

static char *fmt_detail(const char *fmt, ...) _printf_(1, 2);
static char *fmt_detail(const char *fmt, ...)
{
        char *d = NULL;
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&d, fmt, ap) < 0)
                d = NULL;
        va_end(ap);
        return d;
}

/* A failure inside TSK while listing; remembers whether the device itself failed (then the listing
 * stops) or the filesystem is damaged (then it becomes a DAMAGED entry, see walk_damage). */
static int walk_fs_failure(Walk *w, int fallback, const char *prefix)
{
        w->device_failed = w->fs->io_code < 0;
        return fs_failure(w->fs, fallback, w->err, prefix);
}

/* Damage found while listing (r < 0, its message in w->err) becomes a DAMAGED entry naming where, and
 * the walk goes on; a device failure or lack of memory stops the listing (returned as is). */
static int walk_damage(Walk *w, const char *where, int r)
{
        if (r >= 0 || r == -ENOMEM || w->device_failed)
                return r;
        char *detail = strdup(w->err && w->err->msg[0] ? w->err->msg : strerror(-r));
        if (w->err)
                *w->err = (EvdError){};
        if (!detail)
                return -ENOMEM;
        return walk_add(w, strdup(where), EVD_SOURCE_DAMAGED, 0, 0, detail);
}

static uint64_t dir_identity(TSK_FS_FILE *f)
{
        /* Two entries pointing at the same directory clusters are the same directory (a loop). */
        const TSK_FS_ATTR *a = tsk_fs_file_attr_get(f);
        if (a && (a->flags & TSK_FS_ATTR_NONRES) && a->nrd.run)
                return (uint64_t)a->nrd.run->addr | (1ull << 63);
        tsk_error_reset();
        return (uint64_t)f->meta->addr;
}

/* TSK reports FAT volume labels and exFAT's allocation bitmap and up-case table as regular files
 * (named "X (Volume Label Entry)", "$ALLOC_BITMAP", "$UPCASE_TABLE"), and a recorder may have real
 * files with those names. The raw directory entry tells them apart. Returns 1 for a real file, 0 for
 * a metadata entry, -errno if the entry cannot be read. */
static int is_file_entry(EvdFs *fs, TSK_INUM_T inum)
{
        if (inum < 3 || inum > fs->tsk->last_inum)
                return 0;
        uint64_t per_sector = fs->sector_size / 32;
        TSK_OFF_T off = (TSK_OFF_T)(((inum - 3) / per_sector + fs->first_data_sector) * fs->sector_size +
                                    ((inum - 3) % per_sector) * 32);
        uint8_t entry[32];
        if (tsk_fs_read(fs->tsk, off, (char *)entry, sizeof(entry)) != (ssize_t)sizeof(entry)) {
                tsk_error_reset();
                return fs->io_code < 0 ? fs->io_code : -EUCLEAN;
        }
        if (fs->tsk->ftype == TSK_FS_TYPE_EXFAT)
                return entry[0] == 0x85; /* File directory entry; 0x81 bitmap, 0x82 up-case, 0x83 label */
        return (entry[11] & 0x08) == 0;  /* ATTR_VOLUME_ID */
}

#define DIR_MAX_BYTES (8u * 1024u * 1024u) /* larger directories are refused (FAT allows 2 MiB) */

static uint64_t get_le(const uint8_t *p, unsigned n)
{
        uint64_t v = 0;
        for (unsigned i = n; i > 0; i--)
                v = v << 8 | p[i - 1];
        return v;
}

/* TSK silently leaves out directory entries it finds implausible (e.g. a size past the end of the
 * volume), so a hostile card could hide a file. Read the directory's raw entries: an entry claiming
 * more bytes than the volume has is an error, and so is any in-use entry TSK did not report. */
static int check_raw_entries(Walk *w, TSK_INUM_T inum, const char *prefix, size_t reported)
{
        EvdFs *fs = w->fs;
        const char *where = *prefix ? prefix : "/";
        uint64_t volume_bytes = (uint64_t)(fs->tsk->last_block + 1) * fs->tsk->block_size;
        TSK_FS_FILE *dir = tsk_fs_file_open_meta(fs->tsk, NULL, inum);
        if (!dir || !dir->meta) {
                if (dir)
                        tsk_fs_file_close(dir);
                char what[PATH_MAX];
                snprintf(what, sizeof(what), "reading directory '%s': ", where);
                return walk_fs_failure(w, -EUCLEAN, what);
        }
        uint64_t size = (uint64_t)MAX(dir->meta->size, 0);
        if (size > DIR_MAX_BYTES) {
                tsk_fs_file_close(dir);
                return evd_error_set(w->err, -E2BIG, "directory '%s' is %" PRIu64 " bytes, more than %u",
                                     where, size, DIR_MAX_BYTES);
        }
        bool exfat = fs->tsk->ftype == TSK_FS_TYPE_EXFAT;
        size_t in_use = 0;
        int r = 0;
        uint8_t buf[32 * 1024];
        bool end = false, expect_stream = false;
        for (uint64_t off = 0; off < size && !end && r >= 0;) {
                size_t want = (size_t)MIN((uint64_t)sizeof(buf), size - off);
                ssize_t got =
                    tsk_fs_file_read(dir, (TSK_OFF_T)off, (char *)buf, want, TSK_FS_FILE_READ_FLAG_NONE);
                if (got < (ssize_t)want) {
                        char what[PATH_MAX];
                        snprintf(what, sizeof(what), "reading directory '%s': ", where);
                        r = walk_fs_failure(w, -EUCLEAN, what);
                        break;
                }
                for (size_t i = 0; i + 32 <= (size_t)got && !end; i += 32) {
                        const uint8_t *e = buf + i;
                        if (exfat) {
                                if (e[0] == 0x00) {
                                        end = true;
                                } else if (e[0] == 0x85) {
                                        in_use++;
                                        expect_stream = true;
                                } else if (e[0] == 0xc0 && expect_stream) {
                                        expect_stream = false;
                                        uint64_t len = get_le(e + 24, 8);
                                        if (len > volume_bytes)
                                                r = evd_error_set(w->err, -EUCLEAN,
                                                                  "directory '%s': entry %zu claims %" PRIu64
                                                                  " bytes, past the end of the %" PRIu64
                                                                  "-byte volume",
                                                                  where, in_use, len, volume_bytes);
                                } else
                                        expect_stream = false;
                                continue;
                        }
                        if (e[0] == 0x00) {
                                end = true;
                                continue;
                        }
                        if (e[0] == 0xe5 || e[11] == 0x0f || (e[11] & 0x08) || e[0] == '.')
                                continue; /* deleted, long-name part, volume label, "." / ".." */
                        in_use++;
                        uint64_t len = get_le(e + 28, 4);
                        if (!(e[11] & 0x10) && len > volume_bytes)
                                r = evd_error_set(w->err, -EUCLEAN,
                                                  "directory '%s': entry '%.8s.%.3s' claims %" PRIu64
                                                  " bytes, past the end of the %" PRIu64 "-byte volume",
                                                  where, (const char *)e, (const char *)e + 8, len,
                                                  volume_bytes);
                }
                off += (uint64_t)got;
        }
        tsk_fs_file_close(dir);
        if (r >= 0 && in_use > reported)
                r = evd_error_set(
                    w->err, -EUCLEAN,
                    "directory '%s' has %zu entries but only %zu could be read (corrupt or hostile entries)",
                    where, in_use, reported);
        return r;
}

static char *join(const char *prefix, const char *name)
{
        char *p;
        if (asprintf(&p, "%s%s%s", prefix, *prefix ? "/" : "", name) < 0)
                return NULL;
        return p;
}

/* Walks one directory. Returns < 0 only when the listing cannot go on (the device failed, out of
 * memory), 1 when the listing is full; damage below inum becomes DAMAGED entries. */
static int walk_dir(Walk *w, TSK_INUM_T inum, const char *prefix, unsigned depth)
{
        EvdFs *fs = w->fs;
        TSK_FS_DIR *dir = tsk_fs_dir_open_meta(fs->tsk, inum);
        if (!dir) {
                char what[PATH_MAX];
                snprintf(what, sizeof(what), "directory '%s' cannot be read (damaged directory chain?): ",
                         *prefix ? prefix : "/");
                return walk_damage(w, prefix, walk_fs_failure(w, -EUCLEAN, what));
        }

        int r = 0;
        size_t reported = 0; /* real entries (files and directories) TSK gave us */
        size_t n = tsk_fs_dir_getsize(dir);
        for (size_t i = 0; i < n && r == 0; i++) {
                TSK_FS_FILE *f = tsk_fs_dir_get(dir, i);
                if (!f) {
                        tsk_error_reset();
                        continue;
                }
                const TSK_FS_NAME *name = f->name;
                const TSK_FS_META *meta = f->meta;
                if (!name || !meta || !name->name || (name->flags & TSK_FS_NAME_FLAG_UNALLOC) ||
                    TSK_FS_ISDOT(name->name) || !name->name[0]) {
                        tsk_fs_file_close(f);
                        continue;
                }
                if (meta->type == TSK_FS_META_TYPE_DIR && name->type == TSK_FS_NAME_TYPE_DIR) {
                        reported++;
                        uint64_t id = dir_identity(f);
                        bool seen = false;
                        for (size_t k = 0; k < w->n_seen; k++)
                                if (w->seen_dirs[k] == id)
                                        seen = true;
                        char *sub = join(prefix, name->name);
                        TSK_INUM_T sub_inum = meta->addr;
                        tsk_fs_file_close(f);
                        f = NULL;
                        if (!sub)
                                r = -ENOMEM;
                        else if (seen)
                                r = walk_add(w, sub, EVD_SOURCE_DAMAGED, 0, 0,
                                             strdup("directory loops back to one already listed: not "
                                                    "listed again"));
                        else if (depth + 1 >= EVD_SOURCE_MAX_DEPTH)
                                r = walk_add(w, sub, EVD_SOURCE_DAMAGED, 0, 0,
                                             fmt_detail("directory nested deeper than %u levels: not listed",
                                                        EVD_SOURCE_MAX_DEPTH));
                        else if (w->n_seen >= EVD_SOURCE_MAX_ENTRIES)
                                r = walk_add(
                                    w, sub, EVD_SOURCE_DAMAGED, 0, 0,
                                    strdup("more directories on the volume than entries allowed: not "
                                           "listed"));
                        else if (grow((void **)&w->seen_dirs, &w->seen_allocated, w->n_seen + 1,
                                      sizeof(uint64_t)) < 0) {
                                free(sub);
                                r = -ENOMEM;
                        } else {
                                w->seen_dirs[w->n_seen++] = id;
                                r = walk_dir(w, sub_inum, sub, depth + 1);
                                free(sub);
                        }
                } else if (meta->type == TSK_FS_META_TYPE_REG && name->type == TSK_FS_NAME_TYPE_REG) {
                        int real = is_file_entry(fs, meta->addr);
                        char *path = join(prefix, name->name);
                        if (!path)
                                r = -ENOMEM;
                        else if (real < 0) {
                                char what[PATH_MAX];
                                snprintf(what, sizeof(what),
                                         "the directory entry of '%s' cannot be read: ", path);
                                w->device_failed = fs->io_code < 0;
                                if (real == fs->io_code)
                                        r = fs_failure(fs, real, w->err, what);
                                else
                                        r = evd_error_set(w->err, real, "%scorrupt entry", what);
                                r = walk_damage(w, path, r);
                                free(path);
                        } else if (real == 0) {
                                evd_debug("'%s' is a filesystem metadata entry: skipped", path);
                                free(path);
                        } else {
                                reported++;
                                TSK_INUM_T file_inum = meta->addr;
                                r = walk_add(
                                    w, path, EVD_SOURCE_FILE, (uint64_t)MAX(meta->size, 0),
                                    (int64_t)meta->mtime * 1000000 + (int64_t)meta->mtime_nano / 1000, NULL);
                                if (r == 0 && grow((void **)&w->files, &w->files_allocated, w->n_files + 1,
                                                   sizeof(*w->files)) < 0)
                                        r = -ENOMEM;
                                else if (r == 0) {
                                        w->files[w->n_files].entry = w->n - 1;
                                        w->files[w->n_files++].inum = file_inum;
                                }
                        }
                }
                /* Everything else (volume labels, TSK's virtual $FAT/$MBR/$OrphanFiles entries) is skipped:
                 * opening $OrphanFiles would start the orphan search. FAT and exFAT have no special files.
                 */
                if (f)
                        tsk_fs_file_close(f);
        }
        tsk_fs_dir_close(dir);
        if (r == 0)
                r = walk_damage(w, prefix, check_raw_entries(w, inum, prefix, reported));
        return r;
}

static int index_cmp(const void *a, const void *b)
{
        return strcmp(((const IndexEntry *)a)->path, ((const IndexEntry *)b)->path);
}

/* The listing's regular files by path (sorted; a path listed twice is left to the lookup by path). */
static int index_build(EvdFs *fs, Walk *w)
{
        index_free(fs);
        if (w->n_files == 0)
                return 0;
        IndexEntry *index = calloc(w->n_files, sizeof(*index));
        if (!index)
                return -ENOMEM;
        for (size_t i = 0; i < w->n_files; i++) {
                index[i].path = strdup(w->entries[w->files[i].entry].path);
                index[i].inum = w->files[i].inum;
                if (!index[i].path) {
                        fs->index = index;
                        fs->n_index = i;
                        index_free(fs);
                        return -ENOMEM;
                }
        }
        qsort(index, w->n_files, sizeof(*index), index_cmp);
        for (size_t i = 1; i < w->n_files; i++)
                if (!strcmp(index[i - 1].path, index[i].path))
                        index[i - 1].inum = index[i].inum = 0;
        fs->index = index;
        fs->n_index = w->n_files;
        return 0;
}

int evd_fs_list(EvdFs *fs, EvdSourceEntry **ret_entries, size_t *ret_n, EvdError *err)
{
        Walk w = {.fs = fs, .err = err};
        io_error_clear(fs);
        int r = 0;
        /* The root counts as walked, so that a subdirectory pointing back at it is not walked again. */
        TSK_FS_FILE *root = tsk_fs_file_open_meta(fs->tsk, NULL, fs->tsk->root_inum);
        if (!root || !root->meta)
                r = walk_damage(&w, "",
                                walk_fs_failure(&w, -EUCLEAN, "the root directory cannot be read: "));
        else if (grow((void **)&w.seen_dirs, &w.seen_allocated, 1, sizeof(uint64_t)) < 0)
                r = -ENOMEM;
        else
                w.seen_dirs[w.n_seen++] = dir_identity(root);
        bool walk_root = root && root->meta && r == 0;
        if (root)
                tsk_fs_file_close(root);
        if (walk_root)
                r = walk_dir(&w, fs->tsk->root_inum, "", 0);
        free(w.seen_dirs);
        if (r >= 0)
                r = index_build(fs, &w);
        free(w.files);
        if (r < 0) {
                evd_source_entries_free(w.entries, w.n);
                return r;
        }
        *ret_entries = w.entries;
        *ret_n = w.n;
        return 0;
}

/* --- files --- */

static void prefetch_plan(EvdFsFile *f, uint64_t from);

static int file_open(EvdFs *fs, const char *path, EvdFsFile **ret, EvdError *err)
{
        io_error_clear(fs);
        _cleanup_free_ char *abs = NULL;
        if (asprintf(&abs, "/%s", path) < 0)
                return -ENOMEM;
        IndexEntry key = {.path = (char *)path};
        const IndexEntry *known =
            fs->n_index ? bsearch(&key, fs->index, fs->n_index, sizeof(key), index_cmp) : NULL;
        TSK_FS_FILE *file = known && known->inum ? tsk_fs_file_open_meta(fs->tsk, NULL, known->inum)
                                                 : tsk_fs_file_open(fs->tsk, NULL, abs);
        if (!file) {
                if (fs->io_code < 0) {
                        char what[PATH_MAX];
                        snprintf(what, sizeof(what), "opening '%s': ", path);
                        return fs_failure(fs, -ENOENT, err, what);
                }
                tsk_error_reset();
                return evd_error_set(err, -ENOENT, "'%s': no such file on the volume", path);
        }
        if (!file->meta || file->meta->type != TSK_FS_META_TYPE_REG) {
                tsk_fs_file_close(file);
                return evd_error_set(err, -EISDIR, "'%s': not a regular file", path);
        }
        EvdFsFile *f = calloc(1, sizeof(*f));
        char *copy = strdup(path);
        if (!f || !copy) {
                free(f);
                free(copy);
                tsk_fs_file_close(file);
                return -ENOMEM;
        }
        f->fs = fs;
        f->file = file;
        f->path = copy;
        f->size = (uint64_t)MAX(file->meta->size, 0);
        if (f->size > 0) {
                /* Maps the cluster chain now: a chain that loops or leaves the volume fails here. */
                f->attr = tsk_fs_file_attr_get(file);
                if (!f->attr || !(f->attr->flags & TSK_FS_ATTR_NONRES)) {
                        char what[PATH_MAX];
                        snprintf(what, sizeof(what), "'%s': cannot map its clusters: ", path);
                        int r = fs_failure(fs, -EUCLEAN, err, what);
                        evd_fs_file_close(f);
                        return r;
                }
        }
        *ret = f;
        return 0;
}

int evd_fs_file_open(EvdFs *fs, const char *path, EvdFsFile **ret, EvdError *err)
{
        int r = file_open(fs, path, ret, err);
        if (r >= 0)
                prefetch_plan(*ret, 0);
        return r;
}

void evd_fs_read_next(EvdFs *fs, const char *path)
{
        if (!fs->dev.prefetch)
                return;
        if (fs->pf_after && fs->pf_after == fs->pf_file) {
                /* the plan is on the file announced before, which the caller has not opened yet */
                free(fs->pf_later);
                fs->pf_later = strdup(path);
                return;
        }
        file_free(steal_ptr(&fs->pf_after));
        EvdError err = {};
        if (file_open(fs, path, &fs->pf_after, &err) < 0 || fs->pf_after->size < EVD_FS_PREFETCH_MIN) {
                /* a hint: the caller's own open says what is wrong; a small file has its own read-ahead */
                file_free(steal_ptr(&fs->pf_after));
                tsk_error_reset();
                io_error_clear(fs);
        }
}

/* The announcement that waited for the caller to open the file announced before. */
static void read_next_later(EvdFs *fs)
{
        _cleanup_free_ char *path = steal_ptr(&fs->pf_later);
        if (path)
                evd_fs_read_next(fs, path);
}

uint64_t evd_fs_file_size(const EvdFsFile *f)
{
        return f->size;
}

/* Reads file bytes at device offset off (n of them at most, all within one cluster run). A block-aligned
 * whole-block read of >= 64 KiB goes straight to the device (one large transfer into the caller's buffer,
 * no copy: a recording's 1 MiB chunks). Anything else is read once into a data slot and copied from
 * there: a small file with its last partial block in one READ, not a small one plus a cache window for
 * the tail; and when it continues where the last file read ended (files one after the other, as a
 * recorder writes them), a whole EVD_FS_CACHE_WINDOW from there, so that the next small files come
 * from memory instead of one command each. A positioned read (`positioned`: a look at a file's index
 * before its copy) does not count as where the last read ended, and reads ahead only to the end of the
 * file's bytes in this run (`data_end`, a device offset) when they are within a window: the MP4 index at
 * the end of a recording is read by a look at its header, then the whole of it, in one command. Returns
 * bytes read (may be short) or -errno. */
static ssize_t device_read(EvdFs *fs, uint64_t off, uint8_t *buf, size_t n, bool positioned,
                           uint64_t data_end, EvdError *err)
{
        uint32_t bs = fs->dev.block_size;
        CacheSlot *slot = cache_find(fs, off);
        if (!slot && off % bs == 0 && n % bs == 0 && n >= 64 * 1024) {
                if (fs->io_code == -ENODEV) {
                        if (err)
                                *err = fs->io_err;
                        return -ENODEV;
                }
                int r = dev_read(fs, off, (uint32_t)n, buf, false, err);
                if (r < 0) {
                        if (r == -ENODEV) {
                                fs->io_code = r;
                                if (err)
                                        fs->io_err = *err;
                        }
                        return r;
                }
                if (!positioned)
                        fs->seq_next = off + n;
                return (ssize_t)n;
        }
        if (!slot) {
                bool sequential = !positioned && fs->seq_next > 0 && off >= fs->seq_next &&
                                  off - fs->seq_next < MAX(fs->cluster_bytes, bs);
                uint64_t start = off - off % bs;
                uint64_t end = (off + n + bs - 1) / bs * bs;
                if (sequential) {
                        end = MAX(end, start + EVD_FS_CACHE_WINDOW);
                        fs->stats.read_aheads++;
                } else if (positioned && data_end > end && data_end - start <= EVD_FS_CACHE_WINDOW)
                        end = (data_end + bs - 1) / bs * bs;
                end = MIN(MIN(end, start + EVD_FS_CACHE_WINDOW), fs->dev_bytes);
                if (start >= end)
                        return evd_error_set(err, -EIO, "read at offset %" PRIu64 " is past the device",
                                             off);
                slot = cache_fill(fs, fs->data, EVD_FS_CACHE_SLOTS, EVD_FS_CACHE_WINDOW, start,
                                  (uint32_t)(end - start));
                if (!slot) {
                        int r = fs->io_code;
                        if (err)
                                *err = fs->io_err;
                        io_error_clear(fs);
                        return r;
                }
        } else
                fs->stats.cache_hits++;
        size_t in_slot = (size_t)(off - slot->start);
        n = MIN(n, (size_t)slot->len - in_slot);
        memcpy(buf, slot->buf + in_slot, n);
        if (!positioned)
                fs->seq_next = off + n;
        return (ssize_t)n;
}

void evd_fs_stats(const EvdFs *fs, EvdFsStats *ret)
{
        EvdFs *m = (EvdFs *)fs; /* the lock only */
        pthread_mutex_lock(&m->dev_lock);
        *ret = fs->stats;
        pthread_mutex_unlock(&m->dev_lock);
        if (fs->pf) {
                EvdPrefetchStats ps;
                evd_prefetch_stats(fs->pf, &ps);
                ret->prefetch_reads = ps.chunks_read;
                ret->prefetch_bytes_taken = ps.bytes_taken;
        }
}

/* The run holding file block blk (cursor: where to start looking), or NULL when the file's data is not
 * there (the chain ends early, a hole, an encrypted run, or clusters past the volume). */
static const TSK_FS_ATTR_RUN *run_of(const EvdFsFile *f, const TSK_FS_ATTR_RUN *cursor, uint64_t blk)
{
        const TSK_FS_ATTR_RUN *run = cursor && cursor->offset <= blk ? cursor : f->attr->nrd.run;
        while (run && blk >= run->offset + run->len)
                run = run->next;
        if (!run || run->offset > blk ||
            (run->flags &
             (TSK_FS_ATTR_RUN_FLAG_FILLER | TSK_FS_ATTR_RUN_FLAG_SPARSE | TSK_FS_ATTR_RUN_FLAG_ENCRYPTED)))
                return NULL;
        return run;
}

/* Queues the next chunks of the plan's file, as its reads will ask for them (one per run or
 * EVD_FS_READ_CHUNK), while the prefetcher has room. Anything odd (a run the reads would refuse, a
 * chunk not in whole device blocks) ends the plan: the reads then go to the device and say what is
 * wrong. */
static void prefetch_top_up(EvdFs *fs)
{
        EvdFsFile *f = fs->pf_file;
        if (!fs->pf || !f)
                return;
        uint64_t bs = fs->tsk->block_size;
        uint32_t dbs = fs->dev.block_size;
        unsigned room = evd_prefetch_room(fs->pf);
        if (room > 0 && fs->pf_next >= f->size && fs->pf_after && fs->pf_after != f) {
                /* this file is queued to its end: on to the one the caller reads next */
                fs->pf_prev = f;
                f = fs->pf_file = fs->pf_after;
                fs->pf_next = 0;
                fs->pf_run = NULL;
        }
        for (; room > 0 && fs->pf_next < f->size; room--) {
                uint64_t blk = fs->pf_next / bs;
                const TSK_FS_ATTR_RUN *run = run_of(f, fs->pf_run, blk);
                if (!run || run->addr + run->len > (uint64_t)fs->tsk->last_block + 1) {
                        fs->pf_file = NULL;
                        return;
                }
                fs->pf_run = run;
                uint64_t in_run = (blk - run->offset) * bs + fs->pf_next % bs;
                uint64_t want =
                    MIN(MIN((uint64_t)EVD_FS_READ_CHUNK, run->len * bs - in_run), f->size - fs->pf_next);
                uint64_t dev_off = fs->volume_offset + run->addr * bs + in_run;
                uint64_t len = (want + dbs - 1) / dbs * dbs;
                if (dev_off % dbs || len > EVD_FS_READ_CHUNK || dev_off + len > fs->dev_bytes ||
                    !evd_prefetch_queue(fs->pf, dev_off, (uint32_t)len)) {
                        fs->pf_file = NULL;
                        return;
                }
                fs->pf_next += want;
        }
}

/* The plan follows f from file offset `from` (a file just opened: 0). */
static void prefetch_plan(EvdFsFile *f, uint64_t from)
{
        EvdFs *fs = f->fs;
        if (from == 0 && fs->pf_after && fs->pf_after->file->meta->addr == f->file->meta->addr) {
                /* the file announced by evd_fs_read_next(): what was read ahead of it is f's */
                bool begun = fs->pf_file == fs->pf_after;
                file_free(steal_ptr(&fs->pf_after));
                if (begun || fs->pf_file) {
                        if (!begun) { /* its turn had not come yet: it comes now, after what is queued */
                                fs->pf_prev = fs->pf_file;
                                fs->pf_next = 0;
                        }
                        fs->pf_file = f;
                        fs->pf_run = NULL;
                        read_next_later(fs);
                        prefetch_top_up(fs);
                        return;
                }
        }
        if (fs->pf_after && fs->pf_after == fs->pf_file) {
                /* the plan went on to a file announced but not opened (the caller skipped it) */
                fs->pf_file = NULL;
                file_free(steal_ptr(&fs->pf_after));
        }
        read_next_later(fs);
        if (!fs->dev.prefetch || f->size < EVD_FS_PREFETCH_MIN || !f->attr)
                return;
        if (!fs->pf &&
            evd_prefetch_new(EVD_FS_PREFETCH_SLOTS, EVD_FS_READ_CHUNK, prefetch_read, fs, &fs->pf) < 0) {
                fs->dev.prefetch = false; /* no memory or no thread: the reads go on without */
                return;
        }
        evd_prefetch_reset(fs->pf);
        fs->pf_file = f;
        fs->pf_prev = NULL;
        fs->pf_next = from;
        fs->pf_run = NULL;
        prefetch_top_up(fs);
}

static ssize_t file_read(EvdFsFile *f, void *buf, size_t n, bool positioned, EvdError *err)
{
        EvdFs *fs = f->fs;
        if (f->offset >= f->size || n == 0)
                return 0;
        n = (size_t)MIN((uint64_t)MIN(n, (size_t)EVD_FS_READ_CHUNK), f->size - f->offset);

        /* Follow TSK's run list ourselves: whole runs become large device reads instead of one
         * filesystem-block read after another. */
        uint64_t bs = fs->tsk->block_size;
        uint64_t blk = f->offset / bs;
        const TSK_FS_ATTR_RUN *run = run_of(f, f->run, blk);
        if (!run)
                return evd_error_set(err, -EUCLEAN,
                                     "'%s': data ends after %" PRIu64
                                     " bytes but the directory entry says %" PRIu64
                                     " (cluster chain too short or broken)",
                                     f->path, f->offset, f->size);
        if (run->addr + run->len > (uint64_t)fs->tsk->last_block + 1)
                return evd_error_set(err, -EUCLEAN,
                                     "'%s': clusters at byte %" PRIu64 " lie past the end of the volume",
                                     f->path, f->offset);
        f->run = run;
        uint64_t in_run = (blk - run->offset) * bs + f->offset % bs;
        n = (size_t)MIN((uint64_t)n, run->len * bs - in_run);
        uint64_t dev_off = fs->volume_offset + run->addr * bs + in_run;

        io_error_clear(fs);
        ssize_t r = 0;
        bool planned = (fs->pf_file == f || fs->pf_prev == f) && !positioned;
        if (fs->pf) {
                /* the plan's reader waits for its chunks; anyone else takes what is there already */
                r = evd_prefetch_take(fs->pf, dev_off, buf, n, planned, planned, err);
                if (r < 0 && r == -ENODEV) {
                        fs->io_code = (int)r;
                        if (err)
                                fs->io_err = *err;
                }
                if (r > 0 && !positioned)
                        fs->seq_next = dev_off + (uint64_t)r;
        }
        if (r == 0) {
                uint64_t rest = MIN(run->len * bs - in_run, f->size - f->offset);
                r = device_read(fs, dev_off, buf, n, positioned, dev_off + rest, err);
                /* the plan's file read elsewhere than planned (a seek): the plan follows it */
                if (r > 0 && planned && fs->pf_file == f)
                        prefetch_plan(f, f->offset + (uint64_t)r);
        }
        if (r < 0) {
                evd_error_prefix(err, "reading '%s': ", f->path);
                return r;
        }
        f->offset += (uint64_t)r;
        if (planned)
                prefetch_top_up(fs);
        return r;
}

ssize_t evd_fs_file_read(EvdFsFile *f, void *buf, size_t n, EvdError *err)
{
        return file_read(f, buf, n, false, err);
}

ssize_t evd_fs_file_pread(EvdFsFile *f, void *buf, size_t n, uint64_t off, EvdError *err)
{
        uint64_t offset = f->offset;
        const TSK_FS_ATTR_RUN *run = f->run;
        f->offset = off;
        f->run = NULL; /* the run cursor only moves forward: look it up from the first run */
        ssize_t r = file_read(f, buf, n, true, err);
        f->offset = offset;
        f->run = run;
        return r;
}

static void file_free(EvdFsFile *f)
{
        if (!f)
                return;
        tsk_fs_file_close(f->file);
        free(f->path);
        free(f);
}

void evd_fs_file_close(EvdFsFile *f)
{
        if (!f)
                return;
        EvdFs *fs = f->fs;
        if (fs->pf_prev == f)
                fs->pf_prev = NULL; /* what is left of its chunks goes when the next file's are taken */
        if (fs->pf_file == f) {     /* nothing more to read ahead for it (its runs go with it) */
                evd_prefetch_reset(fs->pf);
                fs->pf_file = NULL;
                fs->pf_run = NULL;
        }
        file_free(f);
}
