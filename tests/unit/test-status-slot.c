/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* daemon/status-slot.h: a docking's progress from its worker thread to evidockd's loop is coalesced,
 * never dropped. Before, a progress report within 250 ms of the previous one was dropped outright, so
 * status.json kept an older percentage until the next unthrottled report (after a burst followed by a
 * pause -- a batch's fdatasync, a slow archive step -- for seconds). Prints TAP. */
#include <pthread.h>

#include "check.h"
#include "status-slot.h"

static EvdStatusJob at(uint64_t done)
{
        return (EvdStatusJob){.file_done = done, .file_total = 100, .state = "copying"};
}

/* One message at a time; the message and the publisher both get the latest. */
static void test_latest_wins(void)
{
        StatusSlot s;
        status_slot_init(&s);
        EvdStatusJob st = at(1), got;
        bool progress = false;
        unsigned inc = 0;
        CHECK(status_slot_put(&s, &st, true, 0, true)); /* first: post */
        st = at(2);
        CHECK(!status_slot_put(&s, &st, false, 1, true)); /* one waits already */
        CHECK(status_slot_take(&s, true, &got, &progress, &inc));
        CHECK_INT(got.file_done, ==, 2);
        CHECK(progress);
        CHECK_INT(inc, ==, 1);
        CHECK(!status_slot_take(&s, false, &got, &progress, &inc)); /* nothing fresh */
        st = at(3);
        CHECK(status_slot_put(&s, &st, true, 0, true)); /* the message was taken: post again */
        status_slot_done(&s);
}

/* A burst of throttled reports, then silence: the publisher shows the last one, not the first. */
static void test_burst_then_pause(void)
{
        StatusSlot s;
        status_slot_init(&s);
        EvdStatusJob st = at(0), got;
        bool progress;
        unsigned inc;
        CHECK(status_slot_put(&s, &st, true, 0, true));
        CHECK(status_slot_take(&s, true, &got, &progress, &inc));
        for (uint64_t d = 1; d <= 100; d++) { /* within the throttle: no message */
                st = at(d);
                CHECK(!status_slot_put(&s, &st, true, 0, false));
        }
        /* the worker now waits (fdatasync, archive): status.json is published once a second */
        CHECK(status_slot_take(&s, false, &got, &progress, &inc));
        CHECK_INT(got.file_done, ==, 100);
        status_slot_done(&s);
}

typedef struct Shared {
        StatusSlot slot;
        int done;
} Shared;

#define N_PUTS 200000u

static void *worker(void *arg)
{
        Shared *sh = arg;
        for (unsigned i = 1; i <= N_PUTS; i++) {
                EvdStatusJob st = at(i);
                (void)status_slot_put(&sh->slot, &st, true, 1, i % 7 == 0);
        }
        __atomic_store_n(&sh->done, 1, __ATOMIC_SEQ_CST);
        return NULL;
}

/* A worker and the loop at once: the sum of files done is exact, the percentage never goes back, and
 * the last report arrives. */
static void test_threads(void)
{
        Shared sh = {};
        status_slot_init(&sh.slot);
        pthread_t t;
        CHECK(pthread_create(&t, NULL, worker, &sh) == 0);
        uint64_t last = 0, total_inc = 0;
        bool backwards = false;
        for (;;) {
                int finished = __atomic_load_n(&sh.done, __ATOMIC_SEQ_CST);
                EvdStatusJob got;
                bool progress;
                unsigned inc;
                if (status_slot_take(&sh.slot, true, &got, &progress, &inc)) {
                        backwards |= got.file_done < last;
                        last = got.file_done;
                        total_inc += inc;
                }
                if (finished && !status_slot_take(&sh.slot, true, &got, &progress, &inc))
                        break;
                if (finished) {
                        last = got.file_done;
                        total_inc += inc;
                }
        }
        pthread_join(t, NULL);
        CHECK(!backwards);
        CHECK_INT(last, ==, N_PUTS);
        CHECK_INT(total_inc, ==, N_PUTS);
        status_slot_done(&sh.slot);
}

int main(void)
{
        RUN(test_latest_wins);
        RUN(test_burst_then_pause);
        RUN(test_threads);
        return check_finish();
}
