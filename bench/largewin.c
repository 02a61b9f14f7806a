/* bench/largewin.c - mid-large blocks: per-request buffers, decoded messages, chunked I/O.
 *
 * T threads, each a window of -x slots=64: a random slot is freed if full (its tag checked),
 * else filled with malloc of a random size in 64 KiB .. 1 MiB (-x min_kib, -x max_kib), one
 * byte written in every 4 KiB page. These sizes are above every small class, so an allocator
 * that maps each block and unmaps it at free pays an mmap, a munmap and a fault per page.
 * ops = malloc + free calls.
 */
#include "bench_common.h"

#define MAX_SLOTS 4096

typedef struct {
    bench_args_t *args;
    bench_start_t *start;
    int idx;
    uint64_t ops;
} lw_thread_t;

static void touch_pages(unsigned char *p, size_t n, unsigned char tag)
{
    for (size_t off = 0; off < n; off += 4096)
        p[off] = tag;
    p[n - 1] = tag;
}

static void *lw_thread(void *arg)
{
    lw_thread_t *t = arg;
    int slots = (int)bench_extra(t->args, "slots", 64);
    size_t lo = (size_t)bench_extra(t->args, "min_kib", 64) << 10;
    size_t hi = (size_t)bench_extra(t->args, "max_kib", 1024) << 10;
    if (slots < 1 || slots > MAX_SLOTS || lo < 1 || hi < lo) {
        fprintf(stderr, "largewin: bad -x options\n");
        exit(2);
    }
    static __thread unsigned char *slot[MAX_SLOTS];
    bench_rng_t rng;
    bench_rng_seed(&rng, t->args->seed, (uint64_t)t->idx);
    uint64_t ops = 0, limit = t->args->ops;
    bench_start_wait(t->start);
    double deadline = t->start->deadline;
    for (;;) {
        if (limit ? ops >= limit : ((ops % 64) == 0 && bench_now() >= deadline))
            break;
        unsigned i = (unsigned)bench_rng_range(&rng, 0, (size_t)slots - 1);
        unsigned char tag = (unsigned char)(i * 13 + 1);
        if (slot[i]) {
            bench_check(slot[i], tag, "largewin free");
            free(slot[i]);
            slot[i] = NULL;
        } else {
            size_t n = bench_rng_range(&rng, lo, hi);
            slot[i] = malloc(n);
            bench_touch(slot[i], n, tag);
            touch_pages(slot[i], n, tag);
        }
        ops++;
    }
    for (int i = 0; i < slots; i++) {
        free(slot[i]);
        slot[i] = NULL;
    }
    t->ops = ops;
    return NULL;
}

int main(int argc, char **argv)
{
    bench_args_t a;
    bench_parse_args(argc, argv, &a, 1.0,
                     "largewin: per thread, a window of -x slots=64 blocks of 64 KiB .. 1 MiB, "
                     "one byte written per page");
    int T = a.threads;
    lw_thread_t ts[T];
    bench_start_t start;
    bench_start_init(&start, T);
    for (int i = 0; i < T; i++)
        ts[i] = (lw_thread_t){.args = &a, .start = &start, .idx = i};
    double el = bench_run_threads(T, &start, lw_thread, ts, sizeof ts[0], a.seconds);
    uint64_t ops = 0;
    for (int i = 0; i < T; i++) {
        ops += ts[i].ops;
    }
    printf("ops_per_sec=%.0f ops=%llu seconds=%.3f threads=%d\n", (double)ops / el,
           (unsigned long long)ops, el, T);
    return 0;
}
