#!/bin/sh
# Bridge networking through the real agent, CNI plugins and kernel: a
# two-group job whose tasks answer on their mapped host ports from the host
# and from each other's namespace, a static port conflict refused, service
# checks passing, and after the job stops nothing of ours is left in
# `ip netns`, `ip link`, `iptables-save`, the IPAM leases or the mounts.
# Then ten allocations with the agent killed -9 in the middle of setting up
# their networks: after a restart every task runs exactly once, and after
# the stop nothing is left again. Root only: skipped otherwise.
. "$(dirname "$0")/lib.sh"

# a bridge and subnet of this test's own, so no other agent's is touched
bridge_test nctest9 10.255.99.0/24
data=$TMP/data
# host-local's lease dirs of this test's custom networks
for n in mynet broken; do
    [ -d "/var/lib/cni/networks/$n" ] ||
        cleanup_add "rm -f /var/lib/cni/networks/$n/lock /var/lib/cni/networks/$n/last_reserved_ip.0; rmdir /var/lib/cni/networks/$n 2>/dev/null; true"
done
mkdir -p "$TMP/cni"
cat >"$TMP/cni/10-mynet.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "mynet", "plugins": [
  {"type": "loopback"},
  {"type": "bridge", "bridge": "nctest8", "ipMasq": true, "isGateway": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.255.98.0/24"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}
]}
EOF
cat >"$TMP/cni/20-broken.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "broken", "plugins": [
  {"type": "loopback"},
  {"type": "bridge", "bridge": "nctest8", "isGateway": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.255.98.0/24"}]]}},
  {"type": "tuning", "sysctl": {"net.ipv4.no_such_knob": "1"}}
]}
EOF
cleanup_add "ip link del nctest8 2>/dev/null; true"
cat >"$TMP/agent.hcl" <<EOF
client {
  bridge_network_name   = "$BR"
  bridge_network_subnet = "$SUBNET"
  cni_config_dir        = "$TMP/cni"
}
plugin "raw_exec" {
  config {
    enabled = true
  }
}
EOF

alloc_json() { # JOB GROUP PYTHON-EXPR over that group's allocation
    curl -s "$ADDR/v1/job/$1/allocations" |
        python3 -c "import json,sys
a=[x for x in json.load(sys.stdin) if x['TaskGroup']=='$2']
x=a[0] if a else {}
print($3)" 2>/dev/null
}
http_ok() { # URL [NETNS]
    if [ -n "$2" ]; then
        ip netns exec "$2" curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" | grep -q '^200$'
    else
        curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" | grep -q '^200$'
    fi
}
ours_left() { # prints what of ours the kernel still holds
    ip netns list 2>/dev/null | grep -E "$1" | sed 's/^/netns: /'
    ip -o link show master "$BR" 2>/dev/null | sed 's/^/veth: /'
    # the bridge-wide NOMAD-ADMIN rule stays while the agent runs, as with
    # Nomad (`leftovers -clean` removes it once no allocation is left)
    iptables-save 2>/dev/null | grep -F -e "$PREFIX" | grep -v -- "-A NOMAD-ADMIN -d $SUBNET -o $BR -j ACCEPT" |
        sed 's/^/iptables: /'
    iptables-save 2>/dev/null | grep -E "$1" | sed 's/^/iptables: /'
    ls /var/lib/cni/networks/nomad 2>/dev/null | grep -F "$PREFIX" | sed 's/^/ipam: /'
    findmnt -rn -o TARGET 2>/dev/null | grep -F -e "$data" -e "/run/netns/" |
        grep -E "$1|$data" | sed 's/^/mount: /'
    find /sys/fs/cgroup -maxdepth 3 -path '*nomclient/*' -name "*" 2>/dev/null |
        grep -E "$1" | sed 's/^/cgroup: /'
}

cat >"$TMP/br.nomad" <<'JOB'
job "br" {
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
    }
  }
  group "api" {
    network {
      mode = "bridge"
      port "api" {
        static = 25999
        to     = 9090
      }
    }
    task "srv" {
      driver = "exec"
      config {
        command = "/usr/bin/python3"
        args    = ["-m", "http.server", "9090"]
      }
      kill_timeout = "1s"
    }
  }
}
JOB

