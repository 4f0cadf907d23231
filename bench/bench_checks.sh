#!/bin/sh
# `make bench-checks`: our check engine against haproxy's health checks on
# the same local target (bench_checks serve: a small epoll server in its own
# process), N = 1000, 2000, 5000 checks of each kind at a 1s interval.
# Printed, not asserted. Columns, per N, kind (http, tcp) and checker:
#   us/probe   CPU (user+sys) of the checker process per probe
#   s/1k       the same as CPU seconds per 1000 probes
#   probes     probes in the measured time
#   RSS_KB     resident memory of the checker at the end
#   B/check    memory per check from RSS: ours, RSS growth from before the
#              engine to after the checks ran; haproxy, (RSS - RSS with
#              one server) / N
#   heap/chk   ours: malloc'd bytes per check (mallinfo2), the part that
#              is ours rather than libc's arenas
#   late p50/p99  probe start minus its scheduled time, measured in the
#              engine; haproxy exposes no schedule: n/a
#   jitter p99 the target's view, for both: |gap between two probes of one
#              target - 1s| (tcp: n/a, a tcp probe never reaches the
#              target's accept queue: both reset before the last ACK)
# Each row is the sum of ROUNDS runs of DUR/ROUNDS seconds, ours and
# haproxy interleaved, so that a slow minute on a shared machine hits both.
# With two CPUs or more the checker runs on CPU 0 and the target on CPU 1.
# Env: BENCH_SECONDS (default 12) per row, BENCH_ROUNDS (2),
# BENCH_NS ("1000 2000 5000").
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
DUR=${BENCH_SECONDS:-12}
ROUNDS=${BENCH_ROUNDS:-2}
NS=${BENCH_NS:-"1000 2000 5000"}
HZ=$(getconf CLK_TCK)
SLICE=$((DUR / ROUNDS))
[ "$SLICE" -lt 1 ] && SLICE=1
make --no-print-directory -s "$B" || exit 1

ON0=""
ON1=""
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
    ON0="taskset -c 0"
    ON1="taskset -c 1"
fi

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

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
HP=$(free_port)
TP=$(free_port)
FP=$(free_port)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
$ON1 "$B" serve "$HP" "$TP" "$tmp/stats" &
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
fmax() { awk -v a="$1" -v b="$2" 'BEGIN { print (b + 0 > a + 0) ? b : a }'; }

haproxy_cfg() { # N KIND
    cat <<EOF
global
    maxconn 1000
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
    if [ "$2" = http ]; then
        printf 'backend checks\n    mode http\n    option httpchk GET /health\n'
        port=$HP
    else
        printf 'backend checks\n    mode tcp\n    option tcp-check\n'
        port=$TP
    fi
    awk -v n="$1" -v port="$port" 'BEGIN {
        for (k = 0; k < n; k++) {
            a = k + 1
            printf "    server s%d 127.1.%d.%d:%d check inter 1s\n", k, int(a / 256), a % 256, port
        }
    }'
}

# ours MODE N KIND: one slice; adds to O_CPU O_PROBES, maxes O_L50 O_L99 O_J99
ours() {
    target_stats >/dev/null
    if [ "$1" = uvtcp ]; then
        line=$($ON0 "$B" uvtcp "$2" "$SLICE" "$HP")
    else
        line=$($ON0 "$B" engine "$2" "$SLICE" "$HP" "$TP" "$3")
    fi
    s=$(target_stats)
    O_CPU=$(awk -v a="$O_CPU" -v b="$(field "$line" cpu_s)" 'BEGIN { print a + b }')
    O_PROBES=$((O_PROBES + $(field "$line" probes)))
    O_FAILED=$((O_FAILED + $(field "$line" failed)))
    O_RSS=$(field "$line" rss_kb)
    O_MEM=$(field "$line" rss_per_check_b)
    O_HEAP=$(field "$line" heap_per_check_b)
    O_L50=$(fmax "$O_L50" "$(field "$line" lateness_p50_ms)")
    O_L99=$(fmax "$O_L99" "$(field "$line" lateness_p99_ms)")
    O_J99=$(fmax "$O_J99" "$(field "$s" jitter_p99_ms)")
}

# theirs N KIND: one slice of haproxy; adds to H_TICKS H_PROBES, maxes H_J99
theirs() {
    haproxy_cfg "$1" "$2" >"$tmp/h.cfg"
    $ON0 haproxy -db -f "$tmp/h.cfg" >"$tmp/h.log" 2>&1 &
    HAP=$!
    sleep 2.5 # start-up and one interval
    if ! kill -0 "$HAP" 2>/dev/null; then
        echo "haproxy did not start: $(grep -m 1 ALERT "$tmp/h.log")" >&2
        HAP=""
        return
    fi
    target_stats >/dev/null
    o0=$(active_opens)
    c0=$(proc_cpu_ticks "$HAP")
    sleep "$SLICE"
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
    [ -n "${BENCH_IN_NETNS:-}" ] && conns=$((o1 - o0))
    H_TICKS=$((H_TICKS + c1 - c0))
    H_PROBES=$((H_PROBES + conns))
    H_J99=$(fmax "$H_J99" "$(field "$s" jitter_p99_ms)")
}

