#!/bin/sh
# Consul registration through the real agent against
# tests/integration/consul_fake.py (Consul's agent API, with ACLs on): every
# service of a bridge-mode job, group and task, registered with the address
# and port its address_mode gives; check status reaching the TTL checks
# (passing, then critical when the task turns unhealthy); keep-alives
# holding the TTL while the agent runs, not one update per probe; the TTL
# expiring once the agent is killed -9; a stale "_nomad-task-" service and
# the killed agent's leftovers reconciled by the restarted agent; Consul
# down for a while (connection attempts bounded by the backoff) and back
# with nothing lost; deregistration before the tasks are killed; the token
# from the consul block and from CONSUL_HTTP_TOKEN, refused without or with
# a wrong one; a registration Consul rejects (400) reported with Consul's
# text; a unix socket and mutual TLS. Root only: skipped otherwise.
. "$(dirname "$0")/lib.sh"

# a bridge and subnet of this test's own, so no other agent's is touched
bridge_test nctest5 10.255.55.0/24
TOKEN=5ecr3t-t0ken
FAKE="$(dirname "$0")/consul_fake.py"
data=$TMP/data

# expect NAME DETAIL-COMMAND COMMAND...: pass when COMMAND succeeds, else
# fail with what DETAIL-COMMAND prints
expect() {
    name=$1 detail=$2
    shift 2
    if "$@"; then pass "$name"; else fail "$name" "$(eval "$detail")"; fi
}
py() { # PYTHON-CODE over the JSON on stdin as x (prints what it prints)
    python3 -c "import json,sys
x=json.load(sys.stdin)
$1" 2>/dev/null
}

# ---- the fake Consul ---------------------------------------------------------

# start_fake NAME [flags]: sets FAKE_PID, FAKE_URL (http://127.0.0.1:port)
start_fake() {
    name=$1
    shift
    rm -f "$TMP/$name.port"
    python3 "$FAKE" --ready-file "$TMP/$name.port" --log "$TMP/$name.log" \
        "$@" >"$TMP/$name.out" 2>&1 &
    FAKE_PID=$!
    cleanup_add "kill $FAKE_PID 2>/dev/null"
    wait_for 10 test -s "$TMP/$name.port" || return 1
    FAKE_URL=http://127.0.0.1:$(cat "$TMP/$name.port")
}
start_fake consul --port 0 --token "$TOKEN" ||
    { fail "the fake Consul starts" "$(cat "$TMP/consul.out")"; finish; exit 1; }
CONSUL=$FAKE_URL
LOG=$TMP/consul.log
CONSUL_PID=$FAKE_PID
creq() { # METHOD PATH [BODY]: the fake, as an operator with the token
    curl -s -X "$1" -H "X-Consul-Token: $TOKEN" ${3:+-d "$3"} "$CONSUL$2"
}
services() { creq GET /v1/agent/services; }
checks() { creq GET /v1/agent/checks; }
svc_field() { services | py "m=[s for s in x.values() if s['Service']=='$1']
print(m[0]$2 if len(m)==1 else '')"; }
# check_of NAME FIELD: a field of the (only) check of service NAME
check_of() {
    id=$(svc_field "$1" "['ID']")
    checks | py "m=[c for c in x.values() if c['ServiceID']=='$id']
print(m[0]['$2'] if len(m)==1 else 'checks: %d' % len(m))"
}
# lines of the fake's request log since line $1 matching python condition
log_count() { # FROM-LINE PYTHON-CONDITION over d
    tail -n +"$(($1 + 1))" "$LOG" | python3 -c "import json,sys
print(sum(1 for l in sys.stdin for d in [json.loads(l)] if $2))"
}
log_lines() { wc -l <"$LOG"; }

# ---- the agent ---------------------------------------------------------------

write_config() { # FILE CONSUL-BLOCK-BODY
    bridge_agent_config "$1"
    printf 'consul {\n%s\n}\n' "$2" >>"$1"
}
write_config "$TMP/agent.hcl" "  address = \"${CONSUL#http://}\"
  token   = \"$TOKEN\""

mkdir -p "$TMP/www"
echo ok >"$TMP/www/health"
# the task writes the time it got its kill signal, to order it against
# the deregistration Consul saw
cat >"$TMP/web.nomad" <<JOB
job "web" {
  group "web" {
    network {
      mode = "bridge"
      port "http" {
        to = 8080
      }
    }
    service {
      name = "web-host"
      port = "http"
      tags = ["g1", "g2"]
      check {
        type     = "http"
        path     = "/health"
        interval = "1s"
        timeout  = "1s"
      }
    }
    service {
      name         = "web-alloc"
      port         = "http"
      address_mode = "alloc"
      meta {
        version = "3"
      }
      check {
        type     = "tcp"
        interval = "1s"
        timeout  = "1s"
      }
    }
    task "srv" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "trap 'date +%s.%N >$TMP/web.exit; kill \$P; exit 0' TERM; python3 -m http.server 8080 --directory $TMP/www & P=\$!; wait \$P"]
      }
      kill_timeout = "2s"
      service {
        name = "web-task"
        port = "http"
        check {
          type     = "http"
          path     = "/health"
          interval = "1s"
          timeout  = "1s"
        }
      }
    }
  }
}
JOB
# host network, no checks: registration alone
write_small_job() { # FILE JOB-NAME SERVICE-NAME [META-BLOCK]
    cat >"$1" <<JOB
job "$2" {
  group "g" {
    network {
      port "p" {}
    }
    service {
      name = "$3"
      port = "p"
      $4
    }
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["600"]
      }
      kill_timeout = "1s"
    }
  }
}
JOB
}

