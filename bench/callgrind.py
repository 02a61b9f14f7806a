#!/usr/bin/env python3
"""bench/callgrind.py - instructions per malloc+free pair, per allocator (make bench-callgrind).

For each case and allocator, build/bench/cg_pair (C: malloc/free) or build/bench/cg_pair_cxx
(C++: new/delete of a 32-byte object) runs under
  valgrind --tool=callgrind --toggle-collect=bench_loop
with the allocator in LD_PRELOAD (callgrind does not replace malloc, unlike memcheck, so the
preloaded allocator is what runs). It is run for N and 2N iterations; (I(2N) - I(N)) / N is the
cost of one iteration with start-up and first-call costs cancelled. The same is done for the
loop without the allocator (base-pair, base-window, base-new) and subtracted. What remains is
the allocator plus the call sequence (argument set-up, call, PLT jump), checked against the
disassembly: 6 instructions for malloc+free and for new + unsized delete, 7 for new + sized
delete (which also loads the size). The table reports
  alloc+free = per-iteration - loop - call sequence
which is the convention of shared/ANCHORS.md (glibc ~129, jemalloc ~67, tcmalloc ~67,
mimalloc ~105 at 32 B). Under glibc the C++ rows are libstdc++'s operators around glibc's
malloc; jemalloc, mimalloc and tcmalloc export their own. Counts are deterministic, so runs go
two at a time.

Writes bench/results/callgrind.csv and callgrind.md.
usage: callgrind.py [--allocators "a b"] [--iters N]
"""
import argparse
import concurrent.futures
import csv
import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as harness  # noqa: E402  (ALLOCATORS, allocator_problem, machine_info)

ROOT = harness.ROOT
CG = os.path.join(harness.BIN, "cg_pair")
CGX = os.path.join(harness.BIN, "cg_pair_cxx")
# base loops: name -> program and arguments before N
BASES = {"base-pair": (CG, ["base-pair", "32"]), "base-window": (CG, ["base-window", "0"]),
         "base-new": (CGX, ["base-new"])}
CASES = [  # label, program, arguments before N, base loop, call sequence
    ("32 B", CG, ["pair", "32"], "base-pair", 6),
    ("32 B held", CG, ["held", "32"], "base-pair", 6),
    ("256 B", CG, ["pair", "256"], "base-pair", 6),
    ("4 KiB", CG, ["pair", "4096"], "base-pair", 6),
    ("16 KiB", CG, ["pair", "16384"], "base-pair", 6),
    ("16 KiB held", CG, ["held", "16384"], "base-pair", 6),
    ("window 64 x 8-32 KiB", CG, ["window", "0"], "base-window", 6),
    ("C++ new+delete 32 B", CGX, ["new"], "base-new", 7),
    ("C++ new+delete 32 B unsized", CGX, ["new-unsized"], "base-new", 6),
]
ANCHORS = {"glibc": 129, "jemalloc": 67, "tcmalloc": 67, "mimalloc": 105}  # 32 B


