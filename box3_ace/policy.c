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
    [HAK_ACE_UP_SHORT] = "up_short",
    [HAK_ACE_DOWN_SHORT] = "down_short",
    [HAK_ACE_DOWN_BUDGET] = "down_budget",
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
    p->park_budget = HAK_ACE_PARK_NONE;
    p->up_rate = HAK_ACE_UP_RATE;
    p->trip_ns = HAK_ACE_TRIP_NS;
    p->worth_ppm = HAK_ACE_WORTH_PPM;
    p->flow_bytes = HAK_ACE_FLOW_BYTES;
    p->down_rate = HAK_ACE_DOWN_RATE;
    p->down_after = HAK_ACE_DOWN_AFTER;
    p->barrier_hold = HAK_ACE_BARRIER_HOLD;
    p->short_min = HAK_ACE_SHORT_MIN;
    p->quick = 0;
}

uint32_t hak_ace_class_lo(const hak_ace_params_t *p, unsigned c)
{
    (void)c;
    return p->min ? p->min : 1;
}

/* The largest count whose cap (the list rule, hak_ace_list_cap) fits the per-thread budget. */
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

/* The list rule's cap (shared_contracts/list_rule.h, applied by Box 1), seen from here: the
 * one place the policy reads it. */
uint32_t hak_ace_list_cap(const hak_ace_params_t *p, unsigned c, uint32_t count)
{
    /* shared_contracts/list_rule.h */
    return hak_list_cap_for(c, count, HAK_LIST_CAP_REFILLS, p->budget_bytes);
}

uint64_t hak_ace_parked_bytes(const hak_ace_params_t *p, unsigned c,
                              const hak_ace_class_state_t *st)
{
    if (st->count <= st->start)
        return 0;
    uint64_t extra = hak_ace_list_cap(p, c, st->count) - hak_ace_list_cap(p, c, st->start);
    return extra * (st->threads ? st->threads : 1u) * hak_class_size(c);
}

