#!/bin/sh
# `alloc signal` and `alloc restart` with the real agent, against Nomad
# 1.6's behaviour: a raw_exec task that traps SIGUSR1 gets it; unknown
# tasks, bogus signals and wrong arguments fail with Nomad's words and exit
# 1; a user restart gives the task a new process, a "Restart Signaled" event
# and one restart counted; the routes answer the right status codes.
# Refusals are 4xx (Nomad answers 500): the caller's to fix.
. "$(dirname "$0")/lib.sh"

data=$TMP/data
# supervisors outlive the agent by design: kill this test's by their lock
cleanup_add "for f in $data/alloc/*/.nomclient/*.lock; do p=\$(cat \"\$f\" 2>/dev/null); [ -n \"\$p\" ] && kill -9 \$p 2>/dev/null; done; true"

alloc_field() { # PYTHON-EXPR over the allocation $id (as x)
    curl -s "$ADDR/v1/allocation/$id" |
        python3 -c "import json,sys; x=json.load(sys.stdin); print($1)" 2>/dev/null
}
# status METHOD PATH [BODY]: the HTTP status; the body goes to $TMP/body
status() {
    if [ $# -ge 3 ]; then
        curl -s -o "$TMP/body" -w '%{http_code}' -X "$1" -d "$3" "$ADDR$2"
    else
        curl -s -o "$TMP/body" -w '%{http_code}' -X "$1" "$ADDR$2"
    fi
}
# quiet_success: the last command ($rc, $out) exited 0 and printed nothing,
# as Nomad's signal and restart do
quiet_success() { [ "$rc" = 0 ] && [ -z "$out" ]; }
# expect NAME CODE METHOD PATH [BODY]
expect() {
    name=$1 want=$2
    shift 2
    got=$(status "$@")
    if [ "$got" = "$want" ]; then pass "$name"; else fail "$name" "status $got: $(cat "$TMP/body")"; fi
}

cat >"$TMP/sig.nomad" <<'JOB'
job "sig" {
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "trap 'echo got USR1' USR1; echo pid $$; while :; do sleep 0.1; done"]
      }
      kill_timeout = "1s"
      # no restarts allowed: a user's restart must not count against this
      restart {
        attempts = 0
        mode     = "fail"
      }
    }
  }
}
JOB

need_agent "agent starts" ops -dev -data-dir "$data"
"$NOMCLIENT" job run "$TMP/sig.nomad" >/dev/null
id=$(curl -s "$ADDR/v1/job/sig/allocations" |
    python3 -c 'import json,sys; a=json.load(sys.stdin); print(a[0]["ID"] if a else "")')
short=$(echo "$id" | cut -c1-8)
running() { [ "$(alloc_field 'x["TaskStates"]["t"]["State"]')" = running ]; }
check "task reaches running" wait_for 5 running
logs() { cat "$data/alloc/$id/alloc/logs/"t.stdout.* 2>/dev/null; }
started() { logs | grep -q '^pid '; }
check "task wrote its pid" wait_for 5 started
pid1=$(logs | sed -n 's/^pid //p' | head -n 1)

