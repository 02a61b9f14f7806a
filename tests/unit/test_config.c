/* tests/unit/test_config.c - shared_contracts/config.c parses the options table.
 *
 * hak_config_load() runs once per process, so each case re-executes this binary
 * (/proc/self/exe --dump) with a chosen environment; the child loads the config and prints
 * the parsed fields, the parent compares them and counts the warning lines on stderr. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "shared_contracts/config.h"
#include "testlib.h"

static int dump_config(void)
{
    hak_config_load();
#define DUMP(field, name, def, lo, hi, flags, meaning) \
    printf("%s=%lld\n", name, (long long)hak_config.field);
    HAK_OPTIONS(DUMP)
#undef DUMP
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
        printf("fixed_%u=%u\n", hak_class_size(c), hak_fixed_refill_count(c));
#define DUMP_PATH(field, name, meaning) printf("%s=%s\n", name, hak_config.field);
    HAK_PATH_OPTIONS(DUMP_PATH)
#undef DUMP_PATH
    return 0;
}

/* All options that the runner does not want inherited: unset them, then apply `set`. */
static void run_dump(const char *const set[], tl_result *r)
{
    const char *env[64];
    int n = 0;
    static const char *const all[] = {
        "POOL_REFILL_COUNT", "POOL_ACE", "POOL_ACE_INTERVAL_MS", "POOL_ACE_MIN", "POOL_ACE_MAX",
        "POOL_ACE_BUDGET_MIB", "POOL_ACE_RING", "POOL_ACE_LOG", "HAKMEM_STATS", "HAKMEM_DEBUG",
        "HAKMEM_DECAY_MS", "HAKMEM_TCACHE_MAX_KIB", "HAKMEM_STATS_FILE", "LD_PRELOAD", NULL};
    for (int i = 0; all[i]; i++)
        env[n++] = all[i];
    for (int i = 0; set && set[i]; i++)
        env[n++] = set[i];
    env[n] = NULL;
    const char *argv[] = {"/proc/self/exe", "--dump", NULL};
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(len > 0);
    self[len] = '\0';
    argv[0] = self;
    assert_int_equal(tl_run(argv, env, NULL, NULL, 30, r), 0);
    assert_true(tl_exited_ok(r));
}

static long long field(const tl_result *r, const char *name)
{
    char key[128];
    snprintf(key, sizeof key, "%s=", name);
    for (const char *l = r->out; l && *l;) {
        if (strncmp(l, key, strlen(key)) == 0)
            return strtoll(l + strlen(key), NULL, 10);
        l = strchr(l, '\n');
        if (l)
            l++;
    }
    fail_msg("no %s in the dump", name);
    return -1;
}

static int warnings(const tl_result *r) { return tl_count_lines_with_prefix(r->err, "hakmem: warning: "); }

static void test_defaults(void **state)
{
    (void)state;
    tl_result r;
    run_dump(NULL, &r);
#define CHECK_DEF(fld, name, def, lo, hi, flags, meaning) assert_int_equal(field(&r, name), def);
    HAK_OPTIONS(CHECK_DEF)
#undef CHECK_DEF
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        char k[32];
        snprintf(k, sizeof k, "fixed_%u", hak_class_size(c));
        assert_int_equal(field(&r, k), hak_default_refill[c]);
    }
    assert_int_equal(warnings(&r), 0);
    tl_result_free(&r);
}

static void test_valid_values(void **state)
{
    (void)state;
    const char *set[] = {"POOL_REFILL_COUNT=32", "POOL_ACE=1", "POOL_ACE_RING=4096",
                         "POOL_ACE_MIN=8", "POOL_ACE_MAX=512", "HAKMEM_DECAY_MS= 250 ",
                         "POOL_REFILL_COUNT_32768=8", "POOL_ACE_LOG=/tmp/ace.csv",
                         "HAKMEM_STATS_FILE=/tmp/stats.%p", "POOL_ACE_BUDGET_MIB=0", NULL};
    tl_result r;
    run_dump(set, &r);
    assert_int_equal(warnings(&r), 0);
    assert_int_equal(field(&r, "POOL_REFILL_COUNT"), 32);
    assert_int_equal(field(&r, "POOL_ACE"), 1);
    assert_int_equal(field(&r, "POOL_ACE_RING"), 4096);
    assert_int_equal(field(&r, "POOL_ACE_MIN"), 8);
    assert_int_equal(field(&r, "POOL_ACE_MAX"), 512);
    assert_int_equal(field(&r, "HAKMEM_DECAY_MS"), 250);
    assert_int_equal(field(&r, "POOL_ACE_BUDGET_MIB"), 0);
    assert_int_equal(field(&r, "fixed_32768"), 8); /* per-class override wins */
    assert_int_equal(field(&r, "fixed_16"), 32);   /* global override elsewhere */
    assert_non_null(strstr(r.out, "POOL_ACE_LOG=/tmp/ace.csv\n"));
    assert_non_null(strstr(r.out, "HAKMEM_STATS_FILE=/tmp/stats.%p\n"));
    tl_result_free(&r);
}

/* one bad value: exactly one warning naming it, and that field keeps its default */
static void expect_rejected(const char *setting, const char *name, long long def)
{
    const char *set[] = {setting, NULL};
    tl_result r;
    run_dump(set, &r);
    if (warnings(&r) != 1 || !strstr(r.err, name))
        fail_msg("%s: expected one warning naming %s, stderr: %s", setting, name, r.err);
    if (field(&r, name) != def)
        fail_msg("%s: %s = %lld, expected the default %lld", setting, name, field(&r, name), def);
    tl_result_free(&r);
}

