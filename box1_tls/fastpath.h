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

static inline __attribute__((always_inline)) void *hak_pop(size_t class_idx)
{
    uint64_t *block = hak_tcache.head[class_idx];
    if (HAK_UNLIKELY(!block))
        return pool_refill_and_alloc(class_idx);
    hak_tcache.head[class_idx] = (void *)block[0];
    hak_tcache.room[class_idx]++;
    block[1] = 0; /* clear the free key: the block is no longer cached */
    hak_tcache.allocs[class_idx]++;
    return block;
}

static inline __attribute__((always_inline)) void *hak_alloc_fast(size_t size)
{
    size_t class_idx;
    if (HAK_LIKELY(size <= HAK_SMALL_LOOKUP_MAX))
        class_idx = hak_small_class[(size + 15) >> 4];
    else if (size <= HAK_MAX_CLASS_SIZE)
        class_idx = hak_pool_class(size);
    else
        return hak_large_alloc(size, HAK_MIN_ALIGN);
    return hak_pop(class_idx);
}

static inline __attribute__((always_inline)) void hak_free_fast(void *ptr)
{
    uintptr_t addr = (uintptr_t)ptr;
    uint64_t entry = hak_pagemap_get(addr);
    size_t class_idx = (entry & HAK_PM_TAG_MASK) - 1u;
    if (HAK_UNLIKELY(class_idx >= HAK_NUM_CLASSES)) { /* NULL, large, or not ours */
        hak_free_slow(ptr);
        return;
    }
    if (HAK_UNLIKELY(!hak_is_block_start(hak_span_offset(addr, class_idx), class_idx)))
        hak_free_interior(ptr, class_idx);

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

#endif
