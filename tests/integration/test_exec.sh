#!/bin/sh
# The exec driver through the real agent (root only): chroot, user switch,
# Nomad's default capability set, cap_add / cap_drop within the exec
# plugin's allow_caps (and a refused cap_add), a host volume mounted
# read-write, and a clean stop that leaves no mount or cgroup behind.
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
    echo "# not root: exec driver tests skipped"
    finish
    exit 0
fi
data=$TMP/data
hv=$TMP/hv
ro=$TMP/ro
mkdir -p "$hv" "$ro"
chmod 0777 "$hv"
cleanup_add "pkill -9 -f 'supervise $data/' ; true"
cat >"$TMP/agent.hcl" <<CFG
data_dir  = "$data"
bind_addr = "127.0.0.1"
client {
  host_volume "hv" {
    path = "$hv"
  }
  host_volume "ro" {
    path      = "$ro"
    read_only = true
  }
}
plugin "exec" {
  config {
    allow_caps = ["audit_write", "chown", "dac_override", "fowner", "fsetid",
                  "kill", "mknod", "net_bind_service", "setfcap", "setgid",
                  "setpcap", "setuid", "sys_chroot", "net_raw"]
  }
}
CFG
cat >"$TMP/ex.nomad" <<'JOB'
job "ex" {
  group "g" {
    volume "data" {
      type   = "host"
      source = "hv"
    }
    task "t" {
      driver = "exec"
      user   = "nobody"
      config {
        command = "/bin/sh"
        args    = ["-c", "id -u; ls /; echo written > /data/f; grep CapBnd /proc/self/status; exec sleep 300"]
      }
      volume_mount {
        volume      = "data"
        destination = "/data"
      }
      kill_timeout = "1s"
    }
  }
}
JOB
need_agent "agent starts with a config file" ex -config "$TMP/agent.hcl"
"$NOMCLIENT" job run "$TMP/ex.nomad" >/dev/null
id=$(curl -s "$ADDR/v1/job/ex/allocations" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["ID"])')
written() { [ -f "$hv/f" ]; }
check "task wrote through the host volume" wait_for 5 written
out=$("$NOMCLIENT" alloc logs "$id")
check "task runs as nobody" contains "$out" "65534"
check "task sees its chroot (local, secrets, alloc, data)" sh -c "printf '%s' \"$out\" | grep -qx local && printf '%s' \"$out\" | grep -qx secrets && printf '%s' \"$out\" | grep -qx alloc && printf '%s' \"$out\" | grep -qx data"
check "host's /root is not visible" sh -c "! printf '%s' \"$out\" | grep -qx root"
check "bounding set is Nomad's exec default" contains "$out" "CapBnd:	00000000a80405fb"
"$NOMCLIENT" job stop ex >/dev/null
complete() { curl -s "$ADDR/v1/allocation/$id" | grep -q '"ClientStatus":"complete"'; }
check "stop completes the allocation" wait_for 5 complete
check "no mount left under data_dir" sh -c "! grep -q '$data' /proc/self/mountinfo"
check "task cgroup removed" sh -c "! ls -d /sys/fs/cgroup/*/nomclient/$id.t /sys/fs/cgroup/nomclient/$id.t 2>/dev/null | grep -q ."
# a read-only volume refuses writes; a read-write one keeps its data across
# a restart of the allocation's task (restart policy after a crash)
mkdir -p "$hv/rw"
cat >"$TMP/vols.nomad" <<'JOB'
job "vols" {
  group "g" {
    restart {
      attempts = 2
      interval = "1m"
      delay    = "1s"
      mode     = "fail"
    }
    volume "rw" {
      type   = "host"
      source = "hv"
    }
    volume "ro" {
      type      = "host"
      source    = "ro"
      read_only = true
    }
    task "t" {
      driver = "exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "n=$(cat /data/rw/count 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/rw/count; echo run $n; echo x > /ro/x 2>&1 || echo write refused; echo y > /rw-ro/y 2>&1 || echo write refused too; [ $n -ge 2 ] || exit 1; exec sleep 300"]
      }
      volume_mount {
        volume      = "rw"
        destination = "/data"
      }
      volume_mount {
        volume      = "ro"
        destination = "/ro"
      }
      volume_mount {
        volume      = "rw"
        destination = "/rw-ro"
        read_only   = true
      }
      kill_timeout = "1s"
    }
  }
}
JOB
"$NOMCLIENT" job run "$TMP/vols.nomad" >/dev/null
vid=$(curl -s "$ADDR/v1/job/vols/allocations" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["ID"])')
second_run() { [ "$(cat "$hv/rw/count" 2>/dev/null)" = 2 ]; }
check "read-write volume data survives the task's restart (count 2)" wait_for 10 second_run
sleep 0.3
out=$("$NOMCLIENT" alloc logs "$vid" 2>&1)
check "both runs logged" sh -c "printf '%s' \"$out\" | grep -qx 'run 1' && printf '%s' \"$out\" | grep -qx 'run 2'"
err_out=$("$NOMCLIENT" alloc logs -stderr "$vid" 2>&1)
check "read-only volume rejects writes (EROFS)" contains "$err_out" "cannot create /ro/x: Read-only file system"
check "nothing written to the read-only volume's source" [ ! -e "$ro/x" ]
check "a read_only volume_mount of a read-write volume rejects writes too" sh -c "printf '%s' \"$out\" | grep -qx 'write refused too' && [ ! -e '$hv/y' ]"
restarts=$(curl -s "$ADDR/v1/allocation/$vid" | python3 -c 'import json,sys; a=json.load(sys.stdin); print(a["TaskStates"]["t"]["Restarts"], a["ClientStatus"])')
check "task restarted once per policy and runs ($restarts)" [ "$restarts" = "1 running" ]
"$NOMCLIENT" job stop vols >/dev/null
vdone() { curl -s "$ADDR/v1/allocation/$vid" | grep -q '"ClientStatus":"complete"'; }
wait_for 5 vdone

