/* tests/unit/test_box2_backend.c - Box 2 through its own entry points: refill counts, caps
 * and spills, thread exit returning the cache, decay and trim returning memory, the large
 * path and its page map entries, and out-of-memory answers from the OS layer.
 *
 * The test process itself runs on hakmem (libhakmem.a is linked in), so CMocka's own
 * allocations go through it too. Each scenario uses the largest classes (20-32 KiB), which
 * CMocka never asks for, and runs in a fresh thread, whose cache starts empty.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "box2_refill/central.h"
#include "box2_refill/large_cache.h"
#include "box2_refill/lock.h"
#include "box2_refill/os.h"
#include "box2_refill/refill.h"
#include "box2_refill/share.h"
#include "box2_refill/span.h"
#include "box2_refill/thread.h"
#include "shared_contracts/config.h"
#include "shared_contracts/pagemap.h"
#include "box1_tls/tcache.h"
#include "shared_contracts/list_rule.h"
#include "testlib.h"

/* A scenario in a fresh thread; a failed TL_CHECK there fails the test with its message. */
static void run_in_thread(void *(*fn)(void *), void *arg)
{
    const char *why = tl_run_thread(fn, arg);
    if (why)
        fail_msg("%s", why);
}

/* ---- refill counts ---------------------------------------------------------------------- */

/* The batch sizes of a fresh thread's first refills of class c: each refill's blocks, seen as
 * the list length after the malloc that refilled, plus the block handed out. */
static int batch_sizes(unsigned c, uint32_t *sizes, int n, void **keep, int max_keep)
{
    free(malloc(1280)); /* attach the thread (its first slow path), on another class */
    hak_thread_t *t = hak_thread_self();
    int got = 0, k = 0;
    while (got < n && k < max_keep) {
        uint64_t before = t->stat[HAK_TSTAT_refills][c];
        if (!(keep[k++] = malloc(hak_class_size(c))))
            return -1;
        if (t->stat[HAK_TSTAT_refills][c] != before)
            sizes[got++] = hak_list_count(c) + 1;
    }
    return k;
}

/* Small first batches (ramp.h): the first is 1 block (8 KiB worth), each later one at most
 * twice the one before, up to `count`, which the last ones reach. */
static int ramp_ok(const uint32_t *sz, int n, uint32_t count)
{
    if (sz[0] != 1 || sz[n - 1] != count || sz[n - 2] != count)
        return 0;
    for (int i = 1; i < n; i++)
        if (sz[i] < sz[i - 1] || sz[i] > 2 * sz[i - 1])
            return 0;
    return 1;
}

static void *refill_fixed_thread(void *arg)
{
    unsigned c = 38; /* 28672 B: Phase 1 count 16 */
    void *keep[128];
    uint32_t sz[8];
    TL_CHECK(hak_fixed_refill_count(c) == 16, "Phase 1 count of the largest classes is not 16");
    int k = batch_sizes(c, sz, 8, keep, 128);
    TL_CHECK(k > 0, "malloc failed");
    TL_CHECK(ramp_ok(sz, 8, 16), "batches do not ramp from 1 block up to the Phase 1 count");
    uint32_t before = hak_list_count(c);
    free(keep[--k]);
    TL_CHECK(hak_list_count(c) == before + 1, "free did not push on the list");
    while (k > 0)
        free(keep[--k]);
    return arg;
}

static void test_refill_uses_phase1_count(void **state)
{
    (void)state;
    assert_int_equal(hak_fixed_refill_count(0), 64);
    assert_int_equal(hak_fixed_refill_count(31), 32);
    run_in_thread(refill_fixed_thread, NULL);
}

static void *refill_override_thread(void *arg)
{
    unsigned c = 37; /* 24576 B */
    void *keep[64];
    uint32_t sz[7];
    int k = batch_sizes(c, sz, 7, keep, 64);
    TL_CHECK(k > 0, "malloc failed");
    TL_CHECK(ramp_ok(sz, 7, 5), "POOL_REFILL_COUNT_24576=5: batches do not ramp up to 5");
    while (k > 0)
        free(keep[--k]);
    return arg;
}

static void test_refill_count_per_class_override(void **state)
{
    (void)state;
    hak_config.class_refill[37] = 5; /* what POOL_REFILL_COUNT_24576=5 sets */
    run_in_thread(refill_override_thread, NULL);
    hak_config.class_refill[37] = 0;
}

/* ---- caps and spills -------------------------------------------------------------------- */

static void *spill_thread(void *arg)
{
    unsigned c = 36; /* 20480 B */
    enum { N = 200 };
    void *blocks[N];
    for (int i = 0; i < N; i++) {
        blocks[i] = malloc(hak_class_size(c));
        TL_CHECK(blocks[i], "malloc failed");
    }
    uint32_t cap = hak_list(c)->cap;
    TL_CHECK(cap >= hak_fixed_refill_count(c), "cap below the refill count");
    uint32_t max_seen = 0;
    for (int i = 0; i < N; i++) {
        free(blocks[i]);
        uint32_t n = hak_list_count(c);
        if (n > max_seen)
            max_seen = n;
        TL_CHECK(n <= cap, "the thread list grew past its cap");
    }
    TL_CHECK(max_seen == cap, "the list never reached its cap");
    TL_CHECK(hak_list_count(c) >= cap / 2, "a spill kept less than half the cap");
    return arg;
}

static void test_list_never_exceeds_cap(void **state)
{
    (void)state;
    int64_t grow = hak_config.tcache_grow_kib;
    hak_config.tcache_grow_kib = 0; /* the base cap alone: refills do not raise it */
    run_in_thread(spill_thread, NULL);
    hak_config.tcache_grow_kib = grow;
    for (unsigned a = 0; a < hak_arenas; a++) { /* spilled blocks are bits of their spans */
        hak_lock(&hak_central[a][36].lock);
        hak_central_check(a, 36);
        hak_unlock(&hak_central[a][36].lock);
    }
}

/* Over every arena: the ACTIVE spans of class c, and a spare of it (or NULL). */
static uint32_t class_spans(unsigned c)
{
    uint32_t n = 0;
    for (unsigned a = 0; a < hak_arenas; a++) {
        hak_lock(&hak_central[a][c].lock);
        n += hak_central[a][c].spans;
        hak_unlock(&hak_central[a][c].lock);
    }
    return n;
}

static hak_span_t *class_spare(unsigned c)
{
    hak_span_t *spare = NULL;
    for (unsigned a = 0; a < hak_arenas && !spare; a++) {
        hak_lock(&hak_central[a][c].lock);
        spare = hak_central[a][c].spare;
        hak_unlock(&hak_central[a][c].lock);
    }
    return spare;
}

/* ---- arenas (central.h) --------------------------------------------------------------- */

enum { XA_N = 200 };
static void *xa_blocks[XA_N];
static unsigned xa_arena;

static void *free_elsewhere_thread(void *arg)
{
    (void)arg;
    free(malloc(1280)); /* attach the thread (its first slow path), on another class */
    xa_arena = hak_thread_self()->arena;
    for (int i = 0; i < XA_N; i++)
        free(xa_blocks[i]); /* onto this thread's list; its exit gives them back */
    return NULL;
}

/* Whether p is in a depot chain or a mailbox chain of arena a, class c (its lock held, no
 * other thread running). */
static int in_depot(unsigned a, unsigned c, const void *p)
{
    const hak_central_t *cc = &hak_central[a][c];
    for (uint32_t i = 0; i < cc->depot_batches; i++) {
        const void *b = cc->depot[i].head;
        for (uint32_t k = 0; k < cc->depot[i].count; k++, b = hak_block_next(b))
            if (b == p)
                return 1;
    }
    for (unsigned i = 0; i < HAK_MAIL_SLOTS; i++) {
        const void *b = cc->mail[i].head;
        for (uint32_t k = 0; b && k < cc->mail[i].count; k++, b = hak_block_next(b))
            if (b == p)
                return 1;
    }
    return 0;
}

