/* tests/integration/prog_guard.c - memory errors on guarded blocks (test_guard.c runs it with
 * LD_PRELOAD=libhakmem.so and HAKMEM_GUARD_SAMPLE). Usage: prog_guard MODE
 *   overflow   a 100-byte block placed against its upper guard; writes 12 bytes past its end
 *              (the first byte of the guard page: the block's end is rounded up to 16)
 *   underflow  a 100-byte block against its lower guard; writes the byte before it
 *   uaf        a guarded 100-byte block, freed, then written
 *   many       30,000 live 32-byte blocks, each written, with mmap, mprotect, pthread_create,
 *              dlopen and a 10 MiB malloc while they live, then freed and 30,000 more
 *              allocated and written; prints "guarded <n> maps <m> failures <f>": the live
 *              blocks found guarded, the most lines /proc/self/maps had, and the calls that
 *              failed (a guarded slot splits its mapping: without a bound on live guarded
 *              blocks the process reached vm.max_map_count and every later mapping failed)
 *   raise      raise(SIGSEGV) with no handler of the program's: it must die of it
 *   rehandled  a handler of the program's, installed over hakmem's, that prints "rehandled",
 *              puts hakmem's back and raises SIGSEGV again (Python's faulthandler does so);
 *              the program raises SIGSEGV: it must die of the second one
 *   segv       a write to address 16 (no guarded block): it must die of SIGSEGV
 *   ok         100,000 allocations of 0..5000 bytes, each written whole and freed, plus
 *              calloc, realloc and posix_memalign; prints "guarded <n>", the blocks found on a
 *              guarded page (the page 2 of a 64 KiB slot, sample_store.c's layout, whose page
 *              below cannot be read: write(2) from it fails with EFAULT)
 * The error modes must not return (the report aborts); they print "FAIL" if they do. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <dlfcn.h>
#include <pthread.h>
#include <sys/mman.h>

static int probe[2]; /* a pipe: write(2) from an unreadable address fails with EFAULT */

/* p is on a guarded page: page 2 of a 64 KiB slot (sample_store.c's layout), whose page below
 * cannot be read. */
static int guarded(const void *p)
{
    if ((((uintptr_t)p >> 12) & 15) != 2)
        return 0;
    const char *below = (const char *)(((uintptr_t)p & ~(uintptr_t)4095) - 1);
    if (write(probe[1], below, 1) == 1) {
        char c;
        if (read(probe[0], &c, 1) != 1)
            exit(6);
        return 0;
    }
    return errno == EFAULT;
}

/* Lines of /proc/self/maps: the process's memory mappings. */
static long map_count(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    long n = 0;
    int c;
    if (!f)
        return -1;
    while ((c = getc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static void *nothing(void *arg) { return arg; }

static struct sigaction before_mine; /* hakmem's handler, which "rehandled" replaced */

static void rehandle(int sig)
{
    static const char msg[] = "rehandled\n";
    if (write(1, msg, sizeof msg - 1) < 0)
        _exit(8);
    sigaction(SIGSEGV, &before_mine, NULL);
    raise(sig);
}

/* A guarded 100-byte block against the lower guard (left) or the upper one. */
static char *guarded_block(int left)
{
    for (int i = 0; i < 1000; i++) {
        char *p = malloc(100);
        if (guarded(p) && (((uintptr_t)p & 4095) == 0) == left)
            return p;
    }
    fprintf(stderr, "FAIL: no guarded block\n");
    exit(1);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "ok";
    if (pipe(probe))
        return 7;
    volatile char *p;
    if (!strcmp(mode, "overflow")) {
        p = guarded_block(0);
        memset((char *)p, 1, 100);
        p[112] = 1;
    } else if (!strcmp(mode, "underflow")) {
        p = guarded_block(1);
        memset((char *)p, 1, 100);
        p[-1] = 1;
    } else if (!strcmp(mode, "uaf")) {
        p = guarded_block(1);
        free((char *)p);
        p[5] = 1;
    } else if (!strcmp(mode, "raise")) {
        raise(SIGSEGV); /* hakmem's constructor installed its handler before main */
    } else if (!strcmp(mode, "rehandled")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = rehandle;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGSEGV, &sa, &before_mine))
            return 9;
        raise(SIGSEGV);
    } else if (!strcmp(mode, "segv")) {
        p = (volatile char *)16;
        p[0] = 1;
    } else if (!strcmp(mode, "many")) {
        enum { N = 30000 };
        static char *live[N];
        long n = 0, maps = 0, failures = 0;
        for (int round = 0; round < 2; round++) {
            for (int i = 0; i < N; i++) {
                if (!(live[i] = malloc(32)))
                    return 2;
                memset(live[i], 7, 32);
                if (round == 0)
                    n += guarded(live[i]);
            }
            long m = map_count();
            maps = m > maps ? m : maps;
            for (int i = 0; i < 200; i++) {
                char *q = mmap(NULL, 4096 * (1 + i % 3), PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (q == MAP_FAILED || mprotect(q, 4096, PROT_READ))
                    failures++;
            }
            pthread_t t;
            if (pthread_create(&t, NULL, nothing, NULL) || pthread_join(t, NULL))
                failures++;
            if (!dlopen("libm.so.6", RTLD_NOW))
                failures++;
            char *big = malloc(10u << 20);
            if (!big)
                failures++;
            else
                memset(big, 1, 10u << 20);
            free(big);
            for (int i = 0; i < N; i++)
                free(live[i]);
        }
        printf("guarded %ld maps %ld failures %ld\n", n, maps, failures);
        return 0;
    } else {
        unsigned long long seed = 42;
        long n = 0;
        for (int i = 0; i < 100000; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            size_t size = (size_t)(seed >> 33) % 5001;
            char *q = malloc(size);
            if (!q && size)
                return 2;
            memset(q, 0x5a, size);
            n += guarded(q) && size <= 4096;
            if (i % 16 == 0) {
                char *c = calloc(1, size);
                for (size_t k = 0; k < size; k++)
                    if (c[k])
                        return 3;
                q = realloc(q, size + 100);
                if (!q || (size && q[size - 1] != 0x5a))
                    return 4;
                free(c);
                void *a = NULL;
                if (posix_memalign(&a, 64, size) || ((uintptr_t)a & 63))
                    return 5;
                free(a);
            }
            free(q);
        }
        printf("guarded %ld\n", n);
        return 0;
    }
    fprintf(stderr, "FAIL: the %s survived\n", mode);
    return 1;
}
