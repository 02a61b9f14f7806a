/* box1_tls/tcache.c - the thread cache's cold paths and a thread's life cycle (tcache.h).
 *
 * Life cycle (Box 1 owns it; shared_contracts/backend.h):
 *   NEW -> STARTING -> LIVE -> UNCACHED.
 *   A thread's first miss or overflow calls thread_start: STARTING while Box 2 runs library
 *   init and makes its record (a malloc nested in there is served uncached), then LIVE with
 *   every cap set from the fixed counts and the exit destructor armed. The destructor gives
 *   every list back to Box 2 and leaves the thread UNCACHED: caps 0, so later mallocs and
 *   frees (other TLS destructors) go straight to the central lists. A thread Box 2 had no
 *   record for runs UNCACHED from the start. The fork child keeps its forking thread's lists
 *   as they are: they belong to the only thread left.
 *
 * Refill: Box 2 hands a chain, the count it read and how many refills' worth the list may
 * keep; the chain goes in front of the list, the cap follows them (base cap + the list's
 * extra), and the refill ends in the same pop the hit path uses. Overflow: if the class
 * refilled since the last overflow and the blocks freed last lie dense (list_dense), the cap
 * first grows by what those refills brought in, as far as the budgets allow (list_grow;
 * shared_contracts/list_rule.h); then what is still over the cap leaves, the blocks freed
 * last, as one chain (the spill) or several of at most HAK_GIVE_MAX blocks (give), as trims
 * and drains do. A grown list that ran dry since its last overflow and spills scrambled
 * blocks goes back to its base cap (links_dense over the spill's first HAK_SPILL_PROBE).
 *
 * Idle-list trim: a thread's lists only shrink by spills, so blocks a thread stopped using
 * would stay for good. Every HAKMEM_DECAY_MS / 4, the thread's own slow path runs a pass:
 * each list that neither refilled nor spilled since the last pass gives back three quarters
 * of its blocks, straight to their spans (Box 2 can then purge emptied spans), and its cap's
 * extra. A grown list that its thread serves alone makes no slow path either, so a pass takes
 * it for idle too: that costs it one burst's refills (which regrow the cap) once a pass, and
 * a list in light use gives back what it no longer needs, extra included, so the thread's
 * growth budget goes to the lists in heavy use. The pass knows only what the slow paths set
 * (two bit masks): the hit paths pay nothing for it. It never reads the policy table, so a
 * published count does not reach into a list (contract B).
 */
#include "tcache.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "shared_contracts/backend.h"
#include "shared_contracts/config.h"
#include "shared_contracts/diag.h"
#include "shared_contracts/list_rule.h"
#include "shared_contracts/valgrind_hooks.h"

/* Per thread; the static empty state at thread start: every list's head HAK_CHAIN_END, rooms and
 * caps 0, and list[0] (the sampler's countdown) 0 (TLS initial data, copied for each thread).
 * Owner thread only. */
__thread hak_tcache_t hak_tcache __attribute__((tls_model("initial-exec"))) = {
    .list = {[1 ... HAK_NUM_CLASSES] = {.head = HAK_CHAIN_END, .room = 0, .cap = 0}}};
__thread hak_tcache_cold_t hak_tcache_cold __attribute__((tls_model("initial-exec")));

static pthread_key_t exit_key;              /* created once, by the first thread start */
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

static void thread_exit(void *arg);
static void make_exit_key(void) { pthread_key_create(&exit_key, thread_exit); }

static void list_set_cap(hak_list_t *l, uint32_t cap)
{
    int64_t count = (int64_t)l->cap - l->room;
    l->cap = cap;
    l->room = (int32_t)((int64_t)cap - count);
}

/* HAKMEM_DEBUG=1: the list's equations (tcache.h) hold at every slow path of the class. */
static void check_list(unsigned class_idx)
{
    hak_list_t *l = hak_list(class_idx);
    uint32_t count = hak_list_count(class_idx), n = 0;
    for (uint64_t *b = l->head; b != HAK_CHAIN_END && n <= count; b = hak_block_next(b), n++)
        if (b[1] != hak_free_key)
            hak_fatal("invariant broken: a block in the thread list of class %u (%p) does not "
                      "carry the free key",
                      class_idx, (void *)b);
    if (n != count)
        hak_fatal("invariant broken: thread list of class %u: count (cap - room = %u) != "
                  "list length (%s%u)",
                  class_idx, count, n > count ? "more than " : "", n > count ? count : n);
}

