/* tests/unit/test_ace_registry.c - contract C: the ring registry of box3_ace/ring_registry.c.
 *
 * acquire / release / orphan / recycle, exhaustion (every slot taken: NULL, and the events of
 * a ringless thread counted as no-ring drops), and a thread that exits: it leaves an ORPHANED
 * ring that one learner interval (hak_ace_step) drains, counts and sets FREE.
 * The tests run in order in one process and share the one registry.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "box2_refill/thread.h"
#include "box3_ace/ace.h"
#include "shared_contracts/config.h"
#include "shared_contracts/event_ring.h"
#include "shared_contracts/policy_table.h"

#define CAP 256u /* 4 KiB of events a slot: whole pages, which the learner gives back */

static uint32_t state_of(hak_ring_t *r) { return __atomic_load_n(&r->state, __ATOMIC_ACQUIRE); }

static unsigned count_state(uint32_t st)
{
    unsigned n = 0;
    for (uint32_t i = 0; i < HAK_RING_SLOTS; i++)
        n += state_of(hak_ring_get(i)) == st;
    return n;
}

static void before_init_nothing(void **state)
{
    (void)state;
    hak_config_load();
    assert_null(hak_ring_get(0));
    assert_null(hak_ring_acquire());
    assert_false(hak_ring_registry_init(100)); /* not a power of two */
    assert_true(hak_ring_registry_init(CAP));
    assert_true(hak_ring_registry_init(CAP)); /* idempotent */
    assert_null(hak_ring_get(HAK_RING_SLOTS));
    for (uint32_t i = 0; i < HAK_RING_SLOTS; i++) {
        hak_ring_t *r = hak_ring_get(i);
        assert_non_null(r);
        assert_int_equal(state_of(r), HAK_RING_FREE);
    }
    /* A slot's header is written when it is first acquired (until then its page is never
     * touched): every slot then knows its capacity and its own stretch of the event space. */
    hak_ring_t *all[HAK_RING_SLOTS];
    for (uint32_t i = 0; i < HAK_RING_SLOTS; i++) {
        all[i] = hak_ring_acquire();
        assert_ptr_equal(all[i], hak_ring_get(i)); /* lowest FREE slot first */
        assert_int_equal(all[i]->mask, CAP - 1);
        if (i)
            assert_ptr_equal(all[i]->slots, all[i - 1]->slots + CAP);
    }
    for (uint32_t i = 0; i < HAK_RING_SLOTS; i++)
        hak_ring_orphan(all[i]);
    hak_ace_step(); /* drained and FREE again */
    for (uint32_t i = 0; i < HAK_RING_SLOTS; i++)
        assert_int_equal(state_of(hak_ring_get(i)), HAK_RING_FREE);
}

static void acquire_orphan_recycle(void **state)
{
    (void)state;
    hak_ring_t *r = hak_ring_acquire();
    assert_non_null(r);
    assert_int_equal(state_of(r), HAK_RING_OWNED);
    hak_event_t e = {.class_idx = 7, .count = 32, .kind = HAK_EV_REFILL};
    for (int i = 0; i < 10; i++)
        assert_true(hak_ring_push(r, &e));
    uint64_t seen = hak_ace_events_seen(7);
    hak_ring_orphan(r);
    assert_int_equal(state_of(r), HAK_RING_ORPHANED);
    hak_ace_step(); /* the learner: drains, counts, recycles */
    assert_int_equal(state_of(r), HAK_RING_FREE);
    assert_int_equal(hak_ace_events_seen(7), seen + 10);
    assert_int_equal(r->head, r->tail);
    /* Recycled rings start over at event 0 (one touched page for a short-lived thread), and
     * acquire hands out the lowest free slot: this one again. */
    assert_int_equal(r->head, 0);
    assert_int_equal(r->drops, 0);
    hak_ring_t *again = hak_ring_acquire();
    assert_ptr_equal(again, r);
    hak_ring_orphan(again);
    hak_ace_step();
    assert_int_equal(state_of(r), HAK_RING_FREE);
    hak_ring_orphan(NULL); /* no-op */
}

