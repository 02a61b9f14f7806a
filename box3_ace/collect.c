/* box3_ace/collect.c - the learner's side of the rings: drain, tally per class, recycle.
 *
 * Runs under hak_ace_mu (the learner, or hak_ace_step in tests): it is the single consumer of
 * every ring (contract C), so hak_ring_pop needs no further coordination.
 *
 * Per ring it keeps a tally per class (refills, spills, blocks in, blocks out) so the policy can
 * tell the busiest thread apart from the sum, and a thread that both refills and spills
 * (churn) apart from a producer/consumer pair. An OWNED ring is drained at most 2 * capacity
 * events per interval (its producer keeps pushing); an ORPHANED ring has no producer, so it is
 * drained to empty and then set FREE (release: the next owner sees tail == head).
 */
#include <string.h>

#include "box3_ace/ace_internal.h"
#include "shared_contracts/event_ring.h"
#include "shared_contracts/list_rule.h"

#define DRAIN_BATCH 256u

static uint64_t last_drops[HAK_RING_SLOTS]; /* per slot: ring->drops at the last harvest; mu */
static uint32_t last_kind_drops[HAK_RING_SLOTS][2][HAK_NUM_CLASSES]; /* ring->kind_drops; mu */
static uint64_t last_no_ring_drops;         /* hak_ring_no_ring_drops() at the last harvest; mu */

typedef struct ring_tally {
    uint32_t refills, spills;
    uint64_t in, out;
} ring_tally_t;

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* A full ring dropped events (contract A drops the newest). The ring counted them by kind and
 * class, so the tally gets their exact number; their blocks are estimated from the drained
 * events of that class and kind, or, with none drained, from the count in force: a refill
 * moves `count` blocks, a spill what the list rule (shared_contracts/list_rule.h) cuts from a
 * list one past the cap that count gives. */
static void add_dropped(ring_tally_t *t, unsigned c, uint32_t drop_refills, uint32_t drop_spills,
                        uint32_t count)
{
    uint32_t cap = hak_list_cap(c, count);
    uint64_t per_refill = t->refills ? t->in / t->refills : count;
    uint64_t per_spill = t->spills ? t->out / t->spills : hak_spill_count(cap, cap + 1);
    t->in += (uint64_t)drop_refills * per_refill;
    t->out += (uint64_t)drop_spills * per_spill;
    uint64_t r = (uint64_t)t->refills + drop_refills, s = (uint64_t)t->spills + drop_spills;
    t->refills = r > UINT32_MAX ? UINT32_MAX : (uint32_t)r;
    t->spills = s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

static void drain_ring(uint32_t slot, hak_ring_t *r, hak_ace_interval_t *iv,
                       const uint16_t counts[HAK_NUM_CLASSES])
{
    /* Acquire: for ORPHANED, everything the dead owner pushed is visible below. */
    uint32_t state = __atomic_load_n(&r->state, __ATOMIC_ACQUIRE);
    if (state == HAK_RING_FREE)
        return;
    ring_tally_t tally[HAK_NUM_CLASSES];
    memset(tally, 0, sizeof tally);
    hak_event_t buf[DRAIN_BATCH];
    uint64_t budget = state == HAK_RING_ORPHANED ? UINT64_MAX : 2ull * (r->mask + 1ull);
    uint64_t seen = 0;
    uint32_t n;
    do {
        n = hak_ring_pop(r, buf, DRAIN_BATCH);
        seen += n;
        for (uint32_t i = 0; i < n; i++) {
            const hak_event_t *e = &buf[i];
            if (e->class_idx >= HAK_NUM_CLASSES)
                continue; /* not a valid event: ignore rather than trust it */
            hak_ace_class_stats_t *cs = &iv->cls[e->class_idx];
            ring_tally_t *t = &tally[e->class_idx];
            if (e->kind == HAK_EV_REFILL) {
                t->refills++;
                t->in += e->count;
            } else if (e->kind == HAK_EV_SPILL) {
                t->spills++;
                t->out += e->count;
            } else {
                continue;
            }
            if (e->list_len > cs->list_hwm)
                cs->list_hwm = e->list_len;
        }
    } while (n == DRAIN_BATCH && seen < budget);
    iv->events += seen;

    uint64_t drops = __atomic_load_n(&r->drops, __ATOMIC_RELAXED);
    uint64_t dropped = drops - last_drops[slot];
    last_drops[slot] = drops;
    iv->drops += dropped;

    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        ring_tally_t *t = &tally[c];
        iv->drained[c] += t->refills + t->spills;
        if (dropped) {
            uint32_t kd[2];
            for (unsigned k = 0; k < 2; k++) {
                uint32_t now = __atomic_load_n(&r->kind_drops[k][c], __ATOMIC_RELAXED);
                kd[k] = now - last_kind_drops[slot][k][c];
                last_kind_drops[slot][k][c] = now;
            }
            if (kd[0] || kd[1])
                add_dropped(t, c, kd[0], kd[1], counts[c]);
        }
        if (!t->refills && !t->spills)
            continue;
        hak_ace_class_stats_t *cs = &iv->cls[c];
        cs->refills += t->refills;
        cs->spills += t->spills;
        cs->blocks_refilled += t->in;
        cs->blocks_spilled += t->out;
        cs->churn_blocks += min_u64(t->in, t->out);
        if (t->refills > cs->peak_refills)
            cs->peak_refills = t->refills;
    }

    if (state == HAK_RING_ORPHANED) {
        /* Drained to empty (n < DRAIN_BATCH ended the loop), and no producer is left: start
         * the ring over at event 0 for its next owner (shared_contracts/event_ring.c). */
        r->head = r->tail = r->tail_cache = 0;
        r->pushed = r->drops = 0;
        memset(r->kind_drops, 0, sizeof r->kind_drops);
        last_drops[slot] = 0;
        memset(last_kind_drops[slot], 0, sizeof last_kind_drops[slot]);
        __atomic_store_n(&r->state, HAK_RING_FREE, __ATOMIC_RELEASE);
    }
}

void hak_ace_collect(hak_ace_interval_t *iv, const uint16_t counts[HAK_NUM_CLASSES])
{
    memset(iv, 0, sizeof *iv);
    for (uint32_t slot = 0; slot < HAK_RING_SLOTS; slot++) {
        hak_ring_t *r = hak_ring_get(slot);
        if (!r)
            break; /* registry not mapped: nothing to drain */
        drain_ring(slot, r, iv, counts);
    }
    uint64_t nr = hak_ring_no_ring_drops();
    iv->drops += nr - last_no_ring_drops;
    last_no_ring_drops = nr;
}
