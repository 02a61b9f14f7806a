/* box1_tls/fastpath.h - Box 1's hit paths: malloc pops, free pushes (tcache.h).
 *
 * On a hit: no lock, no atomic read-modify-write, no syscall, no call out of Box 1, and one
 * cache line of thread-local data touched (the class's hak_list_t). A miss (empty list), an
 * overflow (room < 0) or a pointer that is not a plain small block takes one unlikely branch
 * to a cold function.
 *
 * What free checks on the hit path, and what each costs:
 *   - the page map (two dependent loads) gives the tag of the 64 KiB map page; the tag's row
 *     of hak_free_checks gives the span mask and the divisibility magic of its class;
 *   - one multiply and compare says the pointer starts a block of that class. The rows of
 *     tags that are not small classes fail the same test, so NULL, a stack pointer, a
 *     pointer from another allocator, a large block and an interior pointer all take one
 *     branch to hak_free_unusual, which tells them apart (and aborts on all but NULL and a
 *     live large block);
 *   - word 1 of the block is not the free key: if it is, the block may already be cached,
 *     and hak_free_recheck walks this thread's list to tell a double free from chance.
 */
#ifndef HAK_BOX1_FASTPATH_H
#define HAK_BOX1_FASTPATH_H

#include <stddef.h>
#include <stdint.h>

#include "shared_contracts/pagemap.h"
#include "shared_contracts/size_classes.h"
#include "shared_contracts/size_lookup.h"
#include "misuse.h"
#include "tcache.h"

/* The _or forms take the caller's own cold paths, called in tail position (C++'s operator
 * new must see a failure, and a tail call keeps the hit path free of saved registers): `miss`
 * for an empty list (hak_tcache_refill's contract), `large` for a size above every class
 * (hak_tcache_large's, with align). */
static inline __attribute__((always_inline)) void *
hak_alloc_fast_at_or(uintptr_t base, size_t size, void *(*miss)(unsigned),
                     void *(*large)(size_t, size_t))
{
    uintptr_t x16; /* (class_idx + 1) * 16 */
    if (HAK_LIKELY(size <= HAK_SMALL_LOOKUP_MAX))
        x16 = hak_small_x16[size];
    else if (HAK_LIKELY(size <= HAK_MAX_CLASS_SIZE))
        x16 = hak_upper_x16[(size + 255) >> 8];
    else
        return large(size, HAK_MIN_ALIGN);
    return hak_pop_at_or(base, x16, miss);
}

/* The same from the calling thread's hak_tcache (hak_tls_base). */
static inline __attribute__((always_inline)) void *
hak_alloc_fast_or(size_t size, void *(*miss)(unsigned), void *(*large)(size_t, size_t))
{
    return hak_alloc_fast_at_or(hak_tls_base(), size, miss, large);
}

static inline void *hak_large_default(size_t size, size_t align)
{
    return hak_tcache_large(size, align, 0);
}

static inline __attribute__((always_inline)) void *hak_alloc_fast(size_t size)
{
    return hak_alloc_fast_or(size, hak_tcache_refill, hak_large_default);
}

/* The free hit path once the page map gave x16 (the tag * 16 of ptr's map page): the block
 * start check (its failure goes to `unusual`, which sorts NULL, foreign, large and interior
 * pointers out), the free key, the push. free and C++'s sized delete share it. */
static inline __attribute__((always_inline)) void hak_free_x16_or(void *ptr, uintptr_t x16,
                                                                 void (*unusual)(void *))
{
    uintptr_t addr = (uintptr_t)ptr;
    const hak_free_check_t *fc = (const hak_free_check_t *)((const char *)hak_free_checks + x16);
    uint64_t magic = fc->divmagic;
    if (HAK_UNLIKELY((addr & fc->span_mask) * magic >= magic)) {
        unusual(ptr);
        return;
    }
    uint64_t *block = ptr;
    uint64_t key = hak_free_key;
    if (HAK_UNLIKELY(block[1] == key)) {
        hak_free_recheck(ptr, x16);
        return;
    }
    hak_push_x16(x16, block, key);
}

static inline __attribute__((always_inline)) void hak_free_fast(void *ptr)
{
    hak_free_x16_or(ptr, hak_pagemap_x16((uintptr_t)ptr), hak_free_unusual);
}

#endif
