/* tests/unit/test_ace_policy.c - the ACE policy (box3_ace/policy.c) on synthetic streams.
 *
 * The policy is pure, so these tests close the loop with a tiny model of one Box 2 thread
 * list (refill of `count` blocks on an empty list, the cap and the spill of the list rule of
 * shared_contracts/list_rule.h, or a fixed cap), drive it with a workload per 100 ms interval, feed the resulting statistics
 * to hak_ace_decide, and watch the count: up under demand, down when idle or spilling, steady
 * on a steady stream, always inside the bounds.
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
} sim_t;

static void sim_begin(sim_t *m)
{
    memset(&m->st, 0, sizeof m->st);
    m->in = m->out = 0;
}

static void sim_alloc(sim_t *m, uint32_t count)
{
    if (m->list == 0) {
        if (m->list > m->st.list_hwm)
            m->st.list_hwm = m->list;
        m->list += count;
        m->cap = m->fixed_cap ? m->fixed_cap : hak_list_cap_for(CLS, count, 0);
        m->st.refills++;
        m->st.blocks_refilled += count;
        m->in += count;
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
    }
}

static void sim_end(sim_t *m)
{
    m->st.peak_refills = m->st.refills;
    m->st.churn_blocks = m->in < m->out ? m->in : m->out;
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
    /* 400000 net allocations per 100 ms: 62500 refills/s at 64, hot (>= 4000/s) at every
     * count <= 256 */
    uint16_t prev = r.cs.count;
    for (unsigned i = 0; i < 20; i++) {
        run_interval(&r, i, WL_DEMAND, 400000, 0);
        assert_true(r.cs.count >= prev); /* never down under demand */
        prev = r.cs.count;
    }
    assert_int_equal(r.cs.count, 256);
    assert_int_equal(r.reasons_seen[HAK_ACE_UP_REFILLS], HAK_ACE_UP_REFILLS);
    assert_int_equal(r.changes, 2); /* 64 -> 128 -> 256: doubling, then pinned at max */
}

static void settles_and_holds_steady(void **state)
{
    (void)state;
    run_t r;
    run_init(&r, 4, 1024, 64);
    /* 70000 allocations per interval: hot up to 128 (5500 refills/s), in the dead band at
     * 256 (2700/s) */
    for (unsigned i = 0; i < 10; i++)
        run_interval(&r, i, WL_DEMAND, 70000, 0);
    assert_int_equal(r.cs.count, 256);
    unsigned before = r.changes;
    unsigned long long seed = 42;
    for (unsigned i = 10; i < 110; i++) /* +-20% jitter around the same demand */
        run_interval(&r, i, WL_DEMAND, 56000 + (uint32_t)(tl_rand(&seed) % 28000), 0);
    assert_int_equal(r.changes, before);
    assert_int_equal(r.cs.count, 256);
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
    run_init(&r, 4, 256, 256);
    /* 50 allocations per interval: one refill a second or less, most of a batch unused */
    uint16_t prev = r.cs.count;
    for (unsigned i = 0; i < 200; i++) {
        run_interval(&r, i, WL_DEMAND, 50, 0);
        assert_true(r.cs.count <= prev);
        prev = r.cs.count;
    }
    assert_true(r.cs.count < 64);
    assert_int_equal(r.reasons_seen[HAK_ACE_DOWN_IDLE], HAK_ACE_DOWN_IDLE);
    unsigned settled = r.changes;
    for (unsigned i = 200; i < 300; i++)
        run_interval(&r, i, WL_DEMAND, 50, 0);
    assert_int_equal(r.changes, settled); /* and stays put */
}

static void idle_class_drifts_back_to_start(void **state)
{
    (void)state;
    run_t r;
    run_init(&r, 4, 256, 64);
    for (unsigned i = 0; i < 5; i++) /* a burst of demand takes it to 256 */
        run_interval(&r, i, WL_DEMAND, 400000, 0);
    assert_int_equal(r.cs.count, 256);
    for (unsigned i = 5; i < 100; i++) /* then nothing at all */
        run_interval(&r, i, WL_IDLE, 0, 0);
    assert_int_equal(r.cs.count, 64); /* back to its Phase 1 count, not below */
    /* slow down: a step needs 3 intervals of evidence; 256 -> 64 takes 5 steps */
    run_init(&r, 4, 256, 64);
    r.cs.count = 256;
    for (unsigned i = 0; i < 3 * 5 - 1; i++)
        run_interval(&r, i, WL_IDLE, 0, 0);
    assert_true(r.cs.count > 64);
    run_interval(&r, 14, WL_IDLE, 0, 0);
    assert_int_equal(r.cs.count, 64);
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
    /* hot refills, no churn: up, but not back to the count that churned */
    hak_ace_class_stats_t hot = {.refills = 1000, .peak_refills = 1000, .blocks_refilled = 192000};
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
    assert_int_equal(cs.count, 510);
}

