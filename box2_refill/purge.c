/* box2_refill/purge.c - the decay tick, the background purger, reclaim after a failed
 * mapping (purge.h). */
#include "purge.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <limits.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdint.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include "central.h"
#include "large_cache.h"
#include "lock.h"
#include "shared_contracts/config.h"
#include "shared_contracts/backend.h"
#include "span.h"

#define HAK_ADDRESS_SPACE ((size_t)1 << 47) /* user space on x86-64 with 4-level paging */
#define PURGER_STACK (64u * 1024u)
#define PURGER_IDLE_TICKS 4u /* ticks in a row with nothing to give back before it exits */

static uint64_t tick_interval_ms(void)
{
    uint64_t interval = (uint64_t)hak_config.decay_ms / 4;
    return interval < 10 ? 10 : interval;
}

/* ---- giving memory back at once ------------------------------------------------------- */

static uint64_t reclaims; /* relaxed; statistics and tests */

int hak_flush_central(uint64_t now_ms)
{
    int moved = 0;
    for (unsigned a = 0; a < hak_arenas; a++)
        for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
            hak_central_t *cc = &hak_central[a][c];
            hak_lock(&cc->lock);
            moved |= cc->spare != NULL;
            hak_chain_t depot = hak_central_detach_depot(a, c, cc->depot_count);
            cc->depot_low = 0;
            hak_central_collect_idle(a, c, 1, &depot);
            hak_unlock(&cc->lock);
            moved |= depot.count != 0; /* depot and mailbox blocks */
            hak_central_give(c, depot, now_ms, HAK_ARENA_ALL); /* may empty a span: spare */
            hak_lock(&cc->lock);
            hak_central_flush_spare(a, c, now_ms, 0);
            hak_unlock(&cc->lock);
        }
    return moved;
}

/* Depot blocks, mailbox chains or a spare in arena a's central lists of class c (relaxed
 * reads): something the decay tick may give back. */
static int arena_holds(unsigned a, unsigned c)
{
    return __atomic_load_n(&hak_central[a][c].depot_count, __ATOMIC_RELAXED) ||
           __atomic_load_n(&hak_central[a][c].spare, __ATOMIC_RELAXED) ||
           hak_central_mail_count(a, c);
}

int hak_reclaim(void)
{
    int saved = errno;
    __atomic_fetch_add(&reclaims, 1, __ATOMIC_RELAXED);
    int any = hak_flush_central(hak_now_ms());
    any |= hak_span_unmap_purged() != 0;
    any |= hak_large_cache_unmap_idle(hak_now_ms(), 0) != 0;
    errno = saved;
    return any;
}

uint64_t hak_reclaim_count(void) { return __atomic_load_n(&reclaims, __ATOMIC_RELAXED); }

/* Bytes Box 2 maps that no program and no thread list holds: cached large mappings, empty
 * spans (resident or purged), depot blocks, spare spans. Relaxed reads: an estimate. */
static size_t free_bytes_held(void)
{
    hak_span_totals_t sp;
    hak_span_totals(&sp);
    size_t held = hak_large_cache_bytes() + sp.pooled + sp.purged;
    for (unsigned a = 0; a < hak_arenas; a++)
        for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
            const hak_central_t *cc = &hak_central[a][c];
            held += (size_t)(__atomic_load_n(&cc->depot_count, __ATOMIC_RELAXED) +
                             hak_central_mail_count(a, c)) *
                    hak_class_size(c);
            if (__atomic_load_n(&cc->depot_count, __ATOMIC_RELAXED) ||
                __atomic_load_n(&cc->spare, __ATOMIC_RELAXED))
                held += hak_span_bytes(c);
        }
    return held;
}

/* The last reclaim that did not make its mapping succeed: its size and what hakmem held
 * before it (relaxed; a heuristic shared by all threads). */
static size_t failed_len = SIZE_MAX, failed_held;
static __thread size_t checked_held __attribute__((tls_model("initial-exec")));

/* vm.overcommit_memory, read once (open/read/close: no allocation); -1 if unreadable. */
static int overcommit_mode(void)
{
    static int mode = -2; /* -2 unread; racing readers read the same file */
    int m = __atomic_load_n(&mode, __ATOMIC_RELAXED);
    if (m != -2)
        return m;
    m = -1;
    int fd = open("/proc/sys/vm/overcommit_memory", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char c;
        if (read(fd, &c, 1) == 1 && c >= '0' && c <= '2')
            m = c - '0';
        close(fd);
    }
    __atomic_store_n(&mode, m, __ATOMIC_RELAXED);
    return m;
}

