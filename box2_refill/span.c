/* box2_refill/span.c - span descriptors, chunks, and the pool of empty spans (span.h). */
#include "span.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "large_cache.h"
#include "lock.h"
#include "shared_contracts/config.h"
#include "os.h"
#include "pagemap_write.h"
#include "shared_contracts/pagemap.h"
#include "shared_contracts/size_classes.h"

#define CHUNK_SPANS 16u          /* spans per chunk: 1 MiB of 64 KiB spans .. 8 MiB of 512 KiB */
#define META_BLOCK (64u * 1024u) /* descriptors are bump-allocated from blocks this big */

/* Slot 0 of each metadata block links the blocks, newest first, so every descriptor ever
 * made can be walked (hak_span_class_totals). */
typedef struct meta_link {
    char *prev;
} __attribute__((aligned(64))) meta_link_t;
_Static_assert(sizeof(meta_link_t) <= sizeof(hak_span_t), "the link fits a descriptor slot");

/* Everything below is guarded by pool_lock. */
static pthread_mutex_t pool_lock = HAK_LOCK_INITIALIZER;
static hak_span_t *pooled[HAK_SPAN_KINDS];  /* resident empty spans, newest first */
static hak_span_t *pooled_tail[HAK_SPAN_KINDS];
static hak_span_t *purged[HAK_SPAN_KINDS];  /* purged empty spans (a stack) */
static uintptr_t chunk_next[HAK_SPAN_KINDS], chunk_end[HAK_SPAN_KINDS];
static char *meta_next, *meta_end;
static char *meta_newest; /* the block meta_next points into; its slot 0 links the older */
static size_t mapped_max;  /* the largest totals.mapped has been */
static hak_span_t *unused_desc; /* descriptors with no span (their pages were unmapped), for reuse */
static hak_span_totals_t totals;
/* HAKMEM_DEBUG=1: the descriptors' bitmaps of blocks handed out (hak_span_t.debug_bits, read
 * and written by debug.c), bump-allocated from blocks this big and never freed, like the
 * descriptors. */
#define DEBUG_BITS_BYTES (HAK_SPAN_MAP_WORDS * 8u) /* one bit per block of the fullest span */
#define DEBUG_BITS_BLOCK (1u << 20)
static char *debug_next, *debug_end;

static hak_span_t *new_descriptor(void)
{
    if (unused_desc) {
        hak_span_t *s = unused_desc;
        unused_desc = s->next;
        return s;
    }
    if (!meta_next || (size_t)(meta_end - meta_next) < sizeof(hak_span_t)) { /* first, or full */
        char *block = hak_os.map(META_BLOCK);
        if (!block)
            return NULL;
        ((meta_link_t *)block)->prev = meta_newest;
        meta_newest = block;
        meta_next = block + sizeof(hak_span_t);
        meta_end = block + META_BLOCK;
    }
    hak_span_t *s = (hak_span_t *)meta_next;
    meta_next += sizeof(hak_span_t);
    return s;
}

static void pool_unlink(hak_span_t *s)
{
    unsigned k = s->kind;
    if (s->prev)
        s->prev->next = s->next;
    else
        pooled[k] = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        pooled_tail[k] = s->prev;
}

/* The oldest POOLED span of kind k, purged: PURGED, on its kind's purged list. Returns its
 * length. Pool lock held; pooled_tail[k] not NULL. */
static size_t purge_oldest(unsigned k)
{
    hak_span_t *s = pooled_tail[k];
    size_t len = hak_span_len(k);
    pool_unlink(s);
    hak_os.purge((void *)hak_span_base(s), len);
    s->state = HAK_SPAN_PURGED;
    s->next = purged[k];
    purged[k] = s;
    totals.pooled -= len;
    totals.purged += len;
    return len;
}

/* Unmap every empty span, pooled or purged, keeping the descriptors: gives address space
 * back (RLIMIT_AS, vm.max_map_count) when a mapping has failed. Pool lock held. */
