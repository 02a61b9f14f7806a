/* tests/api/test_api_basic.c - malloc, free, calloc, realloc, reallocarray and friends through
 * the real libhakmem.so (run with LD_PRELOAD by tests/run.sh; compiled with -fno-builtin so
 * every call reaches the allocator). Sizes cross every class boundary (16 B .. 32 KiB) and the
 * large path (> 32 KiB, several MiB). Expected behaviour is glibc 2.36's. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "testlib.h"

/* The tests read blocks after a realloc/reallocarray that failed (which leaves them valid). */
#pragma GCC diagnostic ignored "-Wuse-after-free"

/* volatile, so the compiler cannot fold or warn about impossible sizes */
static volatile size_t v_size_max = SIZE_MAX;
static volatile size_t v_ptrdiff_max_plus1 = (size_t)PTRDIFF_MAX + 1;

/* The class sizes of shared_contracts/size_classes.h and the large threshold, plus neighbours. */
static const size_t class_sizes[] = {
    16,    32,    48,    64,    80,    96,    112,   128,   160,   192,   224,   256,   320,   384,
    448,   512,   640,   768,   896,   1024,  1280,  1536,  1792,  2048,  2560,  3072,  3584,  4096,
    5120,  6144,  7168,  8192,  10240, 12288, 14336, 16384, 20480, 24576, 28672, 32768};
#define N_CLASSES (sizeof class_sizes / sizeof class_sizes[0])

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed + i * 131u + (i >> 8));
}

/* index of the first byte that differs from fill(seed), or n */
static size_t check_fill(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed + i * 131u + (i >> 8)))
            return i;
    return n;
}

static void test_malloc_zero_unique(void **state)
{
    (void)state;
    enum { N = 2000 };
    void **ptrs = calloc(N, sizeof *ptrs);
    assert_non_null(ptrs);
    for (int i = 0; i < N; i++) {
        ptrs[i] = malloc(0);
        assert_non_null(ptrs[i]);
        assert_int_equal((uintptr_t)ptrs[i] % 16, 0);
    }
    /* all distinct: sort the addresses and compare neighbours */
    void **sorted = malloc(N * sizeof *sorted);
    assert_non_null(sorted);
    memcpy(sorted, ptrs, N * sizeof *sorted);
    for (int i = 1; i < N; i++) /* insertion sort: N is small */
        for (int j = i; j > 0 && (uintptr_t)sorted[j - 1] > (uintptr_t)sorted[j]; j--) {
            void *t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    for (int i = 1; i < N; i++)
        if (sorted[i] == sorted[i - 1])
            fail_msg("malloc(0) returned %p twice while both were live", sorted[i]);
    for (int i = 0; i < N; i++)
        free(ptrs[i]);
    free(sorted);
    free(ptrs);
}

static void test_free_null(void **state)
{
    (void)state;
    errno = 777;
    free(NULL);
    assert_int_equal(errno, 777);
    assert_int_equal(malloc_usable_size(NULL), 0);
}

/* Every size 0..4200, then every class boundary +-1, then a sampled walk to 70000. */
static void check_size(size_t n)
{
    unsigned char *p = malloc(n);
    if (!p)
        fail_msg("malloc(%zu) returned NULL", n);
    if ((uintptr_t)p % 16)
        fail_msg("malloc(%zu) = %p is not 16-byte aligned", n, (void *)p);
    size_t us = malloc_usable_size(p);
    if (us < n)
        fail_msg("malloc_usable_size(malloc(%zu)) = %zu", n, us);
    if (us) { /* the whole usable size is ours to write */
        p[0] = 0xa5;
        p[us - 1] = 0x5a;
        memset(p, 0x11, us);
    }
    free(p);
}

static void test_alignment_and_usable_size(void **state)
{
    (void)state;
    for (size_t n = 0; n <= 4200; n++)
        check_size(n);
    for (size_t i = 0; i < N_CLASSES; i++) {
        check_size(class_sizes[i] - 1);
        check_size(class_sizes[i]);
        check_size(class_sizes[i] + 1);
    }
    for (size_t n = 4200; n <= 70000; n += 97)
        check_size(n);
    check_size(65536);
    check_size(65537);
    check_size(1u << 20);
    check_size((5u << 20) + 3);
}

static void test_realloc_null_is_malloc(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 24, 1000, 32768, 32769, 200000, 3u << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *p = realloc(NULL, sizes[i]);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        assert_true(malloc_usable_size(p) >= sizes[i]);
        fill(p, sizes[i], (unsigned)i);
        assert_int_equal(check_fill(p, sizes[i], (unsigned)i), sizes[i]);
        free(p);
    }
}

