/* shared_contracts/chain.h - a chain of free blocks: the unit Box 1 and Box 2 hand each other.
 *
 * A chain is head..tail linked through word 0 of each block, `count` blocks long. Box 1 takes
 * chains into its lists (refill) and cuts chains out of them (spill, trim, drain); Box 2 builds
 * a refill's chain from its spans' bitmaps and walks a chain given back into its spans. This
 * header is the one place a singly linked list is walked to a cut or spliced.
 *
 * Conventions: pure inline functions on memory the caller owns (its own list, or a chain in
 * Box 2's hands). Never block, never allocate. Word 1 of a block is not touched here.
 * Invariants of a chain with count > 0: following word 0 from head reaches tail after
 * count - 1 steps. tail's word 0 is not part of the chain (its value is whatever the last
 * splice left): readers stop after count blocks. count == 0 means head == tail == NULL.
 */
#ifndef HAK_CHAIN_H
#define HAK_CHAIN_H

#include <stddef.h>
#include <stdint.h>

typedef struct hak_chain {
    void *head, *tail;
    uint32_t count;
} hak_chain_t;

static inline void *hak_block_next(const void *block) { return (void *)((const uint64_t *)block)[0]; }
static inline void hak_block_link(void *block, const void *next)
{
    ((uint64_t *)block)[0] = (uint64_t)(uintptr_t)next;
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

/* Append one block to the chain being built (its word 0 is linked by the next append or by
 * the chain's consumer). */
static inline void hak_chain_append_block(hak_chain_t *ch, void *block)
{
    if (ch->count)
        hak_block_link(ch->tail, block);
    else
        ch->head = block;
    ch->tail = block;
    ch->count++;
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
