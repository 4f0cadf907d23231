#!/bin/sh
# Script and gRPC checks through the real agent. A script check of an exec
# task runs inside the task (its chroot, cgroup and environment): passing
# on exit 0, warning on exit 1, critical on exit 2 and when it outlives its
# timeout, following a file in the task's local dir. A gRPC check of a
# grpc.health.v1 server on a raw_exec task's port goes from SERVING (passing) to
# NOT_SERVING (critical), and names an unknown service critical. Loopback
# only.
. "$(dirname "$0")/lib.sh"

data=$TMP/data
cleanup_add "pkill -9 -f 'supervise $data/' ; true"
alloc_field() { # JOB PYTHON-EXPR over the first allocation
    curl -s "$ADDR/v1/job/$1/allocations" |
        python3 -c "import json,sys; a=json.load(sys.stdin); x=a[0] if a else {}; print($2)" 2>/dev/null
}
# check_field NAME KEY: a field of the check called NAME in /v1/agent/checks
check_field() {
    curl -s "$ADDR/v1/agent/checks" | python3 -c "
import json,sys
for c in json.load(sys.stdin).values():
    if c.get('Name') == '$1': print(c.get('$2')); break" 2>/dev/null
}
status_is() { [ "$(check_field "$1" Status)" = "$2" ]; }

# the health server (a small h2c one, stdlib only) listens on the group's
# static port, beside the agent
touch "$TMP/serving"
/usr/bin/python3 "$(dirname "$0")/grpc_health.py" 29517 "$TMP/serving" web &
cleanup_add "kill $! 2>/dev/null"
# and a TLS one (a self-signed certificate made here) on the next port
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
    -keyout "$TMP/grpc.key" -out "$TMP/grpc.crt" >/dev/null 2>&1
/usr/bin/python3 "$(dirname "$0")/grpc_health.py" 29518 "$TMP/serving" web "$TMP/grpc.crt:$TMP/grpc.key" &
cleanup_add "kill $! 2>/dev/null"
cat >"$TMP/sg.nomad" <<JOB
job "sg" {
  group "g" {
    network {
      port "grpc" {
        static = 29517
      }
      port "grpcs" {
        static = 29518
      }
    }
    task "box" {
      driver = "exec"
      config {
        command = "/bin/sleep"
        args    = ["600"]
      }
      service {
        name = "box"
        check {
          name     = "script"
          type     = "script"
          command  = "/bin/sh"
          args     = ["-c", "if [ -e local/ok ]; then echo \"fine \$NOMAD_TASK_NAME \$(pwd) \$(grep -c nomclient /proc/self/cgroup) caps \$(grep CapEff /proc/self/status | cut -f2) pids \$(ls -d /proc/[0-9]* | wc -l)\"; exit 0; elif [ -e local/warn ]; then echo meh; exit 1; elif [ -e local/hang ]; then sleep 30; else echo missing; exit 2; fi"]
          interval = "1s"
          timeout  = "1s"
        }
      }
      kill_timeout = "1s"
    }
    task "rpc" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["600"]
      }
      service {
        name = "rpc"
        port = "grpc"
        check {
          name         = "health"
          type         = "grpc"
          grpc_service = "web"
          interval     = "1s"
          timeout      = "1s"
        }
        check {
          name         = "other"
          type         = "grpc"
          grpc_service = "nope"
          interval     = "1s"
          timeout      = "1s"
        }
      }
      service {
        name = "rpcs"
        port = "grpcs"
        check {
          name            = "tls"
          type            = "grpc"
          grpc_service    = "web"
          grpc_use_tls    = true
          tls_skip_verify = true
          interval        = "1s"
          timeout         = "1s"
        }
        check {
          name         = "tlsverify"
          type         = "grpc"
          grpc_service = "web"
          grpc_use_tls = true
          interval     = "1s"
          timeout      = "1s"
        }
      }
      kill_timeout = "1s"
    }
  }
}
JOB

