/* box1_tls/misuse.c - cold paths of free that decide between chance and misuse. */
#include <stdint.h>

#include "fastpath.h"
#include "shared_contracts/diag.h"

void hak_free_interior(void *ptr, unsigned class_idx)
{
    const hak_class_info_t *ci = &hak_class_info[class_idx];
    uintptr_t addr = (uintptr_t)ptr;
    uintptr_t span = addr & ~(uintptr_t)ci->span_mask;
    uintptr_t start = span + hak_block_index(addr - span, ci) * ci->size;
    hak_fatal("free(%p): invalid pointer: it points %lu bytes into the %u-byte block at %p",
              ptr, (unsigned long)(addr - start), ci->size, (void *)start);
}

/* Word 1 of the block equals the free key: either the block is already in this thread's
 * list (a double free), or the program stored that value there by chance. Walk the list to
 * know; a chance match is pushed as usual. */
void hak_free_recheck(void *ptr, unsigned class_idx)
{
    hak_bin_t *bin = &hak_tcache.bin[class_idx];
    uint32_t n = 0;
    for (uint64_t *b = bin->head; b && n <= bin->count; b = (uint64_t *)b[0], n++) {
        if (b == ptr)
            hak_fatal("free(%p): double free: the %u-byte block is already free "
                      "(in this thread's cache)",
                      ptr, hak_class_size(class_idx));
    }
    uint64_t *block = ptr;
    block[0] = (uint64_t)bin->head;
    block[1] = hak_free_key;
    bin->head = block;
    if (++bin->count > bin->cap)
        pool_spill(class_idx);
}
