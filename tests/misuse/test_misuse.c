/* tests/misuse/test_misuse.c - drives the misuse programs (tests/misuse/prog_*.c) and the
 * environment checks, each as a separate process with LD_PRELOAD=libhakmem.so.
 *
 * Misuse: the program (C, or C++ for prog_cxx_*) prints "ptr 0x..." (%p) and then commits
 * one misuse. It must die by
 * SIGABRT, and stderr must hold a line starting "hakmem:" that contains that exact pointer
 * text, so a user can find the culprit.
 *
 * Environment: an invalid value gives exactly one line "hakmem: warning: ..." naming the
 * variable, the default is used, and the program runs normally (exit 0). A valid value gives
 * no hakmem line at all (the control). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "testlib.h"

#define PROG(name) TEST_BUILD_DIR "/misuse/" name

/* Does a line of `err` start with "hakmem:" and contain `needle`? */
static int hakmem_line_with(const char *err, const char *needle)
{
    const char *line = err;
    while (line && *line) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len >= 7 && strncmp(line, "hakmem:", 7) == 0) {
            char *copy = strndup(line, len);
            int hit = copy && strstr(copy, needle) != NULL;
            /* the pointer must not continue with more hex digits (0x1234 vs 0x12345) */
            if (hit) {
                const char *at = strstr(copy, needle) + strlen(needle);
                if ((*at >= '0' && *at <= '9') || (*at >= 'a' && *at <= 'f'))
                    hit = 0;
            }
            free(copy);
            if (hit)
                return 1;
        }
        line = end ? end + 1 : NULL;
    }
    return 0;
}

static void expect_abort_with(const char *prog, const char *debug_setting, const char *api);

static void expect_abort_naming_pointer(const char *prog)
{
    expect_abort_with(prog, "HAKMEM_DEBUG", NULL);
}

/* debug_setting: "HAKMEM_DEBUG" (unset) or "HAKMEM_DEBUG=1"; api: if not NULL, the hakmem
 * line must also name this function ("realloc("). */
static void expect_abort_with(const char *prog, const char *debug_setting, const char *api)
{
    const char *argv[] = {prog, NULL};
    const char *env[] = {tl_preload_env(), debug_setting, NULL};
    tl_result r;
    char st[128];
    assert_int_equal(tl_run(argv, env, NULL, NULL, 30, &r), 0);
    print_message("    status: %s\n    stdout: %s    stderr: %s\n", tl_status_str(&r, st, sizeof st),
                  r.out, r.err[0] ? r.err : "(empty)\n");
    char ptr[64] = "";
    if (sscanf(r.out, "ptr %63s", ptr) != 1 || strncmp(ptr, "0x", 2) != 0) {
        tl_result_free(&r);
        fail_msg("%s did not print its pointer (did it start at all?)", prog);
    }
    int aborted = !r.timed_out && WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT;
    int named = hakmem_line_with(r.err, ptr);
    int survived = strstr(r.out, "survived") != NULL;
    int api_named = !api || strstr(r.err, api) != NULL;
    tl_result_free(&r);
    if (!aborted)
        fail_msg("%s: expected death by SIGABRT, got %s%s", prog, st,
                 survived ? " (the misuse went unnoticed)" : "");
    if (!named)
        fail_msg("%s: no stderr line starting \"hakmem:\" names the pointer %s", prog, ptr);
    if (!api_named)
        fail_msg("%s: the hakmem line does not name %s", prog, api);
}

