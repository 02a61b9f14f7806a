/* box2_refill/large_cache.c - freed large mappings kept for reuse (large_cache.h).
 *
 * Each range sits in a slot and on one list of its state: a small range (below
 * HAK_LARGE_SPLIT_MIN, so 1..31 map pages) on the bin of its exact length, a big one on the
 * state's big list. A bit per non-empty small bin makes a small request's tightest fit one
 * count-trailing-zeros; big requests, merges and the decay scan the big list or the slots.
 */
#include "large_cache.h"

#include <errno.h>
#include <pthread.h>

#include "lock.h"
#include "os.h"
#include "shared_contracts/config.h"
#include "shared_contracts/introspect.h"
#include "shared_contracts/pagemap.h"

#define SLOTS HAK_LARGE_CACHE_SLOTS
#define UNIT ((size_t)1 << HAK_PM_SHIFT) /* ranges are whole, aligned map pages */
#define BINS (HAK_LARGE_SPLIT_MIN / UNIT) /* small bin k holds ranges of k map pages */
#define NO_SLOT 0u                        /* links hold slot index + 1 */

_Static_assert(BINS <= 32, "one bit per small bin in a 32-bit mask");
_Static_assert(SLOTS < 65535, "slot links are 16 bits");

/* Larger mappings are not kept: none is larger unless mallopt(M_MMAP_THRESHOLD) set a bound
 * (relaxed). */
static size_t entry_max = SIZE_MAX;

typedef struct {
    uintptr_t base;
    size_t len;
    uint64_t since_ms; /* when it was last freed, merged or purged */
    uint8_t purged;    /* 1: PURGED, 0: RESIDENT */
    uint8_t in_use;    /* 0: a free slot */
    uint16_t prev, next; /* its list (slot index + 1; NO_SLOT ends it); a free slot's next
                          * links the free slots */
} range_t;

typedef struct {
    uint16_t bin[BINS]; /* small ranges by length in map pages (bin 0 unused) */
    uint16_t big;       /* ranges of HAK_LARGE_SPLIT_MIN and more */
    uint32_t mask;      /* bit k: bin k is not empty */
} lists_t;

/* A range taken out of the slots, to purge (and keep as PURGED) or to unmap, lock released. */
typedef struct {
    uintptr_t base;
    size_t len;
    int purge;
} job_t;

/* The jobs one hold of cache_lock queues, at most JOBS_MAX; a caller with more to do runs
 * them and queues again. They live on the stack of whoever frees a large block or runs the
 * decay tick in a slow path, and every stack page a thread writes stays resident: one job per
 * slot was 3 KiB of it (tests/stress/test_stress_stack.c). */
#define JOBS_MAX 16u
typedef struct {
    unsigned n;
    job_t job[JOBS_MAX];
} jobs_t;

/* Slots, lists and byte sums: under cache_lock (all_bytes is also read relaxed). */
static pthread_mutex_t cache_lock = HAK_LOCK_INITIALIZER;
static range_t slots[SLOTS];
static lists_t lists[2]; /* [purged] */
static unsigned used, touched; /* slots in use; slots ever used ([0, touched)) */
static uint16_t free_slots;    /* freed slots, linked through next */
static size_t resident, purged, all_bytes;
/* The peak of live large bytes: peak_now since the last roll (raised by relaxed CAS from any
 * thread, swapped at a roll), the periods before it in peak_past, newest first; rolled_ms and
 * peak_past under cache_lock; target_now under it, read relaxed by the totals. */
static size_t peak_now, peak_past[HAK_LARGE_PEAK_WINDOWS - 1], target_now = HAK_LARGE_CACHE_FLOOR;
static uint64_t rolled_ms;
/* Reuses in the period since the last roll, and the highest live bytes + reuse distance
 * among the first and every REUSE_SAMPLE-th after it (hak_large_cache_get: the distance walks
 * the slots, and a program may reuse large blocks a million times a second; a prime, so that
 * a program cycling through a power of two of buffers does not show the same one each time);
 * under cache_lock. They count as a peak once HAK_LARGE_REUSE_STEADY came in one period. */
