/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>

#include "batch-queue.h"

typedef struct Entry {
        void *item;
        size_t bytes;
        unsigned tag;
} Entry;

struct EvdBatchQueue {
        EvdBatchQueueLimits lim;
        EvdBatchQueueFn fn;
        void *userdata;
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t to_consumer, to_producer;
        Entry *ring;
        size_t head, n; /* queued, not yet taken by the consumer */
        size_t bytes;   /* queued + the item the consumer is working on */
        bool consumer_idle, producer_waiting, closed;
        int error;
        EvdBatchQueueStats stats;
};

static void *consumer_main(void *arg)
{
        EvdBatchQueue *q = arg;
        pthread_mutex_lock(&q->lock);
        for (;;) {
                while (q->n == 0 && !q->closed) {
                        q->consumer_idle = true;
                        pthread_cond_wait(&q->to_consumer, &q->lock);
                        q->consumer_idle = false;
                        q->stats.consumer_wakeups++;
                }
                if (q->n == 0)
                        break; /* closed and drained */
                Entry e = q->ring[q->head];
                q->head = (q->head + 1) % q->lim.max_items;
                q->n--;
                bool skip = q->error != 0;
                pthread_mutex_unlock(&q->lock);
                int r = q->fn(e.item, e.tag, skip, q->userdata);
                pthread_mutex_lock(&q->lock);
                if (r < 0 && q->error == 0)
                        q->error = r;
                q->bytes -= e.bytes;
                /* the producer, if it waits for room, goes on once half the queue is free */
                if (q->producer_waiting && q->n <= q->lim.max_items / 2 && q->bytes <= q->lim.max_bytes / 2)
                        pthread_cond_signal(&q->to_producer);
        }
        pthread_mutex_unlock(&q->lock);
        return NULL;
}

int evd_batch_queue_start(const EvdBatchQueueLimits *limits, EvdBatchQueueFn fn, void *userdata,
                          EvdBatchQueue **ret)
{
        if (!limits || !fn || limits->max_items == 0 || limits->max_bytes == 0 || limits->wake_items == 0 ||
            limits->wake_bytes == 0 || limits->wake_items > limits->max_items ||
            limits->wake_bytes > limits->max_bytes)
                return -EINVAL;
        EvdBatchQueue *q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->lim = *limits;
        q->fn = fn;
        q->userdata = userdata;
        if (!(q->ring = calloc(limits->max_items, sizeof(*q->ring)))) {
                free(q);
                return -ENOMEM;
        }
        pthread_mutex_init(&q->lock, NULL);
        pthread_cond_init(&q->to_consumer, NULL);
        pthread_cond_init(&q->to_producer, NULL);
        if (pthread_create(&q->thread, NULL, consumer_main, q) != 0) {
                pthread_cond_destroy(&q->to_producer);
                pthread_cond_destroy(&q->to_consumer);
                pthread_mutex_destroy(&q->lock);
                free(q->ring);
                free(q);
                return -EAGAIN;
        }
        *ret = q;
        return 0;
}

int evd_batch_queue_push(EvdBatchQueue *q, void *item, size_t bytes, unsigned tag)
{
        pthread_mutex_lock(&q->lock);
        while (q->n == q->lim.max_items || (q->n > 0 && q->bytes + bytes > q->lim.max_bytes)) {
                if (q->consumer_idle) /* below its wake-up mark, but full: take it all */
                        pthread_cond_signal(&q->to_consumer);
                q->producer_waiting = true;
                q->stats.producer_waits++;
                pthread_cond_wait(&q->to_producer, &q->lock);
                q->producer_waiting = false;
        }
        q->ring[(q->head + q->n) % q->lim.max_items] = (Entry){.item = item, .bytes = bytes, .tag = tag};
        q->n++;
        q->bytes += bytes;
        q->stats.items++;
        if (q->consumer_idle && (q->n >= q->lim.wake_items || q->bytes >= q->lim.wake_bytes))
                pthread_cond_signal(&q->to_consumer);
        int r = q->error;
        pthread_mutex_unlock(&q->lock);
        return r;
}

int evd_batch_queue_finish(EvdBatchQueue *q, EvdBatchQueueStats *ret_stats)
{
        if (!q)
                return 0;
        pthread_mutex_lock(&q->lock);
        q->closed = true;
        pthread_cond_signal(&q->to_consumer);
        pthread_mutex_unlock(&q->lock);
        pthread_join(q->thread, NULL);
        int r = q->error;
        if (ret_stats)
                *ret_stats = q->stats;
        pthread_cond_destroy(&q->to_producer);
        pthread_cond_destroy(&q->to_consumer);
        pthread_mutex_destroy(&q->lock);
        free(q->ring);
        free(q);
        return r;
}
