/* box2_refill/refill.h - Box 2's refill and give-back engine (the hak_refill / hak_give
 * entry points of shared_contracts/backend.h), giving memory back, and what tests may hook
 * in the test build.
 */
#ifndef HAK_BOX2_REFILL_H
#define HAK_BOX2_REFILL_H

#include <stdint.h>

#include "shared_contracts/backend.h"

/* Test hooks, compiled only into the test build of the library (-DHAK_TEST_HOOKS: the
 * library the unit tests link, tests/tests.mk). The shipped library has neither the pointers
 * nor the calls: hak_test_refill_hook and hak_test_give_hook compile to nothing there
 * (tests/check_symbols.sh checks its symbols). Set only by tests, while no other thread
 * allocates.
 *   hak_refill_hook: called by every cached refill after its count is read (once, from the
 *     published table or the fixed count) and before any block is taken. Contract B's test
 *     publishes a new table from here and checks this refill still uses the count it read.
 *   hak_give_hook: called at each give-back with the chain's length, before it is put back.
 * The pointers are defined in box2_refill/test_hooks.c. */
#ifdef HAK_TEST_HOOKS
extern void (*hak_refill_hook)(unsigned class_idx, uint32_t refill_count);
extern void (*hak_give_hook)(unsigned class_idx, uint32_t count, enum hak_give why);

static inline void hak_test_refill_hook(unsigned class_idx, uint32_t refill_count)
{
    if (hak_refill_hook)
        hak_refill_hook(class_idx, refill_count);
}

static inline void hak_test_give_hook(unsigned class_idx, uint32_t count, enum hak_give why)
{
    if (hak_give_hook)
        hak_give_hook(class_idx, count, why);
}
#else
static inline void hak_test_refill_hook(unsigned class_idx, uint32_t refill_count)
{
    (void)class_idx;
    (void)refill_count;
}

static inline void hak_test_give_hook(unsigned class_idx, uint32_t count, enum hak_give why)
{
    (void)class_idx;
    (void)count;
    (void)why;
}
#endif

/* The decay tick, hak_flush_central, hak_reclaim and the purger: purge.h. */
#include "purge.h"

#endif
