/* bench/xmix.c - cross-thread frees of mixed sizes.
 *
 * T threads (-t) each loop over steps. A step draws a size from 16 B to 4 KiB skewed toward
 * small ones (e = the smaller of two uniform draws from 0..8, size = 16 << e plus a uniform
 * jitter below 16 << e, capped at 4096: about 21% of the blocks are 16-31 B, 1% are 4 KiB, the
 * mean is ~420 B), mallocs it and writes a header (its thread and size: the first 8 bytes) and
 * its last byte. -x local=P percent of the steps (default 25) stay local: the block replaces a
 * random one of the thread's own 64 slots, and the block it replaces is freed there. The
 * others hand the block to another thread, by the mode (-x mode=queue|random):
 *
 *   queue (workload `xmix`): every thread has an inbox, a bounded lock-free MPMC ring of
 *     pointers (Vyukov's; -x cap=N slots, default 4096, a power of two). The step pushes the
 *     block into the inbox of a random other thread, then pops up to 8 blocks from its own
 *     inbox and frees them, each checked: every one was pushed by another thread. When the
 *     target inbox is full the thread waits (bench_backoff), freeing what reaches its own
 *     inbox meanwhile; once the target's owner has stopped (the end of a run) it frees the
 *     block itself (stopped_frees).
 *   random (workload `xmixr`): every thread has -x slots=N (default 1024) slots, shared by all
 *     threads and filled before the clock starts. The step swaps its block into a random slot of
 *     a random thread's array (atomic exchange; its own array as likely as any other) and frees,
 *     checked, the block it took out, which any thread may have allocated. With T threads
 *     running at once about (T-1)/T of those frees are remote (37% of all frees at T = 2 and
 *     local=25); far fewer when the threads share a core, since a thread alone on the CPU soon
 *     takes out only its own blocks (remote_pct tells).
 *
 * Every block is freed exactly once: the ring's pop and the slot's exchange hand each pointer to
 * one thread. Memory stays bounded: at most T * (cap or slots) blocks in flight, plus 64 local
 * slots per thread. Each thread's sizes and choices follow from the seed and its index; what it
 * frees depends on the interleaving. Blocks left in the inboxes and slots when the clock stops
 * are freed by the main thread after it (not counted).
 * ops = malloc + free calls; remote_pct = the share of the frees of a block that another
 * thread allocated. With -n N each thread makes N/2 mallocs. With -t 1 every free is local.
 */
#include <stdatomic.h>
#include "bench_common.h"

#define DEF_CAP 4096
#define DEF_SLOTS 1024
#define DEF_LOCAL 25   /* percent of the steps */
#define LOCAL_SLOTS 64
#define POP_BATCH 8
#define MIN_BLOCK 16
#define MAX_BLOCK 4096
#define TAG 0xA5

enum { MODE_QUEUE, MODE_RANDOM };

typedef struct {
    uint32_t owner, size;
} xm_hdr_t;

/* Vyukov's bounded MPMC queue: cell i is free for the push at position p when its seq == p, and
 * full for the pop at p when seq == p + 1. */
typedef struct {
    _Atomic size_t seq;
    void *data;
} xm_cell_t;

typedef struct {
    _Alignas(64) _Atomic size_t enq;
    _Alignas(64) _Atomic size_t deq;
    _Alignas(64) _Atomic int stopped; /* the owner pops no more */
    xm_cell_t *cell;                  /* read-only after set-up */
    size_t mask;
} xm_ring_t;

typedef struct {
    bench_args_t *args;
    bench_start_t *start;
    int idx, nthreads, mode;
    unsigned local_pct;
    uint64_t mallocs, frees, remote, waits, stopped_frees;
} xm_thread_t;

static xm_ring_t *rings;          /* queue mode: one per thread */
static _Atomic(void *) **slots;   /* random mode: slots[thread][i] */
static size_t nslots;

static int ring_push(xm_ring_t *q, void *p)
{
    size_t pos = atomic_load_explicit(&q->enq, memory_order_relaxed);
    for (;;) {
        xm_cell_t *c = &q->cell[pos & q->mask];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t d = (intptr_t)seq - (intptr_t)pos;
        if (d == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->enq, &pos, pos + 1,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed)) {
                c->data = p;
                atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
                return 1;
            }
        } else if (d < 0) {
            return 0; /* full */
        } else {
            pos = atomic_load_explicit(&q->enq, memory_order_relaxed);
        }
    }
}

static void *ring_pop(xm_ring_t *q)
{
    size_t pos = atomic_load_explicit(&q->deq, memory_order_relaxed);
    for (;;) {
        xm_cell_t *c = &q->cell[pos & q->mask];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t d = (intptr_t)seq - (intptr_t)(pos + 1);
        if (d == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->deq, &pos, pos + 1,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed)) {
                void *p = c->data;
                atomic_store_explicit(&c->seq, pos + q->mask + 1, memory_order_release);
                return p;
            }
        } else if (d < 0) {
            return NULL; /* empty */
        } else {
            pos = atomic_load_explicit(&q->deq, memory_order_relaxed);
        }
    }
}