void hak_tcache_counts(uint32_t counts[HAK_NUM_CLASSES])
{
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
        counts[c] = hak_list_count(c);
}

static int thread_start(void)
{
    hak_tcache_cold_t *tc = &hak_tcache_cold;
    tc->state = HAK_TC_STARTING;
    hak_init(); /* library init, once: a malloc nested in it is served uncached */
    if (!hak_thread_attach()) {
        tc->state = HAK_TC_UNCACHED;
        return 0;
    }
    pthread_once(&exit_key_once, make_exit_key);
    pthread_setspecific(exit_key, (void *)1); /* arms the destructor; no allocation */
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
        list_set_cap(hak_list(c), hak_list_cap(c, hak_fixed_refill_count(c)));
    tc->state = HAK_TC_LIVE;
    return 1;
}

/* Every thread's extras, in bytes: at most hak_list_grow_budgets_all() budgets in all. */
static uint64_t extra_bytes_all;

/* Did the list's latest frees come back dense? Of the links between its first
 * HAK_DENSE_PROBE blocks (the blocks freed last, the first a grown list would hand out again),
 * at least three quarters join neighbours: blocks at most two block sizes apart. A burst freed
 * in the order it was allocated (or its reverse) is dense; a structure freed in a scrambled
 * order is not, and its blocks are better given back to their spans, whose bitmaps hand them
 * out again in address order (list_rule.h, growth). Walks links of blocks just freed. */
#define HAK_DENSE_PROBE 32u
/* The same test over the first n blocks (n >= 1) of the list at head. */
static int links_dense(unsigned class_idx, const void *head, uint32_t n)
{
    uint64_t near = 2u * hak_class_size(class_idx);
    uint32_t links = 0, dense = 0;
    const uint64_t *b = head;
    for (uint32_t i = 1; i < n; i++, links++) {
        const uint64_t *next = hak_block_next(b);
        uint64_t d = next > b ? (uint64_t)((uintptr_t)next - (uintptr_t)b)
                              : (uint64_t)((uintptr_t)b - (uintptr_t)next);
        dense += d <= near;
        b = next;
    }
    return 4 * dense >= 3 * links;
}

static int list_dense(unsigned class_idx, const hak_list_t *l)
{
    uint32_t n = hak_list_count(class_idx);
    return links_dense(class_idx, l->head, n < HAK_DENSE_PROBE ? n : HAK_DENSE_PROBE);
}

/* A grown list's spill probes up to this many of the blocks it gives back, in classes up to
 * HAK_SPILL_PROBE_MAX_SIZE bytes: above it a 4 KiB page holds three blocks or fewer, so the
 * order a list hands them out in buys little locality, and a big class's neighbours often lie
 * in different spans, which the probe would count as scrambled (phase's 16 KiB class). */
#define HAK_SPILL_PROBE 256u
#define HAK_SPILL_PROBE_MAX_SIZE 1024u

static void list_shrink(unsigned class_idx);
static uint64_t give(unsigned class_idx, uint32_t n, enum hak_give why);

/* The thread's growth budget is spent and class_idx bursts now: the extras of its lists that
 * had no slow path since the last trim pass (what that pass will find idle) go now, with
 * the blocks they hold above their base caps, instead of up to a pass later. Their bursts
 * have moved on (a phase of the program), and their blocks sit idle in the list. */
static void reclaim_idle_extras(unsigned class_idx)
{
    hak_tcache_cold_t *tc = &hak_tcache_cold;
    uint64_t busy = tc->refilled | tc->spilled;
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        if (c == class_idx || !tc->extra[c] || (busy >> c & 1))
            continue;
        uint32_t len = hak_list_count(c), base = hak_list(c)->cap - tc->extra[c];
        if (len > base)
            give(c, len - base, HAK_GIVE_TRIM);
        list_shrink(c);
        tc->taken[c] = 0;
    }
}

/* What the thread's extras may still grow by, in bytes (HAKMEM_TCACHE_GROW_KIB). */
static uint64_t grow_room(void)
{
    uint64_t budget = hak_list_grow_budget(), used = hak_tcache_cold.extra_bytes;
    return budget > used ? budget - used : 0;
}

/* An overflow: grow the extra by what the list rule gives for the blocks the thread's refills
 * brought in since the last overflow (list_rule.h, growth), if every thread's extras together
 * stay within hak_list_grow_budgets_all() budgets. */
