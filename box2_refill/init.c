/* box2_refill/init.c - library init, process exit, and fork.
 *
 * Init is lazy and recursion-safe: the central lists are statically initialised, so malloc
 * works before init and during it. hak_init runs once (CAS); a nested call from the thread
 * running it (dlsym, pthread_create's calloc) returns at once and proceeds with defaults.
 *
 * Fork. glibc runs pthread_atfork prepare handlers before it takes its stdio list lock; an
 * allocator that locks in a prepare handler deadlocks against a thread inside fflush(NULL)
 * that holds that lock and calls malloc. So hakmem exports fork(): it takes the stdio list
 * lock first (glibc's recursive _IO_list_lock), then ACE's and every Box 2 lock, then calls
 * the real fork. The atfork handlers cover forks that do not come through the wrapper.
 *
 * Fork from a signal handler. A single-threaded process takes no lock at all (glibc does the
 * same, SINGLE_THREAD_P): no other thread can be inside the allocator, and a handler that
 * interrupted this thread inside a Box 2 lock or inside another fork must not wait for it.
 * In a multi-threaded process (POOL_ACE=1 has the learner thread), a fork that finds its own
 * thread inside a Box 2 lock (hak_locks_held) or inside the wrapper (forks_in_progress) is a
 * handler that interrupted hakmem: it calls _Fork, which takes no lock and runs no atfork
 * handler, and takes none of hakmem's. Every child resets Box 2's locks, so it does not hang
 * on one the interrupted code held; what that code was writing may be half-written there,
 * which is why POSIX allows such a child only async-signal-safe calls (docs/RELIABILITY.md).
 */

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <sys/auxv.h>
#include <sys/single_threaded.h>
#include <unistd.h>

#include "include/hakmem.h"
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


extern void _IO_list_lock(void);
extern void _IO_list_unlock(void);
extern void _IO_list_resetlock(void);

static __thread int fork_by_wrapper __attribute__((tls_model("initial-exec")));
/* Forks of this thread inside the wrapper, from entry to return (a handler's fork nests). */
static __thread int forks_in_progress __attribute__((tls_model("initial-exec")));
/* Set by the atfork prepare handler when it took the locks, for its parent/child handler. */
static int atfork_locked;
/* Set in the child of a _Fork (no atfork handler ran): the learner is gone, but ACE was not
 * told, so the exit path must not wait for it. */
static int child_of_bare_fork;

enum { INIT_NONE = 0, INIT_RUNNING = 1, INIT_DONE = 2 };
static int init_state;        /* CAS NONE->RUNNING by one thread; RUNNING->DONE by it */
static pthread_t init_owner;  /* written by that thread before anything it calls can recurse */

static void fork_prepare(void);
static void fork_parent(void);
static void fork_child(void);

static uint64_t make_free_key(void)
{
    uint64_t key = 0;
    const unsigned char *rnd = (const unsigned char *)getauxval(AT_RANDOM);
    if (rnd)
        for (int i = 0; i < 8; i++)
            key = key << 8 | rnd[8 + i];
    key ^= (uint64_t)(uintptr_t)&key * 0x9e3779b97f4a7c15ull;
    key |= 1; /* odd: never a block address, never zero */
    return key;
}

void hak_init(void)
{
    int state = __atomic_load_n(&init_state, __ATOMIC_ACQUIRE);
    if (HAK_LIKELY(state == INIT_DONE))
        return;
    if (state == INIT_NONE && __atomic_compare_exchange_n(&init_state, &state, INIT_RUNNING, 0,
                                                          __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        int saved = errno;
        init_owner = pthread_self();
        hak_pagemap_boot();
        hak_config_load();
        hak_free_key = make_free_key();
        hak_central_configure();
        pthread_atfork(fork_prepare, fork_parent, fork_child);
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

__attribute__((constructor)) static void hak_constructor(void) { hak_init(); }

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

static void lock_all(void)
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

static void unlock_all_parent(void)
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

/* Child: fresh Box 2 locks, whether or not the parent held them. */
static void reset_box2_child(void)
{
    hak_fork_holder = 0;
    hak_large_cache_fork_child();
    hak_span_fork_child();
    for (unsigned a = 0; a < hak_arenas; a++)
        for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
            hak_lock_reinit(&hak_central[a][c].lock);
    hak_thread_fork_child();
    hak_purger_fork_child();
}

static void reset_all_child(void)
{
    reset_box2_child();
    void (*tcache_child)(void) = hak_tcache_hooks.fork_child;
    if (tcache_child)
        tcache_child();
    hak_ace_hooks.fork_child();
}

static void fork_prepare(void)
{
    if (fork_by_wrapper)
        return;
    atfork_locked = !__libc_single_threaded && !hak_locks_held;
    if (atfork_locked)
        lock_all();
}
static void fork_parent(void)
{
    if (!fork_by_wrapper && atfork_locked) {
        atfork_locked = 0;
        unlock_all_parent();
    }
}
static void fork_child(void)
{
    if (fork_by_wrapper)
        return;
    if (atfork_locked) {
        atfork_locked = 0;
        reset_all_child();
    } else {
        reset_box2_child();
    }
}

/* A fork that takes no hakmem lock: a single-threaded process (glibc's fork, which then
 * takes no lock either), or a signal handler that interrupted hakmem in a multi-threaded one
 * (_Fork: glibc's fork would take its atfork lock, which an interrupted fork may hold). */
static pid_t fork_unlocked(pid_t (*glibc_fork)(void))
{
    int single = __libc_single_threaded;
    int outer = fork_by_wrapper;
    forks_in_progress++;
    fork_by_wrapper = 1; /* our atfork handlers stand aside */
    pid_t pid = single ? glibc_fork() : _Fork();
    int saved = errno;
    fork_by_wrapper = outer;
    forks_in_progress--;
    if (pid == 0) {
        reset_box2_child();
        if (!single) {
            _IO_list_resetlock(); /* what glibc's fork does in a multi-threaded child */
            child_of_bare_fork = 1;
        }
    }
    errno = saved;
    return pid;
}

HAKMEM_API pid_t fork(void)
{
    static pid_t (*real_fork)(void);
    pid_t (*fn)(void) = __atomic_load_n(&real_fork, __ATOMIC_ACQUIRE);
    if (!fn) {
        fn = (pid_t(*)(void))dlsym(RTLD_NEXT, "fork");
        if (!fn) {
            errno = ENOSYS;
            return -1;
        }
        __atomic_store_n(&real_fork, fn, __ATOMIC_RELEASE);
    }
    hak_init();
    if (__libc_single_threaded || hak_locks_held || forks_in_progress)
        return fork_unlocked(fn);
    forks_in_progress++;
    _IO_list_lock();
    lock_all();
    fork_by_wrapper = 1;
    pid_t pid = fn();
    int saved = errno;
    fork_by_wrapper = 0;
    if (pid == 0) {
        /* glibc resets the list lock in the child only when the parent had threads; reset it
         * always, or the count we took stays held by the child's main thread. */
        _IO_list_resetlock();
        reset_all_child();
    } else {
        unlock_all_parent();
        _IO_list_unlock();
    }
    forks_in_progress--; /* last: a handler's fork until here finds every lock still ours */
    errno = saved;
    return pid;
}
