"""bench/cpython_json.py - the CPython workload of bench/run.py: a real program's allocations.

Run as `python3 bench/cpython_json.py [N [ROUNDS]]` with PYTHONMALLOC=malloc, so that every
object CPython makes goes through the preloaded malloc (its own pymalloc arenas are off).
Each round builds N small dicts (an int, two short strings, a two-string list, a float),
dumps them to JSON, loads them back, sorts them by two keys and indexes them in a dict; the
previous round's objects are freed as the next round replaces them. Single-threaded.
Prints ops_per_sec=<objects per second> ops=<N * ROUNDS> seconds=... check=<a checksum of the
results, the same under every allocator>.
"""
import json
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 60000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 6
t0 = time.perf_counter()
check = 0
for r in range(ROUNDS):
    objs = [{"id": i, "name": "item%d" % i, "tags": ["a%d" % (i % 7), "b%d" % (i % 13)],
             "score": ((i * 7919 + r) % 10007) / 7.0} for i in range(N)]
    text = json.dumps(objs)
    back = json.loads(text)
    back.sort(key=lambda o: (o["score"], o["name"]))
    index = {o["name"]: o for o in back}
    check ^= len(text) ^ len(index) ^ back[0]["id"]
el = time.perf_counter() - t0
print("ops_per_sec=%.0f ops=%d seconds=%.3f rounds=%d objects=%d check=%d" % (
    N * ROUNDS / el, N * ROUNDS, el, ROUNDS, N, check))
