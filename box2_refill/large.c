/* box2_refill/large.c - blocks above HAK_MAX_CLASS_SIZE (or over-aligned): one mapping each.
 *
 * Layout: a mapping [base, base + map_len), 64 KiB aligned and a whole number of 64 KiB map
 * pages, so no other block shares its page map entries. The block starts at
 * user = base + lead (lead = max(64, align)); a 64-byte header sits just below it. The page map
 * entry of user's 64 KiB page points at the header (tag HAK_PM_LARGE); free, realloc and
 * malloc_usable_size are O(1). Freed mappings go to the large cache (large_cache.h) and are
 * reused, not zeroed: calloc asks for zeroing.
 * realloc grows and shrinks with mremap, moving pages instead of copying bytes.
 */

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "os.h"
#include "pagemap_write.h"
#include "large.h"
#include "large_cache.h"
#include "lock.h"
#include "span.h"
#include "shared_contracts/diag.h"
#include "shared_contracts/pagemap.h"
#include "shared_contracts/backend.h"

#define LARGE_MAGIC 0x65677261506b6168ull /* "hakParge" */
#define MAP_PAGE ((size_t)1 << HAK_PM_SHIFT)

typedef struct large_hdr {
    uint64_t magic;
    uintptr_t user_key; /* the block this header describes, xor LARGE_MAGIC (not a pointer a
                         * leak checker would follow) */
    uintptr_t base;    /* mapping start */
    size_t map_len;    /* mapping length */
    size_t lead;       /* user - base */
    uint64_t pad[3];
} large_hdr_t;
_Static_assert(sizeof(large_hdr_t) == 64, "header is one cache line below the block");

/* Statistics: relaxed atomics, any thread. */
static uint64_t large_live_count, large_live_bytes, large_total_count;

static size_t round_map(size_t n) { return (n + MAP_PAGE - 1) & ~(MAP_PAGE - 1); }

static uintptr_t page_of(const void *p) { return (uintptr_t)p & ~(uintptr_t)(MAP_PAGE - 1); }

static void *large_alloc(size_t size, size_t align, int zero)
{
    if (align < HAK_MIN_ALIGN)
        align = HAK_MIN_ALIGN;
    size_t lead = align > 64 ? align : 64;
    size_t map_align = align > MAP_PAGE ? align : MAP_PAGE;
    if (size > PTRDIFF_MAX - lead - 2 * map_align) {
        errno = ENOMEM;
        return NULL;
    }
    /* At least one byte past user, so user's map page lies inside the mapping even for
     * memalign(64 KiB or more, 0). */
    size_t map_len = round_map(lead + (size ? size : 1));
    size_t cached_len = 0;
    char *base = (char *)hak_large_cache_get(map_len, map_align, &cached_len);
    if (base) {
        map_len = cached_len;
        if (zero)
            memset(base + lead, 0, size);
    } else {
        base = hak_os_map_aligned(map_len, map_align);
        if (!base && hak_reclaim())
            base = hak_os_map_aligned(map_len, map_align);
        if (!base)
            return NULL;
    }
    char *user = base + lead;
    large_hdr_t *hdr = (large_hdr_t *)(user - sizeof(large_hdr_t));
    hdr->magic = LARGE_MAGIC;
    hdr->user_key = (uintptr_t)user ^ LARGE_MAGIC;
    hdr->base = (uintptr_t)base;
    hdr->map_len = map_len;
    hdr->lead = lead;
    if (hak_pagemap_set_range(page_of(user), MAP_PAGE, hak_pm_entry(HAK_PM_LARGE, hdr))) {
        hak_os.unmap(base, map_len);
        errno = ENOMEM;
        return NULL;
    }
    __atomic_fetch_add(&large_live_count, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&large_live_bytes, map_len, __ATOMIC_RELAXED);
    __atomic_fetch_add(&large_total_count, 1, __ATOMIC_RELAXED);
    return user;
}

static large_hdr_t *large_lookup(const void *ptr, uint64_t entry, const char *what)
{
    large_hdr_t *hdr = hak_pm_owner(entry);
    if (hak_pm_tag(entry) != HAK_PM_LARGE || hdr->magic != LARGE_MAGIC ||
        hdr->user_key != ((uintptr_t)ptr ^ LARGE_MAGIC))
        hak_fatal("%s(%p): invalid pointer: hakmem did not allocate it, or it was freed already",
                  what, ptr);
    return hdr;
}

