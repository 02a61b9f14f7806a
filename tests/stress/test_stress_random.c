/* tests/stress/test_stress_random.c - a multithreaded random driver of the whole allocation
 * API through the real libhakmem.so (LD_PRELOAD).
 *
 * THREADS threads share a table of SLOTS blocks, one mutex per slot. Each step picks a random
 * slot: an empty slot gets a block from a random allocating call (malloc, calloc, realloc(NULL),
 * reallocarray(NULL), posix_memalign, aligned_alloc, memalign, valloc, pvalloc); a full slot's
 * block is first checked against its per-block pattern, then freed, realloc'd,
 * reallocarray'd, measured with malloc_usable_size, or realloc'd to 0. Slots are shared, so
 * most blocks are freed or resized by a thread other than the one that allocated them. Sizes
 * run from 0 to 8 MiB, weighted toward small, with the class boundaries drawn on purpose;
 * alignments are random powers of two up to 1 MiB (memalign also gets non-powers of two).
 *
 * Checked on every call: non-NULL for every possible request, alignment, calloc zeroed,
 * malloc_usable_size >= the request, the pattern intact before free/realloc, realloc keeping
 * the common prefix, impossible requests returning NULL with ENOMEM (EINVAL for a bad
 * posix_memalign alignment) and leaving the old block valid.
 *
 * Each run lasts RUN_SECONDS (x10 under HAKMEM_TEST_LONG=1) and prints its operation counts.
 * Runs happen in a fresh process (this binary re-executed with --scenario) so that
 * POOL_ACE=1 can be given to the allocator at start-up; a third run samples with the heap
 * profiler (HAKMEM_PROF=1). */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
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

#define THREADS 4
#define SLOTS 4096
#define RUN_SECONDS 3

enum op {
    OP_MALLOC,
    OP_CALLOC,
    OP_REALLOC_NULL,
    OP_REALLOCARRAY_NULL,
    OP_POSIX_MEMALIGN,
    OP_ALIGNED_ALLOC,
    OP_MEMALIGN,
    OP_VALLOC,
    OP_PVALLOC,
    OP_FREE,
    OP_REALLOC,
    OP_REALLOCARRAY,
    OP_REALLOC_ZERO,
    OP_USABLE_SIZE,
    OP_IMPOSSIBLE,
    OP_CHECKED, /* pattern checks (before each free/realloc/usable_size) */
    N_OPS
};
static const char *const op_names[N_OPS] = {
    "malloc",       "calloc",     "realloc(NULL)", "reallocarray(NULL)", "posix_memalign",
    "aligned_alloc", "memalign",  "valloc",        "pvalloc",            "free",
    "realloc",      "reallocarray", "realloc(p,0)", "malloc_usable_size", "impossible",
    "pattern checks"};

typedef struct slot {
    pthread_mutex_t mu;
    unsigned char *p; /* NULL: empty */
    size_t size;      /* bytes requested (and filled) */
    uint64_t tag;     /* pattern seed */
    /* the last HIST operations on this slot, newest at hist_n - 1 (mod HIST): printed if the
     * allocator aborts while this thread works on the slot */
    struct { unsigned char op, thread; size_t size, align; void *in, *out; } hist[8];
    unsigned hist_n;
} slot_t;
#define HIST 8

static slot_t slots[SLOTS];
static uint64_t counts[THREADS][N_OPS];
static double deadline;
static unsigned long long run_seed; /* HAKMEM_TEST_SEED, else the time */
static int failures;
static pthread_mutex_t fail_mu = PTHREAD_MUTEX_INITIALIZER;

static __thread slot_t *cur_slot; /* the slot this thread works on (for the abort report) */
static __thread unsigned cur_thread;

static void record(slot_t *s, enum op op, size_t size, size_t align, void *in, void *out)
{
    unsigned i = s->hist_n++ % HIST;
    s->hist[i].op = (unsigned char)op;
    s->hist[i].thread = (unsigned char)cur_thread;
    s->hist[i].size = size;
    s->hist[i].align = align;
    s->hist[i].in = in;
    s->hist[i].out = out;
}

