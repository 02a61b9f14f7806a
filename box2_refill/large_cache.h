/* box2_refill/large_cache.h - freed large mappings, kept for reuse.
 *
 * Unmapping a large block on free and mapping the next one makes every page fault again; a
 * program that grows and frees buffers (string builders, realloc loops) then spends its time
 * in the kernel. So a freed mapping of at most 16 MiB (mallopt(M_MMAP_THRESHOLD) changes the
 * bound) is kept, resident, while the cache holds
 * less than HAKMEM_LARGE_CACHE_MIB in all (64 slots at most), and a later large request takes
 * the tightest kept mapping that is big enough and at most max(4x, +1 MiB) bigger (the slack
 * lets a growing buffer grow in place). The decay tick unmaps entries idle for
 * HAKMEM_DECAY_MS; a failed mapping unmaps them all (hak_reclaim).
 *
 * One lock, held only for the slot search; munmap happens outside it. Reused memory is not
 * zero: calloc clears it.
 */
#ifndef HAK_BOX2_LARGE_CACHE_H
#define HAK_BOX2_LARGE_CACHE_H

#include <stddef.h>
#include <stdint.h>

/* Keep [base, base+len); 0 if the cache has no room (the caller unmaps). */
int hak_large_cache_put(uintptr_t base, size_t len, uint64_t now_ms);
/* A kept mapping of at least `need` bytes whose base is aligned to `align`, or 0. */
uintptr_t hak_large_cache_get(size_t need, size_t align, size_t *len_out);
/* Unmap entries idle for idle_ms or more (0: all); returns the bytes unmapped. */
size_t hak_large_cache_trim(uint64_t now_ms, uint64_t idle_ms);
void hak_large_cache_stats(uint64_t *entries, uint64_t *bytes, uint64_t *hits, uint64_t *misses);
/* The largest mapping a free may keep (16 MiB unless mallopt(M_MMAP_THRESHOLD) changed it). */
size_t hak_large_cache_entry_max(void);
void hak_large_cache_set_entry_max(size_t bytes);
void hak_large_cache_fork_lock(void);
void hak_large_cache_fork_unlock(void);
void hak_large_cache_fork_child(void);

#endif
