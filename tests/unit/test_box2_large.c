/* tests/unit/test_box2_large.c - the large cache reuses address ranges instead of mapping anew:
 * best fit and splitting, merging, a resident range grown over the purged range beside it,
 * resident pages moved into a purged range, pages moved into fresh mappings at their old
 * phase modulo 2 MiB (so mremap moves them by page-table page), a thread keeping the large
 * blocks it frees (large_local.h) and giving them back at malloc_trim and exit, the cap
 * purging instead of unmapping, a budget that follows the live large bytes and decays, ranges
 * that cycle through the cache kept resident (a steady reuse raises the peak, up to twice the
 * live bytes' peak), a free past the budget purging at once, a new chunk of spans cut from a
 * resident range, and more purges or unmaps at once than one hold of the cache's lock queues
 * (large_cache.h).
 *
 * Linked with libhakmem.a. Each scenario runs in a forked child with the purger off and a
 * decay delay of 600 s, so no tick runs while it looks (the first, due at once, is taken at
 * the start); the cache starts empty (malloc_trim). System calls are counted through the
 * hak_os table. Blocks are laid out by cutting one cached range, so which addresses touch is
 * known; nothing here measures time.
 */
#include <errno.h>
#include <pthread.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "box2_refill/large.h"
#include "box2_refill/large_cache.h"
#include "box2_refill/lock.h"
#include "box2_refill/os.h"
#include "box2_refill/purge.h"
#include "box2_refill/span.h"
#include "box2_refill/thread.h"
#include "shared_contracts/config.h"
#include "testlib.h"

#define MIB ((size_t)1 << 20)
/* malloc(n MiB - 4096) takes exactly n MiB of map pages (64-byte header included). */
#define BLOCK(n) ((n) * MIB - 4096)

static hak_os_t real_os;
static int map_calls, unmap_calls, purge_calls, remap_calls, remap_moves;

static void *counting_map(size_t len)
{
    map_calls++;
    return real_os.map(len);
}
static void counting_unmap(void *a, size_t len)
{
    unmap_calls++;
    real_os.unmap(a, len);
}
static void counting_purge(void *a, size_t len)
{
    purge_calls++;
    real_os.purge(a, len);
}
static void *counting_remap(void *a, size_t old_len, size_t new_len, void *to)
{
    remap_calls++;
    void *p = real_os.remap(a, old_len, new_len, to);
    remap_moves += p && to;
    return p;
}

static void count_calls(void)
{
    map_calls = unmap_calls = purge_calls = remap_calls = remap_moves = 0;
    hak_os = (hak_os_t){counting_map, counting_unmap, counting_purge, counting_remap};
}

/* In the child: no purger, no tick during the scenario, an empty cache, calls counted. */
static void quiet_start(void)
{
    real_os = hak_os;
    hak_config.purger = 0;
    hak_config.decay_ms = 600000;
    hak_config.large_cache_mib = 1024;
    hak_config.large_thread_kib = 0; /* every free reaches the cache (but the thread-kept
                                      * scenarios, below, which turn it back on) */
    hak_decay_maybe(hak_now_ms()); /* the tick due now; the next is 150 s away */
    malloc_trim(0);
    count_calls();
}

static hak_large_cache_totals_t totals(void)
{
    hak_large_cache_totals_t t;
    hak_large_cache_totals(&t);
    return t;
}

static int all_bytes(const unsigned char *p, size_t n, unsigned char v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return 0;
    return 1;
}

/* Cache one range of the sum of mib[] MiB, then cut blocks of mib[i] MiB out of it, in order
 * (block i starts where the ones before it end), each filled with `fill`. Returns the range's
 * first byte as malloc returned it, or NULL. */
static char *cut_in_order(char **blk, const unsigned *mib, unsigned n, int fill)
{
    size_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += mib[i];
    char *x = total ? malloc(BLOCK(total)) : NULL;
    if (!x)
        return NULL;
    free(x);
    size_t off = 0;
    for (unsigned i = 0; i < n; i++) {
        blk[i] = malloc(BLOCK(mib[i]));
        if (blk[i] != x + off)
            return NULL;
        memset(blk[i], fill, BLOCK(mib[i]));
        off += mib[i] * MIB;
    }
    return x;
}

/* Free two touching 8 MiB blocks under a 12 MiB cap: merged, their 16 MiB are purged. */
static void free_into_purged(char *b, char *c)
{
    hak_config.large_cache_mib = 12;
    free(b);
    free(c);
    hak_config.large_cache_mib = 1024;
}

static void run(int (*scenario)(void *))
{
    char why[256];
    if (tl_run_in_child(scenario, NULL, 120, why, sizeof why))
        fail_msg("%s", why);
}

