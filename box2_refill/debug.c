/* box2_refill/debug.c - HAKMEM_DEBUG=1 checks on the spans' bitmaps (debug.h). */
#include "debug.h"

#include <stdint.h>
#include <string.h>

#include "shared_contracts/backend.h"
#include "shared_contracts/chain.h"
#include "shared_contracts/diag.h"
#include "shared_contracts/pagemap.h"
#include "shared_contracts/size_classes.h"

static uint32_t block_index(hak_span_t *s, void *block)
{
    return (uint32_t)(((uintptr_t)block - hak_span_base(s)) / hak_class_size(s->class_idx));
}

void hak_debug_take(hak_span_t *s, void *block, int was_free)
{
    uint32_t size = hak_class_size(s->class_idx);
    uint32_t i = block_index(s, block);
    if (was_free) {
        const unsigned char *b = block;
        for (uint32_t k = 16; k < size; k++)
            if (b[k] != HAK_DEBUG_POISON)
                hak_fatal("malloc: the free %u-byte block %p was written %u bytes in after it "
                          "was freed (use after free)",
                          size, block, k);
        if (((uint64_t *)block)[1] != hak_free_key) /* central.h: free blocks keep the key */
            hak_fatal("malloc: the free %u-byte block %p lost its free key: word 1 was written "
                      "after it was freed (use after free)",
                      size, block);
        uint64_t raw = ((uint64_t *)block)[0], next = hak_link_decode(block); /* chain.h */
        if (raw && next && next != (uintptr_t)HAK_CHAIN_END &&
            (!hak_link_ok(next) || hak_pm_class(hak_pagemap_get(next)) != s->class_idx))
            hak_fatal("malloc: corrupted free list: block %p links to %p, not a free %u-byte "
                      "block (use after free?)",
                      block, (void *)next, size);
    }
    uint64_t bit = 1ull << (i & 63);
    if (s->debug_bits[i >> 6] & bit)
        hak_fatal("malloc: block %p is already allocated (corrupted free list)", block);
    s->debug_bits[i >> 6] |= bit;
}

void hak_debug_put(hak_span_t *s, void *block)
{
    uint32_t size = hak_class_size(s->class_idx);
    uint32_t i = block_index(s, block);
    uint64_t bit = 1ull << (i & 63);
    if (!(s->debug_bits[i >> 6] & bit))
        hak_fatal("free(%p): double free: the %u-byte block is not allocated", block, size);
    s->debug_bits[i >> 6] &= ~bit;
    memset((char *)block + 16, HAK_DEBUG_POISON, size - 16);
}
