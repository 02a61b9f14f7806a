/* tests/misuse/prog_double_free_interleaved.c - free(p); free(q); free(p) of two 64-byte blocks.
 * Run by tests/misuse/test_misuse.c with LD_PRELOAD: must die by SIGABRT after a line
 * "hakmem: ..." on stderr naming the pointer printed below (%p). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "misuse_prog.h"

int main(void)
{
    void *p = hide(malloc(64));
    void *q = hide(malloc(64));
    say("ptr", p);
    free(p);
    free(q);
    free(p);
    say("survived", p);
    return 0; /* reaching here means the misuse went unnoticed */
}
