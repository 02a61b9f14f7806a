/* tests/misuse/prog_free_wild.c - free() of an address hakmem never returned (0x12345670).
 * Run by tests/misuse/test_misuse.c with LD_PRELOAD: must die by SIGABRT after a line
 * "hakmem: ..." on stderr naming the pointer printed below (%p). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "misuse_prog.h"

int main(void)
{
    void *warm = malloc(32); /* the allocator is initialised and has spans */
    free(warm);
    void *p = hide((void *)0x12345670);
    say("ptr", p);
    free(p);
    say("survived", p);
    return 0; /* reaching here means the misuse went unnoticed */
}
