/* box2_refill/central.c - depot and span free lists per class (central.h). */
#include "central.h"

#include <string.h>

#include "debug.h"
#include "lock.h"
#include "shared_contracts/config.h"
#include "shared_contracts/diag.h"
#include "shared_contracts/pagemap.h"
#include "shared_contracts/backend.h"

hak_central_t hak_central[HAK_NUM_CLASSES] = {
#define HAK_CENTRAL_INIT(size, span_kib, refill) {.lock = HAK_LOCK_INITIALIZER},
    HAK_CLASS_LIST(HAK_CENTRAL_INIT)
#undef HAK_CENTRAL_INIT
};

void hak_central_configure(void)
{
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        /* 4 MiB of blocks, or two fixed refills, whichever is more. Not a multiple of the
         * fixed count: with ACE, batches are as large as the learned counts, and the stack's
         * HAK_DEPOT_BATCHES slots already bound how many there are. */
        uint32_t refill = hak_fixed_refill_count(c);
        uint32_t by_bytes = (4u * 1024u * 1024u) / hak_class_size(c);
        hak_central[c].depot_max = 2 * refill > by_bytes ? 2 * refill : by_bytes;
    }
}

static unsigned span_kind_of(unsigned class_idx)
{
    return (unsigned)__builtin_ctz(hak_span_bytes(class_idx)) - 16u;
}

static void partial_push(hak_central_t *cc, hak_span_t *s)
{
    s->prev = NULL;
    s->next = cc->partial;
    if (s->next)
        s->next->prev = s;
    cc->partial = s;
}

static void partial_remove(hak_central_t *cc, hak_span_t *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        cc->partial = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->next = s->prev = NULL;
}

static int span_full(const hak_span_t *s) { return !s->free && s->carved == s->capacity; }

/* The span of a block of class_idx on the central lists; aborts if the page map disagrees. */
static hak_span_t *span_of(void *block, unsigned class_idx)
{
    uint64_t entry = hak_pagemap_get((uintptr_t)block);
    if (hak_pm_class(entry) != class_idx)
        hak_fatal("corrupted free list: block %p of class %u is not in a span of that class",
                  block, class_idx);
    return hak_pm_owner(entry);
}

static void append_keyed(hak_chain_t *ch, void *block)
{
    ((uint64_t *)block)[1] = hak_free_key;
    hak_chain_append_block(ch, block);
}

uint32_t hak_central_take(unsigned class_idx, uint32_t want, hak_chain_t *out)
{
    hak_central_t *cc = &hak_central[class_idx];
    uint32_t size = hak_class_size(class_idx);
    hak_chain_t ch = {NULL, NULL, 0};

    /* 1. The depot: whole batches, already linked and keyed, while they fit; then the rest of
     * the request cut off the next batch. Depot blocks always go before span blocks: batches
     * given back at one size and refilled at another (ACE counts, a consumer's cap) must not
     * pile up in the depot while the spans are carved. */
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
    if (HAK_UNLIKELY(hak_config.debug) && ch.count) {
        uint64_t *b = ch.head;
        for (uint32_t i = 0; i < ch.count; i++, b = hak_block_next(b))
            hak_debug_take(span_of(b, class_idx), b, 1);
    }

    /* 2. Spans with room: their free lists, then carving. 3. New spans. */
    while (ch.count < want) {
        hak_span_t *s = cc->partial;
        if (!s && cc->spare) {
            s = cc->spare;
            cc->spare = NULL;
            partial_push(cc, s);
        } else if (!s) {
            s = hak_span_get(span_kind_of(class_idx), class_idx);
            if (!s)
                break;
            cc->spans++;
            partial_push(cc, s);
        }
        if (HAK_LIKELY(!hak_config.debug) && ch.count < want && s->free) {
            /* The span's free list, linked and keyed: whole in O(1) if the refill wants that
             * many (its length is carved - in_use, its tail is kept), else its first blocks. */
            uint32_t nfree = s->carved - s->in_use;
            hak_chain_t part;
            if (nfree <= want - ch.count) {
                part = (hak_chain_t){s->free, s->free_tail, nfree};
                s->free = NULL;
            } else {
                part = hak_chain_cut(&s->free, want - ch.count);
            }
            s->in_use += part.count;
            hak_chain_append(&ch, part);
        }
        while (ch.count < want && s->free) { /* debug mode: block by block, checked */
            uint64_t *b = s->free;
            if (HAK_UNLIKELY(hak_config.debug))
                hak_debug_take(s, b, 1);
            s->free = hak_block_next(b);
            append_keyed(&ch, b);
            s->in_use++;
        }
        while (ch.count < want && s->carved < s->capacity) {
            void *b = (char *)hak_span_base(s) + (size_t)s->carved * size;
            s->carved++;
            if (HAK_UNLIKELY(hak_config.debug))
                hak_debug_take(s, b, 0);
            append_keyed(&ch, b);
            s->in_use++;
        }
        if (span_full(s))
            partial_remove(cc, s);
    }
    if (ch.count)
        hak_block_link(ch.tail, NULL);
    *out = ch;
    return ch.count;
}

