#!/bin/sh
# tests/check_symbols.sh - contract D by symbol: what each box's objects reference, read with
# nm from the objects the build made (build/obj/<folder>/*.o, one per source file).
#
# Rules (docs/CONTRACTS.md, contract D):
#   - no object of Box 2 or Box 3 references a symbol (function or data) defined in another
#     box's objects;
#   - Box 1 references no symbol of Box 3, and of Box 2 only the entry points listed between
#     the markers <!-- box1-calls-box2 --> and <!-- /box1-calls-box2 --> of docs/CONTRACTS.md;
#   - no object of shared_contracts/ references a symbol defined in any box;
#   - inside each folder, no circle of objects: no object references a symbol defined in
#     another object that (directly or around a longer circle) references one of its own
#     (tests/check_circles.sh checks the same by include);
#   - the shipped library (build/libhakmem.so, build/libhakmem.a) holds none of the symbols
#     only the test build may have (TEST_ONLY_SYMBOLS: the test hooks, tests/tests.mk).
#
#   sh tests/check_symbols.sh [OBJDIR [SRCROOT]]
#       Check OBJDIR (default build/obj) against the sources of SRCROOT (default this
#       repository): prints one line per violation, exits 1 if any, 0 otherwise.
#   sh tests/check_symbols.sh --suite
#       The suite `make test` runs: the check on this build, plus self-tests that plant a
#       function reference, a data reference and an unlisted Box 1 call in copies of the
#       objects and prove each is caught. CMocka-style lines for tests/run.sh.
set -u

BOXES="box1_tls box2_refill box3_ace"
# Compiled only into the test build of the library (-DHAK_TEST_HOOKS): the refill and give-back
# hooks (box2_refill/refill.h) and the list rule as a variable (shared_contracts/list_rule.h).
TEST_ONLY_SYMBOLS="hak_refill_hook hak_give_hook hak_list_rule"
CC=${CC:-gcc}
HERE=$(cd "$(dirname "$0")" && pwd)
SELF="$HERE/$(basename "$0")"