/* Threads spread over the arenas, and a block freed by a thread of another arena goes back
 * to its own arena (a spill to its mailbox or depot, an exit's give to its mailbox or its
 * spans), never to the freeing thread's. */
static void test_block_freed_in_another_arena_returns_to_its_arena(void **state)
{
    (void)state;
    assert_true(hak_arenas >= 2); /* two per CPU, at least one CPU */
    unsigned mine = hak_thread_self()->arena, c = hak_size_to_class(3000);
    for (int i = 0; i < XA_N; i++) {
        xa_blocks[i] = malloc(3000);
        assert_non_null(xa_blocks[i]);
        hak_span_t *s = hak_pm_owner(hak_pagemap_get((uintptr_t)xa_blocks[i]));
        assert_int_equal(s->arena, mine);
    }
    run_in_thread(free_elsewhere_thread, NULL);
    assert_int_not_equal(xa_arena, mine); /* the least used arena: not the main thread's */
    hak_lock(&hak_central[mine][c].lock);
    int bits = 0;
    for (int i = 0; i < XA_N; i++) { /* each one a free bit, or in mine's depot or mailbox */
        hak_span_t *s = hak_pm_owner(hak_pagemap_get((uintptr_t)xa_blocks[i]));
        if (in_depot(mine, c, xa_blocks[i]))
            continue;
        bits++;
        if (!s || s->state != HAK_SPAN_ACTIVE)
            continue; /* its span emptied and went to the pool: all its blocks came back */
        uint32_t idx = (uint32_t)(((uintptr_t)xa_blocks[i] - hak_span_base(s)) /
                                  hak_class_size(c));
        assert_int_equal(s->arena, mine);
        assert_true(s->freemap[idx / 64] >> (idx % 64) & 1);
    }
    hak_central_check(mine, c);
    hak_unlock(&hak_central[mine][c].lock);
    hak_lock(&hak_central[xa_arena][c].lock);
    assert_int_equal(hak_central[xa_arena][c].depot_count, 0); /* nothing parked there */
    assert_int_equal(hak_central[xa_arena][c].spans, 0);
    hak_unlock(&hak_central[xa_arena][c].lock);
}

/* Idle bytes: the depot and the mailbox of each arena hold at most HAK_IDLE_BYTES (64 KiB) of a
 * class, or one refill's worth if that is more, and never more than four refills' worth or
 * eight chains (the fixed counts of these classes are 64 blocks). A big class's second post
 * says no, so its spill goes to the bitmaps. */
static void test_idle_bytes_bound_depot_and_mailbox(void **state)
{
    (void)state;
    static const struct { size_t size; uint32_t depot_max, mail_slots; } want[] = {
        {16, 256, 8},   /* four refills (1 KiB) */
        {256, 256, 4},  /* four refills: 64 KiB; chains of 16 KiB */
        {512, 128, 2},  /* 64 KiB of 512 B */
        {1024, 64, 1},  /* 64 KiB, one refill */
        {3072, 64, 1},  /* one refill, 192 KiB */
    };
    for (unsigned a = 0; a < hak_arenas; a++)
        for (unsigned i = 0; i < sizeof want / sizeof want[0]; i++) {
            unsigned c = hak_size_to_class(want[i].size);
            assert_int_equal(hak_fixed_refill_count(c), 64);
            assert_int_equal(hak_idle_bounds[c].depot_max, want[i].depot_max);
            assert_int_equal(hak_idle_bounds[c].mail_slots, want[i].mail_slots);
        }
    unsigned a = hak_arenas - 1, c = hak_size_to_class(3000);
    void *blocks[2][3];
    hak_chain_t chains[2];
    for (unsigned i = 0; i < 2; i++) {
        hak_lock(&hak_central[a][c].lock);
        assert_int_equal(hak_central_take(a, c, 3, blocks[i], NULL), 3);
        hak_unlock(&hak_central[a][c].lock);
        chains[i] = (hak_chain_t){NULL, NULL, 0};
        for (int k = 0; k < 3; k++)
            ((uint64_t *)blocks[i][k])[1] = hak_free_key;
        hak_chain_append_array(&chains[i], blocks[i], 3);
    }
    assert_true(hak_central_post(a, c, chains[0]));
    assert_false(hak_central_post(a, c, chains[1])); /* its one slot is taken */
    assert_int_equal(hak_central_mail_count(a, c), 3);
    hak_central_give(c, chains[1], hak_now_ms(), HAK_ARENA_ALL);
    malloc_trim(0);
    assert_int_equal(hak_central_mail_count(a, c), 0);
    hak_lock(&hak_central[a][c].lock);
    hak_central_check(a, c);
    hak_unlock(&hak_central[a][c].lock);
}

/* The mailbox: chains posted without a lock come out whole, the last one cut to what a
 * refill wants (its rest stays posted); with every slot taken a post says no, so the give
 * takes the lock instead; malloc_trim empties it into the spans. */
static void test_mailbox_posts_collects_and_fills(void **state)
{
    (void)state;
    unsigned a = hak_arenas - 1, c = hak_size_to_class(100);
    enum { PER = 5 };
    assert_int_equal(hak_idle_bounds[c].mail_slots, HAK_MAIL_SLOTS); /* 64 x 112 B < 8 KiB */
    void *blocks[HAK_MAIL_SLOTS + 1][PER];
    hak_chain_t chains[HAK_MAIL_SLOTS + 1];
    for (unsigned i = 0; i <= HAK_MAIL_SLOTS; i++) {
        hak_lock(&hak_central[a][c].lock);
        assert_int_equal(hak_central_take(a, c, PER, blocks[i], NULL), PER);
        hak_unlock(&hak_central[a][c].lock);
        chains[i] = (hak_chain_t){NULL, NULL, 0};
        for (int k = 0; k < PER; k++)
            ((uint64_t *)blocks[i][k])[1] = hak_free_key; /* as every cached block */
        hak_chain_append_array(&chains[i], blocks[i], PER);
    }
    for (unsigned i = 0; i < HAK_MAIL_SLOTS; i++)
        assert_true(hak_central_post(a, c, chains[i]));
    assert_false(hak_central_post(a, c, chains[HAK_MAIL_SLOTS])); /* every slot taken */
    assert_int_equal(hak_central_mail_count(a, c), HAK_MAIL_SLOTS * PER);
    hak_chain_t got = {NULL, NULL, 0};
    assert_int_equal(hak_central_collect(a, c, PER + 2, &got), PER + 2);
    assert_int_equal(got.count, PER + 2);
    const void *b = got.head;
    for (int k = 0; k < PER; k++, b = hak_block_next(b)) /* the first slot's chain, in order */
        assert_ptr_equal(b, blocks[0][k]);
    assert_ptr_equal(b, blocks[1][0]);
    assert_int_equal(hak_central_mail_count(a, c), HAK_MAIL_SLOTS * PER - PER - 2);
    assert_true(hak_central_post(a, c, chains[HAK_MAIL_SLOTS])); /* a slot is free again */
    hak_central_give(c, got, hak_now_ms(), HAK_ARENA_ALL);
    malloc_trim(0); /* the rest: mailbox -> spans */
    assert_int_equal(hak_central_mail_count(a, c), 0);
    hak_lock(&hak_central[a][c].lock);
    hak_central_check(a, c);
    hak_unlock(&hak_central[a][c].lock);
}

/* ---- the refill share (share.h) ---------------------------------------------------------
 * With many more live threads than CPUs, one refill's bytes are cut to a share of 1 MiB per
 * CPU divided among them (at least 32 KiB or 8 blocks); classes up to 512 B keep 64; with few
 * threads nothing is cut. A list whose last refill was cut keeps one refill's worth, not two.
 * Checked with 8 threads per CPU alive and attached, then after they have exited. */
static pthread_barrier_t share_alive;

