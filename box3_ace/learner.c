/* box3_ace/learner.c - the ACE learner thread: start, the interval loop, stop, fork.
 *
 * Life cycle (ace_state): OFF -> STARTING -> RUNNING -> STOPPING -> STOPPED, or FAILED when
 * the ring registry or the thread cannot be made, or CHILD in a forked child (no learner
 * there: the last published table stays in force, frozen). Each step is one CAS or store by
 * hak_ace_start / hak_ace_stop / hak_ace_fork_child; there is no way back to OFF, so the
 * learner starts at most once per process.
 *
 * Each interval, under hak_ace_mu: collect every ring (collect.c), run the policy (policy.c),
 * publish if a count changed (publish.c), log the changes (acelog.c). Between intervals the
 * learner sleeps in pthread_cond_timedwait on CLOCK_MONOTONIC with hak_ace_mu released, so
 * hak_ace_stop wakes it at once. It runs with every signal blocked and is named "hakmem-ace".
 * Nothing here allocates, except glibc's pthread_create (one calloc, with no allocator lock).
 */
/* _GNU_SOURCE (pthread_setname_np) comes from the Makefile */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <urcu-bp.h>

#include "box3_ace/ace.h"
#include "box3_ace/ace_internal.h"
#include "shared_contracts/ace_hooks.h"
#include "shared_contracts/config.h"
#include "shared_contracts/diag.h"
#include "shared_contracts/event_ring.h"
#include "shared_contracts/policy_table.h"

enum { ACE_OFF, ACE_STARTING, ACE_RUNNING, ACE_STOPPING, ACE_STOPPED, ACE_FAILED, ACE_CHILD };

pthread_mutex_t hak_ace_mu = PTHREAD_MUTEX_INITIALIZER;

static int ace_state;            /* enum above; CAS/atomic stores, read anywhere */
static pthread_t ace_thread;     /* written before RUNNING is stored; read by stop after CAS */
static pthread_cond_t ace_cv;    /* wakes the sleeping learner; used under hak_ace_mu */
static int ace_stop_req;         /* under hak_ace_mu */
static uint64_t ace_start_ns;    /* under hak_ace_mu; CSV time origin */
static uint64_t ace_last_tick_ns;/* under hak_ace_mu */
static int ace_inited;           /* under hak_ace_mu: params and class state are set */
static hak_ace_params_t ace_params;                  /* under hak_ace_mu */
static hak_ace_class_state_t ace_cls[HAK_NUM_CLASSES]; /* under hak_ace_mu */
static hak_ace_interval_t ace_iv;                    /* under hak_ace_mu; scratch per interval */
/* Stats: written under hak_ace_mu with relaxed stores, read lock-free with relaxed loads. */
static uint64_t ace_events[HAK_NUM_CLASSES], ace_drops, ace_ticks, ace_cpu_ns;
static uint64_t ace_exits, ace_exit_samples, ace_ringless;
/* Fork nesting: touched only by fork handlers, which glibc runs under its atfork lock, one
 * fork at a time. Depth > 1 when the handlers are registered twice (Box 2 and a test). */
static int fork_depth;

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void add_relaxed(uint64_t *p, uint64_t v)
{
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
}

static void init_cond(void)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&ace_cv, &a);
    pthread_condattr_destroy(&a);
}

/* POOL_ACE=shadow: decide and log, publish nothing (the fixed counts stay in force). */
static int shadow_mode(void) { return hak_config.ace == HAK_ACE_SHADOW; }

/* Shadow mode: what would have been published, for the HAKMEM_STATS table. */
static void note_shadow(const uint16_t counts[HAK_NUM_CLASSES])
{
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
        __atomic_store_n(&hak_policy_shadow[c], counts[c], __ATOMIC_RELAXED);
}

/* First use: bounds from hak_config, every class at its Phase 1 count clamped to the bounds,
 * published as table 1 so that ACE's bounds hold from the start. */
static void init_locked(void)
{
    if (ace_inited)
        return;
    uint64_t now = clock_ns(CLOCK_MONOTONIC);
    if (!ace_start_ns)
        ace_start_ns = now;
    hak_ace_params_default(&ace_params, (uint32_t)hak_config.ace_min,
                           (uint32_t)hak_config.ace_max,
                           (uint64_t)hak_config.tcache_max_kib * 1024u);
    ace_params.park_budget = (uint64_t)hak_config.ace_budget_mib << 20;
    hak_ace_log_open(hak_config.ace_log);
    uint16_t counts[HAK_NUM_CLASSES];
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        uint32_t fixed = hak_fixed_refill_count(c);
        hak_ace_class_init(&ace_params, c, fixed, &ace_cls[c]);
        counts[c] = ace_cls[c].count;
        if (counts[c] != fixed)
            hak_ace_log_row((now - ace_start_ns) / 1000000u, c, fixed, counts[c], "clamp", 0, 0,
                            0);
    }
    hak_ace_log_flush();
    if (shadow_mode())
        note_shadow(counts);
    else
        hak_ace_publish_locked(counts);
    ace_last_tick_ns = clock_ns(CLOCK_MONOTONIC);
    ace_inited = 1;
}

