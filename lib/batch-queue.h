/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A bounded queue from one producer thread to one consumer thread that wakes the consumer by batches.
 *
 * The media worker hands every packet of a recording to its packet-digest thread (media.c). A 10-minute
 * 1080p segment has ~18,000 packets of ~33 kB; the digest thread hashes one in ~20 us, so with a wake-up
 * per packet it slept and was woken ~18,000 times, and the muxer's thread was preempted as often: ~35,000
 * context switches, ~0.3 CPU s on two cores (issue 14). Here the consumer, once idle, is woken only when a
 * batch has gathered (EvdBatchQueueLimits.wake_items / .wake_bytes) or the queue is closed; it then
 * takes everything queued before it sleeps again. The producer waits only when the queue is full, and is
 * woken once the consumer has taken half of it. Items are handed over in order, each exactly once. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Consumes one item (on the consumer thread). `skip`: an earlier item failed, only release this one.
 * A negative errno is kept as the queue's error (the first one wins). */
typedef int (*EvdBatchQueueFn)(void *item, unsigned tag, bool skip, void *userdata);

typedef struct EvdBatchQueueLimits {
        size_t max_items, max_bytes;   /* full: the producer waits (an item larger than max_bytes alone
                                        * still passes, alone) */
        size_t wake_items, wake_bytes; /* an idle consumer is woken when either is reached */
} EvdBatchQueueLimits;

typedef struct EvdBatchQueueStats {
        uint64_t items;
        uint64_t consumer_wakeups; /* times the consumer was woken from waiting for items */
        uint64_t producer_waits;   /* times the producer waited for room */
} EvdBatchQueueStats;

typedef struct EvdBatchQueue EvdBatchQueue;

/* Starts the consumer thread. -ENOMEM, -EAGAIN (no thread) or -EINVAL (limits). */
int evd_batch_queue_start(const EvdBatchQueueLimits *limits, EvdBatchQueueFn fn, void *userdata,
                          EvdBatchQueue **ret);
/* Queues an item (waits while the queue is full). Returns the queue's error so far (the item is queued
 * all the same, and will be released with skip set). */
int evd_batch_queue_push(EvdBatchQueue *q, void *item, size_t bytes, unsigned tag);
/* Closes the queue, lets the consumer take what is left, joins it and frees the queue. Returns the
 * first error of the consumer function; *ret_stats (may be NULL) gets the counts. Safe on NULL. */
int evd_batch_queue_finish(EvdBatchQueue *q, EvdBatchQueueStats *ret_stats);
