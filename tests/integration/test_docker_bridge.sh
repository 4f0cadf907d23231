#!/bin/sh
# Docker tasks in bridge-mode groups through the real agent, a private
# Docker daemon and the CNI plugins (root only): a group of two docker
# tasks and an exec task in one namespace, held by the pause container
# nomad_init_<alloc>, that reach each other on 127.0.0.1, answer on their
# mapped host ports, pass their HTTP check and are in the built-in
# catalog; then ten such allocations with the agent killed -9 while they
# start, which after a restart run each task once in one container; and
# after the jobs stop nothing of ours is left: containers, namespaces,
# veths, iptables rules, leases, mounts or cgroups.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/docker_common.sh"

bridge_test ncdkbr0 10.255.73.0/24
dk_setup
dk_agent_config "$TMP/agent.hcl" "" "client {
  bridge_network_name   = \"$BR\"
  bridge_network_subnet = \"$SUBNET\"
}"
data=$TMP/data

ours_left() { # what of ours the host still holds, for allocations matching $1
    $DK ps -a --filter label=com.hashicorp.nomad.alloc_id --format 'container: {{.Names}}' 2>/dev/null
    ip netns list 2>/dev/null | grep -E "$1" | sed 's/^/netns: /'
    ip -o link show master "$BR" 2>/dev/null | sed 's/^/veth: /'
    iptables-save 2>/dev/null | grep -F -e "$PREFIX" | grep -v -- "-A NOMAD-ADMIN -d $SUBNET -o $BR -j ACCEPT" |
        sed 's/^/iptables: /'
    iptables-save 2>/dev/null | grep -E "$1" | sed 's/^/iptables: /'
    ls /var/lib/cni/networks/nomad 2>/dev/null | grep -F "$PREFIX" | sed 's/^/ipam: /'
    findmnt -rn -o TARGET 2>/dev/null | grep -F -e "$data" -e "/run/netns/" |
        grep -E "$1|$data" | sed 's/^/mount: /'
    find /sys/fs/cgroup -maxdepth 3 -path '*nomclient/*' 2>/dev/null |
        grep -E "$1" | sed 's/^/cgroup: /'
}

need_agent "agent starts" a1 -config "$TMP/agent.hcl"

