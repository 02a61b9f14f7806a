/* tests/stress/test_stress_sigfork.c - fork from a signal handler (glibc's tst-mallocfork2
 * shape), through the real libhakmem.so (LD_PRELOAD).
 *
 * A single-threaded process allocates and frees blocks of 0..70000 bytes over 1009 slots and
 * forks every 64 steps (each child allocates, frees and exits). A sender process sends it
 * SIGUSR1 (as in glibc's test: stopped by the handler, resumed by the next step), and a CPU
 * time timer (ITIMER_PROF) sends SIGPROF every millisecond of CPU, which lands wherever the
 * process spends its time whatever the scheduler does with the sender. The handler of both
 * calls fork() and waits for the child. So signals land while the main loop is inside malloc,
 * free and fork, and the handler's fork interrupts each of them. The handler's child allocates and frees when the signal landed outside malloc and
 * free (the interrupted code held no allocator state half-written), and otherwise only calls
 * _exit, as POSIX allows a child of a fork made in a signal handler.
 *
 * Passing means: no hang (the scenario runs under a deadline: a fork that waits on a lock its
 * own thread holds fails the test instead of hanging it), every child exits 0, and signals
 * landed in each of the three places. Runs 5 s (30 s under HAKMEM_TEST_LONG=1), once as a
 * single-threaded process and once with POOL_ACE=1 (the learner thread makes the process
 * multi-threaded: docs/RELIABILITY.md says what holds then), and once more with the heap
 * profiler on (HAKMEM_PROF=1) as well. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "testlib.h"

enum { SLOTS = 1009, MAX_SIZE = 70000, FORK_EVERY = 64 };
enum { AT_OUTSIDE, AT_MALLOC, AT_FREE, AT_FORK, AT_COUNT };
static const char *const at_name[AT_COUNT] = {"outside", "malloc", "free", "fork"};

static volatile sig_atomic_t where;           /* what the main loop is doing */
static volatile sig_atomic_t handler_error;   /* first failure seen by the handler */
static unsigned long landed[AT_COUNT];        /* written by the handler only */
static unsigned long handler_forks;           /* written by the handler only */
static pid_t sender_pid;                      /* set before the loop; 0 before */
static volatile sig_atomic_t sender_stopped;  /* the handler stopped it; the loop resumes it */

static void say(const char *msg) /* async-signal-safe */
{
    ssize_t r = write(2, msg, strlen(msg));
    (void)r;
}

/* The handler's child: allocates only when the interrupted code was outside malloc/free. */
static void handler_child(int at)
{
    if (at == AT_OUTSIDE || at == AT_FORK) {
        static const size_t sizes[] = {16, 100, 1000, 5000, 40000, 200000};
        for (int i = 0; i < 6; i++) {
            char *p = malloc(sizes[i]);
            if (!p)
                _exit(41);
            p[0] = p[sizes[i] - 1] = 1;
            free(p);
        }
    }
    _exit(0);
}

static void on_signal(int sig)
{
    int saved = errno;
    int at = where;
    /* one SIGUSR1 at a time: the main loop resumes the sender at its next step (as glibc's
     * test does), so the loop makes progress between forks */
    if (sig == SIGUSR1 && sender_pid > 0 && kill(sender_pid, SIGSTOP) == 0)
        sender_stopped = 1;
    landed[at]++;
    pid_t pid = fork();
    if (pid < 0) {
        handler_error = 1;
        errno = saved;
        return;
    }
    if (pid == 0)
        handler_child(at);
    handler_forks++;
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            handler_error = 2;
            break;
        }
    }
    if (!handler_error && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
        handler_error = 3;
        say("    handler's child did not exit 0\n");
    }
    errno = saved;
}

static void sender(pid_t target)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != target)
        _exit(0);
    unsigned long long rng = 0x5eed;
    for (;;) {
        if (kill(target, SIGUSR1) != 0)
            _exit(0);
        struct timespec ts = {0, (long)(tl_rand(&rng) % 100) * 1000};
        nanosleep(&ts, NULL);
    }
}

static int main_loop_child(unsigned long long seed)
{
    unsigned long long rng = seed | 1;
    for (int i = 0; i < 32; i++) {
        size_t n = tl_rand(&rng) % MAX_SIZE;
        char *p = malloc(n + 1);
        if (!p)
            return 42;
        p[0] = p[n] = 2;
        free(p);
    }
    return 0;
}

