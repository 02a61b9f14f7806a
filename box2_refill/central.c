/* box2_refill/central.c - the spans of each class and their free bitmaps (central.h). */
#include "central.h"

#include <sched.h>
#include <string.h>

#include "debug.h"
#include "lock.h"
#include "shared_contracts/config.h"
#include "shared_contracts/diag.h"
#include "shared_contracts/pagemap.h"
#include "shared_contracts/backend.h"

/* All zero bytes to start (.bss): free locks (lock.h), empty depots, mailboxes and lists. */
hak_central_t hak_central[HAK_ARENAS_MAX][HAK_NUM_CLASSES];
unsigned hak_arenas = 1;
hak_idle_bound_t hak_idle_bounds[HAK_NUM_CLASSES];

void hak_central_configure(void)
{
    unsigned n = (unsigned)hak_config.arenas;
    if (!n) /* two per CPU the process may run on */
        n = 2 * (unsigned)(hak_config.cpus < 1 ? 1 : hak_config.cpus);
    hak_arenas = n < HAK_ARENAS_MAX ? n : HAK_ARENAS_MAX;
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        uint32_t f = hak_fixed_refill_count(c);
        uint64_t size = hak_class_size(c), fit = HAK_IDLE_BYTES / size;
        uint64_t chains = HAK_IDLE_BYTES / (size * f);
        hak_idle_bounds[c].depot_max = fit < f ? f : fit > 4u * f ? 4u * f : (uint32_t)fit;
        hak_idle_bounds[c].mail_slots = chains < 1              ? 1u
                                        : chains > HAK_MAIL_SLOTS ? HAK_MAIL_SLOTS
                                                                  : (unsigned)chains;
    }
}

uint32_t hak_central_take_depot(unsigned arena, unsigned class_idx, uint32_t want,
                                hak_chain_t *out)
{
    hak_central_t *cc = &hak_central[arena][class_idx];
    hak_chain_t ch = {NULL, NULL, 0};
    while (cc->depot_batches && ch.count < want) {
        hak_chain_t *bt = &cc->depot[cc->depot_batches - 1];
        hak_chain_t part = *bt;
        if (ch.count + bt->count > want) {
            part = hak_chain_cut(&bt->head, want - ch.count);
            bt->count -= part.count;
        } else {
            cc->depot_batches--;
        }
        cc->depot_count -= part.count;
        hak_chain_append(&ch, part);
    }
    if (cc->depot_count < cc->depot_low)
        cc->depot_low = cc->depot_count;
    *out = ch;
    return ch.count;
}

int hak_central_put_depot(unsigned arena, unsigned class_idx, hak_chain_t ch)
{
    hak_central_t *cc = &hak_central[arena][class_idx];
    if (hak_config.debug || cc->depot_batches == HAK_DEPOT_BATCHES ||
        cc->depot_count + ch.count > hak_idle_bounds[class_idx].depot_max)
        return 0;
    cc->depot[cc->depot_batches++] = ch;
    cc->depot_count += ch.count;
    return 1;
}

static unsigned span_kind_of(unsigned class_idx)
{
    return (unsigned)__builtin_ctz(hak_span_bytes(class_idx)) - 16u;
}

/* A new span or the spare: refills take from it next. */
static void partial_push(hak_central_t *cc, hak_span_t *s)
{
    s->prev = NULL;
    s->next = cc->partial;
    if (s->next)
        s->next->prev = s;
    else
        cc->partial_tail = s;
    cc->partial = s;
}

/* A full span got a block back: it waits behind the spans refills are draining. */
static void partial_append(hak_central_t *cc, hak_span_t *s)
{
    s->next = NULL;
    s->prev = cc->partial_tail;
    if (s->prev)
        s->prev->next = s;
    else
        cc->partial = s;
    cc->partial_tail = s;
}

static void partial_remove(hak_central_t *cc, hak_span_t *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        cc->partial = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        cc->partial_tail = s->prev;
    s->next = s->prev = NULL;
}

/* The span of a block of class_idx; aborts if the page map disagrees. */
static inline __attribute__((always_inline)) hak_span_t *span_of(void *block, unsigned class_idx)
{
    uint64_t entry = hak_pagemap_get((uintptr_t)block);
    if (hak_pm_class(entry) != class_idx)
        hak_fatal("corrupted free list: block %p of class %u is not in a span of that class",
                  block, class_idx);
    return hak_pm_owner(entry);
}

/* The lowest free blocks of s, up to n, into out[] in address order; the bit of each block
 * carved here for the first time (it carries no free key) set in fresh[] (hak_central_take),
 * `at` being out[0]'s index there. */