/* ---- best fit, splitting, merging ------------------------------------------------------- */

static int scenario_split_and_merge(void *unused)
{
    (void)unused;
    quiet_start();
    char *x = malloc(BLOCK(26)); /* [R, R + 26 MiB), then cached whole */
    if (!x)
        TL_FAILF("malloc(26 MiB)");
    free(x);
    count_calls();
    char *a = malloc(BLOCK(8)), *b = malloc(BLOCK(8));
    if (a != x || b != x + 8 * MIB)
        TL_FAILF("8 MiB blocks not cut from the front of the cached range: %p %p, range %p",
                 (void *)a, (void *)b, (void *)x);
    free(a); /* cached now: [R, R+8) and [R+16, R+26), b between them */
    char *c = malloc(6 * MIB);
    if (c != x)
        TL_FAILF("6 MiB did not take the best-fitting range (8 MiB at %p), got %p", (void *)x,
                 (void *)c);
    free(c);
    free(b); /* merges with both neighbours */
    hak_large_cache_totals_t t = totals();
    if (t.entries != 1 || t.resident != 26 * MIB)
        TL_FAILF("after the frees: %llu ranges, %llu KiB resident; expected one of 26 MiB",
                 (unsigned long long)t.entries, (unsigned long long)(t.resident >> 10));
    char *d = malloc(BLOCK(26));
    if (d != x)
        TL_FAILF("the merged range was not reused whole: %p, range %p", (void *)d, (void *)x);
    free(d);
    if (map_calls || unmap_calls || purge_calls || remap_calls)
        TL_FAILF("system calls where cached ranges served every request: map %d unmap %d "
                 "purge %d remap %d", map_calls, unmap_calls, purge_calls, remap_calls);
    return 0;
}

static void test_big_blocks_split_best_fit_and_merge(void **s)
{
    (void)s;
    run(scenario_split_and_merge);
}

/* ---- the cap purges; a resident range grows over the purged range beside it ----------- */

static int scenario_grow_over_purged(void *unused)
{
    (void)unused;
    quiet_start();
    char *blk[3];
    char *x = cut_in_order(blk, (const unsigned[]){8, 8, 8}, 3, 0xa5);
    if (!x)
        TL_FAILF("blocks not cut from a cached range in order");
    count_calls();
    free_into_purged(blk[1], blk[2]); /* 16 MiB resident > the cap: purged, not unmapped */
    free(blk[0]);                     /* resident again: 8 MiB */
    hak_large_cache_totals_t t = totals();
    if (purge_calls != 1 || unmap_calls || t.resident != 8 * MIB || t.purged != 16 * MIB)
        TL_FAILF("past the cap: %d purges, %d unmaps, %llu KiB resident, %llu KiB purged; "
                 "expected the 16 MiB range purged and kept", purge_calls, unmap_calls,
                 (unsigned long long)(t.resident >> 10), (unsigned long long)(t.purged >> 10));
    /* 20 MiB: no range alone fits; the resident 8 MiB grows over the purged range after it */
    unsigned char *p = calloc(1, 20 * MIB);
    if (p != (unsigned char *)x)
        TL_FAILF("calloc(20 MiB) at %p, not over the resident range at %p", (void *)p, (void *)x);
    if (!all_bytes(p, 20 * MIB, 0))
        TL_FAILF("calloc over a resident and a purged range is not all zero");
    t = totals();
    if (map_calls || remap_calls || t.resident != 0 || t.purged != 4 * MIB - 64 * 1024)
        TL_FAILF("map %d remap %d, %llu KiB resident, %llu KiB purged left; expected no call "
                 "and the purged rest cached", map_calls, remap_calls,
                 (unsigned long long)(t.resident >> 10), (unsigned long long)(t.purged >> 10));
    free(p);
    return 0;
}

static void test_cap_purges_and_resident_range_grows_over_purged(void **s)
{
    (void)s;
    run(scenario_grow_over_purged);
}

/* ---- resident pages move into a purged range, or grow into fresh memory ------------------ */

