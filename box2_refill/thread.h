/* box2_refill/thread.h - Box 2's cold per-thread state (the hot part is Box 1's hak_tcache).
 *
 * A record per thread that has reached a Box 2 slow path, taken from a recycled pool of
 * mmap'd records (static TLS holds only a pointer, so the library stays small in TLS).
 *
 * Life cycle: NEW (no record) -> LIVE (record, caps set, pthread key destructor armed) ->
 * DEAD (the destructor flushed the cache and set every cap to 0; later mallocs and frees of
 * this thread, from other TLS destructors, go straight to the central lists).
 *
 * Stats counters are written by the owner thread only (relaxed) and read by anyone; the one
 * shared record of threads past their exit destructor is written by all of them, so its
 * counts may miss concurrent updates.
 * The list of live records is guarded by the threads lock.
 */
#ifndef HAK_BOX2_THREAD_H
#define HAK_BOX2_THREAD_H

#include <stdint.h>

#include "shared_contracts/event_ring.h"
#include "shared_contracts/size_classes.h"
#include "shared_contracts/tcache.h"

/* X(name): per-class counters, one declaration for counting, merging and printing. */
#define HAK_TSTATS(X)                                                                             \
    X(refills) X(refill_blocks) X(spills) X(spill_blocks) X(trim_blocks) X(events) X(drops)

enum hak_tstat {
#define HAK_TSTAT_ENUM(name) HAK_TSTAT_##name,
    HAK_TSTATS(HAK_TSTAT_ENUM)
#undef HAK_TSTAT_ENUM
    HAK_TSTAT_COUNT
};

enum hak_thread_state { HAK_THREAD_NEW = 0, HAK_THREAD_LIVE = 1, HAK_THREAD_DEAD = 2 };

typedef struct hak_thread {
    int state;                 /* enum hak_thread_state; owner only */
    hak_ring_t *ring;          /* ACE event ring, or NULL */
    uint32_t ring_wait;        /* refills left before the thread takes a ring; owner only */
    hak_tcache_t *tcache;      /* the owner's hak_tcache, for statistics */
    uint64_t stat[HAK_TSTAT_COUNT][HAK_NUM_CLASSES];
    /* Idle-list trim (refill.c, hak_list_trim): when the next pass is due, and each class's
     * list length, hit-path allocations, refills and spilled blocks as the last pass left
     * them. Owner only. */
    uint64_t trim_due_ms;
    uint32_t trim_len[HAK_NUM_CLASSES];
    uint64_t trim_allocs[HAK_NUM_CLASSES];
    uint64_t trim_refills[HAK_NUM_CLASSES];
    uint64_t trim_spilled[HAK_NUM_CLASSES];
    struct hak_thread *next, *prev; /* live list (threads lock) or free pool */
} hak_thread_t;

static inline void hak_tstat_add(hak_thread_t *t, enum hak_tstat which, unsigned c, uint64_t v)
{
    __atomic_store_n(&t->stat[which][c], t->stat[which][c] + v, __ATOMIC_RELAXED);
}

/* The calling thread's record, initialising the library and the thread on first use.
 * Never NULL: a thread whose record cannot be mapped uses a shared fallback in DEAD state. */
hak_thread_t *hak_thread_get(void);

/* List-cap for a class refilled with `refill_count` blocks. */
uint32_t hak_thread_cap(unsigned class_idx, uint32_t refill_count);

/* Statistics over live and exited threads. */
void hak_thread_sum_stats(uint64_t out[HAK_TSTAT_COUNT][HAK_NUM_CLASSES],
                          uint64_t allocs[HAK_NUM_CLASSES]);

/* Blocks in the lists of every live thread, per class: each thread's cap - room, read while
 * the owners run (a snapshot; exact when they are idle). For malloc_info/mallinfo2. */
void hak_thread_sum_cached(uint64_t cached[HAK_NUM_CLASSES]);

/* Fork support (threads lock) and the child's reset. */
void hak_thread_fork_lock(void);
void hak_thread_fork_unlock(void);
void hak_thread_fork_child(void);

/* Library init (box2_refill/init.c): idempotent, recursion-safe. */
void hak_init(void);

#endif
