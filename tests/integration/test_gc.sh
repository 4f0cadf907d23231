#!/bin/sh
# Client garbage collection with the real agent: 60 short batch
# allocations with gc_max_allocs = 10 leave at most 10 terminal ones (dirs,
# state files) and no mounts; a running service allocation is never
# collected; PUT /v1/client/gc and /v1/client/allocation/:id/gc as Nomad
# answers them; a collected allocation is gone from the API and the CLI,
# leaves nothing behind (leftovers) and is not run again after a restart.
. "$(dirname "$0")/lib.sh"

data=$TMP/data
cleanup_add "pkill -9 -f 'supervise $data/' ; true"
# a bridge allocation too, where this host can run one
bridge=""
if [ "$(id -u)" = 0 ] && [ -x /usr/lib/cni/bridge ]; then
    bridge_test nctestgc 10.255.171.0/24
    bridge="bridge_network_name = \"$BR\"
  bridge_network_subnet = \"$SUBNET\""
fi
hv=$TMP/hv
mkdir -p "$hv"

cat >"$TMP/agent.hcl" <<EOF
client {
  gc_max_allocs        = 10
  gc_interval          = "1s"
  gc_parallel_destroys = 3
  $bridge
  host_volume "hv" {
    path = "$hv"
  }
}
EOF

# exec, with a host volume mounted: its cgroup and mounts must go too
cat >"$TMP/ex1.nomad" <<'JOB'
job "ex1" {
  type = "batch"
  group "g" {
    volume "data" {
      type   = "host"
      source = "hv"
    }
    task "t" {
      driver = "exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo exec > /data/f"]
      }
      volume_mount {
        volume      = "data"
        destination = "/data"
      }
      resources {
        cpu    = 10
        memory = 10
      }
    }
  }
}
JOB
cat >"$TMP/br1.nomad" <<'JOB'
job "br1" {
  type = "batch"
  group "g" {
    network {
      mode = "bridge"
    }
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo bridged"]
      }
      resources {
        cpu    = 10
        memory = 10
      }
    }
  }
}
JOB

cat >"$TMP/svc.nomad" <<'JOB'
job "svc" {
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "exec sleep 300"]
      }
      kill_timeout = "1s"
    }
  }
}
JOB

batch_job() { # NAME
    cat >"$TMP/$1.nomad" <<JOB
job "$1" {
  type = "batch"
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo done"]
      }
      resources {
        cpu    = 10
        memory = 10
      }
    }
  }
}
JOB
}

allocs_json() { curl -s "$ADDR/v1/allocations"; }
# count STATUS: allocations of that client status the API lists
count() {
    allocs_json | python3 -c "import json,sys; print(sum(1 for a in json.load(sys.stdin) if a['ClientStatus'] == '$1'))"
}
ids_of() { # JOB
    curl -s "$ADDR/v1/job/$1/allocations" |
        python3 -c 'import json,sys; print(" ".join(a["ID"] for a in json.load(sys.stdin)))'
}
dirs() { ls "$data/alloc" 2>/dev/null | grep -c .; }
states() { ls "$data/client/allocs" 2>/dev/null | grep -c '\.json$'; }
mounts() { grep -c " $data/alloc" /proc/self/mountinfo; }

need_agent "agent starts" a1 -dev -data-dir "$data" -config "$TMP/agent.hcl"
"$NOMCLIENT" job run "$TMP/svc.nomad" >/dev/null
svc_running() { [ "$(count running)" -eq 1 ]; }
check "the service allocation runs" wait_for 10 svc_running
svc=$(ids_of svc)

# 60 short batch allocations, one job each, one after another
i=1
while [ $i -le 60 ]; do
    batch_job "b$i"
    "$NOMCLIENT" job run -detach "$TMP/b$i.nomad" >/dev/null 2>&1 ||
        "$NOMCLIENT" job run "$TMP/b$i.nomad" >/dev/null 2>&1
    i=$((i + 1))
done
settled() { [ "$(count pending)" -eq 0 ] && [ "$(count complete)" -le 10 ]; }
if wait_for 20 settled; then
    pass "60 batch allocations: at most 10 terminal ones kept ($(count complete))"
else
    fail "60 batch allocations: at most 10 terminal ones kept" "$(count complete) complete, $(count pending) pending"
fi
kept_dirs() { [ "$(dirs)" -le 11 ] && [ "$(states)" -le 11 ]; }
if wait_for 10 kept_dirs; then
    pass "at most 10 terminal allocation dirs and state files (+1 running): $(dirs) dirs, $(states) states"
else
    fail "at most 10 terminal allocation dirs and state files (+1 running)" "$(dirs) dirs, $(states) states"
fi
check "no mount under the alloc dir" [ "$(mounts)" -eq 0 ]
check "the service allocation still runs" svc_running
check "the service allocation's dir is still there" [ -d "$data/alloc/$svc/t/local" ]
check "the oldest batch allocation is gone from the job" [ -z "$(ids_of b1)" ]
check "the newest is kept" [ -n "$(ids_of b60)" ]
if grep -q "garbage collecting allocation .*number of allocations (11) is over the limit (10)\|new allocations and over max (10)" "$TMP/a1.log"; then
    pass "the log says why, in Nomad's words"
else
    fail "the log says why, in Nomad's words" "$(grep gc "$TMP/a1.log" | tail -5)"