static size_t unmap_purged_locked(void)
{
    size_t unmapped = 0;
    for (unsigned k = 0; k < HAK_SPAN_KINDS; k++) {
        hak_span_t *s;
        while ((s = pooled[k]) != NULL) { /* resident ones become purged first */
            pool_unlink(s);
            s->next = purged[k];
            purged[k] = s;
            totals.pooled -= hak_span_len(k);
            totals.purged += hak_span_len(k);
        }
        while ((s = purged[k]) != NULL) {
            size_t len = hak_span_len(k);
            purged[k] = s->next;
            hak_os.unmap((void *)hak_span_base(s), len);
            s->base_page = 0;
            s->state = 0;
            s->next = unused_desc;
            unused_desc = s;
            totals.purged -= len;
            totals.mapped -= len;
            unmapped += len;
        }
    }
    return unmapped;
}

size_t hak_span_unmap_purged(void)
{
    hak_lock(&pool_lock);
    size_t unmapped = unmap_purged_locked();
    hak_unlock(&pool_lock);
    return unmapped;
}

/* A chunk of `chunk` bytes aligned to len, cut from a resident range of the large cache: the
 * pages a program's freed large blocks left serve its small blocks before anything is mapped
 * (the cache would otherwise keep them beside the new chunk until its budget decays). Sets
 * *chunk to the whole spans taken (the range's tail past them goes back to the cache); NULL
 * if no resident range is big enough. Pool lock held (the cache's lock nests inside it). */
static void *chunk_from_large_cache(size_t *chunk, size_t len)
{
    hak_large_got_t got;
    if (!hak_large_cache_take_resident(*chunk, len, &got))
        return NULL;
    size_t spans = got.len / len * len;
    if (spans < got.len && !hak_large_cache_put(got.base + spans, got.len - spans, hak_now_ms()))
        hak_os.unmap((void *)(got.base + spans), got.len - spans);
    *chunk = spans;
    return (void *)got.base;
}

/* Carve a new span of `kind` from the current chunk, taking a chunk from the large cache or
 * mapping one when needed. Under tight address-space limits a chunk may not fit: then unmap
 * purged spans, and map just the one span. */
static uintptr_t new_span_memory(unsigned kind)
{
    size_t len = hak_span_len(kind);
    if (chunk_next[kind] == chunk_end[kind]) {
        size_t chunk = len * CHUNK_SPANS;
        void *p = chunk_from_large_cache(&chunk, len);
        if (!p)
            p = hak_os_map_aligned(chunk, len);
        if (!p && unmap_purged_locked())
            p = hak_os_map_aligned(chunk, len);
        if (!p) {
            chunk = len;
            p = hak_os_map_aligned(chunk, len);
        }
        if (!p)
            return 0;
        if (hak_pagemap_reserve((uintptr_t)p, chunk) != 0) {
            hak_os.unmap(p, chunk);
            return 0;
        }
        chunk_next[kind] = (uintptr_t)p;
        chunk_end[kind] = (uintptr_t)p + chunk;
        totals.mapped += chunk;
        if (totals.mapped > mapped_max)
            mapped_max = totals.mapped;
    }
    uintptr_t base = chunk_next[kind];
    chunk_next[kind] += len;
    return base;
}


void hak_span_reset_free(hak_span_t *s)
{
    uint32_t full = s->capacity / 64, rest = s->capacity % 64;
    for (uint32_t w = 0; w < full; w++)
        s->freemap[w] = ~0ull;
    if (rest)
        s->freemap[full++] = (1ull << rest) - 1;
    for (uint32_t w = full; w < HAK_SPAN_MAP_WORDS; w++)
        s->freemap[w] = 0;
    s->first = 0;
    s->in_use = 0;
}

/* HAKMEM_DEBUG=1: give span s a cleared bitmap (once per descriptor; reused). -1 when out of
 * memory. Pool lock held. */
