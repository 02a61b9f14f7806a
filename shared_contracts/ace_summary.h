/* shared_contracts/ace_summary.h - what threads without an event ring tell ACE.
 *
 * A thread takes a ring only at its HAK_RING_AFTER_REFILLS-th refill (event_ring.h), and a
 * thread that gets that far may find every slot taken. Both kinds of thread still tell the
 * learner what they did, through this per-class summary, which costs no ring:
 *   - a thread that exits without ever having had a ring leaves an exit sample: its per-class
 *     tallies over its whole life (refills, blocks refilled, spills, blocks spilled, blocks
 *     its program used, blocks left in its list at exit): hak_ace_summary_exit, called once
 *     from Box 2's hak_thread_detach, after Box 1's exit drain told Box 2 what each list held;
 *   - a thread that has passed its ring threshold but holds no ring (every slot taken) adds
 *     each event to per-class totals: hak_ace_summary_event, from Box 2's event report.
 *
 * Writers (Box 2, any thread) never block, spin or wait (contract A): an exit takes a ticket
 * (one atomic add on `exits`) and tries the one slot the ticket names with one CAS; if the
 * learner has not read that slot yet, the exit is counted but not sampled. Event totals are
 * relaxed atomic adds; they are written only by threads without a ring, which exist only
 * when HAK_RING_SLOTS threads hold rings at once.
 *
 * Reader: the ACE learner (Box 3) only, once per interval, under its own lock. It reads the
 * monotonic counters as differences against its last reading, and empties READY slots.
 *
 * Slot states (one writer per transition):
 *   FREE  --CAS by the exiting thread (acquire: the learner's reads of the slot are done)-->
 *   BUSY  --release store by that thread, after writing the tallies-->
 *   READY --release store by the learner, after copying them out (acquire load first)--> FREE
 *
 * Memory: the struct is zero-initialised static data (all slots FREE), touched only as slots
 * are used; nothing here allocates. No Box 2 or Box 3 symbol is named (contract D): the data
 * is defined in shared_contracts/ace_summary.c.
 */
#ifndef HAK_ACE_SUMMARY_H
#define HAK_ACE_SUMMARY_H

#include <stdint.h>

#include "event_ring.h"
#include "size_classes.h"

#define HAK_SUMMARY_SLOTS 32u /* exit samples the learner can take per interval */

enum hak_summary_slot_state { HAK_SUMMARY_FREE = 0, HAK_SUMMARY_BUSY = 1, HAK_SUMMARY_READY = 2 };

/* One class over one exited thread's life (saturated at UINT32_MAX). */
typedef struct hak_exit_tally {
    uint32_t refills;    /* refills of the class */
    uint32_t blocks_in;  /* blocks those refills brought */
    uint32_t spills;     /* spills */
    uint32_t blocks_out; /* blocks the spills sent back */
    uint32_t used;       /* blocks the refills brought that the program took and kept
                          * (blocks_in - left: the hit path counts nothing) */
    uint32_t left;       /* blocks in the list at exit (flushed back, never needed) */
} hak_exit_tally_t;

typedef struct hak_exit_sample {
    uint32_t state; /* enum hak_summary_slot_state */
    hak_exit_tally_t cls[HAK_NUM_CLASSES];
} hak_exit_sample_t;

typedef struct hak_ace_summary {
    /* Exits of threads that never had a ring, sampled or not: ticket counter. */
    _Alignas(64) uint64_t exits;
    /* Events of threads that had no ring, per kind (refill, spill) and class. */
    _Alignas(64) uint64_t ev_events[2][HAK_NUM_CLASSES];
    uint64_t ev_blocks[2][HAK_NUM_CLASSES];
    _Alignas(64) hak_exit_sample_t slot[HAK_SUMMARY_SLOTS];
} hak_ace_summary_t;

extern hak_ace_summary_t hak_ace_summary;

static inline uint32_t hak_summary_sat32(uint64_t v)
{
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* Box 2, a thread with no ring reports one event (kind HAK_EV_REFILL or HAK_EV_SPILL). */
static inline void hak_ace_summary_event(unsigned class_idx, unsigned kind, uint32_t blocks)
{
    if ((unsigned)(kind - 1) >= 2 || class_idx >= HAK_NUM_CLASSES)
        return;
    __atomic_fetch_add(&hak_ace_summary.ev_events[kind - 1][class_idx], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&hak_ace_summary.ev_blocks[kind - 1][class_idx], blocks, __ATOMIC_RELAXED);
}

/* Box 2, the calling thread exits and never had a ring: per-class counters over its life
 * (arrays of HAK_NUM_CLASSES); `left`: what each of its lists held at exit. */
static inline void hak_ace_summary_exit(const uint64_t *refills, const uint64_t *blocks_in,
                                        const uint64_t *spills, const uint64_t *blocks_out,
                                        const uint32_t *left)
{
    uint64_t ticket = __atomic_fetch_add(&hak_ace_summary.exits, 1, __ATOMIC_RELAXED);
    hak_exit_sample_t *s = &hak_ace_summary.slot[ticket % HAK_SUMMARY_SLOTS];
    uint32_t expected = HAK_SUMMARY_FREE;
    if (!__atomic_compare_exchange_n(&s->state, &expected, HAK_SUMMARY_BUSY, 0,
                                     __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return; /* not read yet: this exit is counted, not sampled */
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        hak_exit_tally_t *t = &s->cls[c];
        t->refills = hak_summary_sat32(refills[c]);
        t->blocks_in = hak_summary_sat32(blocks_in[c]);
        t->spills = hak_summary_sat32(spills[c]);
        t->blocks_out = hak_summary_sat32(blocks_out[c]);
        t->left = left[c];
        t->used = blocks_in[c] > left[c] ? hak_summary_sat32(blocks_in[c] - left[c]) : 0;
    }
    /* Release: the tallies above are visible to the learner that sees READY. */
    __atomic_store_n(&s->state, HAK_SUMMARY_READY, __ATOMIC_RELEASE);
}

#endif
