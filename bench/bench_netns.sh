#!/bin/sh
# Sets up and tears down 1, 10 and 50 allocation namespaces through the
# agent-side API (netns_add / netns_del, each a `nomclient netns-helper`),
# 1 to 8 helpers at a time, and prints where the time goes. Root only.
# Uses its own bridge, subnet and network name, and removes what it made
# (namespaces, veths, the bridge, leases, rules, the shared CNI chains if
# they were not there before, ip_forward if it was off).
#   sh bench/bench_netns.sh [COUNTS] [PARALLELS]   e.g. "1 10 50" "1 2 4 8"
set -u
BUILD=${BUILD:-build}
COUNTS=${1:-1 10 50}
PARALLEL=${2:-1 2 4 8}
[ "$(id -u)" = 0 ] || { echo "bench_netns: run as root"; exit 1; }
make -s --no-print-directory nomclient "$BUILD/bench/bench_netns" || exit 1
STATE=$(mktemp -d /tmp/bench-netns.XXXXXX)
OPTS="-helper $(pwd)/nomclient -bridge ncbench0 -subnet 10.255.66.0/24 -network ncbench -state $STATE"
. "$(dirname "$0")/../netns/cni_teardown.sh"
cni_snapshot
cleanup() {
    "$BUILD/bench/bench_netns" $OPTS leftovers -clean >/dev/null 2>&1
    rm -rf "$STATE"
    cni_teardown ncbench0 10.255.66.0/24 ncbench
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "netns: ADD then DEL of N allocations (bridge mode, one mapped port each)"
for n in $COUNTS; do
    for p in $PARALLEL; do
        [ "$p" -gt "$n" ] && continue
        echo "== $n allocation(s), $p helper(s) at a time"
        "$BUILD/bench/bench_netns" $OPTS bench "$n" "$p" || echo "   (failures above)"
    done
done
