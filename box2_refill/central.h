/* box2_refill/central.h - the central lists: per arena and class, the spans with free blocks.
 *
 * Arenas: the central lists come in hak_arenas copies (HAKMEM_ARENAS; by default two per CPU
 * the process may run on, at most HAK_ARENAS_MAX), each with its own lock per class. A thread
 * takes its refills from one arena, the one with the fewest live threads when it attached
 * (hak_thread_t.arena), so threads on different CPUs neither wait for one lock nor write the
 * same span descriptors, and the blocks of their refills come from different spans. A span
 * belongs to the arena that took it from the pool (hak_span_t.arena) until it goes back; a
 * block freed by a thread of another arena goes back to its span's arena (hak_central_give).
 *
 * Every function here but hak_central_give runs with the lock of the arena's class
 * (hak_central[a][c].lock) held by the caller, and works on block addresses, not on the
 * blocks' memory: the caller links the blocks it takes into a chain outside the lock
 * (box2_refill/refill.c); hak_central_give walks a chain into an array outside the locks.
 *
 * Where a block of class c can be, exactly one of:
 *   in a program's hands | in one thread list | in the depot | free in its span (a set bit
 *   of its freemap).
 * Blocks in thread lists and in the depot carry hak_free_key in word 1; their span counts
 * them in in_use.
 *
 * Free blocks and the free key: a block free in its span below the span's carve mark
 * (hak_span_t.carved) carries hak_free_key in word 1 too. Every block comes back to its span
 * from a thread list, the depot or a mailbox (hak_central_put, hak_central_give), all of
 * which hold keyed blocks, and nothing writes a block while it sits in its span (perturbing
 * and debug poison start at byte 16); a span's carve mark starts at 0 whenever it leaves the
 * pool, purged or cut or not. So a refill writes the key only into the blocks carved for the
 * first time (hak_central_take's `fresh`), and not into blocks it takes back out of the
 * bitmaps: a program that freed a large structure and allocates it again does not pay a
 * store into every block on the way (its mallocs read the blocks anyway). Checked in debug
 * mode (hak_debug_take).
 *
 * The depot: a few chains that lists spilled, kept whole (at most depot_max blocks, a few
 * refills' worth) and handed whole to the next refills, so a steady flow from one thread's
 * frees to another thread's mallocs (a producer and a consumer) costs O(1) a batch. It is
 * small on purpose: its blocks come out in the order they were freed, so it bounds how many
 * blocks reuse the freeing order; every spill it cannot take goes to the bitmaps.
 *
 * Idle bytes: the depot and the mailbox hold blocks no thread is using, in every arena, so
 * each is bounded in bytes as well as in chains: at most HAK_IDLE_BYTES or one refill's
 * worth, whichever is more (depot_max, mail_slots; hak_central_configure). Bounded in blocks
 * alone (four refills' worth and eight chains), they held 60-80% of the blocks out of the
 * spans of the classes above 256 B when two threads freed each other's blocks (xmix).
 *
 * Address order: a refill takes the lowest free blocks of the span at the head of the partial
 * list, and a span that gets a block back after it was full joins the list at its tail, so
 * refills drain one span, lowest address first, before they move to the next: after a
 * program frees a structure in any order, the next blocks it allocates come out dense again.
 *
 * The spare: the first span of a class to empty is kept, reset to all free, instead of going
 * back to the pool, so a class that breathes in and out does not remap its page map entries
 * each time; the decay tick returns it after HAKMEM_DECAY_MS.
 *
 * Invariants: depot_count == the sum of the depot chains' counts, each chain's length is its
 * count, depot_count <= depot_max, depot_low <= depot_count; every span on the partial list is ACTIVE, of this class, has in_use < capacity
 * and keeps the equations of span.h; partial_tail is the list's last span. With
 * HAKMEM_DEBUG=1, hak_central_check checks the depot's sum and lengths and the first four spans of the partial list at each
 * slow path of the class.
 */
#ifndef HAK_BOX2_CENTRAL_H
#define HAK_BOX2_CENTRAL_H

