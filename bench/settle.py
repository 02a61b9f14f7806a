#!/usr/bin/env python3
"""bench/settle.py - how long ACE takes to settle after a phase change (python3 stdlib only).

Runs build/bench/settle under hakmem with ACE (POOL_ACE=1, POOL_ACE_LOG) and with fixed
counts, alternating, ROUNDS times (each run wrapped by the caller in the timing lock: `make
bench-settle` does it), and for every phase of every ACE run measures:

  count settled   the time from the phase change to the last change of the new hot class's
                  count inside the phase (0 if it never moved), from POOL_ACE_LOG;
  throughput      the time from the phase change to the end of the first 10 ms sample from
                  which three samples in a row average at least 95% of that phase's steady
                  state (the median of the samples of its second half), from the workload's
                  own samples;
  settled         the later of the two.

Writes bench/results/settle.csv (one row per run and phase), settle.md (medians and ranges
per phase, the worst phase, the commands), settle_samples.csv (the median ACE run's samples
and counts, for the plot) and settle.png (gnuplot: the hot class's count and the throughput
over time for that run, with fixed counts' throughput for comparison).

usage: settle.py [--rounds N] [--threads T] [--phase-ms MS] [--interval-ms MS] [--results DIR]
"""
import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "bench")
HAKMEM_SO = os.path.join(ROOT, "build", "libhakmem.so")


