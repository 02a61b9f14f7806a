/* tests/misuse/prog_free_stack.c - free() of a pointer to a stack buffer.
 * Run by tests/misuse/test_misuse.c with LD_PRELOAD: must die by SIGABRT after a line
 * "hakmem: ..." on stderr naming the pointer printed below (%p). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "misuse_prog.h"

int main(void)
{
    _Alignas(64) char buf[256];
    memset(buf, 1, sizeof buf);
    void *p = hide(buf + 64);
    say("ptr", p);
    free(p);
    say("survived", p);
    return 0; /* reaching here means the misuse went unnoticed */
}