def collected(prog, args, n, preload_env):
    env = dict(os.environ)
    env.update(preload_env)
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
           "--toggle-collect=bench_loop", prog] + args + [str(n)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    m = re.search(r"Collected\s*:\s*(\d+)", r.stderr)
    if r.returncode != 0 or not m:
        raise RuntimeError("%s: rc %d\n%s" % (" ".join(cmd), r.returncode, r.stderr[-1500:]))
    return int(m.group(1))


def per_iter(prog, args, n, env):
    a = collected(prog, args, n, env)
    b = collected(prog, args, 2 * n, env)
    return (b - a) / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--allocators", default=" ".join(harness.DEFAULT_ALLOCATORS))
    ap.add_argument("--iters", type=int, default=200000)
    args = ap.parse_args()
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is not installed: make deps-bench")
    for prog in (CG, CGX):
        if not os.access(prog, os.X_OK):
            raise SystemExit("build/bench/%s is missing: make bench-progs" %
                             os.path.basename(prog))
    allocs, notes = [], []
    for a in args.allocators.split():
        if a not in harness.ALLOCATORS:
            raise SystemExit("unknown allocator %s" % a)
        prob = harness.allocator_problem(a)
        if prob:
            notes.append("%s skipped: %s" % (a, prob))
            print("NOTE: %s skipped: %s" % (a, prob), flush=True)
        else:
            allocs.append(a)

    def env_of(a):
        preload, extra, _ = harness.ALLOCATORS[a]
        e = dict(extra)
        e["LD_PRELOAD"] = preload or ""
        return e

    jobs = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
        for base, (prog, bargs) in sorted(BASES.items()):
            jobs[("base", base)] = ex.submit(per_iter, prog, bargs, args.iters, {})
        for label, prog, cargs, _, _ in CASES:
            for a in allocs:
                jobs[(a, label)] = ex.submit(per_iter, prog, cargs, args.iters, env_of(a))
        results = {}
        for key, fut in jobs.items():
            try:
                results[key] = fut.result()
            except Exception as e:  # a crash under valgrind is a finding, not a harness error
                results[key] = None
                notes.append("%s / %s failed under callgrind: %s" % (key[0], key[1],
                                                                     str(e).splitlines()[0]))
            if key[0] != "base":
                print("callgrind: %-14s %-22s done" % key, flush=True)

    rows = []
    for label, _, _, base, calls in CASES:
        for a in allocs:
            raw, loop = results.get((a, label)), results.get(("base", base))
            val = None if raw is None or loop is None else raw - loop - calls
            rows.append({"case": label, "allocator": a, "instr_per_pair": val,
                         "per_iter_raw": raw, "loop_per_iter": loop})
    os.makedirs(harness.RESULTS, exist_ok=True)
    with open(os.path.join(harness.RESULTS, "callgrind.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["case", "allocator", "instr_per_pair", "per_iter_raw",
                                          "loop_per_iter"])
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else ("%.1f" % v if isinstance(v, float) else v))
                        for k, v in r.items()})

    for a, ref in ANCHORS.items():
        got = next((r["instr_per_pair"] for r in rows if r["allocator"] == a and
                    r["case"] == "32 B"), None)
        if got is not None and abs(got - ref) > 0.15 * ref:
            notes.append("sanity: %s at 32 B counts %.0f, ANCHORS.md says ~%d" % (a, got, ref))
    info = harness.machine_info()
    head = ["allocator"] + [c[0] for c in CASES]
    md = ["# Instructions per malloc+free pair (callgrind)", "",
          "valgrind %s, %s, %s; N=%d and 2N iterations, loop (%s) and call sequence (6; 7 "
          "for new + sized delete) subtracted." % (
              info.get("valgrind"), info["cpu"], info["date"], args.iters,
              ", ".join("%s %.1f" % (b, results.get(("base", b)) or 0) for b in sorted(BASES))),
          "libhakmem.so: %s." % info.get("libhakmem.so"),
          "\"held\" keeps one extra block of the size live, so the allocator's page never "
          "empties. The C++ columns are `new` and `delete` of a 32-byte object "
          "(bench/cg_pair_cxx.cc, g++ -O2): the sized `operator delete(p, 32)` g++ emits, "
          "and the unsized form.", "",
          "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for a in allocs:
        cells = []
        for label, *_ in CASES:
            v = next(r["instr_per_pair"] for r in rows if r["allocator"] == a and
                     r["case"] == label)
            cells.append("FAIL" if v is None else "%.0f" % v)
        md.append("| %s | %s |" % (a, " | ".join(cells)))
    notes.append("jemalloc's window count varies by a few percent between runs (its purging is "
                 "driven by wall-clock decay); the other counts repeat exactly")
    if notes:
        md += ["", "Notes:", ""] + ["- " + n for n in notes]
    with open(os.path.join(harness.RESULTS, "callgrind.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print()
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
