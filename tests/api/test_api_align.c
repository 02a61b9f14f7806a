/* tests/api/test_api_align.c - posix_memalign, aligned_alloc, memalign, valloc, pvalloc through
 * the real libhakmem.so (LD_PRELOAD). Every aligned call must be aligned, size 0 included;
 * errors follow glibc 2.36, except aligned_alloc, which follows C17 and glibc 2.38+ (an
 * alignment that is not a power of two, or 0, is EINVAL). */
#define _GNU_SOURCE
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

static volatile size_t v_size_max = SIZE_MAX;
static const size_t test_sizes[] = {0, 1, 100, 4096, 100000};
#define N_SIZES (sizeof test_sizes / sizeof test_sizes[0])

static void use_block(unsigned char *p, size_t n, size_t align, const char *what)
{
    if (!p)
        fail_msg("%s(align %zu, size %zu) returned NULL", what, align, n);
    if ((uintptr_t)p % align)
        fail_msg("%s(align %zu, size %zu) = %p is not aligned", what, align, n, (void *)p);
    size_t us = malloc_usable_size(p);
    if (us < n)
        fail_msg("%s(align %zu, size %zu): usable size %zu", what, align, n, us);
    if (us)
        memset(p, 0x3c, us);
}

static void test_posix_memalign_all_alignments(void **state)
{
    (void)state;
    for (size_t align = 8; align <= (4u << 20); align <<= 1) {
        void *keep[N_SIZES];
        for (size_t i = 0; i < N_SIZES; i++) {
            void *p = (void *)0x1;
            errno = 999;
            int rc = posix_memalign(&p, align, test_sizes[i]);
            if (rc != 0)
                fail_msg("posix_memalign(align %zu, size %zu) = %d", align, test_sizes[i], rc);
            assert_int_equal(errno, 999);
            use_block(p, test_sizes[i], align, "posix_memalign");
            keep[i] = p;
        }
        /* free in a different order than allocated */
        for (size_t i = N_SIZES; i-- > 0;)
            free(keep[i]);
    }
}

static void test_posix_memalign_bad_alignment(void **state)
{
    (void)state;
    static const size_t bad[] = {0, 1, 2, 3, 4, 12, 24, 48, 100, 4097, (size_t)3 << 20};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *p = (void *)0x1234;
        errno = 4242;
        int rc = posix_memalign(&p, bad[i], 64);
        if (rc != EINVAL)
            fail_msg("posix_memalign(align %zu) returned %d, expected EINVAL", bad[i], rc);
        if (errno != 4242)
            fail_msg("posix_memalign(align %zu) changed errno to %d", bad[i], errno);
        /* POSIX: on failure memptr is left unmodified or set to NULL */
        assert_true(p == (void *)0x1234 || p == NULL);
    }
}

static void test_posix_memalign_huge(void **state)
{
    (void)state;
    void *p = (void *)0x1234;
    errno = 4242;
    int rc = posix_memalign(&p, 64, v_size_max - 100);
    assert_int_equal(rc, ENOMEM);
    assert_true(p == (void *)0x1234 || p == NULL);
    rc = posix_memalign(&p, 1u << 20, v_size_max / 2);
    assert_int_equal(rc, ENOMEM);
}

static void test_aligned_alloc(void **state)
{
    (void)state;
    for (size_t align = 1; align <= (4u << 20); align <<= 1) {
        for (size_t i = 0; i < N_SIZES; i++) {
            /* C11 wants size a multiple of align; glibc accepts any size: use both */
            size_t n = test_sizes[i];
            unsigned char *p = aligned_alloc(align, n);
            use_block(p, n, align, "aligned_alloc");
            free(p);
            size_t m = (n + align - 1) / align * align;
            p = aligned_alloc(align, m);
            use_block(p, m, align, "aligned_alloc");
            free(p);
        }
    }
    errno = 0;
    assert_null(aligned_alloc(64, v_size_max - 10));
    assert_int_equal(errno, ENOMEM);
}

/* C17 7.22.3.1 and glibc 2.38+: an alignment that is not a power of two, or 0, fails with
 * EINVAL, whatever the size (0, small, large, impossible); nothing is allocated. */
static void test_aligned_alloc_invalid_alignment(void **state)
{
    (void)state;
    static const size_t bad[] = {0, 3, 5, 6, 7, 12, 24, 48, 65, 100, 1000, 4095, 4097, 40000,
                                 (size_t)3 << 20, ((size_t)1 << 40) + 1, (size_t)-1};
    static const size_t sizes[] = {0, 1, 64, 100000, (size_t)-1 - 100};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            errno = 0;
            void *p = aligned_alloc(bad[i], sizes[s]);
            if (p)
                fail_msg("aligned_alloc(%zu, %zu) = %p, expected NULL", bad[i], sizes[s], p);
            if (errno != EINVAL)
                fail_msg("aligned_alloc(%zu, %zu): errno %d, expected EINVAL (%d)", bad[i],
                         sizes[s], errno, EINVAL);
        }
    /* the same alignments stay valid for memalign and posix_memalign rules: memalign(65, n)
     * rounds up to 128 (glibc 2.36), posix_memalign(65) is EINVAL by its own rule */
    unsigned char *m = memalign(65, 64);
    use_block(m, 64, 128, "memalign");
    free(m);
    void *q = (void *)0x1234;
    assert_int_equal(posix_memalign(&q, 65, 64), EINVAL);
    /* valid powers of two, including 1, 2, 4 and 8 (below 16: an ordinary block) */
    for (size_t align = 1; align <= 16; align <<= 1) {
        errno = 0;
        unsigned char *p = aligned_alloc(align, 24);
        use_block(p, 24, align < 16 ? 16 : align, "aligned_alloc");
        free(p);
    }
}