/* The cap of the list rule is 2 * count: bursts larger than the count refill and spill the same blocks; a
 * bigger count is a bigger cap, so the policy goes up until the bursts stop spilling, then
 * holds: the silence that follows is not read as idleness (no drift back down). 1000 bursts
 * of 300 per interval: 50000 refills/s at 64, still 24000/s at 128: hot. */
static void churn_with_cap_following_count_rises_then_holds(void **state)
{
    (void)state;
    run_t r;
    run_init(&r, 4, 1024, 64);
    for (unsigned i = 0; i < 20; i++)
        run_interval(&r, i, WL_BURSTS, 300, 1000);
    assert_true(r.cs.count > 64);
    assert_int_equal(r.reasons_seen[HAK_ACE_UP_CHURN], HAK_ACE_UP_CHURN);
    unsigned settled = r.changes;
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
                                   .list_hwm = 4 * 64 + 1};
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
    assert_int_equal(cs.count, 128);
}

static void producer_consumer_pair_goes_up(void **state)
{
    (void)state;
    hak_ace_params_t p;
    hak_ace_params_default(&p, 4, 256, 0);
    hak_ace_class_state_t cs;
    hak_ace_class_init(&p, CLS, 64, &cs);
    /* producer: 1000 refills per interval (10000/s); consumer: as many blocks out by spills;
     * no thread does both, so no churn: the busiest thread's refill rate decides. */
    hak_ace_class_stats_t st = {.refills = 1000, .peak_refills = 1000, .blocks_refilled = 64000,
                                .spills = 1000, .blocks_spilled = 64000, .churn_blocks = 0,
                                .list_hwm = 129};
    assert_int_equal(hak_ace_decide(&p, CLS, &st, IV_NS, &cs), HAK_ACE_UP_REFILLS);
    assert_int_equal(cs.count, 128);
    /* ... up to flow_bytes per batch (32 KiB: 512 blocks of 64 B, here capped by max 256) */
    for (int i = 0; i < 5; i++)
        hak_ace_decide(&p, CLS, &st, IV_NS, &cs);
    assert_int_equal(cs.count, 256);
    /* A 2 KiB class flows at its start count already (64 * 2 KiB > 32 KiB): it holds there;
     * only churn (the same thread refilling and spilling) takes it higher. */
    unsigned c2k = hak_size_to_class(2048);
    hak_ace_class_init(&p, c2k, 64, &cs);
    for (int i = 0; i < 5; i++)
        assert_int_equal(hak_ace_decide(&p, c2k, &st, IV_NS, &cs), HAK_ACE_HOLD);
    assert_int_equal(cs.count, 64);
    hak_ace_class_stats_t churn = st;
    churn.churn_blocks = 64000;
    assert_int_equal(hak_ace_decide(&p, c2k, &churn, IV_NS, &cs), HAK_ACE_UP_CHURN);
    assert_int_equal(cs.count, 128);
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
    st[5].refills = st[5].peak_refills = 1000; /* 10000/s: hot */
    st[5].blocks_refilled = 64000;
    assert_int_equal(hak_ace_policy_step(&p, st, IV_NS, cs, why), 1);
    assert_int_equal(why[5], HAK_ACE_UP_REFILLS);
    assert_int_equal(cs[5].count, 128);
    assert_string_equal(hak_ace_reason_name(HAK_ACE_UP_REFILLS), "up_refills");
    assert_string_equal(hak_ace_reason_name(HAK_ACE_DOWN_IDLE), "down_idle");
    assert_string_equal(hak_ace_reason_name(HAK_ACE_DOWN_SPILLS), "down_spills");
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
        cmocka_unit_test(producer_consumer_pair_goes_up),
        cmocka_unit_test(respects_bounds),
        cmocka_unit_test(budget_limits_large_classes),
        cmocka_unit_test(step_all_classes_and_reason_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