/* SIGABRT (hakmem's fatal errors abort): print the history of the slot being worked on. */
static void on_abort(int sig)
{
    slot_t *s = cur_slot;
    char buf[256];
    if (s) {
        int n = snprintf(buf, sizeof buf, "    abort in thread %u; history of its slot (oldest first):\n",
                         cur_thread);
        write(2, buf, (size_t)n);
        unsigned first = s->hist_n > HIST ? s->hist_n - HIST : 0;
        for (unsigned k = first; k < s->hist_n; k++) {
            unsigned i = k % HIST;
            n = snprintf(buf, sizeof buf, "      thread %u %s(in %p, size %zu, align %zu) -> %p\n",
                         s->hist[i].thread, op_names[s->hist[i].op], s->hist[i].in,
                         s->hist[i].size, s->hist[i].align, s->hist[i].out);
            write(2, buf, (size_t)n);
        }
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void failf(const char *fmt, ...)
{
    pthread_mutex_lock(&fail_mu);
    if (failures++ < 20) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "    FAIL: ");
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\n");
        va_end(ap);
    }
    pthread_mutex_unlock(&fail_mu);
}

/* The pattern: word k of a block is tag ^ (k * golden ratio); tail bytes come from the next
 * word. Different for every block and every offset, so a block handed out twice, a stale
 * write through a freed pointer, or a wrong copy in realloc all show. */
static uint64_t pat_word(uint64_t tag, size_t k) { return tag ^ ((uint64_t)(k + 1) * 0x9e3779b97f4a7c15ull); }

static void fill(unsigned char *p, size_t n, uint64_t tag)
{
    size_t words = n / 8;
    for (size_t k = 0; k < words; k++) {
        uint64_t w = pat_word(tag, k);
        memcpy(p + 8 * k, &w, 8);
    }
    uint64_t w = pat_word(tag, words);
    memcpy(p + 8 * words, &w, n % 8);
}

/* First offset < n where the pattern differs, or (size_t)-1. */
static size_t check(const unsigned char *p, size_t n, uint64_t tag)
{
    size_t words = n / 8;
    for (size_t k = 0; k < words; k++) {
        uint64_t w = pat_word(tag, k), got;
        memcpy(&got, p + 8 * k, 8);
        if (got != w)
            return 8 * k;
    }
    uint64_t w = pat_word(tag, words);
    if (memcmp(p + 8 * words, &w, n % 8) != 0)
        return 8 * words;
    return (size_t)-1;
}

static size_t rand_size(unsigned long long *rng)
{
    static const size_t edges[] = {0,     1,     8,     15,    16,    17,     1023,   1024,
                                   1025,  4095,  4096,  4097,  32767, 32768,  32769,  65535,
                                   65536, 65537, 131072, 1u << 20, (1u << 20) + 1};
    unsigned r = (unsigned)(tl_rand(rng) % 1000);
    if (r < 20)
        return edges[tl_rand(rng) % (sizeof edges / sizeof edges[0])];
    if (r < 650)
        return tl_rand(rng) % 257;
    if (r < 900)
        return 257 + tl_rand(rng) % (4096 - 256);
    if (r < 980)
        return 4097 + tl_rand(rng) % (32768 - 4096);
    if (r < 998)
        return 32769 + tl_rand(rng) % ((1u << 20) - 32768);
    return (1u << 20) + tl_rand(rng) % (7u << 20); /* up to 8 MiB */
}

static size_t rand_align(unsigned long long *rng)
{
    unsigned r = (unsigned)(tl_rand(rng) % 100);
    unsigned lg = r < 85 ? 4 + (unsigned)(tl_rand(rng) % 9)  /* 16 .. 4096 */
                : r < 98 ? 13 + (unsigned)(tl_rand(rng) % 4) /* 8 KiB .. 64 KiB */
                         : 17 + (unsigned)(tl_rand(rng) % 4); /* 128 KiB .. 1 MiB */
    return (size_t)1 << lg;
}

static size_t pow2_ceil(size_t a)
{
    size_t p = 1;
    while (p < a)
        p <<= 1;
    return p;
}

