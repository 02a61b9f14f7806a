/* box2_refill/large_cache.c - freed large mappings kept for reuse (large_cache.h). */
#include "large_cache.h"

#include <pthread.h>

#include "lock.h"
#include "os.h"
#include "shared_contracts/config.h"

#define SLOTS 64u

/* Larger mappings are not kept: 16 MiB, or what mallopt(M_MMAP_THRESHOLD) set (relaxed). */
static size_t entry_max = 16u << 20;

typedef struct {
    uintptr_t base;
    size_t len;
    uint64_t since_ms;
} cached_t;

/* All under cache_lock. */
static pthread_mutex_t cache_lock = HAK_LOCK_INITIALIZER;
static cached_t slots[SLOTS];
static unsigned used;
static size_t bytes;
static uint64_t hits, misses;

int hak_large_cache_put(uintptr_t base, size_t len, uint64_t now_ms)
{
    size_t max = (size_t)__atomic_load_n(&hak_config.large_cache_mib, __ATOMIC_RELAXED) << 20;
    if (len > __atomic_load_n(&entry_max, __ATOMIC_RELAXED) || len > max)
        return 0;
    hak_lock(&cache_lock);
    int kept = used < SLOTS && bytes + len <= max;
    if (kept) {
        slots[used++] = (cached_t){base, len, now_ms};
        bytes += len;
    }
    hak_unlock(&cache_lock);
    return kept;
}

uintptr_t hak_large_cache_get(size_t need, size_t align, size_t *len_out)
{
    size_t limit = need * 4 > need + (1u << 20) ? need * 4 : need + (1u << 20);
    uintptr_t base = 0;
    hak_lock(&cache_lock);
    unsigned best = SLOTS;
    for (unsigned i = used; i-- > 0;) { /* newest first; the tightest fit wins */
        if (slots[i].len >= need && slots[i].len <= limit && (slots[i].base & (align - 1)) == 0 &&
            (best == SLOTS || slots[i].len < slots[best].len))
            best = i;
    }
    if (best != SLOTS) {
        base = slots[best].base;
        *len_out = slots[best].len;
        bytes -= slots[best].len;
        slots[best] = slots[--used];
        hits++;
    } else {
        misses++;
    }
    hak_unlock(&cache_lock);
    return base;
}

size_t hak_large_cache_trim(uint64_t now_ms, uint64_t idle_ms)
{
    cached_t drop[SLOTS];
    unsigned n = 0;
    hak_lock(&cache_lock);
    for (unsigned i = 0; i < used;) {
        if (now_ms - slots[i].since_ms >= idle_ms) {
            drop[n++] = slots[i];
            bytes -= slots[i].len;
            slots[i] = slots[--used];
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
