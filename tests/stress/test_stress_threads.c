/* tests/stress/test_stress_threads.c - cross-thread frees, many short-lived threads, and
 * allocation inside late thread-exit destructors, through the real libhakmem.so (LD_PRELOAD).
 *
 * Each scenario runs in a fresh forked child (tl_run_in_child) so that its peak RSS (VmHWM) is
 * its own, and under a watchdog so a deadlock fails the test instead of hanging it. Children
 * report failures with a message on stderr and a non-zero exit code. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testlib.h"

static void run_scenario(int (*fn)(void *), int timeout_s)
{
    char why[256];
    if (tl_run_in_child(fn, NULL, timeout_s * tl_scale(), why, sizeof why) != 0)
        fail_msg("%s", why);
}

/* ---- producer/consumer: blocks malloc'd by producers, freed by consumers ------------------ */

#define PC_BATCH 32
#define PC_QCAP 256 /* batches in flight: the live set stays below ~16 MiB */
#define PC_HWM_LIMIT_KIB (256L * 1024)

typedef struct pc_batch {
    void *p[PC_BATCH];
    size_t n[PC_BATCH];
} pc_batch_t;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    pc_batch_t q[PC_QCAP];
    unsigned head, tail; /* monotonic */
    int producers_left;
    long bad;
    long freed;
} pc = {.mu = PTHREAD_MUTEX_INITIALIZER,
        .not_empty = PTHREAD_COND_INITIALIZER,
        .not_full = PTHREAD_COND_INITIALIZER};

static long pc_ops_per_producer;

static void *pc_producer(void *arg)
{
    unsigned long long rng = 0x51ed270b2c9f1d37ull + (uintptr_t)arg;
    for (long done = 0; done < pc_ops_per_producer; done += PC_BATCH) {
        pc_batch_t b;
        for (int i = 0; i < PC_BATCH; i++) {
            unsigned r = (unsigned)(tl_rand(&rng) % 100);
            size_t n = r < 80 ? 16 + tl_rand(&rng) % 1009 : r < 98 ? 1025 + tl_rand(&rng) % 31744
                                                                   : 32769 + tl_rand(&rng) % 100000;
            unsigned char *p = malloc(n);
            if (!p) {
                __atomic_add_fetch(&pc.bad, 1, __ATOMIC_RELAXED);
                n = 0;
            } else {
                memcpy(p, &n, sizeof n); /* n >= 8: the size, then a tail byte */
                p[n - 1] = (unsigned char)n;
            }
            b.p[i] = p;
            b.n[i] = n;
        }
        pthread_mutex_lock(&pc.mu);
        while (pc.head - pc.tail == PC_QCAP)
            pthread_cond_wait(&pc.not_full, &pc.mu);
        pc.q[pc.head++ % PC_QCAP] = b;
        pthread_cond_signal(&pc.not_empty);
        pthread_mutex_unlock(&pc.mu);
    }
    pthread_mutex_lock(&pc.mu);
    pc.producers_left--;
    pthread_cond_broadcast(&pc.not_empty);
    pthread_mutex_unlock(&pc.mu);
    return NULL;
}

static void *pc_consumer(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&pc.mu);
        while (pc.head == pc.tail && pc.producers_left > 0)
            pthread_cond_wait(&pc.not_empty, &pc.mu);
        if (pc.head == pc.tail) {
            pthread_mutex_unlock(&pc.mu);
            return NULL;
        }
        pc_batch_t b = pc.q[pc.tail++ % PC_QCAP];
        pthread_cond_signal(&pc.not_full);
        pthread_mutex_unlock(&pc.mu);
        for (int i = 0; i < PC_BATCH; i++) {
            unsigned char *p = b.p[i];
            if (!p)
                continue;
            size_t n;
            memcpy(&n, p, sizeof n);
            if (n != b.n[i] || p[n - 1] != (unsigned char)n)
                __atomic_add_fetch(&pc.bad, 1, __ATOMIC_RELAXED);
            free(p);
            __atomic_add_fetch(&pc.freed, 1, __ATOMIC_RELAXED);
        }
    }
}

static int scenario_producer_consumer(void *unused)
{
    (void)unused;
    enum { NP = 2, NC = 2 };
    pc_ops_per_producer = 1500000L * tl_scale(); /* 3 M blocks in all */
    pc.producers_left = NP;
    pthread_t t[NP + NC];
    for (long i = 0; i < NP; i++)
        if (pthread_create(&t[i], NULL, pc_producer, (void *)i))
            TL_FAILF("pthread_create");
    for (long i = 0; i < NC; i++)
        if (pthread_create(&t[NP + i], NULL, pc_consumer, NULL))
            TL_FAILF("pthread_create");
    for (int i = 0; i < NP + NC; i++)
        pthread_join(t[i], NULL);
    long hwm = tl_status_kib("VmHWM");
    fprintf(stderr, "    producer/consumer: %ld blocks freed cross-thread, VmHWM %ld KiB\n",
            pc.freed, hwm);
    if (pc.bad)
        TL_FAILF("%ld blocks were NULL or corrupt when the consumer got them", pc.bad);
    long expect = NP * ((pc_ops_per_producer + PC_BATCH - 1) / PC_BATCH) * PC_BATCH;
    if (pc.freed != expect)
        TL_FAILF("freed %ld blocks, expected %ld", pc.freed, expect);
    if (hwm < 0 || hwm > PC_HWM_LIMIT_KIB)
        TL_FAILF("VmHWM %ld KiB above %ld KiB: cross-thread frees pile up or leak", hwm,
              PC_HWM_LIMIT_KIB);
    return 0;
}

