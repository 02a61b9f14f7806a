/* box1_tls/misuse.c - cold paths of free that decide between chance and misuse. */
#include <stdint.h>

#include "fastpath.h"
#include "profiler.h"
#include "shared_contracts/diag.h"

void hak_bad_interior(void *ptr, unsigned class_idx, const char *caller)
{
    uintptr_t addr = (uintptr_t)ptr;
    uint32_t size = hak_class_size(class_idx);
    uint32_t into = hak_span_offset(addr, class_idx) % size;
    hak_fatal("%s(%p): invalid pointer: it points %u bytes into the %u-byte block at %p", caller,
              ptr, into, size, (void *)(addr - into));
}

/* The hit path's check failed: a pointer inside a small block aborts here; NULL, large
 * blocks, sampled blocks and pointers hakmem does not own are Box 2's, after the profiler
 * counted the free of a sampled one. */
void hak_free_unusual(void *ptr)
{
    uint64_t entry = hak_pagemap_get((uintptr_t)ptr);
    unsigned class_idx = hak_pm_class(entry);
    if (class_idx < HAK_NUM_CLASSES)
        hak_bad_interior(ptr, class_idx, "free");
    if (hak_pm_tag(entry) >= HAK_PM_SAMPLED)
        hak_prof_free(ptr);
    hak_free_slow(ptr);
}

/* Word 1 of the block equals the free key: either the block is already in this thread's
 * list (a double free), or the program stored that value there by chance. Walk the list to
 * know; a chance match is pushed as usual. */
void hak_free_recheck(void *ptr, uintptr_t x16)
{
    unsigned class_idx = hak_x16_class(x16);
    hak_list_t *l = hak_list(class_idx);
    uint32_t n = 0, count = hak_list_count(class_idx);
    for (uint64_t *b = l->head; b && n <= count; b = (uint64_t *)b[0], n++) {
        if (b == ptr)
            hak_fatal("free(%p): double free: the %u-byte block is already free "
                      "(in this thread's cache)",
                      ptr, hak_class_size(class_idx));
    }
    hak_push_x16(x16, ptr, hak_free_key);
}
