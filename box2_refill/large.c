/* box2_refill/large.c - blocks above HAK_MAX_CLASS_SIZE (or over-aligned): one mapping each.
 *
 * Layout: a mapping [base, base + map_len), 64 KiB aligned and a whole number of 64 KiB map
 * pages, so no other block shares its page map entries. The block starts at
 * user = base + lead (lead = max(64, align)); a 64-byte header sits just below it. The page map
 * entry of user's 64 KiB page points at the header (tag HAK_PM_LARGE); free, realloc and
 * malloc_usable_size are O(1). Freed mappings go to the large cache (large_cache.h) and are
 * reused, not zeroed: calloc asks for zeroing.
 * realloc grows and shrinks with mremap, moving pages instead of copying bytes, except that a
 * block under HAK_LARGE_SPLIT_MIN that cannot grow in place is copied into a resident cached
 * range when one serves (grow_into_resident): the growth then faults nothing in.
 */

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "os.h"
#include "pagemap_write.h"
#include "large.h"
#include "large_cache.h"
#include "large_local.h"
#include "lock.h"
#include "shared_contracts/config.h"
#include "purge.h"
#include "span.h"
#include "thread.h"
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
    uintptr_t note;    /* a sampled block's note (hak_sampled_alloc), else 0 */
    size_t note_size;  /* the size its sampled allocation asked for */
    uint64_t pad;
} large_hdr_t;
_Static_assert(sizeof(large_hdr_t) == 64, "header is one cache line below the block");

/* Statistics: the count of live blocks is each thread's own (hak_thread_count_large,
 * thread.h); the live bytes are the large cache's (hak_large_cache_live_bytes), whose budget
 * follows them. */

static size_t round_map(size_t n) { return (n + MAP_PAGE - 1) & ~(MAP_PAGE - 1); }

static uintptr_t page_of(const void *p) { return (uintptr_t)p & ~(uintptr_t)(MAP_PAGE - 1); }

/* A fresh mapping at `phase` modulo `align` (os.h); after a failure, reclaim and retry only
 * when that could help (purge.h). */
static void *map_fresh_at(size_t len, size_t align, uintptr_t phase)
{
    void *p = hak_os_map_phase(len, align, phase);
    if (!p && hak_reclaim_may_help(len) && hak_reclaim()) {
        p = hak_os_map_phase(len, align, phase);
        if (!p)
            hak_reclaim_did_not_help(len);
    }
    return p; /* NULL: errno ENOMEM */
}

static void *map_fresh(size_t len, size_t align) { return map_fresh_at(len, align, 0); }

/* A fresh mapping of len bytes, aligned to `align`, for pages now at `from` to move into the
 * head of: at from's phase modulo HAK_OS_PMD, so that mremap moves them by page-table page
 * (os.h). align is a power of two; from is aligned to it. */
static void *map_fresh_for(size_t len, size_t align, uintptr_t from)
{
    if (align >= HAK_OS_PMD)
        return map_fresh(len, align);
    return map_fresh_at(len, HAK_OS_PMD, from & (HAK_OS_PMD - 1));
}

/* Move the largest resident cached range (shorter than len) into [dest, dest + len): its
 * pages go along, so only the rest of the block faults in. Returns the bytes moved (0: none
 * worth moving, or the range spans two kernel mappings, which mremap refuses; it stays
 * cached). */
static size_t move_largest_into(char *dest, size_t len, size_t align)
{
    size_t seed_len = 0;
    uintptr_t seed = hak_large_cache_take_largest(len, align, &seed_len);
    if (!seed)
        return 0;
    if (hak_os.remap((void *)seed, seed_len, seed_len, dest))
        return seed_len;
    if (!hak_large_cache_put(seed, seed_len, hak_now_ms()))
        hak_os.unmap((void *)seed, seed_len);
    return 0;
}

/* No cached range serves map_len: grow the largest resident range (the seed) in place when
 * the address space after it is free; else a fresh mapping at the seed's phase (os.h), into
 * whose head the seed's pages move. Both fault in only what the seed lacks. *dirty: bytes
 * from the base that may hold old data. */
