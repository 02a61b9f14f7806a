/* box2_refill/central.c - depot and span free lists per class (central.h). */
#include "central.h"

#include "debug.h"
#include "shared_contracts/config.h"
#include "shared_contracts/diag.h"
#include "shared_contracts/pagemap.h"
#include "shared_contracts/tcache.h"

hak_central_t hak_central[HAK_NUM_CLASSES] = {
#define HAK_CENTRAL_INIT(size, span_kib, refill) {.lock = PTHREAD_MUTEX_INITIALIZER},
    HAK_CLASS_LIST(HAK_CENTRAL_INIT)
#undef HAK_CENTRAL_INIT
};

void hak_central_configure(void)
{
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        uint32_t refill = hak_fixed_refill_count(c);
        uint32_t by_bytes = (256u * 1024u) / hak_class_size(c);
        uint32_t max = 2 * refill > by_bytes ? 2 * refill : by_bytes;
        if (max > 16 * refill)
            max = 16 * refill;
        hak_central[c].depot_max = max;
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

/* The span of a block the central lists hold; aborts if the page map disagrees. */
static hak_span_t *span_of(void *block)
{
    uint64_t entry = hak_pagemap_get((uintptr_t)block);
    if ((entry & HAK_PM_TAG_MASK) == 0 || (entry & HAK_PM_TAG_MASK) > HAK_NUM_CLASSES)
        hak_fatal("corrupted free list: %p is not a small block", block);
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

    /* 1. The depot: blocks already linked and keyed. */
    if (cc->depot_count) {
        uint32_t n = cc->depot_count < want ? cc->depot_count : want;
        uint64_t *b = cc->depot;
        head = b;
        if (HAK_UNLIKELY(hak_config.debug))
            hak_debug_take(span_of(b), b, 1);
        for (uint32_t i = 1; i < n; i++) {
            b = (uint64_t *)b[0];
            if (HAK_UNLIKELY(hak_config.debug))
                hak_debug_take(span_of(b), b, 1);
        }
        tail = b;
        cc->depot = (void *)b[0];
        cc->depot_count -= n;
        if (cc->depot_count < cc->depot_low)
            cc->depot_low = cc->depot_count;
        got = n;
    }

    /* 2. Spans with room: their free lists, then carving. 3. New spans. */
    while (got < want) {
        hak_span_t *s = cc->partial;
        if (!s) {
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
    uint64_t entry = hak_pagemap_get((uintptr_t)block);
    if ((entry & HAK_PM_TAG_MASK) != class_idx + 1u)
        hak_fatal("corrupted free list: block %p of class %u is not in a span of that class",
                  block, class_idx);
    hak_span_t *s = (hak_span_t *)(uintptr_t)(entry & ~(uint64_t)HAK_PM_TAG_MASK);
    int was_full = span_full(s);
    ((uint64_t *)block)[0] = (uint64_t)s->free;
    s->free = block;
    if (--s->in_use == 0) {
        if (!was_full)
            partial_remove(cc, s);
        cc->spans--;
        hak_span_put(s, now_ms);
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
    hak_central_t *cc = &hak_central[class_idx];
    if (HAK_UNLIKELY(hak_config.debug)) {
        uint64_t *b = head;
        for (uint32_t i = 0; i < n; i++, b = (uint64_t *)b[0])
            hak_debug_put(span_of(b), b);
    }
    uint32_t room = cc->depot_max > cc->depot_count ? cc->depot_max - cc->depot_count : 0;
    if (room >= n) {
        ((uint64_t *)tail)[0] = (uint64_t)cc->depot;
        cc->depot = head;
        cc->depot_count += n;
        return;
    }
    /* Fill the depot with the first `room` blocks, the rest go to their spans. */
    uint64_t *b = head;
    for (uint32_t i = 0; i < room; i++) {
        uint64_t *next = (uint64_t *)b[0];
        b[0] = (uint64_t)cc->depot;
        cc->depot = b;
        b = next;
    }
    cc->depot_count += room;
    return_chain(cc, class_idx, b, n - room, now_ms);
}

void hak_central_release_depot(unsigned class_idx, uint32_t n, uint64_t now_ms)
{
    hak_central_t *cc = &hak_central[class_idx];
    if (n > cc->depot_count)
        n = cc->depot_count;
    if (!n)
        return;
    uint64_t *head = cc->depot;
    uint64_t *b = head;
    for (uint32_t i = 1; i < n; i++)
        b = (uint64_t *)b[0];
    cc->depot = (void *)b[0];
    cc->depot_count -= n;
    if (cc->depot_low > cc->depot_count)
        cc->depot_low = cc->depot_count;
    return_chain(cc, class_idx, head, n, now_ms);
}
