#!/usr/bin/env python3
"""bench/compare.py - two builds of the library, paired, on every synthetic `make bench`
workload (python3 stdlib only).

usage: compare.py [-p PAIRS] [-d SECONDS] [--base-env 'N=V ...'] [--new-env 'N=V ...']
                  BASE.so NEW.so [WORKLOAD ...]

For each workload of bench/run.py's WORKLOADS table that is one of build/bench's programs (all
of them when none is named; `cpython` runs bench/cpython_json.py with PYTHONMALLOC=malloc),
runs bench/pairs.py with BASE.so as the baseline and NEW.so beside it, with the workload's own
`make bench` arguments: 2 threads and a minimum CPU share of 0.4; one thread and 0.8 for the
one-thread workloads; no minimum for the thread bursts, which sleep by design. Prints one line
per workload: the medians [min-max] of the per-pair ratios NEW / BASE (ops/s, ops per
CPU-second, peak RSS). PAIRS defaults to 5; SECONDS (each run) to the workload's own `make
bench` length (1 s; `phase` and `phase1t` 2.4 s, whose phases a shorter run cuts short: a
0.6 s run once hid a 2.6% loss on `phase1t`; `bigbuf` 2 s). --base-env and
--new-env add variables to one side's environment (one build under two settings: the same
library on both sides, `--new-env HAKMEM_TCACHE_GROW_KIB=0`).
"""
import importlib.util
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def workloads():
    spec = importlib.util.spec_from_file_location("bench_run", os.path.join(ROOT, "bench", "run.py"))
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    return run.WORKLOADS


def command(name, entry, seconds):
    """(argv, threads, min CPU share) of one workload, or None for one this tool skips."""
    if name == "cpython":
        return ["python3", os.path.join(ROOT, "bench", "cpython_json.py")], 1, 0.8
    prog = entry[0]
    if prog is None:
        return None
    extra = list(entry[3]) if len(entry) > 3 else []
    threads = 2
    if "-t" in extra:
        threads = int(extra[extra.index("-t") + 1])
    argv = [os.path.join(ROOT, "build", "bench", prog), "-t", str(threads)] + extra
    if prog == "burstexit":
        return argv, threads, 0.0  # a fixed amount of work with sleeps in it
    return argv + ["-d", str(seconds or entry[1])], threads, 0.8 if threads == 1 else 0.4


def main(argv):
    pairs, seconds, base_env, new_env = 5, None, "", ""
    while argv and argv[0] in ("-p", "-d", "--base-env", "--new-env"):
        if argv[0] == "-p":
            pairs = int(argv[1])
        elif argv[0] == "-d":
            seconds = float(argv[1])
        elif argv[0] == "--base-env":
            base_env = " " + argv[1]
        else:
            new_env = " " + argv[1]
        argv = argv[2:]
    if len(argv) < 2:
        raise SystemExit(__doc__)
    base, new, chosen = os.path.abspath(argv[0]), os.path.abspath(argv[1]), argv[2:]
    table = workloads()
    for name in chosen or [w for w in table if table[w][0] is not None]:
        if name not in table:
            raise SystemExit("compare: no workload %s" % name)
        cmd = command(name, table[name], seconds)
        if cmd is None:
            print("%s: skipped (not a build/bench program)" % name)
            continue
        argv_w, threads, util = cmd
        env = " PYTHONMALLOC=malloc" if name == "cpython" else ""
        out = subprocess.run(
            [sys.executable, os.path.join(ROOT, "bench", "pairs.py"), "-u", str(util), "-t",
             str(threads), str(pairs), " ".join(argv_w),
             "base LD_PRELOAD=%s%s%s" % (base, env, base_env),
             "new LD_PRELOAD=%s%s%s" % (new, env, new_env)], capture_output=True, text=True).stdout
        last = out.strip().splitlines()[-1] if out.strip() else "(no output)"
        print("%s: %s" % (name, last.split(":", 1)[-1].strip()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
