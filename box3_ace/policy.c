/* box3_ace/policy.c - the ACE decision rule (see policy.h for the invariants, docs/ACE.md for
 * the reasoning). Pure: everything it reads comes in through its arguments. */
#include "box3_ace/policy.h"

#include "shared_contracts/list_rule.h"

static const char *const reason_names[] = {
    [HAK_ACE_HOLD] = "hold",
    [HAK_ACE_UP_REFILLS] = "up_refills",
    [HAK_ACE_UP_CHURN] = "up_churn",
    [HAK_ACE_DOWN_IDLE] = "down_idle",
    [HAK_ACE_DOWN_SPILLS] = "down_spills",
    [HAK_ACE_CLAMP] = "clamp",
};

const char *hak_ace_reason_name(enum hak_ace_reason r)
{
    return (unsigned)r < sizeof reason_names / sizeof reason_names[0] ? reason_names[r] : "?";
}

void hak_ace_params_default(hak_ace_params_t *p, uint32_t min, uint32_t max,
                            uint64_t budget_bytes)
{
    p->min = min ? min : 1;
    p->max = max;
    p->budget_bytes = budget_bytes;
    p->up_rate = HAK_ACE_UP_RATE;
    p->flow_bytes = HAK_ACE_FLOW_BYTES;
    p->down_rate = HAK_ACE_DOWN_RATE;
    p->down_after = HAK_ACE_DOWN_AFTER;
    p->barrier_hold = HAK_ACE_BARRIER_HOLD;
}

uint32_t hak_ace_class_lo(const hak_ace_params_t *p, unsigned c)
{
    (void)c;
    return p->min ? p->min : 1;
}

uint32_t hak_ace_class_hi(const hak_ace_params_t *p, unsigned c)
{
    uint32_t lo = hak_ace_class_lo(p, c);
    uint64_t hi = p->max < HAK_ACE_COUNT_LIMIT ? p->max : HAK_ACE_COUNT_LIMIT;
    if (p->budget_bytes) {
        uint64_t fit = hak_list_max_refill(c, p->budget_bytes);
        if (fit < hi)
            hi = fit;
    }
    return hi < lo ? lo : (uint32_t)hi;
}

