#!/bin/sh
# Services without Consul, through the real agent in -dev mode: a bridge
# job's group and task services land in the built-in catalog with the
# address and port their address_mode gives and their checks' health
# (/v1/services, /v1/service/:name); `nomclient services` shows them in
# sync, `-explain` walks one from the job file to the catalog, a service
# that cannot be registered (address_mode "alloc" in a host-network group)
# shows why; /v1/metrics has per-task series the seed job's scaling query
# selects; everything leaves the catalog when the job stops. Then, against
# tests/integration/consul_fake.py: a registration Consul rejects (400), a
# token it refuses (403) and Consul going away, as `services` shows them.
# Root only: skipped otherwise.
. "$(dirname "$0")/lib.sh"

# a bridge and subnet of this test's own, so no other agent's is touched
bridge_test nctest6 10.255.66.0/24
data=$TMP/data

bridge_agent_config "$TMP/agent.hcl"

py() { # PYTHON-EXPR over the JSON on stdin as x
    python3 -c "import json,sys
x=json.load(sys.stdin)
print($1)" 2>/dev/null
}
alloc_of() { # JOB GROUP PYTHON-EXPR over that group's allocation as a
    curl -s "$ADDR/v1/job/$1/allocations" | py "[a for a in x if a['TaskGroup']=='$2'][0]['ID']" |
        { read -r id; curl -s "$ADDR/v1/allocation/$id"; } | py "$3"
}

