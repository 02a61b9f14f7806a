/* tests/unit/test_size_classes.c - the invariants written in shared_contracts/size_classes.h:
 * strictly increasing 16-byte-multiple class sizes, the tightest class for every size up to
 * 32 KiB, power-of-two spans of 64..512 KiB, exact reciprocal division, sane refill counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "shared_contracts/pagemap.h"
#include "shared_contracts/size_classes.h"
#include "shared_contracts/size_lookup.h"

static void test_class_sizes_increase_and_align(void **state)
{
    (void)state;
    assert_int_equal(hak_class_size(0), 16);
    assert_int_equal(hak_class_size(HAK_NUM_CLASSES - 1), HAK_MAX_CLASS_SIZE);
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        assert_int_equal(hak_class_size(c) % HAK_MIN_ALIGN, 0);
        if (c > 0 && hak_class_size(c) <= hak_class_size(c - 1))
            fail_msg("class %u (%u B) is not above class %u (%u B)", c, hak_class_size(c), c - 1,
                     hak_class_size(c - 1));
    }
}

static void test_size_to_class_is_tightest(void **state)
{
    (void)state;
    assert_int_equal(hak_size_to_class(0), 0);
    for (size_t size = 1; size <= HAK_MAX_CLASS_SIZE; size++) {
        unsigned c = hak_size_to_class(size);
        if (c >= HAK_NUM_CLASSES)
            fail_msg("size %zu maps to class %u", size, c);
        if (size > hak_class_size(c))
            fail_msg("size %zu maps to class %u of only %u B", size, c, hak_class_size(c));
        if (c > 0 && size <= hak_class_size(c - 1))
            fail_msg("size %zu maps to class %u (%u B) but class %u (%u B) fits", size, c,
                     hak_class_size(c), c - 1, hak_class_size(c - 1));
    }
}

static void test_spans(void **state)
{
    (void)state;
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        uint32_t span = hak_span_bytes(c);
        if (span & (span - 1))
            fail_msg("class %u: span %u B is not a power of two", c, span);
        assert_true(span >= 64u * 1024 && span <= 512u * 1024);
        assert_true(hak_blocks_per_span(c) * hak_class_size(c) <= span);
    }
}

/* hak_is_block_start(off, c) == (off % size == 0): exhaustively for offsets below 2^20 (every
 * span offset), and for 2^20 pseudo-random 32-bit offsets per class (the contract says "any
 * 32-bit offset"), including multiples of the size and their neighbours. */
static void check_block_start(unsigned c, uint32_t off)
{
    uint32_t size = hak_class_size(c);
    int want = off % size == 0;
    if (hak_is_block_start(off, c) != want)
        fail_msg("class %u (%u B): hak_is_block_start(%u) = %d, off %% size = %u", c, size, off,
                 !want, off % size);
}

static void test_block_start_exact(void **state)
{
    (void)state;
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        for (uint32_t off = 0; off < (1u << 20); off++)
            check_block_start(c, off);
        uint32_t size = hak_class_size(c);
        for (int i = 0; i < (1 << 20); i++) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            uint32_t off = (uint32_t)rng;
            check_block_start(c, off);
            uint32_t m = off / size * size; /* a multiple, and its neighbours */
            check_block_start(c, m);
            check_block_start(c, m + 1);
            if (m)
                check_block_start(c, m - 1);
        }
        check_block_start(c, UINT32_MAX);
        check_block_start(c, UINT32_MAX / size * size);
    }
}

static void test_span_offset(void **state)
{
    (void)state;
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        uintptr_t span = (uintptr_t)0x7f0000000000ull; /* aligned to every span size */
        uint32_t bytes = hak_span_bytes(c);
        assert_int_equal(hak_span_offset(span, c), 0);
        assert_int_equal(hak_span_offset(span + bytes - 1, c), bytes - 1);
        assert_int_equal(hak_span_offset(span + bytes, c), 0);
        assert_int_equal(hak_span_offset(span + 3 * (uintptr_t)hak_class_size(c), c),
                         3 * hak_class_size(c));
    }
}

/* The hit paths' lookups agree with hak_size_to_class for every size: the malloc tables of
 * size_lookup.h (generated) give (class + 1) * 16, and the free-check row of each tag holds
 * its class's magic and span mask (rows of other tags have magic 0, so they fail). */
static void test_hit_path_tables(void **state)
{
    (void)state;
    for (size_t size = 0; size <= HAK_MAX_CLASS_SIZE; size++) {
        unsigned want = (hak_size_to_class(size) + 1) * 16;
        unsigned got = size <= HAK_SMALL_LOOKUP_MAX ? hak_small_x16[size]
                                                    : hak_upper_x16[(size + 255) >> 8];
        if (got != want)
            fail_msg("size %zu: table gives %u, hak_size_to_class %u", size, got, want);
    }
    for (unsigned tag = 0; tag < HAK_PM_TAGS; tag++) {
        const hak_free_check_t *fc = &hak_free_checks[tag];
        if (tag >= 1 && tag <= HAK_NUM_CLASSES) {
            unsigned c = tag - 1;
            assert_int_equal(fc->divmagic, UINT64_MAX / hak_class_size(c) + 1);
            assert_int_equal(fc->span_mask, hak_span_bytes(c) - 1);
        } else {
            assert_int_equal(fc->divmagic, 0);
        }
    }
}

static void test_default_refill_counts(void **state)
{
    (void)state;
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        assert_true(hak_default_refill[c] >= 1 && hak_default_refill[c] <= 1024);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_class_sizes_increase_and_align),
        cmocka_unit_test(test_size_to_class_is_tightest),
        cmocka_unit_test(test_spans),
        cmocka_unit_test(test_block_start_exact),
        cmocka_unit_test(test_span_offset),
        cmocka_unit_test(test_default_refill_counts),
        cmocka_unit_test(test_hit_path_tables),
    };
    return cmocka_run_group_tests_name("unit_size_classes", tests, NULL, NULL);
}
