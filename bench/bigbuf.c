/* bench/bigbuf.c - big buffers: images, compression windows, database pages read in bulk.
 *
 * T threads, each with a window of -x live=4 slots. Each step picks a random slot, frees the
 * buffer in it (after checking its first and last byte), then mallocs a new buffer of a
 * random size in [-x min_mib=5, -x max_mib=25] MiB and writes all of it (memset). An
 * allocator that gives such buffers back to the OS at free and maps them again faults in every
 * 4 KiB page of every buffer; one that keeps and reuses them does not.
 * ops = malloc + free calls; bytes_per_sec counts the bytes written.
 */
#include "bench_common.h"

typedef struct {
    bench_args_t *args;
    bench_start_t *start;
    int idx;
    uint64_t ops, bytes;
} bb_thread_t;

static void *bb_thread(void *arg)
{
    bb_thread_t *t = arg;
    int live = (int)bench_extra(t->args, "live", 4);
    size_t lo = (size_t)bench_extra(t->args, "min_mib", 5) << 20;
    size_t hi = (size_t)bench_extra(t->args, "max_mib", 25) << 20;
    unsigned char *buf[64] = {0};
    size_t len[64] = {0};
    unsigned char tag[64] = {0};
    if (live < 1 || live > 64 || lo < 1 || hi < lo) {
        fprintf(stderr, "bigbuf: bad -x options\n");
        exit(2);
    }
    bench_rng_t rng;
    bench_rng_seed(&rng, t->args->seed, (uint64_t)t->idx);
    uint64_t ops = 0, bytes = 0, limit = t->args->ops;
    bench_start_wait(t->start);
    double deadline = t->start->deadline;
    for (uint64_t step = 1;; step++) {
        if (limit ? ops >= limit : bench_now() >= deadline)
            break;
        int i = (int)bench_rng_range(&rng, 0, (size_t)live - 1);
        if (buf[i]) {
            bench_check(buf[i], tag[i], "bigbuf free");
            if (buf[i][len[i] - 1] != tag[i]) {
                fprintf(stderr, "bigbuf: buffer %p lost its last byte\n", (void *)buf[i]);
                abort();
            }
            free(buf[i]);
            ops++;
        }
        size_t n = bench_rng_range(&rng, lo, hi);
        tag[i] = (unsigned char)(step * 7 + (uint64_t)i);
        buf[i] = malloc(n);
        bench_touch(buf[i], n, tag[i]);
        memset(buf[i], tag[i], n);
        BENCH_ESCAPE(buf[i]);
        len[i] = n;
        bytes += n;
        ops++;
    }
    for (int i = 0; i < live; i++)
        free(buf[i]);
    t->ops = ops;
    t->bytes = bytes;
    return NULL;
}

int main(int argc, char **argv)
{
    bench_args_t a;
    bench_parse_args(argc, argv, &a, 2.0,
                     "bigbuf: per thread, a window of -x live=4 buffers of -x min_mib=5 .. "
                     "-x max_mib=25 MiB, each written whole, replaced at random");
    int T = a.threads;
    bb_thread_t ts[T];
    bench_start_t start;
    bench_start_init(&start, T);
    for (int i = 0; i < T; i++)
        ts[i] = (bb_thread_t){.args = &a, .start = &start, .idx = i};
    double el = bench_run_threads(T, &start, bb_thread, ts, sizeof ts[0], a.seconds);
    uint64_t ops = 0, bytes = 0;
    for (int i = 0; i < T; i++) {
        ops += ts[i].ops;
        bytes += ts[i].bytes;
    }
    printf("ops_per_sec=%.0f ops=%llu seconds=%.3f threads=%d bytes_per_sec=%.0f\n",
           (double)ops / el, (unsigned long long)ops, el, T, (double)bytes / el);
    return 0;
}
