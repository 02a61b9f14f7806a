# bench/bench.mk - benchmark targets, included by the top-level Makefile.
#
#   make bench            every workload x every allocator, 3 interleaved rounds (~5 min)
#   make bench-full       the same with 7 rounds (ROUNDS=N overrides)
#   make bench-sweep      hakmem-fixed at POOL_REFILL_COUNT = 4 8 16 32 64 128 256, per workload
#   make bench-callgrind  instructions per malloc+free pair (and C++ new+delete) for every
#                         allocator (valgrind)
#   make bench-settle     how long ACE takes to settle after each phase change (bench/settle.py):
#                         ROUNDS=5 THREADS=2 SETTLE_PHASE_MS=1000 SETTLE_INTERVAL_MS=100
#   make bench-plot       redraw the PNGs from bench/results/latest.csv (and sweep.csv)
#   make bench-docs       copy bench/results/*.md into docs/BENCHMARKS.md between its markers
#   make bench-progs      only build the workload programs into build/bench/
#
# Selection (all optional; see bench/README.md):
#   WORKLOADS="mid tiny"  ALLOCATORS="hakmem-fixed glibc"  ROUNDS=5  DURATION=2  THREADS=4
#   PERF=0 (skip perf stat)  TIMEOUT=60 (s per run)  SQLITE_ROWS=200000  SEED=42
#   SWEEP_COUNTS="4 8 16"  CG_ITERS=200000  RESULTS=dir (instead of bench/results)

BENCH_DIR   := $(BUILD)/bench
BENCH_WORKLOADS := mid tiny larson prodcons xfree phase churn realloc bigbuf largewin burstexit smallheap containers settle \
                   locality xmix
BENCH_TOOLS := runwrap cg_pair cg_pair_cxx
BENCH_BINS  := $(addprefix $(BENCH_DIR)/,$(BENCH_WORKLOADS) $(BENCH_TOOLS))
# The workloads call malloc/free through the PLT like any program; -fno-builtin keeps gcc from
# deleting or merging the calls being measured.
BENCH_CFLAGS := -O2 -g -Wall -Wextra -pthread $(NOBUILTIN) -fno-builtin-realloc
PYTHON ?= python3

BENCH_SEL = $(if $(WORKLOADS),--workloads "$(WORKLOADS)") \
            $(if $(ALLOCATORS),--allocators "$(ALLOCATORS)") \
            $(if $(DURATION),--duration $(DURATION)) $(if $(THREADS),--threads $(THREADS)) \
            $(if $(PERF),--perf $(PERF)) $(if $(TIMEOUT),--timeout $(TIMEOUT)) \
            $(if $(SQLITE_ROWS),--sqlite-rows $(SQLITE_ROWS)) $(if $(SEED),--seed $(SEED)) \
            $(if $(RESULTS),--results "$(RESULTS)")

.PHONY: bench bench-full bench-sweep bench-callgrind bench-settle bench-plot bench-docs bench-progs

bench-progs: $(BENCH_BINS)

$(BENCH_DIR)/%: bench/%.c bench/bench_common.h bench/window.h bench/bench.mk
	@mkdir -p $(BENCH_DIR)
	$(CC) $(BENCH_CFLAGS) -o $@ $< -pthread
$(BENCH_DIR)/locality: bench/locality_probe.h # the probe, a header a test can include too

# C++ workloads and tools (containers, cg_pair_cxx): g++ -O2, the calls to operator new and
# delete as a C++ program makes them (no -fno-builtin: the escapes keep them).
BENCH_CXXFLAGS := -O2 -g -Wall -Wextra -std=c++17 -pthread
$(BENCH_DIR)/%: bench/%.cc bench/bench_common.h bench/bench.mk
	@mkdir -p $(BENCH_DIR)
	$(CXX) $(BENCH_CXXFLAGS) -o $@ $< -pthread

bench: deps-bench lib bench-progs
	$(PYTHON) bench/run.py --rounds $(or $(ROUNDS),3) $(BENCH_SEL)

bench-full: deps-bench lib bench-progs
	$(PYTHON) bench/run.py --rounds $(or $(ROUNDS),7) $(BENCH_SEL)

bench-sweep: deps-bench lib bench-progs
	$(PYTHON) bench/run.py --sweep "$(or $(SWEEP_COUNTS),4 8 16 32 64 128 256)" \
	  --rounds $(or $(ROUNDS),3) $(BENCH_SEL)

bench-callgrind: deps-bench lib bench-progs
	$(if $(RESULTS),BENCH_RESULTS="$(RESULTS)") $(PYTHON) bench/callgrind.py $(if $(ALLOCATORS),--allocators "$(ALLOCATORS)") \
	  $(if $(CG_ITERS),--iters $(CG_ITERS))

bench-settle: deps-bench lib bench-progs
	$(PYTHON) bench/settle.py --rounds $(or $(ROUNDS),5) $(if $(THREADS),--threads $(THREADS)) \
	  $(if $(SETTLE_PHASE_MS),--phase-ms $(SETTLE_PHASE_MS)) \
	  $(if $(SETTLE_INTERVAL_MS),--interval-ms $(SETTLE_INTERVAL_MS)) \
	  $(if $(RESULTS),--results "$(RESULTS)")

bench-plot:
	$(PYTHON) bench/plot.py --latest
	@if [ -f bench/results/sweep.csv ]; then $(PYTHON) bench/plot.py --sweep; fi

bench-docs:
	$(PYTHON) bench/docs.py
