/* box2_refill/pagemap_write.h - page map updates; Box 2 only.
 *
 * hak_pagemap_reserve: make sure level-2 tables exist for [start, start+len), so a later
 *   set_range on that range cannot fail (called when a chunk is mapped). -1 on ENOMEM.
 * hak_pagemap_set_range: store `entry` for every 64 KiB map page of [start, start+len)
 *   (start 64 KiB aligned). -1 on ENOMEM (only when the range was not reserved).
 */
#ifndef HAK_BOX2_PAGEMAP_WRITE_H
#define HAK_BOX2_PAGEMAP_WRITE_H

#include <stddef.h>
#include <stdint.h>

int hak_pagemap_reserve(uintptr_t start, size_t len);
int hak_pagemap_set_range(uintptr_t start, size_t len, uint64_t entry);

#endif