need_agent "agent starts" sg -dev -data-dir "$data"
out=$("$NOMCLIENT" job run "$TMP/sg.nomad" 2>&1)
if contains "$out" "arning"; then
    fail "job run with script and grpc checks warns about nothing" "$out"
else
    pass "job run with script and grpc checks warns about nothing"
fi
running() { [ "$(alloc_field sg 'x.get("ClientStatus")')" = running ]; }
check "allocation runs" wait_for 15 running
id=$(alloc_field sg 'x["ID"]')
local_dir=$data/alloc/$id/box/local

said_missing() { contains "$(check_field script Output)" "missing"; }
check "script check output is the command's" wait_for 10 said_missing
check "script check: critical while the file is missing (exit 2)" \
    status_is script critical
touch "$local_dir/warn"
check "script check: warning on exit 1" wait_for 10 status_is script warning
touch "$local_dir/ok"
check "script check: passing once local/ok appears" wait_for 10 status_is script passing
out=$(check_field script Output)
if contains "$out" "fine box / " && ! contains "$out" " / 0"; then
    pass "script ran in the task: its env, chroot cwd and cgroup"
else
    fail "script ran in the task: its env, chroot cwd and cgroup" "$out"
fi
# the task's credentials, not its init's or the agent's: Nomad's default
# capability set, and the task's private PID namespace (init, task, the
# script and its pipeline)
if contains "$out" "caps 00000000a80405fb " && [ "$(echo "$out" | sed -n 's/.* pids \([0-9]*\).*/\1/p')" -le 6 ]; then
    pass "script ran with the task's capabilities in its PID namespace"
else
    fail "script ran with the task's capabilities in its PID namespace" "$out"
fi
rm -f "$local_dir/ok" "$local_dir/warn"
touch "$local_dir/hang"
check "script check: critical when it outlives its timeout" \
    wait_for 10 status_is script critical
timed_out() { contains "$(check_field script Output)" "context deadline exceeded"; }
check "a timed-out script says so (Nomad's words)" wait_for 5 timed_out
rm -f "$local_dir/hang"
sleep 3 # the probe of the last second ends at its timeout
left=$(pgrep -x -f "sleep 30" | wc -l)
if [ "$left" -eq 0 ]; then
    pass "timed-out scripts are killed"
else
    fail "timed-out scripts are killed" "$(pgrep -a -x -f 'sleep 30')"
fi

check "grpc check: passing while SERVING" wait_for 15 status_is health passing
out=$(check_field health Output)
if contains "$out" "gRPC check 127.0.0.1:" && contains "$out" "/web: success"; then
    pass "grpc output as Consul's"
else
    fail "grpc output as Consul's" "$out"
fi
check "grpc over TLS (grpc_use_tls, tls_skip_verify): passing while SERVING" wait_for 15 status_is tls passing
check "grpc over TLS verifying a self-signed certificate: critical" wait_for 10 status_is tlsverify critical
check "grpc check of an unknown service: critical" wait_for 10 status_is other critical
out=$(check_field other Output)
if contains "$out" "code = NotFound desc = unknown service"; then
    pass "grpc-status and grpc-message reach the output"
else
    fail "grpc-status and grpc-message reach the output" "$out"
fi
rm -f "$TMP/serving"
check "grpc check: critical once NOT_SERVING" wait_for 10 status_is health critical
check "grpc over TLS: critical once NOT_SERVING" wait_for 10 status_is tls critical
out=$(check_field health Output)
if contains "$out" "serving status: NOT_SERVING"; then
    pass "NOT_SERVING named in the output"
else
    fail "NOT_SERVING named in the output" "$out"
fi
if grep -q "not run" "$TMP/sg.log"; then
    fail "no check is skipped" "$(grep 'not run' "$TMP/sg.log")"
else
    pass "no check is skipped"
fi

"$NOMCLIENT" job stop sg >/dev/null 2>&1
gone() { ! pgrep -f "supervise $data/" >/dev/null; }
check "tasks stop" wait_for 15 gone
stop_agent
finish
