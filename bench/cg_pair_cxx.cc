// bench/cg_pair_cxx.cc - the C++ loops that `make bench-callgrind` counts instructions of:
// what a C++ program's `new T` and `delete p` cost (bench/callgrind.py, the C++ rows).
//
// usage: cg_pair_cxx MODE N
//   new           N times: p = new Obj32; write p; delete p   (g++ emits operator new(32)
//                 and the sized operator delete(p, 32))
//   new-unsized   the same with ::operator delete(p), the unsized form (-fno-sized-deallocation
//                 code, or a delete through void *)
//   base-new      the same loop with a static object instead of new/delete: the loop's own
//                 instructions, subtracted by bench/callgrind.py
// All work happens inside bench_loop() (extern "C", so callgrind's --toggle-collect finds it);
// running N and 2N and dividing the difference by N cancels first-call and set-up costs.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

struct Obj32 {
    unsigned char bytes[32];
};

static Obj32 static_obj;

#define BENCH_ESCAPE(p) __asm__ volatile("" : : "r"(p) : "memory")

// One loop per mode, each out of line, so that every loop has the same shape around its
// calls (bench/callgrind.py subtracts the base loop and CXX_CALL_OVERHEAD from them).
__attribute__((noinline)) static void loop_new(unsigned long n)
{
    for (unsigned long i = 0; i < n; i++) {
        Obj32 *p = new Obj32;
        BENCH_ESCAPE(p);
        *(volatile unsigned char *)p->bytes = 1;
        delete p;
    }
}

__attribute__((noinline)) static void loop_new_unsized(unsigned long n)
{
    for (unsigned long i = 0; i < n; i++) {
        Obj32 *p = new Obj32;
        BENCH_ESCAPE(p);
        *(volatile unsigned char *)p->bytes = 1;
        ::operator delete(p);
    }
}

__attribute__((noinline)) static void loop_base(unsigned long n)
{
    for (unsigned long i = 0; i < n; i++) {
        Obj32 *p = &static_obj;
        BENCH_ESCAPE(p);
        *(volatile unsigned char *)p->bytes = 1;
    }
}

extern "C" __attribute__((noinline)) void bench_loop(int mode, unsigned long n);

extern "C" __attribute__((noinline)) void bench_loop(int mode, unsigned long n)
{
    if (mode == 0)
        loop_new(n);
    else if (mode == 1)
        loop_new_unsized(n);
    else
        loop_base(n);
}

int main(int argc, char **argv)
{
    static const char *const modes[] = {"new", "new-unsized", "base-new"};
    if (argc != 3) {
        fprintf(stderr, "usage: cg_pair_cxx new|new-unsized|base-new N\n");
        return 2;
    }
    int mode = -1;
    for (int i = 0; i < 3; i++)
        if (strcmp(argv[1], modes[i]) == 0)
            mode = i;
    if (mode < 0) {
        fprintf(stderr, "cg_pair_cxx: unknown mode %s\n", argv[1]);
        return 2;
    }
    bench_loop(mode, strtoul(argv[2], NULL, 10));
    return 0;
}