static void list_grow(unsigned class_idx, hak_list_t *l)
{
    hak_tcache_cold_t *tc = &hak_tcache_cold;
    uint64_t budget = hak_list_grow_budget();
    /* The step the whole budget would allow; none: not a burst deeper than the list. */
    uint32_t want = hak_list_grow_step(class_idx, tc->taken[class_idx], l->cap, budget);
    if (!want)
        return;
    int dense = list_dense(class_idx, l);
    uint32_t step = hak_list_grow_step(class_idx, tc->taken[class_idx], l->cap, grow_room());
    if (step < want && dense) {
        reclaim_idle_extras(class_idx);
        step = hak_list_grow_step(class_idx, tc->taken[class_idx], l->cap, grow_room());
    }
    if (!step)
        return;
    if (!dense) {
        /* A burst came back scrambled: a structure freed in random order. Growth starts
         * over: the next dense burst only marks the class again. A thread whose dense and
         * scrambled bursts alternate (a structure built, freed in random order, rebuilt,
         * freed in order) would otherwise grow its list on a dense one, and the grown list
         * would take the next scrambled one in whole, with no slow path to send it to the
         * spans, and hand it out scrambled. */
        tc->burst_seen &= ~(1ull << class_idx);
        return;
    }
    /* The first such burst only marks the class: a thread that bursts once (a server's
     * worker on one big request) would keep a grown list's blocks, resident, for as long as
     * it sits idle afterwards. The second burst is the sign of a thread that repeats them. */
    if (!(tc->burst_seen >> class_idx & 1)) {
        tc->burst_seen |= 1ull << class_idx;
        return;
    }
    uint64_t bytes = (uint64_t)step * hak_class_size(class_idx);
    if (__atomic_add_fetch(&extra_bytes_all, bytes, __ATOMIC_RELAXED) >
        hak_list_grow_budgets_all() * budget) {
        __atomic_sub_fetch(&extra_bytes_all, bytes, __ATOMIC_RELAXED);
        return;
    }
    tc->extra[class_idx] += step;
    tc->extra_bytes += bytes;
    list_set_cap(l, l->cap + step);
}

/* Back to the base cap: the list had no use for its extra room, or it is given back whole. */
static void list_shrink(unsigned class_idx)
{
    hak_tcache_cold_t *tc = &hak_tcache_cold;
    uint32_t extra = tc->extra[class_idx];
    if (!extra)
        return;
    hak_list_t *l = hak_list(class_idx);
    uint64_t bytes = (uint64_t)extra * hak_class_size(class_idx);
    list_set_cap(l, l->cap - extra);
    tc->extra_bytes -= bytes;
    __atomic_sub_fetch(&extra_bytes_all, bytes, __ATOMIC_RELAXED);
    tc->extra[class_idx] = 0;
}

/* The fork child has one thread left, the forking one: the other threads' extras are gone
 * with their lists. An atfork child handler (registered by library_start, api.c): it runs in
 * the child of every fork but a bare _Fork from a signal handler (box1_tls/fork.c), and
 * touches nothing of Box 2's. */
void hak_tcache_fork_child(void)
{
    __atomic_store_n(&extra_bytes_all, hak_tcache_cold.extra_bytes, __ATOMIC_RELAXED);
}

uint64_t hak_tcache_extra_bytes_all(void)
{
    return __atomic_load_n(&extra_bytes_all, __ATOMIC_RELAXED);
}

/* mallopt(M_PERTURB): 0, or glibc's perturb byte. Written by mallopt (introspect.c), read
 * once by each cold path below (relaxed atomics). As glibc 2.36 fills only blocks that pass
 * through its arenas, never its tcache hits, hakmem fills only blocks that pass through a
 * cold path: the hit paths neither read it nor pay for it. */
int hak_tcache_perturb;

/* glibc's alloc_perturb: a block a cold path hands out, filled with the byte xor 0xff. */
static void perturb_alloc(void *block, size_t n)
{
    int byte = __atomic_load_n(&hak_tcache_perturb, __ATOMIC_RELAXED);
    if (HAK_UNLIKELY(byte) && block)
        memset(block, (byte ^ 0xff) & 0xff, n);
}

/* glibc's free_perturb, for the blocks of a chain leaving the thread cache: the byte, from
 * byte 16 of each block on (word 0 links the chain, word 1 carries the free key). */
