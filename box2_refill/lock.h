/* box2_refill/lock.h - Box 2's locks, fork-aware.
 *
 * Lock order (never reversed): ACE's lock (hak_ace_mu and urcu-bp's; taken only at fork,
 * through hak_ace_hooks.fork_prepare of shared_contracts/ace_hooks.h) -> threads lock -> class
 * locks (by arena, then class index) -> span pool lock -> large-cache lock (large_cache.c).
 * Outside fork, a thread holds at most one class lock, and the threads lock and the
 * large-cache lock are never held with another Box 2 lock. With HAKMEM_DEBUG=1 the spans'
 * bitmaps are made under the pool lock (span.c) and read under the class lock (debug.c). hak_fork_holder is set in the one thread that holds every lock across a
 * fork; inside it (atfork handlers of other libraries that call malloc) locking is skipped,
 * since that thread already owns everything and no other thread runs Box 2 code.
 */
#ifndef HAK_BOX2_LOCK_H
#define HAK_BOX2_LOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Class and pool locks are plain mutexes, all zero bytes when free (so hak_central's arenas
 * stay in .bss: a process makes resident only the lines of the arenas and classes its threads
 * use), and hak_lock spins briefly on a contended one before it sleeps, since every critical
 * section in Box 2 is short (as glibc's adaptive mutexes do, whose initializer is not zero). */
#define HAK_LOCK_INITIALIZER PTHREAD_MUTEX_INITIALIZER
#define HAK_LOCK_SPINS 100

static inline void hak_lock_reinit(pthread_mutex_t *m) /* fork child */
{
    pthread_mutex_init(m, NULL);
}

static inline void hak_mutex_acquire(pthread_mutex_t *m)
{
    for (int i = 0; pthread_mutex_trylock(m) != 0; i++) {
        if (i == HAK_LOCK_SPINS) {
            pthread_mutex_lock(m);
            return;
        }
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
}

/* Both counters below are defined in lock.c. */
extern __thread int hak_fork_holder __attribute__((tls_model("initial-exec")));

/* Box 2 locks the calling thread holds or is acquiring, counted from before the lock is
 * taken to after it is released: nonzero inside a signal handler that interrupted one of
 * those sections. The fork wrapper reads it (init.c): such a fork cannot wait for them. */
extern __thread int hak_locks_held __attribute__((tls_model("initial-exec")));

static inline void hak_lock(pthread_mutex_t *m)
{
    hak_locks_held++;
    __atomic_signal_fence(__ATOMIC_SEQ_CST); /* counted before the lock can be held */
    if (!hak_fork_holder)
        hak_mutex_acquire(m);
}

static inline void hak_unlock(pthread_mutex_t *m)
{
    if (!hak_fork_holder)
        pthread_mutex_unlock(m);
    __atomic_signal_fence(__ATOMIC_SEQ_CST); /* released before it is uncounted */
    hak_locks_held--;
}

static inline int hak_trylock(pthread_mutex_t *m)
{
    hak_locks_held++;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (hak_fork_holder || pthread_mutex_trylock(m) == 0)
        return 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    hak_locks_held--;
    return 0;
}

static inline uint64_t hak_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#endif
