/* bench/settle.c - how fast an adaptive refill count follows a phase change.
 *
 * T threads run the same schedule of phases, each -x phase_ms=N long (default 1000), switching
 * at the same instants. In a phase a thread repeats bursts: malloc `depth` blocks of the
 * phase's hot size, then free them all in allocation order (7 of 8 blocks; the 8th has the
 * hot size of another phase, as in bench/phase.c). Every thread adds its ops to a shared
 * 10 ms bucket each BENCH_CLOCK_EVERY ops, so the run leaves a throughput sample every 10 ms.
 *
 * Output: the usual ops_per_sec=... line on stdout, then one line per phase
 *   phase i=<n> start_ms=<ms> end_ms=<ms> size=<hot size> depth=<depth>
 * and one line per sample
 *   sample ms=<end of the 10 ms window> ops_per_sec=<rate in that window>
 * with ms counted from t0, the moment the threads start. The first line also gives
 * main_to_t0_ms, the time from just after main's first malloc (which starts hakmem, and with
 * it ACE, unless something allocated before main) to t0: POOL_ACE_LOG's ms minus that is the
 * same clock, to within the time that first malloc took. bench/settle.py reads both.
 */
#include "bench_common.h"

typedef struct {
    size_t hot;
    unsigned depth;
} settle_phase_t;

static const settle_phase_t phases[] = {
    {64, 16},      /* shallow: nothing to learn */
    {32, 4096},    /* small class, deep bursts */
    {24576, 256},  /* 24 KiB, deep */
    {2048, 1024},  /* 2 KiB, deep */
    {512, 2048},   /* 512 B, deep */
    {64, 16},      /* shallow again: raised counts should come back down */
};
#define NPHASES (int)(sizeof phases / sizeof phases[0])
#define MAX_DEPTH 4096

static size_t hot_sizes[NPHASES]; /* phases[i].hot, for bench_burst; set before the threads */
#define SAMPLE_S 0.01
#define MAX_SAMPLES 100000

static uint64_t buckets[MAX_SAMPLES]; /* ops per 10 ms window; atomic adds */

typedef struct {
    bench_start_t *start;
    double phase_s;
    uint64_t seed;
    int idx;
    uint64_t ops;
} settle_thread_t;

static void add_ops(double t0, double now, uint64_t ops)
{
    long k = (long)((now - t0) / SAMPLE_S);
    if (k >= 0 && k < MAX_SAMPLES)
        __atomic_fetch_add(&buckets[k], ops, __ATOMIC_RELAXED);
}

static void *settle_thread(void *arg)
{
    settle_thread_t *t = arg;
    static __thread void *blk[MAX_DEPTH];
    bench_rng_t rng;
    bench_rng_seed(&rng, t->seed, (uint64_t)t->idx);
    bench_start_wait(t->start);
    double t0 = t->start->t0;
    for (int ph = 0; ph < NPHASES; ph++) {
        const settle_phase_t *p = &phases[ph];
        double end = t0 + t->phase_s * (ph + 1);
        uint64_t pending = 0;
        for (;;) {
            pending += bench_burst(blk, p->depth, p->hot, hot_sizes, NPHASES, &rng,
                                   "settle free");
            if (pending >= BENCH_CLOCK_EVERY) {
                double now = bench_now();
                add_ops(t0, now, pending);
                t->ops += pending;
                pending = 0;
                if (now >= end)
                    break;
            }
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    free(malloc(1)); /* starts the allocator (and ACE) */
    double t_main = bench_now();
    bench_args_t a;
    bench_parse_args(argc, argv, &a, 6.0,
                     "settle: phases of -x phase_ms=N (1000) ms with their own hot size and "
                     "burst depth; prints a throughput sample every 10 ms");
    double phase_s = (double)bench_extra(&a, "phase_ms", 1000) / 1000.0;
    if (phase_s < 0.05 || phase_s * NPHASES / SAMPLE_S >= MAX_SAMPLES) {
        fprintf(stderr, "settle: phase_ms out of range\n");
        return 2;
    }
    int T = a.threads;
    for (int ph = 0; ph < NPHASES; ph++)
        hot_sizes[ph] = phases[ph].hot;
    settle_thread_t ts[T];
    bench_start_t start;
    bench_start_init(&start, T);
    for (int i = 0; i < T; i++)
        ts[i] = (settle_thread_t){.start = &start, .phase_s = phase_s, .seed = a.seed, .idx = i};
    double el = bench_run_threads(T, &start, settle_thread, ts, sizeof ts[0], phase_s * NPHASES);
    uint64_t total = 0;
    for (int i = 0; i < T; i++) {
        total += ts[i].ops;
    }
    printf("ops_per_sec=%.0f ops=%llu seconds=%.3f threads=%d phases=%d phase_ms=%.0f "
           "main_to_t0_ms=%.3f\n",
           (double)total / el, (unsigned long long)total, el, T, NPHASES, phase_s * 1000,
           (start.t0 - t_main) * 1000);
    for (int ph = 0; ph < NPHASES; ph++)
        printf("phase i=%d start_ms=%.0f end_ms=%.0f size=%zu depth=%u\n", ph + 1,
               phase_s * ph * 1000, phase_s * (ph + 1) * 1000, phases[ph].hot, phases[ph].depth);
    long n = (long)(el / SAMPLE_S);
    for (long k = 0; k < n && k < MAX_SAMPLES; k++)
        printf("sample ms=%.0f ops_per_sec=%.0f\n", (k + 1) * SAMPLE_S * 1000,
               (double)buckets[k] / SAMPLE_S);
    return 0;
}
