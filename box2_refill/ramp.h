/* box2_refill/ramp.h - small first batches: a class a thread barely uses stays small.
 *
 * A refill carves (and so touches) count x size bytes; with the Phase 1 counts, one refill of
 * each class up to 4 KiB touches 1.7 MB, per thread, whether the thread then holds two blocks
 * or two hundred. So a thread's refills of a class start at HAK_RAMP_BYTES worth of blocks
 * (at least one) and double with each further refill of that class until the count in force
 * (fixed or ACE's) is reached. "Further" means within the thread's current ramp period, which
 * restarts every max(10 ms, HAKMEM_DECAY_MS / 4) (the period of the decay tick and of Box 1's
 * idle-list trim): a class refilled a few times per period stays at small batches, a hot one
 * reaches its full count within a few refills of each period. Owner thread only.
 */
#ifndef HAK_BOX2_RAMP_H
#define HAK_BOX2_RAMP_H

#include <stdint.h>

#include "shared_contracts/config.h"
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

/* Refills of class_idx by thread t in its current period before this one; counts this one.
 * The fallback record (threads without their own) always gets the full count. */
static inline uint32_t hak_ramp_step(hak_thread_t *t, unsigned class_idx, uint64_t now_ms)
{
    if (!t->live)
        return HAK_RAMP_STEPS;
    if (now_ms >= t->ramp_until_ms) {
        uint64_t period = (uint64_t)hak_config.decay_ms / 4;
        t->ramp_until_ms = now_ms + (period < 10 ? 10 : period);
        for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
            t->ramp_refills[c] = 0;
    }
    uint32_t recent = t->ramp_refills[class_idx];
    if (recent < HAK_RAMP_STEPS)
        t->ramp_refills[class_idx] = (uint8_t)(recent + 1);
    return recent;
}

#endif
