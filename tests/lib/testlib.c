/* tests/lib/testlib.c - see testlib.h. */
#define _GNU_SOURCE
#include "testlib.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef HAKMEM_SO_DEFAULT
#define HAKMEM_SO_DEFAULT "build/libhakmem.so"
#endif

extern char **environ;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int env_name_matches(const char *entry, const char *spec)
{
    size_t n = strcspn(spec, "=");
    return strncmp(entry, spec, n) == 0 && entry[n] == '=';
}

/* Build the child's environment: environ minus every name in env_add, plus env_add entries
 * that carry a value. */
static char **build_env(const char *const env_add[])
{
    size_t n = 0, k = 0;
    while (environ[n])
        n++;
    while (env_add && env_add[k])
        k++;
    char **env = calloc(n + k + 1, sizeof *env);
    if (!env)
        return NULL;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int drop = 0;
        for (size_t j = 0; j < k; j++)
            if (env_name_matches(environ[i], env_add[j]))
                drop = 1;
        if (!drop)
            env[m++] = environ[i];
    }
    for (size_t j = 0; j < k; j++)
        if (strchr(env_add[j], '='))
            env[m++] = (char *)env_add[j];
    env[m] = NULL;
    return env;
}

static int append(char **buf, size_t *len, size_t *cap, const char *src, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t nc = *cap ? *cap * 2 : 4096;
        while (nc < *len + n + 1)
            nc *= 2;
        char *nb = realloc(*buf, nc);
        if (!nb)
            return -1;
        *buf = nb;
        *cap = nc;
    }
    memcpy(*buf + *len, src, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

int tl_run(const char *const argv[], const char *const env_add[], const char *cwd,
           const char *stdin_path, int timeout_s, tl_result *r)
{
    memset(r, 0, sizeof *r);
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC)) {
        perror("pipe2");
        return -1;
    }
    char **env = build_env(env_add);
    if (!env)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        free(env);
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        int in = open(stdin_path ? stdin_path : "/dev/null", O_RDONLY);
        if (in < 0 || dup2(in, 0) < 0 || dup2(po[1], 1) < 0 || dup2(pe[1], 2) < 0)
            _exit(126);
        if (cwd && chdir(cwd) != 0)
            _exit(126);
        execve(argv[0], (char *const *)argv, env);
        dprintf(2, "testlib: execve %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid); /* also in the parent, so the kill below cannot race the child */
    free(env);
    close(po[1]);
    close(pe[1]);
    size_t ocap = 0, ecap = 0;
    append(&r->out, &r->out_len, &ocap, "", 0);
    append(&r->err, &r->err_len, &ecap, "", 0);
    double deadline = now_s() + timeout_s;
    int open_fds = 2;
    struct pollfd pf[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    while (open_fds > 0) {
        double left = deadline - now_s();
        if (left <= 0) {
            r->timed_out = 1;
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            break;
        }
        int rc = poll(pf, 2, (int)(left * 1000) + 1);
        if (rc < 0 && errno == EINTR)
            continue;
        for (int i = 0; i < 2; i++) {
            if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char buf[65536];
            ssize_t n = read(pf[i].fd, buf, sizeof buf);
            if (n > 0) {
                if (i == 0)
                    append(&r->out, &r->out_len, &ocap, buf, (size_t)n);
                else
                    append(&r->err, &r->err_len, &ecap, buf, (size_t)n);
            } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                close(pf[i].fd);
                pf[i].fd = -1;
                open_fds--;
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (pf[i].fd >= 0)
            close(pf[i].fd);
    /* Output closed: the process is exiting (or a grandchild kept the pipes, which the
     * deadline covers). Wait for it, still bounded by the deadline. */
    for (;;) {
        pid_t w = waitpid(pid, &r->status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            perror("waitpid");
            return -1;
        }
        if (now_s() > deadline && !r->timed_out) {
            r->timed_out = 1;
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
        }
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    kill(-pid, SIGKILL); /* leftover grandchildren of a failed run */
    return 0;
}

void tl_result_free(tl_result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

const char *tl_status_str(const tl_result *r, char *buf, size_t cap)
{
    if (r->timed_out)
        snprintf(buf, cap, "timeout (killed)");
    else if (WIFEXITED(r->status))
        snprintf(buf, cap, "exit %d", WEXITSTATUS(r->status));
    else if (WIFSIGNALED(r->status))
        snprintf(buf, cap, "signal %d (%s)", WTERMSIG(r->status), strsignal(WTERMSIG(r->status)));
    else
        snprintf(buf, cap, "status 0x%x", r->status);
    return buf;
}

int tl_exited_ok(const tl_result *r)
{
    return !r->timed_out && WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0;
}

const char *tl_preload_path(void)
{
    const char *p = getenv("HAKMEM_TEST_PRELOAD");
    return p ? p : HAKMEM_SO_DEFAULT;
}

const char *tl_preload_env(void)
{
    static char buf[4096];
    const char *p = tl_preload_path();
    if (!*p)
        return "LD_PRELOAD";
    snprintf(buf, sizeof buf, "LD_PRELOAD=%s", p);
    return buf;
}

int tl_wait(pid_t pid, int timeout_s, int *status)
{
    double deadline = now_s() + timeout_s;
    for (;;) {
        pid_t w = waitpid(pid, status, WNOHANG);
        if (w == pid)
            return 0;
        if (w < 0 && errno != EINTR)
            return -1;
        if (now_s() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, status, 0);
            return 1;
        }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

int tl_run_in_child(int (*fn)(void *), void *arg, int timeout_s, char *why, size_t cap)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, cap, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        int rc = fn(arg);
        fflush(NULL);
        _exit(rc & 0xff);
    }
    int st;
    int w = tl_wait(pid, timeout_s, &st);
    if (w < 0) {
        snprintf(why, cap, "waitpid: %s", strerror(errno));
        return -1;
    }
    if (w > 0) {
        snprintf(why, cap, "no result after %d s: killed (deadlock or livelock)", timeout_s);
        return -1;
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    if (WIFEXITED(st))
        snprintf(why, cap, "scenario failed (child exit %d; see its stderr above)",
                 WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(why, cap, "scenario child killed by signal %d (%s)", WTERMSIG(st),
                 strsignal(WTERMSIG(st)));
    else
        snprintf(why, cap, "scenario child status 0x%x", st);
    return -1;
}

long tl_status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            v = strtol(line + n + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

int tl_scale(void)
{
    const char *s = getenv("HAKMEM_TEST_LONG");
    return (s && *s && strcmp(s, "0") != 0) ? 10 : 1;
}

char *tl_mkdtemp(const char *tag)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    char *path = malloc(strlen(base) + strlen(tag) + 32);
    if (!path)
        return NULL;
    sprintf(path, "%s/hakmem-%s-XXXXXX", base, tag);
    if (!mkdtemp(path)) {
        perror("mkdtemp");
        free(path);
        return NULL;
    }
    return path;
}

void tl_rmtree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d))) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                    continue;
                char *sub = malloc(strlen(path) + strlen(e->d_name) + 2);
                if (!sub)
                    break;
                sprintf(sub, "%s/%s", path, e->d_name);
                tl_rmtree(sub);
                free(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

int tl_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, len, f);
    return (fclose(f) == 0 && w == len) ? 0 : -1;
}

char *tl_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 0, n = 0;
    char *buf = NULL;
    char tmp[65536];
    size_t got;
    while ((got = fread(tmp, 1, sizeof tmp, f)) > 0) {
        if (append(&buf, &n, &cap, tmp, got) != 0) {
            free(buf);
            fclose(f);
            return NULL;
        }
    }
    fclose(f);
    if (!buf) {
        buf = malloc(1);
        if (buf)
            buf[0] = '\0';
    }
    if (len)
        *len = n;
    return buf;
}

const char *tl_find_tool(const char *const candidates[])
{
    for (int i = 0; candidates[i]; i++)
        if (access(candidates[i], X_OK) == 0)
            return candidates[i];
    return NULL;
}

int tl_count_lines_with_prefix(const char *text, const char *prefix)
{
    int count = 0;
    size_t n = strlen(prefix);
    const char *line = text;
    while (line && *line) {
        if (strncmp(line, prefix, n) == 0)
            count++;
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return count;
}

int tl_run_scenario(const char *scenario, const char *const extra_env[], int timeout_s, char *why,
                    size_t cap)
{
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        snprintf(why, cap, "readlink /proc/self/exe: %s", strerror(errno));
        return -1;
    }
    self[len] = '\0';
    const char *env[16];
    int n = 0;
    env[n++] = tl_preload_env();
    for (int i = 0; extra_env && extra_env[i] && n < 15; i++)
        env[n++] = extra_env[i];
    env[n] = NULL;
    const char *argv[] = {self, "--scenario", scenario, NULL};
    tl_result r;
    if (tl_run(argv, env, NULL, NULL, timeout_s, &r) != 0) {
        snprintf(why, cap, "could not start %s", self);
        return -1;
    }
    printf("%s%s", r.out, r.err);
    fflush(stdout);
    char st[128];
    int ok = tl_exited_ok(&r);
    tl_status_str(&r, st, sizeof st);
    int hak_lines = tl_count_lines_with_prefix(r.err, "hakmem:");
    tl_result_free(&r);
    if (!ok) {
        snprintf(why, cap, "scenario %s: %s", scenario, st);
        return -1;
    }
    if (hak_lines) {
        snprintf(why, cap, "scenario %s: hakmem printed %d diagnostic lines", scenario, hak_lines);
        return -1;
    }
    return 0;
}

const char *tl_run_thread(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    void *ret = NULL;
    if (pthread_create(&t, NULL, fn, arg) != 0)
        return "pthread_create failed";
    pthread_join(t, &ret);
    return (const char *)ret;
}