/* Inlined twice with `debug` a constant (hak_central_take), so that the release build's loop
 * carries no test of it. */
static inline __attribute__((always_inline)) uint32_t span_take(hak_span_t *s, uint32_t n,
                                                                void **out, uint64_t *fresh,
                                                                uint32_t at, int debug)
{
    uint32_t size = hak_class_size(s->class_idx), got = 0;
    uint32_t words = (s->capacity + 63) / 64, w = s->first;
    uintptr_t base = hak_span_base(s);
    for (; w < words && got < n; w++) {
        uint64_t m = s->freemap[w];
        while (m && got < n) {
            uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(m);
            m &= m - 1;
            if (HAK_UNLIKELY(debug))
                hak_debug_take(s, (void *)(base + (uintptr_t)i * size), i < s->carved);
            if (i >= s->carved) {
                s->carved = i + 1;
                if (fresh)
                    fresh[(at + got) >> 6] |= 1ull << ((at + got) & 63);
            }
            out[got] = (void *)(base + (uintptr_t)i * size);
            /* The caller links every block once it dropped the lock; fetched from here on,
             * the cold lines arrive together instead of one store at a time (locality 1.2x) */
            __builtin_prefetch(out[got++], 1);
        }
        s->freemap[w] = m;
        if (m)
            break;
    }
    s->first = (uint16_t)w;
    s->in_use += got;
    return got;
}

uint32_t hak_central_take(unsigned arena, unsigned class_idx, uint32_t want, void **blocks,
                          uint64_t *fresh)
{
    hak_central_t *cc = &hak_central[arena][class_idx];
    uint32_t got = 0;
    while (got < want) {
        hak_span_t *s = cc->partial;
        if (!s && cc->spare) {
            s = cc->spare;
            cc->spare = NULL;
            partial_push(cc, s);
        } else if (!s) {
            s = hak_span_get(span_kind_of(class_idx), class_idx);
            if (!s)
                break;
            s->arena = (uint8_t)arena;
            cc->spans++;
            partial_push(cc, s);
        }
        if (HAK_LIKELY(!hak_config.debug))
            got += span_take(s, want - got, blocks + got, fresh, got, 0);
        else
            got += span_take(s, want - got, blocks + got, fresh, got, 1);
        if (s->in_use == s->capacity)
            partial_remove(cc, s);
    }
    return got;
}

/* One block back to its span s, of class_idx and of cc's arena (the caller checked s->arena;
 * `magic` is the class's hak_classes.divmagic, `debug` hak_config.debug, both read once by
 * the caller's loop). Inlined into the loops below: a call per block spent more instructions
 * on saving registers than on the bitmap (docs/BENCHMARKS.md, "The middle's instructions"). */
static inline __attribute__((always_inline)) void span_put(hak_central_t *cc, hak_span_t *s,
                                                            void *block, uint64_t magic,
                                                            int debug, uint64_t now_ms)
{
    uint32_t off = (uint32_t)((uintptr_t)block - hak_span_base(s));
    uint32_t i = (uint32_t)(((__uint128_t)off * magic) >> 64);
    uint64_t bit = 1ull << (i & 63), *word = &s->freemap[i >> 6];
    if (HAK_UNLIKELY(*word & bit))
        hak_fatal("double free or corrupted free list: block %p is already free in its span",
                  block);
    if (HAK_UNLIKELY(debug))
        hak_debug_put(s, block);
    *word |= bit;
    if (i >> 6 < s->first)
        s->first = (uint16_t)(i >> 6);
    uint32_t in_use = s->in_use;
    s->in_use = in_use - 1;
    /* in_use == capacity (it was full) or in_use == 1 (it is empty now) in one compare: a
     * block coming back finds in_use between 1 and capacity */
    if (HAK_UNLIKELY(in_use - 2 >= s->capacity - 2)) {
        if (in_use == 1) { /* all free now */
            if (in_use != s->capacity) /* a span of one block was never on the list */
                partial_remove(cc, s);
            if (!cc->spare) { /* keep it, all free */
                hak_span_reset_free(s);
                cc->spare = s;
                cc->spare_since_ms = now_ms;
            } else {
                cc->spans--;
                hak_span_put(s, now_ms);
            }
        } else { /* was full: back on the partial list */
            partial_append(cc, s);
        }
    }
}

/* The blocks of blocks[0..n) whose spans are cc's arena's back to them; the others moved to
 * the front of blocks[], their count returned. Under cc's lock. Inlined twice with `debug` a
 * constant (hak_central_give). */