#define REUSE_SAMPLE 7u
static size_t reuse_peak;
static unsigned reuses;
/* The steady periods' reuse peaks before the current one, newest first (0: a period that was
 * not steady); under cache_lock. Kept apart from peak_past, so that the bound on them
 * (target_for) follows the live bytes alone. */
static size_t reuse_past[HAK_LARGE_PEAK_WINDOWS - 1];
/* Statistics: relaxed atomics. */
static uint64_t hits, grown, misses, purges, unmaps;
static size_t live_now; /* relaxed atomics: hak_large_cache_live_* */

static size_t cap_bytes(void) { return (size_t)hak_config.large_cache_mib << 20; }

static void count(uint64_t *c) { __atomic_fetch_add(c, 1, __ATOMIC_RELAXED); }

static range_t *at(uint16_t link) { return &slots[link - 1]; }

static uint16_t *head_of(const range_t *r)
{
    lists_t *l = &lists[r->purged];
    return r->len < HAK_LARGE_SPLIT_MIN ? &l->bin[r->len / UNIT] : &l->big;
}

static void link_range(range_t *r)
{
    uint16_t *h = head_of(r), self = (uint16_t)(r - slots + 1);
    r->prev = NO_SLOT;
    r->next = *h;
    if (*h != NO_SLOT)
        at(*h)->prev = self;
    *h = self;
    if (r->len < HAK_LARGE_SPLIT_MIN)
        lists[r->purged].mask |= 1u << (r->len / UNIT);
}

static void unlink_range(range_t *r)
{
    uint16_t *h = head_of(r);
    if (r->prev != NO_SLOT)
        at(r->prev)->next = r->next;
    else
        *h = r->next;
    if (r->next != NO_SLOT)
        at(r->next)->prev = r->prev;
    if (r->len < HAK_LARGE_SPLIT_MIN && *h == NO_SLOT)
        lists[r->purged].mask &= ~(1u << (r->len / UNIT));
}

static void sums_changed(void) { __atomic_store_n(&all_bytes, resident + purged, __ATOMIC_RELAXED); }

/* Caller makes sure used < SLOTS. */
static void add_range(uintptr_t base, size_t len, uint64_t since_ms, int is_purged)
{
    range_t *r;
    if (free_slots != NO_SLOT) {
        r = at(free_slots);
        free_slots = r->next;
    } else {
        r = &slots[touched++];
    }
    *r = (range_t){base, len, since_ms, (uint8_t)is_purged, 1, NO_SLOT, NO_SLOT};
    link_range(r);
    used++;
    *(is_purged ? &purged : &resident) += len;
    sums_changed();
}

static range_t remove_range(range_t *r)
{
    range_t copy = *r;
    unlink_range(r);
    *(r->purged ? &purged : &resident) -= r->len;
    r->in_use = 0;
    r->next = free_slots;
    free_slots = (uint16_t)(r - slots + 1);
    used--;
    sums_changed();
    return copy;
}

/* A range's length changes in place: it moves to the list of its new length. */
static void set_len(range_t *r, size_t len)
{
    unlink_range(r);
    *(r->purged ? &purged : &resident) -= r->len - len;
    r->len = len;
    link_range(r);
    sums_changed();
}

#define FOR_EACH_SLOT(r) for (range_t *r = slots; r < slots + touched; r++) if (r->in_use)
#define FOR_EACH_IN(r, first) for (range_t *r = (first) ? at(first) : NULL; r; r = r->next ? at(r->next) : NULL)

/* Absorb the ranges in state is_purged that touch [*base, *base + *len) when either is big. */
static void merge_neighbours(uintptr_t *base, size_t *len, int is_purged)
{
    for (;;) {
        range_t *hit = NULL;
        if (*len >= HAK_LARGE_SPLIT_MIN) {
            FOR_EACH_SLOT(r)
            if (r->purged == is_purged && (r->base + r->len == *base || *base + *len == r->base)) {
                hit = r;
                break;
            }
        } else {
            FOR_EACH_IN(r, lists[is_purged].big)
            if (r->base + r->len == *base || *base + *len == r->base) {
                hit = r;
                break;
            }
        }
        if (!hit)
            return;
        if (hit->base < *base)
            *base = hit->base;
        *len += hit->len;
        remove_range(hit);
    }
}

