# tests/tests.mk - the test tiers, included by the top-level Makefile.
#
#   make test        build every test binary, run every suite (tests/run.sh); ends with
#                    "N passed, N failed" and exits non-zero if anything failed
#   make test-long   the same with HAKMEM_TEST_LONG=1 (larger iteration counts, longer limits)
#   make test-glibc  run the suites without LD_PRELOAD, to validate the tests against glibc
#                    (misuse and hakmem-specific checks are expected to fail there)
#   make fuzz        fuzz the API for FUZZ_SECONDS (default 60) with libFuzzer (clang)
#   make test-sanitize  unit and stress tiers with UBSan, then with TSan (docs/RELIABILITY.md)
#
# Tiers, each picked up by wildcard (add a file, no edit here):
#   tests/unit/test_*.c         CMocka, linked with build/test-hooks/libhakmem.a (the library
#                               built with -DHAK_TEST_HOOKS), may call box internals
#   tests/api/test_*.c          CMocka, run with LD_PRELOAD=build/libhakmem.so
#   tests/stress/test_*.c       CMocka, run with LD_PRELOAD=build/libhakmem.so
#   tests/integration/test_*.c  CMocka drivers that spawn real programs with LD_PRELOAD
#   tests/misuse/test_*.c       CMocka drivers that spawn tests/misuse/prog_*.c(c) with LD_PRELOAD
#   tests/cxx/test_*.cc         CMocka in C++, each built twice: run with LD_PRELOAD, and
#                               linked with -lhakmem (<name>_linked, run without a preload)
#   tests/fuzz/test_*.c         CMocka drivers that run the libFuzzer harness tests/fuzz/fuzz_api.c
#   tests/check_boundaries.sh   contract D by include (boxes and shared_contracts/)
#   tests/check_circles.sh      no include circle among a folder's modules (x.c with x.h)
#   tests/check_symbols.sh      contract D by symbol (nm over build/obj/<folder>/*.o)
# A test binary that fails to build is reported by tests/run.sh as a failed suite.

TEST_BUILD     := $(BUILD)/tests
TEST_CFLAGS    := -O1 -g -Wall -Wextra -pthread $(TEST_SAN)
TEST_NOBUILTIN := -fno-builtin
TEST_DEFS      := -DHAKMEM_SO_DEFAULT='"$(abspath $(BUILD)/libhakmem.so)"' \
                  -DTEST_BUILD_DIR='"$(abspath $(TEST_BUILD))"' -DREPO_DIR='"$(abspath .)"'
TESTLIB_OBJ    := $(TEST_BUILD)/lib/testlib.o
TESTLIB_HDR    := tests/lib/testlib.h

TEST_UNIT_BINS   := $(patsubst tests/%.c,$(TEST_BUILD)/%,$(wildcard tests/unit/test_*.c))
TEST_API_BINS    := $(patsubst tests/%.c,$(TEST_BUILD)/%,$(wildcard tests/api/test_*.c))
TEST_STRESS_BINS := $(patsubst tests/%.c,$(TEST_BUILD)/%,$(wildcard tests/stress/test_*.c))
TEST_INTEG_BINS  := $(patsubst tests/%.c,$(TEST_BUILD)/%,$(wildcard tests/integration/test_*.c \
                                                                    tests/integration/prog_*.c))
TEST_MISUSE_BINS := $(patsubst tests/%.c,$(TEST_BUILD)/%,$(wildcard tests/misuse/test_*.c \
                                                                   tests/misuse/prog_*.c)) \
                    $(patsubst tests/%.cc,$(TEST_BUILD)/%,$(wildcard tests/misuse/prog_*.cc))
TEST_CXX_SRCS    := $(wildcard tests/cxx/test_*.cc)
TEST_CXX_BINS    := $(patsubst tests/%.cc,$(TEST_BUILD)/%,$(TEST_CXX_SRCS)) \
                    $(patsubst tests/%.cc,$(TEST_BUILD)/%_linked,$(TEST_CXX_SRCS))
TEST_FUZZ_BINS   := $(patsubst tests/%.c,$(TEST_BUILD)/%,$(wildcard tests/fuzz/test_*.c)) \
                    $(TEST_BUILD)/fuzz/fuzz_api
