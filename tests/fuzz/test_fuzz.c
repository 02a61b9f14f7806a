/* tests/fuzz/test_fuzz.c - the bounded fuzzing pass of `make test`.
 *
 * Runs build/tests/fuzz/fuzz_api (tests/fuzz/fuzz_api.c: libFuzzer, hakmem linked in as the
 * process malloc, UBSan) twice: once over the committed seed corpus only (every seed must run
 * clean), then fuzzing for HAKMEM_FUZZ_SECONDS (default 10; x10 under HAKMEM_TEST_LONG=1) from
 * the seeds, writing new inputs to a scratch directory. Any crash, UBSan report, leak of a
 * check or timeout fails the test; the crashing input is kept in build/tests/fuzz/ (libFuzzer's
 * -artifact_prefix) and its path printed. `make fuzz` runs longer (FUZZ_SECONDS). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testlib.h"

#define FUZZ_BIN TEST_BUILD_DIR "/fuzz/fuzz_api"
#define CORPUS REPO_DIR "/tests/fuzz/corpus"

static long stat_value(const char *text, const char *name)
{
    const char *p = strstr(text, name);
    return p ? strtol(p + strlen(name), NULL, 10) : -1;
}

static void run_fuzzer(const char *const args[], int timeout_s, long *execs)
{
    const char *argv[16];
    int n = 0;
    argv[n++] = FUZZ_BIN;
    for (int i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    const char *env[] = {"LD_PRELOAD", "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1", NULL};
    tl_result r;
    if (tl_run(argv, env, NULL, NULL, timeout_s, &r) != 0)
        fail_msg("could not start %s (does clang with libFuzzer exist?)", FUZZ_BIN);
    char st[128];
    tl_status_str(&r, st, sizeof st);
    int ok = tl_exited_ok(&r);
    *execs = stat_value(r.err, "stat::number_of_executed_units: ");
    long peak = stat_value(r.err, "stat::peak_rss_mb: ");
    print_message("    %ld inputs executed, peak RSS %ld MiB, %s\n", *execs, peak, st);
    if (!ok || strstr(r.err, "runtime error:") || strstr(r.err, "hakmem:")) {
        const char *tail = r.err_len > 6000 ? r.err + r.err_len - 6000 : r.err;
        print_message("    fuzzer stderr (last 6000 bytes):\n%s\n", tail);
        tl_result_free(&r);
        fail_msg("fuzz_api: %s (crash inputs are saved under " TEST_BUILD_DIR "/fuzz/)", st);
    }
    tl_result_free(&r);
}

static void test_fuzz_seed_corpus(void **s)
{
    (void)s;
    long execs;
    const char *args[] = {"-runs=0", "-print_final_stats=1",
                          "-artifact_prefix=" TEST_BUILD_DIR "/fuzz/", CORPUS, NULL};
    run_fuzzer(args, 120, &execs);
    if (execs < 1)
        fail_msg("the seed corpus was not executed");
}

static void test_fuzz_bounded(void **s)
{
    (void)s;
    const char *env = getenv("HAKMEM_FUZZ_SECONDS");
    int seconds = (env && atoi(env) > 0 ? atoi(env) : 10) * tl_scale();
    char *dir = tl_mkdtemp("fuzz");
    assert_non_null(dir);
    char max_time[64];
    snprintf(max_time, sizeof max_time, "-max_total_time=%d", seconds);
    const char *args[] = {max_time,
                          "-print_final_stats=1",
                          "-rss_limit_mb=4096",
                          "-timeout=30",
                          "-max_len=4096",
                          "-artifact_prefix=" TEST_BUILD_DIR "/fuzz/",
                          dir,
                          CORPUS,
                          NULL};
    long execs;
    run_fuzzer(args, seconds + 120, &execs);
    tl_rmtree(dir);
    free(dir);
    if (execs < 100)
        fail_msg("only %ld inputs in %d s", execs, seconds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fuzz_seed_corpus),
        cmocka_unit_test(test_fuzz_bounded),
    };
    return cmocka_run_group_tests_name("fuzz", tests, NULL, NULL);
}