/* The oldest range in state is_purged, or NULL. */
static range_t *oldest_range(int is_purged)
{
    range_t *old = NULL;
    FOR_EACH_SLOT(r)
    if (r->purged == is_purged && (!old || r->since_ms < old->since_ms))
        old = r;
    return old;
}

/* Queue purges of `excess` resident bytes (rounded up to map pages), oldest ranges first,
 * each from its end (requests cut from the front): the purged piece leaves its slot. Stops
 * when j holds `limit` jobs; what is left stays resident. Under cache_lock. */
static void queue_purges(size_t excess, jobs_t *j, unsigned limit)
{
    excess = (excess + UNIT - 1) & ~(UNIT - 1);
    while (excess && j->n < limit) {
        range_t *r = oldest_range(0);
        if (!r)
            return;
        if (r->len > excess) { /* the front stays resident */
            j->job[j->n++] = (job_t){r->base + r->len - excess, excess, 1};
            set_len(r, r->len - excess);
            return;
        }
        excess -= r->len;
        range_t gone = remove_range(r);
        j->job[j->n++] = (job_t){gone.base, gone.len, 1};
    }
}

/* Keep a freshly purged range, merged with the purged ranges that touch it (*j grows); 0 if
 * no slot is free (the caller unmaps *j). Under cache_lock. */
static int keep_purged(job_t *j, uint64_t now_ms)
{
    merge_neighbours(&j->base, &j->len, 1);
    if (used == SLOTS)
        return 0;
    add_range(j->base, j->len, now_ms, 1);
    return 1;
}

/* Do the queued work with no lock held; purged ranges go back into the slots. Returns the
 * bytes purged or unmapped. */
static size_t run_jobs(jobs_t *j, uint64_t now_ms)
{
    job_t *jobs = j->job;
    unsigned n = j->n;
    size_t done = 0;
    int any_purge = 0;
    for (unsigned i = 0; i < n; i++) {
        done += jobs[i].len;
        if (jobs[i].purge) {
            hak_os.purge((void *)jobs[i].base, jobs[i].len);
            count(&purges);
            any_purge = 1;
        } else {
            hak_os.unmap((void *)jobs[i].base, jobs[i].len);
            count(&unmaps);
        }
    }
    if (!any_purge)
        return done;
    unsigned drop = 0;
    hak_lock(&cache_lock);
    for (unsigned i = 0; i < n; i++)
        if (jobs[i].purge && !keep_purged(&jobs[i], now_ms))
            jobs[drop++] = jobs[i];
    hak_unlock(&cache_lock);
    for (unsigned i = 0; i < drop; i++) {
        hak_os.unmap((void *)jobs[i].base, jobs[i].len);
        count(&unmaps);
    }
    return done;
}

static job_t job_for(range_t *r, int purge)
{
    range_t gone = remove_range(r);
    return (job_t){gone.base, gone.len, purge};
}

/* The ranges threads keep (large_local.h): their count in the low 16 bits, their length in
 * 64 KiB map pages above; relaxed atomics (hak_large_cache_held). */
static uint64_t held_now;

static size_t held_len_of(uint64_t h) { return (size_t)(h >> 16) << HAK_PM_SHIFT; }

size_t hak_large_cache_held_bytes(void)
{
    return held_len_of(__atomic_load_n(&held_now, __ATOMIC_RELAXED));
}

size_t hak_large_cache_held_room(void)
{
    size_t half = __atomic_load_n(&target_now, __ATOMIC_RELAXED) / 2;
    size_t held = hak_large_cache_held_bytes();
    return half > held ? half - held : 0;
}

void hak_large_cache_held(size_t len, int sign)
{
    uint64_t d = ((uint64_t)(len >> HAK_PM_SHIFT) << 16) + 1;
    if (sign > 0)
        __atomic_fetch_add(&held_now, d, __ATOMIC_RELAXED);
    else
        __atomic_fetch_sub(&held_now, d, __ATOMIC_RELAXED);
}

/* What the recent peak, plus an eighth, leaves beside the live bytes, within [floor, cap].
 * The peak is the live bytes' or, if higher, steady reuse's, but that one counts only up to
 * twice the live bytes' peak (or the floor): a reuse distance counts resident ranges, and
 * unbounded, a cache that kept more would measure more and keep more again (a program whose
 * misses keep mapping ranges of new sizes would ratchet it up). Under cache_lock. */
