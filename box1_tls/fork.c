/* box1_tls/fork.c - fork(), exported, and the atfork handlers: the front door's part of fork.
 * Box 2's locks are Box 2's: Box 1 asks it to take, release and reset them
 * (shared_contracts/backend.h, hak_backend_fork_*). The thread cache's own reset in the child
 * is an atfork child handler of its own (hak_tcache_fork_child).
 *
 * glibc runs pthread_atfork prepare handlers before it takes its stdio list lock; an
 * allocator that locks in a prepare handler deadlocks against a thread inside fflush(NULL)
 * that holds that lock and calls malloc. So hakmem exports fork(): it takes the stdio list
 * lock first (glibc's recursive _IO_list_lock), then has Box 2 take ACE's lock and every Box 2
 * lock, then calls the real fork. The atfork handlers cover forks that do not come through the
 * wrapper; the library's constructor registers them (library_start, api.c).
 *
 * The profiler's lock (profiler.c) comes first, before Box 2's: the profiler calls Box 2
 * with its lock released, and Box 2 never calls the profiler.
 *
 * Fork from a signal handler. A single-threaded process takes no lock at all (glibc does the
 * same, SINGLE_THREAD_P): no other thread can be inside the allocator, and a handler that
 * interrupted this thread inside a Box 2 lock or inside another fork must not wait for it.
 * In a multi-threaded process (POOL_ACE=1 has the learner thread), a fork that finds its own
 * thread inside a Box 2 lock (hak_backend_locks_held), inside the profiler (hak_prof_busy) or inside the wrapper
 * (forks_in_progress) is a handler that interrupted hakmem: it calls _Fork, which takes no
 * lock and runs no atfork handler, and takes none of hakmem's. Every child resets Box 2's
 * locks, so it does not hang on one the interrupted code held; what that code was writing may
 * be half-written there, which is why POSIX allows such a child only async-signal-safe calls
 * (docs/RELIABILITY.md).
 */
#include "fork.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sys/single_threaded.h>
#include <unistd.h>

#include "include/hakmem.h"
#include "profiler.h"
#include "shared_contracts/backend.h"

extern void _IO_list_lock(void);
extern void _IO_list_unlock(void);
extern void _IO_list_resetlock(void);

/* Set while this thread's fork runs inside the wrapper: the atfork handlers stand aside. */
static __thread int fork_by_wrapper __attribute__((tls_model("initial-exec")));
/* Forks of this thread inside the wrapper, from entry to return (a handler's fork nests). */
static __thread int forks_in_progress __attribute__((tls_model("initial-exec")));
/* Set by the atfork prepare handler when it took the locks, for its parent/child handler. */
static int atfork_locked;

static void fork_prepare(void)
{
    if (fork_by_wrapper)
        return;
    atfork_locked = !__libc_single_threaded && !hak_backend_locks_held() && !hak_prof_busy();
    if (atfork_locked) {
        hak_prof_fork_prepare();
        hak_backend_fork_prepare();
    }
}

static void fork_parent(void)
{
    if (!fork_by_wrapper && atfork_locked) {
        atfork_locked = 0;
        hak_backend_fork_parent();
        hak_prof_fork_parent();
    }
}

static void fork_child(void)
{
    if (fork_by_wrapper)
        return;
    hak_prof_fork_child();
    hak_backend_fork_child(atfork_locked ? HAK_FORK_LOCKED : HAK_FORK_UNLOCKED);
    atfork_locked = 0;
}

void hak_fork_handlers_register(void)
{
    int saved = errno;
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    errno = saved;
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
        hak_prof_fork_child();
        if (single) {
            hak_backend_fork_child(HAK_FORK_UNLOCKED);
        } else {
            _IO_list_resetlock(); /* what glibc's fork does in a multi-threaded child */
            hak_backend_fork_child(HAK_FORK_BARE);
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
    if (__libc_single_threaded || hak_backend_locks_held() || forks_in_progress ||
        hak_prof_busy())
        return fork_unlocked(fn);
    forks_in_progress++;
    _IO_list_lock();
    hak_prof_fork_prepare();
    hak_backend_fork_prepare();
    fork_by_wrapper = 1;
    pid_t pid = fn();
    int saved = errno;
    fork_by_wrapper = 0;
    if (pid == 0) {
        /* glibc resets the list lock in the child only when the parent had threads; reset it
         * always, or the count we took stays held by the child's main thread. */
        _IO_list_resetlock();
        hak_prof_fork_child();
        hak_backend_fork_child(HAK_FORK_LOCKED);
    } else {
        hak_backend_fork_parent();
        hak_prof_fork_parent();
        _IO_list_unlock();
    }
    forks_in_progress--; /* last: a handler's fork until here finds every lock still ours */
    errno = saved;
    return pid;
}
