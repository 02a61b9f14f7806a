/* box2_refill/large_local.c - the freed large ranges a thread keeps for itself
 * (large_local.h). */
#include "large_local.h"

#include "large_cache.h"
#include "lock.h"
#include "os.h"
#include "thread.h"
#include "shared_contracts/backend.h"
#include "shared_contracts/config.h"

/* The calling thread's ranges, claimed (busy), or NULL: none kept (off, debug mode, a thread
 * without a record of its own, or a signal handler that interrupted the owner). */
static hak_large_held_t *claim(void)
{
    if (!hak_config.large_thread_kib || hak_config.debug)
        return NULL;
    hak_thread_t *t = hak_thread_self();
    if (!t->live || t->held.busy)
        return NULL;
    /* Only the owner and its signal handlers touch them: plain stores, ordered against a
     * handler by signal fences (a locked instruction here would drain the store buffer). */
    t->held.busy = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    return &t->held;
}

static void unclaim(hak_large_held_t *h)
{
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    h->busy = 0;
}

/* The calling thread's byte cap: HAKMEM_LARGE_THREAD_KIB, or its share of that many KiB per
 * CPU when more threads live than there are CPUs (share.h's rule). */
static uint64_t cap_bytes(void)
{
    uint64_t cap = (uint64_t)hak_config.large_thread_kib << 10;
    uint64_t live = hak_thread_live_count(), cpus = hak_config.cpus < 1 ? 1 : hak_config.cpus;
    return live > cpus ? cap * cpus / live : cap;
}

static void remove_at(hak_large_held_t *h, uint32_t i)
{
    h->bytes -= h->len[i];
    for (h->n--; i < h->n; i++) {
        h->base[i] = h->base[i + 1];
        h->len[i] = h->len[i + 1];
    }
}

/* To the large cache, out of the live bytes; unmapped if the cache does not take it. */
static void give_to_cache(uintptr_t base, size_t len, uint64_t now_ms)
{
    hak_large_cache_held(len, -1);
    hak_large_cache_live_sub(len);
    if (!hak_large_cache_put(base, len, now_ms))
        hak_os.unmap((void *)base, len);
}

/* Large mallocs per round of the record of what a thread asks for (want[]). */
#define HAK_LARGE_ASK_ROUND 64u

size_t hak_large_local_take(size_t map_len, size_t map_align, uintptr_t *base)
{
    hak_large_held_t *h = claim();
    if (!h)
        return 0;
    if (map_len > h->want[0])
        h->want[0] = map_len;
    if (++h->asks == HAK_LARGE_ASK_ROUND) {
        h->asks = 0;
        h->want[1] = h->want[0];
        h->want[0] = 0;
    }
    uint32_t best = HAK_LARGE_HELD_MAX;
    for (uint32_t i = h->n; i-- > 0;) /* the tightest fit; on a tie the one freed last */
        if (h->len[i] >= map_len && h->len[i] / 2 <= map_len && !(h->base[i] & (map_align - 1)) &&
            (best == HAK_LARGE_HELD_MAX || h->len[i] < h->len[best]))
            best = i;
    size_t len = 0;
    if (best != HAK_LARGE_HELD_MAX) {
        *base = h->base[best];
        len = h->len[best];
        remove_at(h, best);
    }
    unclaim(h);
    if (len)
        hak_large_cache_held(len, -1);
    return len;
}

int hak_large_local_keep(uintptr_t base, size_t len, uint64_t now_ms)
{
    /* Only what the cache would keep: below 2 MiB, under mallopt's M_MMAP_THRESHOLD, and not
     * while the cache keeps nothing (HAKMEM_LARGE_CACHE_MIB or M_TRIM_THRESHOLD 0). */
    if (len >= HAK_LARGE_SPLIT_MIN || len > hak_large_cache_entry_max() ||
        !__atomic_load_n(&hak_config.large_cache_mib, __ATOMIC_RELAXED))
        return 0;
    uint64_t cap = cap_bytes();
    if (len > cap)
        return 0;
    hak_large_held_t *h = claim();
    if (!h)
        return 0;
    /* Only a range its own next mallocs could take: at most twice the longest it asked for
     * in its last HAK_LARGE_ASK_ROUND to 2 x HAK_LARGE_ASK_ROUND large mallocs (a buffer grown
     * by realloc and freed is longer than any malloc of its thread: the cache's). */
    uint64_t asked = h->want[0] > h->want[1] ? h->want[0] : h->want[1];
    if (len / 2 > asked) {
        unclaim(h);
        return 0;
    }
    /* Within half the cache's budget for all threads together (large_cache.h). */
    uint64_t room = h->bytes + hak_large_cache_held_room();
    if (room < cap)
        cap = room;
    if (len > cap) { /* no room: the cache takes it (and the thread keeps what it has) */
        unclaim(h);
        return 0;
    }
    /* Ranges that leave for the cache: all when the thread kept none for HAKMEM_DECAY_MS (they
     * sat idle that long), else the oldest until the new one fits. */
    uintptr_t out_base[HAK_LARGE_HELD_MAX];
    size_t out_len[HAK_LARGE_HELD_MAX];
    uint32_t out = 0;
    int stale = now_ms - h->used_ms >= (uint64_t)__atomic_load_n(&hak_config.decay_ms,
                                                                   __ATOMIC_RELAXED);
    while (h->n && (stale || h->n == HAK_LARGE_HELD_MAX || h->bytes + len > cap)) {
        out_base[out] = h->base[0];
        out_len[out++] = h->len[0];
        remove_at(h, 0);
    }
    h->base[h->n] = base;
    h->len[h->n++] = len;
    h->bytes += len;
    h->used_ms = now_ms;
    unclaim(h);
    hak_large_cache_held(len, 1);
    for (uint32_t i = 0; i < out; i++)
        give_to_cache(out_base[i], out_len[i], now_ms);
    return 1;
}

void hak_large_thread_flush(void)
{
    hak_large_held_t *h = claim();
    if (!h)
        return;
    uintptr_t out_base[HAK_LARGE_HELD_MAX];
    size_t out_len[HAK_LARGE_HELD_MAX];
    uint32_t out = h->n;
    for (uint32_t i = 0; i < out; i++) {
        out_base[i] = h->base[i];
        out_len[i] = h->len[i];
    }
    h->n = 0;
    h->bytes = 0;
    unclaim(h);
    uint64_t now = out ? hak_now_ms() : 0;
    for (uint32_t i = 0; i < out; i++)
        give_to_cache(out_base[i], out_len[i], now);
}
