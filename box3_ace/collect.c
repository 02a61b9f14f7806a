/* box3_ace/collect.c - the learner's side of the rings and of the summary of ringless
 * threads: collect, tally per class, recycle.
 *
 * Runs under hak_ace_mu (the learner, or hak_ace_step in tests): it is the single consumer of
 * every ring (contract C), so hak_ring_pop needs no further coordination, and the only reader
 * of shared_contracts/ace_summary.h.
 *
 * Per ring it keeps a tally per class (refills, spills, blocks in, blocks out) so the policy can
 * tell the busiest thread apart from the sum, and a thread that both refills and spills
 * (churn) apart from a producer/consumer pair. It also follows the order of each class's
 * events on a ring: a run of refills that a spill ends is one burst, and the refills per burst
 * tell the policy how deep the bursts are; a trim of a short list that follows another trim
 * with no refill between says the thread's list holds more than it uses. An OWNED ring is
 * collected at most 2 * capacity events per interval (its producer keeps pushing); an ORPHANED
 * ring has no producer, so it is collected to empty and then set FREE (release: the next owner
 * sees tail == head).
 */
#include <string.h>

#include "box3_ace/ace_internal.h"
#include "shared_contracts/ace_summary.h"
#include "shared_contracts/event_ring.h"
#include "shared_contracts/list_rule.h"

#define COLLECT_BATCH 256u

static uint64_t last_drops[HAK_RING_SLOTS]; /* per slot: ring->drops at the last harvest; mu */
static uint32_t last_kind_drops[HAK_RING_SLOTS][2][HAK_NUM_CLASSES]; /* ring->kind_drops; mu */
static uint64_t last_no_ring_drops;         /* hak_ring_no_ring_drops() at the last harvest; mu */
static uint64_t last_exits;                 /* hak_ace_summary.exits at the last harvest; mu */
/* Per slot and class: the ring's last trim of the class had no refill after it yet, and the
 * blocks of the ring's last refill of it; mu. A trim that follows another with no refill
 * between, of a list shorter than half a refill, says the list has held more than its thread
 * used for two trim passes, and still does: a short list went unused. (Two trims in a row alone
 * say little: a list twice its thread's bursts halves to one burst and is still all used.) */
static uint8_t trim_pending[HAK_RING_SLOTS][HAK_NUM_CLASSES];
static uint16_t last_refill[HAK_RING_SLOTS][HAK_NUM_CLASSES];
static uint64_t last_ev_events[2][HAK_NUM_CLASSES]; /* hak_ace_summary.ev_events seen; mu */
static uint64_t last_ev_blocks[2][HAK_NUM_CLASSES]; /* hak_ace_summary.ev_blocks seen; mu */

typedef struct ring_tally {
    uint32_t refills, spills;
    uint64_t in, out;
    uint32_t run;                 /* refills since this class's last spill on this ring */
    uint32_t bursts, run_refills; /* runs a spill ended, and their refills */
    uint32_t trims, idle_trims;   /* trims, and trims that followed a trim with no refill */
} ring_tally_t;

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* A full ring dropped events (contract A drops the newest). The ring counted them by kind and
 * class, so the tally gets their exact number; their blocks are estimated from the collected
 * events of that class and kind, or, with none collected, from the count in force: a refill
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

static void collect_ring(uint32_t slot, hak_ring_t *r, hak_ace_interval_t *iv,
                       const uint16_t counts[HAK_NUM_CLASSES])
{
    /* Acquire: for ORPHANED, everything the dead owner pushed is visible below. */
    uint32_t state = __atomic_load_n(&r->state, __ATOMIC_ACQUIRE);
    if (state == HAK_RING_FREE)
        return;
    ring_tally_t tally[HAK_NUM_CLASSES];
    memset(tally, 0, sizeof tally);
    hak_event_t buf[COLLECT_BATCH];
    uint64_t budget = state == HAK_RING_ORPHANED ? UINT64_MAX : 2ull * (r->mask + 1ull);
    uint64_t seen = 0;
    uint32_t n;
    do {
        n = hak_ring_pop(r, buf, COLLECT_BATCH);
        seen += n;
        for (uint32_t i = 0; i < n; i++) {
            const hak_event_t *e = &buf[i];
            if (e->class_idx >= HAK_NUM_CLASSES)
                continue; /* not a valid event: ignore rather than trust it */
            hak_ace_class_stats_t *cs = &iv->cls[e->class_idx];
            ring_tally_t *t = &tally[e->class_idx];
            if (e->kind == HAK_EV_TRIM) {
                t->trims++;
                if (trim_pending[slot][e->class_idx] &&
                    2u * e->list_len < last_refill[slot][e->class_idx])
                    t->idle_trims++;
                trim_pending[slot][e->class_idx] = 1;
                continue;
            }
            if (e->kind == HAK_EV_REFILL) {
                t->refills++;
                t->in += e->count;
                t->run++;
                trim_pending[slot][e->class_idx] = 0;
                last_refill[slot][e->class_idx] = e->count;
            } else if (e->kind == HAK_EV_SPILL) {
                t->spills++;
                t->out += e->count;
                if (t->run) {
                    t->bursts++;
                    t->run_refills += t->run;
                    t->run = 0;
                }
            } else {
                continue;
            }
            if (e->list_len > cs->list_hwm)
                cs->list_hwm = e->list_len;
        }
    } while (n == COLLECT_BATCH && seen < budget);
    iv->events += seen;

    uint64_t drops = __atomic_load_n(&r->drops, __ATOMIC_RELAXED);
    uint64_t dropped = drops - last_drops[slot];
    last_drops[slot] = drops;
    iv->drops += dropped;

    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        ring_tally_t *t = &tally[c];
        iv->collected[c] += t->refills + t->spills;
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
        hak_ace_class_stats_t *cs = &iv->cls[c];
        cs->trims += t->trims;
        cs->idle_trims += t->idle_trims;
        if (!t->refills && !t->spills)
            continue;
        cs->refills += t->refills;
        cs->spills += t->spills;
        cs->blocks_refilled += t->in;
        cs->blocks_spilled += t->out;
        cs->churn_blocks += min_u64(t->in, t->out);
        if (t->refills > cs->peak_refills)
            cs->peak_refills = t->refills;
        uint64_t trips = (uint64_t)t->refills + t->spills;
        if (trips > cs->peak_trips)
            cs->peak_trips = trips > UINT32_MAX ? UINT32_MAX : (uint32_t)trips;
        if (t->in && t->out) {
            cs->bursts += t->bursts;
            cs->run_refills += t->run_refills;
        }
        cs->threads++;
    }

    if (state == HAK_RING_ORPHANED) {
        /* Drained to empty (n < COLLECT_BATCH ended the loop), and no producer is left: start
         * the ring over at event 0 for its next owner (shared_contracts/event_ring.c). */
        r->head = r->tail = r->tail_cache = 0;
        r->pushed = r->drops = 0;
        memset(r->kind_drops, 0, sizeof r->kind_drops);
        last_drops[slot] = 0;
        memset(last_kind_drops[slot], 0, sizeof last_kind_drops[slot]);
        memset(trim_pending[slot], 0, sizeof trim_pending[slot]);
        memset(last_refill[slot], 0, sizeof last_refill[slot]);
        hak_ring_release_pages(r); /* its events are read: no memory held for a dead thread */
        __atomic_store_n(&r->state, HAK_RING_FREE, __ATOMIC_RELEASE);
    }
}

