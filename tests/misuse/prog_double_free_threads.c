/* tests/misuse/prog_double_free_threads.c - a 48-byte block freed by the main thread, then
 * freed again by a second thread, then two mallocs (without a check both would return the same
 * block). Must die by SIGABRT after a "hakmem: ..." line naming the block; "twice" on stdout
 * means the block was handed out twice. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "misuse_prog.h"

static void *p;

static void *free_again(void *arg)
{
    (void)arg;
    void *warm = hide(malloc(48)); /* this thread's cache is started */
    free(warm);
    free(p); /* the second free, from another thread */
    void *q1 = hide(malloc(48)), *q2 = hide(malloc(48));
    if (q1 == p || q2 == p)
        say("handed out again by the second thread", p);
    return NULL;
}

int main(void)
{
    p = hide(malloc(48));
    memset(p, 3, 48);
    say("ptr", p);
    free(p);
    pthread_t t;
    pthread_create(&t, NULL, free_again, NULL);
    pthread_join(t, NULL);
    void *m1 = hide(malloc(48)), *m2 = hide(malloc(48));
    if (m1 == p || m2 == p)
        say("handed out again by the main thread", p);
    say("survived", p);
    return 0;
}
