/* box3_ace/policy.h - ACE's decision rule: a pure function from one interval's per-class
 * statistics to new refill counts. No globals, no clock, no I/O: the learner feeds it, and the
 * unit tests feed it synthetic streams (tests/unit/test_ace_policy.c).
 *
 * Invariants (after every hak_ace_policy_step, for every class c)
 *   - lo <= count <= hi, where lo = params.min and
 *     hi = max(lo, min(params.max, hak_list_max_refill(c, params.budget_bytes)))  (budget 0:
 *     none): the largest count whose list cap (shared_contracts/list_rule.h) fits the budget.
 *     min == max pins every class to that value.
 *   - Up is a doubling (capped at hi, and below a churn ceiling); down is one step of
 *     max(1, count / 4), and only after params.down_after consecutive intervals of evidence.
 *   - Up needs the busiest thread to refill at >= up_rate: below that, central trips cost
 *     too little to be worth the memory a larger list holds. Up without churn (blocks that
 *     flow from one thread to another) stops at max(start, params.flow_bytes / class size):
 *     a bigger batch then only enlarges the working set that circulates.
 *   - up_rate >= 8 * down_rate is assumed (hak_ace_params_default): one step up or down moves a
 *     thread's refill rate by at most 2x, so a move never lands on the other side of the dead
 *     band, and a steady stream settles and stays settled.
 * See docs/ACE.md for why each rule exists.
 */
#ifndef HAK_ACE_POLICY_H
#define HAK_ACE_POLICY_H

#include <stdint.h>

#include "shared_contracts/size_classes.h"

/* One class, one interval, summed over every ring the learner drained. */
typedef struct hak_ace_class_stats {
    uint32_t refills;         /* HAK_EV_REFILL events */
    uint32_t spills;          /* HAK_EV_SPILL events */
    uint64_t blocks_refilled; /* sum of count over refill events */
    uint64_t blocks_spilled;  /* sum of count over spill events */
    uint32_t peak_refills;    /* refills of the busiest single thread (ring) */
    uint64_t churn_blocks;    /* sum over threads of min(blocks refilled, blocks spilled) */
    uint32_t list_hwm;        /* largest list_len in any event: at a spill, the cap + 1 */
} hak_ace_class_stats_t;

/* Learner-private state of one class, carried from interval to interval. */
typedef struct hak_ace_class_state {
    uint16_t count;       /* the count in force (published) */
    uint16_t start;       /* the Phase 1 count clamped to the bounds: where idle classes rest */
    uint16_t streak;      /* consecutive intervals of down evidence */
    uint8_t win_active;   /* an event happened during the streak */
    uint8_t win_spills;   /* a spill happened during the streak */
    uint16_t up_streak;   /* consecutive hot intervals held back by the ceiling */
    uint16_t ceiling;     /* 0, or a count that churned under a fixed cap: up stays below it */
    uint16_t floor;       /* 0, or the count up_churn reached: down stays at or above it */
    uint16_t barrier_age; /* intervals since ceiling/floor were set */
} hak_ace_class_state_t;

typedef struct hak_ace_params {
    uint32_t min, max;       /* POOL_ACE_MIN, POOL_ACE_MAX */
    uint64_t budget_bytes;   /* a list's cap in bytes stays within this (HAKMEM_TCACHE_MAX_KIB);
                              * 0 = none */
    uint32_t up_rate;        /* busiest thread's refills per second at which the count rises */
    uint32_t flow_bytes;     /* up without churn stops at max(start, flow_bytes / size) */
    uint32_t down_rate;      /* below this, a batch outlives 1/down_rate s: evidence for down */
    uint32_t down_after;     /* intervals of evidence before one step down */
    uint32_t barrier_hold;   /* intervals a churn ceiling/floor lasts */
} hak_ace_params_t;

enum hak_ace_reason {
    HAK_ACE_HOLD = 0,
    HAK_ACE_UP_REFILLS, /* the busiest thread refilled at >= up_rate (blocks flow) */
    HAK_ACE_UP_CHURN,   /* threads refill and spill the same blocks, cap follows the count */
    HAK_ACE_DOWN_IDLE,  /* batches sit unused (refill rate < down_rate), or class idle */
    HAK_ACE_DOWN_SPILLS,/* the class spills (churn under a fixed cap, or spills only) */
    HAK_ACE_CLAMP,      /* the count was outside [lo, hi] */
};

/* Counts never exceed this (== HAK_REFILL_MAX of policy_table.h, which readers clamp to). */
#define HAK_ACE_COUNT_LIMIT 1024u

#define HAK_ACE_UP_RATE 4000u   /* refills/s of one thread: ~0.1-0.2% of a core in central trips */
#define HAK_ACE_DOWN_RATE 125u  /* <= up_rate / 8: the dead band lies between */
#define HAK_ACE_FLOW_BYTES (32u * 1024u) /* the largest batch worth passing between threads */
#define HAK_ACE_DOWN_AFTER 3u   /* "slow down": three intervals of evidence */
#define HAK_ACE_BARRIER_HOLD 300u /* 30 s at the default 100 ms interval */

const char *hak_ace_reason_name(enum hak_ace_reason r);

/* Defaults above, with the given bounds and budget. */
void hak_ace_params_default(hak_ace_params_t *p, uint32_t min, uint32_t max,
                            uint64_t budget_bytes);

/* The bounds [lo, hi] of class c under p. */
uint32_t hak_ace_class_lo(const hak_ace_params_t *p, unsigned c);
uint32_t hak_ace_class_hi(const hak_ace_params_t *p, unsigned c);

/* Initial state of class c: count = start = `fixed` clamped to the class bounds. */
void hak_ace_class_init(const hak_ace_params_t *p, unsigned c, uint32_t fixed,
                        hak_ace_class_state_t *st);

/* One interval of interval_ns for class c: updates *st (st->count is the new count) and
 * returns why. HAK_ACE_HOLD means the count did not change. */
enum hak_ace_reason hak_ace_decide(const hak_ace_params_t *p, unsigned c,
                                   const hak_ace_class_stats_t *s, uint64_t interval_ns,
                                   hak_ace_class_state_t *st);

/* All classes at once; reasons[] may be NULL. Returns how many counts changed. */
unsigned hak_ace_policy_step(const hak_ace_params_t *p,
                             const hak_ace_class_stats_t stats[HAK_NUM_CLASSES],
                             uint64_t interval_ns, hak_ace_class_state_t state[HAK_NUM_CLASSES],
                             enum hak_ace_reason reasons[HAK_NUM_CLASSES]);

#endif
