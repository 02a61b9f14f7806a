#!/bin/sh
# tests/run.sh - run every test suite; called by `make test` after the binaries are built.
#
# Each suite's output (stderr merged into stdout: CMocka prints its summary on stderr) is shown,
# followed by one line "suite <name>: N passed, N failed". The last line is the total
# "N passed, N failed", counting individual CMocka tests. A suite that crashes, times out, did
# not build, or prints no complete CMocka summary counts as failed (at least one failure, plus
# every announced test that did not report OK). Exit status 1 if anything failed.
#
# Environment:
#   HAKMEM_TEST_PRELOAD   the .so to preload (default build/libhakmem.so; empty = none, which
#                         validates the tests against glibc)
#   HAKMEM_TEST_LONG=1    longer versions (make test-long)
#   HAKMEM_TEST_TIMEOUT   seconds per suite (default 300, or 1800 with HAKMEM_TEST_LONG=1)
#   HAKMEM_TEST_FILTER    run only suites whose name contains this string
#   HAKMEM_TEST_TIERS     the tiers to run (default all: "boundaries unit api stress cxx misuse
#                         integration fuzz"); make test-sanitize runs "unit stress"
#   HAKMEM_TEST_BUILD     where the test binaries are (default build/tests)
#   HAKMEM_TEST_SKIP      suite names (e.g. "unit/test_box2_backend") not to run, space-separated
set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
B=${HAKMEM_TEST_BUILD:-"$ROOT/build/tests"}
case "$B" in /*) ;; *) B="$ROOT/$B" ;; esac
TIERS=${HAKMEM_TEST_TIERS:-"boundaries unit api stress cxx misuse integration fuzz"}
SO=${HAKMEM_TEST_PRELOAD-"$ROOT/build/libhakmem.so"}
export HAKMEM_TEST_PRELOAD="$SO"
if [ "${HAKMEM_TEST_LONG:-0}" != 0 ]; then
    TIMEOUT=${HAKMEM_TEST_TIMEOUT:-1800}
else
    TIMEOUT=${HAKMEM_TEST_TIMEOUT:-300}
fi
FILTER=${HAKMEM_TEST_FILTER:-}
LOGDIR="$B/logs"
mkdir -p "$LOGDIR"
# The allocator under test must not pick up a user's tuning from the environment.
unset POOL_REFILL_COUNT POOL_ACE POOL_ACE_INTERVAL_MS POOL_ACE_MIN POOL_ACE_MAX POOL_ACE_RING \
    POOL_ACE_BUDGET_MIB \
    POOL_ACE_LOG HAKMEM_STATS HAKMEM_STATS_FILE HAKMEM_DEBUG HAKMEM_DECAY_MS HAKMEM_TCACHE_MAX_KIB \
    HAKMEM_LARGE_CACHE_MIB HAKMEM_LARGE_THREAD_KIB HAKMEM_PURGER LD_PRELOAD

total_pass=0
total_fail=0
summary=""

# Count a log: prints "passed failed note".
count_log() { # log rc
    awk -v rc="$2" '
    /^\[==========\] Running [0-9]+ test/ { announced += $3 }
    /^\[==========\] [0-9]+ test\(s\) run\./ { groups_done++ }
    /^\[       OK \] / { ok++ }
    /^\[  PASSED  \] [0-9]+ test/ { split($0, a, "] "); split(a[2], b, " "); pass += b[1]; sums++ }
    /^\[  FAILED  \] [0-9]+ test\(s\), listed below:/ { split($0, a, "] "); split(a[2], b, " "); fail += b[1] }
    END {
        note = ""
        if (sums == 0 || groups_done == 0) {
            # no summary: crashed, killed, or not a CMocka program
            pass = ok; fail = announced - ok; if (fail < 1) fail = 1
            note = "no complete CMocka summary"
        } else if (rc != 0 && fail == 0) {
            fail = 1; note = "exit status " rc " after an all-passed summary"
        }
        if (rc == 124 || rc == 137) note = note (note ? "; " : "") "timed out"
        else if (rc > 128) note = note (note ? "; " : "") "killed by signal " (rc - 128)
        printf "%d %d %s\n", pass, fail, note
    }' "$1"
}

run_suite() { # name preload(0/1) command...
    name=$1
    preload=$2
    shift 2
    case "$name" in *"$FILTER"*) ;; *) return 0 ;; esac
    case " ${HAKMEM_TEST_SKIP:-} " in *" $name "*) echo "=== $name: skipped (HAKMEM_TEST_SKIP)"; return 0 ;; esac
    log="$LOGDIR/$(echo "$name" | tr '/' '_').log"
    echo "=== $name"
    if [ "$preload" = 1 ] && [ -n "$SO" ]; then
        if [ ! -f "$SO" ]; then
            echo "preload library $SO does not exist" >"$log"
            rc=1
        else
            timeout -k 10 "$TIMEOUT" env LD_PRELOAD="$SO" "$@" >"$log" 2>&1 </dev/null
            rc=$?
        fi
    else
        timeout -k 10 "$TIMEOUT" "$@" >"$log" 2>&1 </dev/null
        rc=$?
    fi
    cat "$log"
    set -- $(count_log "$log" "$rc")
    p=$1
    f=$2
    shift 2
    note="$*"
    line="suite $name: $p passed, $f failed${note:+ ($note)}"
    echo "$line"
    summary="$summary$line
"
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
}

missing_suite() { # name
    case "$1" in *"$FILTER"*) ;; *) return 0 ;; esac
    line="suite $1: 0 passed, 1 failed (binary did not build)"
    echo "=== $1"
    echo "$line"
    summary="$summary$line
"
    total_fail=$((total_fail + 1))
}

run_tier() { # tier preload
    for src in tests/"$1"/test_*.c; do
        [ -e "$src" ] || continue
        base=$(basename "$src" .c)
        bin="$B/$1/$base"
        if [ -x "$bin" ]; then
            run_suite "$1/$base" "$2" "$bin"
        else
            missing_suite "$1/$base"
        fi
    done
}

# C++ suites: each source gives two binaries, one run under the preload and one linked with
# -lhakmem (no preload).
run_cxx_tier() {
    for src in tests/cxx/test_*.cc; do
        [ -e "$src" ] || continue
        base=$(basename "$src" .cc)
        for variant in "$base:1" "${base}_linked:0"; do
            name=${variant%:*}
            if [ -x "$B/cxx/$name" ]; then
                run_suite "cxx/$name" "${variant##*:}" "$B/cxx/$name"
            else
                missing_suite "cxx/$name"
            fi
        done
    done
}

for tier in $TIERS; do
    case "$tier" in
    boundaries)
        run_suite boundaries 0 sh tests/check_boundaries.sh --suite
        run_suite circles 0 sh tests/check_circles.sh --suite
        run_suite symbols 0 sh tests/check_symbols.sh --suite
        ;;
    api | stress) run_tier "$tier" 1 ;;
    cxx) run_cxx_tier ;;
    *) run_tier "$tier" 0 ;;
    esac
done

echo "=== summary (preload: ${SO:-none, glibc})"
printf '%s' "$summary"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
