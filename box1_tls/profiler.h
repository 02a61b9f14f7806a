/* box1_tls/profiler.h - the sampled heap profiler (HAKMEM_PROF=1; docs/PROFILER.md).
 *
 * The sampler (sampler.h) picks allocations; the profiler captures each one's stack
 * (stack.h), counts it in the bucket of that stack, and has Box 2 give it a block of its own
 * (hak_sampled_alloc) whose note is the bucket. Free's cold path hands every large or
 * sampled pointer to hak_prof_free first, which reads the note back (hak_sampled_note) and
 * counts the free. Profiles are written in the legacy text format of gperftools' heap
 * profiler, which google-pprof reads: at exit, on hakmem_prof_dump, and every
 * HAKMEM_PROF_INTERVAL bytes allocated.
 *
 * Recursion, signals, fork (docs/RELIABILITY.md). A thread is "inside the profiler" from the
 * start of hak_prof_alloc or a dump to its end (a thread-local flag): an allocation it makes
 * there (the unwinder, a signal handler that interrupted it) is not sampled, so nothing
 * recurses and the profiler's lock is never taken twice by one thread. Counting a free takes
 * no lock (relaxed atomics on the bucket), so a free in a signal handler that interrupted the
 * profiler cannot wait for it. The lock is taken before Box 2's at fork (fork.c) and reset in
 * every child.
 */
#ifndef HAK_BOX1_PROFILER_H
#define HAK_BOX1_PROFILER_H

#include <stddef.h>

#include "sampler.h"

/* A sampled allocation: its stack counted, its block from Box 2's store (guarded, guard.h,
 * when guarded sampling is on and it fits a page). With the profiler off and guarded sampling
 * on, a guarded block if hak_guard_take picks it, else NULL. NULL (errno kept) too when the
 * calling thread is already inside the profiler or the store has no memory: the caller then
 * allocates as usual, unsampled. */
void *hak_prof_alloc(size_t size, size_t align, int zero);

/* A sample point was crossed (hak_sample_due said so): the sampled block, or NULL when the
 * point only armed the thread or hak_prof_alloc declined; the caller then allocates as
 * usual. */
static inline void *hak_prof_sample(size_t size, size_t align, int zero)
{
    return hak_sample_point() ? hak_prof_alloc(size, align, zero) : NULL;
}

/* The same for the entry points that have no sampling variant to jump to (the aligned ones):
 * they count down themselves, and only while a sampling feature is on. */
static inline void *hak_prof_sample_if_due(size_t size, size_t align, int zero)
{
    if (HAK_UNLIKELY(hak_sampler_wanted()) && hak_sample_due(size))
        return hak_prof_sample(size, align, zero);
    return NULL;
}

/* Free's cold path, for a pointer whose page map tag is large or sampled, before Box 2 frees
 * it: a guarded block's free stack is recorded, a sampled block leaves the in-use counts. No
 * lock. */
void hak_prof_free(void *ptr);

/* Nonzero while the calling thread is inside the profiler (fork from a signal handler). */
int hak_prof_busy(void);

/* fork: take the profiler's lock (the fork wrapper and the atfork prepare handler, when the
 * thread is not inside the profiler), release it in the parent, reset it in the child. */
void hak_prof_fork_prepare(void);
void hak_prof_fork_parent(void);
void hak_prof_fork_child(void);

#endif
