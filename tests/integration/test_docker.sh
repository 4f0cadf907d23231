#!/bin/sh
# The docker driver through the real agent and a private Docker daemon
# (root only; images made offline): a host-mode task's port mapped on the
# host, its logs in `alloc logs` and `alloc logs -f`, the container found
# again after an agent restart, exit codes, kill_signal and kill_timeout,
# an OOM kill, read-only and read-write host volumes, the fingerprint's
# attributes, a pull that fails with and without the image present
# locally, and nothing of ours left in `docker ps -a` after the jobs stop.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/docker_common.sh"

dk_setup
hv=$TMP/hv
ro=$TMP/ro
mkdir -p "$hv" "$ro"
echo seed >"$ro/seed"
dk_agent_config "$TMP/agent.hcl" 'gc {
      image = false
    }' "client {
  host_volume \"hv\" {
    path = \"$hv\"
  }
  host_volume \"ro\" {
    path      = \"$ro\"
    read_only = true
  }
}"
need_agent "agent starts" dk -config "$TMP/agent.hcl"

# ---- fingerprint ----
fp() { dk_json /v1/node/self "j['Drivers']['docker']['$1']"; }
attr() { dk_json /v1/node/self "j['Attributes'].get('$1','')"; }
wait_for 5 sh -c "[ -n \"\$(curl -s $ADDR/v1/node/self | grep -o driver.docker.version)\" ]"
check "docker detected and healthy" [ "$(fp Detected)/$(fp Healthy)/$(fp HealthDescription)" = "True/True/Healthy" ]
check "driver.docker.version is the daemon's" [ "$(attr driver.docker.version)" = "$($DK version -f '{{.Server.Version}}')" ]
check "driver.docker.os_type" [ "$(attr driver.docker.os_type)" = linux ]
contains "$(attr driver.docker.runtimes)" runc && pass "driver.docker.runtimes lists runc" ||
    fail "driver.docker.runtimes lists runc" "$(attr driver.docker.runtimes)"
gw=$($DK network inspect bridge -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}' 2>/dev/null)
check "driver.docker.bridge_ip is the bridge network's gateway" [ "$(attr driver.docker.bridge_ip)" = "$gw" ]