static void *share_thread(void *arg)
{
    free(malloc(100)); /* attach */
    pthread_barrier_wait(&share_alive); /* all attached */
    pthread_barrier_wait(&share_alive); /* main has looked */
    return arg;
}

static void test_refill_share_when_threads_outnumber_cpus(void **state)
{
    (void)state;
    free(malloc(100)); /* main attached */
    unsigned c4k = hak_size_to_class(4096), c512 = hak_size_to_class(512);
    uint64_t cpus = hak_config.cpus < 1 ? 1 : (uint64_t)hak_config.cpus;
    uint32_t before = hak_thread_live_count();
    assert_int_equal(hak_share_count(c4k, 64), 64); /* few threads: no cut */
    enum { MAX_THREADS = 256 };
    unsigned n = (unsigned)(8 * cpus < MAX_THREADS ? 8 * cpus : MAX_THREADS);
    pthread_t t[MAX_THREADS];
    assert_int_equal(pthread_barrier_init(&share_alive, NULL, n + 1), 0);
    for (unsigned i = 0; i < n; i++)
        assert_int_equal(pthread_create(&t[i], NULL, share_thread, NULL), 0);
    pthread_barrier_wait(&share_alive);
    uint32_t live = hak_thread_live_count();
    uint64_t bytes = cpus * HAK_SHARE_BYTES_PER_CPU / live;
    if (bytes < HAK_SHARE_MIN_BYTES)
        bytes = HAK_SHARE_MIN_BYTES;
    uint64_t want = bytes / 4096 < HAK_SHARE_MIN_BLOCKS ? HAK_SHARE_MIN_BLOCKS : bytes / 4096;
    uint32_t got4k = hak_share_count(c4k, 64), got512 = hak_share_count(c512, 64);
    uint32_t small = hak_share_count(c4k, 4); /* a count below the share stays */
    /* This thread's refills of 4 KiB ramp up to the share and are cut: its list then keeps
     * one refill's worth, not two (list_rule.h). */
    enum { HELD = 64 };
    void *held[HELD];
    for (int i = 0; i < HELD; i++)
        held[i] = malloc(4096);
    uint32_t base_cap = hak_list(c4k)->cap - hak_tcache_cold.extra[c4k];
    hak_refill_t r;
    hak_refill(c4k, hak_list_count(c4k), 1, &r); /* Box 2's own answer, beside the list's */
    hak_give(c4k, r.chain, hak_list_count(c4k) + r.chain.count, HAK_GIVE_DRAIN);
    pthread_barrier_wait(&share_alive);
    for (unsigned i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&share_alive);
    assert_true(live >= before + n);
    assert_int_equal(got4k, want < 64 ? want : 64);
    assert_true(got4k < 64); /* 8 threads per CPU: 4 KiB refills are cut */
    assert_int_equal(got512, 64); /* 512 B x 64 = 32 KiB: never cut */
    assert_int_equal(small, 4);
    assert_int_equal(base_cap, got4k); /* one cut refill's worth */
    assert_int_equal(r.cap_refills, 1);
    assert_int_equal(hak_thread_live_count(), before); /* the exits were counted */
    assert_int_equal(hak_share_count(c4k, 64), 64);
    hak_refill(c4k, hak_list_count(c4k), 1, &r); /* few threads again: the rule's two */
    assert_int_equal(r.cap_refills, HAK_LIST_CAP_REFILLS);
    hak_give(c4k, r.chain, hak_list_count(c4k) + r.chain.count, HAK_GIVE_DRAIN);
    for (int i = 0; i < HELD; i++)
        free(held[i]);
}

/* ---- cap growth (list_rule.h) -----------------------------------------------------------
 * A thread whose bursts are deeper than two refills' worth gets a cap that holds them: its
 * first such burst spills and marks the class; at its second, the first overflow after its
 * refills grows the cap by what they brought in, so its frees do not spill, and later bursts
 * make no refill and no spill. A thread that bursts once, or only takes, keeps its
 * base cap. The growth stops at the thread's HAKMEM_TCACHE_GROW_KIB, and all threads' at
 * hak_list_grow_budgets_all() of those. */

enum { BURST = 300 }; /* blocks of 20 KiB: deeper than two refills of 16 */

static void burst(unsigned c, void **blocks, int n)
{
    for (int i = 0; i < n; i++)
        blocks[i] = malloc(hak_class_size(c));
    for (int i = 0; i < n; i++)
        free(blocks[i]);
}

static void *deep_burst_thread(void *arg)
{
    unsigned c = 36;
    static void *blocks[BURST];
    free(malloc(1280)); /* attach the thread */
    hak_thread_t *t = hak_thread_self();
    uint32_t base = hak_list_cap(c, hak_fixed_refill_count(c));
    for (int i = 0; i < BURST; i++)
        blocks[i] = malloc(hak_class_size(c));
    TL_CHECK(t->stat[HAK_TSTAT_refills][c] >= BURST / hak_fixed_refill_count(c),
             "the first burst did not refill");
    TL_CHECK(hak_list(c)->cap == base, "a thread that only took grew its cap");
    for (int i = 0; i < BURST; i++)
        free(blocks[i]);
    /* A thread that bursts once keeps no extra: the first burst only marks the class. */
    TL_CHECK(t->stat[HAK_TSTAT_spills][c] > 0, "the first burst's frees did not spill");
    TL_CHECK(hak_list(c)->cap == base && hak_tcache_cold.extra[c] == 0,
             "the first burst grew the cap");
    uint64_t spills1 = t->stat[HAK_TSTAT_spills][c];
    for (int i = 0; i < BURST; i++)
        blocks[i] = malloc(hak_class_size(c));
    for (int i = 0; i < BURST; i++)
        free(blocks[i]);
    TL_CHECK(t->stat[HAK_TSTAT_spills][c] == spills1, "the second burst's frees spilled");
    TL_CHECK(hak_list(c)->cap >= BURST, "the second burst did not grow the cap to its depth");
    TL_CHECK(hak_tcache_cold.extra[c] == hak_list(c)->cap - hak_list_cap(c, hak_fixed_refill_count(c)),
             "cap != base cap + extra");
    uint64_t refills = t->stat[HAK_TSTAT_refills][c], spills = t->stat[HAK_TSTAT_spills][c];
    uint32_t len = hak_list_count(c);
    TL_CHECK(len >= BURST, "the list does not hold the burst's blocks");
    for (int r = 0; r < 20; r++)
        burst(c, blocks, BURST);
    TL_CHECK(t->stat[HAK_TSTAT_refills][c] == refills, "a later burst refilled");
    TL_CHECK(t->stat[HAK_TSTAT_spills][c] == spills, "a later burst spilled");
    TL_CHECK(hak_list_count(c) == len, "blocks left the thread");
    return arg;
}

static void test_deep_bursts_stay_in_the_thread(void **state)
{
    (void)state;
    run_in_thread(deep_burst_thread, NULL);
}

/* A burst of n blocks of class c freed in a scrambled order (7919 is prime: a permutation of
 * the n blocks, n not a multiple of it, with no two neighbours in a row). */
static void scrambled_burst(unsigned c, void **blocks, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        blocks[i] = malloc(hak_class_size(c));
    for (uint32_t i = 0; i < n; i++)
        free(blocks[i * 7919u % n]);
}

/* A grown list that outgrows its cap and spills scrambled blocks goes back to its base cap and
 * loses its mark (hak_tcache_overflow). A grown list that spills dense blocks keeps its
 * growth. */