row() { # checker N kind us probes rss mem heap l50 l99 j99
    s1k=$(awk -v u="$4" 'BEGIN { if (u == "n/a") print "n/a"; else printf "%.4f", u / 1000 }')
    printf '%-8s %5s %-4s %9s %8s %8s %8s %8s %8s %9s %9s %10s\n' "$1" "$2" "$3" "$4" "$s1k" "$5" "$6" "$7" "$8" "$9" "${10}" "${11}"
}

HAVE_HAPROXY=0
if command -v haproxy >/dev/null 2>&1; then
    HAVE_HAPROXY=1
    haproxy_cfg 1 tcp >"$tmp/h1.cfg"
    $ON0 haproxy -db -f "$tmp/h1.cfg" >/dev/null 2>&1 &
    HAP=$!
    sleep 1
    H_BASE=$(proc_rss_kb "$HAP")
    kill "$HAP"
    wait "$HAP" 2>/dev/null
    HAP=""
    echo "haproxy: $(haproxy -v 2>/dev/null | head -n 1)"
else
    echo "haproxy not installed (make bench-deps): its rows read n/a"
fi
echo "target: bench_checks serve, one 127.1.x.y address per check; ${DUR}s per row in $ROUNDS rounds;" \
    "$(nproc) CPUs${ON0:+, checker on CPU 0 and target on CPU 1}${BENCH_IN_NETNS:+, own network namespace}"
echo
printf '%-8s %5s %-4s %9s %8s %8s %8s %8s %8s %9s %9s %10s\n' checker N kind us/probe s/1k probes RSS_KB B/check heap/chk late_p50 late_p99 jitter_p99
for n in $NS; do
    for kind in http tcp; do
        O_CPU=0 O_PROBES=0 O_FAILED=0 O_L50=0 O_L99=0 O_J99=0
        H_TICKS=0 H_PROBES=0 H_J99=0
        r=0
        while [ $r -lt "$ROUNDS" ]; do
            ours engine "$n" "$kind"
            [ "$HAVE_HAPROXY" = 1 ] && theirs "$n" "$kind"
            r=$((r + 1))
        done
        us=$(awk -v c="$O_CPU" -v p="$O_PROBES" 'BEGIN { if (p > 0) printf "%.1f", c * 1e6 / p; else print "n/a" }')
        j="${O_J99}ms"
        [ "$kind" = tcp ] && j=n/a
        row ours "$n" "$kind" "$us" "$O_PROBES" "$O_RSS" "$O_MEM" "$O_HEAP" "${O_L50}ms" "${O_L99}ms" "$j"
        [ "$O_FAILED" -gt 0 ] && echo "  (ours: $O_FAILED probes not passing)"
        eval "OURS_${kind}_${n}=$us"
        [ "$n" = 2000 ] && L2000=$(fmax "${L2000:-0}" "$O_L99")
        if [ "$HAVE_HAPROXY" = 1 ]; then
            hus=$(awk -v c="$H_TICKS" -v hz="$HZ" -v p="$H_PROBES" 'BEGIN { if (p > 0) printf "%.1f", c / hz * 1e6 / p; else print "n/a" }')
            per=$(awk -v r="$H_RSS" -v b="$H_BASE" -v n="$n" 'BEGIN { printf "%.0f", (r - b) * 1024 / n }')
            j="${H_J99}ms"
            [ "$kind" = tcp ] && j=n/a
            row haproxy "$n" "$kind" "$hus" "$H_PROBES" "$H_RSS" "$per" n/a n/a n/a "$j"
            eval "HAP_${kind}_${n}=$hus"
        fi
    done
done
# the baseline our raw-socket probe replaces: uv_tcp_t per probe
for n in $NS; do
    [ "$n" = 2000 ] || continue
    O_CPU=0 O_PROBES=0 O_FAILED=0 O_L50=0 O_L99=0 O_J99=0
    r=0
    while [ $r -lt "$ROUNDS" ]; do ours uvtcp "$n" http; r=$((r + 1)); done
    us=$(awk -v c="$O_CPU" -v p="$O_PROBES" 'BEGIN { if (p > 0) printf "%.1f", c * 1e6 / p; else print "n/a" }')
    row uv_tcp "$n" http "$us" "$O_PROBES" "$O_RSS" "$O_MEM" n/a "${O_L50}ms" "${O_L99}ms" "${O_J99}ms"
    echo "  (uv_tcp: a naive libuv probe, uv_tcp_t per probe and a uv_timer per check, for comparison)"
done
echo
ratio() { # ours haproxy
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'
}
rh=$(ratio "${OURS_http_2000:-n/a}" "${HAP_http_2000:-n/a}")
rt=$(ratio "${OURS_tcp_2000:-n/a}" "${HAP_tcp_2000:-n/a}")
echo "ratio vs haproxy (CPU per probe): http $rh, tcp $rt; p99 lateness ${L2000:-n/a} ms at N=2000"
