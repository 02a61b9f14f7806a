/* box2_refill/pagemap.c - the writer side of shared_contracts/pagemap.h: level-2 tables and
 * entries. */
#include "shared_contracts/pagemap.h"

#include "os.h"
#include "pagemap_write.h"

static uint64_t *l2_for(uintptr_t addr, int create)
{
    unsigned i = (unsigned)(addr >> HAK_PM_L1_SHIFT) & (HAK_PM_L1_SIZE - 1);
    uintptr_t *slot = &hak_pagemap_l1[i];
    uintptr_t zero = hak_pagemap_bias(hak_pagemap_zero, i);
    uintptr_t cur = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (cur != zero && cur != 0)
        return (uint64_t *)(cur + ((uintptr_t)i << (HAK_PM_L1_SHIFT - HAK_PM_SHIFT)) * 8u);
    if (!create)
        return NULL;
    hak_pagemap_boot();
    uint64_t *fresh = hak_os.map(HAK_PM_L2_SIZE * sizeof(uint64_t));
    if (!fresh)
        return NULL;
    uintptr_t expected = zero;
    if (__atomic_compare_exchange_n(slot, &expected, hak_pagemap_bias(fresh, i), 0, __ATOMIC_RELEASE,
                                    __ATOMIC_ACQUIRE))
        return fresh;
    hak_os.unmap(fresh, HAK_PM_L2_SIZE * sizeof(uint64_t));
    return (uint64_t *)(expected + ((uintptr_t)i << (HAK_PM_L1_SHIFT - HAK_PM_SHIFT)) * 8u);
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
