/* shared_contracts/pagemap.h - address -> owner lookup, shared by Box 1 (free hit path, read
 * only) and Box 2 (the only writer).
 *
 * Layout: a two-level radix map over the 47-bit user address space at 64 KiB granularity
 * ("map pages"). Level 1 is a static array of 8192 slots (one per 16 GiB); level 2 is an
 * mmap'd array of 2^18 entries created on first use and never freed. A level-1 slot holds its
 * level-2 table's address biased by minus (slot << 18) entries, so the lookup indexes it with
 * addr >> 16 directly; a slot with no table points (biased) at one shared all-zero table, so
 * the lookup needs no NULL test. hak_pagemap_boot() fills the slots; it runs from a
 * constructor and from library init, before any block exists.
 *
 * An entry is 0 when hakmem owns nothing there. Otherwise:
 *   entry & 63 == class_idx + 1 (1..HAK_NUM_CLASSES): a small span; entry & ~63 is its span_t.
 *   entry & 63 == HAK_PM_LARGE: a large block starts in this map page; entry & ~63 is its header.
 *
 * Synchronisation: Box 2 writes an entry (relaxed store) before any block of that span or
 * large block is handed out, and clears or rewrites it only when no block there is live, so a
 * valid free always reads a stable entry. Level-2 tables are published with a release CAS and
 * read with an acquire load. Addresses outside 47 bits alias (masked), which only matters
 * for pointers no allocator could have returned.
 */
#ifndef HAK_PAGEMAP_H
#define HAK_PAGEMAP_H

#include <stdint.h>

#define HAK_PM_SHIFT 16u                 /* 64 KiB map pages */
#define HAK_PM_L1_SHIFT 34u              /* 16 GiB per level-2 table */
#define HAK_PM_L1_SIZE (1u << 13)        /* covers 2^47 bytes */
#define HAK_PM_L2_SIZE (1u << 18)        /* entries per level-2 table */
#define HAK_PM_TAG_MASK 63u
#define HAK_PM_LARGE 63u

extern uintptr_t hak_pagemap_l1[HAK_PM_L1_SIZE];

void hak_pagemap_boot(void);

static inline uint64_t hak_pagemap_get(uintptr_t addr)
{
    uintptr_t biased = __atomic_load_n(
        &hak_pagemap_l1[(addr >> HAK_PM_L1_SHIFT) & (HAK_PM_L1_SIZE - 1)], __ATOMIC_ACQUIRE);
    return __atomic_load_n((const uint64_t *)(biased + ((addr >> HAK_PM_SHIFT) << 3)),
                           __ATOMIC_RELAXED);
}

#endif
