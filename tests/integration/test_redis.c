/* tests/integration/test_redis.c - redis-server under load with LD_PRELOAD=libhakmem.so.
 *
 * The server listens on 127.0.0.1 on a free port (asked from the kernel with bind to port 0),
 * with persistence off, in a scratch directory. The test waits for its "Ready to accept
 * connections" log line (no sleeps), runs redis-benchmark (also under hakmem) with a bounded
 * number of requests for SET, GET, LPUSH and LPOP, checks every test reported its rate, checks
 * data written and read back with redis-cli, and that INFO memory answers; then SHUTDOWN NOSAVE
 * and the server must exit 0 without a "hakmem:" line. HAKMEM_STATS=1 makes the server print
 * hakmem's table at exit: the proof that hakmem, not the jemalloc Debian links redis with,
 * served its malloc calls. A missing redis-server, redis-benchmark or redis-cli is a failure
 * (scripts/deps.sh installs redis-server and redis-tools). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "testlib.h"

#define SERVER_START_S 30
#define TOOL_TIMEOUT_S 180

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *need(const char *name)
{
    static char path[3][64];
    static int k;
    char *p = path[k++ % 3];
    snprintf(p, 64, "/usr/bin/%s", name);
    if (access(p, X_OK) != 0)
        fail_msg("%s is not installed (%s): scripts/deps.sh installs redis-server and "
                 "redis-tools",
                 name, p);
    return p;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

typedef struct server {
    pid_t pid;
    int out_fd;  /* the server's stdout and stderr */
    char *log;   /* everything read from it */
    size_t len, cap;
} server_t;

static void server_read(server_t *s, int timeout_ms)
{
    struct pollfd pf = {s->out_fd, POLLIN, 0};
    if (poll(&pf, 1, timeout_ms) <= 0)
        return;
    char buf[8192];
    ssize_t n = read(s->out_fd, buf, sizeof buf);
    if (n <= 0)
        return;
    if (s->len + (size_t)n + 1 > s->cap) {
        s->cap = (s->len + (size_t)n + 1) * 2;
        s->log = realloc(s->log, s->cap);
        assert_non_null(s->log);
    }
    memcpy(s->log + s->len, buf, (size_t)n);
    s->len += (size_t)n;
    s->log[s->len] = '\0';
}

/* Start redis-server; 0 when it logged that it is ready, -1 if it exited (port taken). */
static int server_start(server_t *s, const char *bin, int port, const char *dir)
{
    memset(s, 0, sizeof *s);
    int pipefd[2];
    assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        dup2(pipefd[1], 1);
        dup2(pipefd[1], 2);
        int in = open("/dev/null", O_RDONLY);
        dup2(in, 0);
        const char *p = tl_preload_path();
        if (*p)
            setenv("LD_PRELOAD", p, 1);
        else
            unsetenv("LD_PRELOAD");
        setenv("HAKMEM_STATS", "1", 1);
        execl(bin, bin, "--port", portstr, "--bind", "127.0.0.1", "--save", "",
              "--appendonly", "no", "--dir", dir, "--protected-mode", "no", "--daemonize", "no",
              "--logfile", "", (char *)NULL);
        dprintf(2, "execl %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    close(pipefd[1]);
    s->pid = pid;
    s->out_fd = pipefd[0];
    double deadline = now_s() + SERVER_START_S;
    while (now_s() < deadline) {
        server_read(s, 200);
        if (s->log && strstr(s->log, "Ready to accept connections"))
            return 0;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            server_read(s, 0);
            s->pid = 0;
            return -1;
        }
    }
    fail_msg("redis-server did not become ready in %d s; its output:\n%s", SERVER_START_S,
             s->log ? s->log : "");
    return -1;
}

