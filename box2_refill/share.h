/* box2_refill/share.h - when threads outnumber the CPUs, a refill brings in a smaller share.
 *
 * A refill writes every block it brings in (the link and the free key), so its count x size
 * bytes are resident from then on, and a list keeps up to two refills' worth. A server's idle
 * worker keeps what its last burst left in its lists; with 64 blocks of every class up to
 * 4 KiB, 256 such workers held 512 KiB of 4 KiB blocks each (burst256 in docs/BENCHMARKS.md:
 * 3.8 times jemalloc's peak RSS). So the bytes of one refill are bounded by a share of
 * HAK_SHARE_BYTES_PER_CPU per CPU the process may run on, divided among the live threads, and
 * never cut below HAK_SHARE_MIN_BYTES (at least HAK_SHARE_MIN_BLOCKS blocks): on 2 CPUs, up
 * to 8 threads refill as before, 64 threads and more refill 32 KiB at a time (8 blocks of
 * 4 KiB, 64 of 512 B: classes up to 512 B are never cut), and a list whose refill was cut
 * keeps one refill's worth, not two (hak_refill sets hak_refill_t.cap_refills to 1;
 * list_rule.h). The count in force (fixed or ACE's, after the ramp) is only ever lowered.
 * Read once at the start of a refill, like the policy table (contract B): a list's blocks
 * and a refill in flight are not touched.
 */
#ifndef HAK_BOX2_SHARE_H
#define HAK_BOX2_SHARE_H

#include <stdint.h>

#include "shared_contracts/config.h"
#include "shared_contracts/size_classes.h"
#include "thread.h"

#define HAK_SHARE_BYTES_PER_CPU (1u << 20)
#define HAK_SHARE_MIN_BYTES (32u << 10)
#define HAK_SHARE_MIN_BLOCKS 8u

/* The count of a refill of class_idx: `count`, or less when the live threads' shares are
 * smaller than `count` blocks. */
static inline uint32_t hak_share_count(unsigned class_idx, uint32_t count)
{
    uint64_t live = hak_thread_live_count(), cpus = hak_config.cpus < 1 ? 1 : hak_config.cpus;
    uint64_t bytes = live ? cpus * HAK_SHARE_BYTES_PER_CPU / live : UINT64_MAX;
    if (bytes < HAK_SHARE_MIN_BYTES)
        bytes = HAK_SHARE_MIN_BYTES;
    uint64_t blocks = bytes / hak_class_size(class_idx);
    if (blocks < HAK_SHARE_MIN_BLOCKS)
        blocks = HAK_SHARE_MIN_BLOCKS;
    return blocks < count ? (uint32_t)blocks : count;
}

#endif