static int debug_bits_init(hak_span_t *s)
{
    if (!s->debug_bits) {
        if (debug_next == debug_end) {
            char *block = hak_os.map(DEBUG_BITS_BLOCK);
            if (!block)
                return -1;
            debug_next = block;
            debug_end = block + DEBUG_BITS_BLOCK;
        }
        s->debug_bits = (uint64_t *)debug_next;
        debug_next += DEBUG_BITS_BYTES;
    }
    memset(s->debug_bits, 0, DEBUG_BITS_BYTES);
    return 0;
}

/* The pool has no empty span of `kind`: cut an empty span of a larger kind into spans of
 * this one (it is aligned to its length, so each piece is aligned to its own), a resident one
 * if any, else a purged one; the pieces join the pool of `kind` in the state, and with the
 * empty time, of the span they came from. So memory one class gave back (a program that
 * freed a list of 7 KiB nodes, 128 KiB spans) serves the next class that needs spans (2.5 KiB
 * values, 64 KiB spans) instead of staying resident beside new mappings until the decay
 * purges it. Pieces are never joined again: a larger kind maps anew. Returns 0 when there is
 * nothing to cut or no descriptor for the pieces (then nothing changed). Pool lock held. */
static int split_larger(unsigned kind)
{
    for (int resident = 1; resident >= 0; resident--) {
        for (unsigned j = kind + 1; j < HAK_SPAN_KINDS; j++) {
            hak_span_t *big = resident ? pooled[j] : purged[j];
            if (!big)
                continue;
            unsigned n = 1u << (j - kind);
            hak_span_t *piece[1u << (HAK_SPAN_KINDS - 1)];
            piece[0] = big;
            for (unsigned i = 1; i < n; i++) {
                if (!(piece[i] = new_descriptor())) {
                    while (--i) { /* keep them for later spans */
                        piece[i]->next = unused_desc;
                        unused_desc = piece[i];
                    }
                    return 0;
                }
            }
            if (resident)
                pool_unlink(big);
            else
                purged[j] = big->next;
            uintptr_t base = hak_span_base(big);
            for (unsigned i = 0; i < n; i++) {
                hak_span_t *p = piece[i];
                p->base_page = (base + (uintptr_t)i * hak_span_len(kind)) >> 16;
                p->kind = (uint8_t)kind;
                p->state = big->state;
                p->empty_since_ms = big->empty_since_ms;
                if (resident) { /* pooled[kind] is empty: the pieces are its whole list */
                    p->prev = i ? piece[i - 1] : NULL;
                    p->next = i + 1 < n ? piece[i + 1] : NULL;
                } else {
                    p->next = purged[kind];
                    purged[kind] = p;
                }
            }
            if (resident) {
                pooled[kind] = piece[0];
                pooled_tail[kind] = piece[n - 1];
            }
            totals.splits++;
            return 1;
        }
    }
    return 0;
}

hak_span_t *hak_span_get(unsigned kind, unsigned class_idx)
{
    size_t len = hak_span_len(kind);
    hak_lock(&pool_lock);
    if (!pooled[kind] && !purged[kind])
        split_larger(kind);
    hak_span_t *s = pooled[kind];
    if (s) {
        pool_unlink(s);
        totals.pooled -= len;
    } else if ((s = purged[kind]) != NULL) {
        purged[kind] = s->next;
        totals.purged -= len;
    } else {
        /* New memory, while empty spans of smaller kinds (which cannot be joined into this
         * one) may sit resident: purge as many of their bytes, oldest first, so that the
         * pages the program gave back pay for the ones it now touches and RSS stays level,
         * as if they had been reused. They stay in the pool, PURGED, for their kinds. */
        size_t want = len;
        for (unsigned k = 0; k < kind && want; k++)
            while (want && pooled_tail[k]) {
                size_t got = purge_oldest(k);
                want = got < want ? want - got : 0;
            }
        hak_span_t *d = new_descriptor();
        uintptr_t base = d ? new_span_memory(kind) : 0;
        if (!base) {
            if (d) { /* keep the unused descriptor for the next span */
                d->next = unused_desc;
                unused_desc = d;
            }
            hak_unlock(&pool_lock);
            errno = ENOMEM;
            return NULL;
        }
        s = d;
        s->base_page = base >> 16;
        s->kind = (uint8_t)kind;
    }
    s->state = HAK_SPAN_ACTIVE;
    s->class_idx = (uint16_t)class_idx;
    s->capacity = (uint32_t)(len / hak_class_size(class_idx));
    hak_span_reset_free(s);
    s->carved = 0; /* its pages may have been purged: no block there was handed out */
    s->next = s->prev = NULL;
    if (hak_config.debug && debug_bits_init(s) != 0) {
        s->state = HAK_SPAN_PURGED; /* back to the pool, untouched */
        s->empty_since_ms = 0;
        s->next = purged[kind];
        purged[kind] = s;
        totals.purged += len;
        hak_unlock(&pool_lock);
        errno = ENOMEM;
        return NULL;
    }
    totals.active += len;
    /* Cannot fail: the chunk's page map tables were reserved when it was mapped. */
    hak_pagemap_set_range(hak_span_base(s), len, hak_pm_entry(class_idx + 1u, s));
    hak_unlock(&pool_lock);
    return s;
}

