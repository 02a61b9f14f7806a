/* box2_refill/debug.h - HAKMEM_DEBUG=1: fuller misuse checks, paid only when asked for.
 *
 * With debug on, a thread's lists are bypassed (cap 0, refill count 1): every malloc and free
 * goes through Box 2 under its class lock, where:
 *   - a per-span bitmap records which blocks are in a program's hands, so a double free is
 *     caught wherever the block is (thread list or span), and so is a free of a block
 *     hakmem never handed out;
 *   - a freed block is filled with a poison byte past its two link words; when it is handed
 *     out again the poison must be intact and word 1 must still hold the free key (a write
 *     after free aborts), and its link must point at a block of the same class (a corrupted
 *     free list aborts).
 * Cost: a lock and a fill and check of the whole block per malloc/free (measured in
 * docs/TUNING.md). Large blocks are checked exactly in every mode. The bitmaps are the spans'
 * (hak_span_t.debug_bits): span.c makes a span's, cleared, when the span leaves the pool.
 */
#ifndef HAK_BOX2_DEBUG_H
#define HAK_BOX2_DEBUG_H

#include "span.h"

#define HAK_DEBUG_POISON 0xdb

/* A block leaves the central lists for a program. `was_free` is 0 for a freshly carved
 * block (no poison to check). Class lock held. */
void hak_debug_take(hak_span_t *s, void *block, int was_free);
/* A block comes back from a program. Aborts on a double free. Class lock held. */
void hak_debug_put(hak_span_t *s, void *block);

#endif
