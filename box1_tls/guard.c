/* box1_tls/guard.c - guarded sampling: the choice, the stacks, and the fault report
 * (guard.h). */
#include "guard.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sampler.h"
#include "stack.h"
#include "shared_contracts/backend.h"
#include "shared_contracts/config.h"
#include "shared_contracts/diag.h"

#define STACKS_MAGIC 0x6b63617473647267ull /* "grdstack" */

/* In a guarded slot's scratch bytes: the stacks of its allocation and of its free. */
typedef struct stacks {
    uint64_t magic;
    uint32_t n_alloc, n_free;
    uintptr_t alloc[HAK_STACK_MAX];
    uintptr_t freed[HAK_STACK_MAX];
} stacks_t;
_Static_assert(sizeof(stacks_t) <= HAK_SAMPLED_SCRATCH, "the stacks fit the scratch bytes");

static struct sigaction previous; /* SIGSEGV's action before ours */

int hak_guard_on(void) { return hak_config.guard_sample != 0; }

int hak_guard_take(size_t size)
{
    if (size > HAK_GUARD_MAX_SIZE)
        return 0;
    double n = (double)hak_config.guard_sample;
    if (n <= 1.0)
        return 1;
    double sampled = hak_sample_chance(size);
    double keep = sampled > 0.0 ? (1.0 / n) / sampled : 1.0;
    return (double)(hak_sample_random() >> 11) * 0x1.0p-53 < keep;
}

void *hak_guard_alloc(size_t size, int zero, uintptr_t note, const uintptr_t *frames, int n)
{
    if (size > HAK_GUARD_MAX_SIZE)
        return NULL;
    void *p = hak_guarded_alloc(size, zero, (int)(hak_sample_random() >> 63), note);
    if (!p)
        return NULL;
    stacks_t *st = hak_sampled_scratch(p);
    if (frames) {
        memcpy(st->alloc, frames, (size_t)n * sizeof *frames);
        st->n_alloc = (uint32_t)n;
    } else {
        st->n_alloc = (uint32_t)hak_stack_capture(st->alloc, HAK_STACK_MAX, NULL);
    }
    st->n_free = 0;
    st->magic = STACKS_MAGIC;
    return p;
}

void hak_guard_free(void *ptr)
{
    hak_guard_fault_t f;
    /* A live guarded block: the fault lookup of the byte below its page (its lower guard)
     * names it; for any other pointer that lookup finds no guarded slot's guard page, or
     * another block. */
    if (!hak_sampled_fault(((uintptr_t)ptr & ~(uintptr_t)4095) - 1, &f) ||
        f.kind != HAK_GUARD_UNDERFLOW || f.block != (uintptr_t)ptr)
        return;
    stacks_t *st = f.scratch;
    st->n_free = (uint32_t)hak_stack_capture(st->freed, HAK_STACK_MAX, NULL);
}

static void put_stack(const char *what, const uintptr_t *frames, uint32_t n)
{
    char line[2048];
    size_t len = hak_fmt(line, sizeof line, "hakmem: %s", what);
    for (uint32_t i = 0; i < n && len + 24 < sizeof line; i++)
        len += hak_fmt(line + len, sizeof line - len, " %p", (void *)frames[i]);
    if (len + 1 < sizeof line)
        line[len++] = '\n';
    hak_write_all(2, line, len);
}

/* A SIGSEGV that is not a guarded block's goes where it would have gone without hakmem, as
 * GWP-ASan's handler passes it on: to the previous handler, called from here (ours stays
 * installed for the next guarded fault), or to the previous disposition. An access fault
 * repeats when this handler returns; a signal sent by kill, raise or sigqueue (si_code <= 0)
 * does not, so under the default action it is raised again (pending until the return):
 * returning alone would resume the program (Python's faulthandler._sigsegv() exited 0 so). */
static void pass_on(int sig, siginfo_t *info, void *uctx)
{
    int fault = info->si_code > 0; /* the kernel's, for an access: it repeats on return */
    if (previous.sa_flags & SA_SIGINFO) {
        previous.sa_sigaction(sig, info, uctx);
    } else if (previous.sa_handler == SIG_DFL ||
               (previous.sa_handler == SIG_IGN && fault)) { /* an access fault cannot be
                                                              * ignored: the kernel kills */
        signal(SIGSEGV, SIG_DFL);
        if (!fault)
            raise(sig);
    } else if (previous.sa_handler != SIG_IGN) {
        previous.sa_handler(sig);
    }
}

static void on_fault(int sig, siginfo_t *info, void *uctx)
{
    hak_guard_fault_t f;
    uintptr_t addr = (uintptr_t)info->si_addr;
    if (info->si_code <= 0 || !hak_sampled_fault(addr, &f)) {
        pass_on(sig, info, uctx);
        return;
    }
    char line[512];
    size_t len;
    if (f.kind == HAK_GUARD_OVERFLOW)
        len = hak_fmt(line, sizeof line,
                      "hakmem: heap-buffer-overflow at %p: %zu byte(s) after the %zu-byte block "
                      "at %p\n",
                      (void *)addr, (size_t)(addr - f.block - f.size), f.size, (void *)f.block);
    else if (f.kind == HAK_GUARD_UNDERFLOW)
        len = hak_fmt(line, sizeof line,
                      "hakmem: heap-buffer-underflow at %p: %zu byte(s) before the %zu-byte block "
                      "at %p\n",
                      (void *)addr, (size_t)(f.block - addr), f.size, (void *)f.block);
    else if (f.kind == HAK_GUARD_USE_AFTER_FREE)
        len = hak_fmt(line, sizeof line,
                      "hakmem: use-after-free at %p: %zu byte(s) into the freed %zu-byte block at "
                      "%p\n",
                      (void *)addr, (size_t)(addr - f.block), f.size, (void *)f.block);
    else
        len = hak_fmt(line, sizeof line,
                      "hakmem: use-after-free at %p: next to the freed %zu-byte block at %p\n",
                      (void *)addr, f.size, (void *)f.block);
    hak_write_all(2, line, len < sizeof line ? len : sizeof line - 1);
    const stacks_t *st = f.scratch;
    if (st->magic == STACKS_MAGIC) {
        put_stack("allocated at:", st->alloc, st->n_alloc);
        if (f.kind == HAK_GUARD_USE_AFTER_FREE || f.kind == HAK_GUARD_NEAR_FREED)
            put_stack("freed at:", st->freed, st->n_free);
    }
    signal(SIGABRT, SIG_DFL);
    abort();
}

void hak_guard_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &previous);
}
