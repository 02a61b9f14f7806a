/* box2_refill/central.h - the per-class central lists: the class's spans with free blocks.
 *
 * Every function here runs with the class lock (hak_central[c].lock) held by the caller, and
 * works on block addresses, not on the blocks' memory: the caller links the blocks it takes
 * into a chain, and walks a chain given back into an array, outside the lock
 * (box2_refill/refill.c).
 *
 * Where a block of class c can be, exactly one of:
 *   in a program's hands | in one thread list | in the depot | free in its span (a set bit
 *   of its freemap).
 * Blocks in thread lists and in the depot carry hak_free_key in word 1; their span counts
 * them in in_use.
 *
 * The depot: a few chains that lists spilled, kept whole (at most depot_max blocks, a few
 * refills' worth) and handed whole to the next refills, so a steady flow from one thread's
 * frees to another thread's mallocs (a producer and a consumer) costs O(1) a batch. It is
 * small on purpose: its blocks come out in the order they were freed, so it bounds how many
 * blocks reuse the freeing order; every spill it cannot take goes to the bitmaps.
 *
 * Address order: a refill takes the lowest free blocks of the span at the head of the partial
 * list, and a span that gets a block back after it was full joins the list at its tail, so
 * refills drain one span, lowest address first, before they move to the next: after a
 * program frees a structure in any order, the next blocks it allocates come out dense again.
 *
 * The spare: the first span of a class to empty is kept, reset to all free, instead of going
 * back to the pool, so a class that breathes in and out does not remap its page map entries
 * each time; the decay tick returns it after HAKMEM_DECAY_MS.
 *
 * Invariants: depot_count == the sum of the depot chains' counts, each chain's length is its
 * count, depot_count <= depot_max, depot_low <= depot_count; every span on the partial list is ACTIVE, of this class, has in_use < capacity
 * and keeps the equations of span.h; partial_tail is the list's last span. With
 * HAKMEM_DEBUG=1, hak_central_check checks the depot's sum and lengths and the first four spans of the partial list at each
 * slow path of the class.
 */
#ifndef HAK_BOX2_CENTRAL_H
#define HAK_BOX2_CENTRAL_H

#include <pthread.h>
#include <stdint.h>

#include "shared_contracts/chain.h"
#include "shared_contracts/size_classes.h"
#include "span.h"

/* The most blocks one take or put handles under one hold of the class lock. */
#define HAK_CENTRAL_BATCH 256u
#define HAK_DEPOT_BATCHES 8u /* depot slots; depot_max bounds the blocks in them */

typedef struct hak_central {
    pthread_mutex_t lock;
    hak_chain_t depot[HAK_DEPOT_BATCHES]; /* a stack of chains as Box 1 spilled them */
    uint32_t depot_batches;   /* chains on the stack */
    uint32_t depot_count;     /* blocks in them */
    uint32_t depot_low;       /* lowest depot_count since the last decay tick */
    uint32_t depot_max;       /* four fixed refills' worth (hak_central_configure) */
    uint32_t spans;           /* ACTIVE spans of this class, the spare included */
    hak_span_t *partial;      /* ACTIVE spans with free blocks; refills take from the head */
    hak_span_t *partial_tail; /* its last span: where a span that was full rejoins */
    hak_span_t *spare;        /* one empty span kept back (not on partial), or NULL */
    uint64_t spare_since_ms;  /* when it became the spare */
} __attribute__((aligned(64))) hak_central_t;

extern hak_central_t hak_central[HAK_NUM_CLASSES];

/* Set depot_max from the fixed refill counts (at init). */
void hak_central_configure(void);

/* Take up to `want` blocks from the depot: whole chains while they fit, then a cut of the
 * next. Returns the count (0 when the depot is empty); *out is linked and keyed. */
uint32_t hak_central_take_depot(unsigned class_idx, uint32_t want, hak_chain_t *out);

/* Keep a spilled chain whole in the depot if a slot is free and it fits depot_max: 1 if kept,
 * 0 if the caller must put its blocks into their spans. */
int hak_central_put_depot(unsigned class_idx, hak_chain_t chain);

/* Put the depot's chains, oldest first, into their spans until at least n blocks went
 * (the decay tick; hak_release_cached). Walks the chains under the lock. */
void hak_central_release_depot(unsigned class_idx, uint32_t n, uint64_t now_ms);

/* Take up to `want` blocks (1 <= want <= HAK_CENTRAL_BATCH) into blocks[], in address order
 * within each span: the lowest free blocks of the partial list's head span, then the next
 * span's, then the spare, then new spans. Returns the count (0: out of memory, errno ENOMEM).
 * The blocks are not touched. */
uint32_t hak_central_take(unsigned class_idx, uint32_t want, void **blocks);

/* Put n blocks (1 <= n <= HAK_CENTRAL_BATCH) back into their spans. Aborts naming the block
 * if one is not of this class or is already free in its span (a double free). Empty spans go
 * to the spare or the pool. */
void hak_central_put(unsigned class_idx, void *const *blocks, uint32_t n, uint64_t now_ms);

/* HAKMEM_DEBUG=1: abort with a "hakmem: invariant broken: ..." message naming the equation
 * if one of the invariants above does not hold for class_idx. */
void hak_central_check(unsigned class_idx);

/* Hand the spare span back to the pool if it has been idle for at least idle_ms. */
void hak_central_release_spare(unsigned class_idx, uint64_t now_ms, uint64_t idle_ms);

#endif
