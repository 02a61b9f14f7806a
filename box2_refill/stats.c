/* box2_refill/stats.c - statistics table, malloc_trim, mallinfo2.
 *
 * Counters are per thread (no atomic read-modify-write on any allocation path) and summed on
 * demand. The table is formatted into a caller's buffer with hak_fmt: no allocation, so it
 * can be written at exit, under HAKMEM_STATS=1, with write(2).
 */
#include "stats.h"

#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "central.h"
#include "large.h"
#include "refill.h"
#include "large_cache.h"
#include "lock.h"
#include "shared_contracts/config.h"
#include "shared_contracts/diag.h"
#include "shared_contracts/event_ring.h"
#include "shared_contracts/policy_table.h"
#include "shared_contracts/tcache.h"
#include "shared_contracts/valgrind_hooks.h"
#include "span.h"
#include "thread.h"

#define HAK_API __attribute__((visibility("default")))

static uint32_t current_refill_count(unsigned c)
{
    uint32_t fixed = hak_fixed_refill_count(c);
    return hak_config.ace == 1 ? hak_policy_refill_count(c, fixed) : fixed;
}

size_t hak_stats_format(char *buf, size_t cap)
{
    uint64_t st[HAK_TSTAT_COUNT][HAK_NUM_CLASSES], allocs[HAK_NUM_CLASSES];
    hak_thread_sum_stats(st, allocs);
    size_t n = 0;
#define PUT(...) n += hak_fmt(buf + (n < cap ? n : cap), n < cap ? cap - n : 0, __VA_ARGS__)
    PUT("hakmem %s statistics (POOL_ACE=%ld)\n", "per-class", (long)hak_config.ace);
    int shadow = hak_config.ace == HAK_ACE_SHADOW; /* one more column: what ACE would publish */
    PUT("%5s %7s %12s %10s %12s %10s %12s %10s %6s %10s %10s%s\n", "class", "size", "allocs",
        "refills", "refill_blks", "spills", "spill_blks", "trim_blks", "count", "events", "drops",
        shadow ? "  shadow" : "");
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        if (!allocs[c] && !st[HAK_TSTAT_refills][c] && !st[HAK_TSTAT_spills][c])
            continue;
        PUT("%5u %7u %12llu %10llu %12llu %10llu %12llu %10llu %6u %10llu %10llu", c,
            hak_class_size(c), (unsigned long long)allocs[c],
            (unsigned long long)st[HAK_TSTAT_refills][c],
            (unsigned long long)st[HAK_TSTAT_refill_blocks][c],
            (unsigned long long)st[HAK_TSTAT_spills][c],
            (unsigned long long)st[HAK_TSTAT_spill_blocks][c],
            (unsigned long long)st[HAK_TSTAT_trim_blocks][c], current_refill_count(c),
            (unsigned long long)st[HAK_TSTAT_events][c], (unsigned long long)st[HAK_TSTAT_drops][c]);
        if (shadow)
            PUT(" %7u", (unsigned)__atomic_load_n(&hak_policy_shadow[c], __ATOMIC_RELAXED));
        PUT("\n");
    }
    hak_span_totals_t sp;
    hak_span_totals(&sp);
    uint64_t lcount, lbytes, ltotal;
    hak_large_stats(&lcount, &lbytes, &ltotal);
    PUT("spans: mapped %zu KiB, active %zu KiB, empty %zu KiB, purged %zu KiB\n", sp.mapped >> 10,
        sp.active >> 10, sp.pooled >> 10, sp.purged >> 10);
    PUT("large: %llu live (%llu KiB), %llu allocated in all\n", (unsigned long long)lcount,
        (unsigned long long)(lbytes >> 10), (unsigned long long)ltotal);
    uint64_t centries, cbytes, chits, cmisses;
    hak_large_cache_stats(&centries, &cbytes, &chits, &cmisses);
    PUT("large cache: %llu mappings (%llu KiB), %llu reused, %llu mapped anew\n",
        (unsigned long long)centries, (unsigned long long)(cbytes >> 10),
        (unsigned long long)chits, (unsigned long long)cmisses);
    if (hak_config.ace)
        PUT("ace: events of threads with no ring (sent to the summary): %llu\n",
            (unsigned long long)hak_ring_no_ring_drops());
#undef PUT
    return n < cap ? n : (cap ? cap - 1 : 0);
}

void hak_stats_write(int fd)
{
    char buf[8192];
    size_t n = hak_stats_format(buf, sizeof buf);
    hak_write_all(fd, buf, n);
}

HAK_API void hakmem_stats_print(FILE *out)
{
    char buf[8192];
    size_t n = hak_stats_format(buf, sizeof buf);
    fwrite(buf, 1, n, out ? out : stderr);
    fflush(out ? out : stderr);
}

HAK_API int malloc_trim(size_t pad)
{
    (void)pad;
    HAK_VG_ENTER();
    uint64_t now = hak_now_ms();
    hak_release_cached(now);
    int released = hak_span_decay(now, 0, 1) > 0; /* 1 when pages went back to the OS */
    released |= hak_large_cache_trim(now, 0) > 0;
    HAK_VG_LEAVE();
    return released;
}

HAK_API struct mallinfo2 mallinfo2(void)
{
    struct mallinfo2 mi;
    memset(&mi, 0, sizeof mi);
    hak_span_totals_t sp;
    hak_span_totals(&sp);
    size_t depot_bytes = 0;
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
        depot_bytes += (size_t)__atomic_load_n(&hak_central[c].depot_count, __ATOMIC_RELAXED) *
                       hak_class_size(c);
    uint64_t lcount, lbytes, ltotal;
    hak_large_stats(&lcount, &lbytes, &ltotal);
    mi.arena = sp.mapped;
    mi.ordblks = (sp.pooled + sp.purged) >> 16;
    mi.hblks = lcount;
    mi.hblkhd = lbytes;
    mi.uordblks = sp.active > depot_bytes ? sp.active - depot_bytes : 0; /* includes caches */
    mi.fordblks = sp.mapped - mi.uordblks;
    mi.keepcost = 0;
    return mi;
}

static int clamp_int(size_t v) { return v > 0x7fffffff ? 0x7fffffff : (int)v; }

HAK_API struct mallinfo mallinfo(void)
{
    struct mallinfo2 m2 = mallinfo2();
    struct mallinfo mi;
    memset(&mi, 0, sizeof mi);
    mi.arena = clamp_int(m2.arena);
    mi.ordblks = clamp_int(m2.ordblks);
    mi.hblks = clamp_int(m2.hblks);
    mi.hblkhd = clamp_int(m2.hblkhd);
    mi.uordblks = clamp_int(m2.uordblks);
    mi.fordblks = clamp_int(m2.fordblks);
    return mi;
}
