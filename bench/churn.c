/* bench/churn.c - short-lived thread churn: threads are created, do a little allocation work and
 * exit, thousands of times. This stresses per-thread cache set-up and tear-down (a thread cache
 * that is expensive to create, or leaks its blocks at thread exit, shows here).
 *
 * The main thread starts T workers at a time and joins them, until the duration (or -n threads
 * in total) is reached. Each worker does WORK_OPS ops on a private window of 64 slots with sizes
 * 16..4096 B, then frees whatever is still live and exits. ops = malloc + free calls;
 * threads_per_sec is printed too.
 */
#include "bench_common.h"

#define WORK_OPS 1000 /* -x work=N changes it */
#define SLOTS 64
#define MIN_SIZE 16
#define MAX_SIZE 4096

typedef struct {
    uint64_t seed, id, work, ops;
} churn_thread_t;

static void *churn_thread(void *arg)
{
    churn_thread_t *t = arg;
    void *slot[SLOTS] = {0};
    bench_rng_t rng;
    bench_rng_seed(&rng, t->seed, t->id);
    uint64_t ops = 0;
    for (uint64_t k = 0; k < t->work; k++) {
        uint64_t r = bench_rng_next(&rng);
        unsigned i = (unsigned)(r >> 58) & (SLOTS - 1);
        if (slot[i]) {
            bench_check(slot[i], (unsigned char)i, "churn free");
            free(slot[i]);
            slot[i] = NULL;
        } else {
            size_t sz = MIN_SIZE + (size_t)((r & 0xffffffffu) % (MAX_SIZE - MIN_SIZE + 1));
            slot[i] = malloc(sz);
            bench_touch(slot[i], sz, (unsigned char)i);
        }
        ops++;
    }
    for (unsigned i = 0; i < SLOTS; i++)
        if (slot[i]) {
            free(slot[i]);
            ops++;
        }
    t->ops = ops;
    return NULL;
}

int main(int argc, char **argv)
{
    bench_args_t a;
    bench_parse_args(argc, argv, &a, 1.0,
                     "churn: create T threads at a time, each does -x work=N (1000) ops and "
                     "exits; -n = total threads");
    int T = a.threads;
    uint64_t work = (uint64_t)bench_extra(&a, "work", WORK_OPS);
    pthread_t th[T];
    churn_thread_t ts[T];
    uint64_t created = 0, total = 0;
    double t0 = bench_now(), deadline = t0 + a.seconds;
    for (;;) {
        if (a.ops ? created >= a.ops : bench_now() >= deadline) break;
        for (int i = 0; i < T; i++) {
            ts[i] = (churn_thread_t){.seed = a.seed, .id = created + (uint64_t)i, .work = work};
            if (pthread_create(&th[i], NULL, churn_thread, &ts[i])) {
                perror("pthread_create");
                return 1;
            }
        }
        for (int i = 0; i < T; i++) {
            pthread_join(th[i], NULL);
            total += ts[i].ops;
        }
        created += (uint64_t)T;
    }
    double el = bench_now() - t0;
    printf("ops_per_sec=%.0f ops=%llu seconds=%.3f threads=%d threads_created=%llu "
           "threads_per_sec=%.0f work=%llu\n",
           (double)total / el, (unsigned long long)total, el, T, (unsigned long long)created,
           (double)created / el, (unsigned long long)work);
    return 0;
}
