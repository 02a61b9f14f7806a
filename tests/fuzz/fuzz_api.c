/* tests/fuzz/fuzz_api.c - libFuzzer harness: the input is a program of allocation API calls.
 *
 * Linked with a static libhakmem built by clang with coverage instrumentation
 * (-fsanitize=fuzzer-no-link, plus UBSan), so the executable's malloc is hakmem's: the calls
 * below, libFuzzer's own allocations and libc's all go through it. No ASan (it would replace
 * malloc). Built and run by `make fuzz` (FUZZ_SECONDS, default 60) and, for a short bounded
 * pass, by tests/fuzz/test_fuzz.c in `make test`.
 *
 * Input: a sequence of 4-byte instructions [op, slot, size selector, argument] followed by the
 * size bytes the selector asks for. Ops: malloc, calloc, realloc, reallocarray, posix_memalign,
 * aligned_alloc, memalign, valloc, pvalloc, malloc_usable_size, free, malloc_trim, on a table of
 * SLOTS live blocks. Every block is filled with a pattern derived from its own tag and checked
 * before free, realloc and at the end of the input; alignment, calloc's zeroes,
 * malloc_usable_size >= the request, realloc keeping the common prefix, and NULL + ENOMEM (or
 * EINVAL) for impossible requests are checked too. A failed check writes a message and traps,
 * which libFuzzer reports as a crash and saves as crash-<sha1>. Each input frees what it
 * allocated. */
#include <errno.h>
#include <malloc.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SLOTS 32

typedef struct blk {
    unsigned char *p; /* NULL: empty */
    size_t n;
    uint64_t tag;
} blk_t;

static blk_t slot[SLOTS];
static uint64_t next_tag = 1;

__attribute__((noreturn)) static void die(const char *msg, size_t a, size_t b)
{
    char buf[256];
    int n = snprintf(buf, sizeof buf, "fuzz_api: check failed: %s (%zu, %zu)\n", msg, a, b);
    if (write(2, buf, (size_t)n) < 0)
        __builtin_trap();
    __builtin_trap();
}

/* The byte loops are not what is being fuzzed: no coverage callbacks in them (they cost more
 * than the allocator calls otherwise). */
#define NO_COVERAGE __attribute__((no_sanitize("coverage"), noinline))

static uint64_t pat(uint64_t tag, size_t k) { return tag ^ ((uint64_t)(k + 1) * 0x9e3779b97f4a7c15ull); }

NO_COVERAGE static void fill(unsigned char *p, size_t n, uint64_t tag)
{
    size_t w = n / 8;
    for (size_t k = 0; k < w; k++) {
        uint64_t v = pat(tag, k);
        memcpy(p + 8 * k, &v, 8);
    }
    uint64_t v = pat(tag, w);
    memcpy(p + 8 * w, &v, n % 8);
}

NO_COVERAGE static void check(const unsigned char *p, size_t n, uint64_t tag, const char *when)
{
    size_t w = n / 8;
    for (size_t k = 0; k < w; k++) {
        uint64_t v = pat(tag, k), got;
        memcpy(&got, p + 8 * k, 8);
        if (got != v)
            die(when, n, 8 * k);
    }
    uint64_t v = pat(tag, w);
    if (memcmp(p + 8 * w, &v, n % 8) != 0)
        die(when, n, 8 * w);
}

NO_COVERAGE static size_t first_nonzero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return i;
    return (size_t)-1;
}

typedef struct reader {
    const uint8_t *d;
    size_t left;
} reader_t;

static unsigned byte(reader_t *r)
{
    if (!r->left)
        return 0;
    r->left--;
    return *r->d++;
}

static const size_t edges[] = {0,     1,     15,    16,    17,    1023,  1024,   1025,
                               4095,  4096,  4097,  16384, 32767, 32768, 32769,  65472,
                               65536, 65537, 131072, 262144, 1048576, 1048577};

/* Returns the size; *impossible = 1 for sizes no allocator can serve. */
static size_t read_size(reader_t *r, unsigned sel, int *impossible)
{
    *impossible = 0;
    switch (sel % 8) {
    case 0: case 1: case 2:
        return byte(r);
    case 3:
        return (byte(r) | byte(r) << 8) % 4097;
    case 4:
        return (byte(r) | byte(r) << 8) % 40000;
    case 5:
        return edges[byte(r) % (sizeof edges / sizeof edges[0])];
    case 6:
        return (byte(r) | byte(r) << 8 | (size_t)byte(r) << 16) % (2u << 20);
    default:
        *impossible = 1;
        return SIZE_MAX - (size_t)byte(r) * 4096;
    }
}

static void put(blk_t *b, unsigned char *p, size_t n, size_t align, const char *what)
{
    if ((uintptr_t)p % align)
        die(what, (uintptr_t)p, align);
    if (malloc_usable_size(p) < n)
        die("malloc_usable_size below the request", malloc_usable_size(p), n);
    b->p = p;
    b->n = n;
    b->tag = next_tag++ * 0x2545f4914f6cdd1dull;
    fill(p, n, b->tag);
}

static void release(blk_t *b)
{
    if (!b->p)
        return;
    check(b->p, b->n, b->tag, "pattern before free");
    free(b->p);
    b->p = NULL;
}