# portmap's jumps into CNI-HOSTPORT-DNAT, which parallel portmaps on a host
# without them each append unless the helper put them in place first: the
# first set-ups start from a host without them (as after a boot) when
# nobody maps a port meanwhile
JUMP=$HOSTPORT_JUMP
jumps() { hostport_jumps "$1"; }
one_jump_each() { [ "$(jumps PREROUTING)/$(jumps OUTPUT)" = 1/1 ]; }
hostport_jumps_remove

need_agent "agent starts" a1 -dev -data-dir "$data" -config "$TMP/agent.hcl"
out=$("$NOMCLIENT" job run "$TMP/br.nomad" 2>&1)
check "bridge job accepted" contains "$out" 'Job "br" registered'
both_running() {
    [ "$(alloc_json br web 'x.get("ClientStatus")')" = running ] &&
        [ "$(alloc_json br api 'x.get("ClientStatus")')" = running ]
}
if wait_for 20 both_running; then
    pass "both bridge allocations run"
else
    fail "both bridge allocations run" "$(curl -s "$ADDR/v1/job/br/allocations")"
fi
check "after two parallel set-ups: one jump into CNI-HOSTPORT-DNAT per hook ($(jumps PREROUTING)/$(jumps OUTPUT))" one_jump_each
web=$(alloc_json br web 'x["ID"]')
api=$(alloc_json br api 'x["ID"]')
web_ip=$(alloc_json br web 'x["NetworkStatus"]["Address"]')
api_ip=$(alloc_json br api 'x["NetworkStatus"]["Address"]')
web_port=$(alloc_json br web '[p["Value"] for p in x["AllocatedResources"]["Shared"]["Ports"] if p["Label"]=="http"][0]')
case "$web_ip/$api_ip" in
"$PREFIX"*"/$PREFIX"*) pass "each allocation has its own address in $SUBNET ($web_ip, $api_ip)" ;;
*) fail "each allocation has its own address in $SUBNET" "web=$web_ip api=$api_ip" ;;
esac
check "a named network namespace per allocation" \
    sh -c "ip netns list | grep -q '^$web' && ip netns list | grep -q '^$api'"
in_range() { [ "$web_port" -ge 20000 ] && [ "$web_port" -le 32000 ]; }
check "dynamic host port from 20000-32000 ($web_port)" in_range

check "web answers on its mapped host port from the host" wait_for 10 http_ok "http://127.0.0.1:$web_port/"
check "api answers on its static host port 25999 from the host" wait_for 10 http_ok "http://127.0.0.1:25999/"
check "web answers on its own address" http_ok "http://$web_ip:8080/"
check "api reaches web's address from its namespace" http_ok "http://$web_ip:8080/" "$api"
check "web reaches api's address from its namespace" http_ok "http://$api_ip:9090/" "$web"
env_port=$(cat /proc/$(pgrep -f "http.server 8080" | head -n 1)/environ 2>/dev/null | tr '\0' '\n' | sed -n 's/^NOMAD_PORT_http=//p')
check "task sees NOMAD_PORT_http = the port inside (8080)" [ "$env_port" = 8080 ]

cat >"$TMP/clash.nomad" <<'JOB'
job "clash" {
  group "g" {
    network {
      mode = "bridge"
      port "api" {
        static = 25999
      }
    }
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["60"]
      }
    }
  }
}
JOB
out=$("$NOMCLIENT" job run "$TMP/clash.nomad" 2>&1)
check "a static port already mapped is refused" contains "$out" "port collision"

passing() { alloc_checks=$(curl -s "$ADDR/v1/client/allocation/$web/checks"); contains "$alloc_checks" '"Status":"success"' && ! contains "$alloc_checks" '"Status":"pending"' && ! contains "$alloc_checks" '"Status":"failure"'; }
if wait_for 10 passing; then
    pass "both web checks pass (host port and alloc address)"
else
    fail "both web checks pass (host port and alloc address)" "$alloc_checks"
fi
out=$("$NOMCLIENT" checks)
check "nomclient checks lists the web check" contains "$out" "web"
check "nomclient checks shows it passing" contains "$out" "passing"
stats=$(curl -s "$ADDR/v1/client/allocation/$api/stats")
rss=$(printf '%s' "$stats" | python3 -c 'import json,sys; m=json.load(sys.stdin)["Tasks"]["srv"]["ResourceUsage"]["MemoryStats"]; print(m["RSS"] if "RSS" in m["Measured"] else 0)' 2>/dev/null)
if [ "${rss:-0}" -gt 1000000 ]; then
    pass "allocation stats measure the exec task's memory (RSS $rss)"
