/* shared_contracts/event_ring.c - the fixed array of event rings (contract C of
 * event_ring.h). It lives here, not in a box, because both sides use it: Box 2's threads
 * acquire and orphan rings, Box 3 maps the registry when ACE starts and collects the rings.
 *
 * Layout: one anonymous private mapping, made once by hak_ring_registry_init and never
 * unmapped: HAK_RING_SLOTS ring headers, then HAK_RING_SLOTS * capacity events. Untouched
 * pages cost no memory (MAP_NORESERVE, faulted in on first write): init writes nothing (the
 * zero mapping is every slot FREE with zero counters), and a slot's mask and slots pointer
 * are written by the thread that acquires it, so the headers of slots never used stay
 * unbacked (reading them, as acquire's and the learner's scans do, maps the zero page).
 *
 * Invariants
 *   - reg_rings is NULL until the mapping is complete, then constant (release/acquire).
 *   - state transitions: FREE->OWNED by a CAS of the acquiring thread; OWNED->ORPHANED by a
 *     release store of that thread (hak_ring_orphan); ORPHANED->FREE by the learner, after it
 *     collected the ring (box3_ace/collect.c) and reset it: head, tail, tail_cache, pushed and
 *     drops back to 0 (with its own "drops last seen" mark), so a new owner writes from the
 *     ring's first event on and a short-lived thread touches one page of it, not all of them.
 *   - A new owner sees the reset ring through the chain
 *     release(ORPHANED) -> acquire+release(learner, FREE) -> acquire(CAS FREE->OWNED).
 *   - mask and slots are a slot's constants (its index and the capacity): every thread that
 *     tries the slot stores the same values (relaxed atomic stores) before its CAS, whose
 *     release publishes them to the learner's acquire load of OWNED.
 *   - acquire takes the lowest FREE slot, so the rings (and pages) in use stay as few as the
 *     threads that hold them plus those exited since the learner's last interval.
 */
#include <pthread.h>
#include <stddef.h>
#include <sys/mman.h>

#include "diag.h"
#include "event_ring.h"

static hak_ring_t *reg_rings;        /* published once: release store, acquire loads */
static uint32_t reg_capacity;        /* written before reg_rings is published; then constant */
static hak_event_t *reg_events;      /* the event space, the same; slot i's is i * capacity on */
static uint64_t reg_no_ring_drops;   /* relaxed atomic add by ringless threads */
static pthread_mutex_t reg_init_mu = PTHREAD_MUTEX_INITIALIZER; /* serialises init only */

bool hak_ring_registry_init(uint32_t capacity)
{
    if (__atomic_load_n(&reg_rings, __ATOMIC_ACQUIRE))
        return true;
    if (capacity < 2 || capacity > (1u << 16) || (capacity & (capacity - 1)))
        return false;
    pthread_mutex_lock(&reg_init_mu);
    bool ok = true;
    if (!reg_rings) {
        size_t head_bytes = (size_t)HAK_RING_SLOTS * sizeof(hak_ring_t);
        size_t ev_bytes = (size_t)HAK_RING_SLOTS * capacity * sizeof(hak_event_t);
        char *base = mmap(NULL, head_bytes + ev_bytes, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (base == MAP_FAILED) {
            ok = false;
        } else {
            /* The mapping is zero: every slot FREE (0), every counter 0; headers stay
             * untouched until a thread acquires their slot. */
            reg_events = (hak_event_t *)(base + head_bytes);
            reg_capacity = capacity;
            __atomic_store_n(&reg_rings, (hak_ring_t *)base, __ATOMIC_RELEASE);
        }
    }
    pthread_mutex_unlock(&reg_init_mu);
    return ok;
}

hak_ring_t *hak_ring_acquire(void)
{
    hak_ring_t *rings = __atomic_load_n(&reg_rings, __ATOMIC_ACQUIRE);
    if (!rings)
        return NULL;
    for (uint32_t k = 0; k < HAK_RING_SLOTS; k++) {
        hak_ring_t *r = &rings[k];
        uint32_t expected = HAK_RING_FREE;
        if (__atomic_load_n(&r->state, __ATOMIC_RELAXED) != HAK_RING_FREE)
            continue;
        /* The slot's constants, the same from every thread that gets here (see above). */
        __atomic_store_n(&r->mask, reg_capacity - 1, __ATOMIC_RELAXED);
        __atomic_store_n(&r->slots, reg_events + (size_t)k * reg_capacity, __ATOMIC_RELAXED);
        if (__atomic_compare_exchange_n(&r->state, &expected, HAK_RING_OWNED, false,
                                        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            return r;
    }
    return NULL;
}

void hak_ring_orphan(hak_ring_t *ring)
{
    if (!ring)
        return;
    /* Release: every event this thread pushed is visible to the learner that sees ORPHANED. */
    uint32_t expected = HAK_RING_OWNED;
    if (!__atomic_compare_exchange_n(&ring->state, &expected, HAK_RING_ORPHANED, false,
                                     __ATOMIC_RELEASE, __ATOMIC_RELAXED))
        hak_warn("ACE: orphaning an event ring that is not owned (state %u); ignored",
                 expected);
}

void hak_ring_release_pages(hak_ring_t *ring)
{
    hak_event_t *slots = __atomic_load_n(&ring->slots, __ATOMIC_RELAXED);
    if (!slots)
        return;
    uintptr_t page = 4096, start = (uintptr_t)slots;
    uintptr_t end = start + (size_t)(__atomic_load_n(&ring->mask, __ATOMIC_RELAXED) + 1u) *
                                sizeof(hak_event_t);
    start = (start + page - 1) & ~(page - 1); /* whole pages of this slot's events only */
    end &= ~(page - 1);
    if (end > start)
        madvise((void *)start, end - start, MADV_DONTNEED);
}

hak_ring_t *hak_ring_get(uint32_t slot)
{
    hak_ring_t *rings = __atomic_load_n(&reg_rings, __ATOMIC_ACQUIRE);
    if (!rings || slot >= HAK_RING_SLOTS)
        return NULL;
    return &rings[slot];
}

void hak_ring_count_no_ring_drop(void)
{
    __atomic_fetch_add(&reg_no_ring_drops, 1, __ATOMIC_RELAXED);
}

uint64_t hak_ring_no_ring_drops(void)
{
    return __atomic_load_n(&reg_no_ring_drops, __ATOMIC_RELAXED);
}
