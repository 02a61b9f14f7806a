/* tests/stress/test_stress_fork.c - fork while other threads allocate, and fork while threads
 * hold stdio locks (glibc's tst-malloc-fork-deadlock scenario), through the real libhakmem.so
 * (LD_PRELOAD). Every child must allocate, free, use stdio and exit 0. A deadlock is caught by
 * deadlines (per child and for the whole scenario) and fails the test instead of hanging. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "testlib.h"

#define CHILD_DEADLINE_S 20

static volatile int stop_flag;

/* Wait for one child, at most CHILD_DEADLINE_S. 0: exited 0; else a message in why. */
static int wait_child(pid_t pid, char *why, size_t cap)
{
    int st;
    int w = tl_wait(pid, CHILD_DEADLINE_S, &st);
    if (w < 0) {
        snprintf(why, cap, "waitpid: %s", strerror(errno));
        return -1;
    }
    if (w > 0) {
        snprintf(why, cap, "child %d still running after %d s: deadlocked after fork", pid,
                 CHILD_DEADLINE_S);
        return -1;
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    if (WIFEXITED(st))
        snprintf(why, cap, "child exited with %d", WEXITSTATUS(st));
    else
        snprintf(why, cap, "child killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    return -1;
}

/* What every child does: allocate and free across classes and the large path, calloc,
 * realloc, free a block the parent allocated before fork, printf through a fresh FILE. */
static unsigned char *parent_block;
static size_t parent_block_size;

static int child_work(int iter)
{
    static const size_t sizes[] = {8, 64, 500, 1024, 4000, 9000, 30000, 70000, 1u << 20};
    void *p[9];
    for (int i = 0; i < 9; i++) {
        p[i] = malloc(sizes[i]);
        if (!p[i])
            return 10;
        memset(p[i], i, sizes[i]);
    }
    unsigned char *c = calloc(1000, 3);
    if (!c)
        return 11;
    for (int i = 0; i < 3000; i++)
        if (c[i])
            return 12;
    c = realloc(c, 50000);
    if (!c)
        return 13;
    free(c);
    for (int i = 0; i < 9; i++)
        free(p[i]);
    if (parent_block) {
        for (size_t i = 0; i < parent_block_size; i++)
            if (parent_block[i] != 0xcd)
                return 14;
        free(parent_block);
    }
    FILE *f = fopen("/dev/null", "w");
    if (!f)
        return 15;
    fprintf(f, "child %d: %s %d\n", iter, "ok", getpid());
    fclose(f);
    char *s = NULL;
    if (asprintf(&s, "%d-%s", iter, "asprintf") < 0)
        return 16;
    free(s);
    return 0;
}

/* ---- fork while two threads allocate ----------------------------------------------------- */

static void *allocating_thread(void *arg)
{
    unsigned long long rng = 0xdeadbeef12345ull + (uintptr_t)arg;
    void *win[64] = {0};
    while (!__atomic_load_n(&stop_flag, __ATOMIC_RELAXED)) {
        int i = (int)(tl_rand(&rng) % 64);
        free(win[i]);
        unsigned r = (unsigned)(tl_rand(&rng) % 100);
        size_t n = r < 90 ? 1 + tl_rand(&rng) % 4096 : r < 99 ? 4097 + tl_rand(&rng) % 28672
                                                               : 40000 + tl_rand(&rng) % 500000;
        win[i] = malloc(n);
        if (win[i])
            ((char *)win[i])[0] = 1;
    }
    for (int i = 0; i < 64; i++)
        free(win[i]);
    return NULL;
}

static int scenario_fork_while_allocating(void *unused)
{
    (void)unused;
    pthread_t t[2];
    for (long i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, allocating_thread, (void *)i))
            TL_FAILF("pthread_create");
    int forks = 200 * tl_scale();
    char why[256];
    int rc = 0;
    for (int i = 0; i < forks && !rc; i++) {
        parent_block_size = 100 + (size_t)(i * 997) % 50000;
        parent_block = malloc(parent_block_size);
        if (!parent_block)
            TL_FAILF("malloc in the parent");
        memset(parent_block, 0xcd, parent_block_size);
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "    FAIL: fork: %s\n", strerror(errno));
            rc = 1;
            break;
        }
        if (pid == 0)
            _exit(child_work(i));
        free(parent_block);
        if (wait_child(pid, why, sizeof why)) {
            fprintf(stderr, "    FAIL: fork #%d: %s\n", i, why);
            rc = 1;
        }
    }
    __atomic_store_n(&stop_flag, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    if (!rc)
        fprintf(stderr, "    %d forks with 2 allocating threads: all children ok\n", forks);
    return rc;
}

static void test_fork_while_threads_allocate(void **s)
{
    (void)s;
    char why[256];
    if (tl_run_in_child(scenario_fork_while_allocating, NULL, 60 * tl_scale(), why, sizeof why))
        fail_msg("%s", why);
}

/* ---- fork while threads are inside stdio (getline, fflush(NULL)) ------------------------- */

static char lines_path[4096];

static void *getline_thread(void *arg)
{
    (void)arg;
    FILE *f = fopen(lines_path, "r");
    if (!f)
        return (void *)1;
    while (!__atomic_load_n(&stop_flag, __ATOMIC_RELAXED)) {
        char *line = NULL; /* a fresh buffer each time: getline mallocs under the FILE lock */
        size_t cap = 0;
        ssize_t n = getline(&line, &cap, f);
        free(line);
        if (n < 0)
            rewind(f);
    }
    fclose(f);
    return NULL;
}

