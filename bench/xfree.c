/* bench/xfree.c - cross-thread frees of small blocks in bursts.
 *
 * T threads in a ring. Each thread loops:
 *   1. malloc a burst of BURST blocks (-x burst=N, default 1024) of SIZE bytes (-x size=N,
 *      default 64), writing each;
 *   2. hand the whole burst (its pointer array) to the next thread's mailbox;
 *   3. free, each checked, every burst waiting in its own mailbox.
 * A mailbox holds MAILBOX_CAP bursts. When the next one is full, the sender waits for room
 * (bench_backoff), freeing the bursts that reach its own mailbox meanwhile; when its owner has
 * stopped (the end of a run), the sender frees its burst itself, counted in local_frees.
 * The wait is what keeps the frees remote: without it a thread that falls behind (descheduled,
 * or slowed by remote frees, which cost more than a local malloc and free) finds its mailbox
 * refilled before each drain and its sender frees almost everything locally (measured: about
 * 90% of the frees, under hakmem and mimalloc alike), a state that sustains itself.
 * So nearly every block is freed by a thread other than the one that allocated it, many at a
 * time, all of one size class: the shape of a pipeline that passes batches of small messages
 * from stage to stage. (With -t 1 the ring is one thread and every free is its own.)
 * A mailbox is a mutex-protected array of bursts; the pointers are copied in by the sender and
 * out by the receiver, so no pointer array travels between threads.
 * ops = malloc + free calls. With -n N each thread mallocs N/2 blocks (whole bursts), so the
 * process makes a fixed number of calls, N per thread: whole-process CPU time compares between
 * allocators. Blocks still in a mailbox when the threads stop are freed by the main thread after
 * the clock stops (not counted in ops).
 */
#include <pthread.h>
#include "bench_common.h"

#define DEF_BURST 1024
#define DEF_SIZE 64
#define MAILBOX_CAP 8 /* bursts */
#define TAG 0xC3

typedef struct {
    _Alignas(64) pthread_mutex_t lock;
    unsigned n;   /* bursts waiting, 0..MAILBOX_CAP; under lock */
    int stopped;  /* the owner drains no more (set once, under lock) */
    void **slots; /* MAILBOX_CAP * burst pointers; burst k at slots[k * burst]; under lock */
} mailbox_t;

typedef struct {
    bench_args_t *args;
    bench_start_t *start;
    int idx, nthreads;
    unsigned burst;
    size_t size;
    uint64_t ops, local_frees;
} xfree_thread_t;

static mailbox_t *mailboxes;

/* Take every burst waiting in mb and free its blocks; returns the blocks freed. */
static uint64_t drain_mailbox(mailbox_t *mb, void **tmp, unsigned burst)
{
    pthread_mutex_lock(&mb->lock);
    size_t n = (size_t)mb->n * burst;
    memcpy(tmp, mb->slots, n * sizeof(void *));
    mb->n = 0;
    pthread_mutex_unlock(&mb->lock);
    for (size_t i = 0; i < n; i++) {
        bench_check(tmp[i], TAG, "xfree remote free");
        free(tmp[i]);
    }
    return n;
}

