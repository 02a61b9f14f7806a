/* tests/misuse/prog_overflow_into_free.c - a linear overflow from one 48-byte block into its
 * freed neighbour: 16 bytes of 'A' past the end of a, over the link and the free key of b,
 * which was freed first and is the head of the class's list. The next malloc of the class pops
 * b: it must die by SIGABRT after a "hakmem: ..." line naming b. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "misuse_prog.h"

int main(void)
{
    /* two neighbours: consecutive allocations from a fresh span come in address order */
    void *blocks[64];
    char *a = NULL, *b = NULL;
    for (int i = 0; i < 64; i++) {
        blocks[i] = hide(malloc(48));
        memset(blocks[i], 3, 48);
        if (i && (char *)blocks[i] == (char *)blocks[i - 1] + 48) {
            a = blocks[i - 1];
            b = blocks[i];
            break;
        }
    }
    if (!b) {
        printf("no two neighbouring blocks\n");
        return 2;
    }
    free(b);
    say("ptr", b);
    memset(a, 'A', 48 + 16); /* the overflow */
    void *p = hide(malloc(48));
    say("survived", p);
    return 0;
}
