/* hakmem.h - public interface of the hakmem allocator.
 *
 * hakmem replaces the standard allocation functions (malloc, free, calloc, realloc,
 * reallocarray, posix_memalign, aligned_alloc, memalign, valloc, pvalloc, malloc_usable_size,
 * malloc_trim, mallinfo2, mallinfo, malloc_stats, malloc_info, mallopt, and glibc's __libc_*
 * aliases of them) and wraps fork() to keep the heap consistent in the child: use it with
 * LD_PRELOAD=libhakmem.so or link with -lhakmem (pkg-config hakmem). This header adds what is
 * specific to hakmem.
 */
#ifndef HAKMEM_H
#define HAKMEM_H

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the library's exported functions (it is built with -fvisibility=hidden). The one
 * export macro: every function hakmem exports is declared or defined with it. */
#define HAKMEM_API __attribute__((visibility("default")))

#define HAKMEM_VERSION_MAJOR 0
#define HAKMEM_VERSION_MINOR 1
#define HAKMEM_VERSION_PATCH 0

/* The library's version, "MAJOR.MINOR.PATCH". */
HAKMEM_API const char *hakmem_version(void);

/* Print the per-class statistics table (refills, spills, trimmed blocks, the refill count in
 * force, ACE events and drops) to `out`. Safe to call from any thread. */
HAKMEM_API void hakmem_stats_print(FILE *out);

/* With HAKMEM_PROF=1: write the heap profile now to `path` (NULL: HAKMEM_PROF_FILE, by default
 * hakmem.<pid>.heap), in the format google-pprof reads (docs/PROFILER.md). 0 on success; -1
 * with errno EINVAL when the profiler is off, or the open or write error. */
HAKMEM_API int hakmem_prof_dump(const char *path);

/* mallopt parameters of hakmem's own, next to glibc's M_* of <malloc.h> (docs/TUNING.md,
 * mallopt). For glibc's parameters mallopt returns what glibc 2.36 returns; for these, 1 when
 * it applied the value, 0 when the value is out of range. */
#define M_HAKMEM_DECAY_MS (-1001) /* set HAKMEM_DECAY_MS (0..600000) while running */
#define M_HAKMEM_PURGE (-1002)    /* give cached and empty memory back now: malloc_trim(0) */

#ifdef __cplusplus
}
#endif
#endif
