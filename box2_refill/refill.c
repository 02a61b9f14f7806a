/* box2_refill/refill.c - refill on a miss, spill on an overflow (shared_contracts/tcache.h).
 *
 * A refill reads its count once, at its start: the ACE table when POOL_ACE=1 (an urcu-bp
 * read-side section, never inside a class lock), else the fixed Phase 1 count. That count is
 * the whole refill's (contract B). It then takes a batch under the class lock, links it into
 * the thread's list, sets the list's cap from the count, and reports one event to ACE.
 *
 * Idle-list trim: a thread's lists only shrink by spills, so blocks a thread stopped using
 * would stay in its list for good. Every decay tick (HAKMEM_DECAY_MS / 4) a thread's own slow
 * path trims each list that did not refill since its last pass: by 3/4 of the blocks the list
 * provably did not use (a low-water bound from the slow-path counters: the hit path keeps no
 * extra state), or by half if it did not spill either. It runs in both modes and never reads
 * the policy table: it is Box 2's decay, not a published count reaching into a list
 * (contract B).
 */
#include "refill.h"

#include <errno.h>

#include "central.h"
#include "large_cache.h"
#include "lock.h"
#include "shared_contracts/ace_summary.h"
#include "shared_contracts/config.h"
#include "shared_contracts/event_ring.h"
#include "shared_contracts/policy_table.h"
#include "shared_contracts/tcache.h"
#include "thread.h"

void (*hak_refill_hook)(unsigned class_idx, uint32_t refill_count);

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

/* Detach the first n (1 <= n <= count) blocks of the calling thread's list of class_idx and
 * give them to the central lists as one batch (to_depot), or straight to their spans. */
static void bin_release(unsigned class_idx, uint32_t n, uint64_t now_ms, int to_depot)
{
    uint64_t *head = hak_tcache.head[class_idx];
    uint64_t *tail = head;
    for (uint32_t i = 1; i < n; i++)
        tail = (uint64_t *)tail[0];
    hak_tcache.head[class_idx] = (void *)tail[0];
    hak_tcache.room[class_idx] += (int32_t)n;
    hak_lock(&hak_central[class_idx].lock);
    hak_central_put_to(class_idx, head, tail, n, now_ms, to_depot);
    hak_unlock(&hak_central[class_idx].lock);
}

void hak_list_trim(hak_thread_t *t, uint64_t now_ms)
{
    uint64_t period = (uint64_t)hak_config.decay_ms / 4;
    t->trim_due_ms = now_ms + (period < 10 ? 10 : period);
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        uint32_t len = hak_bin_count(c);
        uint64_t allocs = hak_tcache.allocs[c];
        uint64_t refills = t->stat[HAK_TSTAT_refills][c];
        uint64_t spilled = t->stat[HAK_TSTAT_spill_blocks][c];
        /* No refill since the last pass: the list never ran empty, and it never held fewer
         * than its length then, less what mallocs and spills took out since (low). That bound
         * is weak for a list whose blocks cycle (each malloc answered by a free), so a list
         * that neither refilled nor spilled for a whole pass also gives back half: if it
         * needed them, it costs one refill, which exempts it from the next pass. */
        if (len && refills == t->trim_refills[c]) {
            uint64_t out = (allocs - t->trim_allocs[c]) + (spilled - t->trim_spilled[c]);
            uint32_t low = t->trim_len[c] > out ? t->trim_len[c] - (uint32_t)out : 0;
            if (low > len)
                low = len;
            uint32_t n = low - low / 4;
            if (spilled == t->trim_spilled[c] && n < len / 2)
                n = len / 2;
            if (n) {
                bin_release(c, n, now_ms, 0);
                hak_tstat_add(t, HAK_TSTAT_trim_blocks, c, n);
                if (hak_config.ace && !t->ring_wait) /* tells ACE the list sat idle */
                    report_event(t, c, n, len, HAK_EV_TRIM, now_ms);
            }
        }
        t->trim_len[c] = hak_bin_count(c);
        t->trim_allocs[c] = allocs;
        t->trim_refills[c] = refills;
        t->trim_spilled[c] = spilled;
    }
}

static void slow_path_tick(hak_thread_t *t, uint64_t now_ms)
{
    if (HAK_UNLIKELY(now_ms >= t->trim_due_ms) && t->state == HAK_THREAD_LIVE &&
        !hak_config.debug)
        hak_list_trim(t, now_ms);
    hak_decay_maybe(now_ms);
}

/* A thread past its exit destructor: one block straight from the central lists. */
static void *alloc_uncached(unsigned class_idx)
{
    void *head, *tail;
    hak_lock(&hak_central[class_idx].lock);
    uint32_t got = hak_central_take(class_idx, 1, &head, &tail);
    hak_unlock(&hak_central[class_idx].lock);
    if (!got) {
        errno = ENOMEM;
        return NULL;
    }
    ((uint64_t *)head)[1] = 0;
    return head;
}

