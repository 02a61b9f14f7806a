/* tests/integration/test_guard.c - guarded sampling (HAKMEM_GUARD_SAMPLE) end to end: each kind
 * of error on a guarded block stops tests/integration/prog_guard with SIGABRT and a report
 * that starts "hakmem:", names the kind, the address, the block's size and the allocation's
 * (and the free's) stack; a program that makes no error runs to its end whatever is guarded,
 * with the profiler on too; and about one allocation in N is guarded. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "testlib.h"

#define PROG TEST_BUILD_DIR "/integration/prog_guard"

static void run(const char *mode, const char *const env[], tl_result *r)
{
    const char *argv[] = {PROG, mode, NULL};
    const char *all[8] = {tl_preload_env()};
    int n = 1;
    for (int i = 0; env[i] && n < 7; i++)
        all[n++] = env[i];
    all[n] = NULL;
    if (tl_run(argv, all, NULL, NULL, 120, r) != 0)
        fail_msg("could not start %s", PROG);
}

/* mode dies by SIGABRT; its stderr has `kind` and each of `lines` (prefixes of lines). */
static void expect_report(const char *mode, const char *kind, const char *const lines[])
{
    const char *env[] = {"HAKMEM_GUARD_SAMPLE=1", NULL};
    tl_result r;
    run(mode, env, &r);
    char st[64];
    print_message("    %s: %s\n%s", mode, tl_status_str(&r, st, sizeof st), r.err);
    if (r.timed_out || !WIFSIGNALED(r.status) || WTERMSIG(r.status) != SIGABRT)
        fail_msg("prog_guard %s: %s, not SIGABRT", mode, st);
    if (!strstr(r.err, kind))
        fail_msg("prog_guard %s: no '%s' in the report", mode, kind);
    for (int i = 0; lines[i]; i++)
        if (tl_count_lines_with_prefix(r.err, lines[i]) != 1)
            fail_msg("prog_guard %s: no line starting '%s'", mode, lines[i]);
    tl_result_free(&r);
}

static void test_overflow(void **s)
{
    (void)s;
    const char *lines[] = {"hakmem: heap-buffer-overflow at 0x", "hakmem: allocated at: 0x",
                           NULL};
    expect_report("overflow", "12 byte(s) after the 100-byte block at 0x", lines);
}

static void test_underflow(void **s)
{
    (void)s;
    const char *lines[] = {"hakmem: heap-buffer-underflow at 0x", "hakmem: allocated at: 0x",
                           NULL};
    expect_report("underflow", "1 byte(s) before the 100-byte block at 0x", lines);
}

static void test_use_after_free(void **s)
{
    (void)s;
    const char *lines[] = {"hakmem: use-after-free at 0x", "hakmem: allocated at: 0x",
                           "hakmem: freed at: 0x", NULL};
    expect_report("uaf", "5 byte(s) into the freed 100-byte block at 0x", lines);
}

/* A SIGSEGV that is not a guarded block's reaches what would have had it without hakmem: here
 * the default action, so the program dies of SIGSEGV, with no report. Raised by the program
 * (before the fix hakmem's handler returned into it, and it went on: exit 0), raised again by
 * a handler of the program's that had replaced hakmem's and put it back (Python's
 * faulthandler), and an access fault. */
static void expect_sigsegv(const char *mode, const char *out)
{
    const char *env[] = {"HAKMEM_GUARD_SAMPLE=1", NULL};
    tl_result r;
    run(mode, env, &r);
    char st[64];
    print_message("    %s: %s\n", mode, tl_status_str(&r, st, sizeof st));
    if (r.timed_out || !WIFSIGNALED(r.status) || WTERMSIG(r.status) != SIGSEGV)
        fail_msg("prog_guard %s: %s, not SIGSEGV; stderr: %s", mode, st, r.err);
    if (strstr(r.err, "hakmem:"))
        fail_msg("prog_guard %s: a report for a fault that is not hakmem's: %s", mode, r.err);
    if (out && !strstr(r.out, out))
        fail_msg("prog_guard %s: no '%s' on stdout: %s", mode, out, r.out);
    tl_result_free(&r);
}