static int scenario_sigfork(void)
{
    double seconds = getenv("HAKMEM_TEST_LONG") && strcmp(getenv("HAKMEM_TEST_LONG"), "0") ? 30 : 5;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR1);
    sigaddset(&sa.sa_mask, SIGPROF);
    if (sigaction(SIGUSR1, &sa, NULL) != 0 || sigaction(SIGPROF, &sa, NULL) != 0)
        TL_FAILF("sigaction: %s", strerror(errno));
    fflush(NULL);

    pid_t self = getpid();
    pid_t snd = fork();
    if (snd < 0)
        TL_FAILF("fork (sender): %s", strerror(errno));
    if (snd == 0)
        sender(self);
    sender_pid = snd;
    struct itimerval tick = {{0, 1000}, {0, 1000}}; /* a SIGPROF per ms of CPU time */
    if (setitimer(ITIMER_PROF, &tick, NULL) != 0)
        TL_FAILF("setitimer: %s", strerror(errno));

    static void *slot[SLOTS];
    unsigned long long rng = 0x1234567;
    unsigned long steps = 0, forks = 0;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int failed = 0;
    for (;;) {
        int i = (int)(tl_rand(&rng) % SLOTS);
        size_t n = tl_rand(&rng) % MAX_SIZE;
        if (sender_stopped) {
            sender_stopped = 0;
            kill(snd, SIGCONT);
        }
        where = AT_FREE;
        free(slot[i]);
        where = AT_MALLOC;
        slot[i] = malloc(n);
        where = AT_OUTSIDE;
        if (!slot[i]) {
            fprintf(stderr, "    FAIL: malloc(%zu) returned NULL: %s\n", n, strerror(errno));
            failed = 1;
            break;
        }
        ((char *)slot[i])[0] = 1;
        if (++steps % FORK_EVERY == 0) {
            if (sender_stopped) {
                sender_stopped = 0;
                kill(snd, SIGCONT);
            }
            where = AT_FORK;
            pid_t pid = fork();
            where = AT_OUTSIDE;
            if (pid < 0) {
                fprintf(stderr, "    FAIL: fork: %s\n", strerror(errno));
                failed = 1;
                break;
            }
            if (pid == 0) {
                int rc = main_loop_child(rng);
                if (forks & 1)
                    exit(rc); /* destructors too */
                _exit(rc);
            }
            forks++;
            int st;
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
            if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
                fprintf(stderr, "    FAIL: main loop's child %d: status 0x%x\n", pid, st);
                failed = 1;
                break;
            }
        }
        if (steps % 256 == 0) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            if ((double)(now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) * 1e-9 >= seconds)
                break;
        }
        if (handler_error)
            break;
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_PROF, &off, NULL);
    signal(SIGPROF, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    sender_pid = 0;
    kill(snd, SIGKILL);
    waitpid(snd, NULL, 0);
    for (int i = 0; i < SLOTS; i++)
        free(slot[i]);
    printf("    %.0f s: %lu steps, %lu forks in the main loop, %lu forks in the handler; "
           "signals landed: outside %lu, malloc %lu, free %lu, fork %lu\n",
           seconds, steps, forks, handler_forks, landed[AT_OUTSIDE], landed[AT_MALLOC],
           landed[AT_FREE], landed[AT_FORK]);
    fflush(stdout);
    if (failed)
        return 1;
    if (handler_error)
        TL_FAILF("the signal handler's fork failed (code %d)", (int)handler_error);
    for (int a = AT_MALLOC; a < AT_COUNT; a++)
        if (!landed[a])
            TL_FAILF("no signal landed during %s: the test did not test that", at_name[a]);
    return 0;
}

static void run_self(const char *const extra_env[])
{
    int budget = getenv("HAKMEM_TEST_LONG") && strcmp(getenv("HAKMEM_TEST_LONG"), "0") ? 30 : 5;
    char why[256];
    if (tl_run_scenario("sigfork", extra_env, budget + 40, why, sizeof why))
        fail_msg("%s (a timeout means a fork in the signal handler hung)", why);
}

static void test_fork_in_signal_handler(void **s)
{
    (void)s;
    run_self(NULL);
}

static void test_fork_in_signal_handler_ace(void **s)
{
    (void)s;
    const char *env[] = {"POOL_ACE=1", NULL};
    run_self(env);
}

/* The same with the heap profiler sampling about every allocation of 4 KiB or more: signals
 * land inside the profiler (its stack capture, its lock), and the handler's fork must not
 * wait for a lock its own thread holds. Profiles go to /dev/null. */
static void test_fork_in_signal_handler_profiling(void **s)
{
    (void)s;
    const char *env[] = {"POOL_ACE=1", "HAKMEM_PROF=1", "HAKMEM_PROF_SAMPLE=4096",
                         "HAKMEM_PROF_FILE=/dev/null", NULL};
    run_self(env);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--scenario") == 0) {
        if (strcmp(argv[2], "sigfork") == 0)
            return scenario_sigfork();
        fprintf(stderr, "unknown scenario %s\n", argv[2]);
        return 2;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fork_in_signal_handler),
        cmocka_unit_test(test_fork_in_signal_handler_ace),
        cmocka_unit_test(test_fork_in_signal_handler_profiling),
    };
    return cmocka_run_group_tests_name("stress_sigfork", tests, NULL, NULL);
}
