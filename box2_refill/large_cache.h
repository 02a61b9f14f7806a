/* box2_refill/large_cache.h - freed large mappings, kept for reuse: a small page heap of
 * address ranges, split and merged, with a budget that follows the program's large blocks.
 *
 * Unmapping a large block on free and mapping the next one makes every page fault again, and
 * a munmap of populated pages frees them and flushes TLBs while the program waits; a program
 * that allocates and frees buffers (images, compression windows, per-request buffers, realloc
 * loops) then spends its time in the kernel. So a freed mapping is kept as a range
 * [base, base + len) of 64 KiB pages, in one of two states:
 *   - RESIDENT: as the block left it, pages in memory (reused without a fault, not zero);
 *   - PURGED: pages given back with hak_os.purge (MADV_DONTNEED), the address range kept
 *     (reused without a system call; pages fault in as zero).
 *
 * Reuse. Big requests (HAK_LARGE_SPLIT_MIN and up) take, in this order:
 *   1. the best-fitting resident range (the smallest big enough at the alignment asked), cut
 *      to the size asked; the rest stays cached;
 *   2. a resident range grown over the purged ranges that touch it (only the purged part
 *      faults), the one with the most resident bytes;
 *   3. the best-fitting purged range, into whose head large.c moves the largest resident
 *      range (hak_large_cache_take_largest, then hak_os.remap), so only the rest faults;
 *   4. (large.c) the largest resident range grown in place (mremap, when the address space
 *      after it is free), else moved into the head of a fresh mapping.
 * Smaller requests take the tightest resident range at most max(4x, +1 MiB) their size, else
 * the tightest such purged one, whole: the slack lets a growing buffer grow in place
 * (realloc), and such ranges stay one kernel mapping each, which mremap needs. A freed range
 * merges with the ranges of its state that touch it when either is big.
 *
 * Budget. Resident bytes never exceed HAKMEM_LARGE_CACHE_MIB (the cap: a block larger than
 * it is not kept). Below the cap, the target follows the program's large blocks: what the
 * recent peak of live large bytes, plus an eighth, leaves beside the bytes live now (at least
 * HAK_LARGE_CACHE_FLOOR), so live + resident cached stays near that peak. Steady reuse counts
 * too: each request served by a resident range measures the live bytes plus the range's reuse
 * distance (the bytes it hands out plus the other resident ranges freed no earlier than it,
 * which the oldest-first purge would have had to keep with it), and once a period has
 * HAK_LARGE_REUSE_STEADY such reuses, the highest is a peak like the live bytes', up to twice
 * the live bytes' peak (or the floor; unbounded, a cache that kept more would measure more
 * and keep more again). Blocks that cycle through the cache (freed, then taken by the next
 * block of their size) need it to hold them between two owners, which the live bytes alone
 * do not show; a lone reuse says nothing of the next, and does not hold a cache up. A free
 * past the smaller of the two purges the oldest resident bytes at once (a range merged past
 * it is purged whole), so between two decay ticks the cache never holds more than the budget:
 * large.c subtracts a freed block from the live bytes before it puts its range. The peak is
 * the highest of the last HAK_LARGE_PEAK_WINDOWS periods of max(10 ms, HAKMEM_DECAY_MS / 4):
 * once the program's large bytes fall, the target falls within about HAKMEM_DECAY_MS.
 * Resident ranges also serve span.c: a new chunk of spans is cut from one before anything is
 * mapped (hak_large_cache_take_resident). hak_large_cache_decay, run by
 * the purger (or by the decay tick while no purger runs), purges the oldest resident ranges
 * above the target and unmaps ranges idle for HAKMEM_DECAY_MS (resident or purged); so a
 * program that goes quiet gets its memory back, and a free never unmaps populated pages
 * unless the block is larger than the cap or all slots are taken (the oldest purged range
 * goes first). A failed mapping and malloc_trim unmap every range.
 *
 * mallopt(M_MMAP_THRESHOLD) sets a size above which a freed mapping is unmapped, not kept
 * (no bound by default).
 *
 * Invariants (cache lock): the ranges are disjoint, mapped read-write, owned by no block, with
 * page map entries 0; resident == the sum of the resident ranges' lengths <= the cap; purged ==
 * the sum of the purged ones; used <= HAK_LARGE_CACHE_SLOTS; each range is on exactly one
 * list of its state (large_cache.c). A range being purged or unmapped is in no slot. One lock,
 * held only for the list and slot work; purge and munmap happen outside it. Reused memory is
 * not zero: calloc clears what hak_large_got_t.dirty says may hold old data.
 */
#ifndef HAK_BOX2_LARGE_CACHE_H
#define HAK_BOX2_LARGE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define HAK_LARGE_GROW_MIN ((size_t)1 << 20)     /* smaller ranges are not worth an mremap */
#define HAK_LARGE_SPLIT_MIN ((size_t)2 << 20)    /* smaller ranges are kept whole */
#define HAK_LARGE_CACHE_FLOOR ((size_t)4 << 20)  /* the target never goes below this (or cap) */
#define HAK_LARGE_CACHE_SLOTS 128u
#define HAK_LARGE_PEAK_WINDOWS 4u
#define HAK_LARGE_REUSE_STEADY 4u /* reuses in one period that make their distance a peak */

