/* box1_tls/misuse.c - cold paths of free that decide between chance and misuse. */
#include <stdint.h>

#include "fastpath.h"
#include "shared_contracts/diag.h"

void hak_bad_interior(void *ptr, unsigned class_idx, const char *caller)
{
    uintptr_t addr = (uintptr_t)ptr;
    uint32_t size = hak_class_size(class_idx);
    uint32_t into = hak_span_offset(addr, class_idx) % size;
    hak_fatal("%s(%p): invalid pointer: it points %u bytes into the %u-byte block at %p", caller,
              ptr, into, size, (void *)(addr - into));
}

void hak_free_interior(void *ptr, unsigned class_idx) { hak_bad_interior(ptr, class_idx, "free"); }

/* Word 1 of the block equals the free key: either the block is already in this thread's
 * list (a double free), or the program stored that value there by chance. Walk the list to
 * know; a chance match is pushed as usual. */
void hak_free_recheck(void *ptr, unsigned class_idx)
{
    uint32_t n = 0, count = hak_bin_count(class_idx);
    for (uint64_t *b = hak_tcache.head[class_idx]; b && n <= count; b = (uint64_t *)b[0], n++) {
        if (b == ptr)
            hak_fatal("free(%p): double free: the %u-byte block is already free "
                      "(in this thread's cache)",
                      ptr, hak_class_size(class_idx));
    }
    uint64_t *block = ptr;
    block[0] = (uint64_t)hak_tcache.head[class_idx];
    block[1] = hak_tcache.free_key;
    hak_tcache.head[class_idx] = block;
    if (--hak_tcache.room[class_idx] < 0)
        pool_spill(class_idx);
}
