/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reading ahead on a thread of its own: fs-prefetch.h. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "fs-prefetch.h"

typedef enum SlotState {
        SLOT_EMPTY,
        SLOT_QUEUED,  /* in the plan, not read yet */
        SLOT_FILLING, /* the thread is reading it (buf is the thread's) */
        SLOT_READY,
        SLOT_FAILED,
} SlotState;

typedef struct Slot {
        uint64_t off;
        uint32_t len;
        SlotState state;
        bool live;    /* in the plan and not consumed: not to be reused */
        bool taken;   /* someone took bytes from it */
        uint64_t seq; /* order in the plan */
        int error;    /* SLOT_FAILED */
        EvdError err;
        uint8_t *buf;
} Slot;

struct EvdPrefetch {
        pthread_mutex_t lock;
        pthread_cond_t work;    /* the thread: a chunk was queued, or quit */
        pthread_cond_t changed; /* callers: a chunk was read, or the plan changed */
        pthread_t thread;
        bool thread_started, quit;
        EvdPrefetchReadFn read;
        void *userdata;
        unsigned n;
        uint32_t chunk_bytes;
        Slot *slots;
        void *bufs; /* the slots' chunks, one mapping */
        uint64_t seq;
        EvdPrefetchStats stats;
};

/* The oldest chunk of the plan that is still to be read. */
static Slot *next_queued(EvdPrefetch *p)
{
        Slot *best = NULL;
        for (unsigned i = 0; i < p->n; i++) {
                Slot *s = &p->slots[i];
                if (s->state == SLOT_QUEUED && s->live && (!best || s->seq < best->seq))
                        best = s;
        }
        return best;
}

static void *prefetch_main(void *userdata)
{
        EvdPrefetch *p = userdata;
        pthread_mutex_lock(&p->lock);
        for (;;) {
                Slot *s = NULL;
                while (!p->quit && !(s = next_queued(p)))
                        pthread_cond_wait(&p->work, &p->lock);
                if (p->quit)
                        break;
                s->state = SLOT_FILLING;
                uint64_t off = s->off;
                uint32_t len = s->len;
                pthread_mutex_unlock(&p->lock);
                EvdError e = {};
                int r = p->read(p->userdata, off, len, s->buf, &e);
                pthread_mutex_lock(&p->lock);
                s->state = r < 0 ? SLOT_FAILED : SLOT_READY;
                s->error = r < 0 ? r : 0;
                s->err = e;
                p->stats.chunks_read++;
                p->stats.bytes_read += len;
                pthread_cond_broadcast(&p->changed);
        }
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

void evd_prefetch_free(EvdPrefetch *p)
{
        if (!p)
                return;
        if (p->thread_started) {
                pthread_mutex_lock(&p->lock);
                p->quit = true;
                pthread_cond_broadcast(&p->work);
                pthread_cond_broadcast(&p->changed);
                pthread_mutex_unlock(&p->lock);
                pthread_join(p->thread, NULL);
        }
        if (p->bufs)
                munmap(p->bufs, (size_t)p->n * p->chunk_bytes);
        free(p->slots);
        pthread_cond_destroy(&p->changed);
        pthread_cond_destroy(&p->work);
        pthread_mutex_destroy(&p->lock);
        free(p);
}

int evd_prefetch_new(unsigned slots, uint32_t chunk_bytes, EvdPrefetchReadFn read, void *userdata,
                     EvdPrefetch **ret)
{
        if (slots == 0 || chunk_bytes == 0 || !read)
                return -EINVAL;
        EvdPrefetch *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->work, NULL);
        pthread_cond_init(&p->changed, NULL);
        p->read = read;
        p->userdata = userdata;
        p->n = slots;
        p->chunk_bytes = chunk_bytes;
        p->slots = calloc(slots, sizeof(*p->slots));
        /* the chunks are mapped, not malloc()ed: when the docking ends they go back to the system at
         * once instead of staying in a malloc arena of a long-running evidockd (~9 MB more PSS after 8
         * dockings one after the other) */
        void *bufs = mmap(NULL, (size_t)slots * chunk_bytes, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        p->bufs = bufs == MAP_FAILED ? NULL : bufs;
        int r = p->slots && p->bufs ? 0 : -ENOMEM;
        for (unsigned i = 0; r >= 0 && i < slots; i++)
                p->slots[i].buf = (uint8_t *)p->bufs + (size_t)i * chunk_bytes;
        if (r >= 0) {
                r = -pthread_create(&p->thread, NULL, prefetch_main, p);
                p->thread_started = r == 0;
        }
        if (r < 0) {
                evd_prefetch_free(p);
                return r;
        }
        *ret = p;
        return 0;
}

/* Drops a chunk from the plan; one still to be read is not read any more. Under the lock. */
static void drop(Slot *s)
{
        s->live = false;
        if (s->state == SLOT_QUEUED)
                s->state = SLOT_EMPTY;
}

void evd_prefetch_reset(EvdPrefetch *p)
{
        pthread_mutex_lock(&p->lock);
        for (unsigned i = 0; i < p->n; i++)
                drop(&p->slots[i]);
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->lock);
}

