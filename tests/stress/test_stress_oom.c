/* tests/stress/test_stress_oom.c - out of address space (RLIMIT_AS, as under `ulimit -v`),
 * through the real libhakmem.so (LD_PRELOAD).
 *
 * Each scenario runs in a fresh process (this binary re-executed with --scenario, optionally
 * with POOL_ACE=1), which sets RLIMIT_AS to its current VmSize plus a small budget, then:
 *   1. allocates large, then mid, then small blocks until each kind fails: every NULL must
 *      come with errno ENOMEM, nothing may crash;
 *   2. while exhausted: calloc, realloc (growing a held block), reallocarray, posix_memalign,
 *      aligned_alloc, memalign, valloc, pvalloc either succeed or fail cleanly (NULL + ENOMEM,
 *      posix_memalign returns ENOMEM), and a failed realloc leaves the old block intact;
 *   3. frees everything (checking each block's pattern), then allocation must work again:
 *      a large block of a quarter of the budget, and small and mid blocks;
 *   all of it three rounds in a row. The multithreaded version does the same with 4 threads at
 *   once, each freeing the blocks another thread allocated.
 * (jemalloc 5.3.0 crashes in the multithreaded case: docs/RELIABILITY.md.) */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>

#include "testlib.h"

#define ROUNDS 3
#define THREADS 4
#define MAX_BLOCKS (1u << 20) /* per thread */

typedef struct held {
    unsigned char **p;
    size_t *n;
    size_t count;
    long allocs, nulls, bad;
} held_t;

static void put_pattern(unsigned char *p, size_t n, size_t i)
{
    uint64_t tag = (uint64_t)i * 0x9e3779b97f4a7c15ull ^ n;
    memcpy(p, &tag, n < 8 ? n : 8);
    p[n - 1] = (unsigned char)(i ^ n);
}

static int pattern_ok(const unsigned char *p, size_t n, size_t i)
{
    uint64_t tag = (uint64_t)i * 0x9e3779b97f4a7c15ull ^ n;
    return memcmp(p, &tag, n < 8 ? n : 8) == 0 && p[n - 1] == (unsigned char)(i ^ n);
}

static void errf(held_t *h, const char *fmt, ...)
{
    if (h->bad++ < 10) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "    FAIL: ");
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\n");
        va_end(ap);
    }
}

/* Allocate blocks of sizes lo..hi until `stop` allocations failed (or the table is full). */
static void fill_until_null(held_t *h, size_t lo, size_t hi, int stop, unsigned long long *rng)
{
    int failed = 0;
    while (failed < stop && h->count < MAX_BLOCKS) {
        size_t n = lo + tl_rand(rng) % (hi - lo + 1);
        errno = 0;
        unsigned char *p = malloc(n);
        if (!p) {
            failed++;
            h->nulls++;
            if (errno != ENOMEM)
                errf(h, "malloc(%zu) returned NULL with errno %d, not ENOMEM", n, errno);
            continue;
        }
        h->allocs++;
        put_pattern(p, n, h->count);
        h->p[h->count] = p;
        h->n[h->count++] = n;
    }
}

/* NULL (with ENOMEM) or a usable, aligned block, which is freed at once. */
static void try_call(held_t *h, const char *what, void *p, size_t align, size_t n)
{
    int e = errno;
    if (!p) {
        h->nulls++;
        if (e != ENOMEM)
            errf(h, "%s returned NULL with errno %d, not ENOMEM", what, e);
        return;
    }
    h->allocs++;
    if ((uintptr_t)p % align)
        errf(h, "%s returned %p, not aligned to %zu", what, p, align);
    if (n)
        memset(p, 0x5c, n);
    free(p);
}

