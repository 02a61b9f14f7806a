/* tests/integration/test_integration.c - real programs under LD_PRELOAD=libhakmem.so: python3,
 * git, sqlite3, gcc and sort. Each run must exit 0, print no "hakmem:" line, and produce
 * output equal to values computed here in C or, where C cannot compute them, to the output of
 * the same program run without the preload (glibc's malloc). Scratch directories come from
 * mkdtemp and are removed afterwards. A missing tool is a failure (scripts/deps.sh installs
 * python3, sqlite3 and git). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "testlib.h"

#define TOOL_TIMEOUT_S 180

static const char *need_tool(const char *name, const char *const candidates[])
{
    const char *t = tl_find_tool(candidates);
    if (!t)
        fail_msg("%s is not installed (looked in /usr/bin and /bin)", name);
    return t;
}

/* Run a tool; with_preload chooses hakmem or plain glibc. Fails the test unless it exits 0,
 * and, under hakmem, unless stderr is free of "hakmem:" lines and preload errors. */
static void run_ok(const char *const argv[], const char *const extra_env[], int with_preload,
                   const char *cwd, const char *stdin_path, tl_result *r)
{
    const char *env[32];
    int n = 0;
    env[n++] = with_preload ? tl_preload_env() : "LD_PRELOAD";
    for (int i = 0; extra_env && extra_env[i] && n < 30; i++)
        env[n++] = extra_env[i];
    env[n] = NULL;
    if (tl_run(argv, env, cwd, stdin_path, TOOL_TIMEOUT_S, r) != 0)
        fail_msg("could not start %s", argv[0]);
    char st[128];
    tl_status_str(r, st, sizeof st);
    if (!tl_exited_ok(r)) {
        print_message("    stdout (first 2000 bytes): %.2000s\n    stderr (first 4000 bytes): "
                      "%.4000s\n",
                      r->out, r->err);
        fail_msg("%s %s%s: %s", argv[0], argv[1] ? argv[1] : "",
                 with_preload ? " (LD_PRELOAD=hakmem)" : " (glibc)", st);
    }
    if (with_preload) {
        if (tl_count_lines_with_prefix(r->err, "hakmem:") || strstr(r->err, "cannot be preloaded"))
            fail_msg("%s %s: unexpected stderr under hakmem: %.2000s", argv[0],
                     argv[1] ? argv[1] : "", r->err);
    }
}

