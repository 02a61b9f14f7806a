/* shared_contracts/policy_table.h - the per-class refill counts ACE publishes.
 *
 * Writer: the ACE learner thread only (Box 3). It fills an idle, statically allocated table,
 * publishes it with rcu_assign_pointer(hak_policy_current, t), waits synchronize_rcu(), and only
 * then reuses the previous table. No allocation, no call_rcu.
 *
 * Readers: Box 2, once at the start of each refill, in an urcu-bp read-side section
 * (hak_policy_refill_count below). The count read is the count of that whole refill; a table
 * published meanwhile applies from the next refill on (contract B). The reader clamps what it
 * reads to [1, HAK_REFILL_MAX], so a bad table cannot hurt.
 *
 * Flavor: urcu-bp ("bulletproof"): application threads that call malloc never register with
 * RCU; urcu-bp registers a reader lazily on its first read lock, without malloc. See docs/ACE.md.
 */
#ifndef HAK_POLICY_TABLE_H
#define HAK_POLICY_TABLE_H

#include <stdint.h>
#include <urcu-bp.h>
#include "size_classes.h"

#define HAK_REFILL_MAX 1024u

typedef struct hak_policy_table {
    uint64_t version;                         /* 1, 2, 3 ... in publication order */
    uint16_t refill_count[HAK_NUM_CLASSES];   /* blocks per refill, per class */
} hak_policy_table_t;

/* NULL while ACE is off: Box 2 then uses the fixed Phase 1 counts. RCU-protected; defined in
 * shared_contracts/policy_table.c, written only by Box 3's publisher. */
extern hak_policy_table_t *hak_policy_current;

/* POOL_ACE=shadow: the counts the learner would have published (0 for a class: none yet).
 * Nothing reads them for a refill; the HAKMEM_STATS table prints them. Written by the learner
 * (relaxed stores), read anywhere (relaxed loads); defined in shared_contracts/policy_table.c,
 * so a reader names no Box 3 symbol. */
extern uint16_t hak_policy_shadow[HAK_NUM_CLASSES];

/* Read the published count for class_idx, or `fixed` when nothing is published. */
static inline uint32_t hak_policy_refill_count(unsigned class_idx, uint32_t fixed)
{
    uint32_t n = fixed;
    rcu_read_lock();
    hak_policy_table_t *t = rcu_dereference(hak_policy_current);
    if (t)
        n = t->refill_count[class_idx];
    rcu_read_unlock();
    if (n < 1)
        n = 1;
    if (n > HAK_REFILL_MAX)
        n = HAK_REFILL_MAX;
    return n;
}

#endif
