/* box1_tls/aligned.h - aligned allocation, shared by the C API (api.c) and C++'s aligned
 * operator new and delete (cxx_operators.c).
 *
 * A class whose size is a multiple of a power-of-two alignment gives aligned blocks: spans
 * are aligned to at least 64 KiB and blocks start at multiples of the class size. So an
 * aligned request up to 32 KiB (size and alignment) takes the first class at or above
 * max(size, align) whose size is a multiple of align; anything else takes the large path.
 */
#ifndef HAK_BOX1_ALIGNED_H
#define HAK_BOX1_ALIGNED_H

#include <stddef.h>

#include "shared_contracts/size_classes.h"

/* The class an aligned request of (align, size) is served from, or HAK_NUM_CLASSES for the
 * large path. align: a power of two > HAK_MIN_ALIGN. */
static inline unsigned hak_aligned_class(size_t align, size_t size)
{
    if (align > HAK_MAX_CLASS_SIZE || size > HAK_MAX_CLASS_SIZE)
        return HAK_NUM_CLASSES;
    unsigned c = hak_size_to_class(size > align ? size : align);
    while (hak_class_size(c) % align != 0) /* a power-of-two class always ends this */
        c++;
    return c;
}

/* A block of `size` bytes aligned to `align` (a power of two > HAK_MIN_ALIGN), or NULL with
 * errno ENOMEM. In the valgrind build it announces the block to memcheck. */
void *hak_aligned_alloc(size_t align, size_t size);

#endif
