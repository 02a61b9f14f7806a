/* tests/stress/test_stress_longrun.c - a long-running producer/consumer whose RSS must stay
 * flat, through the real libhakmem.so (LD_PRELOAD).
 *
 * PRODUCERS threads malloc blocks (mostly small, some mid, a few large), fill them, and pass
 * them in batches through a bounded queue to CONSUMERS threads, which check and free them: every
 * block is freed by a thread other than the one that allocated it, and the live set is bounded
 * by the queue. The main thread samples VmRSS every SAMPLE_MS. The run lasts RUN_SECONDS
 * (x10 under HAKMEM_TEST_LONG=1). The check: the largest sample of the last quarter of the run
 * may not exceed the early plateau (the largest sample of the second quarter) by more than
 * 25% + 16 MiB. A leak, or cross-thread frees piling up in caches that are never reused,
 * shows as RSS growing with time.
 *
 * Each run happens in a fresh process (this binary re-executed with --scenario), once with the
 * defaults and once with POOL_ACE=1. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "testlib.h"

#define PRODUCERS 2
#define CONSUMERS 2
#define BATCH 64
#define QCAP 128 /* batches in flight */
#define RUN_SECONDS 8
#define SAMPLE_MS 100
#define MAX_SAMPLES 20000

typedef struct batch {
    unsigned char *p[BATCH];
    size_t n[BATCH];
} batch_t;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    batch_t q[QCAP];
    unsigned head, tail; /* monotonic */
    int stop;            /* producers stop producing */
    int producers_left;
} q = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .not_empty = PTHREAD_COND_INITIALIZER,
       .not_full = PTHREAD_COND_INITIALIZER};

static long produced, consumed, bad;

static size_t pick_size(unsigned long long *rng, unsigned phase)
{
    unsigned r = (unsigned)(tl_rand(rng) % 1000);
    /* the mix drifts with the phase, so the classes in use change over the run */
    size_t small_max = 64 + 64 * (phase % 8);
    if (r < 850)
        return 16 + tl_rand(rng) % small_max; /* >= 16: the size word and a tail byte */
    if (r < 990)
        return 1024 + tl_rand(rng) % (16384 << (phase % 2));
    return 40000 + tl_rand(rng) % 400000;
}

static void *producer(void *arg)
{
    unsigned long long rng = 0x6a09e667f3bcc909ull ^ ((uintptr_t)arg * 0x9e3779b97f4a7c15ull);
    for (unsigned long round = 0; !__atomic_load_n(&q.stop, __ATOMIC_RELAXED); round++) {
        batch_t b;
        unsigned phase = (unsigned)(round / 2000);
        for (int i = 0; i < BATCH; i++) {
            size_t n = pick_size(&rng, phase);
            unsigned char *p = malloc(n);
            if (!p) {
                __atomic_add_fetch(&bad, 1, __ATOMIC_RELAXED);
                n = 0;
            } else {
                memcpy(p, &n, sizeof n); /* n >= 8 */
                memset(p + sizeof n, (int)(n & 0xff), n - sizeof n > 64 ? 64 : n - sizeof n);
                p[n - 1] = (unsigned char)(n >> 3);
            }
            b.p[i] = p;
            b.n[i] = n;
        }
        __atomic_add_fetch(&produced, BATCH, __ATOMIC_RELAXED);
        pthread_mutex_lock(&q.mu);
        while (q.head - q.tail == QCAP)
            pthread_cond_wait(&q.not_full, &q.mu);
        q.q[q.head++ % QCAP] = b;
        pthread_cond_signal(&q.not_empty);
        pthread_mutex_unlock(&q.mu);
    }
    pthread_mutex_lock(&q.mu);
    q.producers_left--;
    pthread_cond_broadcast(&q.not_empty);
    pthread_mutex_unlock(&q.mu);
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&q.mu);
        while (q.head == q.tail && q.producers_left > 0)
            pthread_cond_wait(&q.not_empty, &q.mu);
        if (q.head == q.tail) {
            pthread_mutex_unlock(&q.mu);
            return NULL;
        }
        batch_t b = q.q[q.tail++ % QCAP];
        pthread_cond_signal(&q.not_full);
        pthread_mutex_unlock(&q.mu);
        for (int i = 0; i < BATCH; i++) {
            unsigned char *p = b.p[i];
            if (!p)
                continue;
            size_t n;
            memcpy(&n, p, sizeof n);
            if (n != b.n[i] || p[n - 1] != (unsigned char)(n >> 3) ||
                (n - 1 > sizeof n && p[sizeof n] != (unsigned char)(n & 0xff)))
                __atomic_add_fetch(&bad, 1, __ATOMIC_RELAXED);
            free(p);
        }
        __atomic_add_fetch(&consumed, BATCH, __ATOMIC_RELAXED);
    }
}