/* One interval: collect, decide, publish (or, in shadow mode, only note), log. After a publish
 * the rings still hold what was pushed under the table it replaced, which would be read as the
 * new count's effect: they are collected once more and thrown away, and the next interval's
 * rates count from then. quick: a follow-up interval (up rules only, see learner_main).
 * Returns 1 if a count went up. */
static int tick_locked(int quick)
{
    init_locked();
    uint64_t now = clock_ns(CLOCK_MONOTONIC);
    uint64_t interval = now - ace_last_tick_ns;
    if (interval < 1000000u)
        interval = 1000000u; /* back-to-back steps (tests): rates stay finite */
    ace_last_tick_ns = now;

    int shadow = shadow_mode();
    uint16_t in_force[HAK_NUM_CLASSES]; /* what Box 2's refills used */
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        uint32_t fixed = hak_fixed_refill_count(c);
        in_force[c] = shadow ? (uint16_t)(fixed < HAK_REFILL_MAX ? fixed : HAK_REFILL_MAX)
                             : ace_cls[c].count;
    }
    hak_ace_collect(&ace_iv, in_force);
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
        add_relaxed(&ace_events[c], ace_iv.collected[c]);
    add_relaxed(&ace_drops, ace_iv.drops);
    add_relaxed(&ace_exits, ace_iv.exits);
    add_relaxed(&ace_exit_samples, ace_iv.exit_samples);
    add_relaxed(&ace_ringless, ace_iv.ringless_events);

    uint16_t old[HAK_NUM_CLASSES], counts[HAK_NUM_CLASSES];
    enum hak_ace_reason why[HAK_NUM_CLASSES];
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
        old[c] = ace_cls[c].count;
    int rose = 0;
    ace_params.quick = (uint32_t)quick;
    unsigned changed = hak_ace_policy_step(&ace_params, ace_iv.cls, interval, ace_cls, why);
    ace_params.quick = 0;
    if (changed) {
        for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
            counts[c] = ace_cls[c].count;
        if (shadow) {
            note_shadow(counts);
        } else {
            hak_ace_publish_locked(counts);
            add_relaxed(&ace_drops, hak_ace_collect_discard(counts));
            ace_last_tick_ns = clock_ns(CLOCK_MONOTONIC);
        }
        uint64_t ms = (now - ace_start_ns) / 1000000u;
        for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
            rose |= counts[c] > old[c];
            if (why[c] == HAK_ACE_HOLD && counts[c] == old[c])
                continue;
            const hak_ace_class_stats_t *s = &ace_iv.cls[c];
            hak_ace_log_row(ms, c, old[c], counts[c], hak_ace_reason_name(why[c]),
                            s->refills * 1000000000ull / interval,
                            s->spills * 1000000000ull / interval, ace_iv.drops);
        }
        hak_ace_log_flush();
    }
    add_relaxed(&ace_ticks, 1);
    return rose;
}

static void *learner_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "hakmem-ace"); /* own thread: prctl, no file, no malloc */
    pthread_mutex_lock(&hak_ace_mu);
    init_locked();
    /* After a count goes up, the next interval is a short follow-up one (a fifth of the
     * period, at least 10 ms) that may only go up again: a phase change seldom falls on an
     * interval's start, so the interval that saw it mixed the old phase with the new one, and
     * its step is often short of the new phase's need. The follow-up sees the new phase alone
     * (the publish emptied the rings) and finishes the step a period sooner. */
    uint64_t period = (uint64_t)hak_config.ace_interval_ms * 1000000u;
    uint64_t follow = period / 5u > 10000000u ? period / 5u : 10000000u;
    if (follow > period)
        follow = period;
    /* The first interval is as short, and an ordinary one: what a process does first is what
     * it does most often for a short-lived program (churn's threads, a CLI run). */
    int quick = 0, first = 1;
    while (!ace_stop_req) {
        uint64_t due = clock_ns(CLOCK_MONOTONIC) + (quick || first ? follow : period);
        first = 0;
        struct timespec ts = {(time_t)(due / 1000000000u), (long)(due % 1000000000u)};
        int rc = 0;
        while (!ace_stop_req && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&ace_cv, &hak_ace_mu, &ts);
        if (ace_stop_req)
            break;
        quick = tick_locked(quick) && !quick;
        __atomic_store_n(&ace_cpu_ns, clock_ns(CLOCK_THREAD_CPUTIME_ID), __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&hak_ace_mu);
    return NULL;
}