fi

# one allocation by its ID
kept=$(ids_of b60)
out=$(curl -s -o "$TMP/gc1.out" -w '%{http_code}' -X PUT "$ADDR/v1/client/allocation/$kept/gc")
check "PUT /v1/client/allocation/:id/gc of a terminal one: 200 ($out)" [ "$out" = 200 ]
gone_b60() { [ -z "$(ids_of b60)" ] && [ ! -e "$data/alloc/$kept" ] && [ ! -e "$data/client/allocs/$kept.json" ]; }
check "it is gone: API, dir and state file" wait_for 10 gone_b60
st=$("$NOMCLIENT" alloc status "$kept" 2>&1)
if [ $? -ne 0 ] && contains "$st" "404 (allocation not found: $kept)"; then
    pass "alloc status says it is not found"
else
    fail "alloc status says it is not found" "$st"
fi
code=$(curl -s -o "$TMP/gc2.out" -w '%{http_code}' -X PUT "$ADDR/v1/client/allocation/$kept/gc")
if [ "$code" = 404 ] && grep -q "Unknown allocation \\\\\"$kept\\\\\"" "$TMP/gc2.out"; then
    pass "again: 404 Unknown allocation"
else
    fail "again: 404 Unknown allocation" "$code $(cat "$TMP/gc2.out")"
fi
code=$(curl -s -o "$TMP/gc3.out" -w '%{http_code}' -X PUT "$ADDR/v1/client/allocation/$svc/gc")
if [ "$code" = 409 ] && grep -q "No such allocation on client, or allocation not eligible for GC" "$TMP/gc3.out"; then
    pass "a running one is refused in Nomad's words (409)"
else
    fail "a running one is refused in Nomad's words (409)" "$code $(cat "$TMP/gc3.out")"
fi
check "and keeps running" svc_running

# exec (a cgroup, a volume mount) and bridge (a namespace) batch jobs
"$NOMCLIENT" job run -detach "$TMP/ex1.nomad" >/dev/null 2>&1
[ -n "$bridge" ] && "$NOMCLIENT" job run -detach "$TMP/br1.nomad" >/dev/null 2>&1
ended() { # JOB
    grep -q "allocation [0-9a-f-]* ($1.g\[0\]): running -> [a-z]*" "$TMP/a1.log"
}
check "the exec batch allocation ran to its end" wait_for 15 ended ex1
if [ -n "$bridge" ]; then
    check "the bridge batch allocation ran to its end" wait_for 15 ended br1
    br=$(ids_of br1)
    # collectable once its namespace is gone, not before
    torn() { grep -q "allocation $br: network torn down" "$TMP/a1.log"; }
    check "its network is torn down" wait_for 15 torn
fi
check "the exec one completed (the task wrote into the volume)" [ -s "$hv/f" ]

# every terminal allocation
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT "$ADDR/v1/client/gc")
check "PUT /v1/client/gc: 200 ($code)" [ "$code" = 200 ]
only_svc() { [ "$(count complete)" -eq 0 ] && [ "$(count failed)" -eq 0 ] && [ "$(dirs)" -eq 1 ] && [ "$(states)" -eq 1 ]; }
if wait_for 10 only_svc; then
    pass "only the running allocation is left (dirs, state files, API)"
else
    fail "only the running allocation is left" "$(count complete) complete, $(dirs) dirs, $(states) states"
fi
check "the service allocation still runs after a full collection" svc_running
code=$(curl -s -o "$TMP/gc4.out" -w '%{http_code}' -X PUT "$ADDR/v1/client/gc?node_id=nosuchnode")
check "PUT /v1/client/gc of another node: 404 ($code)" [ "$code" = 404 ]
# other tests' agents run beside: only our allocations' ids are looked for
sed -n 's/.*allocation \([0-9a-f-]\{36\}\) created for .*/\1/p' "$TMP/a1.log" | grep -v "$svc" | sort -u >"$TMP/collected"
left=$("$NOMCLIENT" leftovers 2>&1)
if [ "$(wc -l <"$TMP/collected")" -ge 60 ] && ! echo "$left" | grep -q -F -f "$TMP/collected"; then
    pass "leftovers: nothing of a collected allocation"
else
    fail "leftovers: nothing of a collected allocation" "$(wc -l <"$TMP/collected") ids; $left"
fi

# a restart does not run the collected batch allocations again
kill -9 "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
need_agent "agent starts again" a2 -dev -data-dir "$data" -config "$TMP/agent.hcl"
check "the service allocation is re-attached" wait_for 10 svc_running
sleep 1
n=$(allocs_json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
check "no collected batch allocation was made again ($n allocations)" [ "$n" -eq 1 ]
check "the new agent knows what it collected" [ -s "$data/client/gc.json" ]

# an unchanged re-registration does not run it again either; a changed one does
"$NOMCLIENT" job run -detach "$TMP/b5.nomad" >/dev/null 2>&1
sleep 0.5
check "re-registering an unchanged collected batch job runs nothing" [ -z "$(ids_of b5)" ]
sed -i 's/echo done/echo again/' "$TMP/b5.nomad"
"$NOMCLIENT" job run -detach "$TMP/b5.nomad" >/dev/null 2>&1
ran_again() { [ -n "$(ids_of b5)" ]; }
check "a new version of it runs" wait_for 10 ran_again

finish
