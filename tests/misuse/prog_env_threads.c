/* tests/misuse/prog_env_threads.c - an ordinary multi-threaded program for the environment
 * tests: 4 threads allocate and free, one block crosses threads, then it prints "ok". A bad
 * environment value must give one warning per process, not one per thread. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *shared[4];

static void *worker(void *arg)
{
    long id = (long)arg;
    for (int i = 0; i < 20000; i++) {
        size_t n = 1 + (size_t)((i * 7919 + id * 31) % 40000);
        char *p = malloc(n);
        if (!p)
            return (void *)1;
        p[0] = p[n - 1] = (char)i;
        free(p);
    }
    shared[id] = malloc(100);
    return shared[id] ? NULL : (void *)1;
}

int main(void)
{
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)i))
            return 2;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        if (r)
            return 3;
        free(shared[i]); /* allocated by another thread */
    }
    printf("ok\n");
    return 0;
}
