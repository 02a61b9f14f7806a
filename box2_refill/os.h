/* box2_refill/os.h - Box 2's only door to the kernel: map, unmap, purge, remap.
 *
 * A table of function pointers (hak_os) so tests can count calls or force ENOMEM without
 * linker tricks. Defaults call mmap/munmap/madvise(MADV_DONTNEED)/mremap. Every function keeps
 * errno on success (remap also on failure); hak_os_map_aligned returns NULL with errno ENOMEM
 * on any mapping failure.
 */
#ifndef HAK_BOX2_OS_H
#define HAK_BOX2_OS_H

#include <stddef.h>
#include <stdint.h>

typedef struct hak_os {
    void *(*map)(size_t len);             /* fresh zeroed read-write pages, or NULL */
    void (*unmap)(void *addr, size_t len);
    void (*purge)(void *addr, size_t len); /* give the pages back; contents become zero */
    /* mremap: new_addr NULL grows or shrinks [addr, addr + old_len) in place; otherwise moves
     * its pages to new_addr (MREMAP_MAYMOVE | MREMAP_FIXED), replacing what was mapped there.
     * The old range must lie in one kernel mapping. Returns the new address, or NULL. */
    void *(*remap)(void *addr, size_t old_len, size_t new_len, void *new_addr);
} hak_os_t;

extern hak_os_t hak_os; /* tests may replace members; written only while single-threaded */

/* len bytes aligned to `align` (a power of two >= 4096), trimmed from a larger mapping. */
void *hak_os_map_aligned(size_t len, size_t align);

/* len bytes at an address congruent to `phase` modulo `align` (a power of two >= 4096;
 * phase a multiple of 4096), trimmed from a larger mapping: the place to move pages into
 * from an address of that phase (HAK_OS_PMD, below). */
void *hak_os_map_phase(size_t len, size_t align, uintptr_t phase);

/* What one page-table page maps on x86-64: 2 MiB. mremap moves the pages of a 2 MiB-aligned
 * piece by moving its page-table entry, when the old and the new address are equally far
 * from a 2 MiB boundary; otherwise it moves them one page-table entry at a time. Besides
 * costing the kernel 512 times the work, the second kind is expensive afterwards on a guest
 * whose hypervisor shadows its page tables: every moved page faults once more, in the
 * hypervisor, unseen by the guest's fault counters (about 5 us a page on the AMD EPYC VM of
 * docs/BENCHMARKS.md, "Moves by page-table page"). So a fresh mapping that pages will be
 * moved into is placed at the phase of their old address (large.c). */
#define HAK_OS_PMD ((size_t)2 << 20)

#endif
