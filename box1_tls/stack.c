/* box1_tls/stack.c - stack capture with libgcc's unwinder (stack.h). */
#include "stack.h"

#include <elf.h>
#include <link.h>
#include <sys/auxv.h>
#include <unwind.h>

/* The first and last bytes of hakmem's own code, from the linker: in libhakmem.so they
 * bound the library. Linked into a program (libhakmem.a), they bound the program, so
 * nothing is skipped by address and only the capture's own frames go. */
extern const char __ehdr_start[] __attribute__((visibility("hidden")));
extern const char __etext[] __attribute__((visibility("hidden")));

/* Frames of the profiler itself to drop when hakmem is linked into the program. */
#define OWN_FRAMES 2

typedef struct walk {
    uintptr_t *frames;
    int max, n;
    int skip;          /* frames still to drop (linked in) */
    int skip_own_text; /* drop leading frames inside [__ehdr_start, __etext) */
} walk_t;

static int in_own_text(uintptr_t ip)
{
    return ip >= (uintptr_t)__ehdr_start && ip < (uintptr_t)__etext;
}

static int linked_into_program(void)
{
    const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)__ehdr_start;
    return (uintptr_t)__ehdr_start + eh->e_phoff == getauxval(AT_PHDR);
}

static _Unwind_Reason_Code step(struct _Unwind_Context *ctx, void *arg)
{
    walk_t *w = arg;
    uintptr_t ip = _Unwind_GetIP(ctx);
    if (!ip)
        return _URC_END_OF_STACK;
    if (w->n == 0) {
        if (w->skip_own_text && in_own_text(ip))
            return _URC_NO_REASON;
        if (w->skip > 0) {
            w->skip--;
            return _URC_NO_REASON;
        }
    }
    w->frames[w->n++] = ip;
    return w->n < w->max ? _URC_NO_REASON : _URC_END_OF_STACK;
}

int hak_stack_capture(uintptr_t *frames, int max)
{
    static int mode; /* 0 not yet known, 1 shared library, 2 linked into the program */
    int m = __atomic_load_n(&mode, __ATOMIC_RELAXED);
    if (!m) {
        m = linked_into_program() ? 2 : 1;
        __atomic_store_n(&mode, m, __ATOMIC_RELAXED);
    }
    walk_t w = {frames, max, 0, m == 2 ? OWN_FRAMES : 0, m == 1};
    _Unwind_Backtrace(step, &w);
    return w.n;
}