/* glibc 2.36: realloc(p, 0) with p != NULL frees p and returns NULL. */
static void test_realloc_zero_frees(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 100, 4000, 32768, 100000, 2u << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = malloc(sizes[i]);
        assert_non_null(p);
        memset(p, 1, sizes[i]);
        void *q = realloc(p, 0);
        if (q != NULL)
            fail_msg("realloc(malloc(%zu), 0) returned %p, glibc 2.36 returns NULL", sizes[i], q);
    }
    /* ...and really frees: 200k x 4000 B would be ~800 MB if it leaked */
    long before = tl_status_kib("VmRSS");
    for (int i = 0; i < 200000; i++) {
        char *p = malloc(4000);
        assert_non_null(p);
        p[0] = p[3999] = 1;
        assert_null(realloc(p, 0));
    }
    long after = tl_status_kib("VmRSS");
    assert_true(before > 0 && after > 0);
    if (after - before > 64 * 1024)
        fail_msg("VmRSS grew by %ld KiB over 200000 realloc(p, 0): the blocks are not freed",
                 after - before);
}

/* grow then shrink one block through every class and the large path; contents survive */
static void test_realloc_preserves_contents(void **state)
{
    (void)state;
    static const size_t steps[] = {1,     15,    16,    17,    100,   127,   128,    129,
                                   1000,  1024,  1025,  4095,  4096,  4097,   8192,   12000,
                                   32767, 32768, 32769, 40000, 65536, 100000, 1u << 20, 5u << 20,
                                   3u << 20, 2000000, 40000, 32769, 32768, 20000, 4096, 1000,
                                   129,   128,   64,    16,    1};
    size_t cur = steps[0];
    unsigned char *p = malloc(cur);
    assert_non_null(p);
    fill(p, cur, 0);
    for (size_t i = 1; i < sizeof steps / sizeof steps[0]; i++) {
        size_t next = steps[i];
        unsigned char *q = realloc(p, next);
        if (!q)
            fail_msg("realloc(%zu -> %zu) returned NULL", cur, next);
        if ((uintptr_t)q % 16)
            fail_msg("realloc(%zu -> %zu) = %p is misaligned", cur, next, (void *)q);
        size_t keep = cur < next ? cur : next;
        size_t bad = check_fill(q, keep, (unsigned)(i - 1));
        if (bad != keep)
            fail_msg("realloc(%zu -> %zu): byte %zu of the preserved %zu changed", cur, next, bad,
                     keep);
        assert_true(malloc_usable_size(q) >= next);
        fill(q, next, (unsigned)i);
        p = q;
        cur = next;
    }
    free(p);
}

/* realloc in place or moved, many blocks live at once, across class boundaries */
static void test_realloc_many_live(void **state)
{
    (void)state;
    enum { N = 300 };
    unsigned char *p[N];
    size_t sz[N];
    unsigned long long rng = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < N; i++) {
        sz[i] = 1 + tl_rand(&rng) % 3000;
        p[i] = malloc(sz[i]);
        assert_non_null(p[i]);
        fill(p[i], sz[i], (unsigned)i);
    }
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < N; i++) {
            size_t next = 1 + tl_rand(&rng) % (round % 5 == 4 ? 70000 : 5000);
            unsigned char *q = realloc(p[i], next);
            assert_non_null(q);
            size_t keep = sz[i] < next ? sz[i] : next;
            size_t bad = check_fill(q, keep, (unsigned)(i + round * N));
            if (bad != keep)
                fail_msg("round %d block %d: realloc %zu -> %zu lost byte %zu", round, i, sz[i],
                         next, bad);
            fill(q, next, (unsigned)(i + (round + 1) * N));
            p[i] = q;
            sz[i] = next;
        }
    }
    for (int i = 0; i < N; i++)
        free(p[i]);
}