static void exhausted_calls(held_t *h, size_t budget)
{
    size_t big = budget / 2; /* never fits while exhausted */
    errno = 0;
    try_call(h, "calloc(1, budget/2)", calloc(1, big), 16, big);
    errno = 0;
    try_call(h, "calloc(100, 10)", calloc(100, 10), 16, 1000);
    errno = 0;
    try_call(h, "malloc(budget/2)", malloc(big), 16, big);
    errno = 0;
    try_call(h, "memalign(65536, 200000)", memalign(65536, 200000), 65536, 200000);
    errno = 0;
    try_call(h, "aligned_alloc(1 MiB, budget/2)", aligned_alloc(1 << 20, big), 1 << 20, big);
    errno = 0;
    try_call(h, "valloc(100000)", valloc(100000), 4096, 100000);
    errno = 0;
    try_call(h, "pvalloc(5000)", pvalloc(5000), 4096, 5000);
    void *q = NULL;
    int rc = posix_memalign(&q, 4096, big);
    if (rc == 0)
        try_call(h, "posix_memalign(4096, budget/2)", q, 4096, big);
    else if (rc != ENOMEM)
        errf(h, "posix_memalign(4096, budget/2) returned %d, not ENOMEM", rc);
    else
        h->nulls++;
    /* grow held blocks: on failure the old block must stay intact */
    for (size_t k = 0; k < 8 && k < h->count; k++) {
        size_t i = h->count - 1 - k * (h->count / 8);
        size_t want = k % 2 ? big : h->n[i] * 4 + 100000;
        errno = 0;
        unsigned char *r = k % 3 == 2 ? reallocarray(h->p[i], want / 16, 16) : realloc(h->p[i], want);
        if (k % 3 == 2)
            want = want / 16 * 16;
        if (!r) {
            h->nulls++;
            if (errno != ENOMEM)
                errf(h, "realloc(%zu -> %zu) returned NULL with errno %d", h->n[i], want, errno);
            if (!pattern_ok(h->p[i], h->n[i], i))
                errf(h, "a failed realloc damaged the old block");
            continue;
        }
        h->allocs++;
        if (!pattern_ok(r, h->n[i], i))
            errf(h, "realloc(%zu -> %zu) lost the contents", h->n[i], want);
        h->p[i] = r;
        h->n[i] = want;
        put_pattern(r, want, i);
    }
}

static void free_all(held_t *h)
{
    for (size_t i = 0; i < h->count; i++) {
        if (!pattern_ok(h->p[i], h->n[i], i))
            errf(h, "block %zu (%zu bytes) corrupt before free", i, h->n[i]);
        free(h->p[i]);
    }
    h->count = 0;
}

/* After the frees: a big block and ordinary blocks must be available again. */
static void check_recovered(held_t *h, size_t budget, const char *who)
{
    size_t big = budget / 4;
    errno = 0;
    unsigned char *p = malloc(big);
    if (!p) {
        errf(h, "%s: malloc(%zu) (a quarter of the budget) failed after everything was freed "
                "(errno %d)",
             who, big, errno);
    } else {
        memset(p, 1, big);
        free(p);
    }
    for (int i = 0; i < 1000; i++) {
        size_t n = i % 2 ? 64 + (size_t)i : 8000 + (size_t)i * 20;
        void *q = malloc(n);
        if (!q) {
            errf(h, "%s: malloc(%zu) failed after everything was freed", who, n);
            break;
        }
        memset(q, 2, n);
        free(q);
    }
}

static int held_init(held_t *h)
{
    memset(h, 0, sizeof *h);
    h->p = malloc(MAX_BLOCKS * sizeof *h->p);
    h->n = malloc(MAX_BLOCKS * sizeof *h->n);
    return h->p && h->n ? 0 : -1;
}

/* RLIMIT_AS = what the process maps now + budget. */
static int limit_as(size_t budget)
{
    long vm = tl_status_kib("VmSize");
    if (vm < 0)
        return -1;
    struct rlimit rl = {(rlim_t)vm * 1024 + budget, (rlim_t)vm * 1024 + budget};
    if (setrlimit(RLIMIT_AS, &rl) != 0) {
        perror("setrlimit");
        return -1;
    }
    fprintf(stderr, "    RLIMIT_AS = VmSize %ld KiB + %zu MiB\n", vm, budget >> 20);
    return 0;
}

static int scenario_single(void)
{
    const size_t budget = 192u << 20;
    held_t h;
    if (held_init(&h) || limit_as(budget))
        return 1;
    unsigned long long rng = 0x1234567ull;
    for (int round = 0; round < ROUNDS; round++) {
        /* large, mid and small blocks exhaust the budget in a different order each round */
        static const size_t kinds[3][2] = {{65536, 4u << 20}, {1025, 32768}, {16, 1024}};
        for (int k = 0; k < 3; k++) {
            const size_t *kind = kinds[(k + round) % 3];
            fill_until_null(&h, kind[0], kind[1], 3, &rng);
        }
        size_t held = h.count;
        exhausted_calls(&h, budget);
        free_all(&h);
        check_recovered(&h, budget, "one thread");
        fprintf(stderr, "    round %d: %zu blocks held at exhaustion; %ld allocations, %ld NULLs "
                        "so far\n",
                round, held, h.allocs, h.nulls);
        if (h.bad)
            break;
    }
    if (h.nulls < 9 * ROUNDS) {
        fprintf(stderr, "    FAIL: only %ld NULLs: the budget was never exhausted\n", h.nulls);
        return 1;
    }
    return h.bad ? 1 : 0;
}

/* The plainest case, deterministic: 1000-byte blocks until NULL, free them all, then one
 * large block (a quarter of the budget) at once, with no time for any decay to run. */