static inline __attribute__((always_inline)) uint32_t put_arena(hak_central_t *cc,
                                                                unsigned arena,
                                                                unsigned class_idx,
                                                                void **blocks, uint32_t n,
                                                                uint64_t now_ms, int debug)
{
    uint64_t magic = hak_classes.divmagic[class_idx];
    uint32_t rest = 0;
    for (uint32_t k = 0; k < n; k++) {
        hak_span_t *s = span_of(blocks[k], class_idx);
        if (HAK_LIKELY(s->arena == arena))
            span_put(cc, s, blocks[k], magic, debug, now_ms);
        else
            blocks[rest++] = blocks[k];
    }
    return rest;
}

void hak_central_put(unsigned arena, unsigned class_idx, void *const *blocks, uint32_t n,
                     uint64_t now_ms)
{
    hak_central_t *cc = &hak_central[arena][class_idx];
    uint64_t magic = hak_classes.divmagic[class_idx];
    int debug = hak_config.debug;
    for (uint32_t k = 0; k < n; k++) {
        hak_span_t *s = span_of(blocks[k], class_idx);
        if (HAK_UNLIKELY(s->arena != arena)) /* only a double free races a span to another arena */
            hak_fatal("double free or corrupted free list: block %p is not in a span of arena %u",
                      blocks[k], arena);
        span_put(cc, s, blocks[k], magic, debug, now_ms);
    }
}

unsigned hak_central_arena_of(const void *block, unsigned class_idx)
{
    return ((hak_span_t *)span_of((void *)block, class_idx))->arena;
}

/* The slot this thread is filling or emptying (set before it claims the slot, cleared after
 * it let go), so that the child of a fork from a signal handler that interrupted it keeps
 * that slot BUSY for the interrupted code to finish (hak_central_fork_child). */
static __thread hak_mail_slot_t *mail_mine __attribute__((tls_model("initial-exec")));