void *hak_large_alloc(size_t size, size_t align) { return large_alloc(size, align, 0); }

void *hak_large_calloc(size_t size) { return large_alloc(size, HAK_MIN_ALIGN, 1); }

void hak_large_free(void *ptr, uint64_t entry)
{
    large_hdr_t *hdr = large_lookup(ptr, entry, "free");
    size_t map_len = hdr->map_len;
    void *base = (void *)hdr->base;
    hdr->magic = 0;
    hak_pagemap_set_range(page_of(ptr), MAP_PAGE, 0);
    if (!hak_large_cache_put((uintptr_t)base, map_len, hak_now_ms()))
        hak_os.unmap(base, map_len);
    __atomic_fetch_sub(&large_live_count, 1, __ATOMIC_RELAXED);
    __atomic_fetch_sub(&large_live_bytes, map_len, __ATOMIC_RELAXED);
}

size_t hak_large_usable_size(const void *ptr, const char *caller)
{
    large_hdr_t *hdr = large_lookup(ptr, hak_pagemap_get((uintptr_t)ptr), caller);
    return hdr->base + hdr->map_len - (uintptr_t)ptr;
}

void *hak_large_realloc(void *ptr, size_t size)
{
    large_hdr_t *hdr = large_lookup(ptr, hak_pagemap_get((uintptr_t)ptr), "realloc");
    size_t usable = hdr->base + hdr->map_len - (uintptr_t)ptr;
    /* A smaller size stays in place unless more than max(size, 2 MiB) would sit unused: a
     * block from the large cache may be roomier than asked, and a growing buffer wants that. */
    if (size <= usable && usable - size <= (size > (2u << 20) ? size : (2u << 20)))
        return ptr;
    size_t lead = hdr->lead;
    if (size > PTRDIFF_MAX - lead - 2 * MAP_PAGE) {
        errno = ENOMEM;
        return NULL;
    }
    size_t old_len = hdr->map_len, new_len = round_map(lead + size);
    void *old_base = (void *)hdr->base;
    int saved = errno;
    /* In place first (always works for a shrink); else move the pages to a fresh 64 KiB
     * aligned place, replacing a reservation made for it. The old page map entry is cleared
     * before the move: once the pages are gone, another thread may map that place. */
    void *moved = mremap(old_base, old_len, new_len, 0);
    if (moved == MAP_FAILED) {
        uint64_t old_entry = hak_pagemap_get((uintptr_t)ptr);
        size_t dest_align = hdr->lead > MAP_PAGE ? hdr->lead : MAP_PAGE;
        void *dest = hak_os_map_aligned(new_len, dest_align);
        if (!dest && hak_reclaim())
            dest = hak_os_map_aligned(new_len, dest_align);
        if (!dest)
            return NULL;
        hak_pagemap_set_range(page_of(ptr), MAP_PAGE, 0);
        moved = mremap(old_base, old_len, new_len, MREMAP_MAYMOVE | MREMAP_FIXED, dest);
        if (moved == MAP_FAILED) {
            hak_pagemap_set_range(page_of(ptr), MAP_PAGE, old_entry);
            hak_os.unmap(dest, new_len);
            errno = ENOMEM;
            return NULL;
        }
    }
    errno = saved;
    char *user = (char *)moved + lead;
    large_hdr_t *nh = (large_hdr_t *)(user - sizeof(large_hdr_t));
    nh->user_key = (uintptr_t)user ^ LARGE_MAGIC;
    nh->base = (uintptr_t)moved;
    nh->map_len = new_len;
    if (moved != old_base) {
        if (hak_pagemap_set_range(page_of(user), MAP_PAGE, hak_pm_entry(HAK_PM_LARGE, nh)))
            hak_fatal("realloc(%p): out of memory for the page map after moving the block", ptr);
    }
    __atomic_fetch_add(&large_live_bytes, new_len - old_len, __ATOMIC_RELAXED);
    return user;
}

void hak_large_stats(uint64_t *live_count, uint64_t *live_bytes, uint64_t *total_count)
{
    *live_count = __atomic_load_n(&large_live_count, __ATOMIC_RELAXED);
    *live_bytes = __atomic_load_n(&large_live_bytes, __ATOMIC_RELAXED);
    *total_count = __atomic_load_n(&large_total_count, __ATOMIC_RELAXED);
}