/* RAM + swap in bytes, from sysinfo at most once a second (relaxed; racing refreshes agree). */
static size_t ram_and_swap(void)
{
    static size_t total;
    static uint64_t read_ms;
    uint64_t now = hak_now_ms();
    size_t t = __atomic_load_n(&total, __ATOMIC_RELAXED);
    if (!t || now - __atomic_load_n(&read_ms, __ATOMIC_RELAXED) >= 1000) {
        struct sysinfo si;
        int saved = errno;
        if (sysinfo(&si) == 0)
            t = ((size_t)si.totalram + si.totalswap) * (si.mem_unit ? si.mem_unit : 1);
        errno = saved;
        __atomic_store_n(&total, t, __ATOMIC_RELAXED);
        __atomic_store_n(&read_ms, now, __ATOMIC_RELAXED);
    }
    return t ? t : SIZE_MAX;
}

/* The last total ram_and_swap read: a length at most that is possible without a look at the
 * clock (every large allocation asks; a total that shrank since, by swapoff, only lets a
 * mapping that is then refused try). */
static size_t ram_and_swap_seen;

int hak_mapping_impossible(size_t len)
{
    if (len >= HAK_ADDRESS_SPACE)
        return 1;
    if (len <= __atomic_load_n(&ram_and_swap_seen, __ATOMIC_RELAXED) || overcommit_mode() != 0)
        return 0;
    size_t total = ram_and_swap();
    __atomic_store_n(&ram_and_swap_seen, total, __ATOMIC_RELAXED);
    return len > total;
}

int hak_mapping_hopeless(size_t len)
{
    int saved = errno;
    struct rlimit rl;
    int hopeless = hak_mapping_impossible(len) ||
                   (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
                    len > rl.rlim_cur);
    errno = saved;
    return hopeless;
}

int hak_backend_return_all(void)
{
    uint64_t now = hak_now_ms();
    hak_flush_central(now);
    int returned = hak_span_decay(now, 0, 1) > 0; /* 1 when pages went back to the OS */
    returned |= hak_large_cache_unmap_idle(now, 0) > 0;
    return returned;
}

int hak_reclaim_may_help(size_t len)
{
    int saved = errno;
    int help = 1;
    struct rlimit rl;
    if (hak_mapping_impossible(len))
        help = 0; /* past the address space, or past what the overcommit heuristic allows */
    else if ((checked_held = free_bytes_held()) == 0)
        help = 0; /* nothing to give back */
    else if (len >= __atomic_load_n(&failed_len, __ATOMIC_RELAXED) &&
             checked_held <= __atomic_load_n(&failed_held, __ATOMIC_RELAXED))
        help = 0; /* giving back as much did not make room for as much before */
    else if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && len > rl.rlim_cur)
        help = 0; /* larger than the whole limit */
    errno = saved;
    return help;
}

void hak_reclaim_did_not_help(size_t len)
{
    __atomic_store_n(&failed_held, checked_held, __ATOMIC_RELAXED);
    __atomic_store_n(&failed_len, len, __ATOMIC_RELAXED);
}

/* ---- the decay tick ------------------------------------------------------------------- */

static uint64_t next_tick_ms; /* CAS-claimed by the thread that runs a tick */

/* The large cache's budget work: purge above its target, unmap what sat idle. Populated pages
 * given back cost a page walk and TLB flushes, so the purger does this when it runs. */
static void large_cache_decay(uint64_t now_ms)
{
    hak_large_cache_decay(now_ms, (uint64_t)hak_config.decay_ms, hak_large_cache_live_bytes());
}

