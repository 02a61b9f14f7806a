/* box3_ace/policy.h - ACE's decision rule: a pure function from one interval's per-class
 * statistics to new refill counts. No globals, no clock, no I/O: the learner feeds it, and the
 * unit tests feed it synthetic streams (tests/unit/test_ace_policy.c).
 *
 * Invariants (after every hak_ace_policy_step, for every class c)
 *   - lo <= count <= hi, where lo = params.min and
 *     hi = max(lo, min(params.max, hak_list_max_refill(c, params.budget_bytes)))  (budget 0:
 *     none): the largest count whose list cap (shared_contracts/list_rule.h) fits the budget.
 *     min == max pins every class to that value.
 *   - The memory the raised counts may park, sum over classes of
 *     threads(c) * (list_cap(count) - list_cap(start)) * size(c) for the classes above their
 *     start, is at most params.park_budget: hak_ace_policy_step brings down the raised classes
 *     whose trips saved per byte parked are lowest until it is.
 *   - Up needs the busiest thread to pay for its central trips: churn (a thread refills and
 *     spills the same blocks) at >= up_rate refills/s, where a big enough count ends the churn
 *     and with it both the trips and the blocks they move; otherwise (blocks flow between
 *     threads, or churn no count up to hi can end) only the fixed cost of a trip is saved, and
 *     up needs trips * trip_ns >= worth_ppm of that thread's time. Flows stop at
 *     max(start, params.flow_bytes / class size).
 *   - A raised class whose short list Box 1 trims a second time with no refill between goes
 *     straight back to start (its phase is over); other down evidence steps by
 *     max(1, count / 4) after down_after intervals, never below a churn floor. A quick
 *     (follow-up) interval only goes up.
 *   - up_rate >= 8 * down_rate is assumed (hak_ace_params_default): a step never lands on the
 *     other side of the dead band, and a steady stream settles and stays settled.
 * See docs/ACE.md for why each rule exists.
 */
#ifndef HAK_ACE_POLICY_H
#define HAK_ACE_POLICY_H

#include <stdint.h>

#include "shared_contracts/size_classes.h"

/* One class, one interval, summed over every ring the learner collected, plus the summary of
 * threads that had no ring (shared_contracts/ace_summary.h). */
typedef struct hak_ace_class_stats {
    uint32_t refills;         /* HAK_EV_REFILL events */
    uint32_t spills;          /* HAK_EV_SPILL events */
    uint64_t blocks_refilled; /* sum of count over refill events */
    uint64_t blocks_spilled;  /* sum of count over spill events */
    uint32_t peak_refills;    /* refills of the busiest single thread (ring) */
    uint32_t peak_trips;      /* refills + spills of the thread with the most of both */
    uint64_t churn_blocks;    /* sum over threads of min(blocks refilled, blocks spilled) */
    uint32_t list_hwm;        /* largest list_len in any event: at a spill, the cap + 1 */
    /* Burst shape, from the order of collected events: on rings that refilled and spilled this
     * class, `bursts` runs of refills ended by a spill, holding `run_refills` refills. */
    uint32_t bursts;
    uint32_t run_refills;
    uint32_t threads;         /* rings with an event of this class */
    /* Box 1's idle-list trims of this class (reported by Box 2's hak_give), and those that
     * followed a trim of the same thread's list with no refill between, on a list shorter
     * than half that thread's last refill (collect.c): the list held more than the thread
     * used for two trim passes. */
    uint32_t trims;
    uint32_t idle_trims;
    /* Exit samples of threads that never had a ring and refilled this class: how many, and
     * the sums of their whole-life refills, blocks refilled and blocks used (ace_summary.h). */
    uint32_t short_threads;
    uint64_t short_refills;
    uint64_t short_blocks_in;
    uint64_t short_used;
} hak_ace_class_stats_t;

/* Learner-private state of one class, carried from interval to interval. */
typedef struct hak_ace_class_state {
    uint16_t count;       /* the count in force (published) */
    uint16_t start;       /* the Phase 1 count clamped to the bounds: where idle classes rest */
    uint16_t streak;      /* consecutive intervals of down evidence */
    uint8_t win_spills;   /* a spill happened during the streak */
    uint16_t up_streak;   /* consecutive hot intervals held back by the ceiling */
    uint16_t ceiling;     /* 0, or a count that churned under a fixed cap: up stays below it */
    uint16_t floor;       /* 0, or the count up_churn reached: down stays at or above it */
    uint16_t barrier_age; /* intervals since ceiling/floor were set */
    uint16_t threads;     /* threads that use the class (a slowly decaying maximum) */
    uint16_t cool;        /* intervals since the class was last hot on a ring */
    uint32_t saved;       /* trips/s of the busiest thread when the count last rose */
} hak_ace_class_state_t;

