#!/bin/sh
# `make bench-checks`: our check engine against haproxy's health checks, on
# the same local target (bench_checks serve: a small epoll server in its own
# process), N = 1000, 2000, 5000 checks of each kind at a 1s interval.
# Printed, not asserted. For every N and kind (http, tcp) and both checkers:
#   us/probe   CPU (user+sys) per probe in the measured window
#   s/1k       the same, CPU seconds per 1000 probes
#   RSS        resident memory of the checker process at the end
#   B/check    memory per check (ours: heap and RSS growth over the checks;
#              haproxy: (RSS - RSS with one server) / N)
#   late p50/p99  ours: probe start minus its scheduled time, measured in
#              the engine; haproxy has no schedule to compare with, so both
#              rows also show the target's view: |gap between two probes of
#              one target - 1s| (jitter), which is what can be measured for it
# Env: BENCH_SECONDS (default 10) per measurement, BENCH_NS ("1000 2000 5000").
set -u
# As root, run in a network namespace of our own: its loopback carries only
# this traffic (no firewall or conntrack rules, no other tests' sockets),
# and its TCP counters (ActiveOpens) count exactly the checkers' probes.
if [ -z "${BENCH_IN_NETNS:-}" ] && [ "$(id -u)" = 0 ] &&
    command -v unshare >/dev/null 2>&1 && command -v ip >/dev/null 2>&1 &&
    unshare -n true 2>/dev/null; then
    export BENCH_IN_NETNS=1
    exec unshare -n sh -c 'ip link set lo up && exec sh "$0"' "$0"
fi
BUILD=${BUILD:-build}
B=$BUILD/bench/bench_checks
DUR=${BENCH_SECONDS:-10}
NS=${BENCH_NS:-"1000 2000 5000"}
HZ=$(getconf CLK_TCK)
make --no-print-directory -s "$B" || exit 1

tmp=$(mktemp -d /tmp/nomclient-bench-checks.XXXXXX)
SRV=""
HAP=""
cleanup() {
    [ -n "$HAP" ] && kill "$HAP" 2>/dev/null
    [ -n "$SRV" ] && kill "$SRV" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# two free ports for the target
HP=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
TP=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
FP=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
"$B" serve "$HP" "$TP" "$tmp/stats" &
SRV=$!
sleep 0.3

# target_stats: what the target saw since the previous call
target_stats() {
    rm -f "$tmp/stats"
    kill -USR1 "$SRV"
    i=0
    while [ ! -s "$tmp/stats" ] && [ $i -lt 50 ]; do sleep 0.05; i=$((i + 1)); done
    cat "$tmp/stats"
}
field() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }

active_opens() { awk '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "ActiveOpens") c = i; h = 1 } else print $c }' /proc/net/snmp; }
proc_cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
proc_rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

haproxy_cfg() { # N KIND > cfg
    n=$1
    kind=$2
    cat <<EOF
global
    maxconn 8000
defaults
    timeout connect 1s
    timeout check 1s
    timeout client 10s
    timeout server 10s
frontend unused
    mode tcp
    bind 127.0.0.1:$FP
    default_backend checks
EOF
    if [ "$kind" = http ]; then
        printf 'backend checks\n    mode http\n    option httpchk GET /health\n'
        port=$HP
    else
        printf 'backend checks\n    mode tcp\n    option tcp-check\n'
        port=$TP
    fi
    awk -v n="$n" -v port="$port" 'BEGIN {
        for (k = 0; k < n; k++) {
            a = k + 1
            printf "    server s%d 127.1.%d.%d:%d check inter 1s\n", k, int(a / 256), a % 256, port
        }
    }'
}

