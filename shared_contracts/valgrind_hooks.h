/* shared_contracts/valgrind_hooks.h - memcheck client requests, compiled in only for the
 * valgrind build (make lib-valgrind: -DHAKMEM_VALGRIND), empty otherwise.
 *
 * In that build every API call runs with memcheck's error reporting off while hakmem touches
 * its own free lists (HAK_VG_ENTER/LEAVE), and tells memcheck where a program's blocks begin
 * and end (MALLOCLIKE/FREELIKE), so a program's leaks, reads after free and overruns are
 * reported as they are under glibc. The default build compiles every macro to nothing.
 */
#ifndef HAK_VALGRIND_HOOKS_H
#define HAK_VALGRIND_HOOKS_H

#ifdef HAKMEM_VALGRIND
#include <valgrind/memcheck.h>
#define HAK_VALGRIND_BUILD 1
#define HAK_VG_ENTER() VALGRIND_DISABLE_ERROR_REPORTING
#define HAK_VG_LEAVE() VALGRIND_ENABLE_ERROR_REPORTING
#include <malloc.h>
/* The block's slack past the requested size is made unaddressable, so overruns show. */
#define HAK_VG_ALLOC(p, n, zeroed)                                                       \
    do {                                                                                 \
        if (p) {                                                                         \
            VALGRIND_MALLOCLIKE_BLOCK((p), (n), 0, (zeroed));                            \
            VALGRIND_MAKE_MEM_NOACCESS((char *)(p) + (n), malloc_usable_size(p) - (n)); \
        }                                                                                \
    } while (0)
#define HAK_VG_FREE(p)                        \
    do {                                      \
        if (p)                                \
            VALGRIND_FREELIKE_BLOCK((p), 0);  \
    } while (0)
#else
#define HAK_VALGRIND_BUILD 0
#define HAK_VG_ENTER() ((void)0)
#define HAK_VG_LEAVE() ((void)0)
#define HAK_VG_ALLOC(p, n, zeroed) ((void)0)
#define HAK_VG_FREE(p) ((void)0)
#endif

#endif
