/* box1_tls/introspect.c - glibc's introspection and control API with hakmem's figures:
 * mallinfo2, mallinfo, malloc_stats, malloc_info, mallopt, and hakmem_stats_print.
 *
 * Box 1 is the front door: these entry points count the calling thread's own lists
 * (hak_tcache_counts) and ask Box 2 for the rest through shared_contracts/introspect.h: one
 * usage snapshot, which mallinfo2, malloc_info and malloc_stats all read so that they agree,
 * and the statistics table, formatted without allocation. The program calls these (never an
 * allocation path), so they may use stdio: malloc_stats prints the table and a glibc-style
 * total to stderr, malloc_info writes XML in glibc's shape to the FILE it is given.
 * mallopt answers as glibc 2.36's does and applies what maps onto hakmem (docs/TUNING.md,
 * mallopt).
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "include/hakmem.h"
#include "shared_contracts/config.h"
#include "shared_contracts/introspect.h"
#include "shared_contracts/valgrind_hooks.h"
#include "tcache.h"

#ifndef HAKMEM_VERSION_STRING
#define HAKMEM_VERSION_STRING "0.0.0"
#endif

/* Box 2's snapshot, with this thread's lists as Box 1 counts them. */
static void usage(hak_usage_t *u)
{
    uint32_t self[HAK_NUM_CLASSES];
    hak_tcache_counts(self);
    hak_usage_snapshot(u, self);
}

HAKMEM_API void hakmem_stats_print(FILE *out)
{
    char buf[8192]; /* the table is formatted without allocation (Box 2) */
    size_t n = hak_stats_format(buf, sizeof buf);
    fwrite(buf, 1, n, out ? out : stderr);
    fflush(out ? out : stderr);
}

/* glibc's fields with hakmem's figures (docs/ARCHITECTURE.md, Memory return):
 * arena spans mapped; uordblks small blocks in the program's hands; fordblks the rest of
 * arena; smblks/fsmblks free blocks kept for reuse in thread lists, depots and spans in use;
 * ordblks empty span memory in 64 KiB units; hblks/hblkhd live large blocks. */
HAKMEM_API struct mallinfo2 mallinfo2(void)
{
    hak_usage_t u;
    HAK_VG_ENTER();
    usage(&u);
    HAK_VG_LEAVE();
    struct mallinfo2 mi;
    memset(&mi, 0, sizeof mi);
    mi.arena = u.spans.mapped;
    mi.ordblks = (u.spans.pooled + u.spans.purged) >> 16;
    mi.smblks = u.thread_blocks + u.depot_blocks + u.span_free_blocks;
    mi.hblks = u.large_count;
    mi.hblkhd = u.large_bytes;
    mi.fsmblks = u.thread_bytes + u.depot_bytes + u.span_free_bytes;
    mi.uordblks = u.in_use_bytes;
    mi.fordblks = mi.arena > mi.uordblks ? mi.arena - mi.uordblks : 0;
    mi.keepcost = 0;
    return mi;
}

static int clamp_int(size_t v) { return v > 0x7fffffff ? 0x7fffffff : (int)v; }

HAKMEM_API struct mallinfo mallinfo(void)
{
    struct mallinfo2 m2 = mallinfo2();
    struct mallinfo mi;
    memset(&mi, 0, sizeof mi);
    mi.arena = clamp_int(m2.arena);
    mi.ordblks = clamp_int(m2.ordblks);
    mi.hblks = clamp_int(m2.hblks);
    mi.hblkhd = clamp_int(m2.hblkhd);
    mi.smblks = clamp_int(m2.smblks);
    mi.fsmblks = clamp_int(m2.fsmblks);
    mi.uordblks = clamp_int(m2.uordblks);
    mi.fordblks = clamp_int(m2.fordblks);
    return mi;
}

HAKMEM_API void malloc_stats(void)
{
    hak_usage_t u;
    usage(&u);
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
    usage(&u);
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
            (unsigned long long)u.large_keep_max);
    return ferror(fp) ? EIO : 0;
}

/* glibc 2.36's mallopt (__libc_mallopt, malloc/malloc.c) answers 1 for every parameter and
 * value but one case: M_MXFAST above MAX_FAST_SIZE, 80 * sizeof(size_t) / 4 = 160 (a negative
 * value too: glibc takes it as a size_t), gets 0. Its switch has no default, so parameter
 * numbers it does not know get 1 as well, and it leaves errno alone. hakmem answers the same,
 * and applies what has a meaning here (docs/TUNING.md, mallopt); hakmem's own parameters
 * (hakmem.h) get 0 when their value is out of range. */
#define MXFAST_MAX (80 * sizeof(size_t) / 4)

HAKMEM_API int mallopt(int param, int value)
{
    int saved = errno, answer = 1;
    switch (param) {
    case M_MXFAST: /* no fastbins here: glibc's answer, nothing to do */
        answer = (size_t)value <= MXFAST_MAX;
        break;
    case M_TRIM_THRESHOLD: /* freed memory kept for reuse: the large cache's budget, in whole
                            * MiB; negative is glibc's huge threshold: the largest budget.
                            * The large blocks this thread kept go to the cache first. */
        hak_large_thread_flush();
        hak_large_cache_set_budget_mib(value < 0 ? HAK_CFG_MAX_large_cache_mib
                                                 : ((int64_t)value + (1 << 20) - 1) >> 20);
        break;
    case M_MMAP_THRESHOLD: /* freed mappings above this go back to the OS at once; negative
                            * converts to a huge size_t, as in glibc: no bound */
        hak_large_thread_flush();
        hak_large_cache_set_entry_max((size_t)value);
        break;
    case M_PERTURB: /* fill blocks on the cold paths, as glibc does outside its tcache */
        __atomic_store_n(&hak_tcache_perturb, value, __ATOMIC_RELAXED);
        break;
    case M_HAKMEM_DECAY_MS:
        if (value < HAK_CFG_MIN_decay_ms || value > HAK_CFG_MAX_decay_ms)
            answer = 0;
        else
            __atomic_store_n(&hak_config.decay_ms, value, __ATOMIC_RELAXED);
        break;
    case M_HAKMEM_PURGE: /* malloc_trim(0): this thread's lists, then Box 2's caches */
        malloc_trim(0);
        break;
    default: /* M_TOP_PAD, M_MMAP_MAX, M_CHECK_ACTION, M_ARENA_TEST, M_ARENA_MAX, and numbers
              * glibc does not know: accepted, nothing in hakmem maps onto them */
        break;
    }
    errno = saved;
    return answer;
}
