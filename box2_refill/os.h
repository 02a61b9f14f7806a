/* box2_refill/os.h - Box 2's only door to the kernel: map, unmap, purge.
 *
 * A table of function pointers (hak_os) so tests can count calls or force ENOMEM without
 * linker tricks. Defaults call mmap/munmap/madvise. Every function keeps errno on success;
 * hak_os_map_aligned returns NULL with errno ENOMEM on any mapping failure.
 */
#ifndef HAK_BOX2_OS_H
#define HAK_BOX2_OS_H

#include <stddef.h>
#include <stdint.h>

typedef struct hak_os {
    void *(*map)(size_t len);             /* fresh zeroed read-write pages, or NULL */
    void (*unmap)(void *addr, size_t len);
    void (*purge)(void *addr, size_t len); /* give the pages back; contents become zero */
} hak_os_t;

extern hak_os_t hak_os; /* tests may replace members; written only while single-threaded */

/* len bytes aligned to `align` (a power of two >= 4096), trimmed from a larger mapping. */
void *hak_os_map_aligned(size_t len, size_t align);

#endif