static void expect_fail(void *p, int want_errno, const char *what, size_t n)
{
    if (p || errno != want_errno)
        die(what, n, (size_t)errno);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader_t r = {data, size};
    while (r.left >= 4) {
        unsigned op = byte(&r), idx = byte(&r) % SLOTS, sel = byte(&r), arg = byte(&r);
        int imp;
        size_t n = read_size(&r, sel, &imp);
        size_t align = (size_t)1 << (arg % 21); /* 1 .. 1 MiB */
        blk_t *b = &slot[idx];
        errno = 0;
        switch (op % 13) {
        case 0: { /* malloc */
            release(b);
            unsigned char *p = malloc(n);
            if (imp) { expect_fail(p, ENOMEM, "malloc(impossible)", n); break; }
            if (!p) die("malloc returned NULL", n, 0);
            put(b, p, n, 16, "malloc misaligned");
            break;
        }
        case 1: { /* calloc */
            release(b);
            size_t nmemb = 1 + arg % 16;
            unsigned char *p = calloc(nmemb, n);
            if (imp) { expect_fail(p, ENOMEM, "calloc(impossible)", n); break; }
            if (!p) die("calloc returned NULL", nmemb, n);
            size_t z = first_nonzero(p, nmemb * n);
            if (z != (size_t)-1)
                die("calloc not zeroed", nmemb * n, z);
            put(b, p, nmemb * n, 16, "calloc misaligned");
            break;
        }
        case 2: case 3: { /* realloc, reallocarray */
            if (b->p)
                check(b->p, b->n, b->tag, "pattern before realloc");
            size_t nmemb = op % 13 == 3 ? 1 + arg % 4 : 1;
            if (nmemb > 1 && !imp)
                n /= nmemb;
            unsigned char *p = nmemb > 1 ? reallocarray(b->p, nmemb, n) : realloc(b->p, n);
            if (imp) {
                expect_fail(p, ENOMEM, "realloc(impossible)", n);
                if (b->p) check(b->p, b->n, b->tag, "old block after a failed realloc");
                break;
            }
            n *= nmemb;
            if (!p && n == 0 && b->p) { b->p = NULL; break; } /* glibc: realloc(p, 0) frees */
            if (!p) die("realloc returned NULL", n, 0);
            if (b->p) {
                size_t keep = n < b->n ? n : b->n;
                check(p, keep, b->tag, "realloc lost the contents");
            }
            b->p = NULL;
            put(b, p, n, 16, "realloc misaligned");
            break;
        }
        case 4: { /* posix_memalign, sometimes with a bad alignment */
            release(b);
            void *p = NULL;
            size_t a = arg & 0x80 ? (size_t)arg : align;
            int bad = a < sizeof(void *) || (a & (a - 1)) || a % sizeof(void *);
            int rc = posix_memalign(&p, a, n);
            if (bad) { if (rc != EINVAL) die("posix_memalign(bad alignment) != EINVAL", a, (size_t)rc); break; }
            if (imp) { if (rc != ENOMEM) die("posix_memalign(impossible) != ENOMEM", n, (size_t)rc); break; }
            if (rc) die("posix_memalign failed", a, n);
            put(b, p, n, a, "posix_memalign misaligned");
            break;
        }
        case 5: case 6: { /* aligned_alloc, memalign (any alignment: rounded up) */
            release(b);
            size_t a = op % 13 == 6 && (arg & 0x80) ? align + (arg & 0x7f) : align;
            unsigned char *p = op % 13 == 5 ? aligned_alloc(a, n) : memalign(a, n);
            if (imp) { expect_fail(p, ENOMEM, "aligned_alloc/memalign(impossible)", n); break; }
            if (!p) die("aligned_alloc/memalign returned NULL", a, n);
            size_t pow = 1;
            while (pow < a)
                pow <<= 1;
            put(b, p, n, pow < 16 ? 16 : pow, "aligned_alloc/memalign misaligned");
            break;
        }
        case 7: case 8: { /* valloc, pvalloc */
            release(b);
            unsigned char *p = op % 13 == 7 ? valloc(n) : pvalloc(n);
            if (imp) { expect_fail(p, ENOMEM, "valloc/pvalloc(impossible)", n); break; }
            if (!p) die("valloc/pvalloc returned NULL", n, 0);
            put(b, p, n, 4096, "valloc/pvalloc misaligned");
            if (op % 13 == 8 && malloc_usable_size(p) < ((n + 4095) & ~(size_t)4095))
                die("pvalloc usable size below the rounded request", malloc_usable_size(p), n);
            break;
        }
        case 9: /* malloc_usable_size */
            if (b->p && malloc_usable_size(b->p) < b->n)
                die("malloc_usable_size below the request", malloc_usable_size(b->p), b->n);
            if (malloc_usable_size(NULL) != 0)
                die("malloc_usable_size(NULL) != 0", 0, 0);
            break;
        case 10: case 11: /* free */
            release(b);
            if (op & 0x80)
                free(NULL);
            break;
        default:
            malloc_trim(arg);
            break;
        }
    }
    for (int i = 0; i < SLOTS; i++)
        release(&slot[i]);
    return 0;
}
