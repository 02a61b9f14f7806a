/* bench/window.h - the random-window workload behind `mid` and `tiny`.
 *
 * T threads, each with a private window of WINDOW slots. One op: pick a random slot; if it holds
 * a block, check and free it, otherwise malloc a block of a random size in [min, max] into it and
 * write its first and last byte. So about half the ops are mallocs and half frees, and the
 * window keeps about WINDOW/2 blocks live per thread. The result counts both kinds of op.
 */
#ifndef BENCH_WINDOW_H
#define BENCH_WINDOW_H

#include "bench_common.h"

#define WINDOW 256

typedef struct {
    bench_args_t *args;
    bench_start_t *start;
    int idx;
    size_t min, max;
    uint64_t ops;
} window_thread_t;

static void *window_thread(void *arg)
{
    window_thread_t *t = arg;
    void *slot[WINDOW] = {0};
    bench_rng_t rng;
    bench_rng_seed(&rng, t->args->seed, (uint64_t)t->idx);
    uint64_t limit = t->args->ops, ops = 0;
    bench_start_wait(t->start);
    double deadline = t->start->deadline;
    for (;;) {
        if (limit) {
            if (ops >= limit) break;
        } else if ((ops % BENCH_CLOCK_EVERY) == 0 && bench_now() >= deadline) {
            break;
        }
        uint64_t r = bench_rng_next(&rng);
        unsigned i = (unsigned)(r >> 56) & (WINDOW - 1);
        if (slot[i]) {
            bench_check(slot[i], (unsigned char)i, "window free");
            free(slot[i]);
            slot[i] = NULL;
        } else {
            size_t sz = t->min + (size_t)((r & 0xffffffffu) % (t->max - t->min + 1));
            void *p = malloc(sz);
            bench_touch(p, sz, (unsigned char)i);
            slot[i] = p;
        }
        ops++;
    }
    for (unsigned i = 0; i < WINDOW; i++)
        free(slot[i]);
    t->ops = ops;
    return NULL;
}

static int window_main(int argc, char **argv, const char *name, size_t min, size_t max)
{
    bench_args_t a;
    char what[160];
    snprintf(what, sizeof what, "%s: random malloc/free of %zu..%zu B over a window of %d slots "
             "per thread", name, min, max, WINDOW);
    bench_parse_args(argc, argv, &a, 1.0, what);
    window_thread_t ts[a.threads];
    bench_start_t start;
    bench_start_init(&start, a.threads);
    for (int i = 0; i < a.threads; i++)
        ts[i] = (window_thread_t){.args = &a, .start = &start, .idx = i, .min = min, .max = max};
    double el = bench_run_threads(a.threads, &start, window_thread, ts, sizeof ts[0], a.seconds);
    uint64_t total = 0;
    for (int i = 0; i < a.threads; i++) {
        total += ts[i].ops;
    }
    printf("ops_per_sec=%.0f ops=%llu seconds=%.3f threads=%d min=%zu max=%zu window=%d\n",
           (double)total / el, (unsigned long long)total, el, a.threads, min, max, WINDOW);
    return 0;
}

#endif
