/* shared_contracts/backend.h - the contract between Box 1 (the thread cache and hot path) and
 * Box 2 (the refill engine and back end): what Box 1 may call in Box 2, and what they hand
 * each other. Box 1 owns every thread-local list; Box 2 never names them. Blocks cross this
 * line only as chains (chain.h).
 *
 * Conventions
 *   - Every function here is cold: Box 1 calls it on a miss, an overflow, a free it cannot
 *     take on its hit path, a large request, or at a thread's start and exit. Each may take
 *     Box 2's locks and map memory; none is called with a Box 1 structure locked (Box 1 has
 *     no locks).
 *   - A chain Box 2 hands out has every block's word 1 set to hak_free_key (the mark of a
 *     cached block); a chain Box 1 gives back carries it too.
 *   - Failures: a refill that gets no block returns a chain of count 0 with errno ENOMEM. The
 *     large path returns NULL with errno ENOMEM (EINVAL where stated). Everything else keeps
 *     errno.
 *   - Thread life cycle (owned by Box 1, box1_tls/tcache.c): a thread's first slow path runs
 *     library init (hak_init) and calls hak_thread_attach, which makes Box 2's record of the
 *     thread; Box 1's pthread key destructor gives back every list and then calls
 *     hak_thread_detach.
 *     Box 2 keeps its own per-thread record (statistics, the ACE ring) and finds it itself.
 */
#ifndef HAK_BACKEND_H
#define HAK_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "chain.h"
#include "size_classes.h"

#define HAK_LIKELY(x) __builtin_expect(!!(x), 1)
#define HAK_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Random per-process value written into word 1 of every cached block (every block in a thread
 * list, and in a chain between the boxes); odd, so never a block address. Drawn by
 * hak_keys_make (keys.c) with getrandom, independently of the link key (chain.h); a nonzero
 * placeholder before that. Read-only afterwards. */
extern uint64_t hak_free_key __attribute__((visibility("hidden")));

/* Draw the free key and the link key (keys.c). Box 2's library init calls it first of all,
 * once, before any block exists: a link encoded with one key cannot be decoded with the
 * next. */
void hak_keys_make(void);

/* ---- library init and thread life cycle ---------------------------------------------- */

/* Library init (box2_refill/init.c): the page map, the options, the free key, the arenas,
 * then the ACE learner if POOL_ACE asks for it. Runs once; idempotent and recursion-safe (a
 * nested call from the thread running it returns at once, other threads wait for it).
 * Keeps errno. Malloc works before it and during it; the learner's thread creation
 * allocates. */
void hak_init(void);

/* Make Box 2's record of the calling thread (after hak_init). Returns 1 if the thread may
 * cache blocks, 0 if it must run uncached (no record could be mapped). Never allocates
 * through malloc. Keeps errno. */
int hak_thread_attach(void);

/* The calling thread exits: it has given back every list. Its record goes back to Box 2's
 * pool of records and its ring, if any, is orphaned (hak_ring_orphan: the learner collects
 * what is left in it). */
void hak_thread_detach(void);

/* ---- refill and give-back --------------------------------------------------------------- */

typedef struct hak_refill {
    hak_chain_t chain;     /* the blocks taken (count 0: out of memory, errno ENOMEM) */
    uint32_t refill_count; /* the count this refill read, once, at its start (contract B) */
    uint32_t cap_refills;  /* refills' worth the list may keep (list_rule.h): the rule's, or 1
                            * when the refill share cut this refill (box2_refill/share.h) */
    uint64_t now_ms;       /* Box 2's coarse clock at the refill (Box 1's trim schedule) */
} hak_refill_t;

/* A list of class_idx is empty (list_len = its length, for ACE's events). cached = 1: a
 * normal refill of refill_count blocks (from the published table or the fixed count);
 * cached = 0: exactly one block for a thread that runs uncached. On a failed mapping Box 2
 * gives back what it caches itself and retries once. */
void hak_refill(unsigned class_idx, uint32_t list_len, int cached, hak_refill_t *out);