void hak_ace_start(void)
{
    if (!hak_config.ace)
        return;
    int expected = ACE_OFF;
    if (!__atomic_compare_exchange_n(&ace_state, &expected, ACE_STARTING, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return;
    if (!hak_ring_registry_init((uint32_t)hak_config.ace_ring)) {
        hak_warn("ACE: cannot map %u event rings of %ld events; ACE is off",
                 HAK_RING_SLOTS, (long)hak_config.ace_ring);
        __atomic_store_n(&ace_state, ACE_FAILED, __ATOMIC_RELEASE);
        return;
    }
    pthread_mutex_lock(&hak_ace_mu);
    ace_start_ns = clock_ns(CLOCK_MONOTONIC);
    pthread_mutex_unlock(&hak_ace_mu);
    init_cond();

    /* The learner inherits a full signal mask: the program's signals go to its own threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256u * 1024u);
    int rc = pthread_create(&ace_thread, &attr, learner_main, NULL);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        hak_warn("ACE: cannot start the learner thread (error %d); ACE is off", rc);
        __atomic_store_n(&ace_state, ACE_FAILED, __ATOMIC_RELEASE);
        return;
    }
    __atomic_store_n(&ace_state, ACE_RUNNING, __ATOMIC_RELEASE);
}

void hak_ace_stop(void)
{
    int expected = ACE_RUNNING;
    if (!__atomic_compare_exchange_n(&ace_state, &expected, ACE_STOPPING, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return; /* never started, failed, already stopped, or a forked child */
    pthread_mutex_lock(&hak_ace_mu);
    ace_stop_req = 1;
    pthread_cond_signal(&ace_cv);
    pthread_mutex_unlock(&hak_ace_mu);
    pthread_join(ace_thread, NULL);
    pthread_mutex_lock(&hak_ace_mu);
    hak_ace_log_close();
    pthread_mutex_unlock(&hak_ace_mu);
    __atomic_store_n(&ace_state, ACE_STOPPED, __ATOMIC_RELEASE);
}

/* Fork: hold hak_ace_mu (no collect or publish in flight) and urcu-bp's locks across fork(). */
void hak_ace_fork_prepare(void)
{
    if (!hak_config.ace || fork_depth++ > 0)
        return;
    pthread_mutex_lock(&hak_ace_mu);
    urcu_bp_before_fork();
}

void hak_ace_fork_parent(void)
{
    if (!hak_config.ace || fork_depth == 0 || --fork_depth > 0)
        return;
    urcu_bp_after_fork_parent();
    pthread_mutex_unlock(&hak_ace_mu);
}

void hak_ace_fork_child(void)
{
    if (!hak_config.ace || fork_depth == 0 || --fork_depth > 0)
        return;
    urcu_bp_after_fork_child();
    /* One thread now: fresh lock and condvar (the parent's learner may have waited on it). */
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    hak_ace_mu = fresh;
    init_cond();
    int s = __atomic_load_n(&ace_state, __ATOMIC_ACQUIRE);
    if (s == ACE_STARTING || s == ACE_RUNNING || s == ACE_STOPPING)
        __atomic_store_n(&ace_state, ACE_CHILD, __ATOMIC_RELEASE);
}

/* Box 2 reaches the learner only through these hooks (shared_contracts/ace_hooks.h). This
 * constructor (priority 102) runs before Box 2's library constructor; if a program allocated
 * earlier still and library init is already done, it starts the learner itself. */
__attribute__((constructor(102))) static void ace_install_hooks(void)
{
    static const hak_ace_hooks_t hooks = {hak_ace_start, hak_ace_stop, hak_ace_fork_prepare,
                                          hak_ace_fork_parent, hak_ace_fork_child};
    hak_ace_hooks_install(&hooks);
    if (__atomic_load_n(&hak_library_ready, __ATOMIC_ACQUIRE))
        hak_ace_start();
}

void hak_policy_publish(const uint16_t counts[HAK_NUM_CLASSES])
{
    pthread_mutex_lock(&hak_ace_mu);
    hak_ace_publish_locked(counts);
    if (ace_inited) {
        for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
            ace_cls[c].count = counts[c];
            ace_cls[c].streak = ace_cls[c].up_streak = 0;
        }
    }
    pthread_mutex_unlock(&hak_ace_mu);
}

void hak_ace_step(void)
{
    pthread_mutex_lock(&hak_ace_mu);
    tick_locked(0);
    pthread_mutex_unlock(&hak_ace_mu);
}

uint64_t hak_ace_events_seen(unsigned class_idx)
{
    return class_idx < HAK_NUM_CLASSES ? __atomic_load_n(&ace_events[class_idx], __ATOMIC_RELAXED)
                                       : 0;
}

uint64_t hak_ace_drops_seen(void) { return __atomic_load_n(&ace_drops, __ATOMIC_RELAXED); }
uint64_t hak_ace_exits_seen(void) { return __atomic_load_n(&ace_exits, __ATOMIC_RELAXED); }
uint64_t hak_ace_exit_samples(void) { return __atomic_load_n(&ace_exit_samples, __ATOMIC_RELAXED); }
uint64_t hak_ace_ringless_events(void) { return __atomic_load_n(&ace_ringless, __ATOMIC_RELAXED); }
uint64_t hak_ace_ticks(void) { return __atomic_load_n(&ace_ticks, __ATOMIC_RELAXED); }
uint64_t hak_ace_learner_cpu_ns(void) { return __atomic_load_n(&ace_cpu_ns, __ATOMIC_RELAXED); }
int hak_ace_running(void) { return __atomic_load_n(&ace_state, __ATOMIC_ACQUIRE) == ACE_RUNNING; }
