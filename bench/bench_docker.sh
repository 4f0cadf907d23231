#!/bin/sh
# `make bench-docker`: docker allocations on a private Docker Engine (the
# tests' own, tests/integration/lib.sh), side by side in one run:
#  1. the baseline: for 1, 10 and 50 allocations, the containers an
#     allocation needs started by the Engine API alone, all in parallel: a
#     pause container (network none) and a busybox task (`sleep 3600`)
#     joining its namespace (container:<pause>);
#  2. the same through nomclient, once its docker driver fingerprints: n
#     bridge-mode allocations of a docker task (submission to the task
#     container's State.StartedAt), the agent's private memory per running
#     docker task (0 vs N tasks) and its CPU per task per minute at steady
#     state (BENCH_SECS, default 60).
# Figures are printed, not asserted. Needs root. BENCH_COUNTS="1 10 50"
# and BENCH_REPS (runs of n=1, default 5) change the sizes; DOCKER_STORAGE
# picks the daemon's storage driver (default: lib.sh's).
if [ "$(id -u)" != 0 ] || [ ! -x /usr/sbin/dockerd ] || [ ! -x /usr/bin/docker ]; then
    echo "bench-docker needs root and docker.io (/usr/sbin/dockerd, /usr/bin/docker)"
    exit 0
fi
. "$(dirname "$0")/../tests/integration/lib.sh"
COUNTS=${BENCH_COUNTS:-1 10 50}
REPS=${BENCH_REPS:-5}
SECS=${BENCH_SECS:-60}
res=$TMP/results
mkdir -p "$res"
ENGINE=${BUILD:-build}/bench/bench_docker_engine
if [ ! -x "$ENGINE" ]; then
    echo "no $ENGINE: run make bench-docker (or make $ENGINE)"
    exit 1
fi

t0=$(date +%s%N)
docker_daemon_start || exit 1
t1=$(date +%s%N)
docker_images || exit 1
t2=$(date +%s%N)
echo "private dockerd: storage $DOCKER_STORAGE_USED, up in $(((t1 - t0) / 1000000)) ms, images in $(((t2 - t1) / 1000000)) ms"

now_ns() { date +%s%N; }
# stats over lines of numbers on stdin: "median mean max"
stats() { sort -n | awk '{a[NR] = $1; s += $1} END {if (NR) printf "%d %d %d\n", a[int((NR + 1) / 2)], s / NR, a[NR]; else print "- - -"}'; }
# started_ns NAME...: each container's State.StartedAt in ns since the epoch
# (the Engine's clock, this host's), one a line; "-" for one not running
started_ns() {
    docker_cli inspect --format '{{.State.Running}} {{.State.StartedAt}}' "$@" 2>/dev/null |
        python3 -c '
import calendar, sys, time
for line in sys.stdin:
    running, at = line.split()
    if running != "true":
        print("-")
        continue
    day, _, frac = at.rstrip("Z").partition(".")
    secs = calendar.timegm(time.strptime(day, "%Y-%m-%dT%H:%M:%S"))
    print(secs * 10**9 + int((frac + "0" * 9)[:9]))'
}

# --- 1. the Engine API alone ---------------------------------------------
# engine_run TAG N: N allocations' containers at once through the Engine
# API (bench_docker_engine: a thread and a connection each); "total median
# remove" (ms) into $res/engine-TAG: from the release of the threads to each
# task container's StartedAt, and the forced removal of them all
engine_run() {
    tag=$1
    if ! "$ENGINE" "$DOCKER_SOCK" "$2" "$tag" >"$res/engine-$tag.out"; then
        echo "- - -" >"$res/engine-$tag"
        return
    fi
    start=$(sed -n 's/^start //p' "$res/engine-$tag.out")
    names=$(awk -v t="$tag" '$1 == "done" {print "bt-" t "-" $2}' "$res/engine-$tag.out")
    # shellcheck disable=SC2086
    started_ns $names >"$res/engine-$tag.at"
    t_rm=$(now_ns)
    # shellcheck disable=SC2086
    docker_cli rm -f $names $(echo "$names" | sed 's/^bt-/bi-/') >/dev/null 2>&1
    t_end=$(now_ns)
    if grep -q -e - "$res/engine-$tag.at"; then
        echo "- - $(((t_end - t_rm) / 1000000))" >"$res/engine-$tag"
        return
    fi
    set -- $(awk -v s="$start" '{print int(($1 - s) / 1e6)}' "$res/engine-$tag.at" | stats)
    echo "$3 $1 $(((t_end - t_rm) / 1000000))" >"$res/engine-$tag"
}

