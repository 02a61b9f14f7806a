/* box3_ace/ace_internal.h - what the files of Box 3 share among themselves. Not for tests or
 * other boxes.
 *
 * Locking: hak_ace_mu is the one ACE mutex. It guards all learner state (per-class policy
 * state, the collector's per-ring bookkeeping, the log fd) and every publication. The learner
 * holds it for a whole interval (collect, decide, publish, log) and drops it only while it
 * sleeps; fork prepare takes it, so a fork never lands mid-collect or mid-publish. Lock order:
 * hak_ace_mu before urcu-bp's internal locks (synchronize_rcu, urcu_bp_before_fork).
 * No allocator lock is ever taken under it.
 */
#ifndef HAK_ACE_INTERNAL_H
#define HAK_ACE_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "box3_ace/policy.h"

extern pthread_mutex_t hak_ace_mu;

/* One interval's harvest from the rings. */
typedef struct hak_ace_interval {
    hak_ace_class_stats_t cls[HAK_NUM_CLASSES];
    uint64_t collected[HAK_NUM_CLASSES]; /* events collected per class (cls[] adds the drops) */
    uint64_t events; /* events collected */
    uint64_t drops;  /* ring-full drops + no-ring drops that happened since the last harvest */
    uint64_t ringless_events; /* events of threads with no ring, taken from the summary */
    uint64_t exits;           /* threads that exited before taking a ring */
    uint64_t exit_samples;    /* of which the summary sampled this many */
} hak_ace_interval_t;

/* collect.c, under hak_ace_mu: collect every OWNED and ORPHANED ring into *iv (zeroed first),
 * then the summary of ringless threads; ORPHANED rings are set FREE once empty. counts: the
 * counts in force, to size dropped events of a class none of whose events was collected. */
void hak_ace_collect(hak_ace_interval_t *iv, const uint16_t counts[HAK_NUM_CLASSES]);

/* collect.c, under hak_ace_mu: collect every ring and throw the events away (they were pushed
 * under the table a publish just replaced); drop marks move on, orphans are recycled. The
 * summary is left for the next hak_ace_collect. Returns the ring-full drops it passed. */
uint64_t hak_ace_collect_discard(const uint16_t counts[HAK_NUM_CLASSES]);

/* publish.c, under hak_ace_mu: fill the idle table, publish it, wait a grace period. */
void hak_ace_publish_locked(const uint16_t counts[HAK_NUM_CLASSES]);

/* acelog.c, under hak_ace_mu (POOL_ACE_LOG). Open writes the header; rows are buffered by
 * the caller's interval and written by flush; all are no-ops when the log is off. */
void hak_ace_log_open(const char *path);
void hak_ace_log_row(uint64_t ms, unsigned c, unsigned old_count, unsigned new_count,
                     const char *reason, uint64_t refills_per_s, uint64_t spills_per_s,
                     uint64_t drops);
void hak_ace_log_flush(void);
void hak_ace_log_close(void);

#endif
