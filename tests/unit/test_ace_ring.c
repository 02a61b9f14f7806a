/* tests/unit/test_ace_ring.c - the SPSC event ring of shared_contracts/event_ring.h.
 *
 * Two threads and millions of events: every accepted event arrives, once, in order; every
 * refused push is counted in ring->drops, exactly; with no consumer, K pushes into a ring of
 * capacity C give exactly K - C drops; and a push into a full ring returns at once.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "shared_contracts/event_ring.h"
#include "shared_contracts/size_classes.h"
#include "testlib.h"

#define CAP 1024u
static hak_event_t storage[CAP];
static hak_ring_t ring;

static void ring_reset(uint32_t cap)
{
    memset(&ring, 0, sizeof ring);
    ring.mask = cap - 1;
    ring.slots = storage;
    ring.state = HAK_RING_OWNED;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static hak_event_t ev_seq(uint64_t seq)
{
    hak_event_t e = {.ms = seq, .class_idx = (uint16_t)(seq % HAK_NUM_CLASSES),
                     .count = (uint16_t)seq, .kind = HAK_EV_REFILL};
    return e;
}

/* ---- two threads -------------------------------------------------------------------- */
static uint64_t n_events;
static uint64_t refused;       /* producer: pushes that returned false */
static int producer_done;      /* release store by the producer */
static uint64_t received, out_of_order;

static void *producer(void *arg)
{
    (void)arg;
    for (uint64_t seq = 0; seq < n_events; seq++) {
        hak_event_t e = ev_seq(seq);
        while (!hak_ring_push(&ring, &e))
            refused++; /* full: the event was dropped; push it again to keep the sequence */
    }
    __atomic_store_n(&producer_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    hak_event_t buf[64];
    uint64_t expect = 0;
    for (;;) {
        int done = __atomic_load_n(&producer_done, __ATOMIC_ACQUIRE);
        uint32_t n = hak_ring_pop(&ring, buf, 64);
        for (uint32_t i = 0; i < n; i++) {
            if (buf[i].ms != expect || buf[i].count != (uint16_t)expect ||
                buf[i].class_idx != expect % HAK_NUM_CLASSES)
                out_of_order++;
            expect = buf[i].ms + 1;
        }
        received += n;
        if (!n && done)
            break;
    }
    return NULL;
}

static void two_threads_nothing_lost_in_order(void **state)
{
    (void)state;
    ring_reset(CAP);
    n_events = 4000000ull * (uint64_t)tl_scale();
    refused = received = out_of_order = 0;
    producer_done = 0;
    pthread_t p, c;
    assert_int_equal(pthread_create(&c, NULL, consumer, NULL), 0);
    assert_int_equal(pthread_create(&p, NULL, producer, NULL), 0);
    pthread_join(p, NULL);
    pthread_join(c, NULL);
    assert_int_equal(received, n_events);
    assert_int_equal(out_of_order, 0);
    assert_int_equal(ring.pushed, n_events);
    assert_int_equal(ring.drops, refused); /* every refused push counted, exactly */
    assert_int_equal(ring.head, ring.tail);
}

static void full_ring_drops_exactly_k_minus_c(void **state)
{
    (void)state;
    static const uint32_t caps[] = {16, 256, CAP};
    for (unsigned k = 0; k < 3; k++) {
        uint32_t cap = caps[k];
        ring_reset(cap);
        uint64_t K = 10ull * cap + 7;
        uint64_t accepted = 0;
        for (uint64_t seq = 0; seq < K; seq++) {
            hak_event_t e = ev_seq(seq);
            accepted += hak_ring_push(&ring, &e);
        }
        assert_int_equal(accepted, cap);
        assert_int_equal(ring.drops, K - cap);
        assert_int_equal(ring.pushed, cap);
        hak_event_t out[CAP];
        assert_int_equal(hak_ring_pop(&ring, out, CAP), cap);
        for (uint32_t i = 0; i < cap; i++) /* drop-newest: the first cap events survive */
            assert_int_equal(out[i].ms, i);
        assert_int_equal(hak_ring_pop(&ring, out, CAP), 0);
        hak_event_t e = ev_seq(99); /* room again */
        assert_true(hak_ring_push(&ring, &e));
    }
}

/* A stalled consumer (it never pops): the producer's pushes still return at once. */
static void push_never_waits_on_a_stalled_consumer(void **state)
{
    (void)state;
    ring_reset(CAP);
    hak_event_t e = ev_seq(1);
    for (uint32_t i = 0; i < CAP; i++)
        assert_true(hak_ring_push(&ring, &e));
    const uint64_t n = 1000000;
    uint64_t worst = 0, t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        uint64_t a = now_ns();
        assert_false(hak_ring_push(&ring, &e));
        uint64_t d = now_ns() - a;
        if (d > worst)
            worst = d;
    }
    uint64_t total = now_ns() - t0;
    assert_int_equal(ring.drops, n);
    /* ~tens of ns each; generous bounds for a loaded 2-core machine */
    assert_true(total < 2000000000ull);
    print_message("    1e6 pushes into a full ring: %.1f ns each (worst %.1f us, incl. clock)\n",
                  (double)total / (double)n, (double)worst / 1000.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_threads_nothing_lost_in_order),
        cmocka_unit_test(full_ring_drops_exactly_k_minus_c),
        cmocka_unit_test(push_never_waits_on_a_stalled_consumer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
