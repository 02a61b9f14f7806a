/* tests/api/test_api_patterns.c - many live blocks of many sizes, each filled (over its whole
 * usable size) with its own pattern; every pattern is verified before the block is freed and
 * periodically for all live blocks, and live blocks are checked to never overlap. Runs through
 * the real libhakmem.so (LD_PRELOAD). */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testlib.h"

typedef struct blk {
    unsigned char *p;
    size_t size;   /* requested */
    size_t usable; /* malloc_usable_size at allocation */
    uint64_t seed;
} blk_t;

static uint64_t word_at(uint64_t seed, size_t i) { return (seed ^ (i * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull; }

static void pattern_fill(blk_t *b)
{
    size_t words = b->usable / 8;
    uint64_t *w = (uint64_t *)b->p;
    for (size_t i = 0; i < words; i++)
        w[i] = word_at(b->seed, i);
    for (size_t i = words * 8; i < b->usable; i++)
        b->p[i] = (unsigned char)(b->seed >> (i & 7));
}

/* returns the offset of the first corrupt byte, or (size_t)-1 */
static size_t pattern_check(const blk_t *b)
{
    size_t words = b->usable / 8;
    const uint64_t *w = (const uint64_t *)b->p;
    for (size_t i = 0; i < words; i++)
        if (w[i] != word_at(b->seed, i))
            return i * 8;
    for (size_t i = words * 8; i < b->usable; i++)
        if (b->p[i] != (unsigned char)(b->seed >> (i & 7)))
            return i;
    return (size_t)-1;
}

static size_t random_size(unsigned long long *rng)
{
    unsigned r = (unsigned)(tl_rand(rng) % 1000);
    if (r < 650)
        return tl_rand(rng) % 513; /* 0..512 */
    if (r < 900)
        return 513 + tl_rand(rng) % (8192 - 512);
    if (r < 985)
        return 8193 + tl_rand(rng) % (65536 - 8192);
    return 65537 + tl_rand(rng) % (2u << 20);
}

static int cmp_blk(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const blk_t *)a)->p, y = (uintptr_t)((const blk_t *)b)->p;
    return x < y ? -1 : x > y;
}

/* all live blocks intact and pairwise disjoint; returns 0 or writes a message */
static int verify_all(blk_t *blocks, size_t n, char *msg, size_t cap)
{
    for (size_t i = 0; i < n; i++) {
        size_t bad = pattern_check(&blocks[i]);
        if (bad != (size_t)-1) {
            snprintf(msg, cap, "block %p (size %zu, usable %zu) corrupt at byte %zu",
                     (void *)blocks[i].p, blocks[i].size, blocks[i].usable, bad);
            return -1;
        }
    }
    blk_t *sorted = malloc(n * sizeof *sorted);
    if (!sorted) {
        snprintf(msg, cap, "malloc for the sort failed");
        return -1;
    }
    memcpy(sorted, blocks, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_blk);
    for (size_t i = 1; i < n; i++) {
        if ((uintptr_t)sorted[i - 1].p + sorted[i - 1].usable > (uintptr_t)sorted[i].p) {
            snprintf(msg, cap, "blocks overlap: %p+%zu and %p", (void *)sorted[i - 1].p,
                     sorted[i - 1].usable, (void *)sorted[i].p);
            free(sorted);
            return -1;
        }
    }
    free(sorted);
    return 0;
}

static int new_block(blk_t *b, unsigned long long *rng, uint64_t seed, char *msg, size_t cap)
{
    b->size = random_size(rng);
    b->p = malloc(b->size);
    if (!b->p) {
        snprintf(msg, cap, "malloc(%zu) returned NULL", b->size);
        return -1;
    }
    if ((uintptr_t)b->p % 16) {
        snprintf(msg, cap, "malloc(%zu) = %p misaligned", b->size, (void *)b->p);
        return -1;
    }
    b->usable = malloc_usable_size(b->p);
    if (b->usable < b->size) {
        snprintf(msg, cap, "malloc(%zu): usable size %zu", b->size, b->usable);
        return -1;
    }
    b->seed = seed;
    pattern_fill(b);
    return 0;
}

typedef struct run_args {
    size_t live;
    long ops;
    unsigned long long seed;
    char msg[256];
    int rc;
} run_args_t;

static void *pattern_run(void *arg)
{
    run_args_t *a = arg;
    unsigned long long rng = a->seed;
    blk_t *blocks = calloc(a->live, sizeof *blocks);
    a->rc = -1;
    if (!blocks) {
        snprintf(a->msg, sizeof a->msg, "calloc failed");
        return NULL;
    }
    uint64_t next_seed = a->seed * 1000003u;
    for (size_t i = 0; i < a->live; i++)
        if (new_block(&blocks[i], &rng, next_seed++, a->msg, sizeof a->msg))
            return NULL;
    for (long op = 0; op < a->ops; op++) {
        size_t i = tl_rand(&rng) % a->live;
        size_t bad = pattern_check(&blocks[i]);
        if (bad != (size_t)-1) {
            snprintf(a->msg, sizeof a->msg, "op %ld: block %p (size %zu) corrupt at byte %zu",
                     op, (void *)blocks[i].p, blocks[i].size, bad);
            return NULL;
        }
        free(blocks[i].p);
        if (new_block(&blocks[i], &rng, next_seed++, a->msg, sizeof a->msg))
            return NULL;
        if (op % 50000 == 49999 && verify_all(blocks, a->live, a->msg, sizeof a->msg))
            return NULL;
    }
    if (verify_all(blocks, a->live, a->msg, sizeof a->msg))
        return NULL;
    for (size_t i = 0; i < a->live; i++)
        free(blocks[i].p);
    free(blocks);
    a->rc = 0;
    return NULL;
}

static void test_patterns_single_thread(void **state)
{
    (void)state;
    run_args_t a = {.live = 4000, .ops = 200000L * tl_scale(), .seed = 0x1234567ull};
    pattern_run(&a);
    if (a.rc)
        fail_msg("%s", a.msg);
}

static void test_patterns_two_threads(void **state)
{
    (void)state;
    run_args_t a[2] = {{.live = 2000, .ops = 100000L * tl_scale(), .seed = 77},
                       {.live = 2000, .ops = 100000L * tl_scale(), .seed = 991}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, pattern_run, &a[i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    for (int i = 0; i < 2; i++)
        if (a[i].rc)
            fail_msg("thread %d: %s", i, a[i].msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_patterns_single_thread),
        cmocka_unit_test(test_patterns_two_threads),
    };
    return cmocka_run_group_tests_name("api_patterns", tests, NULL, NULL);
}
