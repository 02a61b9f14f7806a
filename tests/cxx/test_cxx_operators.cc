// tests/cxx/test_cxx_operators.cc - C++'s operator new and delete served by hakmem.
//
// Built twice (tests/tests.mk): cxx/test_cxx_operators runs with LD_PRELOAD=libhakmem.so,
// cxx/test_cxx_operators_linked is linked with -lhakmem and runs without a preload. Both must
// find every one of the 20 operators in libhakmem, and then: new/delete of every size and
// type the compiler emits calls for (sized and array deletes included), containers over
// threads with cross-thread deletes, aligned new from 64 B to 1 MiB, nothrow new returning
// NULL, the new-handler loop (until it uninstalls itself, throws, or frees memory), and a
// throwing new under RLIMIT_AS: std::bad_alloc is caught, then allocation works again.
// Scenarios that change the process (RLIMIT_AS) run in a forked child (tl_run_in_child).
// A sized delete with a wrong size is a misuse program (tests/misuse/prog_cxx_*.cc).
#include <cerrno>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <setjmp.h>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <dlfcn.h>
#include <malloc.h>
#include <sys/resource.h>

extern "C" {
#include <cmocka.h>

#include "testlib.h"
}

// The optimiser may remove a new whose result is unused (C++14 allows it): escape every
// pointer the tests allocate.
static void *volatile sink;
template <class T> static T *escape(T *p)
{
    sink = (void *)p;
    return p;
}

static const char *const operator_names[] = {
    "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t", "_ZnwmSt11align_val_t",
    "_ZnamSt11align_val_t", "_ZnwmSt11align_val_tRKSt9nothrow_t",
    "_ZnamSt11align_val_tRKSt9nothrow_t", "_ZdlPv", "_ZdaPv", "_ZdlPvRKSt9nothrow_t",
    "_ZdaPvRKSt9nothrow_t", "_ZdlPvm", "_ZdaPvm", "_ZdlPvSt11align_val_t",
    "_ZdaPvSt11align_val_t", "_ZdlPvSt11align_val_tRKSt9nothrow_t",
    "_ZdaPvSt11align_val_tRKSt9nothrow_t", "_ZdlPvmSt11align_val_t", "_ZdaPvmSt11align_val_t"};

static int from_hakmem(const void *fn)
{
    Dl_info info;
    return fn && dladdr(fn, &info) && info.dli_fname && strstr(info.dli_fname, "libhakmem");
}

static void test_operators_come_from_hakmem(void **state)
{
    (void)state;
    for (const char *name : operator_names) {
        void *fn = dlsym(RTLD_DEFAULT, name);
        if (!from_hakmem(fn))
            fail_msg("%s does not resolve to libhakmem (%p)", name, fn);
    }
    // what the program itself calls, through its own GOT
    void *(*plain_new)(size_t) = &::operator new;
    void (*sized_delete)(void *, size_t) = &::operator delete;
    void *(*aligned_new)(size_t, std::align_val_t) = &::operator new[];
    assert_true(from_hakmem((const void *)plain_new));
    assert_true(from_hakmem((const void *)sized_delete));
    assert_true(from_hakmem((const void *)aligned_new));
    // and the blocks are hakmem's: a 20-byte new is a 32-byte class block
    char *p = escape(new char[20]);
    assert_int_equal(malloc_usable_size(p), 32);
    delete[] p;
}

template <size_t N> struct Obj {
    unsigned char bytes[N];
};

template <size_t N> static void new_delete_type()
{
    Obj<N> *o[64];
    for (int i = 0; i < 64; i++) {
        o[i] = escape(new Obj<N>);
        memset(o[i]->bytes, i, N);
    }
    for (int i = 0; i < 64; i++) {
        if (o[i]->bytes[0] != (unsigned char)i || o[i]->bytes[N - 1] != (unsigned char)i)
            fail_msg("Obj<%zu> %d lost its contents", N, i);
        delete o[i]; // sized delete: operator delete(void *, N)
    }
    Obj<N> *a = escape(new Obj<N>[7]);
    memset(a, 1, sizeof(Obj<N>) * 7);
    delete[] a;
}

struct Counted {
    static int live;
    std::string name;
    Counted() : name(40, 'c') { live++; }
    ~Counted() { live--; }
};
int Counted::live;