static void *fflush_thread(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&stop_flag, __ATOMIC_RELAXED)) {
        fflush(NULL); /* takes the stdio list lock, then each FILE's lock */
        void *p = malloc(200);
        free(p);
    }
    return NULL;
}

static void *fopen_thread(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&stop_flag, __ATOMIC_RELAXED)) {
        FILE *f = fopen("/dev/null", "w"); /* malloc under the stdio list lock */
        if (f) {
            fprintf(f, "%d %s\n", 42, "x");
            fclose(f);
        }
    }
    return NULL;
}

static int scenario_fork_stdio(void *unused)
{
    (void)unused;
    char *dir = tl_mkdtemp("forkstdio");
    if (!dir)
        TL_FAILF("mkdtemp");
    snprintf(lines_path, sizeof lines_path, "%s/lines.txt", dir);
    FILE *f = fopen(lines_path, "w");
    if (!f)
        TL_FAILF("fopen %s", lines_path);
    for (int i = 0; i < 2000; i++)
        fprintf(f, "line %d %.*s\n", i, i % 300, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    fclose(f);

    pthread_t t[4];
    void *(*fns[4])(void *) = {getline_thread, getline_thread, fflush_thread, fopen_thread};
    for (int i = 0; i < 4; i++)
        if (pthread_create(&t[i], NULL, fns[i], NULL))
            TL_FAILF("pthread_create");
    int forks = 300 * tl_scale();
    char why[256];
    int rc = 0;
    parent_block = NULL;
    for (int i = 0; i < forks && !rc; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "    FAIL: fork: %s\n", strerror(errno));
            rc = 1;
            break;
        }
        if (pid == 0) {
            int r = child_work(i);
            /* The child's stdio must not hang: the list lock and the inherited FILEs were in
             * use by other threads at the fork. fflush(NULL)'s result is not checked: a FILE
             * copied in the middle of another thread's fopen or fprintf may fail to flush
             * (EBADF; seen about once in 2000 forks with hakmem and with tcmalloc): what
             * matters is that it returns, and that a fresh FILE works (child_work). */
            (void)fflush(NULL);
            _exit(r);
        }
        if (wait_child(pid, why, sizeof why)) {
            fprintf(stderr, "    FAIL: fork #%d: %s\n", i, why);
            rc = 1;
        }
    }
    __atomic_store_n(&stop_flag, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        if (r) {
            fprintf(stderr, "    FAIL: stdio thread %d failed\n", i);
            rc = 1;
        }
    }
    tl_rmtree(dir);
    free(dir);
    if (!rc)
        fprintf(stderr, "    %d forks with threads in getline/fflush(NULL)/fopen: all ok\n", forks);
    return rc;
}

static void test_fork_while_threads_in_stdio(void **s)
{
    (void)s;
    char why[256];
    if (tl_run_in_child(scenario_fork_stdio, NULL, 60 * tl_scale(), why, sizeof why))
        fail_msg("%s", why);
}

/* ---- a child of a child: fork inside a forked child that has threads again ---------------- */

static int scenario_nested_fork(void *unused)
{
    (void)unused;
    for (int gen = 0; gen < 3; gen++) {
        pthread_t t;
        stop_flag = 0;
        if (pthread_create(&t, NULL, allocating_thread, (void *)(long)gen))
            TL_FAILF("pthread_create in generation %d", gen);
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL); /* let it run a little; not needed for correctness */
        pid_t pid = fork();
        if (pid < 0)
            TL_FAILF("fork");
        if (pid == 0) {
            if (child_work(gen))
                _exit(30);
            /* continue as the next generation: threads and fork again */
            continue;
        }
        char why[256];
        int rc = wait_child(pid, why, sizeof why);
        __atomic_store_n(&stop_flag, 1, __ATOMIC_RELAXED);
        pthread_join(t, NULL);
        if (rc)
            TL_FAILF("generation %d: %s", gen, why);
        _exit(0);
    }
    return 0; /* the last generation */
}

static void test_nested_fork_generations(void **s)
{
    (void)s;
    char why[256];
    if (tl_run_in_child(scenario_nested_fork, NULL, 60, why, sizeof why))
        fail_msg("%s", why);
}

/* ---- a single-threaded process forks; the child starts threads that use stdio ----------- */

static void *stdio_user_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++) {
        FILE *f = fopen("/dev/null", "w"); /* links the FILE into the stdio list */
        if (!f)
            return (void *)1;
        fprintf(f, "%d\n", i);
        fclose(f);
        fflush(NULL);
    }
    return NULL;
}

/* tl_run_in_child forks this test process, which is single-threaded at that point: the
 * scenario runs in exactly the child of a single-threaded fork. */
static int scenario_child_threads_stdio(void *unused)
{
    (void)unused;
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, stdio_user_thread, NULL))
            TL_FAILF("pthread_create");
    for (int i = 0; i < 2; i++) {
        void *r;
        pthread_join(t[i], &r);
        if (r)
            TL_FAILF("fopen failed in a thread of the child");
    }
    return 0;
}

static void test_fork_then_child_threads_use_stdio(void **s)
{
    (void)s;
    char why[256];
    if (tl_run_in_child(scenario_child_threads_stdio, NULL, 20, why, sizeof why))
        fail_msg("%s", why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fork_then_child_threads_use_stdio),
        cmocka_unit_test(test_fork_while_threads_allocate),
        cmocka_unit_test(test_fork_while_threads_in_stdio),
        cmocka_unit_test(test_nested_fork_generations),
    };
    return cmocka_run_group_tests_name("stress_fork", tests, NULL, NULL);
}
