#!/bin/sh
# `make bench-consul`: the Consul sync loop (client/services/consul_*.c)
# against the Consul agent API stand-in tests/integration/consul_fake.py on
# 127.0.0.1.
# bench_consul drives the real loop with a synthetic desired state (no
# tasks run); printed, not asserted, apart from the no-change pass saying
# whether it sent any write. With two CPUs or more the fake runs on CPU 1
# and the loop on CPU 0, and the fake's own CPU use is printed with each
# figure, so one can see it is not what is measured.
# Env: BENCH_SERVICES (1000), BENCH_CHECKS (2 per service),
# BENCH_SECONDS (3, of status flips).
set -u
BUILD=${BUILD:-build}
B=$BUILD/bench/bench_consul
make --no-print-directory -s "$B" || exit 1
T=$(mktemp -d /tmp/bench-consul.XXXXXX)
trap 'kill "$FAKE" 2>/dev/null; wait "$FAKE" 2>/dev/null; rm -rf "$T"' EXIT
PIN_FAKE= PIN_LOOP=
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
    PIN_FAKE="taskset -c 1" PIN_LOOP="taskset -c 0"
fi
$PIN_FAKE python3 tests/integration/consul_fake.py --port 0 \
    --ready-file "$T/port" >"$T/fake.out" 2>&1 &
FAKE=$!
i=0
while [ ! -s "$T/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
PORT=$(cat "$T/port" 2>/dev/null)
[ -n "$PORT" ] || { echo "the fake did not start:"; cat "$T/fake.out"; exit 1; }
echo "== bench-consul: $(nproc) CPU(s), fake Consul (python3 asyncio) on 127.0.0.1:$PORT"
$PIN_LOOP "$B" "$PORT" "${BENCH_SERVICES:-1000}" "${BENCH_CHECKS:-2}" \
    "${BENCH_SECONDS:-3}"