static int scenario_move_resident_pages(void *unused)
{
    (void)unused;
    quiet_start();
    char *blk[4]; /* a, a guard, then two that become a purged range */
    char *x = cut_in_order(blk, (const unsigned[]){4, 4, 8, 8}, 4, 0x5a);
    if (!x)
        TL_FAILF("blocks not cut from a cached range in order");
    free_into_purged(blk[2], blk[3]); /* purged: [R+8, R+24) */
    free(blk[0]); /* resident: [R, R+4), not touching the purged range (the guard between) */
    count_calls();
    /* 12 MiB: only the purged range fits; a's pages are moved into its head */
    unsigned char *p = malloc(12 * MIB);
    if (p != (unsigned char *)x + 8 * MIB)
        TL_FAILF("malloc(12 MiB) at %p, not in the purged range at %p", (void *)p,
                 (void *)(x + 8 * MIB));
    if (map_calls || remap_moves != 1 || !all_bytes(p, BLOCK(4), 0x5a))
        TL_FAILF("map %d, %d moves, old bytes %s: the resident pages were not moved in",
                 map_calls, remap_moves, all_bytes(p, BLOCK(4), 0x5a) ? "kept" : "lost");
    memset(p, 0x3c, 12 * MIB);
    free(p);
    free(blk[1]);
    /* Now 16 MiB: no range of that size, and none purged to grow over. The largest resident
     * range grows in place or moves into a fresh mapping, its bytes along. */
    malloc_trim(0);
    unsigned char *q = malloc(BLOCK(6));
    memset(q, 0x77, BLOCK(6));
    free(q);
    count_calls();
    uint64_t grown0 = totals().grown, misses0 = totals().misses;
    unsigned char *r = malloc(16 * MIB);
    if (!r || !all_bytes(r, BLOCK(6) - 64 * 1024, 0x77))
        TL_FAILF("malloc(16 MiB) after a 6 MiB range: its bytes did not come along");
    if (remap_calls < 1 || totals().grown != grown0 + 1 || totals().misses != misses0)
        TL_FAILF("%d remaps, grown +%llu, misses +%llu: expected the range grown or moved",
                 remap_calls, (unsigned long long)(totals().grown - grown0),
                 (unsigned long long)(totals().misses - misses0));
    free(r);
    return 0;
}

static void test_resident_pages_move_instead_of_faulting(void **s)
{
    (void)s;
    run(scenario_move_resident_pages);
}

/* ---- moves by page-table page (os.h, HAK_OS_PMD) ----------------------------------------- */

static uintptr_t moved_from, moved_to;

/* remap that refuses to grow in place (as when the address space after the range is taken),
 * so that a bigger block moves; records the last move. */
static void *remap_no_growth(void *a, size_t old_len, size_t new_len, void *to)
{
    remap_calls++;
    if (!to && new_len > old_len)
        return NULL;
    void *p = real_os.remap(a, old_len, new_len, to);
    if (p && to) {
        remap_moves++;
        moved_from = (uintptr_t)a;
        moved_to = (uintptr_t)to;
    }
    return p;
}

/* The move went to an address as far from a 2 MiB boundary as the old one was. */
static int moved_by_pmd(const char *what, int round)
{
    if (remap_moves != 1)
        TL_FAILF("%s, round %d: %d moves (%d remap calls), expected 1", what, round, remap_moves,
                 remap_calls);
    if ((moved_from - moved_to) % HAK_OS_PMD)
        TL_FAILF("%s, round %d: pages moved from %#lx to %#lx: %lu KiB and %lu KiB past a 2 MiB "
                 "boundary, so mremap moved them page by page", what, round,
                 (unsigned long)moved_from, (unsigned long)moved_to,
                 (unsigned long)(moved_from % HAK_OS_PMD) >> 10,
                 (unsigned long)(moved_to % HAK_OS_PMD) >> 10);
    return 0;
}

static int scenario_moves_keep_phase(void *unused)
{
    (void)unused;
    quiet_start();
    for (int round = 0; round < 4; round++) {
        /* A cached resident range of 6 + round MiB, then a block that no cached range holds:
         * the range's pages move into the head of a fresh mapping. */
        unsigned char *q = malloc(BLOCK(6 + round));
        if (!q)
            TL_FAILF("malloc(%u MiB) failed", 6 + round);
        memset(q, 0x77, BLOCK(6 + round));
        free(q);
        count_calls();
        hak_os.remap = remap_no_growth;
        unsigned char *r = malloc(20 * MIB);
        if (!r || !all_bytes(r, BLOCK(6 + round) - 64 * 1024, 0x77))
            TL_FAILF("round %d: malloc(20 MiB) after a %d MiB range: its bytes did not come "
                     "along", round, 6 + round);
        if (moved_by_pmd("malloc", round))
            return 1;
        /* realloc of a block in one fresh mapping that can neither grow in place nor find
         * a cached range: its pages move into a fresh mapping. */
        free(r);
        hak_os = real_os;
        malloc_trim(0);
        r = malloc(BLOCK(5 + round));
        if (!r)
            TL_FAILF("malloc(%u MiB) failed", 5 + round);
        memset(r, 0x21, BLOCK(5 + round));
        count_calls();
        hak_os.remap = remap_no_growth;
        unsigned char *g = realloc(r, 60 * MIB);
        if (!g || !all_bytes(g, BLOCK(5 + round), 0x21))
            TL_FAILF("round %d: realloc to 60 MiB lost the bytes", round);
        if (moved_by_pmd("realloc", round))
            return 1;
        free(g);
        hak_os = real_os;
        malloc_trim(0); /* an empty cache for the next round */
    }
    return 0;
}

