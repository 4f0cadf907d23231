#!/bin/sh
# Allocations with the real agent: a raw_exec job runs under supervisors
# with Nomad's environment, survives kill -9 of the agent and is
# re-attached (never started twice), restarts per policy, and stops.
. "$(dirname "$0")/lib.sh"

data=$TMP/data
cleanup_add "pkill -9 -f 'supervise $data/' ; true"

alloc_field() { # JOB PYTHON-EXPR over the first allocation
    curl -s "$ADDR/v1/job/$1/allocations" |
        python3 -c "import json,sys; a=json.load(sys.stdin); x=a[0] if a else {}; print($2)" 2>/dev/null
}


cat >"$TMP/web.nomad" <<'JOB'
job "web" {
  group "g" {
    network {
      port "http" {}
    }
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo start $NOMAD_ALLOC_ID $NOMAD_TASK_NAME port=$NOMAD_PORT_http dc=${NOMAD_DC}; exec sleep 300"]
      }
      kill_timeout = "2s"
    }
  }
}
JOB

cat >"$TMP/crash.nomad" <<'JOB'
job "crash" {
  type = "batch"
  group "g" {
    restart {
      attempts = 2
      interval = "1m"
      delay    = "1s"
      mode     = "fail"
    }
    reschedule {
      attempts  = 0
      unlimited = false
    }
    task "boom" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo boom; exit 3"]
      }
    }
  }
}
JOB

need_agent "agent starts" a1 -dev -data-dir "$data"
"$NOMCLIENT" job run "$TMP/web.nomad" >/dev/null
running() { [ "$(alloc_field web 'x.get("ClientStatus")')" = running ]; }
check "allocation reaches running" wait_for 5 running
id=$(alloc_field web 'x["ID"]')
tlog="$data/alloc/$id/alloc/logs/t.stdout.0"
has_start() { grep -q "^start $id t port=[0-9]* dc=dc1" "$tlog" 2>/dev/null; }
check "task got Nomad's environment (alloc id, task name, port, dc)" wait_for 5 has_start
port=$(sed -n 's/.*port=\([0-9]*\).*/\1/p' "$tlog")
in_range() { [ "$port" -ge 20000 ] && [ "$port" -le 32000 ]; }
check "dynamic port from 20000-32000 ($port)" in_range
out=$(curl -s "$ADDR/v1/allocation/$(echo "$id" | cut -c1-8)")
check "alloc by id prefix" contains "$out" "\"ID\":\"$id\""

out=$("$NOMCLIENT" alloc status "$(echo "$id" | cut -c1-8)")
check "alloc status shows the task and its events" contains "$out" 'Task "t" is "running"'
check "alloc status shows the mapped port" contains "$out" "*http  $port"
out=$("$NOMCLIENT" alloc logs "$id")
check "alloc logs prints the task's stdout" contains "$out" "start $id t port=$port"
out=$("$NOMCLIENT" status -self)
check "status -self lists the allocation" contains "$out" "$(echo "$id" | cut -c1-8)"
out=$("$NOMCLIENT" alloc logs nope 2>&1)
check "alloc logs of an unknown allocation is a clear error" contains "$out" "allocation not found: nope"

kill -9 "$AGENT_PID"
sleep 0.2
nsup=$(pgrep -f "supervise $data/alloc/$id/" | wc -l)
check "task survives kill -9 of the agent" [ "$nsup" -eq 1 ]
start_agent a2 -dev -data-dir "$data"
check "restarted agent re-attaches" wait_for 5 grep -q "re-attached to task t of $id" "$TMP/a2.log"
check "same allocation, still running" [ "$(alloc_field web 'x["ID"]+" "+x["ClientStatus"]')" = "$id running" ]
starts=$(grep -c '^start' "$tlog")
sups=$(pgrep -f "supervise $data/alloc/$id/" | wc -l)
if [ "$starts" -eq 1 ] && [ "$sups" -eq 1 ]; then
    pass "task not started twice"
else
    fail "task not started twice" "starts=$starts supervisors=$sups"
fi

"$NOMCLIENT" job run "$TMP/crash.nomad" >/dev/null
failed() { [ "$(alloc_field crash 'x.get("ClientStatus")')" = failed ]; }
check "crashing batch task fails after its restart attempts" wait_for 10 failed
check "restarts counted (2)" [ "$(alloc_field crash 'x["TaskStates"]["boom"]["Restarts"]')" = 2 ]
check "Not Restarting event" [ "$(alloc_field crash 'x["TaskStates"]["boom"]["Events"][-1]["Type"]')" = "Not Restarting" ]

