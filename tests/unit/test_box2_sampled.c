/* tests/unit/test_box2_sampled.c - the sampled-block store (box2_refill/sample_store.c) through
 * Box 2's entry points (shared_contracts/backend.h): a block of every size and alignment a slot
 * serves, its page map tag, note, size and usable size; free through the ordinary free (its
 * hit path must send it to the cold path); zeroing of a reused slot; a large sampled block
 * keeps its note through realloc; four threads taking and giving back slots at once get no
 * slot twice; a thread's freed slots come back to it, and go back to the store at its exit.
 *
 * Linked with libhakmem.a (the profiler is off: free's cold path counts nothing, then frees).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shared_contracts/backend.h"
#include "shared_contracts/pagemap.h"
#include "testlib.h"

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

/* Every size class boundary region and alignment a slot serves. */
static void test_slot_blocks(void **s)
{
    (void)s;
    static const size_t sizes[] = {1, 16, 17, 100, 1024, 4095, 4096, 20000, 32768};
    static const size_t aligns[] = {16, 64, 256, 4096};
    uintptr_t note = 0x1000;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
            size_t n = sizes[i], al = aligns[a];
            unsigned char *p = hak_sampled_alloc(n, al, 0, ++note);
            assert_non_null(p);
            assert_int_equal((uintptr_t)p % al, 0);
            assert_int_equal(hak_pm_tag(hak_pagemap_get((uintptr_t)p)), HAK_PM_SAMPLED);
            memset(p, 0xa5, n);
            uintptr_t got_note = 0;
            size_t got_size = 0;
            assert_int_equal(hak_sampled_note(p, &got_note, &got_size), 1);
            assert_int_equal(got_note, note);
            assert_int_equal(got_size, n);
            assert_int_equal(hak_sampled_usable_size(p, "test"), round16(n));
            assert_int_equal(hak_sampled_note(p + 16, &got_note, &got_size), 0);
            free(p); /* the hit path fails on the tag; the cold path frees the slot */
            assert_int_equal(hak_sampled_note(p, &got_note, &got_size), 0);
        }
    }
}

/* A slot used before comes back zeroed when asked (calloc), whatever its last block held. */
static void test_reused_slot_is_zeroed(void **s)
{
    (void)s;
    for (int round = 0; round < 64; round++) {
        unsigned char *p = hak_sampled_alloc(3000, 16, 0, 7);
        assert_non_null(p);
        memset(p, 0xff, 3000);
        free(p);
        unsigned char *z = hak_sampled_alloc(3000, 16, 1, 8);
        assert_non_null(z);
        for (size_t i = 0; i < 3000; i++)
            if (z[i])
                fail_msg("byte %zu of a zeroed sampled block is %u", i, z[i]);
        free(z);
    }
}

/* Above 32 KiB a sampled block is a large block with the note in its header; realloc keeps
 * it (in place or moved), free takes it. */
static void test_large_sampled_block(void **s)
{
    (void)s;
    char *p = hak_sampled_alloc(100000, 16, 1, 0x4242);
    assert_non_null(p);
    assert_int_equal(hak_pm_tag(hak_pagemap_get((uintptr_t)p)), HAK_PM_LARGE);
    uintptr_t note = 0;
    size_t size = 0;
    assert_int_equal(hak_sampled_note(p, &note, &size), 1);
    assert_int_equal(note, 0x4242);
    assert_int_equal(size, 100000);
    p[99999] = 1;
    char *q = realloc(p, 5000000);
    assert_non_null(q);
    assert_int_equal(q[99999], 1);
    assert_int_equal(hak_sampled_note(q, &note, &size), 1);
    assert_int_equal(note, 0x4242);
    free(q);
    char *plain = malloc(100000); /* an ordinary large block has no note */
    assert_int_equal(hak_sampled_note(plain, &note, &size), 0);
    free(plain);
}

#define THREADS 4
#define HELD 64
#define ROUNDS 4000

/* Each thread keeps HELD slots, each filled with its own tag, and replaces them at random;
 * a slot handed out twice would show another thread's tag. */