static void test_invalid_values_fall_back(void **state)
{
    (void)state;
    expect_rejected("POOL_REFILL_COUNT=abc", "POOL_REFILL_COUNT", 0);
    expect_rejected("POOL_REFILL_COUNT=", "POOL_REFILL_COUNT", 0);
    expect_rejected("POOL_REFILL_COUNT=2000", "POOL_REFILL_COUNT", 0);
    expect_rejected("POOL_REFILL_COUNT=-3", "POOL_REFILL_COUNT", 0);
    expect_rejected("POOL_REFILL_COUNT=12abc", "POOL_REFILL_COUNT", 0);
    expect_rejected("POOL_ACE_RING=1000", "POOL_ACE_RING", 1024);
    expect_rejected("POOL_ACE_RING=8", "POOL_ACE_RING", 1024);
    expect_rejected("POOL_ACE_INTERVAL_MS=5", "POOL_ACE_INTERVAL_MS", 100);
    expect_rejected("HAKMEM_TCACHE_MAX_KIB=99999999999999999999999", "HAKMEM_TCACHE_MAX_KIB",
                    8192);
    expect_rejected("POOL_ACE=2", "POOL_ACE", 0); /* shadow is a word, not a number */
    expect_rejected("POOL_ACE=shadowy", "POOL_ACE", 0);
    expect_rejected("POOL_ACE=Shadow", "POOL_ACE", 0);
    expect_rejected("POOL_ACE_BUDGET_MIB=shadow", "POOL_ACE_BUDGET_MIB", 1); /* not its word */
    expect_rejected("POOL_ACE_BUDGET_MIB=70000", "POOL_ACE_BUDGET_MIB", 1);
}

/* POOL_ACE takes the word shadow (spaces around it allowed); a bad value's warning names the
 * variable and lists the word. */
static void test_ace_shadow_word(void **state)
{
    (void)state;
    const char *words[] = {"POOL_ACE=shadow", "POOL_ACE= shadow ", NULL};
    for (int i = 0; words[i]; i++) {
        const char *set[] = {words[i], NULL};
        tl_result r;
        run_dump(set, &r);
        assert_int_equal(warnings(&r), 0);
        assert_int_equal(field(&r, "POOL_ACE"), HAK_ACE_SHADOW);
        tl_result_free(&r);
    }
    const char *bad[] = {"POOL_ACE=on", NULL};
    tl_result r;
    run_dump(bad, &r);
    assert_int_equal(warnings(&r), 1);
    assert_non_null(strstr(r.err, "POOL_ACE='on' is not an integer in [0, 1] or one of: shadow"));
    assert_int_equal(field(&r, "POOL_ACE"), 0);
    tl_result_free(&r);
}

/* A path option that is empty or too long: one warning naming it, and the option is off. */
static void expect_path_rejected(const char *name, const char *value)
{
    char setting[1200];
    snprintf(setting, sizeof setting, "%s=%s", name, value);
    const char *set[] = {setting, NULL};
    tl_result r;
    run_dump(set, &r);
    char off[128];
    snprintf(off, sizeof off, "\n%s=\n", name);
    if (warnings(&r) != 1 || !strstr(r.err, name))
        fail_msg("%s (%zu bytes): expected one warning naming it, stderr: %s", name,
                 strlen(value), r.err);
    if (!strstr(r.out, off))
        fail_msg("%s (%zu bytes) was not left off", name, strlen(value));
    tl_result_free(&r);
}

static void test_invalid_paths_are_off(void **state)
{
    (void)state;
    char longpath[600];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[0] = '/';
    longpath[sizeof longpath - 1] = '\0';
#define CHECK_PATH(field, name, meaning)                                                    \
    expect_path_rejected(name, "");                                                        \
    expect_path_rejected(name, longpath);
    HAK_PATH_OPTIONS(CHECK_PATH)
#undef CHECK_PATH
}

static void test_ace_min_above_max(void **state)
{
    (void)state;
    const char *set[] = {"POOL_ACE_MIN=500", "POOL_ACE_MAX=100", NULL};
    tl_result r;
    run_dump(set, &r);
    assert_int_equal(warnings(&r), 1);
    assert_int_equal(field(&r, "POOL_ACE_MIN"), 4);
    assert_int_equal(field(&r, "POOL_ACE_MAX"), 1024);
    tl_result_free(&r);
}

static void test_bad_class_override(void **state)
{
    (void)state;
    const char *set[] = {"POOL_REFILL_COUNT_33=5", "POOL_REFILL_COUNT_64=0", NULL};
    tl_result r;
    run_dump(set, &r);
    assert_int_equal(warnings(&r), 2);
    assert_int_equal(field(&r, "fixed_64"), 64); /* unchanged */
    tl_result_free(&r);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--dump") == 0)
        return dump_config();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_valid_values),
        cmocka_unit_test(test_invalid_values_fall_back),
        cmocka_unit_test(test_invalid_paths_are_off),
        cmocka_unit_test(test_ace_shadow_word),
        cmocka_unit_test(test_ace_min_above_max),
        cmocka_unit_test(test_bad_class_override),
    };
    return cmocka_run_group_tests_name("unit_config", tests, NULL, NULL);
}
