/* tests/stress/test_stress_rss.c - memory goes back to the OS: after a ~200 MiB peak of 1..32
 * KiB blocks is freed and malloc_trim(0) is called, VmRSS must fall by most of the peak.
 * Through the real libhakmem.so (LD_PRELOAD); each scenario in a fresh forked child. */
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

#define TARGET_BYTES (200ul << 20)
#define MAX_BLOCKS 40000

typedef struct held {
    void *p[MAX_BLOCKS];
    int n;
} held_t;

static int fill_blocks(held_t *h, unsigned long long seed)
{
    unsigned long long rng = seed;
    size_t total = 0;
    h->n = 0;
    while (total < TARGET_BYTES && h->n < MAX_BLOCKS) {
        size_t n = 1024 + tl_rand(&rng) % (32768 - 1024 + 1);
        void *p = malloc(n);
        if (!p)
            return -1;
        memset(p, 0xab, n); /* touch every page */
        h->p[h->n++] = p;
        total += n;
    }
    return 0;
}

static void free_shuffled(held_t *h, unsigned long long seed)
{
    unsigned long long rng = seed;
    for (int i = h->n - 1; i > 0; i--) { /* free in random order */
        int j = (int)(tl_rand(&rng) % (unsigned)(i + 1));
        void *t = h->p[i];
        h->p[i] = h->p[j];
        h->p[j] = t;
    }
    for (int i = 0; i < h->n; i++)
        free(h->p[i]);
    h->n = 0;
}

static int check_drop(const char *what, long base, long peak, long after)
{
    long grown = peak - base;
    fprintf(stderr, "    %s: VmRSS base %ld KiB, peak %ld KiB, after free+malloc_trim(0) %ld KiB\n",
            what, base, peak, after);
    if (grown < 150L * 1024)
        TL_FAILF("the peak grew only %ld KiB: the test did not touch ~200 MiB", grown);
    if (after - base > grown / 4)
        TL_FAILF("VmRSS kept %ld KiB of a %ld KiB peak (more than a quarter) after free and "
              "malloc_trim(0)",
              after - base, grown);
    return 0;
}

static held_t h_main;

static int scenario_same_thread(void *unused)
{
    (void)unused;
    long base = tl_status_kib("VmRSS");
    if (fill_blocks(&h_main, 42))
        TL_FAILF("malloc failed while filling");
    long peak = tl_status_kib("VmRSS");
    free_shuffled(&h_main, 7);
    malloc_trim(0);
    long after = tl_status_kib("VmRSS");
    return check_drop("one thread", base, peak, after);
}

static void *filler_thread(void *arg)
{
    return (void *)(intptr_t)fill_blocks(arg, 4242);
}

/* blocks allocated by a thread that has exited, freed by main */
static int scenario_dead_thread(void *unused)
{
    (void)unused;
    long base = tl_status_kib("VmRSS");
    pthread_t t;
    void *r;
    if (pthread_create(&t, NULL, filler_thread, &h_main))
        TL_FAILF("pthread_create");
    pthread_join(t, &r);
    if (r)
        TL_FAILF("malloc failed while filling in the thread");
    long peak = tl_status_kib("VmRSS");
    free_shuffled(&h_main, 9);
    malloc_trim(0);
    long after = tl_status_kib("VmRSS");
    return check_drop("allocated by an exited thread, freed by main", base, peak, after);
}

static void test_rss_falls_after_peak(void **s)
{
    (void)s;
    char why[256];
    if (tl_run_in_child(scenario_same_thread, NULL, 120, why, sizeof why))
        fail_msg("%s", why);
}

static void test_rss_falls_after_peak_freed_cross_thread(void **s)
{
    (void)s;
    char why[256];
    if (tl_run_in_child(scenario_dead_thread, NULL, 120, why, sizeof why))
        fail_msg("%s", why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rss_falls_after_peak),
        cmocka_unit_test(test_rss_falls_after_peak_freed_cross_thread),
    };
    return cmocka_run_group_tests_name("stress_rss", tests, NULL, NULL);
}
