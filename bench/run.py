#!/usr/bin/env python3
"""bench/run.py - hakmem's benchmark harness (python3, standard library only).

Runs every selected workload under every selected allocator, interleaved (round r runs each
workload under allocator A, B, C ... before round r+1 starts), measures each run, and writes:

  bench/results/latest.csv   one row per workload and allocator (medians, spread, ratios, RSS)
  bench/results/runs.csv     one row per run (raw)
  bench/results/latest.md    the table as markdown, with the machine description
  bench/results/machine.txt  CPU, cores, kernel, glibc, peer and tool versions
  bench/results/*.png        plots (bench/plot.py, gnuplot)
  bench/results/failures.txt a reproducer for every failed run (absent when none failed)

With --sweep it runs hakmem-fixed once per POOL_REFILL_COUNT value instead and writes
sweep.csv / sweep.md / sweep.png. Normally started by `make bench`, `make bench-full` or
`make bench-sweep` (see bench/README.md); `python3 bench/run.py -h` lists the options.

Each run: [perf stat -x, -e task-clock,page-faults,context-switches --] build/bench/runwrap
-o FILE -e LD_PRELOAD=... -- build/bench/WORKLOAD -d SECONDS -t THREADS -s SEED. The workload
prints ops_per_sec=...; runwrap reports the process's peak RSS (wait4's ru_maxrss) and
rusage; perf (when permitted) the software events.
"""
import argparse
import csv
import datetime
import hashlib
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "bench")
RESULTS = os.environ.get("BENCH_RESULTS") or os.path.join(ROOT, "bench", "results")
HAKMEM_SO = os.path.join(ROOT, "build", "libhakmem.so")
LIBDIR = "/usr/lib/x86_64-linux-gnu"

# name -> (preload path or None, extra environment, what it is)
ALLOCATORS = {
    "hakmem-fixed": (HAKMEM_SO, {"POOL_ACE": "0"}, "hakmem, fixed refill counts"),
    "hakmem-ace": (HAKMEM_SO, {"POOL_ACE": "1"}, "hakmem with the ACE learner"),
    "glibc": (None, {}, "the system allocator (no preload)"),
    "jemalloc": (LIBDIR + "/libjemalloc.so.2", {}, "jemalloc (libjemalloc2)"),
    "mimalloc": (LIBDIR + "/libmimalloc.so.2.0", {}, "mimalloc (libmimalloc2.0)"),
    "tcmalloc": (LIBDIR + "/libtcmalloc_minimal.so.4", {}, "tcmalloc (libtcmalloc-minimal4)"),
    # Not run unless named in --allocators: hakmem with one sampling feature on, each paired
    # by round against hakmem-fixed in the report (docs/BENCHMARKS.md, "Each sampling
    # feature in make bench").
    "hakmem-prof": (HAKMEM_SO, {"POOL_ACE": "0", "HAKMEM_PROF": "1",
                                "HAKMEM_PROF_FILE": "/dev/null"},
                    "hakmem, fixed counts, the heap profiler on at its default mean"),
    "hakmem-guard": (HAKMEM_SO, {"POOL_ACE": "0", "HAKMEM_GUARD_SAMPLE": "100000"},
                     "hakmem, fixed counts, guarded sampling of one allocation in 100,000"),
}
DEFAULT_ALLOCATORS = ("hakmem-fixed", "hakmem-ace", "glibc", "jemalloc", "mimalloc", "tcmalloc")
# hakmem variants reported against hakmem-fixed, paired by round: name -> column label
VARIANTS = {"hakmem-ace": "ACE", "hakmem-prof": "profiler on", "hakmem-guard": "guarded"}
PEERS = ("jemalloc", "mimalloc", "tcmalloc")

# name -> (program, default seconds, what it models)
WORKLOADS = {
    "mid": ("mid", 1.0, "T threads, random malloc/free of 8-32 KiB over 256 live slots"),
    "tiny": ("tiny", 1.0, "T threads, random malloc/free of 16-1024 B over 256 live slots"),
    "larson": ("larson", 1.0, "server: threads hand a share of their blocks to the next thread"),
    "prodcons": ("prodcons", 1.0, "producers malloc, consumers free (SPSC rings)"),
    "xfree": ("xfree", 1.0, "a ring of threads: each burst of 1024 64 B blocks is freed by the "
              "next thread"),
    "xmix": ("xmix", 1.0, "threads malloc 16 B-4 KiB (mostly small) and push each block into "
             "another thread's bounded MPMC inbox, which frees it; 25% local traffic",
             ["-x", "mode=queue"]),
    "xmixr": ("xmix", 1.0, "the same sizes, each block swapped into a random slot shared by "
              "all threads, the block taken out freed", ["-x", "mode=random"]),
    "phase": ("phase", 2.4, "8 phases, each with its own hot size and burst depth"),
    "phase1t": ("phase", 2.4, "one thread, 8 deeper phases (4096 x 48 B ... 8192 x 256 B ... 2 x 32 KiB)",
                ["-t", "1", "-x", "schedule=1"]),
    "churn": ("churn", 1.0, "thousands of short-lived threads, 1000 ops each"),
    "realloc": ("realloc", 1.0, "string-builder realloc growth from 16 B to 1 MiB"),
    "containers": ("containers", 1.0, "C++: per thread and round, a 20,000-entry std::map and "
                   "std::unordered_map built and torn down, string and vector growth"),
    "sqlite": (None, None, "sqlite3 CLI: bulk insert in one transaction, index, aggregates"),
    "bigbuf": ("bigbuf", 2.0, "per thread 4 live buffers of 5-25 MiB, each written whole"),
    "largewin": ("largewin", 1.0, "64 live blocks of 64 KiB-1 MiB, one byte written per page"),
    "smallheap": ("smallheap", 1.0, "a few MB live over 38 classes (600 slots, 1 thread)",
                  ["-t", "1"]),
    "smallheap2": ("smallheap", 1.0, "a small 2-thread program: 64 slots each over 28 classes",
                   ["-t", "2", "-x", "slots=64", "-x", "classes=28"]),
    "locality": ("locality", 1.0, "pages touched per 64 mallocs after N blocks were freed in "
                 "random order (48 B, 256 B, 1 KiB; 1 thread)", ["-t", "1"]),
    "burst256": ("burstexit", 1.0, "256 threads burst 512 deep in 4 classes and exit; "
                 "rss_after = RSS 2 s later", ["-x", "threads=256"]),
    "burst64": ("burstexit", 1.0, "the same with 64 threads", ["-x", "threads=64"]),
    "cpython": (None, None, "python3 with PYTHONMALLOC=malloc: 60,000 small objects dumped to "
                "JSON, loaded, sorted and indexed, 6 rounds (bench/cpython_json.py)"),
    "lua": (None, None, "lua5.4: 5,000 records of strings and tables serialized to JSON-like "
            "text, parsed back, sorted, indexed and formatted, 3 rounds (bench/lua_tables.lua)"),
    "redis": (None, None, "redis-server on loopback: 60,000 fixed mixed commands through "
              "redis-cli --pipe, then redis-benchmark SET/GET/INCR/LPUSH/LPOP/SADD/HSET/ZADD "
              "with 16, 256 and 2048 B values, LRANGE_100"),
    "gcc": (None, None, "g++ -std=c++17 -O2 -c of a template-heavy C++ file "
            "(bench/gcc_templates.cc): cc1plus and as under the allocator"),
}
# Workloads whose result line reports rss_after_kb (memory a while after the work ended).
RSS_AFTER = ("burst256", "burst64")
# Workloads whose result line reports the locality probe: distinct 4 KiB pages per 64
# consecutive mallocs after random frees, at 48 B, 256 B and 1 KiB (lower is better).
PAGES = ("locality",)
PAGES_FIELDS = ("pages48", "pages256", "pages1k")
# The CPython workload: Debian's python3 where it exists (the shell's python3 may be a wrapper
# script, which would run under the preloaded allocator too), else the harness's own.
PYTHON3 = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
CPYTHON_SCRIPT = os.path.join(ROOT, "bench", "cpython_json.py")
# Real programs run by bench/realprog.py, which preloads the allocator (BENCH_PRELOAD) into
# the program alone, not into itself or redis's clients, and reports the program's rusage;
# name -> the commands it needs. Each run's check must match a run under glibc.
REALPROG = {"lua": ("lua5.4",), "redis": ("redis-server", "redis-cli", "redis-benchmark"),
            "gcc": ("g++",)}
