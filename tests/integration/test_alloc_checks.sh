#!/bin/sh
# Service checks of allocations through the real agent: an HTTP check on a
# task's dynamic port turns passing, shows in `nomclient checks` and in
# /v1/client/allocation/:id/checks, and check_restart restarts the task
# (through its restart policy) once the check has been unhealthy `limit`
# times after its grace period.
. "$(dirname "$0")/lib.sh"

data=$TMP/data
cleanup_add "pkill -9 -f 'supervise $data/' ; true"
alloc_field() { # JOB PYTHON-EXPR over the first allocation
    curl -s "$ADDR/v1/job/$1/allocations" |
        python3 -c "import json,sys; a=json.load(sys.stdin); x=a[0] if a else {}; print($2)" 2>/dev/null
}

# a server answering 200 while $TMP/healthy exists, 500 otherwise
cat >"$TMP/srv.py" <<'PY'
import http.server, os, sys
flag = sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = os.path.exists(flag)
        self.send_response(200 if ok else 500)
        self.end_headers()
        self.wfile.write(b"ok\n" if ok else b"sick\n")
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
touch "$TMP/healthy"
cat >"$TMP/web.nomad" <<JOB
job "web" {
  group "g" {
    network {
      port "http" {}
    }
    restart {
      attempts = 3
      interval = "5m"
      delay    = "1s"
      mode     = "fail"
    }
    task "srv" {
      driver = "raw_exec"
      config {
        command = "/usr/bin/python3"
        args    = ["$TMP/srv.py", "\${NOMAD_PORT_http}", "$TMP/healthy"]
      }
      service {
        name = "web"
        port = "http"
        check {
          name     = "alive"
          type     = "http"
          path     = "/health"
          interval = "1s"
          timeout  = "1s"
          check_restart {
            limit = 2
            grace = "1s"
          }
        }
      }
      kill_timeout = "1s"
    }
  }
}
JOB

need_agent "agent starts" a1 -dev -data-dir "$data"
"$NOMCLIENT" job run "$TMP/web.nomad" >/dev/null
running() { [ "$(alloc_field web 'x.get("ClientStatus")')" = running ]; }
check "allocation runs" wait_for 10 running
id=$(alloc_field web 'x["ID"]')
passing() { curl -s "$ADDR/v1/client/allocation/$id/checks" | grep -q '"Status":"success"'; }
check "the HTTP check passes (Nomad's check status: success)" wait_for 10 passing
out=$("$NOMCLIENT" checks)
if contains "$out" "web" && contains "$out" "alive" && contains "$out" "passing" &&
    contains "$out" "/health"; then
    pass "nomclient checks shows the check, its target and status"
else
    fail "nomclient checks shows the check, its target and status" "$out"
fi
out=$("$NOMCLIENT" checks -verbose "$(echo "$id" | cut -c1-8)")
check "nomclient checks -verbose shows counters and history" sh -c "printf '%s' \"\$0\" | grep -q 'probes' && printf '%s' \"\$0\" | grep -q 'passing'" "$out"
out=$(curl -s "$ADDR/v1/agent/checks")
check "/v1/agent/checks has the check with its allocation" contains "$out" "\"AllocID\":\"$id\""

rm -f "$TMP/healthy"
critical() { curl -s "$ADDR/v1/client/allocation/$id/checks" | grep -q '"Status":"failure"'; }
check "the check turns critical when the server answers 500" wait_for 10 critical
restarted() { [ "$(alloc_field web 'x["TaskStates"]["srv"]["Restarts"]')" -ge 1 ] 2>/dev/null; }
check "check_restart restarts the task" wait_for 15 restarted
ev=$(curl -s "$ADDR/v1/allocation/$id" | python3 -c 'import json,sys; print("\n".join(e["Type"]+": "+e["DisplayMessage"] for e in json.load(sys.stdin)["TaskStates"]["srv"]["Events"]))')
check "with a Restart Signaled event naming the check" contains "$ev" 'Restart Signaled: healthcheck: check "alive" unhealthy'
touch "$TMP/healthy"
check "the restarted task passes again" wait_for 15 passing
"$NOMCLIENT" job stop web >/dev/null
nochecks() { [ "$(curl -s "$ADDR/v1/agent/checks")" = "{}" ]; }
check "the check is removed when the job stops" wait_for 10 nochecks
stop_agent
finish
