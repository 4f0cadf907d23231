#!/bin/sh
# Exec isolation and group networks through the real agent (root only):
# a none-mode allocation has a namespace of its own with only lo, shared
# by its tasks, that reaches neither the host's loopback nor the bridge,
# survives an agent kill -9 and goes with the allocation; a bridge group's
# dns block and hostname become the task's /etc/resolv.conf, /etc/hosts
# and UTS name; exec tasks get private PID and IPC namespaces (pid_mode /
# ipc_mode "host" opt out; default_pid_mode is checked in the agent
# config); logs { disabled } writes no log files.
. "$(dirname "$0")/lib.sh"

bridge_test nctest12 10.255.122.0/24
cleanup_add cni_chains_remove
data=$TMP/data
GW=${PREFIX}1
# the bridge made here, with the gateway address the CNI bridge plugin
# would give it, so a server can listen on it before any allocation runs
ip link add "$BR" type bridge && ip addr add "$GW/24" dev "$BR" && ip link set "$BR" up
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
LOPORT=$(free_port)
GWPORT=$(free_port)
python3 -m http.server --bind 127.0.0.1 "$LOPORT" >/dev/null 2>&1 &
cleanup_add "kill -9 $!"
python3 -m http.server --bind "$GW" "$GWPORT" >/dev/null 2>&1 &
cleanup_add "kill -9 $!"
bridge_agent_config "$TMP/agent.hcl"

# What every task prints, one key=value a line, then it sleeps.
cat >"$TMP/probe.py" <<EOF
import os, socket, time
def conn(host, port):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((host, port))
        return "open"
    except OSError as e:
        return "errno%d" % (e.errno or 0)
def read(p):
    return open(p).read() if os.path.exists(p) else ""
dev = read("/proc/net/dev").splitlines()[2:]
print("ifaces=" + ",".join(sorted(l.split(":")[0].strip() for l in dev)))
for n in ("net", "pid", "ipc", "uts"):
    print(n + "ns=" + os.readlink("/proc/self/ns/" + n))
print("pid=%d" % os.getpid())
print("procs=" + ",".join(sorted(x for x in os.listdir("/proc") if x.isdigit())))
print("init=" + read("/proc/1/comm").strip())
print("hostname=" + socket.gethostname())
print("lo=" + conn("127.0.0.1", $LOPORT))
print("gw=" + conn("$GW", $GWPORT))
print("resolv=" + read("/etc/resolv.conf").replace("\n", "|"))
print("hosts=" + read("/etc/hosts").replace("\n", "|"))
print("done", flush=True)
time.sleep(300)
EOF
# The jobs, with the probe as an HCL string (JSON's escapes are HCL's).
python3 - "$TMP" <<'EOF'
import json, sys
tmp = sys.argv[1]
probe = json.dumps(open(tmp + "/probe.py").read())
def task(name, driver="exec", extra=""):
    return '''    task "%s" {
      driver = "%s"
      config {
        command = "/usr/bin/python3"
        args    = ["-u", "-c", %s]
        %s
      }
      kill_timeout = "1s"
    }
''' % (name, driver, probe, extra)
jobs = {
    "none": '''job "none" {
  group "g" {
    network {
      mode = "none"
    }
%s%s  }
}
''' % (task("a"), task("b", "raw_exec")),
    "br": '''job "br" {
  group "g" {
    network {
      mode     = "bridge"
      hostname = "web-${NOMAD_ALLOC_INDEX}"
      dns {
        servers  = ["10.255.122.53", "10.255.122.54"]
        searches = ["svc.example"]
        options  = ["ndots:2"]
      }
    }
%s%s    task "quiet" {
      driver = "exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo not-collected; echo not-collected >&2; touch /alloc/data/quiet-ran; exec sleep 300"]
      }
      logs {
        disabled = true
      }
      kill_timeout = "1s"
    }
  }
}
''' % (task("priv"), task("hostns", extra='pid_mode = "host"\n        ipc_mode = "host"')),
    "hostdns": '''job "hostdns" {
  group "g" {
    network {
      dns {
        servers = ["10.255.122.55"]
      }
    }
%s  }
}
''' % task("t"),
    "badhost": '''job "badhost" {
  group "g" {
    network {
      hostname = "nope"
    }
%s  }
}
''' % task("t"),
    "baddns": '''job "baddns" {
  group "g" {
    network {
      dns {
        servers = ["10.0.0.1\\nnameserver 6.6.6.6"]
      }
    }
%s  }
}
''' % task("t"),
    "badmode": '''job "badmode" {
  group "g" {
%s  }
}
''' % task("t", extra='pid_mode = "shared"'),
}
for name, text in jobs.items():
    open("%s/%s.nomad" % (tmp, name), "w").write(text)
EOF