REALPROG_SCRIPT = os.path.join(ROOT, "bench", "realprog.py")
SINGLE_THREADED = ("sqlite", "cpython", "lua", "redis", "gcc")

PERF_EVENTS = "task-clock,page-faults,context-switches"
SUMMARY_FIELDS = ["workload", "allocator", "ops_per_sec", "peak_rss_kb", "min_ops_per_sec",
                  "max_ops_per_sec", "spread_pct", "runs", "failed", "ratio_glibc",
                  "ratio_best_peer", "best_peer", "seconds", "task_clock_ms", "page_faults",
                  "ctx_switches", "ops_per_cpu_sec", "cpu_util", "refill_count",
                  "pages48", "pages256", "pages1k"]
RUN_FIELDS = ["round", "workload", "allocator", "status", "ops_per_sec", "ops_per_cpu_sec",
              "cpu_util",
              "seconds",
              "peak_rss_kb", "task_clock_ms", "page_faults", "ctx_switches", "utime_s",
              "stime_s", "minflt", "nvcsw", "nivcsw", "wall_s", "detail"]


def log(msg):
    print(msg, flush=True)


def sh(cmd):
    """Output of a shell command, or '' when it fails."""
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except Exception:
        return ""


# ---------------------------------------------------------------- machine and allocators

def machine_info():
    info = {}
    cpu = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if ":" in line:
                    k, v = (x.strip() for x in line.split(":", 1))
                    cpu.setdefault(k, v)
    except OSError:
        pass
    desc = cpu.get("model name") or platform.processor()
    if cpu.get("cpu MHz"):
        desc += ", %.0f MHz" % float(cpu["cpu MHz"])
    if cpu.get("cache size"):
        desc += ", %s cache" % cpu["cache size"]
    if "hypervisor" in cpu.get("flags", "").split():
        desc += ", virtual machine"
    info["cpu"] = desc
    info["cores"] = str(os.cpu_count())
    info["kernel"] = platform.release()
    info["os"] = sh(". /etc/os-release && echo \"$PRETTY_NAME\"")
    info["glibc"] = sh("getconf GNU_LIBC_VERSION")
    info["gcc"] = sh("gcc -dumpfullversion")
    for pkg in ("libjemalloc2", "libmimalloc2.0", "libtcmalloc-minimal4", "sqlite3",
                "valgrind", "linux-perf", "gnuplot-nox"):
        info[pkg] = sh("dpkg-query -W -f='${Version}' %s 2>/dev/null" % pkg) or "absent"
    try:
        with open("/proc/meminfo") as f:
            info["memory"] = f.readline().split(":", 1)[1].strip()
    except OSError:
        pass
    if os.path.exists(HAKMEM_SO):
        h = hashlib.sha256(open(HAKMEM_SO, "rb").read()).hexdigest()[:16]
        mt = datetime.datetime.fromtimestamp(os.path.getmtime(HAKMEM_SO))
        info["libhakmem.so"] = "sha256 %s, built %s" % (h, mt.strftime("%Y-%m-%d %H:%M"))
    else:
        info["libhakmem.so"] = "absent"
    env = " ".join("%s=%s" % (k, v) for k, v in sorted(os.environ.items())
                   if k.startswith(("POOL_", "HAKMEM_")))
    info["hakmem env"] = env or "(none set)"
    info["date"] = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    info["load average at start"] = loadavg()
    return info


def loadavg():
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


def allocator_problem(name):
    """None when the allocator can run, else why not."""
    preload = ALLOCATORS[name][0]
    if preload is None:
        return None
    if not os.path.exists(preload):
        if preload == HAKMEM_SO:
            return "build/libhakmem.so is missing (make lib)"
        return "%s is missing (make deps-bench)" % preload
    if preload.endswith("libhakmem.so") and shutil.which("nm"):
        syms = sh("nm -D --defined-only '%s'" % preload)
        if not re.search(r"\bT malloc$", syms, re.M):
            return "build/libhakmem.so does not define malloc yet"
    return None


