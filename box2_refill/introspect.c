/* box2_refill/introspect.c - glibc's introspection API with hakmem's figures: malloc_stats,
 * malloc_info and mallopt.
 *
 * The program calls these (never an allocation path), so they may use stdio: malloc_stats
 * prints the statistics table and a glibc-style total to stderr, malloc_info writes XML in
 * glibc's shape to the FILE it is given. Both read one hak_usage_snapshot, as mallinfo2
 * does, so the three agree. mallopt honours what maps onto hakmem and returns 1 for it, 0 for
 * the rest (docs/TUNING.md, mallopt).
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>

#include "include/hakmem.h"
#include "large_cache.h"
#include "lock.h"
#include "shared_contracts/backend.h"
#include "shared_contracts/config.h"
#include "shared_contracts/size_classes.h"
#include "stats.h"

#ifndef HAKMEM_VERSION_STRING
#define HAKMEM_VERSION_STRING "0.0.0"
#endif


/* glibc's largest M_MMAP_THRESHOLD on 64-bit: HEAP_MAX_SIZE / 2 */
#define MMAP_THRESHOLD_MAX (32ull << 20)

HAKMEM_API void malloc_stats(void)
{
    hak_usage_t u;
    hak_usage_snapshot(&u);
    hakmem_stats_print(stderr);
    fprintf(stderr,
            "Total (incl. mmap):\n"
            "system bytes     = %10llu\n"
            "in use bytes     = %10llu\n",
            (unsigned long long)(u.spans.mapped + u.large_bytes + u.cache_bytes),
            (unsigned long long)(u.in_use_bytes + u.large_bytes));
    fflush(stderr);
}

/* glibc's "fast" and "rest" totals: hakmem's thread lists; its depots and the free blocks of
 * spans in use. */
static void put_kept_totals(FILE *fp, const hak_usage_t *u)
{
    fprintf(fp,
            "<total type=\"fast\" count=\"%llu\" size=\"%llu\"/>\n"
            "<total type=\"rest\" count=\"%llu\" size=\"%llu\"/>\n",
            (unsigned long long)u->thread_blocks, (unsigned long long)u->thread_bytes,
            (unsigned long long)(u->depot_blocks + u->span_free_blocks),
            (unsigned long long)(u->depot_bytes + u->span_free_bytes));
}

/* glibc's shape (<malloc>, <heap nr="0">, <sizes>, <total type=...>, <system type=...>,
 * <aspace type=...>): one heap, one <size> per class in use. glibc's attributes keep their
 * meaning (total and count: free blocks kept for reuse in that size range; "fast" and "rest":
 * hakmem's thread lists, and its depots with the free blocks of spans in use; "mmap": large
 * blocks); hakmem's own are added. */
