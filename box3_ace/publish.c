/* box3_ace/publish.c - the RCU-published refill table (shared_contracts/policy_table.h).
 *
 * Two static tables and one updater (whoever holds hak_ace_mu). Invariant, on entry to and
 * exit from hak_ace_publish_locked: the table that hak_policy_current does NOT point at has no
 * reader, because it was either never published, or it was replaced by the previous publish,
 * which then waited a full grace period (synchronize_rcu) before returning. So the next
 * publish may overwrite it in place. No call_rcu, no defer_rcu: they malloc and start threads.
 *
 * urcu-bp: readers (Box 2's refills) register lazily on their first rcu_read_lock, without
 * malloc; synchronize_rcu here sleeps in ~10 ms steps while a reader is inside a section.
 */
#include <urcu-bp.h>

#include "box3_ace/ace_internal.h"
#include "shared_contracts/policy_table.h"

static hak_policy_table_t tables[2]; /* written under hak_ace_mu, only the one with no reader */
static uint64_t table_version;       /* under hak_ace_mu */
static uint64_t publishes;           /* written under hak_ace_mu (relaxed store), read anywhere */

void hak_ace_publish_locked(const uint16_t counts[HAK_NUM_CLASSES])
{
    hak_policy_table_t *old = hak_policy_current; /* we are the only writer */
    hak_policy_table_t *t = old == &tables[0] ? &tables[1] : &tables[0];
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
        t->refill_count[c] = counts[c];
    t->version = ++table_version;
    /* Orders the table's contents before the pointer (a release store). */
    rcu_assign_pointer(hak_policy_current, t);
    /* After this, no reader still holds `old`: it becomes the idle table. */
    synchronize_rcu();
    __atomic_store_n(&publishes, publishes + 1, __ATOMIC_RELAXED);
}

uint64_t hak_ace_publishes(void)
{
    return __atomic_load_n(&publishes, __ATOMIC_RELAXED);
}