static char *path_in(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    assert_non_null(p);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

/* ---- python3 ------------------------------------------------------------------------------ */

static const char py_script[] =
    "import json, threading\n"
    "N = 1000000\n"
    "d = {}\n"
    "for i in range(N):\n"
    "    d['k%d' % i] = i * i\n"
    "s = 0\n"
    "for k, v in d.items():\n"
    "    s = (s + v) % 1000000007\n"
    "print('dict', len(d), s)\n"
    "obj = [{'id': i, 'name': 'n%d' % i, 'vals': list(range(i % 50)), 'f': i / 7.0}\n"
    "       for i in range(100000)]\n"
    "txt = json.dumps(obj)\n"
    "back = json.loads(txt)\n"
    "print('json', back == obj, len(txt))\n"
    "res = [0] * 4\n"
    "def work(t):\n"
    "    acc = 0\n"
    "    for r in range(20):\n"
    "        lst = [bytes(((i + t) % 256,)) * (i % 300 + 1) for i in range(5000)]\n"
    "        acc += sum(len(b) for b in lst)\n"
    "        d2 = {i: str(i) * (i % 10) for i in range(5000)}\n"
    "        acc += len(d2)\n"
    "    res[t] = acc\n"
    "ths = [threading.Thread(target=work, args=(t,)) for t in range(4)]\n"
    "for th in ths: th.start()\n"
    "for th in ths: th.join()\n"
    "print('threads', sum(res))\n";

static void test_python3(void **state)
{
    (void)state;
    static const char *const cands[] = {"/usr/bin/python3", "/bin/python3", NULL};
    const char *py = need_tool("python3", cands);
    char *dir = tl_mkdtemp("py");
    assert_non_null(dir);
    char *script = path_in(dir, "work.py");
    assert_int_equal(tl_write_file(script, py_script, strlen(py_script)), 0);
    const char *argv[] = {py, "-I", script, NULL};
    const char *env[] = {"PYTHONHASHSEED=0", NULL};
    tl_result hak, ref;
    run_ok(argv, env, 1, dir, NULL, &hak);
    run_ok(argv, env, 0, dir, NULL, &ref);

    /* expected values, computed here */
    unsigned long long s = 0;
    for (unsigned long long i = 0; i < 1000000; i++)
        s = (s + (i * i) % 1000000007ull) % 1000000007ull;
    unsigned long long per = 0;
    for (int i = 0; i < 5000; i++)
        per += (unsigned long long)(i % 300 + 1);
    unsigned long long threads = 4ull * 20ull * (per + 5000ull);
    char want[256];
    snprintf(want, sizeof want, "dict 1000000 %llu\n", s);
    print_message("    hakmem stdout: %s", hak.out);
    if (strncmp(hak.out, want, strlen(want)) != 0)
        fail_msg("python3 under hakmem printed \"%.200s\", expected first line \"%s\"", hak.out,
                 want);
    snprintf(want, sizeof want, "threads %llu\n", threads);
    if (!strstr(hak.out, want))
        fail_msg("python3 under hakmem: no line \"%s\"", want);
    if (!strstr(hak.out, "json True "))
        fail_msg("python3 under hakmem: json roundtrip not equal");
    if (strcmp(hak.out, ref.out) != 0)
        fail_msg("python3 output differs: hakmem \"%s\" vs glibc \"%s\"", hak.out, ref.out);
    tl_result_free(&hak);
    tl_result_free(&ref);
    tl_rmtree(dir);
    free(script);
    free(dir);
}

/* ---- git ---------------------------------------------------------------------------------- */

static void write_tree_files(const char *repo, int version)
{
    for (int i = 0; i < 300; i++) {
        char name[64];
        snprintf(name, sizeof name, "f%03d.txt", i);
        char *p = path_in(repo, name);
        size_t len = 200 + (size_t)(i * 37 % 3000);
        char *buf = malloc(len);
        assert_non_null(buf);
        for (size_t k = 0; k < len; k++)
            buf[k] = (k % 64 == 63) ? '\n' : (char)('a' + (i + k + (size_t)version * (i % 3 == 0)) % 26);
        assert_int_equal(tl_write_file(p, buf, len), 0);
        free(buf);
        free(p);
    }
}

/* Build the same two-commit repository; returns the HEAD commit id (malloc'd). */
static char *git_scenario(const char *git, const char *base, int with_preload)
{
    char *repo = path_in(base, with_preload ? "hak" : "ref");
    char *home = path_in(base, "home");
    mkdir(home, 0700);
    char home_env[4200];
    snprintf(home_env, sizeof home_env, "HOME=%s", home);
    const char *env[] = {home_env,
                         "GIT_CONFIG_NOSYSTEM=1",
                         "GIT_AUTHOR_NAME=Hakmem Test",
                         "GIT_AUTHOR_EMAIL=test@hakmem.invalid",
                         "GIT_COMMITTER_NAME=Hakmem Test",
                         "GIT_COMMITTER_EMAIL=test@hakmem.invalid",
                         "GIT_AUTHOR_DATE=2024-01-02T03:04:05 +0000",
                         "GIT_COMMITTER_DATE=2024-01-02T03:04:05 +0000",
                         "LC_ALL=C",
                         NULL};
    tl_result r;
    const char *init[] = {git, "init", "-q", "-b", "main", repo, NULL};
    run_ok(init, env, with_preload, base, NULL, &r);
    tl_result_free(&r);
    write_tree_files(repo, 0);
    const char *add[] = {git, "add", "-A", NULL};
    run_ok(add, env, with_preload, repo, NULL, &r);
    tl_result_free(&r);
    const char *c1[] = {git, "commit", "-q", "-m", "first hakmem integration commit", NULL};
    run_ok(c1, env, with_preload, repo, NULL, &r);
    tl_result_free(&r);
    write_tree_files(repo, 1);
    run_ok(add, env, with_preload, repo, NULL, &r);
    tl_result_free(&r);
    const char *c2[] = {git, "commit", "-q", "-m", "second hakmem integration commit", NULL};
    run_ok(c2, env, with_preload, repo, NULL, &r);
    tl_result_free(&r);
    const char *head[] = {git, "rev-parse", "HEAD", NULL};
    run_ok(head, env, with_preload, repo, NULL, &r);
    char *id = strdup(r.out);
    tl_result_free(&r);
    if (with_preload) {
        const char *gc[] = {git, "gc", "-q", "--prune=now", NULL};
        run_ok(gc, env, 1, repo, NULL, &r);
        tl_result_free(&r);
        const char *fsck[] = {git, "fsck", "--full", "--strict", NULL};
        run_ok(fsck, env, 1, repo, NULL, &r);
        tl_result_free(&r);
        const char *log[] = {git, "log", "--format=%H %s", NULL};
        run_ok(log, env, 1, repo, NULL, &r);
        print_message("    git log under hakmem:\n%s", r.out);
        if (!strstr(r.out, " second hakmem integration commit\n") ||
            !strstr(r.out, " first hakmem integration commit\n") ||
            strncmp(r.out, id, 40) != 0)
            fail_msg("git log does not show both commits with HEAD first: %s", r.out);
        tl_result_free(&r);
        /* after gc everything is packed: the packed objects must read back the same tree */
        const char *ls[] = {git, "ls-tree", "-r", "HEAD", NULL};
        run_ok(ls, env, 1, repo, NULL, &r);
        if (tl_count_lines_with_prefix(r.out, "100644 blob ") != 300)
            fail_msg("git ls-tree after gc lists %d blobs, expected 300",
                     tl_count_lines_with_prefix(r.out, "100644 blob "));
        tl_result_free(&r);
    }
    free(repo);
    free(home);
    return id;
}

static void test_git(void **state)
{
    (void)state;
    static const char *const cands[] = {"/usr/bin/git", "/bin/git", NULL};
    const char *git = need_tool("git", cands);
    char *dir = tl_mkdtemp("git");
    assert_non_null(dir);
    char *hak = git_scenario(git, dir, 1);
    char *ref = git_scenario(git, dir, 0);
    assert_non_null(hak);
    assert_non_null(ref);
    if (strlen(hak) != 41 || strcmp(hak, ref) != 0)
        fail_msg("HEAD under hakmem %s differs from the glibc build of the same commits %s", hak,
                 ref);
    free(hak);
    free(ref);
    tl_rmtree(dir);
    free(dir);
}

/* ---- sqlite3 ------------------------------------------------------------------------------ */

static void test_sqlite3(void **state)
{
    (void)state;
    static const char *const cands[] = {"/usr/bin/sqlite3", "/bin/sqlite3", NULL};
    const char *sq = need_tool("sqlite3", cands);
    char *dir = tl_mkdtemp("sqlite");
    assert_non_null(dir);
    char *sql = path_in(dir, "load.sql");
    char *db = path_in(dir, "t.db");
    FILE *f = fopen(sql, "w");
    assert_non_null(f);
    enum { ROWS = 100000 };
    fprintf(f, "CREATE TABLE t(id INTEGER PRIMARY KEY, x INTEGER, s TEXT);\nBEGIN;\n");
    unsigned long long sum_x = 0, sum_len = 0;
    long groups[7] = {0};
    for (long i = 0; i < ROWS; i++) {
        long x = i * 3 + 1;
        char s[64];
        int len = snprintf(s, sizeof s, "row-%ld-%.*s", i, (int)(i % 40), "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz");
        fprintf(f, "INSERT INTO t(x, s) VALUES(%ld, '%s');\n", x, s);
        sum_x += (unsigned long long)x;
        sum_len += (unsigned long long)len;
        groups[x % 7]++;
    }
    fprintf(f, "COMMIT;\nCREATE INDEX ix ON t(s);\n"
               "SELECT count(*), sum(x), sum(length(s)), max(x) FROM t;\n"
               "SELECT x %% 7 AS k, count(*) FROM t GROUP BY k ORDER BY k;\n"
               "SELECT count(*) FROM t WHERE s LIKE 'row-99%%';\n");
    assert_int_equal(fclose(f), 0);
    const char *argv[] = {sq, "-batch", db, NULL};
    tl_result r;
    run_ok(argv, NULL, 1, dir, sql, &r);
    print_message("    sqlite3 under hakmem:\n%s", r.out);
    char want[1024];
    int n = snprintf(want, sizeof want, "%d|%llu|%llu|%ld\n", ROWS, sum_x, sum_len,
                     (long)(ROWS - 1) * 3 + 1);
    for (int k = 0; k < 7; k++)
        n += snprintf(want + n, sizeof want - (size_t)n, "%d|%ld\n", k, groups[k]);
    long like = 0; /* ids 99, 990..999, 9900..9999, 99000..99999 */
    for (long i = 0; i < ROWS; i++) {
        char s[32];
        snprintf(s, sizeof s, "%ld", i);
        if (strncmp(s, "99", 2) == 0)
            like++;
    }
    snprintf(want + n, sizeof want - (size_t)n, "%ld\n", like);
    if (strcmp(r.out, want) != 0)
        fail_msg("sqlite3 printed\n%s\nexpected\n%s", r.out, want);
    tl_result_free(&r);
    tl_rmtree(dir);
    free(sql);
    free(db);
    free(dir);
}

/* ---- gcc ---------------------------------------------------------------------------------- */

static const char c_prog[] =
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "#include <string.h>\n"
    "int main(void) {\n"
    "    int n = 100000, count = 0;\n"
    "    char *sieve = calloc(n + 1, 1);\n"
    "    for (int i = 2; i <= n; i++) {\n"
    "        if (sieve[i]) continue;\n"
    "        count++;\n"
    "        for (long j = (long)i * i; j <= n; j += i) sieve[j] = 1;\n"
    "    }\n"
    "    free(sieve);\n"
    "    char *s = NULL; size_t len = 0;\n"
    "    for (int i = 0; i < 1000; i++) {\n"
    "        s = realloc(s, len + 8);\n"
    "        len += (size_t)sprintf(s + len, \"%d,\", i % 10);\n"
    "    }\n"
    "    printf(\"primes %d len %zu\\n\", count, strlen(s));\n"
    "    free(s);\n"
    "    return 0;\n"
    "}\n";

static void test_gcc(void **state)
{
    (void)state;
    static const char *const cands[] = {"/usr/bin/gcc", "/bin/gcc", NULL};
    const char *gcc = need_tool("gcc", cands);
    char *dir = tl_mkdtemp("gcc");
    assert_non_null(dir);
    char *src = path_in(dir, "primes.c");
    char *exe = path_in(dir, "primes");
    assert_int_equal(tl_write_file(src, c_prog, strlen(c_prog)), 0);
    const char *cc[] = {gcc, "-O2", "-Wall", "-o", exe, src, NULL};
    tl_result r;
    run_ok(cc, NULL, 1, dir, NULL, &r); /* gcc, cc1, as, collect2, ld all preloaded */
    tl_result_free(&r);
    const char *run[] = {exe, NULL};
    run_ok(run, NULL, 1, dir, NULL, &r);
    /* expected: pi(100000) computed here; 1000 entries "d," of one digit each */
    char *sieve = calloc(100001, 1);
    assert_non_null(sieve);
    int count = 0;
    for (int i = 2; i <= 100000; i++) {
        if (sieve[i])
            continue;
        count++;
        for (long j = (long)i * i; j <= 100000; j += i)
            sieve[j] = 1;
    }
    free(sieve);
    char want[64];
    snprintf(want, sizeof want, "primes %d len %d\n", count, 2000);
    if (strcmp(r.out, want) != 0)
        fail_msg("program compiled by gcc under hakmem printed \"%s\", expected \"%s\"", r.out,
                 want);
    tl_result_free(&r);
    tl_rmtree(dir);
    free(src);
    free(exe);
    free(dir);
}

/* ---- sort --------------------------------------------------------------------------------- */

static int is_sorted_c(const char *text, size_t *lines)
{
    const char *prev = NULL;
    size_t prev_len = 0;
    *lines = 0;
    for (const char *l = text; *l;) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        if (prev) {
            size_t m = prev_len < len ? prev_len : len;
            int c = memcmp(prev, l, m);
            if (c > 0 || (c == 0 && prev_len > len))
                return 0;
        }
        prev = l;
        prev_len = len;
        (*lines)++;
        l = e ? e + 1 : l + len;
    }
    return 1;
}

