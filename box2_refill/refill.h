/* box2_refill/refill.h - Box 2's refill and give-back engine (the hak_refill / hak_give
 * entry points of shared_contracts/backend.h), giving memory back, and what tests may hook.
 */
#ifndef HAK_BOX2_REFILL_H
#define HAK_BOX2_REFILL_H

#include <stdint.h>

/* Test hook: when set, called by every refill after its count is read (once, from the
 * published table or the fixed count) and before any block is taken. Contract B's test
 * publishes a new table from here and checks this refill still uses the count it read.
 * Written only by tests, while no other thread allocates. */
extern void (*hak_refill_hook)(unsigned class_idx, uint32_t refill_count);

/* Move what no program and no thread list holds out of the central lists: every depot back
 * to its spans, every spare span to the pool. No Box 2 lock held. Nonzero if anything moved.
 * malloc_trim (hak_backend_trim) then purges the empty spans; hak_reclaim (span.h) unmaps
 * them. */
int hak_release_cached(uint64_t now_ms);

/* Decay: at most every tick, return idle depot blocks and old empty spans to the OS. */
void hak_decay_maybe(uint64_t now_ms);

#endif
