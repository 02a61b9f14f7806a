/* shared_contracts/size_classes.h - the size classes, the one table every box agrees on.
 *
 * Conventions
 *   - Pure constants and inline lookups: callable from any thread, any context, never blocks,
 *     never allocates.
 *   - 40 classes, 16 B .. 32 KiB. Every class size is a multiple of 16, so every block is
 *     16-byte aligned (max_align_t). Requests above HAK_MAX_CLASS_SIZE take Box 2's large path.
 *   - Classes: 16..128 step 16, then four classes per power of two up to 32 KiB.
 *
 * Invariants (checked by tests/unit/test_size_classes.c)
 *   - hak_class_size(c) is strictly increasing in c.
 *   - size <= hak_class_size(hak_size_to_class(size)) and size > the previous class's size.
 *   - Spans of class c are span_bytes(c) long (a power of two, 64 KiB..512 KiB) and aligned to
 *     their own length, so a block's offset in its span is (addr & (span_bytes - 1)) and every
 *     block starts at a multiple of the class size from the span start.
 *   - divmagic(c) = ceil(2^64 / size): for any 32-bit offset, off % size == 0 exactly when
 *     (uint64_t)off * divmagic < divmagic (Lemire, Kaser, Kurz 2019), a multiply and a
 *     compare on the free hit path instead of a division.
 */
#ifndef HAK_SIZE_CLASSES_H
#define HAK_SIZE_CLASSES_H

#include <stddef.h>
#include <stdint.h>

/* X(size_bytes, span_kib, default_refill_count)
 * Phase 1 refill counts: 64 blocks up to 4 KiB, 32 up to 8 KiB, 16 for the largest classes. */
#define HAK_CLASS_LIST(X)                                                              \
    X(16, 64, 64)    X(32, 64, 64)    X(48, 64, 64)    X(64, 64, 64)                   \
    X(80, 64, 64)    X(96, 64, 64)    X(112, 64, 64)   X(128, 64, 64)                  \
    X(160, 64, 64)   X(192, 64, 64)   X(224, 64, 64)   X(256, 64, 64)                  \
    X(320, 64, 64)   X(384, 64, 64)   X(448, 64, 64)   X(512, 64, 64)                  \
    X(640, 64, 64)   X(768, 64, 64)   X(896, 64, 64)   X(1024, 64, 64)                 \
    X(1280, 64, 64)  X(1536, 64, 64)  X(1792, 64, 64)  X(2048, 64, 64)                 \
    X(2560, 64, 64)  X(3072, 64, 64)  X(3584, 64, 64)  X(4096, 64, 64)                 \
    X(5120, 128, 32) X(6144, 128, 32) X(7168, 128, 32) X(8192, 128, 32)                \
    X(10240, 256, 16) X(12288, 256, 16) X(14336, 256, 16) X(16384, 256, 16)            \
    X(20480, 512, 16) X(24576, 512, 16) X(28672, 512, 16) X(32768, 512, 16)

#define HAK_NUM_CLASSES 40
#define HAK_MAX_CLASS_SIZE 32768u
#define HAK_SMALL_LOOKUP_MAX 1024u /* sizes <= this use the byte table */
#define HAK_MIN_ALIGN 16u

/* Read-only facts per class, as parallel arrays (the free hit path reads its own rows,
 * hak_free_checks in pagemap.h). */
typedef struct hak_class_table {
    uint64_t divmagic[HAK_NUM_CLASSES];  /* ceil(2^64 / size) */
    uint32_t span_mask[HAK_NUM_CLASSES]; /* span_bytes - 1 */
    uint32_t size[HAK_NUM_CLASSES];      /* block size in bytes */
} hak_class_table_t;

#define HAK_CT_MAGIC(size, span_kib, refill) (UINT64_MAX / (size) + 1),
#define HAK_CT_MASK(size, span_kib, refill) ((span_kib) * 1024u - 1u),
#define HAK_CT_SIZE(size, span_kib, refill) (size),
static const hak_class_table_t hak_classes = {
    {HAK_CLASS_LIST(HAK_CT_MAGIC)},
    {HAK_CLASS_LIST(HAK_CT_MASK)},
    {HAK_CLASS_LIST(HAK_CT_SIZE)},
};
#undef HAK_CT_MAGIC
#undef HAK_CT_MASK
#undef HAK_CT_SIZE

#define HAK_REFILL_ROW(size, span_kib, refill) (refill),
static const uint16_t hak_default_refill[HAK_NUM_CLASSES] = {HAK_CLASS_LIST(HAK_REFILL_ROW)};
#undef HAK_REFILL_ROW

/* class index for sizes 0..1024, indexed by (size + 15) >> 4 */
static const uint8_t hak_small_class[65] = {
    0, 0, 1, 2, 3, 4, 5, 6, 7,            /* 0..128 */
    8, 8, 9, 9, 10, 10, 11, 11,           /* 129..256 */
    12, 12, 12, 12, 13, 13, 13, 13,       /* 257..384 */
    14, 14, 14, 14, 15, 15, 15, 15,       /* 385..512 */
    16, 16, 16, 16, 16, 16, 16, 16,       /* 513..640 */
    17, 17, 17, 17, 17, 17, 17, 17,       /* ..768 */
    18, 18, 18, 18, 18, 18, 18, 18,       /* ..896 */
    19, 19, 19, 19, 19, 19, 19, 19,       /* ..1024 */
};

static inline uint32_t hak_class_size(unsigned class_idx) { return hak_classes.size[class_idx]; }
static inline uint32_t hak_span_bytes(unsigned class_idx)
{
    return hak_classes.span_mask[class_idx] + 1u;
}

/* Offset of an address inside its span of class_idx. */
static inline uint32_t hak_span_offset(uintptr_t addr, unsigned class_idx)
{
    return (uint32_t)addr & hak_classes.span_mask[class_idx];
}

/* Does a block of class_idx start at this span offset? */
static inline int hak_is_block_start(uint32_t off, unsigned class_idx)
{
    return (uint64_t)off * hak_classes.divmagic[class_idx] < hak_classes.divmagic[class_idx];
}
static inline uint32_t hak_blocks_per_span(unsigned class_idx)
{
    return hak_span_bytes(class_idx) / hak_class_size(class_idx);
}

/* 1024 < size <= HAK_MAX_CLASS_SIZE: four classes per power of two, from class 20 (1280 B). */
static inline unsigned hak_upper_class(size_t size)
{
    size_t s = size - 1;
    unsigned b = 63u - (unsigned)__builtin_clzll(s); /* 10..14 */
    return 20u + (b - 10u) * 4u + (unsigned)((s >> (b - 2u)) & 3u);
}

/* Any size <= HAK_MAX_CLASS_SIZE; callers check the bound first. */
static inline unsigned hak_size_to_class(size_t size)
{
    if (size <= HAK_SMALL_LOOKUP_MAX)
        return hak_small_class[(size + 15) >> 4];
    return hak_upper_class(size);
}

#endif
