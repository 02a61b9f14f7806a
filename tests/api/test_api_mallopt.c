/* tests/api/test_api_mallopt.c - mallopt answers as glibc 2.36's does (docs/TUNING.md,
 * mallopt), through the real libhakmem.so (LD_PRELOAD).
 *
 * glibc 2.36's __libc_mallopt (malloc/malloc.c) returns 1 for every parameter and value except
 * M_MXFAST outside 0..160 (80 * sizeof(size_t) / 4; a negative value is a huge size_t there),
 * unknown parameter numbers included, and leaves errno alone. Programs check the answer
 * (glibc's own tests stop at "mallopt (M_ARENA_MAX) failed"). Each call here is checked three
 * ways: against that rule, with errno unchanged, and against what this system's glibc mallopt
 * returns for the same call (glibc's own function, reached through dlopen("libc.so.6") while
 * hakmem is the process's malloc) when the system's glibc is 2.36. M_PERTURB's fills are
 * checked here; what the large-cache parameters do, in test_api_introspect.c. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <gnu/libc-version.h>
#include <limits.h>
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

#include "hakmem.h"

/* glibc's parameters (malloc.h), and numbers glibc 2.36 does not know. */
static const int params[] = {M_MXFAST,     M_TRIM_THRESHOLD, M_TOP_PAD,  M_MMAP_THRESHOLD,
                             M_MMAP_MAX,   M_CHECK_ACTION,   M_PERTURB,  M_ARENA_TEST,
                             M_ARENA_MAX,  0,                2,          3,
                             4,            -9,               -100,       12345,
                             INT_MIN,      INT_MAX};
static const int values[] = {INT_MIN, -1,        0,         1,         8,
                             159,     160,       161,       4096,      1 << 20,
                             32 << 20, (32 << 20) + 1, 64 << 20, INT_MAX};
#define N(a) (sizeof(a) / sizeof((a)[0]))

/* glibc 2.36's answer. */
static int glibc_2_36_answer(int param, int value)
{
    if (param == M_MXFAST)
        return (size_t)value <= 80 * sizeof(size_t) / 4;
    return 1;
}

/* mallopt(param, value) with errno set to a mark beforehand; fails unless errno keeps it. */
static int call(int (*fn)(int, int), int param, int value)
{
    errno = 4242;
    int r = fn(param, value);
    if (errno != 4242)
        fail_msg("mallopt(%d, %d) changed errno to %d", param, value, errno);
    return r;
}

/* Leave the large cache as the environment set it (the calls above change its settings). */
static void restore(void)
{
    mallopt(M_TRIM_THRESHOLD, 1024 << 20); /* HAKMEM_LARGE_CACHE_MIB's default */
    mallopt(M_MMAP_THRESHOLD, -1);         /* no bound, the default */
    mallopt(M_PERTURB, 0);
}

static void test_answers_are_glibc_2_36s(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(params); i++)
        for (size_t j = 0; j < N(values); j++) {
            int got = call(mallopt, params[i], values[j]);
            int want = glibc_2_36_answer(params[i], values[j]);
            if (got != want)
                fail_msg("mallopt(%d, %d) returned %d; glibc 2.36 returns %d", params[i],
                         values[j], got, want);
        }
    restore();
}

static void test_answers_are_this_glibcs(void **state)
{
    (void)state;
    const char *version = gnu_get_libc_version();
    if (strcmp(version, "2.36") != 0) {
        printf("    glibc %s is not 2.36: its answers are not compared\n", version);
        return;
    }
    void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    assert_non_null(libc);
    int (*glibc_mallopt)(int, int) = (int (*)(int, int))dlsym(libc, "mallopt");
    assert_non_null(glibc_mallopt);
    for (size_t i = 0; i < N(params); i++)
        for (size_t j = 0; j < N(values); j++) {
            int got = call(mallopt, params[i], values[j]);
            int glibc = call(glibc_mallopt, params[i], values[j]);
            if (got != glibc)
                fail_msg("mallopt(%d, %d) returned %d; this glibc's own mallopt returns %d",
                         params[i], values[j], got, glibc);
        }
    dlclose(libc);
    restore();
}

