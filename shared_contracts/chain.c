/* shared_contracts/chain.c - the end of every thread list, and the report of a corrupted link
 * (chain.h). */
#include "chain.h"

#include "diag.h"

const uint64_t hak_chain_end[2] __attribute__((aligned(16))) = {0, 0};
const uint64_t hak_link_bad = HAK_LINK_BAD;

void hak_link_corrupt(const void *block, uint64_t decoded)
{
    hak_fatal("corrupted free list: the free block %p links to %p, which is not a block "
              "(overwritten after its free: a heap overflow from the block before it, or a "
              "write after free)",
              block, (void *)(uintptr_t)decoded);
}
