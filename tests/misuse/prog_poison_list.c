/* tests/misuse/prog_poison_list.c - glibc's "tcache poisoning": free two 48-byte blocks, write
 * the address of a static buffer over the first word of the second (the list's head, whose
 * word 0 links to the first), malloc twice. Must die by SIGABRT after a "hakmem: ..." line
 * naming the second block, and never return the planted pointer ("planted" on stdout). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "misuse_prog.h"

static char target[256] __attribute__((aligned(64)));

int main(void)
{
    void *a = hide(malloc(48)), *b = hide(malloc(48));
    memset(a, 1, 48);
    memset(b, 2, 48);
    free(a);
    free(b);
    say("ptr", b);
    *(uintptr_t *)b = (uintptr_t)target; /* the write after free */
    void *p1 = hide(malloc(48));
    void *p2 = hide(malloc(48));
    if (p1 == (void *)target || p2 == (void *)target)
        say("planted pointer returned", target);
    say("survived", p2);
    return 0;
}