struct Base {
    virtual ~Base() = default;
    int x = 1;
};
struct Derived : Base {
    char pad[200];
    std::vector<int> v = std::vector<int>(50, 7);
};

static void test_new_delete_sizes_and_types(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 15, 16, 17, 32, 48, 100, 128, 129, 1000, 1024, 1025,
                                   4096, 8191, 32768, 32769, 65536, 100000, 1u << 20};
    for (size_t n : sizes) {
        unsigned char *p = (unsigned char *)escape(::operator new(n));
        assert_non_null(p);
        assert_true((uintptr_t)p % 16 == 0);
        if (n)
            p[0] = p[n - 1] = 0x5a;
        ::operator delete(p, n); // sized, with the exact size
        p = (unsigned char *)escape(::operator new[](n));
        ::operator delete[](p);
        p = (unsigned char *)escape(::operator new(n, std::nothrow));
        assert_non_null(p);
        ::operator delete(p, std::nothrow);
    }
    // every size up to the largest class and past it: sized delete accepts the size new was
    // given (its bounds table agrees with new's size classes everywhere)
    for (size_t n = 0; n <= 33000; n++) {
        void *p = escape(::operator new(n));
        ::operator delete(p, n);
    }
    new_delete_type<1>();
    new_delete_type<8>();
    new_delete_type<16>();
    new_delete_type<24>();
    new_delete_type<40>();
    new_delete_type<64>();
    new_delete_type<200>();
    new_delete_type<1000>();
    new_delete_type<5000>();
    new_delete_type<40000>();
    // a type with a destructor: new[] stores a count, delete[] passes the whole size
    Counted *c = escape(new Counted[33]);
    assert_int_equal(Counted::live, 33);
    delete[] c;
    assert_int_equal(Counted::live, 0);
    // deleting through a base with a virtual destructor passes the derived size
    for (int i = 0; i < 100; i++) {
        Base *b = escape(new Derived);
        delete b;
    }
}

static void *container_work(void *arg)
{
    unsigned long long rng = 0x9e37 + (uintptr_t)arg;
    for (int round = 0; round < 3; round++) {
        std::map<int, std::string> m;
        std::unordered_map<std::string, std::vector<int>> u;
        for (int i = 0; i < 5000; i++) {
            m[i] = std::string(tl_rand(&rng) % 60, 'a' + i % 26);
            u["key-" + std::to_string(i)].assign(tl_rand(&rng) % 20, i);
        }
        std::string s;
        std::vector<int> v;
        for (int i = 0; i < 20000; i++) {
            s += (char)('a' + i % 26);
            v.push_back(i);
        }
        for (int i = 0; i < 5000; i += 2)
            m.erase(i);
        TL_CHECK(m.size() == 2500 && u.size() == 5000 && s.size() == 20000 && v[19999] == 19999,
                 "container contents wrong");
        TL_CHECK(u["key-77"].size() <= 20 && m[1].size() < 60, "container values wrong");
    }
    return NULL;
}

// Objects made in one thread, deleted in another.
static void *delete_foreign(void *arg)
{
    auto *objs = (std::vector<std::string *> *)arg;
    for (std::string *s : *objs) {
        TL_CHECK(s->size() == 100 && (*s)[99] == 'z', "an object changed in transit");
        delete s;
    }
    return NULL;
}

static void test_containers_over_threads(void **state)
{
    (void)state;
    std::vector<std::thread> ts;
    const char *results[4] = {};
    for (int i = 0; i < 4; i++)
        ts.emplace_back([i, &results] { results[i] = (const char *)container_work((void *)(intptr_t)i); });
    for (auto &t : ts)
        t.join();
    for (int i = 0; i < 4; i++)
        if (results[i])
            fail_msg("thread %d: %s", i, results[i]);
    std::vector<std::string *> objs;
    for (int i = 0; i < 2000; i++)
        objs.push_back(new std::string(100, 'z'));
    const char *why = tl_run_thread(delete_foreign, &objs);
    if (why)
        fail_msg("%s", why);
}

struct alignas(64) A64 {
    char c[10];
};
struct alignas(4096) A4096 {
    char c[5000];
};

