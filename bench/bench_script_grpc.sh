#!/bin/sh
# `make bench-checks2`: what script and gRPC checks cost the agent.
# Printed, not asserted.
#   script: the agent's CPU (user+sys, /proc/<pid>/stat) per script-check
#     run of `/bin/true` inside an exec task (namespaces, chroot, cgroup,
#     credentials), beside the parent's CPU per plain spawn of the same
#     command (Python's subprocess: posix_spawn/vfork); the child's own
#     exec and exit are in neither;
#   grpc: the agent's CPU per gRPC probe (HTTP/2 through libcurl, a fresh
#     connection each) beside per HTTP probe (our own HTTP/1.1 client), N
#     checks of each at a 1s interval against loopback servers.
# Env: BENCH_SECONDS (default 10), BENCH_N (checks per kind, default 20).
# Run as root from the worktree root after `make`.
set -u
DUR=${BENCH_SECONDS:-10}
N=${BENCH_N:-20}
NOMCLIENT=${NOMCLIENT:-$(pwd)/nomclient}
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d /tmp/nomclient-bench2.XXXXXX)
PIDS=""
cleanup() {
    for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
    pkill -9 -f "supervise $TMP/" 2>/dev/null
    sleep 0.5
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
HZ=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
probes() { # sum of Counters.Probes over the agent's checks of TYPE
    curl -s "$ADDR/v1/agent/checks" | python3 -c "
import json,sys
print(sum(c['Counters']['Probes'] for c in json.load(sys.stdin).values()
          if c.get('Type') == '$1'))"
}
start_agent() { # NAME
    log=$TMP/$1.log
    : >"$log"
    "$NOMCLIENT" agent -dev -http-port 0 -data-dir "$TMP/$1" >"$log" 2>&1 &
    AGENT=$!
    PIDS="$PIDS $AGENT"
    ADDR=""
    for _ in $(seq 100); do
        ADDR=$(sed -n 's|.*API on \(http://[0-9.:]*\).*|\1|p' "$log" | head -n 1)
        [ -n "$ADDR" ] && break
        sleep 0.1
    done
    export NOMCLIENT_ADDR=$ADDR
}
checks() { # TYPE EXTRA-LINES: N check blocks
    i=0
    while [ $i -lt "$N" ]; do
        printf '        check {\n          name = "c%d"\n          type = "%s"\n%s\n          interval = "1s"\n          timeout = "1s"\n        }\n' "$i" "$1" "$2"
        i=$((i + 1))
    done
}
measure() { # TYPE: agent CPU us per probe over DUR seconds
    sleep 3 # first staggered probes, connection set-up
    t0=$(cpu_ticks "$AGENT")
    p0=$(probes "$1")
    sleep "$DUR"
    t1=$(cpu_ticks "$AGENT")
    p1=$(probes "$1")
    awk -v t=$((t1 - t0)) -v p=$((p1 - p0)) -v hz="$HZ" \
        'BEGIN { if (p > 0) printf "%.1f us/probe (%d probes)", t * 1e6 / hz / p, p; else printf "no probes" }'
}
job() { # NAME DRIVER TASK-CONFIG PORT-BLOCK SERVICE-PORT CHECKS
    cat >"$TMP/$1.nomad" <<JOB
job "$1" {
  group "g" {
    network {
$4
    }
    task "t" {
      driver = "$2"
      config {
$3
      }
      service {
        name = "$1"
$5
$6
      }
    }
  }
}
JOB
    "$NOMCLIENT" job run "$TMP/$1.nomad" >/dev/null
}

echo "== script checks: $N checks of /bin/true in an exec task, ${DUR}s"
start_agent s
job script exec '        command = "/bin/sleep"
        args = ["600"]' "" "" "$(checks script '          command = "/bin/true"')"
echo "agent, per script-check run: $(measure script)"
kill -9 "$AGENT"
pkill -9 -f "supervise $TMP/" 2>/dev/null
# a plain fork+exec of the same command: the parent's CPU per run
runs=2000
echo "plain spawn of /bin/true: $(python3 -c "
import os,time,subprocess
n=$runs
t0=os.times()
for _ in range(n): subprocess.run(['/bin/true'])
t1=os.times()
print('%.1f us/run (python subprocess, parent side)' % ((t1.user-t0.user+t1.system-t0.system)*1e6/n))")"

echo "== gRPC vs HTTP checks: $N of each, ${DUR}s"
touch "$TMP/serving"
python3 "$HERE/../tests/integration/grpc_health.py" 29518 "$TMP/serving" web &
PIDS="$PIDS $!"
python3 -m http.server 29519 --bind 127.0.0.1 --directory "$TMP" >/dev/null 2>&1 &
PIDS="$PIDS $!"
sleep 1
start_agent g
job grpc raw_exec '        command = "/bin/sleep"
        args = ["600"]' '      port "grpc" { static = 29518 }' '        port = "grpc"' \
    "$(checks grpc '          grpc_service = "web"')"
echo "agent, per gRPC probe: $(measure grpc)"
kill -9 "$AGENT"
start_agent h
job http raw_exec '        command = "/bin/sleep"
        args = ["600"]' '      port "http" { static = 29519 }' '        port = "http"' \
    "$(checks http '          path = "/"')"
echo "agent, per HTTP probe: $(measure http)"
