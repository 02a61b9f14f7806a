/* tests/unit/test_box2_purger.c - memory goes back without the program's help (the background
 * purger: start, exit, fork, a quiet process whose RSS falls), and impossible requests fail at
 * once, without a reclaim, a mapping attempt or a flush of the caches.
 *
 * Linked with libhakmem.a: hakmem is this process's malloc. Each scenario runs in a forked
 * child (tl_run_in_child), whose purger state starts afresh. Waits poll a condition under a
 * generous deadline: nothing here measures time.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "box2_refill/large_cache.h"
#include "box2_refill/os.h"
#include "box2_refill/purge.h"
#include "shared_contracts/config.h"
#include "testlib.h"

/* Is a thread named hakmem-purge among ours? */
static int purge_thread_listed(void)
{
    DIR *d = opendir("/proc/self/task");
    int found = 0;
    struct dirent *e;
    while (d && !found && (e = readdir(d)) != NULL) {
        char path[300], name[64] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f) {
            found = fgets(name, sizeof name, f) && strncmp(name, "hakmem-purge", 12) == 0;
            fclose(f);
        }
    }
    if (d)
        closedir(d);
    return found;
}

/* Poll cond() every 10 ms for up to `seconds`. */
static int wait_for(int (*cond)(void), int seconds)
{
    for (int i = 0; i < seconds * 100; i++) {
        if (cond())
            return 1;
        usleep(10000);
    }
    return cond();
}
static int purger_up(void) { return hak_purger_running() && purge_thread_listed(); }
static int purger_gone(void) { return !hak_purger_running() && !purge_thread_listed(); }

/* A thread that allocates `mib` MiB of 1-4 KiB blocks, writes them, frees them and exits: its
 * cache goes to the depots at exit, which only a decay tick gives back. */
static void *burst_thread(void *arg)
{
    size_t want = (size_t)(uintptr_t)arg << 20, n = 0, total = 0;
    enum { MAX = 1 << 16 };
    void **blocks = calloc(MAX, sizeof *blocks);
    if (!blocks)
        return (void *)"calloc failed";
    while (total < want && n < MAX) {
        size_t sz = 1024 + (n * 37 % 3072);
        blocks[n] = malloc(sz);
        if (!blocks[n])
            return (void *)"malloc failed";
        memset(blocks[n], 0x6b, sz);
        total += sz;
        n++;
    }
    for (size_t i = 0; i < n; i++)
        free(blocks[i]);
    free(blocks);
    return NULL;
}

static int burst_and_exit(size_t mib, int threads)
{
    pthread_t t[16];
    for (int i = 0; i < threads; i++)
        if (pthread_create(&t[i], NULL, burst_thread, (void *)(uintptr_t)mib))
            return -1;
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    return 0;
}

/* ---- start and exit --------------------------------------------------------------------- */

static int scenario_start_and_exit(void *unused)
{
    (void)unused;
    uint64_t starts = hak_purger_starts();
    if (burst_and_exit(8, 2))
        TL_FAILF("pthread_create");
    /* a thread exit left depot blocks behind: the purger is up, named, and sees to them */
    if (!wait_for(purger_up, 10))
        TL_FAILF("no hakmem-purge thread after threads exited with blocks in the depots");
    if (hak_purger_starts() != starts + 1)
        TL_FAILF("%llu purger starts, expected one", (unsigned long long)(hak_purger_starts() - starts));
    /* nothing else happens: once everything is given back it exits by itself */
    if (!wait_for(purger_gone, 30))
        TL_FAILF("the purger did not exit once there was nothing left to give back");
    /* and a later exit starts it again */
    if (burst_and_exit(4, 1) || !wait_for(purger_up, 10))
        TL_FAILF("the purger did not start again");
    return 0;
}

static void test_purger_starts_lazily_and_exits_when_done(void **s)
{
    (void)s;
    char why[256];
    if (tl_run_in_child(scenario_start_and_exit, NULL, 120, why, sizeof why))
        fail_msg("%s", why);
}

/* ---- a quiet process gives memory back ------------------------------------------------- */

static int rss_fell;
static long rss_base, rss_peak;
static int rss_down(void)
{
    long now = tl_status_kib("VmRSS");
    return (rss_fell = now - rss_base <= (rss_peak - rss_base) / 4);
}

