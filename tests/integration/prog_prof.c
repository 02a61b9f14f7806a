/* tests/integration/prog_prof.c - allocation sites with known weights, for the heap profiler
 * (test_prof.c runs it with LD_PRELOAD=libhakmem.so and HAKMEM_PROF=1, then reads the profile
 * back with google-pprof). Usage: prog_prof MODE [PATH]
 *   live     site_heavy allocates 3x the bytes of site_light, both held to the end
 *   freed    site_churn allocates 3x the bytes of site_keep and frees them; site_keep holds
 *   dump     as live, then hakmem_prof_dump(PATH) (and a check that it returned 0)
 *   threads  as live, split over 4 threads
 *   odd      site_odd holds ODD_N blocks of 100 bytes (hakmem's class: 112 bytes)
 *   exact    two waves of EXACT_THREADS threads at once (more than the profiler's 8 count sets
 *            a thread can own): each allocates EXACT_EACH blocks in site_heavy and frees half;
 *            run it with HAKMEM_PROF_SAMPLE=1 (every allocation sampled): the profile's counts
 *            are exact
 *   fork     as live with a thread allocating meanwhile; then fork: the child runs
 *            site_child (2x site_heavy's bytes), the parent frees and allocates half of
 *            site_heavy's blocks again; both exit through exit() (each writes its profile); prints
 *            "parent <pid>" and "child <pid>"
 *   all      every allocation API on sampled blocks (run it with HAKMEM_PROF_SAMPLE=1):
 *            contents, zeroing, alignment, usable size, realloc both ways
 *   signals  allocations of 100..299 bytes (run it with HAKMEM_PROF_SAMPLE=1: nearly all
 *            sampled) until 5000 signals were handled: a timer's handler, every 100 us, frees a sampled
 *            block the loop left for it and allocates and frees 48 bytes: inside the
 *            profiler or not, the handler must not wait for the profiler's lock
 *   off      hakmem_prof_dump(PATH) must fail with EINVAL (the profiler is off)
 * Exits 0 when its own checks pass; a failure prints "FAIL: ..." on stderr and exits 1. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define N 40000
#define LIGHT 64
#define HEAVY (3 * LIGHT)

static void *held_heavy[N], *held_light[N];

#define FAIL(...)                                                                              \
    do {                                                                                       \
        fprintf(stderr, "FAIL: " __VA_ARGS__);                                                 \
        fprintf(stderr, "\n");                                                                 \
        exit(1);                                                                               \
    } while (0)

__attribute__((noinline)) void *site_heavy(void)
{
    char *p = malloc(HEAVY);
    if (!p)
        FAIL("malloc(%d)", HEAVY);
    p[0] = 1;
    return p;
}

__attribute__((noinline)) void *site_light(void)
{
    char *p = malloc(LIGHT);
    if (!p)
        FAIL("malloc(%d)", LIGHT);
    p[0] = 1;
    return p;
}

__attribute__((noinline)) void site_churn(void)
{
    char *volatile p = malloc(HEAVY);
    if (!p)
        FAIL("malloc(%d)", HEAVY);
    p[0] = 1;
    free(p);
}

__attribute__((noinline)) void *site_keep(void) { return site_light(); }

__attribute__((noinline)) void *site_child(size_t n)
{
    char *p = malloc(n);
    if (!p)
        FAIL("malloc(%zu)", n);
    p[0] = 1;
    return p;
}

static void live(int from, int to)
{
    for (int i = from; i < to; i++) {
        held_heavy[i] = site_heavy();
        held_light[i] = site_light();
    }
}

static void *live_part(void *arg)
{
    int t = (int)(intptr_t)arg;
    live(t * (N / 4), (t + 1) * (N / 4));
    return NULL;
}

#define ODD_N 100000
void *held_odd[ODD_N]; /* held to the end */

__attribute__((noinline)) void *site_odd(void)
{
    char *p = malloc(100);
    if (!p)
        FAIL("malloc(100)");
    p[0] = 1;
    return p;
}

#define EXACT_THREADS 12
#define EXACT_EACH 200

static pthread_barrier_t exact_start;

static void *exact_part(void *arg)
{
    (void)arg;
    void *held[EXACT_EACH];
    pthread_barrier_wait(&exact_start); /* every thread of the wave lives and counts at once */
    for (int i = 0; i < EXACT_EACH; i++)
        held[i] = site_heavy();
    for (int i = 0; i < EXACT_EACH; i += 2)
        free(held[i]);
    return NULL;
}

static void exact(void)
{
    for (int wave = 0; wave < 2; wave++) {
        pthread_t t[EXACT_THREADS];
        pthread_barrier_init(&exact_start, NULL, EXACT_THREADS);
        for (int i = 0; i < EXACT_THREADS; i++)
            if (pthread_create(&t[i], NULL, exact_part, NULL))
                FAIL("pthread_create");
        for (int i = 0; i < EXACT_THREADS; i++)
            pthread_join(t[i], NULL);
        pthread_barrier_destroy(&exact_start);
    }
}

static int (*prof_dump(void))(const char *)
{
    int (*fn)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, "hakmem_prof_dump");
    if (!fn)
        FAIL("hakmem_prof_dump is not in the process (no LD_PRELOAD?)");
    return fn;
}