static void test_free_stack_pointer(void **s) { (void)s; expect_abort_naming_pointer(PROG("prog_free_stack")); }
static void test_free_wild_pointer(void **s) { (void)s; expect_abort_naming_pointer(PROG("prog_free_wild")); }
static void test_free_static_array(void **s) { (void)s; expect_abort_naming_pointer(PROG("prog_free_static")); }
static void test_free_interior_plus16(void **s) { (void)s; expect_abort_naming_pointer(PROG("prog_free_interior16")); }
static void test_free_interior_plus8(void **s) { (void)s; expect_abort_naming_pointer(PROG("prog_free_interior8")); }
static void test_free_interior_large(void **s) { (void)s; expect_abort_naming_pointer(PROG("prog_free_interior_large")); }
static void test_double_free_small(void **s) { (void)s; expect_abort_naming_pointer(PROG("prog_double_free_small")); }
static void test_double_free_interleaved(void **s) { (void)s; expect_abort_naming_pointer(PROG("prog_double_free_interleaved")); }
static void test_double_free_mid(void **s) { (void)s; expect_abort_naming_pointer(PROG("prog_double_free_mid")); }
static void test_double_free_large(void **s) { (void)s; expect_abort_naming_pointer(PROG("prog_double_free_large")); }
static void test_realloc_interior_names_realloc(void **s)
{
    (void)s;
    expect_abort_with(PROG("prog_realloc_interior"), "HAKMEM_DEBUG", "realloc(");
}
/* C++: a sized delete whose size is not the allocation's (sizeof(Base) for a Derived). */
static void test_cxx_sized_delete_wrong_size(void **s)
{
    (void)s;
    expect_abort_with(PROG("prog_cxx_sized_delete"), "HAKMEM_DEBUG", "operator delete(");
}
static void test_cxx_sized_delete_large_wrong_size(void **s)
{
    (void)s;
    expect_abort_with(PROG("prog_cxx_sized_delete_large"), "HAKMEM_DEBUG", "wrong size");
}
/* The same program without HAKMEM_DEBUG. */
static void test_double_free_far(void **s)
{
    (void)s;
    expect_abort_with(PROG("prog_debug_double_free_far"), "HAKMEM_DEBUG", "double free");
}
/* The block left every thread list before its second free (its thread exited): caught by the
 * free key and the block's encoded link (misuse.c, hak_free_recheck). */
static void test_double_free_after_thread_exit(void **s)
{
    (void)s;
    expect_abort_with(PROG("prog_double_free_after_exit"), "HAKMEM_DEBUG", "double free");
}
static void test_debug_double_free_after_spill(void **s)
{
    (void)s;
    expect_abort_with(PROG("prog_debug_double_free_far"), "HAKMEM_DEBUG=1", "double free");
}
/* Freed by one thread, freed again by another: caught at the second free, so the block is
 * never handed out twice. */
static void test_double_free_across_threads(void **s)
{
    (void)s;
    expect_abort_with(PROG("prog_double_free_threads"), "HAKMEM_DEBUG", "double free");
}

/* ---- hardened free lists (shared_contracts/chain.h) -------------------------------------- */

/* Runs prog: SIGABRT, a "hakmem:" line naming the printed pointer and "corrupted free list",
 * and nothing on stdout after the pointer line (no planted pointer returned, no survival). */
static void expect_corrupt_list_abort(const char *prog)
{
    expect_abort_with(prog, "HAKMEM_DEBUG", "corrupted free list");
    const char *argv[] = {prog, NULL};
    const char *env[] = {tl_preload_env(), NULL};
    tl_result r;
    assert_int_equal(tl_run(argv, env, NULL, NULL, 30, &r), 0);
    int planted = strstr(r.out, "planted") != NULL;
    tl_result_free(&r);
    if (planted)
        fail_msg("%s: malloc returned the planted pointer", prog);
}
static void test_poisoned_link_aborts(void **s)
{
    (void)s;
    expect_corrupt_list_abort(PROG("prog_poison_list"));
}
static void test_overflow_into_free_neighbour_aborts(void **s)
{
    (void)s;
    expect_corrupt_list_abort(PROG("prog_overflow_into_free"));
}
static void test_debug_write_after_free(void **s)
{
    (void)s;
    expect_abort_with(PROG("prog_debug_write_after_free"), "HAKMEM_DEBUG=1", "after it was freed");
}
static void test_debug_write_into_free_key(void **s)
{
    (void)s;
    expect_abort_with(PROG("prog_debug_write_key_after_free"), "HAKMEM_DEBUG=1",
                      "lost its free key");
}

/* ---- environment values ---------------------------------------------------------------- */

static void run_with_env(const char *prog, const char *setting, tl_result *r)
{
    const char *argv[] = {prog, NULL};
    const char *env[] = {tl_preload_env(), setting, NULL};
    assert_int_equal(tl_run(argv, env, NULL, NULL, 30, r), 0);
    char st[128];
    print_message("    %s %s: %s; stderr: %s\n", setting, prog, tl_status_str(r, st, sizeof st),
                  r->err[0] ? r->err : "(empty)\n");
}

