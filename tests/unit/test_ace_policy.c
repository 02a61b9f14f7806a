/* tests/unit/test_ace_policy.c - the ACE policy (box3_ace/policy.c) on synthetic streams.
 *
 * The policy is pure, so these tests close the loop with a tiny model of one Box 2 thread
 * list (refill of `count` blocks on an empty list, the cap and the spill of the list rule of
 * shared_contracts/list_rule.h, or a fixed cap), drive it with a workload per 100 ms interval,
 * feed the resulting statistics to hak_ace_decide, and watch the count: up under demand that
 * is worth it, down when idle or spilling, steady on a steady stream, always inside the
 * bounds. Hand-made statistics check the rules for threads without a ring (exit samples) and
 * the park budget.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "box3_ace/policy.h"
#include "shared_contracts/list_rule.h"
#include "testlib.h"

#define IV_NS 100000000ull /* 100 ms */
#define CLS 3u             /* 64 B: budget never binds */

/* ---- a model of one thread's list of one class --------------------------------------- */
typedef struct sim {
    uint32_t list, cap;
    uint32_t fixed_cap; /* 0: the cap of the list rule (Box 1); else this fixed cap */
    hak_ace_class_stats_t st;
    uint64_t in, out;
    uint32_t run; /* refills since the last spill (collect.c's burst tracking) */
    int trim_pending; /* the last trim had no refill after it (collect.c) */
    uint32_t last_refill; /* blocks of the last refill */
} sim_t;

static void sim_begin(sim_t *m)
{
    memset(&m->st, 0, sizeof m->st);
    m->in = m->out = 0;
    m->run = 0;
}

static void sim_alloc(sim_t *m, uint32_t count)
{
    if (m->list == 0) {
        if (m->list > m->st.list_hwm)
            m->st.list_hwm = m->list;
        m->list += count;
        m->cap = m->fixed_cap ? m->fixed_cap : hak_list_cap_for(CLS, count, HAK_LIST_CAP_REFILLS, 0);
        m->st.refills++;
        m->st.blocks_refilled += count;
        m->in += count;
        m->run++;
        m->trim_pending = 0;
        m->last_refill = count;
    }
    m->list--;
}

static void sim_free(sim_t *m)
{
    m->list++;
    if (m->cap && m->list > m->cap) {
        uint32_t n = hak_spill_count(m->cap, m->list);
        if (m->list > m->st.list_hwm)
            m->st.list_hwm = m->list;
        m->st.spills++;
        m->st.blocks_spilled += n;
        m->out += n;
        m->list -= n;
        if (m->run) {
            m->st.bursts++;
            m->st.run_refills += m->run;
            m->run = 0;
        }
    }
}

/* Box 2's idle-list trim (hak_list_trim), one pass per interval: a list that did not refill
 * since the last pass gives back half. A thread whose bursts fit its list refills again after
 * each trim, so a satisfied class still raises an event every other interval. */
static void sim_trim(sim_t *m)
{
    if (m->st.refills || m->list < 2)
        return;
    m->st.trims++;
    m->st.idle_trims += m->trim_pending && 2 * m->list < m->last_refill;
    m->trim_pending = 1;
    m->list -= m->list / 2;
}

static void sim_end(sim_t *m)
{
    sim_trim(m);
    m->st.peak_refills = m->st.refills;
    m->st.peak_trips = m->st.refills + m->st.spills;
    m->st.churn_blocks = m->in < m->out ? m->in : m->out;
    m->st.threads = m->st.peak_trips ? 1 : 0;
    if (!(m->in && m->out))
        m->st.bursts = m->st.run_refills = 0; /* collect.c counts bursts of churning rings */
}

/* Workloads: what one thread does in one interval. */
static void work_demand(sim_t *m, uint32_t count, uint32_t n) /* n net allocations */
{
    for (uint32_t i = 0; i < n; i++)
        sim_alloc(m, count);
}

static void work_bursts(sim_t *m, uint32_t count, uint32_t burst, uint32_t cycles)
{
    for (uint32_t c = 0; c < cycles; c++) {
        for (uint32_t i = 0; i < burst; i++)
            sim_alloc(m, count);
        for (uint32_t i = 0; i < burst; i++)
            sim_free(m);
    }
}

static void work_frees(sim_t *m, uint32_t n) /* a consumer: frees blocks made elsewhere */
{
    if (!m->cap)
        m->cap = 128;
    for (uint32_t i = 0; i < n; i++)
        sim_free(m);
}

enum wl { WL_DEMAND, WL_BURSTS, WL_FREES, WL_IDLE };