static int scenario_quiet_rss(void *purger_on)
{
    hak_config.purger = purger_on != NULL;
    rss_base = tl_status_kib("VmRSS");
    if (burst_and_exit(24, 4))
        TL_FAILF("pthread_create");
    rss_peak = tl_status_kib("VmRSS");
    if (rss_peak - rss_base < 32 * 1024)
        TL_FAILF("RSS grew only %ld KiB: the bursts did not stay in hakmem's caches",
                 rss_peak - rss_base);
    /* From here the process makes no allocator call at all. */
    int fell = wait_for(rss_down, purger_on ? 20 : 3);
    long after = tl_status_kib("VmRSS");
    fprintf(stderr, "    purger %s: VmRSS base %ld KiB, after the exits %ld KiB, then %ld KiB\n",
            purger_on ? "on" : "off", rss_base, rss_peak, after);
    if (purger_on && !fell)
        TL_FAILF("a quiet process kept %ld of %ld KiB", after - rss_base, rss_peak - rss_base);
    if (!purger_on && fell)
        TL_FAILF("RSS fell with the purger off: the test would not show the purger's work");
    return 0;
}

static void test_quiet_process_rss_falls(void **s)
{
    (void)s;
    char why[256];
    if (tl_run_in_child(scenario_quiet_rss, (void *)1, 120, why, sizeof why))
        fail_msg("purger on: %s", why);
    if (tl_run_in_child(scenario_quiet_rss, NULL, 120, why, sizeof why))
        fail_msg("purger off: %s", why);
}

/* ---- fork ------------------------------------------------------------------------------- */