static void perturb_chain(unsigned class_idx, hak_chain_t ch, int byte)
{
    uint32_t size = hak_class_size(class_idx);
    uint64_t *b = ch.head;
    for (uint32_t i = 0; i < ch.count; i++, b = hak_block_next(b))
        memset((char *)b + 16, byte & 0xff, size - 16);
}

/* A thread that does not cache (starting, or past its exit): one block, straight. */
static void *alloc_uncached(unsigned class_idx)
{
    hak_refill_t r;
    hak_refill(class_idx, 0, 0, &r);
    if (!r.chain.count)
        return NULL;
    uint64_t *block = r.chain.head;
    block[1] = 0;
    perturb_alloc(block, hak_class_size(class_idx));
    return block;
}

static void maybe_trim(uint64_t now_ms)
{
    if (HAK_UNLIKELY(now_ms >= hak_tcache_cold.trim_due_ms))
        hak_tcache_trim(now_ms);
}

/* The pop found a bad link: the head block's word 0 was overwritten after its free. */
__attribute__((noreturn, cold)) static void list_corrupt(unsigned class_idx)
{
    const uint64_t *block = hak_list(class_idx)->head;
    hak_fatal("malloc: corrupted free list: the free %u-byte block %p links to %p, which is "
              "not a block (overwritten after its free: a heap overflow from the block before "
              "it, or a write after free)",
              hak_class_size(class_idx), (const void *)block,
              (void *)(uintptr_t)hak_link_decode(block));
}

/* The pop's miss path: the list is empty (its head is HAK_CHAIN_END), or the head block's
 * link is corrupted. */
void *hak_tcache_refill(unsigned class_idx)
{
    if (HAK_UNLIKELY(hak_list(class_idx)->head != HAK_CHAIN_END))
        list_corrupt(class_idx);
    hak_tcache_cold_t *tc = &hak_tcache_cold;
    if (HAK_UNLIKELY(tc->state != HAK_TC_LIVE) && (tc->state != HAK_TC_NEW || !thread_start()))
        return alloc_uncached(class_idx);
    int saved = errno;
    hak_list_t *l = hak_list(class_idx);
    hak_refill_t r;
    hak_refill(class_idx, hak_list_count(class_idx), 1, &r);
    if (HAK_UNLIKELY(!r.chain.count)) {
        /* Out of memory or address space: what this thread caches may be what keeps spans
         * mapped. Give it all back once and try again. */
        if (!hak_tcache_cached_blocks())
            return NULL; /* errno ENOMEM, from Box 2 */
        hak_tcache_drain();
        hak_refill(class_idx, 0, 1, &r);
        if (!r.chain.count)
            return NULL;
    }
    errno = saved;
    hak_chain_prepend(&l->head, r.chain);
    l->room -= (int32_t)r.chain.count;
    list_set_cap(l, hak_list_cap_after(class_idx, r.refill_count, r.cap_refills) +
                        tc->extra[class_idx]);
    tc->taken[class_idx] += r.chain.count;
    tc->refilled |= 1ull << class_idx;
    maybe_trim(r.now_ms);
    if (HAK_UNLIKELY(hak_config.debug))
        check_list(class_idx);
    void *block = hak_pop(class_idx);
    perturb_alloc(block, hak_class_size(class_idx));
    return block;
}

/* Give back the first n blocks (n >= 1) of list class_idx, in chains of at most HAK_GIVE_MAX
 * blocks (backend.h: a bound on Box 2's lock hold per give-back). Returns Box 2's clock. */
static uint64_t give(unsigned class_idx, uint32_t n, enum hak_give why)
{
    hak_list_t *l = hak_list(class_idx);
    uint64_t now = 0;
    int perturb = __atomic_load_n(&hak_tcache_perturb, __ATOMIC_RELAXED);
    while (n) {
        uint32_t len = hak_list_count(class_idx), part = n < HAK_GIVE_MAX ? n : HAK_GIVE_MAX;
        hak_chain_t ch = hak_chain_cut(&l->head, part);
        l->room += (int32_t)part;
        if (HAK_UNLIKELY(perturb))
            perturb_chain(class_idx, ch, perturb);
        now = hak_give(class_idx, ch, len, why);
        n -= part;
    }
    return now;
}