static volatile int stop_churner;

static void *churner(void *arg)
{
    (void)arg;
    while (!stop_churner)
        free(malloc(100));
    return NULL;
}

static void check_block(unsigned char *p, size_t n, unsigned char want, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != want)
            FAIL("%s: byte %zu of %zu is %u, not %u", what, i, n, p[i], want);
}

static void *volatile handoff; /* a block the loop leaves for the handler to free */
static volatile long handled;

static void on_alarm(int sig)
{
    (void)sig;
    int saved = errno;
    free(__atomic_exchange_n(&handoff, NULL, __ATOMIC_ACQ_REL));
    char *volatile p = malloc(48);
    if (p)
        p[0] = 1;
    free(p);
    handled++;
    errno = saved;
}

static void signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 100}, {0, 100}};
    setitimer(ITIMER_REAL, &it, NULL);
    long steps = 0;
    do {
        for (int i = 0; i < 256; i++, steps++) {
            char *volatile p = malloc(100 + (size_t)(steps % 200));
            if (!p)
                FAIL("malloc");
            p[0] = 1;
            free(p);
            if (!handoff) {
                void *q = malloc(64);
                if (__atomic_exchange_n(&handoff, q, __ATOMIC_ACQ_REL))
                    FAIL("the handoff slot was refilled twice");
            }
        }
    } while (handled < 5000);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("%ld steps, %ld signals\n", steps, handled);
}

/* Every API on sampled blocks (HAKMEM_PROF_SAMPLE=1 samples about every allocation). */
static void all_apis(void)
{
    static const size_t sizes[] = {1, 16, 100, 1000, 4096, 20000, 32768, 40000, 300000};
    for (int round = 0; round < 50; round++) {
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            size_t n = sizes[k];
            unsigned char *m = malloc(n);
            if (!m || malloc_usable_size(m) < n)
                FAIL("malloc(%zu) / usable size", n);
            memset(m, 0xab, n);
            unsigned char *c = calloc(1, n);
            if (!c)
                FAIL("calloc(%zu)", n);
            check_block(c, n, 0, "calloc");
            memset(c, 0xcd, n);
            unsigned char *g = realloc(m, 2 * n + 5);
            if (!g)
                FAIL("realloc up");
            check_block(g, n, 0xab, "realloc up");
            unsigned char *s = realloc(g, n / 2 + 1);
            if (!s)
                FAIL("realloc down");
            check_block(s, n / 2 + 1, 0xab, "realloc down");
            void *a = NULL;
            if (posix_memalign(&a, 256, n) || ((uintptr_t)a & 255))
                FAIL("posix_memalign(256, %zu)", n);
            memset(a, 1, n);
            void *v = aligned_alloc(4096, n);
            if (!v || ((uintptr_t)v & 4095))
                FAIL("aligned_alloc(4096, %zu)", n);
            memset(v, 2, n);
            free(s);
            free(c);
            free(a);
            free(v);
        }
    }
    free(NULL);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "live";
    const char *path = argc > 2 ? argv[2] : NULL;
    if (!strcmp(mode, "live")) {
        live(0, N);
    } else if (!strcmp(mode, "freed")) {
        for (int i = 0; i < N; i++) {
            site_churn();
            held_light[i] = site_keep();
        }
    } else if (!strcmp(mode, "dump")) {
        live(0, N);
        if (!path || prof_dump()(path) != 0)
            FAIL("hakmem_prof_dump(%s): %s", path ? path : "(none)", strerror(errno));
    } else if (!strcmp(mode, "threads")) {
        pthread_t t[4];
        for (int i = 0; i < 4; i++)
            if (pthread_create(&t[i], NULL, live_part, (void *)(intptr_t)i))
                FAIL("pthread_create");
        for (int i = 0; i < 4; i++)
            pthread_join(t[i], NULL);
    } else if (!strcmp(mode, "odd")) {
        for (int i = 0; i < ODD_N; i++)
            held_odd[i] = site_odd();
    } else if (!strcmp(mode, "exact")) {
        exact();
    } else if (!strcmp(mode, "fork")) {
        pthread_t t;
        if (pthread_create(&t, NULL, churner, NULL))
            FAIL("pthread_create");
        live(0, N);
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0)
            FAIL("fork");
        if (pid == 0) {
            for (int i = 0; i < 2 * N; i++) /* held to the end (never freed) */
                site_child(HEAVY);
            printf("child %d\n", (int)getpid());
            exit(0);
        }
        stop_churner = 1;
        pthread_join(t, NULL);
        for (int i = 0; i < N / 2; i++) {
            free(held_heavy[i]);
            held_heavy[i] = site_heavy();
        }
        int st;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            FAIL("the child did not exit 0");
        printf("parent %d\n", (int)getpid());
    } else if (!strcmp(mode, "all")) {
        all_apis();
    } else if (!strcmp(mode, "signals")) {
        signals();
    } else if (!strcmp(mode, "off")) {
        errno = 0;
        if (prof_dump()(path ? path : "x.heap") != -1 || errno != EINVAL)
            FAIL("hakmem_prof_dump with the profiler off did not fail with EINVAL");
    } else {
        FAIL("unknown mode %s", mode);
    }
    exit(0);
}
