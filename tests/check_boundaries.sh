#!/bin/sh
# tests/check_boundaries.sh - contract D: a box (box1_tls, box2_refill, box3_ace) includes only
# its own headers, shared_contracts/, the public include/hakmem.h, and system or liburcu
# headers; never a header of another box, directly or through another header. shared_contracts/
# includes no box header at all. (tests/check_symbols.sh checks the same contract by symbol.)
#
#   sh tests/check_boundaries.sh [--mode grep|cc|all] [ROOT]
#       Check the tree at ROOT (default: this repository). Prints one line per violation and
#       exits 1 if there is any, 0 otherwise.
#         grep: read the #include lines of every .c and .h file of each box;
#         cc:   ask the compiler (gcc -MM -I. <liburcu-bp cflags>) for every file's real
#               dependency list: no path may lie inside another box's folder.
#   sh tests/check_boundaries.sh --suite
#       The suite `make test` runs: both checks per box on this repository, plus self-tests
#       that plant violations in temporary trees and prove each check catches them. Prints
#       CMocka-style lines so tests/run.sh counts it like the other suites.
set -u

BOXES="box1_tls box2_refill box3_ace"
# Folders whose includes are checked: the boxes, and shared_contracts/ (which may include
# only itself, include/ and system headers: a box header behind it would leak to every box).
CHECKED="$BOXES shared_contracts"
CC=${CC:-gcc}
URCU_CFLAGS=$(pkg-config --cflags liburcu-bp 2>/dev/null || true)
HERE=$(cd "$(dirname "$0")" && pwd)
SELF="$HERE/$(basename "$0")"