static void *xfree_thread(void *arg)
{
    xfree_thread_t *t = arg;
    unsigned burst = t->burst;
    size_t size = t->size;
    /* set-up allocations, before the clock starts */
    void **out = malloc((size_t)burst * sizeof(void *));
    void **tmp = malloc((size_t)MAILBOX_CAP * burst * sizeof(void *));
    if (!out || !tmp) {
        fprintf(stderr, "xfree: no memory for the burst arrays\n");
        exit(3);
    }
    mailbox_t *mine = &mailboxes[t->idx];
    mailbox_t *next = &mailboxes[(t->idx + 1) % t->nthreads];
    uint64_t ops = 0, local = 0, mallocs = 0, unclocked = 0;
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
        unclocked += burst;
        for (unsigned i = 0; i < burst; i++) {
            out[i] = malloc(size);
            bench_touch(out[i], size, TAG);
        }
        mallocs += burst;
        ops += burst;
        /* no deadlock: every waiting thread keeps draining its own mailbox */
        for (unsigned spins = 0;;) {
            pthread_mutex_lock(&next->lock);
            int sent = next->n < MAILBOX_CAP, stopped = next->stopped;
            if (sent) memcpy(next->slots + (size_t)next->n++ * burst, out, burst * sizeof(void *));
            pthread_mutex_unlock(&next->lock);
            if (sent) break;
            if (stopped) {
                for (unsigned i = 0; i < burst; i++) {
                    bench_check(out[i], TAG, "xfree local free");
                    free(out[i]);
                }
                local += burst;
                ops += burst;
                break;
            }
            ops += drain_mailbox(mine, tmp, burst);
            bench_backoff(&spins);
        }
        ops += drain_mailbox(mine, tmp, burst);
    }
    pthread_mutex_lock(&mine->lock);
    mine->stopped = 1; /* senders waiting on this mailbox free their bursts themselves now */
    pthread_mutex_unlock(&mine->lock);
    free(out);
    free(tmp);
    t->ops = ops;
    t->local_frees = local;
    return NULL;
}

int main(int argc, char **argv)
{
    bench_args_t a;
    bench_parse_args(argc, argv, &a, 1.0,
                     "xfree: threads in a ring malloc bursts of small blocks and hand each burst "
                     "to the next thread, which frees it (-x burst=N -x size=N)");
    int T = a.threads;
    long burst = bench_extra(&a, "burst", DEF_BURST);
    long size = bench_extra(&a, "size", DEF_SIZE);
    if (burst < 1 || burst > 1 << 20 || size < 1 || size > 1 << 24) {
        fprintf(stderr, "xfree: burst must be 1..%d and size 1..%d\n", 1 << 20, 1 << 24);
        return 2;
    }
    mailboxes = aligned_alloc(64, sizeof(mailbox_t) * (size_t)T);
    if (!mailboxes) {
        perror("aligned_alloc");
        return 1;
    }
    for (int i = 0; i < T; i++) {
        pthread_mutex_init(&mailboxes[i].lock, NULL);
        mailboxes[i].n = 0;
        mailboxes[i].stopped = 0;
        mailboxes[i].slots = malloc((size_t)MAILBOX_CAP * (size_t)burst * sizeof(void *));
        if (!mailboxes[i].slots) {
            perror("malloc");
            return 1;
        }
    }
    xfree_thread_t ts[T];
    bench_start_t start;
    bench_start_init(&start, T);
    for (int i = 0; i < T; i++)
        ts[i] = (xfree_thread_t){.args = &a, .start = &start, .idx = i, .nthreads = T,
                                 .burst = (unsigned)burst, .size = (size_t)size};
    double el = bench_run_threads(T, &start, xfree_thread, ts, sizeof ts[0], a.seconds);
    uint64_t total = 0, local = 0;
    for (int i = 0; i < T; i++) {
        total += ts[i].ops;
        local += ts[i].local_frees;
    }
    /* bursts still waiting in mailboxes are freed here, outside the timed part */
    for (int i = 0; i < T; i++) {
        for (size_t k = 0; k < (size_t)mailboxes[i].n * (size_t)burst; k++) {
            bench_check(mailboxes[i].slots[k], TAG, "xfree final drain");
            free(mailboxes[i].slots[k]);
        }
        free(mailboxes[i].slots);
        pthread_mutex_destroy(&mailboxes[i].lock);
    }
    free(mailboxes);
    printf("ops_per_sec=%.0f ops=%llu seconds=%.3f threads=%d burst=%ld size=%ld "
           "local_frees=%llu\n",
           (double)total / el, (unsigned long long)total, el, T, burst, size,
           (unsigned long long)local);
    return 0;
}
