/* tests/stress/test_stress_stack.c - the allocator's slow paths are shallow on the program's
 * stacks: a thread that refills, spills, gives back another thread's blocks, trims and exits
 * (its exit destructor drains its cache) writes at most STACK_BUDGET bytes of its stack deeper
 * than a thread that only calls malloc and free on its hit paths.
 *
 * Why it is memory: every stack page a thread writes stays resident while it lives, and glibc
 * keeps the stacks of exited threads (up to 40 MiB of them) with the 16 KiB below the exit
 * frame left as they were. A 4 KiB array in the give-back path cost one more resident page in
 * each of them (burstexit: 12 KiB against glibc's 8 KiB a cached stack, 0.6 MB in all at 256
 * threads; docs/BENCHMARKS.md).
 *
 * How: each thread runs on a stack of our own, filled with a pattern first; after the join,
 * the lowest byte that no longer holds the pattern is the deepest the thread wrote. A first
 * busy thread runs on a stack of glibc's before the measured ones: it resolves the lazy PLT
 * entries (the dynamic linker's resolver saves the vector registers on the stack, once per
 * symbol and process) and starts the purger thread (pthread_create, once per process), which
 * are not per-thread costs. Through the real libhakmem.so (LD_PRELOAD), in a fresh process
 * (this binary re-executed), with the purger and without it (HAKMEM_PURGER=0 and
 * HAKMEM_DECAY_MS=0: the decay tick's work, the large cache's included, then runs on the
 * program's threads, and is due at the busy thread's last refills). */
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
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "testlib.h"

#define STACK_BYTES (256u << 10)
#define PATTERN 0xa5
#define STACK_BUDGET 2048 /* bytes deeper than the hit-path-only thread */
#define DEPTH 2000        /* blocks a burst: refills and spills in every class below */

static const size_t sizes[] = {16, 48, 256, 1024, 4096, 16384, 32768};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static void *held[DEPTH];       /* the bursts' blocks: not on the measured stack */
static void *foreign[NSIZES][DEPTH]; /* allocated by the main thread, freed by the busy one */

/* The baseline: a thread that never calls the allocator. */
static void *quiet_thread(void *arg)
{
    (void)arg;
    return NULL;
}

/* Every slow path of the small classes: refills, spills (in address order and scrambled),
 * the give-back of another thread's blocks, a realloc across classes, and the exit drain. */
static void *busy_thread(void *arg)
{
    (void)arg;
    unsigned long long rng = 77;
    for (unsigned c = 0; c < NSIZES; c++) {
        for (int round = 0; round < 2; round++) {
            for (int i = 0; i < DEPTH; i++)
                if (!(held[i] = malloc(sizes[c])))
                    return (void *)"malloc failed";
            for (int i = DEPTH - 1; i > 0; i--) { /* scramble the second round's frees */
                int j = round ? (int)(tl_rand(&rng) % (unsigned)(i + 1)) : i;
                void *t = held[i];
                held[i] = held[j];
                held[j] = t;
            }
            for (int i = 0; i < DEPTH; i++)
                free(held[i]);
        }
        for (int i = 0; i < DEPTH; i++)
            free(foreign[c][i]);
    }
    void *p = malloc(40);
    for (size_t n = 64; p && n <= 65536; n *= 2)
        p = realloc(p, n);
    free(p);
    usleep(20 * 1000); /* the decay tick is due (every 10 ms with HAKMEM_DECAY_MS=0) ... */
    for (int i = 0; i < DEPTH; i++) /* ... at these refills; left cached, the exit destructor
                                     * gives them back */
        free(malloc(256));
    return NULL;
}

/* Run fn on a fresh pattern-filled stack; return how many bytes below the stack's top it
 * wrote, or -1. */
static long depth_of(void *(*fn)(void *), const char **why)
{
    unsigned char *stack = mmap(NULL, STACK_BYTES, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (stack == MAP_FAILED)
        return -1;
    memset(stack, PATTERN, STACK_BYTES);
    pthread_attr_t attr;
    pthread_t t;
    void *r = NULL;
    if (pthread_attr_init(&attr) || pthread_attr_setstack(&attr, stack, STACK_BYTES) ||
        pthread_create(&t, &attr, fn, NULL) || pthread_join(t, &r))
        return -1;
    pthread_attr_destroy(&attr);
    if (r) {
        *why = r;
        return -1;
    }
    size_t low = 0;
    while (low < STACK_BYTES && stack[low] == PATTERN)
        low++;
    munmap(stack, STACK_BYTES);
    return (long)(STACK_BYTES - low);
}

static int allocate_foreign(void)
{
    for (unsigned c = 0; c < NSIZES; c++)
        for (int i = 0; i < DEPTH; i++)
            if (!(foreign[c][i] = malloc(sizes[c])))
                return -1;
    return 0;
}

static int scenario_depth(void)
{
    pthread_t warm;
    void *r = NULL;
    if (allocate_foreign() || pthread_create(&warm, NULL, busy_thread, NULL) ||
        pthread_join(warm, &r) || r || allocate_foreign())
        TL_FAILF("the warm-up failed");
    const char *why = NULL;
    long quiet = depth_of(quiet_thread, &why);
    long busy = depth_of(busy_thread, &why);
    if (quiet < 0 || busy < 0)
        TL_FAILF("could not run the threads (%s)", why ? why : "thread set-up");
    printf("    stack written: %ld bytes (no allocation), %ld bytes (every slow path)\n", quiet,
           busy);
    if (busy - quiet > STACK_BUDGET)
        TL_FAILF("the allocator wrote %ld bytes of stack below a quiet thread's %ld (at most %d)",
                 busy - quiet, quiet, STACK_BUDGET);
    return 0;
}

static void test_slow_paths_stay_shallow(void **s)
{
    (void)s;
    char why[256];
    if (tl_run_scenario("depth", NULL, 120, why, sizeof why))
        fail_msg("%s", why);
}

static void test_slow_paths_stay_shallow_without_purger(void **s)
{
    (void)s;
    char why[256];
    const char *const env[] = {"HAKMEM_PURGER=0", "HAKMEM_DECAY_MS=0", NULL};
    if (tl_run_scenario("depth", env, 120, why, sizeof why))
        fail_msg("%s", why);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--scenario") == 0 && strcmp(argv[2], "depth") == 0)
        return scenario_depth();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_paths_stay_shallow),
        cmocka_unit_test(test_slow_paths_stay_shallow_without_purger),
    };
    return cmocka_run_group_tests_name("stress_stack", tests, NULL, NULL);
}
