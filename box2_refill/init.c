/* box2_refill/init.c - library init, process exit, and Box 2's part of fork.
 *
 * Init is lazy and recursion-safe: the central lists are statically initialised, so malloc
 * works before init and during it. hak_init runs once (CAS); a nested call from the thread
 * running it (dlsym, pthread_create's calloc) returns at once and proceeds with defaults.
 * Box 1 calls it: from its constructor and at each thread's start (box1_tls/), and from the
 * fork wrapper.
 *
 * Fork is Box 1's (box1_tls/fork.c: the exported fork() and the atfork handlers). Box 2 takes
 * its locks when Box 1 asks, releases them in the parent and resets them in the child
 * (shared_contracts/backend.h): hak_backend_fork_prepare takes ACE's lock (through
 * hak_ace_hooks.fork_prepare) and every Box 2 lock in the order of lock.h; every child, locked
 * or not, gets fresh Box 2 locks, so it does not hang on one an interrupted thread held.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <unistd.h>

#include "central.h"
#include "large_cache.h"
#include "purge.h"
#include "lock.h"
#include "shared_contracts/config.h"
#include "shared_contracts/pagemap.h"
#include "shared_contracts/ace_hooks.h"
#include "shared_contracts/backend.h"
#include "span.h"
#include "stats.h"
#include "thread.h"

/* Set in the child of a _Fork (no atfork handler ran): the learner is gone, but ACE was not
 * told, so the exit path must not wait for it. */
static int child_of_bare_fork;

enum { INIT_NONE = 0, INIT_RUNNING = 1, INIT_DONE = 2 };
static int init_state;        /* CAS NONE->RUNNING by one thread; RUNNING->DONE by it */
static pthread_t init_owner;  /* written by that thread before anything it calls can recurse */

void hak_init(void)
{
    int state = __atomic_load_n(&init_state, __ATOMIC_ACQUIRE);
    if (HAK_LIKELY(state == INIT_DONE))
        return;
    if (state == INIT_NONE && __atomic_compare_exchange_n(&init_state, &state, INIT_RUNNING, 0,
                                                          __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        int saved = errno;
        init_owner = pthread_self();
        hak_keys_make(); /* first: before any link is encoded */
        hak_pagemap_boot();
        hak_config_load();
        hak_central_configure();
        __atomic_store_n(&init_state, INIT_DONE, __ATOMIC_RELEASE);
        __atomic_store_n(&hak_library_ready, 1, __ATOMIC_RELEASE);
        hak_ace_hooks.start(); /* last: the learner is a thread, whose creation allocates */
        errno = saved;
        return;
    }
    if (pthread_equal(init_owner, pthread_self()))
        return; /* nested call from inside init */
    while (__atomic_load_n(&init_state, __ATOMIC_ACQUIRE) != INIT_DONE)
        sched_yield();
}

__attribute__((destructor)) static void hak_destructor(void)
{
    if (!child_of_bare_fork)
        hak_ace_hooks.stop();
    if (hak_config.stats)
        hak_stats_write(2);
    if (hak_config.stats_file[0])
        hak_stats_write_file(hak_config.stats_file);
}

/* ---- fork ----------------------------------------------------------------------------- */

int hak_backend_locks_held(void) { return hak_locks_held; }

void hak_backend_fork_prepare(void)
{
    hak_ace_hooks.fork_prepare();
    hak_thread_fork_lock();
    for (unsigned a = 0; a < hak_arenas; a++)
        for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
            pthread_mutex_lock(&hak_central[a][c].lock);
    hak_span_fork_lock();
    hak_large_cache_fork_lock();
    hak_fork_holder = 1;
}

void hak_backend_fork_parent(void)
{
    hak_fork_holder = 0;
    hak_large_cache_fork_unlock();
    hak_span_fork_unlock();
    for (unsigned a = hak_arenas; a-- > 0;)
        for (unsigned c = HAK_NUM_CLASSES; c-- > 0;)
            pthread_mutex_unlock(&hak_central[a][c].lock);
    hak_thread_fork_unlock();
    hak_ace_hooks.fork_parent();
}

/* Fresh Box 2 locks, whether or not the parent held them; the forking thread's record alone. */
void hak_backend_fork_child(enum hak_fork_child how)
{
    hak_fork_holder = 0;
    hak_large_cache_fork_child();
    hak_span_fork_child();
    for (unsigned a = 0; a < hak_arenas; a++)
        for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
            hak_lock_reinit(&hak_central[a][c].lock);
    hak_central_fork_child();
    hak_thread_fork_child();
    hak_purger_fork_child();
    if (how == HAK_FORK_LOCKED)
        hak_ace_hooks.fork_child();
    else if (how == HAK_FORK_BARE)
        child_of_bare_fork = 1;
}
