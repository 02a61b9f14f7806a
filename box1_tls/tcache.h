/* box1_tls/tcache.h - Box 1's thread cache: per thread, one list of free blocks per size
 * class. Box 1 owns it whole: the TLS struct and every operation on a list (pop, push, take a
 * chain in, cut a chain out, drain, set the cap). Nothing outside box1_tls/ names it.
 *
 * Layout: hak_tcache.list[tag], tag = class_idx + 1 (the page map's tag, pagemap.h), one
 * 16-byte hak_list_t per class: a malloc hit and a free hit touch one cache line of
 * thread-local data, the line of their class. No tag names list[0], so the free hit path
 * indexes the array with the page map's tag * 16 as it comes; list[0] holds the sampler's
 * countdown (sampler.h), which only the sampling entry points touch. No statistic and no trim
 * bookkeeping lives here or runs on a hit: what the trim needs is set on the slow paths
 * (hak_tcache_cold).
 *
 * Every thread's struct starts as the static empty state (head HAK_CHAIN_END, room 0, cap 0;
 * the TLS initialiser in tcache.c): the first malloc of a class misses and the first free
 * overflows, and both land in the cold paths of tcache.c, which start the thread. So the hit
 * path has no "initialised?" test.
 *
 * Links are encoded (shared_contracts/chain.h): word 0 of a listed block holds the next
 * block's address xor hak_link_key; the head, in TLS where no heap overflow reaches, is a
 * plain address. The pop decodes and checks the link it is about to store as the head; the
 * push encodes the old head.
 *
 * Invariants, per thread and class (checked at each slow path with HAKMEM_DEBUG=1):
 *   - count == cap - room == the number of blocks linked from head through word 0 (the
 *     last block's word 0 encodes HAK_CHAIN_END; an empty list's head is HAK_CHAIN_END);
 *   - every listed block carries hak_free_key in word 1; a block handed out has word 1 == 0;
 *   - count <= cap, except inside free between the push and the overflow call, and after a
 *     trim pass dropped the cap's extra below the count (the next free then spills);
 *   - cap == the list rule's base cap of the last refill's count + hak_tcache_cold.extra[c];
 *   - only the owning thread reads or writes its lists, including in its exit destructor.
 */
#ifndef HAK_BOX1_TCACHE_H
#define HAK_BOX1_TCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "shared_contracts/backend.h"
#include "shared_contracts/size_classes.h"

typedef struct hak_list {
    void *head;   /* first free block, or NULL */
    int32_t room; /* cap - count: pushes left before a spill; < 0 = over the cap */
    uint32_t cap; /* 0 until the thread starts, and again once it is past its exit */
} hak_list_t;

typedef struct hak_tcache {
    union {
        hak_list_t list[HAK_NUM_CLASSES + 1]; /* by tag = class_idx + 1 */
        struct {
            /* list[0], which no tag names: the sampler's countdown (sampler.h), which the
             * sampling entry points reach from the TLS offset their pop uses. */
            int64_t sample_left;
            int64_t unused;
        };
    };
} __attribute__((aligned(64))) hak_tcache_t;

_Static_assert(sizeof(hak_list_t) == 16, "the hit paths index lists by tag * 16");
_Static_assert(__builtin_offsetof(hak_tcache_t, sample_left) == 0, "list[0] is the countdown");

extern __thread hak_tcache_t hak_tcache __attribute__((tls_model("initial-exec")));

/* Cold per-thread state of Box 1: life cycle and what the idle-list trim needs. */
enum hak_tcache_state {
    HAK_TC_NEW = 0,  /* no slow path yet */
    HAK_TC_STARTING, /* inside hak_thread_attach (library init may allocate): serve uncached */
    HAK_TC_LIVE,     /* caching */
    HAK_TC_UNCACHED, /* past its exit destructor, or Box 2 had no record for it: caps are 0 */
};

typedef struct hak_tcache_cold {
    int state;            /* enum hak_tcache_state */
    uint64_t trim_due_ms; /* when the next trim pass is due */
    uint64_t refilled;    /* bit c: class c refilled since the last trim pass */
    uint64_t spilled;     /* bit c: class c spilled since the last trim pass */
    uint64_t burst_seen;  /* bit c: a burst of class c came back dense, and spilled
                           * (list_grow grows the list at the next one, unless a burst
                           * comes back scrambled first: that clears the bit) */
    uint64_t extra_bytes; /* sum over classes of extra[c] * size(c) <= HAKMEM_TCACHE_GROW_KIB */
    uint32_t extra[HAK_NUM_CLASSES]; /* blocks list c's cap grew above its base cap (the list
                                      * rule's growth): cap == base cap + extra[c] */
    uint32_t taken[HAK_NUM_CLASSES]; /* blocks class c's refills brought in since its list's
                                      * last overflow: what that overflow may grow the cap by */
} hak_tcache_cold_t;

extern __thread hak_tcache_cold_t hak_tcache_cold __attribute__((tls_model("initial-exec")));

static inline hak_list_t *hak_list(unsigned class_idx) { return &hak_tcache.list[class_idx + 1]; }

static inline uint32_t hak_list_count(unsigned class_idx)
{
    const hak_list_t *l = hak_list(class_idx);
    return (uint32_t)((int64_t)l->cap - l->room);
}

/* Cold paths (tcache.c). */
void *hak_tcache_refill(unsigned class_idx);    /* the pop's miss: the list is empty (refill,
                                                 * then pop) or its head's link is corrupted
                                                 * (abort) */
