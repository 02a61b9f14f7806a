/* box1_tls/cxx_operators.c - C++'s replaceable global operator new and delete: the 20 forms
 * libstdc++ exports (new, new[], delete, delete[]; nothrow, sized, std::align_val_t, and their
 * combinations), written in C.
 *
 * How the library exports them without needing libstdc++. Each function is C, defined under
 * its Itanium-mangled name (an asm label) and exported like malloc; the library links no C++
 * runtime, so a C program that preloads it loads none. What only the C++ runtime can do is
 * found lazily, on the failure path, in the process itself, which has libstdc++ loaded
 * whenever something calls operator new:
 *   - std::get_new_handler() and std::__throw_bad_alloc(), by dlsym(RTLD_DEFAULT);
 *   - libstdc++'s own nothrow forms, by dlsym(RTLD_NEXT): they call our throwing form inside
 *     their try/catch, so a new-handler that throws gives NULL as the standard says.
 * An exception thrown there unwinds through these C frames by their .eh_frame (gcc emits it
 * by default on x86-64); none of them needs a cleanup.
 *
 * Hit paths, the same as malloc's and free's (fastpath.h), inlined:
 *   new: hak_alloc_fast_or, malloc's path with this file's cold paths in tail position, which
 *   see a failed refill or large mapping (so the hit path keeps no register across a call).
 *   delete: hak_free_fast.
 *   sized delete: one page-map read; its tag indexes sized_bounds, the sizes new serves from
 *   that class (an empty range for NULL, foreign and large pointers, which so reach the cold
 *   path too); then hak_free_x16_or, as free. A size that is not the one the block was
 *   allocated with (another class's, or above a large block's usable size) aborts with a
 *   hakmem: message naming the pointer, as any bad free does.
 * Aligned forms: an alignment up to 16 is the plain form; above, aligned.h's classes or the
 * large path, as for aligned_alloc. An alignment that is not a power of two fails (it is
 * undefined in C++; libstdc++ throws std::bad_alloc).
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>

#include "include/hakmem.h"
#include "aligned.h"
#include "fastpath.h"
#include "profiler.h"
#include "sampler.h"
#include "sampling_entry.h"
#include "shared_contracts/ace_hooks.h"
#include "shared_contracts/diag.h"
#include "shared_contracts/valgrind_hooks.h"

#define HAK_COLD __attribute__((cold, noinline))

/* ---- what the C++ runtime provides, found once --------------------------------------- */

typedef void (*hak_new_handler_t)(void);
#define NOT_FOUND ((void *)1)

/* dlsym once per name; NULL when the process has no such symbol. */
static void *runtime_symbol(void **cache, void *handle, const char *name)
{
    void *f = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
    if (!f) {
        f = dlsym(handle, name);
        if (!f)
            f = NOT_FOUND;
        __atomic_store_n(cache, f, __ATOMIC_RELEASE);
    }
    return f == NOT_FOUND ? NULL : f;
}

static hak_new_handler_t current_new_handler(void)
{
    static void *get;
    hak_new_handler_t (*fn)(void) =
        (hak_new_handler_t(*)(void))runtime_symbol(&get, RTLD_DEFAULT, "_ZSt15get_new_handlerv");
    return fn ? fn() : NULL;
}

__attribute__((noreturn)) static void throw_bad_alloc(size_t size)
{
    static void *thrower;
    void (*fn)(void) = (void (*)(void))runtime_symbol(&thrower, RTLD_DEFAULT,
                                                      "_ZSt17__throw_bad_allocv");
    if (fn)
        fn(); /* does not return */
    hak_fatal("operator new(%zu): out of memory, and no C++ runtime in the process to throw "
              "std::bad_alloc",
              size);
}

/* ---- allocation ----------------------------------------------------------------------- */

static int valid_alignment(size_t align) { return align && !(align & (align - 1)); }