static int scenario_small_then_large(void)
{
    const size_t budget = 192u << 20;
    held_t h;
    if (held_init(&h) || limit_as(budget))
        return 1;
    unsigned long long rng = 42;
    fill_until_null(&h, 1000, 1000, 1, &rng);
    size_t held = h.count;
    free_all(&h);
    check_recovered(&h, budget, "small blocks then one large");
    fprintf(stderr, "    %zu blocks of 1000 bytes until NULL, all freed, then malloc(%zu MiB): %s\n",
            held, budget / 4 >> 20, h.bad ? "failed" : "ok");
    return h.bad ? 1 : 0;
}

static pthread_barrier_t barrier, start_barrier;
static held_t th[THREADS];
static const size_t mt_budget = 256u << 20;

static void *mt_worker(void *arg)
{
    size_t id = (size_t)arg;
    unsigned long long rng = 0xabcdef12345ull + id * 77;
    pthread_barrier_wait(&start_barrier); /* every thread exists before any fills */
    for (int round = 0; round < ROUNDS; round++) {
        /* interleave the kinds so the threads compete for the last chunks */
        for (int pass = 0; pass < 3; pass++) {
            fill_until_null(&th[id], 65536, 2u << 20, 2, &rng);
            fill_until_null(&th[id], 1025, 32768, 2, &rng);
            fill_until_null(&th[id], 16, 1024, 2, &rng);
        }
        exhausted_calls(&th[id], mt_budget);
        pthread_barrier_wait(&barrier);
        /* free the blocks of the next thread (all threads are past filling) */
        free_all(&th[(id + 1) % THREADS]);
        pthread_barrier_wait(&barrier);
        check_recovered(&th[id], mt_budget / THREADS, "a thread");
        pthread_barrier_wait(&barrier);
    }
    return NULL;
}

static int scenario_threads(void)
{
    for (int i = 0; i < THREADS; i++)
        if (held_init(&th[i]))
            return 1;
    pthread_barrier_init(&barrier, NULL, THREADS);
    pthread_barrier_init(&start_barrier, NULL, THREADS + 1);
    pthread_t t[THREADS];
    /* small stacks, created before the limit: no thread creation under exhaustion */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 << 10);
    if (limit_as(mt_budget + THREADS * (256u << 10)))
        return 1;
    for (size_t i = 0; i < THREADS; i++) {
        int rc = pthread_create(&t[i], &attr, mt_worker, (void *)i);
        if (rc) {
            fprintf(stderr, "    FAIL: pthread_create: %s (VmSize %ld KiB)\n", strerror(rc),
                    tl_status_kib("VmSize"));
            return 1;
        }
    }
    pthread_barrier_wait(&start_barrier);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    long allocs = 0, nulls = 0, bad = 0;
    for (int i = 0; i < THREADS; i++) {
        allocs += th[i].allocs;
        nulls += th[i].nulls;
        bad += th[i].bad;
    }
    held_t h = {0};
    check_recovered(&h, mt_budget, "main after the threads");
    bad += h.bad;
    fprintf(stderr, "    %d threads, %d rounds: %ld allocations, %ld NULLs (all ENOMEM: %s)\n",
            THREADS, ROUNDS, allocs, nulls, bad ? "no" : "yes");
    if (nulls < THREADS * ROUNDS) {
        fprintf(stderr, "    FAIL: only %ld NULLs: the budget was never exhausted\n", nulls);
        return 1;
    }
    return bad ? 1 : 0;
}

/* ---- the CMocka side --------------------------------------------------------------------- */

static void run_self(const char *scenario, const char *const extra_env[])
{
    char why[256];
    if (tl_run_scenario(scenario, extra_env, 120, why, sizeof why))
        fail_msg("out-of-memory %s", why);
}

static const char *const ace_env[] = {"POOL_ACE=1", "POOL_ACE_INTERVAL_MS=10", NULL};

static void test_oom_one_thread(void **s) { (void)s; run_self("single", NULL); }
static void test_oom_one_thread_ace(void **s) { (void)s; run_self("single", ace_env); }
static void test_oom_small_then_large(void **s) { (void)s; run_self("small_then_large", NULL); }
static void test_oom_threads(void **s) { (void)s; run_self("threads", NULL); }
static void test_oom_threads_ace(void **s) { (void)s; run_self("threads", ace_env); }

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--scenario") == 0) {
        if (strcmp(argv[2], "single") == 0)
            return scenario_single();
        if (strcmp(argv[2], "small_then_large") == 0)
            return scenario_small_then_large();
        if (strcmp(argv[2], "threads") == 0)
            return scenario_threads();
        fprintf(stderr, "unknown scenario %s\n", argv[2]);
        return 2;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oom_one_thread),
        cmocka_unit_test(test_oom_one_thread_ace),
        cmocka_unit_test(test_oom_small_then_large),
        cmocka_unit_test(test_oom_threads),
        cmocka_unit_test(test_oom_threads_ace),
    };
    return cmocka_run_group_tests_name("stress_oom", tests, NULL, NULL);
}