/* Resident pages among the n bytes at p (mincore). */
static size_t resident_pages(const void *p, size_t n)
{
    uintptr_t start = (uintptr_t)p & ~(uintptr_t)4095, end = ((uintptr_t)p + n + 4095) & ~(uintptr_t)4095;
    unsigned char vec[64];
    size_t pages = (end - start) / 4096, in = 0;
    assert_true(pages <= sizeof vec);
    assert_int_equal(mincore((void *)start, end - start, vec), 0);
    for (size_t i = 0; i < pages; i++)
        in += vec[i] & 1;
    return in;
}

/* A ring the learner sets FREE holds no resident event pages: a thread that filled its ring
 * and exited leaves nothing behind (the slot stays mapped; its next owner starts on zero
 * pages). */
static void freed_ring_gives_its_pages_back(void **state)
{
    (void)state;
    hak_ring_t *r = hak_ring_acquire();
    assert_non_null(r);
    size_t bytes = (size_t)(r->mask + 1) * sizeof(hak_event_t);
    hak_event_t e = {.class_idx = 3, .count = 64, .kind = HAK_EV_REFILL};
    for (uint32_t i = 0; i <= r->mask; i++) /* every event page written */
        assert_true(hak_ring_push(r, &e));
    size_t touched = resident_pages(r->slots, bytes);
    assert_true(touched >= bytes / 4096);
    hak_ring_orphan(r);
    hak_ace_step(); /* drained, pages given back, FREE */
    assert_int_equal(state_of(r), HAK_RING_FREE);
    assert_int_equal(resident_pages(r->slots, bytes), 0);
    hak_ring_t *again = hak_ring_acquire(); /* and it works again, from zero pages */
    assert_ptr_equal(again, r);
    assert_true(hak_ring_push(again, &e));
    hak_ring_orphan(again);
    hak_ace_step();
    assert_int_equal(state_of(r), HAK_RING_FREE);
}

static void exhaustion_and_no_ring_drops(void **state)
{
    (void)state;
    hak_ring_t *mine[HAK_RING_SLOTS];
    for (uint32_t i = 0; i < HAK_RING_SLOTS; i++) {
        mine[i] = hak_ring_acquire();
        assert_non_null(mine[i]);
        for (uint32_t j = 0; j < i; j++)
            assert_ptr_not_equal(mine[i], mine[j]);
    }
    assert_null(hak_ring_acquire());
    assert_int_equal(count_state(HAK_RING_OWNED), HAK_RING_SLOTS);
    uint64_t before = hak_ring_no_ring_drops();
    uint64_t seen_before = hak_ace_drops_seen();
    for (int i = 0; i < 5; i++)
        hak_ring_count_no_ring_drop(); /* what Box 2 does for a ringless thread's event */
    assert_int_equal(hak_ring_no_ring_drops(), before + 5);
    /* An OWNED ring stays owned across learner intervals; an ORPHANED one is not reusable
     * until the learner has drained it. */
    hak_ring_orphan(mine[3]);
    assert_null(hak_ring_acquire());
    hak_ace_step();
    assert_int_equal(hak_ace_drops_seen(), seen_before + 5);
    assert_int_equal(count_state(HAK_RING_OWNED), HAK_RING_SLOTS - 1);
    hak_ring_t *again = hak_ring_acquire();
    assert_ptr_equal(again, mine[3]);
    mine[3] = again;
    for (uint32_t i = 0; i < HAK_RING_SLOTS; i++)
        hak_ring_orphan(mine[i]);
    hak_ace_step();
    assert_int_equal(count_state(HAK_RING_FREE), HAK_RING_SLOTS);
}