/* One attempt, out of line (the retry loops). align <= 16: the plain path. */
HAK_COLD static void *alloc_once(size_t size, size_t align)
{
    if (align <= HAK_MIN_ALIGN) {
        HAK_VG_ENTER();
        void *p = HAK_VALGRIND_BUILD ? NULL /* aligned new at 16 or less: */
                                     : hak_prof_sample_if_due(size, HAK_MIN_ALIGN, 0);
        if (!p)
            p = hak_alloc_fast(size);
        HAK_VG_LEAVE();
        HAK_VG_ALLOC(p, size, 0);
        return p;
    }
    return hak_aligned_alloc(align, size);
}

/* The standard's loop: while allocation fails, call the new-handler; with none, throw. */
HAK_COLD static void *new_failed(size_t size, size_t align)
{
    if (!valid_alignment(align))
        throw_bad_alloc(size);
    for (;;) {
        hak_new_handler_t h = current_new_handler();
        if (!h)
            throw_bad_alloc(size);
        h();
        void *p = alloc_once(size, align);
        if (p)
            return p;
    }
}

/* nothrow: NULL when there is no new-handler; with one, libstdc++'s own nothrow form runs the
 * loop through our throwing form and catches what the handler throws. */
HAK_COLD static void *new_nothrow_failed(size_t size, size_t align, const void *tag)
{
    if (!valid_alignment(align) || !current_new_handler()) {
        errno = ENOMEM;
        return NULL;
    }
    static void *plain, *aligned;
    if (align <= HAK_MIN_ALIGN) {
        void *(*fn)(size_t, const void *) = (void *(*)(size_t, const void *))runtime_symbol(
            &plain, RTLD_NEXT, "_ZnwmRKSt9nothrow_t");
        if (fn)
            return fn(size, tag);
    } else {
        void *(*fn)(size_t, size_t, const void *) =
            (void *(*)(size_t, size_t, const void *))runtime_symbol(
                &aligned, RTLD_NEXT, "_ZnwmSt11align_val_tRKSt9nothrow_t");
        if (fn)
            return fn(size, align, tag);
    }
    /* no libstdc++ after us: run the loop here (an exception from the handler escapes) */
    return new_failed(size, align);
}

/* Cold paths of the plain forms, in tail position so the hit path saves no register. A
 * failed refill of class c retries with c's size: the same class, whatever the size was. */
HAK_COLD static void *new_refill(unsigned class_idx)
{
    void *p = hak_tcache_refill(class_idx);
    return p ? p : new_failed(hak_class_size(class_idx), HAK_MIN_ALIGN);
}

HAK_COLD static void *new_large(size_t size, size_t align)
{
    void *p = hak_tcache_large(size, align, 0);
    return p ? p : new_failed(size, align);
}

HAK_COLD static void *new_nothrow_refill(unsigned class_idx)
{
    void *p = hak_tcache_refill(class_idx);
    return p ? p : new_nothrow_failed(hak_class_size(class_idx), HAK_MIN_ALIGN, NULL);
}

HAK_COLD static void *new_nothrow_large(size_t size, size_t align)
{
    void *p = hak_tcache_large(size, align, 0);
    return p ? p : new_nothrow_failed(size, align, NULL);
}

void *hak_cxx_new(size_t size) __asm__("_Znwm");
void *hak_cxx_new_nothrow(size_t size, const void *tag) __asm__("_ZnwmRKSt9nothrow_t");
void *hak_cxx_new_aligned(size_t size, size_t align) __asm__("_ZnwmSt11align_val_t");
void *hak_cxx_new_aligned_nothrow(size_t size, size_t align, const void *tag)
    __asm__("_ZnwmSt11align_val_tRKSt9nothrow_t");

/* new and its nothrow form jump through one pointer each, as malloc does (api.c): the plain
 * hit path, or its sampling variant (sampler.h), picked at the first call after library
 * init. */
static void *new_plain(size_t size) { return hak_alloc_fast_or(size, new_refill, new_large); }

static void *new_nothrow_plain(size_t size, const void *tag)
{
    return hak_alloc_fast_or(size, new_nothrow_refill, new_nothrow_large);
}

HAK_COLD static void *new_sampled(size_t size)
{
    void *p = hak_prof_sample(size, HAK_MIN_ALIGN, 0);
    return p ? p : new_plain(size);
}