# Print the top-level folder of an absolute path inside $root, or nothing if outside.
top_dir_in_root() { # root path
    case "$2" in
    "$1"/*) rel=${2#"$1"/}; echo "${rel%%/*}" ;;
    esac
}

# Is $2 (a top-level folder) allowed for files of box $1?
allowed_dir() { # box top
    case "$2" in
    "$1" | shared_contracts | include) return 0 ;;
    *) return 1 ;;
    esac
}

box_files() { # root box [ext-pattern]
    [ -d "$1/$2" ] || return 0
    find "$1/$2" -type f \( -name '*.c' -o -name '*.h' \) | LC_ALL=C sort
}

# grep check of one box: prints violations, returns 1 if any.
check_grep_box() { # root box
    root=$1
    box=$2
    bad=0
    for f in $(box_files "$root" "$box"); do
        dir=$(dirname "$f")
        # "<kind> <name>" for each include line; kind is < or "
        sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*\([<"]\)\([^>"]*\)[>"].*/\1 \2/p' "$f" >"$tmpf"
        while read -r kind name; do
            for other in $BOXES; do
                [ "$other" = "$box" ] && continue
                case "/$name/" in
                */"$other"/*)
                    echo "violation: ${f#"$root"/}: #include $kind$name$( [ "$kind" = "<" ] && echo ">" || echo "\"") names another box ($other)"
                    bad=1
                    continue 2
                    ;;
                esac
            done
            resolved=""
            if [ "$kind" = '"' ] && [ -e "$dir/$name" ]; then
                resolved=$(realpath -m "$dir/$name")
            elif [ -e "$root/$name" ]; then
                resolved=$(realpath -m "$root/$name")
            fi
            [ -n "$resolved" ] || continue # a system or liburcu header
            top=$(top_dir_in_root "$root" "$resolved")
            if [ -n "$top" ] && ! allowed_dir "$box" "$top"; then
                echo "violation: ${f#"$root"/}: #include $kind$name$( [ "$kind" = "<" ] && echo ">" || echo "\"") resolves to ${resolved#"$root"/} (folder $top/)"
                bad=1
            fi
        done <"$tmpf"
    done
    return $bad
}

# compiler check of one box: prints violations, returns 1 if any.
check_cc_box() { # root box
    root=$1
    box=$2
    bad=0
    for f in $(box_files "$root" "$box"); do
        rel=${f#"$root"/}
        # shellcheck disable=SC2086
        if ! (cd "$root" && $CC -MM -I. $URCU_CFLAGS "$rel") >"$tmpf" 2>"$tmpf.err"; then
            echo "violation: $rel: the compiler could not list its dependencies:"
            sed 's/^/    /' "$tmpf.err"
            bad=1
            continue
        fi
        # drop the "target:" word and the line continuations; one dependency per line
        tr ' \\' '\n\n' <"$tmpf" | sed '/^$/d; /:$/d' >"$tmpf.deps"
        while read -r dep; do
            case "$dep" in
            /*) abs=$(realpath -m "$dep") ;;
            *) abs=$(realpath -m "$root/$dep") ;;
            esac
            top=$(top_dir_in_root "$root" "$abs")
            [ -n "$top" ] || continue
            for other in $BOXES; do
                if [ "$top" = "$other" ] && [ "$other" != "$box" ]; then
                    echo "violation: $rel depends on ${abs#"$root"/} (another box: $other)"
                    bad=1
                fi
            done
        done <"$tmpf.deps"
    done
    return $bad
}

check_tree() { # mode root
    rc=0
    for box in $CHECKED; do
        if [ "$1" = grep ] || [ "$1" = all ]; then
            check_grep_box "$2" "$box" || rc=1
        fi
        if [ "$1" = cc ] || [ "$1" = all ]; then
            check_cc_box "$2" "$box" || rc=1
        fi
    done
    return $rc
}

# ---- suite mode ---------------------------------------------------------------------------
. "$HERE/lib/suite.sh"

# A tree that obeys the contract: own headers, shared_contracts (by -I. and relative),
# include/, system and liburcu headers.
make_clean_tree() { # dir
    mkdir -p "$1/box1_tls" "$1/box2_refill" "$1/box3_ace" "$1/shared_contracts" "$1/include"
    printf '#include <stdint.h>\ntypedef int contract_t;\n' >"$1/shared_contracts/contract.h"
    printf 'void hk(void);\n' >"$1/include/hakmem.h"
    printf '#include "shared_contracts/contract.h"\nint a_fn(void);\n' >"$1/box1_tls/a.h"
    printf '#include "a.h"\n#include "box1_tls/a.h"\n#include "include/hakmem.h"\n#include <stdio.h>\n#include <urcu-bp.h>\nint a_fn(void) { return 1; }\n' >"$1/box1_tls/a.c"
    printf '#include "../shared_contracts/contract.h"\nint b_fn(void);\n' >"$1/box2_refill/b.h"
    printf '#include "b.h"\n#include <pthread.h>\nint b_fn(void) { return 2; }\n' >"$1/box2_refill/b.c"
    printf '#include "shared_contracts/contract.h"\n#include <urcu/uatomic.h>\nint c_fn(void) { return 3; }\n' >"$1/box3_ace/c.c"
}

suite() {
    tmpd=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-boundaries-XXXXXX") || exit 1
    trap 'rm -rf "$tmpd"' EXIT
    repo=$(cd "$HERE/.." && pwd)
    echo "[==========] Running tests of contract D (box include boundaries)."
    for box in $CHECKED; do
        for mode in grep cc; do
            name="${mode}_${box}"
            t_begin "$name"
            n=$(box_files "$repo" "$box" | wc -l)
            if out=$(tmpf="$tmpd/t" && "check_${mode}_box" "$repo" "$box" 2>&1); then
                echo "    $n file(s) of $box checked"
                t_ok "$name"
            else
                t_fail "$name" "$out"
            fi
        done
    done

    # self-tests: each check on trees we control
    clean="$tmpd/clean"
    make_clean_tree "$clean"
    t_begin selftest_clean_tree_passes
    if out=$(sh "$SELF" --mode all "$clean" 2>&1); then t_ok selftest_clean_tree_passes
    else t_fail selftest_clean_tree_passes "a tree that obeys contract D was rejected: $out"; fi

    direct="$tmpd/direct"
    make_clean_tree "$direct"
    printf '#include "box2_refill/b.h"\nint bad(void) { return b_fn(); }\n' >"$direct/box1_tls/planted.c"
    for mode in grep cc; do
        name="selftest_${mode}_detects_direct_include"
        t_begin "$name"
        out=$(sh "$SELF" --mode "$mode" "$direct" 2>&1)
        rc=$?
        if [ $rc -eq 1 ] && echo "$out" | grep -q 'box1_tls/planted.c'; then t_ok "$name"
        else t_fail "$name" "planted box1_tls -> box2_refill include not reported (rc=$rc): $out"; fi
    done

    rel="$tmpd/relative"
    make_clean_tree "$rel"
    printf '#include "../box1_tls/a.h"\n' >"$rel/box3_ace/planted.h"
    for mode in grep cc; do
        name="selftest_${mode}_detects_relative_include"
        t_begin "$name"
        out=$(sh "$SELF" --mode "$mode" "$rel" 2>&1)
        rc=$?
        if [ $rc -eq 1 ] && echo "$out" | grep -q 'box3_ace/planted.h'; then t_ok "$name"
        else t_fail "$name" "planted box3_ace -> ../box1_tls include not reported (rc=$rc): $out"; fi
    done

    # an include of another box hidden behind a shared header: only the compiler sees it
    ind="$tmpd/indirect"
    make_clean_tree "$ind"
    printf '#include "../box2_refill/b.h"\n' >"$ind/shared_contracts/leak.h"
    printf '#include "shared_contracts/leak.h"\nint bad(void) { return b_fn(); }\n' >"$ind/box1_tls/planted.c"
    t_begin selftest_cc_detects_indirect_include
    out=$(sh "$SELF" --mode cc "$ind" 2>&1)
    rc=$?
    if [ $rc -eq 1 ] && echo "$out" | grep -q 'box1_tls/planted.c depends on box2_refill/b.h'; then
        t_ok selftest_cc_detects_indirect_include
    else t_fail selftest_cc_detects_indirect_include "indirect dependency not reported (rc=$rc): $out"; fi

    # a shared header that includes a box header: caught in shared_contracts itself
    sh_="$tmpd/shared"
    make_clean_tree "$sh_"
    printf '#include "box3_ace/c.h"\n' >"$sh_/shared_contracts/planted.h"
    printf 'int c_fn(void);\n' >"$sh_/box3_ace/c.h"
    t_begin selftest_grep_detects_shared_including_a_box
    out=$(sh "$SELF" --mode grep "$sh_" 2>&1)
    rc=$?
    if [ $rc -eq 1 ] && echo "$out" | grep -q 'shared_contracts/planted.h'; then t_ok selftest_grep_detects_shared_including_a_box
    else t_fail selftest_grep_detects_shared_including_a_box "planted shared_contracts -> box3_ace include not reported (rc=$rc): $out"; fi

    # the real tree, copied, with one planted violation
    copy="$tmpd/copy"
    mkdir -p "$copy"
    for d in $BOXES shared_contracts include; do
        mkdir -p "$copy/$d"
        [ -d "$repo/$d" ] && cp -R "$repo/$d/." "$copy/$d/"
    done
    printf 'int planted_box1(void);\n' >"$copy/box1_tls/zz_planted.h"
    printf '#include "box1_tls/zz_planted.h"\nint planted(void) { return planted_box1(); }\n' >"$copy/box3_ace/zz_planted.c"
    t_begin selftest_real_tree_copy_with_planted_violation
    out=$(sh "$SELF" --mode all "$copy" 2>&1)
    rc=$?
    ng=$(echo "$out" | grep -c 'box3_ace/zz_planted.c')
    if [ $rc -eq 1 ] && [ "$ng" -ge 2 ]; then t_ok selftest_real_tree_copy_with_planted_violation
    else t_fail selftest_real_tree_copy_with_planted_violation "expected a grep and a cc report for box3_ace/zz_planted.c (rc=$rc): $out"; fi

    t_summary
}

mode=all
case "${1:-}" in
--suite) suite ;;
--mode)
    mode=${2:?--mode needs grep, cc or all}
    shift 2
    ;;
esac
case "$mode" in grep | cc | all) ;; *) echo "unknown mode $mode" >&2; exit 2 ;; esac
root=$(cd "${1:-$HERE/..}" && pwd) || exit 2
tmpf=$(mktemp "${TMPDIR:-/tmp}/hakmem-bnd-XXXXXX") || exit 2
trap 'rm -f "$tmpf" "$tmpf.err" "$tmpf.deps"' EXIT
if check_tree "$mode" "$root"; then
    echo "contract D: ok ($mode) in $root"
    exit 0
fi
exit 1
