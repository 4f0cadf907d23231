#!/bin/sh
# Restart safety of the docker driver (root only, a private daemon): the
# agent killed with SIGKILL while ten allocations' containers are being
# made and started, then started again, ends with each task in exactly one
# container, started once (the daemon's own events count the creates and
# starts); and the daemon stopped and started under a running agent turns
# the driver unhealthy and healthy again, with a node event each way, and
# the task runs again.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/docker_common.sh"

dk_setup
dk_agent_config "$TMP/agent.hcl"
need_agent "agent starts" dk1 -config "$TMP/agent.hcl"

cat >"$TMP/ten.nomad" <<'JOB'
job "ten" {
  group "g" {
    count = 10
    task "t" {
      driver = "docker"
      config {
        image   = "nctest/busybox:1"
        command = "/bin/sh"
        args    = ["-c", "echo started; exec sleep 3600"]
      }
      kill_timeout = "1s"
    }
  }
}
JOB
since=$(date +%s)
"$NOMCLIENT" job run "$TMP/ten.nomad" >/dev/null 2>&1
# in the middle of it: some made, some not
wait_for 20 sh -c "[ \$($DK ps -aq --filter label=com.hashicorp.nomad.alloc_id | wc -l) -ge 1 ]"
kill -9 "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
made=$($DK ps -aq --filter label=com.hashicorp.nomad.alloc_id | wc -l)
echo "# $made container(s) made when the agent was killed"
need_agent "agent restarts" dk2 -config "$TMP/agent.hcl"
running() {
    [ "$(curl -s "$ADDR/v1/job/ten/allocations" | grep -o '"ClientStatus":"running"' | wc -l)" = 10 ]
}
wait_for 60 running
check "all ten allocations running again" running
n=$($DK ps -q --filter label=com.hashicorp.nomad.alloc_id | wc -l)
all=$($DK ps -aq --filter label=com.hashicorp.nomad.alloc_id | wc -l)
check "ten containers, all running ($n running, $all in all)" [ "$n/$all" = 10/10 ]
sleep 1
until=$(date +%s)
$DK events --since "$since" --until "$until" --filter type=container \
    --filter label=com.hashicorp.nomad.alloc_id --format '{{.Action}} {{.Actor.Attributes.name}}' \
    >"$TMP/events" 2>/dev/null
creates=$(grep -c '^create ' "$TMP/events")
starts=$(grep -c '^start ' "$TMP/events")
check "ten creates and ten starts in the daemon's events ($creates, $starts)" [ "$creates/$starts" = 10/10 ]
dup=$(awk '$1 == "create" {print $2}' "$TMP/events" | sort | uniq -d)
check "no task's container made twice ($dup)" [ -z "$dup" ]
once=true
for a in $(dk_json /v1/job/ten/allocations "' '.join(x['ID'] for x in j)"); do
    c=$("$NOMCLIENT" alloc logs "$a" t 2>/dev/null | grep -c started)
    [ "$c" = 1 ] || once=false
done
check "each task ran once (one 'started' in each log)" $once
"$NOMCLIENT" job stop ten >/dev/null
wait_for 30 sh -c "[ -z \"\$($DK ps -aq --filter label=com.hashicorp.nomad.alloc_id)\" ]"
check "job stopped: no container left" [ -z "$($DK ps -aq --filter label=com.hashicorp.nomad.alloc_id)" ]

# ---- the daemon away and back under the agent ----
cat >"$TMP/svc.nomad" <<'JOB'
job "svc" {
  group "g" {
    restart {
      attempts = 50
      interval = "10m"
      delay    = "1s"
      mode     = "delay"
    }
    task "t" {
      driver = "docker"
      config {
        image   = "nctest/busybox:1"
        command = "/bin/sh"
        args    = ["-c", "echo up; exec sleep 3600"]
      }
      kill_timeout = "1s"
    }
  }
}
JOB
"$NOMCLIENT" job run "$TMP/svc.nomad" >/dev/null 2>&1
V=$(dk_alloc_id svc)
wait_for 30 sh -c "[ \"\$(curl -s $ADDR/v1/allocation/$V | grep -o '\"ClientStatus\":\"running\"')\" ]"
health() { dk_json /v1/node/self "str(j['Drivers']['docker']['Healthy'])"; }
check "healthy before" [ "$(health)" = True ]
dk_daemon_stop
wait_for 40 sh -c "[ \"\$(curl -s $ADDR/v1/node/self | python3 -c \"import json,sys; print(json.load(sys.stdin)['Drivers']['docker']['Healthy'])\")\" = False ]"
check "daemon stopped: docker unhealthy" [ "$(health)" = False ]
desc=$(dk_json /v1/node/self "j['Drivers']['docker']['HealthDescription']")
check "health description in Nomad's words" [ "$desc" = "Failed to connect to docker daemon" ]
check "still detected" [ "$(dk_json /v1/node/self "str(j['Drivers']['docker']['Detected'])")" = True ]
evs=$(dk_json /v1/node/self "'\n'.join(e['Subsystem']+': '+e['Message'] for e in j['Events'])")
check "a node event says so" contains "$evs" "Driver: Failed to connect to docker daemon"
dk_daemon_restart
wait_for 60 sh -c "[ \"\$(curl -s $ADDR/v1/node/self | python3 -c \"import json,sys; print(json.load(sys.stdin)['Drivers']['docker']['Healthy'])\")\" = True ]"
check "daemon back: docker healthy" [ "$(health)" = True ]
evs=$(dk_json /v1/node/self "'\n'.join(e['Subsystem']+': '+e['Message'] for e in j['Events'])")
check "a node event says it is healthy again" sh -c "printf '%s\n' \"\$1\" | tail -n 1 | grep -qx 'Driver: Healthy'" _ "$evs"
wait_for 60 sh -c "[ -n \"\$($DK ps -q --filter label=com.hashicorp.nomad.alloc_id=$V)\" ]"
check "the task runs again in a new container" [ -n "$($DK ps -q --filter label=com.hashicorp.nomad.alloc_id=$V)" ]
"$NOMCLIENT" job stop svc >/dev/null
wait_for 30 sh -c "[ -z \"\$($DK ps -aq --filter label=com.hashicorp.nomad.alloc_id)\" ]"
check "nothing left" [ -z "$($DK ps -aq --filter label=com.hashicorp.nomad.alloc_id)" ]
stop_agent
finish
