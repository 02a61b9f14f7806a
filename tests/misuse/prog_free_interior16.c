/* tests/misuse/prog_free_interior16.c - free() of p+16 of a live 64-byte block.
 * Run by tests/misuse/test_misuse.c with LD_PRELOAD: must die by SIGABRT after a line
 * "hakmem: ..." on stderr naming the pointer printed below (%p). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "misuse_prog.h"

int main(void)
{
    char *b = malloc(64);
    memset(b, 2, 64);
    void *p = hide(b + 16);
    say("ptr", p);
    free(p);
    say("survived", p);
    return 0; /* reaching here means the misuse went unnoticed */
}
