/* shared_contracts/tcache.h - the contract between Box 1 (thread cache, hot path) and Box 2
 * (refill engine and backend).
 *
 * The thread cache is one initial-exec TLS struct, defined in Box 1. It starts all zero for
 * every thread (head NULL, room 0, cap 0, free_key 0), so the first malloc misses and the first free
 * overflows: both land in Box 2, which initialises the thread. The hit path needs no
 * "initialised?" test.
 *
 * Invariants, per thread and class:
 *   - count (== cap - room) == the number of blocks linked from head (a NULL-terminated singly linked list
 *     through the first word of each block); the second word of each listed block holds
 *     hak_free_key (the double-free mark), cleared when the block is handed out. A thread
 *     checks against its copy, free_key, which is 0 until the thread's first slow path.
 *   - count <= cap, except transiently inside free between the push and the spill call.
 *   - Only the owning thread reads or writes its cache, except Box 2 at fork (child side)
 *     and at thread exit, on behalf of the owning thread.
 *
 * Box 2 entry points below are cold and called only on a miss or an overflow. They may take
 * Box 2 locks and mmap. A thread's first slow path may run library init, which calls
 * pthread_atfork and (with POOL_ACE=1) pthread_create, and those may call malloc: Box 2 runs
 * init before it takes any lock, and serves such nested calls uncached.
 */
#ifndef HAK_TCACHE_H
#define HAK_TCACHE_H

#include <stddef.h>
#include <stdint.h>
#include "size_classes.h"

/* Parallel arrays indexed by class, so the hit paths address each field straight off the
 * thread pointer with a scaled index. */
typedef struct hak_tcache {
    void *head[HAK_NUM_CLASSES];     /* first free block of each class, or NULL */
    int32_t room[HAK_NUM_CLASSES];   /* cap - count: pushes left before a spill; < 0 = over */
    uint32_t cap[HAK_NUM_CLASSES];   /* spill when count exceeds it; 0 until thread init */
    uint64_t free_key;               /* hak_free_key, copied at thread init (0 before) */
    uint64_t allocs[HAK_NUM_CLASSES]; /* blocks handed out by the hit path (statistics) */
} hak_tcache_t;

extern __thread hak_tcache_t hak_tcache __attribute__((tls_model("initial-exec")));

/* Blocks in the calling thread's list of class_idx. (The cache stores room, not count, so
 * the free hit path decrements one field and tests its sign.) */
static inline uint32_t hak_bin_count(unsigned class_idx)
{
    return (uint32_t)((int64_t)hak_tcache.cap[class_idx] - hak_tcache.room[class_idx]);
}

/* Change the cap of the calling thread's list of class_idx, keeping its count. */
static inline void hak_bin_set_cap(unsigned class_idx, uint32_t cap)
{
    uint32_t count = hak_bin_count(class_idx);
    hak_tcache.cap[class_idx] = cap;
    hak_tcache.room[class_idx] = (int32_t)((int64_t)cap - count);
}

/* Random per-process value written into word 1 of every cached block; set once at init. */
extern uint64_t hak_free_key;

#define HAK_LIKELY(x) __builtin_expect(!!(x), 1)
#define HAK_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Box 2: the list of class_idx is empty. Refill it with a batch (count read once from the
 * policy table) and return one block, or NULL with errno = ENOMEM. */
void *pool_refill_and_alloc(unsigned class_idx);

/* Box 2: the list of class_idx holds more than cap blocks. Move the blocks freed last (half
 * the cap, or more to get back under it) to the central depot as one batch. Preserves errno. */
void pool_spill(unsigned class_idx);

/* Box 2: a free that the hit path could not take (NULL, large, foreign, corrupt). Aborts on a
 * pointer hakmem did not hand out. Preserves errno. */
void hak_free_slow(void *ptr);

/* Box 2: blocks above HAK_MAX_CLASS_SIZE or with alignment above what a class gives. */
void *hak_large_alloc(size_t size, size_t align);
void *hak_large_calloc(size_t size); /* the same, zeroed */
/* ptr must be a live large block, else abort naming `caller` (the API function). */
size_t hak_large_usable_size(const void *ptr, const char *caller);
void *hak_large_realloc(void *ptr, size_t size); /* ptr a live large block; NULL+ENOMEM on fail */

/* Box 2: return every block cached by the calling thread to the central lists (used by
 * malloc_trim and at thread exit). */
void hak_thread_flush_all(void);

#endif