/* Allocate into an empty slot with a random API. */
static void do_alloc(slot_t *s, unsigned long long *rng, uint64_t *cnt)
{
    size_t n = rand_size(rng), align = 16, nmemb = 1;
    unsigned char *p = NULL;
    enum op op = (enum op)(tl_rand(rng) % (OP_PVALLOC + 1));
    int zeroed = 0;
    switch (op) {
    case OP_MALLOC:
        p = malloc(n);
        break;
    case OP_CALLOC:
        nmemb = 1 + tl_rand(rng) % 8;
        n /= nmemb;
        p = calloc(nmemb, n);
        n *= nmemb;
        zeroed = 1;
        break;
    case OP_REALLOC_NULL:
        p = realloc(NULL, n);
        break;
    case OP_REALLOCARRAY_NULL:
        nmemb = 1 + tl_rand(rng) % 8;
        n /= nmemb;
        p = reallocarray(NULL, nmemb, n);
        n *= nmemb;
        break;
    case OP_POSIX_MEMALIGN: {
        align = tl_rand(rng) % 4 == 0 ? 8 : rand_align(rng);
        void *q = NULL;
        int rc = posix_memalign(&q, align, n);
        if (rc != 0) {
            failf("posix_memalign(%zu, %zu) returned %d", align, n, rc);
            return;
        }
        p = q;
        break;
    }
    case OP_ALIGNED_ALLOC:
        align = rand_align(rng);
        p = aligned_alloc(align, n);
        break;
    case OP_MEMALIGN:
        align = rand_align(rng);
        if (tl_rand(rng) % 4 == 0) /* not a power of two: glibc rounds it up */
            align = align + 1 + tl_rand(rng) % (align - 1);
        p = memalign(align, n);
        align = pow2_ceil(align);
        break;
    case OP_VALLOC:
        align = 4096;
        p = valloc(n);
        break;
    case OP_PVALLOC:
        align = 4096;
        p = pvalloc(n);
        break;
    default:
        return;
    }
    cnt[op]++;
    record(s, op, n, align, NULL, p);
    if (!p) {
        failf("%s(size %zu, align %zu) returned NULL (errno %d)", op_names[op], n, align, errno);
        return;
    }
    if ((uintptr_t)p % align != 0) {
        failf("%s(size %zu, align %zu) returned %p: misaligned", op_names[op], n, align, p);
    }
    size_t usable = malloc_usable_size(p);
    size_t need = op == OP_PVALLOC ? (n + 4095) / 4096 * 4096 : n;
    if (usable < need)
        failf("%s(size %zu): malloc_usable_size %zu is smaller", op_names[op], n, usable);
    if (zeroed) {
        for (size_t i = 0; i < n; i++)
            if (p[i]) {
                failf("calloc(%zu, %zu): byte %zu is %#x, not 0", nmemb, n / nmemb, i, p[i]);
                break;
            }
    }
    s->p = p;
    s->size = n;
    s->tag = tl_rand(rng);
    fill(p, n, s->tag);
}

static int verify(slot_t *s, const char *before, uint64_t *cnt)
{
    cnt[OP_CHECKED]++;
    size_t off = check(s->p, s->size, s->tag);
    if (off != (size_t)-1) {
        failf("block %p (%zu bytes) corrupt at offset %zu before %s", s->p, s->size, off, before);
        return -1;
    }
    return 0;
}

