/* bench/prodcons.c - producer/consumer: every block is freed by another thread.
 *
 * P producer threads malloc blocks of random size (16..2048 B), write them, and push them into
 * a lock-free single-producer/single-consumer ring (one ring per producer, RING_CAP slots);
 * C consumer threads pop, check and free them. Producer p feeds consumer p % C. A full ring
 * makes the producer wait (bench_backoff: spin, yield, then 20 us sleeps); an empty one makes
 * the consumer do the same.
 * Default: threads split half and half (2 threads = 1 producer + 1 consumer); -x producers=N.
 * ops = malloc + free calls (two per message).
 */
#include <stdatomic.h>
#include "bench_common.h"

#define RING_CAP 1024u /* power of two */
#define MIN_SIZE 16
#define MAX_SIZE 2048

typedef struct {
    _Alignas(64) _Atomic uint32_t head; /* written by the producer */
    _Alignas(64) _Atomic uint32_t tail; /* written by the consumer */
    _Alignas(64) _Atomic int done;      /* producer finished */
    void *slot[RING_CAP];
} ring_t;

typedef struct {
    bench_args_t *args;
    bench_start_t *start;
    int idx, nprod, ncons;
    ring_t *rings;
    uint64_t msgs;
} pc_thread_t;

static void *producer(void *arg)
{
    pc_thread_t *t = arg;
    ring_t *r = &t->rings[t->idx];
    bench_rng_t rng;
    bench_rng_seed(&rng, t->args->seed, (uint64_t)t->idx);
    uint64_t limit = t->args->ops, n = 0;
    uint32_t head = 0, tail_cache = 0;
    bench_start_wait(t->start);
    double deadline = t->start->deadline;
    for (;;) {
        if (limit ? n >= limit : ((n % BENCH_CLOCK_EVERY) == 0 && bench_now() >= deadline)) break;
        size_t sz = bench_rng_range(&rng, MIN_SIZE, MAX_SIZE);
        void *p = malloc(sz);
        bench_touch(p, sz, 0x5A);
        unsigned spins = 0;
        while (head - tail_cache == RING_CAP) {
            tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
            if (head - tail_cache == RING_CAP) bench_backoff(&spins);
        }
        r->slot[head & (RING_CAP - 1)] = p;
        atomic_store_explicit(&r->head, ++head, memory_order_release);
        n++;
    }
    atomic_store_explicit(&r->done, 1, memory_order_release);
    t->msgs = n;
    return NULL;
}

static void *consumer(void *arg)
{
    pc_thread_t *t = arg;
    uint64_t n = 0;
    unsigned idle = 0;
    bench_start_wait(t->start);
    for (;;) {
        int all_done = 1, got = 0;
        for (int p = t->idx; p < t->nprod; p += t->ncons) {
            ring_t *r = &t->rings[p];
            int done = atomic_load_explicit(&r->done, memory_order_acquire);
            uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
            uint32_t head = atomic_load_explicit(&r->head, memory_order_acquire);
            while (tail != head) {
                void *b = r->slot[tail & (RING_CAP - 1)];
                bench_check(b, 0x5A, "consumer free");
                free(b);
                tail++;
                n++;
                got = 1;
                if ((tail & 31) == 0) atomic_store_explicit(&r->tail, tail, memory_order_release);
            }
            atomic_store_explicit(&r->tail, tail, memory_order_release);
            if (!done) all_done = 0;
        }
        if (all_done && !got) break; /* done was read before the last drain: nothing is left */
        if (got)
            idle = 0;
        else
            bench_backoff(&idle);
    }
    t->msgs = n;
    return NULL;
}

int main(int argc, char **argv)
{
    bench_args_t a;
    bench_parse_args(argc, argv, &a, 1.0,
                     "prodcons: producers malloc, consumers free, through SPSC rings "
                     "(-x producers=N)");
    int T = a.threads < 2 ? 2 : a.threads;
    int P = (int)bench_extra(&a, "producers", T / 2);
    if (P < 1) P = 1;
    if (P >= T) P = T - 1;
    int C = T - P;
    ring_t *rings = aligned_alloc(64, sizeof(ring_t) * (size_t)P);
    memset(rings, 0, sizeof(ring_t) * (size_t)P);
    pthread_t th[T];
    pc_thread_t ts[T];
    bench_start_t start;
    bench_start_init(&start, T);
    for (int i = 0; i < T; i++) {
        int is_prod = i < P;
        ts[i] = (pc_thread_t){.args = &a, .start = &start, .idx = is_prod ? i : i - P,
                              .nprod = P, .ncons = C, .rings = rings};
        if (pthread_create(&th[i], NULL, is_prod ? producer : consumer, &ts[i])) {
            perror("pthread_create");
            return 1;
        }
    }
    bench_start_release(&start, a.seconds);
    uint64_t made = 0, freed = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        if (i < P) made += ts[i].msgs; else freed += ts[i].msgs;
    }
    double el = bench_now() - start.t0;
    free(rings);
    if (made != freed) {
        fprintf(stderr, "prodcons: %llu blocks made but %llu freed\n", (unsigned long long)made,
                (unsigned long long)freed);
        return 1;
    }
    printf("ops_per_sec=%.0f ops=%llu seconds=%.3f threads=%d producers=%d consumers=%d "
           "msgs_per_sec=%.0f\n",
           2.0 * (double)made / el, 2ull * (unsigned long long)made, el, T, P, C,
           (double)made / el);
    return 0;
}
