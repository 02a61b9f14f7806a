/* tests/misuse/prog_double_free_after_exit.c - a thread frees a 48-byte block and exits (its
 * lists go back to the allocator: a mailbox, the depot or the spans), then the main thread
 * frees the block again. Must die by SIGABRT after a "hakmem: ..." line naming the block. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "misuse_prog.h"

static void *p;

static void *alloc_and_free(void *arg)
{
    (void)arg;
    p = hide(malloc(48));
    memset(p, 3, 48);
    free(p);
    return NULL;
}

int main(void)
{
    pthread_t t;
    pthread_create(&t, NULL, alloc_and_free, NULL);
    pthread_join(t, NULL);
    say("ptr", p);
    free(p);
    say("survived", p);
    return 0;
}