static void test_memalign(void **state)
{
    (void)state;
    for (size_t align = 1; align <= (4u << 20); align <<= 1)
        for (size_t i = 0; i < N_SIZES; i++) {
            unsigned char *p = memalign(align, test_sizes[i]);
            use_block(p, test_sizes[i], align, "memalign");
            free(p);
        }
}

/* glibc 2.36 memalign: an alignment that is not a power of two is rounded up to the next one
 * (and one below 16 gives an ordinary malloc block). */
static void test_memalign_non_power_of_two(void **state)
{
    (void)state;
    static const size_t aligns[] = {3, 24, 48, 100, 1000, 3000, 5000, 12288, 40000, 100000,
                                    (size_t)3 << 20};
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
        size_t want = 16;
        while (want < aligns[i])
            want <<= 1;
        for (size_t s = 0; s < N_SIZES; s++) {
            unsigned char *p = memalign(aligns[i], test_sizes[s]);
            if (!p)
                fail_msg("memalign(%zu, %zu) returned NULL", aligns[i], test_sizes[s]);
            if ((uintptr_t)p % want)
                fail_msg("memalign(%zu, %zu) = %p is not aligned to %zu (next power of two)",
                         aligns[i], test_sizes[s], (void *)p, want);
            use_block(p, test_sizes[s], want, "memalign");
            free(p);
        }
    }
}

static void test_memalign_errors(void **state)
{
    (void)state;
    /* glibc: an alignment above SIZE_MAX/2+1 is EINVAL; an impossible size ENOMEM */
    errno = 0;
    assert_null(memalign(v_size_max / 2 + 2, 16));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(memalign(4096, v_size_max - 100));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(valloc(v_size_max - 100));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(pvalloc(v_size_max - 100));
    assert_int_equal(errno, ENOMEM);
}

static void test_valloc_pvalloc(void **state)
{
    (void)state;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    static const size_t sizes[] = {0, 1, 100, 4095, 4096, 4097, 100000, 3u << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        unsigned char *p = valloc(n);
        use_block(p, n, page, "valloc");
        unsigned char *q = pvalloc(n);
        size_t rounded = (n + page - 1) / page * page;
        use_block(q, rounded, page, "pvalloc"); /* usable size covers the rounded size */
        if (rounded)
            memset(q, 0x77, rounded);
        free(p);
        free(q);
    }
}

/* aligned blocks mixed with plain ones, realloc of an aligned block keeps its contents */
static void test_aligned_realloc_and_mix(void **state)
{
    (void)state;
    unsigned char *a = memalign(4096, 100);
    assert_non_null(a);
    for (int i = 0; i < 100; i++)
        a[i] = (unsigned char)i;
    unsigned char *b = realloc(a, 100000);
    assert_non_null(b);
    for (int i = 0; i < 100; i++)
        assert_int_equal(b[i], (unsigned char)i);
    unsigned char *c = realloc(b, 50);
    assert_non_null(c);
    for (int i = 0; i < 50; i++)
        assert_int_equal(c[i], (unsigned char)i);
    free(c);

    void *blocks[600];
    size_t sizes[600];
    unsigned long long rng = 12345;
    for (int i = 0; i < 600; i++) {
        size_t n = tl_rand(&rng) % 9000;
        sizes[i] = n;
        size_t al = (size_t)16 << (tl_rand(&rng) % 9); /* 16 .. 4096 */
        if (i % 3 == 0) {
            blocks[i] = malloc(n);
            al = 16;
        } else {
            blocks[i] = memalign(al, n);
        }
        use_block(blocks[i], n, al, i % 3 ? "memalign" : "malloc");
        memset(blocks[i], i & 0xff, n);
    }
    /* every block still holds its own byte: no two blocks overlap */
    for (int pass = 0; pass < 2; pass++)
        for (int i = pass; i < 600; i += 2) {
            unsigned char *p = blocks[i];
            for (size_t k = 0; k < sizes[i]; k++)
                if (p[k] != (unsigned char)(i & 0xff))
                    fail_msg("block %d (%p, %zu B) byte %zu overwritten", i, (void *)p, sizes[i], k);
            free(p);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_posix_memalign_all_alignments),
        cmocka_unit_test(test_posix_memalign_bad_alignment),
        cmocka_unit_test(test_posix_memalign_huge),
        cmocka_unit_test(test_aligned_alloc),
        cmocka_unit_test(test_aligned_alloc_invalid_alignment),
        cmocka_unit_test(test_memalign),
        cmocka_unit_test(test_memalign_non_power_of_two),
        cmocka_unit_test(test_memalign_errors),
        cmocka_unit_test(test_valloc_pvalloc),
        cmocka_unit_test(test_aligned_realloc_and_mix),
    };
    return cmocka_run_group_tests_name("api_align", tests, NULL, NULL);
}