void hak_tcache_overflow(unsigned class_idx);   /* a push took room below 0 */
void hak_tcache_overflow_x16(uintptr_t x16);    /* the same, for the list at tag * 16 */
void hak_tcache_drain(void);                    /* give back every list of this thread */
uint32_t hak_tcache_cached_blocks(void);        /* blocks in this thread's lists */
void hak_tcache_counts(uint32_t counts[HAK_NUM_CLASSES]); /* ... per class */
uint64_t hak_tcache_extra_bytes_all(void);      /* every thread's extras, in bytes */
void hak_tcache_fork_child(void); /* atfork child: the forking thread's extras alone remain */
/* mallopt(M_PERTURB)'s byte, 0 when off: the cold paths fill the blocks they hand out with it
 * xor 0xff, and the blocks a list gives back with it (from byte 16 on), as glibc does outside
 * its tcache (tcache.c). Relaxed atomics. */
extern int hak_tcache_perturb;
/* A large block from Box 2 (zeroed if zero); when the mapping fails and this thread caches
 * blocks, they go back first and the request is tried once more. */
void *hak_tcache_large(size_t size, size_t align, int zero);
/* Idle-list trim pass of the calling thread (run by its own slow paths when due; tests call
 * it directly): each list that neither refilled nor spilled since the last pass gives back
 * three quarters of its blocks, straight to their spans. */
void hak_tcache_trim(uint64_t now_ms);

/* The hit paths address the calling thread's list of a tag through %fs: the list's offset is
 * the TLS offset of hak_tcache (one load from the GOT) plus tag * 16 ("x16"), and each access
 * is one fs-relative instruction, with no thread-pointer arithmetic. */
#if defined(__x86_64__) && defined(__SEG_FS)
typedef hak_list_t __seg_fs hak_tls_list_t;
typedef int64_t __seg_fs hak_tls_i64_t;
/* The base the hit paths address hak_tcache from: its TLS offset (one load from the GOT). */
static inline __attribute__((always_inline)) uintptr_t hak_tls_base(void)
{
    uintptr_t tls_offset;
    __asm__("movq hak_tcache@gottpoff(%%rip), %0" : "=r"(tls_offset));
    return tls_offset;
}
#else
typedef hak_list_t hak_tls_list_t;
typedef int64_t hak_tls_i64_t;
static inline uintptr_t hak_tls_base(void) { return (uintptr_t)&hak_tcache; }
#endif

static inline __attribute__((always_inline)) hak_tls_list_t *hak_list_at(uintptr_t base,
                                                                         uintptr_t x16)
{
    return (hak_tls_list_t *)(base + x16);
}

static inline __attribute__((always_inline)) hak_tls_list_t *hak_list_x16(uintptr_t x16)
{
    return hak_list_at(hak_tls_base(), x16);
}

static inline unsigned hak_x16_class(uintptr_t x16) { return (unsigned)(x16 >> 4) - 1u; }

/* Pop, the malloc hit, for the list at x16 = (class_idx + 1) * 16. The refill ends in this
 * same pop. */
static inline __attribute__((always_inline)) void *
hak_pop_at_or(uintptr_t base, uintptr_t x16, void *(*miss)(unsigned))
{
    hak_tls_list_t *l = hak_list_at(base, x16);
    uint64_t *block = l->head; /* never NULL: a block, or HAK_CHAIN_END */
    uint64_t next = hak_link_decode(block);
    /* One test for two cases (chain.h): the end of the list (HAK_CHAIN_END's link decodes
     * to the key, a bad link), and a corrupted link; the miss path tells them apart. A bad
     * link is never stored as the head, so it is never followed. On x86-64 the test reads
     * the mask from memory (gcc would copy `next` to AND it: one instruction more). */
#if defined(__x86_64__)
    __asm__ goto("testq %0, %1\n\tjnz %l[bad]" : : "r"(next), "m"(hak_link_bad) : "cc" : bad);
#else
    if (HAK_UNLIKELY(next & hak_link_bad))
        goto bad;
#endif
    l->head = (void *)next;
    l->room++;
    block[1] = 0; /* clear the free key: the block is no longer cached */
    __builtin_prefetch((void *)next, 1); /* the next pop's load and the caller's writes to it:
                                          * a list freed in random order would miss on each */
    return block;
bad:
#if !defined(__clang__)
    __attribute__((cold)); /* gcc lays the miss out of line (clang has no label attributes) */
#endif
    return miss(hak_x16_class(x16));
}

/* The same from the calling thread's hak_tcache. */
static inline __attribute__((always_inline)) void *hak_pop_x16_or(uintptr_t x16,
                                                                 void *(*miss)(unsigned))
{
    return hak_pop_at_or(hak_tls_base(), x16, miss);
}

static inline __attribute__((always_inline)) void *hak_pop_x16(uintptr_t x16)
{
    return hak_pop_x16_or(x16, hak_tcache_refill);
}

static inline __attribute__((always_inline)) void *hak_pop(unsigned class_idx)
{
    return hak_pop_x16(((uintptr_t)class_idx + 1u) * 16u);
}

/* Push, the free hit (after the checks of fastpath.h), onto the list at x16. */
static inline __attribute__((always_inline)) void hak_push_x16(uintptr_t x16, uint64_t *block,
                                                              uint64_t key)
{
    hak_tls_list_t *l = hak_list_x16(x16);
    block[0] = hak_link_encode(l->head);
    block[1] = key;
    l->head = block;
    if (HAK_UNLIKELY(--l->room < 0))
        hak_tcache_overflow_x16(x16); /* x16, not the class: the hit path computes nothing more */
}

#endif