static int scenario_fork(void *unused)
{
    (void)unused;
    if (burst_and_exit(8, 1) || !wait_for(purger_up, 10))
        TL_FAILF("no purger in the parent");
    pid_t pid = fork();
    if (pid < 0)
        TL_FAILF("fork");
    if (pid == 0) { /* the child has no purger until its own first wake */
        if (hak_purger_running() || purge_thread_listed() || hak_purger_starts())
            _exit(10);
        if (burst_and_exit(8, 1) || !wait_for(purger_up, 10))
            _exit(11);
        _exit(0);
    }
    int status;
    if (tl_wait(pid, 60, &status) != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        TL_FAILF("child: status %d (10: a purger was inherited, 11: none started)", status);
    if (!hak_purger_running() && !hak_purger_starts())
        TL_FAILF("the parent lost its purger");
    return 0;
}

static void test_fork_child_starts_its_own_purger(void **s)
{
    (void)s;
    char why[256];
    if (tl_run_in_child(scenario_fork, NULL, 120, why, sizeof why))
        fail_msg("%s", why);
}

/* ---- exit ------------------------------------------------------------------------------- */

static int scenario_exit_code(void *how)
{
    if (burst_and_exit(8, 1) || !wait_for(purger_up, 10))
        return 20;
    if (how) /* main leaves with pthread_exit: the process must still end (status 0) */
        pthread_exit(NULL);
    return 7; /* exit(7) while the purger runs: the status is the program's */
}

static void test_exit_with_the_purger_running(void **s)
{
    (void)s;
    char why[256];
    int rc = tl_run_in_child(scenario_exit_code, NULL, 60, why, sizeof why);
    assert_int_not_equal(rc, 0); /* it exited 7 ... */
    assert_non_null(strstr(why, "exit 7"));
    if (tl_run_in_child(scenario_exit_code, (void *)1, 60, why, sizeof why))
        fail_msg("after pthread_exit in main: %s", why); /* ... and this one 0, by itself */
}

/* ---- impossible requests fail fast ------------------------------------------------------ */

static int map_calls;
static void *(*real_map)(size_t);
static void *counting_map(size_t len)
{
    map_calls++;
    return real_map(len);
}

static int overcommit_heuristic(void)
{
    char *v = tl_read_file("/proc/sys/vm/overcommit_memory", NULL);
    int h = v && v[0] == '0';
    free(v);
    return h;
}

static void test_impossible_requests_fail_without_reclaim(void **s)
{
    (void)s;
    void *keep = malloc(3u << 20);
    assert_non_null(keep);
    free(keep); /* a cached mapping that a flush would drop */
    hak_large_cache_totals_t lc0;
    hak_large_cache_totals(&lc0);
    assert_true(lc0.resident >= (3u << 20));
    uint64_t reclaims = hak_reclaim_count();
    real_map = hak_os.map;
    hak_os.map = counting_map;
    map_calls = 0;
    size_t sizes[] = {(size_t)1 << 47, SIZE_MAX / 4, (size_t)1 << 62, (size_t)64 << 40};
    unsigned n = overcommit_heuristic() ? 4 : 3; /* 64 TiB > RAM + swap only matters there */
    void *p = malloc(100);
    for (unsigned i = 0; i < n; i++) {
        errno = 0;
        assert_null(malloc(sizes[i]));
        assert_int_equal(errno, ENOMEM);
        errno = 0;
        assert_null(calloc(1, sizes[i]));
        assert_int_equal(errno, ENOMEM);
        errno = 0;
        assert_null(memalign(1u << 20, sizes[i]));
        assert_int_equal(errno, ENOMEM);
        errno = 0;
        assert_null(realloc(p, sizes[i]));
        assert_int_equal(errno, ENOMEM);
    }
    hak_os.map = real_map;
    free(p);
    assert_int_equal(map_calls, 0);                   /* not even a mapping attempt */
    assert_int_equal(hak_reclaim_count(), reclaims);  /* no reclaim */
    hak_large_cache_totals_t lc1;
    hak_large_cache_totals(&lc1);
    assert_true(lc1.resident >= (3u << 20));          /* nothing flushed */
}

/* Under RLIMIT_AS: a request past the whole limit never reclaims; one below it that does not
 * fit reclaims once, and not again while hakmem holds no more than then; recovery works. */
static int scenario_rlimit(void *unused)
{
    (void)unused;
    long vm = tl_status_kib("VmSize");
    size_t limit = (size_t)vm * 1024 + (64u << 20);
    struct rlimit rl = {limit, limit};
    if (setrlimit(RLIMIT_AS, &rl))
        TL_FAILF("setrlimit");
    void *small[64];
    for (int i = 0; i < 64; i++)
        small[i] = malloc(2000 + i); /* thread cache and depot: something to give back */
    for (int i = 0; i < 64; i++)
        free(small[i]);
    uint64_t r0 = hak_reclaim_count();
    for (int i = 0; i < 100; i++) {
        errno = 0;
        if (malloc(limit + (1u << 20)) || errno != ENOMEM)
            TL_FAILF("malloc past RLIMIT_AS did not fail with ENOMEM");
    }
    if (hak_reclaim_count() != r0)
        TL_FAILF("%llu reclaims for requests past the whole limit",
                 (unsigned long long)(hak_reclaim_count() - r0));
    size_t too_big = limit - (1u << 20); /* inside the limit, but more than can ever be free */
    for (int i = 0; i < 100; i++) {
        errno = 0;
        if (malloc(too_big) || errno != ENOMEM)
            TL_FAILF("malloc(%zu) under RLIMIT_AS did not fail with ENOMEM", too_big);
    }
    uint64_t reclaims = hak_reclaim_count() - r0;
    fprintf(stderr, "    100 requests of %zu MiB that do not fit: %llu reclaim(s)\n", too_big >> 20,
            (unsigned long long)reclaims);
    if (reclaims > 1)
        TL_FAILF("a request that cannot fit reclaimed %llu times", (unsigned long long)reclaims);
    void *ok = malloc(16u << 20);
    if (!ok)
        TL_FAILF("malloc(16 MiB) failed under a 64 MiB budget");
    memset(ok, 1, 16u << 20);
    free(ok);
    return 0;
}

static void test_rlimit_failures_reclaim_at_most_once(void **s)
{
    (void)s;
    char why[256];
    if (tl_run_in_child(scenario_rlimit, NULL, 60, why, sizeof why))
        fail_msg("%s", why);
}

int main(void)
{
    hak_config_load();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_purger_starts_lazily_and_exits_when_done),
        cmocka_unit_test(test_quiet_process_rss_falls),
        cmocka_unit_test(test_fork_child_starts_its_own_purger),
        cmocka_unit_test(test_exit_with_the_purger_running),
        cmocka_unit_test(test_impossible_requests_fail_without_reclaim),
        cmocka_unit_test(test_rlimit_failures_reclaim_at_most_once),
    };
    return cmocka_run_group_tests_name("box2_purger", tests, NULL, NULL);
}
