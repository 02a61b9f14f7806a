#!/bin/sh
# tests/check_circles.sh - no include circles inside a folder. A module is a .c file with the
# .h of the same name (span.c and span.h); module a depends on module b when a.c or a.h
# includes b.h. Within each box (box1_tls, box2_refill, box3_ace) and shared_contracts/, no two
# modules may depend on each other, directly or around a longer circle: a header belongs to
# the module that defines what it declares, and the modules stack in one order
# (docs/CONTRACTS.md, contract D; tests/check_symbols.sh checks the same by symbol).
#
#   sh tests/check_circles.sh [ROOT]
#       Check the tree at ROOT (default: this repository): prints each circle as
#       "circle: FOLDER: a -> b -> a (a.c:b.h; b.h:a.h)" and exits 1 if there is any.
#   sh tests/check_circles.sh --suite
#       The suite `make test` runs: the check per folder on this repository, plus self-tests
#       on planted trees. CMocka-style lines for tests/run.sh.
set -u

FOLDERS="box1_tls box2_refill box3_ace shared_contracts"
HERE=$(cd "$(dirname "$0")" && pwd)
SELF="$HERE/$(basename "$0")"
AWK_CIRCLES="$HERE/lib/circles.awk"

# "from to file:header" for each #include "..." of a .c or .h of $2 that names a header of
# the same folder (a path relative to the file, or to the root).
edges() { # root folder
    dir=$(realpath -m "$1/$2")
    [ -d "$dir" ] || return 0
    for f in $(find "$dir" -maxdepth 1 -type f \( -name '*.c' -o -name '*.h' \) | LC_ALL=C sort); do
        b=$(basename "$f")
        sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" |
            while read -r name; do
                if [ -e "$dir/$name" ]; then
                    r=$(realpath -m "$dir/$name")
                elif [ -e "$1/$name" ]; then
                    r=$(realpath -m "$1/$name")
                else
                    continue # a system or liburcu header
                fi
                [ "$(dirname "$r")" = "$dir" ] || continue
                t=$(basename "$r")
                echo "${b%.*} ${t%.*} $b:$t"
            done
    done
}

check_folder() { # root folder
    edges "$1" "$2" | awk -f "$AWK_CIRCLES" | sed "s/^circle: /circle: $2: /"
}

check() { # root
    out=""
    for f in $FOLDERS; do
        out="$out$(check_folder "$1" "$f")"
    done
    [ -z "$out" ] && return 0
    echo "$out"
    return 1
}

# ---- suite mode ---------------------------------------------------------------------------
. "$HERE/lib/suite.sh"

plant() { # dir file text
    mkdir -p "$(dirname "$1/$2")"
    printf '%s\n' "$3" >"$1/$2"
}

suite() {
    tmpd=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-circles-XXXXXX") || exit 1
    trap 'rm -rf "$tmpd"' EXIT
    repo=$(cd "$HERE/.." && pwd)
    echo "[==========] Running tests of contract D (no include circles inside a folder)."
    for f in $FOLDERS; do
        t_begin "circles_$f"
        if out=$(check_folder "$repo" "$f") && [ -z "$out" ]; then
            t_ok "circles_$f"
        else
            t_fail "circles_$f" "$out"
        fi
    done

    # A clean planted tree passes: a.c -> b.h, b.c -> c.h, a chain.
    d="$tmpd/clean"
    plant "$d" box2_refill/a.c '#include "b.h"'
    plant "$d" box2_refill/b.h '#include "c.h"'
    plant "$d" box2_refill/b.c '#include "b.h"'
    plant "$d" box2_refill/c.h '/* nothing */'
    t_begin selftest_clean_tree_passes
    if out=$(sh "$SELF" "$d" 2>&1); then t_ok selftest_clean_tree_passes
    else t_fail selftest_clean_tree_passes "$out"; fi

    # Two modules whose files include each other's headers (span.c / debug.h, debug.h / span.h).
    d="$tmpd/pair"
    plant "$d" box2_refill/span.h '/* span */'
    plant "$d" box2_refill/span.c '#include "span.h"
#include "debug.h"'
    plant "$d" box2_refill/debug.h '#include "span.h"'
    t_begin selftest_detects_a_pair
    out=$(sh "$SELF" "$d" 2>&1)
    t_reported selftest_detects_a_pair $? "$out" \
        "circle: box2_refill: .*span -> debug\|circle: box2_refill: .*debug -> span"

    # A longer circle through root-relative includes (init -> stats -> thread -> init).
    d="$tmpd/three"
    plant "$d" box2_refill/init.c '#include "box2_refill/stats.h"'
    plant "$d" box2_refill/stats.c '#include "box2_refill/thread.h"'
    plant "$d" box2_refill/thread.h '#include "box2_refill/init.h"'
    plant "$d" box2_refill/stats.h '/* */'
    plant "$d" box2_refill/init.h '/* */'
    t_begin selftest_detects_a_longer_circle
    out=$(sh "$SELF" "$d" 2>&1)
    t_reported selftest_detects_a_longer_circle $? "$out" "init -> stats -> thread -> init"

    # The real tree with one include added: central.h includes refill.h (refill.c includes
    # central.h).
    d="$tmpd/real"
    mkdir -p "$d"
    for f in $FOLDERS include; do cp -R "$repo/$f" "$d/"; done
    printf '#include "refill.h"\n' >>"$d/box2_refill/central.h"
    t_begin selftest_real_tree_copy_with_planted_circle
    out=$(sh "$SELF" "$d" 2>&1)
    t_reported selftest_real_tree_copy_with_planted_circle $? "$out" \
        "circle: box2_refill:.*central.h:refill.h"
    t_summary
}

case "${1:-}" in
--suite) suite ;;
esac
root=$(cd "${1:-$HERE/..}" && pwd) || exit 2
if check "$root"; then
    echo "no include circles in $FOLDERS"
    exit 0
fi
exit 1
