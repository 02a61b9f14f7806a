/* box2_refill/free_slow.c - frees Box 1 hands over: NULL, large blocks, sampled blocks of the
 * store (sample_store.c), and pointers hakmem does not own (which abort with a message naming the pointer). */
#include <errno.h>

#include "large.h"
#include "sample_store.h"
#include "shared_contracts/diag.h"
#include "shared_contracts/pagemap.h"
#include "shared_contracts/backend.h"

void hak_free_slow(void *ptr)
{
    if (!ptr)
        return;
    int saved = errno;
    uint64_t entry = hak_pagemap_get((uintptr_t)ptr);
    if (hak_pm_tag(entry) == HAK_PM_SAMPLED) {
        hak_store_free(ptr, "free");
        errno = saved;
        return;
    }
    if (hak_pm_tag(entry) != HAK_PM_LARGE)
        hak_fatal("free(%p): invalid pointer: hakmem did not allocate it, or it was freed "
                  "already",
                  ptr);
    hak_large_free(ptr, entry);
    errno = saved;
}