static long samples[MAX_SAMPLES];

static long max_of(int from, int to)
{
    long m = 0;
    for (int i = from; i < to; i++)
        if (samples[i] > m)
            m = samples[i];
    return m;
}

static int scenario_longrun(void)
{
    int seconds = RUN_SECONDS * tl_scale();
    q.producers_left = PRODUCERS;
    pthread_t t[PRODUCERS + CONSUMERS];
    for (long i = 0; i < PRODUCERS; i++)
        if (pthread_create(&t[i], NULL, producer, (void *)i))
            return 1;
    for (long i = 0; i < CONSUMERS; i++)
        if (pthread_create(&t[PRODUCERS + i], NULL, consumer, NULL))
            return 1;
    /* sampling timer: absolute deadlines, so the period does not drift */
    int n = 0, want = seconds * 1000 / SAMPLE_MS;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    while (n < want && n < MAX_SAMPLES) {
        next.tv_nsec += SAMPLE_MS * 1000000L;
        if (next.tv_nsec >= 1000000000L) {
            next.tv_sec++;
            next.tv_nsec -= 1000000000L;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
            ;
        samples[n++] = tl_status_kib("VmRSS");
    }
    __atomic_store_n(&q.stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < PRODUCERS + CONSUMERS; i++)
        pthread_join(t[i], NULL);
    long early = max_of(n / 4, n / 2), late = max_of(n - n / 4, n);
    long limit = early + early / 4 + 16 * 1024;
    fprintf(stderr, "    %d s, %d producers -> %d consumers: %ld blocks allocated, %ld freed "
                    "cross-thread\n",
            seconds, PRODUCERS, CONSUMERS, produced, consumed);
    fprintf(stderr, "    VmRSS samples (every %d ms, %d in all), KiB:", SAMPLE_MS, n);
    for (int i = 0; i < n; i += n / 16 > 0 ? n / 16 : 1)
        fprintf(stderr, " %ld", samples[i]);
    fprintf(stderr, "\n    early plateau (2nd quarter) max %ld KiB, last quarter max %ld KiB, "
                    "limit %ld KiB\n",
            early, late, limit);
    if (bad) {
        fprintf(stderr, "    FAIL: %ld blocks NULL or corrupt\n", bad);
        return 1;
    }
    if (produced != consumed) {
        fprintf(stderr, "    FAIL: %ld produced, %ld consumed\n", produced, consumed);
        return 1;
    }
    if (n < 8 || early <= 0) {
        fprintf(stderr, "    FAIL: not enough VmRSS samples\n");
        return 1;
    }
    if (late > limit) {
        fprintf(stderr, "    FAIL: VmRSS grew from %ld KiB to %ld KiB over the run\n", early, late);
        return 1;
    }
    return 0;
}

/* ---- the CMocka side --------------------------------------------------------------------- */

static void run_self(const char *const extra_env[])
{
    char why[256];
    if (tl_run_scenario("longrun", extra_env, RUN_SECONDS * tl_scale() + 120, why, sizeof why))
        fail_msg("producer/consumer: %s", why);
}

static void test_longrun_rss_flat(void **s)
{
    (void)s;
    run_self(NULL);
}

static void test_longrun_rss_flat_ace(void **s)
{
    (void)s;
    const char *const env[] = {"POOL_ACE=1", NULL};
    run_self(env);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--scenario") == 0 && strcmp(argv[2], "longrun") == 0)
        return scenario_longrun();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_longrun_rss_flat),
        cmocka_unit_test(test_longrun_rss_flat_ace),
    };
    return cmocka_run_group_tests_name("stress_longrun", tests, NULL, NULL);
}
