/* box2_refill/sample_store.c - the sampled-block store: memory for the allocations Box 1's
 * sampler picks (shared_contracts/backend.h, hak_sampled_alloc).
 *
 * Why: a sampled block must reach free's cold path, so that the profiler hears of its free
 * while free's hit path pays nothing. A block whose page map tag is not a small class fails
 * the hit path's block-start test (pagemap.h) and goes to Box 1's hak_free_unusual.
 *
 * Layout: the store is a set of chunks of STORE_SLOTS_PER_CHUNK slots; a slot is one 64 KiB
 * map page (HAK_PM_SHIFT), tagged HAK_PM_SAMPLED in the page map for as long as the process
 * lives (chunks are never unmapped). A slot holds one block of at most HAK_MAX_CLASS_SIZE
 * bytes and alignment at most 4096: its header (slot_t) at the slot's start, the block at
 * slot + lead (lead = max(64, align)), the rest of the slot untouched (never resident).
 * Larger or more aligned sampled requests are large blocks (large.c) whose header carries
 * the note. Guarded sampling (hak_guarded_alloc, below) lays a slot out with guard pages
 * around the block's page.
 *
 * Invariants: a slot is live (magic SLOT_LIVE, user == slot + lead, note and size as
 * hak_sampled_alloc was given them) or on a free stack (magic SLOT_FREE, or 0 when it was
 * never used: its pages were never touched).
 *
 * Synchronisation: no lock, so a free from a signal handler that interrupted the store
 * cannot wait for anything. The free slots form STORE_SHARDS Treiber stacks of slot indices
 * (a thread pushes onto and pops from its arena's first, then tries the others); each head
 * packs a 32-bit version with index + 1 (0: empty) and changes by CAS, the version against
 * ABA. The links live in a small array per chunk (links), not in the slots; a link is read
 * with a relaxed atomic load (its slot may have been taken meanwhile: the CAS then fails).
 * In front of them each thread keeps up to STASH free slots of its own (stash, TLS): a
 * sampled allocation takes from it and a sampled free puts back to it with plain loads and
 * stores, no locked instruction (a CAS drains the store buffer, which costs a program that
 * writes a lot more than the CAS itself). The stash is busy while its owner changes it: a
 * signal handler that interrupts that uses the shared stacks. Only a thread with a record of
 * its own (thread.h) keeps a stash: its exit (hak_sampled_thread_exit, from Box 1's exit
 * destructor) pushes the stash onto the shared stacks; a fork child loses the
 * stashes of the threads that do not exist in it (address space only, at most STASH slots a
 * thread). Growing maps a whole chunk: a grower reserves a chunk
 * index by fetch-add, maps and tags it, publishes its address with a release store, then
 * pushes its slots; two threads may grow at once (each keeps its chunk). A fork copies the
 * stack as it is; a chunk reserved but not yet published is lost in the child, which costs
 * address space only.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "large.h"
#include "os.h"
#include "pagemap_write.h"
#include "sample_store.h"
#include "thread.h"
#include "shared_contracts/backend.h"
#include "shared_contracts/diag.h"
#include "shared_contracts/pagemap.h"

#define SLOT_BYTES ((size_t)1 << HAK_PM_SHIFT)
#define STORE_SLOTS_PER_CHUNK 256u /* 16 MiB of address space a chunk */
#define STORE_CHUNKS_MAX 4096u     /* at most 1 M slots (64 GiB of address space) */
#define SLOT_LIVE 0x6576696c706d6173ull /* "samplive" */
#define SLOT_FREE 0x65657266706d6173ull /* "sampfree" */
#define SLOT_QUARANTINED 0x6e7571706d6173ull /* "sampqun" */
#define PAGE 4096u
#define GUARD_SHARD STORE_SHARDS /* the free stack of guarded slots */
#define QUARANTINE HAK_GUARD_QUARANTINE
#define SLOT_MAX_ALIGN 4096u

typedef struct slot {
    uint64_t magic; /* SLOT_LIVE, SLOT_FREE, SLOT_QUARANTINED, or 0 in a slot never used */
    uint32_t guarded; /* 1: the guarded layout (hak_guarded_alloc), for good */
    uint32_t index;   /* the slot's own index */
    uint64_t lead;  /* user - slot */
    uintptr_t user; /* the block, while live */
    uintptr_t note; /* Box 1's word */
    size_t size;    /* the size asked for (0 in a slot never used) */
    uint64_t pad[2];
} slot_t;
_Static_assert(sizeof(slot_t) == 64, "the header fits below the smallest lead");

