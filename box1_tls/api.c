/* box1_tls/api.c - the exported allocation API, with glibc 2.36's semantics.
 *
 * malloc and free are the hit paths of fastpath.h. The rest is built on them and on Box 2's
 * large path. Every returned pointer is 16-byte aligned; failures return NULL with errno
 * ENOMEM (EINVAL for a bad posix_memalign alignment, returned, not stored; EINVAL in errno for
 * a bad aligned_alloc or memalign alignment); free keeps errno.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "include/hakmem.h"
#include "aligned.h"
#include "fastpath.h"
#include "fork.h"
#include "guard.h"
#include "profiler.h"
#include "sampler.h"
#include "sampling_entry.h"
#include "shared_contracts/ace_hooks.h"
#include "shared_contracts/diag.h"
#include "shared_contracts/valgrind_hooks.h"

#define HAK_PAGE 4096u

#ifndef HAKMEM_VERSION_STRING
#define HAKMEM_VERSION_STRING "0.0.0"
#endif

/* The library's start (Box 1 is the front door): Box 2's init, then the atfork handlers, all
 * of them here, once, in the constructor: never from an allocation path, where a malloc nested
 * in pthread_atfork (glibc allocates under its atfork lock) could register again. A program
 * may allocate before this runs (another library's constructor): its threads start anyway
 * (tcache.c), and a fork before it is still the wrapper's, which needs no handler. */
__attribute__((constructor)) static void library_start(void)
{
    int saved = errno;
    hak_init();
    hak_fork_handlers_register(); /* Box 2's locks, for forks that bypass fork() (fork.c) */
    pthread_atfork(NULL, NULL, hak_tcache_fork_child); /* the thread cache's extras */
    if (hak_guard_on())
        hak_guard_install(); /* guarded sampling's SIGSEGV handler */
    errno = saved;
}

/* ---- entry points: plain or sampling (sampler.h) ----------------------------------------- */

/* malloc, calloc and realloc jump through one pointer each: the first call after library
 * init picks the plain hit path or its sampling variant for good (entry_first), so with
 * sampling off the hit path pays one indirect jump and nothing else. Before init (another
 * library's constructor) the plain path runs and the pointer stays unpicked. The pointers are
 * written with relaxed atomics, each time with the same value. */
static void *malloc_plain(size_t size);
static void *calloc_plain(size_t nmemb, size_t size);
static void *realloc_plain(void *ptr, size_t size);
static size_t block_usable_size(void *ptr, int *is_large, const char *caller);
static void *malloc_first(size_t size);
static void *calloc_first(size_t nmemb, size_t size);
static void *realloc_first(void *ptr, size_t size);

static struct {
    void *(*malloc)(size_t);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
} entry = {malloc_first, calloc_first, realloc_first};

/* The HAK_VG_* hooks are empty outside the valgrind build (valgrind_hooks.h); that build
 * keeps the plain paths (memcheck watches every block) and does not sample. */
static inline __attribute__((always_inline)) void *malloc_body(size_t size)
{
    HAK_VG_ENTER();
    void *p = hak_alloc_fast(size);
    HAK_VG_LEAVE();
    HAK_VG_ALLOC(p, size, 0);
    return p;
}

HAKMEM_API void *malloc(size_t size)
{
    if (HAK_VALGRIND_BUILD)
        return malloc_body(size); /* inline: memcheck names malloc as the allocating frame */
    return __atomic_load_n(&entry.malloc, __ATOMIC_RELAXED)(size);
}

static void *malloc_plain(size_t size) { return malloc_body(size); }

/* A sample point was crossed: a sampled allocation, or the plain path if the sampler or the
 * profiler declined it. */
__attribute__((cold, noinline)) static void *malloc_sampled(size_t size)
{
    void *p = hak_prof_sample(size, HAK_MIN_ALIGN, 0);
    return p ? p : hak_alloc_fast(size);
}

static void *malloc_sampling(size_t size)
{
    return hak_alloc_sampling_or(size, malloc_sampled, hak_tcache_refill, hak_large_default);
}

