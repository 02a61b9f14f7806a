/* shared_contracts/event_ring.h - refill/spill events from Box 2 to ACE (Box 3).
 *
 * One ring per thread: single producer (the thread, inside Box 2's refill and spill paths),
 * single consumer (the ACE learner thread). Capacity is a power of two (POOL_ACE_RING).
 *
 * Contract A (overflow): a push into a full ring drops the event, counts it in ring->drops and
 * returns false. The producer never blocks, spins, or takes a lock.
 *
 * Contract C (ownership): rings live in one registry, an array of HAK_RING_SLOTS slots mapped
 * once with mmap when ACE starts, never grown, never freed, never malloc'd. A slot is
 *   FREE      nobody uses it;
 *   OWNED     a live thread produces into it (acquired at the thread's
 *             HAK_RING_AFTER_REFILLS-th refill: a thread that refills less over its whole
 *             life, like a short-lived worker, raises no events and costs the registry no
 *             page; its slow paths are the same);
 *   ORPHANED  its thread exited; the learner collects what is left, then sets it FREE.
 * Only the owner thread moves FREE->OWNED (CAS) and OWNED->ORPHANED; only the learner moves
 * ORPHANED->FREE. So a ring is never reused while it holds another thread's events, and the
 * learner never reads memory that can go away. With every slot taken, a thread runs without a
 * ring and its events are counted in the registry's no_ring_drops.
 *
 * Memory order: the producer writes the slot, then release-stores head; the consumer
 * acquire-loads head, reads slots, then release-stores tail. Each counter has one writer.
 */
#ifndef HAK_EVENT_RING_H
#define HAK_EVENT_RING_H

#include <stdbool.h>
#include <stdint.h>

#include "size_classes.h"

/* REFILL and SPILL: the thread's refill and spill paths (count = blocks moved). TRIM: Box 2's
 * idle-list trim gave `count` blocks of an idle list back (list_len = the list before it). */
enum hak_event_kind { HAK_EV_REFILL = 1, HAK_EV_SPILL = 2, HAK_EV_TRIM = 3 };

typedef struct hak_event {
    uint64_t ms;        /* cheap timestamp: CLOCK_MONOTONIC_COARSE ms, which the slow path
                         * reads anyway (hak_now_ms) */
    uint16_t class_idx; /* size class */
    uint16_t count;     /* blocks refilled or spilled */
    uint16_t list_len;  /* the thread's list length before the event */
    uint8_t kind;       /* enum hak_event_kind */
    uint8_t pad;
} hak_event_t;

enum hak_ring_state { HAK_RING_FREE = 0, HAK_RING_OWNED = 1, HAK_RING_ORPHANED = 2 };

#define HAK_RING_SLOTS 256u
#define HAK_RING_AFTER_REFILLS 64u /* a thread's refills before it takes a ring */

typedef struct hak_ring {
    /* producer's line */
    _Alignas(64) uint32_t head; /* next slot to write; written by the producer only */
    uint32_t tail_cache;        /* producer's last view of tail */
    uint64_t pushed;            /* events accepted; producer only */
    uint64_t drops;             /* events dropped because the ring was full; producer only */
    /* drops by kind (refill, spill) and class: the learner adds them to what it collected, so
     * a full ring loses events, never counts; producer only, touched only on a drop */
    uint32_t kind_drops[2][HAK_NUM_CLASSES];
    /* consumer's line */
    _Alignas(64) uint32_t tail; /* next slot to read; written by the consumer only */
    /* registry */
    _Alignas(64) uint32_t state; /* enum hak_ring_state */
    uint32_t mask;               /* capacity - 1; written (atomically) by whoever acquires the
                                  * slot, the same value each time: read with atomic loads */
    hak_event_t *slots;          /* capacity entries, inside the registry mapping; the same */
} hak_ring_t;

/* Producer side. Never blocks; false means dropped (and counted). */
static inline bool hak_ring_push(hak_ring_t *ring, const hak_event_t *ev)
{
    uint32_t head = ring->head;
    uint32_t mask = __atomic_load_n(&ring->mask, __ATOMIC_RELAXED); /* see the registry note */
    if (head - ring->tail_cache > mask) {
        ring->tail_cache = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
        if (head - ring->tail_cache > mask) {
            __atomic_store_n(&ring->drops, ring->drops + 1, __ATOMIC_RELAXED);
            if ((unsigned)(ev->kind - 1) < 2 && ev->class_idx < HAK_NUM_CLASSES) {
                uint32_t *d = &ring->kind_drops[ev->kind - 1][ev->class_idx];
                __atomic_store_n(d, *d + 1, __ATOMIC_RELAXED);
            }
            return false;
        }
    }
    __atomic_load_n(&ring->slots, __ATOMIC_RELAXED)[head & mask] = *ev;
    __atomic_store_n(&ring->pushed, ring->pushed + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&ring->head, head + 1, __ATOMIC_RELEASE);
    return true;
}

/* Consumer side: copy at most max events out; returns how many. */
static inline uint32_t hak_ring_pop(hak_ring_t *ring, hak_event_t *out, uint32_t max)
{
    uint32_t tail = ring->tail;
    uint32_t head = __atomic_load_n(&ring->head, __ATOMIC_ACQUIRE);
    uint32_t mask = __atomic_load_n(&ring->mask, __ATOMIC_RELAXED);
    const hak_event_t *slots = __atomic_load_n(&ring->slots, __ATOMIC_RELAXED);
    uint32_t n = head - tail;
    if (n > max)
        n = max;
    for (uint32_t i = 0; i < n; i++)
        out[i] = slots[(tail + i) & mask];
    __atomic_store_n(&ring->tail, tail + n, __ATOMIC_RELEASE);
    return n;
}

/* Registry (shared_contracts/event_ring.c; Box 3 maps it when ACE starts, Box 2's threads
 * acquire and orphan rings, Box 3's learner collects them).
 * hak_ring_registry_init: map every slot with capacity `capacity` (power of two); once, from
 *   ACE start. Returns false if the mapping failed (ACE then stays off).
 * hak_ring_acquire: a thread takes a FREE slot; NULL if ACE is off or all are taken.
 * hak_ring_orphan: the owner thread gives it up at exit (OWNED -> ORPHANED).
 * hak_ring_get: slot i (0..HAK_RING_SLOTS-1) or NULL before init; for the learner and tests.
 * hak_ring_release_pages: the learner, about to set a drained ORPHANED ring FREE, gives the
 *   whole pages of its events back to the OS (madvise MADV_DONTNEED): the slot stays mapped,
 *   its next owner finds zero pages. A process whose threads come and go keeps no resident
 *   event memory for the threads that left.
 * hak_ring_no_ring_drops: events lost because a thread had no ring. */
bool hak_ring_registry_init(uint32_t capacity);
hak_ring_t *hak_ring_acquire(void);
void hak_ring_orphan(hak_ring_t *ring);
hak_ring_t *hak_ring_get(uint32_t slot);
void hak_ring_release_pages(hak_ring_t *ring);
void hak_ring_count_no_ring_drop(void);
uint64_t hak_ring_no_ring_drops(void);

#endif
