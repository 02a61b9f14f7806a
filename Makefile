# hakmem - the one top-level Makefile. Targets:
#   make            build/libhakmem.so and build/libhakmem.a
#   make test       install missing test packages, build, run every suite, end with "N passed, N failed"
#   make bench      install missing bench packages, run the benchmarks against the peers
#   make install PREFIX=/usr/local
# Test and bench rules live in tests/tests.mk and bench/bench.mk, included below.

CC      ?= gcc
PREFIX  ?= /usr/local
BUILD   := build
VERSION := 0.1.0

URCU_CFLAGS := $(shell pkg-config --cflags liburcu-bp 2>/dev/null)
URCU_LIBS   := $(shell pkg-config --libs liburcu-bp 2>/dev/null || echo -lurcu-bp -lurcu-common)

WARN    := -Wall -Wextra -Wshadow -Wno-unused-parameter
# No builtin malloc knowledge inside the allocator: gcc must not turn malloc+memset into calloc.
NOBUILTIN := -fno-builtin-malloc -fno-builtin-calloc -fno-builtin-realloc -fno-builtin-free
# Every function starts on a 64-byte line (ALIGN): the hit paths' branches then sit where their
# own code puts them, whatever changes elsewhere in the library. Without it, a change in a cold
# file moved malloc_plain by 16 bytes and `mid` lost 3.5-4% (docs/BENCHMARKS.md, "Function
# alignment"): branches that cross or end on a 32-byte boundary run slower on Intel cores with
# the JCC erratum fix. 8 KiB more text.
ALIGN   := -falign-functions=64
LIB_CFLAGS := -O2 -g -D_GNU_SOURCE $(WARN) -fPIC -pthread -fvisibility=hidden -ftls-model=initial-exec \
              -fno-semantic-interposition -fno-stack-protector -fno-tree-slp-vectorize $(ALIGN) $(NOBUILTIN) -I. $(URCU_CFLAGS) \
              -DHAKMEM_VERSION_STRING='"$(VERSION)"' $(EXTRA_CFLAGS)
# libgcc's unwinder (the profiler's stacks) is linked in, its symbols local: loading
# libgcc_s.so.1 cost every process about 100 KiB resident, profiler on or off
# (tests/check_symbols.sh, shipped_library_carries_its_unwinder).
LIB_LDLIBS := $(URCU_LIBS) -pthread -ldl -static-libgcc -Wl,--exclude-libs,ALL

LIB_SRCS := $(wildcard shared_contracts/*.c box1_tls/*.c box2_refill/*.c box3_ace/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
LIB_HDRS := $(wildcard shared_contracts/*.h box1_tls/*.h box2_refill/*.h box3_ace/*.h include/*.h)

.PHONY: all lib lib-valgrind test-valgrind test bench install clean deps-test deps-bench
all: lib
lib: $(BUILD)/libhakmem.so $(BUILD)/libhakmem.a

$(BUILD)/obj/%.o: %.c $(LIB_HDRS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -c $< -o $@

$(BUILD)/libhakmem.so: $(LIB_OBJS)
	$(CC) -shared -o $@ $^ -Wl,-soname,libhakmem.so -Wl,-z,now $(LIB_LDLIBS)

$(BUILD)/libhakmem.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

# The valgrind build: memcheck client requests compiled in (shared_contracts/valgrind_hooks.h).
lib-valgrind:
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/valgrind EXTRA_CFLAGS=-DHAKMEM_VALGRIND lib

# memcheck reports a program's leaks and invalid reads on hakmem's valgrind build
test-valgrind: deps-test lib-valgrind
	@sh tests/valgrind/run.sh

deps-test:
	@sh scripts/deps.sh test
deps-bench:
	@sh scripts/deps.sh bench

$(BUILD)/hakmem.pc: Makefile
	@mkdir -p $(BUILD)
	printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: hakmem\nDescription: hakmem malloc replacement\nVersion: %s\nLibs: -L$${libdir} -lhakmem\nLibs.private: -Wl,--undefined=hak_ace_start %s -pthread -ldl -lgcc_s\nCflags: -I$${includedir}\n' \
	  '$(PREFIX)' '$(VERSION)' '$(URCU_LIBS)' > $@

install: lib $(BUILD)/hakmem.pc
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 755 $(BUILD)/libhakmem.so $(DESTDIR)$(PREFIX)/lib/
	install -m 644 $(BUILD)/libhakmem.a $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/hakmem.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(BUILD)/hakmem.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/

clean:
	rm -rf $(BUILD)

-include tests/tests.mk
-include bench/bench.mk