/* A full ring's drops are counted by the learner too. */
static void ring_full_drops_reach_the_learner(void **state)
{
    (void)state;
    hak_ring_t *r = hak_ring_acquire();
    assert_non_null(r);
    hak_event_t e = {.class_idx = 2, .count = 8, .kind = HAK_EV_REFILL};
    uint64_t d0 = hak_ace_drops_seen(), s0 = hak_ace_events_seen(2);
    for (uint32_t i = 0; i < CAP + 40; i++)
        hak_ring_push(r, &e);
    hak_ace_step();
    assert_int_equal(hak_ace_drops_seen(), d0 + 40);
    assert_int_equal(hak_ace_events_seen(2), s0 + CAP);
    hak_ring_orphan(r);
    hak_ace_step();
}

/* Drops are counted by kind and class, and the learner adds them to the class they belong
 * to: a class whose events were all dropped (the ring was full of another class's) is still
 * seen as hot. */
static void dropped_events_count_for_their_own_class(void **state)
{
    (void)state;
    const unsigned filler = 2, hot = 9; /* 48 B; 192 B (Phase 1 count 64) */
    hak_ace_step();
    uint32_t before = hak_policy_refill_count(hot, hak_fixed_refill_count(hot));
    hak_ring_t *r = hak_ring_acquire();
    assert_non_null(r);
    hak_event_t e = {.class_idx = filler, .count = 8, .kind = HAK_EV_REFILL};
    for (uint32_t i = 0; i < CAP; i++)
        assert_true(hak_ring_push(r, &e));
    e.class_idx = hot;
    e.count = (uint16_t)before;
    for (uint32_t i = 0; i < 5000; i++)
        assert_false(hak_ring_push(r, &e));
    hak_event_t s = {.class_idx = hot, .count = 8, .kind = HAK_EV_SPILL};
    assert_false(hak_ring_push(r, &s));
    assert_int_equal(r->kind_drops[0][hot], 5000);
    assert_int_equal(r->kind_drops[1][hot], 1);
    assert_int_equal(r->kind_drops[0][filler], 0);
    hak_ace_step(); /* 5000 refills in about 1 ms: hot */
    assert_true(hak_policy_refill_count(hot, hak_fixed_refill_count(hot)) > before);
    hak_ring_orphan(r);
    hak_ace_step();
}

/* Threads that exit leave ORPHANED rings; the learner drains and frees them. */
#define NTHREADS 8
static void *short_lived(void *arg)
{
    hak_ring_t *r = hak_ring_acquire();
    if (!r)
        return (void *)1;
    hak_event_t e = {.class_idx = 11, .count = 16, .kind = HAK_EV_SPILL, .list_len = 33};
    for (uintptr_t i = 0; i < (uintptr_t)arg; i++)
        hak_ring_push(r, &e);
    hak_ring_orphan(r); /* Box 2 does this in its thread-exit destructor */
    return NULL;
}

static void exited_threads_leave_orphans_the_learner_frees(void **state)
{
    (void)state;
    uint64_t s0 = hak_ace_events_seen(11);
    pthread_t t[NTHREADS];
    for (uintptr_t i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, short_lived, (void *)(i + 1)), 0);
    for (int i = 0; i < NTHREADS; i++) {
        void *ret;
        pthread_join(t[i], &ret);
        assert_null(ret);
    }
    assert_int_equal(count_state(HAK_RING_ORPHANED), NTHREADS);
    hak_ace_step();
    assert_int_equal(count_state(HAK_RING_ORPHANED), 0);
    assert_int_equal(count_state(HAK_RING_FREE), HAK_RING_SLOTS);
    assert_int_equal(hak_ace_events_seen(11), s0 + NTHREADS * (NTHREADS + 1) / 2);
}