static void *churn(void *arg)
{
    unsigned long long seed = 0x9e3779b97f4a7c15ull * ((uintptr_t)arg + 1);
    uint64_t *held[HELD] = {0};
    uint64_t tags[HELD] = {0};
    for (int r = 0; r < ROUNDS; r++) {
        int k = (int)(tl_rand(&seed) % HELD);
        if (held[k]) {
            TL_CHECK(held[k][0] == tags[k] && held[k][7] == tags[k], "a slot was handed out twice");
            uintptr_t note;
            size_t size;
            TL_CHECK(hak_sampled_note(held[k], &note, &size) && note == tags[k],
                     "a live block lost its note");
            free(held[k]);
        }
        tags[k] = ((uint64_t)(uintptr_t)arg << 48) | (uint64_t)r << 8 | (uint64_t)k;
        held[k] = hak_sampled_alloc(64, 16, 0, (uintptr_t)tags[k]);
        TL_CHECK(held[k] != NULL, "the store gave no slot");
        held[k][0] = held[k][7] = tags[k];
    }
    for (int k = 0; k < HELD; k++)
        free(held[k]);
    return NULL;
}

static void test_threads_never_share_a_slot(void **s)
{
    (void)s;
    pthread_t t[THREADS];
    void *res[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, churn, (void *)i), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(t[i], &res[i]), 0);
    for (int i = 0; i < THREADS; i++)
        if (res[i])
            fail_msg("thread %d: %s", i, (const char *)res[i]);
}

/* A freed slot is the next one the same thread gets (its stash, LIFO). */
static void test_freed_slot_comes_back_to_its_thread(void **s)
{
    (void)s;
    void *a = hak_sampled_alloc(100, 16, 0, 1);
    void *b = hak_sampled_alloc(100, 16, 0, 2);
    assert_non_null(a);
    assert_non_null(b);
    free(a);
    free(b);
    void *c = hak_sampled_alloc(200, 16, 0, 3);
    void *d = hak_sampled_alloc(200, 16, 0, 4);
    assert_ptr_equal(c, b);
    assert_ptr_equal(d, a);
    free(c);
    free(d);
}

#define SERIAL_THREADS 400
#define SERIAL_SLOTS 16

static void *take_and_give(void *arg)
{
    uintptr_t *seen = arg;
    void *p[SERIAL_SLOTS];
    free(malloc(48)); /* the thread starts caching: it has a record, and an exit destructor */
    for (int i = 0; i < SERIAL_SLOTS; i++) {
        p[i] = hak_sampled_alloc(64, 16, 0, 9);
        TL_CHECK(p[i] != NULL, "the store gave no slot");
        seen[i] = (uintptr_t)p[i];
    }
    for (int i = 0; i < SERIAL_SLOTS; i++)
        free(p[i]); /* into this thread's stash, which its exit gives back */
    return NULL;
}

/* Threads one after another each take 16 slots, free them and exit: the slots a thread kept
 * for itself go back to the store at its exit, so the next threads reuse them. Without that,
 * 400 threads would strand 6400 slots and the store would keep growing; with it, they all
 * share the first few dozen. */
static void test_exited_threads_give_their_slots_back(void **s)
{
    (void)s;
    static uintptr_t seen[SERIAL_THREADS][SERIAL_SLOTS];
    for (int t = 0; t < SERIAL_THREADS; t++) {
        const char *why = tl_run_thread(take_and_give, seen[t]);
        if (why)
            fail_msg("thread %d: %s", t, why);
    }
    uintptr_t *all = &seen[0][0];
    size_t n = SERIAL_THREADS * SERIAL_SLOTS, distinct = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < i && all[j] != all[i])
            j++;
        distinct += j == i;
    }
    print_message("    %zu distinct slots over %d threads\n", distinct, SERIAL_THREADS);
    assert_true(distinct <= 4 * SERIAL_SLOTS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exited_threads_give_their_slots_back),
        cmocka_unit_test(test_freed_slot_comes_back_to_its_thread),
        cmocka_unit_test(test_slot_blocks),
        cmocka_unit_test(test_reused_slot_is_zeroed),
        cmocka_unit_test(test_large_sampled_block),
        cmocka_unit_test(test_threads_never_share_a_slot),
    };
    return cmocka_run_group_tests_name("box2 sampled-block store", tests, NULL, NULL);
}