#define STORE_SHARDS 16u /* free stacks; a thread uses its arena's first (thread.h) */

static char *chunks[STORE_CHUNKS_MAX]; /* published with a release store, read with acquire */
/* Per chunk, the free stacks' links: links[c][i] is the next free slot's index + 1 (0: none)
 * after slot i of chunk c, kept apart from the slots so that a slot's pages are touched only
 * when a block is placed in it. Mapped with the chunk, published before it. */
static uint32_t *links[STORE_CHUNKS_MAX];
static uint32_t chunks_reserved;         /* fetch-add by growers */
/* The free stacks, each version << 32 | (index + 1), changed by CAS; on lines of their own. */
static struct {
    uint64_t head;
} __attribute__((aligned(64))) free_heads[STORE_SHARDS + 1]; /* + the guarded slots' */

#define STASH 16u /* free slots a thread keeps in front of the shared stacks */

/* The calling thread's free slots (index + 1), owner only; busy while it changes them, off
 * once the thread is past its exit. */
static __thread struct {
    uint32_t n;
    uint8_t busy, off;
    uint32_t slot[STASH];
} stash __attribute__((tls_model("initial-exec")));

/* Claim the stash against a signal handler; 0 when it is busy (we are that handler), off,
 * or the thread has no record of its own (it never started caching, so no exit destructor
 * would give its stash back: thread.h). */
static int stash_enter(void)
{
    if (stash.busy || stash.off || !hak_thread_self()->live)
        return 0;
    stash.busy = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    return 1;
}

static void stash_leave(void)
{
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    stash.busy = 0;
}

/* A free slot's index + 1 from the stash, or 0. */
static uint32_t stash_take(void)
{
    uint32_t top = 0;
    if (stash_enter()) {
        if (stash.n)
            top = stash.slot[--stash.n];
        stash_leave();
    }
    return top;
}

/* Keep a free slot in the stash; 0 when it is full, busy or off. */
static int stash_put(uint32_t index)
{
    int kept = 0;
    if (stash_enter()) {
        if (stash.n < STASH) {
            stash.slot[stash.n++] = index + 1u;
            kept = 1;
        }
        stash_leave();
    }
    return kept;
}

/* The calling thread's stack: threads of different arenas neither bounce one line nor
 * share slots (a slot freed by a thread comes back warm to that thread). */
static unsigned my_shard(void) { return hak_thread_self()->arena % STORE_SHARDS; }

static uint32_t *link_of(uint32_t index)
{
    uint32_t *l = __atomic_load_n(&links[index / STORE_SLOTS_PER_CHUNK], __ATOMIC_ACQUIRE);
    return &l[index % STORE_SLOTS_PER_CHUNK];
}

static slot_t *slot_at(uint32_t index)
{
    char *chunk = __atomic_load_n(&chunks[index / STORE_SLOTS_PER_CHUNK], __ATOMIC_ACQUIRE);
    return (slot_t *)(chunk + (size_t)(index % STORE_SLOTS_PER_CHUNK) * SLOT_BYTES);
}

static void push_free(unsigned shard, uint32_t index)
{
    uint64_t *top = &free_heads[shard].head;
    uint32_t *link = link_of(index);
    uint64_t head = __atomic_load_n(top, __ATOMIC_RELAXED), next;
    do {
        __atomic_store_n(link, (uint32_t)head, __ATOMIC_RELAXED);
        next = ((head >> 32) + 1) << 32 | (index + 1u);
    } while (!__atomic_compare_exchange_n(top, &head, next, 1, __ATOMIC_RELEASE,
                                          __ATOMIC_RELAXED));
}

/* A free slot's index + 1 from one stack, or 0 when it is empty. */
static uint32_t pop_shard(unsigned shard)
{
    uint64_t *top = &free_heads[shard].head;
    uint64_t head = __atomic_load_n(top, __ATOMIC_ACQUIRE), next;
    do {
        uint32_t first = (uint32_t)head;
        if (!first)
            return 0;
        uint32_t after = __atomic_load_n(link_of(first - 1u), __ATOMIC_RELAXED);
        next = ((head >> 32) + 1) << 32 | after;
    } while (!__atomic_compare_exchange_n(top, &head, next, 1, __ATOMIC_ACQUIRE,
                                          __ATOMIC_ACQUIRE));
    return (uint32_t)head;
}

