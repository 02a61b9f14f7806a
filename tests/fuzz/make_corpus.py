#!/usr/bin/env python3
"""Write the seed corpus of tests/fuzz/fuzz_api.c into tests/fuzz/corpus/ (committed).

Each seed is a short program of 4-byte instructions [op, slot, size selector, argument] plus
the size bytes the selector reads (see fuzz_api.c). Run: python3 tests/fuzz/make_corpus.py
"""
import os

OPS = dict(malloc=0, calloc=1, realloc=2, reallocarray=3, posix_memalign=4, aligned_alloc=5,
           memalign=6, valloc=7, pvalloc=8, usable=9, free=10, trim=12)


def ins(op, slot, sel, arg, *size_bytes):
    return bytes([OPS[op], slot, sel, arg, *size_bytes])


SMALL, K4, K40, EDGE, M2, HUGE = 0, 3, 4, 5, 6, 7
seeds = {
    "small_cycle": b"".join(ins("malloc", i, SMALL, 0, 16 * i + 1) for i in range(16))
    + b"".join(ins("free", i, SMALL, 0, 0) for i in range(16)),
    "calloc_realloc": ins("calloc", 1, K4, 3, 0x10, 0x02) + ins("realloc", 1, K40, 0, 0x00, 0x90)
    + ins("realloc", 1, SMALL, 0, 7) + ins("usable", 1, SMALL, 0, 0) + ins("free", 1, SMALL, 0, 0),
    "edges": b"".join(ins("malloc", i, EDGE, 0, i) for i in range(22))
    + b"".join(ins("realloc", i, EDGE, 0, 21 - i) for i in range(22)),
    "aligned": b"".join(ins(op, i, K4, a, 0x40, 0x01)
                        for i, (op, a) in enumerate([("posix_memalign", 6), ("aligned_alloc", 12),
                                                     ("memalign", 16), ("memalign", 20),
                                                     ("posix_memalign", 0x98), ("memalign", 0x85)])),
    "aligned_zero": b"".join(ins(op, i, EDGE, a, 0)
                             for i, (op, a) in enumerate([("memalign", 16), ("aligned_alloc", 17),
                                                          ("posix_memalign", 20), ("valloc", 0),
                                                          ("pvalloc", 0)]))
    + ins("malloc", 10, M2, 0, 0, 0, 0x10) + b"".join(ins("free", i, SMALL, 0, 0) for i in range(6)),
    "large_realloc": ins("malloc", 2, M2, 0, 0, 0, 0x08) + ins("realloc", 2, M2, 0, 0, 0, 0x1f)
    + ins("realloc", 2, M2, 0, 0, 0x80, 0x00) + ins("realloc", 2, K40, 0, 0x10, 0x10)
    + ins("reallocarray", 2, M2, 3, 0, 0, 0x0c),
    "impossible": ins("malloc", 3, HUGE, 0, 0) + ins("calloc", 3, HUGE, 5, 1)
    + ins("malloc", 4, K4, 0, 1, 1) + ins("realloc", 4, HUGE, 0, 2) + ins("aligned_alloc", 5, HUGE, 12, 0)
    + ins("posix_memalign", 5, HUGE, 6, 0) + ins("valloc", 5, HUGE, 0, 3),
    "trim": ins("malloc", 0, K40, 0, 0, 0x40) + ins("free", 0, SMALL, 0, 0) + ins("trim", 0, SMALL, 0, 0)
    + ins("malloc", 0, K40, 0, 0, 0x40),
    "pvalloc_valloc": b"".join(ins("pvalloc" if i % 2 else "valloc", i, K4, 0, i * 37 % 256, i % 16)
                               for i in range(12)),
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
os.makedirs(out, exist_ok=True)
for name, data in sorted(seeds.items()):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print(f"{len(seeds)} seeds written to {out}")
