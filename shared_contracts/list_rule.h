/* shared_contracts/list_rule.h - how long a thread's list may grow, and how much a spill
 * moves: the one rule Box 1 applies (it sets the cap after every refill and cuts the spill),
 * and Box 3 reads to interpret the events it sees.
 *
 *   cap(c, n)   = clamp(cap_refills * n, n, HAKMEM_TCACHE_MAX_KIB / size(c))
 *                 for a list last refilled with n blocks (0 with HAKMEM_DEBUG=1: lists are
 *                 bypassed); one refill's worth, clamp(n, n, ...), when the refill share cut
 *                 that refill (threads outnumber the CPUs: box2_refill/share.h), so that a
 *                 server's idle workers keep half as much;
 *   spill(cap, len) = max(cap / spill_div, len - cap, 1): the blocks freed last
 *                 leave as one chain when a free takes the list past its cap.
 * So with the defaults (2, 2) a list holds at most two refills' worth and a spill moves one
 * refill's worth, leaving the list half full.
 *
 * Growth: that cap is a list's base cap. A thread whose bursts are deeper than it would take
 * a refill per batch and give a spill per batch through the class lock, although it only
 * ever reuses its own blocks. So when a free takes a list past its cap and the thread's
 * refills of the class since the list's last overflow brought in at least a cap's worth (it
 * ran the list dry, refilled it, and now gives back: a burst deeper than the list), the cap
 * first grows by the blocks those refills brought in (the extra, in the spirit of tcmalloc's slow
 * start), while
 *   base + extra <= HAKMEM_TCACHE_MAX_KIB / size(c)   (the per-list budget),
 *   the thread's extras, in bytes, stay within HAKMEM_TCACHE_GROW_KIB (hak_list_grow_step),
 *   and every thread's extras within hak_list_grow_budgets_all() such budgets (one per
 *   CPU, at most 4);
 * only what is still over the cap spills. The first such burst of a class only marks it
 * (Box 1's burst_seen: a thread that bursts once, a server's worker on one big request,
 * would keep a grown list resident while it idles), and a burst that comes back scrambled
 * clears the mark (a grown list would take the next scrambled burst in whole); from the
 * second in a row on, a burst of d blocks
 * stays in the list from its first free: later bursts of that depth make no refill and no
 * spill, and the thread's
 * blocks never pass through the spans to another thread. A grown list hands blocks out in
 * the order its thread freed them, so Box 1 grows a list only when the blocks freed last lie
 * dense (box1_tls/tcache.c, list_dense: neighbours at most two block sizes apart): a burst
 * freed in or against its allocation order. A structure freed in a scrambled order spills
 * instead, to the spans, whose bitmaps hand its blocks out again in address order
 * (box2_refill/central.h); and a grown list of a class up to 1 KiB that ran dry since its
 * last overflow and whose spill comes back scrambled goes back to its base cap
 * (box1_tls/tcache.c, hak_tcache_overflow). A thread that only takes (a
 * producer) or only gives back (a consumer) never grows. Box 1 drops a list's extra (back to
 * the base cap) when the list sits idle through a trim pass, in a drain, and when another
 * class of its thread grows while the thread's budget is spent and this list had no slow
 * path since the last trim pass. */
#ifndef HAK_LIST_RULE_H
#define HAK_LIST_RULE_H

#include <stdint.h>

#include "config.h"
#include "size_classes.h"

/* The rule's two parameters: a list's cap, in refills' worth of blocks, and the divisor of
 * the spill (a spill moves cap / spill_div blocks), both >= 1. Constants in the library; the
 * test build of the library (-DHAK_TEST_HOOKS, tests/tests.mk) reads them from a variable,
 * hak_list_rule (list_rule.c), that a unit test may change while no other thread allocates.
 * The shipped library has no such variable (tests/check_symbols.sh checks). */
#define HAK_LIST_CAP_REFILLS_DEFAULT 2u
#define HAK_LIST_SPILL_DIV_DEFAULT 2u

#ifdef HAK_TEST_HOOKS
typedef struct hak_list_rule {
    uint32_t cap_refills;
    uint32_t spill_div;
} hak_list_rule_t;
extern hak_list_rule_t hak_list_rule;
#define HAK_LIST_CAP_REFILLS (hak_list_rule.cap_refills)
#define HAK_LIST_SPILL_DIV (hak_list_rule.spill_div)
#else
#define HAK_LIST_CAP_REFILLS HAK_LIST_CAP_REFILLS_DEFAULT
#define HAK_LIST_SPILL_DIV HAK_LIST_SPILL_DIV_DEFAULT
#endif