for n in $COUNTS; do
    if [ "$n" = 1 ]; then
        r=0
        while [ $r -lt "$REPS" ]; do engine_run "e1r$r" 1; r=$((r + 1)); done
    else
        engine_run "e$n" "$n"
    fi
done

# --- 2. through nomclient ------------------------------------------------
BR=ncbench3
SUBNET=10.255.123.0/24
skip2=""
agent_ok() { [ -n "$ADDR" ] && kill -0 "$AGENT_PID" 2>/dev/null; }
# docker_fingerprinted: the node reports driver.docker detected and healthy
docker_fingerprinted() {
    curl -s "$ADDR/v1/node/self" | python3 -c '
import json, sys
n = json.load(sys.stdin)
d = (n.get("Drivers") or {}).get("docker") or {}
ok = n.get("Attributes", {}).get("driver.docker") and d.get("Detected") and d.get("Healthy")
sys.exit(0 if ok else 1)' 2>/dev/null
}
if [ ! -x "$NOMCLIENT" ]; then
    skip2="no $NOMCLIENT (make all)"
elif [ ! -x /usr/lib/cni/bridge ]; then
    skip2="no CNI plugins in /usr/lib/cni (containernetworking-plugins)"
else
    # the bridge's cleanups (supervisors, leftovers -clean, the bridge and
    # its rule), registered after the daemon's so they run before it
    bridge_test "$BR" "$SUBNET"
    bridge_agent_config "$TMP/agent.hcl"
    docker_agent_config "$TMP/agent.hcl"
    if ! start_agent bench -dev -data-dir "$TMP/data" -config "$TMP/agent.hcl"; then
        skip2="the agent does not start with the docker plugin's config: $(tail -n 3 "$TMP/bench.log")"
    elif ! wait_for 10 docker_fingerprinted; then
        skip2="the agent does not fingerprint driver.docker (yet): $(curl -s "$ADDR/v1/node/self" |
            python3 -c 'import json,sys; print((json.load(sys.stdin).get("Drivers") or {}).get("docker"))' 2>/dev/null)"
    fi
fi

# the agent and what it started (the network helper, supervisors): pids
agent_tree() {
    echo "$AGENT_PID"
    ps -e -o pid=,ppid= | awk -v root="$AGENT_PID" '
        {parent[$1] = $2}
        END {
            mine[root] = 1
            do { grew = 0
                 for (p in parent) if (!(p in mine) && (parent[p] in mine)) { mine[p] = 1; grew = 1 }
            } while (grew)
            for (p in mine) if (p != root) print p
        }'
}
# agent_mem: "pss_kb private_kb" of the agent's tree
agent_mem() {
    for p in $(agent_tree); do cat "/proc/$p/smaps_rollup" 2>/dev/null; done |
        awk '/^Pss:/ {pss += $2} /^Private_(Clean|Dirty):/ {priv += $2} END {printf "%d %d\n", pss, priv}'
}
# agent_cpu_ticks: utime+stime of the agent's tree, with the children the
# agent has reaped (cutime+cstime: processes it ran and waited for)
agent_cpu_ticks() {
    for p in $(agent_tree); do sed 's/.*) //' "/proc/$p/stat" 2>/dev/null; done |
        awk -v root="$AGENT_PID" 'NR == 1 {s += $14 + $15} {s += $12 + $13} END {print s + 0}'
}
# cpu_over SECS: the agent tree's CPU over SECS, in ms
cpu_over() {
    a=$(agent_cpu_ticks)
    sleep "$1"
    b=$(agent_cpu_ticks)
    echo $(((b - a) * 1000 / $(getconf CLK_TCK)))
}