static size_t target_for(size_t live)
{
    size_t peak = __atomic_load_n(&peak_now, __ATOMIC_RELAXED);
    size_t reuse = reuses >= HAK_LARGE_REUSE_STEADY ? reuse_peak : 0;
    for (unsigned k = 0; k < HAK_LARGE_PEAK_WINDOWS - 1; k++) {
        peak = peak_past[k] > peak ? peak_past[k] : peak;
        reuse = reuse_past[k] > reuse ? reuse_past[k] : reuse;
    }
    size_t bound = 2 * (peak > HAK_LARGE_CACHE_FLOOR ? peak : HAK_LARGE_CACHE_FLOOR);
    reuse = reuse < bound ? reuse : bound;
    peak = reuse > peak ? reuse : peak;
    peak = live > peak ? live : peak;
    size_t want = peak + peak / 8 - live, max = cap_bytes();
    want = want < HAK_LARGE_CACHE_FLOOR ? HAK_LARGE_CACHE_FLOOR : want;
    return want < max ? want : max;
}

/* Purge the resident bytes past the target for `live` live bytes, oldest first, JOBS_MAX
 * ranges at a time. */
static size_t purge_past_target(size_t live, uint64_t now_ms)
{
    size_t done = 0;
    jobs_t j;
    do {
        j.n = 0;
        hak_lock(&cache_lock);
        size_t target = target_for(live);
        if (resident > target)
            queue_purges(resident - target, &j, JOBS_MAX);
        hak_unlock(&cache_lock);
        done += run_jobs(&j, now_ms);
    } while (j.n == JOBS_MAX);
    return done;
}

int hak_large_cache_put(uintptr_t base, size_t len, uint64_t now_ms)
{
    size_t max = cap_bytes();
    if (len > __atomic_load_n(&entry_max, __ATOMIC_RELAXED) || len > max)
        return 0;
    jobs_t j;
    j.n = 0; /* (the jobs themselves are not zeroed: written before they are read) */
    int more = 0;
    hak_lock(&cache_lock);
    /* the budget: the target, within the cap */
    max = target_for(__atomic_load_n(&live_now, __ATOMIC_RELAXED));
    __atomic_store_n(&target_now, max, __ATOMIC_RELAXED);
    merge_neighbours(&base, &len, 0);
    if (len > max) { /* merged past the budget: it is purged whole */
        j.job[j.n++] = (job_t){base, len, 1};
    } else {
        if (resident + len > max) /* one job kept for the unmap below */
            queue_purges(resident + len - max, &j, JOBS_MAX - 1);
        more = j.n == JOBS_MAX - 1;
        if (used == SLOTS) { /* a purged range goes first: unmapping it frees no pages */
            range_t *old = oldest_range(1);
            j.job[j.n++] = job_for(old ? old : oldest_range(0), 0);
        }
        add_range(base, len, now_ms, 0);
    }
    hak_unlock(&cache_lock);
    if (j.n)
        run_jobs(&j, now_ms);
    if (more) /* the budget holds at this free all the same */
        purge_past_target(__atomic_load_n(&live_now, __ATOMIC_RELAXED), now_ms);
    return 1;
}

static uintptr_t align_up(uintptr_t a, size_t align)
{
    return (a + align - 1) & ~(uintptr_t)(align - 1);
}

/* The tightest range in state is_purged that serves the request (see hak_large_cache_get),
 * or NULL. A small request takes a range whole: at most `limit` long (max_len, when not 0 and
 * shorter), starting aligned. */
