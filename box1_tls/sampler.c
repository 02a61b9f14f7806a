/* box1_tls/sampler.c - the sampler's cold path: per-thread exponential intervals (sampler.h). */
#include "sampler.h"

#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "shared_contracts/ace_hooks.h"
#include "shared_contracts/config.h"
#include "sample_math.h"
#include "shared_contracts/random.h"


/* Cold per-thread state: the generator (xorshift64*), 0 until the thread is armed. */
static __thread uint64_t sample_rng __attribute__((tls_model("initial-exec")));

int hak_sampler_wanted(void)
{
    return __atomic_load_n(&hak_library_ready, __ATOMIC_ACQUIRE) &&
           (hak_config.prof || hak_config.guard_sample);
}

/* The profiler's mean; without it, guarded sampling's: 16 N bytes, 1 for N = 1 (guard.h). */
uint64_t hak_sample_mean(void)
{
    if (hak_config.prof || !hak_config.guard_sample)
        return (uint64_t)hak_config.prof_sample;
    return hak_config.guard_sample == 1 ? 1 : 16u * (uint64_t)hak_config.guard_sample;
}

/* Seed the thread's generator: its address, the clock and the pid, mixed. */
static void arm(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    sample_rng = hak_splitmix64((uint64_t)(uintptr_t)&sample_rng ^ (uint64_t)ts.tv_nsec ^
                                (uint64_t)getpid() << 32) | 1;
}

uint64_t hak_sample_random(void)
{
    if (HAK_UNLIKELY(!sample_rng))
        arm();
    return hak_xorshift64s(&sample_rng);
}

/* An exponentially distributed interval of mean hak_sample_mean() bytes, at least 1. */
static int64_t draw_interval(void)
{
    double bytes = hak_neg_log_unit(hak_sample_random()) * (double)hak_sample_mean();
    if (bytes < 1.0)
        return 1;
    if (bytes > 0x1.0p62)
        return INT64_C(1) << 62;
    return (int64_t)bytes;
}

int hak_sample_point(void)
{
    if (HAK_UNLIKELY(!sample_rng)) {
        /* The thread's first interval starts at its first allocation, which the countdown
         * (from 0) already took off: that allocation is sampled if it reaches past it. */
        arm();
        hak_sample_left += draw_interval();
        if (hak_sample_left >= 0)
            return 0;
    }
    hak_sample_left = draw_interval();
    return 1;
}

double hak_sample_chance(size_t size)
{
    return hak_one_minus_exp_neg((double)size / (double)hak_sample_mean());
}