write_job() { # NAME COUNT
    cat >"$TMP/$1.nomad" <<JOB
job "$1" {
  datacenters = ["dc1"]
  type = "service"
  group "g" {
    count = $2
    network {
      mode = "bridge"
    }
    task "t" {
      driver = "docker"
      config {
        image   = "nctest/busybox:1"
        command = "sleep"
        args    = ["3600"]
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
alloc_ids() { curl -s "$ADDR/v1/job/$1/allocations" | python3 -c 'import json,sys; print(" ".join(a["ID"] for a in json.load(sys.stdin)))' 2>/dev/null; }
# task_containers IDS...: the task containers (not nomad_init_) of these
# allocations, by the alloc_id label the driver puts on them
task_containers() {
    docker_cli ps -a --filter label=com.hashicorp.nomad.alloc_id \
        --format '{{.Names}} {{.Label "com.hashicorp.nomad.alloc_id"}}' |
        awk -v ids=" $* " '$1 !~ /^nomad_init_/ && index(ids, " " $2 " ") {print $1}'
}
running_count() { # IDS...
    # shellcheck disable=SC2046
    [ -n "$*" ] || { echo 0; return; }
    set -- $(task_containers "$@")
    [ $# -gt 0 ] || { echo 0; return; }
    docker_cli inspect --format '{{.State.Running}}' "$@" | grep -c true
}
# nomclient_run NAME N [HOLD]: submits a job of N bridge-mode docker
# allocations, waits for every task container running, writes "total median
# cni_median stop" (ms) into $res/nomclient-NAME; with HOLD, runs HOLD (a
# command) while they run, before the stop
nomclient_run() {
    hold=${3:-}
    write_job "$1" "$2"
    if ! "$NOMCLIENT" job run -output "$TMP/$1.nomad" >"$TMP/$1.json" 2>"$TMP/$1.err"; then
        echo "bench-docker: $1: $(cat "$TMP/$1.err")" >&2
        echo "- - - -" >"$res/nomclient-$1"
        return 1
    fi
    noop_cost
    start=$(now_ns)
    curl -s -f -X POST --data-binary "@$TMP/$1.json" "$ADDR/v1/jobs" >/dev/null
    ids=""
    k=$((1200 + 20 * $2)) # 0.1 s each: 2 min + 2 s per allocation
    while [ $k -gt 0 ]; do
        ids=$(alloc_ids "$1")
        # shellcheck disable=SC2086
        [ "$(echo $ids | wc -w)" -ge "$2" ] && [ "$(running_count $ids)" -ge "$2" ] && break
        sleep 0.1
        k=$((k - 1))
    done
    if [ $k -eq 0 ]; then
        echo "bench-docker: $1: not all $2 task containers ran within $((120 + 2 * $2)) s" >&2
        echo "- - - -" >"$res/nomclient-$1"
    else
        # shellcheck disable=SC2046,SC2086
        started_ns $(task_containers $ids) >"$TMP/$1.at"
        set -- "$1" "$2" $(awk -v s="$start" '{print int(($1 - s) / 1e6)}' "$TMP/$1.at" | stats)
        # the CNI chain's own time (the network helper's SetupTimings)
        cni=$(curl -s "$ADDR/v1/job/$1/allocations" | python3 -c '
import json, sys
v = sorted((a.get("AllocatedResources") or {}).get("Shared", {}).get("Networks", [{}])[0]
           .get("SetupTimings", {}).get("PluginsUs", 0) / 1000 for a in json.load(sys.stdin))
print(int(v[(len(v) - 1) // 2]) if v else "-")' 2>/dev/null)
        ours_of "$1" "$start" $(task_containers $ids)
        [ -n "$hold" ] && $hold
        t_stop=$(now_ns)
        "$NOMCLIENT" job stop "$1" >/dev/null 2>&1
        k=1200
        # shellcheck disable=SC2086
        while [ $k -gt 0 ] && [ -n "$(task_containers $ids)" ]; do sleep 0.1; k=$((k - 1)); done
        echo "$5 $3 ${cni:--} $((($(now_ns) - t_stop) / 1000000))" >"$res/nomclient-$1"
        return 0
    fi
    "$NOMCLIENT" job stop "$1" >/dev/null 2>&1
}

# noop_cost: 5 launches of a curl that asks the agent for nothing much,
# from a date before to a date after, each a line (us) of $res/noop: what
# the submission's own curl and clock reading cost
noop_cost() {
    for _ in 1 2 3 4 5; do
        a=$(now_ns)
        curl -s -o /dev/null "$ADDR/v1/agent/self"
        b=$(now_ns)
        echo $(((b - a) / 1000)) >>"$res/noop"
    done
}
# ours_of NAME START CONTAINERS...: per allocation, from the agent's own
# record, "total engine cni queued" (us) into $res/ours-NAME: total the task's
# Timings.RunningAt (its pid known) - START; engine the Engine calls on the start's
# path (the pause container's Timings.EngineUs + the task's
# DriverState.Timings.EngineUs); cni the chain's PluginsUs; queued the
# set-up's wait for the network helper (QueuedUs, a part of ours)
ours_of() {
    name=$1 start=$2
    shift 2
    # shellcheck disable=SC2086
    docker_cli inspect --format '{{.Name}} {{.State.StartedAt}}' "$@" >"$TMP/$name.started" 2>/dev/null
    curl -s "$ADDR/v1/job/$name/allocations" >"$TMP/$name.allocs"
    [ -n "${BENCH_KEEP:-}" ] && cp "$TMP/$name.allocs" "$BENCH_KEEP/"
    python3 - "$TMP/$name.allocs" "$TMP/$name.started" "$start" >"$res/ours-$name" <<'PY'
import calendar, json, sys, time
allocs = json.load(open(sys.argv[1]))
start = int(sys.argv[3])
at = {}
for line in open(sys.argv[2]):
    nm, t = line.split()
    day, _, frac = t.rstrip("Z").partition(".")
    at[nm.lstrip("/")] = (calendar.timegm(time.strptime(day, "%Y-%m-%dT%H:%M:%S")) * 10**9
                          + int((frac + "0" * 9)[:9]))
for a in allocs:
    net = ((a.get("AllocatedResources") or {}).get("Shared", {}).get("Networks") or [{}])[0]
    pause = (net.get("Driver") or {}).get("Timings") or {}
    cni = (net.get("SetupTimings") or {}).get("PluginsUs", 0)
    for tn, ts in (a.get("TaskStates") or {}).items():
        t = ((ts.get("DriverState") or {}).get("Timings")) or {}
        c = at.get("%s-%s" % (tn, a["ID"]))
        if c is None or not t or not pause:
            continue
        # to the moment the agent knew it ran: the start's call ends after
        # StartedAt, and the inspect after it is on the path too
        end = t.get("RunningAt") or c
        print((end - start) // 1000, pause.get("EngineUs", 0) + t.get("EngineUs", 0), cni,
              (net.get("SetupTimings") or {}).get("QueuedUs", 0))
PY
}

# with the largest group running: memory and CPU of the agent
steady() {
    sleep 5 # past the start's own work (first stats, health)
    agent_mem >"$res/mem.n"
    cpu_over "$SECS" >"$res/cpu.n"
}

if [ -z "$skip2" ]; then
    max=0
    for n in $COUNTS; do [ "$n" -gt $max ] && max=$n; done
    sleep 5
    agent_mem >"$res/mem.0"
    cpu_over "$SECS" >"$res/cpu.0"
    for n in $COUNTS; do
        if [ "$n" = 1 ]; then
            r=0
            while [ $r -lt "$REPS" ]; do nomclient_run "dk1r$r" 1; r=$((r + 1)); done
        elif [ "$n" = "$max" ]; then
            nomclient_run "dk$n" "$n" steady
        else
            nomclient_run "dk$n" "$n"
        fi
    done
    sleep 5
    agent_mem >"$res/mem.after"
fi

# --- the table -----------------------------------------------------------
echo
echo "docker allocations: first request (engine) or submission (nomclient) to each task container's State.StartedAt; ms"
printf '%-6s | %-29s | %-40s | %-11s | %s\n' "" "Engine API alone (network none)" "nomclient (bridge, CNI)" "ours beyond" "from the agent's record"
printf '%-6s | %7s %8s %7s %4s | %7s %8s %7s %6s %8s | %11s | %7s %6s %8s %7s\n' allocs total ms/alloc median rm \
    total ms/alloc median cni stop "engine+cni" engine ours "ours p90" "of it q"
row() { # N: the figures of N (the median of the n=1 runs)
    rn=$1
    if [ "$1" = 1 ]; then
        e=$(for f in "$res"/engine-e1r*; do cat "$f"; done | awk '{print $2, $1, $3}' | sort -n |
            awk '{a[NR] = $0} END {print a[int((NR + 1) / 2)]}' | awk '{print $2, $1, $3}')
        c=$(for f in "$res"/nomclient-dk1r*; do cat "$f" 2>/dev/null; done | awk '{print $2, $1, $3, $4}' |
            sort -n | awk '{a[NR] = $0} END {print a[int((NR + 1) / 2)]}' | awk '{print $2, $1, $3, $4}')
        o=$(cat "$res"/ours-dk1r* 2>/dev/null)
    else
        e=$(cat "$res/engine-e$1")
        c=$(cat "$res/nomclient-dk$1" 2>/dev/null)
        o=$(cat "$res/ours-dk$1" 2>/dev/null)
    fi
    # "engine_median ours_median ours_p90 queued_median" (ms, 1 decimal)
    oc=$(echo "$o" | awk -v noop="$noop" 'NF >= 4 {
            n++; e[n] = $2; x[n] = $1 - $2 - $3 - noop; q[n] = $4 }
        function sortv(v, k,   i, j, t) { for (i = 2; i <= k; i++) for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t } }
        END { if (!n) { print "- - - -"; exit }
              sortv(e, n); sortv(x, n); sortv(q, n)
              p = int(n * 0.9 + 0.999); if (p > n) p = n
              printf "%.1f %.1f %s %.1f\n", e[int((n + 1) / 2)] / 1000, x[int((n + 1) / 2)] / 1000,
                     (n >= 10 ? sprintf("%.1f", x[p] / 1000) : "-"), q[int((n + 1) / 2)] / 1000 }')
    set -- $oc
    oe=$1 oo=$2 op=$3 oq=$4
    set -- "$rn" $e $c
    et=$2 em=$3 erm=$4 ct=${5:--} cm=${6:--} cc=${7:--} cs=${8:--}
    per() { case $1 in -) echo - ;; *) echo $(($1 / $2)) ;; esac; }
    over=-
    case "$cm$em$cc" in *-*) ;; *) over=$((cm - em - cc)) ;; esac
    printf '%-6s | %7s %8s %7s %4s | %7s %8s %7s %6s %8s | %11s | %7s %6s %8s %7s\n' "$1" "$et" "$(per "$et" "$1")" "$em" "$erm" \
        "$ct" "$(per "$ct" "$1")" "$cm" "$cc" "$cs" "$over" "$oe" "$oo" "$op" "$oq"
}
noop=$(stats <"$res/noop" 2>/dev/null | awk '{print ($1 == "-" ? 0 : $1)}')
for n in $COUNTS; do row "$n"; done
echo "n=1: median of $REPS runs; median: of the allocations' times; rm: docker rm -f of them all; stop: job stop until no task container is left;"
echo "ours beyond engine+cni: nomclient's median - the Engine's median - the CNI chain's median (goal under 5 ms at n=1)."
echo "from the agent's record, per allocation: engine: the Engine calls on the start's path (pause container + task: image when waited for, create, start, inspect);"
echo "ours = (the agent's RunningAt for the task - submission) - engine - CNI (PluginsUs) - a no-op curl launch's median (${noop:-0} us this run); ms (p90 for n >= 10)."
echo "of it q: the median wait of the network set-up for the helper (SetupTimings.QueuedUs), outside the docker driver."
echo "The baseline is bench_docker_engine: the 4 requests of an allocation on one kept connection, a thread per allocation."
if [ -n "$skip2" ]; then
    echo
    echo "nomclient part skipped: $skip2"
    exit 0
fi
read -r pss0 priv0 <"$res/mem.0"
read -r pssn privn <"$res/mem.n"
read -r pssa priva <"$res/mem.after"
cpu0=$(cat "$res/cpu.0")
cpun=$(cat "$res/cpu.n")
echo
echo "the agent (and what it runs: network helper, supervisors), $max docker tasks running vs none:"
printf '%-36s %10s %10s %14s\n' "" "0 tasks" "$max tasks" "per task"
printf '%-36s %10s %10s %14s\n' "private memory (KiB)" "$priv0" "$privn" "$(((privn - priv0) / max))"
printf '%-36s %10s %10s %14s\n' "Pss (KiB)" "$pss0" "$pssn" "$(((pssn - pss0) / max))"
printf '%-36s %10s %10s %14s\n' "CPU over ${SECS} s (ms, utime+stime)" "$cpu0" "$cpun" \
    "$(awk -v a="$cpu0" -v b="$cpun" -v n="$max" -v s="$SECS" 'BEGIN {printf "%.2f", (b - a) / n * 60 / s}') ms/min"
echo "after every job stopped: private ${priva} KiB, Pss ${pssa} KiB (goals: under 300 KiB and near-zero CPU per task)"