enum hak_give {
    HAK_GIVE_SPILL = 0, /* a list went past its cap: the blocks freed last */
    HAK_GIVE_TRIM = 1,  /* blocks a list did not use */
    HAK_GIVE_DRAIN = 2, /* malloc_trim (or mallopt's purge): the whole list */
    HAK_GIVE_EXIT = 3,  /* the thread's drain at its exit: the whole list, and Box 2 notes how
                         * much the list held (ACE's exit sample) */
};

/* The most blocks one give-back hands over (every block goes back to its span's bitmap, under
 * the class lock at most HAK_CENTRAL_BATCH blocks at a time: box2_refill/central.h). Box 1 gives
 * a longer cut (a grown list's spill, trim or drain) as several chains, each counted as one
 * give-back of its kind (a spill of 3000 blocks is three spills). */
#define HAK_GIVE_MAX 1024u

/* Give back a chain of class_idx (1 <= count <= HAK_GIVE_MAX). list_len: the list's length
 * before the cut (for events). Returns Box 2's coarse clock, as hak_refill does. */
uint64_t hak_give(unsigned class_idx, hak_chain_t chain, uint32_t list_len, enum hak_give why);

/* ---- frees the hit path does not take --------------------------------------------------- */

/* free of NULL, of a large block, of a sampled block of the store, or of a pointer hakmem does
 * not own (Box 1 itself aborts on a pointer inside a small block). Aborts naming the pointer
 * unless it is NULL, a live large block or a live sampled block. Keeps errno. */
void hak_free_slow(void *ptr);

/* ---- sampled allocations (Box 1's sampler, box1_tls/sampler.c) ------------------------------ */

/* A block for an allocation the sampler picked, from the sampled-block store
 * (box2_refill/sample_store.c): a slot of one 64 KiB map page of its own, tagged
 * HAK_PM_SAMPLED, for size <= HAK_MAX_CLASS_SIZE and align <= 4096; else a large block. Free's
 * hit path sends it to its cold path (the tag is no small class), where Box 1 reads the note
 * back (hak_sampled_note) before hak_free_slow frees it. `note` is Box 1's opaque word (not
 * 0); zero: the block reads as zeros. NULL with errno ENOMEM. Never takes a lock: safe to
 * call from a signal handler that interrupted another call of the store. */
void *hak_sampled_alloc(size_t size, size_t align, int zero, uintptr_t note);

/* The calling thread's exit (Box 1's destructor): the free slots the store kept for this
 * thread go back to the shared ones; its later sampled allocations and frees use those. */
void hak_sampled_thread_exit(void);

/* The calling thread gives the freed large blocks it kept for itself back to the large cache
 * (box2_refill/large_local.h): at its exit (Box 1's destructor, before hak_thread_detach) and
 * in malloc_trim (before hak_backend_return_all). */
void hak_large_thread_flush(void);

/* If ptr starts a live sampled block (a store slot or a large block with a note): its note
 * and the size hak_sampled_alloc was asked for, and 1. Otherwise 0; never aborts. No lock. */
int hak_sampled_note(const void *ptr, uintptr_t *note, size_t *size);

/* Usable size of a live store slot (tag HAK_PM_SAMPLED): the size asked for, rounded up to
 * 16; aborts naming `caller` unless ptr starts one. */
size_t hak_sampled_usable_size(const void *ptr, const char *caller);

/* Guarded sampling (Box 1's box1_tls/guard.c): a block of at most HAK_GUARD_MAX_SIZE bytes
 * on a page of its own in a store slot, between two PROT_NONE guard pages, against the lower
 * one (`left`) or the upper one (its end rounded up to 16). Its free (hak_free_slow) makes the
 * page PROT_NONE and keeps the slot out of use while HAK_GUARD_QUARANTINE later guarded frees
 * have not pushed it out. Each slot has HAK_SAMPLED_SCRATCH bytes of the caller's
 * (hak_sampled_scratch: its stacks), kept through the quarantine. NULL when there is no
 * memory, when HAK_GUARD_LIVE_MAX guarded blocks are live already, when mprotect fails (the
 * process at its limit of memory mappings) or when the size is too large: the caller then
 * allocates the block unguarded. No lock. */
