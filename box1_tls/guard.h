/* box1_tls/guard.h - guarded sampling (HAKMEM_GUARD_SAMPLE=N; docs/TUNING.md).
 *
 * About one allocation in N of at most HAK_GUARD_MAX_SIZE bytes (N = 1: every one) gets a page
 * of its own between two PROT_NONE guard pages in the sampled-block store
 * (shared_contracts/backend.h, hak_guarded_alloc), against the lower or the upper guard (by a
 * coin), and its page is PROT_NONE after its free while it sits in a quarantine of
 * HAK_GUARD_QUARANTINE slots. An access to a guard page or to a quarantined page faults, and
 * the SIGSEGV handler (hak_guard_install) stops the program with a report that starts
 * "hakmem:", names the kind (heap-buffer-overflow, heap-buffer-underflow, use-after-free),
 * the address, the block's size, and the stacks of its allocation and free, kept in the
 * slot's scratch bytes.
 *
 * The same sampler picks them (sampler.h): with the profiler off its mean is 16 N bytes (1 for
 * N = 1) and hak_guard_take thins each sample point to probability (1/N) / P(sampled | size),
 * so every size of 16 bytes or more is guarded at about one in N (smaller ones less, in
 * proportion). With the profiler on, every profiler sample that fits a page is guarded.
 */
#ifndef HAK_BOX1_GUARD_H
#define HAK_BOX1_GUARD_H

#include <stddef.h>
#include <stdint.h>

/* Nonzero when guarded sampling is on. */
int hak_guard_on(void);

/* At a sample point with the profiler off: 1 when this allocation is to be guarded. */
int hak_guard_take(size_t size);

/* A guarded block for size (align <= 16), `note` kept for the profiler, the allocation's
 * stack recorded (frames, or captured when frames is NULL); NULL if it does not fit or there
 * is no memory. The caller is inside the profiler (no recursion). */
void *hak_guard_alloc(size_t size, int zero, uintptr_t note, const uintptr_t *frames, int n);

/* Free's cold path, before Box 2 frees: a guarded block's free stack is recorded. */
void hak_guard_free(void *ptr);

/* The SIGSEGV handler, installed by the library's constructor when guarded sampling is on. */
void hak_guard_install(void);

#endif
