/* bench/phase.c - phase-shifting workload: the hot size class and the burst depth change every
 * phase, so no single refill count suits the whole run (where an adaptive count should win).
 *
 * T threads run the same schedule of NPHASES phases, each lasting an equal share of the run
 * (or of -n ops per thread). In a phase a thread repeats bursts: malloc `depth` blocks, then free
 * them all in allocation order. 7 of 8 blocks have the phase's hot size; the 8th has the hot size
 * of a random phase (background traffic). Prints ops/s overall and per phase.
 *
 * -x schedule=1 runs a second schedule, deeper and with longer jumps between sizes (4096 x 48 B,
 * 8 x 1 KiB, 2048 x 8 KiB, 4 x 24 KiB, 8192 x 256 B, 16 x 16 KiB, 1024 x 4 KiB, 2 x 32 KiB); `make
 * bench` runs it with one thread as `phase1t`.
 */
#include "bench_common.h"

typedef struct {
    size_t hot;     /* hot block size in bytes */
    unsigned depth; /* blocks allocated before they are all freed */
    const char *what;
} phase_t;

#define NPHASES 8
static const phase_t schedules[2][NPHASES] = {
    {
        {32, 4096, "small class, deep bursts"},
        {16384, 8, "16 KiB, shallow"},
        {256, 64, "256 B, medium"},
        {24576, 256, "24 KiB, deep"},
        {64, 16, "64 B, shallow"},
        {2048, 1024, "2 KiB, deep"},
        {6144, 32, "6 KiB, medium"},
        {512, 2048, "512 B, deep"},
    },
    {
        {48, 4096, "48 B, deep"},
        {1024, 8, "1 KiB, shallow"},
        {8192, 2048, "8 KiB, deep"},
        {24576, 4, "24 KiB, shallow"},
        {256, 8192, "256 B, deepest"},
        {16384, 16, "16 KiB, shallow"},
        {4096, 1024, "4 KiB, deep"},
        {32768, 2, "32 KiB, two at a time"},
    },
};
static const phase_t *phases = schedules[0];
#define MAX_DEPTH 8192

static size_t hot_sizes[NPHASES]; /* phases[i].hot, for bench_burst; set before the threads */

typedef struct {
    bench_args_t *args;
    bench_start_t *start;
    int idx;
    uint64_t ops[NPHASES];
    double secs[NPHASES];
} phase_thread_t;

static void *phase_thread(void *arg)
{
    phase_thread_t *t = arg;
    static __thread void *blk[MAX_DEPTH];
    bench_rng_t rng;
    bench_rng_seed(&rng, t->args->seed, (uint64_t)t->idx);
    uint64_t per_phase_ops = t->args->ops / NPHASES;
    bench_start_wait(t->start);
    double t0 = t->start->t0, per_phase_s = (t->start->deadline - t0) / NPHASES;
    for (int ph = 0; ph < NPHASES; ph++) {
        const phase_t *p = &phases[ph];
        double end = t0 + per_phase_s * (ph + 1), ps = bench_now();
        uint64_t ops = 0;
        for (;;) {
            if (per_phase_ops ? ops >= per_phase_ops : bench_now() >= end) break;
            ops += bench_burst(blk, p->depth, p->hot, hot_sizes, NPHASES, &rng, "phase free");
        }
        t->ops[ph] = ops;
        t->secs[ph] = bench_now() - ps;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    bench_args_t a;
    bench_parse_args(argc, argv, &a, 2.4,
                     "phase: 8 phases, each with its own hot size and burst depth");
    int T = a.threads;
    if (bench_extra(&a, "schedule", 0) == 1)
        phases = schedules[1];
    for (int ph = 0; ph < NPHASES; ph++)
        hot_sizes[ph] = phases[ph].hot;
    phase_thread_t ts[T];
    bench_start_t start;
    bench_start_init(&start, T);
    for (int i = 0; i < T; i++)
        ts[i] = (phase_thread_t){.args = &a, .start = &start, .idx = i};
    double el = bench_run_threads(T, &start, phase_thread, ts, sizeof ts[0], a.seconds);
    uint64_t total = 0, per[NPHASES] = {0};
    double secs[NPHASES] = {0};
    for (int i = 0; i < T; i++) {
        for (int ph = 0; ph < NPHASES; ph++) {
            total += ts[i].ops[ph];
            per[ph] += ts[i].ops[ph];
            secs[ph] += ts[i].secs[ph] / T;
        }
    }
    printf("ops_per_sec=%.0f ops=%llu seconds=%.3f threads=%d phases=%d", (double)total / el,
           (unsigned long long)total, el, T, NPHASES);
    for (int ph = 0; ph < NPHASES; ph++)
        printf(" p%d_%zuB_d%u=%.0f", ph + 1, phases[ph].hot, phases[ph].depth,
               secs[ph] > 0 ? (double)per[ph] / secs[ph] : 0.0);
    printf("\n");
    return 0;
}
