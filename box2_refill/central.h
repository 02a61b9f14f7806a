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
 * Invariants: depot_count == length of the depot chain; depot_count <= depot_max, except
 * transiently inside hak_central_put; depot_low <= depot_count.
 */
#ifndef HAK_BOX2_CENTRAL_H
#define HAK_BOX2_CENTRAL_H

#include <pthread.h>
#include <stdint.h>

#include "shared_contracts/size_classes.h"
#include "span.h"

typedef struct hak_central {
    pthread_mutex_t lock;
    void *depot;          /* chain of cached blocks, word 0 links */
    uint32_t depot_count; /* blocks in the chain */
    uint32_t depot_low;   /* lowest depot_count since the last decay tick */
    uint32_t depot_max;   /* overflow goes back to the spans */
    uint32_t spans;       /* ACTIVE spans of this class */
    hak_span_t *partial;  /* ACTIVE spans with free or uncarved blocks */
} __attribute__((aligned(64))) hak_central_t;

extern hak_central_t hak_central[HAK_NUM_CLASSES];

/* Set depot_max from the configuration (at init). */
void hak_central_configure(void);

/* Take up to `want` blocks (want >= 1): depot first, then span free lists, then carving, then
 * new spans. Returns the count (0: out of memory, errno ENOMEM); *head..*tail is a chain whose
 * blocks all carry the free key, *tail's link is NULL. */
uint32_t hak_central_take(unsigned class_idx, uint32_t want, void **head, void **tail);

/* Give back a chain of n blocks (word 0 links, tail's link ignored): into the depot up to
 * depot_max, the rest to their spans. Empty spans go to the pool. */
void hak_central_put(unsigned class_idx, void *head, void *tail, uint32_t n, uint64_t now_ms);

/* Return up to `n` depot blocks to their spans (decay and trim). */
void hak_central_release_depot(unsigned class_idx, uint32_t n, uint64_t now_ms);

#endif
