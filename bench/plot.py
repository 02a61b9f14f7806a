#!/usr/bin/env python3
"""bench/plot.py - PNG plots of the benchmark results with gnuplot (python3 stdlib only).

usage:
  plot.py --latest            bench/results/latest.csv -> ratio_glibc.png, peak_rss.png,
                              and ace_<workload>.png for each bench/results/ace/<workload>.csv
  plot.py --sweep             bench/results/sweep.csv  -> sweep.png
  plot.py --ace LOG.csv OUT.png
                              one POOL_ACE_LOG file -> refill count (and refills/s) per class

The ACE log (written by hakmem when POOL_ACE_LOG=path) is a CSV with the columns
  ms since start, class, old count, new count, reason, refills/s, spills/s, drops
A header line, comment lines (#) and malformed lines are skipped; a missing or empty log only
prints a note. gnuplot missing: a note, exit 0 (plots are optional).
"""
import csv
import math
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.environ.get("BENCH_RESULTS") or os.path.join(ROOT, "bench", "results")
ORDER = ["hakmem-fixed", "hakmem-ace", "glibc", "jemalloc", "mimalloc", "tcmalloc"]


def gnuplot(script, workdir):
    if not shutil.which("gnuplot"):
        print("plot: gnuplot not installed (make deps-bench): no PNGs written")
        return False
    path = os.path.join(workdir, "plot.gp")
    with open(path, "w") as f:
        f.write(script)
    r = subprocess.run(["gnuplot", path], capture_output=True, text=True)
    if r.returncode != 0:
        print("plot: gnuplot failed:\n" + r.stderr[-2000:])
        return False
    return True


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def num(x):
    try:
        v = float(x)
        return v if math.isfinite(v) else None
    except (TypeError, ValueError):
        return None


def pivot(rows, key):
    """(workloads, allocators, {(w, a): value}) in first-seen order, allocators in ORDER."""
    ws, als, vals = [], [], {}
    for r in rows:
        w, a = r["workload"], r["allocator"]
        if w not in ws:
            ws.append(w)
        if a not in als:
            als.append(a)
        vals[(w, a)] = num(r.get(key))
    als.sort(key=lambda a: (ORDER.index(a) if a in ORDER else len(ORDER), a))
    return ws, als, vals


def floor_pow2(vals, cap):
    """A log-axis floor: the power of two at or below the smallest value, at most cap."""
    lo = min(vals + [cap])
    return 2.0 ** math.floor(math.log2(lo * 0.9))


def write_pivot(path, ws, als, vals, scale=1.0):
    with open(path, "w") as f:
        f.write("workload " + " ".join(als) + "\n")
        for w in ws:
            cells = []
            for a in als:
                v = vals.get((w, a))
                cells.append("?" if v is None else "%.6g" % (v * scale))
            f.write("%s %s\n" % (w, " ".join(cells)))


HIST = """set terminal pngcairo size 1280,640 font 'sans,10'
set termoption noenhanced
set output '{out}'
set title '{title}'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set datafile missing '?'
set key outside right top
set grid ytics
set xtics nomirror
set ylabel '{ylabel}'
{extra}
plot for [i=2:{ncol}] '{dat}' using i:xtic(1) title columnheader(i)
"""