/* Operate on a full slot. */
static void do_use(slot_t *s, unsigned long long *rng, uint64_t *cnt)
{
    unsigned r = (unsigned)(tl_rand(rng) % 100);
    if (r < 45) {
        verify(s, "free", cnt);
        record(s, OP_FREE, s->size, 0, s->p, NULL);
        free(s->p);
        s->p = NULL;
        cnt[OP_FREE]++;
    } else if (r < 75) {
        int arr = r >= 70;
        verify(s, arr ? "reallocarray" : "realloc", cnt);
        size_t n = rand_size(rng), nmemb = 1;
        unsigned char *q;
        if (arr) {
            nmemb = 1 + tl_rand(rng) % 4;
            n /= nmemb;
            q = reallocarray(s->p, nmemb, n);
            n *= nmemb;
        } else {
            q = realloc(s->p, n);
        }
        cnt[arr ? OP_REALLOCARRAY : OP_REALLOC]++;
        record(s, arr ? OP_REALLOCARRAY : OP_REALLOC, n, 0, s->p, q);
        if (!q && n == 0) { /* glibc: realloc(p, 0) frees p and returns NULL */
            s->p = NULL;
            return;
        }
        if (!q) {
            failf("%s(%p, %zu) returned NULL (errno %d)", arr ? "reallocarray" : "realloc", s->p,
                  n, errno);
            return;
        }
        if ((uintptr_t)q % 16 != 0)
            failf("realloc returned %p: not 16-byte aligned", q);
        size_t keep = n < s->size ? n : s->size;
        size_t off = check(q, keep, s->tag);
        if (off != (size_t)-1)
            failf("realloc(%p, %zu -> %zu) = %p lost the contents at offset %zu", s->p, s->size, n,
                  q, off);
        if (malloc_usable_size(q) < n)
            failf("realloc(%zu): malloc_usable_size %zu is smaller", n, malloc_usable_size(q));
        s->p = q;
        s->size = n;
        s->tag = tl_rand(rng);
        fill(q, n, s->tag);
    } else if (r < 77) {
        verify(s, "realloc(p, 0)", cnt);
        record(s, OP_REALLOC_ZERO, 0, 0, s->p, NULL);
        void *q = realloc(s->p, 0);
        cnt[OP_REALLOC_ZERO]++;
        if (q) {
            /* allowed by C, not what glibc does; accept and free */
            free(q);
        }
        s->p = NULL;
    } else if (r < 79) {
        /* impossible requests: NULL, errno ENOMEM (EINVAL for a bad alignment), old block
         * untouched */
        cnt[OP_IMPOSSIBLE]++;
        record(s, OP_IMPOSSIBLE, 0, 0, s->p, s->p);
        errno = 0;
        void *q = NULL;
        const char *what = "";
        int ok = 1;
        /* through volatile, so the compiler neither warns nor folds the calls */
        volatile size_t huge = SIZE_MAX, half = SIZE_MAX / 2, quarter = SIZE_MAX / 4;
        switch (tl_rand(rng) % 6) {
        case 0: what = "malloc(SIZE_MAX)"; q = malloc(huge); ok = !q && errno == ENOMEM; break;
        case 1: what = "calloc overflow"; q = calloc(half, 3); ok = !q && errno == ENOMEM; break;
        case 2: what = "realloc(p, SIZE_MAX - 4096)"; q = realloc(s->p, huge - 4096); ok = !q && errno == ENOMEM; break;
        case 3: what = "reallocarray overflow"; q = reallocarray(s->p, quarter, 8); ok = !q && errno == ENOMEM; break;
        case 4: {
            what = "posix_memalign(24, 100)";
            int rc = posix_memalign(&q, 24, 100);
            ok = rc == EINVAL;
            break;
        }
        default: what = "aligned_alloc(4096, SIZE_MAX - 100)"; q = aligned_alloc(4096, huge - 100); ok = !q && errno == ENOMEM; break;
        }
        if (!ok)
            failf("%s: got %p, errno %d", what, q, errno);
        verify(s, "anything, after an impossible request on it", cnt);
    } else {
        verify(s, "malloc_usable_size", cnt);
        record(s, OP_USABLE_SIZE, s->size, 0, s->p, s->p);
        size_t u = malloc_usable_size(s->p);
        cnt[OP_USABLE_SIZE]++;
        if (u < s->size)
            failf("malloc_usable_size(%p) = %zu, below the %zu requested", s->p, u, s->size);
    }
}