# capabilities as configured: cap_add within allow_caps, cap_drop; a
# cap_add beyond allow_caps refused with Nomad's driver error
cat >"$TMP/caps.nomad" <<'JOB'
job "caps" {
  group "ok" {
    task "t" {
      driver = "exec"
      config {
        command  = "/bin/sh"
        args     = ["-c", "grep CapBnd /proc/self/status; exec sleep 300"]
        cap_add  = ["net_raw"]
        cap_drop = ["chown"]
      }
      kill_timeout = "1s"
    }
  }
  group "denied" {
    task "t" {
      driver = "exec"
      config {
        command = "/bin/sleep"
        args    = ["300"]
        cap_add = ["sys_admin", "NET_RAW"]
      }
    }
  }
}
JOB
"$NOMCLIENT" job run "$TMP/caps.nomad" >/dev/null
caps_alloc() { curl -s "$ADDR/v1/job/caps/allocations" | python3 -c "import json,sys; a=[x for x in json.load(sys.stdin) if x['TaskGroup']=='$1']; print(a[0]['$2'] if a else '')"; }
caps_logged() { "$NOMCLIENT" alloc logs "$(caps_alloc ok ID)" 2>/dev/null | grep -q CapBnd; }
wait_for 10 caps_logged
out=$("$NOMCLIENT" alloc logs "$(caps_alloc ok ID)")
check "cap_add net_raw and cap_drop chown in the bounding set" contains "$out" "CapBnd:	00000000a80425fa"
denied_failed() { [ "$(caps_alloc denied ClientStatus)" = failed ]; }
check "a cap_add beyond allow_caps fails the task" wait_for 10 denied_failed
out=$(curl -s "$ADDR/v1/allocation/$(caps_alloc denied ID)")
check "with Nomad's driver error naming what is not allowed" contains "$out" '"Type":"Driver Failure"'
check "  (sys_admin, not net_raw)" contains "$out" "driver does not allow the following capabilities: sys_admin"
"$NOMCLIENT" job stop caps >/dev/null
caps_done() { [ "$(caps_alloc ok ClientStatus)" = complete ]; }
wait_for 5 caps_done

# leftovers: a supervisor and a cgroup of an allocation the agent never had
fake=00000000-dead-4bad-8bad-000000000000
mkdir -p "$data/alloc/$fake/.nomclient" "$data/alloc/$fake/t" "$data/alloc/$fake/alloc/logs"
cat >"$data/alloc/$fake/.nomclient/t.spec.json" <<JSON
{"AllocID": "$fake", "Task": "t", "Command": "/bin/sleep", "Args": ["300"],
 "TaskDir": "$data/alloc/$fake/t", "StatusFile": "$data/alloc/$fake/.nomclient/t.status.json",
 "LogDir": "$data/alloc/$fake/alloc/logs", "Chroot": false, "Cgroup": "$fake.t"}
JSON
"$NOMCLIENT" supervise "$data/alloc/$fake/.nomclient/t.spec.json" &
cleanup_add "kill -9 $! 2>/dev/null; rmdir /sys/fs/cgroup/*/nomclient/$fake.t /sys/fs/cgroup/nomclient/$fake.t 2>/dev/null"
has_cg() { ls -d /sys/fs/cgroup/*/nomclient/$fake.t /sys/fs/cgroup/nomclient/$fake.t 2>/dev/null | grep -q .; }
wait_for 5 has_cg
out=$("$NOMCLIENT" leftovers)
check "leftovers lists a stray supervisor" contains "$out" "Supervisors  pid"
check "leftovers lists a stray cgroup" contains "$out" "Cgroups      $fake.t"
"$NOMCLIENT" leftovers -clean >/dev/null
no_cg() { ! has_cg; }
check "leftovers -clean removes the cgroup" wait_for 5 no_cg
out=$("$NOMCLIENT" leftovers)
check "nothing left after -clean" contains "$out" "Nothing left behind"

stop_agent
finish