need_agent "agent starts" a1 -dev -data-dir "$data" -config "$TMP/agent.hcl"
out=$("$NOMCLIENT" job run "$TMP/web.nomad" 2>&1)
check "bridge job with three services accepted" contains "$out" 'Job "web" registered'
alloc_json() { # PYTHON-EXPR over web's allocation as a
    curl -s "$ADDR/v1/job/web/allocations" | py "a=x[0] if x else {}
print($1)"
}
running() { [ "$(alloc_json 'a.get("ClientStatus")')" = running ]; }
wait_for 20 running || fail "web runs" "$(curl -s "$ADDR/v1/job/web/allocations")"
alloc=$(alloc_json 'a["ID"]')
alloc_ip=$(alloc_json 'a["NetworkStatus"]["Address"]')
host_port=$(alloc_json '[p["Value"] for p in a["AllocatedResources"]["Shared"]["Ports"] if p["Label"]=="http"][0]')
node_ip=$(curl -s "$ADDR/v1/nodes" | py 'print(x[0]["Address"])')
echo "# allocation $alloc: $alloc_ip, host port $host_port, node $node_ip"

three() { [ "$(services | py 'print(len([k for k in x if k.startswith("_nomad-task-'"$alloc"'")]))')" = 3 ]; }
expect "all three services registered (two group, one task)" "services" wait_for 15 three
check "group service ID: _nomad-task-<alloc>-group-web-web-host-http" \
    [ "$(svc_field web-host "['ID']")" = "_nomad-task-$alloc-group-web-web-host-http" ]
check "task service ID: _nomad-task-<alloc>-srv-web-task-http" \
    [ "$(svc_field web-task "['ID']")" = "_nomad-task-$alloc-srv-web-task-http" ]
got=$(svc_field web-host "['Address'], m[0]['Port']")
check "address_mode host: node address and mapped host port ($got)" \
    [ "$got" = "$node_ip $host_port" ]
got=$(svc_field web-task "['Address'], m[0]['Port']")
check "task service (host): node address and mapped host port ($got)" \
    [ "$got" = "$node_ip $host_port" ]
got=$(svc_field web-alloc "['Address'], m[0]['Port']")
case "$got" in
"$alloc_ip 8080") case "$alloc_ip" in "$PREFIX"*) pass "address_mode alloc: the allocation's address and the port inside ($got)" ;;
    *) fail "address_mode alloc: the allocation's address" "$got" ;; esac ;;