static void *scrambled_spill_thread(void *arg)
{
    unsigned c = 5; /* 96 B */
    enum { D = 512, DEEPER = D + D / 4, SCRAMBLED = 8 * D };
    static void *blocks[SCRAMBLED];
    free(malloc(1280));
    hak_thread_t *t = hak_thread_self();
    uint32_t base = hak_list_cap(c, hak_fixed_refill_count(c));
    uint64_t bit = 1ull << c;
    for (int r = 0; r < 3; r++)
        burst(c, blocks, D); /* freed in allocation order: dense */
    TL_CHECK(hak_tcache_cold.extra[c] > 0, "dense bursts did not grow the list");
    uint64_t spills = t->stat[HAK_TSTAT_spills][c];
    /* A little deeper, still dense: too little to grow the list again (list_rule.h), so it
     * spills dense blocks. */
    burst(c, blocks, DEEPER);
    TL_CHECK(t->stat[HAK_TSTAT_spills][c] > spills, "the deeper burst did not spill");
    TL_CHECK(hak_tcache_cold.extra[c] > 0, "a dense spill dropped the list's growth");
    TL_CHECK(hak_list(c)->cap < SCRAMBLED, "the list holds the whole scrambled burst");
    scrambled_burst(c, blocks, SCRAMBLED);
    TL_CHECK(hak_tcache_cold.extra[c] == 0 && hak_list(c)->cap == base,
             "a scrambled spill left the list grown");
    TL_CHECK(!(hak_tcache_cold.burst_seen & bit), "a scrambled spill left the class marked");
    TL_CHECK(hak_list_count(c) <= base, "the list holds more than its base cap");
    return arg;
}

static void test_scrambled_spill_drops_growth(void **state)
{
    (void)state;
    run_in_thread(scrambled_spill_thread, NULL);
}

static void *grow_budget_thread(void *arg)
{
    unsigned c = 36;
    static void *blocks[BURST];
    free(malloc(1280));
    hak_thread_t *t = hak_thread_self();
    uint32_t count = hak_fixed_refill_count(c);
    uint32_t base = hak_list_cap(c, count);
    for (int r = 0; r < 3; r++)
        burst(c, blocks, BURST);
    uint64_t budget = (uint64_t)hak_config.tcache_grow_kib * 1024u;
    TL_CHECK(hak_tcache_cold.extra_bytes <= budget, "the extras passed the thread's budget");
    TL_CHECK(budget - hak_tcache_cold.extra_bytes < (uint64_t)count * hak_class_size(c),
             "the cap did not grow as far as the budget lets it");
    TL_CHECK(hak_list(c)->cap == base + hak_tcache_cold.extra[c], "cap != base cap + extra");
    uint64_t spills = t->stat[HAK_TSTAT_spills][c];
    burst(c, blocks, BURST);
    TL_CHECK(t->stat[HAK_TSTAT_spills][c] > spills, "a burst past the grown cap did not spill");
    TL_CHECK(hak_list_count(c) <= hak_list(c)->cap, "the list is past its cap");
    return arg;
}

/* All threads' extras: growers threads grow one after another and stay alive until every one
 * has; together they want more than hak_list_grow_budgets_all() budgets (one per CPU, at most
 * 4), so the last ones get less. Their exits give it all back. */
enum { GROWERS_MAX = HAK_GROW_BUDGETS_MAX + 3 };
static int growers;
static pthread_mutex_t grow_turn = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t grown_all;
static uint64_t grower_extra[GROWERS_MAX];

static void *grower_thread(void *arg)
{
    uintptr_t i = (uintptr_t)arg;
    static void *blocks[GROWERS_MAX][BURST];
    pthread_mutex_lock(&grow_turn);
    for (int r = 0; r < 3; r++)
        burst(36, blocks[i], BURST);
    grower_extra[i] = hak_tcache_cold.extra_bytes;
    pthread_mutex_unlock(&grow_turn);
    pthread_barrier_wait(&grown_all); /* all grown, all alive */
    pthread_barrier_wait(&grown_all); /* main has looked */
    return NULL;
}

static void test_cap_growth_stops_at_the_process_budget(void **state)
{
    (void)state;
    int64_t grow = hak_config.tcache_grow_kib;
    hak_config.tcache_grow_kib = 20 * 100; /* 100 blocks of 20 KiB a thread */
    uint64_t budget = (uint64_t)hak_config.tcache_grow_kib * 1024u, before = hak_tcache_extra_bytes_all();
    growers = (int)hak_list_grow_budgets_all() + 3;
    pthread_t t[GROWERS_MAX];
    assert_int_equal(pthread_barrier_init(&grown_all, NULL, (unsigned)growers + 1), 0);
    for (uintptr_t i = 0; i < (uintptr_t)growers; i++)
        assert_int_equal(pthread_create(&t[i], NULL, grower_thread, (void *)i), 0);
    pthread_barrier_wait(&grown_all);
    uint64_t sum = 0, least = UINT64_MAX, most = 0;
    for (int i = 0; i < growers; i++) {
        sum += grower_extra[i];
        least = grower_extra[i] < least ? grower_extra[i] : least;
        most = grower_extra[i] > most ? grower_extra[i] : most;
    }
    uint64_t all = hak_tcache_extra_bytes_all();
    pthread_barrier_wait(&grown_all);
    for (int i = 0; i < growers; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&grown_all);
    hak_config.tcache_grow_kib = grow;
    assert_true(most > budget / 2);                           /* the first ones grew */
    assert_true(all - before <= hak_list_grow_budgets_all() * budget); /* all within the limit */
    assert_true(sum == all - before);
    assert_true(least < most);                                /* the last ones got less */
    assert_int_equal(hak_tcache_extra_bytes_all(), before);   /* the exits gave it back */
}

/* A grown list's long cuts reach Box 2 as chains of at most HAK_GIVE_MAX blocks: a thread
 * whose cap grew past 2 * HAK_GIVE_MAX frees blocks another thread allocated, so its spills
 * (half its cap) are longer than one chain may be. */
enum { DEEP = 3000, FOREIGN = 6000 };
static void *foreign[FOREIGN];
static uint32_t give_max, give_calls;
static void give_hook(unsigned class_idx, uint32_t count, enum hak_give why)
{
    if (class_idx == 0 && why == HAK_GIVE_SPILL) {
        give_calls++;
        if (count > give_max)
            give_max = count;
    }
}

static void *long_spill_thread(void *arg)
{
    static void *blocks[DEEP];
    free(malloc(1280));
    for (int r = 0; r < 3; r++)
        burst(0, blocks, DEEP);
    TL_CHECK(hak_list(0)->cap > 2 * HAK_GIVE_MAX, "the cap did not grow past two chains");
    hak_thread_t *t = hak_thread_self();
    uint64_t blocks0 = t->stat[HAK_TSTAT_spill_blocks][0];
    uint32_t cap = hak_list(0)->cap;
    give_max = give_calls = 0;
    hak_give_hook = give_hook;
    __asm__ volatile("" ::: "memory"); /* gcc knows free reads no globals: keep the store */
    for (int i = 0; i < FOREIGN; i++)
        free(foreign[i]);
    __asm__ volatile("" ::: "memory");
    hak_give_hook = NULL;
    uint64_t spilled = t->stat[HAK_TSTAT_spill_blocks][0] - blocks0;
    TL_CHECK(spilled > HAK_GIVE_MAX, "no spill longer than one chain");
    TL_CHECK(hak_list(0)->cap == cap, "frees with no refill since (a consumer's) grew the cap");
    TL_CHECK(give_max == HAK_GIVE_MAX, "a long spill was not cut at HAK_GIVE_MAX");
    TL_CHECK(give_calls >= (spilled + HAK_GIVE_MAX - 1) / HAK_GIVE_MAX, "too few chains");
    return arg;
}

static void test_long_give_backs_come_in_bounded_chains(void **state)
{
    (void)state;
    for (int i = 0; i < FOREIGN; i++)
        assert_non_null(foreign[i] = malloc(hak_class_size(0)));
    run_in_thread(long_spill_thread, NULL);
}

/* Address order: blocks given back to their spans in any order come out of the next take
 * lowest address first, dense (each the next block of the span), and the span's equations
 * hold on the way. */