static uint32_t clamp_u32(uint32_t v, uint32_t lo, uint32_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

void hak_ace_class_init(const hak_ace_params_t *p, unsigned c, uint32_t fixed,
                        hak_ace_class_state_t *st)
{
    uint32_t n = clamp_u32(fixed, hak_ace_class_lo(p, c), hak_ace_class_hi(p, c));
    /* cool: no ring has found the class hot yet, so exit samples count from the first interval */
    *st = (hak_ace_class_state_t){.count = (uint16_t)n, .start = (uint16_t)n, .cool = UINT16_MAX};
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

/* Up to `target`, capped at hi and kept below a churn ceiling; never down, and never by less
 * than a quarter (unless that reaches hi or start): a smaller step changes little and costs a
 * publish, and targets computed from mixed or stale intervals would otherwise creep. */
static enum hak_ace_reason go_to(hak_ace_class_state_t *st, uint64_t target, uint32_t hi,
                                 enum hak_ace_reason why)
{
    if (target > hi)
        target = hi;
    if (st->ceiling && target >= st->ceiling)
        target = st->ceiling > 1 ? st->ceiling - 1u : 1u;
    if (target <= st->count)
        return HAK_ACE_HOLD;
    uint64_t least = (uint64_t)st->count + st->count / 4u + 1u;
    if (target < hi && target != st->start && target < least)
        return HAK_ACE_HOLD;
    return move_to(st, (uint32_t)target, why);
}

/* Blocks per refill in the events: the count they were made with (under a table just
 * replaced, or under the fixed counts in shadow mode, that is not st->count; targets are
 * computed from what the events saw, so the same evidence gives the same target). */
static uint32_t seen_count(const hak_ace_class_stats_t *s, uint32_t count)
{
    uint64_t n = s->refills ? s->blocks_refilled / s->refills : count;
    return n ? (uint32_t)(n < HAK_ACE_COUNT_LIMIT ? n : HAK_ACE_COUNT_LIMIT) : 1u;
}

/* Churn that a count can end: the bursts seen refilled k = run_refills / bursts times each at
 * n blocks a refill. A burst starts with between n and 2n in the list (a spill keeps n, and
 * frees follow it) and runs it dry k times, so it held at most about (k + 1) * n blocks at its
 * top. A count below that depth only trades the trips for one refill and one spill a burst
 * (after a spill the list holds a count and more, so one more count overflows the cap again);
 * a count of the depth ends the churn for good: the target is the depth with an eighth to
 * spare. At least x1.25 of n. With no burst seen whole, the bursts are longer than the sample
 * the ring kept (a thousand events): deeper than any count holds (UINT64_MAX). */
static uint64_t churn_target(const hak_ace_class_stats_t *s, uint32_t n)
{
    if (!s->bursts)
        return UINT64_MAX;
    uint64_t depth = ((uint64_t)s->run_refills + s->bursts) * n / s->bursts;
    uint64_t t = depth + depth / 8u;
    uint64_t least = (uint64_t)n + n / 4u + 1u;
    return t < least ? least : t; /* the caller caps the step (x16) once it knows t <= hi */
}

/* Trips at `trips_per_s` cost trips * trip_ns of the busiest thread's time at n blocks a
 * refill; trips fall as the count rises, so the count at which they would cost worth_ppm / 4
 * (a quarter of the threshold that let it rise: a dead band wide enough that a thread that
 * gets more CPU in the next interval, and so makes more trips a second, does not look worth
 * another step) is n * cost / (worth / 4). At least a doubling, at most x16 of n. */
static uint64_t worth_target(const hak_ace_params_t *p, uint64_t trips_per_s, uint32_t n)
{
    uint64_t cost_ppm = trips_per_s * p->trip_ns / 1000u;
    uint64_t t = (uint64_t)n * cost_ppm * 4u / (p->worth_ppm ? p->worth_ppm : 1u);
    uint64_t least = 2ull * n, most = 16ull * n;
    return t < least ? least : t > most ? most : t;
}

/* One interval of down evidence (spilled: the class spilled in it). After down_after such
 * intervals in a row, one step of a quarter down. The floor is lo if the class spilled in
 * those intervals (a consumer gains nothing from a batch, and its cap parks memory), else its
 * start count: a batch that lasts long saves memory down to the prior, and below it a class
 * used now and then would start its next busy phase short of its Phase 1 count; and never
 * below a churn floor. */
static enum hak_ace_reason go_down(const hak_ace_params_t *p, hak_ace_class_state_t *st,
                                   uint32_t lo, int spilled)
{
    st->win_spills |= (uint8_t)spilled;
    if (++st->streak < p->down_after)
        return HAK_ACE_HOLD;
    uint32_t floor = st->win_spills ? lo : (st->start > lo ? st->start : lo);
    enum hak_ace_reason why = st->win_spills ? HAK_ACE_DOWN_SPILLS : HAK_ACE_DOWN_IDLE;
    st->streak = 0;
    st->win_spills = 0;
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
    st->win_spills = 0;
}

/* Threads that exit before they take a ring (shared_contracts/ace_summary.h): each sample is
 * one whole life. About one refill each (at most 1.25): their batch was enough, and whatever
 * of it they never needed was carried in and flushed out again for nothing, so the count goes
 * down to a quarter of the blocks a thread's program used (took from its list and kept:
 * blocks brought in less those left at exit) or of its batch: the next samples tell whether that still takes one
 * refill. Four refills or more each: twice their batch halves them. Between the two, hold. */
static enum hak_ace_reason short_lived(const hak_ace_class_stats_t *s, uint32_t lo, uint32_t hi,
                                       uint64_t interval_ns, hak_ace_class_state_t *st)
{
    uint64_t n = s->short_threads;
    uint64_t refills4 = 4u * s->short_refills / n; /* refills per thread, in quarters */
    uint64_t handed = (s->short_used + n - 1u) / n; /* blocks used per thread */
    uint64_t batch = s->short_blocks_in / s->short_refills; /* their blocks per refill */
    if (refills4 >= 16u) {
        enum hak_ace_reason r = go_to(st, 2u * (batch ? batch : 1u), hi, HAK_ACE_UP_SHORT);
        if (r != HAK_ACE_HOLD)
            st->saved = (uint32_t)per_second(s->short_refills, interval_ns);
        return r;
    }
    if (refills4 <= 5u) {
        uint64_t want = (handed < batch ? handed : batch) / 4u;
        uint32_t target = want < lo ? lo : (uint32_t)want;
        if (st->floor && target < st->floor)
            target = st->floor;
        return target < st->count ? move_to(st, target, HAK_ACE_DOWN_SHORT) : HAK_ACE_HOLD;
    }
    return HAK_ACE_HOLD;
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

    int ring_active = s->refills || s->spills;
    /* Churn barriers expire after barrier_hold intervals (then one probe step may re-learn
     * them). Not on an idle interval: a count that ended the churn also ends the events. */
    if (st->barrier_age < UINT16_MAX && ++st->barrier_age > p->barrier_hold)
        st->ceiling = st->floor = 0;
    /* Threads that use the class: the most seen at once, less one per interval without an
     * event (the park budget's estimate). */
    if (s->threads >= st->threads)
        st->threads = (uint16_t)(s->threads < UINT16_MAX ? s->threads : UINT16_MAX);
    else if (!ring_active && st->threads > 1)
        st->threads--;

    uint64_t rate = per_second(s->peak_refills, interval_ns);
    uint64_t trips = per_second(s->peak_trips, interval_ns);
    int hot = rate >= p->up_rate;
    /* Worth a bigger count without churn: the busiest thread's trips cost worth_ppm of it. */
    int worth = trips * p->trip_ns >= (uint64_t)p->worth_ppm * 1000u;
    if (hot)
        st->cool = 0;
    else if (st->cool < UINT16_MAX)
        st->cool++;
    /* Churn: a thread took blocks in by refills and sent at least as many out by spills in the
     * same interval, and that is at least half of everything refilled: wasted transfers. */
    int churn = s->churn_blocks && 2u * s->churn_blocks >= s->blocks_refilled;
    uint32_t cap = hak_ace_list_cap(p, c, st->count);

    if (churn && (hot || s->list_hwm > cap + 2u)) {
        st->up_streak = 0;
        if (s->list_hwm <= cap + 2u) {
            /* The cap followed the count (the list rule): a bigger count is a bigger cap and
             * more headroom, so the same bursts stop spilling. Then the events stop too, which
             * must not read as idle: the new count becomes a floor for down. If no count up to
             * hi holds the bursts, the count holds (below). */
            no_down_evidence(st);
            uint32_t n = seen_count(s, st->count);
            uint64_t target = churn_target(s, n);
            if (target > hi) {
                /* No count up to hi holds the bursts: the churn goes on at any count, and its
                 * blocks go back to their spans one by one however many a trip carries, so a
                 * bigger count saves little of a trip's cost and lengthens each trip's walk
                 * over blocks gone cold (`locality`, whose bursts are 40,000 to 100,000 deep:
                 * 0.89x of fixed counts while this raised them on costly trips; `phase1t`
                 * gained nothing from it, 1.003 against 1.004). Hold; below the prior, back
                 * to it. */
                return st->count < st->start ? go_to(st, st->start, hi, HAK_ACE_UP_CHURN)
                                             : HAK_ACE_HOLD;
            }
            if (target > 16ull * n)
                target = 16ull * n; /* one step: at most x16 */
            enum hak_ace_reason r = go_to(st, target, hi, HAK_ACE_UP_CHURN);
            if (r != HAK_ACE_HOLD) {
                st->floor = st->count;
                st->barrier_age = 0;
                st->saved = (uint32_t)(trips < UINT32_MAX ? trips : UINT32_MAX);
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
        enum hak_ace_reason r = go_down(p, st, lo, 1);
        if (r != HAK_ACE_HOLD) {
            st->ceiling = churned;
            st->barrier_age = 0;
        }
        return r;
    }

    if (hot) {
        /* Blocks flow (refilled here, spilled by other threads, or kept): a bigger count saves
         * only part of each trip's fixed cost, so it must be worth it; and batches beyond
         * flow_bytes only circulate more memory between the threads. */
        uint32_t flow_hi = p->flow_bytes / hak_class_size(c);
        if (flow_hi < st->start)
            flow_hi = st->start;
        if (flow_hi > hi)
            flow_hi = hi;
        no_down_evidence(st);
        if (st->count < st->start && !worth) /* below the prior and hot: back to it */
            return go_to(st, st->start, hi, HAK_ACE_UP_REFILLS);
        if (st->count >= flow_hi || !worth)
            return HAK_ACE_HOLD;
        uint64_t target = worth_target(p, trips, seen_count(s, st->count));
        enum hak_ace_reason r = go_to(st, target, flow_hi, HAK_ACE_UP_REFILLS);
        if (r == HAK_ACE_HOLD && st->ceiling && 2u * st->count >= st->ceiling) {
            /* Hot and clean below the ceiling for a while: the workload changed; lift it. */
            if (++st->up_streak >= p->down_after) {
                st->ceiling = 0;
                st->up_streak = 0;
                r = go_to(st, target, flow_hi, HAK_ACE_UP_REFILLS);
            }
        }
        if (r != HAK_ACE_HOLD)
            st->saved = (uint32_t)(trips < UINT32_MAX ? trips : UINT32_MAX);
        return r;
    }
    st->up_streak = 0;
    if (p->quick)
        return HAK_ACE_HOLD; /* a follow-up interval: up only; down evidence waits */

    /* The phase that raised the count is over: Box 2 trimmed a thread's list of this class a
     * second time with no refill between, when it was already shorter than half a refill, so
     * the list held more than the thread used for two passes. Back to start at once, whatever
     * churn floor the phase left. (Silence alone says nothing: a list that holds its thread's
     * bursts raises no event either.) */
    if (s->idle_trims && st->count > st->start) {
        no_down_evidence(st);
        st->floor = 0;
        return move_to(st, st->start, HAK_ACE_DOWN_IDLE);
    }

    /* Short-lived threads speak only when no ring has found the class hot for a while: a
     * long-lived thread's need wins over theirs. When they speak, they decide (their hold is
     * a dead band too): the rings' silence is theirs, not idleness. */
    if (s->short_threads >= p->short_min && st->cool >= p->down_after) {
        no_down_evidence(st);
        return short_lived(s, lo, hi, interval_ns, st);
    }

    if (rate < p->down_rate) /* a batch outlives 1/down_rate s: most of it sits unused */
        return go_down(p, st, lo, s->spills != 0);
    no_down_evidence(st); /* the dead band */
    return HAK_ACE_HOLD;
}

/* The raised class whose trips saved per byte parked are fewest (ties: the one parking most),
 * or HAK_NUM_CLASSES when none is raised. */
static unsigned least_useful(const hak_ace_params_t *p,
                             const hak_ace_class_state_t state[HAK_NUM_CLASSES])
{
    unsigned victim = HAK_NUM_CLASSES;
    uint64_t best_density = UINT64_MAX, best_bytes = 0;
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        uint64_t bytes = hak_ace_parked_bytes(p, c, &state[c]);
        if (!bytes)
            continue;
        uint64_t density = ((uint64_t)state[c].saved << 20) / bytes;
        if (density < best_density || (density == best_density && bytes > best_bytes)) {
            victim = c;
            best_density = density;
            best_bytes = bytes;
        }
    }
    return victim;
}

unsigned hak_ace_policy_step(const hak_ace_params_t *p,
                             const hak_ace_class_stats_t stats[HAK_NUM_CLASSES],
                             uint64_t interval_ns, hak_ace_class_state_t state[HAK_NUM_CLASSES],
                             enum hak_ace_reason reasons[HAK_NUM_CLASSES])
{
    enum hak_ace_reason why[HAK_NUM_CLASSES];
    uint16_t before[HAK_NUM_CLASSES];
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        before[c] = state[c].count;
        why[c] = hak_ace_decide(p, c, &stats[c], interval_ns, &state[c]);
    }
    /* The park budget: while the raised counts may park more than it, halve (towards start)
     * the one that saves the fewest trips per byte; an up of this interval is undone before
     * its class goes below where it was. */
    if (p->park_budget != HAK_ACE_PARK_NONE) {
        for (;;) {
            uint64_t total = 0;
            for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
                total += hak_ace_parked_bytes(p, c, &state[c]);
            unsigned v = total > p->park_budget ? least_useful(p, state) : HAK_NUM_CLASSES;
            if (v == HAK_NUM_CLASSES)
                break;
            hak_ace_class_state_t *st = &state[v];
            uint32_t half = st->count / 2u;
            if (half < before[v] && st->count > before[v])
                half = before[v]; /* an up this interval: first undo it, down only after */
            st->count = (uint16_t)(half > st->start ? half : st->start);
            st->floor = 0;
            no_down_evidence(st);
            if (st->count < before[v])
                why[v] = HAK_ACE_DOWN_BUDGET;
            else if (st->count == before[v])
                why[v] = HAK_ACE_HOLD;
        }
        /* An up the budget cut to less than a quarter above where it was is no step at all
         * (go_to's rule): the class stays where it was, and does not creep up by ones. */
        for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
            hak_ace_class_state_t *st = &state[c];
            if (st->count > before[c] && st->count < before[c] + before[c] / 4u + 1u &&
                st->count != st->start && why[c] != HAK_ACE_CLAMP) {
                st->count = before[c];
                why[c] = HAK_ACE_HOLD;
            }
        }
    }
    unsigned changed = 0;
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        if (reasons)
            reasons[c] = why[c];
        changed += state[c].count != before[c];
    }
    return changed;
}
