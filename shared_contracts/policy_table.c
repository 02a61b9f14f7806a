/* shared_contracts/policy_table.c - the published table pointer (policy_table.h). */
#include "policy_table.h"

/* RCU-protected: written by rcu_assign_pointer by Box 3's publisher (under its mutex), read by
 * rcu_dereference inside urcu-bp read-side sections (hak_policy_refill_count). NULL until the
 * first publish. */
hak_policy_table_t *hak_policy_current;

/* POOL_ACE=shadow: the counts the learner would have published (policy_table.h). Zero:
 * no shadow decision yet. */
uint16_t hak_policy_shadow[HAK_NUM_CLASSES];