void hak_tcache_overflow(unsigned class_idx)
{
    int saved = errno;
    hak_tcache_cold_t *tc = &hak_tcache_cold;
    hak_list_t *l = hak_list(class_idx);
    if (tc->state == HAK_TC_NEW)
        thread_start(); /* a new thread's first free: the caps are set now */
    uint32_t len = hak_list_count(class_idx), taken = tc->taken[class_idx];
    if (len > l->cap && tc->state == HAK_TC_LIVE) {
        list_grow(class_idx, l); /* a burst's blocks coming back: room for them */
        tc->taken[class_idx] = 0;
    }
    if (len > l->cap) {
        uint32_t n = hak_spill_count(l->cap, len);
        /* A grown list that ran dry since its last overflow (its bursts outgrow it) and whose
         * spill comes back scrambled: the thread frees the structures of this class in a
         * scrambled order after all, and its list would hand them out that way, from blocks
         * freed long before (a long list's old blocks are cold: the spill itself walks them).
         * Growth starts over, as for a scrambled burst (list_grow): the list goes back to its
         * base cap now, its blocks to their spans. */
        uint32_t base = l->cap - tc->extra[class_idx];
        int drop = tc->extra[class_idx] && taken &&
                   hak_class_size(class_idx) <= HAK_SPILL_PROBE_MAX_SIZE &&
                   !links_dense(class_idx, l->head, n < HAK_SPILL_PROBE ? n : HAK_SPILL_PROBE);
        if (drop && len - base > n)
            n = len - base;
        uint64_t now = give(class_idx, n, HAK_GIVE_SPILL);
        if (drop) {
            list_shrink(class_idx);
            tc->burst_seen &= ~(1ull << class_idx);
        }
        if (tc->state == HAK_TC_LIVE) {
            tc->spilled |= 1ull << class_idx;
            maybe_trim(now);
        }
    }
    if (HAK_UNLIKELY(hak_config.debug))
        check_list(class_idx);
    errno = saved;
}

void *hak_tcache_large(size_t size, size_t align, int zero)
{
    if (HAK_UNLIKELY(hak_tcache_cold.state == HAK_TC_NEW))
        thread_start(); /* a thread whose first block is large: Box 2's record of it keeps the
                         * large blocks it frees (box2_refill/large_local.h), and its exit
                         * gives them back */
    void *p = zero ? hak_large_calloc(size) : hak_large_alloc(size, align);
    if (HAK_UNLIKELY(!p) && errno == ENOMEM && hak_tcache_cached_blocks() &&
        !hak_mapping_hopeless(size)) {
        hak_tcache_drain(); /* as for a failed refill: give back once, try again */
        p = zero ? hak_large_calloc(size) : hak_large_alloc(size, align);
    }
    if (!zero)
        perturb_alloc(p, size);
    return p;
}

void hak_tcache_overflow_x16(uintptr_t x16) { hak_tcache_overflow(hak_x16_class(x16)); }

uint32_t hak_tcache_cached_blocks(void)
{
    uint32_t n = 0;
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
        n += hak_list_count(c);
    return n;
}

static void drain_as(enum hak_give why)
{
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        list_shrink(c); /* given back whole: growth starts over */
        uint32_t len = hak_list_count(c);
        if (len)
            give(c, len, why);
    }
    memset(hak_tcache_cold.taken, 0, sizeof hak_tcache_cold.taken);
}

void hak_tcache_drain(void) { drain_as(HAK_GIVE_DRAIN); }

void hak_tcache_trim(uint64_t now_ms)
{
    hak_tcache_cold_t *tc = &hak_tcache_cold;
    uint64_t period = (uint64_t)hak_config.decay_ms / 4;
    tc->trim_due_ms = now_ms + (period < 10 ? 10 : period);
    uint64_t busy = tc->refilled | tc->spilled;
    tc->refilled = tc->spilled = 0;
    if (tc->state != HAK_TC_LIVE)
        return;
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        if (busy >> c & 1)
            continue;
        uint32_t len = hak_list_count(c);
        if (len)
            give(c, len - len / 4, HAK_GIVE_TRIM);
        list_shrink(c); /* its extra room went unused: back to the base cap */
        tc->taken[c] = 0;
    }
}

/* pthread key destructor: give every list back, then run uncached. */
static void thread_exit(void *arg)
{
    (void)arg;
    int saved = errno;
    HAK_VG_ENTER();
    drain_as(HAK_GIVE_EXIT);
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
        list_set_cap(hak_list(c), 0);
    hak_tcache_cold.state = HAK_TC_UNCACHED;
    hak_sampled_thread_exit();
    hak_large_thread_flush();
    hak_thread_detach();
    HAK_VG_LEAVE();
    errno = saved;
}