else
    fail "allocation stats measure the exec task's memory" "$stats"
fi

"$NOMCLIENT" job stop br >/dev/null
gone() { [ -z "$(ours_left "$web|$api")" ]; }
if wait_for 20 gone; then
    pass "after stop: no namespace, veth, iptables rule, lease, mount or cgroup of ours"
else
    fail "after stop: no namespace, veth, iptables rule, lease, mount or cgroup of ours" "$(ours_left "$web|$api")"
fi
nadmin=$(iptables-save | grep -c -- "-A NOMAD-ADMIN -d $SUBNET -o $BR -j ACCEPT")
check "the bridge's NOMAD-ADMIN rule exists once ($nadmin)" [ "$nadmin" -eq 1 ]
out=$(leftovers_new)
if contains "$out" "Bridge       $BR, the link, its NOMAD-ADMIN rule" && [ "$(echo "$out" | grep -c .)" -eq 2 ]; then
    pass "with no allocation left, leftovers lists only the bridge and its rule"
else
    fail "with no allocation left, leftovers lists only the bridge and its rule" "$out"
fi
"$NOMCLIENT" leftovers -clean >/dev/null
if ! ip link show "$BR" >/dev/null 2>&1 &&
    ! iptables-save | grep -q -- "-d $SUBNET -o $BR"; then
    pass "leftovers -clean removes the bridge and its NOMAD-ADMIN rule"
else
    fail "leftovers -clean removes the bridge and its NOMAD-ADMIN rule" "$(ip link show "$BR" 2>&1; iptables-save | grep -- "$BR")"
fi
out=$("$NOMCLIENT" leftovers)
check "then leftovers finds nothing" contains "$out" "Nothing left behind"

# ---- a spec too big for the waiting task's pipe goes through its file ------
big=$(python3 -c 'print("x" * 70000)')
cat >"$TMP/big.nomad" <<JOB
job "big" {
  group "g" {
    network {
      mode = "bridge"
      port "p" {
        to = 8080
      }
    }
    task "t" {
      driver = "raw_exec"
      env {
        BIG = "$big"
      }
      config {
        command = "/bin/sh"
        args    = ["-c", "echo big=\${#BIG} ip=\$NOMAD_ALLOC_IP_p; exec sleep 600"]
      }
      kill_timeout = "1s"
    }
  }
}
JOB
"$NOMCLIENT" job run "$TMP/big.nomad" >/dev/null
big_id() { alloc_json big g 'x["ID"]'; }
big_logged() { "$NOMCLIENT" alloc logs "$(big_id)" 2>/dev/null | grep -q 'big=70000'; }
check "a task whose spec exceeds the pipe runs with its whole environment" wait_for 20 big_logged
out=$("$NOMCLIENT" alloc logs "$(big_id)" 2>&1)
check "  and the allocation's address, known once the network was ready" contains "$out" "ip=$PREFIX"
check "  started once, at the first try" [ "$(alloc_json big g 'x["TaskStates"]["t"]["Restarts"]')" = 0 ]
"$NOMCLIENT" job stop big >/dev/null
big_gone() { [ "$(alloc_json big g 'x["ClientStatus"]')" = complete ]; }
wait_for 10 big_gone

# ---- custom CNI networks from cni_config_dir ---------------------------------
cat >"$TMP/custom.nomad" <<'JOB'
job "custom" {
  group "ok" {
    network {
      mode = "cni/mynet"
      port "http" {
        to = 8081
      }
    }
    task "srv" {
      driver = "raw_exec"
      config {
        command = "/usr/bin/python3"
        args    = ["-m", "http.server", "8081"]
      }
      kill_timeout = "1s"
    }
  }
  group "bad" {
    network {
      mode = "cni/broken"
    }
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["60"]
      }
    }
  }
}
JOB
"$NOMCLIENT" job run "$TMP/custom.nomad" >/dev/null
ok_running() { [ "$(alloc_json custom ok 'x.get("ClientStatus")')" = running ]; }
check "an allocation on a custom CNI network (cni/mynet) runs" wait_for 20 ok_running
ok_ip=$(alloc_json custom ok 'x["NetworkStatus"]["Address"]')
ok_port=$(alloc_json custom ok '[p["Value"] for p in x["AllocatedResources"]["Shared"]["Ports"] if p["Label"]=="http"][0]')
case "$ok_ip" in 10.255.98.*) pass "it has an address of that network ($ok_ip)" ;;
*) fail "it has an address of that network" "$ok_ip" ;; esac
if wait_for 10 http_ok "http://127.0.0.1:$ok_port/"; then
    pass "it answers on its mapped host port"
