/* box1_tls/fastpath.h - Box 1, the hot path: a thread-local LIFO list per size class.
 *
 * On a hit, malloc pops and free pushes: no lock, no atomic, no syscall, no call out of Box 1.
 * A miss (empty list), an overflow (count > cap) or a pointer that is not a plain small block
 * takes exactly one unlikely branch to a cold function in Box 2 (shared_contracts/tcache.h).
 *
 * What free checks on the hit path, and why it is cheap:
 *   - the page map says hakmem owns the 64 KiB page (two dependent loads): a stack pointer or
 *     a pointer from another allocator goes to hak_free_slow, which aborts;
 *   - the offset in the span is a whole number of blocks (a multiply): interior pointers abort;
 *   - word 1 of the block is not the free key: if it is, the block may already be cached, and
 *     hak_free_recheck walks this thread's list to tell a double free from chance.
 */
#ifndef HAK_BOX1_FASTPATH_H
#define HAK_BOX1_FASTPATH_H

#include <stddef.h>
#include <stdint.h>

#include "shared_contracts/pagemap.h"
#include "shared_contracts/size_classes.h"
#include "shared_contracts/tcache.h"

/* Cold paths of Box 1 (box1_tls/misuse.c). */
void hak_free_recheck(void *ptr, unsigned class_idx);
__attribute__((noreturn, cold)) void hak_bad_interior(void *ptr, unsigned class_idx,
                                                      const char *caller);
__attribute__((noreturn, cold)) void hak_free_interior(void *ptr, unsigned class_idx);

/* The _or forms take the caller's own cold paths, called in tail position (C++'s new must
 * see a failure, and a tail call keeps the hit path free of saved registers): `miss` for an
 * empty list (pool_refill_and_alloc's contract), `large` for a size above every class
 * (hak_large_alloc's). */
static inline __attribute__((always_inline)) void *hak_pop_or(size_t class_idx,
                                                             void *(*miss)(unsigned))
{
    uint64_t *block = hak_tcache.head[class_idx];
    if (HAK_UNLIKELY(!block))
        return miss((unsigned)class_idx);
    hak_tcache.head[class_idx] = (void *)block[0];
    hak_tcache.room[class_idx]++;
    block[1] = 0; /* clear the free key: the block is no longer cached */
    hak_tcache.allocs[class_idx]++;
    return block;
}

static inline __attribute__((always_inline)) void *hak_pop(size_t class_idx)
{
    return hak_pop_or(class_idx, pool_refill_and_alloc);
}

static inline __attribute__((always_inline)) void *
hak_alloc_fast_or(size_t size, void *(*miss)(unsigned), void *(*large)(size_t, size_t))
{
    size_t class_idx;
    if (HAK_LIKELY(size <= HAK_SMALL_LOOKUP_MAX))
        class_idx = hak_small_class[(size + 15) >> 4];
    else if (size <= HAK_MAX_CLASS_SIZE)
        class_idx = hak_pool_class(size);
    else
        return large(size, HAK_MIN_ALIGN);
    return hak_pop_or(class_idx, miss);
}

static inline __attribute__((always_inline)) void *hak_alloc_fast(size_t size)
{
    return hak_alloc_fast_or(size, pool_refill_and_alloc, hak_large_alloc);
}

/* The free hit path once the page map has given a small class: the interior check (which
 * calls `interior`, a cold noreturn function, on failure), the free-key check, the push.
 * hak_free_fast and C++'s sized delete (cxx_operators.c) share it. */
static inline __attribute__((always_inline)) void
hak_free_to_class(void *ptr, size_t class_idx, void (*interior)(void *, unsigned))
{
    uintptr_t addr = (uintptr_t)ptr;
    if (HAK_UNLIKELY(!hak_is_block_start(hak_span_offset(addr, class_idx), class_idx)))
        interior(ptr, (unsigned)class_idx);

    uint64_t *block = ptr;
    uint64_t key = hak_tcache.free_key;
    if (HAK_UNLIKELY(block[1] == key)) {
        hak_free_recheck(ptr, class_idx);
        return;
    }
    block[0] = (uint64_t)hak_tcache.head[class_idx];
    block[1] = key;
    hak_tcache.head[class_idx] = block;
    if (HAK_UNLIKELY(--hak_tcache.room[class_idx] < 0))
        pool_spill(class_idx);
}

static inline __attribute__((always_inline)) void hak_free_fast(void *ptr)
{
    uint64_t entry = hak_pagemap_get((uintptr_t)ptr);
    size_t class_idx = (entry & HAK_PM_TAG_MASK) - 1u;
    if (HAK_UNLIKELY(class_idx >= HAK_NUM_CLASSES)) { /* NULL, large, or not ours */
        hak_free_slow(ptr);
        return;
    }
    hak_free_to_class(ptr, class_idx, hak_free_interior);
}

#endif
