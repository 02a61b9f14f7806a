/* box1_tls/stack.c - stack capture with libgcc's unwinder (stack.h). */
#include "stack.h"

#include <elf.h>
#include <stddef.h>
#include <string.h>
#include <link.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unwind.h>

/* The first and last bytes of hakmem's own code, from the linker: in libhakmem.so they
 * bound the library. Linked into a program (libhakmem.a), they bound the program, so
 * nothing is skipped by address and only the capture's own frames go. */
extern const char __ehdr_start[] __attribute__((visibility("hidden")));
extern const char __etext[] __attribute__((visibility("hidden")));

/* Frames of the profiler itself to drop when hakmem is linked into the program. */
#define OWN_FRAMES 2
/* Frames walked at most: the kept ones and hakmem's own above them. */
#define WALK_MAX (HAK_STACK_MAX + 8)
#define CACHE_ENTRIES 256u

/* One walk, innermost frame first (hak_stack_capture's): each frame's pc (ip: where it
 * continues, the return address its call pushed) and what _Unwind_GetCFA says of it, which
 * during _Unwind_Backtrace is its stack pointer at that call (the cfa of the frame it
 * called): the return address ip sits in the word below it. */
typedef struct walk {
    int n;
    uintptr_t ip[WALK_MAX];
    uintptr_t cfa[WALK_MAX];
} walk_t;

/* The stack cache. A walk from hak_stack_capture costs about 100 ns a frame in libgcc;
 * programs allocate again and again from the same call chain, where hak_stack_capture runs
 * with the same stack pointer and every frame's return address sits where it sat last time.
 * An entry keeps a walk (from hak_stack_capture's caller out) whose frames chain through the
 * stack (each frame's ip is the word below its recorded stack pointer, increasing outward);
 * it serves a later capture whose caller's stack pointer is the entry's first and whose
 * stack holds the same return addresses at the same places, checked word by word from the
 * innermost frame out, so every word read is the return-address slot of a frame of the
 * current chain (mapped). Walks through a signal frame
 * do not chain this way and are not kept. Entries are direct-mapped by cfa, shared by all
 * threads (a thread's stack addresses are its own while it lives), each under a sequence
 * count: odd while a writer (who claimed it by CAS) fills it, so a reader that sees it odd or
 * changed after its copy misses. Fields are read and written with relaxed atomics. */
typedef struct cache_entry {
    uint64_t seq;
    uintptr_t cfa0;
    uint32_t n, first; /* frames in the walk; index of the first kept frame */
    uintptr_t note;    /* the caller's word for these frames (hak_stack_set_note), or 0 */
    uintptr_t ip[WALK_MAX];
    uintptr_t cfa[WALK_MAX];
} cache_entry_t;

static cache_entry_t *cache; /* CACHE_ENTRIES, mapped on first use; release/acquire */

static int in_own_text(uintptr_t ip)
{
    return ip >= (uintptr_t)__ehdr_start && ip < (uintptr_t)__etext;
}

static int linked_into_program(void)
{
    const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)__ehdr_start;
    return (uintptr_t)__ehdr_start + eh->e_phoff == getauxval(AT_PHDR);
}

static _Unwind_Reason_Code step(struct _Unwind_Context *ctx, void *arg)
{
    walk_t *w = arg;
    uintptr_t ip = _Unwind_GetIP(ctx);
    if (!ip)
        return _URC_END_OF_STACK;
    w->ip[w->n] = ip;
    w->cfa[w->n] = _Unwind_GetCFA(ctx);
    w->n++;
    return w->n < WALK_MAX ? _URC_NO_REASON : _URC_END_OF_STACK;
}

static uintptr_t stack_word(uintptr_t addr) { return *(volatile const uintptr_t *)addr; }

static cache_entry_t *entry_for(uintptr_t cfa0)
{
    cache_entry_t *c = __atomic_load_n(&cache, __ATOMIC_ACQUIRE);
    if (!c)
        return NULL;
    return &c[(cfa0 * 0x9e3779b97f4a7c15ull) >> 56];
}

/* A cached walk that matches the current stack, its kept frames copied out and the entry
 * told in *seen; -1 if none. */
static int cache_lookup(uintptr_t cfa0, uintptr_t *frames, int max, hak_stack_seen_t *seen)
{
    cache_entry_t *e = entry_for(cfa0);
    if (!e)
        return -1;
    uint64_t seq = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);
    if ((seq & 1) || __atomic_load_n(&e->cfa0, __ATOMIC_RELAXED) != cfa0)
        return -1;
    uint32_t n = __atomic_load_n(&e->n, __ATOMIC_RELAXED);
    uint32_t first = __atomic_load_n(&e->first, __ATOMIC_RELAXED);
    if (n > WALK_MAX || first > n)
        return -1;
    int kept = 0;
    for (uint32_t j = 0; j < n; j++) {
        uintptr_t ip = __atomic_load_n(&e->ip[j], __ATOMIC_RELAXED);
        if (stack_word(__atomic_load_n(&e->cfa[j], __ATOMIC_RELAXED) - 8) != ip)
            return -1;
        if (j >= first && kept < max)
            frames[kept++] = ip;
    }
    uintptr_t note = __atomic_load_n(&e->note, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (__atomic_load_n(&e->seq, __ATOMIC_RELAXED) != seq)
        return -1;
    if (seen) {
        seen->entry = e;
        seen->seq = seq;
        seen->note = note;
    }
    return kept;
}

