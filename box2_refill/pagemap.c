/* box2_refill/pagemap.c - the writer side of shared_contracts/pagemap.h. */
#include "shared_contracts/pagemap.h"

#include "os.h"
#include "pagemap_write.h"

/* Level 1: static, zero at start. Slots go NULL -> table once (CAS), never back. */
uint64_t *hak_pagemap_l1[HAK_PM_L1_SIZE];

static uint64_t *l2_for(uintptr_t addr, int create)
{
    uint64_t **slot = &hak_pagemap_l1[(addr >> HAK_PM_L1_SHIFT) & (HAK_PM_L1_SIZE - 1)];
    uint64_t *l2 = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (l2 || !create)
        return l2;
    uint64_t *fresh = hak_os.map(HAK_PM_L2_SIZE * sizeof(uint64_t));
    if (!fresh)
        return NULL;
    uint64_t *expected = NULL;
    if (__atomic_compare_exchange_n(slot, &expected, fresh, 0, __ATOMIC_RELEASE,
                                    __ATOMIC_ACQUIRE))
        return fresh;
    hak_os.unmap(fresh, HAK_PM_L2_SIZE * sizeof(uint64_t));
    return expected;
}

int hak_pagemap_set_range(uintptr_t start, size_t len, uint64_t entry)
{
    for (uintptr_t a = start; a < start + len; a += (uintptr_t)1 << HAK_PM_SHIFT) {
        uint64_t *l2 = l2_for(a, 1);
        if (!l2)
            return -1;
        __atomic_store_n(&l2[(a >> HAK_PM_SHIFT) & (HAK_PM_L2_SIZE - 1)], entry,
                         __ATOMIC_RELAXED);
    }
    return 0;
}

int hak_pagemap_reserve(uintptr_t start, size_t len)
{
    for (uintptr_t a = start; a < start + len; a += (uintptr_t)1 << HAK_PM_SHIFT)
        if (!l2_for(a, 1))
            return -1;
    return 0;
}