__attribute__((cold, noinline)) static void *calloc_sampled(size_t nmemb, size_t size)
{
    void *p = hak_prof_sample(nmemb * size, HAK_MIN_ALIGN, 1);
    return p ? p : calloc_plain(nmemb, size);
}

static void *calloc_sampling(size_t nmemb, size_t size)
{
    size_t total;
    if (!__builtin_mul_overflow(nmemb, size, &total) && hak_sample_due(total))
        return calloc_sampled(nmemb, size);
    return calloc_plain(nmemb, size);
}

static void *realloc_sampled(void *ptr, size_t size, size_t old_size);
static int realloc_stays(size_t size, size_t old_size, int is_large);
static int realloc_large_to_large(const void *ptr, size_t size);
static void *realloc_known(void *ptr, size_t size, size_t old_size, int is_large);

/* realloc counts for the sampler only when it allocates anew (realloc_plain's rule): a block
 * that stays, or a large block mremap grows or shrinks, allocates nothing. The old block is
 * looked up once, for both. */
static void *realloc_sampling(void *ptr, size_t size)
{
    if (!ptr)
        return malloc_sampling(size);
    if (!size)
        return realloc_plain(ptr, size);
    if (realloc_large_to_large(ptr, size))
        return hak_large_realloc(ptr, size);
    int is_large;
    size_t old_size = block_usable_size(ptr, &is_large, "realloc");
    if (!realloc_stays(size, old_size, is_large) && hak_sample_due(size))
        return realloc_sampled(ptr, size, old_size);
    return realloc_known(ptr, size, old_size, is_large);
}

__attribute__((cold, noinline)) static void *malloc_first(size_t size)
{
    if (!__atomic_load_n(&hak_library_ready, __ATOMIC_ACQUIRE))
        return malloc_plain(size);
    void *(*fn)(size_t) = hak_sampler_wanted() ? malloc_sampling : malloc_plain;
    __atomic_store_n(&entry.malloc, fn, __ATOMIC_RELAXED);
    return fn(size);
}

__attribute__((cold, noinline)) static void *calloc_first(size_t nmemb, size_t size)
{
    if (!__atomic_load_n(&hak_library_ready, __ATOMIC_ACQUIRE))
        return calloc_plain(nmemb, size);
    void *(*fn)(size_t, size_t) = hak_sampler_wanted() ? calloc_sampling : calloc_plain;
    __atomic_store_n(&entry.calloc, fn, __ATOMIC_RELAXED);
    return fn(nmemb, size);
}

__attribute__((cold, noinline)) static void *realloc_first(void *ptr, size_t size)
{
    if (!__atomic_load_n(&hak_library_ready, __ATOMIC_ACQUIRE))
        return realloc_plain(ptr, size);
    void *(*fn)(void *, size_t) = hak_sampler_wanted() ? realloc_sampling : realloc_plain;
    __atomic_store_n(&entry.realloc, fn, __ATOMIC_RELAXED);
    return fn(ptr, size);
}

HAKMEM_API void free(void *ptr)
{
    HAK_VG_FREE(ptr);
    HAK_VG_ENTER();
    hak_free_fast(ptr);
    HAK_VG_LEAVE();
}

/* Usable size of a live block; aborts on a pointer hakmem did not hand out, naming `caller`. */
static size_t block_usable_size(void *ptr, int *is_large, const char *caller)
{
    uint64_t pm = hak_pagemap_get((uintptr_t)ptr);
    unsigned class_idx = hak_pm_class(pm);
    if (class_idx < HAK_NUM_CLASSES) {
        if (!hak_is_block_start(hak_span_offset((uintptr_t)ptr, class_idx), class_idx))
            hak_bad_interior(ptr, class_idx, caller);
        *is_large = 0;
        return hak_class_size(class_idx);
    }
    if (hak_pm_tag(pm) == HAK_PM_SAMPLED) {
        *is_large = 0; /* realloc moves it as a small block */
        return hak_sampled_usable_size(ptr, caller);
    }
    *is_large = 1;
    return hak_large_usable_size(ptr, caller); /* aborts unless ptr is a live large block */
}