# ---- a host-mode web server ----
cat >"$TMP/web.nomad" <<'JOB'
job "web" {
  group "g" {
    network {
      port "http" {
        to = 8080
      }
    }
    volume "data" {
      type   = "host"
      source = "hv"
    }
    volume "seed" {
      type      = "host"
      source    = "ro"
      read_only = true
    }
    task "httpd" {
      driver = "docker"
      config {
        image   = "nctest/busybox:1"
        ports   = ["http"]
        command = "/bin/sh"
        args    = ["-c", "echo \"hello $NOMAD_TASK_NAME in $NOMAD_ALLOC_DIR\"; echo oops >&2; echo page > /local/index.html; echo from-task > /data/out; cat /seed/seed; echo x > /seed/new 2>/dev/null && echo ro-writable; exec httpd -f -p 8080 -h /local"]
      }
      volume_mount {
        volume      = "data"
        destination = "/data"
      }
      volume_mount {
        volume      = "seed"
        destination = "/seed"
      }
      resources {
        memory = 64
      }
      kill_timeout = "1s"
      service {
        name = "dkscript"
        check {
          name     = "has-page"
          type     = "script"
          command  = "/bin/sh"
          args     = ["-c", "test -f /local/index.html && echo page for $NOMAD_TASK_NAME as $(id -u)"]
          interval = "1s"
          timeout  = "2s"
        }
        check {
          name     = "broken"
          type     = "script"
          command  = "/bin/sh"
          args     = ["-c", "echo not fine; exit 2"]
          interval = "1s"
          timeout  = "2s"
        }
        check {
          name     = "slow"
          type     = "script"
          command  = "/bin/sleep"
          args     = ["30"]
          interval = "3s"
          timeout  = "1s"
        }
      }
    }
  }
}
JOB
out=$("$NOMCLIENT" job run "$TMP/web.nomad" 2>&1)
check "docker job accepted" contains "$out" "registered"
A=$(dk_alloc_id web)
wait_for 30 sh -c "[ \"\$(curl -s $ADDR/v1/allocation/$A | grep -o '\"State\":\"running\"')\" ]"
check "task running" [ "$(dk_task_state "$A" httpd)" = running ]
cname=httpd-$A
check "container named <task>-<alloc id>" sh -c "$DK inspect $cname >/dev/null"
check "container labelled with the allocation" [ "$($DK inspect -f '{{index .Config.Labels "com.hashicorp.nomad.alloc_id"}}' "$cname")" = "$A" ]
hport=$(dk_json "/v1/allocation/$A" "j['AllocatedResources']['Shared']['Ports'][0]['Value']")
hip=$(dk_json "/v1/allocation/$A" "j['AllocatedResources']['Shared']['Ports'][0]['HostIP']")
[ -n "$hip" ] || hip=$(attr unique.network.ip-address) # the node's, as Nomad binds
wait_for 10 curl -sf "http://$hip:$hport/index.html" >/dev/null
check "httpd reachable on the mapped host port $hip:$hport" [ "$(curl -s "http://$hip:$hport/index.html")" = page ]
check "read-write host volume written" [ "$(cat "$hv/out" 2>/dev/null)" = from-task ]
wait_for 5 sh -c "\"$NOMCLIENT\" alloc logs $A httpd | grep -q seed"
logs=$("$NOMCLIENT" alloc logs "$A" httpd 2>&1)
check "stdout in alloc logs, with the in-container paths" contains "$logs" "hello httpd in /alloc"
check "read-only volume readable" contains "$logs" "seed"
check "read-only volume not writable" [ ! -e "$ro/new" ]
check "read-only volume refused the write" sh -c "! printf '%s' \"\$1\" | grep -q ro-writable" _ "$logs"
err=$("$NOMCLIENT" alloc logs -stderr "$A" httpd 2>&1)
[ "$(printf '%s\n' "$err" | head -n 1)" = oops ] && pass "stderr apart" || fail "stderr apart" "$err"
check "the read-only volume's write refused by the kernel" contains "$err" "Read-only file system"
check "log files rotated as exec's" [ -f "$TMP/data/alloc/$A/alloc/logs/httpd.stdout.0" ]
stats=$(curl -s "$ADDR/v1/client/allocation/$A/stats")
rss=$(printf '%s' "$stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['Tasks']['httpd']['ResourceUsage']['MemoryStats']['Usage'])" 2>/dev/null)
check "stats: the container's memory ($rss bytes)" [ "${rss:-0}" -gt 0 ]

# ---- script checks run inside the container (the Engine's exec) ----
check_field() {
    curl -s "$ADDR/v1/agent/checks" | python3 -c "
import json,sys
for c in json.load(sys.stdin).values():
    if c.get('Name') == '$1': print(c.get('$2')); break" 2>/dev/null
}
status_is() { [ "$(check_field "$1" Status)" = "$2" ]; }
check "script check passes inside the container" wait_for 15 status_is has-page passing
check "its output is the command's, with the task's env" contains "$(check_field has-page Output)" "page for httpd as 0"
check "a script check exiting 2 is critical" wait_for 10 status_is broken critical
output_has() { contains "$(check_field "$1" Output)" "$2"; }
check "  with its output" wait_for 10 output_has broken "not fine"
check "a script check over its timeout is critical" wait_for 15 status_is slow critical
sleeps() { $DK top "$cname" 2>/dev/null | grep -c "sleep 30"; }
sleep 1
check "the timed-out command was killed (no sleep 30 piling up: $(sleeps))" [ "$(sleeps)" -le 1 ]

# ---- alloc exec in the container ----
out=$("$NOMCLIENT" alloc exec -task httpd "$A" /bin/sh -c 'echo in-container $(hostname) as $(id -u); echo to-stderr >&2; exit 3' </dev/null 2>&1)
rc=$?
check "alloc exec runs in the container" contains "$out" "in-container $($DK inspect -f '{{.Config.Hostname}}' "$cname") as 0"
check "  with its stderr" contains "$out" "to-stderr"
check "  and the command's exit code ($rc)" [ "$rc" = 3 ]

# ---- the agent goes away and comes back: the same container ----
cid=$($DK inspect -f '{{.Id}}' "$cname")
kill -9 "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
$DK exec "$cname" sh -c 'echo while-away' >/dev/null
need_agent "agent restarts" dk2 -config "$TMP/agent.hcl"
wait_for 10 sh -c "grep -q 're-attached to task httpd' $TMP/dk2.log"
check "re-attached to the running container" grep -q "re-attached to task httpd" "$TMP/dk2.log"
check "no second container" [ "$($DK ps -aq --filter name=httpd- | wc -l)/$($DK inspect -f '{{.Id}}' "$cname")" = "1/$cid" ]
check "still serving" [ "$(curl -s "http://$hip:$hport/index.html")" = page ]
n=$("$NOMCLIENT" alloc logs "$A" httpd | grep -c "hello httpd")
check "logs not repeated after the re-attach" [ "$n" = 1 ]

# alloc logs -f follows until the task ends
"$NOMCLIENT" alloc logs -f "$A" httpd >"$TMP/follow.out" 2>&1 &
fpid=$!
cleanup_add "kill $fpid 2>/dev/null"
sleep 0.5
"$NOMCLIENT" job stop web >/dev/null
wait_for 15 sh -c "! kill -0 $fpid 2>/dev/null"
check "alloc logs -f ends with the task" sh -c "! kill -0 $fpid 2>/dev/null"
check "alloc logs -f printed the log" grep -q "hello httpd" "$TMP/follow.out"
wait_for 10 sh -c "[ -z \"\$($DK ps -aq --filter name=httpd-)\" ]"
check "container removed after the stop" [ -z "$($DK ps -aq --filter name=httpd-)" ]
ev=$(dk_events "$A" httpd)
check "stopped after kill_timeout: Exit Code 137" contains "$ev" "Exit Code: 137"

# ---- exit codes, kill_signal, OOM ----
cat >"$TMP/exits.nomad" <<'JOB'
job "exits" {
  type = "batch"
  group "g" {
    restart {
      attempts = 0
      mode     = "fail"
    }
    task "three" {
      driver = "docker"
      config {
        image   = "nctest/busybox:1"
        command = "/bin/sh"
        args    = ["-c", "exit 3"]
      }
    }
    task "oom" {
      driver = "docker"
      config {
        image   = "nctest/busybox:1"
        command = "/bin/sh"
        args    = ["-c", "x=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; while :; do x=$x$x; done"]
      }
      resources {
        memory = 20
      }
    }
  }
}
JOB
"$NOMCLIENT" job run "$TMP/exits.nomad" >/dev/null 2>&1
E=$(dk_alloc_id exits)
wait_for 30 sh -c "[ \"\$(curl -s $ADDR/v1/allocation/$E | grep -o '\"State\":\"dead\"' | wc -l)\" = 2 ]"
check "exit code 3 in the task's events" contains "$(dk_events "$E" three)" "Exit Code: 3"
ev=$(dk_events "$E" oom)
contains "$ev" "OOM Killed" && pass "OOM kill reported" || fail "OOM kill reported" "$ev"

cat >"$TMP/sig.nomad" <<'JOB'
job "sig" {
  group "g" {
    task "t" {
      driver = "docker"
      config {
        image   = "nctest/busybox:1"
        command = "/bin/sh"
        args    = ["-c", "trap 'echo got-usr1; exit 0' USR1; trap 'echo got-usr2' USR2; echo ready; while :; do sleep 0.1; done"]
      }
      kill_signal  = "SIGUSR1"
      kill_timeout = "20s"
    }
  }
}
JOB
"$NOMCLIENT" job run "$TMP/sig.nomad" >/dev/null 2>&1
S=$(dk_alloc_id sig)
wait_for 30 sh -c "\"$NOMCLIENT\" alloc logs $S t 2>/dev/null | grep -q ready"
"$NOMCLIENT" alloc signal -s SIGUSR2 "$S" t >/dev/null 2>&1
wait_for 10 sh -c "\"$NOMCLIENT\" alloc logs $S t | grep -q got-usr2"
check "alloc signal reaches the task (its USR2 trap ran)" sh -c "\"$NOMCLIENT\" alloc logs $S t | grep -q got-usr2"
check "  and it goes on running" [ "$(dk_task_state "$S" t)" = running ]
check "a Signaling event" contains "$(dk_events "$S" t)" "Signaling: Task being sent signal SIGUSR2"
t0=$(date +%s%N)
"$NOMCLIENT" job stop sig >/dev/null
wait_for 15 sh -c "[ \"\$(curl -s $ADDR/v1/allocation/$S | grep -o '\"State\":\"dead\"')\" ]"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "kill_signal delivered (${ms} ms, well before kill_timeout)" [ $ms -lt 10000 ]
wait_for 5 sh -c "\"$NOMCLIENT\" alloc logs $S t | grep -q got-usr1"
check "the task's trap ran" sh -c "\"$NOMCLIENT\" alloc logs $S t | grep -q got-usr1"
check "exit 0 after the kill signal" contains "$(dk_events "$S" t)" "Exit Code: 0"

# ---- pulls that fail ----
$DK tag nctest/busybox:1 127.0.0.1:1/nctest/busybox:latest
cat >"$TMP/pull.nomad" <<'JOB'
job "pull" {
  type = "batch"
  group "local" {
    restart {
      attempts = 0
      mode     = "fail"
    }
    task "t" {
      driver = "docker"
      config {
        image   = "127.0.0.1:1/nctest/busybox:latest"
        command = "/bin/echo"
        args    = ["ran from the local image"]
      }
    }
  }
  group "missing" {
    restart {
      attempts = 0
      mode     = "fail"
    }
    task "t" {
      driver = "docker"
      config {
        image = "127.0.0.1:1/nctest/missing:1"
      }
    }
  }
}
JOB
"$NOMCLIENT" job run "$TMP/pull.nomad" >/dev/null 2>&1
P1=$(dk_json /v1/job/pull/allocations "[a['ID'] for a in j if a['TaskGroup']=='local'][0]")
P2=$(dk_json /v1/job/pull/allocations "[a['ID'] for a in j if a['TaskGroup']=='missing'][0]")
wait_for 30 sh -c "[ \"\$(curl -s $ADDR/v1/allocation/$P1 | grep -o '\"State\":\"dead\"')\" ] && [ \"\$(curl -s $ADDR/v1/allocation/$P2 | grep -o '\"State\":\"dead\"')\" ]"
ev=$(dk_events "$P1" t)
contains "$ev" "Failed to pull \`127.0.0.1:1/nctest/busybox:latest\`" && contains "$ev" "using the local image" &&
    pass "failed pull of a local image: warning event, local image used" ||
    fail "failed pull of a local image: warning event, local image used" "$ev"
check "the task ran from the local image" sh -c "\"$NOMCLIENT\" alloc logs $P1 t | grep -q 'ran from the local image'"
check "downloading event" contains "$ev" "Driver: Downloading image"
ev=$(dk_events "$P2" t)
contains "$ev" "Driver Failure: Failed to pull \`127.0.0.1:1/nctest/missing:1\`" &&
    pass "failed pull without a local image fails the task" ||
    fail "failed pull without a local image fails the task" "$ev"

# ---- an image loaded from the task dir (load), fetched as an artifact ----
www=$TMP/www
mkdir -p "$www" "$TMP/loadimg"
cp -a "$DOCKER_DIR/img/busybox/." "$TMP/loadimg/"
echo loaded >"$TMP/loadimg/marker"
tar -C "$TMP/loadimg" -c . | $DK import - nctest/loadme:1 >/dev/null
docker_image_tar nctest/loadme:1 "$www/loadme.img"
$DK rmi nctest/loadme:1 >/dev/null
cat >"$TMP/serve.py" <<'PY'
import http.server, socketserver, sys, os
os.chdir(sys.argv[1])
s = socketserver.TCPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
print(s.server_address[1], flush=True)
s.serve_forever()
PY
python3 -u "$TMP/serve.py" "$www" >"$TMP/www.port" 2>/dev/null &
cleanup_add "kill $! 2>/dev/null"
wait_for 5 test -s "$TMP/www.port"
cat >"$TMP/load.nomad" <<JOB
job "load" {
  type = "batch"
  group "g" {
    restart {
      attempts = 0
      mode     = "fail"
    }
    task "t" {
      driver = "docker"
      artifact {
        source      = "http://127.0.0.1:$(cat "$TMP/www.port")/loadme.img"
        destination = "local/"
      }
      config {
        image   = "nctest/loadme:1"
        load    = "loadme.img"
        command = "/bin/cat"
        args    = ["/marker"]
      }
    }
  }
}
JOB
"$NOMCLIENT" job run "$TMP/load.nomad" >/dev/null 2>&1
L=$(dk_alloc_id load)
wait_for 30 sh -c "[ \"\$(curl -s $ADDR/v1/allocation/$L | grep -o '\"State\":\"dead\"')\" ]"
check "an image loaded from the task dir runs (load)" sh -c "\"$NOMCLIENT\" alloc logs $L t | grep -q loaded"
check "  and is in the daemon" sh -c "$DK image inspect nctest/loadme:1 >/dev/null 2>&1"
check "  with no pull tried" sh -c "! printf '%s' \"\$1\" | grep -q 'Downloading image'" _ "$(dk_events "$L" t)"

# ---- nothing of ours left ----
for j in exits pull load; do "$NOMCLIENT" job stop "$j" >/dev/null 2>&1; done
wait_for 15 sh -c "[ -z \"\$($DK ps -aq --filter label=com.hashicorp.nomad.alloc_id)\" ]"
left=$(dk_ours)
check "no container of ours in docker ps -a" [ -z "$left" ]
out=$("$NOMCLIENT" leftovers 2>&1)
check "leftovers: nothing of docker's" sh -c "! printf '%s' \"\$1\" | grep -q Container" _ "$out"

# a container of an allocation this node does not have
$DK run -d --name "lost-0d0d0d0d-0000-4000-8000-000000000000" --network none \
    --label com.hashicorp.nomad.alloc_id=0d0d0d0d-0000-4000-8000-000000000000 \
    nctest/busybox:1 sleep 600 >/dev/null
out=$("$NOMCLIENT" leftovers 2>&1)
check "leftovers lists a container no allocation owns" contains "$out" "lost-0d0d0d0d-0000-4000-8000-000000000000"
"$NOMCLIENT" leftovers -clean >/dev/null 2>&1
check "leftovers -clean removes it" [ -z "$($DK ps -aq --filter name=lost-0d0d)" ]
stop_agent

# ---- images: removed image_delay after their last task (gc.image) ----
mkdir -p "$TMP/gcimg"
cp -a "$DOCKER_DIR/img/busybox/." "$TMP/gcimg/"
echo gc >"$TMP/gcimg/marker"
tar -C "$TMP/gcimg" -c . | $DK import - nctest/gcme:1 >/dev/null
dk_agent_config "$TMP/agent-gc.hcl" 'gc {
      image_delay = "1s"
    }'
need_agent "agent with gc.image starts" dk3 -config "$TMP/agent-gc.hcl"
cat >"$TMP/gc.nomad" <<'JOB'
job "gc" {
  type = "batch"
  group "g" {
    task "t" {
      driver = "docker"
      config {
        image   = "nctest/gcme:1"
        command = "/bin/cat"
        args    = ["/marker"]
      }
    }
  }
}
JOB
"$NOMCLIENT" job run "$TMP/gc.nomad" >/dev/null 2>&1
C=$(dk_alloc_id gc)
wait_for 30 sh -c "[ \"\$(curl -s $ADDR/v1/allocation/$C | grep -o '\"State\":\"dead\"')\" ]"
check "the image's task ran" sh -c "\"$NOMCLIENT\" alloc logs $C t | grep -q gc"
wait_for 10 sh -c "! $DK image inspect nctest/gcme:1 >/dev/null 2>&1"
check "its image removed after image_delay" sh -c "! $DK image inspect nctest/gcme:1 >/dev/null 2>&1"
check "an image no task of this agent used stays" sh -c "$DK image inspect nctest/busybox:1 >/dev/null 2>&1"
stop_agent
finish