def class_of(size):
    """hakmem's size class index (shared_contracts/size_classes.h: 16..128 step 16, then four
    classes per power of two up to 32 KiB)."""
    if size <= 128:
        return max(0, (size + 15) // 16 - 1)
    c, lo = 8, 128
    while True:
        step = lo // 4
        for k in range(4):
            if size <= lo + step * (k + 1):
                return c + k
        c, lo = c + 4, lo * 2


def parse_run(text):
    head, phases, samples = {}, [], []
    for line in text.splitlines():
        kv = dict(t.split("=", 1) for t in line.split() if "=" in t)
        if line.startswith("ops_per_sec="):
            head = kv
        elif line.startswith("phase "):
            phases.append({k: float(v) for k, v in kv.items()})
        elif line.startswith("sample "):
            samples.append((float(kv["ms"]), float(kv["ops_per_sec"])))
    return head, phases, samples


def read_log(path):
    rows = []
    try:
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                try:
                    rows.append((float(r["ms"]), int(r["class"]), int(r["old_count"]),
                                 int(r["new_count"]), r["reason"]))
                except (KeyError, ValueError):
                    continue
    except OSError:
        pass
    return rows


def settle_phase(ph, samples, log, offset_ms):
    """(count_ms, tput_ms, steady, count_changes) for one phase."""
    s, e = ph["start_ms"], ph["end_ms"]
    cls = class_of(int(ph["size"]))
    changes = [r for r in log if r[1] == cls and s <= r[0] - offset_ms < e]
    count_ms = (changes[-1][0] - offset_ms - s) if changes else 0.0
    inside = [(t, v) for t, v in samples if s < t <= e]
    second = [v for t, v in inside if t > (s + e) / 2]
    steady = statistics.median(second) if second else 0.0
    tput_ms = e - s
    for i in range(len(inside) - 2):
        if sum(v for _, v in inside[i:i + 3]) / 3 >= 0.95 * steady:
            tput_ms = inside[i][0] - s
            break
    return count_ms, tput_ms, steady, len(changes)


def run_once(args, ace, tmp, k):
    env = dict(os.environ)
    env["LD_PRELOAD"] = args.so
    env["POOL_ACE"] = "1" if ace else "0"
    env["POOL_ACE_INTERVAL_MS"] = str(args.interval_ms)
    log = os.path.join(tmp, "ace.%d.csv" % k)
    if ace:
        env["POOL_ACE_LOG"] = log
    cmd = [os.path.join(BIN, "settle"), "-t", str(args.threads), "-x",
           "phase_ms=%d" % args.phase_ms]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise SystemExit("settle failed (%d): %s" % (r.returncode, r.stderr[-500:]))
    head, phases, samples = parse_run(r.stdout)
    return head, phases, samples, (read_log(log) if ace else [])


def fmt_range(v):
    return "%.0f (%.0f-%.0f)" % (statistics.median(v), min(v), max(v))


def plot(results, pick, png, tmp):
    if not shutil.which("gnuplot"):
        print("settle: gnuplot not installed: no PNG")
        return
    head, phases, samples, log, fixed_samples = pick
    offset = float(head.get("main_to_t0_ms", 0))
    data = os.path.join(tmp, "samples.dat")
    with open(data, "w") as f:
        for (t, v), (_, fv) in zip(samples, fixed_samples):
            f.write("%.0f %.4f %.4f\n" % (t, v / 1e6, fv / 1e6))
    counts = os.path.join(tmp, "counts.dat")
    end = phases[-1]["end_ms"] if phases else 0
    with open(counts, "w") as f:
        for ph in phases:
            cls = class_of(int(ph["size"]))
            rows = [r for r in log if r[1] == cls]
            # the count of this phase's hot class over the phase: start from the last change
            # before the phase (or its first old count), then each change inside it
            before = [r for r in rows if r[0] - offset < ph["start_ms"]]
            inside = [r for r in rows if ph["start_ms"] <= r[0] - offset < ph["end_ms"]]
            c0 = before[-1][3] if before else (inside[0][2] if inside else None)
            if c0 is None:
                continue
            f.write("%.0f %d\n" % (ph["start_ms"], c0))
            c = c0
            for r in inside:
                f.write("%.0f %d\n%.0f %d\n" % (r[0] - offset, c, r[0] - offset, r[3]))
                c = r[3]
            f.write("%.0f %d\n\n" % (ph["end_ms"], c))
    arrows = "".join("set arrow from %.0f, graph 0 to %.0f, graph 1 nohead lc rgb '#bbbbbb'\n"
                     % (ph["start_ms"], ph["start_ms"]) for ph in phases[1:])
    labels = "".join("set label '%s' at %.0f, graph 0.95 font ',8'\n" % (
        ("%d B x%d" % (ph["size"], ph["depth"])), ph["start_ms"] + 20, ) for ph in phases)
    script = """set terminal pngcairo size 1000,620
set output '%s'
set multiplot layout 2,1 title 'settle: ACE after each phase change (interval %d ms)'
set xrange [0:%.0f]
%s%s
set ylabel "hot class count"
set logscale y 2
set key top right
plot '%s' using 1:2 with lines lw 2 title 'ACE: count of the hot class of each phase'
unset logscale y
unset label
set ylabel "M ops/s (10 ms samples)"
set xlabel "ms since the threads started"
plot '%s' using 1:2 with lines title 'ACE', '' using 1:3 with lines title 'fixed counts'
unset multiplot
""" % (png, results["interval_ms"], end, arrows, labels, counts, data)
    gp = os.path.join(tmp, "settle.gp")
    with open(gp, "w") as f:
        f.write(script)
    r = subprocess.run(["gnuplot", gp], capture_output=True, text=True)
    if r.returncode:
        print("settle: gnuplot failed: " + r.stderr[-500:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--phase-ms", type=int, default=1000)
    ap.add_argument("--interval-ms", type=int, default=100)
    ap.add_argument("--results", default=os.environ.get("BENCH_RESULTS") or
                    os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--so", default=HAKMEM_SO)
    args = ap.parse_args()
    if not os.access(os.path.join(BIN, "settle"), os.X_OK):
        raise SystemExit("build/bench/settle is missing: run `make bench-progs`")
    os.makedirs(args.results, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="hakmem-settle.")
    snap = os.path.join(tmp, "libhakmem.so")
    shutil.copy2(args.so, snap)
    args.so = snap
    runs = []
    for k in range(args.rounds):
        ace = run_once(args, True, tmp, k)
        fixed = run_once(args, False, tmp, k)
        runs.append((ace, fixed))
        print("round %d: ACE %.3g ops/s, fixed %.3g ops/s" % (
            k + 1, float(ace[0]["ops_per_sec"]), float(fixed[0]["ops_per_sec"])), flush=True)

    rows = []
    per_phase = {}
    for k, ((head, phases, samples, log), (fhead, fphases, fsamples, _)) in enumerate(runs):
        offset = float(head.get("main_to_t0_ms", 0))
        for ph, fph in zip(phases, fphases):
            count_ms, tput_ms, steady, nchg = settle_phase(ph, samples, log, offset)
            _, ftput_ms, fsteady, _ = settle_phase(fph, fsamples, [], 0)
            settled = max(count_ms, tput_ms)
            i = int(ph["i"])
            rows.append({"round": k + 1, "phase": i, "size": int(ph["size"]),
                         "depth": int(ph["depth"]), "class": class_of(int(ph["size"])),
                         "count_changes": nchg, "count_ms": "%.0f" % count_ms,
                         "tput_ms": "%.0f" % tput_ms, "settled_ms": "%.0f" % settled,
                         "steady_mops": "%.2f" % (steady / 1e6),
                         "fixed_tput_ms": "%.0f" % ftput_ms,
                         "fixed_steady_mops": "%.2f" % (fsteady / 1e6)})
            per_phase.setdefault(i, []).append((settled, count_ms, tput_ms, steady, fsteady,
                                                ph))
    with open(os.path.join(args.results, "settle.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)

    md = ["Settling of ACE after each phase change: `build/bench/settle -t %d -x phase_ms=%d`, "
          "%d rounds, ACE (`POOL_ACE=1 POOL_ACE_INTERVAL_MS=%d`) and fixed counts alternating; "
          "medians (min-max) over the rounds, in ms from the phase change." % (
              args.threads, args.phase_ms, args.rounds, args.interval_ms), "",
          "| phase | hot size x depth | class | count settled | throughput at 95% | settled | "
          "ACE steady M ops/s | fixed steady M ops/s | ACE / fixed |",
          "|---|---|---|---|---|---|---|---|---|"]
    worst = []
    for i in sorted(per_phase):
        v = per_phase[i]
        ph = v[0][5]
        med_settled = statistics.median(x[0] for x in v)
        worst.append((med_settled, i))
        ace_s = statistics.median(x[3] for x in v) / 1e6
        fix_s = statistics.median(x[4] for x in v) / 1e6
        md.append("| %d | %d B x %d | %d | %s | %s | %s | %.1f | %.1f | %.2fx |" % (
            i, ph["size"], ph["depth"], class_of(int(ph["size"])),
            fmt_range([x[1] for x in v]), fmt_range([x[2] for x in v]),
            fmt_range([x[0] for x in v]), ace_s, fix_s, ace_s / fix_s if fix_s else 0))
    wm, wi = max(worst)
    md += ["", "Worst phase: %d, settled in %.0f ms (median of %d rounds)." % (
        wi, wm, args.rounds)]
    with open(os.path.join(args.results, "settle.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))

    # the plot: the ACE run whose total throughput is the median, with its fixed partner
    order = sorted(range(len(runs)), key=lambda k: float(runs[k][0][0]["ops_per_sec"]))
    k = order[len(order) // 2]
    (head, phases, samples, log), (_, _, fsamples, _) = runs[k]
    with open(os.path.join(args.results, "settle_samples.csv"), "w") as f:
        f.write("ms,ace_ops_per_sec,fixed_ops_per_sec\n")
        for (t, v), (_, fv) in zip(samples, fsamples):
            f.write("%.0f,%.0f,%.0f\n" % (t, v, fv))
    with open(os.path.join(args.results, "settle_acelog.csv"), "w") as f:
        f.write("ms,class,old_count,new_count,reason\n")
        for r in log:
            f.write("%.0f,%d,%d,%d,%s\n" % r)
    plot({"interval_ms": args.interval_ms}, (head, phases, samples, log, fsamples),
         os.path.join(args.results, "settle.png"), tmp)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