/* Keep the walk (its note 0) and tell the entry in *seen, when the walk chains through the
 * stack and no other writer holds its entry. */
static void cache_store(const walk_t *w, uint32_t first, hak_stack_seen_t *seen)
{
    if (w->n < 1)
        return;
    for (int j = 0; j < w->n; j++) /* frames that chain through the stack only */
        if (stack_word(w->cfa[j] - 8) != w->ip[j] || (j > 0 && w->cfa[j] <= w->cfa[j - 1]))
            return;
    if (!__atomic_load_n(&cache, __ATOMIC_ACQUIRE)) {
        void *m = mmap(NULL, CACHE_ENTRIES * sizeof(cache_entry_t), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return;
        cache_entry_t *none = NULL;
        if (!__atomic_compare_exchange_n(&cache, &none, (cache_entry_t *)m, 0, __ATOMIC_RELEASE,
                                          __ATOMIC_ACQUIRE))
            munmap(m, CACHE_ENTRIES * sizeof(cache_entry_t));
    }
    cache_entry_t *e = entry_for(w->cfa[0]);
    uint64_t seq = __atomic_load_n(&e->seq, __ATOMIC_RELAXED);
    if ((seq & 1) || !__atomic_compare_exchange_n(&e->seq, &seq, seq + 1, 0, __ATOMIC_ACQUIRE,
                                                  __ATOMIC_RELAXED))
        return; /* another writer has it */
    __atomic_store_n(&e->cfa0, w->cfa[0], __ATOMIC_RELAXED);
    __atomic_store_n(&e->n, (uint32_t)w->n, __ATOMIC_RELAXED);
    __atomic_store_n(&e->first, first, __ATOMIC_RELAXED);
    __atomic_store_n(&e->note, 0, __ATOMIC_RELAXED);
    for (int j = 0; j < w->n; j++) {
        __atomic_store_n(&e->ip[j], w->ip[j], __ATOMIC_RELAXED);
        __atomic_store_n(&e->cfa[j], w->cfa[j], __ATOMIC_RELAXED);
    }
    __atomic_store_n(&e->seq, seq + 2, __ATOMIC_RELEASE);
    if (seen) {
        seen->entry = e;
        seen->seq = seq + 2;
    }
}

void hak_stack_set_note(const hak_stack_seen_t *seen, uintptr_t note)
{
    cache_entry_t *e = seen->entry;
    uint64_t seq = seen->seq;
    if (!e || !__atomic_compare_exchange_n(&e->seq, &seq, seq + 1, 0, __ATOMIC_ACQUIRE,
                                           __ATOMIC_RELAXED))
        return; /* refilled or held by a writer since: its frames may differ now */
    __atomic_store_n(&e->note, note, __ATOMIC_RELAXED);
    __atomic_store_n(&e->seq, seq + 2, __ATOMIC_RELEASE);
}

__attribute__((noinline)) int hak_stack_capture(uintptr_t *frames, int max,
                                                hak_stack_seen_t *seen)
{
    if (seen) {
        seen->entry = NULL;
        seen->note = 0;
    }
    static int mode; /* 0 not yet known, 1 shared library, 2 linked into the program */
    int m = __atomic_load_n(&mode, __ATOMIC_RELAXED);
    if (!m) {
        m = linked_into_program() ? 2 : 1;
        __atomic_store_n(&mode, m, __ATOMIC_RELAXED);
    }
    /* This function keeps a frame pointer (__builtin_frame_address), so its cfa, its
     * caller's stack pointer at the call, is that plus 16 (the return address and the saved
     * frame pointer): the key of the walk from its caller's frame on. */
    uintptr_t cfa0 = (uintptr_t)__builtin_frame_address(0) + 16;
    int n = cache_lookup(cfa0, frames, max, seen);
    if (n >= 0)
        return n;
    walk_t w;
    w.n = 0;
    _Unwind_Backtrace(step, &w);
    int first = 0;
    if (m == 1)
        while (first < w.n && in_own_text(w.ip[first]))
            first++;
    else
        first = w.n < OWN_FRAMES ? w.n : OWN_FRAMES;
    n = 0;
    for (int j = first; j < w.n && n < max; j++)
        frames[n++] = w.ip[j];
    /* The cache keeps the walk from the caller's frame on (its stack pointer is cfa0). */
    int self = 0;
    while (self < w.n && w.cfa[self] != cfa0)
        self++;
    if (self < w.n && self <= first) {
        w.n -= self;
        memmove(w.ip, w.ip + self, (size_t)w.n * sizeof w.ip[0]);
        memmove(w.cfa, w.cfa + self, (size_t)w.n * sizeof w.cfa[0]);
        cache_store(&w, (uint32_t)(first - self), seen);
    }
    return n;
}