void hak_span_put(hak_span_t *s, uint64_t now_ms)
{
    size_t len = hak_span_len(s->kind);
    hak_pagemap_set_range(hak_span_base(s), len, 0);
    hak_lock(&pool_lock);
    s->state = HAK_SPAN_POOLED;
    s->empty_since_ms = now_ms;
    s->prev = NULL;
    s->next = pooled[s->kind];
    if (s->next)
        s->next->prev = s;
    else
        pooled_tail[s->kind] = s;
    pooled[s->kind] = s;
    totals.active -= len;
    totals.pooled += len;
    hak_unlock(&pool_lock);
}

size_t hak_span_decay(uint64_t now_ms, uint64_t decay_ms, int force)
{
    size_t bytes = 0;
    hak_lock(&pool_lock);
    for (unsigned k = 0; k < HAK_SPAN_KINDS; k++)
        while (pooled_tail[k] && (force || now_ms - pooled_tail[k]->empty_since_ms >= decay_ms))
            bytes += purge_oldest(k);
    hak_unlock(&pool_lock);
    return bytes;
}

void hak_span_totals(hak_span_totals_t *out)
{
    hak_lock(&pool_lock);
    *out = totals;
    hak_unlock(&pool_lock);
}

size_t hak_span_mapped_max(void)
{
    hak_lock(&pool_lock);
    size_t m = mapped_max;
    hak_unlock(&pool_lock);
    return m;
}

void hak_span_class_totals(hak_span_class_t out[])
{
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
        out[c] = (hak_span_class_t){0, 0, 0, 0};
    hak_lock(&pool_lock);
    for (char *block = meta_newest; block; block = ((meta_link_t *)block)->prev) {
        char *end = block == meta_newest ? meta_next : block + META_BLOCK;
        for (char *d = block + sizeof(hak_span_t); d + sizeof(hak_span_t) <= end;
             d += sizeof(hak_span_t)) {
            const hak_span_t *sp = (const hak_span_t *)d;
            /* state and class change under the pool lock; in_use under the class lock, so
             * it is a snapshot */
            if (sp->state != HAK_SPAN_ACTIVE || sp->class_idx >= HAK_NUM_CLASSES)
                continue;
            hak_span_class_t *o = &out[sp->class_idx];
            o->spans++;
            o->bytes += hak_span_len(sp->kind);
            uint32_t out_now = __atomic_load_n(&sp->in_use, __ATOMIC_RELAXED);
            o->blocks_out += out_now;
            o->blocks_free += sp->capacity > out_now ? sp->capacity - out_now : 0;
        }
    }
    hak_unlock(&pool_lock);
}

void hak_span_fork_lock(void) { pthread_mutex_lock(&pool_lock); }
void hak_span_fork_unlock(void) { pthread_mutex_unlock(&pool_lock); }
void hak_span_fork_child(void) { hak_lock_reinit(&pool_lock); }