static void test_moves_keep_the_phase_of_2_mib(void **s)
{
    (void)s;
    run(scenario_moves_keep_phase);
}

/* ---- a thread keeps the large blocks it frees (large_local.h) ---------------------------- */

/* Free n blocks of `kib` KiB each (filled with v), in order; their addresses in blk[]. */
static int free_blocks(char **blk, unsigned n, size_t kib, int v)
{
    for (unsigned i = 0; i < n; i++) {
        blk[i] = malloc(kib * 1024 - 4096);
        if (!blk[i])
            return 1;
        memset(blk[i], v, kib * 1024 - 4096);
    }
    for (unsigned i = 0; i < n; i++)
        free(blk[i]);
    return 0;
}

static int exit_ok;

static void *exit_holding(void *arg)
{
    char *blk[2];
    return free_blocks(blk, 2, 512, 0x44) ? NULL : arg;
}

static int scenario_thread_keeps(void *unused)
{
    (void)unused;
    quiet_start();
    hak_config.large_thread_kib = 8192;
    hak_config.cpus = 64; /* no share cut below 64 threads */
    /* A freed 512 KiB block comes back to the same thread without the cache: the same
     * address, no hit, no miss, no system call; its old bytes are there, calloc clears them. */
    char *blk[16];
    if (free_blocks(blk, 1, 512, 0x5a))
        TL_FAILF("malloc(512 KiB) failed");
    count_calls();
    hak_large_cache_totals_t t0 = totals();
    unsigned char *p = calloc(1, 512 * 1024 - 4096);
    hak_large_cache_totals_t t1 = totals();
    if ((char *)p != blk[0] || t1.hits != t0.hits || t1.misses != t0.misses || map_calls ||
        remap_calls || !all_bytes(p, 512 * 1024 - 4096, 0))
        TL_FAILF("calloc after a free of 512 KiB: %p (freed %p), cache hits +%llu misses +%llu, "
                 "%d maps, %d remaps, %s", (void *)p, (void *)blk[0],
                 (unsigned long long)(t1.hits - t0.hits),
                 (unsigned long long)(t1.misses - t0.misses), map_calls, remap_calls,
                 all_bytes(p, 512 * 1024 - 4096, 0) ? "zeroed" : "old bytes left");
    free(p);
    /* 2 MiB and up go to the cache. */
    t0 = totals();
    free(malloc(2 * MIB));
    if (totals().entries != t0.entries + 1)
        TL_FAILF("a freed 2 MiB block did not go to the cache");
    /* At most HAK_LARGE_HELD_MAX ranges, 8 MiB, and half the cache's budget: of 16 freed
     * 768 KiB blocks (12 MiB), the ones freed last are kept, the oldest went to the cache. */
    malloc_trim(0);
    t0 = totals();
    if (free_blocks(blk, 16, 768, 0x11))
        TL_FAILF("malloc(768 KiB) failed");
    hak_large_held_t *h = &hak_thread_self()->held;
    t1 = totals();
    if (!hak_thread_self()->live || h->n > HAK_LARGE_HELD_MAX || h->bytes > 8 * MIB ||
        h->bytes > t1.target / 2 || h->n < 2 || t1.held != h->n || t1.held_bytes != h->bytes ||
        t1.resident - t0.resident != 16 * 768 * 1024 - h->bytes)
        TL_FAILF("after 16 frees of 768 KiB: %u kept (%llu KiB; the totals say %llu, %llu KiB; "
                 "target %llu KiB), %llu KiB more in the cache", h->n,
                 (unsigned long long)h->bytes >> 10, (unsigned long long)t1.held,
                 (unsigned long long)t1.held_bytes >> 10, (unsigned long long)t1.target >> 10,
                 (unsigned long long)(t1.resident - t0.resident) >> 10);
    for (unsigned i = 0; i < h->n; i++)
        if (h->base[i] != (uintptr_t)blk[16 - h->n + i] - 64)
            TL_FAILF("kept range %u of %u at %#lx (%llu KiB) is not the block freed %u-th "
                     "(%p)", i, h->n, (unsigned long)h->base[i],
                     (unsigned long long)h->len[i] >> 10, 16 - h->n + i,
                     (void *)blk[16 - h->n + i]);
    /* A block longer than twice any the thread asked malloc for lately (a buffer grown by
     * realloc) goes to the cache. */
    malloc_trim(0);
    unsigned char *g = malloc(64 * 1024);
    unsigned char *g2 = g ? realloc(g, 1536 * 1024) : NULL;
    if (!g2)
        TL_FAILF("realloc to 1.5 MiB failed");
    for (unsigned i = 0; i < 130; i++) /* two rounds of asks of 96 KiB (large_local.c) */
        free(malloc(96 * 1024));
    uint32_t n0 = h->n;
    t0 = totals();
    free(g2);
    if (h->n != n0 || totals().resident <= t0.resident)
        TL_FAILF("a 1.5 MiB block grown by realloc was kept by the thread (%u ranges, %u before)",
                 h->n, n0);
    /* malloc_trim gives them back (and the cache unmaps them). */
    malloc_trim(0);
    if (h->n || h->bytes || totals().resident)
        TL_FAILF("after malloc_trim: %u ranges kept, %llu KiB resident in the cache", h->n,
                 (unsigned long long)totals().resident >> 10);
    /* A thread that exits gives what it kept to the cache. */
    t0 = totals();
    pthread_t th;
    void *ok = NULL;
    if (pthread_create(&th, NULL, exit_holding, &exit_ok) || pthread_join(th, &ok) || !ok)
        TL_FAILF("the exiting thread failed");
    t1 = totals();
    if (t1.resident - t0.resident != 2 * 512 * 1024)
        TL_FAILF("a thread exited holding 2 freed 512 KiB blocks: the cache got %llu KiB",
                 (unsigned long long)(t1.resident - t0.resident) >> 10);
    /* HAKMEM_LARGE_THREAD_KIB=0: none kept. */
    hak_config.large_thread_kib = 0;
    p = malloc(512 * 1024 - 4096);
    t0 = totals();
    free(p);
    if (h->n || totals().resident != t0.resident + 512 * 1024)
        TL_FAILF("with the option 0 a freed 512 KiB block was kept (%u ranges)", h->n);
    return 0;
}