# run_haproxy N KIND: sets H_US H_RSS H_PROBES H_J50 H_J99
run_haproxy() {
    haproxy_cfg "$1" "$2" >"$tmp/h.cfg"
    haproxy -db -f "$tmp/h.cfg" >"$tmp/h.log" 2>&1 &
    HAP=$!
    sleep 2.5 # start-up and one interval
    target_stats >/dev/null
    o0=$(active_opens)
    c0=$(proc_cpu_ticks "$HAP")
    sleep "$DUR"
    c1=$(proc_cpu_ticks "$HAP")
    o1=$(active_opens)
    s=$(target_stats)
    H_RSS=$(proc_rss_kb "$HAP")
    kill "$HAP"
    wait "$HAP" 2>/dev/null
    HAP=""
    # connections the target accepted; a tcp check resets before its last
    # ACK, so the target's kernel never queues it: count connects instead
    conns=$(field "$s" "$2_conns")
    if [ -n "${BENCH_IN_NETNS:-}" ]; then conns=$((o1 - o0)); fi
    H_PROBES=$conns
    H_US=$(awk -v c="$((c1 - c0))" -v hz="$HZ" -v p="$conns" 'BEGIN { if (p > 0) printf "%.1f", c / hz * 1e6 / p; else print "n/a" }')
    H_J50=$(field "$s" jitter_p50_ms)
    H_J99=$(field "$s" jitter_p99_ms)
}

if command -v haproxy >/dev/null 2>&1; then
    HAVE_HAPROXY=1
    haproxy_cfg 1 tcp >"$tmp/h1.cfg"
    haproxy -db -f "$tmp/h1.cfg" >/dev/null 2>&1 &
    HAP=$!
    sleep 1
    H_BASE=$(proc_rss_kb "$HAP")
    kill "$HAP"
    wait "$HAP" 2>/dev/null
    HAP=""
    echo "haproxy: $(haproxy -v 2>/dev/null | head -n 1)"
else
    HAVE_HAPROXY=0
    echo "haproxy not installed (make bench-deps): its columns read n/a"
fi
echo "target: bench_checks serve on 127.1.x.y (one address per check), ${DUR}s measured per row, $(nproc) CPUs${BENCH_IN_NETNS:+, own network namespace}"
echo
printf '%-8s %5s %-4s %9s %8s %9s %8s %9s %9s %9s %9s\n' checker N kind us/probe s/1k probes RSS_KB B/check late_p50 late_p99 jitter_p99
summary=""
for n in $NS; do
    for kind in http tcp; do
        target_stats >/dev/null
        line=$("$B" engine "$n" "$DUR" "$HP" "$TP" "$kind")
        s=$(target_stats)
        us=$(field "$line" us_per_probe)
        printf '%-8s %5s %-4s %9s %8s %9s %8s %9s %9s %9s %9s\n' ours "$n" "$kind" "$us" \
            "$(awk -v u="$us" 'BEGIN { printf "%.4f", u / 1000 }')" \
            "$(field "$line" probes)" "$(field "$line" rss_kb)" \
            "$(field "$line" heap_per_check_b)" \
            "$(field "$line" lateness_p50_ms)ms" "$(field "$line" lateness_p99_ms)ms" \
            "$(field "$s" jitter_p99_ms)ms"
        eval "OURS_${kind}_${n}=$us"
        [ "$n" = 2000 ] && [ "$kind" = http ] && L2000=$(field "$line" lateness_p99_ms)
        if [ "$HAVE_HAPROXY" = 1 ]; then
            run_haproxy "$n" "$kind"
            per=$(awk -v r="$H_RSS" -v b="$H_BASE" -v n="$n" 'BEGIN { printf "%.0f", (r - b) * 1024 / n }')
            printf '%-8s %5s %-4s %9s %8s %9s %8s %9s %9s %9s %9s\n' haproxy "$n" "$kind" "$H_US" \
                "$(awk -v u="$H_US" 'BEGIN { if (u == "n/a") print "n/a"; else printf "%.4f", u / 1000 }')" \
                "$H_PROBES" "$H_RSS" "$per" "n/a" "n/a" "${H_J99}ms"
            eval "HAP_${kind}_${n}=$H_US"
        fi
    done
done
echo
echo "late = probe start minus schedule, in the engine (haproxy: n/a, it exposes no"
echo "schedule); jitter = |gap between two probes of one target - 1s| at the target."
ratio() { # ours haproxy
    awk -v a="$1" -v b="$2" 'BEGIN { if (b == "" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'
}
rh=$(ratio "${OURS_http_2000:-0}" "${HAP_http_2000:-n/a}")
rt=$(ratio "${OURS_tcp_2000:-0}" "${HAP_tcp_2000:-n/a}")
echo "ratio vs haproxy (CPU per probe): http $rh, tcp $rt; p99 lateness ${L2000:-n/a} ms at N=2000"