/* The servers' and glibc's tests' calls, one by one. */
static void test_common_calls_succeed(void **state)
{
    (void)state;
    assert_int_equal(call(mallopt, M_ARENA_MAX, 1), 1);
    assert_int_equal(call(mallopt, M_ARENA_MAX, 8), 1);
    assert_int_equal(call(mallopt, M_ARENA_TEST, 1), 1);
    assert_int_equal(call(mallopt, M_MMAP_MAX, 0), 1);
    assert_int_equal(call(mallopt, M_TOP_PAD, 1 << 20), 1);
    assert_int_equal(call(mallopt, M_MXFAST, 0), 1);
    assert_int_equal(call(mallopt, M_MXFAST, 160), 1);
    assert_int_equal(call(mallopt, M_MXFAST, 161), 0);
    assert_int_equal(call(mallopt, M_MXFAST, -1), 0);
    assert_int_equal(call(mallopt, M_CHECK_ACTION, 3), 1);
    assert_int_equal(call(mallopt, M_PERTURB, 0), 1);
    assert_int_equal(call(mallopt, M_TRIM_THRESHOLD, 128 << 10), 1);
    assert_int_equal(call(mallopt, M_MMAP_THRESHOLD, 64 << 20), 1); /* 2.36: no upper bound */
    /* hakmem's own: refused out of range, unlike an unknown number under glibc */
    assert_int_equal(call(mallopt, M_HAKMEM_DECAY_MS, -1), 0);
    assert_int_equal(call(mallopt, M_HAKMEM_DECAY_MS, 600001), 0);
    assert_int_equal(call(mallopt, M_HAKMEM_DECAY_MS, 500), 1);
    assert_int_equal(call(mallopt, M_HAKMEM_PURGE, 0), 1);
    /* the allocator still works after all of it */
    void *p = malloc(100), *q = malloc(1 << 20);
    assert_non_null(p);
    assert_non_null(q);
    free(p);
    free(q);
    restore();
}

/* M_PERTURB fills as glibc 2.36 does outside its tcache: a block a cold path hands out (a
 * refill's, a large one) gets the byte xor 0xff, a block a thread list gives back the byte
 * (from byte 16 on: words 0 and 1 link hakmem's chains and carry its free key); calloc still
 * zeroes. A fresh thread, so that its first malloc of the class is a refill. */
enum { PERTURB = 0xa5, SMALL = 3000, LARGE = 200000 };

static const char *perturb_failure;

static int all_bytes(const void *p, size_t from, size_t to, unsigned char byte)
{
    for (size_t i = from; i < to; i++)
        if (((const unsigned char *)p)[i] != byte)
            return 0;
    return 1;
}

static void *perturb_thread(void *arg)
{
    (void)arg;
    unsigned char *first = malloc(SMALL); /* the thread's first: a refill hands it out */
    unsigned char *second = malloc(SMALL); /* a hit: not filled */
    unsigned char *zeroed = calloc(1, SMALL);
    unsigned char *large = malloc(LARGE), *large_zeroed = calloc(1, LARGE);
    if (!first || !second || !zeroed || !large || !large_zeroed)
        perturb_failure = "an allocation failed";
    else if (!all_bytes(first, 0, SMALL, PERTURB ^ 0xff))
        perturb_failure = "a refill's block is not filled with the byte xor 0xff";
    else if (!all_bytes(large, 0, LARGE, PERTURB ^ 0xff))
        perturb_failure = "a large block is not filled with the byte xor 0xff";
    else if (!all_bytes(zeroed, 0, SMALL, 0) || !all_bytes(large_zeroed, 0, LARGE, 0))
        perturb_failure = "calloc's block is not zero";
    if (perturb_failure)
        return NULL;
    free(second);
    malloc_trim(0); /* the thread's lists go back to Box 2: second is filled on the way */
    volatile unsigned char *gone = second; /* still mapped: first keeps its span in use */
    if (!all_bytes((const void *)gone, 16, SMALL, PERTURB))
        perturb_failure = "a block given back by a thread list is not filled with the byte";
    free(first);
    free(zeroed);
    free(large);
    free(large_zeroed);
    return NULL;
}

static void test_perturb_fills_as_glibc_does(void **state)
{
    (void)state;
    assert_int_equal(call(mallopt, M_PERTURB, PERTURB), 1);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, perturb_thread, NULL), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(call(mallopt, M_PERTURB, 0), 1);
    if (perturb_failure)
        fail_msg("M_PERTURB: %s", perturb_failure);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answers_are_glibc_2_36s),
        cmocka_unit_test(test_answers_are_this_glibcs),
        cmocka_unit_test(test_common_calls_succeed),
        cmocka_unit_test(test_perturb_fills_as_glibc_does),
    };
    return cmocka_run_group_tests_name("api_mallopt", tests, NULL, NULL);
}