static void test_thread_keeps_its_freed_large_blocks(void **s)
{
    (void)s;
    run(scenario_thread_keeps);
}

/* ---- the budget follows the live bytes, decays, and idle ranges are unmapped ----------- */

static int scenario_budget_decays(void *unused)
{
    (void)unused;
    quiet_start();
    unsigned char *x = malloc(BLOCK(64));
    if (!x)
        TL_FAILF("malloc(64 MiB)");
    memset(x, 0xc3, BLOCK(64));
    free(x); /* the peak of live bytes was 64 MiB; now one resident range of 64 MiB */
    uint64_t live_count, live, total;
    hak_large_stats(&live_count, &live, &total);
    count_calls();
    /* The program goes on with 2 MiB blocks, cut from the range and freed back (which keeps
     * it in use), one per period of a 100 s decay delay, in the cache's own clock. */
    const uint64_t decay = 100000;
    uint64_t now = hak_now_ms();
    for (unsigned k = 1; k <= HAK_LARGE_PEAK_WINDOWS; k++) {
        now += decay / 4;
        hak_large_got_t got;
        if (!hak_large_cache_get(2 * MIB, 64 * 1024, &got) || got.base != (uintptr_t)x - 64)
            TL_FAILF("step %u: 2 MiB not cut from the front of the cached range", k);
        hak_large_cache_note_live(live + got.len);
        hak_large_cache_put(got.base, got.len, now);
        hak_large_cache_decay(now, decay, live);
        hak_large_cache_totals_t t = totals();
        if (k < HAK_LARGE_PEAK_WINDOWS && (purge_calls || t.resident != 64 * MIB))
            TL_FAILF("step %u: %d purges, %llu KiB resident, with the 64 MiB peak in the window",
                     k, purge_calls, (unsigned long long)(t.resident >> 10));
        if (k == HAK_LARGE_PEAK_WINDOWS &&
            (purge_calls != 1 || unmap_calls || t.resident != HAK_LARGE_CACHE_FLOOR ||
             t.purged != 64 * MIB - HAK_LARGE_CACHE_FLOOR))
            TL_FAILF("once the peak left the window: %d purges, %d unmaps, %llu KiB resident, "
                     "%llu KiB purged; expected the range's tail purged down to the floor",
                     purge_calls, unmap_calls, (unsigned long long)(t.resident >> 10),
                     (unsigned long long)(t.purged >> 10));
    }
    /* What stays resident keeps its bytes; the purged tail reads as zero. */
    if (!all_bytes(x, HAK_LARGE_CACHE_FLOOR - 64, 0xc3) ||
        !all_bytes(x - 64 + HAK_LARGE_CACHE_FLOOR, 4 * MIB, 0))
        TL_FAILF("resident front or purged tail not as expected");
    /* Idle for the whole delay: everything is unmapped. */
    hak_large_cache_decay(now + decay, decay, live);
    hak_large_cache_totals_t t = totals();
    if (t.entries || t.resident || t.purged || unmap_calls != 2)
        TL_FAILF("after an idle delay: %llu ranges, %d unmaps; expected both ranges unmapped",
                 (unsigned long long)t.entries, unmap_calls);
    return 0;
}