static void *new_sampling(size_t size)
{
    return hak_alloc_sampling_or(size, new_sampled, new_refill, new_large);
}

HAK_COLD static void *new_nothrow_sampled(size_t size)
{
    void *p = hak_prof_sample(size, HAK_MIN_ALIGN, 0);
    return p ? p : new_nothrow_plain(size, NULL); /* the tag carries nothing */
}

static void *new_nothrow_sampling(size_t size, const void *tag)
{
    (void)tag;
    return hak_alloc_sampling_or(size, new_nothrow_sampled, new_nothrow_refill,
                                 new_nothrow_large);
}

static void *new_first(size_t size);
static void *new_nothrow_first(size_t size, const void *tag);

static struct {
    void *(*new_)(size_t);
    void *(*new_nothrow)(size_t, const void *);
} new_entry = {new_first, new_nothrow_first}; /* relaxed atomics, written with one value each */

HAK_COLD static void *new_first(size_t size)
{
    if (!__atomic_load_n(&hak_library_ready, __ATOMIC_ACQUIRE))
        return new_plain(size);
    void *(*fn)(size_t) = hak_sampler_wanted() ? new_sampling : new_plain;
    __atomic_store_n(&new_entry.new_, fn, __ATOMIC_RELAXED);
    return fn(size);
}

HAK_COLD static void *new_nothrow_first(size_t size, const void *tag)
{
    if (!__atomic_load_n(&hak_library_ready, __ATOMIC_ACQUIRE))
        return new_nothrow_plain(size, tag);
    void *(*fn)(size_t, const void *) =
        hak_sampler_wanted() ? new_nothrow_sampling : new_nothrow_plain;
    __atomic_store_n(&new_entry.new_nothrow, fn, __ATOMIC_RELAXED);
    return fn(size, tag);
}

HAKMEM_API void *hak_cxx_new(size_t size)
{
    if (HAK_VALGRIND_BUILD) /* memcheck must hear of the block: no tail call */
        return alloc_once(size, HAK_MIN_ALIGN) ?: new_failed(size, HAK_MIN_ALIGN);
    return __atomic_load_n(&new_entry.new_, __ATOMIC_RELAXED)(size);
}

/* The tag is a reference to std::nothrow, which carries nothing: the cold path passes NULL
 * to libstdc++'s nothrow form, which does not read it either. */
HAKMEM_API void *hak_cxx_new_nothrow(size_t size, const void *tag)
{
    if (HAK_VALGRIND_BUILD)
        return alloc_once(size, HAK_MIN_ALIGN) ?: new_nothrow_failed(size, HAK_MIN_ALIGN, tag);
    return __atomic_load_n(&new_entry.new_nothrow, __ATOMIC_RELAXED)(size, tag);
}

HAKMEM_API void *hak_cxx_new_aligned(size_t size, size_t align)
{
    void *p = valid_alignment(align) ? alloc_once(size, align) : NULL;
    if (HAK_UNLIKELY(!p))
        return new_failed(size, align);
    return p;
}

HAKMEM_API void *hak_cxx_new_aligned_nothrow(size_t size, size_t align, const void *tag)
{
    void *p = valid_alignment(align) ? alloc_once(size, align) : NULL;
    if (HAK_UNLIKELY(!p))
        return new_nothrow_failed(size, align, tag);
    return p;
}

/* new[] behaves as new. */
HAKMEM_API void *hak_cxx_new_array(size_t size) __asm__("_Znam") __attribute__((alias("_Znwm")));
HAKMEM_API void *hak_cxx_new_array_nothrow(size_t size, const void *tag)
    __asm__("_ZnamRKSt9nothrow_t") __attribute__((alias("_ZnwmRKSt9nothrow_t")));
HAKMEM_API void *hak_cxx_new_array_aligned(size_t size, size_t align)
    __asm__("_ZnamSt11align_val_t") __attribute__((alias("_ZnwmSt11align_val_t")));
HAKMEM_API void *hak_cxx_new_array_aligned_nothrow(size_t size, size_t align, const void *tag)
    __asm__("_ZnamSt11align_val_tRKSt9nothrow_t")
    __attribute__((alias("_ZnwmSt11align_val_tRKSt9nothrow_t")));

