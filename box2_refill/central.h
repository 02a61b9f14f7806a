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
 * Invariants: depot_count == the sum of the batches' counts; depot_count <= depot_max;
 * depot_batches <= HAK_DEPOT_BATCHES; depot_low <= depot_count.
 */
#ifndef HAK_BOX2_CENTRAL_H
#define HAK_BOX2_CENTRAL_H

#include <pthread.h>
#include <stdint.h>

#include "shared_contracts/size_classes.h"
#include "span.h"

#define HAK_DEPOT_BATCHES 64u

/* A chain of blocks as one thread spilled it: head..tail linked through word 0. */
typedef struct hak_batch {
    void *head, *tail;
    uint32_t count;
} hak_batch_t;

typedef struct hak_central {
    pthread_mutex_t lock;
    hak_batch_t depot[HAK_DEPOT_BATCHES]; /* a stack of batches: taken and given whole, O(1) */
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
 * new spans. Returns the count (0: out of memory, errno ENOMEM); *head..*tail is a chain whose
 * blocks all carry the free key, *tail's link is NULL. */
uint32_t hak_central_take(unsigned class_idx, uint32_t want, void **head, void **tail);

/* Give back a chain of n blocks (word 0 links, tail's link ignored): into the depot up to
 * depot_max, the rest to their spans. Empty spans go to the pool. */
void hak_central_put(unsigned class_idx, void *head, void *tail, uint32_t n, uint64_t now_ms);

/* The same, choosing: depot 0 sends the chain straight to its spans (blocks nobody used for a
 * while: in the depot they would only keep their spans from emptying). */
void hak_central_put_to(unsigned class_idx, void *head, void *tail, uint32_t n, uint64_t now_ms,
                        int depot);

/* Return up to `n` depot blocks to their spans (decay and trim). */
void hak_central_release_depot(unsigned class_idx, uint32_t n, uint64_t now_ms);

/* Hand the spare span back to the pool if it has been idle for at least idle_ms. */
void hak_central_release_spare(unsigned class_idx, uint64_t now_ms, uint64_t idle_ms);

#endif