TEST_ALL_BINS    := $(TEST_UNIT_BINS) $(TEST_API_BINS) $(TEST_STRESS_BINS) $(TEST_INTEG_BINS) \
                    $(TEST_MISUSE_BINS) $(TEST_FUZZ_BINS) $(TEST_CXX_BINS)

.PHONY: test test-long test-glibc test-build fuzz fuzz-lib test-sanitize sanitize-build \
        sanitize-build-unit

test: deps-test lib
	@-$(MAKE) --no-print-directory -k test-build
	@sh tests/run.sh

test-long: deps-test lib
	@-$(MAKE) --no-print-directory -k test-build
	@HAKMEM_TEST_LONG=1 sh tests/run.sh

test-glibc: deps-test
	@-$(MAKE) --no-print-directory -k test-build
	@HAKMEM_TEST_PRELOAD= sh tests/run.sh

test-build: $(TEST_ALL_BINS)

# Every recipe removes its target first, so a binary whose new build failed is never run stale.
$(TESTLIB_OBJ): tests/lib/testlib.c $(TESTLIB_HDR) tests/tests.mk
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) $(TEST_DEFS) -c $< -o $@

# The test build of the library: the library's sources compiled again with -DHAK_TEST_HOOKS,
# which compiles in what only tests may set (the refill and give-back hooks of
# box2_refill/refill.h, the list rule as a variable, shared_contracts/list_rule.h). The unit
# tests link with it; build/libhakmem.so and build/libhakmem.a have none of it
# (tests/check_symbols.sh, shipped_library_has_no_test_hooks).
TEST_LIB      := $(BUILD)/test-hooks/libhakmem.a
TEST_LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/test-hooks/obj/%.o)

