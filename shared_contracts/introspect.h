/* shared_contracts/introspect.h - what Box 2 reports and accepts for the introspection and
 * control entry points, which Box 1 exports (box1_tls/introspect.c: mallinfo2, mallinfo,
 * malloc_stats, malloc_info, mallopt, hakmem_stats_print).
 *
 * Conventions
 *   - The program's threads call these through Box 1, never an allocation path: each may take
 *     Box 2's locks, one at a time; none allocates or uses stdio (Box 1 formats what it
 *     prints). Each keeps errno.
 *   - Box 2 never reads a thread list: the calling thread's own list lengths come down from
 *     Box 1 as an argument; every other thread's are as of its last slow path of the class
 *     (the refill and give-back calls of backend.h tell Box 2 the list's length).
 */
#ifndef HAK_INTROSPECT_H
#define HAK_INTROSPECT_H

#include <stddef.h>
#include <stdint.h>

#include "size_classes.h"

/* Where the memory is, per class and in all: one snapshot for mallinfo2, malloc_info and
 * malloc_stats, so that they agree. Exact while no other thread allocates; otherwise each
 * figure is a recent value. A small block is in exactly one of: the program's hands (in_use),
 * a thread list (thread), its class's depot (depot), its span (span_free: free in a span in
 * use, or the spare). */
typedef struct hak_class_usage {
    uint64_t in_use, thread, depot, span_free; /* blocks */
    uint64_t spans, mapped;         /* ACTIVE spans of the class (the spare too) and bytes */
} hak_class_usage_t;

typedef struct hak_usage {
    hak_class_usage_t cls[HAK_NUM_CLASSES];
    uint64_t in_use_blocks, thread_blocks, depot_blocks, span_free_blocks; /* class sums */
    uint64_t in_use_bytes, thread_bytes, depot_bytes, span_free_bytes;
    struct {
        uint64_t mapped, active, pooled, purged; /* span bytes: mapped; ACTIVE; empty POOLED
                                                  * (resident) and PURGED */
    } spans;
    uint64_t spans_mapped_max;           /* the most span bytes mapped at once */
    uint64_t large_count, large_bytes;   /* live large blocks, their mapped bytes */
    uint64_t cache_entries, cache_bytes; /* freed large mappings kept for reuse */
    uint64_t large_keep_max;             /* the largest freed mapping the cache keeps */
} hak_usage_t;

/* Fill *u. self[c]: the length of the calling thread's list of class c, which Box 1 counts
 * (exact for the calling thread). Takes the threads, class and pool locks one at a time. */
void hak_usage_snapshot(hak_usage_t *u, const uint32_t self[HAK_NUM_CLASSES]);

/* Format the per-class statistics table (refills, spills, trimmed blocks, the refill count in
 * force, ACE events and drops; spans; large blocks; the large cache) into buf, NUL-terminated;
 * returns its length. No allocation. */
size_t hak_stats_format(char *buf, size_t cap);

/* mallopt's controls of the large cache (box2_refill/large_cache.c). The budget,
 * HAKMEM_LARGE_CACHE_MIB (M_TRIM_THRESHOLD), and the largest freed mapping the cache keeps
 * (M_MMAP_THRESHOLD; no bound by default). Lowering either unmaps every cached range at once:
 * the cache has no finer eviction. */
void hak_large_cache_set_budget_mib(int64_t mib);
void hak_large_cache_set_entry_max(size_t bytes);

#endif
