/* box1_tls/misuse.h - the cold paths of free that tell chance from misuse (misuse.c). The hit
 * paths (fastpath.h, cxx_operators.c) branch here when a check fails; each aborts with a
 * hakmem: message naming the pointer, or hands the pointer on where it is no misuse. */
#ifndef HAK_BOX1_MISUSE_H
#define HAK_BOX1_MISUSE_H

#include <stdint.h>

/* free's block-start check failed: NULL, a large or sampled block, a pointer hakmem does not
 * own (Box 2's hak_free_slow), or a pointer inside a small block (aborts). */
void hak_free_unusual(void *ptr);

/* Word 1 of the block is the free key: a double free (aborts) or chance (pushes it). */
void hak_free_recheck(void *ptr, uintptr_t x16);

/* ptr lies inside a block of class_idx, not at its start: aborts, naming the block. */
__attribute__((noreturn, cold)) void hak_bad_interior(void *ptr, unsigned class_idx,
                                                      const char *caller);

#endif