static void test_budget_follows_live_bytes_and_decays(void **s)
{
    (void)s;
    run(scenario_budget_decays);
}

/* ---- ranges that cycle through the cache stay resident: a reuse raises the peak ---------- */

#define CYCLE_RANGES 6
#define PAGES64K(p) ((size_t)(p) << 16)

/* Map and cache CYCLE_RANGES ranges of first, first + 1, ... map pages, written, after raising
 * the live peak to their sum (they were freed while it was theirs); their bases in base[].
 * Returns the sum, 0 on a failure (reported). */
static size_t cache_cycle_ranges(unsigned first, uintptr_t base[CYCLE_RANGES])
{
    size_t all = 0;
    for (unsigned i = 0; i < CYCLE_RANGES; i++)
        all += PAGES64K(first + i);
    hak_large_cache_note_live(all);
    for (unsigned i = 0; i < CYCLE_RANGES; i++) {
        void *r = hak_os_map_aligned(PAGES64K(first + i), 64 * 1024);
        if (!r || !hak_large_cache_put((uintptr_t)r, PAGES64K(first + i), hak_now_ms())) {
            fprintf(stderr, "    FAIL: range %u not kept\n", i);
            return 0;
        }
        memset(r, 0x3c, PAGES64K(first + i));
        base[i] = (uintptr_t)r;
    }
    return all;
}

static int scenario_cycle(void *unused)
{
    (void)unused;
    quiet_start();
    /* Six ranges of 20 to 25 map pages (8.4 MiB), freed while the peak of live bytes was
     * theirs. Then the program takes them in turn and gives each back, with nothing live in
     * between: each take is the oldest range (the only one of its length), with the five
     * others cached since. The live bytes stay 0, so once their peak leaves the window, the
     * live bytes alone leave the floor (4 MiB); steady reuses count their distance instead. */
    uintptr_t base[CYCLE_RANGES];
    size_t all = cache_cycle_ranges(20, base);
    if (!all)
        return 1;
    count_calls();
    const uint64_t decay = 100000;
    uint64_t now = hak_now_ms();
    for (unsigned k = 1; k <= HAK_LARGE_PEAK_WINDOWS + 2; k++) {
        now += decay / 4;
        for (int i = 0; i < CYCLE_RANGES; i++) {
            hak_large_got_t got;
            if (!hak_large_cache_get(PAGES64K(20 + i), 64 * 1024, &got) || got.base != base[i] ||
                !got.dirty)
                TL_FAILF("period %u: range %d not reused resident", k, i);
            hak_large_cache_put(got.base, got.len, now);
        }
        hak_large_cache_decay(now, decay, 0);
        hak_large_cache_totals_t t = totals();
        if (purge_calls || unmap_calls || t.resident != all)
            TL_FAILF("period %u: %d purges, %d unmaps, %llu KiB resident of %llu (target %llu "
                     "KiB); expected the cycling ranges kept resident", k, purge_calls,
                     unmap_calls, (unsigned long long)(t.resident >> 10),
                     (unsigned long long)(all >> 10), (unsigned long long)(t.target >> 10));
    }
    /* Then one reuse a period, of the oldest range (all six count in its distance): a lone
     * reuse is not a steady one, and once the last busy period leaves the window the cache
     * is purged down to the floor. */
    for (unsigned k = 1; k < HAK_LARGE_PEAK_WINDOWS; k++) {
        now += decay / 4;
        hak_large_got_t got;
        if (!hak_large_cache_get(PAGES64K(20 + k - 1), 64 * 1024, &got) ||
            got.base != base[k - 1])
            TL_FAILF("quiet period %u: range %u not reused", k, k - 1);
        hak_large_cache_put(got.base, got.len, now);
        hak_large_cache_decay(now, decay, 0);
        hak_large_cache_totals_t t = totals();
        int last = k == HAK_LARGE_PEAK_WINDOWS - 1;
        if (last ? t.resident != HAK_LARGE_CACHE_FLOOR || !purge_calls
                 : purge_calls || t.resident != all)
            TL_FAILF("quiet period %u: %d purges, %llu KiB resident (target %llu KiB); expected "
                     "%s", k, purge_calls, (unsigned long long)(t.resident >> 10),
                     (unsigned long long)(t.target >> 10),
                     last ? "the cache purged down to the floor" : "all six still resident");
    }
    return 0;
}