/* From the thread's own stack, else from the others. */
static uint32_t pop_free(unsigned shard)
{
    for (unsigned i = 0; i < STORE_SHARDS; i++) {
        uint32_t got = pop_shard((shard + i) % STORE_SHARDS);
        if (got)
            return got;
    }
    return 0;
}

/* Map one more chunk, tag its map pages and push its slots onto `shard`. 0 on ENOMEM. */
static int grow(unsigned shard)
{
    uint32_t c = __atomic_fetch_add(&chunks_reserved, 1, __ATOMIC_RELAXED);
    if (c >= STORE_CHUNKS_MAX) {
        errno = ENOMEM;
        return 0;
    }
    size_t len = (size_t)STORE_SLOTS_PER_CHUNK * SLOT_BYTES;
    char *chunk = hak_os_map_aligned(len, SLOT_BYTES);
    if (!chunk)
        return 0;
    if (hak_pagemap_set_range((uintptr_t)chunk, len, hak_pm_entry(HAK_PM_SAMPLED, NULL))) {
        hak_os.unmap(chunk, len);
        errno = ENOMEM;
        return 0;
    }
    uint32_t *l = hak_os.map(STORE_SLOTS_PER_CHUNK * sizeof(uint32_t));
    if (!l) {
        hak_pagemap_set_range((uintptr_t)chunk, len, 0);
        hak_os.unmap(chunk, len);
        errno = ENOMEM;
        return 0;
    }
    __atomic_store_n(&links[c], l, __ATOMIC_RELEASE);
    __atomic_store_n(&chunks[c], chunk, __ATOMIC_RELEASE);
    for (uint32_t i = STORE_SLOTS_PER_CHUNK; i-- > 0;) /* lowest address on top */
        push_free(shard, c * STORE_SLOTS_PER_CHUNK + i);
    return 1;
}

/* A free slot's index + 1 from the shared stacks (the thread's own first), the store grown by
 * a chunk when they are all empty; 0 on ENOMEM. */
static uint32_t shared_take(unsigned shard)
{
    uint32_t top;
    while (!(top = pop_free(shard)))
        if (!grow(shard))
            return 0;
    return top;
}

static void *slot_alloc(size_t size, size_t align, int zero, uintptr_t note)
{
    uint32_t top = stash_take();
    if (!top && !(top = shared_take(my_shard())))
        return NULL;
    slot_t *s = slot_at(top - 1u);
    size_t lead = align > 64 ? align : 64u;
    char *user = (char *)s + lead;
    if (zero && s->magic == SLOT_FREE)
        memset(user, 0, size); /* a reused slot; a fresh one (magic 0) is zero */
    s->index = top - 1u;
    s->magic = SLOT_LIVE;
    s->lead = lead;
    s->user = (uintptr_t)user;
    s->note = note;
    s->size = size;
    return user;
}

void *hak_sampled_alloc(size_t size, size_t align, int zero, uintptr_t note)
{
    if (align < HAK_MIN_ALIGN)
        align = HAK_MIN_ALIGN;
    if (size <= HAK_MAX_CLASS_SIZE && align <= SLOT_MAX_ALIGN)
        return slot_alloc(size, align, zero, note);
    return hak_large_alloc_noted(size, align, zero, note);
}

/* The live slot ptr starts, or NULL. */
static slot_t *live_slot(const void *ptr)
{
    slot_t *s = (slot_t *)((uintptr_t)ptr & ~(uintptr_t)(SLOT_BYTES - 1));
    if (__atomic_load_n(&s->magic, __ATOMIC_RELAXED) != SLOT_LIVE || s->user != (uintptr_t)ptr)
        return NULL;
    return s;
}

int hak_sampled_note(const void *ptr, uintptr_t *note, size_t *size)
{
    uint64_t entry = hak_pagemap_get((uintptr_t)ptr);
    if (hak_pm_tag(entry) == HAK_PM_LARGE)
        return hak_large_note(ptr, entry, note, size);
    if (hak_pm_tag(entry) != HAK_PM_SAMPLED)
        return 0;
    slot_t *s = live_slot(ptr);
    if (!s)
        return 0;
    *note = s->note;
    *size = s->size;
    return 1;
}