/* Many threads racing for few free slots: no slot is ever handed out twice. */
static int owners[HAK_RING_SLOTS];
static void *racer(void *arg)
{
    (void)arg;
    for (int k = 0; k < 2000; k++) {
        hak_ring_t *r = hak_ring_acquire();
        if (!r)
            continue;
        uint32_t slot = (uint32_t)(r - hak_ring_get(0));
        if (__atomic_fetch_add(&owners[slot], 1, __ATOMIC_RELAXED) != 0)
            return (void *)1; /* someone else holds it too */
        __atomic_fetch_sub(&owners[slot], 1, __ATOMIC_RELAXED);
        hak_ring_orphan(r);
    }
    return NULL;
}

static void concurrent_acquire_is_exclusive(void **state)
{
    (void)state;
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, racer, NULL);
    for (int k = 0; k < 50; k++)
        hak_ace_step(); /* recycles while they race */
    for (int i = 0; i < 4; i++) {
        void *ret;
        pthread_join(t[i], &ret);
        assert_null(ret);
    }
    hak_ace_step();
    assert_int_equal(count_state(HAK_RING_FREE), HAK_RING_SLOTS);
}

/* Through Box 2 with ACE on: a thread takes its ring at its HAK_RING_AFTER_REFILLS-th refill,
 * not before (a short-lived thread costs the registry nothing), and its refills report from
 * then on. Class 0 (16 B), in a fresh thread that nothing else allocates in. */
static void *refills_until_ring(void *arg)
{
    (void)arg;
    enum { MAX = 8192 };
    static void *keep[MAX];
    unsigned n = 0;
    hak_thread_t *t = NULL;
    void *bad = NULL;
    while (n < MAX) {
        keep[n++] = malloc(16);
        t = hak_thread_self();
        uint64_t refills = t->stat[HAK_TSTAT_refills][0];
        if (refills < HAK_RING_AFTER_REFILLS && t->ring) {
            bad = (void *)"ring taken before the threshold";
            break;
        }
        if (refills == HAK_RING_AFTER_REFILLS) {
            if (!t->ring || state_of(t->ring) != HAK_RING_OWNED)
                bad = (void *)"no owned ring at the threshold";
            break;
        }
    }
    if (!bad && t->stat[HAK_TSTAT_refills][0] != HAK_RING_AFTER_REFILLS)
        bad = (void *)"never reached the threshold";
    if (!bad) { /* the next refill reports an event */
        uint64_t events = t->stat[HAK_TSTAT_events][0];
        while (n < MAX && t->stat[HAK_TSTAT_refills][0] == HAK_RING_AFTER_REFILLS)
            keep[n++] = malloc(16);
        if (t->stat[HAK_TSTAT_events][0] != events + 1)
            bad = (void *)"the first refill with a ring raised no event";
    }
    for (unsigned i = 0; i < n; i++)
        free(keep[i]);
    return bad;
}

static void box2_takes_a_ring_after_enough_refills(void **state)
{
    (void)state;
    hak_config.ace = 1;
    pthread_t th;
    void *ret = NULL;
    assert_int_equal(pthread_create(&th, NULL, refills_until_ring, NULL), 0);
    pthread_join(th, &ret);
    hak_config.ace = 0;
    if (ret)
        fail_msg("%s", (const char *)ret);
    hak_ace_step(); /* its ring, orphaned at exit, is drained and freed */
    assert_int_equal(count_state(HAK_RING_FREE), HAK_RING_SLOTS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(before_init_nothing),
        cmocka_unit_test(acquire_orphan_recycle),
        cmocka_unit_test(freed_ring_gives_its_pages_back),
        cmocka_unit_test(exhaustion_and_no_ring_drops),
        cmocka_unit_test(ring_full_drops_reach_the_learner),
        cmocka_unit_test(dropped_events_count_for_their_own_class),
        cmocka_unit_test(exited_threads_leave_orphans_the_learner_frees),
        cmocka_unit_test(concurrent_acquire_is_exclusive),
        cmocka_unit_test(box2_takes_a_ring_after_enough_refills),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