else
    ok_id=$(alloc_json custom ok 'x["ID"]')
    fail "it answers on its mapped host port ($ok_port -> $ok_ip:8081)" "$(
        curl -s -m 2 -o /dev/null -w 'host port: %{http_code}\n' "http://127.0.0.1:$ok_port/"
        curl -s -m 2 -o /dev/null -w 'alloc address: %{http_code}\n' "http://$ok_ip:8081/"
        alloc_json custom ok 'x["TaskStates"]'
        ip netns exec "$ok_id" ss -ltnp 2>&1
        iptables-save -t nat | grep -e "$ok_port" -e "$ok_ip" 2>&1
        cat "$TMP"/data*/alloc/"$ok_id"/alloc/logs/srv.std* 2>&1 | tail -5)"
fi
bad_failed() { [ "$(alloc_json custom bad 'x.get("ClientStatus")')" = failed ]; }
check "an allocation whose network cannot be set up fails" wait_for 20 bad_failed
bad=$(alloc_json custom bad 'x["ID"]')
ev=$(alloc_json custom bad 'x["TaskStates"]["t"]["Events"][-1]["DisplayMessage"]')
if contains "$ev" 'pre-run hook "network" failed' && contains "$ev" tuning; then
    pass "with an event naming the network hook and the failing plugin"
else
    fail "with an event naming the network hook and the failing plugin" "$ev"
fi
if [ -z "$(ip netns list | grep "$bad")" ] && ! iptables-save | grep -q "$bad"; then
    pass "and nothing of it half-configured"
else
    fail "and nothing of it half-configured" "$(ip netns list | grep "$bad"; iptables-save | grep "$bad")"
fi
ok=$(alloc_json custom ok 'x["ID"]')
"$NOMCLIENT" job stop custom >/dev/null
custom_gone() { [ -z "$(ip netns list | grep -E "$ok|$bad")" ] && ! iptables-save | grep -q 10.255.98; }
check "custom network allocation torn down on stop" wait_for 20 custom_gone

