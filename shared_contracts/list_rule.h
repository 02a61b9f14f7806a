/* shared_contracts/list_rule.h - how long a thread's list may grow, and how much a spill
 * moves: the one rule Box 1 applies (it sets the cap after every refill and cuts the spill),
 * Box 2 states to its depot, and Box 3 reads to interpret the events it sees.
 *
 *   cap(c, n)   = clamp(hak_list_rule.cap_refills * n, n, HAKMEM_TCACHE_MAX_KIB / size(c))
 *                 for a list last refilled with n blocks (0 with HAKMEM_DEBUG=1: lists are
 *                 bypassed);
 *   spill(cap, len) = max(cap / hak_list_rule.spill_div, len - cap, 1): the blocks freed last
 *                 leave as one chain when a free takes the list past its cap.
 * So with the defaults (2, 2) a list holds at most two refills' worth and a spill moves one
 * refill's worth, leaving the list half full.
 *
 * hak_list_rule is written only at start-up or by tests while no other thread allocates;
 * everyone else reads it. Nothing else may restate these formulas: call these functions.
 */
#ifndef HAK_LIST_RULE_H
#define HAK_LIST_RULE_H

#include <stdint.h>

#include "config.h"
#include "size_classes.h"

typedef struct hak_list_rule {
    uint32_t cap_refills; /* a list's cap, in refills' worth of blocks (>= 1) */
    uint32_t spill_div;   /* a spill moves cap / spill_div blocks (>= 1) */
} hak_list_rule_t;

extern hak_list_rule_t hak_list_rule;

/* The cap under a byte budget per list (0: no budget). Pure; Box 3 calls it with its own
 * copy of the budget. */
static inline uint32_t hak_list_cap_for(unsigned class_idx, uint32_t refill_count,
                                        uint64_t budget_bytes)
{
    uint64_t cap = (uint64_t)hak_list_rule.cap_refills * refill_count;
    uint64_t fit = budget_bytes / hak_class_size(class_idx);
    if (budget_bytes && cap > fit)
        cap = fit;
    if (cap < refill_count)
        cap = refill_count;
    return (uint32_t)cap;
}

/* The cap Box 1 sets after a refill of refill_count blocks. */
static inline uint32_t hak_list_cap(unsigned class_idx, uint32_t refill_count)
{
    if (hak_config.debug)
        return 0;
    return hak_list_cap_for(class_idx, refill_count, (uint64_t)hak_config.tcache_max_kib * 1024u);
}

/* The largest refill count whose cap, before the budget clamps it, fits budget_bytes. */
static inline uint64_t hak_list_max_refill(unsigned class_idx, uint64_t budget_bytes)
{
    return budget_bytes / ((uint64_t)hak_list_rule.cap_refills * hak_class_size(class_idx));
}

static inline uint32_t hak_spill_count(uint32_t cap, uint32_t list_len)
{
    uint32_t n = cap / hak_list_rule.spill_div;
    if (list_len > cap && n < list_len - cap)
        n = list_len - cap;
    if (n < 1)
        n = 1;
    return n > list_len ? list_len : n;
}

#endif