*) fail "address_mode alloc: the allocation's address and the port inside" "$got, want $alloc_ip 8080" ;;
esac
check "tags registered" [ "$(svc_field web-host "['Tags']")" = "['g1', 'g2']" ]
check "meta with external-source=nomad" \
    [ "$(svc_field web-alloc "['Meta']")" = "{'version': '3', 'external-source': 'nomad'}" ]
check "each service has one TTL check, TTL interval + 10s" \
    [ "$(check_of web-host Type) $(checks | py 'print(sorted(set(c["Definition"].get("TTL") for c in x.values())))')" = "ttl [11000000000]" ]
all_status() { # STATUS: every check of web's three services has it
    for s in web-host web-alloc web-task; do
        [ "$(check_of $s Status)" = "$1" ] || return 1
    done
}
all_passing() { all_status passing; }
expect "every check turns passing in Consul" "checks" wait_for 15 all_passing
got=$(check_of web-host Output | head -n 1)
check "the check's output reaches Consul ($got)" contains "$got" "200 OK"
toks=$(log_count 0 "d['token'] != '$TOKEN'")
check "every request carried the consul block's token" [ "$toks" = 0 ]

# ---- keep-alives, not one update per probe --------------------------------------
from=$(log_lines)
t0=$(date +%s.%N)
sleep 13 # longer than the 11 s TTL; probes every second
ups=$(log_count "$from" "d['path'].startswith('/v1/agent/check/update/')")
expired=$(creq GET "/fake/events?since=$t0" | py 'print(sum(1 for e in x if e["To"] == "critical"))')
check "no TTL expired while the agent runs (13 s, TTL 11 s)" [ "$expired" = 0 ]
if [ "$ups" -ge 3 ] && [ "$ups" -le 12 ]; then
    pass "keep-alives well inside the TTL, not per probe ($ups updates for 3 checks in 13 s, 39 probes)"
else
    fail "keep-alives well inside the TTL, not per probe" "$ups updates in 13 s"
fi
writes=$(log_count "$from" "d['method'] == 'PUT' and not d['path'].startswith('/v1/agent/check/update/')")
check "and no registration sent while nothing changed ($writes)" [ "$writes" = 0 ]

# ---- a task made unhealthy -------------------------------------------------------
rm -f "$TMP/www/health"
critical() { [ "$(check_of web-host Status)" = critical ] && [ "$(check_of web-task Status)" = critical ]; }
expect "an unhealthy task's checks turn critical in Consul" "checks" wait_for 10 critical
got=$(check_of web-host Output | head -n 1)
check "with the probe's output ($got)" contains "$got" "404"
check "the tcp check of the same allocation stays passing" [ "$(check_of web-alloc Status)" = passing ]
echo ok >"$TMP/www/health"
wait_for 10 all_passing || fail "passing again once healthy" "$(checks)"

# ---- kill -9: the TTL expires; a restart reconciles --------------------------------
ghost="_nomad-task-0badc0de-0000-4000-8000-000000000000-gone-ghost-http"
creq PUT /v1/agent/service/register "{\"ID\": \"$ghost\", \"Name\": \"ghost\", \"Port\": 1, \"Checks\": [{\"CheckID\": \"_nomad-check-ghost\", \"Name\": \"g\", \"TTL\": \"600s\", \"Status\": \"passing\"}]}" >/dev/null
creq PUT /v1/agent/service/register '{"ID": "redis", "Name": "redis", "Port": 6379}' >/dev/null
kill -9 "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
t_kill=$(date +%s.%N)
expect "the agent killed -9: its TTL checks expire (critical)" "checks" wait_for 16 all_status critical
got=$(check_of web-host Output | head -n 1)
check "with Consul's \"TTL expired\" output" contains "$got" "TTL expired"
t_exp=$(creq GET "/fake/events?since=$t_kill" | py 'print("%.1f" % (min(e["t"] for e in x if e["To"] == "critical") - '"$t_kill"'))')
echo "# first expiry $t_exp s after the kill (TTL 11 s, last keep-alive up to ~4.5 s before)"
check "the ghost service is still there before the restart" [ -n "$(svc_field ghost "['ID']")" ]