static void expect_one_warning(const char *prog, const char *setting, const char *expect_out)
{
    char var[64];
    snprintf(var, sizeof var, "%.*s", (int)strcspn(setting, "="), setting);
    tl_result r;
    run_with_env(prog, setting, &r);
    int ok = tl_exited_ok(&r);
    int warnings = tl_count_lines_with_prefix(r.err, "hakmem: warning: ");
    int hak_lines = tl_count_lines_with_prefix(r.err, "hakmem:");
    int named = hakmem_line_with(r.err, var);
    int out_ok = !expect_out || strcmp(r.out, expect_out) == 0;
    char st[128];
    tl_status_str(&r, st, sizeof st);
    tl_result_free(&r);
    if (!ok)
        fail_msg("%s with %s: %s, expected exit 0", prog, setting, st);
    if (warnings != 1 || hak_lines != 1)
        fail_msg("%s with %s: %d warning line(s), %d hakmem line(s); expected exactly one", prog,
                 setting, warnings, hak_lines);
    if (!named)
        fail_msg("%s with %s: the warning does not name %s", prog, setting, var);
    if (!out_ok)
        fail_msg("%s with %s: unexpected stdout", prog, setting);
}

static void expect_no_warning(const char *prog, const char *setting, const char *expect_out)
{
    tl_result r;
    run_with_env(prog, setting, &r);
    int ok = tl_exited_ok(&r);
    int hak_lines = tl_count_lines_with_prefix(r.err, "hakmem:");
    int out_ok = !expect_out || strcmp(r.out, expect_out) == 0;
    tl_result_free(&r);
    assert_true(ok);
    if (hak_lines)
        fail_msg("valid %s produced %d hakmem line(s)", setting, hak_lines);
    assert_true(out_ok);
}

static void test_env_refill_count_not_integer(void **s)
{
    (void)s;
    expect_one_warning("/bin/true", "POOL_REFILL_COUNT=abc", "");
}

static void test_env_ace_ring_not_power_of_two(void **s)
{
    (void)s;
    expect_one_warning("/bin/true", "POOL_ACE_RING=1000", "");
}

static void test_env_out_of_range(void **s)
{
    (void)s;
    expect_one_warning("/bin/true", "POOL_ACE_INTERVAL_MS=5", "");
    expect_one_warning("/bin/true", "HAKMEM_TCACHE_MAX_KIB=-1", "");
    expect_one_warning("/bin/true", "HAKMEM_DECAY_MS=12x", "");
    expect_one_warning("/bin/true", "HAKMEM_STATS_FILE=", "");
}

static void test_env_warning_once_with_threads(void **s)
{
    (void)s;
    expect_one_warning(PROG("prog_env_threads"), "POOL_REFILL_COUNT=abc", "ok\n");
    expect_one_warning(PROG("prog_env_threads"), "POOL_ACE_RING=1000", "ok\n");
}

static void test_env_valid_values_are_silent(void **s)
{
    (void)s;
    expect_no_warning("/bin/true", "POOL_REFILL_COUNT=32", "");
    expect_no_warning("/bin/true", "POOL_ACE_RING=1024", "");
    expect_no_warning(PROG("prog_env_threads"), "POOL_REFILL_COUNT=8", "ok\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_free_stack_pointer),
        cmocka_unit_test(test_free_wild_pointer),
        cmocka_unit_test(test_free_static_array),
        cmocka_unit_test(test_free_interior_plus16),
        cmocka_unit_test(test_free_interior_plus8),
        cmocka_unit_test(test_free_interior_large),
        cmocka_unit_test(test_double_free_small),
        cmocka_unit_test(test_double_free_interleaved),
        cmocka_unit_test(test_double_free_mid),
        cmocka_unit_test(test_double_free_large),
        cmocka_unit_test(test_realloc_interior_names_realloc),
        cmocka_unit_test(test_cxx_sized_delete_wrong_size),
        cmocka_unit_test(test_cxx_sized_delete_large_wrong_size),
        cmocka_unit_test(test_double_free_far),
        cmocka_unit_test(test_double_free_after_thread_exit),
        cmocka_unit_test(test_debug_double_free_after_spill),
        cmocka_unit_test(test_double_free_across_threads),
        cmocka_unit_test(test_poisoned_link_aborts),
        cmocka_unit_test(test_overflow_into_free_neighbour_aborts),
        cmocka_unit_test(test_debug_write_after_free),
        cmocka_unit_test(test_debug_write_into_free_key),
        cmocka_unit_test(test_env_refill_count_not_integer),
        cmocka_unit_test(test_env_ace_ring_not_power_of_two),
        cmocka_unit_test(test_env_out_of_range),
        cmocka_unit_test(test_env_warning_once_with_threads),
        cmocka_unit_test(test_env_valid_values_are_silent),
    };
    return cmocka_run_group_tests_name("misuse", tests, NULL, NULL);
}
