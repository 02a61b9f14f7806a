/* box2_refill/large_cache.h - freed large mappings, kept for reuse: a small page heap of
 * address ranges, split and merged.
 *
 * Unmapping a large block on free and mapping the next one makes every page fault again; a
 * program that allocates and frees buffers (images, compression windows, per-request
 * buffers, realloc loops) then spends its time in the kernel. So a freed mapping is kept,
 * resident, as a range [base, base + len) of 64 KiB pages, while the cache holds at most
 * HAKMEM_LARGE_CACHE_MIB in all (the oldest ranges are unmapped to make room; a range larger
 * than the whole budget is not kept).
 *   - Big requests (HAK_LARGE_SPLIT_MIN and up) take the best-fitting range (the smallest big
 *     enough, at the alignment asked), cut to the size asked; the rest stays cached. A freed
 *     range merges with the cached ranges that touch it when either is big. A big request that
 *     no range fits may instead take the largest range of at least HAK_LARGE_GROW_MIN and
 *     move it (mremap: its resident pages go along) into the head of a fresh mapping of the
 *     size asked, so only the rest faults in.
 *   - Smaller requests take the tightest range at most max(4x, +1 MiB) their size, whole:
 *     the slack lets a growing buffer grow in place (realloc), and such ranges stay one kernel
 *     mapping each, which mremap needs.
 * Ranges idle for HAKMEM_DECAY_MS are unmapped by the decay tick; a failed mapping unmaps
 * them all (hak_reclaim). mallopt(M_MMAP_THRESHOLD) sets a size above which a freed mapping
 * is unmapped, not kept (no bound by default).
 *
 * Invariants (cache lock): the ranges are disjoint, mapped read-write, owned by no block, with
 * page map entries 0; bytes == the sum of their lengths <= the budget; used <= the slot count.
 * One lock, held only for the slot scans; munmap happens outside it. Reused memory is not
 * zero: calloc clears it.
 */
#ifndef HAK_BOX2_LARGE_CACHE_H
#define HAK_BOX2_LARGE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define HAK_LARGE_GROW_MIN ((size_t)1 << 20)  /* smaller ranges are not worth an mremap */
#define HAK_LARGE_SPLIT_MIN ((size_t)2 << 20) /* smaller ranges are kept whole */

/* Keep [base, base+len) (64 KiB multiples); 0 if the budget cannot hold it (the caller
 * unmaps it). May unmap older ranges to make room. */
int hak_large_cache_put(uintptr_t base, size_t len, uint64_t now_ms);
/* At least `need` bytes (a 64 KiB multiple) at a base aligned to `align`, cut from the
 * best-fitting range, or 0; *len_out is the length taken (need, or the whole rest of the range
 * when no slot is free to keep that rest). */
uintptr_t hak_large_cache_get(size_t need, size_t align, size_t *len_out);
/* A block growing in place over the cached range that starts at addr: if that range is at
 * least len long, take min(its length, want) (want >= len, 64 KiB multiples) from its front
 * and return how much; else 0. */
size_t hak_large_cache_take_at(uintptr_t addr, size_t len, size_t want);
/* Remove and return the largest range shorter than `need`, at least HAK_LARGE_GROW_MIN long
 * and aligned to `align` (to be moved into a larger mapping), or 0. */
uintptr_t hak_large_cache_take_largest(size_t need, size_t align, size_t *len_out);
/* Unmap ranges idle for idle_ms or more (0: all); returns the bytes unmapped. */
size_t hak_large_cache_trim(uint64_t now_ms, uint64_t idle_ms);
/* Bytes cached (a relaxed read). */
size_t hak_large_cache_bytes(void);
void hak_large_cache_stats(uint64_t *entries, uint64_t *bytes, uint64_t *hits, uint64_t *misses);
/* The largest mapping a free may keep (no bound unless mallopt(M_MMAP_THRESHOLD) set one). */
size_t hak_large_cache_entry_max(void);
void hak_large_cache_set_entry_max(size_t bytes);
void hak_large_cache_fork_lock(void);
void hak_large_cache_fork_unlock(void);
void hak_large_cache_fork_child(void);

#endif
