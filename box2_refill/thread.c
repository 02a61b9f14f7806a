/* box2_refill/thread.c - thread records, thread init and exit (thread.h). */
#include "thread.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "central.h"
#include "lock.h"
#include "os.h"
#include "shared_contracts/ace_summary.h"
#include "shared_contracts/config.h"
#include "shared_contracts/diag.h"
#include "shared_contracts/valgrind_hooks.h"

#define RECORD_BLOCK (64u * 1024u)

static __thread hak_thread_t *thread_self __attribute__((tls_model("initial-exec")));

/* Guarded by threads_lock. */
static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;
static hak_thread_t *live;           /* records of live threads */
static hak_thread_t *spare;          /* recycled records */
static char *record_next, *record_end;
static uint64_t retired_stat[HAK_TSTAT_COUNT][HAK_NUM_CLASSES];
static uint64_t retired_allocs[HAK_NUM_CLASSES];

/* A thread whose record cannot be mapped (out of memory) runs uncached through this one. */
static hak_thread_t fallback = {.state = HAK_THREAD_DEAD};

pthread_key_t hak_thread_key;

uint32_t hak_thread_cap(unsigned class_idx, uint32_t refill_count)
{
    uint64_t budget = (uint64_t)hak_config.tcache_max_kib * 1024u / hak_class_size(class_idx);
    uint64_t cap = 2u * (uint64_t)refill_count;
    if (cap > budget)
        cap = budget;
    if (cap < refill_count)
        cap = refill_count;
    return (uint32_t)cap;
}

static hak_thread_t *record_alloc(void)
{
    hak_thread_t *t = spare;
    if (t) {
        spare = t->next;
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

static void thread_start(void)
{
    int saved = errno;
    hak_init();
    hak_lock(&threads_lock);
    hak_thread_t *t = record_alloc();
    if (t) {
        t->next = live;
        if (live)
            live->prev = t;
        live = t;
    }
    hak_unlock(&threads_lock);
    if (!t) {
        thread_self = &fallback;
        errno = saved;
        return;
    }
    t->state = HAK_THREAD_LIVE;
    t->tcache = &hak_tcache;
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
        hak_bin_set_cap(c, hak_config.debug ? 0 : hak_thread_cap(c, hak_fixed_refill_count(c)));
    hak_tcache.free_key = hak_free_key;
    t->ring_wait = HAK_RING_AFTER_REFILLS; /* the ring comes later (shared_contracts/event_ring.h) */
    thread_self = t;
    /* Arms the destructor; our key is created early, so this never allocates. */
    pthread_setspecific(hak_thread_key, t);
    errno = saved;
}

hak_thread_t *hak_thread_get(void)
{
    static __thread int starting __attribute__((tls_model("initial-exec")));
    if (HAK_UNLIKELY(!thread_self)) {
        /* Library init may allocate (pthread_create of the ACE learner): such a nested call
         * is served uncached through the fallback record. */
        if (starting)
            return &fallback;
        starting = 1;
        thread_start();
        starting = 0;
    }
    return thread_self;
}

/* pthread key destructor: give the cache back, retire the record. */
void hak_thread_exit(void *arg)
{
    hak_thread_t *t = arg;
    int saved = errno;
    HAK_VG_ENTER();
    if (hak_config.ace && t->ring_wait) /* exits before its ring: tell ACE through the summary */
        hak_ace_summary_exit(t->stat[HAK_TSTAT_refills], t->stat[HAK_TSTAT_refill_blocks],
                             t->stat[HAK_TSTAT_spills], t->stat[HAK_TSTAT_spill_blocks],
                             hak_tcache.allocs);
    hak_thread_flush_all();
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
        hak_bin_set_cap(c, 0); /* later frees go straight to the central lists */
    if (t->ring)
        hak_ring_release(t->ring);
    hak_lock(&threads_lock);
    for (unsigned s = 0; s < HAK_TSTAT_COUNT; s++)
        for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
            retired_stat[s][c] += t->stat[s][c];
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
        retired_allocs[c] += hak_tcache.allocs[c];
    if (t->prev)
        t->prev->next = t->next;
    else
        live = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->next = spare;
    spare = t;
    hak_unlock(&threads_lock);
    thread_self = &fallback; /* DEAD from now on */
    HAK_VG_LEAVE();
    errno = saved;
}

void hak_thread_flush_all(void)
{
    uint64_t now = hak_now_ms();
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        uint32_t count = hak_bin_count(c);
        if (!count)
            continue;
        uint64_t *tail = hak_tcache.head[c];
        while (tail[0])
            tail = (uint64_t *)tail[0];
        hak_lock(&hak_central[c].lock);
        hak_central_put(c, hak_tcache.head[c], tail, count, now);
        hak_unlock(&hak_central[c].lock);
        hak_tcache.head[c] = NULL;
        hak_tcache.room[c] = (int32_t)hak_tcache.cap[c];
    }
}

void hak_thread_sum_stats(uint64_t out[HAK_TSTAT_COUNT][HAK_NUM_CLASSES],
                          uint64_t allocs[HAK_NUM_CLASSES])
{
    hak_lock(&threads_lock);
    memcpy(out, retired_stat, sizeof retired_stat);
    memcpy(allocs, retired_allocs, sizeof retired_allocs);
    for (unsigned s = 0; s < HAK_TSTAT_COUNT; s++) /* threads past their exit destructor */
        for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
            out[s][c] += __atomic_load_n(&fallback.stat[s][c], __ATOMIC_RELAXED);
    for (hak_thread_t *t = live; t; t = t->next) {
        for (unsigned s = 0; s < HAK_TSTAT_COUNT; s++)
            for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
                out[s][c] += __atomic_load_n(&t->stat[s][c], __ATOMIC_RELAXED);
        for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
            allocs[c] += __atomic_load_n(&t->tcache->allocs[c], __ATOMIC_RELAXED);
    }
    hak_unlock(&threads_lock);
}

void hak_thread_fork_lock(void) { pthread_mutex_lock(&threads_lock); }
void hak_thread_fork_unlock(void) { pthread_mutex_unlock(&threads_lock); }

/* Child: only the forking thread exists. Other threads' records (and the blocks in their
 * caches) are dropped: their lists may have been mid-update when the fork happened. */
void hak_thread_fork_child(void)
{
    pthread_mutex_init(&threads_lock, NULL);
    hak_thread_t *self = thread_self;
    live = NULL;
    if (self && self != &fallback) {
        self->next = self->prev = NULL;
        live = self;
    }
}
