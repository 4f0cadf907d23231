#!/bin/sh
# `make bench-gc`: client garbage collection of 1,000 terminal allocations
# (each a state file and a task tree with logs, cloned from one real batch
# allocation): the time PUT /v1/client/gc takes to empty data_dir, and the
# agent's CPU time for it (every thread: the loop and the thread pool that
# removes the trees), and the lateness of a running service's 100 checks
# before and during it; then the same 1,000 left to the collector itself
# (gc_max_allocs = 50, gc_interval = 1s) from an agent start. Figures are
# printed, not asserted.
set -u
N=${BENCH_GC_ALLOCS:-1000}
dir=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/nomclient-bench-gc.XXXXXX")
data=$dir/data
PORT=${BENCH_PORT:-14649}
export NOMCLIENT_ADDR="http://127.0.0.1:$PORT"
pid=""
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    pkill -9 -f "supervise $data/"
    rm -rf "$dir"
}
trap cleanup EXIT

agent() { # MAX_ALLOCS INTERVAL
    cat >"$dir/agent.hcl" <<EOF
client {
  gc_max_allocs = $1
  gc_interval   = "$2"
}
EOF
    ./nomclient agent -dev -data-dir "$data" -config "$dir/agent.hcl" \
        -http-port "$PORT" -log-level warn >>"$dir/agent.log" 2>&1 &
    pid=$!
    until curl -sf "$NOMCLIENT_ADDR/v1/agent/health" >/dev/null; do sleep 0.02; done
}
stop() { kill -9 "$pid"; wait "$pid" 2>/dev/null; pid=""; }
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%d\n", s}'; }
# user and system CPU (ms) of the agent's threads, from /proc/PID/stat
user_sys() { awk -v hz="$(getconf CLK_TCK)" '{printf "%d %d\n", $14 * 1000 / hz, $15 * 1000 / hz}' /proc/"$1"/stat; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
left() { ls "$data/client/allocs" | grep -c '\.json$'; }

# one real batch allocation, the model of the clones
cat >"$dir/b.nomad" <<'JOB'
job "b" {
  type = "batch"
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "i=0; while [ $i -lt 200 ]; do echo line $i of a log; i=$((i+1)); done"]
      }
    }
  }
}
JOB
# one real allocation run to its end, then N clones of it
model() {
    agent 100000 10m
    ./nomclient job run "$dir/b.nomad" >/dev/null 2>&1
    until [ -n "$(ls "$data"/client/allocs/*.json 2>/dev/null)" ] &&
        grep -q '"ClientStatus":"complete"' "$data"/client/allocs/*.json; do sleep 0.05; done
    sleep 0.3
    stop
    clone
}

clone() {
    python3 - "$data" "$N" <<'PY'
import os, shutil, sys, uuid
data, n = sys.argv[1], int(sys.argv[2])
states = os.path.join(data, "client", "allocs")
model = [f for f in os.listdir(states) if f.endswith(".json")][0]
mid = model[:-5]
txt = open(os.path.join(states, model)).read()
tree = os.path.join(data, "alloc", mid)
for i in range(n):
    nid = str(uuid.uuid4())
    with open(os.path.join(states, nid + ".json"), "w") as f:
        f.write(txt.replace(mid, nid))
    shutil.copytree(tree, os.path.join(data, "alloc", nid), symlinks=True)
PY
}

# a running service with CHECKS tcp checks (1 s apart) against a listener
# of the bench's own: their lateness is sampled before and during the GC
CHECKS=${BENCH_GC_CHECKS:-100}
TPORT=$((PORT + 1))
python3 -c 'import socket,sys,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1024)
while True:
    c, _ = s.accept(); c.close()' "$TPORT" &
tpid=$!
checks=$(i=0; while [ $i -lt "$CHECKS" ]; do
    printf '      check {\n        name = "c%d"\n        type = "tcp"\n        interval = "1s"\n        timeout = "1s"\n      }\n' $i
    i=$((i + 1)); done)
cat >"$dir/svc.nomad" <<JOB
job "svc" {
  group "g" {
    network {
      port "p" { static = $TPORT }
    }
    service {
      name = "svc"
      port = "p"
$checks
    }
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["600"]
      }
    }
  }
}
JOB
# sample SECONDS OUT: every check's newest probe lateness (us), once each
sample() {
    python3 - "$NOMCLIENT_ADDR" "$1" >"$2" <<'PY'
import json, sys, time, urllib.request
addr, secs = sys.argv[1], float(sys.argv[2])
seen, end = set(), time.time() + secs
while time.time() < end:
    for cid, c in json.load(urllib.request.urlopen(addr + "/v1/agent/checks")).items():
        last = c.get("LastResult") or {}
        key = (cid, c.get("Timestamp"))
        if last.get("Lateness") is not None and key not in seen:
            seen.add(key)
            print(last["Lateness"] // 1000)
    time.sleep(0.05)
PY
}
pct() { sort -n "$1" | awk -v p="$2" '{v[NR] = $1} END {i = int(NR * p / 100); if (i < 1) i = 1; printf "%.2f", v[i] / 1000}'; }

model
files=$(find "$data/alloc" | wc -l)
agent 100000 10m
./nomclient job run -detach "$dir/svc.nomad" >/dev/null 2>&1 || ./nomclient job run "$dir/svc.nomad" >/dev/null 2>&1
sample 8 "$dir/late.before"
sample 6 "$dir/late.during" &
spid=$!
c0=$(cpu_ns "$pid")
us0=$(user_sys "$pid")
t0=$(now_ms)
curl -sf -X PUT "$NOMCLIENT_ADDR/v1/client/gc" >/dev/null
while [ "$(left)" -gt 1 ]; do sleep 0.01; done
t1=$(now_ms)
c1=$(cpu_ns "$pid")
us1=$(user_sys "$pid")
wait "$spid"
echo "PUT /v1/client/gc of $((N + 1)) terminal allocations ($files files and dirs): $((t1 - t0)) ms, agent CPU $(( (c1 - c0) / 1000000 )) ms ($(( (c1 - c0) / 1000 / (N + 1) )) us per allocation; user $(( ${us1% *} - ${us0% *} )) ms, system $(( ${us1#* } - ${us0#* } )) ms)"
echo "lateness of $CHECKS running tcp checks (1 s; goal p99 under 20 ms): before the GC p50 $(pct "$dir/late.before" 50) ms, p99 $(pct "$dir/late.before" 99) ms ($(wc -l <"$dir/late.before") probes); during and just after it p50 $(pct "$dir/late.during" 50) ms, p99 $(pct "$dir/late.during" 99) ms ($(wc -l <"$dir/late.during") probes)"
./nomclient job stop svc >/dev/null 2>&1
kill "$tpid" 2>/dev/null
rm -rf "$data/alloc"/* 2>/dev/null
stop

# the same left to the collector (gc_max_allocs = 50), from an agent start;
# a fresh model: one real allocation again
rm -rf "$data"
model
t0=$(now_ms)
agent 50 1s
c0=$(cpu_ns "$pid")
while [ "$(left)" -gt 50 ]; do sleep 0.01; done
t1=$(now_ms)
c1=$(cpu_ns "$pid")
echo "gc_max_allocs = 50 from an agent start with $((N + 1)): down to 50 in $((t1 - t0)) ms (start and the first 1 s tick included), agent CPU $(( (c1 - c0) / 1000000 )) ms after start"
stop
