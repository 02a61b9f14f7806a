/* tests/misuse/prog_double_free_mid.c - free(p); free(p) of a 20 KiB block (a mid-size class).
 * Run by tests/misuse/test_misuse.c with LD_PRELOAD: must die by SIGABRT after a line
 * "hakmem: ..." on stderr naming the pointer printed below (%p). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "misuse_prog.h"

int main(void)
{
    void *p = hide(malloc(20000));
    memset(p, 3, 20000);
    say("ptr", p);
    free(p);
    free(p);
    say("survived", p);
    return 0; /* reaching here means the misuse went unnoticed */
}