static range_t *best_fit(size_t need, size_t align, int small, int is_purged, size_t max_len)
{
    lists_t *l = &lists[is_purged];
    range_t *best = NULL;
    if (small) {
        size_t limit = need * 4 > need + (1u << 20) ? need * 4 : need + (1u << 20);
        if (max_len && limit > max_len)
            limit = max_len;
        size_t last = limit / UNIT < BINS - 1 ? limit / UNIT : BINS - 1;
        uint32_t mask = l->mask & ~((1u << (need / UNIT)) - 1) & (uint32_t)((2ull << last) - 1);
        for (; mask; mask &= mask - 1) {
            FOR_EACH_IN(r, l->bin[__builtin_ctz(mask)])
            if (align_up(r->base, align) == r->base)
                return r;
        }
        FOR_EACH_IN(r, l->big)
        if (r->len <= limit && align_up(r->base, align) == r->base && (!best || r->len < best->len))
            best = r;
        return best;
    }
    FOR_EACH_IN(r, l->big)
    if (align_up(r->base, align) + need <= r->base + r->len &&
        (!best || r->len < best->len || (r->len == best->len && r->base < best->base)))
        best = r;
    return best;
}

/* Cut the request out of r: a small one takes the range whole; a big one leaves the head
 * before an aligned start and the rest after it cached. */
static void cut(range_t *rp, size_t need, size_t align, int small, hak_large_got_t *got)
{
    range_t r = remove_range(rp);
    uintptr_t start = align_up(r.base, align);
    got->base = start;
    got->len = r.len;
    if (!small) {
        got->len = need;
        if (start > r.base)
            add_range(r.base, start - r.base, r.since_ms, r.purged);
        uintptr_t end = start + need, r_end = r.base + r.len;
        if (end < r_end) {
            if (used < SLOTS)
                add_range(end, r_end - end, r.since_ms, r.purged);
            else /* no slot for the rest: the block keeps it (usable size grows) */
                got->len = r_end - start;
        }
    }
    got->dirty = r.purged ? 0 : got->len;
}

static range_t *purged_ending_at(uintptr_t end)
{
    FOR_EACH_SLOT(r)
    if (r->purged && r->base + r->len == end)
        return r;
    return NULL;
}

static range_t *purged_starting_at(uintptr_t base)
{
    FOR_EACH_SLOT(r)
    if (r->purged && r->base == base)
        return r;
    return NULL;
}

/* Step 2: the resident range with the most bytes that the purged ranges touching it extend to
 * `need` (map-page alignment only); 0 if none. */
static int take_run(size_t need, hak_large_got_t *got)
{
    range_t *core = NULL, *before = NULL, *after = NULL;
    FOR_EACH_SLOT(d)
    {
        if (d->purged || d->len >= need || (core && d->len <= core->len))
            continue;
        range_t *b = purged_ending_at(d->base), *a = purged_starting_at(d->base + d->len);
        if ((b ? b->len : 0) + (a ? a->len : 0) >= need - d->len) {
            core = d;
            before = b;
            after = a;
        }
    }
    if (!core)
        return 0;
    range_t d = remove_range(core);
    range_t pb = before ? remove_range(before) : (range_t){0};
    range_t pa = after ? remove_range(after) : (range_t){0};
    size_t gap = need - d.len;
    size_t from_after = pa.len < gap ? pa.len : gap, from_before = gap - from_after;
    if (pb.len > from_before)
        add_range(pb.base, pb.len - from_before, pb.since_ms, 1);
    if (pa.len > from_after)
        add_range(pa.base + from_after, pa.len - from_after, pa.since_ms, 1);
    got->base = d.base - from_before;
    got->len = need;
    got->dirty = d.base + d.len - got->base;
    return 1;
}

/* The bytes of the other resident ranges freed no earlier than resident range r (in the
 * clock's milliseconds), plus the `taken` bytes of r a request gets: what the cache had to
 * hold for that reuse, since it purges the oldest bytes first. Under cache_lock. */
static size_t reuse_distance(const range_t *r, size_t taken)
{
    size_t d = taken;
    FOR_EACH_SLOT(o)
    if (!o->purged && o != r && o->since_ms >= r->since_ms)
        d += o->len;
    return d;
}

/* for_block: a block's malloc (steps 1-3), whose reuse counts toward the budget; else
 * realloc's growth by copying (step 1 alone), which does not hold the cache up. */