# ---- arguments, checked by the CLI before any request (as Nomad's) ----
out=$("$NOMCLIENT" alloc signal 2>&1); rc=$?
check "signal without an allocation: exit 1" [ "$rc" = 1 ]
check "signal without an allocation: Nomad's words" contains "$out" "This command takes up to two arguments: <alloc-id> <task>"
check "signal without an allocation: help hint" contains "$out" "For additional help try 'nomclient alloc signal -help'"
out=$("$NOMCLIENT" alloc signal a b c 2>&1); rc=$?
check "signal with three arguments: exit 1" [ "$rc" = 1 ]
out=$("$NOMCLIENT" alloc signal -nosuchflag "$id" 2>&1); rc=$?
check "signal with an unknown flag: exit 1" [ "$rc" = 1 ]
check "signal with an unknown flag: named" contains "$out" "flag provided but not defined: -nosuchflag"
out=$("$NOMCLIENT" alloc restart 2>&1); rc=$?
check "restart without an allocation: exit 1" [ "$rc" = 1 ]
check "restart without an allocation: Nomad's words" contains "$out" "This command takes one or two arguments: <alloc-id> <task-name>"
out=$("$NOMCLIENT" alloc restart -all-tasks "$id" t 2>&1); rc=$?
check "restart -all-tasks with a task: exit 1" [ "$rc" = 1 ]
check "restart -all-tasks with a task: Nomad's words" contains "$out" "The -all-tasks option is not allowed when restarting a specific task."
out=$("$NOMCLIENT" alloc signal x 2>&1); rc=$?
check "a one-character ID is refused" [ "$rc" = 1 ]
check "a one-character ID: Nomad's words" contains "$out" "Alloc ID must contain at least two characters."
out=$("$NOMCLIENT" alloc restart 0000dead 2>&1); rc=$?
check "an unknown allocation: exit 1" [ "$rc" = 1 ]
check "an unknown allocation: Nomad's words" contains "$out" 'No allocation(s) with prefix or id "0000dead" found'
out=$("$NOMCLIENT" alloc signal -s SIGUSR1 -task nosuch "$short" 2>&1); rc=$?
check "signal an unknown task: exit 1" [ "$rc" = 1 ]
check "signal an unknown task: the group's tasks listed" contains "$out" "Could not find task named: nosuch, found:
t"
out=$("$NOMCLIENT" alloc signal -s SIGUSR1 "$short" nosuch 2>&1); rc=$?
check "signal an unknown task given as argument: exit 1" [ "$rc" = 1 ]
out=$("$NOMCLIENT" alloc restart -task nosuch "$id" 2>&1); rc=$?
check "restart an unknown task: exit 1" [ "$rc" = 1 ]
check "restart an unknown task: the group's tasks listed" contains "$out" "Could not find task named: nosuch, found:"
out=$("$NOMCLIENT" alloc signal -h); rc=$?
check "signal -h: exit 0" [ "$rc" = 0 ]
check "signal -h: usage" contains "$out" "Usage: nomclient alloc signal [options] <allocation> <task>"
out=$("$NOMCLIENT" alloc restart -h); rc=$?
check "restart -h: exit 0" [ "$rc" = 0 ]
check "restart -h: usage" contains "$out" "Usage: nomclient alloc restart [options] <allocation> <task>"

# ---- routes: the request errors that are the API's own ----
sig=/v1/client/allocation/$id/signal
rst=/v1/client/allocation/$id/restart
expect "signal: GET is 405" 405 GET "$sig"
check "405 names the methods" grep -q 'POST, PUT' "$TMP/body"
expect "restart: DELETE is 405" 405 DELETE "$rst"
expect "signal: no body is 400" 400 POST "$sig"
expect "signal: bad JSON is 400" 400 POST "$sig" '{"Signal":'
expect "signal: a JSON array is 400" 400 PUT "$sig" '["SIGUSR1"]'
expect "signal: Signal not a string is 400" 400 PUT "$sig" '{"Signal": 10}'
check "400 is a JSON error" grep -q '"error":"Signal must be a string"' "$TMP/body"
expect "restart: bad JSON is 400" 400 PUT "$rst" '{"TaskName":'
expect "restart: AllTasks not a boolean is 400" 400 PUT "$rst" '{"AllTasks": "yes"}'
expect "signal: unknown allocation is 404" 404 POST /v1/client/allocation/0000dead/signal '{"Signal":"SIGUSR1"}'
check "404 names the allocation" grep -q '"error":"allocation not found: 0000dead"' "$TMP/body"
expect "restart: unknown allocation is 404" 404 PUT /v1/client/allocation/0000dead/restart
expect "unknown action is 404" 404 PUT /v1/client/allocation/$id/frobnicate '{}'

