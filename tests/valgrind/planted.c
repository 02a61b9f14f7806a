/* tests/valgrind/planted.c - a program with three planted bugs that memcheck must report
 * when it runs on hakmem's valgrind build: a leak of 100 bytes, a read after free, and a
 * read past the end of a 40-byte block. The line numbers are checked by run.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    char *leak = malloc(100);
    leak[0] = 1;
    leak = NULL; /* PLANTED: leak */
    char *p = malloc(64);
    memset(p, 7, 64);
    free(p);
    volatile char after_free = p[10]; /* PLANTED: read after free */
    char *q = malloc(40);
    memset(q, 1, 40);
    volatile char past_end = q[45]; /* PLANTED: read past the end */
    free(q);
    for (int i = 0; i < 1000; i++) /* correct use: must add no error */
        free(malloc((size_t)i * 7));
    void *big = calloc(1, 1 << 20);
    free(big);
    printf("done %d %d\n", after_free, past_end);
    return 0;
}
