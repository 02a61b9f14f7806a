/* tests/misuse/prog_debug_double_free_far.c - free(p), then 300 blocks of the same class
 * allocated and freed (so p leaves the thread's list for the depot), then free(p) again.
 * Must die by SIGABRT after a "hakmem: ..." line naming p, with HAKMEM_DEBUG=1 or without. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "misuse_prog.h"

int main(void)
{
    void *q[300];
    void *p = hide(malloc(100));
    memset(p, 3, 100);
    say("ptr", p);
    free(p);
    for (int i = 0; i < 300; i++)
        q[i] = hide(malloc(100));
    for (int i = 0; i < 300; i++)
        free(q[i]);
    free(p);
    say("survived", p);
    return 0;
}