static void test_take_gives_lowest_blocks_in_address_order(void **state)
{
    (void)state;
    unsigned c = 39;
    enum { N = 8 };
    uint32_t size = hak_class_size(c);
    malloc_trim(0);
    hak_lock(&hak_central[0][c].lock);
    void *kept[1], *first[N], *again[N], *back[N];
    assert_int_equal(hak_central_take(0, c, 1, kept, NULL), 1); /* keeps the span from emptying */
    assert_int_equal(hak_central_take(0, c, N, first, NULL), N);
    hak_span_t *s = hak_pm_owner(hak_pagemap_get((uintptr_t)first[0]));
    uint32_t in_use = s->in_use;
    for (int i = 0; i < N; i++) /* back in a scrambled order: 3 0 5 2 7 4 1 6 */
        back[i] = first[(3 + 5 * i) % N];
    hak_central_put(0, c, back, N, hak_now_ms());
    assert_int_equal(s->in_use, in_use - N);
    hak_central_check(0, c);
    assert_int_equal(hak_central_take(0, c, N, again, NULL), N);
    hak_central_check(0, c);
    uintptr_t lowest = (uintptr_t)first[0];
    for (int i = 1; i < N; i++)
        if ((uintptr_t)first[i] < lowest)
            lowest = (uintptr_t)first[i];
    for (int i = 0; i < N; i++) /* the lowest free blocks, ascending, one block apart */
        assert_ptr_equal(again[i], (void *)(lowest + (uintptr_t)i * size));
    assert_int_equal(s->in_use, in_use);
    hak_central_put(0, c, again, N, hak_now_ms());
    hak_central_put(0, c, kept, 1, hak_now_ms());
    hak_unlock(&hak_central[0][c].lock);
}

/* The free key (central.h, "Free blocks and the free key"): a take marks as fresh exactly the
 * blocks carved for the first time, at or above the span's carve mark, and blocks that come
 * back to their span keep the key, so a second take of them marks none and the refill need
 * not write them. */
static void test_take_marks_only_fresh_blocks(void **state)
{
    (void)state;
    unsigned c = 2;
    enum { N = 64 };
    malloc_trim(0);
    hak_lock(&hak_central[0][c].lock);
    void *kept[1], *first[N], *again[N], *back[N];
    uint64_t fresh[HAK_CENTRAL_BATCH / 64] = {0};
    assert_int_equal(hak_central_take(0, c, 1, kept, NULL), 1); /* keeps the span from emptying */
    hak_span_t *s = hak_pm_owner(hak_pagemap_get((uintptr_t)kept[0]));
    assert_true(s->capacity >= 2 * N + 1);
    uint32_t carved = s->carved, size = hak_class_size(c);
    assert_int_equal(hak_central_take(0, c, N, first, fresh), N);
    for (int i = 0; i < N; i++) { /* fresh <=> at or above the carve mark before the take */
        uint32_t idx = (uint32_t)(((uintptr_t)first[i] - hak_span_base(s)) / size);
        assert_ptr_equal(hak_pm_owner(hak_pagemap_get((uintptr_t)first[i])), s);
        assert_int_equal((int)((fresh[i >> 6] >> (i & 63)) & 1), idx >= carved);
        ((uint64_t *)first[i])[1] = hak_free_key; /* what a refill writes into fresh blocks */
    }
    for (int i = 0; i < N; i++) /* back in a scrambled order */
        back[i] = first[(7 + 5 * i) % N];
    hak_central_put(0, c, back, N, hak_now_ms());
    uint64_t fresh2[HAK_CENTRAL_BATCH / 64] = {0};
    assert_int_equal(hak_central_take(0, c, N, again, fresh2), N);
    for (int i = 0; i < N; i++) {
        assert_int_equal((int)((fresh2[i >> 6] >> (i & 63)) & 1), 0); /* none written again */
        assert_true(((uint64_t *)again[i])[1] == hak_free_key);     /* and each keeps its key */
    }
    hak_central_put(0, c, again, N, hak_now_ms());
    hak_central_put(0, c, kept, 1, hak_now_ms());
    hak_unlock(&hak_central[0][c].lock);
}

/* The fork child has the forking thread alone: the other threads' extras are forgotten
 * (hak_tcache_fork_child, an atfork child handler), so the child's threads can grow again. */
static pthread_barrier_t holder_grown;
static void *holder_thread(void *arg)
{
    static void *blocks[BURST];
    burst(36, blocks, BURST); /* marks the class */
    burst(36, blocks, BURST); /* grows its list */
    pthread_barrier_wait(&holder_grown); /* grown */
    pthread_barrier_wait(&holder_grown); /* the parent has forked */
    return arg;
}