static void test_aligned_new_64_to_1mib(void **state)
{
    (void)state;
    for (size_t align = 64; align <= (1u << 20); align <<= 1) {
        const size_t sizes[] = {1, align / 2, align, align + 1, 3 * align, 100000};
        for (size_t n : sizes) {
            auto al = std::align_val_t(align);
            unsigned char *p = (unsigned char *)escape(::operator new(n, al));
            if ((uintptr_t)p % align)
                fail_msg("operator new(%zu, align %zu) = %p", n, align, (void *)p);
            p[0] = p[n - 1] = 0x77;
            ::operator delete(p, n, al); // sized aligned
            p = (unsigned char *)escape(::operator new[](n, al));
            assert_true((uintptr_t)p % align == 0);
            p[n - 1] = 1;
            ::operator delete[](p, al); // unsized aligned
            p = (unsigned char *)escape(::operator new(n, al, std::nothrow));
            assert_non_null(p);
            assert_true((uintptr_t)p % align == 0);
            ::operator delete(p, al, std::nothrow);
        }
    }
    // what the compiler emits for over-aligned types
    A64 *a = escape(new A64);
    assert_true((uintptr_t)a % 64 == 0);
    delete a;
    A4096 *b = escape(new A4096[3]);
    assert_true((uintptr_t)b % 4096 == 0);
    delete[] b;
    std::vector<A64> v(1000);
    assert_true((uintptr_t)v.data() % 64 == 0);
}

static void test_nothrow_new_returns_null(void **state)
{
    (void)state;
    const size_t huge = (size_t)1 << 62;
    assert_null(escape(::operator new(huge, std::nothrow)));
    assert_null(escape(::operator new[](huge, std::nothrow)));
    assert_null(escape(::operator new(huge, std::align_val_t(4096), std::nothrow)));
    assert_null(escape(new (std::nothrow) char[huge]));
    // not a power of two: no allocation (libstdc++ fails it too)
    assert_null(escape(::operator new(64, std::align_val_t(48), std::nothrow)));
    // and nothing is broken afterwards
    char *p = escape(new (std::nothrow) char[100]);
    assert_non_null(p);
    delete[] p;
}

static int handler_calls;
static void handler_gives_up_at_3()
{
    if (++handler_calls == 3)
        std::set_new_handler(nullptr);
}
static void handler_throws_at_2()
{
    if (++handler_calls == 2)
        throw std::bad_alloc();
}

// Does f() throw std::bad_alloc?
template <class F> static int throws_bad_alloc(F f)
{
    try {
        f();
    } catch (const std::bad_alloc &) {
        return 1;
    }
    return 0;
}

static void test_new_handler_loop(void **state)
{
    (void)state;
    const size_t huge = (size_t)1 << 62;
    // the handler runs until it uninstalls itself; then new throws (plain and aligned)
    handler_calls = 0;
    std::set_new_handler(handler_gives_up_at_3);
    assert_true(throws_bad_alloc([=] { escape(::operator new(huge)); }));
    assert_int_equal(handler_calls, 3);
    handler_calls = 0;
    std::set_new_handler(handler_gives_up_at_3);
    assert_true(throws_bad_alloc([=] { escape(::operator new[](huge, std::align_val_t(256))); }));
    assert_int_equal(handler_calls, 3);
    // a handler that throws: new passes the exception on, nothrow new returns NULL
    handler_calls = 0;
    std::set_new_handler(handler_throws_at_2);
    assert_true(throws_bad_alloc([=] { escape(new char[huge]); }));
    assert_int_equal(handler_calls, 2);
    handler_calls = 0;
    assert_null(escape(new (std::nothrow) char[huge]));
    assert_int_equal(handler_calls, 2);
    handler_calls = 0;
    assert_null(escape(::operator new(huge, std::align_val_t(128), std::nothrow)));
    assert_int_equal(handler_calls, 2);
    std::set_new_handler(nullptr);
    // with no handler, plain new throws at once
    assert_true(throws_bad_alloc([=] { escape(new char[huge]); }));
}

// ---- under RLIMIT_AS, in a child ----------------------------------------------------------

static std::vector<char *> *reserve_for_handler;
static void handler_frees_reserve()
{
    handler_calls++;
    if (reserve_for_handler && !reserve_for_handler->empty()) {
        for (char *r : *reserve_for_handler)
            delete[] r;
        reserve_for_handler->clear();
    } else {
        std::set_new_handler(nullptr);
    }
}