typedef struct hak_ace_params {
    uint32_t min, max;       /* POOL_ACE_MIN, POOL_ACE_MAX */
    uint64_t budget_bytes;   /* a list's cap in bytes stays within this (HAKMEM_TCACHE_MAX_KIB);
                              * 0 = none */
    uint64_t park_budget;    /* bytes the raised counts may park in all (POOL_ACE_BUDGET_MIB) */
    uint32_t up_rate;        /* busiest thread's refills per second at which churn goes up */
    uint32_t trip_ns;        /* what one refill or spill trip costs, for the worth test */
    uint32_t worth_ppm;      /* trips must cost this share of a thread to raise without churn */
    uint32_t flow_bytes;     /* up without churn stops at max(start, flow_bytes / size) */
    uint32_t down_rate;      /* below this, a batch outlives 1/down_rate s: evidence for down */
    uint32_t down_after;     /* intervals of evidence before one step down */
    uint32_t barrier_hold;   /* intervals a churn ceiling/floor lasts */
    uint32_t short_min;      /* exit samples of a class needed to act on them */
    uint32_t quick;          /* nonzero: a follow-up interval (learner.c): up rules only, and
                              * down evidence neither counts nor resets */
} hak_ace_params_t;

enum hak_ace_reason {
    HAK_ACE_HOLD = 0,
    HAK_ACE_UP_REFILLS, /* the busiest thread's trips cost more than worth_ppm (blocks flow) */
    HAK_ACE_UP_CHURN,   /* threads refill and spill the same blocks, cap follows the count */
    HAK_ACE_DOWN_IDLE,  /* batches sit unused (refill rate < down_rate), or class idle */
    HAK_ACE_DOWN_SPILLS,/* the class spills (churn under a fixed cap, or spills only) */
    HAK_ACE_CLAMP,      /* the count was outside [lo, hi] */
    HAK_ACE_UP_SHORT,   /* threads without a ring refill the class many times each */
    HAK_ACE_DOWN_SHORT, /* threads without a ring leave most of their one batch unused */
    HAK_ACE_DOWN_BUDGET,/* the raised counts parked more than park_budget: the least useful */
    HAK_ACE_REASONS
};

/* Counts never exceed this (== HAK_REFILL_MAX of policy_table.h, which readers clamp to). */
#define HAK_ACE_COUNT_LIMIT 1024u

#define HAK_ACE_UP_RATE 4000u   /* refills/s of one thread: ~0.1-0.2% of a core in central trips */
#define HAK_ACE_DOWN_RATE 125u  /* <= up_rate / 8: the dead band lies between */
#define HAK_ACE_TRIP_NS 250u    /* lock, policy read, event, a few blocks: one trip, measured */
#define HAK_ACE_WORTH_PPM 50000u /* 5% of a thread in trips, to raise without endable churn */
#define HAK_ACE_FLOW_BYTES (32u * 1024u) /* the largest batch worth passing between threads */
#define HAK_ACE_DOWN_AFTER 3u   /* "slow down": three intervals of evidence */
#define HAK_ACE_BARRIER_HOLD 300u /* 30 s at the default 100 ms interval */
#define HAK_ACE_SHORT_MIN 4u    /* exit samples per interval before the short-thread rules act */
#define HAK_ACE_PARK_NONE UINT64_MAX /* park_budget: no limit */

const char *hak_ace_reason_name(enum hak_ace_reason r);

/* Defaults above, with the given bounds and per-thread budget; park_budget = none. */
void hak_ace_params_default(hak_ace_params_t *p, uint32_t min, uint32_t max,
                            uint64_t budget_bytes);

/* The bounds [lo, hi] of class c under p. */
uint32_t hak_ace_class_lo(const hak_ace_params_t *p, unsigned c);
uint32_t hak_ace_class_hi(const hak_ace_params_t *p, unsigned c);

/* The cap Box 1 gives a thread list of class c refilled at `count`: the list rule of
 * shared_contracts/list_rule.h (hak_list_cap_for) under p's budget. */
uint32_t hak_ace_list_cap(const hak_ace_params_t *p, unsigned c, uint32_t count);

/* Bytes a class at st->count may park beyond its start count, over st->threads threads. */
uint64_t hak_ace_parked_bytes(const hak_ace_params_t *p, unsigned c,
                              const hak_ace_class_state_t *st);

/* Initial state of class c: count = start = `fixed` clamped to the class bounds. */
void hak_ace_class_init(const hak_ace_params_t *p, unsigned c, uint32_t fixed,
                        hak_ace_class_state_t *st);

/* One interval of interval_ns for class c: updates *st (st->count is the new count) and
 * returns why. HAK_ACE_HOLD means the count did not change. The park budget is not applied
 * here (it spans classes): see hak_ace_policy_step. */
enum hak_ace_reason hak_ace_decide(const hak_ace_params_t *p, unsigned c,
                                   const hak_ace_class_stats_t *s, uint64_t interval_ns,
                                   hak_ace_class_state_t *st);

/* All classes at once, then the park budget; reasons[] may be NULL. Returns how many counts
 * changed. */
unsigned hak_ace_policy_step(const hak_ace_params_t *p,
                             const hak_ace_class_stats_t stats[HAK_NUM_CLASSES],
                             uint64_t interval_ns, hak_ace_class_state_t state[HAK_NUM_CLASSES],
                             enum hak_ace_reason reasons[HAK_NUM_CLASSES]);

#endif
