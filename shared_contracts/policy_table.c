/* shared_contracts/policy_table.c - the shadow counts of policy_table.h (POOL_ACE=shadow).
 * Zero-initialised: no shadow decision yet. */
#include "policy_table.h"

uint16_t hak_policy_shadow[HAK_NUM_CLASSES];