static char *map_for_block(size_t map_len, size_t map_align, size_t *dirty)
{
    *dirty = 0;
    size_t seed_len = 0;
    uintptr_t seed = map_len >= HAK_LARGE_SPLIT_MIN
                         ? hak_large_cache_take_largest(map_len, map_align, &seed_len)
                         : 0;
    if (seed && hak_os.remap((void *)seed, seed_len, map_len, NULL)) {
        *dirty = seed_len;
        hak_large_cache_note_miss(1);
        return (char *)seed;
    }
    int saved = errno;
    char *dest = seed ? map_fresh_for(map_len, map_align, seed) : NULL;
    if (dest && hak_os.remap((void *)seed, seed_len, seed_len, dest)) {
        *dirty = seed_len;
    } else if (seed) { /* the seed spans two kernel mappings, or no mapping was had while the
                        * seed was out of the cache, where a reclaim could have unmapped it */
        if (!hak_large_cache_put(seed, seed_len, hak_now_ms()))
            hak_os.unmap((void *)seed, seed_len);
    }
    if (!dest)
        dest = map_fresh(map_len, map_align);
    if (!dest)
        return NULL; /* errno ENOMEM */
    errno = saved;
    hak_large_cache_note_miss(*dirty != 0);
    return dest;
}

static void *large_alloc(size_t size, size_t align, int zero)
{
    if (align < HAK_MIN_ALIGN)
        align = HAK_MIN_ALIGN;
    size_t lead = align > 64 ? align : 64;
    size_t map_align = align > MAP_PAGE ? align : MAP_PAGE;
    if (size > PTRDIFF_MAX - lead - 2 * map_align || hak_mapping_impossible(size)) {
        errno = ENOMEM; /* no mapping can hold it: fail before any system call */
        return NULL;
    }
    /* At least one byte past user, so user's map page lies inside the mapping even for
     * memalign(64 KiB or more, 0). */
    size_t map_len = round_map(lead + (size ? size : 1)), dirty;
    hak_large_got_t got;
    char *base;
    uintptr_t held = 0;
    size_t held_len = map_len < HAK_LARGE_SPLIT_MIN ? hak_large_local_take(map_len, map_align, &held)
                                                    : 0;
    if (held_len) { /* one the thread kept (large_local.h) */
        base = (char *)held;
        map_len = held_len;
        dirty = held_len;
    } else if (hak_large_cache_get(map_len, map_align, &got)) {
        base = (char *)got.base;
        map_len = got.len;
        dirty = got.dirty;
        if (!dirty && map_len >= HAK_LARGE_SPLIT_MIN) /* purged: bring resident pages along */
            dirty = move_largest_into(base, map_len, map_align);
    } else {
        base = map_for_block(map_len, map_align, &dirty);
        if (!base)
            return NULL;
    }
    char *user = base + lead;
    if (zero && dirty > lead) /* reused bytes; fresh and purged pages are zero already */
        memset(user, 0, size < dirty - lead ? size : dirty - lead);
    large_hdr_t *hdr = (large_hdr_t *)(user - sizeof(large_hdr_t));
    hdr->magic = LARGE_MAGIC;
    hdr->user_key = (uintptr_t)user ^ LARGE_MAGIC;
    hdr->base = (uintptr_t)base;
    hdr->map_len = map_len;
    hdr->lead = lead;
    hdr->note = 0;
    hdr->note_size = 0;
    if (hak_pagemap_set_range(page_of(user), MAP_PAGE, hak_pm_entry(HAK_PM_LARGE, hdr))) {
        hak_os.unmap(base, map_len);
        if (held_len)
            hak_large_cache_live_sub(held_len);
        errno = ENOMEM;
        return NULL;
    }
    hak_thread_count_large(1);
    if (!held_len) /* a kept range never left the live bytes (large_local.h) */
        hak_large_cache_live_add(map_len);
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

void *hak_large_alloc_noted(size_t size, size_t align, int zero, uintptr_t note)
{
    char *user = large_alloc(size, align, zero);
    if (user) {
        large_hdr_t *hdr = (large_hdr_t *)(user - sizeof(large_hdr_t));
        hdr->note = note;
        hdr->note_size = size;
    }
    return user;
}

int hak_large_note(const void *ptr, uint64_t entry, uintptr_t *note, size_t *size)
{
    large_hdr_t *hdr = hak_pm_owner(entry);
    if (hak_pm_tag(entry) != HAK_PM_LARGE || hdr->magic != LARGE_MAGIC ||
        hdr->user_key != ((uintptr_t)ptr ^ LARGE_MAGIC) || !hdr->note)
        return 0;
    *note = hdr->note;
    *size = hdr->note_size;
    return 1;
}

void hak_large_free(void *ptr, uint64_t entry)
{
    large_hdr_t *hdr = large_lookup(ptr, entry, "free");
    size_t map_len = hdr->map_len;
    void *base = (void *)hdr->base;
    hdr->magic = 0;
    hak_pagemap_set_range(page_of(ptr), MAP_PAGE, 0);
    uint64_t now = hak_now_ms();
    hak_thread_count_large(0);
    if (!hak_large_local_keep((uintptr_t)base, map_len, now)) {
        hak_large_cache_live_sub(map_len);
        if (!hak_large_cache_put((uintptr_t)base, map_len, now))
            hak_os.unmap(base, map_len);
    }
    hak_decay_maybe(now); /* a program of large blocks alone has no other slow path */
}

size_t hak_large_usable_size(const void *ptr, const char *caller)
{
    large_hdr_t *hdr = large_lookup(ptr, hak_pagemap_get((uintptr_t)ptr), caller);
    return hdr->base + hdr->map_len - (uintptr_t)ptr;
}

/* A block under HAK_LARGE_SPLIT_MIN that cannot grow in place, moved by copying its bytes into
 * a resident range of the cache (hak_large_cache_get_resident: the tightest that holds `room`
 * bytes, else new_len, with at most an eighth more). Moving its pages into a fresh mapping
 * instead (mremap, no copy) leaves the growth to fault in as zero pages while freed pages sit
 * in the cache: a program that grows arrays and buffers by doubling (lua's tables and
 * strings) faulted a third more pages than under jemalloc, at about 9 us a fault on this
 * project's VMs, against a fraction of that for the copy (docs/BENCHMARKS.md, "Growth by
 * copy"). The old range is unmapped, as the move of its pages would have left it (kept, the
 * mid-sized ranges growth leaves behind would serve the next blocks' mallocs, the tightest
 * fit, which would outgrow them and copy again: realloc -t 2 fell to 0.78x so). Past the size
 * asked, the range's pages are purged: they fault in as a fresh mapping's would. The thread's
 * own kept ranges are not asked (large_local.h): their demand figures would follow growth
 * steps and keep more (realloc -t 2 peaked 1.4x so). NULL, with nothing changed, when no
 * resident range serves. */
static void *grow_into_resident(large_hdr_t *hdr, void *ptr, size_t size, size_t new_len,
                                size_t room)
{
    size_t lead = hdr->lead, old_len = hdr->map_len;
    size_t align = lead > MAP_PAGE ? lead : MAP_PAGE;
    hak_large_got_t got;
    if (!hak_large_cache_get_resident(room, align, &got) &&
        (room == new_len || !hak_large_cache_get_resident(new_len, align, &got)))
        return NULL;
    char *user = (char *)got.base + lead;
    large_hdr_t *nh = (large_hdr_t *)(user - sizeof(large_hdr_t));
    memcpy(user, ptr, old_len - lead);
    size_t used = (lead + size + 4095) & ~(size_t)4095; /* whole 4 KiB pages: madvise's unit */
    if (got.len > used)
        hak_os.purge((char *)got.base + used, got.len - used);
    *nh = *hdr;
    nh->user_key = (uintptr_t)user ^ LARGE_MAGIC;
    nh->base = got.base;
    nh->map_len = got.len;
    if (hak_pagemap_set_range(page_of(user), MAP_PAGE, hak_pm_entry(HAK_PM_LARGE, nh))) {
        nh->magic = 0; /* no room for the page map: the range goes back, the block stays */
        if (!hak_large_cache_put(got.base, got.len, hak_now_ms()))
            hak_os.unmap((void *)got.base, got.len);
        return NULL;
    }
    hak_pagemap_set_range(page_of(ptr), MAP_PAGE, 0);
    hdr->magic = 0;
    hak_large_cache_live_sub(old_len); /* before the add: the two are never live together */
    hak_large_cache_live_add(got.len);
    hak_os.unmap((void *)hdr->base, old_len);
    return user;
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
    if (size > PTRDIFF_MAX - lead - 2 * MAP_PAGE || hak_mapping_impossible(size)) {
        errno = ENOMEM;
        return NULL;
    }
    size_t old_len = hdr->map_len, new_len = round_map(lead + size);
    void *old_base = (void *)hdr->base;
    int saved = errno;
    /* A big block over the cached range that follows it, if any; else in place (always
     * works for a shrink); else move the pages to a fresh 64 KiB aligned place at the old
     * base's phase (os.h), replacing a reservation made for it. The old page map entry is
     * cleared before the move: once the pages are gone, another thread may map that place. */
    void *moved;
    size_t room = new_len > 2 * old_len ? new_len : 2 * old_len; /* growth doubles at least */
    int big = old_len >= HAK_LARGE_SPLIT_MIN;
    size_t taken = big && new_len > old_len ? hak_large_cache_take_at((uintptr_t)old_base + old_len,
                                                               new_len - old_len, room - old_len)
                                     : 0;
    if (taken) {
        moved = old_base;
        new_len = old_len + taken;
    } else {
        moved = hak_os.remap(old_base, old_len, new_len, NULL);
    }
    if (!moved && !big && new_len > old_len) {
        void *user = grow_into_resident(hdr, ptr, size, new_len, room);
        if (user) {
            errno = saved;
            return user;
        }
    }
    if (!moved) {
        /* Moving a big block: to a cached range that fits if there is one (the pages past the
         * moved ones stay resident there), with at least twice the room when growing, so a
         * buffer growing by small steps moves a few times, not at every 64 KiB. Else (and for
         * smaller blocks, which the cache keeps whole) to a fresh mapping. */
        size_t dest_align = hdr->lead > MAP_PAGE ? hdr->lead : MAP_PAGE;
        size_t want = new_len > old_len ? room : new_len;
        hak_large_got_t got;
        void *dest = big && hak_large_cache_get(want, dest_align, &got) ? (void *)got.base : NULL;
        size_t move_len = old_len < new_len ? old_len : new_len;
        if (dest) {
            new_len = got.len;
        } else {
            dest = map_fresh_for(new_len, dest_align, (uintptr_t)old_base);
            move_len = new_len;
        }
        if (!dest)
            return NULL;
        hak_pagemap_set_range(page_of(ptr), MAP_PAGE, 0);
        moved = hak_os.remap(old_base, old_len, move_len, dest);
        if (!moved) {
            /* The block was cut from cached ranges that two kernel mappings hold, and mremap
             * moves only within one: copy instead, and keep the old range. */
            size_t keep = old_len - lead < size ? old_len - lead : size;
            memcpy((char *)dest + lead, ptr, keep);
            hdr->magic = 0;
            if (!hak_large_cache_put((uintptr_t)old_base, old_len, hak_now_ms()))
                hak_os.unmap(old_base, old_len);
            moved = dest;
            large_hdr_t *dh = (large_hdr_t *)((char *)dest + lead - sizeof(large_hdr_t));
            dh->magic = LARGE_MAGIC;
            dh->lead = lead;
            dh->note = hdr->note; /* a sampled block stays sampled */
            dh->note_size = hdr->note_size;
        } /* (a shrink into a cached range: mremap itself unmapped the rest of the old block,
           * and another thread may have mapped that place since) */
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
    hak_large_cache_live_add(new_len - old_len); /* wraps to a subtraction for a shrink */
    return user;
}

void hak_large_stats(uint64_t *live_count, uint64_t *live_bytes, uint64_t *total_count)
{
    uint64_t allocs, frees;
    hak_thread_sum_large(&allocs, &frees); /* counted per thread: no shared line per block */
    *live_count = allocs > frees ? allocs - frees : 0;
    /* The ranges threads keep (large_local.h) count as live for the cache's budget; here
     * they are free. */
    size_t live = hak_large_cache_live_bytes(), held = hak_large_cache_held_bytes();
    *live_bytes = live > held ? live - held : 0;
    *total_count = allocs;
}