# ---- kill -9 in the middle of setting up ten allocations --------------------
cat >"$TMP/ten.nomad" <<JOB
job "ten" {
  group "g" {
    count = 10
    network {
      mode = "bridge"
      port "p" {}
    }
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo \$NOMAD_ALLOC_ID >>$TMP/starts; exec sleep 600"]
      }
      kill_timeout = "1s"
    }
  }
}
JOB
: >"$TMP/starts"
"$NOMCLIENT" job run "$TMP/ten.nomad" >/dev/null
sleep 0.15
kill -9 "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
inflight=$(grep -L '"Phase":"added"' "$data"/client/netns/*.json 2>/dev/null | wc -l)
started_before=$(wc -l <"$TMP/starts")
echo "# killed with $inflight network set-up(s) in flight and $started_before task(s) started"
need_agent "agent restarts" a2 -dev -data-dir "$data" -config "$TMP/agent.hcl"
ten_running() { [ "$(curl -s "$ADDR/v1/job/ten/allocations" | grep -o '"ClientStatus":"running"' | wc -l)" -eq 10 ]; }
if wait_for 30 ten_running; then
    pass "all ten allocations run after the restart"
else
    fail "all ten allocations run after the restart" "$(curl -s "$ADDR/v1/job/ten/allocations" | grep -o '"ClientStatus":"[a-z]*"' | sort | uniq -c)"
fi
sleep 0.5
ids=$(curl -s "$ADDR/v1/job/ten/allocations" | python3 -c 'import json,sys; print("\n".join(x["ID"] for x in json.load(sys.stdin)))')
nids=$(echo "$ids" | grep -c .)
dups=$(sort "$TMP/starts" | uniq -d | wc -l)
nstarts=$(sort -u "$TMP/starts" | wc -l)
if [ "$nids" -eq 10 ] && [ "$nstarts" -eq 10 ] && [ "$dups" -eq 0 ] &&
    [ "$(wc -l <"$TMP/starts")" -eq 10 ]; then
    pass "every task ran exactly once"
else
    fail "every task ran exactly once" "allocs=$nids distinct starts=$nstarts duplicates=$dups lines=$(wc -l <"$TMP/starts")"
fi
nsups=$(pgrep -f "supervise $data/" | wc -l)
check "ten supervisors, one per task ($nsups)" [ "$nsups" -eq 10 ]
pattern=$(echo "$ids" | paste -sd '|')
nns=$(ip netns list | grep -cE "$pattern")
check "ten namespaces, one per allocation ($nns)" [ "$nns" -eq 10 ]
check "after ten parallel set-ups by two helpers: one jump into CNI-HOSTPORT-DNAT per hook ($(jumps PREROUTING)/$(jumps OUTPUT))" one_jump_each
# a duplicate jump, as racing portmaps left before the fix: listed, and
# -clean removes it while keeping the one the ten allocations use
iptables -w -t nat -A OUTPUT $JUMP
out=$("$NOMCLIENT" leftovers)
if [ "$(echo "$out" | grep -cxF "Iptables     nat OUTPUT: -A OUTPUT $JUMP (duplicate)")" -eq 1 ] &&
    ! contains "$out" "PREROUTING: -A PREROUTING $JUMP"; then
    pass "leftovers lists the duplicate OUTPUT jump into CNI-HOSTPORT-DNAT"
else
    fail "leftovers lists the duplicate OUTPUT jump into CNI-HOSTPORT-DNAT" "$out"
fi
"$NOMCLIENT" leftovers -clean >/dev/null
check "leftovers -clean leaves one jump per hook ($(jumps PREROUTING)/$(jumps OUTPUT))" one_jump_each
ndnat=$(iptables-save -t nat | grep -c -- "-A CNI-HOSTPORT-DNAT .*id: .*-j CNI-DN-")
if ten_running && [ "$(ip netns list | grep -cE "$pattern")" -eq 10 ] && [ "$ndnat" -ge 10 ]; then
    pass "  and the ten allocations still run, with their namespaces and DNAT rules ($ndnat)"
else
    fail "  and the ten allocations still run, with their namespaces and DNAT rules ($ndnat)"
fi
# one network helper, the new agent's: the killed agent's finished what it
# had been given and left when its input closed
helpers=$(pgrep -f "$NOMCLIENT netns-helper -serve" | paste -sd ' ')
check "one network helper, the new agent's ($helpers)" \
    [ "$helpers" = "$(pgrep -f "$NOMCLIENT netns-helper -serve" -P "$AGENT_PID")" ]
"$NOMCLIENT" job stop ten >/dev/null
gone10() { [ -z "$(ours_left "$pattern")" ] && [ "$(pgrep -f "supervise $data/" | wc -l)" -eq 0 ]; }
if wait_for 30 gone10; then
    pass "after stop: nothing of the ten left (netns, veth, iptables, leases, mounts, cgroups, supervisors)"
else
    fail "after stop: nothing of the ten left" "$(ours_left "$pattern"; pgrep -af "supervise $data/")"
fi
stop_agent

# a dev agent removes its allocations' networks when it exits (make run)
need_agent "dev agent starts" a3 -dev -data-dir "$TMP/data3" -config "$TMP/agent.hcl"
"$NOMCLIENT" job run "$TMP/br.nomad" >/dev/null
wait_for 20 both_running
web=$(alloc_json br web 'x["ID"]')
api=$(alloc_json br api 'x["ID"]')
# Ctrl-C in a terminal, with a wrapper script passing on a TERM of its own
kill -INT "$AGENT_PID"
sleep 0.05
kill -TERM "$AGENT_PID" 2>/dev/null
wait "$AGENT_PID"
left=$(ours_left "$web|$api")
if [ -n "$web" ] && [ -z "$left" ]; then
    pass "a dev agent's exit (INT, then TERM) stops its tasks and removes their networks"
else
    fail "a dev agent's exit (INT, then TERM) stops its tasks and removes their networks" "web=$web $left"
fi

# the bridge-wide NOMAD-ADMIN rule and chains the CNI plugins share between
# containers: removed when this test made them
cni_chains_remove
finish
