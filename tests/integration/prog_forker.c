/* tests/integration/prog_forker.c - forks once; parent and child each allocate, print
 * "parent <pid>" or "child <pid>" and leave through exit(), so each runs hakmem's exit path
 * (test_stats_file.c checks that each writes its own HAKMEM_STATS_FILE table). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return 2;
    char *p = malloc(1000);
    if (!p)
        return 3;
    memset(p, 1, 1000);
    free(p);
    if (pid == 0) {
        printf("child %d\n", (int)getpid());
        exit(0);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return 4;
    printf("parent %d\n", (int)getpid());
    exit(0);
}
