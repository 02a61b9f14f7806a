/* bench/realloc.c - realloc growth, like a string builder.
 *
 * T threads, each growing NBUF buffers in turn (a random one at each step, so neighbours are
 * live and in-place growth is not free). A buffer starts with malloc(16) and grows by appending
 * a random number of bytes in [1, max(16, size/16)] (about 3% per step: ~360 reallocs from
 * 16 B to 1 MiB); the appended bytes are written and the old last byte and first byte are
 * checked (realloc must keep the content). At TARGET (1 MiB) the buffer is freed and starts over.
 * ops = malloc + realloc + free calls; bytes_per_sec counts appended bytes.
 */
#include "bench_common.h"

#define NBUF 8
#define START 16
#define TARGET (1u << 20)

typedef struct {
    bench_args_t *args;
    bench_start_t *start;
    int idx;
    uint64_t ops, bytes, finished;
} re_thread_t;

static void *re_thread(void *arg)
{
    re_thread_t *t = arg;
    unsigned char *buf[NBUF];
    size_t len[NBUF];
    unsigned char tag[NBUF];
    bench_rng_t rng;
    bench_rng_seed(&rng, t->args->seed, (uint64_t)t->idx);
    uint64_t ops = 0, bytes = 0, finished = 0, limit = t->args->ops;
    for (int b = 0; b < NBUF; b++) {
        tag[b] = (unsigned char)(b + 1);
        len[b] = START;
        buf[b] = malloc(START);
        if (!buf[b]) abort();
        memset(buf[b], tag[b], START);
    }
    bench_start_wait(t->start);
    double deadline = t->start->deadline;
    for (;;) {
        if (limit ? ops >= limit : ((ops % 64) == 0 && bench_now() >= deadline)) break;
        int b = (int)bench_rng_range(&rng, 0, NBUF - 1);
        size_t old = len[b], maxstep = old / 16 < 16 ? 16 : old / 16;
        size_t nl = old + bench_rng_range(&rng, 1, maxstep);
        unsigned char *p = realloc(buf[b], nl);
        if (!p) {
            fprintf(stderr, "realloc: realloc(%zu) failed\n", nl);
            exit(3);
        }
        if (p[0] != tag[b] || p[old - 1] != tag[b]) {
            fprintf(stderr, "realloc: content lost growing %zu -> %zu bytes\n", old, nl);
            abort();
        }
        memset(p + old, tag[b], nl - old);
        buf[b] = p;
        len[b] = nl;
        bytes += nl - old;
        ops++;
        if (nl >= TARGET) {
            free(p);
            tag[b] = (unsigned char)(tag[b] + NBUF);
            buf[b] = malloc(START);
            if (!buf[b]) abort();
            memset(buf[b], tag[b], START);
            len[b] = START;
            ops += 2;
            finished++;
        }
    }
    for (int b = 0; b < NBUF; b++) free(buf[b]);
    t->ops = ops;
    t->bytes = bytes;
    t->finished = finished;
    return NULL;
}

int main(int argc, char **argv)
{
    bench_args_t a;
    bench_parse_args(argc, argv, &a, 1.0,
                     "realloc: string-builder growth of 8 buffers per thread from 16 B to 1 MiB");
    int T = a.threads;
    re_thread_t ts[T];
    bench_start_t start;
    bench_start_init(&start, T);
    for (int i = 0; i < T; i++)
        ts[i] = (re_thread_t){.args = &a, .start = &start, .idx = i};
    double el = bench_run_threads(T, &start, re_thread, ts, sizeof ts[0], a.seconds);
    uint64_t ops = 0, bytes = 0, fin = 0;
    for (int i = 0; i < T; i++) {
        ops += ts[i].ops;
        bytes += ts[i].bytes;
        fin += ts[i].finished;
    }
    printf("ops_per_sec=%.0f ops=%llu seconds=%.3f threads=%d buffers_finished=%llu "
           "bytes_per_sec=%.0f\n",
           (double)ops / el, (unsigned long long)ops, el, T, (unsigned long long)fin,
           (double)bytes / el);
    return 0;
}
