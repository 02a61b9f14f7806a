# tests/lib/suite.sh - CMocka-style result lines for the shell suites (check_boundaries.sh,
# check_symbols.sh, check_circles.sh), so tests/run.sh counts them like the CMocka ones. Source
# it, then call t_begin NAME before each test, t_ok NAME or t_fail NAME WHY after it (or
# t_reported for a self-test that expects its check to fail), and t_summary last (it exits: 0
# if every test passed, 1 otherwise).
run=0
passed=0
failed_names=""
t_begin() { echo "[ RUN      ] $1"; run=$((run + 1)); }
t_ok() { echo "[       OK ] $1"; passed=$((passed + 1)); }
t_fail() { echo "$2" | sed 's/^/    /'; echo "[  FAILED  ] $1"; failed_names="$failed_names $1"; }
# A self-test of a check on a planted tree: NAME passes if the check exited 1 (RC) and its
# output OUT matches PATTERN (grep's basic regular expression).
t_reported() { # name rc out pattern
    if [ "$2" -eq 1 ] && echo "$3" | grep -q "$4"; then t_ok "$1"
    else t_fail "$1" "planted violation not reported (rc=$2, expected '$4'): $3"; fi
}
t_summary() {
    nfail=$((run - passed))
    echo "[==========] $run test(s) run."
    echo "[  PASSED  ] $passed test(s)."
    if [ $nfail -gt 0 ]; then
        echo "[  FAILED  ] $nfail test(s), listed below:"
        for n in $failed_names; do echo "[  FAILED  ] $n"; done
        exit 1
    fi
    exit 0
}
