/* tests/api/test_api_introspect.c - malloc_stats, malloc_info, mallopt and mallinfo2 through
 * the real libhakmem.so (LD_PRELOAD): hakmem's figures in glibc's shapes, the three views
 * agree with each other, and mallopt applies what maps onto hakmem (its answers are glibc
 * 2.36's: test_api_mallopt.c). Under glibc these checks fail by design (glibc's own empty
 * arenas, glibc's mallopt).
 *
 * malloc_info writes through a FILE whose buffer is set beforehand, so writing allocates
 * nothing and a mallinfo2 taken just before and just after must match the XML exactly. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "hakmem.h"
#include "testlib.h"

static char xml[256 * 1024];
static char xml_buf[64 * 1024];

/* malloc_info into xml[]; the FILE is opened and given its buffer before the call */
static void take_info(struct mallinfo2 *before, struct mallinfo2 *after)
{
    memset(xml, 0, sizeof xml);
    FILE *f = fmemopen(xml, sizeof xml - 1, "w");
    assert_non_null(f);
    assert_int_equal(setvbuf(f, xml_buf, _IOFBF, sizeof xml_buf), 0);
    if (before)
        *before = mallinfo2();
    assert_int_equal(malloc_info(0, f), 0);
    if (after)
        *after = mallinfo2();
    assert_int_equal(fclose(f), 0);
}

/* The value of attribute `attr` in the first element starting with `elem` at or after
 * `from`; fails the test when there is none. */
static unsigned long long attr_of(const char *from, const char *elem, const char *attr)
{
    const char *e = strstr(from, elem);
    if (!e)
        fail_msg("no %s in malloc_info's output:\n%s", elem, xml);
    const char *end = strstr(e, "/>");
    char key[64];
    snprintf(key, sizeof key, " %s=\"", attr);
    const char *a = strstr(e, key);
    if (!a || (end && a > end))
        fail_msg("%s has no %s:\n%s", elem, attr, xml);
    return strtoull(a + strlen(key), NULL, 10);
}

/* Sum of attribute `attr` over every <size .../> row. */
static unsigned long long sum_sizes(const char *attr)
{
    unsigned long long sum = 0;
    const char *end = strstr(xml, "</sizes>");
    assert_non_null(end);
    for (const char *p = strstr(xml, "<size "); p && p < end; p = strstr(p + 1, "<size "))
        sum += attr_of(p, "<size ", attr);
    return sum;
}

/* The <size> row whose "to" is the class size `to`, or NULL. */
static const char *size_row(unsigned to)
{
    const char *end = strstr(xml, "</sizes>");
    for (const char *p = strstr(xml, "<size "); p && end && p < end; p = strstr(p + 1, "<size "))
        if (attr_of(p, "<size ", "to") == to)
            return p;
    return NULL;
}

static void assert_same_mallinfo(const struct mallinfo2 *a, const struct mallinfo2 *b)
{
    assert_int_equal(a->arena, b->arena);
    assert_int_equal(a->uordblks, b->uordblks);
    assert_int_equal(a->fordblks, b->fordblks);
    assert_int_equal(a->smblks, b->smblks);
    assert_int_equal(a->fsmblks, b->fsmblks);
    assert_int_equal(a->hblks, b->hblks);
    assert_int_equal(a->hblkhd, b->hblkhd);
}

