/* box2_refill/central.h - the per-class central free lists: a depot of cached blocks in front
 * of the class's spans.
 *
 * Every function here runs with the class lock (hak_central[c].lock) held by the caller.
 *
 * Where a block of class c can be, exactly one of:
 *   in a program's hands | in one thread list | in the depot | on its span's free list |
 *   not yet carved.
 * Blocks in thread lists and in the depot carry hak_free_key in word 1; their span counts
 * them in in_use.
 *
 * The spare: the first span of a class to empty is kept, reset to uncarved, instead of going
 * back to the pool, so a class that breathes in and out does not remap its page map entries
 * each time; the decay tick returns it after HAKMEM_DECAY_MS.
 *
 * Invariants: depot_count == the sum of the batches' counts, and each batch's length is its
 * count; depot_count <= depot_max; depot_batches <= HAK_DEPOT_BATCHES;
 * depot_low <= depot_count; every span on the partial list is ACTIVE, of this class, and keeps
 * the capacity equation of span.h. With HAKMEM_DEBUG=1, hak_central_check checks the batches'
 * lengths, the sum, and the first four spans of the partial list, at each slow path of the
 * class.
 */
#ifndef HAK_BOX2_CENTRAL_H
#define HAK_BOX2_CENTRAL_H

#include <pthread.h>
#include <stdint.h>

#include "shared_contracts/chain.h"
#include "shared_contracts/size_classes.h"
#include "span.h"

#define HAK_DEPOT_BATCHES 1024u /* enough for depot_max of the small classes at 64-block batches */

typedef struct hak_central {
    pthread_mutex_t lock;
    hak_chain_t depot[HAK_DEPOT_BATCHES]; /* a stack of batches (chains as Box 1 gave them):
                                            * taken and given whole, O(1) */
    uint32_t depot_batches; /* batches on the stack */
    uint32_t depot_count;   /* blocks in them */
    uint32_t depot_low;   /* lowest depot_count since the last decay tick */
    uint32_t depot_max;   /* overflow goes back to the spans */
    uint32_t spans;       /* ACTIVE spans of this class, the spare included */
    hak_span_t *partial;  /* ACTIVE spans with free or uncarved blocks */
    hak_span_t *spare;    /* one empty span kept back (not on partial), or NULL */
    uint64_t spare_since_ms; /* when it became the spare */
} __attribute__((aligned(64))) hak_central_t;

extern hak_central_t hak_central[HAK_NUM_CLASSES];

/* Set depot_max from the configuration (at init). */
void hak_central_configure(void);

/* Take up to `want` blocks (want >= 1): depot first, then span free lists, then carving, then
 * new spans. Returns the count (0: out of memory, errno ENOMEM); *out is a chain whose blocks
 * all carry the free key, its tail's link NULL. */
uint32_t hak_central_take(unsigned class_idx, uint32_t want, hak_chain_t *out);

/* Give back a chain (count >= 1): depot 1 puts it in the depot as one batch while it fits
 * depot_max and a batch slot is free, else (and with depot 0) each block goes back to its
 * span. Empty spans go to the spare or the pool. */
void hak_central_put(unsigned class_idx, hak_chain_t chain, uint64_t now_ms, int depot);

/* HAKMEM_DEBUG=1: abort with a "hakmem: invariant broken: ..." message naming the equation
 * if one of the invariants above does not hold for class_idx. */
void hak_central_check(unsigned class_idx);

/* Return whole batches, oldest first, to their spans until at least `n` blocks went back or
 * the depot is empty (the decay tick; hak_release_cached). */
void hak_central_release_depot(unsigned class_idx, uint32_t n, uint64_t now_ms);

/* Hand the spare span back to the pool if it has been idle for at least idle_ms. */
void hak_central_release_spare(unsigned class_idx, uint64_t now_ms, uint64_t idle_ms);

#endif
