/* shared_contracts/ace_hooks.h - how Box 2 starts, stops and forks the ACE learner without
 * naming Box 3.
 *
 * hak_ace_hooks holds no-op defaults. Box 3 installs its functions with hak_ace_hooks_install
 * from a constructor of priority 102, which runs before the library's constructors without a
 * priority (only the page map's boot, priority 101, runs earlier), and from nothing else. Box 2 calls the hooks: start from library init (never with an allocator
 * lock held: the learner's pthread_create allocates), stop at process exit, fork_prepare /
 * fork_parent / fork_child around fork. A process whose library was built without Box 3, or a
 * program linked statically without its objects, keeps the no-ops: ACE is then off.
 *
 * Because a program may allocate before the library's constructors run (another library's
 * constructor, libstdc++'s emergency pool), Box 3's constructor also starts the learner when
 * POOL_ACE asks for it and library init has already happened: each hook is idempotent.
 *
 * Synchronisation: the table is written once, by that constructor, while the process is
 * single-threaded (constructors of a preloaded library run before main and before any thread
 * the program creates); read anywhere afterwards.
 */
#ifndef HAK_ACE_HOOKS_H
#define HAK_ACE_HOOKS_H

typedef struct hak_ace_hooks {
    void (*start)(void);        /* start the learner if POOL_ACE asks for it; once */
    void (*stop)(void);         /* stop and join it (process exit) */
    void (*fork_prepare)(void); /* before fork: quiesce the learner and urcu-bp */
    void (*fork_parent)(void);
    void (*fork_child)(void);   /* the child has no learner; the last table stays in force */
} hak_ace_hooks_t;

extern hak_ace_hooks_t hak_ace_hooks;

void hak_ace_hooks_install(const hak_ace_hooks_t *hooks);

/* Set by Box 2 when library init has finished (release store; acquire loads). */
extern int hak_library_ready;

#endif
