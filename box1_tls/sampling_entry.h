/* box1_tls/sampling_entry.h - the body of a sampling entry point (api.c's malloc_sampling,
 * cxx_operators.c's new_sampling and its nothrow form): the sampler's countdown (sampler.h)
 * and the hit path's pop (fastpath.h) from one TLS base. Its own header, above both, so that
 * the sampler does not depend on the hit path: the hit path's cold paths reach the sampler
 * (misuse.c -> profiler.c -> sampler.c), and only the entry points put the two together. */
#ifndef HAK_BOX1_SAMPLING_ENTRY_H
#define HAK_BOX1_SAMPLING_ENTRY_H

#include <stddef.h>
#include <stdint.h>

#include "fastpath.h"
#include "sampler.h"

/* The body of a sampling entry point (malloc_sampling, new_sampling, ...): the countdown and
 * the pop from one TLS base; a crossed sample point goes to `sampled` in tail position. */
static inline __attribute__((always_inline)) void *
hak_alloc_sampling_or(size_t size, void *(*sampled)(size_t), void *(*miss)(unsigned),
                      void *(*large)(size_t, size_t))
{
    uintptr_t base = hak_tls_base();
    if (hak_sample_due_at(base, size))
        return sampled(size);
    return hak_alloc_fast_at_or(base, size, miss, large);
}

#endif
