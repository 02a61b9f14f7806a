#!/usr/bin/env python3
"""bench/pairs.py - paired alternating whole-process runs of one command under several
configurations (python3 stdlib only).

usage: pairs.py [-u MINUTIL] [-t THREADS] [--so LIB] PAIRS 'COMMAND' 'LABEL [NAME=VALUE ...]' ...

Each round runs COMMAND once under every configuration, in the order given, each under
build/bench/runwrap (LD_PRELOAD=LIB, default build/libhakmem.so, for that process alone;
NAME=VALUE adds to its environment, LD_PRELOAD=none runs it without a preload), and reads the
program's ops_per_sec= line and runwrap's rusage. The first configuration is the baseline:
every other one is compared with it round by round. On a shared machine a run can lose its
CPUs to other work: a round's pair counts only if both runs got at least MINUTIL (default
0.85) of the CPUs they could use, cpu time / (wall time x THREADS, default 2). Rounds go on
until PAIRS pairs of each configuration count, or 4 x PAIRS rounds have run.

Prints, per configuration, the medians [min-max] of ops/s, ops per CPU-second and peak RSS
over its counted runs, and against the baseline the median [min-max] of the per-pair ratios.
"""
import os
import shlex
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNWRAP = os.path.join(ROOT, "build", "bench", "runwrap")


def parse(argv):
    minutil, threads, so = 0.85, 2, os.path.join(ROOT, "build", "libhakmem.so")
    while argv and argv[0].startswith("-"):
        opt, val = argv[0], argv[1]
        argv = argv[2:]
        if opt == "-u":
            minutil = float(val)
        elif opt == "-t":
            threads = int(val)
        elif opt == "--so":
            so = val
        else:
            raise SystemExit(__doc__)
    if len(argv) < 3:
        raise SystemExit(__doc__)
    return minutil, threads, so, int(argv[0]), shlex.split(argv[1]), argv[2:]


def run_once(cmd, cfg, so, tmp):
    env = {"LD_PRELOAD": so}
    for kv in cfg.split()[1:]:
        k, v = kv.split("=", 1)
        env[k] = v
    if env.get("LD_PRELOAD") == "none":
        del env["LD_PRELOAD"]
    res = os.path.join(tmp, "rusage")
    full = [RUNWRAP, "-o", res] + sum([["-e", "%s=%s" % kv] for kv in env.items()], [])
    out = subprocess.run(full + ["--"] + cmd, capture_output=True, text=True).stdout
    ru = dict(t.split("=", 1) for t in open(res).read().split() if "=" in t)
    ops = calls = None
    for line in out.splitlines():
        if line.startswith("ops_per_sec="):
            kv = dict(t.split("=", 1) for t in line.split() if "=" in t)
            ops, calls = float(kv["ops_per_sec"]), float(kv.get("ops", 0))
    cpu = float(ru.get("utime_s", 0)) + float(ru.get("stime_s", 0))
    wall = float(ru.get("wall_s", 0)) or 1e-9
    return {"ops": ops, "ops_cpu": calls / cpu if calls and cpu else None,
            "rss_mb": float(ru.get("maxrss_kb", 0)) / 1024.0, "cpu": cpu, "wall": wall}


def fmt(values):
    v = [x for x in values if x is not None]
    if not v:
        return "-"
    return "%.4g [%.4g-%.4g]" % (statistics.median(v), min(v), max(v))


def main():
    minutil, threads, so, want, cmd, cfgs = parse(sys.argv[1:])
    if not os.access(RUNWRAP, os.X_OK):
        raise SystemExit("build/bench/runwrap is missing: run `make bench-progs`")
    tmp = tempfile.mkdtemp(prefix="hakmem-pairs.")
    rounds = []
    while len(rounds) < 4 * want:
        got = {c: run_once(cmd, c, so, tmp) for c in cfgs}
        for r in got.values():
            r["clean"] = r["cpu"] / (r["wall"] * threads) >= minutil
        rounds.append(got)
        sys.stderr.write("+" if all(r["clean"] for r in got.values()) else "-")
        sys.stderr.flush()
        counted = [sum(1 for g in rounds if g[c]["clean"] and g[cfgs[0]]["clean"]) for c in cfgs]
        if min(counted) >= want:
            break
    sys.stderr.write("\n")
    base = cfgs[0]
    print("%s: %d rounds; a pair counts when both runs got >= %.2f of %d CPUs" % (
        " ".join(cmd), len(rounds), minutil, threads))
    for c in cfgs:
        runs = [g[c] for g in rounds if g[c]["clean"]]
        print("  %-40s ops/s %s  ops/CPU-s %s  peak RSS MB %s" % (
            c, fmt([r["ops"] for r in runs]), fmt([r["ops_cpu"] for r in runs]),
            fmt([r["rss_mb"] for r in runs])))
    for c in cfgs[1:]:
        pairs = [(g[c], g[base]) for g in rounds if g[c]["clean"] and g[base]["clean"]]

        def ratio(key):
            return fmt([a[key] / b[key] for a, b in pairs if a[key] and b[key]])
        print("  %s / %s, %d pairs: ops/s %s  ops/CPU-s %s  peak RSS %s" % (
            c.split()[0], base.split()[0], len(pairs), ratio("ops"), ratio("ops_cpu"),
            ratio("rss_mb")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
