/* bench/bench_common.h - shared pieces of the benchmark workloads.
 *
 * Every workload is a small C program that uses only malloc/free/realloc (or, for the C++ one,
 * new/delete through the standard containers), so any allocator can be put under it with
 * LD_PRELOAD. Each one:
 *   - takes the same options:  -t threads  -d seconds  -n ops  -s seed  (see bench_parse_args);
 *     -n (a fixed op count per thread) wins over -d (a duration);
 *   - is deterministic for a seed (each thread's generator is seeded from seed and its index);
 *   - writes the first and last byte of every block it allocates, so memory is really touched;
 *   - ends by printing ONE result line on stdout:  ops_per_sec=N key=value ...
 *     An "op" is one allocator call (malloc, free or realloc) unless the program says otherwise.
 *
 * Header-only on purpose: each workload is one .c file plus this header.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#ifndef _GNU_SOURCE /* g++ defines it already (bench/containers.cc) */
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
#include <sched.h>

typedef struct bench_args {
    int threads;      /* -t, default: online CPUs */
    double seconds;   /* -d, default: per workload */
    uint64_t ops;     /* -n, per thread; 0 = run for `seconds` */
    uint64_t seed;    /* -s, default 42 */
    const char *extra[8]; /* workload-specific -x key=value options */
    int n_extra;
} bench_args_t;

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void bench_usage(const char *prog, const char *what)
{
    fprintf(stderr,
            "usage: %s [-t threads] [-d seconds] [-n ops_per_thread] [-s seed] [-x key=value]\n"
            "  %s\n"
            "  prints one line: ops_per_sec=N key=value ...\n",
            prog, what);
}

static inline void bench_parse_args(int argc, char **argv, bench_args_t *a, double def_seconds,
                                    const char *what)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    a->threads = ncpu > 0 ? (int)ncpu : 2;
    a->seconds = def_seconds;
    a->ops = 0;
    a->seed = 42;
    a->n_extra = 0;
    int c;
    while ((c = getopt(argc, argv, "t:d:n:s:x:h")) != -1) {
        switch (c) {
        case 't': a->threads = atoi(optarg); break;
        case 'd': a->seconds = atof(optarg); break;
        case 'n': a->ops = strtoull(optarg, NULL, 10); break;
        case 's': a->seed = strtoull(optarg, NULL, 10); break;
        case 'x':
            if (a->n_extra < 8) a->extra[a->n_extra++] = optarg;
            break;
        default: bench_usage(argv[0], what); exit(c == 'h' ? 0 : 2);
        }
    }
    if (a->threads < 1 || a->threads > 1024 || a->seconds <= 0) {
        bench_usage(argv[0], what);
        exit(2);
    }
}

/* -x key=value lookup; returns def when absent. */
static inline long bench_extra(const bench_args_t *a, const char *key, long def)
{
    size_t kl = strlen(key);
    for (int i = 0; i < a->n_extra; i++)
        if (strncmp(a->extra[i], key, kl) == 0 && a->extra[i][kl] == '=')
            return strtol(a->extra[i] + kl + 1, NULL, 10);
    return def;
}

/* xoshiro-style generator: splitmix64 seeding, xorshift64* stepping. */
typedef struct { uint64_t s; } bench_rng_t;