/* ---- guarded slots ---------------------------------------------------------------------
 *
 * Layout: page 0 the header and the caller's scratch bytes, page 1 a guard, page 2 the block's
 * page, page 3 a guard; the rest of the slot is never touched. The guards are made PROT_NONE
 * when a slot first takes the layout, which it keeps for good (its own free stack,
 * GUARD_SHARD). A freed guarded block's page becomes PROT_NONE too, and the slot waits in a
 * ring of QUARANTINE slots (claimed by fetch-add, swapped in by exchange: no lock); the slot it
 * pushes out gets its page back and goes to the free stack.
 *
 * Bounds: each guarded slot splits its mapping into about four (the kernel counts them
 * against vm.max_map_count, 65,530 by default, and a process at that limit fails every
 * mmap, mprotect, dlopen and pthread_create). So at most HAK_GUARD_LIVE_MAX guarded blocks
 * live at once (guarded_live; past it the sampler's pick is allocated unguarded), and no
 * more guarded slots exist than were live and quarantined at once: at most
 * HAK_GUARD_LIVE_MAX + QUARANTINE slots, about 8,500 mappings and 16.5 MiB resident. An
 * mprotect that fails (ENOMEM: the program's own mappings took the limit) never leaves a
 * page unwritable where a block will be handed out: a slot whose page cannot be made
 * writable again stays quarantined for good (retired). */

static uint32_t quarantine_ring[QUARANTINE]; /* index + 1 of a quarantined slot; exchange */
static uint64_t quarantine_next;             /* fetch-add */
static uint32_t guarded_live;                /* guarded blocks handed out and not freed */
static uint64_t guard_declined;              /* picks allocated unguarded (relaxed; tests) */
static uint64_t guard_retired;               /* slots kept out of use for good (relaxed) */

static void quarantine(slot_t *s)
{
    char *page = (char *)s + 2 * PAGE;
    __atomic_store_n(&s->magic, SLOT_QUARANTINED, __ATOMIC_RELEASE);
    (void)mprotect(page, PAGE, PROT_NONE); /* failed: a use after free goes unseen, no more */
    __atomic_sub_fetch(&guarded_live, 1, __ATOMIC_RELAXED);
    uint64_t at = __atomic_fetch_add(&quarantine_next, 1, __ATOMIC_RELAXED) % QUARANTINE;
    uint32_t out = __atomic_exchange_n(&quarantine_ring[at], s->index + 1u, __ATOMIC_ACQ_REL);
    if (!out)
        return;
    slot_t *old = slot_at(out - 1u);
    if (mprotect((char *)old + 2 * PAGE, PAGE, PROT_READ | PROT_WRITE)) {
        __atomic_fetch_add(&guard_retired, 1, __ATOMIC_RELAXED); /* quarantined for good */
        return;
    }
    __atomic_store_n(&old->magic, SLOT_FREE, __ATOMIC_RELEASE);
    old->user = 0;
    push_free(GUARD_SHARD, old->index);
}

/* A plain slot (of index `index`, taken from `shard`) takes the guarded layout: 0, or -1 with
 * the slot back on its shard as it was (or, if its first guard cannot be made writable again,
 * kept out of use: retired). */
static int guard_slot(slot_t *s, uint32_t index, unsigned shard)
{
    if (mprotect((char *)s + PAGE, PAGE, PROT_NONE) == 0) {
        if (mprotect((char *)s + 3 * PAGE, PAGE, PROT_NONE) == 0) {
            s->guarded = 1;
            return 0;
        }
        if (mprotect((char *)s + PAGE, PAGE, PROT_READ | PROT_WRITE)) {
            __atomic_fetch_add(&guard_retired, 1, __ATOMIC_RELAXED);
            return -1;
        }
    }
    push_free(shard, index);
    return -1;
}