static void test_realloc_failure_keeps_block(void **state)
{
    (void)state;
    static const size_t sizes[] = {100, 5000, 100000};
    for (size_t i = 0; i < 3; i++) {
        unsigned char *p = malloc(sizes[i]);
        assert_non_null(p);
        fill(p, sizes[i], 7);
        errno = 0;
        void *q = realloc(p, v_size_max - 4096);
        assert_null(q);
        assert_int_equal(errno, ENOMEM);
        assert_int_equal(check_fill(p, sizes[i], 7), sizes[i]);
        free(p);
    }
}

static void test_calloc_zeroes(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 16, 17, 100, 1000, 1024, 4096, 5000, 32768, 32769, 100000,
                                   1u << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        for (int rep = 0; rep < 50; rep++) {
            /* dirty memory of this size, free it, then calloc: the reuse must be zeroed */
            unsigned char *d[8];
            for (int k = 0; k < 8; k++) {
                d[k] = malloc(n);
                assert_non_null(d[k]);
                memset(d[k], 0xff, malloc_usable_size(d[k]));
            }
            for (int k = 0; k < 8; k++)
                free(d[k]);
            for (int k = 0; k < 8; k++) {
                d[k] = calloc(1, n);
                assert_non_null(d[k]);
                for (size_t b = 0; b < n; b++)
                    if (d[k][b])
                        fail_msg("calloc(1, %zu) = %p: byte %zu is 0x%02x", n, (void *)d[k], b,
                                 d[k][b]);
            }
            for (int k = 0; k < 8; k++)
                free(d[k]);
            if (n > 32768 && rep >= 5)
                break;
        }
    }
    /* nmemb * size shapes */
    unsigned char *p = calloc(1000, 33);
    assert_non_null(p);
    for (size_t b = 0; b < 33000; b++)
        assert_int_equal(p[b], 0);
    free(p);
    p = calloc(0, 0);
    assert_non_null(p);
    free(p);
}

static void test_calloc_overflow(void **state)
{
    (void)state;
    errno = 0;
    assert_null(calloc(v_size_max / 2, 3));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(calloc(v_size_max, v_size_max));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(calloc(65536, (v_size_max >> 16) + 2));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(calloc(1, v_size_max));
    assert_int_equal(errno, ENOMEM);
}

static void test_reallocarray(void **state)
{
    (void)state;
    unsigned char *p = reallocarray(NULL, 10, 10);
    assert_non_null(p);
    fill(p, 100, 3);
    unsigned char *q = reallocarray(p, 1000, 50); /* 50000 B: into the large path */
    assert_non_null(q);
    assert_int_equal(check_fill(q, 100, 3), 100);
    p = q;
    errno = 0;
    q = reallocarray(p, v_size_max / 2, 3);
    assert_null(q);
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(check_fill(p, 100, 3), 100); /* original untouched, still ours */
    errno = 0;
    q = reallocarray(p, 65536, (v_size_max >> 16) + 2);
    assert_null(q);
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(check_fill(p, 100, 3), 100);
    free(p);
}

static void test_malloc_impossible_sizes(void **state)
{
    (void)state;
    const size_t sizes[] = {v_size_max, v_ptrdiff_max_plus1, v_size_max - 15, v_size_max - 4095,
                            v_size_max / 2 + 4096};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        errno = 0;
        void *p = malloc(sizes[i]);
        if (p)
            fail_msg("malloc(%zu) returned %p", sizes[i], p);
        if (errno != ENOMEM)
            fail_msg("malloc(%zu): errno %d, expected ENOMEM", sizes[i], errno);
    }
    /* and the allocator still works afterwards */
    void *p = malloc(100);
    assert_non_null(p);
    free(p);
}

