#!/bin/sh
# The private Docker Engine the docker driver's tests run on (lib.sh's
# docker_* helpers): it starts on a socket and data root of its own, holds
# the offline images, runs a container through the Engine API (create,
# start, wait, logs, remove), publishes a port on its own bridge, keeps its images and containers across a
# restart, and once cleaned up leaves nothing: no dockerd, containerd or
# shim of its own, no mount, cgroup, bridge or dir, while the dockerds and network
# namespaces that were there before are untouched. Root only: skipped
# otherwise.
. "$(dirname "$0")/lib.sh"
docker_need

not() { ! "$@"; }
json() { # PYTHON-EXPR over the JSON on stdin (as x)
    python3 -c "import json,sys
x=json.load(sys.stdin)
print($1)" 2>/dev/null
}
dockerd_pids() { pgrep -x dockerd | sort -n; }
sock_state() { # what /var/run/docker.sock is: absent, or its inode and type
    if [ -e /var/run/docker.sock ] || [ -L /var/run/docker.sock ]; then
        stat -L -c '%i %F' /var/run/docker.sock 2>/dev/null
    else
        echo absent
    fi
}

dockerd_before=$(dockerd_pids)
netns_before=$(ip netns list 2>/dev/null | awk '{print $1}' | sort)
sock_before=$(sock_state)

# a bridge of its own for published ports, as host-mode tasks need
cidr=172.30.$(($$ % 250)).1/24
docker_daemon_bridge "$cidr"
if docker_daemon_start; then
    pass "a private dockerd answers GET /_ping on its own socket ($DOCKER_STORAGE_USED)"
else
    fail "a private dockerd answers GET /_ping on its own socket"
    finish
    exit 1
fi
pid1=$DOCKER_PID
own_socket() {
    [ "$DOCKER_HOST" = "unix://$DOCKER_SOCK" ] && [ -S "$DOCKER_SOCK" ] &&
        [ "${DOCKER_SOCK#"$DOCKER_DIR"/}" != "$DOCKER_SOCK" ] && [ "$DOCKER_SOCK" != /var/run/docker.sock ]
}
check "DOCKER_HOST is unix:// + DOCKER_SOCK, inside DOCKER_DIR ($DOCKER_SOCK)" own_socket
info=$(docker_api GET /info)
got=$(printf '%s' "$info" | json '" ".join((x["DockerRootDir"], x["Driver"], x["CgroupDriver"]))')
want="$DOCKER_DIR/root $DOCKER_STORAGE_USED cgroupfs"
if [ "$got" = "$want" ]; then
    pass "the daemon's root, storage driver and cgroup driver are the test's own"
else
    fail "the daemon's root, storage driver and cgroup driver are the test's own" "got $got, want $want"
fi
ver=$(docker_api GET /version | json 'x["ApiVersion"]')
check "the Engine serves API 1.41 ($ver)" [ "$ver" = 1.41 ]

if docker_images; then
    pass "the offline images build"
else
    fail "the offline images build"
fi
tags=$(docker_api GET /images/json | json '" ".join(sorted(t for i in x for t in i["RepoTags"] or []))')
check "nctest/busybox:1 and nctest/pause:1 are in the daemon ($tags)" \
    [ "$tags" = "nctest/busybox:1 nctest/pause:1" ]
cmd=$(docker_api GET /images/nctest/pause:1/json | json 'x["Config"]["Cmd"]')
check "the pause image runs /pause ($cmd)" [ "$cmd" = "['/pause']" ]

# a container through the Engine API alone, as the driver makes them
name=nctest-hi-$$
body='{"Image":"nctest/busybox:1","Cmd":["echo","hi"],"HostConfig":{"NetworkMode":"none"}}'
id=$(docker_api POST "/containers/create?name=$name" "$body" | json 'x["Id"]')
check "create answers an id" [ -n "$id" ]
check "start answers" docker_api POST "/containers/$id/start"
code=$(docker_api POST "/containers/$id/wait" | json 'x["StatusCode"]')
check "wait reports exit code 0 ($code)" [ "$code" = 0 ]
# the stream is multiplexed: an 8-byte header, then the line
logs=$(docker_api GET "/containers/$id/logs?stdout=1&stderr=1" | tail -c 3)
check "its logs hold its output" [ "$logs" = "hi" ]
docker_api DELETE "/containers/$id" >/dev/null
if docker_api GET "/containers/$id/json" >/dev/null 2>&1; then
    fail "after remove, inspect answers 404"
else
    pass "after remove, inspect answers 404"
fi