/* ---- deallocation --------------------------------------------------------------------- */

HAK_COLD __attribute__((noreturn)) static void delete_interior(void *ptr, unsigned class_idx)
{
    hak_bad_interior(ptr, class_idx, "operator delete");
}

/* hak_free_x16_or's cold path for sized delete, reached only with a small class's tag: the
 * pointer is inside a block. */
HAK_COLD __attribute__((noreturn)) static void delete_not_block_start(void *ptr)
{
    delete_interior(ptr, hak_pm_class(hak_pagemap_get((uintptr_t)ptr)));
}

/* A sized delete whose size is not the one the block was allocated with. */
HAK_COLD __attribute__((noreturn)) static void wrong_size(void *ptr, size_t size, size_t align,
                                                          unsigned tag, size_t usable)
{
    char what[96];
    if (tag == HAK_PM_LARGE)
        hak_fmt(what, sizeof what, "a large block of %zu usable bytes", usable);
    else if (align > HAK_MIN_ALIGN)
        hak_fmt(what, sizeof what, "a %u-byte block", hak_class_size(tag - 1));
    else
        hak_fmt(what, sizeof what, "a %u-byte block, allocated for %u to %u bytes",
                hak_class_size(tag - 1), tag > 1 ? hak_class_size(tag - 2) + 1 : 0,
                hak_class_size(tag - 1));
    if (align > HAK_MIN_ALIGN)
        hak_fatal("operator delete(%p, %zu, align %zu): wrong size: it is %s", ptr, size, align,
                  what);
    hak_fatal("operator delete(%p, %zu): wrong size: it is %s", ptr, size, what);
}

/* The page map did not show a small block of the class the size gives (align: 16 for the
 * plain forms). NULL: nothing. A small block of another class, or a large block smaller than
 * the size, or a large block for a size a class serves: a wrong size. Else free's slow path,
 * which frees a large block and aborts on a pointer hakmem does not own. */
HAK_COLD static void delete_sized_slow(void *ptr, size_t size, size_t align)
{
    if (!ptr)
        return;
    uint64_t entry = hak_pagemap_get((uintptr_t)ptr);
    unsigned tag = hak_pm_tag(entry);
    unsigned expect = align > HAK_MIN_ALIGN ? hak_aligned_class(align, size)
                      : size <= HAK_MAX_CLASS_SIZE ? hak_size_to_class(size)
                                                    : HAK_NUM_CLASSES;
    if (tag >= 1 && tag <= HAK_NUM_CLASSES) {
        if (!hak_is_block_start(hak_span_offset((uintptr_t)ptr, tag - 1), tag - 1))
            delete_interior(ptr, tag - 1);
        if (tag - 1 != expect)
            wrong_size(ptr, size, align, tag, 0);
        hak_free_x16_or(ptr, (uintptr_t)tag * 16u, delete_not_block_start); /* an aligned
                                                                            * block */
        return;
    }
    if (tag == HAK_PM_LARGE) {
        size_t usable = hak_large_usable_size(ptr, "operator delete"); /* aborts unless live */
        if (expect < HAK_NUM_CLASSES || size > usable)
            wrong_size(ptr, size, align, tag, usable);
    }
    hak_free_unusual(ptr); /* a sampled block's free is counted there (no size check) */
}

/* Indexed by page-map tag (class + 1 for a small span): the sizes new serves from that
 * class, lo <= size <= hi, where lo is the previous class's size + 1 (class 0 also serves
 * size 0) and hi the class size. Every other tag (0: not ours or NULL, HAK_PM_LARGE) has an
 * empty range, so this one check also sends them to the cold path. 64-bit, so that each bound
 * is one compare with the size argument. */