#define HAK_GUARD_MAX_SIZE 4096u
#define HAK_GUARD_QUARANTINE 64u
#define HAK_GUARD_LIVE_MAX 2048u
#define HAK_SAMPLED_SCRATCH 2048u
void *hak_guarded_alloc(size_t size, int zero, int left, uintptr_t note);
void *hak_sampled_scratch(const void *ptr);

/* What a fault at addr hit, for Box 1's SIGSEGV handler: 0 when it is no guarded slot's guard
 * or freed page. Async-signal-safe (reads only). */
enum hak_guard_kind {
    HAK_GUARD_OVERFLOW = 1,       /* the guard page after a live block */
    HAK_GUARD_UNDERFLOW = 2,      /* the guard page before a live block */
    HAK_GUARD_USE_AFTER_FREE = 3, /* the page of a freed block, in quarantine */
    HAK_GUARD_NEAR_FREED = 4,     /* a guard page next to a freed block */
};
typedef struct hak_guard_fault {
    int kind; /* enum hak_guard_kind */
    uintptr_t block;
    size_t size;
    uintptr_t note;
    void *scratch;
} hak_guard_fault_t;
int hak_sampled_fault(uintptr_t addr, hak_guard_fault_t *out);

/* ---- large blocks (above HAK_MAX_CLASS_SIZE, or aligned beyond what a class gives) -------- */

void *hak_large_alloc(size_t size, size_t align);
void *hak_large_calloc(size_t size); /* the same, zeroed */
/* Usable size of ptr; aborts naming `caller` unless ptr is a live large block. */
size_t hak_large_usable_size(const void *ptr, const char *caller);
void *hak_large_realloc(void *ptr, size_t size); /* ptr a live large block; NULL+ENOMEM */

/* Nonzero when no mapping of len bytes can succeed whatever anyone gives back (past the user
 * address space, above RAM + swap under the default overcommit heuristic, or larger than
 * RLIMIT_AS). Box 1 then does not drain its lists to retry a failed large request. */
int hak_mapping_hopeless(size_t len);

/* ---- fork ------------------------------------------------------------------------------ */

/* Box 1 exports fork() and registers the atfork handlers (box1_tls/fork.c); these are Box 2's
 * part. Box 2 never calls Box 1, at fork or anywhere else. */

/* Nonzero while the calling thread holds or is taking a Box 2 lock: a fork from a signal
 * handler that interrupted it must not wait for Box 2's locks. */
int hak_backend_locks_held(void);

/* Before fork: take ACE's lock (hak_ace_hooks.fork_prepare) and every Box 2 lock, in the order
 * of box2_refill/lock.h. The calling thread then owns them all (other libraries' atfork
 * handlers that allocate run in it) until hak_backend_fork_parent or hak_backend_fork_child. */
void hak_backend_fork_prepare(void);

/* In the parent: release them all, then ACE's. */
void hak_backend_fork_parent(void);

/* In the child, on its one thread, whatever the parent held: every Box 2 lock re-initialised,
 * the other threads' records dropped, no purger. `how` says what came before:
 *   HAK_FORK_LOCKED: hak_backend_fork_prepare took the locks; ACE's child handler runs too;
 *   HAK_FORK_UNLOCKED: no lock was taken (a single-threaded process, or an atfork prepare
 *     handler that found its thread inside a Box 2 lock);
 *   HAK_FORK_BARE: a _Fork in a multi-threaded process (a signal handler's): no atfork
 *     handler ran, so the learner is gone without ACE knowing, and process exit does not wait
 *     for it. */
enum hak_fork_child { HAK_FORK_LOCKED, HAK_FORK_UNLOCKED, HAK_FORK_BARE };
void hak_backend_fork_child(enum hak_fork_child how);

/* ---- returning memory to the OS ----------------------------------------------------------- */

/* malloc_trim (and mallopt's M_HAKMEM_PURGE), after Box 1 gave back the calling thread's
 * lists: Box 2 returns what it can to the OS. Every depot and spare flushed (their blocks
 * into the spans, the spares into the pool), every empty span purged, every cached large
 * range unmapped. 1 if pages went back to the OS. */
int hak_backend_return_all(void);

#endif
