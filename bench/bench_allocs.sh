#!/bin/sh
# `make bench-allocs`: a bridge-mode group of exec tasks with a host volume,
# 1, 10 and 50 allocations: time from job submission to every task exec'd,
# split into network set-up (the CNI chain and what the helper does around
# it), volume mounts and task start, teardown time (stop until every
# namespace is gone), and agent RSS with 50 allocations running.
# Figures are printed, not asserted. Needs root (namespaces, cgroups).
set -u
if [ "$(id -u)" != 0 ] || [ ! -x /usr/lib/cni/bridge ]; then
    echo "bench-allocs needs root and the CNI plugins (containernetworking-plugins)"
    exit 0
fi
dir=$(mktemp -d /tmp/nomclient-bench-allocs.XXXXXX)
PORT=${BENCH_PORT:-14647}
BR=ncbench0
SUBNET=10.255.120.0/24
mkdir -p "$dir/vol"
cat >"$dir/agent.hcl" <<EOF
client {
  bridge_network_name   = "$BR"
  bridge_network_subnet = "$SUBNET"
  host_volume "bench" {
    path = "$dir/vol"
  }
}
EOF
./nomclient agent -dev -data-dir "$dir/data" -config "$dir/agent.hcl" \
    -http-port "$PORT" -log-level warn &
pid=$!
cleanup() {
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pkill -9 -f "supervise $dir/"
    ip link del "$BR" 2>/dev/null
    while iptables -D NOMAD-ADMIN -d "$SUBNET" -o "$BR" -j ACCEPT 2>/dev/null; do :; done
    rm -rf "$dir"
}
trap cleanup EXIT
export NOMCLIENT_ADDR="http://127.0.0.1:$PORT"
until curl -sf "$NOMCLIENT_ADDR/v1/agent/health" >/dev/null; do sleep 0.02; done

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
started() { ls "$dir"/data/alloc/*/.nomclient/t.started.json 2>/dev/null | wc -l; }
netns_of() { curl -s "$NOMCLIENT_ADDR/v1/job/$1/allocations" |
    python3 -c 'import json,sys; print("|".join(a["ID"] for a in json.load(sys.stdin)))'; }

printf '%-6s %-24s %-24s\n' allocs "submit -> all exec'd" "stop -> all netns gone"
total=0
for n in 1 10 50; do
    cat >"$dir/b$n.nomad" <<JOB
job "b$n" {
  group "g" {
    count = $n
    network {
      mode = "bridge"
      port "http" {}
    }
    volume "v" {
      type   = "host"
      source = "bench"
    }
    task "t" {
      driver = "exec"
      config {
        command = "/bin/sleep"
        args    = ["600"]
      }
      volume_mount {
        volume      = "v"
        destination = "/data"
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
    total=$((total + n))
    until [ "$(started)" -ge $total ]; do sleep 0.002; done
    t1=$(now_ms)
    curl -s "$NOMCLIENT_ADDR/v1/job/b$n/allocations" >"$dir/allocs$n.json"
    if [ $n -eq 50 ]; then
        rss=$(awk '/^VmRSS/ {print $2}' /proc/$pid/status)
        sup=$(pgrep -f "supervise $dir/" | head -n 1)
        priv=$(awk '/^Private_(Clean|Dirty)/ {s+=$2} END {print s}' /proc/$sup/smaps_rollup)
    fi
    ids=$(netns_of "b$n")
    t2=$(now_ms)
    ./nomclient job stop "b$n" >/dev/null
    until ! ip netns list 2>/dev/null | grep -qE "$ids"; do sleep 0.002; done
    t3=$(now_ms)
    printf '%-6s %-24s %-24s\n' $n "$((t1 - t0)) ms ($(( (t1 - t0) * 1000 / n )) us/alloc)" \
        "$((t3 - t2)) ms ($(( (t3 - t2) * 1000 / n )) us/alloc)"
done
echo
echo "where the time goes, per allocation (mean; us):"
python3 - "$dir" <<'PY'
import glob, json, os, sys
d = sys.argv[1]
print("%-6s %9s %9s %9s %9s %9s %9s %9s %9s %9s %9s %10s" % (
    "allocs", "cni", "helper", "spawn", "sup-after", "net-wait", "netns",
    "chroot", "volumes", "agent", "e2e", "around-cni"))
for n in (1, 10, 50):
    allocs = json.load(open(os.path.join(d, "allocs%d.json" % n)))
    rows = []
    for a in allocs:
        net = a["AllocatedResources"]["Shared"]["Networks"][0]
        t = net.get("SetupTimings") or {}
        f = os.path.join(d, "data", "alloc", a["ID"], ".nomclient", "t.started.json")
        s = json.load(open(f))
        m = s["SetupMicros"]
        exec_at = s["ExecAt"]
        e2e = (exec_at - a["CreateTime"]) / 1000
        cni = t.get("PluginsUs", 0)
        helper = t.get("WallUs", 0) - cni  # spawn, netns, state, JSON, exit
        # the supervisor starts beside the chain now: what it adds is what
        # follows the network's word (netns join, caps, exec)
        sup = m["Netns"] + m.get("CgroupWait", 0)
        # the agent's own share: created to exec, less the chain, the
        # helper's other work and the supervisor's part after the word
        agent = e2e - t.get("WallUs", 0) - sup
        rows.append((cni, helper, t.get("SpawnUs", 0), sup,
                     m.get("NetworkWait", 0), m["Netns"], m["Chroot"],
                     m["Volumes"], agent, e2e))
    k = len(rows)
    mean = [sum(r[i] for r in rows) / k for i in range(10)]
    # around the chain: everything from the allocation's creation to the
    # exec that is not a CNI plugin running, and not waiting for a helper
    # slot (ALLOC_NET_PARALLEL at once): the helper's own work plus the
    # supervisor's plus the agent's bookkeeping (only measurable alone, n=1)
    around = mean[1] + mean[3] + mean[8] if n > 1 else mean[9] - mean[0]
    print("%-6d %9.0f %9.0f %9.0f %9.0f %9.0f %9.0f %9.0f %9.0f %9.0f %9.0f %10.0f" % (
        n, *mean, around))
print("cni: the plugin chain; helper: the network helper's wall time outside "
      "the plugins (spawn, namespace, state journal, JSON, exit);\n"
      "spawn: of it, starting the helper; sup-after: the supervisor's part "
      "after the network is ready (netns join, caps, exec; its start, cgroup "
      "move, chroot and volumes run beside the chain);\n"
      "net-wait: how long the prepared task waited for the network;\n"
      "agent: the agent's own bookkeeping (n=1: e2e - helper wall - sup-after);\n"
      "e2e: allocation created to task exec'd; around-cni: e2e minus the "
      "chain (n=1), or helper + sup-after + agent (n>1, excludes the queue "
      "for a slot)")
PY
echo "agent RSS with 50 allocations running: ${rss} KiB; one supervisor: ${priv} KiB private"
