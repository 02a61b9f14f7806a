/* shared_contracts/pagemap.c - the page map's level 1 and its boot (pagemap.h). The
 * writer side (creating level-2 tables, storing entries) is Box 2's, box2_refill/pagemap.c. */
#include "pagemap.h"

/* Level 1: biased table addresses. Each slot goes "zero table" -> its own table once (CAS by
 * Box 2), never back. */
uintptr_t hak_pagemap_l1[HAK_PM_L1_SIZE];
uint64_t hak_pagemap_zero[HAK_PM_L2_SIZE]; /* never written: .bss, not resident */

void hak_pagemap_boot(void)
{
    if (__atomic_load_n(&hak_pagemap_l1[0], __ATOMIC_ACQUIRE))
        return;
    for (unsigned i = HAK_PM_L1_SIZE; i-- > 0;) /* slot 0 last: it marks "booted" */
        __atomic_store_n(&hak_pagemap_l1[i], hak_pagemap_bias(hak_pagemap_zero, i),
                         __ATOMIC_RELEASE);
}

__attribute__((constructor(101))) static void pagemap_constructor(void) { hak_pagemap_boot(); }
