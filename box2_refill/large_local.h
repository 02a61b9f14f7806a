/* box2_refill/large_local.h - a thread keeps a few of the large blocks it freed, for its own
 * next large blocks.
 *
 * Why: the large cache (large_cache.h) is one store behind one lock for every thread. Two
 * threads that each replace their 64 KiB - 1 MiB buffers (largewin in docs/BENCHMARKS.md) then
 * hand each other ranges whose lines sit in the other core's cache, and pass the cache's lock
 * and lines between their cores at every block; mimalloc, whose thread owns its pages, ran
 * 1.8 times as fast there. So a range below HAK_LARGE_SPLIT_MIN (2 MiB; the cache keeps those
 * whole) that a thread with a record of its own frees stays with that thread
 * (hak_thread_t.held, thread.h), up to HAK_LARGE_HELD_MAX ranges and the thread's byte cap,
 * and its next large malloc takes the tightest of them that fits (at most twice the length
 * needed), with no lock and no shared line but one relaxed counter; past the cap the oldest
 * go to the large cache.
 *
 * Bounds: the cap is HAKMEM_LARGE_THREAD_KIB (0: off), divided as the refill share is
 * (share.h) when more threads live than there are CPUs, and all threads together keep at most
 * half the cache's budget (hak_large_cache_held_room: the target as last computed). A thread
 * keeps only what its own next mallocs could take: a range at most twice the longest its
 * recent large mallocs asked for (want[]), so a buffer grown by realloc and freed goes to the
 * cache, whose moves need it. Nothing is kept while the cache keeps nothing
 * (HAKMEM_LARGE_CACHE_MIB or mallopt's M_TRIM_THRESHOLD 0), above mallopt's M_MMAP_THRESHOLD,
 * or with HAKMEM_DEBUG=1.
 *
 * Accounting: for the cache's budget, which follows the recent peak of live large bytes, a
 * kept range still counts as live; it leaves that count when it goes to the cache. (Counted
 * out of the live bytes, the budget shrank and the cache purged ranges the program faulted in
 * again: largewin 1.1-1.2x instead of 1.5x; counted inside the cache's resident bytes, the
 * cache purged at every free and realloc ran at 0.02x: docs/BENCHMARKS.md.) The statistics and
 * malloc_info show kept ranges as free memory, with the cache's (hak_large_cache_totals' held,
 * held_bytes). A thread gives all of them back to the cache at its exit and at malloc_trim and
 * mallopt's M_TRIM_THRESHOLD and M_MMAP_THRESHOLD (hak_large_thread_flush, backend.h), and the
 * ones it kept longer than HAKMEM_DECAY_MS at its next keep. A thread that stops allocating
 * keeps what it holds (at most its cap) until then; the purger does not reach them.
 */
#ifndef HAK_BOX2_LARGE_LOCAL_H
#define HAK_BOX2_LARGE_LOCAL_H

#include <stddef.h>
#include <stdint.h>

/* A kept range of at least map_len bytes, at most 2 x map_len, aligned to map_align: its
 * length (its base in *base), taken out of the calling thread's; 0 if none. */
size_t hak_large_local_take(size_t map_len, size_t map_align, uintptr_t *base);

/* Keep the freed range [base, base + len) (out of the live bytes) for the calling thread: 1;
 * 0 when it does not keep it (the caller puts it in the cache). May give older ranges to the
 * cache. */
int hak_large_local_keep(uintptr_t base, size_t len, uint64_t now_ms);

#endif
