/* box2_refill/refill.c - refill on a miss, give-back on an overflow, a trim or a drain
 * (shared_contracts/backend.h).
 *
 * A refill reads its count once, at its start: the ACE table when POOL_ACE=1 (an urcu-bp
 * read-side section, never inside a class lock), else the fixed Phase 1 count. That count is
 * the whole refill's (contract B): Box 2 takes that many blocks under the class lock, hands
 * them to Box 1 as one chain with the count, and reports one event to ACE. Box 1 sets the
 * list's cap from the count (shared_contracts/list_rule.h).
 *
 * A spill goes into the class's small depot whole when it fits (a steady flow from one
 * thread's frees to another's mallocs then costs O(1) a batch); every other give-back (trim,
 * drain, exit) and every spill the depot cannot take puts each block back into its span's
 * bitmap, so refills take the lowest free blocks of one span again (central.h). Each refill and give-back ends in a decay tick.
 */
#include "refill.h"

#include <errno.h>

#include "central.h"
#include "purge.h"
#include "ramp.h"
#include "share.h"
#include "lock.h"
#include "shared_contracts/backend.h"
#include "shared_contracts/ace_summary.h"
#include "shared_contracts/config.h"
#include "shared_contracts/diag.h"
#include "shared_contracts/event_ring.h"
#include "shared_contracts/list_rule.h"
#include "shared_contracts/policy_table.h"
#include "span.h"
#include "thread.h"

static void report_event(hak_thread_t *t, unsigned class_idx, uint32_t count, uint32_t list_len,
                         unsigned kind, uint64_t now_ms)
{
    hak_event_t ev = {.ms = now_ms,
                      .class_idx = (uint16_t)class_idx,
                      .count = (uint16_t)(count > 65535 ? 65535 : count),
                      .list_len = (uint16_t)(list_len > 65535 ? 65535 : list_len),
                      .kind = (uint8_t)kind};
    hak_tstat_add(t, HAK_TSTAT_events, class_idx, 1);
    if (!t->ring) {
        hak_ring_count_no_ring_drop();
        hak_ace_summary_event(class_idx, kind, count); /* no ring: the summary has it */
        hak_tstat_add(t, HAK_TSTAT_drops, class_idx, 1);
    } else if (!hak_ring_push(t->ring, &ev)) {
        hak_tstat_add(t, HAK_TSTAT_drops, class_idx, 1);
    }
}

/* Take `want` blocks as one chain, keyed and linked, its tail's link NULL: the mailbox's
 * chains first (no lock), then the depot's, then the spans' lowest free blocks; the class
 * lock is held while the bitmaps are read, at most HAK_CENTRAL_BATCH blocks at a time, and
 * the blocks' memory is written after it is released. */
static uint32_t take(unsigned arena, unsigned class_idx, uint32_t want, hak_chain_t *out)
{
    void *blocks[HAK_CENTRAL_BATCH];
    hak_chain_t ch = {NULL, NULL, 0};
    hak_central_t *cc = &hak_central[arena][class_idx];
    hak_central_collect(arena, class_idx, want, &ch); /* other arenas' frees, no lock */
    if (ch.count < want) {
        hak_chain_t part;
        hak_lock(&cc->lock);
        hak_central_take_depot(arena, class_idx, want - ch.count, &part); /* O(1) a chain */
        hak_unlock(&cc->lock);
        hak_chain_append(&ch, part);
    }
    while (ch.count < want) {
        uint32_t part = want - ch.count < HAK_CENTRAL_BATCH ? want - ch.count : HAK_CENTRAL_BATCH;
        uint64_t fresh[HAK_CENTRAL_BATCH / 64] = {0};
        hak_lock(&cc->lock);
        uint32_t got = hak_central_take(arena, class_idx, part, blocks, fresh);
        if (HAK_UNLIKELY(hak_config.debug))
            hak_central_check(arena, class_idx);
        hak_unlock(&cc->lock);
        if (got)
            hak_chain_append_array(&ch, blocks, got);
        /* Only blocks carved for the first time lack the key (central.h, "Free blocks and
         * the free key"): the others are not written twice. */
        uint64_t key = hak_free_key; /* once: a store into a block could alias it */
        for (uint32_t w = 0; w < HAK_CENTRAL_BATCH / 64; w++)
            for (uint64_t m = fresh[w]; m; m &= m - 1)
                ((uint64_t *)blocks[w * 64 + (uint32_t)__builtin_ctzll(m)])[1] = key;
        if (got < part)
            break;
    }
    if (ch.count)
        hak_block_link(ch.tail, NULL);
    *out = ch;
    return ch.count;
}