# ---- the work itself: alloc_manager_signal / _restart ----
out=$("$NOMCLIENT" alloc signal -s SIGUSR1 "$short" 2>&1); rc=$?
if quiet_success; then pass "signal SIGUSR1: exit 0, nothing printed"; else fail "signal SIGUSR1: exit 0, nothing printed" "$out"; fi
got_usr1() { logs | grep -q '^got USR1'; }
check "the task's trap ran" wait_for 5 got_usr1
check "a Signaling event" [ "$(alloc_field '[e["DisplayMessage"] for e in x["TaskStates"]["t"]["Events"] if e["Type"]=="Signaling"][-1:]')" = "['Task being sent signal SIGUSR1']" ]
out=$("$NOMCLIENT" alloc signal -s SIGUSR1 -task t "$id" 2>&1); rc=$?
check "signal -task t: exit 0" [ "$rc" = 0 ]
out=$("$NOMCLIENT" alloc signal -s SIGBOGUS "$id" 2>&1); rc=$?
check "a bogus signal: exit 1" [ "$rc" = 1 ]
check "a bogus signal: the agent's 400 and message" contains "$out" "Error signalling allocation: Unexpected response code: 400 (invalid signal \"SIGBOGUS\")"
not_stub() { ! contains "$out" "not implemented"; }
check "a bogus signal: the implementation's message" not_stub
expect "API signal: 200" 200 PUT "$sig" '{"Task": "t", "Signal": "SIGUSR1"}'
check "API signal: Nomad's GenericResponse" grep -q '"Index":0' "$TMP/body"
expect "API signal of an unknown task: 404 (Nomad's \"Task not found\")" 404 POST "$sig" '{"Task": "nosuch", "Signal": "SIGUSR1"}'
expect "API signal of a bogus signal: 400" 400 POST "$sig" '{"Signal": "SIGBOGUS"}'

out=$("$NOMCLIENT" alloc restart -task t "$short" 2>&1); rc=$?
if quiet_success; then pass "restart -task t: exit 0, nothing printed"; else fail "restart -task t: exit 0, nothing printed" "$out"; fi
new_pid() { p=$(logs | sed -n 's/^pid //p' | tail -n 1); [ -n "$p" ] && [ "$p" != "$pid1" ]; }
check "restarted: a new process" wait_for 10 new_pid
check "running again" wait_for 5 running
check "Restart Signaled: User requested task to restart" [ "$(alloc_field '[e["DisplayMessage"] for e in x["TaskStates"]["t"]["Events"] if e["Type"]=="Restart Signaled"][-1:]')" = "['User requested task to restart']" ]
check "Restarts is 1, as Nomad counts a user restart" [ "$(alloc_field 'x["TaskStates"]["t"]["Restarts"]')" = 1 ]
out=$("$NOMCLIENT" alloc status "$id")
check "alloc status shows it" contains "$out" "Restart Signaled"
check "the restart policy (attempts 0) was not applied" [ "$(alloc_field '[e["Type"] for e in x["TaskStates"]["t"]["Events"] if e["Type"]=="Not Restarting"]')" = "[]" ]
check "a Restarting event, as Nomad's \"Task restarting in 0s\"" [ "$(alloc_field '[e["DisplayMessage"] for e in x["TaskStates"]["t"]["Events"] if e["Type"]=="Restarting"][-1:]')" = "['Task restarting in 0s']" ]
expect "API restart with no body: 200" 200 POST "$rst"
expect "API restart of an unknown task: 404" 404 PUT "$rst" '{"TaskName": "nosuch"}'
expect "API restart of a task and all tasks: 400" 400 PUT "$rst" '{"TaskName": "t", "AllTasks": true}'

"$NOMCLIENT" job stop sig >/dev/null 2>&1
dead() { [ "$(alloc_field 'x["TaskStates"]["t"]["State"]')" = dead ]; }
check "the stopped task is dead" wait_for 10 dead
expect "API signal of a task that is not running: 409" 409 PUT "$sig" '{"Task": "t", "Signal": "SIGUSR1"}'
check "... with Nomad's words" grep -q 'Task not running' "$TMP/body"
expect "API restart of a stopped allocation: 409" 409 PUT "$rst"
stop_agent
finish