static unsigned room_locked(EvdPrefetch *p)
{
        unsigned k = 0;
        for (unsigned i = 0; i < p->n; i++)
                if (!p->slots[i].live && p->slots[i].state != SLOT_FILLING)
                        k++;
        return k;
}

unsigned evd_prefetch_room(EvdPrefetch *p)
{
        pthread_mutex_lock(&p->lock);
        unsigned k = room_locked(p);
        pthread_mutex_unlock(&p->lock);
        return k;
}

bool evd_prefetch_queue(EvdPrefetch *p, uint64_t off, uint32_t len)
{
        if (len == 0 || len > p->chunk_bytes)
                return false;
        pthread_mutex_lock(&p->lock);
        /* an empty slot, else the one read longest ago */
        Slot *victim = NULL;
        for (unsigned i = 0; i < p->n; i++) {
                Slot *s = &p->slots[i];
                if (s->live || s->state == SLOT_FILLING)
                        continue;
                if (s->state == SLOT_EMPTY || s->state == SLOT_FAILED) {
                        victim = s;
                        break;
                }
                if (!victim || s->seq < victim->seq)
                        victim = s;
        }
        if (victim) {
                if (victim->state == SLOT_READY && !victim->taken)
                        p->stats.chunks_unused++;
                victim->off = off;
                victim->len = len;
                victim->state = SLOT_QUEUED;
                victim->live = true;
                victim->taken = false;
                victim->seq = ++p->seq;
                victim->error = 0;
                pthread_cond_signal(&p->work);
        }
        pthread_mutex_unlock(&p->lock);
        return victim != NULL;
}

/* The slot holding off: a chunk read first, else one of the plan being read or to be read. */
static Slot *find(EvdPrefetch *p, uint64_t off)
{
        Slot *best = NULL;
        for (unsigned i = 0; i < p->n; i++) {
                Slot *s = &p->slots[i];
                if (s->state == SLOT_EMPTY || off < s->off || off - s->off >= s->len)
                        continue;
                if (s->state == SLOT_READY)
                        return s;
                if (s->state == SLOT_FAILED || s->state == SLOT_FILLING || s->live)
                        if (!best || best->state == SLOT_QUEUED)
                                best = s;
        }
        return best;
}

ssize_t evd_prefetch_take(EvdPrefetch *p, uint64_t off, void *buf, size_t n, bool consume, bool wait,
                          EvdError *err)
{
        ssize_t ret = 0;
        pthread_mutex_lock(&p->lock);
        for (;;) {
                Slot *s = find(p, off);
                if (!s || p->quit)
                        break;
                if (consume && s->live)
                        for (unsigned i = 0; i < p->n; i++) /* the reader went past these */
                                if (p->slots[i].live && p->slots[i].seq < s->seq)
                                        drop(&p->slots[i]);
                if (s->state == SLOT_READY) {
                        size_t k = (size_t)MIN((uint64_t)n, s->off + s->len - off);
                        memcpy(buf, s->buf + (off - s->off), k);
                        s->taken = true;
                        p->stats.bytes_taken += k;
                        if (consume && off + k == s->off + s->len)
                                s->live = false;
                        ret = (ssize_t)k;
                        break;
                }
                if (s->state == SLOT_FAILED && !s->live) { /* an earlier plan's: the caller reads anew */
                        s->state = SLOT_EMPTY;
                        continue;
                }
                if (s->state == SLOT_FAILED) {
                        ret = s->error;
                        if (err)
                                *err = s->err;
                        s->state = SLOT_EMPTY;
                        s->live = false;
                        break;
                }
                if (s->state == SLOT_QUEUED && !wait && s != next_queued(p))
                        break; /* not even next in line: the caller reads the device sooner */
                pthread_cond_wait(&p->changed, &p->lock);
        }
        pthread_mutex_unlock(&p->lock);
        return ret;
}

void evd_prefetch_stats(EvdPrefetch *p, EvdPrefetchStats *ret)
{
        pthread_mutex_lock(&p->lock);
        *ret = p->stats;
        pthread_mutex_unlock(&p->lock);
}