$(BUILD)/test-hooks/obj/%.o: %.c $(LIB_HDRS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -DHAK_TEST_HOOKS -c $< -o $@

$(TEST_LIB): $(TEST_LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

# unit: in-process, statically linked with the test build of the allocator (cmocka.h without
# UNIT_TESTING); -fno-builtin so gcc does not assume malloc/free leave the allocator's state
# alone
$(TEST_BUILD)/unit/%: tests/unit/%.c $(TEST_LIB) $(LIB_HDRS) $(TESTLIB_OBJ) $(TESTLIB_HDR)
	@mkdir -p $(dir $@); rm -f $@
	$(CC) $(TEST_CFLAGS) $(TEST_NOBUILTIN) $(TEST_DEFS) -DHAK_TEST_HOOKS -I. -Itests/lib $(URCU_CFLAGS) $< \
	  $(TESTLIB_OBJ) -o $@ $(TEST_LIB) $(URCU_LIBS) -lcmocka -pthread -ldl -lm -lgcc_s

# api and stress: ordinary programs; tests/run.sh runs them with LD_PRELOAD
$(TEST_BUILD)/api/%: tests/api/%.c $(TESTLIB_OBJ) $(TESTLIB_HDR) include/hakmem.h
	@mkdir -p $(dir $@); rm -f $@
	$(CC) $(TEST_CFLAGS) $(TEST_NOBUILTIN) $(TEST_DEFS) -Iinclude -Itests/lib $< $(TESTLIB_OBJ) \
	  -o $@ -lcmocka -pthread -ldl

$(TEST_BUILD)/stress/%: tests/stress/%.c $(TESTLIB_OBJ) $(TESTLIB_HDR)
	@mkdir -p $(dir $@); rm -f $@
	$(CC) $(TEST_CFLAGS) $(TEST_NOBUILTIN) $(TEST_DEFS) -Itests/lib $< $(TESTLIB_OBJ) \
	  -o $@ -lcmocka -pthread -ldl

# integration and misuse: drivers (test_*) spawn programs (prog_* or system tools)
$(TEST_BUILD)/integration/test_%: tests/integration/test_%.c $(TESTLIB_OBJ) $(TESTLIB_HDR)
	@mkdir -p $(dir $@); rm -f $@
	$(CC) $(TEST_CFLAGS) $(TEST_DEFS) -Itests/lib $< $(TESTLIB_OBJ) -o $@ -lcmocka -pthread

$(TEST_BUILD)/integration/prog_%: tests/integration/prog_%.c
	@mkdir -p $(dir $@); rm -f $@
	$(CC) $(TEST_CFLAGS) $(TEST_NOBUILTIN) $< -o $@

$(TEST_BUILD)/misuse/test_%: tests/misuse/test_%.c $(TESTLIB_OBJ) $(TESTLIB_HDR)
	@mkdir -p $(dir $@); rm -f $@
	$(CC) $(TEST_CFLAGS) $(TEST_DEFS) -Itests/lib $< $(TESTLIB_OBJ) -o $@ -lcmocka -pthread

$(TEST_BUILD)/misuse/prog_%: tests/misuse/prog_%.c
	@mkdir -p $(dir $@); rm -f $@
	$(CC) $(TEST_CFLAGS) $(TEST_NOBUILTIN) $< -o $@

$(TEST_BUILD)/misuse/prog_%: tests/misuse/prog_%.cc tests/misuse/misuse_prog.h
	@mkdir -p $(dir $@); rm -f $@
	$(CXX) $(TEST_CXXFLAGS) $< -o $@

# cxx: the same source twice. The plain binary gets hakmem from LD_PRELOAD (tests/run.sh);
# <name>_linked has libhakmem.so as a dependency ahead of libstdc++ (g++ adds -lstdc++ last),
# with an rpath to build/, and runs without a preload.
TEST_CXXFLAGS := -O1 -g -Wall -Wextra -std=c++17 -pthread $(TEST_SAN)
$(TEST_BUILD)/cxx/%_linked: tests/cxx/%.cc $(TESTLIB_OBJ) $(TESTLIB_HDR) $(BUILD)/libhakmem.so
	@mkdir -p $(dir $@); rm -f $@
	$(CXX) $(TEST_CXXFLAGS) $(TEST_DEFS) -DHAK_CXX_SUITE='"$*_linked"' -Itests/lib $< \
	  $(TESTLIB_OBJ) -o $@ -lcmocka -L$(BUILD) -lhakmem -Wl,-rpath,$(abspath $(BUILD)) -ldl

$(TEST_BUILD)/cxx/%: tests/cxx/%.cc $(TESTLIB_OBJ) $(TESTLIB_HDR)
	@mkdir -p $(dir $@); rm -f $@
	$(CXX) $(TEST_CXXFLAGS) $(TEST_DEFS) -DHAK_CXX_SUITE='"$*"' -Itests/lib $< $(TESTLIB_OBJ) \
	  -o $@ -lcmocka -ldl

# fuzz: the harness is linked with a static libhakmem whose objects clang rebuilds in
# build/fuzz/ with coverage instrumentation and UBSan (never ASan: it would replace malloc), so
# hakmem is the fuzzer process's malloc. The driver tests/fuzz/test_fuzz.c runs a bounded pass
# in `make test`; `make fuzz` runs FUZZ_SECONDS and keeps its corpus in build/fuzz/corpus.
FUZZ_BUILD   := build/fuzz
FUZZ_CC      := clang
FUZZ_SAN     := -fsanitize=fuzzer-no-link,undefined -fno-sanitize-recover=undefined
FUZZ_SECONDS ?= 60

fuzz-lib:
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) TEST_SAN= \
	  EXTRA_CFLAGS='$(FUZZ_SAN) -Wno-ignored-optimization-argument -Wno-unused-command-line-argument' \
	  $(FUZZ_BUILD)/libhakmem.a

$(TEST_BUILD)/fuzz/fuzz_api: tests/fuzz/fuzz_api.c fuzz-lib
	@mkdir -p $(dir $@); rm -f $@
	$(FUZZ_CC) -O1 -g -Wall -Wextra -fno-builtin -fsanitize=fuzzer,undefined \
	  -fno-sanitize-recover=undefined $< $(FUZZ_BUILD)/libhakmem.a -o $@ $(URCU_LIBS) -pthread -ldl -lm -lgcc_s

$(TEST_BUILD)/fuzz/test_%: tests/fuzz/test_%.c $(TESTLIB_OBJ) $(TESTLIB_HDR)
	@mkdir -p $(dir $@); rm -f $@
	$(CC) $(TEST_CFLAGS) $(TEST_DEFS) -Itests/lib $< $(TESTLIB_OBJ) -o $@ -lcmocka -pthread

fuzz: deps-test $(TEST_BUILD)/fuzz/fuzz_api
	@mkdir -p $(FUZZ_BUILD)/corpus
	env -u LD_PRELOAD UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(TEST_BUILD)/fuzz/fuzz_api -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	  -rss_limit_mb=4096 -timeout=30 -max_len=4096 -artifact_prefix=$(TEST_BUILD)/fuzz/ \
	  $(FUZZ_BUILD)/corpus tests/fuzz/corpus

# Sanitizers: the allocator objects, the unit tests (linked with that libhakmem.a) and the stress
# tests (run with that libhakmem.so preloaded) are rebuilt in build/ubsan and build/tsan, and the
# unit and stress tiers run against them. Under TSan the executable's (or the preloaded) malloc
# is hakmem's own instrumented one, so TSan checks the allocator's synchronisation itself;
# see docs/RELIABILITY.md for what is and is not covered.
UBSAN_FLAGS := -fsanitize=undefined -fno-sanitize-recover=undefined
TSAN_FLAGS  := -fsanitize=thread
SAN_TIERS   := unit stress
# Under TSan the unit tests get TSan's malloc (libtsan.so precedes libhakmem.a at link time, so
# the archive's malloc is not pulled in); these need hakmem to be the process malloc.
# The stress tier is not run under TSan: preloading a TSan-built libhakmem.so into the
# uninstrumented stress binaries crashes at start-up (SIGSEGV).
TSAN_SKIP   := unit/test_box1_hotpath unit/test_box2_backend unit/test_box2_large \
               unit/test_box2_purger unit/test_invariants unit/test_box2_sampled

sanitize-build: $(TEST_UNIT_BINS) $(TEST_STRESS_BINS)
sanitize-build-unit: $(TEST_UNIT_BINS)

test-sanitize: deps-test
	@echo "=== UBSan: build/ubsan"
	@$(MAKE) --no-print-directory BUILD=build/ubsan EXTRA_CFLAGS='$(UBSAN_FLAGS)' \
	  TEST_SAN='$(UBSAN_FLAGS)' lib
	@-$(MAKE) --no-print-directory -k BUILD=build/ubsan EXTRA_CFLAGS='$(UBSAN_FLAGS)' \
	  TEST_SAN='$(UBSAN_FLAGS)' sanitize-build
	@UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 HAKMEM_TEST_BUILD=build/ubsan/tests \
	  HAKMEM_TEST_PRELOAD=$(abspath build/ubsan/libhakmem.so) HAKMEM_TEST_TIERS='$(SAN_TIERS)' \
	  sh tests/run.sh; echo $$? > build/ubsan/tests/status
	@echo "=== TSan: build/tsan"
	@$(MAKE) --no-print-directory BUILD=build/tsan EXTRA_CFLAGS='$(TSAN_FLAGS)' \
	  TEST_SAN='$(TSAN_FLAGS)' lib
	@-$(MAKE) --no-print-directory -k BUILD=build/tsan EXTRA_CFLAGS='$(TSAN_FLAGS)' \
	  TEST_SAN='$(TSAN_FLAGS)' sanitize-build-unit
	@rm -f build/tsan/tests/logs/*.log
	@TSAN_OPTIONS='halt_on_error=1 second_deadlock_stack=1 report_signal_unsafe=0 suppressions=$(abspath tests/sanitize/tsan.supp)' \
	  HAKMEM_TEST_BUILD=build/tsan/tests HAKMEM_TEST_TIERS=unit \
	  HAKMEM_TEST_SKIP='$(TSAN_SKIP)' sh tests/run.sh; \
	  ubsan=$$(cat build/ubsan/tests/status); \
	  reports=$$(grep -l 'ThreadSanitizer' build/tsan/tests/logs/*.log | tr '\n' ' '); \
	  echo "test-sanitize: UBSan run exit $$ubsan; TSan reports in: $${reports:-none}"; \
	  echo "(under TSan six checks fail by design: the learner's CPU budget; a refill hook, a ring"; \
	  echo " taken at a thread's 64th refill and test_ace_summary's three exit checks, which need"; \
	  echo " hakmem as the process malloc; the TSan verdict is the absence of reports)"; \
	  [ "$$ubsan" = 0 ] && [ -z "$$reports" ]