static void test_malloc_info_shape_and_agreement(void **state)
{
    (void)state;
    enum { N = 1000 };
    static void *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = malloc(40); /* class 33..48 */
        assert_non_null(p[i]);
    }
    for (int i = 0; i < 300; i++)
        free(p[i]);
    void *big = malloc(1u << 20);
    assert_non_null(big);
    struct mallinfo2 m1, m2;
    take_info(&m1, &m2);
    assert_same_mallinfo(&m1, &m2);

    /* glibc's shape */
    assert_true(strncmp(xml, "<malloc version=\"1\"", 19) == 0);
    size_t len = strlen(xml);
    assert_true(len > 10 && strcmp(xml + len - 10, "</malloc>\n") == 0);
    const char *heap = strstr(xml, "<heap nr=\"0\">\n<sizes>\n");
    assert_non_null(heap);
    const char *heap_end = strstr(xml, "</heap>\n");
    assert_non_null(heap_end);
    assert_non_null(strstr(xml, "</sizes>\n"));

    /* the heap's totals are mallinfo2's fields */
    unsigned long long fast_n = attr_of(heap, "<total type=\"fast\"", "count");
    unsigned long long fast_b = attr_of(heap, "<total type=\"fast\"", "size");
    unsigned long long rest_n = attr_of(heap, "<total type=\"rest\"", "count");
    unsigned long long rest_b = attr_of(heap, "<total type=\"rest\"", "size");
    unsigned long long used_b = attr_of(heap, "<total type=\"in_use\"", "size");
    assert_int_equal(used_b, m1.uordblks);
    assert_int_equal(fast_b + rest_b, m1.fsmblks);
    assert_int_equal(fast_n + rest_n, m1.smblks);
    assert_int_equal(attr_of(heap, "<system type=\"current\"", "size"), m1.arena);
    assert_true(attr_of(heap, "<system type=\"max\"", "size") >= m1.arena);
    const char *top = heap_end;
    assert_int_equal(attr_of(top, "<total type=\"mmap\"", "count"), m1.hblks);
    assert_int_equal(attr_of(top, "<total type=\"mmap\"", "size"), m1.hblkhd);
    assert_true(m1.hblks >= 1 && m1.hblkhd >= (1u << 20));
    assert_int_equal(attr_of(top, "<system type=\"current\"", "size"), m1.arena);

    /* the per-class rows add up to the totals */
    assert_int_equal(sum_sizes("in_use"), used_b);
    assert_int_equal(sum_sizes("thread_cached"), fast_b);
    assert_int_equal(sum_sizes("depot") + sum_sizes("span_free"), rest_b);
    assert_int_equal(sum_sizes("total"), fast_b + rest_b);
    assert_true(sum_sizes("mapped") <= m1.arena);
    const char *row = size_row(48);
    assert_non_null(row);
    assert_int_equal(attr_of(row, "<size ", "from"), 33);
    assert_true(attr_of(row, "<size ", "in_use") >= 700u * 48);
    assert_true(attr_of(row, "<size ", "mapped") >= 700u * 48);
    unsigned long long in_use_48 = attr_of(row, "<size ", "in_use");

    /* 300 more frees: exactly 300 blocks of 48 B fewer in the program's hands */
    for (int i = 300; i < 600; i++)
        free(p[i]);
    take_info(&m1, NULL);
    row = size_row(48);
    assert_non_null(row);
    assert_int_equal(in_use_48 - attr_of(row, "<size ", "in_use"), 300u * 48);

    for (int i = 600; i < N; i++)
        free(p[i]);
    free(big);
    errno = 0;
    assert_int_equal(malloc_info(1, stdout), EINVAL);
}

/* mallinfo2 follows the program's blocks exactly while one thread runs */
static void test_mallinfo2_tracks_blocks(void **state)
{
    (void)state;
    enum { N = 500 };
    static void *p[N];
    struct mallinfo2 a = mallinfo2();
    for (int i = 0; i < N; i++)
        p[i] = malloc(100); /* 112-byte class */
    struct mallinfo2 b = mallinfo2();
    for (int i = 0; i < N; i++)
        assert_non_null(p[i]);
    assert_int_equal(b.uordblks - a.uordblks, (size_t)N * 112);
    for (int i = 0; i < N; i++)
        free(p[i]);
    struct mallinfo2 c = mallinfo2();
    assert_int_equal(b.uordblks - c.uordblks, (size_t)N * 112);
    assert_int_equal(c.arena, c.uordblks + c.fordblks);
    assert_true(c.fsmblks <= c.fordblks);

    void *big = malloc(3u << 20);
    assert_non_null(big);
    struct mallinfo2 d = mallinfo2();
    assert_int_equal(d.hblks, c.hblks + 1);
    assert_true(d.hblkhd >= c.hblkhd + (3u << 20));
    free(big);
    struct mallinfo2 e = mallinfo2();
    assert_int_equal(e.hblks, c.hblks);
    assert_int_equal(e.hblkhd, c.hblkhd);
}

