/* box2_refill/central.c - depot and span free lists per class (central.h). */
#include "central.h"

#include <string.h>

#include "debug.h"
#include "lock.h"
#include "shared_contracts/config.h"
#include "shared_contracts/diag.h"
#include "shared_contracts/pagemap.h"
#include "shared_contracts/tcache.h"

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
    if ((entry & HAK_PM_TAG_MASK) != class_idx + 1u)
        hak_fatal("corrupted free list: block %p of class %u is not in a span of that class",
                  block, class_idx);
    return (hak_span_t *)(uintptr_t)(entry & ~(uint64_t)HAK_PM_TAG_MASK);
}

/* Append `block` to the chain being built. */
#define CHAIN_APPEND(head, tail, block)        \
    do {                                       \
        uint64_t *b_ = (uint64_t *)(block);    \
        b_[1] = hak_free_key;                  \
        if (tail)                              \
            ((uint64_t *)(tail))[0] = (uint64_t)b_; \
        else                                   \
            (head) = b_;                       \
        (tail) = b_;                           \
    } while (0)

uint32_t hak_central_take(unsigned class_idx, uint32_t want, void **head_out, void **tail_out)
{
    hak_central_t *cc = &hak_central[class_idx];
    uint32_t size = hak_class_size(class_idx);
    void *head = NULL, *tail = NULL;
    uint32_t got = 0;

    /* 1. The depot: whole batches, already linked and keyed, while they fit; then the rest of
     * the request cut (walked) off the next batch. Depot blocks always go before span blocks:
     * batches spilled at one size and refilled at another (ACE counts, a consumer's cap) must
     * not pile up in the depot while the spans are carved. */
    while (cc->depot_batches && got < want) {
        hak_batch_t *bt = &cc->depot[cc->depot_batches - 1];
        if (got + bt->count > want) {
            uint32_t part = want - got;
            uint64_t *cut = bt->head;
            for (uint32_t i = 1; i < part; i++)
                cut = (uint64_t *)cut[0];
            if (tail)
                ((uint64_t *)tail)[0] = (uint64_t)bt->head;
            else
                head = bt->head;
            tail = cut;
            bt->head = (void *)cut[0];
            bt->count -= part;
            cc->depot_count -= part;
            got = want;
            break;
        }
        if (tail)
            ((uint64_t *)tail)[0] = (uint64_t)bt->head;
        else
            head = bt->head;
        tail = bt->tail;
        got += bt->count;
        cc->depot_count -= bt->count;
        cc->depot_batches--;
    }
    if (cc->depot_count < cc->depot_low)
        cc->depot_low = cc->depot_count;
    if (HAK_UNLIKELY(hak_config.debug) && got) {
        uint64_t *b = head;
        for (uint32_t i = 0; i < got; i++, b = (uint64_t *)b[0])
            hak_debug_take(span_of(b, class_idx), b, 1);
    }

    /* 2. Spans with room: their free lists, then carving. 3. New spans. */
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
            cc->spans++;
            partial_push(cc, s);
        }
        while (got < want && s->free) {
            uint64_t *b = s->free;
            if (HAK_UNLIKELY(hak_config.debug))
                hak_debug_take(s, b, 1);
            s->free = (void *)b[0];
            CHAIN_APPEND(head, tail, b);
            s->in_use++;
            got++;
        }
        while (got < want && s->carved < s->capacity) {
            void *b = (char *)hak_span_base(s) + (size_t)s->carved * size;
            s->carved++;
            if (HAK_UNLIKELY(hak_config.debug))
                hak_debug_take(s, b, 0);
            CHAIN_APPEND(head, tail, b);
            s->in_use++;
            got++;
        }
        if (span_full(s))
            partial_remove(cc, s);
    }
    if (tail)
        ((uint64_t *)tail)[0] = 0;
    *head_out = head;
    *tail_out = tail;
    return got;
}

/* One block back to its span. */
static void span_return(hak_central_t *cc, unsigned class_idx, void *block, uint64_t now_ms)
{
    hak_span_t *s = span_of(block, class_idx);
    int was_full = span_full(s);
    ((uint64_t *)block)[0] = (uint64_t)s->free;
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

static void return_chain(hak_central_t *cc, unsigned class_idx, void *head, uint32_t n,
                         uint64_t now_ms)
{
    uint64_t *b = head;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t *next = (uint64_t *)b[0];
        span_return(cc, class_idx, b, now_ms);
        b = next;
    }
}

void hak_central_put(unsigned class_idx, void *head, void *tail, uint32_t n, uint64_t now_ms)
{
    hak_central_put_to(class_idx, head, tail, n, now_ms, 1);
}

void hak_central_put_to(unsigned class_idx, void *head, void *tail, uint32_t n, uint64_t now_ms,
                        int depot)
{
    hak_central_t *cc = &hak_central[class_idx];
    if (HAK_UNLIKELY(hak_config.debug)) {
        uint64_t *b = head;
        for (uint32_t i = 0; i < n; i++, b = (uint64_t *)b[0])
            hak_debug_put(span_of(b, class_idx), b);
    }
    if (depot && cc->depot_batches < HAK_DEPOT_BATCHES && cc->depot_count + n <= cc->depot_max) {
        hak_batch_t *bt = &cc->depot[cc->depot_batches++];
        bt->head = head;
        bt->tail = tail;
        bt->count = n;
        cc->depot_count += n;
        return;
    }
    return_chain(cc, class_idx, head, n, now_ms); /* the depot is full: back to the spans */
}

void hak_central_release_depot(unsigned class_idx, uint32_t n, uint64_t now_ms)
{
    hak_central_t *cc = &hak_central[class_idx];
    /* Oldest batches first: they sit at the bottom of the stack. */
    uint32_t released = 0, keep_from = 0;
    while (keep_from < cc->depot_batches && released < n) {
        hak_batch_t *bt = &cc->depot[keep_from++];
        return_chain(cc, class_idx, bt->head, bt->count, now_ms);
        released += bt->count;
    }
    if (!keep_from)
        return;
    memmove(&cc->depot[0], &cc->depot[keep_from],
            (cc->depot_batches - keep_from) * sizeof(hak_batch_t));
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
