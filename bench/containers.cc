// bench/containers.cc - a C++ server's container work: every thread, each round, builds and
// tears down a 20,000-entry std::map<int, std::string> and a 20,000-entry
// std::unordered_map<std::string, std::vector<int>>, and grows a std::string to 256 KiB and a
// std::vector<int> to 100,000 elements. Both threads (-t, 2 on the 2-core benchmark machine)
// work on the same size classes, and each frees what it allocated, thousands of blocks at a
// time: the shape where a thread's own big working set goes through its cache or not.
//
// Options as every workload (bench_common.h): -t threads, -d seconds (rounds until then),
// -n rounds per thread (wins over -d), -s seed, -x entries=N (20000). An op is one container
// element operation: a map or unordered_map insert or erase, a vector push_back, a string
// append. Prints ops_per_sec=N ops=N seconds=S threads=T rounds=R entries=N.
#include "bench_common.h"

#include <map>
#include <string>
#include <unordered_map>
#include <vector>

struct worker {
    bench_args_t *args;
    int idx;
    bench_start_t *start;
    long entries;
    uint64_t ops, rounds, check;
};

// One round; returns its op count. Sizes and keys come from the thread's generator, so a
// seed gives the same work under every allocator.
static uint64_t round_once(bench_rng_t *rng, long entries, uint64_t *check)
{
    uint64_t ops = 0;
    std::map<int, std::string> m;
    std::unordered_map<std::string, std::vector<int>> u;
    uint32_t salt = (uint32_t)bench_rng_next(rng);
    for (long i = 0; i < entries; i++) {
        // a bijection of i: distinct keys, in no order
        int key = (int)(((uint32_t)i * 2654435761u) ^ salt);
        size_t len = bench_rng_range(rng, 4, 64); // short ones stay inline (SSO)
        m.emplace(key, std::string(len, (char)('a' + i % 26)));
        std::string ukey = "k" + std::to_string(key) + "-" + std::to_string(i);
        std::vector<int> &v = u[ukey];
        size_t n = bench_rng_range(rng, 1, 16);
        for (size_t k = 0; k < n; k++)
            v.push_back((int)k); // grows 1, 2, 4, 8, 16
        ops += 2 + n;
    }
    std::string s;
    std::vector<int> v;
    while (s.size() < 256 * 1024) {
        s.append(bench_rng_range(rng, 1, 200), 'x');
        ops++;
    }
    for (int i = 0; i < 100000; i++)
        v.push_back(i);
    ops += 100000;
    // lookups, then erase half of each container in key order, then drop the rest
    uint64_t sum = s.size() + v.back();
    for (long i = 0; i < entries; i += 7) {
        int key = (int)(((uint32_t)i * 2654435761u) ^ salt);
        auto it = m.find(key);
        if (it == m.end()) {
            fprintf(stderr, "containers: key %d lost\n", key);
            abort();
        }
        sum += it->second.size();
    }
    for (auto it = m.begin(); it != m.end();) {
        it = m.erase(it);
        ops++;
        if (it != m.end())
            ++it;
    }
    for (auto it = u.begin(); it != u.end();) {
        sum += it->second.size();
        it = u.erase(it);
        ops++;
        if (it != u.end())
            ++it;
    }
    *check += sum + m.size() + u.size();
    return ops; // the destructors free the other half
}

static void *worker_main(void *arg)
{
    worker *w = (worker *)arg;
    bench_rng_t rng;
    bench_rng_seed(&rng, w->args->seed, (uint64_t)w->idx);
    bench_start_wait(w->start);
    for (;;) {
        w->ops += round_once(&rng, w->entries, &w->check);
        w->rounds++;
        if (w->args->ops ? w->rounds >= w->args->ops : bench_now() >= w->start->deadline)
            break;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    bench_args_t a;
    bench_parse_args(argc, argv, &a, 1.0,
                     "containers: per thread and round, build and tear down a 20,000-entry "
                     "std::map<int, std::string> and std::unordered_map<std::string, "
                     "std::vector<int>>, grow a string and a vector; -n = rounds per thread");
    long entries = bench_extra(&a, "entries", 20000);
    if (entries < 1) {
        fprintf(stderr, "containers: entries must be at least 1\n");
        return 2;
    }
    int T = a.threads;
    std::vector<worker> ws((size_t)T);
    bench_start_t start;
    bench_start_init(&start, T);
    for (int i = 0; i < T; i++)
        ws[(size_t)i] = worker{&a, i, &start, entries, 0, 0, 0};
    double el = bench_run_threads(T, &start, worker_main, ws.data(), sizeof ws[0], a.seconds);
    uint64_t ops = 0, rounds = 0, check = 0;
    for (int i = 0; i < T; i++) {
        ops += ws[(size_t)i].ops;
        rounds += ws[(size_t)i].rounds;
        check += ws[(size_t)i].check;
    }
    printf("ops_per_sec=%.0f ops=%llu seconds=%.3f threads=%d rounds=%llu entries=%ld "
           "check=%llu\n",
           (double)ops / el, (unsigned long long)ops, el, T, (unsigned long long)rounds, entries,
           (unsigned long long)check);
    return 0;
}
