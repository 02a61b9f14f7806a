/* box2_refill/span.h - spans: the unit Box 2 carves blocks from and returns to the OS.
 *
 * A span is 64, 128, 256 or 512 KiB ("kind" 0..3), aligned to its own length, cut from a
 * chunk mapped for that kind. Its descriptor lives outside it (a metadata arena, never freed),
 * and the page map points every 64 KiB map page of an active span at the descriptor.
 *
 * States: ACTIVE (owned by one class's central list), POOLED (empty, pages still resident,
 * waiting out the decay delay), PURGED (empty, pages given back with MADV_DONTNEED). An empty
 * span may be cut into spans of a smaller kind when that kind has none (hak_span_get); spans
 * are never joined, so a span lies inside a chunk of its kind or of a larger one.
 *
 * Free blocks of an ACTIVE span are bits, not a list: bit i of freemap is set exactly while
 * block i (at base + i * size) is in the span, so a refill takes the span's lowest free
 * blocks, in address order, whatever order they came back in (jemalloc's slab bitmaps).
 *
 * Invariants of an ACTIVE span (under its class lock):
 *   capacity == in_use + popcount(freemap); no bit at or above capacity is set;
 *   no bit below word `first` is set (the scan's starting hint);
 *   every block below `carved` has been handed out at least once since the span left the
 *     pool, none at or above it (refills take the lowest bits, so this is a high-water mark;
 *     the spare keeps it, so debug mode checks the poison of a block freed into a spare);
 *   a span other than its class's spare is on the partial list  <=>  in_use < capacity
 *   in_use == 0  =>  it leaves the partial list at once and becomes its class's spare if the
 *     class has none, else goes back to the pool (central.c, span_put)
 * POOLED and PURGED spans sit on the pool lists, under the pool lock, with page map entries 0.
 * With HAKMEM_DEBUG=1, debug_bits[i] is set exactly while block i is in a program's hands.
 */
#ifndef HAK_BOX2_SPAN_H
#define HAK_BOX2_SPAN_H

#include <stddef.h>
#include <stdint.h>

#define HAK_SPAN_KINDS 4u
#define HAK_SPAN_MAP_WORDS 64u /* 4096 bits: the most blocks a span holds (64 KiB of 16 B) */
enum hak_span_state { HAK_SPAN_ACTIVE = 1, HAK_SPAN_POOLED = 2, HAK_SPAN_PURGED = 3 };

typedef struct hak_span {
    uintptr_t base_page;   /* first byte >> 16 (aligned to the span length); kept as a page
                            * number, not a pointer, so leak checkers do not see block 0 as
                            * referenced from here */
    uint32_t capacity;     /* blocks in the span */
    uint32_t carved;       /* blocks below this index have been handed out (high-water mark) */
    uint32_t in_use;       /* blocks outside the span: thread lists and the program's hands */
    uint16_t class_idx;
    uint8_t kind;          /* length = 64 KiB << kind */
    uint8_t state;         /* enum hak_span_state */
    uint16_t first;        /* no free bit below word `first` of freemap */
    uint8_t arena;         /* ACTIVE: the arena whose central lists hold it (central.h) */
    struct hak_span *next; /* partial list (ACTIVE) or pool list */
    struct hak_span *prev;
    uint64_t empty_since_ms; /* POOLED, PURGED: when it entered the pool */
    uint64_t *debug_bits;    /* HAKMEM_DEBUG only: one bit per block, set while handed out */
    uint64_t freemap[HAK_SPAN_MAP_WORDS]; /* ACTIVE: bit i set <=> block i is free in the span */
} __attribute__((aligned(64))) hak_span_t;

static inline size_t hak_span_len(unsigned kind) { return (size_t)65536 << kind; }
static inline uintptr_t hak_span_base(const hak_span_t *s) { return s->base_page << 16; }

/* Every block free: a span as it leaves the pool, or as it becomes its class's spare. */
void hak_span_reset_free(hak_span_t *s);

/* An empty span of `kind` for class_idx (state ACTIVE, page map set, nothing carved), or
 * NULL with errno ENOMEM: from the pool, resident ones first; when the pool has none of that
 * kind, from an empty span of a larger kind cut into spans of this one (resident first);
 * else new memory (a chunk cut from a resident range of the large cache if one is big
 * enough, else mapped), for which as many bytes of resident empty spans of smaller kinds are
 * purged first. Takes the pool lock; callers may hold a class lock. */
hak_span_t *hak_span_get(unsigned kind, unsigned class_idx);

/* Give an ACTIVE span with in_use == 0 back to the pool. Takes the pool lock. */
void hak_span_put(hak_span_t *span, uint64_t now_ms);

/* Purge pooled spans empty for at least decay_ms (all of them when decay_ms == 0 and
 * force). Returns the bytes purged. Takes the pool lock. */
size_t hak_span_decay(uint64_t now_ms, uint64_t decay_ms, int force);

/* Unmap all empty spans, POOLED and PURGED (their descriptors are kept for reuse); returns
 * the bytes unmapped. For when a mapping failed: address space, not just memory, may be what
 * ran out. Takes the pool lock. */
size_t hak_span_unmap_purged(void);


typedef struct hak_span_totals {
    size_t mapped;   /* bytes of span chunks mapped */
    size_t pooled;   /* bytes in POOLED spans (resident, empty) */
    size_t purged;   /* bytes in PURGED spans */
    size_t active;   /* bytes in ACTIVE spans */
    size_t splits;   /* empty spans cut into spans of a smaller kind (hak_span_get) */
} hak_span_totals_t;
void hak_span_totals(hak_span_totals_t *out);
/* The most span bytes ever mapped at once. Takes the pool lock. */
size_t hak_span_mapped_max(void);

/* Per class, over its ACTIVE spans (the spare included): how many, their bytes, the sum of
 * their in_use (blocks in thread lists and the program's hands) and of their free blocks. A walk of every
 * descriptor under the pool lock; in_use is read as a snapshot. For malloc_info/mallinfo2. */
typedef struct hak_span_class {
    uint64_t spans, bytes, blocks_out, blocks_free;
} hak_span_class_t;
void hak_span_class_totals(hak_span_class_t out[]);

/* Fork: lock/unlock the pool lock; reinitialise it in the child. */
void hak_span_fork_lock(void);
void hak_span_fork_unlock(void);
void hak_span_fork_child(void);

#endif