static void test_fork_child_forgets_other_threads_extras(void **state)
{
    (void)state;
    pthread_t t;
    assert_int_equal(pthread_barrier_init(&holder_grown, NULL, 2), 0);
    assert_int_equal(pthread_create(&t, NULL, holder_thread, NULL), 0);
    pthread_barrier_wait(&holder_grown);
    assert_true(hak_tcache_extra_bytes_all() > hak_tcache_cold.extra_bytes);
    pid_t pid = fork();
    if (pid == 0)
        _exit(hak_tcache_extra_bytes_all() == hak_tcache_cold.extra_bytes ? 0 : 1);
    assert_true(pid > 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    pthread_barrier_wait(&holder_grown);
    pthread_join(t, NULL);
    pthread_barrier_destroy(&holder_grown);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_cap_growth_stops_at_the_thread_budget(void **state)
{
    (void)state;
    int64_t grow = hak_config.tcache_grow_kib;
    hak_config.tcache_grow_kib = 20 * 100; /* 100 blocks of 20 KiB: 6 refills' growth */
    run_in_thread(grow_budget_thread, NULL);
    hak_config.tcache_grow_kib = grow;
}

/* A program's phases: class 36 bursts and grows its list to the thread's whole growth budget,
 * then its phase ends and class 35 bursts. Before a trim pass would find class 36 idle, 35's
 * first overflow finds the budget spent and takes back the extras of the lists that had no
 * slow path since the last pass (class 36's), blocks and all: its second burst grows. */
static void *phase_shift_thread(void *arg)
{
    unsigned a = 36, b = 35;
    static void *blocks[BURST];
    free(malloc(1280));
    for (int r = 0; r < 3; r++)
        burst(a, blocks, BURST);
    uint64_t budget = (uint64_t)hak_config.tcache_grow_kib * 1024u;
    TL_CHECK(hak_tcache_cold.extra[a] > 0 &&
                 budget - hak_tcache_cold.extra_bytes < (uint64_t)hak_class_size(b) * 64,
             "class 36 did not take the thread's growth budget");
    /* A pass now: class 36 was busy in the period, so it keeps its extra; the pass starts a
     * new period (and, at this time, no other pass comes during the test). */
    hak_tcache_trim(UINT64_MAX / 4);
    TL_CHECK(hak_tcache_cold.extra[a] > 0, "the pass trimmed a busy list");
    burst(b, blocks, BURST);
    burst(b, blocks, BURST);
    TL_CHECK(hak_tcache_cold.extra[a] == 0, "the idle class kept its extra");
    TL_CHECK(hak_list_count(a) <= hak_list(a)->cap, "the idle class kept blocks above its cap");
    TL_CHECK(hak_tcache_cold.extra[b] > 0, "the bursting class did not grow");
    TL_CHECK(hak_tcache_cold.extra_bytes <= budget, "the extras passed the thread's budget");
    return arg;
}

static void test_a_new_phase_takes_the_idle_lists_budget(void **state)
{
    (void)state;
    int64_t grow = hak_config.tcache_grow_kib;
    hak_config.tcache_grow_kib = 20 * 200; /* 200 blocks of 20 KiB a thread */
    run_in_thread(phase_shift_thread, NULL);
    hak_config.tcache_grow_kib = grow;
}

/* ---- idle-list trim ----------------------------------------------------------------------
 * A pass gives back three quarters of each list that neither refilled nor spilled since the
 * previous pass, and leaves alone a list that did either. The passes are called directly,
 * with explicit times. */

static void *list_trim_thread(void *arg)
{
    unsigned idle = 36, spiller = 38, fresh = 35;
    enum { N = 32 };
    void *b[N + 40];
    for (int i = 0; i < N; i++)
        TL_CHECK((b[i] = malloc(hak_class_size(idle))) != NULL, "malloc failed");
    for (int i = 0; i < N; i++)
        free(b[i]);
    uint32_t len = hak_list_count(idle);
    TL_CHECK(len >= 16 && len <= hak_list(idle)->cap, "list not filled by the frees");
    for (int i = 0; i < N + 40; i++) /* the spiller refills now, before the next pass */
        TL_CHECK((b[i] = malloc(hak_class_size(spiller))) != NULL, "malloc failed");
    uint64_t now = hak_now_ms();
    hak_tcache_trim(now); /* the first pass of the test clears the marks */
    len = hak_list_count(idle);
    TL_CHECK(len > 0, "nothing left to trim");
    /* between passes: the idle list's blocks cycle (no refill, no spill); the spiller class
     * spills (its frees go past the cap) */
    for (int i = 0; i < 1000; i++) {
        void *volatile p = malloc(hak_class_size(idle)); /* volatile: no malloc/free elision */
        free(p);
    }
    for (int i = 0; i < N + 40; i++)
        free(b[i]);
    TL_CHECK(hak_tcache_cold.spilled >> spiller & 1, "the spiller did not spill");
    uint32_t spill_len = hak_list_count(spiller);
    hak_tcache_trim(now + 1000);
    TL_CHECK(hak_list_count(idle) == len / 4, "trim did not give back 3/4 of an idle list");
    TL_CHECK(hak_list_count(spiller) == spill_len, "trim touched a list that spilled");
    TL_CHECK(hak_tcache_cold.trim_due_ms > now + 1000, "no next pass scheduled");
    /* a list that refills between passes is left alone */
    void *f = malloc(hak_class_size(fresh));
    TL_CHECK(f, "malloc failed");
    free(f);
    uint32_t fresh_len = hak_list_count(fresh);
    TL_CHECK(fresh_len > 0, "nothing cached in the fresh class");
    hak_tcache_trim(now + 2000);
    TL_CHECK(hak_list_count(fresh) == fresh_len, "trim touched a list that was refilled");
    /* a list nobody touches drains to nothing in a few passes */
    for (int pass = 3; pass < 12; pass++)
        hak_tcache_trim(now + 1000u * (unsigned)pass);
    TL_CHECK(hak_list_count(idle) == 0, "an idle list kept blocks after 10 passes");
    TL_CHECK(hak_list_count(fresh) == 0, "an idle list kept blocks after 10 passes");
    return arg;
}

static void test_idle_lists_are_trimmed(void **state)
{
    (void)state;
    int64_t grow = hak_config.tcache_grow_kib;
    hak_config.tcache_grow_kib = 0; /* the spiller's frees must pass its (base) cap */
    run_in_thread(list_trim_thread, NULL);
    hak_config.tcache_grow_kib = grow;
}

/* A grown list keeps its blocks and extra while it refills between passes; after a pass with
 * no refill and no spill of its class, it has given back three quarters and is back at its
 * base cap. */
static void *grown_trim_thread(void *arg)
{
    unsigned c = 36;
    static void *blocks[BURST + 64];
    free(malloc(1280));
    burst(c, blocks, BURST);
    burst(c, blocks, BURST);
    uint32_t base = hak_list_cap(c, hak_fixed_refill_count(c));
    TL_CHECK(hak_list(c)->cap > base, "the cap did not grow");
    uint64_t now = hak_now_ms();
    hak_tcache_trim(now); /* clears the marks */
    uint32_t len = hak_list_count(c);
    TL_CHECK(len < BURST + 64, "the list holds more than the test can take");
    burst(c, blocks, (int)len + 1); /* one block more than the list holds: one refill */
    uint32_t cap = hak_list(c)->cap;
    len = hak_list_count(c);
    hak_tcache_trim(now + 1000);
    TL_CHECK(hak_list(c)->cap == cap, "a list that refilled lost its extra");
    TL_CHECK(hak_list_count(c) == len, "a list that refilled was trimmed");
    hak_tcache_trim(now + 2000); /* no slow path of the class since the last pass: idle */
    TL_CHECK(hak_list(c)->cap == base, "an idle list kept its extra");
    TL_CHECK(hak_tcache_cold.extra[c] == 0, "the extra was not dropped");
    TL_CHECK(hak_list_count(c) == len / 4, "an idle list did not give back 3/4");
    return arg;
}

static void test_grown_lists_shrink_when_idle(void **state)
{
    (void)state;
    run_in_thread(grown_trim_thread, NULL);
}

/* ---- thread exit, trim, decay ----------------------------------------------------------- */

static int purge_calls;
static void (*real_purge)(void *, size_t);
static void counting_purge(void *addr, size_t len)
{
    purge_calls++;
    real_purge(addr, len);
}

static void *cache_and_exit_thread(void *arg)
{
    unsigned c = 39; /* 32 KiB */
    enum { N = 100 };
    void *blocks[N];
    for (int i = 0; i < N; i++) {
        blocks[i] = malloc(hak_class_size(c));
        TL_CHECK(blocks[i], "malloc failed");
        memset(blocks[i], 0xab, hak_class_size(c));
    }
    for (int i = 0; i < N; i++)
        free(blocks[i]);
    TL_CHECK(hak_list_count(c) > 0, "nothing cached before exit");
    return arg; /* the exit destructor must give the cached blocks back */
}

static void test_thread_exit_and_trim_give_back_everything(void **state)
{
    (void)state;
    run_in_thread(cache_and_exit_thread, NULL);
    assert_true(class_spans(39) > 0); /* the spare, until trimmed */
    real_purge = hak_os.purge;
    hak_os.purge = counting_purge;
    purge_calls = 0;
    malloc_trim(0);
    hak_os.purge = real_purge;
    /* Every block of class 39 came back from the exited thread's cache, so no span of it
     * stays active, and the empty spans were handed back to the OS. */
    assert_int_equal(class_spans(39), 0);
    assert_true(purge_calls > 0);
    hak_span_totals_t t;
    hak_span_totals(&t);
    assert_int_equal(t.pooled, 0);
    assert_true(t.purged >= 512u * 1024u);
}

/* ---- the large path --------------------------------------------------------------------- */

static void test_large_blocks_and_page_map(void **state)
{
    (void)state;
    size_t n = 3u << 20;
    char *p = malloc(n);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 16, 0);
    assert_true(malloc_usable_size(p) >= n);
    assert_int_equal(hak_pm_tag(hak_pagemap_get((uintptr_t)p)), HAK_PM_LARGE);
    memset(p, 0x5a, n);
    char *q = realloc(p, 40u << 20); /* grows by moving pages, not bytes */
    assert_non_null(q);
    for (size_t i = 0; i < n; i += 4096)
        assert_int_equal((unsigned char)q[i], 0x5a);
    assert_true(malloc_usable_size(q) >= (40u << 20));
    if (q != p)
        assert_int_equal(hak_pagemap_get((uintptr_t)p), 0);
    free(q);
    assert_int_equal(hak_pagemap_get((uintptr_t)q), 0);

    /* A zero-byte block with a large alignment still owns the map page it starts in (found
     * by the random API stress: another mapping could land on it). */
    void *z = memalign(1u << 16, 0);
    assert_non_null(z);
    assert_int_equal((uintptr_t)z % (1u << 16), 0);
    assert_int_equal(hak_pm_tag(hak_pagemap_get((uintptr_t)z)), HAK_PM_LARGE);
    assert_true(malloc_usable_size(z) >= 1);
    free(z);

    void *a = memalign(1u << 22, 100);
    assert_non_null(a);
    assert_int_equal((uintptr_t)a % (1u << 22), 0);
    free(a);
}

/* A freed large block's mapping is kept and handed to the next large request that fits; calloc
 * of such reused memory is zero. */
static void test_large_cache_reuses_and_calloc_zeroes(void **state)
{
    (void)state;
    size_t n = 900u * 1024u;
    unsigned char *p = malloc(n);
    assert_non_null(p);
    memset(p, 0xee, n);
    free(p);
    unsigned char *q = calloc(1, n - 4096);
    assert_non_null(q);
    assert_ptr_equal(q, p); /* the kept mapping, not a new one */
    for (size_t i = 0; i < n - 4096; i += 512)
        assert_int_equal(q[i], 0);
    free(q);
    malloc_trim(0); /* empties the cache */
    hak_large_cache_totals_t lc;
    hak_large_cache_totals(&lc);
    assert_int_equal(lc.entries, 0);
    assert_int_equal(lc.resident + lc.purged, 0);
}

/* The first span of a class to empty is kept as the class's spare (page map entries intact)
 * and reused by the next refill; trim hands it back. */
static void *spare_thread(void *arg)
{
    unsigned c = 35; /* 16384 B: 16 blocks per 256 KiB span */
    enum { N = 16 };
    void *b[N];
    for (int i = 0; i < N; i++)
        TL_CHECK((b[i] = malloc(hak_class_size(c))) != NULL, "malloc failed");
    for (int i = 0; i < N; i++)
        free(b[i]);
    return arg;
}

static void test_spare_span_kept_then_trimmed(void **state)
{
    (void)state;
    malloc_trim(0);
    assert_int_equal(class_spans(35), 0);
    run_in_thread(spare_thread, NULL);
    /* The exit left the thread's list whole in a depot if it fit there (a short-lived
     * thread's blocks wait for the next refills; at 16 KiB the depot takes one refill's
     * worth), else in its span; flush the depots as the decay tick does, so the span
     * empties. */
    for (unsigned a = 0; a < hak_arenas; a++) {
        hak_lock(&hak_central[a][35].lock);
        hak_chain_t depot = hak_central_detach_depot(a, 35, hak_central[a][35].depot_count);
        hak_unlock(&hak_central[a][35].lock);
        if (depot.count)
            hak_central_give(35, depot, hak_now_ms(), HAK_ARENA_ALL);
    }
    hak_span_t *spare = class_spare(35);
    assert_non_null(spare); /* emptied, kept */
    assert_int_equal(spare->in_use, 0);
    assert_int_equal(hak_pm_tag(hak_pagemap_get(hak_span_base(spare))), 36);
    malloc_trim(0);
    assert_null(class_spare(35));
    assert_int_equal(class_spans(35), 0);
}

/* ---- the pool of empty spans ----------------------------------------------------------- */

/* A kind with no empty span takes pieces of an empty span of a larger kind, before any new
 * memory (a program that freed its 7 KiB nodes, 128 KiB spans, and now allocates 2.5 KiB
 * values, 64 KiB spans): every piece lies in one of those spans, aligned to its own length,
 * with the page map naming its own descriptor, and nothing new is mapped. purge_first: the
 * larger spans are PURGED (after a forced decay) rather than resident, the other branch. */
static void cut_for_a_smaller_kind(int purge_first)
{
    enum { BIG = 3, PIECES = 2 * BIG, MAX_TAKEN = 512 };
    const unsigned small_class = 24, big_class = 30; /* 2560 B: 64 KiB spans; 7168 B: 128 KiB */
    hak_span_t *big[BIG];
    uintptr_t big_base[BIG];
    for (int i = 0; i < BIG; i++) {
        big[i] = hak_span_get(1, big_class);
        assert_non_null(big[i]);
        big_base[i] = hak_span_base(big[i]);
    }
    for (int i = 0; i < BIG; i++)
        hak_span_put(big[i], hak_now_ms()); /* empty, resident: the newest of their kind */
    if (purge_first) /* every pooled span purged: the pieces come from purged ones */
        hak_span_decay(hak_now_ms(), 0, 1);
    hak_span_totals_t before, after;
    hak_span_totals(&before);
    /* Kind 0 first hands out whatever empty spans of its own the pool holds, then pieces. */
    static hak_span_t *taken[MAX_TAKEN];
    int n = 0, pieces = 0;
    while (pieces < PIECES && n < MAX_TAKEN) {
        hak_span_t *s = hak_span_get(0, small_class);
        assert_non_null(s);
        taken[n++] = s;
        uintptr_t b = hak_span_base(s);
        for (int i = 0; i < BIG; i++) {
            if (b < big_base[i] || b >= big_base[i] + hak_span_len(1))
                continue;
            pieces++;
            assert_int_equal(s->kind, 0);
            assert_int_equal(b % hak_span_len(0), 0);
            assert_int_equal(s->state, HAK_SPAN_ACTIVE);
            assert_ptr_equal(hak_pm_owner(hak_pagemap_get(b)), s);
            assert_ptr_equal(hak_pm_owner(hak_pagemap_get(b + hak_span_len(0) - 1)), s);
            assert_int_equal(hak_pm_class(hak_pagemap_get(b)), small_class);
        }
    }
    hak_span_totals(&after);
    assert_int_equal(pieces, PIECES);
    assert_int_equal(after.mapped, before.mapped); /* no new memory */
    assert_true(after.splits >= before.splits + BIG);
    for (int i = 0; i < n; i++)
        hak_span_put(taken[i], hak_now_ms());
}

static void test_empty_spans_cut_for_a_smaller_kind(void **state)
{
    (void)state;
    cut_for_a_smaller_kind(0);
}

static void test_purged_spans_cut_for_a_smaller_kind(void **state)
{
    (void)state;
    cut_for_a_smaller_kind(1);
}

static size_t purged_bytes;
static void summing_purge(void *addr, size_t len)
{
    purged_bytes += len;
    real_purge(addr, len);
}

/* A span of a kind that must come from new memory, while empty spans of smaller kinds sit
 * resident (they cannot be joined into it): as many of their bytes are purged first, so that
 * RSS stays level. (This binary sets HAKMEM_DECAY_MS to 10 minutes: no decay purges here.) */
static void test_new_span_memory_purges_resident_smaller_spans(void **state)
{
    (void)state;
    enum { SMALL = 16, MAX_TAKEN = 4096 };
    const unsigned small_class = 24, big_class = 39; /* 64 KiB spans; 512 KiB spans */
    hak_span_t *small[SMALL];
    for (int i = 0; i < SMALL; i++) {
        small[i] = hak_span_get(0, small_class);
        assert_non_null(small[i]);
    }
    for (int i = 0; i < SMALL; i++)
        hak_span_put(small[i], hak_now_ms()); /* 1 MiB of kind 0, resident */
    static hak_span_t *taken[MAX_TAKEN];
    int n = 0;
    real_purge = hak_os.purge;
    hak_os.purge = summing_purge;
    purged_bytes = 0;
    /* The pool's own spans of kind 3 come first; the first one from new memory purges. */
    while (!purged_bytes && n < MAX_TAKEN) {
        taken[n] = hak_span_get(3, big_class);
        assert_non_null(taken[n]);
        n++;
    }
    hak_os.purge = real_purge;
    assert_int_equal(purged_bytes, hak_span_len(3)); /* one new span's worth, whole spans */
    for (int i = 0; i < n; i++)
        hak_span_put(taken[i], hak_now_ms());
}

static void test_page_map_knows_only_hakmem_blocks(void **state)
{
    (void)state;
    int on_stack;
    static int in_data;
    assert_int_equal(hak_pagemap_get((uintptr_t)&on_stack), 0);
    assert_int_equal(hak_pagemap_get((uintptr_t)&in_data), 0);
    assert_int_equal(hak_pagemap_get(0), 0);
    void *p = malloc(100);
    uint64_t e = hak_pagemap_get((uintptr_t)p);
    assert_int_equal(hak_pm_tag(e), hak_size_to_class(100) + 1);
    hak_span_t *s = hak_pm_owner(e);
    assert_true((uintptr_t)p >= hak_span_base(s) &&
                (uintptr_t)p < hak_span_base(s) + hak_span_len(s->kind));
    free(p);
}

/* ---- out of memory ---------------------------------------------------------------------- */

static void *failing_map(size_t len)
{
    (void)len;
    return NULL;
}

static void test_os_failure_gives_enomem_then_recovers(void **state)
{
    (void)state;
    void *(*real_map)(size_t) = hak_os.map;
    hak_os.map = failing_map;
    errno = 0;
    void *p = malloc(5u << 20);
    int err = errno;
    hak_os.map = real_map;
    assert_null(p);
    assert_int_equal(err, ENOMEM);
    p = malloc(5u << 20);
    assert_non_null(p);
    free(p);
}

static int remap_calls;
static void *failing_remap(void *addr, size_t old_len, size_t new_len, void *new_addr)
{
    (void)addr, (void)old_len, (void)new_len, (void)new_addr;
    remap_calls++;
    return NULL;
}

/* Every mremap goes through hak_os.remap; when it refuses (as for a block cut from two kernel
 * mappings), a large realloc copies instead and keeps the contents. */
static void test_large_realloc_copies_when_remap_fails(void **state)
{
    (void)state;
    malloc_trim(0); /* no cached range after the block to grow over */
    size_t n = 3u << 20;
    unsigned char *p = malloc(n);
    assert_non_null(p);
    for (size_t i = 0; i < n; i += 4096)
        p[i] = (unsigned char)(i >> 12);
    void *(*real_remap)(void *, size_t, size_t, void *) = hak_os.remap;
    hak_os.remap = failing_remap;
    remap_calls = 0;
    unsigned char *q = realloc(p, 3 * n);
    hak_os.remap = real_remap;
    assert_non_null(q);
    assert_true(remap_calls >= 1);
    for (size_t i = 0; i < n; i += 4096)
        assert_int_equal(q[i], (unsigned char)(i >> 12));
    q[3 * n - 1] = 1;
    free(q);
}

/* A block under 2 MiB that cannot grow in place grows into a resident range of the large
 * cache (copying its bytes), not into fresh memory: its new pages up to the size asked are in
 * memory before anything writes them (mincore), and its bytes came along. */
static void test_large_realloc_grows_into_resident_range(void **state)
{
    (void)state;
    malloc_trim(0); /* no cached range: the one put below is the only one */
    size_t n = 100u << 10, grown = 300u << 10, range = 320u << 10; /* round_map(64 + grown) */
    unsigned char *p = malloc(n);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 7);
    size_t unit = (size_t)1 << HAK_PM_SHIFT;
    unsigned char *raw = mmap(NULL, range + unit, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(raw != MAP_FAILED);
    uintptr_t lo = ((uintptr_t)raw + unit - 1) & ~(uintptr_t)(unit - 1);
    memset((void *)lo, 1, range); /* resident */
    assert_true(hak_large_cache_put(lo, range, 0));
    void *(*real_remap)(void *, size_t, size_t, void *) = hak_os.remap;
    hak_os.remap = failing_remap; /* no growth in place, no move of the pages */
    remap_calls = 0;
    unsigned char *q = realloc(p, grown);
    hak_os.remap = real_remap;
    assert_non_null(q);
    assert_true(remap_calls >= 1); /* it tried to grow in place first */
    if ((uintptr_t)q < lo || (uintptr_t)q + grown > lo + range)
        fail_msg("the grown block %p is not in the cached range [%#lx, %#lx)", (void *)q,
                 (unsigned long)lo, (unsigned long)(lo + range));
    unsigned char vec[1];
    uintptr_t tail = ((uintptr_t)q + grown - 1) & ~(uintptr_t)4095;
    assert_int_equal(mincore((void *)tail, 4096, vec), 0);
    if (!(vec[0] & 1))
        fail_msg("the grown block's last page %#lx is not resident before any write",
                 (unsigned long)tail);
    for (size_t i = 0; i < n; i++)
        if (q[i] != (unsigned char)(i * 7))
            fail_msg("byte %zu lost in the move", i);
    free(q);
    malloc_trim(0); /* the rest of the raw mapping around the range stays mapped: harmless */
}

/* Under RLIMIT_AS, in a child: small blocks until NULL, which must come with ENOMEM; after
 * freeing, allocation works again. */
static int oom_child(void)
{
    struct rlimit rl = {256u << 20, 256u << 20};
    if (setrlimit(RLIMIT_AS, &rl) != 0)
        return 10;
    enum { MAX = 1 << 20 };
    static void *blocks[MAX];
    int n = 0;
    errno = 0;
    while (n < MAX) {
        void *p = malloc(16384);
        if (!p)
            break;
        memset(p, 1, 64);
        blocks[n++] = p;
    }
    if (n == MAX)
        return 11; /* the limit never bit */
    if (errno != ENOMEM)
        return 12;
    for (int i = 0; i < n; i++)
        free(blocks[i]);
    malloc_trim(0);
    for (int i = 0; i < 1000; i++) {
        void *p = malloc(16384);
        if (!p)
            return 13;
        blocks[i] = p;
    }
    void *big = malloc(64u << 20);
    if (!big)
        return 14;
    free(big);
    return 0;
}

static void test_address_space_limit_enomem_and_recovery(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(oom_child());
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    /* Trim passes come every HAKMEM_DECAY_MS / 4 on slow paths; a test thread descheduled for
     * that long would see one mid-scenario. Here they run only when a test calls them. */
    hak_config_load();
    hak_config.decay_ms = 600000;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refill_uses_phase1_count),
        cmocka_unit_test(test_refill_count_per_class_override),
        cmocka_unit_test(test_list_never_exceeds_cap),
        cmocka_unit_test(test_refill_share_when_threads_outnumber_cpus),
        cmocka_unit_test(test_deep_bursts_stay_in_the_thread),
        cmocka_unit_test(test_scrambled_spill_drops_growth),
        cmocka_unit_test(test_cap_growth_stops_at_the_thread_budget),
        cmocka_unit_test(test_a_new_phase_takes_the_idle_lists_budget),
        cmocka_unit_test(test_cap_growth_stops_at_the_process_budget),
        cmocka_unit_test(test_long_give_backs_come_in_bounded_chains),
        cmocka_unit_test(test_take_gives_lowest_blocks_in_address_order),
        cmocka_unit_test(test_take_marks_only_fresh_blocks),
        cmocka_unit_test(test_fork_child_forgets_other_threads_extras),
        cmocka_unit_test(test_idle_lists_are_trimmed),
        cmocka_unit_test(test_grown_lists_shrink_when_idle),
        cmocka_unit_test(test_thread_exit_and_trim_give_back_everything),
        cmocka_unit_test(test_large_blocks_and_page_map),
        cmocka_unit_test(test_large_cache_reuses_and_calloc_zeroes),
        cmocka_unit_test(test_spare_span_kept_then_trimmed),
        cmocka_unit_test(test_empty_spans_cut_for_a_smaller_kind),
        cmocka_unit_test(test_purged_spans_cut_for_a_smaller_kind),
        cmocka_unit_test(test_new_span_memory_purges_resident_smaller_spans),
        cmocka_unit_test(test_block_freed_in_another_arena_returns_to_its_arena),
        cmocka_unit_test(test_mailbox_posts_collects_and_fills),
        cmocka_unit_test(test_idle_bytes_bound_depot_and_mailbox),
        cmocka_unit_test(test_page_map_knows_only_hakmem_blocks),
        cmocka_unit_test(test_os_failure_gives_enomem_then_recovers),
        cmocka_unit_test(test_large_realloc_copies_when_remap_fails),
        cmocka_unit_test(test_large_realloc_grows_into_resident_range),
        cmocka_unit_test(test_address_space_limit_enomem_and_recovery),
    };
    return cmocka_run_group_tests_name("box2_backend", tests, NULL, NULL);
}
