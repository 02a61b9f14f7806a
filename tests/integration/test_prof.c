/* tests/integration/test_prof.c - the heap profiler end to end: tests/integration/prog_prof.c
 * runs with LD_PRELOAD=libhakmem.so and HAKMEM_PROF=1 in a scratch directory, and its
 * profiles are read back by Debian's google-pprof (package google-perftools,
 * scripts/deps.sh), as a user would: the heavier site first, and each site's share within 5
 * points of the truth (the program's sites have known weights: 3 to 1). With
 * HAKMEM_PROF_SAMPLE=4096 a site of 2.5 MiB gets about 625 samples, so a share's standard
 * deviation is about one point. */
#define _GNU_SOURCE
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testlib.h"

#define PROG TEST_BUILD_DIR "/integration/prog_prof"
#define SAMPLE "HAKMEM_PROF_SAMPLE=4096"
#define TOLERANCE 5.0

static const char *pprof_path(void)
{
    static const char *const tools[] = {"/usr/bin/google-pprof", "/usr/local/bin/google-pprof",
                                        NULL};
    const char *p = tl_find_tool(tools);
    if (!p)
        fail_msg("google-pprof is missing: apt-get install google-perftools (scripts/deps.sh)");
    return p;
}

/* Run prog_prof MODE [arg] in dir with the preload and env (NULL-terminated, up to 6);
 * fails the test unless it exits 0. The result is the caller's to free. */
static void run_prog(const char *dir, const char *mode, const char *arg, const char *const env[],
                     tl_result *r)
{
    const char *argv[] = {PROG, mode, arg, NULL};
    const char *all_env[10] = {tl_preload_env()};
    int n = 1;
    for (int i = 0; env && env[i] && n < 9; i++)
        all_env[n++] = env[i];
    all_env[n] = NULL;
    if (tl_run(argv, all_env, dir, NULL, 120, r) != 0)
        fail_msg("could not start %s", PROG);
    char st[128];
    if (!tl_exited_ok(r))
        fail_msg("prog_prof %s: %s; stderr: %s", mode, tl_status_str(r, st, sizeof st), r->err);
}

/* The one file in dir named hakmem.<pid>.heap (pid 0: any), into path. */
static void profile_of(const char *dir, int pid, char *path, size_t cap)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d)) != NULL) {
        int p;
        char tail[8];
        if (sscanf(e->d_name, "hakmem.%d.%7s", &p, tail) == 2 && !strcmp(tail, "heap") &&
            (!pid || p == pid)) {
            snprintf(path, cap, "%s/%s", dir, e->d_name);
            found++;
        }
    }
    closedir(d);
    if (found != 1)
        fail_msg("%d profiles hakmem.%d.heap in %s, expected 1", found, pid, dir);
}

typedef struct row {
    char name[128];
    double flat, flat_pct;
} row_t;

/* google-pprof `mode` (--text with --inuse_space or --alloc_space) of PROG and file: its rows
 * in its order (by flat share). Returns how many. */
static int pprof_text(const char *space, const char *file, row_t *rows, int max)
{
    const char *argv[] = {pprof_path(), "--text", space, PROG, file, NULL};
    const char *env[] = {"LD_PRELOAD", NULL};
    tl_result r;
    if (tl_run(argv, env, NULL, NULL, 120, &r) != 0 || !tl_exited_ok(&r)) {
        char st[64];
        print_message("    google-pprof: %s\n%s\n%s\n", tl_status_str(&r, st, sizeof st), r.out,
                      r.err);
        fail_msg("google-pprof --text %s %s failed", space, file);
    }
    int n = 0;
    char *save = NULL;
    for (char *line = strtok_r(r.out, "\n", &save); line && n < max;
         line = strtok_r(NULL, "\n", &save)) {
        double flat, flat_pct, sum_pct, cum, cum_pct;
        char name[128];
        if (sscanf(line, " %lf %lf%% %lf%% %lf %lf%% %127s", &flat, &flat_pct, &sum_pct, &cum,
                   &cum_pct, name) == 6) {
            snprintf(rows[n].name, sizeof rows[n].name, "%s", name);
            rows[n].flat = flat;
            rows[n].flat_pct = flat_pct;
            n++;
        }
    }
    if (n == 0)
        print_message("    google-pprof printed:\n%s\n%s\n", r.out, r.err);
    tl_result_free(&r);
    return n;
}

