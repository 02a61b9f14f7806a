/* tests/misuse/misuse_prog.h - the two helpers every misuse program uses. */
#ifndef HAKMEM_MISUSE_PROG_H
#define HAKMEM_MISUSE_PROG_H

#include <stdio.h>

/* opaque to the optimiser, so the misuse happens exactly as written */
static void *volatile launder;
static inline void *hide(void *p)
{
    launder = p;
    return launder;
}

/* "ptr 0x..." before the misuse (the driver reads it), "survived ..." after it */
static inline void say(const char *what, void *p)
{
    printf("%s %p\n", what, p);
    fflush(stdout);
}

#endif
