/* box1_tls/misuse.c - cold paths of free that decide between chance and misuse. */
#include <stdint.h>

#include "misuse.h"

#include "profiler.h"
#include "shared_contracts/diag.h"
#include "shared_contracts/pagemap.h"
#include "shared_contracts/size_classes.h"
#include "tcache.h"

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

/* Does word 0 of ptr read as the link of a free block of class_idx: the encoded address of
 * another block of the class (in the page map), or of the end of a list? A block some list or
 * chain holds always does; a value the program stored there by chance, with odds of 2^-64
 * already spent on word 1, practically never. */
static int reads_as_link(const void *ptr, unsigned class_idx)
{
    uint64_t next = hak_link_decode(ptr);
    if (!hak_link_ok(next))
        return 0;
    if (next == (uintptr_t)HAK_CHAIN_END)
        return 1;
    return next && hak_pm_class(hak_pagemap_get(next)) == class_idx &&
           hak_span_offset(next, class_idx) % hak_class_size(class_idx) == 0;
}

/* Word 1 of the block equals the free key: the block is already free, or the program stored
 * that value there by chance. Walk this thread's list: a block in it is a double free. A block
 * that is not in it but whose word 0 also reads as a link of its class is free elsewhere: in
 * another thread's list (freed there first, freed here again: a double free across threads,
 * which would otherwise hand the block out twice), in a mailbox or depot, or back in its
 * span. Anything else is chance, and is pushed as usual. Cold: the hit path pays nothing for
 * either check. */
void hak_free_recheck(void *ptr, uintptr_t x16)
{
    unsigned class_idx = hak_x16_class(x16);
    hak_list_t *l = hak_list(class_idx);
    uint32_t n = 0, count = hak_list_count(class_idx);
    for (uint64_t *b = l->head; b != HAK_CHAIN_END && n <= count; b = hak_block_next(b), n++) {
        if (b == ptr)
            hak_fatal("free(%p): double free: the %u-byte block is already free "
                      "(in this thread's cache)",
                      ptr, hak_class_size(class_idx));
    }
    if (reads_as_link(ptr, class_idx))
        hak_fatal("free(%p): double free: the %u-byte block is already free (cached by "
                  "another thread, or back in the allocator)",
                  ptr, hak_class_size(class_idx));
    hak_push_x16(x16, ptr, hak_free_key);
}
