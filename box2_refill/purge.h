/* box2_refill/purge.h - giving memory back: the decay tick, the background purger thread, and
 * what a failed mapping does (reclaim, or fail at once when nothing given back could help).
 *
 * The decay tick (hak_decay_maybe) runs at most every max(10 ms, HAKMEM_DECAY_MS / 4); the
 * first caller past the due time claims it by CAS, so ticks never overlap. It is called at the
 * end of every refill and spill, and by the purger.
 *
 * The purger (HAKMEM_PURGER=1, the default) is one detached thread, "hakmem-purge", that runs
 * the tick when no allocating thread does, so a program that goes quiet still gives back its
 * idle depot blocks, spare and empty spans and cached large mappings. It is started lazily,
 * never at library init: by hak_purger_wake, called with no Box 2 lock held (end of a tick
 * that left something to give back, thread exit). The start is claimed by CAS before
 * pthread_create, whose own calloc then finds the claim and does not recurse. All signals are
 * blocked in it; its stack is 64 KiB (8 MiB if the program's static TLS needs more). On each
 * wake-up it also runs the large cache's budget work (hak_large_cache_decay: purging populated
 * ranges costs page walks and TLB flushes), which the ticks of the program's threads leave to
 * it while it runs. It exits by itself once a few ticks in a row found
 * nothing left to give back, so it never keeps a process alive (a main thread that called
 * pthread_exit still ends), and the next wake starts it again. A forked child has none until
 * its own first wake (hak_purger_fork_child resets the claim). It takes the same locks as any
 * tick (class locks by trylock, the pool lock, the large-cache lock), so a fork's
 * hak_backend_fork_prepare waits for a tick in progress to finish.
 */
#ifndef HAK_BOX2_PURGE_H
#define HAK_BOX2_PURGE_H

#include <stddef.h>
#include <stdint.h>

/* Run a decay tick if one is due (see above). No Box 2 lock held. */
void hak_decay_maybe(uint64_t now_ms);

/* Start the purger if it is enabled and not running. No Box 2 lock held. */
void hak_purger_wake(void);

/* 1 while a purger thread exists (tests). */
int hak_purger_running(void);
/* Purger threads started since the process (or the forked child) began (tests, stats). */
uint64_t hak_purger_starts(void);

/* Fork child: no purger there; the next wake starts one. */
void hak_purger_fork_child(void);

/* Flush Box 2's central caches, in every arena: every depot's blocks into their spans, every
 * spare span into the pool. No Box 2 lock held. Nonzero if anything moved. malloc_trim then
 * purges the empty spans (hak_backend_return_all); hak_reclaim (below) unmaps them. */
int hak_flush_central(uint64_t now_ms);

/* After a failed mapping, with no Box 2 lock held: return what Box 2 caches (every depot
 * flushed into the spans, every spare span into the pool, every empty span unmapped, every
 * large-cache entry unmapped; purge.c). Returns nonzero if anything was flushed or unmapped,
 * so a retry may succeed.
 * Blocks in thread lists are Box 1's: it drains the calling thread's lists itself when the
 * retry fails too. */
int hak_reclaim(void);

/* A mapping of `len` bytes just failed (len 0: a chunk for new spans). Nonzero when giving
 * back what hakmem holds could make a retry succeed: the size is inside the address space and
 * RLIMIT_AS, not past what overcommit's heuristic refuses for any process, hakmem holds some
 * memory it could give back, and not less than it held before a reclaim that did not make
 * room for a request this large. Otherwise the caller fails at once, without flushing. */
int hak_reclaim_may_help(size_t len);
/* The reclaim that hak_reclaim_may_help(len) allowed, in this thread, did not make the retry
 * succeed: later requests at least as large fail at once until hakmem holds more to give back
 * than it held then. */
void hak_reclaim_did_not_help(size_t len);

/* Nonzero when no mapping of len bytes can succeed whatever hakmem gives back: past the user
 * address space, or (vm.overcommit_memory=0) above RAM + swap, which the kernel's heuristic
 * refuses to any process. No system call in the usual case (RAM + swap is re-read once a
 * second). */
int hak_mapping_impossible(size_t len);

/* Reclaims run since start (tests: an impossible request must not run one). */
uint64_t hak_reclaim_count(void);

#endif
