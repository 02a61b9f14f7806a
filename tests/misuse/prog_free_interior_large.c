/* tests/misuse/prog_free_interior_large.c - free() of p+4096 of a live 1 MiB block.
 * Run by tests/misuse/test_misuse.c with LD_PRELOAD: must die by SIGABRT after a line
 * "hakmem: ..." on stderr naming the pointer printed below (%p). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "misuse_prog.h"

int main(void)
{
    char *b = malloc(1u << 20);
    memset(b, 2, 1u << 20);
    void *p = hide(b + 4096);
    say("ptr", p);
    free(p);
    say("survived", p);
    return 0; /* reaching here means the misuse went unnoticed */
}
