/* scripts/mremap_probe.c - what a page moved by mremap costs at its next touch, by the phase of
 * the move (docs/BENCHMARKS.md, "Moves by page-table page"; box2_refill/os.h HAK_OS_PMD).
 *
 *   cc -O2 -o /tmp/mremap_probe scripts/mremap_probe.c && /tmp/mremap_probe
 *
 * Each round: a 10 MiB range, written twice (resident, warm), is moved with
 * mremap(MREMAP_MAYMOVE | MREMAP_FIXED) into a fresh mapping, either to an address as far
 * from a 2 MiB boundary as its own ("same phase": the kernel moves whole page-table pages)
 * or 64 KiB further ("other phase": one page-table entry at a time); then the moved range is
 * written twice, and the first write's time and page faults printed. For scale: the time and
 * faults of a first write of 10 MiB of a fresh mapping. Not a test and not built by make.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

#define MIB ((size_t)1 << 20)
#define LEN (10 * MIB)

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

static long faults(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return r.ru_minflt;
}

static char *map(size_t len)
{
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* LEN bytes at `phase` past a 2 MiB boundary, inside a larger mapping (left mapped). */
static char *map_at_phase(size_t phase)
{
    char *raw = map(LEN + 4 * MIB);
    if (!raw)
        return NULL;
    uintptr_t a = ((uintptr_t)raw + 2 * MIB - 1) & ~(uintptr_t)(2 * MIB - 1);
    return (char *)a + phase;
}

static double write_ms(char *p, long *nfaults)
{
    long f = faults();
    double t = now_ms();
    memset(p, 0x5a, LEN);
    t = now_ms() - t;
    *nfaults = faults() - f;
    return t;
}

int main(void)
{
    long f;
    for (int round = 0; round < 3; round++) {
        char *fresh = map(LEN);
        double tf = fresh ? write_ms(fresh, &f) : -1;
        printf("round %d: fresh 10 MiB: first write %6.2f ms, %ld faults", round, tf, f);
        for (int other = 0; other < 2; other++) {
            char *src = map_at_phase(64 << 10);
            char *dst = map_at_phase(other ? 128 << 10 : 64 << 10);
            if (!src || !dst)
                return 1;
            memset(src, 1, LEN);
            memset(src, 2, LEN);
            if (mremap(src, LEN, LEN, MREMAP_MAYMOVE | MREMAP_FIXED, dst) != dst) {
                perror("mremap");
                return 1;
            }
            double t1 = write_ms(dst, &f);
            long f1 = f;
            double t2 = write_ms(dst, &f);
            printf(" | moved, %s phase: first write %6.2f ms (%ld faults), second %5.2f ms",
                   other ? "other" : "same", t1, f1, t2);
        }
        printf("\n");
    }
    return 0;
}