/* Threads with no ring: their events, counted by class and kind, join the class totals
 * (they name no thread, so they count for neither the busiest thread nor churn); each exit
 * sample adds one thread's whole life to the short-thread sums of every class it refilled. */
static void harvest_summary(hak_ace_interval_t *iv)
{
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        uint64_t ev[2], bl[2];
        for (unsigned k = 0; k < 2; k++) {
            uint64_t e = __atomic_load_n(&hak_ace_summary.ev_events[k][c], __ATOMIC_RELAXED);
            uint64_t b = __atomic_load_n(&hak_ace_summary.ev_blocks[k][c], __ATOMIC_RELAXED);
            ev[k] = e - last_ev_events[k][c];
            bl[k] = b - last_ev_blocks[k][c];
            last_ev_events[k][c] = e;
            last_ev_blocks[k][c] = b;
        }
        hak_ace_class_stats_t *cs = &iv->cls[c];
        uint64_t r = cs->refills + ev[0], s = cs->spills + ev[1];
        cs->refills = r > UINT32_MAX ? UINT32_MAX : (uint32_t)r;
        cs->spills = s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
        cs->blocks_refilled += bl[0];
        cs->blocks_spilled += bl[1];
        iv->ringless_events += ev[0] + ev[1];
    }
    uint64_t exits = __atomic_load_n(&hak_ace_summary.exits, __ATOMIC_RELAXED);
    iv->exits = exits - last_exits;
    last_exits = exits;
    for (unsigned i = 0; i < HAK_SUMMARY_SLOTS; i++) {
        hak_exit_sample_t *smp = &hak_ace_summary.slot[i];
        /* Acquire: the exiting thread's tallies, written before its READY store. */
        if (__atomic_load_n(&smp->state, __ATOMIC_ACQUIRE) != HAK_SUMMARY_READY)
            continue;
        for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
            const hak_exit_tally_t *t = &smp->cls[c];
            if (!t->refills)
                continue;
            hak_ace_class_stats_t *cs = &iv->cls[c];
            cs->short_threads++;
            cs->short_refills += t->refills;
            cs->short_blocks_in += t->blocks_in;
            cs->short_used += t->used;
        }
        iv->exit_samples++;
        /* Release: our reads above are done before the next exiting thread's CAS. */
        __atomic_store_n(&smp->state, HAK_SUMMARY_FREE, __ATOMIC_RELEASE);
    }
}

void hak_ace_collect(hak_ace_interval_t *iv, const uint16_t counts[HAK_NUM_CLASSES])
{
    memset(iv, 0, sizeof *iv);
    for (uint32_t slot = 0; slot < HAK_RING_SLOTS; slot++) {
        hak_ring_t *r = hak_ring_get(slot);
        if (!r)
            break; /* registry not mapped: nothing to collect */
        collect_ring(slot, r, iv, counts);
    }
    uint64_t nr = hak_ring_no_ring_drops();
    iv->drops += nr - last_no_ring_drops;
    last_no_ring_drops = nr;
    harvest_summary(iv);
}

uint64_t hak_ace_collect_discard(const uint16_t counts[HAK_NUM_CLASSES])
{
    static hak_ace_interval_t scratch; /* under hak_ace_mu */
    memset(&scratch, 0, sizeof scratch);
    for (uint32_t slot = 0; slot < HAK_RING_SLOTS; slot++) {
        hak_ring_t *r = hak_ring_get(slot);
        if (!r)
            break;
        collect_ring(slot, r, &scratch, counts);
    }
    return scratch.drops;
}