/* What a request got from the cache. */
typedef struct hak_large_got {
    uintptr_t base;
    size_t len;   /* the length taken: need, or more (a whole small range, or the rest of a
                   * range when no slot is free to keep it) */
    size_t dirty; /* bytes from base that may hold old data; the rest reads as zero */
} hak_large_got_t;

/* Keep [base, base+len) (64 KiB multiples, resident); 0 if the cap cannot hold it (the
 * caller unmaps it). May purge or unmap older ranges to stay within the cap and the slots. */
int hak_large_cache_put(uintptr_t base, size_t len, uint64_t now_ms);
/* At least `need` bytes (a 64 KiB multiple) at a base aligned to `align`, by steps 1-3 of
 * the reuse order above (without the move of step 3, which is the caller's); 0 if no range
 * serves it. */
int hak_large_cache_get(size_t need, size_t align, hak_large_got_t *got);
/* hak_large_cache_get by step 1 alone, for large.c's realloc (growth by copying, which a
 * purged range would not spare a fault): a RESIDENT range, whole if small and then at most an
 * eighth longer than need; 0 if none serves. Not counted as a reuse for the budget: a block
 * that moves to grow leaves no range behind for the cache to hold between two owners (large.c
 * unmaps the old one). */
int hak_large_cache_get_resident(size_t need, size_t align, hak_large_got_t *got);
/* `need` bytes (a 64 KiB multiple) at a base aligned to `align`, cut from the tightest
 * RESIDENT range that holds them, whatever its size (span.c takes its chunks so); the rest
 * of the range stays cached. 0 if none holds them. */
int hak_large_cache_take_resident(size_t need, size_t align, hak_large_got_t *got);
/* A block growing in place over the cached range that starts at addr: if that range is at
 * least len long, take min(its length, want) (want >= len, 64 KiB multiples) from its front
 * and return how much; else 0. */
size_t hak_large_cache_take_at(uintptr_t addr, size_t len, size_t want);
/* Remove and return the largest resident range shorter than `need`, at least
 * HAK_LARGE_GROW_MIN long and aligned to `align` (to be grown or moved), or 0. */
uintptr_t hak_large_cache_take_largest(size_t need, size_t align, size_t *len_out);
/* The live large bytes: the mapped lengths of large.c's live blocks, which the budget follows.
 * large.c adds a block's length when it maps or grows one (a realloc's change, which may wrap
 * to a subtraction) and subtracts it at free; an addition raises the current peak. Relaxed
 * atomics, any thread. */
void hak_large_cache_live_add(size_t bytes);
void hak_large_cache_live_sub(size_t bytes);
size_t hak_large_cache_live_bytes(void);
/* Raise the current peak to live_bytes if it is lower (hak_large_cache_live_add does; tests). */
void hak_large_cache_note_live(size_t live_bytes);
/* large.c: a request that no range served was served by growing or moving a cached range
 * (grew 1) or by fresh memory alone (grew 0). */
void hak_large_cache_note_miss(int grew);
/* The budget's work (see above), given the live large bytes now. Any thread, no lock held;
 * returns the bytes purged or unmapped. */
size_t hak_large_cache_decay(uint64_t now_ms, uint64_t decay_ms, size_t live_bytes);
/* Unmap ranges idle for idle_ms or more, resident or purged (0: all); returns the bytes. */
size_t hak_large_cache_unmap_idle(uint64_t now_ms, uint64_t idle_ms);
/* Bytes cached, resident and purged (a relaxed read). */
size_t hak_large_cache_bytes(void);

typedef struct hak_large_cache_totals {
    uint64_t entries, resident, purged; /* ranges and their bytes */
    uint64_t target;                    /* the resident target now */
    uint64_t hits;      /* requests served from cached ranges (steps 1-3, realloc's, span chunks) */
    uint64_t grown;     /* served by growing or moving a cached range into fresh memory */
    uint64_t misses;    /* mapped anew, no cached range used */
    uint64_t purges;    /* ranges purged to meet the cap or the target */
    uint64_t unmaps;    /* ranges unmapped (idle, trim, slots) */
    uint64_t held, held_bytes; /* ranges threads keep (large_local.h), not in the above */
} hak_large_cache_totals_t;
void hak_large_cache_totals(hak_large_cache_totals_t *t);

/* A thread began (sign 1) or stopped (-1) keeping a freed range of len bytes for itself
 * (large_local.h); for the totals and hak_large_cache_held_room. */
void hak_large_cache_held(size_t len, int sign);

/* The bytes threads may still keep, all together: half the budget (the target as last
 * computed), less what they keep now (hak_large_cache_held_bytes). */
size_t hak_large_cache_held_room(void);
size_t hak_large_cache_held_bytes(void);

/* The largest mapping a free may keep (no bound unless mallopt(M_MMAP_THRESHOLD) set one).
 * mallopt's setters, hak_large_cache_set_entry_max and hak_large_cache_set_budget_mib, are
 * declared in shared_contracts/introspect.h. */
size_t hak_large_cache_entry_max(void);
void hak_large_cache_fork_lock(void);
void hak_large_cache_fork_unlock(void);
void hak_large_cache_fork_child(void);

#endif