HAKMEM_API size_t malloc_usable_size(void *ptr)
{
    int is_large;
    HAK_VG_ENTER();
    size_t n = ptr ? block_usable_size(ptr, &is_large, "malloc_usable_size") : 0;
    HAK_VG_LEAVE();
    return n;
}

HAKMEM_API void *calloc(size_t nmemb, size_t size)
{
    if (HAK_VALGRIND_BUILD)
        return calloc_plain(nmemb, size);
    return __atomic_load_n(&entry.calloc, __ATOMIC_RELAXED)(nmemb, size);
}

static void *calloc_plain(size_t nmemb, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(nmemb, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    HAK_VG_ENTER();
    void *p;
    if (total > HAK_MAX_CLASS_SIZE) {
        p = hak_tcache_large(total, HAK_MIN_ALIGN, 1);
    } else {
        p = hak_alloc_fast(total);
        if (p)
            memset(p, 0, total);
    }
    HAK_VG_LEAVE();
    HAK_VG_ALLOC(p, total, 1);
    return p;
}

/* Valgrind build: always move, so memcheck sees one block end and another begin. */
static void *realloc_by_moving(void *ptr, size_t size)
{
    if (!ptr)
        return malloc(size);
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    size_t old_size = malloc_usable_size(ptr);
    void *fresh = malloc(size);
    if (!fresh)
        return NULL;
    HAK_VG_ENTER();
    memcpy(fresh, ptr, size < old_size ? size : old_size);
    HAK_VG_LEAVE();
    free(ptr);
    return fresh;
}

HAKMEM_API void *realloc(void *ptr, size_t size)
{
    if (HAK_VALGRIND_BUILD)
        return realloc_by_moving(ptr, size);
    return __atomic_load_n(&entry.realloc, __ATOMIC_RELAXED)(ptr, size);
}

/* realloc needs no new block: a large block to a large size (hak_large_realloc), or a block
 * that fits and would not waste more than half. */
static int realloc_stays(size_t size, size_t old_size, int is_large)
{
    if (is_large && size > HAK_MAX_CLASS_SIZE)
        return 1;
    return size <= old_size && (size > old_size / 2 || old_size <= 16);
}

/* A large block to a large size: hak_large_realloc, which looks the block up (and aborts on
 * a pointer that is not a live large block) itself, so no usable size is needed. */
static int realloc_large_to_large(const void *ptr, size_t size)
{
    return size > HAK_MAX_CLASS_SIZE &&
           hak_pm_tag(hak_pagemap_get((uintptr_t)ptr)) == HAK_PM_LARGE;
}

/* realloc to a sampled block (realloc_sampling): a move. */
__attribute__((cold, noinline)) static void *realloc_sampled(void *ptr, size_t size,
                                                            size_t old_size)
{
    void *fresh = hak_prof_sample(size, HAK_MIN_ALIGN, 0);
    if (!fresh)
        return realloc_plain(ptr, size);
    memcpy(fresh, ptr, size < old_size ? size : old_size);
    hak_free_fast(ptr);
    return fresh;
}

/* realloc of a live block whose usable size block_usable_size gave. */
static void *realloc_known(void *ptr, size_t size, size_t old_size, int is_large)
{
    if (is_large && size > HAK_MAX_CLASS_SIZE)
        return hak_large_realloc(ptr, size);
    if (realloc_stays(size, old_size, 0))
        return ptr;
    void *fresh = hak_alloc_fast(size);
    if (!fresh)
        return NULL; /* the old block stays valid */
    memcpy(fresh, ptr, size < old_size ? size : old_size);
    hak_free_fast(ptr);
    return fresh;
}

static void *realloc_plain(void *ptr, size_t size)
{
    if (!ptr)
        return hak_alloc_fast(size);
    if (size == 0) { /* glibc: free and return NULL */
        hak_free_fast(ptr);
        return NULL;
    }
    if (realloc_large_to_large(ptr, size))
        return hak_large_realloc(ptr, size);
    int is_large;
    size_t old_size = block_usable_size(ptr, &is_large, "realloc");
    return realloc_known(ptr, size, old_size, is_large);
}

HAKMEM_API void *reallocarray(void *ptr, size_t nmemb, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(nmemb, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(ptr, total);
}

/* align: a power of two > 16 (aligned.h). */
void *hak_aligned_alloc(size_t align, size_t size)
{
    void *p;
    HAK_VG_ENTER();
    unsigned c = hak_aligned_class(align, size);
    p = hak_prof_sample_if_due(size, align, 0);
    if (!p)
        p = c < HAK_NUM_CLASSES ? hak_pop(c) : hak_tcache_large(size, align, 0);
    HAK_VG_LEAVE();
    HAK_VG_ALLOC(p, size, 0);
    return p;
}

/* glibc 2.36 memalign: alignment <= 16 is malloc; above SIZE_MAX/2+1 is EINVAL; otherwise a
 * non-power of two is rounded up to the next power of two. */
HAKMEM_API void *memalign(size_t align, size_t size)
{
    if (align <= HAK_MIN_ALIGN)
        return malloc(size);
    if (align > SIZE_MAX / 2 + 1) {
        errno = EINVAL;
        return NULL;
    }
    if (align & (align - 1))
        align = (size_t)1 << (64 - __builtin_clzll(align));
    return hak_aligned_alloc(align, size);
}

/* C17 and glibc 2.38+: an alignment that is not a power of two, or 0, is EINVAL. A valid one
 * follows memalign (at most 16 is an ordinary block). */
HAKMEM_API void *aligned_alloc(size_t align, size_t size)
{
    if (align == 0 || (align & (align - 1))) {
        errno = EINVAL;
        return NULL;
    }
    return memalign(align, size);
}

HAKMEM_API int posix_memalign(void **memptr, size_t align, size_t size)
{
    if (align == 0 || align % sizeof(void *) != 0 || (align & (align - 1)))
        return EINVAL;
    int saved = errno;
    void *p = align <= HAK_MIN_ALIGN ? malloc(size) : hak_aligned_alloc(align, size);
    if (!p)
        return ENOMEM;
    errno = saved;
    *memptr = p;
    return 0;
}

HAKMEM_API void *valloc(size_t size) { return hak_aligned_alloc(HAK_PAGE, size); }

HAKMEM_API void *pvalloc(size_t size)
{
    size_t rounded;
    if (__builtin_add_overflow(size, HAK_PAGE - 1, &rounded)) {
        errno = ENOMEM;
        return NULL;
    }
    rounded &= ~(size_t)(HAK_PAGE - 1);
    return hak_aligned_alloc(HAK_PAGE, rounded ? rounded : HAK_PAGE);
}

/* Give back this thread's lists and the large blocks it kept, then everything Box 2 caches;
 * 1 if pages went to the OS. */
HAKMEM_API int malloc_trim(size_t pad)
{
    (void)pad;
    HAK_VG_ENTER();
    hak_tcache_drain();
    hak_large_thread_flush();
    int returned = hak_backend_return_all();
    HAK_VG_LEAVE();
    return returned;
}

HAKMEM_API const char *hakmem_version(void) { return HAKMEM_VERSION_STRING; }

/* glibc's internal names, for programs that call them directly: they must reach the same
 * heap as malloc/free. */
HAKMEM_API void *__libc_malloc(size_t size) __attribute__((alias("malloc")));
HAKMEM_API void __libc_free(void *ptr) __attribute__((alias("free")));
HAKMEM_API void *__libc_calloc(size_t n, size_t size) __attribute__((alias("calloc")));
HAKMEM_API void *__libc_realloc(void *ptr, size_t size) __attribute__((alias("realloc")));
HAKMEM_API void *__libc_memalign(size_t align, size_t size) __attribute__((alias("memalign")));
HAKMEM_API void *__libc_valloc(size_t size) __attribute__((alias("valloc")));
HAKMEM_API void *__libc_pvalloc(size_t size) __attribute__((alias("pvalloc")));