/* 16 << e plus jitter below it, e the smaller of two draws from 0..8; at most 4096. */
static size_t xm_size(bench_rng_t *r)
{
    uint64_t x = bench_rng_next(r);
    unsigned e1 = (unsigned)((x >> 8) % 9), e2 = (unsigned)((x >> 16) % 9);
    size_t base = (size_t)MIN_BLOCK << (e1 < e2 ? e1 : e2);
    size_t s = base + (size_t)((x >> 32) % base);
    return s > MAX_BLOCK ? MAX_BLOCK : s;
}

static void *xm_alloc(bench_rng_t *r, int owner)
{
    size_t s = xm_size(r);
    void *p = malloc(s);
    bench_touch(p, s, TAG);
    xm_hdr_t h = {(uint32_t)owner, (uint32_t)s};
    memcpy(p, &h, sizeof h);
    return p;
}

/* Check the header and last byte, free; returns 1 when another thread allocated p. */
static int xm_free(void *p, int me, int nthreads, const char *where)
{
    xm_hdr_t h;
    memcpy(&h, p, sizeof h);
    if (h.owner >= (uint32_t)nthreads || h.size < MIN_BLOCK || h.size > MAX_BLOCK ||
        ((unsigned char *)p)[h.size - 1] != TAG) {
        fprintf(stderr, "xmix: %s: block %p has a bad header (owner %u, size %u)\n", where, p,
                h.owner, h.size);
        abort();
    }
    free(p);
    return h.owner != (uint32_t)me;
}

static void *xm_thread(void *arg)
{
    xm_thread_t *t = arg;
    int me = t->idx, T = t->nthreads;
    bench_rng_t rng;
    bench_rng_seed(&rng, t->args->seed, (uint64_t)me);
    void *local[LOCAL_SLOTS] = {0};
    if (t->mode == MODE_RANDOM) /* set-up: fill this thread's shared slots */
        for (size_t k = 0; k < nslots; k++)
            atomic_store_explicit(&slots[me][k], xm_alloc(&rng, me), memory_order_release);
    xm_ring_t *mine = rings ? &rings[me] : NULL;
    uint64_t mallocs = 0, frees = 0, remote = 0, waits = 0, stopped_frees = 0, unclocked = 0;
    uint64_t malloc_limit = t->args->ops / 2;
    bench_start_wait(t->start);
    double deadline = t->start->deadline;
    for (;;) {
        if (t->args->ops) {
            if (mallocs >= malloc_limit) break;
        } else if (unclocked >= BENCH_CLOCK_EVERY) {
            if (bench_now() >= deadline) break;
            unclocked = 0;
        }
        uint64_t r = bench_rng_next(&rng);
        void *p = xm_alloc(&rng, me);
        mallocs++;
        unclocked += 2;
        if ((unsigned)(r % 100) < t->local_pct) {
            unsigned k = (unsigned)((r >> 8) % LOCAL_SLOTS);
            void *old = local[k];
            local[k] = p;
            if (old) {
                xm_free(old, me, T, "xmix local free");
                frees++;
            }
        } else if (t->mode == MODE_RANDOM) {
            int j = (int)((r >> 8) % (uint64_t)T);
            size_t k = (size_t)((r >> 24) % nslots);
            void *old = atomic_exchange_explicit(&slots[j][k], p, memory_order_acq_rel);
            if (old) {
                remote += xm_free(old, me, T, "xmix slot free");
                frees++;
            }
        } else {
            int j = T > 1 ? (me + 1 + (int)((r >> 8) % (uint64_t)(T - 1))) % T : me;
            xm_ring_t *q = &rings[j];
            /* no deadlock: every waiting thread keeps draining its own inbox */
            for (unsigned spins = 0; !ring_push(q, p);) {
                if (atomic_load_explicit(&q->stopped, memory_order_acquire)) {
                    remote += xm_free(p, me, T, "xmix stopped free");
                    frees++;
                    stopped_frees++;
                    break;
                }
                waits++;
                for (void *x; (x = ring_pop(mine)) != NULL; frees++)
                    remote += xm_free(x, me, T, "xmix queue free");
                bench_backoff(&spins);
            }
            for (int i = 0; i < POP_BATCH; i++) {
                void *x = ring_pop(mine);
                if (!x) break;
                remote += xm_free(x, me, T, "xmix queue free");
                frees++;
                unclocked++;
            }
        }
    }
    if (mine) /* pushers free their blocks themselves from now on */
        atomic_store_explicit(&mine->stopped, 1, memory_order_release);
    for (int k = 0; k < LOCAL_SLOTS; k++) /* after the run: not counted */
        if (local[k]) xm_free(local[k], me, T, "xmix final local free");
    t->mallocs = mallocs;
    t->frees = frees;
    t->remote = remote;
    t->waits = waits;
    t->stopped_frees = stopped_frees;
    return NULL;
}

