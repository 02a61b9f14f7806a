/* shared_contracts/chain.h - a chain of free blocks: the unit Box 1 and Box 2 hand each other,
 * and the encoded link that joins its blocks.
 *
 * A chain is head..tail linked through word 0 of each block, `count` blocks long. Box 1 takes
 * chains into its lists (refill) and cuts chains out of them (spill, trim, drain); Box 2 builds
 * a refill's chain from its spans' bitmaps and walks a chain given back into its spans. This
 * header is the one place a singly linked list is walked to a cut or spliced, and with the
 * list hit paths (box1_tls/tcache.h) the only code that reads or writes a link.
 *
 * Encoded links (hardened free lists). Word 0 of a free block never holds a pointer: it holds
 * next ^ hak_link_key, a per-process secret (keys.c) that no block shows. Decoding xors again
 * and checks the result before anything follows it: a block address is 16-aligned and below
 * 2^47 (user space), so a decoded link with any bit of HAK_LINK_BAD set is a corrupted one,
 * and the walker aborts with a "hakmem: corrupted free list" message naming the block
 * (hak_link_corrupt). The key has bits 0 and 63 set, so a raw pointer written over a link by
 * a heap overflow or a write after free (glibc's "tcache poisoning") always decodes bad; other
 * garbage decodes bad but with odds of 2^-21. The planted value is never followed.
 *
 * The end of a thread list is hak_chain_end, a static block that is never handed out: its
 * word 0 is 0, which decodes to the key itself, a bad link. So the pop hit path needs no NULL
 * test: it decodes the head's link, and one test of the result catches both the end of the
 * list and a corrupted link (tcache.h). Chains end by count; NULL and hak_chain_end both
 * decode as good links.
 *
 * Conventions: pure inline functions on memory the caller owns (its own list, or a chain in
 * Box 2's hands). Never block, never allocate. Word 1 of a block is not touched here.
 * Invariants of a chain with count > 0: following word 0 from head reaches tail after
 * count - 1 steps. tail's word 0 is not part of the chain (its value is whatever the last
 * splice left, always an encoded link): readers stop after count blocks. count == 0 means
 * head == tail == NULL.
 */
#ifndef HAK_CHAIN_H
#define HAK_CHAIN_H

#include <stddef.h>
#include <stdint.h>

typedef struct hak_chain {
    void *head, *tail;
    uint32_t count;
} hak_chain_t;

/* The link key (keys.c): hidden, so the hit paths xor with it straight from memory. */
extern uint64_t hak_link_key __attribute__((visibility("hidden")));
/* The end of every thread list: 16 zero bytes, read-only (chain.c). */
extern const uint64_t hak_chain_end[2] __attribute__((visibility("hidden")));
#define HAK_CHAIN_END ((void *)hak_chain_end)

/* A decoded link with any of these bits set is not a block address: not 16-aligned, or not
 * below 2^47. */
#define HAK_LINK_BAD 0xffff80000000000full
/* The same value as a variable (chain.c), for the pop hit path: a test against memory is one
 * instruction, a 64-bit immediate two. */
extern const uint64_t hak_link_bad __attribute__((visibility("hidden")));

/* Abort: block's word 0 decodes to `decoded`, which is not a block address (chain.c). */
__attribute__((noreturn, cold)) void hak_link_corrupt(const void *block, uint64_t decoded);

static inline uint64_t hak_link_encode(const void *next)
{
    return (uint64_t)(uintptr_t)next ^ hak_link_key;
}

/* What block's link decodes to, unchecked: for code that judges it itself (the checks of
 * free and debug mode). */
static inline uint64_t hak_link_decode(const void *block)
{
    return ((const uint64_t *)block)[0] ^ hak_link_key;
}

/* Could a decoded link be a block address (or NULL)? */
static inline int hak_link_ok(uint64_t decoded) { return !(decoded & HAK_LINK_BAD); }

/* The block after `block`, checked: a corrupted link aborts here, before anyone follows it. */
static inline void *hak_block_next(const void *block)
{
    uint64_t next = hak_link_decode(block);
    if (__builtin_expect(!hak_link_ok(next), 0))
        hak_link_corrupt(block, next);
    return (void *)(uintptr_t)next;
}

/* Store block's link to next, encoded with `key`, the link key the caller read (a loop of
 * stores into blocks reads it once: gcc cannot tell that the stores leave hak_link_key alone,
 * and would read it again after each). */
static inline void hak_block_link_keyed(void *block, const void *next, uint64_t key)
{
    ((uint64_t *)block)[0] = (uint64_t)(uintptr_t)next ^ key;
}

static inline void hak_block_link(void *block, const void *next)
{
    hak_block_link_keyed(block, next, hak_link_key);
}

/* Cut the first n blocks (1 <= n <= length) off the list that starts at *head; *head becomes
 * the block after them. Walks n - 1 links. */
static inline hak_chain_t hak_chain_cut(void **head, uint32_t n)
{
    hak_chain_t ch = {*head, *head, n};
    for (uint32_t i = 1; i < n; i++)
        ch.tail = hak_block_next(ch.tail);
    *head = hak_block_next(ch.tail);
    return ch;
}

/* Put chain ch in front of the list that starts at *head. O(1). */
static inline void hak_chain_prepend(void **head, hak_chain_t ch)
{
    if (!ch.count)
        return;
    hak_block_link(ch.tail, *head);
    *head = ch.head;
}

/* Append blocks[0..n) to the end of *ch, in that order (n >= 1): one link store a block. */
static inline void hak_chain_append_array(hak_chain_t *ch, void *const *blocks, uint32_t n)
{
    uint64_t key = hak_link_key;
    if (ch->count)
        hak_block_link_keyed(ch->tail, blocks[0], key);
    else
        ch->head = blocks[0];
    for (uint32_t k = 0; k + 1 < n; k++)
        hak_block_link_keyed(blocks[k], blocks[k + 1], key);
    ch->tail = blocks[n - 1];
    ch->count += n;
}

/* Append chain src to the end of *dst. O(1). */
static inline void hak_chain_append(hak_chain_t *dst, hak_chain_t src)
{
    if (!src.count)
        return;
    if (dst->count)
        hak_block_link(dst->tail, src.head);
    else
        dst->head = src.head;
    dst->tail = src.tail;
    dst->count += src.count;
}

#endif