static void *guarded_take(size_t size, int zero, int left, uintptr_t note)
{
    uint32_t top = pop_shard(GUARD_SHARD);
    slot_t *s;
    if (top) {
        s = slot_at(top - 1u);
    } else {
        unsigned shard = my_shard();
        if (!(top = shared_take(shard)))
            return NULL;
        s = slot_at(top - 1u);
        if (s->magic == SLOT_FREE) /* a used plain slot: its block page may hold old data */
            memset((char *)s + 2 * PAGE, 0, PAGE);
        if (guard_slot(s, top - 1u, shard))
            return NULL;
    }
    char *page = (char *)s + 2 * PAGE;
    size_t room = (size + HAK_MIN_ALIGN - 1) & ~(size_t)(HAK_MIN_ALIGN - 1);
    char *user = left ? page : page + PAGE - (room ? room : HAK_MIN_ALIGN);
    if (zero)
        memset(page, 0, PAGE);
    s->index = top - 1u;
    s->lead = (uintptr_t)user - (uintptr_t)s;
    s->user = (uintptr_t)user;
    s->note = note;
    s->size = size;
    __atomic_store_n(&s->magic, SLOT_LIVE, __ATOMIC_RELEASE);
    return user;
}

void *hak_guarded_alloc(size_t size, int zero, int left, uintptr_t note)
{
    if (size > HAK_GUARD_MAX_SIZE)
        return NULL;
    void *user = NULL;
    if (__atomic_add_fetch(&guarded_live, 1, __ATOMIC_RELAXED) <= HAK_GUARD_LIVE_MAX)
        user = guarded_take(size, zero, left, note);
    if (!user) {
        __atomic_sub_fetch(&guarded_live, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&guard_declined, 1, __ATOMIC_RELAXED);
    }
    return user;
}

uint32_t hak_guarded_live(void) { return __atomic_load_n(&guarded_live, __ATOMIC_RELAXED); }
uint64_t hak_guarded_declined(void) { return __atomic_load_n(&guard_declined, __ATOMIC_RELAXED); }
uint64_t hak_guarded_retired(void) { return __atomic_load_n(&guard_retired, __ATOMIC_RELAXED); }

void *hak_sampled_scratch(const void *ptr)
{
    slot_t *s = (slot_t *)((uintptr_t)ptr & ~(uintptr_t)(SLOT_BYTES - 1));
    return (char *)s + sizeof(slot_t);
}

int hak_sampled_fault(uintptr_t addr, hak_guard_fault_t *out)
{
    if (hak_pm_tag(hak_pagemap_get(addr)) != HAK_PM_SAMPLED)
        return 0;
    slot_t *s = (slot_t *)(addr & ~(uintptr_t)(SLOT_BYTES - 1));
    uint64_t magic = __atomic_load_n(&s->magic, __ATOMIC_ACQUIRE);
    uintptr_t off = addr - (uintptr_t)s;
    if (!s->guarded || off < PAGE || off >= 4 * PAGE)
        return 0;
    out->block = (uintptr_t)s + s->lead;
    out->size = s->size;
    out->note = s->note;
    out->scratch = (char *)s + sizeof(slot_t);
    if (magic == SLOT_QUARANTINED && off >= 2 * PAGE && off < 3 * PAGE)
        out->kind = HAK_GUARD_USE_AFTER_FREE;
    else if (magic == SLOT_LIVE && off < 2 * PAGE)
        out->kind = HAK_GUARD_UNDERFLOW;
    else if (magic == SLOT_LIVE && off >= 3 * PAGE)
        out->kind = HAK_GUARD_OVERFLOW;
    else
        out->kind = HAK_GUARD_NEAR_FREED; /* a guard page next to a freed block */
    return 1;
}

void hak_store_free(void *ptr, const char *caller)
{
    slot_t *s = live_slot(ptr);
    if (!s)
        hak_fatal("%s(%p): invalid pointer: hakmem did not allocate it, or it was freed already",
                  caller, ptr);
    if (s->guarded) {
        quarantine(s);
        return;
    }
    s->magic = SLOT_FREE;
    s->user = 0;
    if (!stash_put(s->index))
        push_free(my_shard(), s->index);
}

void hak_sampled_thread_exit(void)
{
    if (!stash_enter())
        return;
    stash.off = 1;
    unsigned shard = my_shard();
    while (stash.n)
        push_free(shard, stash.slot[--stash.n] - 1u);
    stash_leave();
}

size_t hak_sampled_usable_size(const void *ptr, const char *caller)
{
    slot_t *s = live_slot(ptr);
    if (!s)
        hak_fatal("%s(%p): invalid pointer: hakmem did not allocate it, or it was freed already",
                  caller, ptr);
    return (s->size + HAK_MIN_ALIGN - 1) & ~(size_t)(HAK_MIN_ALIGN - 1);
}