void hak_refill(unsigned class_idx, uint32_t list_len, int cached, hak_refill_t *out)
{
    hak_thread_t *t = hak_thread_self();
    uint32_t count = 1, cap_refills = HAK_LIST_CAP_REFILLS;
    uint64_t now = hak_now_ms();
    if (cached && HAK_LIKELY(!hak_config.debug)) { /* debug: every malloc comes here (debug.h) */
        uint32_t fixed = hak_fixed_refill_count(class_idx);
        /* Shadow mode publishes nothing: no table to read (and no urcu-bp reader to register). */
        count = hak_config.ace == 1 ? hak_policy_refill_count(class_idx, fixed) : fixed;
        count = hak_ramp_count(class_idx, count, hak_ramp_step(t, class_idx)); /* ramp.h */
        uint32_t unshared = count;
        count = hak_share_count(class_idx, count); /* share.h */
        if (count < unshared)
            cap_refills = 1; /* an idle worker among many keeps one share, not two */
    }
    if (cached)
        hak_test_refill_hook(class_idx, count); /* nothing outside the test build (refill.h) */
    out->refill_count = count;
    out->cap_refills = cap_refills;
    uint32_t got = take(t->arena, class_idx, count, &out->chain);
    if (!got && hak_reclaim_may_help(0) && hak_reclaim()) /* out of memory or address space:
                                                             * give back, try once more */
        got = take(t->arena, class_idx, count, &out->chain);
    out->now_ms = now;
    if (!got) {
        errno = ENOMEM;
        return;
    }
    if (cached) {
        __atomic_store_n(&t->cached[class_idx], list_len + got - 1, __ATOMIC_RELAXED);
        hak_tstat_add(t, HAK_TSTAT_refills, class_idx, 1);
        hak_tstat_add(t, HAK_TSTAT_refill_blocks, class_idx, got);
        if (hak_config.ace && t->live) {
            if (!t->ring_wait)
                report_event(t, class_idx, got, list_len, HAK_EV_REFILL, now);
            else if (!--t->ring_wait)
                t->ring = hak_ring_acquire();
        }
    }
    hak_decay_maybe(now);
}

uint64_t hak_give(unsigned class_idx, hak_chain_t chain, uint32_t list_len, enum hak_give why)
{
    int saved = errno;
    hak_thread_t *t = hak_thread_self();
    uint64_t now = hak_now_ms();
    hak_test_give_hook(class_idx, chain.count, why);
    if (HAK_UNLIKELY(hak_config.debug) && chain.count > HAK_GIVE_MAX)
        hak_fatal("invariant broken: a give-back of class %u holds %u blocks (at most %u)",
                  class_idx, chain.count, HAK_GIVE_MAX);
    /* A spill (or an exiting thread's list) stays whole: in the mailbox of its first block's
     * arena if that is another arena, else in that arena's depot if it fits, so a consumer's
     * spill of a producer's blocks, or a short-lived thread's lists, feed the next refills
     * in O(1) a chain. Otherwise the blocks go back to their spans, in whichever arenas. */
    int kept = 0;
    if (why == HAK_GIVE_SPILL || why == HAK_GIVE_EXIT) {
        unsigned arena = hak_central_arena_of(chain.head, class_idx);
        hak_central_t *cc = &hak_central[arena][class_idx];
        kept = arena != t->arena && hak_central_post(arena, class_idx, chain); /* no lock */
        if (!kept) {
            hak_lock(&cc->lock);
            kept = hak_central_put_depot(arena, class_idx, chain);
            hak_unlock(&cc->lock);
        }
    }
    if (!kept)
        hak_central_give(class_idx, chain, now, t->arena);
    __atomic_store_n(&t->cached[class_idx], list_len - chain.count, __ATOMIC_RELAXED);
    if (why == HAK_GIVE_SPILL) {
        hak_tstat_add(t, HAK_TSTAT_spills, class_idx, 1);
        hak_tstat_add(t, HAK_TSTAT_spill_blocks, class_idx, chain.count);
        if (hak_config.ace && t->live && !t->ring_wait)
            report_event(t, class_idx, chain.count, list_len, HAK_EV_SPILL, now);
    } else if (why == HAK_GIVE_TRIM) {
        hak_tstat_add(t, HAK_TSTAT_trim_blocks, class_idx, chain.count);
        if (hak_config.ace && t->ring) /* tells ACE the list sat idle (the summary of ringless
                                        * threads has no use for it) */
            report_event(t, class_idx, chain.count, list_len, HAK_EV_TRIM, now);
    } else if (why == HAK_GIVE_EXIT) {
        t->exit_left[class_idx] += chain.count; /* what the exiting thread never needed (a
                                                 * long list comes in several chains) */
    }
    hak_decay_maybe(now);
    errno = saved;
    return now;
}

