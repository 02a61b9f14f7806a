/* tests/misuse/prog_realloc_interior.c - realloc of a pointer 16 bytes into a 64-byte block.
 * Must die by SIGABRT after a "hakmem: realloc(...)" line naming that pointer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "misuse_prog.h"

int main(void)
{
    char *p = hide(malloc(64));
    memset(p, 3, 64);
    say("ptr", p + 16);
    p = hide(realloc(p + 16, 100));
    say("survived", p);
    return 0;
}
