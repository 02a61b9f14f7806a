/* box1_tls/sampler.h - the sampler: which allocations to sample, by bytes allocated.
 *
 * One mechanism for every sampling feature (today the heap profiler, profiler.c). Each thread
 * counts down the bytes its allocations ask for, hak_sample_left; when the count goes below
 * zero, the allocation that crossed it is sampled, and the next interval is drawn from an
 * exponential distribution of mean HAKMEM_PROF_SAMPLE bytes (as tcmalloc and jemalloc do), so
 * an allocation of s bytes is sampled with probability 1 - exp(-s / mean): the process of
 * sample points is Poisson in the bytes allocated, which pprof's unsampling assumes.
 *
 * No cost when off. The countdown runs only in the sampling variants of the entry points
 * (api.c, cxx_operators.c; their common body is sampling_entry.h), which malloc, calloc,
 * realloc and operator new jump to through one pointer each, chosen at their first call
 * after library init (hak_sampler_wanted): with
 * sampling off the pointer names the plain hit path, and the hit path pays the one indirect
 * jump. The aligned entry points test hak_sampler_wanted on their own path. Free never pays:
 * sampled blocks live where free's hit path fails (shared_contracts/backend.h,
 * hak_sampled_alloc), and its cold path tells the profiler.
 *
 * A thread starts with hak_sample_left == 0, so its first counted allocation reaches
 * hak_sample_point, which arms the thread (seeds its generator) and draws its first interval
 * from that allocation's start: the allocation is sampled if it reaches past it, as any
 * other. Per-thread state only; no lock.
 */
#ifndef HAK_BOX1_SAMPLER_H
#define HAK_BOX1_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "shared_contracts/backend.h"
#include "tcache.h"

/* Bytes this thread may still allocate before its next sample point; below 0: one is due.
 * It is the thread cache's list[0], which no size class uses (tcache.h): a sampling entry
 * point counts down and pops from one TLS base (hak_sample_due_at, hak_alloc_fast_at_or),
 * and for the smallest classes in one cache line. */
#define hak_sample_left (hak_tcache.sample_left)

/* Nonzero when library init is done and a sampling feature is on (HAKMEM_PROF or
 * HAKMEM_GUARD_SAMPLE): the entry points then take their sampling variants. */
int hak_sampler_wanted(void);

/* Cold: hak_sample_left went below zero. Draws the next interval; 1 when this allocation is
 * to be sampled, 0 when it only armed the thread (its first interval reaches past it). */
int hak_sample_point(void);

/* The countdown of a sampling entry point: nonzero when an allocation of `size` bytes
 * crossed a sample point. The caller then calls, in tail position (so the hit path keeps no
 * register across a call), a cold function that asks hak_sample_point whether to sample. */
static inline __attribute__((always_inline)) int hak_sample_due_at(uintptr_t base, size_t size)
{
    hak_tls_i64_t *left = (hak_tls_i64_t *)base; /* list[0]: sample_left */
    *left -= (int64_t)size;
    return HAK_UNLIKELY(*left < 0);
}

static inline __attribute__((always_inline)) int hak_sample_due(size_t size)
{
    return hak_sample_due_at(hak_tls_base(), size);
}

/* The next word of the calling thread's generator (xorshift64*, seeded at its first use),
 * for every sampling feature's random choices (guard.c). */
uint64_t hak_sample_random(void);

/* The chance that an allocation of `size` bytes is sampled: 1 - exp(-size / mean). */
double hak_sample_chance(size_t size);

/* The mean interval in force (bytes), as the profile's header states it. */
uint64_t hak_sample_mean(void);

#endif
