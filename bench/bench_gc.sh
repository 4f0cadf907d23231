#!/bin/sh
# `make bench-gc`: client garbage collection of 1,000 terminal allocations
# (each a state file and a task tree with logs, cloned from one real batch
# allocation): the time PUT /v1/client/gc takes to empty data_dir, and the
# agent's CPU time for it (every thread: the loop and the thread pool that
# removes the trees); then the same 1,000 left to the collector itself
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

model
files=$(find "$data/alloc" | wc -l)
agent 100000 10m
c0=$(cpu_ns "$pid")
us0=$(user_sys "$pid")
t0=$(now_ms)
curl -sf -X PUT "$NOMCLIENT_ADDR/v1/client/gc" >/dev/null
while [ "$(left)" -gt 0 ]; do sleep 0.01; done
t1=$(now_ms)
c1=$(cpu_ns "$pid")
us1=$(user_sys "$pid")
echo "PUT /v1/client/gc of $((N + 1)) terminal allocations ($files files and dirs): $((t1 - t0)) ms, agent CPU $(( (c1 - c0) / 1000000 )) ms ($(( (c1 - c0) / 1000 / (N + 1) )) us per allocation; user $(( ${us1% *} - ${us0% *} )) ms, system $(( ${us1#* } - ${us0#* } )) ms)"
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
