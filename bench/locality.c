/* bench/locality.c - the locality probe (bench/locality_probe.h) as a workload.
 *
 * One thread (-t is ignored). For each of three sizes, 48 B x N=100000, 256 B x 50000 and
 * 1 KiB x 40000: malloc N blocks (one byte written into each), free them all in a random order
 * (Fisher-Yates, seeded), malloc N again, and count for each run of 64 consecutive mallocs the
 * distinct 4 KiB pages the blocks start on; then free everything. The figures are the mean
 * pages per run of 64:
 *   pages48 pages256 pages1k   the second generation (after the random frees): the headline,
 *                              lower is better (packing limit ~1.7 / 4 / 16; a LIFO free list
 *                              that returns the shuffled order gives ~62 / ~60 / ~60)
 *   first48 first256 first1k   the first generation (a fresh heap, or what the process holds)
 * both from the first pass, which depends on the seed alone, not on how many passes fit in the
 * time. The passes repeat until -d seconds have gone by (at least one; -n N: until N calls), each
 * with its own seed: warm48 warm256 warm1k are the mean second-generation figures of the passes
 * after the first (absent when only one ran), on a heap that has already been through the probe.
 * ops = malloc + free calls (4 N per size and pass); ops_per_sec divides them by the time spent
 * in those calls and their one-byte writes only (not the page counting, shuffles and checks);
 * `seconds` is that time.
 */
#include "bench_common.h"
#include "locality_probe.h"

static const size_t loc_size[3] = {48, 256, 1024};
static const size_t loc_n[3] = {100000, 50000, 40000};
static const char *const loc_name[3] = {"48", "256", "1k"};

static double loc_now(void) { return bench_now(); }

int main(int argc, char **argv)
{
    bench_args_t a;
    bench_parse_args(argc, argv, &a, 1.0,
                     "locality: pages touched per 64 consecutive mallocs after random frees, at "
                     "48 B, 256 B and 1 KiB (one thread; -n = at least N calls)");
    double first[3] = {0}, pages[3] = {0}, warm[3] = {0};
    double secs = 0, wall0 = bench_now();
    uint64_t ops = 0;
    unsigned passes = 0;
    for (;;) {
        for (int k = 0; k < 3; k++) {
            bench_rng_t r;
            bench_rng_seed(&r, a.seed, (uint64_t)passes * 3 + (uint64_t)k);
            double f = 0;
            double p = hak_probe_pages_per_64_timed(loc_size[k], loc_n[k],
                                                    (unsigned)bench_rng_next(&r), &f, loc_now,
                                                    &secs, &ops);
            if (p < 0) {
                fprintf(stderr, "locality: the probe at %zu B failed: %s\n", loc_size[k],
                        p == -1.0 ? "malloc returned NULL"
                                  : "a block lost the byte written into it (handed out twice?)");
                return 3;
            }
            if (passes == 0) {
                first[k] = f;
                pages[k] = p;
            } else {
                warm[k] += p;
            }
        }
        passes++;
        if (a.ops ? ops >= a.ops : bench_now() - wall0 >= a.seconds)
            break;
    }
    printf("ops_per_sec=%.0f ops=%llu seconds=%.3f threads=1 passes=%u", (double)ops / secs,
           (unsigned long long)ops, secs, passes);
    for (int k = 0; k < 3; k++)
        printf(" pages%s=%.2f", loc_name[k], pages[k]);
    for (int k = 0; k < 3; k++)
        printf(" first%s=%.2f", loc_name[k], first[k]);
    if (passes > 1)
        for (int k = 0; k < 3; k++)
            printf(" warm%s=%.2f", loc_name[k], warm[k] / (passes - 1));
    printf("\n");
    return 0;
}