typedef struct run {
    hak_ace_params_t p;
    hak_ace_class_state_t cs;
    sim_t m;
    unsigned changes;        /* count changes over the run */
    unsigned last_change;    /* interval of the last change */
    enum hak_ace_reason reasons_seen[8];
} run_t;

static void run_init(run_t *r, uint32_t min, uint32_t max, uint32_t start)
{
    memset(r, 0, sizeof *r);
    hak_ace_params_default(&r->p, min, max, 0);
    hak_ace_class_init(&r->p, CLS, start, &r->cs);
}

/* One interval: run the workload on the model with the current count, decide. */
static enum hak_ace_reason run_interval(run_t *r, unsigned i, enum wl w, uint32_t a, uint32_t b)
{
    sim_begin(&r->m);
    switch (w) {
    case WL_DEMAND: work_demand(&r->m, r->cs.count, a); break;
    case WL_BURSTS: work_bursts(&r->m, r->cs.count, a, b); break;
    case WL_FREES: work_frees(&r->m, a); break;
    case WL_IDLE: break;
    }
    sim_end(&r->m);
    enum hak_ace_reason why = hak_ace_decide(&r->p, CLS, &r->m.st, IV_NS, &r->cs);
    assert_in_range(r->cs.count, hak_ace_class_lo(&r->p, CLS), hak_ace_class_hi(&r->p, CLS));
    if (why != HAK_ACE_HOLD) {
        r->changes++;
        r->last_change = i;
        r->reasons_seen[why] = why;
    }
    return why;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void rises_under_sustained_demand(void **state)
{
    (void)state;
    run_t r;
    run_init(&r, 4, 256, 64);
    /* 6400000 net allocations per 100 ms: 1000000 refills/s at 64, 25% of the thread in trips
     * (at 250 ns each): worth a count where they would cost 1.25%, capped at max */
    uint16_t prev = r.cs.count;
    for (unsigned i = 0; i < 20; i++) {
        run_interval(&r, i, WL_DEMAND, 6400000, 0);
        assert_true(r.cs.count >= prev); /* never down under demand */
        prev = r.cs.count;
    }
    assert_int_equal(r.cs.count, 256);
    assert_int_equal(r.reasons_seen[HAK_ACE_UP_REFILLS], HAK_ACE_UP_REFILLS);
    assert_int_equal(r.changes, 1); /* one step: 64 -> 256 */
    /* 600000 an interval (93750 refills/s, 2.3% in trips) is hot but not worth it: a flow */
    run_init(&r, 4, 256, 64);
    for (unsigned i = 0; i < 20; i++)
        run_interval(&r, i, WL_DEMAND, 600000, 0);
    assert_int_equal(r.changes, 0);
}

static void settles_and_holds_steady(void **state)
{
    (void)state;
    run_t r;
    run_init(&r, 4, 1024, 64);
    /* 1400000 allocations per interval: 218750 refills/s at 64 (5.5% of the thread in trips):
     * up to where they would cost 1.25%, 279 (50000/s, in the dead band) */
    for (unsigned i = 0; i < 10; i++)
        run_interval(&r, i, WL_DEMAND, 1400000, 0);
    assert_int_equal(r.cs.count, 279);
    unsigned before = r.changes;
    unsigned long long seed = 42;
    for (unsigned i = 10; i < 110; i++) /* +-20% jitter around the same demand */
        run_interval(&r, i, WL_DEMAND, 1120000 + (uint32_t)(tl_rand(&seed) % 560000), 0);
    assert_int_equal(r.changes, before);
    assert_int_equal(r.cs.count, 279);
}

static void dead_band_never_moves(void **state)
{
    (void)state;
    run_t r;
    run_init(&r, 4, 256, 64);
    /* 5000 per interval at 64: 780 refills/s, between down (125) and up (4000) */
    for (unsigned i = 0; i < 100; i++)
        run_interval(&r, i, WL_DEMAND, 5000, 0);
    assert_int_equal(r.changes, 0);
    assert_int_equal(r.cs.count, 64);
}

static void falls_when_batches_sit_unused(void **state)
{
    (void)state;
    run_t r;
    run_init(&r, 4, 256, 64);
    r.cs.count = 256;
    /* 50 allocations per interval: one refill a second or less, most of a batch unused: down
     * by quarters to the start count, not below (a class used now and then would start its
     * next busy phase short of its Phase 1 count) */
    uint16_t prev = r.cs.count;
    for (unsigned i = 0; i < 200; i++) {
        run_interval(&r, i, WL_DEMAND, 50, 0);
        assert_true(r.cs.count <= prev);
        prev = r.cs.count;
    }
    assert_int_equal(r.cs.count, 64);
    assert_int_equal(r.reasons_seen[HAK_ACE_DOWN_IDLE], HAK_ACE_DOWN_IDLE);
    unsigned settled = r.changes;
    for (unsigned i = 200; i < 300; i++)
        run_interval(&r, i, WL_DEMAND, 50, 0);
    assert_int_equal(r.changes, settled); /* and stays put */
    /* Below start (lowered by spills: a consumer), demand returns, hot at the low count but
     * not worth more than the prior: back to the start count in one step, no further. */
    r.cs.count = 8;
    run_interval(&r, 300, WL_DEMAND, 20u * 8u * 50u, 0); /* 10000 refills/s at 8 */
    assert_int_equal(r.cs.count, 64);
}

static void idle_class_drifts_back_to_start(void **state)
{
    (void)state;
    run_t r;
    run_init(&r, 4, 256, 64);
    for (unsigned i = 0; i < 5; i++) /* a burst of demand takes it to 256 */
        run_interval(&r, i, WL_DEMAND, 6400000, 0);
    assert_int_equal(r.cs.count, 256);
    for (unsigned i = 5; i < 100; i++) /* then nothing at all */
        run_interval(&r, i, WL_IDLE, 0, 0);
    assert_int_equal(r.cs.count, 64); /* back to its Phase 1 count, not below */
    /* Box 2 trimmed the idle list twice with no refill between: the phase is over, straight
     * back to start, whatever churn floor it left. */
    run_init(&r, 4, 256, 64);
    r.cs.count = 256;
    r.cs.floor = 256;
    hak_ace_class_stats_t trimmed = {.trims = 2, .idle_trims = 1};
    assert_int_equal(hak_ace_decide(&r.p, CLS, &trimmed, IV_NS, &r.cs), HAK_ACE_DOWN_IDLE);
    assert_int_equal(r.cs.count, 64);
    assert_int_equal(r.cs.floor, 0);
    /* Silence alone (no event, not even a trim): slow down, a step needs 3 intervals of
     * evidence, 256 -> 64 takes 5 steps, and a churn floor holds */
    run_init(&r, 4, 256, 64);
    r.cs.count = 256;
    for (unsigned i = 0; i < 3 * 5 - 1; i++)
        run_interval(&r, i, WL_IDLE, 0, 0);
    assert_true(r.cs.count > 64);
    run_interval(&r, 14, WL_IDLE, 0, 0);
    assert_int_equal(r.cs.count, 64);
    run_init(&r, 4, 256, 64);
    r.cs.count = r.cs.floor = 256;
    for (unsigned i = 0; i < 30; i++)
        run_interval(&r, i, WL_IDLE, 0, 0);
    assert_int_equal(r.cs.count, 256);
    /* Follow-up (quick) intervals go up only: idle ones neither count nor reset the streak. */
    run_init(&r, 4, 256, 64);
    r.cs.count = 256;
    run_interval(&r, 0, WL_IDLE, 0, 0);
    r.p.quick = 1;
    for (unsigned i = 1; i < 10; i++)
        assert_int_equal(run_interval(&r, i, WL_IDLE, 0, 0), HAK_ACE_HOLD);
    assert_int_equal(hak_ace_decide(&r.p, CLS, &trimmed, IV_NS, &r.cs), HAK_ACE_HOLD);
    r.p.quick = 0;
    run_interval(&r, 10, WL_IDLE, 0, 0);
    assert_int_equal(r.cs.count, 256);
    assert_int_equal(run_interval(&r, 11, WL_IDLE, 0, 0), HAK_ACE_DOWN_IDLE);
}

static void falls_when_the_class_only_spills(void **state)
{
    (void)state;
    run_t r;
    run_init(&r, 4, 256, 128);
    for (unsigned i = 0; i < 100; i++)
        run_interval(&r, i, WL_FREES, 2000, 0);
    assert_int_equal(r.cs.count, 4);
    assert_int_equal(r.reasons_seen[HAK_ACE_DOWN_SPILLS], HAK_ACE_DOWN_SPILLS);
}

/* Under a fixed cap well above 2 * count (not Box 2 today: its cap is 2 * count), a thread
 * that refills and then spills the same blocks eats headroom under the cap with each refill:
 * step down after repeated evidence, remember the count as a ceiling, and do not go back up to
 * it; hot refills hold instead of going down. */
static void churn_under_fixed_cap_steps_down_with_a_ceiling(void **state)
{
    (void)state;
    hak_ace_params_t p;
    hak_ace_params_default(&p, 4, 1024, 0);
    hak_ace_class_state_t cs;
    hak_ace_class_init(&p, CLS, 256, &cs);
    hak_ace_class_stats_t churn = {.refills = 30, .peak_refills = 30, .blocks_refilled = 7680,
                                   .spills = 15, .blocks_spilled = 7500, .churn_blocks = 7500,
                                   .list_hwm = 1001};
    assert_int_equal(hak_ace_decide(&p, CLS, &churn, IV_NS, &cs), HAK_ACE_HOLD);
    assert_int_equal(hak_ace_decide(&p, CLS, &churn, IV_NS, &cs), HAK_ACE_HOLD);
    assert_int_equal(hak_ace_decide(&p, CLS, &churn, IV_NS, &cs), HAK_ACE_DOWN_SPILLS);
    assert_int_equal(cs.count, 192);
    /* hot refills worth a bigger count, no churn: up, but not back to the count that churned
     * (250000 refills/s of 192: 6.25% of the thread in trips) */
    hak_ace_class_stats_t hot = {.refills = 25000, .peak_refills = 25000, .peak_trips = 25000,
                                 .blocks_refilled = 25000ull * 192};
    assert_int_equal(hak_ace_decide(&p, CLS, &hot, IV_NS, &cs), HAK_ACE_UP_REFILLS);
    assert_int_equal(cs.count, 255);
    assert_int_equal(hak_ace_decide(&p, CLS, &hot, IV_NS, &cs), HAK_ACE_HOLD);
    /* churn while hot: hold, never down */
    churn.refills = churn.peak_refills = 1000;
    churn.blocks_refilled = churn.churn_blocks = churn.blocks_spilled = 100000;
    for (int i = 0; i < 10; i++)
        assert_int_equal(hak_ace_decide(&p, CLS, &churn, IV_NS, &cs), HAK_ACE_HOLD);
    assert_int_equal(cs.count, 255);
    /* hot and clean for a while below the ceiling: the workload changed, the ceiling lifts */
    hak_ace_decide(&p, CLS, &hot, IV_NS, &cs);
    hak_ace_decide(&p, CLS, &hot, IV_NS, &cs);
    assert_int_equal(hak_ace_decide(&p, CLS, &hot, IV_NS, &cs), HAK_ACE_UP_REFILLS);
    assert_int_equal(cs.count, 512); /* 960 would cost 1.25%; flows stop at 32 KiB batches */
}

/* The cap of the list rule is 2 * count by default: bursts larger than the count refill and spill the same blocks; a
 * bigger count is a bigger cap, so the policy goes up until the bursts stop spilling, then
 * holds: the silence that follows is not read as idleness (no drift back down). 1000 bursts
 * of 300 per interval: 50000 refills/s at 64, hot; the bursts seen tell their depth, so one
 * step ends the churn. */
static void churn_with_cap_following_count_rises_then_holds(void **state)
{
    (void)state;
    run_t r;
    run_init(&r, 4, 1024, 64);
    for (unsigned i = 0; i < 20; i++)
        run_interval(&r, i, WL_BURSTS, 300, 1000);
    if (r.cs.count <= 64) /* the spills stop below: the count reached the bursts' depth */
        fail_msg("count %u after 20 intervals of bursts of 300", r.cs.count);
    assert_int_equal(r.reasons_seen[HAK_ACE_UP_CHURN], HAK_ACE_UP_CHURN);
    unsigned settled = r.changes;
    assert_int_equal(settled, 1);
    uint16_t c = r.cs.count;
    for (unsigned i = 20; i < 120; i++) {
        run_interval(&r, i, WL_BURSTS, 300, 1000);
        assert_int_equal(r.m.st.spills, 0); /* the churn is gone */
    }
    assert_int_equal(r.changes, settled);
    assert_int_equal(r.cs.count, c);
    /* a second thread of the same shape, starting empty, settles at this count too */
    sim_t fresh = {0};
    r.m = fresh;
    for (unsigned i = 120; i < 220; i++)
        run_interval(&r, i, WL_BURSTS, 300, 1000);
    assert_true(r.changes <= settled + 2);
    /* The bursts stop: the trims find the list unused, and the count goes back to start at
     * once, churn floor or not (it would hold for barrier_hold intervals on silence). */
    for (unsigned i = 220; i < 230; i++)
        run_interval(&r, i, WL_IDLE, 0, 0);
    assert_int_equal(r.cs.count, 64);
    assert_int_equal(r.reasons_seen[HAK_ACE_DOWN_IDLE], HAK_ACE_DOWN_IDLE);
    /* Bursts of 60000 (a program that builds a big structure, then frees it): no count up to
     * hi ends that churn, and its trips (9400 refills/s, 0.5% of the thread) are not worth
     * colder lists: the count holds. */
    run_init(&r, 4, 1024, 64);
    for (unsigned i = 0; i < 30; i++)
        run_interval(&r, i, WL_BURSTS, 60000, 1);
    assert_int_equal(r.reasons_seen[HAK_ACE_UP_CHURN], 0);
    assert_true(r.cs.count <= 64);
    /* The same depth, churned so fast that its trips cost 10% of the thread: no count up to hi
     * ends it either, and a bigger one only lengthens each trip's walk over the blocks (its
     * blocks go back one by one however many a trip takes: `locality` ran at 0.89x of fixed
     * counts while ACE raised them): the count holds. */
    hak_ace_class_stats_t deep = {.refills = 20000, .peak_refills = 20000, .spills = 20000,
                                  .peak_trips = 40000, .blocks_refilled = 20000 * 64,
                                  .blocks_spilled = 20000 * 64, .churn_blocks = 20000 * 64,
                                  .bursts = 20, .run_refills = 20000, .list_hwm = 129,
                                  .threads = 1};
    hak_ace_params_t dp;
    hak_ace_params_default(&dp, 4, 1024, 0);
    hak_ace_class_state_t dcs;
    hak_ace_class_init(&dp, CLS, 64, &dcs);
    for (int i = 0; i < 10; i++)
        assert_int_equal(hak_ace_decide(&dp, CLS, &deep, IV_NS, &dcs), HAK_ACE_HOLD);
    assert_int_equal(dcs.count, 64);
    /* The same churn at 250 refills/s (5 bursts per interval) costs too little to be worth a
     * bigger list: the count never rises. */
    run_init(&r, 4, 1024, 64);
    for (unsigned i = 0; i < 50; i++) {
        run_interval(&r, i, WL_BURSTS, 300, 5);
        assert_true(r.cs.count <= 64);
    }
    assert_int_equal(r.reasons_seen[HAK_ACE_UP_CHURN], 0);
}

/* The cap rule is one function (shared_contracts/list_rule.h) that Box 1 applies and the policy
 * reads: change it, and ACE reads the same events differently. Hot churn whose spills show a
 * list length of 4 * count + 1 comes from lists whose cap followed the count under a rule of
 * four refills' worth: a bigger count helps (up_churn). Under the default rule of two, the
 * same length says the cap is fixed above the count's cap, and a hot class then holds. */
static void follows_the_shared_cap_rule(void **state)
{
    (void)state;
    hak_ace_params_t p;
    hak_ace_params_default(&p, 4, 1024, 0);
    hak_ace_class_stats_t churn = {.refills = 500, .peak_refills = 500, .blocks_refilled = 32000,
                                   .spills = 250, .blocks_spilled = 32000, .churn_blocks = 32000,
                                   .list_hwm = 4 * 64 + 1, .bursts = 250, .run_refills = 500,
                                   .threads = 1, .peak_trips = 750};
    hak_list_rule_t saved = hak_list_rule;
    hak_ace_class_state_t cs;

    hak_ace_class_init(&p, CLS, 64, &cs);
    for (int i = 0; i < 5; i++)
        assert_int_equal(hak_ace_decide(&p, CLS, &churn, IV_NS, &cs), HAK_ACE_HOLD);
    assert_int_equal(cs.count, 64);

    hak_list_rule.cap_refills = 4;
    hak_ace_class_init(&p, CLS, 64, &cs);
    enum hak_ace_reason r = hak_ace_decide(&p, CLS, &churn, IV_NS, &cs);
    hak_list_rule = saved;
    assert_int_equal(r, HAK_ACE_UP_CHURN);
    assert_true(cs.count > 64);
}

static void producer_consumer_pair_goes_up_when_worth_it(void **state)
{
    (void)state;
    hak_ace_params_t p;
    hak_ace_params_default(&p, 4, 1024, 0);
    hak_ace_class_state_t cs;
    hak_ace_class_init(&p, CLS, 64, &cs);
    /* producer: 1000 refills per interval (10000/s); consumer: as many blocks out by spills;
     * no thread does both, so no churn: a bigger count would save only part of 0.25% of the
     * producer's time: hold. */
    hak_ace_class_stats_t st = {.refills = 1000, .peak_refills = 1000, .peak_trips = 1000,
                                .blocks_refilled = 64000, .spills = 1000,
                                .blocks_spilled = 64000, .churn_blocks = 0, .list_hwm = 129};
    for (int i = 0; i < 5; i++)
        assert_int_equal(hak_ace_decide(&p, CLS, &st, IV_NS, &cs), HAK_ACE_HOLD);
    /* 25000 refills per interval (250000/s, 6.25% of the producer): up to where they would
     * cost 1.25%, 320; the same evidence again gives the same target (hold). */
    st.refills = st.peak_refills = st.peak_trips = st.spills = 25000;
    st.blocks_refilled = st.blocks_spilled = 25000ull * 64;
    assert_int_equal(hak_ace_decide(&p, CLS, &st, IV_NS, &cs), HAK_ACE_UP_REFILLS);
    assert_int_equal(cs.count, 320);
    for (int i = 0; i < 5; i++)
        assert_int_equal(hak_ace_decide(&p, CLS, &st, IV_NS, &cs), HAK_ACE_HOLD);
    /* ... and never past flow_bytes per batch (32 KiB: 512 blocks of 64 B) */
    st.refills = st.peak_refills = st.peak_trips = st.spills = 100000;
    st.blocks_refilled = st.blocks_spilled = 100000ull * 320;
    assert_int_equal(hak_ace_decide(&p, CLS, &st, IV_NS, &cs), HAK_ACE_UP_REFILLS);
    assert_int_equal(cs.count, 512);
    /* A 2 KiB class flows at its start count already (64 * 2 KiB > 32 KiB): it holds there;
     * only churn (the same thread refilling and spilling) takes it higher. */
    unsigned c2k = hak_size_to_class(2048);
    hak_ace_class_init(&p, c2k, 64, &cs);
    for (int i = 0; i < 5; i++)
        assert_int_equal(hak_ace_decide(&p, c2k, &st, IV_NS, &cs), HAK_ACE_HOLD);
    assert_int_equal(cs.count, 64);
    hak_ace_class_stats_t churn = st;
    churn.refills = churn.peak_refills = churn.peak_trips = churn.spills = 10000;
    churn.blocks_refilled = churn.blocks_spilled = churn.churn_blocks = 640000; /* at 64 */
    churn.bursts = 5000;
    churn.run_refills = 10000; /* two refills a burst: 192 deep, 216 with an eighth to spare */
    assert_int_equal(hak_ace_decide(&p, c2k, &churn, IV_NS, &cs), HAK_ACE_UP_CHURN);
    assert_int_equal(cs.count, 216);
}

static void respects_bounds(void **state)
{
    (void)state;
    static const enum wl wls[] = {WL_DEMAND, WL_BURSTS, WL_FREES, WL_IDLE};
    static const uint32_t bounds[][2] = {{4, 256}, {16, 32}, {32, 32}, {1, 1}, {100, 1024}};
    for (unsigned b = 0; b < sizeof bounds / sizeof bounds[0]; b++) {
        for (unsigned w = 0; w < 4; w++) {
            run_t r;
            run_init(&r, bounds[b][0], bounds[b][1], 64);
            assert_in_range(r.cs.count, bounds[b][0], bounds[b][1]); /* start clamped */
            for (unsigned i = 0; i < 80; i++) /* run_interval asserts the bounds each time */
                run_interval(&r, i, wls[w], w == WL_BURSTS ? 700 : 100000, 3);
            if (bounds[b][0] == bounds[b][1])
                assert_int_equal(r.cs.count, bounds[b][0]);
        }
    }
    /* A count outside the bounds (a test publish, a changed config) is clamped back. */
    run_t r;
    run_init(&r, 8, 64, 32);
    r.cs.count = 500;
    assert_int_equal(run_interval(&r, 0, WL_IDLE, 0, 0), HAK_ACE_CLAMP);
    assert_int_equal(r.cs.count, 64);
}

static void budget_limits_large_classes(void **state)
{
    (void)state;
    hak_ace_params_t p;
    hak_ace_params_default(&p, 4, 256, 1024 * 1024); /* HAKMEM_TCACHE_MAX_KIB=1024 */
    assert_int_equal(hak_ace_class_hi(&p, 39), 16);   /* 32 KiB: 2 * 16 * 32 KiB = 1 MiB */
    assert_int_equal(hak_ace_class_hi(&p, 27), 128);  /* 4 KiB */
    assert_int_equal(hak_ace_class_hi(&p, 0), 256);   /* 16 B: the max binds */
    hak_ace_class_state_t cs;
    hak_ace_class_init(&p, 39, 16, &cs);
    hak_ace_class_stats_t hot = {.refills = 5000, .peak_refills = 5000, .blocks_refilled = 80000,
                                 .blocks_spilled = 80000, .churn_blocks = 80000, .list_hwm = 33};
    for (int i = 0; i < 10; i++)
        hak_ace_decide(&p, 39, &hot, IV_NS, &cs);
    assert_int_equal(cs.count, 16);
    hak_ace_params_default(&p, 64, 256, 1024 * 1024); /* min above the budget: min wins */
    assert_int_equal(hak_ace_class_hi(&p, 39), 64);
}

static void step_all_classes_and_reason_names(void **state)
{
    (void)state;
    hak_ace_params_t p;
    hak_ace_params_default(&p, 4, 256, 0);
    hak_ace_class_state_t cs[HAK_NUM_CLASSES];
    hak_ace_class_stats_t st[HAK_NUM_CLASSES];
    enum hak_ace_reason why[HAK_NUM_CLASSES];
    memset(st, 0, sizeof st);
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
        hak_ace_class_init(&p, c, 64, &cs[c]);
    st[5].refills = st[5].peak_refills = st[5].peak_trips = 25000; /* 250000/s: worth it */
    st[5].blocks_refilled = 25000ull * 64;
    assert_int_equal(hak_ace_policy_step(&p, st, IV_NS, cs, why), 1);
    assert_int_equal(why[5], HAK_ACE_UP_REFILLS);
    assert_int_equal(cs[5].count, 256); /* 320 would cost 1.25%; the max is 256 */
    static const char *const names[] = {"hold", "up_refills", "up_churn", "down_idle",
                                        "down_spills", "clamp", "up_short", "down_short",
                                        "down_budget"};
    for (unsigned r = 0; r < HAK_ACE_REASONS; r++)
        assert_string_equal(hak_ace_reason_name((enum hak_ace_reason)r), names[r]);
}

/* Threads that exit before they take a ring leave exit samples (shared_contracts/ace_summary.h).
 * 32 of them each refilled a class once at 64 and handed out 40 blocks: the count comes down
 * to a quarter of that at once (no ring has found the class hot); while one refill each
 * still suffices, a quarter again, down to min; once threads refill 2 times each, it holds.
 * Four refills each: twice their batch. A ring that finds the class hot wins over them. */
static void short_lived_threads_set_the_count(void **state)
{
    (void)state;
    hak_ace_params_t p;
    hak_ace_params_default(&p, 4, 1024, 0);
    hak_ace_class_state_t cs;
    hak_ace_class_init(&p, CLS, 64, &cs);
    hak_ace_class_stats_t few = {.short_threads = 32, .short_refills = 32,
                                 .short_blocks_in = 32 * 64, .short_used = 32 * 40};
    assert_int_equal(hak_ace_decide(&p, CLS, &few, IV_NS, &cs), HAK_ACE_DOWN_SHORT);
    assert_int_equal(cs.count, 10);
    few.short_blocks_in = 32 * 10; /* the next threads refill 10 once: a quarter, min 4 */
    assert_int_equal(hak_ace_decide(&p, CLS, &few, IV_NS, &cs), HAK_ACE_DOWN_SHORT);
    assert_int_equal(cs.count, 4);
    few.short_refills = 64; /* at 4 they need two refills each: enough, hold */
    few.short_blocks_in = 64 * 4;
    for (int i = 0; i < 20; i++)
        assert_int_equal(hak_ace_decide(&p, CLS, &few, IV_NS, &cs), HAK_ACE_HOLD);
    assert_int_equal(cs.count, 4);
    /* too few samples (under short_min): the short-thread rules stay out of it */
    hak_ace_class_init(&p, CLS, 64, &cs);
    hak_ace_class_stats_t three = few;
    three.short_threads = three.short_refills = 3;
    three.short_blocks_in = 3 * 64;
    three.short_used = 3 * 18;
    for (int i = 0; i < 10; i++)
        assert_true(hak_ace_decide(&p, CLS, &three, IV_NS, &cs) != HAK_ACE_DOWN_SHORT);
    /* four refills each of 64: up to twice their batch */
    hak_ace_class_init(&p, CLS, 64, &cs);
    hak_ace_class_stats_t many = {.short_threads = 32, .short_refills = 32 * 4,
                                  .short_blocks_in = 32 * 4 * 64, .short_used = 32 * 250};
    assert_int_equal(hak_ace_decide(&p, CLS, &many, IV_NS, &cs), HAK_ACE_UP_SHORT);
    assert_int_equal(cs.count, 128);
    assert_int_equal(hak_ace_decide(&p, CLS, &many, IV_NS, &cs), HAK_ACE_HOLD); /* same evidence */
    /* a long-lived thread finds the class hot (churn): the samples do not pull it down */
    hak_ace_class_init(&p, CLS, 64, &cs);
    hak_ace_class_stats_t mixed = few;
    mixed.refills = mixed.peak_refills = 2000; /* 20000 refills/s */
    mixed.spills = 2000;
    mixed.peak_trips = 4000;
    mixed.blocks_refilled = mixed.blocks_spilled = mixed.churn_blocks = 2000 * 64;
    mixed.list_hwm = 129;
    mixed.bursts = 1000;
    mixed.run_refills = 2000;
    for (int i = 0; i < 10; i++) {
        enum hak_ace_reason r = hak_ace_decide(&p, CLS, &mixed, IV_NS, &cs);
        assert_true(r != HAK_ACE_DOWN_SHORT);
    }
    assert_true(cs.count > 64);
}

/* The park budget spans classes: raised counts may park at most park_budget bytes (threads x
 * extra cap x size); past it, the class that saves the fewest trips per byte comes down first,
 * by halves, and an up that would break it is cut back. Budget 0: no raise survives. */
static void park_budget_brings_down_the_least_useful(void **state)
{
    (void)state;
    hak_ace_params_t p;
    hak_ace_params_default(&p, 4, 1024, 8u << 20); /* HAKMEM_TCACHE_MAX_KIB=8192 */
    p.park_budget = 4u << 20;
    hak_ace_class_state_t cs[HAK_NUM_CLASSES];
    hak_ace_class_stats_t st[HAK_NUM_CLASSES];
    enum hak_ace_reason why[HAK_NUM_CLASSES];
    memset(st, 0, sizeof st);
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
        hak_ace_class_init(&p, c, hak_default_refill[c], &cs[c]);
    const unsigned small = 3, big = 37; /* 64 B at 64, 24 KiB at 16 */
    cs[small].count = 512; /* parks (1024 - 128) * 64 B = 56 KiB */
    cs[small].saved = 100000;
    cs[small].threads = 1;
    cs[big].count = 170; /* parks 2 threads x (340 - 32) x 24 KiB = 14.4 MiB */
    cs[big].saved = 100000;
    cs[big].threads = 2;
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) /* both busy: no idle evidence */
        st[c].refills = st[c].peak_refills = st[c].peak_trips = 100;
    st[small].blocks_refilled = 100 * 512;
    st[big].blocks_refilled = 100 * 170;
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
        st[c].threads = cs[c].threads;
    hak_ace_policy_step(&p, st, IV_NS, cs, why);
    assert_int_equal(why[big], HAK_ACE_DOWN_BUDGET);
    assert_int_equal(cs[big].count, 42); /* 170 -> 85 -> 42: 2 x (84 - 32) x 24 KiB = 2.4 MiB */
    assert_int_equal(why[small], HAK_ACE_HOLD);
    assert_int_equal(cs[small].count, 512);
    uint64_t total = 0;
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
        total += hak_ace_parked_bytes(&p, c, &cs[c]);
    assert_true(total <= p.park_budget);
    /* an up the budget cannot afford is cut back: hot churn of the 24 KiB class from 16 */
    hak_ace_class_init(&p, big, 16, &cs[big]);
    memset(&st[big], 0, sizeof st[big]);
    st[big].refills = st[big].peak_refills = st[big].spills = 20000;
    st[big].peak_trips = 40000; /* 10% of the thread in trips */
    st[big].blocks_refilled = st[big].blocks_spilled = st[big].churn_blocks = 20000 * 16;
    st[big].bursts = 2500;
    st[big].run_refills = 20000; /* 8 refills a burst: 144 deep, which 162 holds (hi 170) */
    st[big].list_hwm = 33;
    st[big].threads = 2;
    p.park_budget = 3u << 20; /* 162 would park 13.7 MiB, 81 6.1 MiB, 40 2.25 MiB */
    hak_ace_policy_step(&p, st, IV_NS, cs, why);
    assert_int_equal(why[big], HAK_ACE_UP_CHURN); /* granted in part */
    assert_true(cs[big].count > 16 && cs[big].count < 170);
    assert_true(hak_ace_parked_bytes(&p, big, &cs[big]) +
                    hak_ace_parked_bytes(&p, small, &cs[small]) <=
                p.park_budget);
    /* budget 0: every raised class back to its start count */
    p.park_budget = 0;
    hak_ace_policy_step(&p, st, IV_NS, cs, why);
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
        assert_true(cs[c].count <= cs[c].start);
    assert_int_equal(why[small], HAK_ACE_DOWN_BUDGET);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rises_under_sustained_demand),
        cmocka_unit_test(settles_and_holds_steady),
        cmocka_unit_test(dead_band_never_moves),
        cmocka_unit_test(falls_when_batches_sit_unused),
        cmocka_unit_test(idle_class_drifts_back_to_start),
        cmocka_unit_test(falls_when_the_class_only_spills),
        cmocka_unit_test(churn_under_fixed_cap_steps_down_with_a_ceiling),
        cmocka_unit_test(churn_with_cap_following_count_rises_then_holds),
        cmocka_unit_test(follows_the_shared_cap_rule),
        cmocka_unit_test(producer_consumer_pair_goes_up_when_worth_it),
        cmocka_unit_test(respects_bounds),
        cmocka_unit_test(budget_limits_large_classes),
        cmocka_unit_test(step_all_classes_and_reason_names),
        cmocka_unit_test(short_lived_threads_set_the_count),
        cmocka_unit_test(park_budget_brings_down_the_least_useful),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