static int rlimit_scenario(void *unused)
{
    (void)unused;
    long vm = tl_status_kib("VmSize");
    if (vm <= 0)
        TL_FAILF("no VmSize");
    struct rlimit rl = {(rlim_t)vm * 1024 + (192ull << 20), RLIM_INFINITY};
    if (setrlimit(RLIMIT_AS, &rl) != 0)
        TL_FAILF("setrlimit: %s", strerror(errno));
    for (int round = 0; round < 3; round++) {
        // one block bigger than the budget
        if (!throws_bad_alloc([] { escape(new char[512u << 20]); }))
            TL_FAILF("round %d: new char[512 MiB] did not throw", round);
        // exhaust the budget with blocks of every size, each new caught
        std::vector<std::unique_ptr<char[]>> held;
        held.reserve(1 << 20);
        size_t throws = 0, got = 0;
        const size_t sizes[] = {64, 3000, 24000, 200000};
        for (size_t k = 0; throws < 50 && k < 4000000; k++) {
            size_t n = sizes[k % 4];
            try {
                char *p = new char[n];
                p[0] = p[n - 1] = 1;
                held.emplace_back(p);
                got++;
            } catch (const std::bad_alloc &) {
                throws++;
            }
        }
        if (throws < 50)
            TL_FAILF("round %d: no bad_alloc after %zu blocks", round, got);
        // nothrow new fails quietly at the limit
        if (escape(new (std::nothrow) char[100u << 20]))
            TL_FAILF("round %d: nothrow new of 100 MiB succeeded at the limit", round);
        held.clear();
        // memory is back: a big block (a sixth of the budget), a container, small objects
        try {
            std::unique_ptr<char[]> big(escape(new char[32u << 20]));
            big[0] = big[(32u << 20) - 1] = 2;
            std::map<int, std::string> m;
            for (int i = 0; i < 20000; i++)
                m[i] = std::string(30, 'm');
            if (m.size() != 20000)
                TL_FAILF("round %d: map after the limit", round);
        } catch (const std::bad_alloc &) {
            TL_FAILF("round %d: std::bad_alloc after everything was freed", round);
        }
        printf("    round %d: %zu blocks, then %zu bad_alloc caught; allocation works again\n",
               round, got, throws);
    }
    // a handler that frees memory makes the retry succeed
    std::vector<char *> reserve;
    try {
        for (int i = 0; i < 8; i++)
            reserve.push_back(escape(new char[16u << 20]));
    } catch (const std::bad_alloc &) {
        TL_FAILF("std::bad_alloc while taking the handler's reserve");
    }
    reserve_for_handler = &reserve;
    std::vector<std::unique_ptr<char[]>> held;
    try {
        for (;;)
            held.emplace_back(escape(new char[8u << 20]));
    } catch (const std::bad_alloc &) {
    }
    handler_calls = 0;
    std::set_new_handler(handler_frees_reserve);
    char *after = nullptr;
    try {
        after = escape(new char[12u << 20]); /* fits in any one block the handler frees */
    } catch (const std::bad_alloc &) {
    }
    std::set_new_handler(nullptr);
    if (!after || handler_calls < 1 || !reserve.empty())
        TL_FAILF("new of 12 MiB after the handler freed 128 MiB: %p, %d handler call(s)", (void *)after,
                 handler_calls);
    delete[] after;
    printf("    the handler freed its reserve after %zu blocks; the retry succeeded\n",
           held.size());
    fflush(stdout);
    return 0;
}

static void test_throwing_new_under_rlimit_as(void **state)
{
    (void)state;
    char why[256];
    if (tl_run_in_child(rlimit_scenario, NULL, 120, why, sizeof why))
        fail_msg("%s", why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_operators_come_from_hakmem),
        cmocka_unit_test(test_new_delete_sizes_and_types),
        cmocka_unit_test(test_containers_over_threads),
        cmocka_unit_test(test_aligned_new_64_to_1mib),
        cmocka_unit_test(test_nothrow_new_returns_null),
        cmocka_unit_test(test_new_handler_loop),
        cmocka_unit_test(test_throwing_new_under_rlimit_as),
    };
    return cmocka_run_group_tests_name(HAK_CXX_SUITE, tests, NULL, NULL);
}