sleep 0.5
check "no replacement when reschedule attempts are used up" [ "$(curl -s "$ADDR/v1/job/crash/allocations" | grep -o '"ID"' | wc -l)" -eq 1 ]

cat >"$TMP/flaky.nomad" <<'JOB'
job "flaky" {
  type = "batch"
  group "g" {
    restart {
      attempts = 0
      mode     = "fail"
    }
    reschedule {
      attempts       = 1
      interval       = "1h"
      delay          = "5s"
      delay_function = "constant"
      unlimited      = false
    }
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/false"
      }
    }
  }
}
JOB
"$NOMCLIENT" job run "$TMP/flaky.nomad" >/dev/null
two_failed() { [ "$(curl -s "$ADDR/v1/job/flaky/allocations" | grep -o '"ClientStatus":"failed"' | wc -l)" -eq 2 ]; }
check "failed allocation replaced once per reschedule policy" wait_for 15 two_failed
prev=$(alloc_field flaky 'x.get("PreviousAllocation","")')
first=$(curl -s "$ADDR/v1/job/flaky/allocations" | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["ID"])')
check "replacement links its previous allocation" [ "$prev" = "$first" ]

# alloc logs -f: follows a task's output as it is written, across log
# rotations, and ends by itself once the task is dead
cat >"$TMP/ticker.nomad" <<'JOB'
job "ticker" {
  type = "batch"
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "sleep 1; for i in 1 2 3 4 5 6 7 8 9 10; do echo tick $i; sleep 0.2; done; seq 1 400000"]
      }
      logs {
        max_files     = 5
        max_file_size = 1
      }
    }
  }
}
JOB
"$NOMCLIENT" job run "$TMP/ticker.nomad" >/dev/null
tid=$(alloc_field ticker 'x["ID"]')
"$NOMCLIENT" alloc logs -f "$tid" >"$TMP/follow.out" 2>&1 &
fpid=$!
cleanup_add "kill $fpid 2>/dev/null"
has_tick3() { grep -q '^tick 3$' "$TMP/follow.out"; }
if wait_for 5 has_tick3 && ! grep -q '^tick 10$' "$TMP/follow.out"; then
    pass "alloc logs -f prints lines as the task writes them"
else
    fail "alloc logs -f prints lines as the task writes them" "$(head -5 "$TMP/follow.out")"
fi
follow_done() { ! kill -0 "$fpid" 2>/dev/null; }
check "alloc logs -f ends once the task is dead" wait_for 15 follow_done
nfiles=$(ls "$data/alloc/$tid/alloc/logs/" | grep -c '^t.stdout')
{ printf 'tick %s\n' 1 2 3 4 5 6 7 8 9 10; seq 1 400000; } >"$TMP/follow.want"
if cmp -s "$TMP/follow.out" "$TMP/follow.want" && [ "$nfiles" -ge 3 ]; then
    pass "alloc logs -f output is complete across $nfiles rotated files"
else
    fail "alloc logs -f output is complete across rotated files" "files=$nfiles $(cmp "$TMP/follow.out" "$TMP/follow.want" 2>&1)"
fi

"$NOMCLIENT" job stop web >/dev/null
gone() { [ "$(pgrep -f "supervise $data/alloc/$id/" | wc -l)" -eq 0 ]; }
check "job stop ends the task" wait_for 5 gone
complete() { [ "$(alloc_field web 'x.get("ClientStatus")')" = complete ]; }
check "allocation complete after stop" wait_for 5 complete

# a finished batch allocation frees its resources, as Nomad counts them:
# two batch jobs that each ask for 60% of the node's memory run one after
# the other
mem=$(curl -s "$ADDR/v1/node/self" |
    python3 -c 'import json,sys; x=json.load(sys.stdin); print(x["NodeResources"]["Memory"]["MemoryMB"] * 6 // 10)')
for j in big1 big2; do
    cat >"$TMP/$j.nomad" <<JOB
job "$j" {
  type = "batch"
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/true"
      }
      resources {
        memory = $mem
      }
    }
  }
}
JOB
done
"$NOMCLIENT" job run "$TMP/big1.nomad" >/dev/null
big1_done() { [ "$(alloc_field big1 'x.get("ClientStatus")')" = complete ]; }
check "a batch job with 60% of the memory completes" wait_for 10 big1_done
out=$("$NOMCLIENT" job run "$TMP/big2.nomad" 2>&1)
check "a second one is placed once the first is done" contains "$out" 'Job "big2" registered'
stop_agent
finish