cat >"$TMP/shop.nomad" <<'JOB'
job "shop" {
  group "web" {
    network {
      mode = "bridge"
      port "http" {
        to = 8080
      }
    }
    service {
      name = "web"
      port = "http"
      tags = ["front", "v${NOMAD_ALLOC_INDEX}"]
      check {
        type     = "http"
        path     = "/"
        interval = "1s"
        timeout  = "1s"
      }
      check {
        name         = "inside"
        type         = "tcp"
        address_mode = "alloc"
        interval     = "1s"
        timeout      = "1s"
      }
    }
    task "srv" {
      driver = "raw_exec"
      config {
        command = "/usr/bin/python3"
        args    = ["-m", "http.server", "8080"]
      }
      kill_timeout = "1s"
      service {
        name         = "web-task"
        port         = "http"
        provider     = "nomad"
        address_mode = "driver"
        tags         = ["${NOMAD_TASK_NAME}"]
      }
    }
  }
  group "workers" {
    network {
      port "p" {}
    }
    service {
      name         = "broken"
      port         = "p"
      address_mode = "alloc"
    }
    task "worker" {
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

need_agent "agent starts" a1 -dev -data-dir "$data" -config "$TMP/agent.hcl"
out=$("$NOMCLIENT" job run "$TMP/shop.nomad" 2>&1)
check "job accepted" contains "$out" 'Job "shop" registered'
both_running() {
    [ "$(alloc_of shop web 'x["ClientStatus"]')" = running ] &&
        [ "$(alloc_of shop workers 'x["ClientStatus"]')" = running ]
}
check "both allocations run" wait_for 20 both_running
web_alloc=$(alloc_of shop web 'x["ID"]')
web_ip=$(alloc_of shop web 'x["NetworkStatus"]["Address"]')
web_port=$(alloc_of shop web '[p["Value"] for p in x["AllocatedResources"]["Shared"]["Ports"] if p["Label"]=="http"][0]')
node_ip=$(curl -s "$ADDR/v1/node/self" | py 'x["Attributes"]["unique.network.ip-address"]')
case "$web_ip" in "$PREFIX"*) ;; *) fail "web has a bridge address" "$web_ip" ;; esac

# ---- the catalog, in Nomad's shapes --------------------------------------
listed() { curl -s "$ADDR/v1/services" | py 'sorted(s["ServiceName"] for ns in x for s in ns["Services"])'; }
has_both() { [ "$(listed)" = "['web', 'web-task']" ]; }
if wait_for 10 has_both; then
    pass "/v1/services lists web and web-task (not the broken one)"
else
    fail "/v1/services lists web and web-task" "$(curl -s "$ADDR/v1/services")"
fi
tags=$(curl -s "$ADDR/v1/services" | py '[s["Tags"] for s in x[0]["Services"] if s["ServiceName"]=="web"][0]')
check "with the interpolated tags ($tags)" [ "$tags" = "['front', 'v0']" ]
svc=$(curl -s "$ADDR/v1/service/web")
addr=$(printf '%s' "$svc" | py '"%s:%s" % (x[0]["Address"], x[0]["Port"])')
check "web: the node's address and the mapped host port ($addr)" \
    [ "$addr" = "$node_ip:$web_port" ]
fields=$(printf '%s' "$svc" | py '",".join(k for k in ["ID","ServiceName","Namespace","NodeID","Datacenter","JobID","AllocID","Tags","Address","Port","CreateIndex","ModifyIndex"] if k not in x[0])')
check "web has every field of Nomad's ServiceRegistration" [ -z "$fields" ]
task_addr=$(curl -s "$ADDR/v1/service/web-task" | py '"%s:%s" % (x[0]["Address"], x[0]["Port"])')
check "web-task (address_mode driver): the allocation's address and port inside ($task_addr)" \
    [ "$task_addr" = "$web_ip:8080" ]
healthy() { [ "$(curl -s "$ADDR/v1/service/web" | py 'x[0]["Health"]')" = passing ]; }
if wait_for 15 healthy; then
    pass "web's Health turns passing with its two checks"
else
    fail "web's Health turns passing" "$(curl -s "$ADDR/v1/service/web")"
fi
ncheck=$(curl -s "$ADDR/v1/service/web" | py 'len(x[0]["Checks"])')
check "and lists both checks ($ncheck)" [ "$ncheck" = 2 ]
idx1=$(curl -s "$ADDR/v1/service/web" | py '"%s/%s" % (x[0]["CreateIndex"], x[0]["ModifyIndex"])')
passing_n=$(curl -s "$ADDR/v1/service/web?passing" | py 'len(x)')
check "?passing keeps it" [ "$passing_n" = 1 ]
chosen=$(curl -s "$ADDR/v1/service/web?choose=1%7C$web_alloc" | py 'len(x)')
check "?choose=1|key picks one" [ "$chosen" = 1 ]
code=$(curl -s -o /dev/null -w '%{http_code}' "$ADDR/v1/service/web?choose=x")
check "a malformed ?choose is a 400" [ "$code" = 400 ]
code=$(curl -s -o /dev/null -w '%{http_code}' "$ADDR/v1/service/")
check "a missing service name is a 400" [ "$code" = 400 ]
empty=$(curl -s "$ADDR/v1/service/nothing-here")
check "an unknown service is an empty list" [ "$empty" = "[]" ]

# ---- nomclient services ---------------------------------------------------
out=$("$NOMCLIENT" services)
line=$(printf '%s\n' "$out" | grep '^web  ')
if contains "$line" "$node_ip:$web_port" && contains "$line" "in sync" &&
    contains "$line" "passing (2/2)"; then
    pass "nomclient services: web at $node_ip:$web_port, in sync, checks passing"
else
    fail "nomclient services: web in sync with passing checks" "$out"
fi
check "it says where services go without Consul" contains "$out" "every service: no consul block"
if contains "$out" "broken (allocation" &&
    contains "$out" 'Cannot be registered: address_mode "alloc" needs an allocation address'; then
    pass "the broken service's error is stated in the problems"
else
    fail "the broken service's error is stated in the problems" "$out"
fi
problems_at=$(printf '%s\n' "$out" | grep -n '^Problems' | cut -d: -f1)
table_at=$(printf '%s\n' "$out" | grep -n '^Service ' | cut -d: -f1)
check "problems come before the table" [ "${problems_at:-99}" -lt "${table_at:-0}" ]

out=$("$NOMCLIENT" services -explain web)
for want in "OK: registered with the built-in catalog and in sync" \
    "Allocation    = $web_alloc" "Task          = none: a group service" \
    'address_mode "auto" is "host" for exec tasks' \
    "port label \"http\": host port $web_port" "Network          = bridge" \
    "Served at /v1/service/web" "\"Port\": $web_port" \
    'Recent results of "inside"'; do
    if contains "$out" "$want"; then
        pass "services -explain web shows: $want"
    else
        fail "services -explain web shows: $want" "$out"
    fi
done
if printf '%s\n' "$out" | grep -Eq '^    [0-9T:.-]+Z +passing +200 +[0-9.]+(us|ms|s)$'; then
    pass "services -explain web shows the http check's recent results (passing, 200, latency)"
else
    fail "services -explain web shows the http check's recent results" "$out"
fi
out=$("$NOMCLIENT" services -explain broken)
first=$(printf '%s\n' "$out" | grep -A1 '^== Service "broken"' | tail -n 1)
if contains "$first" 'Problem: Cannot be registered: address_mode "alloc"' &&
    contains "$out" 'Fix: use address_mode "host"'; then
    pass "services -explain broken: the problem first, then the fix"
else
    fail "services -explain broken: the problem first, then the fix" "$out"
fi
out=$("$NOMCLIENT" services -explain nope 2>&1)
rc=$?
if [ $rc -ne 0 ] && contains "$out" 'no registration of service "nope"' &&
    contains "$out" broken && contains "$out" web-task; then
    pass "services -explain of an unknown name fails and names the services"
else
    fail "services -explain of an unknown name fails and names the services" "rc=$rc $out"
fi
out=$("$NOMCLIENT" services -json)
state=$(printf '%s' "$out" | py '[r["State"] for r in x["Registrations"] if r["ServiceName"]=="broken"][0]')
check "services -json: broken is invalid" [ "$state" = invalid ]
id=$(printf '%s' "$out" | py '[r["ID"] for r in x["Registrations"] if r["ServiceName"]=="web-task"][0]')
one=$(curl -s "$ADDR/v1/agent/registration/$id" | py 'x["Source"]["Service"]["AddressMode"]')
check "/v1/agent/registration/:id gives one with its service block" [ "$one" = driver ]

# ---- metrics --------------------------------------------------------------
prom=$(curl -s "$ADDR/v1/metrics?format=prometheus")
sleep 0.2
prom=$(curl -s "$ADDR/v1/metrics?format=prometheus")
printf '%s\n' "$prom" >"$TMP/metrics.txt"
if python3 - "$TMP/metrics.txt" <<'PY'; then
import re, sys
name = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
label = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
sample = re.compile(r'^(%s)(\{%s(?:,%s)*\})? (\S+)$' % (name, label, label))
seen, typed = set(), set()
for line in open(sys.argv[1]).read().splitlines():
    if line.startswith('# TYPE '):
        n = line.split()[2]
        assert n not in typed, line
        typed.add(n)
        continue
    if line.startswith('#') or not line:
        continue
    m = sample.match(line)
    assert m, line
    float(m.group(3).replace('Inf', 'inf'))
    assert m.group(1) in typed, line
    key = m.group(1) + (m.group(2) or '')
    assert key not in seen, line
    seen.add(key)
PY
    pass "/v1/metrics?format=prometheus parses as text format 0.0.4, no series twice"
else
    fail "/v1/metrics?format=prometheus parses as text format 0.0.4" "$(head -c 2000 "$TMP/metrics.txt")"
fi
web_cpu=$(printf '%s\n' "$prom" | grep '^nomad_client_allocs_cpu_total_percent{' | grep "alloc_id=\"$web_alloc\"" | grep 'task="srv"' | grep 'task_group="web"' | grep -c 'job="shop"')
check "nomad_client_allocs_cpu_total_percent for the web task, Nomad's labels ($web_cpu)" [ "$web_cpu" = 1 ]
# the seed's scaling query: avg(nomad_client_allocs_cpu_total_percent{task_group="workers"})
workers=$(printf '%s\n' "$prom" | grep '^nomad_client_allocs_cpu_total_percent{' | grep -c 'task_group="workers"')
check "the seed's scaling selector {task_group=\"workers\"} matches a series ($workers)" [ "$workers" -ge 1 ]
check "per-task memory (nomad_client_allocs_memory_rss)" contains "$prom" 'nomad_client_allocs_memory_rss{alloc_id="'
check "host memory (nomad_client_host_memory_total)" contains "$prom" 'nomad_client_host_memory_total{datacenter="dc1"'
check "host CPU per core (nomad_client_host_cpu_total_percent{cpu=\"cpu0\"...})" contains "$prom" 'nomad_client_host_cpu_total_percent{cpu="cpu0"'
check "host disk (nomad_client_host_disk_used_percent)" contains "$prom" 'nomad_client_host_disk_used_percent{'
check "allocations running (nomad_client_allocations_running ... 2)" \
    sh -c "printf '%s\n' \"\$1\" | grep '^nomad_client_allocations_running{' | grep -q ' 2\$'" - "$prom"
check "check probes (nomclient_check_probes_total)" contains "$prom" 'nomclient_check_probes_total{'
check "registrations by state (nomclient_registrations)" contains "$prom" 'registry="nomad",state="invalid"} 1'
shape=$(curl -s "$ADDR/v1/metrics" | py '",".join(k for k in ["Timestamp","Gauges","Counters","Samples"] if k in x) + "/" + ",".join(sorted(x["Gauges"][0]))')
check "/v1/metrics is Nomad's JSON shape ($shape)" [ "$shape" = "Timestamp,Gauges,Counters,Samples/Labels,Name,Value" ]

idx2=$(curl -s "$ADDR/v1/service/web" | py '"%s/%s" % (x[0]["CreateIndex"], x[0]["ModifyIndex"])')
check "web's indexes did not move while only health did ($idx1, $idx2)" [ "$idx1" = "$idx2" ]

# ---- the job stops: its services leave ------------------------------------
"$NOMCLIENT" job stop shop >/dev/null
gone() { [ "$(curl -s "$ADDR/v1/services")" = "[]" ] && [ "$(curl -s "$ADDR/v1/service/web")" = "[]" ]; }
check "after the stop, the catalog is empty" wait_for 10 gone
out=$("$NOMCLIENT" services)
check "and nomclient services says there is nothing to register" contains "$out" "No services to register"
netns_gone() { ! ip netns list 2>/dev/null | grep -q "$web_alloc"; }
check "the allocation's namespace is gone" wait_for 20 netns_gone
stop_agent
"$NOMCLIENT" leftovers -clean >/dev/null 2>&1

# ---- Consul: rejected, refused token, away -----------------------------------
python3 "$(dirname "$0")/consul_fake.py" --port 0 --token good-token \
    --ready-file "$TMP/consul.port" >"$TMP/consul.log" 2>&1 &
FAKE_PID=$!
cleanup_add "kill $FAKE_PID 2>/dev/null"
wait_for 10 test -s "$TMP/consul.port"
cport=$(cat "$TMP/consul.port" 2>/dev/null)
consul_agent() { # NAME TOKEN
    cat >"$TMP/$1.hcl" <<EOF
consul {
  address = "127.0.0.1:$cport"
  token   = "$2"
}
plugin "raw_exec" {
  config {
    enabled = true
  }
}
EOF
    start_agent "$1" -dev -data-dir "$TMP/$1" -config "$TMP/$1.hcl"
}
cat >"$TMP/reg.nomad" <<'JOB'
job "reg" {
  group "g" {
    network {
      port "p" {}
    }
    service {
      name = "good"
      port = "p"
    }
    service {
      name    = "bad"
      port    = "p"
      address = "0.0.0.0"
    }
    service {
      name     = "local"
      port     = "p"
      provider = "nomad"
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
reg_state() { # NAME: its registration's state
    curl -s "$ADDR/v1/agent/registrations" | py "[r['State'] for r in x['Registrations'] if r['ServiceName']=='$1'][0]"
}
if [ -z "$cport" ] || ! consul_agent c1 good-token; then
    fail "an agent with a consul block starts" "$(cat "$TMP/consul.log" "$TMP/c1.log" 2>/dev/null)"
else
    "$NOMCLIENT" job run "$TMP/reg.nomad" >/dev/null
    synced() { [ "$(reg_state good)" = "in sync" ]; }
    if wait_for 20 synced; then
        pass "Consul: a valid service ends in sync"
    else
        fail "Consul: a valid service ends in sync" "$("$NOMCLIENT" services 2>&1)"
    fi
    rejected() { [ "$(reg_state bad)" = rejected ]; }
    wait_for 20 rejected
    out=$("$NOMCLIENT" services -explain bad)
    first=$(printf '%s\n' "$out" | grep -A1 '^== Service "bad"' | tail -n 1)
    if contains "$first" "Problem: Consul rejected this registration: 400 Invalid service address"; then
        pass "services -explain bad: Consul's 400 stated first"
    else
        fail "services -explain bad: Consul's 400 stated first" "$out"
    fi
    check "with the payload sent" contains "$out" '"Address": "0.0.0.0"'
    check "and Consul's answer" contains "$out" "PUT /v1/agent/service/register"
    check "the nomad-provider service stays in the built-in catalog" \
        [ "$(reg_state local)" = "in sync" ]
    # Consul goes away: the view says so, with the next retry
    kill -USR1 "$FAKE_PID" 2>/dev/null
    "$NOMCLIENT" job stop reg >/dev/null
    away() { "$NOMCLIENT" services 2>&1 | grep -q "Consul at .* is unreachable"; }
    if wait_for 30 away; then
        pass "with Consul down, services says Consul is unreachable"
    else
        fail "with Consul down, services says Consul is unreachable" "$("$NOMCLIENT" services 2>&1)"
    fi
    kill -USR2 "$FAKE_PID" 2>/dev/null
    stop_agent
fi
if [ -n "$cport" ] && consul_agent c2 wrong-token; then
    "$NOMCLIENT" job run "$TMP/reg.nomad" >/dev/null
    refused() { [ "$(reg_state good)" = rejected ]; }
    wait_for 20 refused
    out=$("$NOMCLIENT" services)
    if contains "$out" "Consul refused the ACL token: 403 ACL not found"; then
        pass "a token Consul does not know: 403 ACL not found, stated"
    else
        fail "a token Consul does not know: 403 ACL not found, stated" "$out"
    fi
    check "with what the token needs" contains "$out" 'service:write on "good"'
    "$NOMCLIENT" job stop reg >/dev/null
    stop_agent
fi

left=$(ip netns list 2>/dev/null | grep -c "$web_alloc")
check "nothing of the bridge allocation left in ip netns" [ "$left" = 0 ]
# the shared chains and the NOMAD-ADMIN rule the CNI plugins made, when this
# test made them
cni_chains_remove
ip link del "$BR" 2>/dev/null
finish