/* The cap of `refills` refills' worth (the rule's HAK_LIST_CAP_REFILLS, or 1 after a refill
 * the share cut) under a byte budget per list (0: no budget). Pure; Box 3 calls it with its
 * own copy of the budget. */
static inline uint32_t hak_list_cap_for(unsigned class_idx, uint32_t refill_count,
                                        uint32_t refills, uint64_t budget_bytes)
{
    uint64_t cap = (uint64_t)refills * refill_count;
    uint64_t fit = budget_bytes / hak_class_size(class_idx);
    if (budget_bytes && cap > fit)
        cap = fit;
    if (cap < refill_count)
        cap = refill_count;
    return (uint32_t)cap;
}

/* The cap Box 1 sets after a refill of refill_count blocks that may keep `refills` refills'
 * worth (hak_refill_t.cap_refills: HAK_LIST_CAP_REFILLS, or 1 when the refill share cut the
 * refill: box2_refill/share.h). */
static inline uint32_t hak_list_cap_after(unsigned class_idx, uint32_t refill_count,
                                          uint32_t refills)
{
    if (hak_config.debug)
        return 0;
    return hak_list_cap_for(class_idx, refill_count, refills,
                            (uint64_t)hak_config.tcache_max_kib * 1024u);
}

/* The cap of the rule (HAK_LIST_CAP_REFILLS refills' worth), as a thread starts with. */
static inline uint32_t hak_list_cap(unsigned class_idx, uint32_t refill_count)
{
    return hak_list_cap_after(class_idx, refill_count, HAK_LIST_CAP_REFILLS);
}

/* The largest refill count whose cap, before the budget clamps it, fits budget_bytes. */
static inline uint64_t hak_list_max_refill(unsigned class_idx, uint64_t budget_bytes)
{
    return budget_bytes / ((uint64_t)HAK_LIST_CAP_REFILLS * hak_class_size(class_idx));
}

/* The growth an overflow gives a list whose cap is `cap` when its thread's refills brought in
 * `taken` blocks since the list's last overflow, and the thread's extras may still grow by
 * thread_room_bytes: nothing unless taken >= cap (the refills ran the list dry at least once
 * over: a burst deeper than the list, not a walk around its cap); else taken, cut to the
 * per-list budget and that room. 0 with HAKMEM_DEBUG=1, where lists are bypassed. */
static inline uint32_t hak_list_grow_step(unsigned class_idx, uint64_t taken, uint32_t cap,
                                          uint64_t thread_room_bytes)
{
    uint64_t size = hak_class_size(class_idx);
    uint64_t fit = (uint64_t)hak_config.tcache_max_kib * 1024u / size;
    if (hak_config.debug || taken < cap || cap >= fit)
        return 0;
    if (taken > fit - cap)
        taken = fit - cap;
    if (taken > thread_room_bytes / size)
        taken = thread_room_bytes / size;
    return (uint32_t)taken;
}

/* Every thread's extras together stay within this many threads' budgets: one per CPU the
 * process may run on, at most 4. Only as many threads as there are CPUs run a burst at a
 * time; the extras of the others wait, resident, for bursts that may never come (a server's
 * idle workers), so with more budgets than CPUs they are memory held for nothing. */
#define HAK_GROW_BUDGETS_MAX 4u
static inline uint64_t hak_list_grow_budgets_all(void)
{
    uint64_t n = hak_config.cpus < 1 ? 1 : (uint64_t)hak_config.cpus;
    return n < HAK_GROW_BUDGETS_MAX ? n : HAK_GROW_BUDGETS_MAX;
}

/* The bytes a thread's extras may hold in all (HAKMEM_TCACHE_GROW_KIB). */
static inline uint64_t hak_list_grow_budget(void)
{
    return (uint64_t)hak_config.tcache_grow_kib * 1024u;
}

static inline uint32_t hak_spill_count(uint32_t cap, uint32_t list_len)
{
    uint32_t n = cap / HAK_LIST_SPILL_DIV;
    if (list_len > cap && n < list_len - cap)
        n = list_len - cap;
    if (n < 1)
        n = 1;
    return n > list_len ? list_len : n;
}

#endif