HAKMEM_API int malloc_info(int options, FILE *fp)
{
    if (options != 0 || !fp)
        return EINVAL;
    hak_usage_t u;
    hak_usage_snapshot(&u);
    fprintf(fp, "<malloc version=\"1\" allocator=\"hakmem\" hakmem_version=\"%s\">\n",
            HAKMEM_VERSION_STRING);
    fprintf(fp, "<heap nr=\"0\">\n<sizes>\n");
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        const hak_class_usage_t *k = &u.cls[c];
        if (!k->spans && !k->in_use && !k->thread && !k->depot && !k->span_free)
            continue;
        unsigned long long size = hak_class_size(c);
        fprintf(fp,
                "<size from=\"%u\" to=\"%llu\" total=\"%llu\" count=\"%llu\" class=\"%u\" "
                "in_use=\"%llu\" thread_cached=\"%llu\" depot=\"%llu\" span_free=\"%llu\" "
                "mapped=\"%llu\" spans=\"%llu\"/>\n",
                c ? hak_class_size(c - 1) + 1 : 0, size,
                (unsigned long long)(k->thread + k->depot + k->span_free) * size,
                (unsigned long long)(k->thread + k->depot + k->span_free), c,
                (unsigned long long)k->in_use * size, (unsigned long long)k->thread * size,
                (unsigned long long)k->depot * size, (unsigned long long)k->span_free * size,
                (unsigned long long)k->mapped, (unsigned long long)k->spans);
    }
    fprintf(fp, "</sizes>\n");
    put_kept_totals(fp, &u);
    fprintf(fp,
            "<total type=\"in_use\" count=\"%llu\" size=\"%llu\"/>\n"
            "<system type=\"current\" size=\"%llu\"/>\n"
            "<system type=\"max\" size=\"%llu\"/>\n"
            "<system type=\"empty\" size=\"%llu\"/>\n"
            "<system type=\"returned\" size=\"%llu\"/>\n"
            "<aspace type=\"total\" size=\"%llu\"/>\n"
            "<aspace type=\"mprotect\" size=\"%llu\"/>\n"
            "</heap>\n",
            (unsigned long long)u.in_use_blocks, (unsigned long long)u.in_use_bytes,
            (unsigned long long)u.spans.mapped, (unsigned long long)u.spans_mapped_max,
            (unsigned long long)u.spans.pooled, (unsigned long long)u.spans.purged,
            (unsigned long long)u.spans.mapped, (unsigned long long)u.spans.mapped);
    put_kept_totals(fp, &u);
    fprintf(fp,
            "<total type=\"mmap\" count=\"%llu\" size=\"%llu\"/>\n"
            "<total type=\"large_cache\" count=\"%llu\" size=\"%llu\"/>\n"
            "<system type=\"current\" size=\"%llu\"/>\n"
            "<system type=\"max\" size=\"%llu\"/>\n"
            "<system type=\"returned\" size=\"%llu\"/>\n"
            "<aspace type=\"total\" size=\"%llu\"/>\n"
            "<aspace type=\"mprotect\" size=\"%llu\"/>\n"
            "<options decay_ms=\"%lld\" large_cache_bytes=\"%llu\" large_keep_max=\"%llu\"/>\n"
            "</malloc>\n",
            (unsigned long long)u.large_count, (unsigned long long)u.large_bytes,
            (unsigned long long)u.cache_entries, (unsigned long long)u.cache_bytes,
            (unsigned long long)u.spans.mapped, (unsigned long long)u.spans_mapped_max,
            (unsigned long long)u.spans.purged, (unsigned long long)u.spans.mapped,
            (unsigned long long)u.spans.mapped,
            (long long)__atomic_load_n(&hak_config.decay_ms, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&hak_config.large_cache_mib, __ATOMIC_RELAXED)
                << 20,
            (unsigned long long)hak_large_cache_entry_max());
    return ferror(fp) ? EIO : 0;
}

HAKMEM_API int mallopt(int param, int value)
{
    switch (param) {
    case M_TRIM_THRESHOLD: { /* freed memory kept for reuse: the large cache's budget */
        if (value < 0)
            return 0;
        int64_t mib = ((int64_t)value + (1 << 20) - 1) >> 20;
        int64_t old = __atomic_exchange_n(&hak_config.large_cache_mib, mib, __ATOMIC_RELAXED);
        if (mib < old) /* the cache has no finer eviction than "all": what it kept goes now */
            hak_large_cache_release(hak_now_ms(), 0);
        return 1;
    }
    case M_MMAP_THRESHOLD: { /* freed mappings this big go back to the OS at once */
        if (value < 0 || (unsigned long long)value > MMAP_THRESHOLD_MAX)
            return 0;
        size_t old = hak_large_cache_entry_max();
        hak_large_cache_set_entry_max((size_t)value);
        if ((size_t)value < old)
            hak_large_cache_release(hak_now_ms(), 0);
        return 1;
    }
    case M_HAKMEM_DECAY_MS:
        if (value < 0 || value > 600000)
            return 0;
        __atomic_store_n(&hak_config.decay_ms, value, __ATOMIC_RELAXED);
        return 1;
    case M_HAKMEM_PURGE: { /* what malloc_trim(0) does: this thread's lists, then Box 2's */
        void (*drain)(void) = __atomic_load_n(&hak_tcache_hooks.self_drain, __ATOMIC_RELAXED);
        if (drain)
            drain();
        hak_backend_release();
        return 1;
    }
    default: /* M_MXFAST, M_TOP_PAD, M_MMAP_MAX, M_ARENA_*, M_PERTURB, M_CHECK_ACTION: nothing
              * in hakmem maps onto them */
        return 0;
    }
}