static int get(size_t need, size_t align, hak_large_got_t *got, int for_block)
{
    int small = need < HAK_LARGE_SPLIT_MIN, ok = 1;
    hak_lock(&cache_lock);
    range_t *best = best_fit(need, align, small, 0, for_block ? 0 : need + need / 8);
    if (best) { /* a reuse: its distance may raise the peak (target_for) */
        if (for_block && reuses++ % REUSE_SAMPLE == 0) {
            size_t demand = reuse_distance(best, small ? best->len : need) +
                            __atomic_load_n(&live_now, __ATOMIC_RELAXED);
            reuse_peak = demand > reuse_peak ? demand : reuse_peak;
        }
        cut(best, need, align, small, got);
    } else if (!purged || !for_block) {
        ok = 0;
    } else if (small || align > UNIT || !take_run(need, got)) {
        best = best_fit(need, align, small, 1, 0);
        if (best)
            cut(best, need, align, small, got);
        else
            ok = 0;
    }
    hak_unlock(&cache_lock);
    if (ok)
        count(&hits);
    return ok;
}

int hak_large_cache_get(size_t need, size_t align, hak_large_got_t *got)
{
    return get(need, align, got, 1);
}

int hak_large_cache_get_resident(size_t need, size_t align, hak_large_got_t *got)
{
    return get(need, align, got, 0);
}

/* The small bins first, shortest length up (a small range is cut here, unlike for
 * hak_large_cache_get), then the big list by best_fit's rule. */
int hak_large_cache_take_resident(size_t need, size_t align, hak_large_got_t *got)
{
    range_t *best = NULL;
    hak_lock(&cache_lock);
    lists_t *l = &lists[0];
    uint32_t mask = need / UNIT < BINS ? l->mask & ~((1u << (need / UNIT)) - 1) : 0;
    for (; mask && !best; mask &= mask - 1)
        FOR_EACH_IN(r, l->bin[__builtin_ctz(mask)])
        if (align_up(r->base, align) + need <= r->base + r->len) {
            best = r;
            break;
        }
    if (!best)
        best = best_fit(need, align, 0, 0, 0);
    if (best)
        cut(best, need, align, 0, got);
    hak_unlock(&cache_lock);
    if (best)
        count(&hits);
    return best != NULL;
}

size_t hak_large_cache_take_at(uintptr_t addr, size_t len, size_t want)
{
    size_t taken = 0;
    hak_lock(&cache_lock);
    FOR_EACH_SLOT(rp)
    if (rp->base == addr) {
        if (rp->len >= len) {
            range_t r = remove_range(rp);
            taken = r.len < want ? r.len : want;
            if (r.len > taken)
                add_range(addr + taken, r.len - taken, r.since_ms, r.purged);
        }
        break;
    }
    hak_unlock(&cache_lock);
    if (taken)
        count(&hits);
    return taken;
}

uintptr_t hak_large_cache_take_largest(size_t need, size_t align, size_t *len_out)
{
    uintptr_t got = 0;
    hak_lock(&cache_lock);
    range_t *best = NULL;
    FOR_EACH_SLOT(r)
    if (!r->purged && r->len < need && r->len >= HAK_LARGE_GROW_MIN &&
        (r->base & (align - 1)) == 0 && (!best || r->len > best->len))
        best = r;
    if (best) {
        range_t r = remove_range(best);
        got = r.base;
        *len_out = r.len;
    }
    hak_unlock(&cache_lock);
    return got;
}

