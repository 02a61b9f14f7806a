#!/usr/bin/env python3
"""bench/realprog.py - run one real Debian program under the allocator being measured.

usage: BENCH_PRELOAD=LIB python3 bench/realprog.py lua|gcc|redis

The driver of bench/run.py's `lua`, `gcc` and `redis` workloads. bench/run.py starts it
through runwrap with the allocator in BENCH_PRELOAD instead of LD_PRELOAD, so the driver
itself (python), and the clients it runs (redis-benchmark, redis-cli), run on glibc; only the
program measured gets LD_PRELOAD=$BENCH_PRELOAD (empty: no preload, the system allocator).
Other variables (POOL_*, HAKMEM_*) are passed on unchanged.

  lua    lua5.4 bench/lua_tables.lua: tables of records with strings serialized to a JSON-like
         text, parsed back, sorted, indexed, formatted (5,000 records x 3 rounds).
         ops = records processed; check = sha256 of its output.
  gcc    g++ -std=c++17 -O2 -c bench/gcc_templates.cc (LD_PRELOAD reaches cc1plus and as
         through the g++ driver). ops = lines of the preprocessed translation unit (g++ -E,
         run beforehand without preload, untimed); check = sha256 of the object file.
  redis  redis-server on 127.0.0.1 at a free high port, persistence off. Timed: a fixed
         stream of 60,000 mixed commands (SET/APPEND/INCRBY/RPUSH/LTRIM/HSET/SADD/ZADD/DEL/
         GET, values of 8 B-16 KiB) through one `redis-cli --pipe` into db 0, then
         redis-benchmark (16 clients, pipeline 8, random keys over 50,000) in db 1: SET, GET,
         INCR, LPUSH, LPOP, SADD, HSET, ZADD with values of 16, 256 and 2048 B (20,000 each),
         LRANGE_100 (2,000), then FLUSHDB of db 1. ops = commands sent; check = DEBUG DIGEST
         and DBSIZE of db 0 (the fixed stream's data) and an empty db 1. The server is always
         shut down (SHUTDOWN NOSAVE, then SIGKILL after 10 s). Debian links redis-server with
         libjemalloc, so "no preload" would be jemalloc: the glibc run preloads libc.so.6,
         whose malloc then comes first. Only redis-server is preloaded.

Prints one line: ops_per_sec=.. ops=.. seconds=.. check=.. prog_rss_kb=.. prog_cpu_ms=..
prog_minflt=.. prog_ctxsw=.. [more]. seconds is the timed part; the prog_* figures are the
measured program's own (wait4 rusage: peak RSS of the process and the children it waited
for, CPU, minor faults, context switches), which bench/run.py reports instead of the
driver's. Exits non-zero, with the reason on stderr, when the program fails.
"""
import hashlib
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CACHE = os.path.join(ROOT, "build", "bench")

LUA = "lua5.4"
LUA_SCRIPT = os.path.join(HERE, "lua_tables.lua")
LUA_ARGS = ["5000", "3"]

GXX = "g++"
GCC_SRC = os.path.join(HERE, "gcc_templates.cc")
GCC_FLAGS = ["-std=c++17", "-O2", "-pipe", "-frandom-seed=hakmem", "-DKINDS=1"]

REDIS_CMDS = 60000           # commands of the fixed stream (db 0)
REDIS_BENCH_N = 20000        # requests per redis-benchmark test
REDIS_SIZES = (16, 256, 2048)
REDIS_TESTS = "set,get,incr,lpush,lpop,sadd,hset,zadd"
REDIS_LRANGE_N = 2000
REDIS_CLIENTS = ["-c", "16", "-P", "8", "-r", "50000"]
TIMEOUT = 60


def fail(msg):
    sys.stderr.write("realprog: %s\n" % msg)
    sys.exit(1)


def envs():
    """(environment of the measured program, environment of everything else, the preload:
    BENCH_PRELOAD, or '' for none)."""
    base = dict(os.environ)
    pre = base.pop("BENCH_PRELOAD", "")
    base.pop("LD_PRELOAD", None)
    prog = dict(base)
    if pre:
        prog["LD_PRELOAD"] = pre
    return prog, base, pre