void *pool_refill_and_alloc(unsigned class_idx)
{
    hak_thread_t *t = hak_thread_get();
    if (HAK_UNLIKELY(t->state != HAK_THREAD_LIVE))
        return alloc_uncached(class_idx);

    uint32_t fixed = hak_fixed_refill_count(class_idx);
    /* Shadow mode publishes nothing: no table to read (and no urcu-bp reader to register). */
    uint32_t count = hak_config.ace == 1 ? hak_policy_refill_count(class_idx, fixed) : fixed;
    if (HAK_UNLIKELY(hak_config.debug))
        count = 1; /* debug: every malloc comes through here (debug.h) */
    if (HAK_UNLIKELY(hak_refill_hook != NULL))
        hak_refill_hook(class_idx, count);

    uint32_t list_len = hak_bin_count(class_idx);
    void *head, *tail;
    hak_lock(&hak_central[class_idx].lock);
    uint32_t got = hak_central_take(class_idx, count, &head, &tail);
    hak_unlock(&hak_central[class_idx].lock);
    if (!got && hak_reclaim()) { /* out of memory or address space: give back, try once more */
        hak_lock(&hak_central[class_idx].lock);
        got = hak_central_take(class_idx, count, &head, &tail);
        hak_unlock(&hak_central[class_idx].lock);
    }
    if (!got) {
        errno = ENOMEM;
        return NULL;
    }
    uint64_t *block = head;
    if (got > 1) {
        ((uint64_t *)tail)[0] = (uint64_t)hak_tcache.head[class_idx];
        hak_tcache.head[class_idx] = (void *)block[0];
        hak_tcache.room[class_idx] -= (int32_t)(got - 1);
    }
    if (HAK_LIKELY(!hak_config.debug))
        hak_bin_set_cap(class_idx, hak_thread_cap(class_idx, count));
    block[1] = 0;
    hak_tcache.allocs[class_idx]++;

    hak_tstat_add(t, HAK_TSTAT_refills, class_idx, 1);
    hak_tstat_add(t, HAK_TSTAT_refill_blocks, class_idx, got);
    uint64_t now = hak_now_ms();
    if (hak_config.ace && !t->ring_wait)
        report_event(t, class_idx, got, list_len, HAK_EV_REFILL, now);
    else if (hak_config.ace && !--t->ring_wait)
        t->ring = hak_ring_acquire();
    slow_path_tick(t, now);
    return block;
}

void pool_spill(unsigned class_idx)
{
    int saved = errno;
    hak_thread_t *t = hak_thread_get();
    uint64_t now = hak_now_ms();
    if (hak_tcache.room[class_idx] >= 0) {
        /* A new thread's first free: the caps and the free key were just set; the block
         * pushed before that carries key 0, so mark it now. */
        ((uint64_t *)hak_tcache.head[class_idx])[1] = hak_tcache.free_key;
        errno = saved;
        return;
    }
    /* Spill half the cap (one refill's worth when the cap is twice the count) off the head:
     * the blocks freed last, still in cache, so the walk to the cut is cheap; the depot takes
     * the chain as one batch. A thread past its exit destructor (cap 0) spills everything. */
    uint32_t cap = hak_tcache.cap[class_idx];
    uint32_t list_len = hak_bin_count(class_idx);
    uint32_t spill = list_len;
    if (t->state == HAK_THREAD_LIVE && !hak_config.debug) {
        spill = cap / 2 ? cap / 2 : 1;
        if (spill < list_len - cap)
            spill = list_len - cap;
    }
    bin_release(class_idx, spill, now, 1);

    hak_tstat_add(t, HAK_TSTAT_spills, class_idx, 1);
    hak_tstat_add(t, HAK_TSTAT_spill_blocks, class_idx, spill);
    if (hak_config.ace && t->state == HAK_THREAD_LIVE && !t->ring_wait)
        report_event(t, class_idx, spill, list_len, HAK_EV_SPILL, now);
    slow_path_tick(t, now);
    errno = saved;
}

/* ---- giving memory back --------------------------------------------------------------- */

int hak_release_cached(uint64_t now_ms)
{
    hak_thread_t *t = hak_thread_get();
    int released = 0;
    if (t->state == HAK_THREAD_LIVE && !hak_fork_holder) {
        for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
            released |= hak_bin_count(c) != 0;
        hak_thread_flush_all();
    }
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        hak_lock(&hak_central[c].lock);
        released |= hak_central[c].depot_count != 0 || hak_central[c].spare != NULL;
        hak_central_release_depot(c, hak_central[c].depot_count, now_ms);
        hak_central[c].depot_low = 0;
        hak_central_release_spare(c, now_ms, 0);
        hak_unlock(&hak_central[c].lock);
    }
    return released;
}

int hak_reclaim(void)
{
    int saved = errno;
    int released = hak_release_cached(hak_now_ms());
    released |= hak_span_unmap_purged() != 0;
    released |= hak_large_cache_trim(hak_now_ms(), 0) != 0;
    errno = saved;
    return released;
}

/* ---- decay ---------------------------------------------------------------------------- */

static uint64_t next_tick_ms; /* CAS-claimed by the thread that runs a tick */

void hak_decay_maybe(uint64_t now_ms)
{
    uint64_t due = __atomic_load_n(&next_tick_ms, __ATOMIC_RELAXED);
    if (HAK_LIKELY(now_ms < due))
        return;
    uint64_t interval = (uint64_t)hak_config.decay_ms / 4;
    if (interval < 10)
        interval = 10;
    if (!__atomic_compare_exchange_n(&next_tick_ms, &due, now_ms + interval, 0, __ATOMIC_RELAXED,
                                     __ATOMIC_RELAXED))
        return;
    /* Each class returns half of the depot blocks nobody took since the last tick. */
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        hak_central_t *cc = &hak_central[c];
        if ((!__atomic_load_n(&cc->depot_count, __ATOMIC_RELAXED) &&
             !__atomic_load_n(&cc->spare, __ATOMIC_RELAXED)) ||
            !hak_trylock(&cc->lock))
            continue;
        uint32_t idle = cc->depot_low;
        if (idle)
            hak_central_release_depot(c, (idle + 1) / 2, now_ms);
        cc->depot_low = cc->depot_count;
        hak_central_release_spare(c, now_ms, (uint64_t)hak_config.decay_ms);
        hak_unlock(&cc->lock);
    }
    hak_span_decay(now_ms, (uint64_t)hak_config.decay_ms, 0);
    hak_large_cache_trim(now_ms, (uint64_t)hak_config.decay_ms);
}