void hak_large_cache_note_live(size_t live_bytes)
{
    size_t p = __atomic_load_n(&peak_now, __ATOMIC_RELAXED);
    while (live_bytes > p && !__atomic_compare_exchange_n(&peak_now, &p, live_bytes, 1,
                                                          __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

void hak_large_cache_live_add(size_t bytes)
{
    hak_large_cache_note_live(__atomic_add_fetch(&live_now, bytes, __ATOMIC_RELAXED));
}

void hak_large_cache_live_sub(size_t bytes)
{
    __atomic_fetch_sub(&live_now, bytes, __ATOMIC_RELAXED);
}

size_t hak_large_cache_live_bytes(void) { return __atomic_load_n(&live_now, __ATOMIC_RELAXED); }

void hak_large_cache_note_miss(int grew) { count(grew ? &grown : &misses); }

/* Queue an unmap of the ranges idle for idle_ms or more, until j is full. Under cache_lock. */
static void queue_idle(uint64_t now_ms, uint64_t idle_ms, jobs_t *j)
{
    FOR_EACH_SLOT(r)
    if (j->n < JOBS_MAX && now_ms - r->since_ms >= idle_ms)
        j->job[j->n++] = job_for(r, 0);
}

size_t hak_large_cache_decay(uint64_t now_ms, uint64_t decay_ms, size_t live_bytes)
{
    uint64_t period = decay_ms / 4 < 10 ? 10 : decay_ms / 4;
    jobs_t j;
    j.n = 0; /* (the jobs themselves are not zeroed: written before they are read) */
    hak_lock(&cache_lock);
    if (now_ms - rolled_ms >= period) {
        for (unsigned k = HAK_LARGE_PEAK_WINDOWS - 2; k > 0; k--) {
            peak_past[k] = peak_past[k - 1];
            reuse_past[k] = reuse_past[k - 1];
        }
        peak_past[0] = __atomic_exchange_n(&peak_now, live_bytes, __ATOMIC_RELAXED);
        reuse_past[0] = reuses >= HAK_LARGE_REUSE_STEADY ? reuse_peak : 0;
        reuse_peak = 0;
        reuses = 0;
        rolled_ms = now_ms;
    }
    queue_idle(now_ms, decay_ms, &j);
    size_t target = target_for(live_bytes);
    __atomic_store_n(&target_now, target, __ATOMIC_RELAXED);
    if (resident > target)
        queue_purges(resident - target, &j, JOBS_MAX);
    hak_unlock(&cache_lock);
    size_t done = run_jobs(&j, now_ms);
    if (j.n == JOBS_MAX) /* more than one hold's worth: the rest, JOBS_MAX at a time */
        done += hak_large_cache_unmap_idle(now_ms, decay_ms) +
                purge_past_target(live_bytes, now_ms);
    return done;
}

size_t hak_large_cache_unmap_idle(uint64_t now_ms, uint64_t idle_ms)
{
    size_t done = 0;
    jobs_t j;
    do {
        j.n = 0;
        hak_lock(&cache_lock);
        queue_idle(now_ms, idle_ms, &j);
        hak_unlock(&cache_lock);
        done += run_jobs(&j, now_ms);
    } while (j.n == JOBS_MAX);
    return done;
}

size_t hak_large_cache_bytes(void) { return __atomic_load_n(&all_bytes, __ATOMIC_RELAXED); }

void hak_large_cache_totals(hak_large_cache_totals_t *t)
{
    hak_lock(&cache_lock);
    t->entries = used;
    t->resident = resident;
    t->purged = purged;
    hak_unlock(&cache_lock);
    uint64_t h = __atomic_load_n(&held_now, __ATOMIC_RELAXED);
    t->held = h & 0xffff;
    t->held_bytes = held_len_of(h);
    t->target = __atomic_load_n(&target_now, __ATOMIC_RELAXED);
    t->hits = __atomic_load_n(&hits, __ATOMIC_RELAXED);
    t->grown = __atomic_load_n(&grown, __ATOMIC_RELAXED);
    t->misses = __atomic_load_n(&misses, __ATOMIC_RELAXED);
    t->purges = __atomic_load_n(&purges, __ATOMIC_RELAXED);
    t->unmaps = __atomic_load_n(&unmaps, __ATOMIC_RELAXED);
}

size_t hak_large_cache_entry_max(void) { return __atomic_load_n(&entry_max, __ATOMIC_RELAXED); }

void hak_large_cache_set_entry_max(size_t max)
{
    int saved = errno;
    if (max < __atomic_exchange_n(&entry_max, max, __ATOMIC_RELAXED))
        hak_large_cache_unmap_idle(hak_now_ms(), 0);
    errno = saved;
}

void hak_large_cache_set_budget_mib(int64_t mib)
{
    int saved = errno;
    if (mib < __atomic_exchange_n(&hak_config.large_cache_mib, mib, __ATOMIC_RELAXED))
        hak_large_cache_unmap_idle(hak_now_ms(), 0);
    errno = saved;
}

void hak_large_cache_fork_lock(void) { pthread_mutex_lock(&cache_lock); }
void hak_large_cache_fork_unlock(void) { pthread_mutex_unlock(&cache_lock); }
void hak_large_cache_fork_child(void) { hak_lock_reinit(&cache_lock); }