static void *worker(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    unsigned long long rng = run_seed ^ (id * 0x9e3779b97f4a7c15ull);
    uint64_t *cnt = counts[id];
    cur_thread = (unsigned)id;
    for (unsigned long i = 0;; i++) {
        if ((i & 255) == 0 && now_s() > deadline)
            break;
        slot_t *s = &slots[tl_rand(&rng) % SLOTS];
        pthread_mutex_lock(&s->mu);
        cur_slot = s;
        if (s->p) /* malloc(0) and friends return a unique non-NULL pointer */
            do_use(s, &rng, cnt);
        else
            do_alloc(s, &rng, cnt);
        cur_slot = NULL;
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

static int scenario_random(void)
{
    int seconds = RUN_SECONDS * tl_scale();
    const char *seed = getenv("HAKMEM_TEST_SEED");
    run_seed = seed ? strtoull(seed, NULL, 0) : (unsigned long long)time(NULL) * 2654435761u;
    run_seed |= 1; /* xorshift state must not be 0 */
    fprintf(stderr, "    seed %llu (HAKMEM_TEST_SEED=%llu repeats the sequence of choices)\n",
            run_seed, run_seed);
    for (int i = 0; i < SLOTS; i++)
        pthread_mutex_init(&slots[i].mu, NULL);
    signal(SIGABRT, on_abort);
    deadline = now_s() + seconds;
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)i)) {
            fprintf(stderr, "    FAIL: pthread_create\n");
            return 1;
        }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    uint64_t cnt[THREADS][N_OPS];
    memcpy(cnt, counts, sizeof cnt);
    int live = 0;
    for (int i = 0; i < SLOTS; i++)
        if (slots[i].p) {
            live++;
            verify(&slots[i], "the final free", counts[0]);
            free(slots[i].p);
            slots[i].p = NULL;
        }
    uint64_t total = 0;
    fprintf(stderr, "    %d threads, %d s, %d slots (%d live at the end); operations:\n", THREADS,
            seconds, SLOTS, live);
    for (int o = 0; o < N_OPS; o++) {
        uint64_t sum = 0;
        for (int i = 0; i < THREADS; i++)
            sum += cnt[i][o];
        if (o != OP_CHECKED)
            total += sum;
        fprintf(stderr, "      %-20s %12llu\n", op_names[o], (unsigned long long)sum);
        if (sum == 0 && !failures)
            failf("%s was never exercised", op_names[o]);
    }
    fprintf(stderr, "      %-20s %12llu\n", "total API calls", (unsigned long long)total);
    fprintf(stderr, "    VmHWM %ld KiB\n", tl_status_kib("VmHWM"));
    if (failures) {
        fprintf(stderr, "    FAIL: %d failed checks\n", failures);
        return 1;
    }
    return 0;
}

/* ---- the CMocka side: re-execute this binary for each configuration ---------------------- */

static void run_self(const char *scenario, const char *const extra_env[])
{
    char why[256];
    if (tl_run_scenario(scenario, extra_env, RUN_SECONDS * tl_scale() + 120, why, sizeof why))
        fail_msg("random API driver: %s", why);
}

static void test_random_api_threads(void **s)
{
    (void)s;
    run_self("random", NULL);
}

static void test_random_api_threads_ace(void **s)
{
    (void)s;
    const char *const env[] = {"POOL_ACE=1", "POOL_ACE_INTERVAL_MS=10", NULL};
    run_self("random", env);
}

/* With the heap profiler sampling about one allocation in 64 KiB: sampled blocks (store slots
 * and large blocks with a note) go through every call of the driver, from every thread. */
static void test_random_api_threads_profiling(void **s)
{
    (void)s;
    const char *const env[] = {"HAKMEM_PROF=1", "HAKMEM_PROF_SAMPLE=65536",
                               "HAKMEM_PROF_FILE=/dev/null", NULL};
    run_self("random", env);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--scenario") == 0) {
        if (strcmp(argv[2], "random") == 0)
            return scenario_random();
        fprintf(stderr, "unknown scenario %s\n", argv[2]);
        return 2;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_api_threads),
        cmocka_unit_test(test_random_api_threads_ace),
        cmocka_unit_test(test_random_api_threads_profiling),
    };
    return cmocka_run_group_tests_name("stress_random", tests, NULL, NULL);
}
