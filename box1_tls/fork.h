/* box1_tls/fork.h - the atfork handlers of fork.c, which guard Box 2's locks across a fork
 * that does not come through hakmem's fork(). */
#ifndef HAK_BOX1_FORK_H
#define HAK_BOX1_FORK_H

/* Register them with pthread_atfork (which may allocate). Once, from the library's
 * constructor (library_start, api.c), never from an allocation path: a malloc nested in
 * pthread_atfork must not register anything (glibc holds its atfork lock while it allocates).
 * Keeps errno. */
void hak_fork_handlers_register(void);

#endif
