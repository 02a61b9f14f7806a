/* box2_refill/large_cache.c - freed large mappings kept for reuse (large_cache.h). */
#include "large_cache.h"

#include <pthread.h>

#include "lock.h"
#include "os.h"
#include "shared_contracts/config.h"

#define SLOTS 128u

/* Larger mappings are not kept: none is larger unless mallopt(M_MMAP_THRESHOLD) set a bound
 * (relaxed). */
static size_t entry_max = SIZE_MAX;

typedef struct {
    uintptr_t base;
    size_t len;
    uint64_t since_ms; /* when it was last freed or merged */
} range_t;

/* All under cache_lock (bytes is also read relaxed by hak_large_cache_bytes). */
static pthread_mutex_t cache_lock = HAK_LOCK_INITIALIZER;
static range_t slots[SLOTS];
static unsigned used;
static size_t bytes;
static uint64_t hits, misses;

static void remove_slot(unsigned i)
{
    __atomic_store_n(&bytes, bytes - slots[i].len, __ATOMIC_RELAXED);
    slots[i] = slots[--used];
}

static void add_slot(uintptr_t base, size_t len, uint64_t since_ms)
{
    slots[used++] = (range_t){base, len, since_ms};
    __atomic_store_n(&bytes, bytes + len, __ATOMIC_RELAXED);
}

static unsigned oldest_slot(void)
{
    unsigned old = 0;
    for (unsigned i = 1; i < used; i++)
        if (slots[i].since_ms < slots[old].since_ms)
            old = i;
    return old;
}

int hak_large_cache_put(uintptr_t base, size_t len, uint64_t now_ms)
{
    size_t max = (size_t)__atomic_load_n(&hak_config.large_cache_mib, __ATOMIC_RELAXED) << 20;
    if (len > __atomic_load_n(&entry_max, __ATOMIC_RELAXED) || len > max)
        return 0;
    range_t drop[SLOTS];
    unsigned n = 0;
    hak_lock(&cache_lock);
    for (unsigned i = 0; i < used;) { /* merge with the big ranges that touch it */
        if (len < HAK_LARGE_SPLIT_MIN && slots[i].len < HAK_LARGE_SPLIT_MIN) {
            i++;
        } else if (slots[i].base + slots[i].len == base) {
            base = slots[i].base;
            len += slots[i].len;
            remove_slot(i);
        } else if (base + len == slots[i].base) {
            len += slots[i].len;
            remove_slot(i);
        } else {
            i++;
        }
    }
    /* Make room: the oldest ranges go (a merged range over the budget goes itself). */
    while (used && (used == SLOTS || bytes + len > max)) {
        unsigned old = oldest_slot();
        drop[n++] = slots[old];
        remove_slot(old);
    }
    int kept = len <= max;
    if (kept)
        add_slot(base, len, now_ms);
    else
        drop[n++] = (range_t){base, len, now_ms};
    hak_unlock(&cache_lock);
    for (unsigned i = 0; i < n; i++) /* unmap outside the lock */
        hak_os.unmap((void *)drop[i].base, drop[i].len);
    return 1;
}

uintptr_t hak_large_cache_get(size_t need, size_t align, size_t *len_out)
{
    /* Below HAK_LARGE_SPLIT_MIN: the tightest small range at most max(4x, +1 MiB) long, whole
     * (the slack lets a growing buffer grow in place). Else the best-fitting range, cut. */
    int small = need < HAK_LARGE_SPLIT_MIN;
    size_t limit = need * 4 > need + (1u << 20) ? need * 4 : need + (1u << 20);
    uintptr_t got = 0;
    hak_lock(&cache_lock);
    unsigned best = SLOTS;
    for (unsigned i = 0; i < used; i++) {
        uintptr_t start = (slots[i].base + align - 1) & ~(uintptr_t)(align - 1);
        if (start + need <= slots[i].base + slots[i].len &&
            (!small || (start == slots[i].base && slots[i].len <= limit)) &&
            (best == SLOTS || slots[i].len < slots[best].len))
            best = i;
    }
    if (best != SLOTS) {
        range_t r = slots[best];
        got = (r.base + align - 1) & ~(uintptr_t)(align - 1);
        remove_slot(best);
        *len_out = r.len;
        if (!small) {
            *len_out = need;
            if (got > r.base) /* the head before an aligned start */
                add_slot(r.base, got - r.base, r.since_ms);
            uintptr_t end = got + need, r_end = r.base + r.len;
            if (end < r_end) {
                if (used < SLOTS)
                    add_slot(end, r_end - end, r.since_ms);
                else /* no slot for the rest: the block keeps it (usable size grows) */
                    *len_out = r_end - got;
            }
        }
        hits++;
    } else {
        misses++;
    }
    hak_unlock(&cache_lock);
    return got;
}

size_t hak_large_cache_take_at(uintptr_t addr, size_t len, size_t want)
{
    size_t taken = 0;
    hak_lock(&cache_lock);
    for (unsigned i = 0; i < used; i++) {
        if (slots[i].base == addr && slots[i].len >= len) {
            range_t r = slots[i];
            taken = r.len < want ? r.len : want;
            remove_slot(i);
            if (r.len > taken)
                add_slot(addr + taken, r.len - taken, r.since_ms);
            break;
        }
    }
    hak_unlock(&cache_lock);
    return taken;
}

uintptr_t hak_large_cache_take_largest(size_t need, size_t align, size_t *len_out)
{
    uintptr_t got = 0;
    hak_lock(&cache_lock);
    unsigned best = SLOTS;
    for (unsigned i = 0; i < used; i++)
        if (slots[i].len < need && slots[i].len >= HAK_LARGE_GROW_MIN &&
            (slots[i].base & (align - 1)) == 0 && (best == SLOTS || slots[i].len > slots[best].len))
            best = i;
    if (best != SLOTS) {
        got = slots[best].base;
        *len_out = slots[best].len;
        remove_slot(best);
    }
    hak_unlock(&cache_lock);
    return got;
}

size_t hak_large_cache_trim(uint64_t now_ms, uint64_t idle_ms)
{
    range_t drop[SLOTS];
    unsigned n = 0;
    hak_lock(&cache_lock);
    for (unsigned i = 0; i < used;) {
        if (now_ms - slots[i].since_ms >= idle_ms) {
            drop[n++] = slots[i];
            remove_slot(i);
        } else {
            i++;
        }
    }
    hak_unlock(&cache_lock);
    size_t released = 0;
    for (unsigned i = 0; i < n; i++) { /* unmap outside the lock */
        hak_os.unmap((void *)drop[i].base, drop[i].len);
        released += drop[i].len;
    }
    return released;
}

size_t hak_large_cache_bytes(void) { return __atomic_load_n(&bytes, __ATOMIC_RELAXED); }

void hak_large_cache_stats(uint64_t *entries, uint64_t *cached_bytes, uint64_t *hit, uint64_t *miss)
{
    hak_lock(&cache_lock);
    *entries = used;
    *cached_bytes = bytes;
    *hit = hits;
    *miss = misses;
    hak_unlock(&cache_lock);
}

size_t hak_large_cache_entry_max(void) { return __atomic_load_n(&entry_max, __ATOMIC_RELAXED); }

void hak_large_cache_set_entry_max(size_t max)
{
    __atomic_store_n(&entry_max, max, __ATOMIC_RELAXED);
}

void hak_large_cache_fork_lock(void) { pthread_mutex_lock(&cache_lock); }
void hak_large_cache_fork_unlock(void) { pthread_mutex_unlock(&cache_lock); }
void hak_large_cache_fork_child(void) { hak_lock_reinit(&cache_lock); }