int hak_central_post(unsigned arena, unsigned class_idx, hak_chain_t ch)
{
    hak_mail_slot_t *slot = hak_central[arena][class_idx].mail;
    if (HAK_UNLIKELY(hak_config.debug))
        return 0;
    for (unsigned i = 0; i < hak_idle_bounds[class_idx].mail_slots; i++, slot++) {
        void *empty = NULL;
        if (__atomic_load_n(&slot->head, __ATOMIC_RELAXED))
            continue;
        __atomic_store_n(&mail_mine, slot, __ATOMIC_RELAXED);
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        if (!__atomic_compare_exchange_n(&slot->head, &empty, HAK_MAIL_BUSY, 0,
                                         __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            continue;
        __atomic_store_n(&slot->tail, ch.tail, __ATOMIC_RELAXED); /* published by the release */
        __atomic_store_n(&slot->count, ch.count, __ATOMIC_RELAXED); /* store of head below */
        __atomic_store_n(&slot->head, ch.head, __ATOMIC_RELEASE);
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        __atomic_store_n(&mail_mine, NULL, __ATOMIC_RELAXED);
        return 1;
    }
    __atomic_store_n(&mail_mine, NULL, __ATOMIC_RELAXED);
    return 0;
}

/* Claim a full slot: its chain, or {NULL, NULL, 0} if it is empty or another thread has it. */
static hak_chain_t slot_claim(hak_mail_slot_t *slot)
{
    hak_chain_t ch = {NULL, NULL, 0};
    void *head = __atomic_load_n(&slot->head, __ATOMIC_RELAXED);
    if (!head || head == HAK_MAIL_BUSY)
        return ch;
    __atomic_store_n(&mail_mine, slot, __ATOMIC_RELAXED); /* cleared by the caller */
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (!__atomic_compare_exchange_n(&slot->head, &head, HAK_MAIL_BUSY, 0, __ATOMIC_ACQUIRE,
                                     __ATOMIC_RELAXED))
        return ch;
    ch.head = head;
    ch.tail = __atomic_load_n(&slot->tail, __ATOMIC_RELAXED); /* after the acquire: whole */
    ch.count = __atomic_load_n(&slot->count, __ATOMIC_RELAXED);
    return ch;
}

uint32_t hak_central_collect(unsigned arena, unsigned class_idx, uint32_t want, hak_chain_t *out)
{
    hak_mail_slot_t *slot = hak_central[arena][class_idx].mail;
    uint32_t got = 0;
    for (unsigned i = 0; i < HAK_MAIL_SLOTS && got < want; i++, slot++) {
        hak_chain_t ch = slot_claim(slot);
        if (!ch.count)
            continue;
        void *rest = NULL;
        if (ch.count > want - got) { /* the rest stays in the slot */
            hak_chain_t part = hak_chain_cut(&ch.head, want - got);
            rest = ch.head;
            __atomic_store_n(&slot->count, ch.count - part.count, __ATOMIC_RELAXED);
            ch = part;
        }
        __atomic_store_n(&slot->head, rest, __ATOMIC_RELEASE);
        hak_chain_append(out, ch);
        got += ch.count;
    }
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    __atomic_store_n(&mail_mine, NULL, __ATOMIC_RELAXED);
    return got;
}

void hak_central_collect_idle(unsigned arena, unsigned class_idx, int all, hak_chain_t *out)
{
    hak_mail_slot_t *slot = hak_central[arena][class_idx].mail;
    for (unsigned i = 0; i < HAK_MAIL_SLOTS; i++, slot++) {
        void *head = __atomic_load_n(&slot->head, __ATOMIC_RELAXED);
        int idle = head && head != HAK_MAIL_BUSY && (all || head == slot->mark);
        slot->mark = idle ? NULL : head;
        if (!idle)
            continue;
        hak_chain_t ch = slot_claim(slot);
        if (ch.count)
            __atomic_store_n(&slot->head, NULL, __ATOMIC_RELEASE);
        hak_chain_append(out, ch);
    }
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    __atomic_store_n(&mail_mine, NULL, __ATOMIC_RELAXED);
}

uint32_t hak_central_mail_count(unsigned arena, unsigned class_idx)
{
    const hak_mail_slot_t *slot = hak_central[arena][class_idx].mail;
    uint32_t n = 0;
    for (unsigned i = 0; i < HAK_MAIL_SLOTS; i++, slot++) {
        void *head = __atomic_load_n(&slot->head, __ATOMIC_RELAXED);
        if (head && head != HAK_MAIL_BUSY)
            n += __atomic_load_n(&slot->count, __ATOMIC_RELAXED);
    }
    return n;
}

void hak_central_fork_child(void)
{
    for (unsigned a = 0; a < hak_arenas; a++)
        for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
            for (unsigned i = 0; i < HAK_MAIL_SLOTS; i++)
                if (hak_central[a][c].mail[i].head == HAK_MAIL_BUSY &&
                    &hak_central[a][c].mail[i] != mail_mine) /* mine: the interrupted code
                                                               * finishes it on return */
                    hak_central[a][c].mail[i].head = NULL;
}

void hak_central_give(unsigned class_idx, hak_chain_t ch, uint64_t now_ms, unsigned home)
{
    void *blocks[HAK_CENTRAL_BATCH];
    void *b = ch.head;
    uint32_t left = ch.count;
    while (left) {
        uint32_t n = left < HAK_CENTRAL_BATCH ? left : HAK_CENTRAL_BATCH;
        left -= n;
        /* The links, outside the locks: read before any block goes back, after which another
         * thread may take it. */
        for (uint32_t k = 0; k + 1 < n; k++) {
            blocks[k] = b;
            b = hak_block_next(b);
        }
        blocks[n - 1] = b;
        if (left) /* never past the tail: its word 0 is not the chain's */
            b = hak_block_next(b);
        while (n) { /* one arena per pass; the others move to the front for the next */
            unsigned arena = hak_central_arena_of(blocks[0], class_idx);
            hak_central_t *cc = &hak_central[arena][class_idx];
            uint32_t rest = 0;
            if (home != HAK_ARENA_ALL && arena != home && HAK_LIKELY(!hak_config.debug)) {
                /* A remote free: this arena's blocks to its mailbox as one chain, the others
                 * left behind them in the array for the next pass; one look at each block's
                 * span. (In place: a second array would put 512 more bytes of every thread's
                 * stack in use, ARCHITECTURE.md "Stack depth".) */
                uint32_t mine = 0; /* this arena's blocks to the front, in place */
                for (uint32_t k = 0; k < n; k++) {
                    if (hak_central_arena_of(blocks[k], class_idx) == arena) {
                        void *x = blocks[mine];
                        blocks[mine++] = blocks[k];
                        blocks[k] = x;
                    }
                }
                hak_chain_t out = {NULL, NULL, 0};
                hak_chain_append_array(&out, blocks, mine); /* mine >= 1: blocks[0]'s arena */
                if (hak_central_post(arena, class_idx, out)) {
                    n -= mine;
                    memmove(blocks, blocks + mine, n * sizeof blocks[0]);
                    continue;
                }
                /* every slot taken: under the lock, as below */
            }
            hak_lock(&cc->lock);
            if (HAK_LIKELY(!hak_config.debug)) {
                rest = put_arena(cc, arena, class_idx, blocks, n, now_ms, 0);
            } else {
                rest = put_arena(cc, arena, class_idx, blocks, n, now_ms, 1);
                hak_central_check(arena, class_idx);
            }
            hak_unlock(&cc->lock);
            n = rest;
        }
    }
}

static void check_span(unsigned class_idx, const hak_span_t *s)
{
    uint32_t nfree = 0, full = s->capacity / 64, rest = s->capacity % 64;
    for (uint32_t w = 0; w < HAK_SPAN_MAP_WORDS; w++) {
        uint64_t valid = w < full ? ~0ull : w == full && rest ? (1ull << rest) - 1 : 0;
        if ((s->freemap[w] & ~valid) || (w < s->first && s->freemap[w]))
            hak_fatal("invariant broken: span %p of class %u: free bit set in word %u, below "
                      "its first word (%u) or past its capacity (%u)",
                      (const void *)s, class_idx, w, s->first, s->capacity);
        nfree += (uint32_t)__builtin_popcountll(s->freemap[w]);
    }
    if (s->state != HAK_SPAN_ACTIVE || s->class_idx != class_idx)
        hak_fatal("invariant broken: span %p on the partial list of class %u is not an active "
                  "span of that class",
                  (const void *)s, class_idx);
    if ((uint64_t)s->in_use + nfree != s->capacity || s->in_use >= s->capacity)
        hak_fatal("invariant broken: span %p of class %u: capacity (%u) != in_use (%u) + free "
                  "bits (%u), or the span is full on the partial list",
                  (const void *)s, class_idx, s->capacity, s->in_use, nfree);
}

void hak_central_check(unsigned arena, unsigned class_idx)
{
    hak_central_t *cc = &hak_central[arena][class_idx];
    uint64_t sum = 0;
    for (uint32_t i = 0; i < cc->depot_batches; i++) {
        const hak_chain_t *bt = &cc->depot[i];
        uint32_t n = 0;
        for (const void *b = bt->head; n < bt->count && b; b = hak_block_next(b))
            n++;
        if (n != bt->count)
            hak_fatal("invariant broken: depot batch %u of class %u: count %u != its length %u",
                      i, class_idx, bt->count, n);
        sum += bt->count;
    }
    if (sum != cc->depot_count || cc->depot_count > hak_idle_bounds[class_idx].depot_max)
        hak_fatal("invariant broken: class %u: depot_count (%u) != the sum of its %u batches "
                  "(%llu), or above depot_max (%u)",
                  class_idx, cc->depot_count, cc->depot_batches, (unsigned long long)sum,
                  hak_idle_bounds[class_idx].depot_max);
    /* The spans a refill works on first: walking every span at every slow path would make
     * debug mode quadratic in the heap. */
    unsigned n = 0;
    for (const hak_span_t *s = cc->partial; s && n < 4; s = s->next, n++)
        check_span(class_idx, s);
    if ((cc->partial == NULL) != (cc->partial_tail == NULL) ||
        (cc->partial_tail && cc->partial_tail->next))
        hak_fatal("invariant broken: class %u: partial_tail is not the partial list's last span",
                  class_idx);
}

void hak_central_flush_spare(unsigned arena, unsigned class_idx, uint64_t now_ms,
                               uint64_t idle_ms)
{
    hak_central_t *cc = &hak_central[arena][class_idx];
    if (cc->spare && now_ms - cc->spare_since_ms >= idle_ms) {
        hak_span_put(cc->spare, now_ms);
        cc->spare = NULL;
        cc->spans--;
    }
}

hak_chain_t hak_central_detach_depot(unsigned arena, unsigned class_idx, uint32_t n)
{
    hak_central_t *cc = &hak_central[arena][class_idx];
    hak_chain_t out = {NULL, NULL, 0};
    uint32_t keep_from = 0;
    while (keep_from < cc->depot_batches && out.count < n) /* oldest at the bottom */
        hak_chain_append(&out, cc->depot[keep_from++]);
    for (uint32_t i = keep_from; i < cc->depot_batches; i++)
        cc->depot[i - keep_from] = cc->depot[i];
    cc->depot_batches -= keep_from;
    cc->depot_count -= out.count;
    if (cc->depot_low > cc->depot_count)
        cc->depot_low = cc->depot_count;
    return out;
}