from=$(log_lines)
need_agent "agent restarts" a2 -dev -data-dir "$data" -config "$TMP/agent.hcl"
ghost_gone() { [ -z "$(svc_field ghost "['ID']")" ]; }
expect "after the restart: a stale _nomad-task- service nothing wants is deregistered" "services" wait_for 15 ghost_gone
check "a service without Nomad's prefix is left alone" [ -n "$(svc_field redis "['ID']")" ]
expect "the re-attached allocation's checks are passing again" "checks" wait_for 15 all_passing
regs=$(log_count "$from" "d['path'].startswith('/v1/agent/service/register')")
check "services Consul still had in sync were not registered again ($regs)" [ "$regs" = 0 ]
check "the ghost's check went with it" [ -z "$(checks | py 'print(x.get("_nomad-check-ghost", ""))')" ]
check "the restarted agent logged the stale deregistration" \
    grep -q "deregistered stale service ghost" "$TMP/a2.log"

# ---- Consul down for a while, and back ------------------------------------------
write_small_job "$TMP/extra.nomad" extra extra-svc
curl -s -X PUT "$CONSUL/fake/down?seconds=9&mode=reset" >/dev/null
sleep 0.3
t_down=$(date +%s)
from=$(log_lines)
rm -f "$TMP/www/health"   # a status change while Consul is away
"$NOMCLIENT" job run "$TMP/extra.nomad" >/dev/null 2>&1
sleep 9.2 # no probing from here: each attempt would count
attempts=$(log_count "$from" "d['method'] == 'DOWN'")
up() { [ -n "$(services)" ]; }
wait_for 10 up
echo "# $attempts connection attempts while Consul was down for ~9 s"
if [ "$attempts" -ge 1 ] && [ "$attempts" -le 20 ]; then
    pass "while Consul is down the agent backs off ($attempts connections in 9 s)"
else
    fail "while Consul is down the agent backs off" "$attempts connection attempts"
fi
converged() {
    [ -n "$(svc_field extra-svc "['ID']")" ] && [ "$(check_of web-host Status)" = critical ] &&
        [ "$(check_of web-alloc Status)" = passing ]
}
if wait_for 30 converged; then
    pass "Consul back: converged, nothing lost (new service registered, status change pushed) in $(($(date +%s) - t_down)) s"
else
    fail "Consul back: converged, nothing lost" "$(services) $(checks)"
fi
grep -q "in sync again" "$TMP/a2.log" &&
    [ "$(grep -c "consul: Consul at" "$TMP/a2.log")" -le 3 ]
check "Consul's absence and return each logged once" [ $? = 0 ]
echo ok >"$TMP/www/health"
wait_for 10 all_passing

# ---- a registration Consul rejects -----------------------------------------------
write_small_job "$TMP/bad.nomad" bad bad-svc 'meta {
        consul-version = "1"
      }'
from=$(log_lines)
out=$("$NOMCLIENT" job run "$TMP/bad.nomad" 2>&1)
check "a job whose service meta Consul refuses is accepted by the agent" contains "$out" 'registered'
rejected() { [ "$(log_count "$from" "d['status'] == 400 and 'bad-svc' in d['body']")" -ge 1 ]; }
wait_for 10 rejected
msg="Invalid Service Meta: Couldn't load metadata pair ('consul-version', '1'): Key prefix 'consul-' is reserved for internal use"
check "Consul answers 400 with its own words" rejected
check "the agent logs the rejection with Consul's text" grep -q "Consul rejected service bad-svc.*$msg" "$TMP/a2.log"
reg=$(curl -s -o "$TMP/reg.json" -w '%{http_code}' "$ADDR/v1/agent/registrations")
if [ "$reg" = 200 ]; then
    got=$(py 'print(json.dumps(x))' <"$TMP/reg.json")
    if contains "$got" "rejected" && contains "$got" "consul-version"; then
        pass "/v1/agent/registrations shows it rejected with the 400 text"
    else
        fail "/v1/agent/registrations shows it rejected with the 400 text" "$got"
    fi
else
    echo "# skipped: /v1/agent/registrations answers $reg (another change brings it); the rejection is checked through the log above"
