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
# BENCH_TMPDIR=/dev/shm puts the data_dir on tmpfs, to tell the agent's
# own costs from the filesystem's (every allocation makes ~30 files/dirs)
dir=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/nomclient-bench-allocs.XXXXXX")
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
    # BENCH_KEEP=DIR keeps the allocations' JSON and timings there
    if [ -n "${BENCH_KEEP:-}" ]; then
        mkdir -p "$BENCH_KEEP" && cp "$dir"/*.json "$dir"/*.cpu "$BENCH_KEEP"/ 2>/dev/null
        for f in "$dir"/data/alloc/*/.nomclient/t.started.json; do
            a=$(basename "$(dirname "$(dirname "$f")")")
            cp "$f" "$BENCH_KEEP/started-$a.json"
        done
    fi
    rm -rf "$dir"
}
trap cleanup EXIT
export NOMCLIENT_ADDR="http://127.0.0.1:$PORT"
until curl -sf "$NOMCLIENT_ADDR/v1/agent/health" >/dev/null; do sleep 0.02; done

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
started() { ls "$dir"/data/alloc/*/.nomclient/t.started.json 2>/dev/null | wc -l; }
netns_of() { curl -s "$NOMCLIENT_ADDR/v1/job/$1/allocations" |
    python3 -c 'import json,sys; print("|".join(a["ID"] for a in json.load(sys.stdin)))'; }

# CPU time (ns, from the scheduler) of a process's threads: of the agent,
# and of the helper server (whose threads are kept; the plugins it runs are
# processes of their own, not counted)
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%d\n", s}'; }
server_pid() { pgrep -f "netns-helper -serve" -P "$pid" | head -n 1; }

write_job() { # name count
    cat >"$dir/$1.nomad" <<JOB
job "$1" {
  group "g" {
    count = $2
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
}

# one job of count n: submit, wait for every task exec'd, stop, wait for
# every namespace gone; prints "up_ms down_ms" and leaves the allocations'
# JSON in $dir/<name>.json and the CPU spent in $dir/<name>.cpu
run_job() { # name count
    write_job "$1" "$2"
    spid=$(server_pid)
    c0=$(( $(cpu_ns "$pid") + $(cpu_ns "$spid") ))
    t0=$(now_ms)
    ./nomclient job run "$dir/$1.nomad" >/dev/null || exit 1
    total=$((total + $2))
    until [ "$(started)" -ge $total ]; do sleep 0.002; done
    t1=$(now_ms)
    c1=$(( $(cpu_ns "$pid") + $(cpu_ns "$spid") ))
    # a supervisor's and its task's (sleep uses none once exec'd: what
    # the task's process shows is its set-up before the exec)
    sups=0
    for s in $(pgrep -f "supervise $dir/data/alloc/"); do
        sups=$((sups + $(cpu_ns "$s")))
        for c in $(pgrep -P "$s"); do sups=$((sups + $(cpu_ns "$c"))); done
    done
    curl -s "$NOMCLIENT_ADDR/v1/job/$1/allocations" >"$dir/$1.json"
    if [ "$2" -eq 50 ]; then
        rss=$(awk '/^VmRSS/ {print $2}' /proc/$pid/status)
        sup=$(pgrep -f "supervise $dir/" | head -n 1)
        priv=$(awk '/^Private_(Clean|Dirty)/ {s+=$2} END {print s}' /proc/$sup/smaps_rollup)
        srss=$(awk '/^VmRSS/ {print $2}' /proc/$(server_pid)/status)
        spriv=$(awk '/^Private_(Clean|Dirty)/ {s+=$2} END {print s}' /proc/$(server_pid)/smaps_rollup)
    fi
    ids=$(netns_of "$1")
    t2=$(now_ms)
    ./nomclient job stop "$1" >/dev/null
    until ! ip netns list 2>/dev/null | grep -qE "$ids"; do sleep 0.002; done
    t3=$(now_ms)
    echo "$((c1 - c0)) $sups" >"$dir/$1.cpu"
    up=$((t1 - t0))
    down=$((t3 - t2))
}

printf '%-6s %-24s %-24s\n' allocs "submit -> all exec'd" "stop -> all netns gone"
total=0
# one allocation, ten times over (one sample is noise on a shared machine)
ups="" downs=""
for r in 0 1 2 3 4 5 6 7 8 9; do
    run_job "b1-$r" 1
    ups="$ups $up"
    downs="$downs $down"
done
med() { echo "$@" | tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%-6s %-24s %-24s\n' 1 "$(med $ups) ms (median of 10)" "$(med $downs) ms (median of 10)"
for n in 10 50; do
    run_job "b$n" $n
    printf '%-6s %-24s %-24s\n' $n "$up ms ($((up * 1000 / n)) us/alloc)" \
        "$down ms ($((down * 1000 / n)) us/alloc)"
done
echo
echo "where the time goes, per allocation (mean; us):"
python3 - "$dir" <<'PY'
import glob, json, os, sys
d = sys.argv[1]
cols = ("cni", "helper", "queued", "sup-after", "net-wait", "netns",
        "chroot", "volumes", "agent", "e2e", "around-cni")
print("%-6s" % "allocs" + "".join(" %9s" % c for c in cols))
hkeys = ("StartupUs", "LockUs", "StateUs", "NetnsUs", "ExitUs")
hnames = ("to-thread", "lock", "journal", "netns", "answer")
helper_parts = []
groups = ((1, ["b1-%d" % r for r in range(10)]), (10, ["b10"]), (50, ["b50"]))
cpu_rows = []
for n, names in groups:
    allocs = [x for name in names
              for x in json.load(open(os.path.join(d, name + ".json")))]
    ticks = [list(map(int, open(os.path.join(d, name + ".cpu")).read().split()))
             for name in names]
    cpu_rows.append((n, len(allocs),
                     sum(t[0] for t in ticks) / 1e3 / len(allocs),
                     sum(t[1] for t in ticks) / 1e3 / len(allocs)))
    tims = [a["AllocatedResources"]["Shared"]["Networks"][0].get("SetupTimings") or {}
            for a in allocs]
    rows = []
    for a in allocs:
        net = a["AllocatedResources"]["Shared"]["Networks"][0]
        t = net.get("SetupTimings") or {}
        f = os.path.join(d, "data", "alloc", a["ID"], ".nomclient", "t.started.json")
        s = json.load(open(f))
        m = s["SetupMicros"]
        e2e = (s["ExecAt"] - a["CreateTime"]) / 1000
        cni = t.get("PluginsUs", 0)
        wall = t.get("WallUs", 0)
        queued = t.get("QueuedUs", 0)
        # the supervisor starts beside the chain: what it adds is what
        # follows the network's word (netns join, caps, exec)
        sup = m["Netns"] + m.get("CgroupWait", 0)
        # the agent's own share: created to exec, less the wait for a
        # slot, the helper's request and the supervisor's part after it
        agent = e2e - queued - wall - sup
        # around the chain: all from creation to exec that is neither a
        # CNI plugin running nor the wait for a set-up slot
        around = e2e - queued - cni
        rows.append((cni, wall - cni, queued, sup, m.get("NetworkWait", 0),
                     m["Netns"], m["Chroot"], m["Volumes"], agent, e2e, around))
    k = len(rows)
    mean = [sum(r[i] for r in rows) / k for i in range(len(cols))]
    p50 = sorted(r[-1] for r in rows)[k // 2]
    print("%-6d" % n + "".join(" %9.0f" % v for v in mean) +
          "   (around-cni median %.0f, max %.0f)" % (p50, max(r[-1] for r in rows)))
    helper_parts.append((n, [sum(float(x.get(key, 0)) for x in tims) / k
                             for key in hkeys]))
print("the helper's request, per allocation (mean; us):")
print("%-6s" % "allocs" + "".join(" %9s" % h for h in hnames))
for n, v in helper_parts:
    print("%-6d" % n + "".join(" %9.0f" % x for x in v))
print("CPU per allocation, submit to exec'd (us; the scheduler's account):")
print("%-6s %14s %14s" % ("allocs", "agent+helper", "supervisor"))
for n, k, ours, sup in cpu_rows:
    print("%-6d %14.0f %14.0f" % (n, ours, sup))
print("cni: the plugin chain (and the iptables tools run for it); helper: "
      "the network helper's request outside the plugins (sending, lock, "
      "state journal, namespace, answer);\n"
      "queued: waiting for one of the 4 set-up slots; sup-after: the "
      "supervisor's part after the network is ready (netns join, caps, exec; "
      "its start, cgroup move, chroot and volumes run beside the chain);\n"
      "net-wait: how long the prepared task waited for the network;\n"
      "agent: the agent's own bookkeeping (e2e - queued - helper request - "
      "sup-after);\n"
      "e2e: allocation created to task exec'd; around-cni: e2e - queued - cni;\n"
      "to-thread: request sent to its thread started in the helper; lock, "
      "journal (intent and updates), netns (made or taken ready): in it; "
      "answer: its line back to the agent's callback")
PY
echo "agent RSS with 50 allocations running: ${rss} KiB; network helper: ${srss} KiB RSS, ${spriv} KiB private; one supervisor: ${priv} KiB private"
