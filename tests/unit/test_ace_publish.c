/* tests/unit/test_ace_publish.c - RCU publication of the refill table (policy_table.h).
 *
 * hak_policy_publish then hak_policy_refill_count sees it; a reader inside a read-side section
 * keeps the table it dereferenced, unchanged, while the publish waits for it; and contract B
 * through Box 2: a table published while a refill is in flight (from the refill hook) is not
 * seen by that refill, only by the next one.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "box2_refill/refill.h"
#include "box3_ace/ace.h"
#include "shared_contracts/config.h"
#include "shared_contracts/policy_table.h"
#include "box1_tls/tcache.h"

static uint16_t counts[HAK_NUM_CLASSES];

static void fill(uint16_t base)
{
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
        counts[c] = (uint16_t)(base + c);
}

static void publish_then_read(void **state)
{
    (void)state;
    uint64_t p0 = hak_ace_publishes();
    fill(10);
    hak_policy_publish(counts);
    assert_int_equal(hak_ace_publishes(), p0 + 1);
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
        assert_int_equal(hak_policy_refill_count(c, 64), 10 + c);
    uint64_t v = hak_policy_current->version;
    fill(20);
    hak_policy_publish(counts);
    assert_int_equal(hak_policy_current->version, v + 1);
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
        assert_int_equal(hak_policy_refill_count(c, 64), 20 + c);
    /* the reader clamps: a bad table cannot hurt */
    counts[0] = 0;
    counts[1] = 5000;
    hak_policy_publish(counts);
    assert_int_equal(hak_policy_refill_count(0, 64), 1);
    assert_int_equal(hak_policy_refill_count(1, 64), HAK_REFILL_MAX);
}

/* ---- a reader inside its read-side section --------------------------------------------- */
static int reader_ready, reader_go, publish_done;
static hak_policy_table_t *reader_table;
static uint16_t reader_saw_before, reader_saw_after;

static void *reader(void *arg)
{
    (void)arg;
    rcu_read_lock();
    hak_policy_table_t *t = rcu_dereference(hak_policy_current);
    reader_table = t;
    reader_saw_before = t->refill_count[5];
    __atomic_store_n(&reader_ready, 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&reader_go, __ATOMIC_ACQUIRE))
        usleep(1000);
    reader_saw_after = t->refill_count[5]; /* still the old table, untouched */
    rcu_read_unlock();
    return NULL;
}

static void *publisher(void *arg)
{
    (void)arg;
    fill(100);
    hak_policy_publish(counts);
    __atomic_store_n(&publish_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void reader_in_section_keeps_old_table(void **state)
{
    (void)state;
    fill(50);
    hak_policy_publish(counts);
    assert_int_equal(hak_policy_refill_count(5, 64), 55);
    pthread_t r, p;
    pthread_create(&r, NULL, reader, NULL);
    while (!__atomic_load_n(&reader_ready, __ATOMIC_ACQUIRE))
        usleep(1000);
    pthread_create(&p, NULL, publisher, NULL);
    usleep(150000);
    /* the new table is visible to new readers, but the publish waits for the old reader */
    assert_int_equal(hak_policy_refill_count(5, 64), 105);
    assert_false(__atomic_load_n(&publish_done, __ATOMIC_ACQUIRE));
    assert_ptr_not_equal(reader_table, hak_policy_current);
    __atomic_store_n(&reader_go, 1, __ATOMIC_RELEASE);
    pthread_join(r, NULL);
    for (int i = 0; i < 2000 && !__atomic_load_n(&publish_done, __ATOMIC_ACQUIRE); i++)
        usleep(1000);
    assert_true(__atomic_load_n(&publish_done, __ATOMIC_ACQUIRE));
    pthread_join(p, NULL);
    assert_int_equal(reader_saw_before, 55);
    assert_int_equal(reader_saw_after, 55);
}

/* ---- contract B through Box 2's refill hook -------------------------------------------- */
#define HOOK_CLASS 14u /* 448 B: nothing else in the test thread uses it */
static pthread_t hook_thread;
static uint32_t hook_counts[4];
static int hook_calls;

static void refill_hook(unsigned class_idx, uint32_t refill_count)
{
    if (class_idx != HOOK_CLASS || !pthread_equal(pthread_self(), hook_thread) || hook_calls >= 4)
        return;
    hook_counts[hook_calls++] = refill_count;
    if (hook_calls == 1) { /* a refill in flight: its count is read; publish another table */
        fill(0);
        counts[HOOK_CLASS] = 13;
        hak_policy_publish(counts);
    }
}

static uint32_t list_after_first, list_after_second;

static void *refilling_thread(void *arg)
{
    (void)arg;
    void *volatile keep[32];
    keep[0] = malloc(hak_class_size(HOOK_CLASS)); /* fresh thread: empty list -> refill */
    list_after_first = hak_list_count(HOOK_CLASS);
    unsigned n = 1;
    while (hak_list_count(HOOK_CLASS) && n < 30) /* use up the batch */
        keep[n++] = malloc(hak_class_size(HOOK_CLASS));
    keep[n++] = malloc(hak_class_size(HOOK_CLASS)); /* the next refill */
    list_after_second = hak_list_count(HOOK_CLASS);
    for (unsigned i = 0; i < n; i++)
        free(keep[i]);
    return NULL;
}

static void refill_in_flight_does_not_see_new_table(void **state)
{
    (void)state;
    hak_config_load();
    hak_config.ace = 1; /* Box 2 now reads the published table */
    fill(0);
    counts[HOOK_CLASS] = 7;
    hak_policy_publish(counts);
    hak_refill_hook = refill_hook;
    pthread_create(&hook_thread, NULL, refilling_thread, NULL);
    pthread_join(hook_thread, NULL);
    hak_refill_hook = NULL;
    hak_config.ace = 0;
    assert_true(hook_calls >= 2);
    assert_int_equal(hook_counts[0], 7);  /* the refill in flight read 7 ... */
    assert_int_equal(list_after_first, 6); /* ... and carved 7 (one handed out) */
    assert_int_equal(hook_counts[1], 13); /* the next refill reads the new table */
    assert_in_range(list_after_second, 1, 12); /* at most 13 (Box 2 may take fewer) */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(publish_then_read),
        cmocka_unit_test(reader_in_section_keeps_old_table),
        cmocka_unit_test(refill_in_flight_does_not_see_new_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
