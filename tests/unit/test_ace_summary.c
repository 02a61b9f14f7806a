/* tests/unit/test_ace_summary.c - the summary of threads without a ring
 * (shared_contracts/ace_summary.h), through Box 2 and the learner (hak_ace_step).
 *
 * Threads that exit before their HAK_RING_AFTER_REFILLS-th refill leave exit samples, which
 * the learner reads, frees and acts on (their one batch of 64 mostly unused: the class comes
 * down); exits beyond the free slots are counted, not sampled, and never wait; a thread that
 * passes its ring threshold with every slot taken reports each event to the summary's totals.
 * The tests run in order in one process, with POOL_ACE=1 set by hand and no learner thread.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "box2_refill/thread.h"
#include "box3_ace/ace.h"
#include "shared_contracts/ace_summary.h"
#include "shared_contracts/config.h"
#include "shared_contracts/event_ring.h"
#include "shared_contracts/policy_table.h"

#define CLS 11u /* 256 B */

static void *three_blocks(void *arg)
{
    (void)arg;
    void *p[3];
    for (int i = 0; i < 3; i++)
        p[i] = malloc(256);
    for (int i = 0; i < 3; i++)
        free(p[i]);
    return NULL;
}

static void run_threads(unsigned n, void *(*fn)(void *))
{
    for (unsigned i = 0; i < n; i++) {
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, fn, NULL), 0);
        pthread_join(t, NULL);
    }
}

static unsigned ready_slots(void)
{
    unsigned n = 0;
    for (unsigned i = 0; i < HAK_SUMMARY_SLOTS; i++)
        n += __atomic_load_n(&hak_ace_summary.slot[i].state, __ATOMIC_ACQUIRE) ==
             HAK_SUMMARY_READY;
    return n;
}

static void setup_ace(void **state)
{
    (void)state;
    hak_config_load();
    hak_config.ace = 1; /* Box 2 reports; the learner runs only in hak_ace_step */
    assert_true(hak_ring_registry_init(1024));
    hak_ace_step(); /* table 1: the fixed counts */
    assert_int_equal(hak_policy_refill_count(CLS, hak_fixed_refill_count(CLS)),
                     hak_fixed_refill_count(CLS));
}

/* 16 threads each refill class CLS once (64 blocks) and hand out 3: one exit sample each, and
 * the class comes down to what a thread used. */
static void exit_samples_bring_the_count_down(void **state)
{
    (void)state;
    uint64_t e0 = hak_ace_exits_seen(), s0 = hak_ace_exit_samples();
    run_threads(16, three_blocks);
    assert_int_equal(ready_slots(), 16);
    hak_ace_step();
    assert_int_equal(hak_ace_exits_seen(), e0 + 16);
    assert_int_equal(hak_ace_exit_samples(), s0 + 16);
    assert_int_equal(ready_slots(), 0); /* read and freed */
    uint32_t now = hak_policy_refill_count(CLS, hak_fixed_refill_count(CLS));
    if (now != 4) /* max(POOL_ACE_MIN, 3 blocks handed out) */
        fail_msg("class %u count %u after 16 exits that used 3 of 64 blocks each", CLS, now);
}

/* With the learner not reading, the slots fill: later exits are counted, not sampled, and
 * nothing waits. */
static void exits_beyond_the_slots_are_counted(void **state)
{
    (void)state;
    uint64_t e0 = hak_ace_exits_seen(), s0 = hak_ace_exit_samples();
    run_threads(3 * HAK_SUMMARY_SLOTS, three_blocks);
    assert_int_equal(ready_slots(), HAK_SUMMARY_SLOTS);
    hak_ace_step();
    assert_int_equal(hak_ace_exits_seen(), e0 + 3 * HAK_SUMMARY_SLOTS);
    assert_int_equal(hak_ace_exit_samples(), s0 + HAK_SUMMARY_SLOTS);
    assert_int_equal(ready_slots(), 0);
}

/* Every ring slot taken: a thread past its ring threshold has none, and each of its events
 * goes to the summary's per-class totals, which the learner adds to that class. It leaves no
 * exit sample (it reported its events already). */
static void *past_the_threshold(void *arg)
{
    enum { N = 2000 };
    static void *keep[N];
    for (unsigned i = 0; i < N; i++) /* 16 B: 2000 / 64 = 31 refills ... */
        keep[i] = malloc(16);
    for (unsigned i = 0; i < N; i++)
        free(keep[i]);
    for (unsigned r = 0; r < 40; r++) { /* ... then 40 more rounds: past the threshold */
        for (unsigned i = 0; i < N; i++)
            keep[i] = malloc(16);
        for (unsigned i = 0; i < N; i++)
            free(keep[i]);
    }
    hak_thread_t *t = hak_thread_self();
    uint64_t *out = arg;
    out[0] = t->stat[HAK_TSTAT_events][0];
    out[1] = t->ring != NULL;
    out[2] = t->stat[HAK_TSTAT_refills][0];
    return NULL;
}

static void ringless_events_reach_their_class(void **state)
{
    (void)state;
    hak_ring_t *mine[HAK_RING_SLOTS];
    for (uint32_t i = 0; i < HAK_RING_SLOTS; i++)
        assert_non_null(mine[i] = hak_ring_acquire());
    assert_null(hak_ring_acquire());
    hak_ace_step();
    uint64_t r0 = hak_ace_ringless_events(), e0 = hak_ace_exits_seen();
    uint64_t ev0 = hak_ace_summary.ev_events[0][0] + hak_ace_summary.ev_events[1][0];
    uint64_t out[3] = {0};
    pthread_t t;
    int64_t grow = hak_config.tcache_grow_kib;
    hak_config.tcache_grow_kib = 0; /* caps stay at two refills: each round refills */
    assert_int_equal(pthread_create(&t, NULL, past_the_threshold, out), 0);
    pthread_join(t, NULL);
    hak_config.tcache_grow_kib = grow;
    assert_true(out[2] > HAK_RING_AFTER_REFILLS);
    assert_int_equal(out[1], 0); /* no ring */
    assert_true(out[0] > 0);     /* it reported events ... */
    uint64_t ev = hak_ace_summary.ev_events[0][0] + hak_ace_summary.ev_events[1][0] - ev0;
    assert_int_equal(ev, out[0]); /* ... every one of them to the summary */
    hak_ace_step();
    assert_int_equal(hak_ace_ringless_events(), r0 + out[0]);
    assert_int_equal(hak_ace_exits_seen(), e0); /* no exit sample: it had passed its threshold */
    for (uint32_t i = 0; i < HAK_RING_SLOTS; i++)
        hak_ring_orphan(mine[i]);
    hak_ace_step();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(setup_ace),
        cmocka_unit_test(exit_samples_bring_the_count_down),
        cmocka_unit_test(exits_beyond_the_slots_are_counted),
        cmocka_unit_test(ringless_events_reach_their_class),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