/* Run the tick if due; 1 if this call ran it. */
static int decay_tick(uint64_t now_ms)
{
    uint64_t due = __atomic_load_n(&next_tick_ms, __ATOMIC_RELAXED);
    if (HAK_LIKELY(now_ms < due))
        return 0;
    if (!__atomic_compare_exchange_n(&next_tick_ms, &due, now_ms + tick_interval_ms(), 0,
                                     __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        return 0;
    /* Each class puts back the depot blocks nobody took since the last tick, and hands back a
     * spare idle for HAKMEM_DECAY_MS. */
    for (unsigned a = 0; a < hak_arenas; a++)
        for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
            hak_central_t *cc = &hak_central[a][c];
            if (!arena_holds(a, c) || !hak_trylock(&cc->lock))
                continue;
            hak_chain_t idle = hak_central_detach_depot(a, c, cc->depot_low);
            cc->depot_low = cc->depot_count;
            hak_central_collect_idle(a, c, 0, &idle); /* mail no refill took since last tick */
            hak_central_flush_spare(a, c, now_ms, (uint64_t)hak_config.decay_ms);
            hak_unlock(&cc->lock);
            hak_central_give(c, idle, now_ms, HAK_ARENA_ALL);
        }
    hak_span_decay(now_ms, (uint64_t)hak_config.decay_ms, 0);
    if (!hak_purger_running()) /* else the purger does it, off the program's threads */
        large_cache_decay(now_ms);
    return 1;
}

/* Left for a later tick: depot blocks, spares, resident empty spans, cached large mappings. */
static int left_to_give_back(void)
{
    if (hak_large_cache_bytes())
        return 1;
    hak_span_totals_t sp;
    hak_span_totals(&sp);
    if (sp.pooled)
        return 1;
    for (unsigned a = 0; a < hak_arenas; a++)
        for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
            if (arena_holds(a, c))
                return 1;
    return 0;
}

void hak_decay_maybe(uint64_t now_ms)
{
    if (decay_tick(now_ms) && left_to_give_back())
        hak_purger_wake();
}

/* ---- the purger thread ---------------------------------------------------------------- */

enum { PURGER_NONE = 0, PURGER_RUNNING = 1 };
static int purger_state;      /* CAS NONE->RUNNING by the waker; RUNNING->NONE by the thread */
static uint64_t purger_starts; /* relaxed */

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL); /* EINTR: an early tick is harmless */
}

static void *purger_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "hakmem-purge");
    unsigned idle = 0;
    for (;;) {
        while (idle < PURGER_IDLE_TICKS) {
            uint64_t now = hak_now_ms(), due = __atomic_load_n(&next_tick_ms, __ATOMIC_RELAXED);
            uint64_t wait = due > now ? due - now : 1, interval = tick_interval_ms();
            sleep_ms(wait < interval ? wait : interval);
            decay_tick(hak_now_ms());
            large_cache_decay(hak_now_ms());
            idle = left_to_give_back() ? 0 : idle + 1;
        }
        __atomic_store_n(&purger_state, PURGER_NONE, __ATOMIC_RELEASE);
        /* A wake between the last check and the store found us running and returned: look
         * once more, and carry on if it left something. */
        int expected = PURGER_NONE;
        if (!left_to_give_back() ||
            !__atomic_compare_exchange_n(&purger_state, &expected, PURGER_RUNNING, 0,
                                         __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return NULL;
        idle = 0;
    }
}

void hak_purger_wake(void)
{
    if (HAK_LIKELY(__atomic_load_n(&purger_state, __ATOMIC_RELAXED) != PURGER_NONE) ||
        !hak_config.purger || hak_fork_holder)
        return;
    int expected = PURGER_NONE;
    if (!__atomic_compare_exchange_n(&purger_state, &expected, PURGER_RUNNING, 0,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return;
    int saved = errno;
    pthread_attr_t attr;
    sigset_t all, old;
    pthread_t th;
    int rc = pthread_attr_init(&attr);
    if (rc == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, PURGER_STACK);
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old); /* the thread inherits the full mask */
        rc = pthread_create(&th, &attr, purger_main, NULL);
        if (rc == EINVAL) { /* the program's static TLS does not fit that stack: default one */
            pthread_attr_setstacksize(&attr, 0 + PTHREAD_STACK_MIN > PURGER_STACK
                                                 ? PTHREAD_STACK_MIN : 8u << 20);
            rc = pthread_create(&th, &attr, purger_main, NULL);
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);
    }
    if (rc == 0)
        __atomic_fetch_add(&purger_starts, 1, __ATOMIC_RELAXED);
    else /* no thread (out of memory, thread limit): the next wake tries again */
        __atomic_store_n(&purger_state, PURGER_NONE, __ATOMIC_RELEASE);
    errno = saved;
}

int hak_purger_running(void)
{
    return __atomic_load_n(&purger_state, __ATOMIC_ACQUIRE) == PURGER_RUNNING;
}

uint64_t hak_purger_starts(void) { return __atomic_load_n(&purger_starts, __ATOMIC_RELAXED); }

void hak_purger_fork_child(void)
{
    __atomic_store_n(&purger_state, PURGER_NONE, __ATOMIC_RELAXED);
    __atomic_store_n(&purger_starts, 0, __ATOMIC_RELAXED);
}
