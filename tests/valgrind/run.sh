#!/bin/sh
# tests/valgrind/run.sh - `make test-valgrind`: memcheck reports a program's own bugs when
# the program runs on hakmem's valgrind build (build/valgrind/libhakmem.so).
# --soname-synonyms=somalloc=nouserintercepts keeps memcheck from replacing hakmem's malloc.
set -u
cd "$(dirname "$0")/../.." || exit 2
SO=$(pwd)/build/valgrind/libhakmem.so
BIN=build/tests/valgrind/planted
LOG=build/tests/valgrind/planted.log
mkdir -p build/tests/valgrind
cc -O0 -g -fno-builtin tests/valgrind/planted.c -o "$BIN" || exit 2
LD_PRELOAD="$SO" valgrind --soname-synonyms=somalloc=nouserintercepts --leak-check=full \
    "$BIN" >"$LOG" 2>&1
cat "$LOG"
pass=0
fail=0
check() { # description, grep -E pattern (over the whole log)
    if grep -Eq "$2" "$LOG"; then
        echo "ok: $1"
        pass=$((pass + 1))
    else
        echo "FAILED: $1 (no match for: $2)"
        fail=$((fail + 1))
    fi
}
line() { grep -n "PLANTED: $1" tests/valgrind/planted.c | cut -d: -f1; }
check "hakmem's malloc is the one in use" 'malloc \(api\.c:'
check "the planted leak is definitely lost" 'definitely lost: 100 bytes in 1 blocks'
grep -A1 'Invalid read of size 1' "$LOG" | grep -q "planted.c:$(line 'read after free'))" &&
    { echo "ok: read after free at planted.c:$(line 'read after free')"; pass=$((pass + 1)); } ||
    { echo "FAILED: no invalid read at planted.c:$(line 'read after free')"; fail=$((fail + 1)); }
grep -A1 'Invalid read of size 1' "$LOG" | grep -q "planted.c:$(line 'read past the end'))" &&
    { echo "ok: read past the end at planted.c:$(line 'read past the end')"; pass=$((pass + 1)); } ||
    { echo "FAILED: no invalid read at planted.c:$(line 'read past the end')"; fail=$((fail + 1)); }
check "nothing else is reported" 'ERROR SUMMARY: 3 errors from 3 contexts'
check "the program ran to the end" '^done '
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