def plot_latest(tmp):
    path = os.path.join(RESULTS, "latest.csv")
    if not os.path.exists(path):
        print("plot: %s missing: run make bench first" % path)
        return
    rows = read_csv(path)
    ws, als, ratio = pivot(rows, "ratio_glibc")
    if "glibc" in als and any(v for v in ratio.values()):
        dat = os.path.join(tmp, "ratio.dat")
        write_pivot(dat, ws, als, ratio)
        out = os.path.join(RESULTS, "ratio_glibc.png")
        if gnuplot(HIST.format(out=out, title="Throughput relative to glibc (median ops/s "
                                              "ratio, higher is better; log scale)",
                               ylabel="x glibc", ncol=len(als) + 1, dat=dat,
                               extra="set logscale y 2\nset yrange [%g:*]\n" % floor_pow2(
                                   [v for v in ratio.values() if v], 0.5) +
                                     "set arrow from graph 0, first 1 to graph 1, first 1 "
                                     "nohead lc rgb 'black' lw 2 front"),
                   tmp):
            print("plot: wrote %s" % os.path.relpath(out, ROOT))
    else:
        print("plot: no glibc rows in latest.csv: ratio plot skipped")
    ws, als, rss = pivot(rows, "peak_rss_kb")
    dat = os.path.join(tmp, "rss.dat")
    write_pivot(dat, ws, als, rss, scale=1.0 / 1024)
    out = os.path.join(RESULTS, "peak_rss.png")
    if gnuplot(HIST.format(out=out, title="Peak RSS per workload (median, MB; log scale; lower "
                                          "is better)",
                           ylabel="MB", ncol=len(als) + 1, dat=dat,
                           extra="set logscale y 2\nset yrange [%g:*]" % floor_pow2(
                               [v / 1024 for v in rss.values() if v], 0.5)), tmp):
        print("plot: wrote %s" % os.path.relpath(out, ROOT))
    acedir = os.path.join(RESULTS, "ace")
    for name in os.listdir(RESULTS):  # drop plots whose log is gone (an older run's)
        if name.startswith("ace_") and name.endswith(".png") and not os.path.exists(
                os.path.join(acedir, name[4:-4] + ".csv")):
            os.remove(os.path.join(RESULTS, name))
    if os.path.isdir(acedir):
        for name in sorted(os.listdir(acedir)):
            if name.endswith(".csv"):
                plot_ace(os.path.join(acedir, name),
                         os.path.join(RESULTS, "ace_%s.png" % name[:-4]), tmp)
    else:
        print("plot: no ACE logs (bench/results/ace/ absent): ACE plots skipped")


def class_sizes():
    """Class index -> block size, read from shared_contracts/size_classes.h (empty if absent)."""
    import re
    try:
        text = open(os.path.join(ROOT, "shared_contracts", "size_classes.h")).read()
    except OSError:
        return {}
    m = re.search(r"#define HAK_CLASS_LIST\(X\)(.*?)\n\n", text, re.S)
    if not m:
        return {}
    return {str(i): int(s) for i, s in enumerate(re.findall(r"X\((\d+),", m.group(1)))}


def read_ace_log(path):
    """{class: [(seconds, new_count, refills_per_s), ...]} from a POOL_ACE_LOG CSV."""
    series = {}
    with open(path, newline="") as f:
        for rec in csv.reader(f):
            if len(rec) < 4 or rec[0].lstrip().startswith("#"):
                continue
            ms, new = num(rec[0]), num(rec[3])
            if ms is None or new is None:
                continue  # header or malformed line
            cls = rec[1].strip()
            refills = num(rec[5]) if len(rec) > 5 else None
            if cls not in series and num(rec[2]) is not None:
                series[cls] = [(0.0, num(rec[2]), None)]  # the count before the first change
            series.setdefault(cls, []).append((ms / 1000.0, new, refills))
    # extend every step line to the last decision in the log (the count holds until then)
    end = max((pts[-1][0] for pts in series.values()), default=0.0)
    for pts in series.values():
        if pts[-1][0] < end:
            pts.append((end, pts[-1][1], None))
    return series


