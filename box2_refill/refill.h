/* box2_refill/refill.h - Box 2's refill and spill engine (implements the Box 1 contract of
 * shared_contracts/tcache.h), plus what tests may hook.
 */
#ifndef HAK_BOX2_REFILL_H
#define HAK_BOX2_REFILL_H

#include <stdint.h>

/* Test hook: when set, called by every refill after its count is read (once, from the
 * published table or the fixed count) and before any block is taken. Contract B's test
 * publishes a new table from here and checks this refill still uses the count it read.
 * Written only by tests, while no other thread allocates. */
extern void (*hak_refill_hook)(unsigned class_idx, uint32_t refill_count);

/* Idle-list trim of the calling thread (record t, LIVE): each list with no refill since the
 * last pass gives back 3/4 of its low-water bound, or half of itself if it did not spill
 * either, straight to the spans; then the next pass is scheduled. Called by the thread's own
 * refills and spills once the pass is due; tests call it directly. */
struct hak_thread;
void hak_list_trim(struct hak_thread *t, uint64_t now_ms);

/* The decay tick, hak_release_cached and the purger: purge.h. */
#include "purge.h"

#endif
