/* box2_refill/stats.c - the statistics table (hak_stats_format, and its writing at exit) and
 * the usage snapshot (shared_contracts/introspect.h). Box 1 exports the entry points that show
 * them (box1_tls/introspect.c).
 *
 * The per-class counters are per thread, written on slow paths only, with no atomic
 * read-modify-write (thread.h), and summed on demand; the large path's counters are relaxed
 * atomic adds (large.c). The table is formatted into a caller's buffer with hak_fmt: no
 * allocation, so it can be written at exit, under HAKMEM_STATS=1 (stderr) or
 * HAKMEM_STATS_FILE (a file), with write(2).
 */
#include "stats.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "central.h"
#include "large.h"
#include "large_cache.h"
#include "lock.h"
#include "sample_store.h"
#include "shared_contracts/backend.h"
#include "shared_contracts/config.h"
#include "shared_contracts/diag.h"
#include "shared_contracts/event_ring.h"
#include "shared_contracts/policy_table.h"
#include "span.h"
#include "thread.h"


static uint32_t current_refill_count(unsigned c)
{
    uint32_t fixed = hak_fixed_refill_count(c);
    return hak_config.ace == 1 ? hak_policy_refill_count(c, fixed) : fixed;
}

size_t hak_stats_format(char *buf, size_t cap)
{
    uint64_t st[HAK_TSTAT_COUNT][HAK_NUM_CLASSES];
    hak_thread_sum_stats(st);
    size_t n = 0;
#define PUT(...) n += hak_fmt(buf + (n < cap ? n : cap), n < cap ? cap - n : 0, __VA_ARGS__)
    PUT("hakmem %s statistics (POOL_ACE=%ld)\n", "per-class", (long)hak_config.ace);
    int shadow = hak_config.ace == HAK_ACE_SHADOW; /* one more column: what ACE would publish */
    PUT("%5s %7s %10s %12s %10s %12s %10s %6s %10s %10s%s\n", "class", "size", "refills",
        "refill_blks", "spills", "spill_blks", "trim_blks", "count", "events", "drops",
        shadow ? "  shadow" : "");
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        if (!st[HAK_TSTAT_refills][c] && !st[HAK_TSTAT_spills][c])
            continue;
        PUT("%5u %7u %10llu %12llu %10llu %12llu %10llu %6u %10llu %10llu", c,
            hak_class_size(c),
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
    hak_large_cache_totals_t lc;
    hak_large_cache_totals(&lc);
    PUT("spans: mapped %zu KiB, active %zu KiB, empty %zu KiB, purged %zu KiB, %zu cut smaller\n",
        sp.mapped >> 10, sp.active >> 10, sp.pooled >> 10, sp.purged >> 10, sp.splits);
    PUT("large: %llu live (%llu KiB), %llu allocated in all\n", (unsigned long long)lcount,
        (unsigned long long)(lbytes >> 10), (unsigned long long)ltotal);
    PUT("large cache: %llu ranges (%llu KiB resident, %llu KiB purged, target %llu KiB), "
        "%llu reused, %llu grown from a cached range, %llu mapped anew, %llu purges, "
        "%llu unmaps\n",
        (unsigned long long)lc.entries, (unsigned long long)(lc.resident >> 10),
        (unsigned long long)(lc.purged >> 10), (unsigned long long)(lc.target >> 10),
        (unsigned long long)lc.hits, (unsigned long long)lc.grown,
        (unsigned long long)lc.misses, (unsigned long long)lc.purges,
        (unsigned long long)lc.unmaps);
    PUT("large kept by threads: %llu ranges (%llu KiB)\n", (unsigned long long)lc.held,
        (unsigned long long)(lc.held_bytes >> 10));
    if (hak_config.guard_sample)
        PUT("guarded: %u live (at most %u), %llu picks allocated unguarded, %llu slots retired\n",
            hak_guarded_live(), HAK_GUARD_LIVE_MAX, (unsigned long long)hak_guarded_declined(),
            (unsigned long long)hak_guarded_retired());
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

void hak_stats_write_file(const char *pattern)
{
    char path[HAK_PATH_MAX + 32];
    size_t n = 0;
    int pid_written = 0;
    long pid = (long)getpid();
    for (const char *p = pattern; *p && n < sizeof path - 1; p++) {
        if (p[0] == '%' && p[1] == 'p') {
            n += hak_fmt(path + n, sizeof path - n, "%ld", pid);
            pid_written = 1;
            p++;
        } else {
            path[n++] = *p;
        }
    }
    if (!pid_written && n < sizeof path)
        n += hak_fmt(path + n, sizeof path - n, ".%ld", pid);
    path[n < sizeof path ? n : sizeof path - 1] = '\0';
    int saved = errno;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        hak_warn("HAKMEM_STATS_FILE=%s: cannot create %s (errno %d); no statistics written",
                 pattern, path, errno);
        errno = saved;
        return;
    }
    hak_stats_write(fd);
    close(fd);
    errno = saved;
}

void hak_usage_snapshot(hak_usage_t *u, const uint32_t self[HAK_NUM_CLASSES])
{
    int saved = errno;
    memset(u, 0, sizeof *u);
    uint64_t cached[HAK_NUM_CLASSES];
    hak_span_class_t sc[HAK_NUM_CLASSES];
    hak_thread_sum_cached(cached, self);
    hak_span_class_totals(sc);
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        hak_class_usage_t *k = &u->cls[c];
        uint64_t size = hak_class_size(c);
        k->span_free = sc[c].blocks_free;
        k->depot = 0;
        for (unsigned a = 0; a < hak_arenas; a++) {
            hak_lock(&hak_central[a][c].lock);
            k->depot += hak_central[a][c].depot_count + hak_central_mail_count(a, c);
            hak_unlock(&hak_central[a][c].lock);
        }
        k->thread = cached[c];
        k->spans = sc[c].spans;
        k->mapped = sc[c].bytes;
        /* blocks_out counts every block outside its span; the lists and the depot hold some */
        uint64_t kept = k->thread + k->depot;
        k->in_use = sc[c].blocks_out > kept ? sc[c].blocks_out - kept : 0;
        u->in_use_blocks += k->in_use;
        u->thread_blocks += k->thread;
        u->depot_blocks += k->depot;
        u->span_free_blocks += k->span_free;
        u->in_use_bytes += k->in_use * size;
        u->thread_bytes += k->thread * size;
        u->depot_bytes += k->depot * size;
        u->span_free_bytes += k->span_free * size;
    }
    hak_span_totals_t sp;
    hak_span_totals(&sp);
    u->spans.mapped = sp.mapped;
    u->spans.active = sp.active;
    u->spans.pooled = sp.pooled;
    u->spans.purged = sp.purged;
    u->spans_mapped_max = hak_span_mapped_max();
    uint64_t ltotal;
    hak_large_stats(&u->large_count, &u->large_bytes, &ltotal);
    hak_large_cache_totals_t lc;
    hak_large_cache_totals(&lc);
    /* The freed blocks threads keep (large_local.h) are free, with the cache's. */
    u->cache_entries = lc.entries + lc.held;
    u->cache_bytes = lc.resident + lc.purged + lc.held_bytes;
    u->large_keep_max = hak_large_cache_entry_max();
    errno = saved;
}