static void test_other_sigsegv_passes_on(void **s)
{
    (void)s;
    expect_sigsegv("raise", NULL);
    expect_sigsegv("rehandled", "rehandled");
    expect_sigsegv("segv", NULL);
}

static long guarded_count(const char *const env[])
{
    tl_result r;
    run("ok", env, &r);
    char st[64];
    if (!tl_exited_ok(&r) || strstr(r.err, "hakmem:"))
        fail_msg("prog_guard ok: %s; stderr: %s", tl_status_str(&r, st, sizeof st), r.err);
    long n = -1;
    const char *at = strstr(r.out, "guarded ");
    if (!at || sscanf(at, "guarded %ld", &n) != 1)
        fail_msg("prog_guard ok printed: %s", r.out);
    tl_result_free(&r);
    return n;
}

/* Every allocation that fits a page guarded (N = 1), and with the profiler on as well: the
 * program runs to its end. 100,000 allocations of 0..5000 bytes: about 81,900 fit. */
static void test_correct_program_runs(void **s)
{
    (void)s;
    const char *all[] = {"HAKMEM_GUARD_SAMPLE=1", NULL};
    long n = guarded_count(all);
    print_message("    N = 1: %ld guarded\n", n);
    assert_true(n > 75000);
    const char *prof[] = {"HAKMEM_GUARD_SAMPLE=1", "HAKMEM_PROF=1", "HAKMEM_PROF_SAMPLE=4096",
                          "HAKMEM_PROF_FILE=/dev/null", NULL};
    n = guarded_count(prof);
    print_message("    with the profiler: %ld guarded\n", n);
    assert_true(n > 0);
}

/* N = 1 with 30,000 small blocks live: at most HAK_GUARD_LIVE_MAX (2048) of them guarded, the
 * process's mappings far below vm.max_map_count (65,530 by default), and the program's own
 * mmap, mprotect, pthread_create, dlopen and 10 MiB malloc all succeed, then and after the
 * frees (before the bound: 16,357 guarded, 65,531 mappings, 406 calls failed, and a slot whose
 * page could not be made writable again was handed out: a false use-after-free report). */
static void test_many_live_blocks_bounded(void **s)
{
    (void)s;
    const char *env[] = {"HAKMEM_GUARD_SAMPLE=1", NULL};
    tl_result r;
    run("many", env, &r);
    char st[64];
    long guarded = -1, maps = -1, failures = -1;
    const char *line = strstr(r.out, "guarded ");
    if (line)
        sscanf(line, "guarded %ld maps %ld failures %ld", &guarded, &maps, &failures);
    print_message("    many: %s, %ld guarded, %ld mappings at most, %ld failed calls\n%s",
                  tl_status_str(&r, st, sizeof st), guarded, maps, failures, r.err);
    int ok = tl_exited_ok(&r);
    tl_result_free(&r);
    assert_true(ok);
    assert_true(guarded >= 1024 && guarded <= 2048);
    assert_true(maps > 0 && maps <= 4 * (2048 + 64) + 1000);
    assert_int_equal(failures, 0);
}

/* N = 100: about 819 of the 81,900 allocations that fit a page (a standard deviation of about
 * 29): between 500 and 1200. Unset: none. */
static void test_one_in_n(void **s)
{
    (void)s;
    const char *env[] = {"HAKMEM_GUARD_SAMPLE=100", NULL};
    long n = guarded_count(env);
    print_message("    N = 100: %ld guarded\n", n);
    assert_true(n >= 500 && n <= 1200);
    const char *off[] = {"HAKMEM_GUARD_SAMPLE", NULL}; /* unset: none */
    assert_int_equal(guarded_count(off), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_underflow),
        cmocka_unit_test(test_use_after_free),
        cmocka_unit_test(test_other_sigsegv_passes_on),
        cmocka_unit_test(test_correct_program_runs),
        cmocka_unit_test(test_one_in_n),
        cmocka_unit_test(test_many_live_blocks_bounded),
    };
    return cmocka_run_group_tests_name("guarded sampling (HAKMEM_GUARD_SAMPLE)", tests, NULL,
                                       NULL);
}