static const char *xm_extra_str(const bench_args_t *a, const char *key, const char *def)
{
    size_t kl = strlen(key);
    for (int i = 0; i < a->n_extra; i++)
        if (strncmp(a->extra[i], key, kl) == 0 && a->extra[i][kl] == '=')
            return a->extra[i] + kl + 1;
    return def;
}

int main(int argc, char **argv)
{
    bench_args_t a;
    bench_parse_args(argc, argv, &a, 1.0,
                     "xmix: threads malloc blocks of 16 B-4 KiB and hand them to other threads, "
                     "which free them (-x mode=queue|random -x cap=N -x slots=N -x local=P)");
    int T = a.threads;
    const char *ms = xm_extra_str(&a, "mode", "queue");
    int mode = strcmp(ms, "random") == 0 ? MODE_RANDOM : MODE_QUEUE;
    long cap = bench_extra(&a, "cap", DEF_CAP);
    long ns = bench_extra(&a, "slots", DEF_SLOTS);
    long local_pct = bench_extra(&a, "local", DEF_LOCAL);
    if ((mode == MODE_QUEUE && strcmp(ms, "queue") != 0) || cap < 2 || cap > 1 << 24 ||
        (cap & (cap - 1)) || ns < 1 || ns > 1 << 24 || local_pct < 0 || local_pct > 100) {
        fprintf(stderr, "xmix: mode must be queue or random, cap a power of two 2..2^24, slots "
                        "1..2^24, local 0..100\n");
        return 2;
    }
    if (mode == MODE_QUEUE) {
        rings = aligned_alloc(64, sizeof(xm_ring_t) * (size_t)T);
        if (!rings) {
            perror("aligned_alloc");
            return 1;
        }
        for (int i = 0; i < T; i++) {
            xm_ring_t *q = &rings[i];
            q->cell = malloc(sizeof(xm_cell_t) * (size_t)cap);
            if (!q->cell) {
                perror("malloc");
                return 1;
            }
            q->mask = (size_t)cap - 1;
            for (size_t k = 0; k < (size_t)cap; k++) {
                atomic_init(&q->cell[k].seq, k);
                q->cell[k].data = NULL;
            }
            atomic_init(&q->enq, 0);
            atomic_init(&q->deq, 0);
            atomic_init(&q->stopped, 0);
        }
    } else {
        nslots = (size_t)ns;
        slots = malloc(sizeof *slots * (size_t)T);
        if (!slots) {
            perror("malloc");
            return 1;
        }
        for (int i = 0; i < T; i++) {
            slots[i] = malloc(sizeof **slots * nslots);
            if (!slots[i]) {
                perror("malloc");
                return 1;
            }
            for (size_t k = 0; k < nslots; k++)
                atomic_init(&slots[i][k], NULL);
        }
    }
    xm_thread_t ts[T];
    bench_start_t start;
    bench_start_init(&start, T);
    for (int i = 0; i < T; i++)
        ts[i] = (xm_thread_t){.args = &a, .start = &start, .idx = i, .nthreads = T,
                              .mode = mode, .local_pct = (unsigned)local_pct};
    double el = bench_run_threads(T, &start, xm_thread, ts, sizeof ts[0], a.seconds);
    uint64_t mallocs = 0, frees = 0, remote = 0, waits = 0, stopped_frees = 0;
    for (int i = 0; i < T; i++) {
        mallocs += ts[i].mallocs;
        frees += ts[i].frees;
        remote += ts[i].remote;
        waits += ts[i].waits;
        stopped_frees += ts[i].stopped_frees;
    }
    /* what is still in flight is freed here, outside the timed part */
    for (int i = 0; i < T; i++) {
        if (mode == MODE_QUEUE) {
            for (void *x; (x = ring_pop(&rings[i])) != NULL;)
                xm_free(x, -1, T, "xmix final drain");
            free(rings[i].cell);
        } else {
            for (size_t k = 0; k < nslots; k++) {
                void *x = atomic_load_explicit(&slots[i][k], memory_order_acquire);
                if (x) xm_free(x, -1, T, "xmix final drain");
            }
            free(slots[i]);
        }
    }
    free(rings);
    free(slots);
    uint64_t ops = mallocs + frees;
    printf("ops_per_sec=%.0f ops=%llu seconds=%.3f threads=%d mode=%s %s=%ld local_pct=%ld "
           "remote_pct=%.1f",
           (double)ops / el, (unsigned long long)ops, el, T, ms,
           mode == MODE_QUEUE ? "cap" : "slots", mode == MODE_QUEUE ? cap : ns, local_pct,
           frees ? 100.0 * (double)remote / (double)frees : 0.0);
    if (mode == MODE_QUEUE)
        printf(" full_waits=%llu stopped_frees=%llu", (unsigned long long)waits,
               (unsigned long long)stopped_frees);
    printf("\n");
    return 0;
}
