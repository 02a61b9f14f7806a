/* box1_tls/stack.h - the calling thread's stack, as return addresses, for the profiler.
 *
 * A real unwinder: libgcc's _Unwind_Backtrace, linked directly (-lgcc_s), which reads the
 * .eh_frame tables, so programs built without frame pointers (Debian's) unwind. Never glibc's
 * backtrace(), which dlopens libgcc_s and allocates on its first call. libgcc (GCC 12 with
 * glibc 2.35 or later) finds each frame's unwind table with _dl_find_object, which takes no
 * lock and does not allocate, so a capture cannot deadlock with dlopen, and it works in a
 * signal handler. The caller still guards against recursion (profiler.c): if anything in the
 * unwinder ever allocates, that allocation is not sampled.
 *
 * A capture from a call chain seen before (the same stack pointer here, the same return
 * addresses at the same places up the stack) is served by the stack cache of stack.c without
 * unwinding: a few dozen loads instead of about 100 ns a frame.
 */
#ifndef HAK_BOX1_STACK_H
#define HAK_BOX1_STACK_H

#include <stdint.h>

#define HAK_STACK_MAX 64 /* frames kept, the innermost first */

/* The stack cache's entry a capture matched or filled (NULL: none), and its note: a word the
 * caller hung on that entry's frames with hak_stack_set_note (0: none yet). The profiler
 * keeps the bucket of the frames there, so a capture from a known call chain finds its
 * bucket without hashing or comparing frames. */
typedef struct hak_stack_seen {
    void *entry;
    uint64_t seq;
    uintptr_t note;
} hak_stack_seen_t;

/* Up to max return addresses of the calling thread, starting at the innermost frame outside
 * hakmem (frames of hakmem's own code at the top are skipped); returns how many. With seen,
 * tells what the stack cache knew (above). */
int hak_stack_capture(uintptr_t *frames, int max, hak_stack_seen_t *seen);

/* Hang note on the entry seen names, for later captures of the same frames (with the
 * same max); nothing if that entry changed since. */
void hak_stack_set_note(const hak_stack_seen_t *seen, uintptr_t note);

#endif
