/* bench/burstexit.c - a server whose worker threads come and go: does memory go back?
 *
 * -x threads=256 workers start together. Each bursts -x depth=512 blocks deep in each of four
 * classes (48 B, 256 B, 1 KiB, 4 KiB: malloc 512, write, free 512), then waits, idle, until
 * every worker has done its burst (rss_idle_kb is sampled then), and exits. The main thread
 * keeps a little traffic going the whole time (8 blocks of 64..512 B replaced every
 * millisecond: its own cache serves it, so no allocator slow path needs to run). It joins the
 * workers, goes on with its traffic for -x wait_ms=2000 ms, and samples VmRSS: rss_after_kb
 * is what the process still holds 2 s after the exits. ops = the workers' malloc + free calls
 * (ops_per_sec is over the burst phase, which includes thread creation).
 */
#include "bench_common.h"

static const size_t burst_sizes[4] = {48, 256, 1024, 4096};

typedef struct {
    int depth;
    pthread_barrier_t *idle;
    uint64_t ops;
} bx_thread_t;

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &res) != 2)
        res = -1;
    fclose(f);
    return res < 0 ? -1 : res * (sysconf(_SC_PAGESIZE) / 1024);
}

static void *bx_thread(void *arg)
{
    bx_thread_t *t = arg;
    void **b = malloc((size_t)t->depth * sizeof *b);
    bench_touch(b, (size_t)t->depth * sizeof *b, 1);
    uint64_t ops = 1;
    for (int c = 0; c < 4; c++) {
        for (int i = 0; i < t->depth; i++) {
            b[i] = malloc(burst_sizes[c]);
            bench_touch(b[i], burst_sizes[c], (unsigned char)i);
        }
        for (int i = 0; i < t->depth; i++) {
            bench_check(b[i], (unsigned char)i, "burstexit free");
            free(b[i]);
        }
        ops += 2u * (uint64_t)t->depth;
    }
    free(b);
    t->ops = ops + 1;
    pthread_barrier_wait(&t->idle[0]); /* every worker has done its burst */
    pthread_barrier_wait(&t->idle[1]); /* main has sampled RSS: exit */
    return NULL;
}

/* The main thread's little traffic: 8 slots, one replaced per call. */
static void *traffic_slot[8];
static bench_rng_t traffic_rng;
static void traffic_step(void)
{
    unsigned i = (unsigned)bench_rng_range(&traffic_rng, 0, 7);
    free(traffic_slot[i]);
    size_t n = bench_rng_range(&traffic_rng, 64, 512);
    traffic_slot[i] = malloc(n);
    bench_touch(traffic_slot[i], n, 0x5a);
}

static void traffic_for(double seconds)
{
    double end = bench_now() + seconds;
    struct timespec ms = {0, 1000000};
    while (bench_now() < end) {
        traffic_step();
        nanosleep(&ms, NULL);
    }
}

int main(int argc, char **argv)
{
    bench_args_t a;
    bench_parse_args(argc, argv, &a, 1.0,
                     "burstexit: -x threads=256 workers burst -x depth=512 blocks deep in four "
                     "classes and exit; RSS -x wait_ms=2000 ms later (-t, -d, -n unused)");
    int T = (int)bench_extra(&a, "threads", 256);
    int depth = (int)bench_extra(&a, "depth", 512);
    long wait_ms = bench_extra(&a, "wait_ms", 2000);
    if (T < 1 || T > 4096 || depth < 1 || wait_ms < 0) {
        fprintf(stderr, "burstexit: bad -x options\n");
        return 2;
    }
    bench_rng_seed(&traffic_rng, a.seed, 999);
    for (int i = 0; i < 8; i++)
        traffic_step();
    long rss_start = rss_kb();
    pthread_t *th = malloc((size_t)T * sizeof *th);
    bx_thread_t *ts = malloc((size_t)T * sizeof *ts);
    pthread_barrier_t idle[2];
    pthread_barrier_init(&idle[0], NULL, (unsigned)T + 1);
    pthread_barrier_init(&idle[1], NULL, (unsigned)T + 1);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256u << 10);
    double t0 = bench_now();
    for (int i = 0; i < T; i++) {
        ts[i] = (bx_thread_t){.depth = depth, .idle = idle};
        if (pthread_create(&th[i], &attr, bx_thread, &ts[i])) {
            perror("pthread_create");
            return 1;
        }
        if (i % 16 == 15)
            traffic_step();
    }
    pthread_barrier_wait(&idle[0]);
    double burst_s = bench_now() - t0;
    traffic_for(0.1);
    long rss_idle = rss_kb();
    pthread_barrier_wait(&idle[1]);
    uint64_t ops = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        ops += ts[i].ops;
    }
    traffic_for((double)wait_ms / 1000.0);
    long rss_after = rss_kb();
    for (int i = 0; i < 8; i++)
        free(traffic_slot[i]);
    printf("ops_per_sec=%.0f ops=%llu seconds=%.3f threads=%d depth=%d rss_start_kb=%ld "
           "rss_idle_kb=%ld rss_after_kb=%ld wait_ms=%ld\n",
           (double)ops / burst_s, (unsigned long long)ops, burst_s, T, depth, rss_start,
           rss_idle, rss_after, wait_ms);
    free(th);
    free(ts);
    return 0;
}