#include <pthread.h>
#include <stdint.h>

#include "shared_contracts/chain.h"
#include "shared_contracts/size_classes.h"
#include "span.h"

/* The most blocks one take or put handles under one hold of the class lock. */
#define HAK_CENTRAL_BATCH 64u
#define HAK_ARENAS_MAX 16u /* hak_span_t.arena and hak_thread_t.arena hold 0..15 */
#define HAK_DEPOT_BATCHES 8u /* depot slots; depot_max bounds the blocks in them */

/* The mailbox: a few slots where threads of other arenas leave chains of this arena's blocks
 * without a lock (hak_central_post), which this arena's refills take (hak_central_collect).
 * A slot's head is NULL (empty), HAK_MAIL_BUSY (a thread is filling or emptying it: only that
 * thread touches tail and count) or a chain's first block. */
#define HAK_MAIL_SLOTS 8u
#define HAK_IDLE_BYTES (64u * 1024u) /* the depot's and the mailbox's bound, each (above) */
#define HAK_MAIL_BUSY ((void *)1)
typedef struct hak_mail_slot {
    void *head;
    void *tail;
    uint32_t count;
    void *mark; /* head at the last decay tick (class lock): unchanged means nobody took it */
} hak_mail_slot_t;

typedef struct hak_central {
    pthread_mutex_t lock;
    hak_chain_t depot[HAK_DEPOT_BATCHES]; /* a stack of chains as Box 1 spilled them */
    uint32_t depot_batches;   /* chains on the stack */
    uint32_t depot_count;     /* blocks in them */
    uint32_t depot_low;       /* lowest depot_count since the last decay tick */
    uint32_t spans;           /* ACTIVE spans of this class, the spare included */
    hak_span_t *partial;      /* ACTIVE spans with free blocks; refills take from the head */
    hak_span_t *partial_tail; /* its last span: where a span that was full rejoins */
    hak_span_t *spare;        /* one empty span kept back (not on partial), or NULL */
    uint64_t spare_since_ms;  /* when it became the spare */
    hak_mail_slot_t mail[HAK_MAIL_SLOTS] __attribute__((aligned(64))); /* lines of their own */
} __attribute__((aligned(64))) hak_central_t;

extern hak_central_t hak_central[HAK_ARENAS_MAX][HAK_NUM_CLASSES];
extern unsigned hak_arenas; /* arenas in use, 1..HAK_ARENAS_MAX (hak_central_configure) */

/* Per class, the same in every arena, set by hak_central_configure: kept apart from
 * hak_central, whose arenas' lines a process touches only as its threads use them (written
 * into every arena at init, they made 88 KiB of every process resident). */
typedef struct hak_idle_bound {
    uint32_t depot_max;  /* HAK_IDLE_BYTES, within one to four fixed refills' worth */
    uint32_t mail_slots; /* slots posts may fill: HAK_IDLE_BYTES of refills, 1..8 */
} hak_idle_bound_t;
extern hak_idle_bound_t hak_idle_bounds[HAK_NUM_CLASSES];

/* Set hak_arenas from HAKMEM_ARENAS and the CPUs, and depot_max and mail_slots from the
 * fixed refill counts and the class sizes (at init). */
void hak_central_configure(void);

/* Take up to `want` blocks from the depot: whole chains while they fit, then a cut of the
 * next. Returns the count (0 when the depot is empty); *out is linked and keyed. */
uint32_t hak_central_take_depot(unsigned arena, unsigned class_idx, uint32_t want, hak_chain_t *out);

/* Keep a spilled chain whole in the depot if a slot is free and it fits depot_max: 1 if kept,
 * 0 if the caller must put its blocks into their spans. */
int hak_central_put_depot(unsigned arena, unsigned class_idx, hak_chain_t chain);

/* Take the depot's chains, oldest first, until at least n blocks (all of them if fewer), as
 * one chain for hak_central_give once the caller dropped the lock (the decay tick,
 * hak_flush_central). */
