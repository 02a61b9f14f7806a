/* tests/unit/test_box1_hotpath.c - Box 1's thread cache through the real malloc and free:
 * LIFO reuse, the room/cap bookkeeping, the free key mark, a chance match of the key that
 * must not abort, and aligned requests served from classes.
 *
 * Runs on hakmem itself (libhakmem.a is linked in); each scenario runs in a fresh thread so
 * its cache starts empty, on classes CMocka does not use.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shared_contracts/pagemap.h"
#include "box1_tls/tcache.h"
#include "testlib.h"

/* A scenario in a fresh thread; a failed TL_CHECK there fails the test with its message. */
static void run_in_thread(void *(*fn)(void *))
{
    const char *why = tl_run_thread(fn, NULL);
    if (why)
        fail_msg("%s", why);
}

static void *lifo_thread(void *arg)
{
    size_t size = 12000; /* class 33 (12288 B) */
    unsigned c = hak_size_to_class(size);
    void *a = malloc(size);
    TL_CHECK(a, "malloc failed");
    uint32_t before = hak_list_count(c);
    free(a);
    TL_CHECK(hak_list_count(c) == before + 1, "free did not push exactly one block");
    TL_CHECK(hak_list(c)->head == a, "the freed block is not at the head");
    TL_CHECK(((uint64_t *)a)[1] == hak_free_key && hak_free_key != 0,
          "a cached block does not carry the free key");
    void *b = malloc(size - 100);
    TL_CHECK(b == a, "malloc of the same class did not reuse the last freed block");
    TL_CHECK(((uint64_t *)b)[1] == 0, "the free key was not cleared on malloc");
    TL_CHECK(hak_list_count(c) == before, "malloc did not pop exactly one block");
    free(b);
    return arg;
}

static void test_lifo_reuse_and_key(void **state)
{
    (void)state;
    run_in_thread(lifo_thread);
}

/* A program may store the key's value in word 1 of a live block by chance: free must walk
 * its list, find the block absent, see that word 0 (the program's data) is not the encoded
 * link of a free block, and cache it as usual. */
static void *chance_key_thread(void *arg)
{
    unsigned c = hak_size_to_class(14000);
    void *warm = malloc(14000); /* initialises the thread and its free key */
    TL_CHECK(warm, "malloc failed");
    uint64_t *p = malloc(14000);
    TL_CHECK(p, "malloc failed");
    p[0] = 0x1234567;
    p[1] = hak_free_key;
    uint32_t before = hak_list_count(c);
    free(p);
    TL_CHECK(hak_list_count(c) == before + 1, "a chance key match was not cached");
    TL_CHECK(hak_list(c)->head == p, "the block is not at the head");
    free(warm);
    return arg;
}

static void test_chance_key_match_is_not_a_double_free(void **state)
{
    (void)state;
    run_in_thread(chance_key_thread);
}

/* Aligned requests come from a class whose size is a multiple of the alignment. */
static void test_aligned_requests_use_classes(void **state)
{
    (void)state;
    for (size_t align = 32; align <= 32768; align *= 2) {
        for (size_t size = 1; size <= 20000; size = size * 3 + 7) {
            void *p = NULL;
            assert_int_equal(posix_memalign(&p, align, size), 0);
            assert_int_equal((uintptr_t)p % align, 0);
            uint64_t e = hak_pagemap_get((uintptr_t)p);
            unsigned tag = hak_pm_tag(e);
            if (size <= HAK_MAX_CLASS_SIZE && tag != HAK_PM_LARGE) {
                assert_true(tag >= 1 && tag <= HAK_NUM_CLASSES);
                assert_int_equal(hak_class_size(tag - 1) % align, 0);
                assert_true(hak_class_size(tag - 1) >= size);
            }
            free(p);
        }
    }
}

/* The list holds exactly the blocks freed into it: count == the chain's length. */
static void *count_thread(void *arg)
{
    unsigned c = hak_size_to_class(9000);
    enum { N = 20 };
    void *blocks[N];
    for (int i = 0; i < N; i++)
        TL_CHECK((blocks[i] = malloc(9000)) != NULL, "malloc failed");
    for (int i = 0; i < N; i++)
        free(blocks[i]);
    uint32_t n = 0;
    for (uint64_t *b = hak_list(c)->head; b != HAK_CHAIN_END; b = hak_block_next(b))
        n++;
    TL_CHECK(n == hak_list_count(c), "count differs from the list's length");
    /* the links are encoded: word 0 of the head is not the address of the block after it */
    uint64_t *head = hak_list(c)->head;
    void *second = hak_block_next(head);
    TL_CHECK(head[0] != (uint64_t)(uintptr_t)second && head[0] == ((uintptr_t)second ^ hak_link_key),
             "word 0 of a listed block is not its next block's address xor the link key");
    TL_CHECK(hak_link_key != hak_free_key, "the link key is the free key");
    TL_CHECK(n <= hak_list(c)->cap, "count above cap");
    return arg;
}

static void test_count_matches_list(void **state)
{
    (void)state;
    run_in_thread(count_thread);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifo_reuse_and_key),
        cmocka_unit_test(test_chance_key_match_is_not_a_double_free),
        cmocka_unit_test(test_aligned_requests_use_classes),
        cmocka_unit_test(test_count_matches_list),
    };
    return cmocka_run_group_tests_name("box1_hotpath", tests, NULL, NULL);
}