def measure(cmd, env, stdin=None, stdout=None):
    """Run cmd, wait for it with wait4. (exit status, wall seconds, rusage)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdin=stdin or subprocess.DEVNULL,
                         stdout=stdout or subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read()  # until the program (and children holding stderr) exit
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    p.stderr.close()
    return p.returncode, wall, ru, err.decode(errors="replace")


def rusage_fields(ru):
    return ("prog_rss_kb=%d prog_cpu_ms=%.0f prog_minflt=%d prog_ctxsw=%d" %
            (ru.ru_maxrss, 1000 * (ru.ru_utime + ru.ru_stime), ru.ru_minflt,
             ru.ru_nvcsw + ru.ru_nivcsw))


def report(ops, seconds, check, ru, more=""):
    print("ops_per_sec=%.0f ops=%d seconds=%.3f check=%s %s%s" % (
        ops / seconds, ops, seconds, check, rusage_fields(ru), " " + more if more else ""))


# ---------------------------------------------------------------- lua

def run_lua():
    prog_env, _, _ = envs()
    with tempfile.TemporaryFile() as out:
        rc, wall, ru, err = measure([LUA, LUA_SCRIPT] + LUA_ARGS, prog_env, stdout=out)
        out.seek(0)
        text = out.read()
    if rc != 0:
        fail("%s exited with %d: %s" % (LUA, rc, err[-1000:]))
    last = text.decode(errors="replace").strip().splitlines()[-1:]
    ops = int(dict(t.split("=", 1) for t in (last[0].split() if last else [])
                   if "=" in t).get("ops", 0))
    if not ops:
        fail("no ops= line from %s" % LUA_SCRIPT)
    report(ops, wall, hashlib.sha256(text).hexdigest()[:16], ru)


# ---------------------------------------------------------------- gcc

def run_gcc():
    prog_env, base_env, _ = envs()
    r = subprocess.run([GXX] + GCC_FLAGS + ["-E", GCC_SRC], env=base_env,
                       capture_output=True, timeout=TIMEOUT)
    if r.returncode != 0:
        fail("g++ -E failed: %s" % r.stderr[-1000:].decode(errors="replace"))
    lines = r.stdout.count(b"\n")
    with tempfile.TemporaryDirectory(prefix="hakmem-gcc.") as d:
        obj = os.path.join(d, "gcc_templates.o")
        rc, wall, ru, err = measure([GXX] + GCC_FLAGS + ["-c", GCC_SRC, "-o", obj], prog_env)
        if rc != 0 or not os.path.exists(obj):
            fail("g++ exited with %d: %s" % (rc, err[-1000:]))
        data = open(obj, "rb").read()
    h = hashlib.sha256(data)
    h.update(err.encode())  # diagnostics, if any, must be the same too
    report(lines, wall, h.hexdigest()[:16], ru, "object_bytes=%d" % len(data))


# ---------------------------------------------------------------- redis

def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def redis_stream(path):
    """Write the fixed command stream (cached in build/bench/, like the sqlite script)."""
    rng = random.Random(42)
    alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    pool = bytes(rng.choice(alphabet) for _ in range(1 << 16))

    def value():
        x = rng.random()
        n = rng.randint(8, 64) if x < 0.70 else rng.randint(65, 1024) if x < 0.95 else \
            rng.randint(1025, 16384)
        o = rng.randrange(len(pool) - n)
        return pool[o:o + n]

    with open(path + ".tmp", "wb") as f:
        for i in range(REDIS_CMDS):
            k = rng.randrange(100)
            s = rng.randrange(8000)
            if k < 25:
                f.write(resp("SET", "s:%d" % s, value()))
            elif k < 33:
                f.write(resp("APPEND", "s:%d" % s, value()))
            elif k < 38:
                f.write(resp("INCRBY", "n:%d" % (s % 2000), rng.randrange(1000)))
            elif k < 53:
                f.write(resp("RPUSH", "l:%d" % (s % 400), value(), value()))
            elif k < 55:
                f.write(resp("LTRIM", "l:%d" % (s % 400), 0, rng.randrange(1, 40)))
            elif k < 70:
                f.write(resp("HSET", "h:%d" % (s % 800), "f%d" % rng.randrange(200), value()))
            elif k < 80:
                f.write(resp("SADD", "set:%d" % (s % 500), "m%d" % rng.randrange(5000)))
            elif k < 88:
                f.write(resp("ZADD", "z:%d" % (s % 300), rng.randrange(100000),
                             "m%d" % rng.randrange(3000)))
            elif k < 93:
                f.write(resp("DEL", "s:%d" % s, "l:%d" % (s % 400) if s % 7 == 0 else "x"))
            else:
                f.write(resp("GET", "s:%d" % s))
    os.replace(path + ".tmp", path)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ping(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def run_redis():
    prog_env, base_env, pre = envs()
    if not pre:
        prog_env["LD_PRELOAD"] = "libc.so.6"  # glibc's malloc before the linked libjemalloc
    os.makedirs(CACHE, exist_ok=True)
    stream = os.path.join(CACHE, "redis_stream_%d.resp" % REDIS_CMDS)
    if not os.path.exists(stream) or os.path.getmtime(stream) < os.path.getmtime(__file__):
        redis_stream(stream)

    tmp = tempfile.mkdtemp(prefix="hakmem-redis.")
    log = os.path.join(tmp, "redis.log")
    server, port = None, None
    try:
        for _ in range(3):  # a port taken between free_port() and the bind: try another
            port = free_port()
            t_start = time.perf_counter()
            server = subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", tmp, "--logfile", log, "--daemonize", "no",
                 "--enable-debug-command", "local"],
                env=prog_env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while server.poll() is None and not ping(port) and time.monotonic() < deadline:
                time.sleep(0.01)
            if server.poll() is None and ping(port):
                break
            if server.poll() is None:
                fail("redis-server did not answer PING within 10 s")
            server = None
        if server is None:
            fail("redis-server did not start: %s" % open(log, errors="replace").read()[-1000:])

        cli = ["redis-cli", "-h", "127.0.0.1", "-p", str(port)]

        def call(*args, db=0):
            r = subprocess.run(cli + ["-n", str(db)] + [str(a) for a in args], env=base_env,
                               capture_output=True, text=True, timeout=TIMEOUT)
            if r.returncode != 0 or r.stdout.startswith("ERR"):
                fail("redis-cli %s: %s%s" % (" ".join(map(str, args)), r.stdout, r.stderr))
            return r.stdout.strip()

        ops = 0
        t0 = time.perf_counter()
        with open(stream, "rb") as f:
            r = subprocess.run(cli + ["--pipe"], env=base_env, stdin=f, capture_output=True,
                               text=True, timeout=TIMEOUT)
        if r.returncode != 0 or "errors: 0, replies: %d" % REDIS_CMDS not in r.stdout:
            fail("redis-cli --pipe: %s %s" % (r.stdout[-500:], r.stderr[-500:]))
        ops += REDIS_CMDS
        runs = [(REDIS_TESTS, REDIS_BENCH_N, d) for d in REDIS_SIZES] + \
            [("lrange_100", REDIS_LRANGE_N, 64)]
        for tests, n, size in runs:
            r = subprocess.run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(port)] +
                               REDIS_CLIENTS + ["-n", str(n), "-d", str(size), "--dbnum", "1",
                                                "--csv", "-t", tests],
                               env=base_env, capture_output=True, text=True, timeout=TIMEOUT)
            done = [l for l in r.stdout.splitlines() if l.startswith('"') and
                    not l.startswith('"test"')]
            want = len(tests.split(",")) + (1 if tests.startswith("lrange") else 0)
            if r.returncode != 0 or len(done) != want or "rror" in r.stdout + r.stderr:
                fail("redis-benchmark -t %s -d %d: %s %s" % (tests, size, r.stdout[-500:],
                                                            r.stderr[-500:]))
            ops += n * len(done)
        call("FLUSHDB", db=1)
        ops += 1
        seconds = time.perf_counter() - t0

        digest = call("DEBUG", "DIGEST")
        size0 = call("DBSIZE")
        size1 = call("DBSIZE", db=1)
        if size1 != "0":
            fail("db 1 not empty after FLUSHDB: %s keys" % size1)
        check = hashlib.sha256(("%s %s %s" % (digest, size0, size1)).encode()).hexdigest()[:16]
        mem = call("INFO", "memory")
        used = [l.split(":", 1)[1].strip() for l in mem.splitlines()
                if l.startswith("used_memory:")]
        subprocess.run(cli + ["SHUTDOWN", "NOSAVE"], env=base_env, capture_output=True,
                       timeout=10)
        deadline = time.monotonic() + 10
        status, ru = None, None
        while time.monotonic() < deadline:
            pid, status, ru = os.wait4(server.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.01)
        else:
            fail("redis-server still running 10 s after SHUTDOWN NOSAVE")
        server.returncode = os.waitstatus_to_exitcode(status)
        server = None
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            fail("redis-server exited with %d: %s" % (code, open(log, errors="replace")
                                                      .read()[-1000:]))
        report(ops, seconds, check, ru, "keys=%s digest=%s used_memory=%s server_s=%.3f" % (
            size0, digest[:16], used[0] if used else "?", time.perf_counter() - t_start))
    finally:
        if server is not None and server.poll() is None:
            try:
                subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), "SHUTDOWN",
                                "NOSAVE"], env=base_env, capture_output=True, timeout=5)
                server.wait(timeout=10)
            except Exception:
                server.kill()
                server.wait()
        for name in os.listdir(tmp):
            os.remove(os.path.join(tmp, name))
        os.rmdir(tmp)


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("lua", "gcc", "redis"):
        sys.stderr.write("usage: BENCH_PRELOAD=LIB %s lua|gcc|redis\n" % sys.argv[0])
        sys.exit(2)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally clauses
    {"lua": run_lua, "gcc": run_gcc, "redis": run_redis}[sys.argv[1]]()
