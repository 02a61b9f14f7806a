/* tests/misuse/prog_free_static.c - free() of a pointer into a static array.
 * Run by tests/misuse/test_misuse.c with LD_PRELOAD: must die by SIGABRT after a line
 * "hakmem: ..." on stderr naming the pointer printed below (%p). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "misuse_prog.h"

int main(void)
{
    static _Alignas(4096) char arena[65536];
    void *warm = malloc(32);
    free(warm);
    arena[100] = 1;
    void *p = hide(arena + 4096);
    say("ptr", p);
    free(p);
    say("survived", p);
    return 0; /* reaching here means the misuse went unnoticed */
}
