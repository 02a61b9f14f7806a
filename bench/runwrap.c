/* bench/runwrap.c - run one benchmark process and report its own resource usage.
 *
 * usage: runwrap -o RESULT_FILE [-e NAME=VALUE]... -- command [args...]
 *
 * The -e variables (LD_PRELOAD, POOL_*) are set in the child only, so a perf or time process
 * around runwrap is not itself run under the allocator being measured. runwrap forks, execs the
 * command, waits for it with wait4() and writes one line to RESULT_FILE:
 *   wall_s=.. maxrss_kb=.. utime_s=.. stime_s=.. minflt=.. majflt=.. nvcsw=.. nivcsw=.. exit=.. signal=..
 * maxrss_kb is the child's peak resident set (ru_maxrss), unaffected by runwrap or perf.
 * runwrap exits with the child's exit code, or 128 + the signal that killed it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    const char *out = NULL;
    char *envs[64];
    int nenv = 0, c;
    while ((c = getopt(argc, argv, "+o:e:")) != -1) {
        if (c == 'o') out = optarg;
        else if (c == 'e' && nenv < 64) envs[nenv++] = optarg;
        else {
            fprintf(stderr, "usage: runwrap -o RESULT_FILE [-e NAME=VALUE]... -- cmd [args]\n");
            return 2;
        }
    }
    if (!out || optind >= argc) {
        fprintf(stderr, "usage: runwrap -o RESULT_FILE [-e NAME=VALUE]... -- cmd [args]\n");
        return 2;
    }
    double t0 = now();
    pid_t pid = fork();
    if (pid < 0) {
        perror("runwrap: fork");
        return 2;
    }
    if (pid == 0) {
        for (int i = 0; i < nenv; i++) putenv(envs[i]);
        execvp(argv[optind], argv + optind);
        fprintf(stderr, "runwrap: exec %s: %s\n", argv[optind], strerror(errno));
        _exit(127);
    }
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            perror("runwrap: wait4");
            return 2;
        }
    }
    double wall = now() - t0;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    FILE *f = fopen(out, "w");
    if (!f) {
        perror("runwrap: result file");
        return 2;
    }
    fprintf(f,
            "wall_s=%.6f maxrss_kb=%ld utime_s=%.6f stime_s=%.6f minflt=%ld majflt=%ld "
            "nvcsw=%ld nivcsw=%ld exit=%d signal=%d\n",
            wall, ru.ru_maxrss, (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6,
            (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6, ru.ru_minflt, ru.ru_majflt,
            ru.ru_nvcsw, ru.ru_nivcsw, code, sig);
    fclose(f);
    return sig ? 128 + sig : code;
}