static void test_ranges_cycling_through_the_cache_stay_resident(void **s)
{
    (void)s;
    run(scenario_cycle);
}

/* ---- the reuse peak is bounded by the live bytes' (or the floor) ---------------------------- */

static int scenario_cycle_bounded(void *unused)
{
    (void)unused;
    quiet_start();
    /* As scenario_cycle, with six ranges of 26 to 31 map pages (10.7 MiB): their reuse
     * distances reach 10.7 MiB, but once the live peak left the window they count only up to
     * twice the floor (8 MiB), and the target is 9 MiB. */
    uintptr_t base[CYCLE_RANGES];
    if (!cache_cycle_ranges(26, base))
        return 1;
    count_calls();
    const uint64_t decay = 100000;
    uint64_t now = hak_now_ms();
    for (unsigned k = 1; k <= HAK_LARGE_PEAK_WINDOWS; k++) {
        now += decay / 4;
        for (int i = 0; i < CYCLE_RANGES; i++) {
            hak_large_got_t got;
            if (!hak_large_cache_get(PAGES64K(26 + i), 64 * 1024, &got))
                TL_FAILF("period %u: no range for %d map pages", k, 26 + i);
            hak_large_cache_put(got.base, got.len, now);
        }
        hak_large_cache_decay(now, decay, 0);
    }
    hak_large_cache_totals_t t = totals();
    size_t bound = 2 * HAK_LARGE_CACHE_FLOOR + HAK_LARGE_CACHE_FLOOR / 4;
    if (t.target != bound || t.resident > bound || !purge_calls)
        TL_FAILF("%d purges, %llu KiB resident, target %llu KiB; expected the target at twice "
                 "the floor plus an eighth (%llu KiB) and the rest purged", purge_calls,
                 (unsigned long long)(t.resident >> 10), (unsigned long long)(t.target >> 10),
                 (unsigned long long)(bound >> 10));
    return 0;
}

static void test_reuse_peak_is_bounded_by_the_live_peak(void **s)
{
    (void)s;
    run(scenario_cycle_bounded);
}

/* ---- between two ticks, a free never leaves more resident than the budget --------------- */

static int scenario_free_past_budget(void *unused)
{
    (void)unused;
    quiet_start();
    unsigned char *x = malloc(BLOCK(8)); /* the peak of live bytes: 8 MiB */
    if (!x)
        TL_FAILF("malloc(8 MiB)");
    memset(x, 0x5a, BLOCK(8));
    free(x); /* budget: 8 MiB + 1/8 beside 0 live = 9 MiB; 8 MiB resident */
    count_calls();
    /* Another 8 MiB range comes back (as a free does, after its bytes left the live count):
     * 16 MiB would be resident, 7 past the budget, purged at once, the oldest bytes first. */
    void *y = hak_os_map_aligned(8 * MIB, 64 * 1024);
    if (!y || !hak_large_cache_put((uintptr_t)y, 8 * MIB, hak_now_ms()))
        TL_FAILF("an 8 MiB range was not kept");
    hak_large_cache_totals_t t = totals();
    if (purge_calls != 1 || t.resident != 9 * MIB || t.purged != 7 * MIB)
        TL_FAILF("%d purges, %llu KiB resident, %llu KiB purged; expected 7 MiB purged at once "
                 "and the 9 MiB budget resident", purge_calls,
                 (unsigned long long)(t.resident >> 10), (unsigned long long)(t.purged >> 10));
    return 0;
}

static void test_free_past_the_budget_purges_at_once(void **s)
{
    (void)s;
    run(scenario_free_past_budget);
}

/* ---- a new chunk of spans is cut from a resident cached range -------------------------- */

static int scenario_span_chunk_from_cache(void *unused)
{
    (void)unused;
    quiet_start();
    char *x = malloc(BLOCK(9)); /* cached: [x - 64, x - 64 + 9 MiB), resident */
    if (!x)
        TL_FAILF("malloc(9 MiB)");
    free(x);
    uintptr_t lo = (uintptr_t)x - 64, hi = lo + 9 * MIB;
    /* Spans of the 512 KiB kind (class 39, 32 KiB blocks) until one comes from a new chunk:
     * 16 spans, 8 MiB at a 512 KiB boundary, which fits in the 9 MiB range and nowhere else
     * in the cache. */
    enum { MAX_TAKEN = 64 };
    hak_span_t *taken[MAX_TAKEN];
    int n = 0, inside = 0;
    while (!inside && n < MAX_TAKEN) {
        taken[n] = hak_span_get(3, 39);
        if (!taken[n])
            TL_FAILF("hak_span_get(3, 39) failed");
        uintptr_t b = hak_span_base(taken[n++]);
        inside = b >= lo && b + hak_span_len(3) <= hi;
    }
    hak_large_cache_totals_t t = totals();
    if (!inside || t.resident != 1 * MIB)
        TL_FAILF("%s, %llu KiB resident; expected a span inside the cached range and its 8 MiB "
                 "chunk gone from the cache", inside ? "a span inside" : "no span inside",
                 (unsigned long long)(t.resident >> 10));
    for (int i = 0; i < n; i++)
        hak_span_put(taken[i], hak_now_ms());
    return 0;
}