static void server_kill(server_t *s)
{
    if (s->pid > 0) {
        kill(-s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

static void cli(const char *redis_cli, int port, const char *const cmd[], tl_result *r)
{
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    const char *argv[16] = {redis_cli, "-h", "127.0.0.1", "-p", portstr};
    int n = 5;
    for (int i = 0; cmd[i] && n < 15; i++)
        argv[n++] = cmd[i];
    argv[n] = NULL;
    const char *env[] = {tl_preload_env(), NULL};
    if (tl_run(argv, env, NULL, NULL, TOOL_TIMEOUT_S, r) != 0)
        fail_msg("could not start redis-cli");
    char st[128];
    if (!tl_exited_ok(r))
        fail_msg("redis-cli %s: %s; stderr %.1000s", cmd[0], tl_status_str(r, st, sizeof st),
                 r->err);
}

static void test_redis_benchmark(void **state)
{
    (void)state;
    const char *server_bin = need("redis-server");
    const char *bench = need("redis-benchmark");
    const char *redis_cli = need("redis-cli");
    char *dir = tl_mkdtemp("redis");
    assert_non_null(dir);
    server_t srv;
    int port = -1, started = -1;
    for (int attempt = 0; attempt < 5 && started != 0; attempt++) { /* a port taken meanwhile */
        port = free_port();
        assert_true(port > 0);
        started = server_start(&srv, server_bin, port, dir);
        if (started != 0) {
            print_message("    redis-server on port %d exited at start:\n%s\n", port,
                          srv.log ? srv.log : "");
            free(srv.log);
        }
    }
    if (started != 0)
        fail_msg("redis-server did not start in 5 attempts");
    print_message("    redis-server under hakmem on 127.0.0.1:%d\n", port);

    /* the load */
    int requests = 20000 * tl_scale();
    char portstr[16], nreq[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    snprintf(nreq, sizeof nreq, "%d", requests);
    const char *bargv[] = {bench, "-h", "127.0.0.1", "-p", portstr, "-n", nreq, "-q", "-c", "20",
                           "-r", "10000", "-d", "300", "-t", "set,get,lpush,lpop", NULL};
    const char *env[] = {tl_preload_env(), NULL};
    tl_result r;
    if (tl_run(bargv, env, NULL, NULL, TOOL_TIMEOUT_S, &r) != 0) {
        server_kill(&srv);
        fail_msg("could not start redis-benchmark");
    }
    char st[128];
    int bench_ok = tl_exited_ok(&r);
    tl_status_str(&r, st, sizeof st);
    /* -q prints "SET: <rate> requests per second, ..." per test (after \r progress lines) */
    static const char *const names[] = {"SET: ", "GET: ", "LPUSH: ", "LPOP: "};
    int reported = 0;
    for (int i = 0; i < 4; i++) {
        const char *p = r.out;
        while ((p = strstr(p, names[i])) != NULL) {
            const char *e = strchr(p, '\n');
            const char *rps = strstr(p, " requests per second");
            if (rps && (!e || rps < e)) {
                reported++;
                const char *from = p; /* the summary follows the last \r progress line */
                for (const char *c = p; c < rps; c++)
                    if (*c == '\r')
                        from = c + 1;
                char line[160];
                snprintf(line, sizeof line, "%.*s", (int)((e ? e : rps + 20) - from), from);
                print_message("    %s\n", line);
                break;
            }
            p += strlen(names[i]);
        }
    }
    int bench_hak = tl_count_lines_with_prefix(r.err, "hakmem:");
    if (!bench_ok || reported != 4 || bench_hak) {
        print_message("    redis-benchmark stdout: %.3000s\n    stderr: %.2000s\n", r.out, r.err);
        tl_result_free(&r);
        server_kill(&srv);
        fail_msg("redis-benchmark: %s, %d of 4 tests reported a rate, %d hakmem lines", st,
                 reported, bench_hak);
    }
    tl_result_free(&r);

    /* data written and read back */
    char value[4001];
    for (int i = 0; i < 4000; i++)
        value[i] = (char)('a' + (i * 7) % 26);
    value[4000] = '\0';
    const char *set[] = {"SET", "hakmem:check", value, NULL};
    cli(redis_cli, port, set, &r);
    tl_result_free(&r);
    const char *get[] = {"GET", "hakmem:check", NULL};
    cli(redis_cli, port, get, &r);
    if (strncmp(r.out, value, 4000) != 0 || r.out[4000] != '\n')
        fail_msg("GET returned %.100s..., not the 4000-byte value SET wrote", r.out);
    tl_result_free(&r);
    for (int i = 0; i < 50; i++) {
        char item[32];
        snprintf(item, sizeof item, "item-%d", i);
        const char *push[] = {"RPUSH", "hakmem:list", item, NULL};
        cli(redis_cli, port, push, &r);
        tl_result_free(&r);
    }
    const char *llen[] = {"LLEN", "hakmem:list", NULL};
    cli(redis_cli, port, llen, &r);
    if (strcmp(r.out, "50\n") != 0)
        fail_msg("LLEN hakmem:list = %s, expected 50", r.out);
    tl_result_free(&r);
    const char *dbsize[] = {"DBSIZE", NULL};
    cli(redis_cli, port, dbsize, &r);
    long keys = strtol(r.out, NULL, 10);
    print_message("    DBSIZE %ld\n", keys);
    if (keys < 100) /* SET with -r 10000 wrote thousands of keys */
        fail_msg("DBSIZE %ld after the benchmark's SETs", keys);
    tl_result_free(&r);
    const char *info[] = {"INFO", "memory", NULL};
    cli(redis_cli, port, info, &r);
    const char *um = strstr(r.out, "used_memory:");
    if (!um || strtol(um + 12, NULL, 10) <= 0)
        fail_msg("INFO memory has no positive used_memory: %.500s", r.out);
    const char *rss = strstr(r.out, "used_memory_rss:");
    print_message("    INFO memory: used_memory %ld, used_memory_rss %ld\n",
                  strtol(um + 12, NULL, 10), rss ? strtol(rss + 16, NULL, 10) : -1L);
    tl_result_free(&r);

    /* stop */
    const char *shut[] = {"SHUTDOWN", "NOSAVE", NULL};
    char portstr2[16];
    snprintf(portstr2, sizeof portstr2, "%d", port);
    const char *sargv[] = {redis_cli, "-h", "127.0.0.1", "-p", portstr2, shut[0], shut[1], NULL};
    if (tl_run(sargv, env, NULL, NULL, TOOL_TIMEOUT_S, &r) == 0) /* exits 1: connection closed */
        tl_result_free(&r);
    double deadline = now_s() + SERVER_START_S;
    int st_code = 0, exited = 0;
    while (now_s() < deadline) {
        server_read(&srv, 100);
        if (waitpid(srv.pid, &st_code, WNOHANG) == srv.pid) {
            exited = 1;
            break;
        }
    }
    if (!exited) {
        server_kill(&srv);
        fail_msg("redis-server did not exit %d s after SHUTDOWN NOSAVE", SERVER_START_S);
    }
    for (int i = 0; i < 50; i++)
        server_read(&srv, 10); /* the rest of the log (the stats table) */
    srv.pid = 0;
    close(srv.out_fd);
    if (!WIFEXITED(st_code) || WEXITSTATUS(st_code) != 0)
        fail_msg("redis-server exit status 0x%x; log:\n%s", st_code, srv.log);
    if (tl_count_lines_with_prefix(srv.log, "hakmem:") ||
        strstr(srv.log, "cannot be preloaded"))
        fail_msg("redis-server log has hakmem or preload errors:\n%s", srv.log);
    if (*tl_preload_path() && !strstr(srv.log, "hakmem per-class statistics"))
        fail_msg("redis-server printed no hakmem statistics at exit: was hakmem preloaded?\n%s",
                 srv.log);
    print_message("    redis-server exited 0 after SHUTDOWN NOSAVE\n");
    free(srv.log);
    tl_rmtree(dir);
    free(dir);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_benchmark),
    };
    return cmocka_run_group_tests_name("integration_redis", tests, NULL, NULL);
}
