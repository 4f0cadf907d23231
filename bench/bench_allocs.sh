#!/bin/sh
# `make bench-allocs`: time from job submission to every task running, for
# 1, 10 and 50 allocations of one group (host networking: bridge mode comes
# with netns/), teardown time, and agent RSS with 50 allocations running.
# exec (chroot, cgroup, capabilities) when root, raw_exec otherwise.
set -u
dir=$(mktemp -d /tmp/nomclient-bench-allocs.XXXXXX)
PORT=${BENCH_PORT:-14647}
driver=raw_exec
[ "$(id -u)" = 0 ] && driver=exec
./nomclient agent -dev -data-dir "$dir/data" -http-port "$PORT" -log-level warn &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; pkill -9 -f "supervise $dir/" ; rm -rf "$dir"' EXIT
export NOMCLIENT_ADDR="http://127.0.0.1:$PORT"
until curl -sf "$NOMCLIENT_ADDR/v1/agent/health" >/dev/null; do sleep 0.02; done

count_status() { # JOB STATUS
    curl -s "$NOMCLIENT_ADDR/v1/job/$1/allocations" | grep -o "\"ClientStatus\":\"$2\"" | wc -l
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

echo "driver: $driver"
printf '%-6s %-22s %-22s\n' allocs "submit->all running" "stop->all complete"
for n in 1 10 50; do
    cat >"$dir/b$n.nomad" <<JOB
job "b$n" {
  group "g" {
    count = $n
    task "t" {
      driver = "$driver"
      config {
        command = "/bin/sleep"
        args    = ["600"]
      }
      resources {
        cpu    = 10
        memory = 16
      }
      kill_timeout = "1s"
    }
  }
}
JOB
    t0=$(now_ms)
    ./nomclient job run "$dir/b$n.nomad" >/dev/null || exit 1
    until [ "$(count_status b$n running)" -eq $n ]; do sleep 0.005; done
    t1=$(now_ms)
    if [ $n -eq 50 ]; then
        rss=$(awk '/^VmRSS/ {print $2}' /proc/$pid/status)
        sup=$(pgrep -f "supervise $dir/" | head -n 1)
        priv=$(awk '/^Private_(Clean|Dirty)/ {s+=$2} END {print s}' /proc/$sup/smaps_rollup)
    fi
    t2=$(now_ms)
    ./nomclient job stop "b$n" >/dev/null
    until [ "$(count_status b$n complete)" -eq $n ]; do sleep 0.005; done
    t3=$(now_ms)
    printf '%-6s %-22s %-22s\n' $n "$((t1 - t0)) ms ($(( (t1 - t0) * 1000 / n )) us/alloc)" "$((t3 - t2)) ms"
done
echo "agent RSS with 50 allocations running: ${rss} KiB; one supervisor: ${priv} KiB private"
echo "(times include the CLI run and the polling of the API by this script)"
