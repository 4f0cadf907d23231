#!/bin/sh
# `make bench`: figures for the foundation, printed, not asserted.
set -u
BUILD=${BUILD:-build}
SEED=tests/data/jobs # copies of ../shared/examples/seed
PORT=${BENCH_PORT:-14646}
make --no-print-directory -s "$BUILD/bench/bench_hcl" "$BUILD/bench/bench_startup" || exit 1

echo "== HCL parse throughput (seed files)"
"$BUILD/bench/bench_hcl" "$SEED"/custom-scheduler.nomad "$SEED"/platform.nomad \
    "$SEED"/secrets.nomad "$SEED"/service-mesh.nomad contrib/agent.hcl

echo "== agent start-up and idle memory"
"$BUILD/bench/bench_startup" ./nomclient "$PORT" 20

echo "== status -self round trip"
dir=$(mktemp -d /tmp/nomclient-bench.XXXXXX)
./nomclient agent -dev -data-dir "$dir" -http-port "$PORT" -log-level warn &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
until curl -sf "http://127.0.0.1:$PORT/v1/agent/health" >/dev/null; do sleep 0.05; done
export NOMCLIENT_ADDR="http://127.0.0.1:$PORT"
# the network helper a dev agent starts beside it where the CNI plugins are
sleep 0.3
helper=$(pgrep -P "$pid" -f "netns-helper -serve" | head -n 1)
if [ -n "$helper" ]; then
    echo "idle network helper (netns-helper -serve): RSS $(awk '/^VmRSS/ {print $2}' /proc/$helper/status) KiB, PSS $(awk '/^Pss:/ {print $2}' /proc/$helper/smaps_rollup) KiB, private $(awk '/^Private_(Clean|Dirty)/ {s+=$2} END {print s}' /proc/$helper/smaps_rollup) KiB"
fi
./nomclient status -self >/dev/null
n=50
start=$(date +%s%N)
i=0
while [ $i -lt $n ]; do ./nomclient status -self >/dev/null; i=$((i + 1)); done
end=$(date +%s%N)
echo "status -self: $(( (end - start) / n / 1000 )) us per call (whole CLI process, 2 API requests), over $n calls"
start=$(date +%s%N)
i=0
while [ $i -lt $n ]; do curl -s -o /dev/null "$NOMCLIENT_ADDR/v1/node/self"; i=$((i + 1)); done
end=$(date +%s%N)
echo "GET /v1/node/self with curl: $(( (end - start) / n / 1000 )) us per call, over $n calls"