static double share_of(const row_t *rows, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(rows[i].name, name))
            return rows[i].flat_pct;
    return 0.0;
}

/* `first` leads the listing, with share `want` (within TOLERANCE), and `second`, if any, has
 * `want2`. */
static void expect_sites(const char *space, const char *file, const char *first, double want,
                         const char *second, double want2)
{
    row_t rows[64];
    int n = pprof_text(space, file, rows, 64);
    for (int i = 0; i < n && i < 4; i++)
        print_message("    %s: %-20s %5.1f%%\n", space, rows[i].name, rows[i].flat_pct);
    assert_true(n >= 1);
    if (strcmp(rows[0].name, first) != 0)
        fail_msg("%s: %s leads, not %s", space, rows[0].name, first);
    if (fabs(rows[0].flat_pct - want) > TOLERANCE)
        fail_msg("%s: %s has %.1f%%, the truth is %.1f%%", space, first, rows[0].flat_pct, want);
    if (second) {
        double got = share_of(rows, n, second);
        if (fabs(got - want2) > TOLERANCE)
            fail_msg("%s: %s has %.1f%%, the truth is %.1f%%", space, second, got, want2);
    }
}

/* Run prog_prof MODE in dir with env, then find its one exit profile: into file. */
static void profile_run(const char *dir, const char *mode, const char *const env[], char *file,
                        size_t cap)
{
    tl_result r;
    run_prog(dir, mode, NULL, env, &r);
    tl_result_free(&r);
    profile_of(dir, 0, file, cap);
}

static char *scratch(void) { return tl_mkdtemp("prof"); }

static void done(char *dir)
{
    tl_rmtree(dir);
    free(dir);
}

/* site_heavy holds 3x the bytes of site_light: 75% and 25% in use, and as allocated. */
static void test_inuse_heavier_site_first(void **s)
{
    (void)s;
    char *dir = scratch(), file[4096];
    const char *env[] = {"HAKMEM_PROF=1", SAMPLE, NULL};
    profile_run(dir, "live", env, file, sizeof file);
    expect_sites("--inuse_space", file, "site_heavy", 75.0, "site_light", 25.0);
    expect_sites("--alloc_space", file, "site_heavy", 75.0, "site_light", 25.0);
    done(dir);
}

/* site_churn allocates 3x site_keep's bytes and frees them: it leads the allocated bytes
 * (75%) and holds nothing in use; the kept blocks (allocated in site_light, called by
 * site_keep) are all that is in use. */
static void test_freed_samples_leave_inuse(void **s)
{
    (void)s;
    char *dir = scratch(), file[4096];
    const char *env[] = {"HAKMEM_PROF=1", SAMPLE, NULL};
    profile_run(dir, "freed", env, file, sizeof file);
    expect_sites("--alloc_space", file, "site_churn", 75.0, "site_light", 25.0);
    expect_sites("--inuse_space", file, "site_light", 100.0, "site_churn", 0.0);
    done(dir);
}

/* hakmem_prof_dump(path) writes a profile there (and the exit profile is written too). */
static void test_dump_call(void **s)
{
    (void)s;
    char *dir = scratch(), file[4096], exit_file[4096];
    snprintf(file, sizeof file, "%s/called.heap", dir);
    const char *env[] = {"HAKMEM_PROF=1", SAMPLE, NULL};
    tl_result r;
    run_prog(dir, "dump", file, env, &r);
    tl_result_free(&r);
    expect_sites("--inuse_space", file, "site_heavy", 75.0, "site_light", 25.0);
    profile_of(dir, 0, exit_file, sizeof exit_file);
    done(dir);
}

/* The same sites spread over four threads. */
static void test_threads(void **s)
{
    (void)s;
    char *dir = scratch(), file[4096];
    const char *env[] = {"HAKMEM_PROF=1", SAMPLE, NULL};
    profile_run(dir, "threads", env, file, sizeof file);
    expect_sites("--inuse_space", file, "site_heavy", 75.0, "site_light", 25.0);
    done(dir);
}