static void test_sort(void **state)
{
    (void)state;
    static const char *const cands[] = {"/usr/bin/sort", "/bin/sort", NULL};
    const char *sort = need_tool("sort", cands);
    char *dir = tl_mkdtemp("sort");
    assert_non_null(dir);
    char *in = path_in(dir, "in.txt");
    FILE *f = fopen(in, "w");
    assert_non_null(f);
    enum { LINES = 300000 };
    unsigned long long rng = 0x1badb002ull;
    for (int i = 0; i < LINES; i++) {
        int len = 1 + (int)(tl_rand(&rng) % 60);
        for (int k = 0; k < len; k++)
            fputc('!' + (int)(tl_rand(&rng) % 90), f);
        fprintf(f, " %d\n", i);
    }
    assert_int_equal(fclose(f), 0);
    const char *env[] = {"LC_ALL=C", NULL};
    const char *plain[] = {sort, in, NULL};
    const char *merge[] = {sort, "-S", "1M", "--parallel=2", "-T", dir, in, NULL};
    const char *const *variants[] = {plain, merge};
    for (int v = 0; v < 2; v++) {
        tl_result hak, ref;
        run_ok(variants[v], env, 1, dir, NULL, &hak);
        run_ok(variants[v], env, 0, dir, NULL, &ref);
        size_t lines = 0;
        int sorted = is_sorted_c(hak.out, &lines);
        if (!sorted || lines != LINES)
            fail_msg("sort variant %d under hakmem: sorted=%d, %zu lines of %d", v, sorted, lines,
                     LINES);
        if (hak.out_len != ref.out_len || memcmp(hak.out, ref.out, hak.out_len) != 0)
            fail_msg("sort variant %d: output under hakmem differs from glibc's", v);
        tl_result_free(&hak);
        tl_result_free(&ref);
    }
    tl_rmtree(dir);
    free(in);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_python3),
        cmocka_unit_test(test_git),
        cmocka_unit_test(test_sqlite3),
        cmocka_unit_test(test_gcc),
        cmocka_unit_test(test_sort),
    };
    return cmocka_run_group_tests_name("integration", tests, NULL, NULL);
}
