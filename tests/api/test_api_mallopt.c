/* tests/api/test_api_mallopt.c - mallopt answers as glibc 2.36's does (docs/TUNING.md,
 * mallopt), through the real libhakmem.so (LD_PRELOAD).
 *
 * glibc 2.36's __libc_mallopt (malloc/malloc.c) returns 1 for every parameter and value except
 * M_MXFAST outside 0..160 (80 * sizeof(size_t) / 4; a negative value is a huge size_t there),
 * unknown parameter numbers included, and leaves errno alone. Programs check the answer
 * (glibc's own tests stop at "mallopt (M_ARENA_MAX) failed"). Each call here is checked three
 * ways: against that rule, with errno unchanged, and against what this system's glibc mallopt
 * returns for the same call (glibc's own function, reached through dlopen("libc.so.6") while
 * hakmem is the process's malloc) when the system's glibc is 2.36. What hakmem does with the
 * parameters it honours is checked in test_api_introspect.c. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <gnu/libc-version.h>
#include <limits.h>
#include <malloc.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answers_are_glibc_2_36s),
        cmocka_unit_test(test_answers_are_this_glibcs),
        cmocka_unit_test(test_common_calls_succeed),
    };
    return cmocka_run_group_tests_name("api_mallopt", tests, NULL, NULL);
}