static void test_producer_consumer_cross_thread_free(void **s)
{
    (void)s;
    run_scenario(scenario_producer_consumer, 180);
}

/* ---- thousands of short-lived threads ---------------------------------------------------- */

#define MAILBOX 64
static struct {
    pthread_mutex_t mu;
    unsigned char *p[MAILBOX];
    size_t n[MAILBOX];
    long bad;
} mb = {.mu = PTHREAD_MUTEX_INITIALIZER};

static const size_t short_sizes[] = {16,   24,   48,    100,   128,   200,   256,   500,
                                     1000, 1500, 2048,  3000,  4096,  6000,  8192,  12000,
                                     16384, 20000, 28000, 32768, 40000, 100000};
#define N_SHORT (sizeof short_sizes / sizeof short_sizes[0])

static void *short_thread(void *arg)
{
    unsigned long long rng = 0x2545f4914f6cdd1dull ^ ((uintptr_t)arg * 0x9e3779b97f4a7c15ull);
    unsigned char *mine[2 * N_SHORT];
    size_t sz[2 * N_SHORT];
    for (size_t i = 0; i < 2 * N_SHORT; i++) {
        sz[i] = short_sizes[i % N_SHORT] - (tl_rand(&rng) % 8);
        mine[i] = malloc(sz[i]);
        if (!mine[i]) {
            __atomic_add_fetch(&mb.bad, 1, __ATOMIC_RELAXED);
            return NULL;
        }
        memset(mine[i], (int)(sz[i] & 0xff), sz[i]);
    }
    /* trade 4 blocks with the mailbox: free blocks of earlier threads, leave ours */
    pthread_mutex_lock(&mb.mu);
    for (int k = 0; k < 4; k++) {
        size_t slot = tl_rand(&rng) % MAILBOX;
        size_t i = tl_rand(&rng) % (2 * N_SHORT);
        unsigned char *old = mb.p[slot];
        if (old) {
            size_t n = mb.n[slot];
            if (old[0] != (unsigned char)n || old[n - 1] != (unsigned char)n)
                mb.bad++;
            free(old);
        }
        mb.p[slot] = mine[i];
        mb.n[slot] = sz[i];
        mine[i] = NULL;
    }
    pthread_mutex_unlock(&mb.mu);
    for (size_t i = 0; i < 2 * N_SHORT; i++)
        free(mine[i]);
    return NULL;
}

static int scenario_short_threads(void *unused)
{
    (void)unused;
    const long total = 20000L * tl_scale(); /* 200,000 under make test-long */
    enum { WAVE = 4 };
    for (long i = 0; i < total; i += WAVE) {
        pthread_t t[WAVE];
        for (int k = 0; k < WAVE; k++)
            if (pthread_create(&t[k], NULL, short_thread, (void *)(i + k)))
                TL_FAILF("pthread_create failed at thread %ld", i + k);
        for (int k = 0; k < WAVE; k++)
            pthread_join(t[k], NULL);
    }
    long hwm = tl_status_kib("VmHWM"), rss = tl_status_kib("VmRSS");
    for (int k = 0; k < MAILBOX; k++)
        free(mb.p[k]);
    fprintf(stderr, "    %ld short-lived threads: VmHWM %ld KiB, VmRSS at the end %ld KiB\n", total,
            hwm, rss);
    if (mb.bad)
        TL_FAILF("%ld allocation failures or corrupt blocks handed between threads", mb.bad);
    if (hwm > 256L * 1024)
        TL_FAILF("VmHWM %ld KiB above 256 MiB: exited threads' memory is not reused", hwm);
    if (rss > 128L * 1024)
        TL_FAILF("VmRSS %ld KiB above 128 MiB after all threads exited", rss);
    return 0;
}

static void test_many_short_lived_threads(void **s)
{
    (void)s;
    run_scenario(scenario_short_threads, 180);
}

/* ---- allocation in late thread-exit destructors ------------------------------------------ */

