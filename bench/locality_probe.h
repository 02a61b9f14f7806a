/* bench/locality_probe.h - the locality probe: how many 4 KiB pages 64 consecutive mallocs touch
 * after a heap has been freed in random order.
 *
 * One probe, for one size: malloc N blocks of `size` bytes (one byte written into each: the first
 * generation), free them all in a random order (Fisher-Yates from `seed`), malloc N again (the
 * second generation). For each run of 64 consecutive mallocs of a generation, count the distinct
 * pages (address >> 12) the 64 blocks start on, where the byte is written; the result is the
 * mean over the runs (N / 64 of them; a generation of fewer than 64 blocks is one run).
 * Everything is freed before returning.
 *
 * An allocator that hands blocks back in the order they were freed (a LIFO free list) gives the
 * second generation the shuffled order: ~62 of 64 blocks on different pages when the N blocks
 * cover many pages. One that serves mallocs from one page or span at a time, whatever the free
 * order, comes close to the packing limit: 64 blocks side by side, 64 * size bytes, touch
 * 1 + 63 * size / 4096 pages on average (~1.7 at 48 B), or exactly 4 at 256 B and 16 at 1 KiB
 * when the runs start on page boundaries. Fewer pages per run means fewer TLB and cache misses
 * for code that walks what it just allocated. Lower is better.
 *
 * Header-only, plain C11 plus malloc/free: no dependency on bench_common.h, so a test can include
 * it. The pointer array (N pointers, 8 * N bytes) is itself malloc'd, before the first generation.
 *
 *   double hak_probe_pages_per_64(size_t size, size_t n, unsigned seed, double *first_gen);
 *     returns the mean pages per 64 of the second generation (and, when first_gen is not NULL,
 *     stores the first generation's there); a negative value when it failed: -1 when a malloc
 *     returned NULL, -2 when a block lost the byte written into it (handed out twice).
 *
 *   hak_probe_pages_per_64_timed(size, n, seed, first_gen, now, seconds, ops): the same, and when
 *     `now` (a clock in seconds) is not NULL adds to *seconds the time spent in the probe's malloc
 *     and free calls and their one-byte writes, and to *ops the number of those calls (4 * N).
 *     The page counting, the shuffle and the check of each generation's bytes (after it is
 *     complete) are outside the timed part.
 */
#ifndef HAK_LOCALITY_PROBE_H
#define HAK_LOCALITY_PROBE_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define HAK_PROBE_RUN 64     /* blocks per run */
#define HAK_PROBE_PAGE_SHIFT 12

/* splitmix64: the probe's own generator, so the shuffle depends on the seed alone. */
static inline uint64_t hak_probe_rng(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Distinct pages among the k (<= 64) blocks at b. */
static inline unsigned hak_probe_distinct_pages(void *const *b, size_t k)
{
    uintptr_t pg[HAK_PROBE_RUN];
    unsigned d = 0;
    for (size_t i = 0; i < k; i++) { /* insertion sort of the page numbers */
        uintptr_t v = (uintptr_t)b[i] >> HAK_PROBE_PAGE_SHIFT;
        size_t j = i;
        while (j > 0 && pg[j - 1] > v) {
            pg[j] = pg[j - 1];
            j--;
        }
        pg[j] = v;
    }
    for (size_t i = 0; i < k; i++)
        d += i == 0 || pg[i] != pg[i - 1];
    return d;
}

/* Mean distinct pages per run of 64 consecutive blocks of b[0..n). */
static inline double hak_probe_mean_pages(void *const *b, size_t n)
{
    if (n < HAK_PROBE_RUN)
        return (double)hak_probe_distinct_pages(b, n);
    size_t runs = n / HAK_PROBE_RUN;
    uint64_t sum = 0;
    for (size_t r = 0; r < runs; r++)
        sum += hak_probe_distinct_pages(b + r * HAK_PROBE_RUN, HAK_PROBE_RUN);
    return (double)sum / (double)runs;
}

/* The byte written into block i of a generation: a function of i, so that a block handed out
 * twice (two indexes, one address) loses the earlier index's byte. */
static inline unsigned char hak_probe_tag(size_t i)
{
    return (unsigned char)(i ^ (i >> 8) ^ 0x5A);
}

/* malloc n blocks into b, writing block i's tag; 0, or -1 (and b[0..i) freed) on NULL. */
static inline int hak_probe_fill(void **b, size_t n, size_t size)
{
    for (size_t i = 0; i < n; i++) {
        b[i] = malloc(size);
        if (!b[i]) {
            while (i > 0)
                free(b[--i]);
            return -1;
        }
        *(volatile unsigned char *)b[i] = hak_probe_tag(i);
    }
    return 0;
}

/* 0 when every block of b[0..n) (as filled) still holds its tag, else -2. */
static inline int hak_probe_verify(void *const *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (*(const volatile unsigned char *)b[i] != hak_probe_tag(i))
            return -2;
    return 0;
}

/* Fisher-Yates: b[0..n) in the random order of the generator *rng (the free order). */
static inline void hak_probe_shuffle(void **b, size_t n, uint64_t *rng)
{
    for (size_t i = n - 1; i > 0 && n > 1; i--) {
        size_t j = (size_t)(hak_probe_rng(rng) % (uint64_t)(i + 1));
        void *x = b[i];
        b[i] = b[j];
        b[j] = x;
    }
}

static inline void hak_probe_drain(void **b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(b[i]);
}

static inline double hak_probe_pages_per_64_timed(size_t size, size_t n, unsigned seed,
                                                  double *first_gen, double (*now)(void),
                                                  double *seconds, uint64_t *ops)
{
    if (size == 0 || n == 0)
        return -1.0;
    void **b = (void **)malloc(n * sizeof *b);
    if (!b)
        return -1.0;
    uint64_t rng = seed;
    double t = 0, t0 = now ? now() : 0;
    if (hak_probe_fill(b, n, size)) {
        free(b);
        return -1.0;
    }
    if (now)
        t += now() - t0;
    int bad = hak_probe_verify(b, n);
    double first = hak_probe_mean_pages(b, n);
    hak_probe_shuffle(b, n, &rng);
    if (now)
        t0 = now();
    hak_probe_drain(b, n);
    int nul = hak_probe_fill(b, n, size);
    if (now)
        t += now() - t0;
    if (nul) {
        free(b);
        return -1.0;
    }
    bad |= hak_probe_verify(b, n);
    double second = hak_probe_mean_pages(b, n);
    if (now)
        t0 = now();
    hak_probe_drain(b, n);
    if (now) {
        t += now() - t0;
        if (seconds)
            *seconds += t;
        if (ops)
            *ops += 4 * (uint64_t)n;
    }
    free(b);
    if (bad)
        return -2.0;
    if (first_gen)
        *first_gen = first;
    return second;
}

static inline double hak_probe_pages_per_64(size_t size, size_t n, unsigned seed,
                                            double *first_gen)
{
    return hak_probe_pages_per_64_timed(size, n, seed, first_gen, NULL, NULL, NULL);
}

#endif