static inline void bench_rng_seed(bench_rng_t *r, uint64_t seed, uint64_t stream)
{
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * (stream + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    r->s = z ? z : 1;
}

static inline uint64_t bench_rng_next(bench_rng_t *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* uniform in [lo, hi] (inclusive); the range is small so the modulo bias is irrelevant. */
static inline size_t bench_rng_range(bench_rng_t *r, size_t lo, size_t hi)
{
    return lo + (size_t)((bench_rng_next(r) >> 11) % (hi - lo + 1));
}

/* Write the first and last byte of a fresh block (and check the allocation). */
static inline void bench_touch(void *p, size_t size, unsigned char tag)
{
    if (!p) {
        fprintf(stderr, "bench: allocation of %zu bytes failed\n", size);
        exit(3);
    }
    unsigned char *b = (unsigned char *)p;
    b[0] = tag;
    b[size - 1] = tag;
}

/* Read the first byte back before freeing: catches an allocator that handed the block out twice
 * (the other owner would have rewritten it) in the cheapest possible way. */
static inline void bench_check(const void *p, unsigned char tag, const char *where)
{
    if (*(const volatile unsigned char *)p != tag) {
        fprintf(stderr, "bench: %s: block %p lost its tag (expected 0x%02x, found 0x%02x)\n",
                where, p, tag, *(const unsigned char *)p);
        abort();
    }
}

/* One burst of a phase-shifting workload (phase.c, settle.c): malloc `depth` blocks into blk,
 * 7 of 8 of size `hot` and the 8th of sizes[random % n] (another phase's hot size: background
 * traffic), each touched; then free them all in allocation order, each checked. Returns the
 * allocator calls made (2 * depth). */
static inline uint64_t bench_burst(void **blk, unsigned depth, size_t hot, const size_t *sizes,
                                   unsigned n, bench_rng_t *rng, const char *where)
{
    for (unsigned i = 0; i < depth; i++) {
        uint64_t r = bench_rng_next(rng);
        size_t sz = (r & 7) ? hot : sizes[(r >> 3) % n];
        blk[i] = malloc(sz);
        bench_touch(blk[i], sz, (unsigned char)i);
    }
    for (unsigned i = 0; i < depth; i++) {
        bench_check(blk[i], (unsigned char)i, where);
        free(blk[i]);
    }
    return 2ull * depth;
}

/* Keeps the compiler from removing or merging allocator calls around p. */
#define BENCH_ESCAPE(p) __asm__ volatile("" : : "r"(p) : "memory")

/* Start line: worker threads set up (fill windows, seed), then wait in bench_start_wait; the
 * main thread calls bench_start_release, which waits until every worker is ready, starts the
 * clock and sets the deadline, then lets them go. The barriers order the deadline write. */
typedef struct {
    pthread_barrier_t ready, go;
    double t0, deadline;
} bench_start_t;

static inline void bench_start_init(bench_start_t *s, int workers)
{
    pthread_barrier_init(&s->ready, NULL, (unsigned)workers + 1);
    pthread_barrier_init(&s->go, NULL, (unsigned)workers + 1);
}

static inline void bench_start_wait(bench_start_t *s)
{
    pthread_barrier_wait(&s->ready);
    pthread_barrier_wait(&s->go);
}

static inline void bench_start_release(bench_start_t *s, double seconds)
{
    pthread_barrier_wait(&s->ready);
    s->t0 = bench_now();
    s->deadline = s->t0 + seconds;
    pthread_barrier_wait(&s->go);
}

/* The run every workload makes: start `threads` threads, thread i running fn on the i-th of
 * the caller's records (rec_size bytes each, filled in beforehand, each thread waiting in
 * bench_start_wait), release them together for `seconds`, join them all. Returns the seconds
 * from the release to the last join. Exits 1 if a thread cannot be created. */
static inline double bench_run_threads(int threads, bench_start_t *start, void *(*fn)(void *),
                                       void *records, size_t rec_size, double seconds)
{
    pthread_t th[threads];
    for (int i = 0; i < threads; i++)
        if (pthread_create(&th[i], NULL, fn, (char *)records + (size_t)i * rec_size)) {
            perror("pthread_create");
            exit(1);
        }
    bench_start_release(start, seconds);
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    return bench_now() - start->t0;
}

/* Wait for another thread (a full ring or mailbox, an empty one): spin briefly, then yield,
 * then sleep 20 us at a time; *spins counts the calls since the wait began (start it at 0).
 * Sleeping matters when the two threads share a core (a busy machine): a thread that only
 * yields can keep the core while its partner waits, and the run's speed then depends on the
 * scheduler more than on the allocator. The caller's queue must absorb a 20 us sleep. */
static inline void bench_backoff(unsigned *spins)
{
    ++*spins;
    if (*spins < 64) {
        __builtin_ia32_pause();
    } else if (*spins < 96) {
        sched_yield();
    } else {
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
    }
}

/* Duration control: threads check the clock every BENCH_CLOCK_EVERY ops. */
#define BENCH_CLOCK_EVERY 256

#endif