/* The flat value google-pprof gives `name` in `space`; fails if it lists no such row. */
static double flat_of(const char *space, const char *file, const char *name)
{
    row_t rows[64];
    int n = pprof_text(space, file, rows, 64);
    for (int i = 0; i < n; i++)
        if (!strcmp(rows[i].name, name))
            return rows[i].flat;
    fail_msg("%s: no row for %s", space, name);
    return 0;
}

/* Counts are exact with every allocation sampled, while more threads count at once than
 * there are count sets to own (the rest count by atomic add in the shared set), and after a
 * wave of threads exited and the next wave owns their sets: 2 waves x 12 threads x 200
 * blocks allocated, half of them freed (prog_prof exact). A set written by two threads at
 * once with plain stores would lose counts. */
static void test_counts_exact_over_many_threads(void **s)
{
    (void)s;
    char *dir = scratch(), file[4096];
    const char *env[] = {"HAKMEM_PROF=1", "HAKMEM_PROF_SAMPLE=1", NULL};
    profile_run(dir, "exact", env, file, sizeof file);
    double allocated = flat_of("--alloc_objects", file, "site_heavy");
    double in_use = flat_of("--inuse_objects", file, "site_heavy");
    print_message("    site_heavy: %.0f allocated, %.0f in use\n", allocated, in_use);
    assert_true(allocated == 2 * 12 * 200);
    assert_true(in_use == 2 * 12 * 100);
    done(dir);
}

/* The estimates are unbiased in absolute terms, for a size that is not a class size:
 * prog_prof odd holds 100,000 blocks of 100 bytes (hakmem's class: 112). google-pprof's
 * unsampled figures must come within 10% of 100,000 objects and 9.54 MiB (about 2,400
 * samples at a 4 KiB mean: a standard deviation near 2%); a sampler that drew by the class
 * size while the profile counts the size asked for would be 11% high. */
static void test_estimates_unbiased(void **s)
{
    (void)s;
    char *dir = scratch(), file[4096];
    const char *env[] = {"HAKMEM_PROF=1", SAMPLE, NULL};
    profile_run(dir, "odd", env, file, sizeof file);
    double objs = flat_of("--inuse_objects", file, "site_odd");
    double mib = flat_of("--inuse_space", file, "site_odd");
    double want_objs = 100000, want_mib = 100000 * 100 / 1048576.0;
    print_message("    site_odd: %.0f objects (truth %.0f), %.2f MiB (truth %.2f)\n", objs,
                  want_objs, mib, want_mib);
    assert_true(fabs(objs - want_objs) <= 0.1 * want_objs);
    assert_true(fabs(mib - want_mib) <= 0.1 * want_mib);
    done(dir);
}

/* ACE's learner thread runs while the program is profiled. */
static void test_with_ace(void **s)
{
    (void)s;
    char *dir = scratch(), file[4096];
    const char *env[] = {"HAKMEM_PROF=1", SAMPLE, "POOL_ACE=1", NULL};
    profile_run(dir, "live", env, file, sizeof file);
    expect_sites("--inuse_space", file, "site_heavy", 75.0, "site_light", 25.0);
    done(dir);
}

/* A fork while another thread allocates: the child keeps the parent's samples (7.5 MiB of
 * site_heavy, 2.5 of site_light) and adds its own site (15 MiB: 60%, site_heavy 30%); the
 * parent keeps working and knows nothing of the child's site. Each writes its own file. */
static void test_fork(void **s)
{
    (void)s;
    char *dir = scratch(), file[4096];
    const char *env[] = {"HAKMEM_PROF=1", SAMPLE, NULL};
    tl_result r;
    run_prog(dir, "fork", NULL, env, &r);
    int parent = 0, child = 0;
    const char *c = strstr(r.out, "child "), *p = strstr(r.out, "parent ");
    if (!c || !p || sscanf(c, "child %d", &child) != 1 || sscanf(p, "parent %d", &parent) != 1)
        fail_msg("prog_prof fork printed: %s", r.out);
    tl_result_free(&r);
    profile_of(dir, child, file, sizeof file);
    expect_sites("--inuse_space", file, "site_child", 60.0, "site_heavy", 30.0);
    profile_of(dir, parent, file, sizeof file);
    expect_sites("--inuse_space", file, "site_heavy", 75.0, "site_light", 25.0);
    row_t rows[64];
    int n = pprof_text("--alloc_space", file, rows, 64);
    assert_true(share_of(rows, n, "site_child") == 0.0);
    done(dir);
}