fi
sleep 4
tries=$(log_count "$from" "d['path'].startswith('/v1/agent/service/register') and 'bad-svc' in d['body']")
check "the rejected registration is retried with backoff, not in a loop ($tries in ~5 s)" [ "$tries" -le 5 ]
"$NOMCLIENT" job stop bad >/dev/null 2>&1

# ---- stop: deregistered before the task is killed ---------------------------------
from=$(log_lines)
rm -f "$TMP/web.exit"
"$NOMCLIENT" job stop web >/dev/null
wait_for 20 test -s "$TMP/web.exit"
gone() { [ -z "$(services | py 'print([k for k in x if "'"$alloc"'" in k] or "")')" ]; }
check "on stop every service of the allocation leaves Consul" wait_for 10 gone
t_exit=$(cat "$TMP/web.exit" 2>/dev/null)
t_dereg=$(tail -n +"$((from + 1))" "$LOG" | python3 -c "import json,sys
t=[d['t'] for l in sys.stdin for d in [json.loads(l)] if '/deregister/' in d['path'] and '$alloc' in d['path']]
print('%d %.3f' % (len(t), max(t)) if t else '0 0')")
n_dereg=${t_dereg% *}
t_last=${t_dereg#* }
if [ "$n_dereg" = 3 ] && [ -n "$t_exit" ] &&
    python3 -c "import sys; sys.exit(0 if $t_last < $t_exit else 1)"; then
    pass "all three deregistered before the task got its kill signal ($(python3 -c "print('%.0f ms' % (($t_exit - $t_last) * 1000))") before)"
else
    fail "all three deregistered before the task got its kill signal" "deregistrations: $t_dereg, task signalled at ${t_exit:-never}"
fi
stop_agent

# ---- the token from CONSUL_HTTP_TOKEN; none; a wrong one --------------------------
write_config "$TMP/env.hcl" "  address = \"${CONSUL#http://}\""
from=$(log_lines)
CONSUL_HTTP_TOKEN=$TOKEN start_agent a3 -dev -data-dir "$TMP/data3" -config "$TMP/env.hcl" ||
    { fail "agent with CONSUL_HTTP_TOKEN starts" "$(cat "$TMP/a3.log")"; finish; exit 1; }
"$NOMCLIENT" job run "$TMP/extra.nomad" >/dev/null 2>&1
extra_in() { [ -n "$(svc_field extra-svc "['ID']")" ] && [ "$(log_count "$from" "d['path'].startswith('/v1/agent/service/register')")" -ge 1 ]; }
check "with CONSUL_HTTP_TOKEN: registered" wait_for 15 extra_in
check "with CONSUL_HTTP_TOKEN: every request carried it" [ "$(log_count "$from" "d['token'] != '$TOKEN'")" = 0 ]
stop_agent
for case in none wrong; do
    from=$(log_lines)
    tok=
    [ $case = wrong ] && tok="  token = \"not-the-token\""
    write_config "$TMP/$case.hcl" "  address = \"${CONSUL#http://}\"
$tok"
    env -u CONSUL_HTTP_TOKEN "$NOMCLIENT" agent -http-port 0 -dev -data-dir "$TMP/data-$case" \
        -config "$TMP/$case.hcl" >"$TMP/$case.log" 2>&1 &
    AGENT_PID=$!
    cleanup_add "kill -9 $AGENT_PID 2>/dev/null"
    ADDR=""
    wait_for 10 grep -q "API on" "$TMP/$case.log"
    ADDR=$(sed -n 's|.*API on \(http://[0-9.:]*\).*|\1|p' "$TMP/$case.log" | head -n 1)
    export NOMCLIENT_ADDR="$ADDR"
    "$NOMCLIENT" job run "$TMP/extra.nomad" >/dev/null 2>&1
    [ $case = none ] && want="Permission denied: token with AccessorID" || want="ACL not found"
    denied() { grep -q "$want" "$TMP/$case.log"; }
    check "token $case: Consul's 403 \"$want\" logged" wait_for 15 denied
    check "token $case: nothing written ($(log_count "$from" "d['method'] == 'PUT' and d['status'] == 200"))" \
        [ "$(log_count "$from" "d['method'] == 'PUT' and d['status'] == 200")" = 0 ]
    stop_agent
done

# ---- a unix socket, and mutual TLS ------------------------------------------------
start_fake unix --unix "$TMP/consul.sock" ||
    { fail "the fake Consul listens on a unix socket" "$(cat "$TMP/unix.out")"; }
UNIX_PID=$FAKE_PID
write_config "$TMP/unix.hcl" "  address = \"unix://$TMP/consul.sock\""
start_agent a4 -dev -data-dir "$TMP/data4" -config "$TMP/unix.hcl" ||
    { fail "agent with a unix socket address starts" "$(cat "$TMP/a4.log")"; }
"$NOMCLIENT" job run "$TMP/extra.nomad" >/dev/null 2>&1
unix_in() { curl -s --unix-socket "$TMP/consul.sock" http://localhost/v1/agent/services | grep -q extra-svc; }
check "unix:// address: registered through the socket" wait_for 15 unix_in
stop_agent
kill "$UNIX_PID" 2>/dev/null

if command -v openssl >/dev/null 2>&1; then
    (cd "$TMP" &&
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
            -subj "/CN=test CA" >/dev/null 2>&1 &&
        openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
            -subj "/CN=127.0.0.1" >/dev/null 2>&1 &&
        printf 'subjectAltName=IP:127.0.0.1\n' >san.ext &&
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
            -out server.pem -days 2 -extfile san.ext >/dev/null 2>&1 &&
        openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr \
            -subj "/CN=nomclient" >/dev/null 2>&1 &&
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
            -out client.pem -days 2 >/dev/null 2>&1)
    start_fake tls --port 0 --tls-cert "$TMP/server.pem" --tls-key "$TMP/server.key" \
        --tls-client-ca "$TMP/ca.pem" ||
        fail "the fake Consul listens with TLS" "$(cat "$TMP/tls.out")"
    TLS_URL=https://${FAKE_URL#http://}
    write_config "$TMP/tls.hcl" "  address   = \"$TLS_URL\"
  ca_file   = \"$TMP/ca.pem\"
  cert_file = \"$TMP/client.pem\"
  key_file  = \"$TMP/client.key\""
    start_agent a5 -dev -data-dir "$TMP/data5" -config "$TMP/tls.hcl" ||
        fail "agent with https:// and TLS files starts" "$(cat "$TMP/a5.log")"
    "$NOMCLIENT" job run "$TMP/extra.nomad" >/dev/null 2>&1
    tls_in() {
        curl -s --cacert "$TMP/ca.pem" --cert "$TMP/client.pem" --key "$TMP/client.key" \
            "$TLS_URL/v1/agent/services" | grep -q extra-svc
    }
    check "https:// with ca_file, cert_file, key_file: registered over mutual TLS" wait_for 15 tls_in
    stop_agent
    write_config "$TMP/tls-noca.hcl" "  address   = \"$TLS_URL\""
    start_agent a6 -dev -data-dir "$TMP/data6" -config "$TMP/tls-noca.hcl"
    "$NOMCLIENT" job run "$TMP/extra.nomad" >/dev/null 2>&1
    unverified() { grep -qi "consul: .*SSL certificate problem\|consul: .*certificate" "$TMP/a6.log"; }
    check "without ca_file the self-signed certificate is refused, and said so" wait_for 15 unverified
    stop_agent
else
    echo "# skipped: TLS (no openssl)"
fi

# ---- nothing left behind -----------------------------------------------------------
start_agent a7 -dev -data-dir "$TMP/data7" -config "$TMP/agent.hcl"
"$NOMCLIENT" leftovers -clean >/dev/null 2>&1
out=$("$NOMCLIENT" leftovers 2>&1)
check "leftovers -clean leaves nothing" contains "$out" "Nothing left behind"
stop_agent
left=$(ip netns list 2>/dev/null | grep -c "$alloc")
check "no namespace of the allocation left" [ "$left" = 0 ]
ip link del "$BR" 2>/dev/null
cni_chains_remove
check "no iptables rule of the test subnet left" [ "$(iptables-save 2>/dev/null | grep -c "$PREFIX")" = 0 ]
finish
