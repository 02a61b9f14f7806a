/* box2_refill/thread.c - Box 2's thread records (thread.h) and the attach/detach entry points
 * of shared_contracts/backend.h. */
#include "thread.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "central.h"
#include "lock.h"
#include "os.h"
#include "purge.h"
#include "shared_contracts/backend.h"
#include "shared_contracts/ace_summary.h"
#include "shared_contracts/config.h"

#define RECORD_BLOCK (64u * 1024u)

static __thread hak_thread_t *thread_self __attribute__((tls_model("initial-exec")));

/* Guarded by threads_lock. */
static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;
static hak_thread_t *live;           /* records of live threads */
static hak_thread_t *recycled;       /* records of exited threads, for reuse */
static char *record_next, *record_end;
static uint64_t retired_stat[HAK_TSTAT_COUNT][HAK_NUM_CLASSES];
static uint64_t retired_large_allocs, retired_large_frees;
static uint32_t arena_threads[HAK_ARENAS_MAX]; /* live records per arena */
static uint32_t threads_live; /* live records in all (threads lock; read relaxed, share.h) */

/* The arena with the fewest live threads, the lowest first (threads lock held). */
static unsigned least_used_arena(void)
{
    unsigned best = 0;
    for (unsigned a = 1; a < hak_arenas; a++)
        if (arena_threads[a] < arena_threads[best])
            best = a;
    return best;
}

/* Threads without a record of their own count here. */
static hak_thread_t fallback;

static hak_thread_t *record_alloc(void)
{
    hak_thread_t *t = recycled;
    if (t) {
        recycled = t->next;
    } else {
        if (record_end - record_next < (long)sizeof(hak_thread_t)) {
            char *block = hak_os.map(RECORD_BLOCK);
            if (!block)
                return NULL;
            record_next = block;
            record_end = block + RECORD_BLOCK;
        }
        t = (hak_thread_t *)record_next;
        record_next += sizeof(hak_thread_t);
    }
    memset(t, 0, sizeof *t);
    return t;
}

uint32_t hak_thread_live_count(void) { return __atomic_load_n(&threads_live, __ATOMIC_RELAXED); }

hak_thread_t *hak_thread_self(void)
{
    hak_thread_t *t = thread_self;
    return t ? t : &fallback;
}

void hak_thread_count_large(int alloc)
{
    hak_thread_t *t = thread_self;
    if (!t) { /* the shared fallback: several threads may count at once */
        __atomic_fetch_add(alloc ? &fallback.large_allocs : &fallback.large_frees, 1,
                           __ATOMIC_RELAXED);
        return;
    }
    uint64_t *n = alloc ? &t->large_allocs : &t->large_frees;
    __atomic_store_n(n, *n + 1, __ATOMIC_RELAXED); /* owner only */
}

void hak_thread_sum_large(uint64_t *allocs, uint64_t *frees)
{
    hak_lock(&threads_lock);
    uint64_t a = retired_large_allocs + __atomic_load_n(&fallback.large_allocs, __ATOMIC_RELAXED);
    uint64_t f = retired_large_frees + __atomic_load_n(&fallback.large_frees, __ATOMIC_RELAXED);
    for (hak_thread_t *t = live; t; t = t->next) {
        a += __atomic_load_n(&t->large_allocs, __ATOMIC_RELAXED);
        f += __atomic_load_n(&t->large_frees, __ATOMIC_RELAXED);
    }
    hak_unlock(&threads_lock);
    *allocs = a;
    *frees = f;
}

int hak_thread_attach(void)
{
    int saved = errno;
    hak_lock(&threads_lock);
    hak_thread_t *t = record_alloc();
    if (t) {
        t->next = live;
        if (live)
            live->prev = t;
        live = t;
        t->arena = least_used_arena();
        arena_threads[t->arena]++;
        __atomic_store_n(&threads_live, threads_live + 1, __ATOMIC_RELAXED);
    }
    hak_unlock(&threads_lock);
    errno = saved;
    if (!t)
        return 0;
    t->live = 1;
    t->ring_wait = HAK_RING_AFTER_REFILLS; /* the ring comes later (shared_contracts/event_ring.h) */
    thread_self = t;
    return 1;
}