/* One block back to its span. */
static void span_return(hak_central_t *cc, unsigned class_idx, void *block, uint64_t now_ms)
{
    hak_span_t *s = span_of(block, class_idx);
    int was_full = span_full(s);
    if (!s->free)
        s->free_tail = block;
    hak_block_link(block, s->free);
    s->free = block;
    if (--s->in_use == 0) {
        if (!was_full)
            partial_remove(cc, s);
        if (!cc->spare) { /* keep it, as if never carved */
            s->free = NULL;
            s->carved = 0;
            cc->spare = s;
            cc->spare_since_ms = now_ms;
        } else {
            cc->spans--;
            hak_span_put(s, now_ms);
        }
    } else if (was_full) {
        partial_push(cc, s);
    }
}

static void return_chain(hak_central_t *cc, unsigned class_idx, hak_chain_t ch, uint64_t now_ms)
{
    uint64_t *b = ch.head;
    for (uint32_t i = 0; i < ch.count; i++) {
        uint64_t *next = hak_block_next(b);
        span_return(cc, class_idx, b, now_ms);
        b = next;
    }
}

void hak_central_put(unsigned class_idx, hak_chain_t ch, uint64_t now_ms, int depot)
{
    hak_central_t *cc = &hak_central[class_idx];
    if (HAK_UNLIKELY(hak_config.debug)) {
        uint64_t *b = ch.head;
        for (uint32_t i = 0; i < ch.count; i++, b = hak_block_next(b))
            hak_debug_put(span_of(b, class_idx), b);
    }
    if (depot && cc->depot_batches < HAK_DEPOT_BATCHES &&
        cc->depot_count + ch.count <= cc->depot_max) {
        cc->depot[cc->depot_batches++] = ch;
        cc->depot_count += ch.count;
        return;
    }
    return_chain(cc, class_idx, ch, now_ms); /* the depot is full: back to the spans */
}

static void check_span(unsigned class_idx, const hak_span_t *s)
{
    uint32_t nfree = 0;
    const uint64_t *last = NULL;
    for (const uint64_t *b = s->free; b && nfree <= s->capacity; b = hak_block_next(b))
        nfree++, last = b;
    if (last && last != s->free_tail)
        hak_fatal("invariant broken: span %p of class %u: free_tail (%p) is not the last block "
                  "of its free list (%p)",
                  (const void *)s, class_idx, s->free_tail, (const void *)last);
    if (s->state != HAK_SPAN_ACTIVE || s->class_idx != class_idx)
        hak_fatal("invariant broken: span %p on the partial list of class %u is not an active "
                  "span of that class",
                  (const void *)s, class_idx);
    if ((uint64_t)s->in_use + nfree + (s->capacity - s->carved) != s->capacity ||
        s->carved > s->capacity)
        hak_fatal("invariant broken: span %p of class %u: capacity (%u) != in_use (%u) + "
                  "free list (%u) + uncarved (%u)",
                  (const void *)s, class_idx, s->capacity, s->in_use, nfree,
                  s->capacity - s->carved);
}

void hak_central_check(unsigned class_idx)
{
    hak_central_t *cc = &hak_central[class_idx];
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
    if (sum != cc->depot_count)
        hak_fatal("invariant broken: class %u: depot_count (%u) != the sum of its %u batches "
                  "(%llu)",
                  class_idx, cc->depot_count, cc->depot_batches, (unsigned long long)sum);
    /* The spans a refill works on first: walking every span's free list at every slow path
     * would make debug mode quadratic in the heap. */
    unsigned n = 0;
    for (const hak_span_t *s = cc->partial; s && n < 4; s = s->next, n++)
        check_span(class_idx, s);
}

void hak_central_release_depot(unsigned class_idx, uint32_t n, uint64_t now_ms)
{
    hak_central_t *cc = &hak_central[class_idx];
    /* Oldest batches first: they sit at the bottom of the stack. */
    uint32_t released = 0, keep_from = 0;
    while (keep_from < cc->depot_batches && released < n) {
        hak_chain_t *bt = &cc->depot[keep_from++];
        return_chain(cc, class_idx, *bt, now_ms);
        released += bt->count;
    }
    if (!keep_from)
        return;
    memmove(&cc->depot[0], &cc->depot[keep_from],
            (cc->depot_batches - keep_from) * sizeof(hak_chain_t));
    cc->depot_batches -= keep_from;
    cc->depot_count -= released;
    if (cc->depot_low > cc->depot_count)
        cc->depot_low = cc->depot_count;
}

void hak_central_release_spare(unsigned class_idx, uint64_t now_ms, uint64_t idle_ms)
{
    hak_central_t *cc = &hak_central[class_idx];
    if (cc->spare && now_ms - cc->spare_since_ms >= idle_ms) {
        hak_span_put(cc->spare, now_ms);
        cc->spare = NULL;
        cc->spans--;
    }
}
