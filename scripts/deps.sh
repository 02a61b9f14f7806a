#!/bin/sh
# scripts/deps.sh test|bench - install the Debian packages `make test` or `make bench` needs.
# As root: apt-get installs what is missing. Otherwise: print the exact apt-get line and fail.
set -eu
kind=${1:-test}
pkgs="build-essential pkg-config liburcu-dev libcmocka-dev linux-perf procps sqlite3 git python3 valgrind clang libclang-rt-14-dev redis-server redis-tools google-perftools graphviz"
if [ "$kind" = bench ]; then
    # lua5.4, with redis-server, redis-tools and g++ from the list above: the real-program
    # workloads lua, redis and gcc (bench/realprog.py)
    pkgs="$pkgs libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4 gnuplot-nox valgrind time lua5.4"
fi
missing=""
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed'; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "hakmem: missing Debian packages:$missing" >&2
    echo "hakmem: run as root:  apt-get update && apt-get install -y$missing" >&2
    exit 1
fi
echo "hakmem: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
