/* bench/larson.c - a larson-style server workload (after Larson and Krishnan's benchmark).
 *
 * T threads, each owns a window of SLOTS blocks of random small sizes (8..1000 B). A round:
 *   1. free every block that other threads handed to this thread (its inbox), checking each;
 *   2. ROUND_OPS times: pick a random slot, free its block, malloc a new one of random size;
 *   3. hand HANDOFF of its live blocks (random slots) to the next thread's inbox; the slots are
 *      refilled with fresh blocks, so the owner keeps its window full.
 * So a share of the blocks is freed by a thread that did not allocate them, as in a server where
 * a request is parsed on one thread and released on another. Inboxes are mutex-protected arrays;
 * when an inbox is full the sender frees the blocks itself (counted as local frees).
 * ops = malloc + free calls.
 */
#include <pthread.h>
#include "bench_common.h"

#define SLOTS 1024
#define ROUND_OPS 4096
#define HANDOFF 256
#define INBOX_CAP 4096
#define MIN_SIZE 8
#define MAX_SIZE 1000

typedef struct {
    pthread_mutex_t lock;
    unsigned n;
    void *items[INBOX_CAP];
} inbox_t;

typedef struct {
    bench_args_t *args;
    int idx, nthreads;
    bench_start_t *start;
    uint64_t ops, remote_frees, rounds;
} larson_thread_t;

static inbox_t *inboxes;

static uint64_t drain_inbox(inbox_t *in, void **tmp)
{
    pthread_mutex_lock(&in->lock);
    unsigned n = in->n;
    memcpy(tmp, in->items, n * sizeof(void *));
    in->n = 0;
    pthread_mutex_unlock(&in->lock);
    for (unsigned i = 0; i < n; i++) {
        bench_check(tmp[i], 0xA5, "larson remote free");
        free(tmp[i]);
    }
    return n;
}

static void *larson_thread(void *arg)
{
    larson_thread_t *t = arg;
    static __thread void *slot[SLOTS];
    static __thread void *tmp[INBOX_CAP];
    void *out[HANDOFF];
    bench_rng_t rng;
    bench_rng_seed(&rng, t->args->seed, (uint64_t)t->idx);
    uint64_t ops = 0, remote = 0, rounds = 0;
    for (unsigned i = 0; i < SLOTS; i++) {
        size_t sz = bench_rng_range(&rng, MIN_SIZE, MAX_SIZE);
        slot[i] = malloc(sz);
        bench_touch(slot[i], sz, 0xA5);
    }
    inbox_t *mine = &inboxes[t->idx];
    inbox_t *next = &inboxes[(t->idx + 1) % t->nthreads];
    bench_start_wait(t->start);
    double deadline = t->start->deadline;
    uint64_t limit = t->args->ops;
    for (;;) {
        if (limit ? ops >= limit : bench_now() >= deadline) break;
        uint64_t got = drain_inbox(mine, tmp);
        remote += got;
        ops += got;
        for (unsigned k = 0; k < ROUND_OPS; k++) {
            unsigned i = (unsigned)bench_rng_range(&rng, 0, SLOTS - 1);
            bench_check(slot[i], 0xA5, "larson local free");
            free(slot[i]);
            size_t sz = bench_rng_range(&rng, MIN_SIZE, MAX_SIZE);
            slot[i] = malloc(sz);
            bench_touch(slot[i], sz, 0xA5);
        }
        ops += 2 * ROUND_OPS;
        for (unsigned k = 0; k < HANDOFF; k++) {
            unsigned i = (unsigned)bench_rng_range(&rng, 0, SLOTS - 1);
            out[k] = slot[i];
            size_t sz = bench_rng_range(&rng, MIN_SIZE, MAX_SIZE);
            slot[i] = malloc(sz);
            bench_touch(slot[i], sz, 0xA5);
            /* a slot picked twice hands out the fresh block, which is fine */
        }
        ops += HANDOFF;
        pthread_mutex_lock(&next->lock);
        unsigned room = INBOX_CAP - next->n, k = 0;
        for (; k < HANDOFF && k < room; k++) next->items[next->n++] = out[k];
        pthread_mutex_unlock(&next->lock);
        for (; k < HANDOFF; k++) {
            free(out[k]);
            ops++;
        }
        rounds++;
    }
    for (unsigned i = 0; i < SLOTS; i++) free(slot[i]);
    t->ops = ops;
    t->remote_frees = remote;
    t->rounds = rounds;
    return NULL;
}

int main(int argc, char **argv)
{
    bench_args_t a;
    bench_parse_args(argc, argv, &a, 1.0,
                     "larson: server-style, threads hand a share of their blocks (8..1000 B) to "
                     "the next thread, which frees them");
    int T = a.threads;
    inboxes = calloc((size_t)T, sizeof(inbox_t));
    larson_thread_t ts[T];
    bench_start_t start;
    bench_start_init(&start, T);
    for (int i = 0; i < T; i++) pthread_mutex_init(&inboxes[i].lock, NULL);
    for (int i = 0; i < T; i++)
        ts[i] = (larson_thread_t){.args = &a, .idx = i, .nthreads = T, .start = &start};
    /* threads fill their windows first; the clock starts when all are ready */
    double el = bench_run_threads(T, &start, larson_thread, ts, sizeof ts[0], a.seconds);
    uint64_t total = 0, remote = 0, rounds = 0;
    for (int i = 0; i < T; i++) {
        total += ts[i].ops;
        remote += ts[i].remote_frees;
        rounds += ts[i].rounds;
    }
    /* blocks still sitting in inboxes are freed here, outside the timed part */
    for (int i = 0; i < T; i++)
        for (unsigned k = 0; k < inboxes[i].n; k++) free(inboxes[i].items[k]);
    free(inboxes);
    printf("ops_per_sec=%.0f ops=%llu seconds=%.3f threads=%d rounds=%llu remote_frees=%llu\n",
           (double)total / el, (unsigned long long)total, el, T, (unsigned long long)rounds,
           (unsigned long long)remote);
    return 0;
}
