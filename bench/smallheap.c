/* bench/smallheap.c - a small program: a few MB live over many size classes.
 *
 * T threads, each a window of -x slots=600 blocks: a random slot is freed (tag checked) and
 * refilled with a block of a random class among the -x classes=38 smallest hakmem classes
 * (16 B .. 24 KiB; a random size inside the class), first and last byte written. With the
 * defaults one thread holds about 2.5 MB live over 38 classes: what matters here is peak RSS
 * (a fixed cost per class in use shows), not speed. ops = malloc + free calls.
 */
#include "bench_common.h"

/* hakmem's class sizes (shared_contracts/size_classes.h), copied: the workload must not
 * depend on the allocator under test. */
static const unsigned class_size[40] = {
    16,    32,    48,    64,    80,    96,    112,   128,   160,   192,
    224,   256,   320,   384,   448,   512,   640,   768,   896,   1024,
    1280,  1536,  1792,  2048,  2560,  3072,  3584,  4096,  5120,  6144,
    7168,  8192,  10240, 12288, 14336, 16384, 20480, 24576, 28672, 32768};

typedef struct {
    bench_args_t *args;
    bench_start_t *start;
    int idx;
    uint64_t ops;
} sh_thread_t;

static size_t pick_size(bench_rng_t *r, unsigned classes)
{
    unsigned c = (unsigned)bench_rng_range(r, 0, classes - 1);
    size_t lo = c ? class_size[c - 1] + 1 : 1;
    return bench_rng_range(r, lo, class_size[c]);
}

static void *sh_thread(void *arg)
{
    sh_thread_t *t = arg;
    int slots = (int)bench_extra(t->args, "slots", 600);
    unsigned classes = (unsigned)bench_extra(t->args, "classes", 38);
    if (slots < 1 || slots > 100000 || classes < 1 || classes > 40) {
        fprintf(stderr, "smallheap: bad -x options\n");
        exit(2);
    }
    bench_rng_t rng;
    bench_rng_seed(&rng, t->args->seed, (uint64_t)t->idx);
    unsigned char **slot = calloc((size_t)slots, sizeof *slot);
    bench_touch(slot, (size_t)slots * sizeof *slot, 0);
    for (int i = 0; i < slots; i++) {
        size_t n = pick_size(&rng, classes);
        slot[i] = malloc(n);
        bench_touch(slot[i], n, (unsigned char)i);
    }
    uint64_t ops = 0, limit = t->args->ops;
    bench_start_wait(t->start);
    double deadline = t->start->deadline;
    for (;;) {
        if (limit ? ops >= limit : ((ops % 256) == 0 && bench_now() >= deadline))
            break;
        unsigned i = (unsigned)bench_rng_range(&rng, 0, (size_t)slots - 1);
        bench_check(slot[i], (unsigned char)i, "smallheap free");
        free(slot[i]);
        size_t n = pick_size(&rng, classes);
        slot[i] = malloc(n);
        bench_touch(slot[i], n, (unsigned char)i);
        ops += 2;
    }
    for (int i = 0; i < slots; i++)
        free(slot[i]);
    free(slot);
    t->ops = ops;
    return NULL;
}

int main(int argc, char **argv)
{
    bench_args_t a;
    bench_parse_args(argc, argv, &a, 1.0,
                     "smallheap: per thread, -x slots=600 live blocks over the -x classes=38 "
                     "smallest classes, replaced at random");
    int T = a.threads;
    sh_thread_t ts[T];
    bench_start_t start;
    bench_start_init(&start, T);
    for (int i = 0; i < T; i++)
        ts[i] = (sh_thread_t){.args = &a, .start = &start, .idx = i};
    double el = bench_run_threads(T, &start, sh_thread, ts, sizeof ts[0], a.seconds);
    uint64_t ops = 0;
    for (int i = 0; i < T; i++) {
        ops += ts[i].ops;
    }
    printf("ops_per_sec=%.0f ops=%llu seconds=%.3f threads=%d\n", (double)ops / el,
           (unsigned long long)ops, el, T);
    return 0;
}
