/* box2_refill/os.c - default OS layer: mmap, munmap, madvise(MADV_DONTNEED), mremap. */
#include "os.h"

#include <errno.h>
#include <sys/mman.h>

static void *os_map(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void os_unmap(void *addr, size_t len)
{
    int saved = errno;
    munmap(addr, len);
    errno = saved;
}

static void os_purge(void *addr, size_t len)
{
    int saved = errno;
    madvise(addr, len, MADV_DONTNEED);
    errno = saved;
}

static void *os_remap(void *addr, size_t old_len, size_t new_len, void *new_addr)
{
    int saved = errno;
    void *p = new_addr ? mremap(addr, old_len, new_len, MREMAP_MAYMOVE | MREMAP_FIXED, new_addr)
                       : mremap(addr, old_len, new_len, 0);
    errno = saved;
    return p == MAP_FAILED ? NULL : p;
}

hak_os_t hak_os = {os_map, os_unmap, os_purge, os_remap};

void *hak_os_map_aligned(size_t len, size_t align)
{
    return hak_os_map_phase(len, align, 0);
}

void *hak_os_map_phase(size_t len, size_t align, uintptr_t phase)
{
    size_t span = len + align;
    if (span < len) {
        errno = ENOMEM;
        return NULL;
    }
    int saved = errno;
    char *raw = hak_os.map(span);
    if (!raw) {
        errno = ENOMEM;
        return NULL;
    }
    errno = saved;
    phase &= align - 1;
    uintptr_t start = (((uintptr_t)raw - phase + align - 1) & ~(uintptr_t)(align - 1)) + phase;
    if (start < (uintptr_t)raw)
        start += align;
    size_t head = start - (uintptr_t)raw;
    size_t tail = span - head - len;
    if (head)
        hak_os.unmap(raw, head);
    if (tail)
        hak_os.unmap((char *)start + len, tail);
    return (void *)start;
}
