/* box3_ace/ace.h - Box 3 (ACE, the adaptive count engine): entry points beyond the shared
 * contracts, for tests and for the HAKMEM_STATS print. Box 1 and Box 2 never include this
 * header (contract D); what they call lives in shared_contracts/event_ring.h and
 * shared_contracts/policy_table.h.
 *
 * Conventions
 *   - No function here allocates, uses stdio, or takes an allocator lock.
 *   - The readers (hak_ace_publishes ... hak_ace_running) are lock-free and callable from any
 *     thread at any time, including before ACE starts (they then return 0).
 *   - hak_policy_publish and hak_ace_step take the ACE mutex and wait for an RCU grace period
 *     when they publish: never call them from an allocation path or under an allocator lock,
 *     nor inside an RCU read-side section.
 */
#ifndef HAK_ACE_H
#define HAK_ACE_H

#include <stdint.h>

#include "shared_contracts/size_classes.h"

/* The learner's life cycle (learner.c). Box 2 reaches these only through the hooks of
 * shared_contracts/ace_hooks.h, which learner.c installs; tests call them directly.
 * hak_ace_start: start the learner if POOL_ACE=1 (once; never with an allocator lock held).
 * hak_ace_stop: stop and join it (process exit).
 * hak_ace_fork_prepare/parent/child: around fork (urcu-bp's handlers). The child has no
 *   learner: the table published last stays in force there, frozen (docs/ACE.md). */
void hak_ace_start(void);
void hak_ace_stop(void);
void hak_ace_fork_prepare(void);
void hak_ace_fork_parent(void);
void hak_ace_fork_child(void);

/* Publish counts as the new table (the learner's own publish; also for tests). Returns after
 * the grace period, when no refill can still read the table this one replaced. Adopted by the
 * learner as its current counts. */
void hak_policy_publish(const uint16_t counts[HAK_NUM_CLASSES]);

/* One learner interval on the calling thread: collect every ring (recycling ORPHANED ones) and
 * the summary of ringless threads, decide, publish if a count changed (in shadow mode: note
 * it in hak_policy_shadow instead), log. For tests; serialised with the learner. */
void hak_ace_step(void);

uint64_t hak_ace_publishes(void);                     /* tables published so far */
uint64_t hak_ace_events_seen(unsigned class_idx);     /* events the learner collected, per class */
uint64_t hak_ace_drops_seen(void);                    /* ring-full + no-ring drops counted */
uint64_t hak_ace_exits_seen(void);     /* threads that exited before taking a ring */
uint64_t hak_ace_exit_samples(void);   /* of which the summary sampled this many */
uint64_t hak_ace_ringless_events(void);/* events of threads with no ring, via the summary */
uint64_t hak_ace_ticks(void);                         /* learner intervals run */
uint64_t hak_ace_learner_cpu_ns(void);                /* CPU time of the learner thread */
int hak_ace_running(void);                            /* 1 while the learner thread runs */

#endif
