/* tests/unit/test_diag.c - shared_contracts/diag.h: hak_fmt agrees with snprintf on every
 * conversion it claims, truncates and NUL-terminates, returns the untruncated length; hak_warn
 * writes one "hakmem: warning: " line to fd 2 and preserves errno; hak_fatal aborts. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "shared_contracts/diag.h"

#define SAME(fmt, ...)                                                                          \
    do {                                                                                        \
        char a[256], b[256];                                                                    \
        size_t na = hak_fmt(a, sizeof a, fmt, __VA_ARGS__);                                     \
        int nb = snprintf(b, sizeof b, fmt, __VA_ARGS__);                                       \
        if (strcmp(a, b) != 0 || na != (size_t)nb)                                              \
            fail_msg("hak_fmt(\"%s\") = \"%s\" (%zu), snprintf gives \"%s\" (%d)", fmt, a, na,  \
                     b, nb);                                                                    \
    } while (0)

static void test_fmt_matches_snprintf(void **state)
{
    (void)state;
    SAME("%s|%s", "abc", "");
    SAME("%d %d %d %d", 0, -1, INT_MAX, INT_MIN + 1);
    SAME("%u %u", 0u, UINT_MAX);
    SAME("%ld %ld", LONG_MAX, -LONG_MAX);
    SAME("%lu %zu %llu", ULONG_MAX, (size_t)SIZE_MAX, ULLONG_MAX);
    SAME("%x %lx %x", 0xdeadbeefu, 0x123456789abcdefUL, 0u);
    SAME("%p %p", (void *)0x7ffd1234abc0, (void *)0x10);
    SAME("100%% %s", "done");
    SAME("free(): %p is not a block hakmem handed out (class %u)", (void *)0x55aa00001230, 7u);
}

static void test_fmt_truncates(void **state)
{
    (void)state;
    char buf[8];
    memset(buf, 'X', sizeof buf);
    size_t n = hak_fmt(buf, sizeof buf, "%s-%d", "abcdefgh", 12345);
    assert_int_equal(n, strlen("abcdefgh-12345"));
    assert_string_equal(buf, "abcdefg");
    n = hak_fmt(buf, 1, "%s", "xyz");
    assert_int_equal(n, 3);
    assert_int_equal(buf[0], '\0');
    n = hak_fmt(NULL, 0, "%d", 42);
    assert_int_equal(n, 2);
}

/* Run fn with fd 2 redirected to a temp file; return what it wrote (static buffer). */
static const char *capture_stderr(void (*fn)(void))
{
    static char out[4096];
    char path[] = "/tmp/hakmem-diag-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    fn();
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(fd, out, sizeof out - 1, 0);
    close(fd);
    out[n > 0 ? n : 0] = '\0';
    return out;
}

static void warn_once(void)
{
    errno = 4711;
    hak_warn("%s='%s' is not %s", "POOL_X", "abc", "an integer");
    if (errno != 4711)
        hak_write_all(2, "errno changed\n", 14);
}

static void warn_long(void)
{
    char big[2000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    hak_warn("%s", big);
}

static void test_warn_line(void **state)
{
    (void)state;
    const char *out = capture_stderr(warn_once);
    assert_string_equal(out, "hakmem: warning: POOL_X='abc' is not an integer\n");
    /* an overlong message is cut but still one line ending in a newline */
    out = capture_stderr(warn_long);
    size_t len = strlen(out);
    assert_true(len > 20 && len <= 512);
    assert_int_equal(out[len - 1], '\n');
    assert_ptr_equal(strchr(out, '\n'), out + len - 1);
    assert_int_equal(strncmp(out, "hakmem: warning: qqq", 20), 0);
}

static void test_fatal_aborts_with_message(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(p[1], 2);
        signal(SIGABRT, SIG_DFL);
        hak_fatal("free(): invalid pointer %p", (void *)0xabc0);
    }
    close(p[1]);
    char buf[512] = "";
    ssize_t n, got = 0;
    while ((n = read(p[0], buf + got, sizeof buf - 1 - (size_t)got)) > 0)
        got += n;
    buf[got] = '\0';
    close(p[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGABRT);
    assert_string_equal(buf, "hakmem: free(): invalid pointer 0xabc0\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fmt_matches_snprintf),
        cmocka_unit_test(test_fmt_truncates),
        cmocka_unit_test(test_warn_line),
        cmocka_unit_test(test_fatal_aborts_with_message),
    };
    return cmocka_run_group_tests_name("unit_diag", tests, NULL, NULL);
}