def snapshot_hakmem(tmpdir):
    """Preload a private copy of build/libhakmem.so, so that a rebuild during the run (the
    allocator is developed in the same tree) cannot mix two builds in one table."""
    if not os.path.exists(HAKMEM_SO):
        return
    snap = os.path.join(tmpdir, "libhakmem.so")
    shutil.copy2(HAKMEM_SO, snap)
    for name, (preload, extra, what) in list(ALLOCATORS.items()):
        if preload == HAKMEM_SO:
            ALLOCATORS[name] = (snap, extra, what)


def preflight(name):
    """None when a short single-threaded run under the allocator works, else its error."""
    preload, extra, _ = ALLOCATORS[name]
    if preload is None:
        return None
    env = dict(os.environ)
    env.update(extra)
    env["LD_PRELOAD"] = preload
    try:
        r = subprocess.run([os.path.join(BIN, "tiny"), "-n", "1000", "-t", "1"], env=env,
                           capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "a 1000-op tiny run under it hung for 30 s"
    if r.returncode == 0 and "ops_per_sec=" in r.stdout:
        return None
    why = "exit code %d" % r.returncode if r.returncode >= 0 else \
        "killed by %s" % SIGNAMES.get(-r.returncode, "signal %d" % -r.returncode)
    first = (r.stderr.strip().splitlines() or [""])[0][:200]
    return "a 1000-op tiny run under it failed (%s%s)" % (why, ": " + first if first else "")


def perf_check():
    """(usable, note)."""
    if not shutil.which("perf"):
        return False, "perf not installed: software events skipped"
    r = subprocess.run(["perf", "stat", "-x,", "-o", "/dev/null", "-e", PERF_EVENTS, "true"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return False, "perf stat not permitted here (%s): software events skipped" % (
            (r.stderr.strip().splitlines() or ["?"])[-1])
    r = subprocess.run(["perf", "stat", "-x,", "-e", "instructions", "true"],
                       capture_output=True, text=True)
    hw = "instructions" in r.stderr and "<not supported>" not in r.stderr and r.returncode == 0
    return True, ("perf: software events and hardware counters" if hw else
                  "perf: software events only (no hardware counters on this machine)")


# ---------------------------------------------------------------- one run

def parse_kv(line):
    out = {}
    for tok in line.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            out[k] = v
    return out


def parse_perf(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(",")
                if len(parts) < 3 or line.startswith("#"):
                    continue
                ev = parts[2].split(":")[0]
                try:
                    val = float(parts[0])
                except ValueError:
                    continue
                if ev == "task-clock":
                    out["task_clock_ms"] = val
                elif ev == "page-faults":
                    out["page_faults"] = val
                elif ev == "context-switches":
                    out["ctx_switches"] = val
    except OSError:
        pass
    return out


SIGNAMES = {getattr(signal, n): n for n in dir(signal)
            if n.startswith("SIG") and not n.startswith("SIG_")}


class Runner:
    def __init__(self, args, tmpdir):
        self.args = args
        self.tmp = tmpdir
        self.perf, self.perf_note = (False, "perf disabled (PERF=0)") if not args.perf \
            else perf_check()
        self.n = 0
        self.sqlite_sql = None
        self.sqlite_ref = None
        self.cpython_ref = None
        self.realprog_ref = {}
        self.failures = []

    def sqlite_setup(self):
        rows = self.args.sqlite_rows
        path = os.path.join(BIN, "sqlite_insert_%d.sql" % rows)
        gen = os.path.join(ROOT, "bench", "gen_sqlite.py")
        if not os.path.exists(path) or os.path.getmtime(path) < os.path.getmtime(gen):
            log("generating %s (%d rows)" % (os.path.relpath(path, ROOT), rows))
            subprocess.run([sys.executable, gen, path + ".tmp", str(rows)], check=True)
            os.replace(path + ".tmp", path)
        self.sqlite_sql = path
        # Reference output under the system allocator: every timed run must print the same.
        with open(path) as f:
            r = subprocess.run(["sqlite3", ":memory:"], stdin=f, capture_output=True)
        if r.returncode != 0:
            raise SystemExit("sqlite3 failed on the generated script: %s" % r.stderr[-500:])
        self.sqlite_ref = hashlib.sha256(r.stdout).hexdigest()

    def cpython_setup(self):
        """The checksum every timed CPython run must print (under the system allocator)."""
        env = dict(os.environ, PYTHONMALLOC="malloc")
        env.pop("LD_PRELOAD", None)
        r = subprocess.run([PYTHON3, CPYTHON_SCRIPT], env=env, capture_output=True, text=True,
                           timeout=300)
        kv = parse_kv(r.stdout)
        if r.returncode != 0 or "check" not in kv:
            raise SystemExit("%s %s failed: %s" % (PYTHON3, CPYTHON_SCRIPT, r.stderr[-500:]))
        self.cpython_ref = kv["check"]

    def realprog_setup(self, workload):
        """The check every timed run of a real program must print (under the system
        allocator: bench/realprog.py with no BENCH_PRELOAD)."""
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        env.pop("BENCH_PRELOAD", None)
        r = subprocess.run([PYTHON3, REALPROG_SCRIPT, workload], env=env, capture_output=True,
                           text=True, timeout=300)
        kv = parse_kv(r.stdout)
        if r.returncode != 0 or "check" not in kv:
            raise SystemExit("bench/realprog.py %s failed under glibc: %s" % (
                workload, r.stderr[-500:]))
        self.realprog_ref[workload] = kv["check"]

    def command(self, workload, seconds):
        if workload in REALPROG:
            return [PYTHON3, REALPROG_SCRIPT, workload]
        prog, default_s = WORKLOADS[workload][:2]
        extra = WORKLOADS[workload][3] if len(WORKLOADS[workload]) > 3 else []
        if workload == "cpython":
            return [PYTHON3, CPYTHON_SCRIPT]
        if prog is None:
            return ["sqlite3", ":memory:"]
        s = seconds if seconds else default_s
        return [os.path.join(BIN, prog), "-d", "%g" % s, "-t", str(self.args.threads),
                "-s", str(self.args.seed)] + extra

    def env_for(self, alloc, workload, rnd):
        preload, extra, _ = ALLOCATORS[alloc]
        env = dict(extra)
        if preload:
            env["LD_PRELOAD"] = preload
        if preload and workload in REALPROG:
            env["BENCH_PRELOAD"] = env.pop("LD_PRELOAD")  # for the program, not the driver
        if workload == "cpython":
            env["PYTHONMALLOC"] = "malloc"  # every object through the allocator under test
        if env.get("POOL_ACE") == "1" and self.args.ace_log:
            d = os.path.join(RESULTS, "ace")
            os.makedirs(d, exist_ok=True)
            env["POOL_ACE_LOG"] = os.path.join(d, "%s.csv" % workload)
        return env

    def run(self, workload, alloc, rnd):
        self.n += 1
        res = os.path.join(self.tmp, "rw.%d" % self.n)
        perf_out = os.path.join(self.tmp, "perf.%d" % self.n)
        env = self.env_for(alloc, workload, rnd)
        prog = self.command(workload, self.args.duration)
        cmd = []
        if self.perf:
            cmd += ["perf", "stat", "-x,", "-o", perf_out, "-e", PERF_EVENTS, "--"]
        cmd += [os.path.join(BIN, "runwrap"), "-o", res]
        for k, v in env.items():
            cmd += ["-e", "%s=%s" % (k, v)]
        cmd += ["--"] + prog
        stdin = open(self.sqlite_sql, "rb") if workload == "sqlite" else subprocess.DEVNULL
        row = {"round": rnd, "workload": workload, "allocator": alloc, "status": "ok"}
        timed_out = False
        try:
            p = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, start_new_session=True)
            try:
                out, err = p.communicate(timeout=self.args.timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                os.killpg(p.pid, signal.SIGKILL)
                out, err = p.communicate()
        finally:
            if stdin is not subprocess.DEVNULL:
                stdin.close()
        ru = {}
        if os.path.exists(res):
            ru = parse_kv(open(res).read())
        for k_src, k_dst in (("maxrss_kb", "peak_rss_kb"), ("utime_s", "utime_s"),
                             ("stime_s", "stime_s"), ("minflt", "minflt"), ("nvcsw", "nvcsw"),
                             ("nivcsw", "nivcsw"), ("wall_s", "wall_s")):
            if k_src in ru:
                row[k_dst] = float(ru[k_src])
        row.update(parse_perf(perf_out))
        if "task_clock_ms" not in row and "utime_s" in row:
            pass  # perf off: the CSV keeps utime/stime from rusage instead
        text = out.decode(errors="replace")
        status = None
        if timed_out:
            status = "timeout after %ds" % self.args.timeout
        elif not ru:
            status = "no result from runwrap (rc %d)" % p.returncode
        elif ru.get("signal", "0") != "0":
            sig = int(ru["signal"])
            status = "killed by %s" % SIGNAMES.get(sig, "signal %d" % sig)
        elif ru.get("exit", "0") != "0":
            status = "exit code %s" % ru["exit"]
        if workload == "sqlite":
            if status is None:
                if hashlib.sha256(out).hexdigest() != self.sqlite_ref:
                    status = "wrong query output"
                else:
                    row["seconds"] = row.get("wall_s", 0.0)
                    row["ops_per_sec"] = self.args.sqlite_rows / row["seconds"]
                    row["detail"] = "rows=%d seconds=%.3f" % (self.args.sqlite_rows,
                                                               row["seconds"])
        else:
            lines = [l for l in text.splitlines() if l.startswith("ops_per_sec=")]
            if status is None and not lines:
                status = "no ops_per_sec line"
            if lines:
                kv = parse_kv(lines[-1])
                if workload == "cpython" and status is None and kv.get("check") != self.cpython_ref:
                    status = "wrong result (check=%s, expected %s)" % (kv.get("check"),
                                                                      self.cpython_ref)
                if workload in REALPROG:
                    if status is None and kv.get("check") != self.realprog_ref.get(workload):
                        status = "wrong result (check=%s, expected %s)" % (
                            kv.get("check"), self.realprog_ref.get(workload))
                    # the program's own rusage, not the driver's (nor redis's clients')
                    for src, dst in (("prog_rss_kb", "peak_rss_kb"),
                                     ("prog_cpu_ms", "task_clock_ms"),
                                     ("prog_minflt", "page_faults"),
                                     ("prog_ctxsw", "ctx_switches")):
                        if src in kv:
                            row[dst] = float(kv[src])
                row["ops_per_sec"] = float(kv["ops_per_sec"])
                row["seconds"] = float(kv.get("seconds", 0))
                row["detail"] = lines[-1][len("ops_per_sec=") + len(kv["ops_per_sec"]):].strip()
        if status is None and row.get("ops_per_sec"):
            # allocator calls per CPU-second: less sensitive than ops/s to other load on a
            # shared machine (a descheduled process loses wall time, not CPU time)
            ops = self.args.sqlite_rows if workload == "sqlite" else \
                float(parse_kv(row.get("detail", "")).get("ops", 0))
            cpu = row["task_clock_ms"] / 1000.0 if row.get("task_clock_ms") else \
                row.get("utime_s", 0.0) + row.get("stime_s", 0.0)
            if ops and cpu > 0:
                row["ops_per_cpu_sec"] = ops / cpu
            # share of the CPUs the run could use that it got: far below 1 for a CPU-bound
            # workload means other load starved it (see ctx_switches and nivcsw in runs.csv)
            busy_threads = 1 if workload in SINGLE_THREADED else min(self.args.threads,
                                                               os.cpu_count() or 1)
            if cpu > 0 and row.get("wall_s"):
                row["cpu_util"] = cpu / (row["wall_s"] * busy_threads)
        if status:
            row["status"] = status
            row.pop("ops_per_sec", None)
            envs = " ".join("%s=%s" % (k, v.replace(os.path.dirname(ALLOCATORS[alloc][0] or "")
                                                    + "/libhakmem.so", "build/libhakmem.so"))
                            for k, v in env.items())
            repro = "%s %s%s" % (envs, " ".join(os.path.relpath(x, ROOT) if x.startswith(ROOT)
                                                else x for x in prog),
                                 " < %s" % os.path.relpath(self.sqlite_sql, ROOT)
                                 if workload == "sqlite" else "")
            self.failures.append((workload, alloc, rnd, status, repro,
                                  err.decode(errors="replace")[-2000:]))
        return row


# ---------------------------------------------------------------- summaries

def fmt_ops(x):
    if x is None:
        return "-"
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= div:
            return "%.3g%s" % (x / div, suf)
    return "%.3g" % x


def fmt_mb(kb):
    return "-" if kb is None else "%.1f MB" % (kb / 1024.0)


def fmt_ratio(r):
    return "-" if r is None else "%.2fx" % r


def median_of(rows, key):
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def summarize(runs, workloads, allocators):
    summary = []
    for w in workloads:
        per = {}
        for a in allocators:
            rs = [r for r in runs if r["workload"] == w and r["allocator"] == a]
            ok = [r for r in rs if r["status"] == "ok"]
            s = {"workload": w, "allocator": a, "runs": len(ok), "failed": len(rs) - len(ok),
                 "statuses": sorted({r["status"] for r in rs if r["status"] != "ok"})}
            if ok:
                ops = [r["ops_per_sec"] for r in ok]
                s["ops_per_sec"] = statistics.median(ops)
                s["min_ops_per_sec"] = min(ops)
                s["max_ops_per_sec"] = max(ops)
                s["spread_pct"] = 100.0 * (max(ops) - min(ops)) / s["ops_per_sec"]
                for k in ("peak_rss_kb", "seconds", "task_clock_ms", "page_faults",
                          "ctx_switches", "ops_per_cpu_sec", "cpu_util"):
                    s[k] = median_of(ok, k)
                after = [float(parse_kv(r.get("detail", "")).get("rss_after_kb", -1)) for r in ok]
                if w in RSS_AFTER and after and min(after) >= 0:
                    s["rss_after_kb"] = statistics.median(after)
                for k in PAGES_FIELDS if w in PAGES else ():
                    v = [float(parse_kv(r.get("detail", "")).get(k, -1)) for r in ok]
                    if v and min(v) >= 0:
                        s[k] = statistics.median(v)
            per[a] = s
        base = per.get("glibc", {}).get("ops_per_sec")
        peers = [(per[p]["ops_per_sec"], p) for p in PEERS
                 if p in per and per[p].get("ops_per_sec")]
        best = max(peers) if peers else None
        for a, s in per.items():
            v = s.get("ops_per_sec")
            s["ratio_glibc"] = v / base if v and base else None
            if best and v:
                s["ratio_best_peer"] = v / best[0]
                s["best_peer"] = best[1]
            summary.append(s)
    return summary


def write_csv(path, rows, fields):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            out = {}
            for k in fields:
                v = r.get(k)
                if isinstance(v, float):
                    v = ("%.4f" % v) if k.startswith(("ratio", "spread", "seconds", "wall",
                                                       "utime", "stime", "cpu_util", "pages")) \
                        else "%.0f" % v
                out[k] = "" if v is None else v
            w.writerow(out)


def table_lines(summary, markdown):
    head = ["workload", "allocator", "median ops/s", "spread (min-max)", "vs glibc",
            "vs best peer", "peak RSS", "ops/CPU-s", "task-clock ms", "page faults", "ctx sw"]
    rows = []
    for s in summary:
        if s.get("ops_per_sec") is None:
            why = "; ".join(s["statuses"]) or "no run"
            rows.append([s["workload"], s["allocator"], "FAIL", why] + ["-"] * 7)
            continue
        spread = "%s-%s" % (fmt_ops(s["min_ops_per_sec"]), fmt_ops(s["max_ops_per_sec"]))
        if s["failed"]:
            spread += " (%d failed)" % s["failed"]
        bp = "-"
        if s.get("ratio_best_peer") is not None:
            bp = "%s (%s)" % (fmt_ratio(s["ratio_best_peer"]), s["best_peer"])
        rows.append([s["workload"], s["allocator"], fmt_ops(s["ops_per_sec"]), spread,
                     fmt_ratio(s.get("ratio_glibc")), bp, fmt_mb(s.get("peak_rss_kb")),
                     fmt_ops(s.get("ops_per_cpu_sec")),
                     "-" if s.get("task_clock_ms") is None else "%.0f" % s["task_clock_ms"],
                     "-" if s.get("page_faults") is None else "%.0f" % s["page_faults"],
                     "-" if s.get("ctx_switches") is None else "%.0f" % s["ctx_switches"]])
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return out
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    fmt = "  ".join("%%-%ds" % w for w in widths)
    out = [fmt % tuple(head), fmt % tuple("-" * w for w in widths)]
    prev = None
    for r in rows:
        if prev is not None and r[0] != prev:
            out.append("")
        prev = r[0]
        out.append(fmt % tuple(r))
    return out


def pages_lines(summary, markdown):
    """The locality probe's pages per 64 mallocs, one row per workload and allocator (empty
    when no run reported them)."""
    rows = [[s["workload"], s["allocator"]] + ["%.2f" % s[k] for k in PAGES_FIELDS]
            for s in summary if all(s.get(k) is not None for k in PAGES_FIELDS)]
    if not rows:
        return []
    title = ("Locality probe: distinct 4 KiB pages per 64 consecutive mallocs after the blocks "
             "were freed in random order (median; lower is better; packing limit ~1.7 / 4 / 16):")
    head = ["workload", "allocator", "48 B", "256 B", "1 KiB"]
    if markdown:
        return [title, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + \
            ["| " + " | ".join(r) + " |" for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    fmt = "  ".join("%%-%ds" % w for w in widths)
    return [title, fmt % tuple(head)] + [fmt % tuple(r) for r in rows]


def variant_pair_lines(runs, workloads, variant):
    """Markdown: a hakmem variant (VARIANTS) against hakmem-fixed per workload, paired by round
    (the two ran one after the other in each round): median and range of the per-round ratios
    of ops/s, ops per CPU-second and peak RSS. Empty when either allocator is missing."""
    by = {(r["workload"], r["allocator"], r["round"]): r for r in runs if r["status"] == "ok"}
    out = []
    for w in workloads:
        pairs = [(by[(w, variant, k)], by[(w, "hakmem-fixed", k)])
                 for (ww, a, k) in by if ww == w and a == variant
                 and (w, "hakmem-fixed", k) in by]
        if not pairs:
            continue

        def ratio(key):
            v = [a[key] / f[key] for a, f in pairs if a.get(key) and f.get(key)]
            return "%.2fx (%.2f-%.2f)" % (statistics.median(v), min(v), max(v)) if v else "-"
        out.append("| %s | %d | %s | %s | %s |" % (w, len(pairs), ratio("ops_per_sec"),
                                                   ratio("ops_per_cpu_sec"),
                                                   ratio("peak_rss_kb")))
    if not out:
        return []
    label = VARIANTS[variant]
    return ["| workload | pairs | ops/s %s / fixed | ops/CPU-s %s / fixed | peak RSS %s / fixed |"
            % (label, label, label), "|---|---|---|---|---|"] + out


def glance_lines(summary):
    """Markdown: hakmem against glibc and the best peer, one row per workload (empty when no
    hakmem or no glibc row)."""
    by = {(s["workload"], s["allocator"]): s for s in summary}
    ws = []
    for s in summary:
        if s["workload"] not in ws:
            ws.append(s["workload"])
    hk = [a for a in ("hakmem-fixed", "hakmem-ace") if any((w, a) in by for w in ws)]
    if not hk or not any((w, "glibc") in by for w in ws):
        return []
    head = ["workload"]
    for a in hk:
        head += ["%s ops/s" % a, "vs glibc", "vs best peer"]
    head += ["peak RSS: %s / glibc / best peer" % hk[0]]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for w in ws:
        row = [w]
        best = None
        for a in hk:
            s = by.get((w, a), {})
            if s.get("ops_per_sec") is None:
                row += ["FAIL" if s else "-", "-", "-"]
                continue
            best = s.get("best_peer") or best
            row += [fmt_ops(s["ops_per_sec"]), fmt_ratio(s.get("ratio_glibc")),
                    "%s (%s)" % (fmt_ratio(s.get("ratio_best_peer")), s.get("best_peer"))
                    if s.get("ratio_best_peer") else "-"]
        rss = [by.get((w, x), {}).get("peak_rss_kb") for x in (hk[0], "glibc", best)]
        row.append(" / ".join(fmt_mb(v) for v in rss))
        out.append("| " + " | ".join(row) + " |")
    return out


def machine_lines(info):
    return ["- %s: %s" % (k, v) for k, v in info.items()]


# ---------------------------------------------------------------- sweep analysis

def sweep_table(summary, counts, workloads, key):
    """Markdown pivot of `key` (ops_per_sec or ops_per_cpu_sec) and {workload: (best, count)}."""
    by = {(s["workload"], s["allocator"]): s for s in summary}

    def val(w, a):
        return (by.get((w, a)) or {}).get(key)

    def cell(w, a, bold=False):
        s = by.get((w, a)) or {}
        v = s.get(key)
        txt = fmt_ops(v) if v else "FAIL"
        if bold:
            txt = "**%s**" % txt
        if s.get("failed"):
            txt += " (%d failed)" % s["failed"]
        return txt

    head = ["workload"] + ["rc=%d" % c for c in counts] + ["best", "default (fixed)",
                                                         "ACE", "ACE vs best"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    best_of = {}
    for w in workloads:
        good = [(val(w, "hakmem-rc%d" % c), c) for c in counts if val(w, "hakmem-rc%d" % c)]
        if not good:
            lines.append("| %s | " % w + " | ".join("FAIL" for _ in head[1:]) + " |")
            continue
        bv, bc = max(good)
        best_of[w] = (bv, bc)
        ace = val(w, "hakmem-ace")
        lines.append("| %s | %s | %d | %s | %s | %s |" % (
            w, " | ".join(cell(w, "hakmem-rc%d" % c, c == bc) for c in counts), bc,
            cell(w, "hakmem-fixed"), cell(w, "hakmem-ace"), fmt_ratio(ace / bv) if ace else "-"))
    # the single best static count over all workloads: highest geometric mean of (value / best)
    single = []
    for c in counts:
        rs = [val(w, "hakmem-rc%d" % c) / best_of[w][0] for w in best_of
              if val(w, "hakmem-rc%d" % c)]
        if rs and len(rs) == len(best_of):
            single.append((statistics.geometric_mean(rs), c))
    lines.append("")
    if single:
        g, c = max(single)
        lines.append("Best single static count over all workloads: %d (geometric mean %.3f of "
                     "each workload's best)." % (c, g))
        for name in ("hakmem-fixed", "hakmem-ace"):
            rs = [val(w, name) / best_of[w][0] for w in best_of if val(w, name)]
            if rs and len(rs) == len(best_of):
                lines.append("%s: geometric mean %.3f of each workload's best static count."
                             % (name, statistics.geometric_mean(rs)))
    return lines, best_of


def sweep_report(summary, counts, workloads):
    """Markdown lines: the sweep by median ops/s, then by median ops per CPU-second."""
    a, best_of = sweep_table(summary, counts, workloads, "ops_per_sec")
    b, _ = sweep_table(summary, counts, workloads, "ops_per_cpu_sec")
    return (["Median ops/s of hakmem-fixed with POOL_REFILL_COUNT=N (best in bold), with the "
             "default per-class counts, and with ACE:", ""] + a +
            ["", "The same by median ops per CPU-second (steadier on a busy machine):", ""] + b,
            best_of)


# ---------------------------------------------------------------- main

def execute(args, workloads, allocators, counts, notes):
    """Run every round; returns (runs, info, runner, tmpdir)."""
    info = machine_info()
    tmp = tempfile.mkdtemp(prefix="hakmem-bench.")
    snapshot_hakmem(tmp)
    for a in list(allocators):
        prob = preflight(a)
        if prob and counts:
            raise SystemExit("bench-sweep: %s: %s" % (a, prob))
        if prob:
            notes.append("%s skipped: %s" % (a, prob))
            log("NOTE: %s skipped: %s" % (a, prob))
            allocators.remove(a)
    if not allocators:
        raise SystemExit("no allocator can run")
    runner = Runner(args, tmp)
    notes.append(runner.perf_note)
    log(runner.perf_note)
    if "sqlite" in workloads:
        if not shutil.which("sqlite3"):
            notes.append("sqlite skipped: sqlite3 CLI not installed")
            workloads.remove("sqlite")
        else:
            runner.sqlite_setup()
    if "cpython" in workloads:
        runner.cpython_setup()
    for w in [w for w in workloads if w in REALPROG]:
        missing = [c for c in REALPROG[w] if not shutil.which(c)]
        if missing:
            notes.append("%s skipped: %s not installed (make deps-bench)" % (
                w, ", ".join(missing)))
            workloads.remove(w)
        else:
            runner.realprog_setup(w)
    if args.ace_log and "hakmem-ace" in allocators:
        d = os.path.join(RESULTS, "ace")
        for w in workloads:
            try:
                os.remove(os.path.join(d, "%s.csv" % w))
            except OSError:
                pass

    total = args.rounds * len(workloads) * len(allocators)
    log("%d runs: %d rounds x %d workloads x %d allocators, %d threads" % (
        total, args.rounds, len(workloads), len(allocators), args.threads))
    runs = []
    k = 0
    for rnd in range(1, args.rounds + 1):
        for w in workloads:
            for a in allocators:
                k += 1
                row = runner.run(w, a, rnd)
                runs.append(row)
                if row["status"] == "ok":
                    extra = "ops/s=%-8s rss=%s" % (fmt_ops(row["ops_per_sec"]),
                                                   fmt_mb(row.get("peak_rss_kb")))
                    if w == "sqlite":
                        extra += " (%.2f s)" % row["seconds"]
                    if w in PAGES:
                        kv = parse_kv(row.get("detail", ""))
                        extra += " pages/64=%s" % "/".join(kv.get(k, "?") for k in PAGES_FIELDS)
                else:
                    extra = "FAILED: %s" % row["status"]
                log("[%*d/%d] %-8s %-14s run %d of %d  %s" % (
                    len(str(total)), k, total, w, a, rnd, args.rounds, extra))

    return runs, info, runner, tmp


class Rendered:
    """Stands in for Runner when tables are re-rendered from a saved runs.csv."""
    failures = []


def load_runs(path):
    """(runs, workloads, allocators, info) from a runs.csv and the machine.txt beside it."""
    runs, workloads, allocators = [], [], []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            row = {}
            for k, v in r.items():
                if v in ("", None):
                    continue
                if k in ("workload", "allocator", "status", "detail"):
                    row[k] = v
                elif k == "round":
                    row[k] = int(v)
                else:
                    row[k] = float(v)
            runs.append(row)
            if row["workload"] not in workloads:
                workloads.append(row["workload"])
            if row["allocator"] not in allocators:
                allocators.append(row["allocator"])
    info = {}
    mpath = os.path.join(os.path.dirname(path), "machine.txt")
    if os.path.exists(mpath):
        for line in open(mpath):
            if ": " in line:
                k, v = line.rstrip("\n").split(": ", 1)
                info[k] = v
    info.setdefault("date", "?")
    return runs, workloads, allocators, info



def main():
    ap = argparse.ArgumentParser(description="hakmem benchmark harness")
    ap.add_argument("--workloads", default=" ".join(WORKLOADS),
                    help="space-separated subset of: %s" % " ".join(WORKLOADS))
    ap.add_argument("--allocators", default=" ".join(DEFAULT_ALLOCATORS),
                    help="space-separated subset of: %s (default: %s)" %
                    (" ".join(ALLOCATORS), " ".join(DEFAULT_ALLOCATORS)))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=0,
                    help="seconds per run of each C workload (default: 1, phase 2.4)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--perf", type=int, default=1, help="0 skips perf stat")
    ap.add_argument("--timeout", type=int, default=60, help="seconds before a run is killed")
    ap.add_argument("--sqlite-rows", type=int, default=200000)
    ap.add_argument("--ace-log", type=int, default=1,
                    help="1 sets POOL_ACE_LOG=bench/results/ace/WORKLOAD.csv for hakmem-ace")
    ap.add_argument("--sweep", default="",
                    help="comma/space list of POOL_REFILL_COUNT values: sweep mode")
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--results", default="",
                    help="write results here instead of bench/results (e.g. for a trial run)")
    ap.add_argument("--render", default="",
                    help="re-render latest.* (tables, CSV, plots) from a saved runs.csv with "
                         "machine.txt beside it, without running anything")
    args = ap.parse_args()

    global RESULTS
    if args.results:
        RESULTS = os.path.abspath(args.results)
        os.environ["BENCH_RESULTS"] = RESULTS  # for plot.py
    workloads = args.workloads.split()
    for w in workloads:
        if w not in WORKLOADS:
            ap.error("unknown workload %r (known: %s)" % (w, " ".join(WORKLOADS)))
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    os.makedirs(RESULTS, exist_ok=True)
    notes = []

    if args.sweep:
        counts = [int(x) for x in re.split(r"[,\s]+", args.sweep.strip()) if x]
        for c in counts:
            ALLOCATORS["hakmem-rc%d" % c] = (HAKMEM_SO, {"POOL_ACE": "0",
                                                         "POOL_REFILL_COUNT": str(c)},
                                             "hakmem, POOL_REFILL_COUNT=%d" % c)
        allocators = ["hakmem-rc%d" % c for c in counts] + ["hakmem-fixed", "hakmem-ace"]
        prob = allocator_problem("hakmem-fixed")
        if prob:
            raise SystemExit("bench-sweep: %s" % prob)
        args.ace_log = 0
    else:
        counts = []
        allocators = []
        for a in args.allocators.split():
            if a not in ALLOCATORS:
                ap.error("unknown allocator %r (known: %s)" % (a, " ".join(ALLOCATORS)))
            prob = None if args.render else allocator_problem(a)
            if prob:
                notes.append("%s skipped: %s" % (a, prob))
                log("NOTE: %s skipped: %s" % (a, prob))
            else:
                allocators.append(a)
    if not allocators and not args.render:
        raise SystemExit("no allocator can run")
    for prog in ["runwrap"] + [WORKLOADS[w][0] for w in workloads if WORKLOADS[w][0]]:
        if not os.access(os.path.join(BIN, prog), os.X_OK):
            raise SystemExit("build/bench/%s is missing: run `make bench-progs`" % prog)

    if args.render:
        runs, workloads, allocators, info = load_runs(args.render)
        args.rounds = max(r["round"] for r in runs)
        notes.append("tables re-rendered from the saved runs of this run (bench/run.py --render)")
        runner, tmp = Rendered(), tempfile.mkdtemp(prefix="hakmem-bench.")
        if info.get("load average at end"):
            info["load average at end"] = info["load average at end"]
    else:
        runs, info, runner, tmp = execute(args, workloads, allocators, counts, notes)
        info["load average at end"] = loadavg()
    utils = [r["cpu_util"] for r in runs if r.get("cpu_util") and r["workload"] in
             ("mid", "tiny", "larson", "phase", "realloc", "sqlite", "cpython")]
    if utils:
        mu = statistics.median(utils)
        notes.append("median CPU utilisation of the CPU-bound runs: %.0f%% of the CPUs they "
                     "could use%s" % (100 * mu, " (below 80%: other load on the machine took CPU "
                                      "time; ops/s is understated and noisy: compare ops/CPU-s "
                                      "and re-run with more ROUNDS)" if mu < 0.8 else ""))
    summary = summarize(runs, workloads, allocators)
    for s in summary:
        if counts and s["allocator"].startswith("hakmem-rc"):
            s["refill_count"] = s["allocator"][len("hakmem-rc"):]

    prefix = "sweep" if counts else "latest"
    write_csv(os.path.join(RESULTS, prefix + ".csv"), summary, SUMMARY_FIELDS)
    write_csv(os.path.join(RESULTS, prefix + "_runs.csv" if counts else "runs.csv"), runs,
              RUN_FIELDS)
    with open(os.path.join(RESULTS, "sweep_machine.txt" if counts else "machine.txt"), "w") as f:
        f.write("\n".join("%s: %s" % kv for kv in info.items()) + "\n")

    title = ("hakmem refill-count sweep" if counts else "hakmem benchmarks") + \
        " - %s, %d rounds, %d threads" % (info["date"], args.rounds, args.threads)
    md = ["# " + title, "", "Machine:", ""] + machine_lines(info) + [""]
    if counts:
        sw_lines, _ = sweep_report(summary, counts, workloads)
        md += sw_lines + [""]
    md += ["Median of %d interleaved rounds; spread is min-max; ratios are of medians; "
           "\"best peer\" is the fastest of jemalloc, mimalloc and tcmalloc on that workload. "
           "ops = malloc+free(+realloc) calls; sqlite ops = inserted rows; lua ops = records, "
           "redis ops = commands, gcc ops = preprocessed lines (their peak RSS and task-clock "
           "are the program's own rusage). ops/CPU-s divides the "
           "same ops by the process's CPU time (perf task-clock): other load on a shared "
           "machine costs a run wall time, not CPU time, so this column is steadier (but it "
           "does not charge an allocator for sleeping on a lock while a core idles)." %
           args.rounds, ""]
    glance = glance_lines(summary) if not counts else []
    if glance:
        md += ["hakmem at a glance (medians; ratios of medians):", ""] + glance + [""]
    for variant in VARIANTS:
        pairs = variant_pair_lines(runs, workloads, variant) if not counts else []
        if pairs:
            md += ["%s against hakmem-fixed, paired by round (median and range of the "
                   "per-round ratios):" % variant, ""] + pairs + [""]
    if glance:
        md += ["All allocators:", ""]
    md += table_lines(summary, True)
    ra = [s for s in summary if s.get("rss_after_kb") is not None]
    if ra:
        md += ["", "RSS 2 s after the workers exited (median; the main thread still allocating "
               "a little): " + "; ".join("%s %s %s" % (s["workload"], s["allocator"],
                                                     fmt_mb(s["rss_after_kb"])) for s in ra)]
    pl = pages_lines(summary, True)
    if pl:
        md += [""] + pl
    sq = [s for s in summary if s["workload"] == "sqlite" and s.get("seconds")]
    if sq:
        md += ["", "sqlite median seconds (%d rows): " % args.sqlite_rows +
               ", ".join("%s %.3f s" % (s["allocator"], s["seconds"]) for s in sq)]
    if notes:
        md += ["", "Notes:", ""] + ["- " + n for n in notes]
    if runner.failures:
        md += ["", "Failed runs (reproducers in failures.txt):", ""]
        md += ["- %s / %s, round %d: %s" % f[:4] for f in runner.failures]
    with open(os.path.join(RESULTS, prefix + ".md"), "w") as f:
        f.write("\n".join(md) + "\n")

    fpath = os.path.join(RESULTS, "failures.txt" if not counts else "sweep_failures.txt")
    if runner.failures:
        with open(fpath, "w") as f:
            for w, a, rnd, status, repro, err in runner.failures:
                f.write("== %s under %s, round %d: %s\nreproduce (from the repo root):\n  %s\n"
                        "stderr tail:\n%s\n\n" % (w, a, rnd, status, repro, err))
    elif os.path.exists(fpath):
        os.remove(fpath)

    log("")
    log(title)
    if counts:
        for l in sw_lines:
            log(l)
        log("")
    for l in table_lines(summary, False):
        log(l)
    pl = pages_lines(summary, False)
    for l in [""] + pl if pl else []:
        log(l)
    for n in notes:
        log("note: " + n)
    if runner.failures:
        log("%d run(s) FAILED: see %s" % (len(runner.failures), os.path.relpath(fpath, ROOT)))
    log("results: %s" % os.path.relpath(os.path.join(RESULTS, prefix + ".csv"), ROOT))

    if not args.no_plots:
        plot = os.path.join(ROOT, "bench", "plot.py")
        cmd = [sys.executable, plot, "--sweep" if counts else "--latest"]
        subprocess.run(cmd)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
