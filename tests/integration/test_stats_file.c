/* tests/integration/test_stats_file.c - HAKMEM_STATS_FILE: the exit table goes to a file,
 * one per process (the pid in its name), so it survives programs that close stderr before
 * they exit (coreutils do) and children that inherit the variable. Real programs run with
 * LD_PRELOAD=libhakmem.so; scratch directories come from mkdtemp and are removed. */
#define _GNU_SOURCE
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testlib.h"

#define PROG(name) TEST_BUILD_DIR "/integration/" name
#define TABLE_HEAD "hakmem per-class statistics"

static void run(const char *const argv[], const char *setting, tl_result *r)
{
    const char *env[] = {tl_preload_env(), setting, "HAKMEM_STATS", NULL};
    if (tl_run(argv, env, NULL, NULL, 60, r) != 0)
        fail_msg("could not start %s", argv[0]);
    char st[128];
    if (!tl_exited_ok(r))
        fail_msg("%s with %s: %s; stderr: %s", argv[0], setting, tl_status_str(r, st, sizeof st),
                 r->err);
}

/* The file <dir>/<name> holds a whole table: its header, a class row, the spans line. */
static void expect_table(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t len;
    char *text = tl_read_file(path, &len);
    if (!text)
        fail_msg("%s was not written", path);
    int ok = strncmp(text, TABLE_HEAD, strlen(TABLE_HEAD)) == 0 && strstr(text, "\nclass ") &&
             strstr(text, "\nspans: mapped ");
    if (!ok)
        print_message("    %s:\n%s\n", path, text);
    free(text);
    if (!ok)
        fail_msg("%s does not hold the statistics table", path);
}

/* Names in dir that start with prefix and continue with digits only; returns how many. */
static int count_pid_files(const char *dir, const char *prefix, char names[][64], int max)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t pl = strlen(prefix);
        if (strncmp(e->d_name, prefix, pl) != 0 || !e->d_name[pl])
            continue;
        if (strspn(e->d_name + pl, "0123456789") != strlen(e->d_name + pl))
            continue;
        if (n < max)
            snprintf(names[n], 64, "%.63s", e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

/* ls closes stderr before it exits, so HAKMEM_STATS=1 shows nothing; the file has it. */
static void test_stats_file_survives_closed_stderr(void **s)
{
    (void)s;
    char *dir = tl_mkdtemp("statsfile");
    char setting[4096];
    snprintf(setting, sizeof setting, "HAKMEM_STATS_FILE=%s/ls.%%p.txt", dir);
    const char *argv[] = {"/bin/ls", "-l", "/usr/lib", NULL};
    tl_result r;
    run(argv, setting, &r);
    tl_result_free(&r);
    /* "%p" sits before ".txt": the one file must be ls.<pid>.txt */
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d)) != NULL) {
        unsigned pid;
        char tail[8];
        if (sscanf(e->d_name, "ls.%u.%7s", &pid, tail) == 2 && strcmp(tail, "txt") == 0) {
            expect_table(dir, e->d_name);
            found++;
        }
    }
    closedir(d);
    tl_rmtree(dir);
    free(dir);
    assert_int_equal(found, 1);
}

/* A forked child inherits the setting: parent and child each write <path>.<own pid>. */
static void test_stats_file_one_per_process(void **s)
{
    (void)s;
    char *dir = tl_mkdtemp("statsfile");
    char setting[4096];
    snprintf(setting, sizeof setting, "HAKMEM_STATS_FILE=%s/st", dir);
    const char *argv[] = {PROG("prog_forker"), NULL};
    tl_result r;
    run(argv, setting, &r);
    int parent = 0, child = 0;
    const char *c = strstr(r.out, "child "), *p = strstr(r.out, "parent ");
    if (!c || !p || sscanf(c, "child %d", &child) != 1 || sscanf(p, "parent %d", &parent) != 1)
        fail_msg("prog_forker printed: %s", r.out);
    tl_result_free(&r);
    assert_int_not_equal(parent, child);
    char name[64];
    snprintf(name, sizeof name, "st.%d", parent);
    expect_table(dir, name);
    snprintf(name, sizeof name, "st.%d", child);
    expect_table(dir, name);
    char names[8][64];
    assert_int_equal(count_pid_files(dir, "st.", names, 8), 2);

    /* exec'd children inherit it too: sh runs two ls, each writes its own file */
    const char *sh[] = {"/bin/sh", "-c", "/bin/ls / >/dev/null; /bin/ls /usr >/dev/null", NULL};
    snprintf(setting, sizeof setting, "HAKMEM_STATS_FILE=%s/sh", dir);
    run(sh, setting, &r);
    tl_result_free(&r);
    int n = count_pid_files(dir, "sh.", names, 8);
    if (n < 2)
        fail_msg("%d file(s) sh.<pid> after sh ran two ls; expected one per ls", n);
    for (int i = 0; i < n && i < 8; i++)
        expect_table(dir, names[i]);
    tl_rmtree(dir);
    free(dir);
}

/* A file that cannot be created: one warning naming the variable, exit status unchanged. */
static void test_stats_file_unwritable(void **s)
{
    (void)s;
    const char *argv[] = {"/bin/true", NULL};
    tl_result r;
    run(argv, "HAKMEM_STATS_FILE=/nonexistent-hakmem-dir/stats", &r);
    int warnings = tl_count_lines_with_prefix(r.err, "hakmem: warning: ");
    int named = strstr(r.err, "HAKMEM_STATS_FILE") != NULL;
    char *err = strdup(r.err);
    tl_result_free(&r);
    if (warnings != 1 || !named)
        fail_msg("expected one warning naming HAKMEM_STATS_FILE, stderr: %s", err);
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats_file_survives_closed_stderr),
        cmocka_unit_test(test_stats_file_one_per_process),
        cmocka_unit_test(test_stats_file_unwritable),
    };
    return cmocka_run_group_tests_name("stats_file", tests, NULL, NULL);
}