def plot_ace(log, out, tmp):
    if not os.path.exists(log):
        print("plot: ACE log %s absent: ACE plot skipped" % log)
        return
    series = read_ace_log(log)
    if not series:
        print("plot: ACE log %s has no decisions: ACE plot skipped" % log)
        if os.path.exists(out):
            os.remove(out)  # a plot from an older run would be misleading
        return
    # most active classes first; at most 12 lines stay readable
    classes = sorted(series, key=lambda c: -len(series[c]))[:12]
    classes.sort(key=lambda c: (num(c) if num(c) is not None else 1e18, c))
    dat = os.path.join(tmp, "ace.dat")
    with open(dat, "w") as f:
        for c in classes:
            f.write("# class %s\n" % c)
            for t, new, refills in series[c]:
                f.write("%.3f %g %s\n" % (t, new, "?" if refills is None else "%g" % refills))
            f.write("\n\n")
    n = len(classes)
    sizes = class_sizes()
    labels = ["%s (%s B)" % (c, sizes[c]) if c in sizes else c for c in classes]
    script = """set terminal pngcairo size 1280,800 font 'sans,10'
set termoption noenhanced
set output '{out}'
set datafile missing '?'
set multiplot layout 2,1 title 'ACE decisions: {name}'
array T[{n}] = [{tl}]
set key outside right top
set grid
set ylabel 'refill count'
set logscale y 2
plot for [i=0:{last}] '{dat}' index i using 1:2 with steps lw 2 lc i%8+1 dt i/8+1 title 'class '.T[i+1]
unset logscale y
set ylabel 'refills/s'
set xlabel 'seconds since start'
plot for [i=0:{last}] '{dat}' index i using 1:3 with linespoints lc i%8+1 dt i/8+1 pt 7 ps 0.5 title 'class '.T[i+1]
unset multiplot
""".format(out=out, name=os.path.basename(log), n=n, tl=",".join(
        '"%s"' % c for c in labels), last=n - 1, dat=dat)
    if gnuplot(script, tmp):
        print("plot: wrote %s" % os.path.relpath(out, ROOT))


def plot_sweep(tmp):
    path = os.path.join(RESULTS, "sweep.csv")
    if not os.path.exists(path):
        print("plot: %s missing: run make bench-sweep first" % path)
        return
    rows = [r for r in read_csv(path) if r.get("refill_count")]
    ws = []
    for r in rows:
        if r["workload"] not in ws:
            ws.append(r["workload"])
    dat = os.path.join(tmp, "sweep.dat")
    with open(dat, "w") as f:
        for w in ws:
            pts = [(int(r["refill_count"]), num(r.get("ops_per_sec")),
                    num(r.get("ops_per_cpu_sec"))) for r in rows if r["workload"] == w]
            best = max((v for _, v, _ in pts if v), default=None)
            best_cpu = max((v for _, _, v in pts if v), default=None)
            f.write("# %s\n" % w)
            for c, v, vc in sorted(pts):
                f.write("%d %s %s\n" % (c, "?" if not v or not best else "%.4f" % (v / best),
                                        "?" if not vc or not best_cpu else
                                        "%.4f" % (vc / best_cpu)))
            f.write("\n\n")
    script = """set terminal pngcairo size 1400,560 font 'sans,10'
set termoption noenhanced
set output '{out}'
set datafile missing '?'
set multiplot layout 1,2 title 'hakmem-fixed vs POOL_REFILL_COUNT (1.0 = the workload''s best count; medians)'
set logscale x 2
set xlabel 'POOL_REFILL_COUNT'
set key bottom right
set grid
array W[{n}] = [{wl}]
set title 'ops/s'
plot for [i=0:{last}] '{dat}' index i using 1:2 with linespoints lw 2 pt 7 lc i%8+1 dt i/8+1 title W[i+1]
set title 'ops per CPU-second'
plot for [i=0:{last}] '{dat}' index i using 1:3 with linespoints lw 2 pt 7 lc i%8+1 dt i/8+1 title W[i+1]
unset multiplot
""".format(out=os.path.join(RESULTS, "sweep.png"), n=len(ws),
           wl=",".join('"%s"' % w for w in ws), last=len(ws) - 1, dat=dat)
    if ws and gnuplot(script, tmp):
        print("plot: wrote bench/results/sweep.png")


def main():
    tmp = tempfile.mkdtemp(prefix="hakmem-plot.")
    try:
        args = sys.argv[1:]
        if args[:1] == ["--ace"] and len(args) == 3:
            plot_ace(args[1], args[2], tmp)
        elif args == ["--sweep"]:
            plot_sweep(tmp)
        elif args in ([], ["--latest"]):
            plot_latest(tmp)
        else:
            print(__doc__)
            return 2
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
