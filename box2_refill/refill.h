/* box2_refill/refill.h - Box 2's refill and give-back engine (the hak_refill / hak_give
 * entry points of shared_contracts/backend.h), giving memory back, and what tests may hook.
 */
#ifndef HAK_BOX2_REFILL_H
#define HAK_BOX2_REFILL_H

#include <stdint.h>

#include "shared_contracts/backend.h"

/* Test hook: when set, called by every refill after its count is read (once, from the
 * published table or the fixed count) and before any block is taken. Contract B's test
 * publishes a new table from here and checks this refill still uses the count it read.
 * Written only by tests, while no other thread allocates. */
extern void (*hak_refill_hook)(unsigned class_idx, uint32_t refill_count);
/* Test hook: called at each give-back with the chain's length, before it is put back. */
extern void (*hak_give_hook)(unsigned class_idx, uint32_t count, enum hak_give why);

/* The decay tick, hak_release_cached, hak_reclaim and the purger: purge.h. */
#include "purge.h"

#endif
