/* box2_refill/thread.h - Box 2's record of a thread: statistics and the ACE ring. The
 * thread's lists are Box 1's (box1_tls/tcache.h); Box 2 never sees them.
 *
 * Records come from a recycled pool of mmap'd records; static TLS holds only a pointer. A
 * thread gets one in hak_thread_attach (its first slow path, called by Box 1) and gives it
 * back in hak_thread_detach (Box 1's exit destructor). A thread with no record (before attach
 * or nested inside library init, after detach, or when no record could be mapped) is counted
 * in one shared fallback record (live == 0).
 *
 * Stats counters are written by the owner thread only (relaxed stores) and read by anyone;
 * the fallback record is written by every thread that uses it, so its counts may miss
 * concurrent updates. The list of live records is guarded by the threads lock.
 */
#ifndef HAK_BOX2_THREAD_H
#define HAK_BOX2_THREAD_H

#include <stdint.h>

#include "shared_contracts/event_ring.h"
#include "shared_contracts/size_classes.h"

/* X(name): per-class counters, one declaration for counting, merging and printing. */
#define HAK_TSTATS(X)                                                                             \
    X(refills) X(refill_blocks) X(spills) X(spill_blocks) X(trim_blocks) X(events) X(drops)

enum hak_tstat {
#define HAK_TSTAT_ENUM(name) HAK_TSTAT_##name,
    HAK_TSTATS(HAK_TSTAT_ENUM)
#undef HAK_TSTAT_ENUM
    HAK_TSTAT_COUNT
};

/* The freed large ranges a thread keeps for its own next large blocks (large_local.c), in the
 * order it freed them, oldest first: base[i], len[i] for i < n. Only the owner reads and
 * changes them, while it holds `busy` (a signal handler that interrupts the owner finds it
 * set and goes to the shared large cache instead). */
#define HAK_LARGE_HELD_MAX 8
typedef struct hak_large_held {
    int busy;
    uint32_t n;
    uint64_t bytes;   /* sum of len[] */
    uint64_t used_ms; /* the owner's last keep */
    uint64_t want[2]; /* the longest range its large mallocs asked for: this round, the last */
    uint32_t asks;    /* its large mallocs (under 2 MiB), counted to HAK_LARGE_ASK_ROUND */
    uintptr_t base[HAK_LARGE_HELD_MAX];
    uint64_t len[HAK_LARGE_HELD_MAX];
} hak_large_held_t;

typedef struct hak_thread {
    int live;                  /* 1: a live thread's own record; 0: the shared fallback */
    hak_ring_t *ring;          /* ACE event ring, or NULL; owner only */
    uint32_t ring_wait;        /* refills left before the thread takes a ring; owner only */
    unsigned arena;            /* the arena its refills come from (central.h); set at attach */
    uint64_t stat[HAK_TSTAT_COUNT][HAK_NUM_CLASSES];
    uint8_t ramp_refills[HAK_NUM_CLASSES];  /* refills per class, saturating (ramp.h); owner */
    uint32_t exit_left[HAK_NUM_CLASSES];    /* blocks the exit drain gave back; owner only */
    uint32_t cached[HAK_NUM_CLASSES];       /* the thread's list length after its last slow path
                                             * of the class; owner writes (relaxed), any reads */
    hak_large_held_t held;          /* large_local.c; owner only */
    uint64_t large_allocs, large_frees; /* large blocks it allocated and freed (large.c,
                                         * hak_thread_count_large); owner writes (relaxed) */
    struct hak_thread *next, *prev; /* live list (threads lock) or free pool */
} __attribute__((aligned(64))) hak_thread_t; /* records are carved side by side (thread.c):
                                              * on lines of their own, the owners' plain stores
                                              * share none */

static inline void hak_tstat_add(hak_thread_t *t, enum hak_tstat which, unsigned c, uint64_t v)
{
    __atomic_store_n(&t->stat[which][c], t->stat[which][c] + v, __ATOMIC_RELAXED);
}

/* The calling thread's record, or the fallback. Never NULL. */
hak_thread_t *hak_thread_self(void);

/* Count a large block allocated (alloc = 1) or freed (0) by the calling thread: a plain
 * store in its own record, so two threads' large mallocs and frees write no shared line
 * (the fallback record, shared, counts atomically). */
void hak_thread_count_large(int alloc);

/* Large blocks allocated and freed in all, over live and exited threads (and, in a fork
 * child, the threads the fork left behind). */
void hak_thread_sum_large(uint64_t *allocs, uint64_t *frees);

/* Threads with a record of their own (attached, not yet detached); a racy estimate for the
 * refill share (share.h). */
uint32_t hak_thread_live_count(void);

/* Statistics over live and exited threads. */
void hak_thread_sum_stats(uint64_t out[HAK_TSTAT_COUNT][HAK_NUM_CLASSES]);

/* Blocks in the lists of every live thread, per class: the calling thread's exactly, as Box 1
 * counted them (self_lists), every other thread's as of its last slow path of the class (Box 2
 * never reads another box's lists: the refill and give-back calls tell it the list's length).
 * For malloc_info/mallinfo2: exact while only the calling thread allocates. */
void hak_thread_sum_cached(uint64_t cached[HAK_NUM_CLASSES],
                           const uint32_t self_lists[HAK_NUM_CLASSES]);

/* Fork support (threads lock) and the child's reset. */
void hak_thread_fork_lock(void);
void hak_thread_fork_unlock(void);
void hak_thread_fork_child(void);

#endif