static void test_free_preserves_errno(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 8, 100, 4096, 32768, 32769, 1u << 20, 8u << 20};
    void *p[16];
    int n = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        p[n] = malloc(sizes[i]);
        assert_non_null(p[n]);
        memset(p[n], 1, sizes[i]);
        n++;
    }
    assert_int_equal(posix_memalign(&p[n], 4096, 10000), 0);
    n++;
    p[n++] = memalign(1u << 20, 3000);
    assert_non_null(p[n - 1]);
    p[n++] = calloc(100, 100);
    assert_non_null(p[n - 1]);
    for (int i = 0; i < n; i++) {
        errno = 1234 + i;
        free(p[i]);
        if (errno != 1234 + i)
            fail_msg("free of block %d changed errno from %d to %d", i, 1234 + i, errno);
    }
    /* many frees, so that thread-cache spills and span releases happen in between */
    void **many = malloc(20000 * sizeof *many);
    assert_non_null(many);
    for (int i = 0; i < 20000; i++) {
        many[i] = malloc(16 + (i % 64) * 48);
        assert_non_null(many[i]);
    }
    for (int i = 0; i < 20000; i++) {
        errno = 4321;
        free(many[i]);
        if (errno != 4321)
            fail_msg("free #%d changed errno to %d", i, errno);
    }
    errno = 5;
    free(many);
    assert_int_equal(errno, 5);
}

static void test_malloc_trim_and_mallinfo2(void **state)
{
    (void)state;
    void *p[100];
    for (int i = 0; i < 100; i++) {
        p[i] = malloc(1000 * (i + 1));
        assert_non_null(p[i]);
    }
    for (int i = 0; i < 100; i++)
        free(p[i]);
    int r = malloc_trim(0);
    assert_true(r == 0 || r == 1);
    r = malloc_trim(1u << 20);
    assert_true(r == 0 || r == 1);
    struct mallinfo2 mi = mallinfo2();
    (void)mi;
    /* the allocator still works after trimming */
    char *q = malloc(50);
    assert_non_null(q);
    strcpy(q, "after trim");
    assert_string_equal(q, "after trim");
    free(q);
}

/* hakmem's own API, found through the preloaded library. When the tests run with hakmem
 * preloaded (tests/run.sh), the symbols must be there: a missing symbol means the .so was
 * not preloaded at all. */
static void test_hakmem_version(void **state)
{
    (void)state;
    const char *(*ver)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "hakmem_version");
    const char *pre = tl_preload_path();
    if (!ver) {
        if (getenv("LD_PRELOAD") && *pre)
            fail_msg("LD_PRELOAD=%s but dlsym finds no hakmem_version", getenv("LD_PRELOAD"));
        print_message("    hakmem not preloaded (glibc run): nothing to check\n");
        return;
    }
    const char *v = ver();
    assert_non_null(v);
    unsigned a, b, c;
    char extra;
    if (sscanf(v, "%u.%u.%u%c", &a, &b, &c, &extra) != 3)
        fail_msg("hakmem_version() = \"%s\", expected MAJOR.MINOR.PATCH", v);
    void (*stats)(FILE *) = (void (*)(FILE *))dlsym(RTLD_DEFAULT, "hakmem_stats_print");
    assert_non_null(stats);
    FILE *f = tmpfile();
    assert_non_null(f);
    void *x = malloc(64);
    free(x);
    stats(f);
    fflush(f);
    long len = ftell(f);
    fclose(f);
    if (len <= 0)
        fail_msg("hakmem_stats_print wrote nothing");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malloc_zero_unique),
        cmocka_unit_test(test_free_null),
        cmocka_unit_test(test_alignment_and_usable_size),
        cmocka_unit_test(test_realloc_null_is_malloc),
        cmocka_unit_test(test_realloc_zero_frees),
        cmocka_unit_test(test_realloc_preserves_contents),
        cmocka_unit_test(test_realloc_many_live),
        cmocka_unit_test(test_realloc_failure_keeps_block),
        cmocka_unit_test(test_calloc_zeroes),
        cmocka_unit_test(test_calloc_overflow),
        cmocka_unit_test(test_reallocarray),
        cmocka_unit_test(test_malloc_impossible_sizes),
        cmocka_unit_test(test_free_preserves_errno),
        cmocka_unit_test(test_malloc_trim_and_mallinfo2),
        cmocka_unit_test(test_hakmem_version),
    };
    return cmocka_run_group_tests_name("api_basic", tests, NULL, NULL);
}
