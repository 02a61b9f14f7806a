# tests/tests.mk - the test tiers, included by the top-level Makefile.
#
#   make test        build every test binary, run every suite (tests/run.sh); ends with
#                    "N passed, N failed" and exits non-zero if anything failed
#   make test-long   the same with HAKMEM_TEST_LONG=1 (larger iteration counts, longer limits)
#   make test-glibc  run the suites without LD_PRELOAD, to validate the tests against glibc
#                    (misuse and hakmem-specific checks are expected to fail there)
#
# Tiers, each picked up by wildcard (add a file, no edit here):
#   tests/unit/test_*.c         CMocka, linked with build/libhakmem.a, may call box internals
#   tests/api/test_*.c          CMocka, run with LD_PRELOAD=build/libhakmem.so
#   tests/stress/test_*.c       CMocka, run with LD_PRELOAD=build/libhakmem.so
#   tests/integration/test_*.c  CMocka drivers that spawn real programs with LD_PRELOAD
#   tests/misuse/test_*.c       CMocka drivers that spawn tests/misuse/prog_*.c with LD_PRELOAD
#   tests/check_boundaries.sh   contract D
# A test binary that fails to build is reported by tests/run.sh as a failed suite.

TEST_BUILD     := $(BUILD)/tests
TEST_CFLAGS    := -O1 -g -Wall -Wextra -pthread
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
                                                                   tests/misuse/prog_*.c))
TEST_ALL_BINS    := $(TEST_UNIT_BINS) $(TEST_API_BINS) $(TEST_STRESS_BINS) $(TEST_INTEG_BINS) \
                    $(TEST_MISUSE_BINS)

.PHONY: test test-long test-glibc test-build

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

# unit: in-process, statically linked with the allocator (cmocka.h without UNIT_TESTING);
# -fno-builtin so gcc does not assume malloc/free leave the allocator's state alone
$(TEST_BUILD)/unit/%: tests/unit/%.c $(BUILD)/libhakmem.a $(LIB_HDRS) $(TESTLIB_OBJ) $(TESTLIB_HDR)
	@mkdir -p $(dir $@); rm -f $@
	$(CC) $(TEST_CFLAGS) $(TEST_NOBUILTIN) $(TEST_DEFS) -I. -Itests/lib $(URCU_CFLAGS) $< $(TESTLIB_OBJ) -o $@ \
	  $(BUILD)/libhakmem.a $(URCU_LIBS) -lcmocka -pthread -ldl

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
