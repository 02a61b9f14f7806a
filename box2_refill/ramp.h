/* box2_refill/ramp.h - small first batches: a class a thread barely uses stays small.
 *
 * A refill carves (and so touches) count x size bytes; with the Phase 1 counts, one refill of
 * each class up to 4 KiB touches 1.7 MB, per thread, whether the thread then holds two blocks
 * or two hundred. So a thread's refills of a class start at HAK_RAMP_BYTES worth of blocks
 * (at least one) and double with each further refill of that class until the count in force
 * (fixed or ACE's) is reached. "Further" means since the thread's last idle-list trim pass
 * (refill.c, every HAKMEM_DECAY_MS / 4): a class refilled a few times per pass stays at small
 * batches, a hot one reaches its full count within a few refills of each pass. It costs no
 * state: the thread's refill counters already hold both numbers.
 */
#ifndef HAK_BOX2_RAMP_H
#define HAK_BOX2_RAMP_H

#include <stdint.h>

#include "shared_contracts/size_classes.h"

#define HAK_RAMP_BYTES 8192u

/* The count for a refill of class_idx after `recent` refills of it since the last trim pass. */
static inline uint32_t hak_ramp_count(unsigned class_idx, uint32_t count, uint64_t recent)
{
    uint32_t start = HAK_RAMP_BYTES / hak_class_size(class_idx);
    if (start >= count || recent >= 16)
        return count;
    uint64_t ramp = (uint64_t)(start ? start : 1) << recent;
    return ramp < count ? (uint32_t)ramp : count;
}

#endif