void hak_thread_detach(void)
{
    hak_thread_t *t = thread_self;
    if (!t)
        return;
    if (hak_config.ace && t->ring_wait) /* exits before its ring: tell ACE through the summary */
        hak_ace_summary_exit(t->stat[HAK_TSTAT_refills], t->stat[HAK_TSTAT_refill_blocks],
                             t->stat[HAK_TSTAT_spills], t->stat[HAK_TSTAT_spill_blocks],
                             t->exit_left);
    if (t->ring)
        hak_ring_orphan(t->ring);
    hak_lock(&threads_lock);
    for (unsigned s = 0; s < HAK_TSTAT_COUNT; s++)
        for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
            retired_stat[s][c] += t->stat[s][c];
    retired_large_allocs += t->large_allocs;
    retired_large_frees += t->large_frees;
    arena_threads[t->arena]--;
    __atomic_store_n(&threads_live, threads_live - 1, __ATOMIC_RELAXED);
    if (t->prev)
        t->prev->next = t->next;
    else
        live = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->next = recycled;
    recycled = t;
    hak_unlock(&threads_lock);
    thread_self = NULL; /* the fallback from now on */
    hak_purger_wake(); /* what this thread gave back decays even if the others go quiet */
}

void hak_thread_sum_stats(uint64_t out[HAK_TSTAT_COUNT][HAK_NUM_CLASSES])
{
    hak_lock(&threads_lock);
    memcpy(out, retired_stat, sizeof retired_stat);
    for (unsigned s = 0; s < HAK_TSTAT_COUNT; s++)
        for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
            out[s][c] += __atomic_load_n(&fallback.stat[s][c], __ATOMIC_RELAXED);
    for (hak_thread_t *t = live; t; t = t->next)
        for (unsigned s = 0; s < HAK_TSTAT_COUNT; s++)
            for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
                out[s][c] += __atomic_load_n(&t->stat[s][c], __ATOMIC_RELAXED);
    hak_unlock(&threads_lock);
}

void hak_thread_sum_cached(uint64_t cached[HAK_NUM_CLASSES],
                           const uint32_t self_lists[HAK_NUM_CLASSES])
{
    hak_thread_t *self = thread_self;
    memset(cached, 0, HAK_NUM_CLASSES * sizeof cached[0]);
    hak_lock(&threads_lock);
    for (hak_thread_t *t = live; t; t = t->next)
        for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
            cached[c] += t == self ? self_lists[c] /* the calling thread's lists, exactly */
                                   : __atomic_load_n(&t->cached[c], __ATOMIC_RELAXED);
    hak_unlock(&threads_lock);
}

void hak_thread_fork_lock(void) { pthread_mutex_lock(&threads_lock); }
void hak_thread_fork_unlock(void) { pthread_mutex_unlock(&threads_lock); }

/* Child: only the forking thread exists. Other threads' records are dropped (their counts
 * with them): those threads are gone, and the blocks their lists held are lost to the child.
 * Their large blocks' counts stay: the blocks live on in the child, which may free them. */
void hak_thread_fork_child(void)
{
    pthread_mutex_init(&threads_lock, NULL);
    hak_thread_t *self = thread_self;
    for (hak_thread_t *t = live; t; t = t->next) {
        if (t == self)
            continue;
        retired_large_allocs += t->large_allocs;
        retired_large_frees += t->large_frees;
    }
    live = NULL;
    memset(arena_threads, 0, sizeof arena_threads);
    threads_live = 0;
    if (self) {
        self->next = self->prev = NULL;
        live = self;
        arena_threads[self->arena]++;
        threads_live = 1;
    }
}
