/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>

#include "writeback.h"

bool evd_writeback_next(uint64_t started, uint64_t written, uint64_t step, uint64_t lag, uint64_t align,
                        uint64_t *ret_from, uint64_t *ret_to)
{
        if (written <= lag || align == 0)
                return false;
        uint64_t to = (written - lag) / align * align;
        if (to <= started || to - started < step)
                return false;
        *ret_from = started;
        *ret_to = to;
        return true;
}

struct EvdWriteback {
        int fd;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        pthread_t thread;
        bool tried_thread, thread_started, stopping;
        uint64_t written;   /* what the writer reported */
        uint64_t requested; /* the end of the last range handed to the thread */
        EvdWritebackStats stats;
};

/* One range: 0, or the negative errno that stops the hints (EINTR does not: the next range covers it). */
static int writeback_range(int fd, uint64_t from, uint64_t to)
{
        if (sync_file_range(fd, (off_t)from, (off_t)(to - from), SYNC_FILE_RANGE_WRITE) < 0)
                return errno == EINTR ? 0 : -errno;
        return 0;
}

/* with the lock held: the result of the range [from, to) */
static void writeback_done(EvdWriteback *w, uint64_t to, int r)
{
        if (r < 0) {
                w->stats.error = r;
                return;
        }
        w->stats.ranges++;
        w->stats.started = to;
}

static void *writeback_main(void *arg)
{
        EvdWriteback *w = arg;
        pthread_mutex_lock(&w->lock);
        /* what was asked for before the stop is still handed over: the caller's fdatasync() would do
         * the same work, and the ranges do not depend on when the thread got to run */
        while (w->stats.error == 0) {
                if (w->requested <= w->stats.started) {
                        if (w->stopping)
                                break;
                        pthread_cond_wait(&w->cond, &w->lock);
                        continue;
                }
                uint64_t from = w->stats.started, to = w->requested;
                pthread_mutex_unlock(&w->lock);
                int r = writeback_range(w->fd, from, to);
                pthread_mutex_lock(&w->lock);
                writeback_done(w, to, r);
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

EvdWriteback *evd_writeback_new(int fd)
{
        EvdWriteback *w = calloc(1, sizeof(*w));
        if (!w)
                return NULL;
        w->fd = fd;
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->cond, NULL);
        return w;
}

void evd_writeback_advance(EvdWriteback *w, uint64_t written)
{
        if (!w)
                return;
        pthread_mutex_lock(&w->lock);
        if (written > w->written)
                w->written = written;
        uint64_t from, to;
        bool due =
            w->stats.error == 0 && evd_writeback_next(w->requested, w->written, EVD_WRITEBACK_STEP,
                                                      EVD_WRITEBACK_LAG, EVD_WRITEBACK_ALIGN, &from, &to);
        if (due && !w->thread_started && !w->tried_thread) {
                /* the first range: from now on a thread makes the calls (a short file never gets one) */
                w->tried_thread = true;
                w->thread_started = pthread_create(&w->thread, NULL, writeback_main, w) == 0;
                w->stats.threaded = w->thread_started;
        }
        if (due) {
                w->requested = to;
                if (w->thread_started)
                        pthread_cond_signal(&w->cond);
                else /* no thread: the writer makes the call */
                        writeback_done(w, to, writeback_range(w->fd, from, to));
        }
        pthread_mutex_unlock(&w->lock);
}

void evd_writeback_stop(EvdWriteback *w, EvdWritebackStats *ret_stats)
{
        if (!w) {
                if (ret_stats)
                        *ret_stats = (EvdWritebackStats){0};
                return;
        }
        if (w->thread_started) {
                pthread_mutex_lock(&w->lock);
                w->stopping = true;
                pthread_cond_signal(&w->cond);
                pthread_mutex_unlock(&w->lock);
                pthread_join(w->thread, NULL);
        }
        if (ret_stats)
                *ret_stats = w->stats;
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        free(w);
}
