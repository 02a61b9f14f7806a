/* box2_refill/ramp.h - small first batches: a class a thread barely uses stays small.
 *
 * A refill carves (and so touches) count x size bytes; with the Phase 1 counts, one refill of
 * each class up to 4 KiB touches 1.7 MB, per thread, whether the thread then holds two blocks
 * or two hundred. So a thread's refills of a class start at HAK_RAMP_BYTES worth of blocks
 * (at least one) and double with each further refill of that class until the count in force
 * (fixed or ACE's) is reached, over the thread's life: a class a thread refills only a few
 * times stays at small batches, a hot one reaches its full count within a few refills (and
 * keeps it; restarting the ramp periodically made deep bursts pay extra refills). Owner
 * thread only.
 */
#ifndef HAK_BOX2_RAMP_H
#define HAK_BOX2_RAMP_H

#include <stdint.h>

#include "shared_contracts/size_classes.h"
#include "thread.h"

#define HAK_RAMP_BYTES 8192u
#define HAK_RAMP_STEPS 16u /* after this many refills in a period, the full count */

/* The count for a refill of class_idx after `recent` refills of it in this period. */
static inline uint32_t hak_ramp_count(unsigned class_idx, uint32_t count, uint32_t recent)
{
    uint32_t start = HAK_RAMP_BYTES / hak_class_size(class_idx);
    if (start >= count || recent >= HAK_RAMP_STEPS)
        return count;
    uint64_t ramp = (uint64_t)(start ? start : 1) << recent;
    return ramp < count ? (uint32_t)ramp : count;
}

/* Refills of class_idx by thread t before this one (saturating); counts this one. The
 * fallback record (threads without their own) always gets the full count. */
static inline uint32_t hak_ramp_step(hak_thread_t *t, unsigned class_idx)
{
    if (!t->live)
        return HAK_RAMP_STEPS;
    uint32_t recent = t->ramp_refills[class_idx];
    if (recent < HAK_RAMP_STEPS)
        t->ramp_refills[class_idx] = (uint8_t)(recent + 1);
    return recent;
}

#endif
