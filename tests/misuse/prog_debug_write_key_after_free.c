/* tests/misuse/prog_debug_write_key_after_free.c - free(p), write into bytes 8-15 of p (word
 * 1, where a free block keeps the free key; debug mode's poison starts at byte 16), then
 * allocate until p is handed out again. Run with HAKMEM_DEBUG=1: must die by SIGABRT after a
 * "hakmem: ..." line naming p (the lost key is found when the block would be reused). */
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
    p[9] = 7; /* the misuse */
    for (int i = 0; i < 300; i++)
        hide(malloc(100));
    say("survived", p);
    return 0;
}