cat >"$TMP/grp.nomad" <<'JOB'
job "grp" {
  group "g" {
    network {
      mode = "bridge"
      port "web" {
        to = 8080
      }
      port "api" {
        to = 9090
      }
    }
    service {
      name = "dkweb"
      port = "web"
      check {
        type     = "http"
        path     = "/index.html"
        interval = "1s"
        timeout  = "1s"
      }
    }
    task "web" {
      driver = "docker"
      config {
        image   = "nctest/busybox:1"
        command = "/bin/sh"
        args    = ["-c", "echo web > /local/index.html; httpd -p 8080 -h /local; while :; do wget -q -O /alloc/web-saw-exec http://127.0.0.1:7070/index.html; sleep 0.3; done"]
      }
      kill_timeout = "1s"
    }
    task "api" {
      driver = "docker"
      config {
        image   = "nctest/busybox:1"
        command = "/bin/sh"
        args    = ["-c", "echo api > /local/index.html; httpd -p 9090 -h /local; while :; do wget -q -O /alloc/api-saw-web http://127.0.0.1:8080/index.html; sleep 0.3; done"]
      }
      kill_timeout = "1s"
    }
    task "ex" {
      driver = "exec"
      config {
        command = "/bin/busybox"
        args    = ["sh", "-c", "echo ex > /local/index.html; /bin/busybox httpd -p 7070 -h /local; while :; do /bin/busybox wget -q -O /alloc/ex-saw-api http://127.0.0.1:9090/index.html; sleep 0.3; done"]
      }
      kill_timeout = "1s"
    }
  }
}
JOB
out=$("$NOMCLIENT" job run "$TMP/grp.nomad" 2>&1)
check "bridge job with docker tasks accepted" contains "$out" "registered"
G=$(dk_alloc_id grp)
up() { [ "$(dk_json "/v1/allocation/$G" "j['ClientStatus']")" = running ]; }
wait_for 60 up
check "allocation running" up
check "pause container nomad_init_<alloc> runs" [ "$($DK inspect -f '{{.State.Running}}' "nomad_init_$G" 2>/dev/null)" = true ]
pause=$($DK inspect -f '{{.Id}}' "nomad_init_$G" 2>/dev/null)
check "the pause container's network mode is none" [ "$($DK inspect -f '{{.HostConfig.NetworkMode}}' "nomad_init_$G")" = none ]
check "the docker tasks join it" [ "$($DK inspect -f '{{.HostConfig.NetworkMode}}' "web-$G")" = "container:$pause" ]
ppid=$($DK inspect -f '{{.State.Pid}}' "nomad_init_$G")
check "the allocation's namespace is the pause container's" [ "$(readlink /proc/$ppid/ns/net)" = "$(ip netns exec "$G" readlink /proc/self/ns/net 2>/dev/null)" ]
saw() { [ "$(cat "$data/alloc/$G/alloc/$1" 2>/dev/null)" = "$2" ]; }
wait_for 20 saw api-saw-web web
check "docker task reaches the other docker task on 127.0.0.1" saw api-saw-web web
wait_for 10 saw web-saw-exec ex
check "docker task reaches the exec task on 127.0.0.1" saw web-saw-exec ex
wait_for 10 saw ex-saw-api api
check "exec task reaches a docker task on 127.0.0.1" saw ex-saw-api api
wport=$(dk_json "/v1/allocation/$G" "[p['Value'] for p in j['AllocatedResources']['Shared']['Ports'] if p['Label']=='web'][0]")
aport=$(dk_json "/v1/allocation/$G" "[p['Value'] for p in j['AllocatedResources']['Shared']['Ports'] if p['Label']=='api'][0]")
wait_for 10 sh -c "curl -sf -m 2 http://127.0.0.1:$wport/index.html >/dev/null"
check "web on its mapped host port $wport" [ "$(curl -s -m 2 "http://127.0.0.1:$wport/index.html")" = web ]
check "api on its mapped host port $aport" [ "$(curl -s -m 2 "http://127.0.0.1:$aport/index.html")" = api ]
passing() { contains "$(curl -s "$ADDR/v1/client/allocation/$G/checks")" '"Status":"success"'; }
wait_for 15 passing
check "the HTTP check passes" passing
check "dkweb in the built-in catalog" contains "$(curl -s "$ADDR/v1/services")" '"dkweb"'
"$NOMCLIENT" job stop grp >/dev/null
gone() { [ -z "$(ours_left "$G")" ]; }
if wait_for 30 gone; then
    pass "after stop: no container, namespace, veth, rule, lease, mount or cgroup of ours"
else
    fail "after stop: no container, namespace, veth, rule, lease, mount or cgroup of ours" "$(ours_left "$G")"
fi

# ---- ten bridge allocations, the agent killed while they start ----------
cat >"$TMP/ten.nomad" <<'JOB'
job "bten" {
  group "g" {
    count = 10
    network {
      mode = "bridge"
      port "http" {
        to = 8080
      }
    }
    task "t" {
      driver = "docker"
      config {
        image   = "nctest/busybox:1"
        command = "/bin/sh"
        args    = ["-c", "echo started; exec httpd -f -p 8080 -h /local"]
      }
      kill_timeout = "1s"
    }
  }
}
JOB
since=$(date +%s)
"$NOMCLIENT" job run "$TMP/ten.nomad" >/dev/null 2>&1
# DK_KILL_AT=task: once task containers exist, else once pause ones do
what=nomad_init_
[ "$DK_KILL_AT" = task ] && what=t-
wait_for 30 sh -c "[ \$($DK ps -aq --filter name=$what | wc -l) -ge 1 ]"
kill -9 "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
echo "# killed with $($DK ps -aq --filter name=nomad_init_ | wc -l) pause and $($DK ps -aq --filter name=t- | wc -l) task container(s)"
need_agent "agent restarts" a2 -config "$TMP/agent.hcl"
running10() {
    [ "$(curl -s "$ADDR/v1/job/bten/allocations" | grep -o '"ClientStatus":"running"' | wc -l)" = 10 ]
}
wait_for 90 running10
check "ten bridge allocations running after the restart" running10
check "ten task containers ($($DK ps -q --filter name=t- | wc -l) running, $($DK ps -aq --filter name=t- | wc -l) in all)" \
    [ "$($DK ps -q --filter name=t- | wc -l)/$($DK ps -aq --filter name=t- | wc -l)" = 10/10 ]
check "ten pause containers" [ "$($DK ps -q --filter name=nomad_init_ | wc -l)" = 10 ]
sleep 1
$DK events --since "$since" --until "$(date +%s)" --filter type=container \
    --filter label=com.hashicorp.nomad.alloc_id --format '{{.Action}} {{.Actor.Attributes.name}}' \
    >"$TMP/events" 2>/dev/null
tcreates=$(grep -c '^create t-' "$TMP/events")
tstarts=$(grep -c '^start t-' "$TMP/events")
check "each task's container made and started once ($tcreates creates, $tstarts starts)" [ "$tcreates/$tstarts" = 10/10 ]
pcreates=$(grep -c '^create nomad_init_' "$TMP/events")
check "each pause container made once ($pcreates)" [ "$pcreates" = 10 ]
once=true
for a in $(dk_json /v1/job/bten/allocations "' '.join(x['ID'] for x in j)"); do
    [ "$("$NOMCLIENT" alloc logs "$a" t 2>/dev/null | grep -c started)" = 1 ] || once=false
done
check "each task ran once" $once
ok=0
for a in $(dk_json /v1/job/bten/allocations "' '.join(x['ID'] for x in j)"); do
    p=$(dk_json "/v1/allocation/$a" "j['AllocatedResources']['Shared']['Ports'][0]['Value']")
    curl -s -o /dev/null -m 2 "http://127.0.0.1:$p/" && ok=$((ok + 1))
done
check "all ten answer on their mapped ports ($ok)" [ "$ok" = 10 ]
ids=$(dk_json /v1/job/bten/allocations "'|'.join(x['ID'] for x in j)")
"$NOMCLIENT" job stop bten >/dev/null
gone10() { [ -z "$(ours_left "$ids")" ]; }
if wait_for 60 gone10; then
    pass "after stop: nothing of the ten left"
else
    fail "after stop: nothing of the ten left" "$(ours_left "$ids")"
fi
out=$(leftovers_new)
check "leftovers lists no container" sh -c "! printf '%s' \"\$1\" | grep -q '^Container'" _ "$out"
stop_agent
finish