static void test_span_chunk_cut_from_resident_cached_range(void **s)
{
    (void)s;
    run(scenario_span_chunk_from_cache);
}

/* ---- more work than one hold of the lock queues: done all the same --------------------- */

/* n separate ranges of len bytes (each mapped with a gap after it, so none merge), put into
 * the cache one ms apart, oldest first; 0 on success. */
static int put_separate(unsigned n, size_t len, uint64_t *now)
{
    for (unsigned i = 0; i < n; i++) {
        char *r = hak_os_map_aligned(2 * len, 64 * 1024);
        if (!r)
            return -1;
        memset(r, 0x11, len);
        if (!hak_large_cache_put((uintptr_t)r, len, ++*now))
            return -1;
    }
    return 0;
}

static int scenario_many_jobs(void *unused)
{
    (void)unused;
    quiet_start();
    uint64_t now = hak_now_ms();
    /* 40 ranges of 64 KiB (2.5 MiB, within the 4 MiB floor): kept whole, nothing purged. */
    if (put_separate(40, 64 * 1024, &now))
        TL_FAILF("could not cache 40 ranges");
    hak_large_cache_totals_t t = totals();
    if (t.entries != 40 || t.resident != 40 * 64 * 1024 || purge_calls)
        TL_FAILF("%llu ranges, %llu KiB resident, %d purges; expected the 40 ranges kept "
                 "resident", (unsigned long long)t.entries,
                 (unsigned long long)(t.resident >> 10), purge_calls);
    /* A 4 MiB range comes back: with it, the resident bytes pass the 4 MiB budget by the 40
     * small ranges' worth, 40 purges where one hold of the lock queues 15. */
    void *big = hak_os_map_aligned(4 * MIB, 64 * 1024);
    count_calls(); /* (mapping aligned unmaps the slack) */
    if (!big || !hak_large_cache_put((uintptr_t)big, 4 * MIB, ++now))
        TL_FAILF("the 4 MiB range was not kept");
    t = totals();
    if (purge_calls != 40 || t.resident != 4 * MIB || t.purged != 40 * 64 * 1024)
        TL_FAILF("%d purges, %llu KiB resident, %llu KiB purged; expected the 40 older ranges "
                 "purged at this free and the 4 MiB range resident", purge_calls,
                 (unsigned long long)(t.resident >> 10), (unsigned long long)(t.purged >> 10));
    /* Idle for the whole delay: the 41 ranges are unmapped, 16 a hold at most. */
    hak_large_cache_decay(now + 600000, 600000, 0);
    t = totals();
    if (t.entries || t.resident || t.purged || unmap_calls != 41)
        TL_FAILF("after an idle delay: %llu ranges left, %d unmaps; expected all 41 unmapped",
                 (unsigned long long)t.entries, unmap_calls);
    return 0;
}

static void test_more_jobs_than_one_hold_queues(void **s)
{
    (void)s;
    run(scenario_many_jobs);
}

int main(void)
{
    hak_config_load();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_big_blocks_split_best_fit_and_merge),
        cmocka_unit_test(test_cap_purges_and_resident_range_grows_over_purged),
        cmocka_unit_test(test_resident_pages_move_instead_of_faulting),
        cmocka_unit_test(test_moves_keep_the_phase_of_2_mib),
        cmocka_unit_test(test_thread_keeps_its_freed_large_blocks),
        cmocka_unit_test(test_budget_follows_live_bytes_and_decays),
        cmocka_unit_test(test_ranges_cycling_through_the_cache_stay_resident),
        cmocka_unit_test(test_reuse_peak_is_bounded_by_the_live_peak),
        cmocka_unit_test(test_free_past_the_budget_purges_at_once),
        cmocka_unit_test(test_span_chunk_cut_from_resident_cached_range),
        cmocka_unit_test(test_more_jobs_than_one_hold_queues),
    };
    return cmocka_run_group_tests_name("box2_large", tests, NULL, NULL);
}
