// bench/gcc_templates.cc - the input of the gcc workload of bench/run.py (bench/realprog.py gcc).
//
// Never run: bench/realprog.py compiles it with `g++ -std=c++17 -O2 -c` under the allocator
// being measured (LD_PRELOAD reaches cc1plus and as through the g++ driver) and checks the
// object's sha256 against a compile under glibc. It is written to make the compiler allocate:
// KINDS record types (-DKINDS=N; realprog.py uses 1, ~3 s), each instantiating std::map,
// std::unordered_map, std::set, std::vector, std::deque, std::variant, std::optional,
// std::function, std::sort with lambdas and std::ostringstream over its own types, so
// cc1plus builds, optimizes and throws away thousands of template instantiations (trees,
// RTL, hash tables, bitmaps, vectors) on top of parsing the headers.
#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#ifndef KINDS
#define KINDS 1
#endif

namespace bench {

template <int I>
struct Rec {
    int id = 0;
    std::string name;
    std::vector<int> values;
    double score = 0;
    std::optional<std::string> note;

    bool operator<(const Rec &o) const
    {
        return std::tie(score, name, id) < std::tie(o.score, o.name, o.id);
    }
};

template <int I>
struct RecHash {
    std::size_t operator()(const Rec<I> &r) const
    {
        return std::hash<std::string>()(r.name) ^ (std::size_t)r.id * (I + 1);
    }
};

template <int I>
bool operator==(const Rec<I> &a, const Rec<I> &b)
{
    return a.id == b.id && a.name == b.name;
}

template <int I>
using Value = std::variant<int, double, std::string, Rec<I>, std::vector<Rec<I>>>;

template <int I>
struct Visitor {
    std::ostringstream &os;
    void operator()(int v) const { os << "i" << v << I; }
    void operator()(double v) const { os << "d" << v; }
    void operator()(const std::string &v) const { os << "s" << v.size() << v; }
    void operator()(const Rec<I> &r) const { os << "r" << r.id << r.name << r.values.size(); }
    void operator()(const std::vector<Rec<I>> &v) const
    {
        os << "v" << v.size();
        for (const auto &r : v) os << r.name;
    }
};

template <int I>
class Table {
public:
    void add(Rec<I> r)
    {
        by_name_[r.name].push_back(r.id);
        by_id_.emplace(r.id, r);
        set_.insert(r);
        queue_.push_back(std::move(r));
        if (queue_.size() > 64) queue_.pop_front();
    }

    std::vector<Rec<I>> top(std::size_t n, const std::function<bool(const Rec<I> &)> &keep) const
    {
        std::vector<Rec<I>> out;
        for (const auto &kv : by_id_)
            if (keep(kv.second)) out.push_back(kv.second);
        std::sort(out.begin(), out.end(), [](const Rec<I> &a, const Rec<I> &b) {
            return b < a;
        });
        if (out.size() > n) out.resize(n);
        return out;
    }

    std::map<std::string, std::size_t> histogram() const
    {
        std::map<std::string, std::size_t> h;
        for (const auto &kv : by_name_) h[kv.first.substr(0, 2)] += kv.second.size();
        return h;
    }

    std::string dump() const
    {
        std::ostringstream os;
        Visitor<I> vis{os};
        std::vector<Value<I>> vals;
        for (const auto &r : set_) {
            vals.emplace_back(r.id);
            vals.emplace_back(r.score);
            vals.emplace_back(r.name);
            vals.emplace_back(r);
        }
        vals.emplace_back(std::vector<Rec<I>>(queue_.begin(), queue_.end()));
        for (const auto &v : vals) std::visit(vis, v);
        for (const auto &kv : histogram()) os << kv.first << '=' << kv.second << ';';
        return os.str();
    }

private:
    std::unordered_map<std::string, std::vector<int>> by_name_;
    std::map<int, Rec<I>> by_id_;
    std::set<Rec<I>> set_;
    std::deque<Rec<I>> queue_;
    std::unordered_map<Rec<I>, int, RecHash<I>> counts_;
};

template <int I>
std::string run(int n)
{
    Table<I> t;
    for (int k = 0; k < n; k++) {
        Rec<I> r;
        r.id = k * (I + 3);
        r.name = "n" + std::to_string((k * 7919 + I) % 101);
        r.values.resize((std::size_t)(k % 7 + I % 3));
        std::iota(r.values.begin(), r.values.end(), k);
        r.score = (double)((k * 31 + I) % 97) / 4;
        if (k % 3 == 0) r.note = r.name + "!";
        t.add(std::move(r));
    }
    auto best = t.top(10, [](const Rec<I> &r) { return r.id % 2 == 0 || r.note.has_value(); });
    std::string s = t.dump();
    for (const auto &r : best) s += r.name;
    return s;
}

template <std::size_t... Is>
std::size_t run_all(int n, std::index_sequence<Is...>)
{
    std::size_t total = 0;
    ((total += run<(int)Is>(n).size()), ...);
    return total;
}

} // namespace bench

std::size_t bench_entry(int n)
{
    return bench::run_all(n, std::make_index_sequence<KINDS>{});
}