#define HAK_SB_LO(size, span_kib, refill) (size) + 1u,
#define HAK_SB_HI(size, span_kib, refill) (size),
static const struct {
    uint64_t lo[HAK_PM_TAGS];
    uint64_t hi[HAK_PM_TAGS];
} sized_bounds = {
    /* lo[1] = 0 (class 0); lo[2..41] from the list: lo[t] = class t-2's size + 1, so
     * lo[41] = 32769 lies above hi[41] = 0; lo[42..63] = 1 */
    {[0] = 1, [1] = 0, HAK_CLASS_LIST(HAK_SB_LO)[HAK_NUM_CLASSES + 2 ... HAK_PM_TAGS - 1] = 1},
    {[1] = HAK_CLASS_LIST(HAK_SB_HI)},
};
_Static_assert(HAK_PM_LARGE > HAK_NUM_CLASSES + 1, "the large tag has an empty range");
#undef HAK_SB_LO
#undef HAK_SB_HI

/* The class comes from the page map, as in free; the size must be one of that class. */
static inline __attribute__((always_inline)) void delete_sized(void *ptr, size_t size)
{
    uintptr_t x16 = hak_pagemap_x16((uintptr_t)ptr);
    uintptr_t tag = x16 >> 4;
    if (HAK_UNLIKELY(size > sized_bounds.hi[tag] || size < sized_bounds.lo[tag])) {
        delete_sized_slow(ptr, size, HAK_MIN_ALIGN);
        return;
    }
    hak_free_x16_or(ptr, x16, delete_not_block_start);
}

void hak_cxx_delete(void *ptr) __asm__("_ZdlPv");
void hak_cxx_delete_sized(void *ptr, size_t size) __asm__("_ZdlPvm");
void hak_cxx_delete_sized_aligned(void *ptr, size_t size, size_t align)
    __asm__("_ZdlPvmSt11align_val_t");

HAKMEM_API void hak_cxx_delete(void *ptr)
{
    HAK_VG_FREE(ptr);
    HAK_VG_ENTER();
    hak_free_fast(ptr);
    HAK_VG_LEAVE();
}

HAKMEM_API void hak_cxx_delete_sized(void *ptr, size_t size)
{
    HAK_VG_FREE(ptr);
    HAK_VG_ENTER();
    delete_sized(ptr, size);
    HAK_VG_LEAVE();
}

HAKMEM_API void hak_cxx_delete_sized_aligned(void *ptr, size_t size, size_t align)
{
    HAK_VG_FREE(ptr);
    HAK_VG_ENTER();
    if (align <= HAK_MIN_ALIGN)
        delete_sized(ptr, size);
    else
        delete_sized_slow(ptr, size, align); /* rare: the check out of line */
    HAK_VG_LEAVE();
}

/* Every other delete frees as free does: the alignment and the nothrow tag change nothing
 * (each is an extra argument the function does not read). */
#define HAK_DELETE_ALIAS(cname, mangled)                                                     \
    HAKMEM_API void cname(void *ptr) __asm__(mangled) __attribute__((alias("_ZdlPv")));
HAK_DELETE_ALIAS(hak_cxx_delete_array, "_ZdaPv")
HAK_DELETE_ALIAS(hak_cxx_delete_nothrow, "_ZdlPvRKSt9nothrow_t")
HAK_DELETE_ALIAS(hak_cxx_delete_array_nothrow, "_ZdaPvRKSt9nothrow_t")
HAK_DELETE_ALIAS(hak_cxx_delete_aligned, "_ZdlPvSt11align_val_t")
HAK_DELETE_ALIAS(hak_cxx_delete_array_aligned, "_ZdaPvSt11align_val_t")
HAK_DELETE_ALIAS(hak_cxx_delete_aligned_nothrow, "_ZdlPvSt11align_val_tRKSt9nothrow_t")
HAK_DELETE_ALIAS(hak_cxx_delete_array_aligned_nothrow, "_ZdaPvSt11align_val_tRKSt9nothrow_t")
#undef HAK_DELETE_ALIAS

HAKMEM_API void hak_cxx_delete_array_sized(void *ptr, size_t size) __asm__("_ZdaPvm")
    __attribute__((alias("_ZdlPvm")));
HAKMEM_API void hak_cxx_delete_array_sized_aligned(void *ptr, size_t size, size_t align)
    __asm__("_ZdaPvmSt11align_val_t") __attribute__((alias("_ZdlPvmSt11align_val_t")));