/* Live large blocks are counted per thread (each thread's mallocs and frees in its own
 * record, summed when asked): blocks a thread allocated and another freed, after the
 * allocating thread exited, and in a fork child after the fork left the allocating thread
 * behind, count once each. */
#define XT_BLOCKS 3
typedef struct {
    void *blocks[XT_BLOCKS];
    int ready, go; /* the allocating thread's "allocated", and the main thread's "exit now" */
} xt_t;

static void *xt_thread(void *arg)
{
    xt_t *x = arg;
    for (int i = 0; i < XT_BLOCKS; i++)
        x->blocks[i] = malloc((1u << 20) + (size_t)i * 4096);
    __atomic_store_n(&x->ready, 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&x->go, __ATOMIC_ACQUIRE))
        usleep(1000);
    return NULL;
}

static void test_mallinfo2_counts_large_blocks_across_threads(void **state)
{
    (void)state;
    size_t base = mallinfo2().hblks;
    static xt_t x1, x2;
    pthread_t t;

    x1.go = 1; /* exits once it allocated */
    assert_int_equal(pthread_create(&t, NULL, xt_thread, &x1), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    for (int i = 0; i < XT_BLOCKS; i++)
        assert_non_null(x1.blocks[i]);
    assert_int_equal(mallinfo2().hblks, base + XT_BLOCKS);
    free(x1.blocks[0]); /* by another thread than the one that allocated it, which exited */
    assert_int_equal(mallinfo2().hblks, base + XT_BLOCKS - 1);
    for (int i = 1; i < XT_BLOCKS; i++)
        free(x1.blocks[i]);
    assert_int_equal(mallinfo2().hblks, base);

    assert_int_equal(pthread_create(&t, NULL, xt_thread, &x2), 0);
    while (!__atomic_load_n(&x2.ready, __ATOMIC_ACQUIRE))
        usleep(1000);
    assert_int_equal(mallinfo2().hblks, base + XT_BLOCKS); /* in a live thread's record */
    pid_t pid = fork(); /* the child has no x2 thread, but its blocks */
    assert_true(pid >= 0);
    if (pid == 0) {
        int ok = mallinfo2().hblks == base + XT_BLOCKS;
        for (int i = 0; i < XT_BLOCKS; i++)
            free(x2.blocks[i]);
        ok = ok && mallinfo2().hblks == base;
        _exit(ok ? 0 : 1);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    __atomic_store_n(&x2.go, 1, __ATOMIC_RELEASE);
    assert_int_equal(pthread_join(t, NULL), 0);
    for (int i = 0; i < XT_BLOCKS; i++)
        free(x2.blocks[i]);
    assert_int_equal(mallinfo2().hblks, base);
}

/* malloc_stats: hakmem's table and glibc-style totals on stderr (fd 2) */
static void test_malloc_stats_prints_hakmem_table(void **state)
{
    (void)state;
    char *dir = tl_mkdtemp("mstats");
    char path[4096];
    snprintf(path, sizeof path, "%s/stderr", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);
    dup2(fd, 2);
    close(fd);
    malloc_stats();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    size_t len;
    char *text = tl_read_file(path, &len);
    tl_rmtree(dir);
    free(dir);
    assert_non_null(text);
    int ok = strstr(text, "hakmem per-class statistics") && strstr(text, "\nspans: mapped ") &&
             strstr(text, "\nin use bytes     = ") && strstr(text, "\nsystem bytes     = ");
    if (!ok)
        print_message("    malloc_stats printed:\n%s\n", text);
    free(text);
    assert_true(ok);
}

static unsigned long long cache_count(void)
{
    take_info(NULL, NULL);
    return attr_of(strstr(xml, "</heap>"), "<total type=\"large_cache\"", "count");
}

static unsigned long long option(const char *name)
{
    take_info(NULL, NULL);
    return attr_of(xml, "<options ", name);
}

static void test_mallopt_honours_what_maps(void **state)
{
    (void)state;
    /* M_TRIM_THRESHOLD: the large cache's budget (freed large memory kept for reuse) */
    assert_int_equal(mallopt(M_TRIM_THRESHOLD, 0), 1);
    assert_int_equal(option("large_cache_bytes"), 0);
    unsigned long long before = cache_count();
    free(malloc(1u << 20));
    assert_int_equal(cache_count(), before); /* unmapped at free */
    assert_int_equal(mallopt(M_TRIM_THRESHOLD, 64 << 20), 1);
    assert_int_equal(option("large_cache_bytes"), 64ull << 20);
    free(malloc(1u << 20));
    assert_int_equal(cache_count(), before + 1); /* kept */
    assert_int_equal(mallopt(M_TRIM_THRESHOLD, -1), 1); /* glibc: a huge threshold */
    assert_int_equal(option("large_cache_bytes"), 65536ull << 20); /* the largest budget */

    /* M_MMAP_THRESHOLD: freed mappings this big go back to the OS at once */
    assert_int_equal(mallopt(M_MMAP_THRESHOLD, 256 << 10), 1);
    assert_int_equal(option("large_keep_max"), 256u << 10);
    before = cache_count();
    free(malloc(1u << 20));
    assert_int_equal(cache_count(), before);
    free(malloc(100000));
    assert_int_equal(cache_count(), before + 1);
    assert_int_equal(mallopt(M_MMAP_THRESHOLD, 64 << 20), 1); /* glibc 2.36 has no limit */
    assert_int_equal(option("large_keep_max"), 64u << 20);
    assert_int_equal(mallopt(M_MMAP_THRESHOLD, -5), 1); /* a huge size_t, as in glibc */
    assert_int_equal(option("large_keep_max"), (unsigned long long)(size_t)-5);
    assert_int_equal(mallopt(M_MMAP_THRESHOLD, 16 << 20), 1);

    /* hakmem's own: the decay delay, and purge now */
    assert_int_equal(mallopt(M_HAKMEM_DECAY_MS, 1234), 1);
    assert_int_equal(option("decay_ms"), 1234);
    assert_int_equal(mallopt(M_HAKMEM_DECAY_MS, 700000), 0);
    assert_int_equal(option("decay_ms"), 1234);
    assert_int_equal(mallopt(M_HAKMEM_DECAY_MS, 500), 1);
    enum { N = 5000 };
    static void *p[N];
    for (int i = 0; i < N; i++)
        p[i] = malloc(1000); /* 1024-byte class: about 80 spans of their own */
    for (int i = 0; i < N; i++)
        free(p[i]);
    assert_int_equal(mallopt(M_HAKMEM_PURGE, 0), 1);
    take_info(NULL, NULL);
    const char *heap = strstr(xml, "<heap ");
    assert_int_equal(attr_of(heap, "<system type=\"empty\"", "size"), 0);
    assert_true(attr_of(heap, "<system type=\"returned\"", "size") >= 64u * 1024);
    assert_int_equal(cache_count(), 0);

    /* nothing in hakmem maps onto these: accepted, as glibc 2.36 does (test_api_mallopt.c) */
    static const int accepted[] = {M_MXFAST, M_TOP_PAD, M_MMAP_MAX, M_ARENA_MAX, M_ARENA_TEST,
                                   M_CHECK_ACTION, 12345};
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++)
        if (mallopt(accepted[i], 1) != 1)
            fail_msg("mallopt(%d, 1) returned %d; glibc 2.36 returns 1", accepted[i],
                     mallopt(accepted[i], 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malloc_info_shape_and_agreement),
        cmocka_unit_test(test_mallinfo2_tracks_blocks),
        cmocka_unit_test(test_mallinfo2_counts_large_blocks_across_threads),
        cmocka_unit_test(test_malloc_stats_prints_hakmem_table),
        cmocka_unit_test(test_mallopt_honours_what_maps),
    };
    return cmocka_run_group_tests_name("api_introspect", tests, NULL, NULL);
}