out=$(docker_cli run --rm --network none nctest/busybox:1 sh -c \
    'id nobody; for a in sleep httpd nc wget ps kill env printf mkdir dd head hostname; do
         [ -x /bin/$a ] || echo "missing $a"; done; [ -d /tmp ] && ls -ld /tmp' 2>&1)
case $out in
"uid=65534(nobody) gid=65534(nogroup)"*drwxrwxrwt*/tmp)
    case $out in *missing*) fail "busybox has its applets, nobody and /tmp" "$out" ;;
    *) pass "busybox has its applets, nobody and /tmp" ;; esac ;;
*) fail "busybox has its applets, nobody and /tmp" "$out" ;;
esac

# an allocation's shape: pause container, a task joining its namespace
docker_api POST "/containers/create?name=nctest-init-$$" \
    '{"Image":"nctest/pause:1","HostConfig":{"NetworkMode":"none"}}' >/dev/null
docker_api POST "/containers/nctest-init-$$/start" >/dev/null
docker_api POST "/containers/create?name=nctest-task-$$" \
    "{\"Image\":\"nctest/busybox:1\",\"Cmd\":[\"sleep\",\"3600\"],\"StopTimeout\":1,
      \"HostConfig\":{\"NetworkMode\":\"container:nctest-init-$$\"}}" >/dev/null
docker_api POST "/containers/nctest-task-$$/start" >/dev/null
pause_pid=$(docker_api GET "/containers/nctest-init-$$/json" | json 'x["State"]["Pid"]')
task_pid=$(docker_api GET "/containers/nctest-task-$$/json" | json 'x["State"]["Pid"]')
same_netns() { [ -n "$pause_pid" ] && [ "$(readlink /proc/"$pause_pid"/ns/net)" = "$(readlink /proc/"$task_pid"/ns/net)" ]; }
check "a task container joins the pause container's network namespace" same_netns
other_netns() { [ "$(readlink /proc/"$pause_pid"/ns/net)" != "$(readlink /proc/self/ns/net)" ]; }
check "which is not the host's" other_netns
# PID 1 ignores SIGTERM unless it handles it (busybox's sleep does not):
# pause must, or a stop waits the whole timeout
docker_api POST "/containers/nctest-task-$$/kill" >/dev/null
t0=$(date +%s%N)
docker_api POST "/containers/nctest-init-$$/stop?t=10" >/dev/null
t1=$(date +%s%N)
code=$(docker_api GET "/containers/nctest-init-$$/json" | json 'x["State"]["ExitCode"]')
ms=$(((t1 - t0) / 1000000))
quick_zero() { [ "$code" = 0 ] && [ "$ms" -lt 5000 ]; }
check "the pause container exits 0 on SIGTERM at once (exit $code, stopped in $ms ms)" quick_zero

# a published port, through the daemon's own bridge and userland proxy
gw=$(docker_cli network inspect bridge -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}' 2>/dev/null)
check "the daemon's bridge network is its own ($DOCKER_BRIDGE, gateway $gw)" [ "$gw" = "${cidr%/*}" ]
port=$((21000 + $$ % 8000))
docker_cli run -d --name "nctest-web-$$" -p "127.0.0.1:$port:8080" nctest/busybox:1 \
    sh -c 'echo hello >/tmp/index.html; exec httpd -f -p 8080 -h /tmp' >/dev/null