#define KEEP_MAX 8192
static pthread_key_t late_key;
static struct {
    pthread_mutex_t mu;
    unsigned char *p[KEEP_MAX];
    size_t n[KEEP_MAX];
    int count;
    long bad;
} keep = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void keep_block(size_t n, unsigned char tag)
{
    unsigned char *p = malloc(n);
    if (!p) {
        __atomic_add_fetch(&keep.bad, 1, __ATOMIC_RELAXED);
        return;
    }
    memset(p, tag, n);
    pthread_mutex_lock(&keep.mu);
    if (keep.count < KEEP_MAX) {
        keep.p[keep.count] = p;
        keep.n[keep.count++] = n;
        p = NULL;
    }
    pthread_mutex_unlock(&keep.mu);
    free(p);
}

static int churn(unsigned seed)
{
    static const size_t sizes[] = {24, 200, 3000, 20000, 100000};
    for (int i = 0; i < 20; i++) {
        size_t n = sizes[(seed + i) % 5];
        unsigned char *p = malloc(n);
        unsigned char *c = calloc(1, n);
        if (!p || !c)
            return -1;
        memset(p, 0x5a, n);
        for (size_t k = 0; k < n; k += 97)
            if (c[k])
                return -1;
        unsigned char *r = realloc(p, n * 2 + 1);
        if (!r || r[n - 1] != 0x5a)
            return -1;
        free(r);
        free(c);
    }
    return 0;
}

/* The key destructor re-arms itself for three more rounds (PTHREAD_DESTRUCTOR_ITERATIONS is
 * 4), so it runs after every other destructor of round 1, hakmem's own thread teardown
 * included. Each round allocates, frees, and keeps one block for the main thread. */
static void late_destructor(void *value)
{
    uintptr_t round = (uintptr_t)value;
    if (churn((unsigned)round) != 0)
        __atomic_add_fetch(&keep.bad, 1, __ATOMIC_RELAXED);
    keep_block(100 + round * 1000, (unsigned char)(0xa0 + round));
    if (round < 4)
        pthread_setspecific(late_key, (void *)(round + 1)); /* may calloc: key index >= 32 */
}

int __cxa_thread_atexit_impl(void (*func)(void *), void *obj, void *dso_symbol);
extern void *__dso_handle;

/* a C++ thread_local-style destructor (runs before the key destructors) */
static void tls_dtor(void *obj)
{
    free(obj); /* a block the thread body allocated */
    keep_block(777, 0x77);
}

static void *late_thread(void *arg)
{
    (void)arg;
    void *body = malloc(5000);
    if (!body || churn(1) != 0)
        __atomic_add_fetch(&keep.bad, 1, __ATOMIC_RELAXED);
    __cxa_thread_atexit_impl(tls_dtor, body, &__dso_handle);
    pthread_setspecific(late_key, (void *)1);
    return NULL;
}

static int scenario_late_destructors(void *unused)
{
    (void)unused;
    /* push the test's key to index >= 32: pthread_setspecific then callocs its second level */
    pthread_key_t filler[40];
    for (int i = 0; i < 40; i++)
        if (pthread_key_create(&filler[i], NULL))
            TL_FAILF("pthread_key_create");
    if (pthread_key_create(&late_key, late_destructor))
        TL_FAILF("pthread_key_create");
    const int threads = 1000 * tl_scale();
    for (int i = 0; i < threads; i += 4) {
        pthread_t t[4];
        for (int k = 0; k < 4; k++)
            if (pthread_create(&t[k], NULL, late_thread, NULL))
                TL_FAILF("pthread_create");
        for (int k = 0; k < 4; k++)
            pthread_join(t[k], NULL);
        /* free what the dead threads allocated in their destructors */
        pthread_mutex_lock(&keep.mu);
        for (int j = 0; j < keep.count; j++) {
            size_t n = keep.n[j];
            unsigned char tag = keep.p[j][0];
            for (size_t b = 0; b < n; b++)
                if (keep.p[j][b] != tag)
                    keep.bad++;
            free(keep.p[j]);
        }
        int got = keep.count;
        keep.count = 0;
        pthread_mutex_unlock(&keep.mu);
        if (got != 4 * 5) /* per thread: tls_dtor + 4 rounds of the key destructor */
            TL_FAILF("threads %d..%d left %d blocks from destructors, expected 20", i, i + 3, got);
    }
    long hwm = tl_status_kib("VmHWM");
    fprintf(stderr, "    %d threads with late destructors: VmHWM %ld KiB\n", threads, hwm);
    if (keep.bad)
        TL_FAILF("%ld failures or corrupt blocks in thread-exit destructors", keep.bad);
    if (hwm > 256L * 1024)
        TL_FAILF("VmHWM %ld KiB above 256 MiB: memory used in late destructors leaks", hwm);
    return 0;
}

static void test_late_tls_destructors(void **s)
{
    (void)s;
    run_scenario(scenario_late_destructors, 120);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_producer_consumer_cross_thread_free),
        cmocka_unit_test(test_many_short_lived_threads),
        cmocka_unit_test(test_late_tls_destructors),
    };
    return cmocka_run_group_tests_name("stress_threads", tests, NULL, NULL);
}
