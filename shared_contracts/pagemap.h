/* shared_contracts/pagemap.h - address -> owner lookup, shared by Box 1 (free hit path, read
 * only) and Box 2 (the only writer).
 *
 * Layout: a two-level radix map over the 47-bit user address space at 64 KiB granularity
 * ("map pages"; an OS page is 4 KiB and never called a map page). Level 1 is a static array of
 * 8192 slots (one per 16 GiB); level 2 is an mmap'd array of 2^18 entries created on first use
 * and never freed. A level-1 slot holds its level-2 table's address biased by minus
 * (slot << 18) entries, so the lookup indexes it with addr >> 16 directly; a slot with no
 * table points (biased) at one shared all-zero table, so the lookup needs no NULL test.
 * hak_pagemap_boot() fills the slots; it runs from a constructor and from library init,
 * before any block exists.
 *
 * An entry is (tag << HAK_PM_TAG_SHIFT) | owner:
 *   tag 0: hakmem owns nothing there (the whole entry is 0);
 *   tag class_idx + 1 (1..HAK_NUM_CLASSES): a small span; owner is its hak_span_t;
 *   tag HAK_PM_LARGE: a large block starts in this map page; owner is its header;
 *   tag HAK_PM_SAMPLED: a slot of the sampled-block store; owner NULL (the slot's header is
 *     at the map page's start).
 * The tag sits in the top bits so the free hit path gets tag * 16 (its index into 16-byte
 * per-class tables) with one 16-bit load of the entry's top bits: hak_pagemap_x16.
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

#include "size_classes.h"

#define HAK_PM_SHIFT 16u                 /* 64 KiB map pages */
#define HAK_PM_L1_SHIFT 34u              /* 16 GiB per level-2 table */
#define HAK_PM_L1_SIZE (1u << 13)        /* covers 2^47 bytes */
#define HAK_PM_L2_SIZE (1u << 18)        /* entries per level-2 table */
#define HAK_PM_TAG_SHIFT 52u
#define HAK_PM_LARGE 63u
#define HAK_PM_SAMPLED 62u /* a slot of the sampled-block store (box2_refill/sample_store.c) */
#define HAK_PM_TAGS 64u

extern uintptr_t hak_pagemap_l1[HAK_PM_L1_SIZE] __attribute__((visibility("hidden")));
extern uint64_t hak_pagemap_zero[HAK_PM_L2_SIZE]; /* the shared all-zero level 2 */

void hak_pagemap_boot(void);

/* What level-1 slot `slot` holds for level-2 table `table`. */
static inline uintptr_t hak_pagemap_bias(const uint64_t *table, unsigned slot)
{
    return (uintptr_t)table - ((uintptr_t)slot << (HAK_PM_L1_SHIFT - HAK_PM_SHIFT)) * 8u;
}

static inline uint64_t hak_pagemap_get(uintptr_t addr)
{
    uintptr_t biased = __atomic_load_n(
        &hak_pagemap_l1[(addr >> HAK_PM_L1_SHIFT) & (HAK_PM_L1_SIZE - 1)], __ATOMIC_ACQUIRE);
    return __atomic_load_n((const uint64_t *)(biased + ((addr >> HAK_PM_SHIFT) << 3)),
                           __ATOMIC_RELAXED);
}

/* tag * 16 of addr's entry alone: the entry's top 16 bits (x86-64 is little-endian), one load.
 * The free hit path's lookup. */
static inline uintptr_t hak_pagemap_x16(uintptr_t addr)
{
    uintptr_t biased = __atomic_load_n(
        &hak_pagemap_l1[(addr >> HAK_PM_L1_SHIFT) & (HAK_PM_L1_SIZE - 1)], __ATOMIC_ACQUIRE);
    const uint16_t *top = (const uint16_t *)(biased + ((addr >> HAK_PM_SHIFT) << 3)) + 3;
    return __atomic_load_n(top, __ATOMIC_RELAXED);
}
_Static_assert(HAK_PM_SAMPLED > HAK_NUM_CLASSES, "the sampled tag is no small class");
_Static_assert(HAK_PM_TAG_SHIFT == 52, "hak_pagemap_x16 reads tag << 4 as the top 16 bits");

static inline uint64_t hak_pm_entry(unsigned tag, const void *owner)
{
    return (uint64_t)tag << HAK_PM_TAG_SHIFT | (uint64_t)(uintptr_t)owner;
}
static inline unsigned hak_pm_tag(uint64_t entry) { return (unsigned)(entry >> HAK_PM_TAG_SHIFT); }
static inline void *hak_pm_owner(uint64_t entry)
{
    return (void *)(uintptr_t)(entry & (((uint64_t)1 << HAK_PM_TAG_SHIFT) - 1));
}
/* The small class of an entry, or a value >= HAK_NUM_CLASSES (not ours, large or sampled). */
static inline unsigned hak_pm_class(uint64_t entry) { return hak_pm_tag(entry) - 1u; }

/* The free hit path's check of a small block, one 16-byte row per tag: a pointer p of a tag
 * is the start of a block exactly when (p & span_mask) * divmagic < divmagic (Lemire, Kaser,
 * Kurz 2019; size_classes.h). Rows of tags that are not small classes have divmagic 0, so the
 * same test fails for them: one branch sends NULL, foreign, large and interior pointers to the
 * cold path, which tells them apart. */
typedef struct hak_free_check {
    uint64_t divmagic;
    uint64_t span_mask;
} hak_free_check_t;

#define HAK_FC_ROW(size, span_kib, refill) {UINT64_MAX / (size) + 1, (span_kib) * 1024u - 1u},
static const hak_free_check_t hak_free_checks[HAK_PM_TAGS] __attribute__((aligned(64))) = {
    {0, 0}, HAK_CLASS_LIST(HAK_FC_ROW)};
#undef HAK_FC_ROW

#endif