/* The profile draws as a call graph (--svg, through graphviz) and folds into flame-graph
 * input (--collapsed: one "frame;frame;... bytes" line per stack). */
static void test_svg_and_collapsed(void **s)
{
    (void)s;
    char *dir = scratch(), file[4096];
    const char *env[] = {"HAKMEM_PROF=1", SAMPLE, NULL};
    tl_result r;
    run_prog(dir, "live", NULL, env, &r);
    tl_result_free(&r);
    profile_of(dir, 0, file, sizeof file);
    const char *penv[] = {"LD_PRELOAD", NULL};
    const char *svg[] = {pprof_path(), "--svg", "--inuse_space", PROG, file, NULL};
    if (tl_run(svg, penv, NULL, NULL, 120, &r) != 0 || !tl_exited_ok(&r))
        fail_msg("google-pprof --svg failed: %s", r.err);
    if (!strstr(r.out, "<svg") || !strstr(r.out, "site_heavy"))
        fail_msg("google-pprof --svg drew no graph with site_heavy: %.300s %s", r.out, r.err);
    tl_result_free(&r);
    const char *col[] = {pprof_path(), "--collapsed", "--inuse_space", PROG, file, NULL};
    if (tl_run(col, penv, NULL, NULL, 120, &r) != 0 || !tl_exited_ok(&r))
        fail_msg("google-pprof --collapsed failed: %s", r.err);
    const char *line = strstr(r.out, "site_heavy");
    const char *start = line;
    while (start && start > r.out && start[-1] != '\n')
        start--;
    if (!line || !strstr(start, "main") || !strchr(start, ';'))
        fail_msg("google-pprof --collapsed has no main;...;site_heavy stack: %s", r.out);
    tl_result_free(&r);
    done(dir);
}

/* HAKMEM_PROF_INTERVAL: numbered profiles as the program allocates (live allocates about
 * 10 MiB; one every 2 MiB gives about 5), each a valid profile. */
static void test_interval_profiles(void **s)
{
    (void)s;
    char *dir = scratch();
    const char *env[] = {"HAKMEM_PROF=1", SAMPLE, "HAKMEM_PROF_INTERVAL=2097152", NULL};
    tl_result r;
    run_prog(dir, "live", NULL, env, &r);
    tl_result_free(&r);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    int numbered = 0;
    while ((e = readdir(d)) != NULL) {
        int pid;
        unsigned seq;
        char tail[8], expect[64];
        if (sscanf(e->d_name, "hakmem.%d.%u.%7s", &pid, &seq, &tail[0]) == 3 &&
            !strcmp(tail, "heap")) {
            snprintf(expect, sizeof expect, "hakmem.%d.%04u.heap", pid, seq);
            if (strcmp(e->d_name, expect) != 0)
                fail_msg("a numbered profile is named '%s', not '%s'", e->d_name, expect);
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            char *text = tl_read_file(path, NULL);
            assert_non_null(text);
            if (strncmp(text, "heap profile: ", 14) != 0 || !strstr(text, "@ heap_v2/4096\n") ||
                !strstr(text, "\nMAPPED_LIBRARIES:\n"))
                fail_msg("%s is no heap profile: %.200s", path, text);
            free(text);
            numbered++;
        }
    }
    closedir(d);
    print_message("    %d numbered profiles\n", numbered);
    assert_true(numbered >= 2 && numbered <= 12);
    done(dir);
}

/* Every allocation API on sampled blocks (HAKMEM_PROF_SAMPLE=1: nearly every allocation is
 * sampled): contents kept, calloc zeroed on reused slots, alignment, usable size; no
 * message. */