hak_chain_t hak_central_detach_depot(unsigned arena, unsigned class_idx, uint32_t n);

/* Take up to `want` blocks (1 <= want <= HAK_CENTRAL_BATCH) into blocks[], in address order
 * within each span: the lowest free blocks of the partial list's head span, then the next
 * span's, then the spare, then new spans. Returns the count (0: out of memory, errno ENOMEM).
 * The blocks are not written, only prefetched for the caller's links. fresh: NULL, or HAK_CENTRAL_BATCH / 64 zeroed words in which
 * bit k is set when blocks[k] is carved for the first time since its span left the pool, so
 * it does not carry the free key yet (the others do: see "Free blocks and the free key"). */
uint32_t hak_central_take(unsigned arena, unsigned class_idx, uint32_t want, void **blocks,
                          uint64_t *fresh);

/* Put n blocks (1 <= n <= HAK_CENTRAL_BATCH) of spans of this arena back into their spans.
 * Aborts naming the block if one is not of this class or arena, or is already free in its
 * span (a double free). Empty spans go to the spare or the pool. */
void hak_central_put(unsigned arena, unsigned class_idx, void *const *blocks, uint32_t n,
                     uint64_t now_ms);

/* The arena of the span of a block of class_idx (held by the caller, so the answer holds);
 * aborts if the block is not in a span of that class. No lock needed. */
unsigned hak_central_arena_of(const void *block, unsigned class_idx);

/* hak_central_give's `home` for putting every block under its arena's lock, posting none. */
#define HAK_ARENA_ALL HAK_ARENAS_MAX

/* Put a linked chain of blocks of class_idx back, whatever their arenas: walks it into an
 * array outside the locks, HAK_CENTRAL_BATCH blocks at a time. The blocks of arena `home`
 * go into their spans under its lock, one hold per batch; those of each other arena are
 * relinked into one chain and posted to its mailbox, or, when its slots are all taken, put
 * into their spans under that arena's lock (HAK_ARENA_ALL: every block under its arena's
 * lock). Called with no central lock held. */
void hak_central_give(unsigned class_idx, hak_chain_t chain, uint64_t now_ms, unsigned home);

/* Leave a linked chain (its blocks keep hak_free_key) in a free slot of the mailbox of
 * arena/class_idx: one compare-and-swap and two stores, no lock. 0 if every slot is taken
 * (HAKMEM_DEBUG=1: always 0, so every give goes through the checked path). */
int hak_central_post(unsigned arena, unsigned class_idx, hak_chain_t chain);

/* Take up to `want` blocks from the mailbox of arena/class_idx, whole chains, the last one
 * cut (its rest stays in its slot), appended to *out. No lock. Returns the count taken. */
uint32_t hak_central_collect(unsigned arena, unsigned class_idx, uint32_t want, hak_chain_t *out);

/* The decay tick (class lock held): take the chains that sat in the mailbox since the last
 * tick (all of them when all != 0), appended to *out for hak_central_give. */
void hak_central_collect_idle(unsigned arena, unsigned class_idx, int all, hak_chain_t *out);

/* Blocks in the mailbox of arena/class_idx: an estimate (relaxed reads). */
uint32_t hak_central_mail_count(unsigned arena, unsigned class_idx);

/* Fork child: a slot some other thread was filling or emptying at the fork is empty (its
 * chain is lost with that thread, as its lists are). The forking thread's own such slot (a
 * fork from a signal handler that interrupted a post or a collect) stays BUSY: the
 * interrupted code finishes it when the handler returns. */
void hak_central_fork_child(void);

/* HAKMEM_DEBUG=1: abort with a "hakmem: invariant broken: ..." message naming the equation
 * if one of the invariants above does not hold for class_idx. */
void hak_central_check(unsigned arena, unsigned class_idx);

/* Hand the spare span back to the pool if it has been idle for at least idle_ms. */
void hak_central_flush_spare(unsigned arena, unsigned class_idx, uint64_t now_ms,
                               uint64_t idle_ms);

#endif