# The objects of folder $2 that the sources of $3 produce (stale objects of removed sources
# are not part of the library and are ignored).
objs() { # objdir folder srcroot
    for src in "$3/$2"/*.c; do
        [ -e "$src" ] || continue
        o="$1/$2/$(basename "${src%.c}").o"
        [ -e "$o" ] && echo "$o"
    done
}

defs() { # objects...
    [ $# -gt 0 ] || return 0
    nm --defined-only "$@" 2>/dev/null | awk 'NF==3 && $2 ~ /[A-Z]/ && $2 != "U" {print $3}' | LC_ALL=C sort -u
}

undefs() { # objects...
    [ $# -gt 0 ] || return 0
    nm -u "$@" 2>/dev/null | awk 'NF==2 {print $2}' | LC_ALL=C sort -u
}

# "from to from.o:symbol" for each symbol an object references that another of the given
# objects defines (objects of one folder: a module graph by symbol).
symbol_edges() { # objects...
    [ $# -gt 0 ] || return 0
    for o in "$@"; do
        m=$(basename "${o%.o}")
        nm --defined-only "$o" 2>/dev/null | awk -v m="$m" 'NF==3 && $2 ~ /[A-Z]/ && $2 != "U" {print $3, m}'
    done | LC_ALL=C sort -k1,1 >"$tmp/edge.defs"
    for o in "$@"; do
        m=$(basename "${o%.o}")
        nm -u "$o" 2>/dev/null | awk -v m="$m" 'NF==2 {print $2, m}'
    done | LC_ALL=C sort -k1,1 | LC_ALL=C join - "$tmp/edge.defs" | awk '$2 != $3 {print $2, $3, $2 ".o:" $1}'
}

allowed_box1_calls() { # srcroot
    sed -n '/<!-- box1-calls-box2 -->/,/<!-- \/box1-calls-box2 -->/p' "$1/docs/CONTRACTS.md" 2>/dev/null |
        grep -o '`[A-Za-z_][A-Za-z0-9_]*`' | tr -d '`' | LC_ALL=C sort -u
}

check() { # objdir srcroot
    od=$1
    sr=$2
    bad=0
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-sym-XXXXXX") || return 2
    for f in $BOXES shared_contracts; do
        # shellcheck disable=SC2046
        defs $(objs "$od" "$f" "$sr") >"$tmp/def.$f"
        # shellcheck disable=SC2046
        undefs $(objs "$od" "$f" "$sr") >"$tmp/undef.$f"
    done
    if [ ! -s "$tmp/def.box1_tls" ] || [ ! -s "$tmp/def.box2_refill" ]; then
        echo "violation: no objects of box1_tls or box2_refill under $od (build the library first)"
        rm -rf "$tmp"
        return 1
    fi
    allowed_box1_calls "$sr" >"$tmp/allowed"
    if [ ! -s "$tmp/allowed" ]; then
        echo "violation: docs/CONTRACTS.md lists no Box 1 -> Box 2 entry points (markers missing)"
        bad=1
    fi
    for a in $BOXES shared_contracts; do
        for b in $BOXES; do
            [ "$a" = "$b" ] && continue
            LC_ALL=C comm -12 "$tmp/undef.$a" "$tmp/def.$b" >"$tmp/x"
            if [ "$a" = box1_tls ] && [ "$b" = box2_refill ]; then
                LC_ALL=C comm -23 "$tmp/x" "$tmp/allowed" >"$tmp/y"
                mv "$tmp/y" "$tmp/x"
                while read -r sym; do
                    echo "violation: box1_tls references $sym, defined in box2_refill and not a listed entry point"
                    bad=1
                done <"$tmp/x"
                continue
            fi
            while read -r sym; do
                echo "violation: $a references $sym, defined in $b"
                bad=1
            done <"$tmp/x"
        done
    done
    for f in $BOXES shared_contracts; do
        # shellcheck disable=SC2046
        symbol_edges $(objs "$od" "$f" "$sr") | awk -f "$HERE/lib/circles.awk" >"$tmp/circles"
        while read -r line; do
            echo "violation: $f: ${line#circle: } (by symbol)"
            bad=1
        done <"$tmp/circles"
    done
    rm -rf "$tmp"
    return $bad
}

# The test-only symbols that the given libraries or objects define or reference (nm reads the
# full symbol table: hidden and local symbols too), one a line.
test_only_symbols_in() { # files...
    nm -A "$@" 2>/dev/null | awk -v names="$TEST_ONLY_SYMBOLS" '
        BEGIN { n = split(names, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1 }
        NF >= 2 && ($NF in want) { print $NF }' | LC_ALL=C sort -u
}

# ---- suite mode ---------------------------------------------------------------------------
. "$HERE/lib/suite.sh"

# $tmpd/NAME: a copy of the build's objects (obj/) and of what the check reads of the sources
# (src/: CONTRACTS.md and an empty .c per object), for planting objects into.
copy_objects() { # name
    d="$tmpd/$1"
    mkdir -p "$d/obj" "$d/src/docs"
    cp "$repo/docs/CONTRACTS.md" "$d/src/docs/"
    for f in $BOXES shared_contracts; do
        mkdir -p "$d/obj/$f" "$d/src/$f"
        for o in $(objs "$repo/build/obj" "$f" "$repo"); do
            cp "$o" "$d/obj/$f/"
            : >"$d/src/$f/$(basename "${o%.o}").c"
        done
    done
}

# The copy plus one planted object compiled from C text into folder $3; the check must fail
# naming $4.
plant_case() { # name c-text folder expect
    copy_objects "$1"
    printf '%s\n' "$2" >"$d/src/$3/zz_planted.c"
    t_begin "$1"
    if ! $CC -c -o "$d/obj/$3/zz_planted.o" "$d/src/$3/zz_planted.c" 2>"$d/err"; then
        t_fail "$1" "could not compile the planted object: $(cat "$d/err")"
        return
    fi
    out=$(sh "$SELF" "$d/obj" "$d/src" 2>&1)
    t_reported "$1" $? "$out" "$4"
}

# Two planted objects of box2_refill that call each other: the check must name the circle.
circle_case() {
    copy_objects circle
    printf 'void zz_back(void);\nvoid zz_there(void) { zz_back(); }\n' >"$d/src/box2_refill/zz_there.c"
    printf 'void zz_there(void);\nvoid zz_back(void) { zz_there(); }\n' >"$d/src/box2_refill/zz_back.c"
    t_begin selftest_circle_by_symbol
    if ! $CC -c -o "$d/obj/box2_refill/zz_there.o" "$d/src/box2_refill/zz_there.c" 2>"$d/err" ||
        ! $CC -c -o "$d/obj/box2_refill/zz_back.o" "$d/src/box2_refill/zz_back.c" 2>>"$d/err"; then
        t_fail selftest_circle_by_symbol "could not compile the planted objects: $(cat "$d/err")"
        return
    fi
    out=$(sh "$SELF" "$d/obj" "$d/src" 2>&1)
    t_reported selftest_circle_by_symbol $? "$out" \
        "violation: box2_refill: zz_back -> zz_there -> zz_back\|violation: box2_refill: zz_there -> zz_back -> zz_there"
}

suite() {
    tmpd=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-symbols-XXXXXX") || exit 1
    trap 'rm -rf "$tmpd"' EXIT
    repo=$(cd "$HERE/.." && pwd)
    echo "[==========] Running tests of contract D (box symbol boundaries)."
    t_begin symbols_of_this_build
    if out=$(sh "$SELF" "$repo/build/obj" "$repo" 2>&1); then
        echo "    objects of $BOXES shared_contracts checked"
        t_ok symbols_of_this_build
    else
        t_fail symbols_of_this_build "$out"
    fi
    circle_case
    t_begin shipped_library_has_no_test_hooks
    missing=""
    for lib in "$repo/build/libhakmem.so" "$repo/build/libhakmem.a"; do
        [ -e "$lib" ] || missing="$missing ${lib#"$repo"/}"
    done
    found=$(test_only_symbols_in "$repo/build/libhakmem.so" "$repo/build/libhakmem.a")
    if [ -n "$missing" ]; then
        t_fail shipped_library_has_no_test_hooks "not built:$missing"
    elif [ -n "$found" ]; then
        t_fail shipped_library_has_no_test_hooks "the shipped library holds test-only symbols: $(echo $found)"
    else
        echo "    none of $TEST_ONLY_SYMBOLS in build/libhakmem.so, build/libhakmem.a"
        t_ok shipped_library_has_no_test_hooks
    fi
    # Writable data with initial values (.data) is mapped from the file, and the kernel maps
    # up to 64 KiB of neighbouring file pages on each fault, so one read of a big table there
    # makes most of it resident in every process. Tables start zeroed, in .bss (the arenas'
    # central lists: docs/ARCHITECTURE.md, "Idle bytes"), where only the pages written count.
    t_begin shipped_library_data_fits_a_page
    hex=$(readelf -SW "$repo/build/libhakmem.so" 2>/dev/null |
        sed -n 's/.* \.data  *PROGBITS  *[0-9a-f]*  *[0-9a-f]*  *\([0-9a-f]*\) .*/\1/p')
    data=${hex:+$((0x$hex))}
    if [ -z "$data" ]; then
        t_fail shipped_library_data_fits_a_page "no .data section found by readelf in build/libhakmem.so"
    elif [ "$data" -gt 4096 ]; then
        t_fail shipped_library_data_fits_a_page ".data of build/libhakmem.so is $data bytes (at most 4096): a big initialised table belongs in .bss"
    else
        echo "    .data of build/libhakmem.so: $data bytes"
        t_ok shipped_library_data_fits_a_page
    fi
    # The unwinder (box1_tls/stack.c) is libgcc's, linked into the library with its symbols
    # made local: loading libgcc_s.so.1 cost every process about 100 KiB resident (its
    # relocations and constructors) whether or not the profiler was on, and an exported copy
    # of _Unwind_* would take the place of libgcc_s's in C++ programs' exceptions.
    t_begin shipped_library_carries_its_unwinder
    needed=$(readelf -dW "$repo/build/libhakmem.so" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
    exported=$(nm -D --defined-only "$repo/build/libhakmem.so" 2>/dev/null | awk '$3 ~ /^_Unwind_/ {print $3}' | tr '\n' ' ')
    local_unwind=$(nm "$repo/build/libhakmem.so" 2>/dev/null | awk '$2 == "t" && $3 == "_Unwind_Backtrace"' | wc -l)
    if [ -n "$(echo " $needed" | grep ' libgcc_s')" ]; then
        t_fail shipped_library_carries_its_unwinder "build/libhakmem.so needs libgcc_s ($needed)"
    elif [ -n "$exported" ]; then
        t_fail shipped_library_carries_its_unwinder "build/libhakmem.so exports $exported"
    elif [ "$local_unwind" -ne 1 ]; then
        t_fail shipped_library_carries_its_unwinder "no local _Unwind_Backtrace in build/libhakmem.so"
    else
        echo "    build/libhakmem.so needs: $needed"
        t_ok shipped_library_carries_its_unwinder
    fi
    t_begin selftest_test_library_has_the_hooks
    found=$(test_only_symbols_in "$repo/build/test-hooks/libhakmem.a")
    if [ "$(echo $found)" = "$(echo "$TEST_ONLY_SYMBOLS" | tr ' ' '\n' | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')" ]; then
        t_ok selftest_test_library_has_the_hooks
    else
        t_fail selftest_test_library_has_the_hooks "build/test-hooks/libhakmem.a should hold every one of $TEST_ONLY_SYMBOLS; nm found: ${found:-none}"
    fi
    plant_case selftest_box2_calls_box3 \
        'unsigned long hak_ace_publishes(void); unsigned long zz(void) { return hak_ace_publishes(); }' \
        box2_refill "box2_refill references hak_ace_publishes, defined in box3_ace"
    plant_case selftest_box3_reads_box2_data \
        'extern char hak_central[]; char *zz(void) { return hak_central; }' \
        box3_ace "box3_ace references hak_central, defined in box2_refill"
    plant_case selftest_box1_unlisted_box2_call \
        'int hak_flush_central(unsigned long); int zz(void) { return hak_flush_central(0); }' \
        box1_tls "box1_tls references hak_flush_central"
    plant_case selftest_shared_calls_box1 \
        'void hak_tcache_drain(void); void zz(void) { hak_tcache_drain(); }' \
        shared_contracts "shared_contracts references hak_tcache_drain, defined in box1_tls"

    t_summary
}

case "${1:-}" in
--suite) suite ;;
esac
od=$(cd "${1:-$HERE/../build/obj}" && pwd) || exit 2
sr=$(cd "${2:-$HERE/..}" && pwd) || exit 2
if check "$od" "$sr"; then
    echo "contract D by symbol: ok in $od"
    exit 0
fi
exit 1