static void test_every_api_on_sampled_blocks(void **s)
{
    (void)s;
    char *dir = scratch();
    const char *env[] = {"HAKMEM_PROF=1", "HAKMEM_PROF_SAMPLE=1", NULL};
    tl_result r;
    run_prog(dir, "all", NULL, env, &r);
    if (strstr(r.err, "hakmem:"))
        fail_msg("messages: %s", r.err);
    tl_result_free(&r);
    done(dir);
}

/* A signal handler that allocates and frees (a sampled block among them) while the thread
 * it interrupted is inside the profiler or the store: no deadlock (the deadline would kill
 * it), no message. */
static void test_signal_handler_allocates(void **s)
{
    (void)s;
    char *dir = scratch();
    const char *env[] = {"HAKMEM_PROF=1", "HAKMEM_PROF_SAMPLE=1", NULL};
    tl_result r;
    run_prog(dir, "signals", NULL, env, &r);
    print_message("    %s", r.out);
    if (strstr(r.err, "hakmem:"))
        fail_msg("messages: %s", r.err);
    tl_result_free(&r);
    done(dir);
}

/* A bad HAKMEM_PROF_SAMPLE: one warning naming it, then the default mean. */
static void test_bad_sample_warns_once(void **s)
{
    (void)s;
    char *dir = scratch(), file[4096];
    const char *env[] = {"HAKMEM_PROF=1", "HAKMEM_PROF_SAMPLE=12k", NULL};
    tl_result r;
    run_prog(dir, "live", NULL, env, &r);
    int warnings = tl_count_lines_with_prefix(r.err, "hakmem: warning: HAKMEM_PROF_SAMPLE=");
    int messages = tl_count_lines_with_prefix(r.err, "hakmem:");
    if (warnings != 1 || messages != 1)
        fail_msg("expected one warning naming HAKMEM_PROF_SAMPLE, got: %s", r.err);
    tl_result_free(&r);
    profile_of(dir, 0, file, sizeof file);
    char *text = tl_read_file(file, NULL);
    assert_non_null(text);
    int ok = strstr(text, "@ heap_v2/2097152\n") != NULL;
    free(text);
    assert_true(ok);
    done(dir);
}

/* A profile file that cannot be opened: one warning, the program exits 0. */
static void test_unopenable_file_warns_once(void **s)
{
    (void)s;
    char *dir = scratch();
    const char *env[] = {"HAKMEM_PROF=1", SAMPLE, "HAKMEM_PROF_FILE=/nonexistent-dir/%p.heap",
                         NULL};
    tl_result r;
    run_prog(dir, "live", NULL, env, &r);
    if (tl_count_lines_with_prefix(r.err, "hakmem: warning: HAKMEM_PROF: cannot open") != 1 ||
        tl_count_lines_with_prefix(r.err, "hakmem:") != 1)
        fail_msg("expected one warning: %s", r.err);
    tl_result_free(&r);
    done(dir);
}

/* Off (HAKMEM_PROF unset): hakmem_prof_dump fails with EINVAL, no profile is written. */
static void test_off_writes_nothing(void **s)
{
    (void)s;
    char *dir = scratch();
    const char *env[] = {"HAKMEM_PROF", NULL};
    tl_result r;
    run_prog(dir, "off", NULL, env, &r);
    tl_result_free(&r);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d)) != NULL)
        files += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(files, 0);
    done(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inuse_heavier_site_first),
        cmocka_unit_test(test_freed_samples_leave_inuse),
        cmocka_unit_test(test_dump_call),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_counts_exact_over_many_threads),
        cmocka_unit_test(test_estimates_unbiased),
        cmocka_unit_test(test_with_ace),
        cmocka_unit_test(test_fork),
        cmocka_unit_test(test_svg_and_collapsed),
        cmocka_unit_test(test_interval_profiles),
        cmocka_unit_test(test_every_api_on_sampled_blocks),
        cmocka_unit_test(test_signal_handler_allocates),
        cmocka_unit_test(test_bad_sample_warns_once),
        cmocka_unit_test(test_unopenable_file_warns_once),
        cmocka_unit_test(test_off_writes_nothing),
    };
    return cmocka_run_group_tests_name("heap profiler (HAKMEM_PROF)", tests, NULL, NULL);
}
