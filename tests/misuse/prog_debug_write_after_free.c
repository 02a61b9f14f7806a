/* tests/misuse/prog_debug_write_after_free.c - free(p), write into p, then allocate until
 * p is handed out again. Run with HAKMEM_DEBUG=1: must die by SIGABRT after a "hakmem: ..."
 * line naming p (the write is found when the block would be reused). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "misuse_prog.h"

int main(void)
{
    char *p = hide(malloc(100));
    memset(p, 3, 100);
    say("ptr", p);
    free(p);
    p[50] = 7; /* the misuse */
    for (int i = 0; i < 300; i++)
        hide(malloc(100));
    say("survived", p);
    return 0;
}