web_ok() { [ "$(curl -s -m 2 "http://127.0.0.1:$port/")" = hello ]; }
check "a container's published port answers on the host (127.0.0.1:$port)" wait_for 10 web_ok
docker_cli rm -f "nctest-web-$$" >/dev/null

docker_image_tar nctest/pause:1 "$TMP/pause.tar"
check "docker_image_tar writes docker save's tarball" sh -c "tar -tf '$TMP/pause.tar' | grep -qx manifest.json"

docker_api POST "/containers/create?name=nctest-ours-$$" \
    '{"Image":"nctest/busybox:1","Labels":{"com.hashicorp.nomad.alloc_id":"0b8e1a2c-0000-4000-8000-000000000001"}}' >/dev/null
docker_api POST "/containers/create?name=nomad_init_0b8e1a2c-0000-4000-8000-000000000002" \
    '{"Image":"nctest/pause:1"}' >/dev/null
left=$(docker_ours_leftovers)
n=$(printf '%s\n' "$left" | grep -c .)
check "docker_ours_leftovers lists a labelled and a nomad_init_ container ($n)" [ "$n" = 2 ]
docker_cli rm -f "nctest-ours-$$" "nomad_init_0b8e1a2c-0000-4000-8000-000000000002" >/dev/null
left=$(docker_ours_leftovers)
check "and nothing once they are removed" [ -z "$left" ]

docker_agent_config "$TMP/agent.hcl"
config_ok() {
    grep -q "endpoint *= \"unix://$DOCKER_SOCK\"" "$TMP/agent.hcl" &&
        grep -q 'infra_image *= "nctest/pause:1"' "$TMP/agent.hcl"
}
check "docker_agent_config names the private socket and the pause image" config_ok

# a restart keeps the data root: images and containers stay
docker_api POST "/containers/create?name=nctest-keep-$$" \
    '{"Image":"nctest/busybox:1","Cmd":["sleep","3600"],"StopTimeout":1,"HostConfig":{"NetworkMode":"none"}}' >/dev/null
docker_api POST "/containers/nctest-keep-$$/start" >/dev/null
t0=$(date +%s%N)
docker_daemon_stop
t1=$(date +%s%N)
check "a stopped daemon does not answer ($(((t1 - t0) / 1000000)) ms to stop)" not docker_ping
stopped_left=$(docker_ours_processes)
check "and none of its processes run" [ -z "$stopped_left" ]
if docker_daemon_restart && [ "$DOCKER_PID" != "$pid1" ]; then
    pass "it starts again on the same socket ($DOCKER_SOCK)"
else
    fail "it starts again on the same socket" "$(tail -n 20 "$DOCKER_DIR/log")"
fi
tags=$(docker_api GET /images/json | json '" ".join(sorted(t for i in x for t in i["RepoTags"] or []))')
check "its images are still there ($tags)" [ "$tags" = "nctest/busybox:1 nctest/pause:1" ]
state=$(docker_api GET "/containers/nctest-keep-$$/json" | json 'x["State"]["Status"]')
check "a container of before the restart is still there, exited ($state)" [ "$state" = exited ]
docker_api POST "/containers/nctest-keep-$$/start" >/dev/null
state=$(docker_api GET "/containers/nctest-keep-$$/json" | json 'x["State"]["Status"]')
check "and starts again ($state)" [ "$state" = running ]
netns_files=$(ls "$DOCKER_DIR/exec/netns" 2>/dev/null | grep -c .)
mounts=$(docker_ours_mounts | grep -c .)
holds_some() { [ "$mounts" -gt 0 ] && [ "$netns_files" -gt 0 ]; }
check "running, the daemon holds mounts under its dir ($mounts) and namespaces in its exec root ($netns_files)" holds_some

# the cleanup the exit trap runs, with a container still running
dir=$DOCKER_DIR
ns=$DOCKER_NS
docker_daemon_cleanup
left=$(docker_daemon_leftovers)
check "after the cleanup nothing of the daemon is left" [ -z "$left" ]
[ -n "$left" ] && printf '%s\n' "$left" | sed 's/^/    /'
ours=$(for p in $(dockerd_pids); do tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -F "$dir" >/dev/null && echo "$p"; done)
check "no dockerd of ours" [ -z "$ours" ]
gone=$(for p in $dockerd_before; do kill -0 "$p" 2>/dev/null || echo "$p"; done)
check "the dockerds that ran before still run ($(echo $dockerd_before | wc -w))" [ -z "$gone" ]
# another helper's dockerd may start meanwhile: not ours, not counted
extra=$(for p in $(dockerd_pids); do echo "$dockerd_before" | grep -qx "$p" || echo "$p"; done)
[ -n "$extra" ] && echo "# another dockerd started meanwhile (not ours):" $extra
count() { printf '%s\n' "$1" | grep -c .; }
check "the dockerd count is back to $(count "$dockerd_before")" \
    [ "$(count "$(dockerd_pids)")" = "$(($(count "$dockerd_before") + $(count "$extra")))" ]
shims=$(pgrep -f -- "-namespace $ns ")
check "no containerd-shim of our namespace" [ -z "$shims" ]
proxies=$(pgrep -f "docker-proxy .*-host-port $port ")
check "no docker-proxy of ours" [ -z "$proxies" ]
bridge_gone() { ! ip link show "$DOCKER_BRIDGE" >/dev/null 2>&1; }
check "its bridge is deleted" bridge_gone
mnt=$(grep -F "$dir" /proc/self/mountinfo)
check "no mount under the daemon's dir" [ -z "$mnt" ]
check "its dir is removed" [ ! -e "$dir" ]
cg=$(ls -d /sys/fs/cgroup/*/"$ns" /sys/fs/cgroup/"$ns" 2>/dev/null)
check "no cgroup of its containers" [ -z "$cg" ]
netns_after=$(ip netns list 2>/dev/null | awk '{print $1}' | sort)
lost=$(for n in $netns_before; do echo "$netns_after" | grep -qx "$n" || echo "$n"; done)
check "the named network namespaces from before are untouched" [ -z "$lost" ]
check "/var/run/docker.sock is as it was ($sock_before)" [ "$(sock_state)" = "$sock_before" ]
finish
