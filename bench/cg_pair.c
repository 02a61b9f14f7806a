/* bench/cg_pair.c - the loop that `make bench-callgrind` counts instructions of.
 *
 * usage: cg_pair MODE SIZE N
 *   pair        N times: p = malloc(SIZE); write p[0]; free(p)
 *   held        the same, with one extra block of SIZE kept live across the loop, so the
 *               allocator's page/span never becomes empty
 *   window      a window of 64 live blocks of 8..32 KiB (SIZE ignored): N times free a random
 *               slot's block and malloc a new one of random size into it
 *   base-pair, base-window
 *               the same loops with a static buffer instead of malloc/free: the loop's own
 *               instructions, subtracted by bench/callgrind.py
 * All work happens inside bench_loop(), which callgrind collects alone (--toggle-collect);
 * running N and 2N and dividing the difference by N cancels first-call and set-up costs.
 */
#include "bench_common.h"

#define WSLOTS 64
static unsigned char static_buf[32768];

__attribute__((noinline)) void bench_loop(int mode, size_t size, unsigned long n);

__attribute__((noinline)) void bench_loop(int mode, size_t size, unsigned long n)
{
    bench_rng_t rng;
    bench_rng_seed(&rng, 42, 0);
    if (mode <= 2) { /* 0 pair, 1 held, 2 base-pair */
        void *held = mode == 1 ? malloc(size) : NULL;
        BENCH_ESCAPE(held);
        for (unsigned long i = 0; i < n; i++) {
            void *p = mode == 2 ? (void *)static_buf : malloc(size);
            BENCH_ESCAPE(p);
            *(volatile unsigned char *)p = 1;
            if (mode != 2) free(p);
        }
        if (held) free(held);
        return;
    }
    /* 3 window, 4 base-window */
    void *slot[WSLOTS];
    for (int i = 0; i < WSLOTS; i++) {
        size_t sz = bench_rng_range(&rng, 8192, 32768);
        slot[i] = mode == 4 ? (void *)static_buf : malloc(sz);
        *(volatile unsigned char *)slot[i] = 1;
    }
    for (unsigned long i = 0; i < n; i++) {
        uint64_t r = bench_rng_next(&rng);
        unsigned k = (unsigned)(r >> 58);
        size_t sz = 8192 + (size_t)((r & 0xffffffffu) % (32768 - 8192 + 1));
        if (mode != 4) free(slot[k]);
        void *p = mode == 4 ? (void *)static_buf : malloc(sz);
        BENCH_ESCAPE(p);
        *(volatile unsigned char *)p = 1;
        slot[k] = p;
    }
    if (mode != 4)
        for (int i = 0; i < WSLOTS; i++) free(slot[i]);
}

int main(int argc, char **argv)
{
    static const char *modes[] = {"pair", "held", "base-pair", "window", "base-window"};
    if (argc != 4) {
        fprintf(stderr, "usage: cg_pair pair|held|window|base-pair|base-window SIZE N\n");
        return 2;
    }
    int mode = -1;
    for (int i = 0; i < 5; i++)
        if (strcmp(argv[1], modes[i]) == 0) mode = i;
    if (mode < 0) {
        fprintf(stderr, "cg_pair: unknown mode %s\n", argv[1]);
        return 2;
    }
    bench_loop(mode, (size_t)strtoul(argv[2], NULL, 10), strtoul(argv[3], NULL, 10));
    return 0;
}
