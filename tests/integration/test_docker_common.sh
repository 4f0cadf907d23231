#!/bin/sh
# Sourced by the docker driver's tests (test_docker.sh, test_docker_*.sh);
# run on its own it only checks that a private daemon starts and stops.
#
# dk_setup: skips the script unless root with dockerd and busybox-static;
# starts a private dockerd (lib.sh's docker_daemon_start when there is one,
# else its own: socket, data root, exec root and pid file under $TMP, its
# own bridge for mapped ports through the userland proxy, no iptables),
# imports nctest/busybox:1 and nctest/pause:1 offline, and sets DK (the
# docker CLI on it) and DOCKER_SOCK. Everything goes on exit.
# dk_agent_config FILE [EXTRA]: an agent config on that daemon.
# dk_alloc_id JOB: the job's first allocation id; dk_json PATH EXPR: a value
# of the agent's API by a python expression on `j`.

dk_setup() {
    if [ "$(id -u)" != 0 ] || ! command -v dockerd >/dev/null 2>&1 ||
        [ ! -x /bin/busybox ]; then
        echo "# skipped: needs root, dockerd and busybox-static"
        finish
        exit 0
    fi
    if command -v docker_daemon_start >/dev/null 2>&1 &&
        [ -z "$DK_OWN_DAEMON" ]; then
        docker_daemon_start || { fail "docker daemon starts"; finish; exit 1; }
        docker_images
        DK="/usr/bin/docker -H unix://$DOCKER_SOCK"
        return 0
    fi
    dkd=$TMP/dockerd
    mkdir -p "$dkd"
    # a bridge of its own (never docker0, never another run's)
    DK_BRIDGE=nctdk$(($$ % 10000))
    DK_NET=172.31.$(($$ % 200 + 20))
    ip link add "$DK_BRIDGE" type bridge 2>/dev/null &&
        ip addr add "$DK_NET.1/24" dev "$DK_BRIDGE" && ip link set "$DK_BRIDGE" up
    cleanup_add "ip link del $DK_BRIDGE 2>/dev/null"
    DOCKER_SOCK=$dkd/sock
    dockerd --host "unix://$DOCKER_SOCK" --data-root "$dkd/root" \
        --exec-root "$dkd/exec" --pidfile "$dkd/pid" --bridge "$DK_BRIDGE" \
        --iptables=false --ip6tables=false --ip-masq=false \
        --userland-proxy=true --storage-driver vfs \
        --containerd-namespace "nct$$" --containerd-plugins-namespace "nctp$$" \
        >"$dkd/log" 2>&1 &
    DK_PID=$!
    cleanup_add "dk_daemon_kill"
    DK="/usr/bin/docker -H unix://$DOCKER_SOCK"
    if ! wait_for 30 $DK version >/dev/null 2>&1; then
        fail "docker daemon starts" "$(tail -20 "$dkd/log")"
        finish
        exit 1
    fi
    root=$dkd/busybox
    mkdir -p "$root/bin" "$root/tmp" "$root/etc"
    cp /bin/busybox "$root/bin/"
    for a in $(/bin/busybox --list); do
        [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    tar -C "$root" -c . | $DK import - nctest/busybox:1 >/dev/null
    # the pause image: busybox's sleep would do, a static pause answers
    # TERM at once (tests/docker/pause.c when present)
    proot=$dkd/pause
    mkdir -p "$proot"
    if [ -f tests/docker/pause.c ] && cc -static -Os -s -o "$proot/pause" tests/docker/pause.c 2>/dev/null; then
        tar -C "$proot" -c . | $DK import --change 'CMD ["/pause"]' - nctest/pause:1 >/dev/null
    else
        $DK tag nctest/busybox:1 nctest/pause:1
        cat >"$proot/Dockerfile" <<EOF
FROM nctest/busybox:1
CMD ["/bin/sleep", "2147483647"]
EOF
        $DK build -q -t nctest/pause:1 "$proot" >/dev/null
    fi
}

# the daemon and whatever it left: containers, its dirs' mounts, the bridge
dk_daemon_kill() {
    if [ -n "$DK_PID" ] && kill -0 "$DK_PID" 2>/dev/null; then
        $DK ps -aq 2>/dev/null | xargs -r $DK rm -f >/dev/null 2>&1
        kill "$DK_PID"
        i=0
        while kill -0 "$DK_PID" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
        kill -9 "$DK_PID" 2>/dev/null
    fi
    grep " $TMP/dockerd" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    true
}

# dk_daemon_stop / dk_daemon_start: the same daemon away and back
dk_daemon_stop() {
    if command -v docker_daemon_stop >/dev/null 2>&1 && [ -z "$DK_PID" ]; then
        docker_daemon_stop
        return
    fi
    kill "$DK_PID"
    i=0
    while kill -0 "$DK_PID" 2>/dev/null && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
}
dk_daemon_restart() {
    if command -v docker_daemon_restart >/dev/null 2>&1 && [ -z "$DK_PID" ]; then
        docker_daemon_restart
        return
    fi
    dkd=$TMP/dockerd
    dockerd --host "unix://$DOCKER_SOCK" --data-root "$dkd/root" \
        --exec-root "$dkd/exec" --pidfile "$dkd/pid" --bridge "$DK_BRIDGE" \
        --iptables=false --ip6tables=false --ip-masq=false \
        --userland-proxy=true --storage-driver vfs \
        --containerd-namespace "nct$$" --containerd-plugins-namespace "nctp$$" \
        >>"$dkd/log" 2>&1 &
    DK_PID=$!
    wait_for 30 $DK version >/dev/null 2>&1
}

dk_agent_config() {
    cat >"$1" <<EOF
data_dir  = "$TMP/data"
bind_addr = "127.0.0.1"
plugin "docker" {
  config {
    endpoint    = "unix://$DOCKER_SOCK"
    infra_image = "nctest/pause:1"
    $2
  }
}
plugin "raw_exec" {
  config {
    enabled = true
  }
}
$3
EOF
}

# dk_json PATH EXPR: python's view of the agent's answer at PATH
dk_json() {
    curl -s "$ADDR$1" | python3 -c "import json,sys
j=json.load(sys.stdin)
print($2)" 2>/dev/null
}

dk_alloc_id() {
    dk_json "/v1/job/$1/allocations" "[a['ID'] for a in j][0]"
}

# dk_task_state ALLOC TASK: "running", "dead", ...
dk_task_state() {
    dk_json "/v1/allocation/$1" "j['TaskStates']['$2']['State']"
}

# dk_events ALLOC TASK: the task's events, "Type: message" per line
dk_events() {
    dk_json "/v1/allocation/$1" "'\n'.join(e['Type']+': '+(e.get('DisplayMessage') or e.get('Message') or '') for e in j['TaskStates']['$2']['Events'])"
}

# dk_ours: containers of ours on the daemon (labelled with an allocation)
dk_ours() {
    $DK ps -a --filter label=com.hashicorp.nomad.alloc_id --format '{{.Names}}'
}

if [ "$(basename "$0")" = test_docker_common.sh ]; then
    . "$(dirname "$0")/lib.sh"
    dk_setup
    check "a private docker daemon runs" $DK version
    check "busybox image imported" $DK image inspect nctest/busybox:1
    finish
fi