alloc_id() { curl -s "$ADDR/v1/job/$1/allocations" | python3 -c 'import json,sys; a=json.load(sys.stdin); print(a[0]["ID"] if a else "")' 2>/dev/null; }
status() { curl -s "$ADDR/v1/job/$1/allocations" | python3 -c 'import json,sys; a=json.load(sys.stdin); print(a[0]["ClientStatus"] if a else "")' 2>/dev/null; }
# val JOB TASK KEY: what the task's probe printed for KEY
val() { sed -n "s/^$3=//p" "$data/alloc/$(alloc_id "$1")/alloc/logs/$2.stdout.0" 2>/dev/null | head -n 1; }
probed() { grep -qx done "$data/alloc/$(alloc_id "$1")/alloc/logs/$2.stdout.0" 2>/dev/null; }
host_ns() { readlink "/proc/self/ns/$1"; }

# a default_pid_mode that is neither private nor host stops the agent
cat >"$TMP/bad.hcl" <<'EOF'
plugin "exec" {
  config {
    default_pid_mode = "shared"
  }
}
EOF
out=$(timeout 10 "$NOMCLIENT" agent -dev -data-dir "$TMP/bad" -config "$TMP/bad.hcl" -http-port 0 2>&1)
check "default_pid_mode \"shared\" is refused at load, naming file:line" \
    sh -c "printf '%s' \"\$1\" | grep -q 'bad.hcl:3:.*default_pid_mode must be \"private\" or \"host\", got \"shared\"'" _ "$out"

need_agent "agent starts" a1 -dev -data-dir "$data" -config "$TMP/agent.hcl"
check "the host reaches its loopback server (the control)" curl -s -o /dev/null -m 2 "http://127.0.0.1:$LOPORT/"
for j in none br hostdns badhost baddns badmode; do
    "$NOMCLIENT" job run "$TMP/$j.nomad" >/dev/null 2>&1
done
all_probed() { probed none a && probed none b && probed br priv && probed br hostns && probed hostdns t; }
if wait_for 30 all_probed; then
    pass "the probes ran"
else
    fail "the probes ran" "$(for j in none br hostdns; do curl -s "$ADDR/v1/job/$j/allocations"; echo; done)"
fi

# ---- network mode none
none=$(alloc_id none)
check "none: the task sees only lo ($(val none a ifaces))" [ "$(val none a ifaces)" = lo ]
check "none: the host's loopback server is not reachable ($(val none a lo))" [ "$(val none a lo)" = errno111 ]
check "none: the bridge is not reachable ($(val none a gw))" [ "$(val none a gw)" = errno101 ]
check "none: a namespace of its own, not the host's" \
    sh -c "[ -n '$(val none a netns)' ] && [ '$(val none a netns)' != '$(host_ns net)' ]"
check "none: the group's tasks share it (exec and raw_exec)" [ "$(val none a netns)" = "$(val none b netns)" ]
check "none: it is /run/netns/<alloc id>" \
    sh -c "[ \"net:[\$(stat -L -c %i /run/netns/$none)]\" = '$(val none a netns)' ]"
check "none: its setup is recorded with the allocation's network phase" \
    grep -q '"Mode":"none"' "$data/client/netns/$none.json"

# ---- bridge: dns block, hostname, /etc/hosts
br=$(alloc_id br)
br_ip=$(curl -s "$ADDR/v1/allocation/$br" | python3 -c 'import json,sys; print(json.load(sys.stdin)["NetworkStatus"]["Address"])')
check "bridge (control): the task reaches the bridge's gateway ($(val br priv gw))" [ "$(val br priv gw)" = open ]
check "bridge: /etc/resolv.conf from the dns block ($(val br priv resolv))" \
    [ "$(val br priv resolv)" = "search svc.example|nameserver 10.255.122.53|nameserver 10.255.122.54|options ndots:2|" ]
check "bridge: the UTS hostname is the interpolated network hostname ($(val br priv hostname))" [ "$(val br priv hostname)" = web-0 ]
check "bridge: the host's hostname is untouched" [ "$(hostname)" != web-0 ]
case "$(val br priv hosts)" in
"# this file was generated by Nomad|127.0.0.1 localhost|"*"|$br_ip web-0|")
    pass "bridge: /etc/hosts as Nomad writes it, naming the allocation ($br_ip web-0)" ;;
*) fail "bridge: /etc/hosts as Nomad writes it, naming the allocation" "$(val br priv hosts)" ;;
esac
check "bridge: the files are the task dir's resolv.conf and hosts" \
    sh -c "grep -q 'nameserver 10.255.122.53' $data/alloc/$br/priv/resolv.conf && grep -q 'web-0' $data/alloc/$br/priv/hosts"
check "the host's /etc/resolv.conf is untouched" sh -c "! grep -q 10.255.122.53 /etc/resolv.conf"

# ---- host mode: the dns block applies, a hostname is refused as Nomad does
check "host mode: /etc/resolv.conf from the dns block ($(val hostdns t resolv))" \
    contains "$(val hostdns t resolv)" "nameserver 10.255.122.55|"
check "host mode: the host's network and hostname" \
    sh -c "[ '$(val hostdns t netns)' = '$(host_ns net)' ] && [ '$(val hostdns t hostname)' = '$(hostname)' ]"
