/* tests/lib/testlib.h - helpers shared by the api, stress, integration and misuse tiers.
 *
 * Nothing here depends on hakmem: the helpers spawn programs (optionally with LD_PRELOAD),
 * capture their output with a deadline, run a scenario in a forked child under a watchdog,
 * and read /proc/self/status. Children report failures on stderr and through their exit code;
 * they never use CMocka assertions (a failed assertion would longjmp inside the child).
 */
#ifndef HAKMEM_TESTLIB_H
#define HAKMEM_TESTLIB_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/* Result of tl_run: wait status, whether the deadline killed it, and captured output
 * (NUL-terminated, malloc'd; release with tl_result_free). */
typedef struct tl_result {
    int status;    /* raw waitpid status */
    int timed_out; /* 1 if the deadline expired and the process group was killed */
    char *out;
    size_t out_len;
    char *err;
    size_t err_len;
} tl_result;

/* Run argv[0] (a path) with the current environment plus `env_add` (NULL-terminated list of
 * "NAME=value"; a bare "NAME" removes the variable), in `cwd` (NULL: unchanged), stdin from
 * `stdin_path` (NULL: /dev/null). Kills the whole process group after timeout_s seconds.
 * Returns 0 if the program could be started, -1 otherwise (with a message on stderr). */
int tl_run(const char *const argv[], const char *const env_add[], const char *cwd,
           const char *stdin_path, int timeout_s, tl_result *r);
void tl_result_free(tl_result *r);

/* Describe a wait status ("exit 0", "signal 6 (Aborted)", "timeout") into buf. */
const char *tl_status_str(const tl_result *r, char *buf, size_t cap);
int tl_exited_ok(const tl_result *r); /* exited normally with status 0, no timeout */

/* The hakmem shared object the tests preload: $HAKMEM_TEST_PRELOAD if set (empty: none, to
 * validate the tests against glibc), else the build path given at compile time. */
const char *tl_preload_path(void);
/* "LD_PRELOAD=<path>" or, without preload, a bare "LD_PRELOAD" (which unsets it). */
const char *tl_preload_env(void);

/* Fork; the child runs fn(arg) and _exits with its return value (0 = pass). The parent waits
 * at most timeout_s seconds, then SIGKILLs the child. Returns 0 on pass; otherwise writes why
 * into why[] and returns -1. */
int tl_run_in_child(int (*fn)(void *), void *arg, int timeout_s, char *why, size_t cap);

/* A field of /proc/self/status in KiB ("VmRSS", "VmHWM"), or -1. */
long tl_status_kib(const char *field);

/* Iteration multiplier: 1, or 10 under HAKMEM_TEST_LONG=1 (make test-long). */
int tl_scale(void);

/* Make a directory under $TMPDIR (or /tmp) with mkdtemp; remove it recursively. */
char *tl_mkdtemp(const char *tag);
void tl_rmtree(const char *path);

/* Write len bytes to a new file; 0 on success. */
int tl_write_file(const char *path, const void *data, size_t len);
/* Read a whole file (malloc'd, NUL-terminated) or NULL. */
char *tl_read_file(const char *path, size_t *len);

/* Find an executable: the first of the candidates that exists, else NULL. */
const char *tl_find_tool(const char *const candidates[]);

/* Count lines of `text` that start with `prefix`. */
int tl_count_lines_with_prefix(const char *text, const char *prefix);

/* A small xorshift generator so the tests do not depend on libc's rand state. */
static inline unsigned long long tl_rand(unsigned long long *s)
{
    unsigned long long x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Run this test binary again as `<self> --scenario <name>`, with the preload and `extra_env`
 * (NULL-terminated, may be NULL) added, under a deadline of timeout_s. Prints the child's
 * output. Returns 0 if it exited 0 and printed no line starting "hakmem:"; otherwise writes
 * why into why[] and returns -1. */
int tl_run_scenario(const char *scenario, const char *const extra_env[], int timeout_s, char *why,
                    size_t cap);

/* Reap child `pid`, waiting at most timeout_s seconds; on the deadline SIGKILL and reap it.
 * Returns 0 when it ended by itself (*status set), 1 when the deadline killed it, -1 when
 * waitpid failed. */
int tl_wait(pid_t pid, int timeout_s, int *status);

/* Run fn(arg) in a new thread (whose thread cache starts empty), join it, and return what it
 * returned: NULL, or a message naming what failed (TL_CHECK). Failure to create: a message. */
const char *tl_run_thread(void *(*fn)(void *), void *arg);

/* In a thread function for tl_run_thread: return msg unless cond holds. */
#define TL_CHECK(cond, msg)                                                                    \
    do {                                                                                       \
        if (!(cond))                                                                           \
            return (void *)(msg);                                                              \
    } while (0)

/* In a scenario function returning int: print "    FAIL: ..." on stderr and return 1. */
#define TL_FAILF(...)                                                                          \
    do {                                                                                       \
        fprintf(stderr, "    FAIL: " __VA_ARGS__);                                             \
        fprintf(stderr, "\n");                                                                 \
        fflush(stderr);                                                                        \
        return 1;                                                                              \
    } while (0)

#endif