static uint32_t clamp_u32(uint32_t v, uint32_t lo, uint32_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

void hak_ace_class_init(const hak_ace_params_t *p, unsigned c, uint32_t fixed,
                        hak_ace_class_state_t *st)
{
    uint32_t n = clamp_u32(fixed, hak_ace_class_lo(p, c), hak_ace_class_hi(p, c));
    *st = (hak_ace_class_state_t){.count = (uint16_t)n, .start = (uint16_t)n};
}

/* Per-second rate of n events over interval_ns (interval_ns > 0). */
static uint64_t per_second(uint64_t n, uint64_t interval_ns)
{
    return n * 1000000000ull / interval_ns;
}

/* Apply a decision: returns the reason if the count moved, HOLD otherwise. */
static enum hak_ace_reason move_to(hak_ace_class_state_t *st, uint32_t target,
                                   enum hak_ace_reason why)
{
    if (target == st->count)
        return HAK_ACE_HOLD;
    st->count = (uint16_t)target;
    return why;
}

/* Up: double, capped at hi and kept below a churn ceiling. */
static enum hak_ace_reason go_up(hak_ace_class_state_t *st, uint32_t hi, enum hak_ace_reason why)
{
    uint32_t target = 2u * st->count;
    if (target > hi)
        target = hi;
    if (st->ceiling && target >= st->ceiling)
        target = st->ceiling > 1 ? st->ceiling - 1u : 1u;
    if (target <= st->count)
        return HAK_ACE_HOLD;
    return move_to(st, target, why);
}

/* One interval of down evidence (spilled: the class spilled in it). After down_after such
 * intervals in a row, one step of a quarter down. The floor is lo if the class had any event
 * in those intervals (batches sit unused), else its start count (the class went idle: back to
 * the prior, no further), and never below a churn floor. */
static enum hak_ace_reason go_down(const hak_ace_params_t *p, hak_ace_class_state_t *st,
                                   uint32_t lo, int active, int spilled)
{
    st->win_active |= (uint8_t)active;
    st->win_spills |= (uint8_t)spilled;
    if (++st->streak < p->down_after)
        return HAK_ACE_HOLD;
    uint32_t floor = st->win_active ? lo : (st->start > lo ? st->start : lo);
    enum hak_ace_reason why = st->win_spills ? HAK_ACE_DOWN_SPILLS : HAK_ACE_DOWN_IDLE;
    st->streak = 0;
    st->win_active = st->win_spills = 0;
    if (st->floor && floor < st->floor)
        floor = st->floor;
    if (st->count <= floor)
        return HAK_ACE_HOLD;
    uint32_t step = st->count / 4u ? st->count / 4u : 1u;
    uint32_t target = st->count > floor + step ? st->count - step : floor;
    return move_to(st, target, why);
}

static void no_down_evidence(hak_ace_class_state_t *st)
{
    st->streak = 0;
    st->win_active = st->win_spills = 0;
}

enum hak_ace_reason hak_ace_decide(const hak_ace_params_t *p, unsigned c,
                                   const hak_ace_class_stats_t *s, uint64_t interval_ns,
                                   hak_ace_class_state_t *st)
{
    uint32_t lo = hak_ace_class_lo(p, c), hi = hak_ace_class_hi(p, c);
    if (st->count < lo || st->count > hi) {
        no_down_evidence(st);
        st->up_streak = 0;
        return move_to(st, clamp_u32(st->count, lo, hi), HAK_ACE_CLAMP);
    }
    if (interval_ns == 0)
        interval_ns = 1;

    int active = s->refills || s->spills;
    /* Churn barriers expire after barrier_hold intervals (then one probe step may re-learn
     * them). Not on an idle interval: a count that ended the churn also ends the events. */
    if (st->barrier_age < UINT16_MAX && ++st->barrier_age > p->barrier_hold)
        st->ceiling = st->floor = 0;

    uint64_t rate = per_second(s->peak_refills, interval_ns);
    int hot = rate >= p->up_rate;
    /* Churn: a thread took blocks in by refills and sent at least as many out by spills in the
     * same interval, and that is at least half of everything refilled: wasted transfers. */
    int churn = s->churn_blocks && 2u * s->churn_blocks >= s->blocks_refilled;

    /* The cap a list refilled with the count in force has (shared_contracts/list_rule.h); a
     * spill event's list_len is at most one above it. */
    uint32_t cap = hak_list_cap_for(c, st->count, p->budget_bytes);
    if (churn && (hot || s->list_hwm > cap + 2u)) {
        st->up_streak = 0;
        if (s->list_hwm <= cap + 2u) {
            /* The cap followed the count (the list rule): a bigger count is a bigger cap and
             * more headroom, so the same bursts stop spilling. Then the events stop too, which
             * must not read as idle: the new count becomes a floor for down. */
            no_down_evidence(st);
            enum hak_ace_reason r = go_up(st, hi, HAK_ACE_UP_CHURN);
            if (r != HAK_ACE_HOLD) {
                st->floor = st->count;
                st->barrier_age = 0;
            }
            return r;
        }
        /* The cap is fixed above the count's cap: each refill eats headroom under that cap, so a
         * smaller count leaves room for the frees. Unless refills are hot: then hold. */
        if (hot) {
            no_down_evidence(st);
            return HAK_ACE_HOLD;
        }
        uint16_t churned = st->count;
        enum hak_ace_reason r = go_down(p, st, lo, 1, 1);
        if (r != HAK_ACE_HOLD) {
            st->ceiling = churned;
            st->barrier_age = 0;
        }
        return r;
    }

    if (hot) {
        /* Blocks flow (refilled here, spilled by other threads, or kept): batches beyond
         * flow_bytes only circulate more memory between the threads. */
        uint32_t flow_hi = p->flow_bytes / hak_class_size(c);
        if (flow_hi < st->start)
            flow_hi = st->start;
        if (flow_hi > hi)
            flow_hi = hi;
        no_down_evidence(st);
        if (st->count >= flow_hi)
            return HAK_ACE_HOLD;
        enum hak_ace_reason r = go_up(st, flow_hi, HAK_ACE_UP_REFILLS);
        if (r == HAK_ACE_HOLD && st->ceiling && 2u * st->count >= st->ceiling) {
            /* Hot and clean below the ceiling for a while: the workload changed; lift it. */
            if (++st->up_streak >= p->down_after) {
                st->ceiling = 0;
                st->up_streak = 0;
                r = go_up(st, flow_hi, HAK_ACE_UP_REFILLS);
            }
        }
        return r;
    }
    st->up_streak = 0;

    if (rate < p->down_rate) /* a batch outlives 1/down_rate s: most of it sits unused */
        return go_down(p, st, lo, active, s->spills != 0);
    no_down_evidence(st); /* the dead band */
    return HAK_ACE_HOLD;
}

unsigned hak_ace_policy_step(const hak_ace_params_t *p,
                             const hak_ace_class_stats_t stats[HAK_NUM_CLASSES],
                             uint64_t interval_ns, hak_ace_class_state_t state[HAK_NUM_CLASSES],
                             enum hak_ace_reason reasons[HAK_NUM_CLASSES])
{
    unsigned changed = 0;
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        enum hak_ace_reason r = hak_ace_decide(p, c, &stats[c], interval_ns, &state[c]);
        if (reasons)
            reasons[c] = r;
        changed += r != HAK_ACE_HOLD;
    }
    return changed;
}