badhost_failed() { [ "$(status badhost)" = failed ]; }
wait_for 10 badhost_failed
check "host mode with a hostname fails with Nomad's reason" \
    contains "$(curl -s "$ADDR/v1/allocation/$(alloc_id badhost)")" 'hostname cannot be set on task group using \"host\" networking mode'

baddns_failed() { [ "$(status baddns)" = failed ]; }
wait_for 10 baddns_failed
check "a dns server that is not an address fails the task, no line is injected" \
    contains "$(curl -s "$ADDR/v1/allocation/$(alloc_id baddns)")" 'network dns servers: \"10.0.0.1\nnameserver 6.6.6.6\" is not an IP address'

# ---- exec: private PID and IPC namespaces
check "exec: a PID namespace of its own ($(val br priv pidns))" \
    sh -c "[ -n '$(val br priv pidns)' ] && [ '$(val br priv pidns)' != '$(host_ns pid)' ]"
check "exec: an IPC namespace of its own" \
    sh -c "[ -n '$(val br priv ipcns)' ] && [ '$(val br priv ipcns)' != '$(host_ns ipc)' ]"
check "exec: the task is PID 2 under a small init ($(val br priv pid), $(val br priv init))" \
    sh -c "[ '$(val br priv pid)' = 2 ] && [ '$(val br priv init)' = nomclient-init ]"
check "exec: /proc shows only the init and the task ($(val br priv procs))" [ "$(val br priv procs)" = 1,2 ]
check "exec with pid_mode/ipc_mode \"host\": the host's" \
    sh -c "[ '$(val br hostns pidns)' = '$(host_ns pid)' ] && [ '$(val br hostns ipcns)' = '$(host_ns ipc)' ]"
check "raw_exec stays in the host's PID namespace" [ "$(val none b pidns)" = "$(host_ns pid)" ]
badmode_failed() { [ "$(status badmode)" = failed ]; }
wait_for 10 badmode_failed
check "pid_mode \"shared\" fails the task with Nomad's words" \
    contains "$(curl -s "$ADDR/v1/allocation/$(alloc_id badmode)")" 'failed driver config validation: pid_mode must be \"private\" or \"host\", got \"shared\"'
inits=$(pgrep -x nomclient-init | wc -l)
check "the inits are not taken for supervisors ($inits inits)" \
    sh -c "[ $inits -ge 2 ] && ! pgrep -f 'supervise $data/' | xargs -r ps -o comm= -p | grep -q nomclient-init"

# ---- logs { disabled }
quiet_ran() { [ -f "$data/alloc/$br/alloc/data/quiet-ran" ]; }
check "logs disabled: the task runs" wait_for 5 quiet_ran
check "logs disabled: no log file is written" sh -c "! ls $data/alloc/$br/alloc/logs | grep -q '^quiet\\.'"

# ---- stop and signals under the init: the kill signal ends a sleeping task
sup=$(cut -d' ' -f1 "$data/alloc/$br/.nomclient/priv.lock")
"$NOMCLIENT" alloc signal -s SIGTERM "$br" priv >/dev/null 2>&1
priv_dead() { ! kill -0 "$sup" 2>/dev/null; }
check "alloc signal SIGTERM reaches the task through its init" wait_for 5 priv_dead

# ---- an agent killed -9 and restarted keeps the none namespace
sup_a=$(cut -d' ' -f1 "$data/alloc/$none/.nomclient/a.lock")
kill -9 "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
need_agent "agent restarts" a2 -dev -data-dir "$data" -config "$TMP/agent.hcl"
none_running() { [ "$(status none)" = running ]; }
check "after a restart: the none allocation runs on, same supervisor, same namespace" \
    sh -c "kill -0 $sup_a && [ \"net:[\$(stat -L -c %i /run/netns/$none)]\" = '$(val none a netns)' ]"
check "  and it is re-attached" wait_for 5 none_running

# ---- stop: nothing left
for j in none br hostdns badhost baddns badmode; do
    "$NOMCLIENT" job stop "$j" >/dev/null 2>&1
done
gone() {
    [ ! -e "/run/netns/$none" ] && [ ! -e "$data/client/netns/$none.json" ] &&
        [ -z "$(pgrep -f "supervise $data/")" ] && [ -z "$(pgrep -x nomclient-init)" ] &&
        ! grep -q "$data" /proc/self/mountinfo
}
if wait_for 20 gone; then
    pass "after stop: no namespace, setup record, supervisor, init or mount left"
else
    fail "after stop: no namespace, setup record, supervisor, init or mount left" \
        "$(ls /run/netns; ls $data/client/netns; pgrep -af "supervise $data/|nomclient-init"; grep "$data" /proc/self/mountinfo)"
fi
out=$("$NOMCLIENT" leftovers)
check "leftovers lists no allocation's namespace" sh -c "! printf '%s' \"\$1\" | grep -qe '$none' -e '$br'" _ "$out"
stop_agent

finish
