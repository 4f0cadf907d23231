# Shared helpers for integration tests: the real binary against real
# sockets and files. Every test script sources this, calls `cleanup_add`
# for what it creates, and reports with pass/fail; cleanup runs on any exit.
NOMCLIENT=${NOMCLIENT:-$(pwd)/nomclient}
# tests/data/jobs holds copies of ../shared/examples/seed (plus more jobs),
# so a clone anywhere can run the tests.
SEED=${SEED:-$(pwd)/tests/data/jobs}
TMP=$(mktemp -d /tmp/nomclient-it.XXXXXX)
CLEANUP=""
PASSES=0
FAILS=0

cleanup_add() { CLEANUP="$1; $CLEANUP"; }
run_cleanup() {
    [ -n "$KEEP_TMP" ] && return
    eval "$CLEANUP" >/dev/null 2>&1
    rm -rf "$TMP"
}
trap run_cleanup EXIT
trap 'exit 130' INT TERM

pass() { echo "PASS: $1"; PASSES=$((PASSES + 1)); }
fail() { echo "FAIL: $1"; [ -n "$2" ] && printf '%s\n' "$2" | sed 's/^/    /'; FAILS=$((FAILS + 1)); }

# check NAME CONDITION-COMMAND...: pass when the command succeeds
check() {
    name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}

contains() { printf '%s' "$1" | grep -q -F -- "$2"; }

# wait_for SECONDS COMMAND...: polls the command every 50 ms until it
# succeeds (0) or the time is up (1)
wait_for() {
    n=$(( $1 * 20 )); shift
    while [ $n -gt 0 ]; do "$@" && return 0; sleep 0.05; n=$((n - 1)); done
    return 1
}

# bridge_test BRIDGE SUBNET: for tests that run bridge-mode allocations.
# Skips the script unless root with the CNI plugins; sets BR, SUBNET and
# PREFIX (the subnet's first three octets and a dot); and on exit kills the
# supervisors this test's agents started (by the pid in their lock files),
# runs `leftovers -clean`, removes the bridge and its NOMAD-ADMIN rule, and
# puts host-local's lease dir back as it was.
bridge_test() {
    if [ "$(id -u)" != 0 ] || [ ! -x /usr/lib/cni/bridge ]; then
        echo "# skipped: needs root and the CNI plugins in /usr/lib/cni"
        finish
        exit 0
    fi
    BR=$1
    SUBNET=$2
    PREFIX=${SUBNET%.*}.
    iptables-save >"$TMP/ipt.before" 2>/dev/null
    # task cgroups another run left: not this test's to report
    ls /sys/fs/cgroup/nomclient /sys/fs/cgroup/*/nomclient 2>/dev/null |
        grep -E '^[0-9a-f-]{36}\.' | sort -u >"$TMP/cgroups.before"
    leases=/var/lib/cni/networks/nomad
    if [ ! -d "$leases" ]; then
        cleanup_add "rm -f $leases/lock $leases/last_reserved_ip.0; rmdir $leases 2>/dev/null; true"
    elif [ -f "$leases/last_reserved_ip.0" ]; then
        cp -p "$leases/last_reserved_ip.0" "$TMP/last_reserved_ip.0"
        cleanup_add "cp -p $TMP/last_reserved_ip.0 $leases/last_reserved_ip.0"
    else
        cleanup_add "rm -f $leases/last_reserved_ip.0"
    fi
    cleanup_add "for f in $TMP/*/alloc/*/.nomclient/*.lock; do p=\$(cat \"\$f\" 2>/dev/null); [ -n \"\$p\" ] && kill -9 \$p 2>/dev/null; done; true"
    cleanup_add "ip link del $BR 2>/dev/null; while iptables -D NOMAD-ADMIN -d $SUBNET -o $BR -j ACCEPT 2>/dev/null; do :; done; true"
    cleanup_add "[ -n \"\$AGENT_PID\" ] && kill -9 \$AGENT_PID 2>/dev/null; NOMCLIENT_ADDR=\$ADDR \"$NOMCLIENT\" leftovers -clean >/dev/null 2>&1; true"
}

# start_agent NAME [agent flags...]: starts `nomclient agent` with its log in
# $TMP/NAME.log, waits until the API answers, and sets ADDR and AGENT_PID.
start_agent() {
    name=$1
    shift
    log="$TMP/$name.log"
    : >"$log" # exists before the agent's redirection does: no sed race
    "$NOMCLIENT" agent -http-port 0 "$@" >"$log" 2>&1 &
    AGENT_PID=$!
    cleanup_add "kill -9 $AGENT_PID 2>/dev/null"
    i=0
    ADDR=""
    while [ $i -lt 200 ]; do
        ADDR=$(sed -n 's|.*API on \(http://[0-9.:]*\).*|\1|p' "$log" | head -n 1)
        [ -n "$ADDR" ] && break
        kill -0 "$AGENT_PID" 2>/dev/null || break
        sleep 0.05
        i=$((i + 1))
    done
    export NOMCLIENT_ADDR="$ADDR"
    [ -n "$ADDR" ]
}

# need_agent CHECK NAME [agent flags...]: start_agent, or fail CHECK with the
# agent's log and end the script (nothing after it can run without one)
need_agent() {
    what=$1
    shift
    start_agent "$@" && return 0
    fail "$what" "$(cat "$TMP/$1.log")"
    finish
    exit 1
}

# stop_agent: SIGTERM, and wait for a clean exit
stop_agent() {
    kill -TERM "$AGENT_PID" 2>/dev/null
    wait "$AGENT_PID"
}

finish() {
    echo "# $PASSES passed, $FAILS failed in $(basename "$0")"
    [ "$FAILS" -eq 0 ]
}

# portmap's jumps into CNI-HOSTPORT-DNAT (PREROUTING and OUTPUT), which
# parallel portmaps each append on a host without them unless the netns
# helper put them in place first
HOSTPORT_JUMP='-m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT'
# hostport_jumps HOOK: how many copies of the jump HOOK holds
hostport_jumps() { iptables-save -t nat | grep -c -- "^-A $1 $HOSTPORT_JUMP\$"; }
# hostport_jumps_remove: back to a host without the jumps (as after a boot),
# only when no port is mapped (nobody needs them meanwhile)
hostport_jumps_remove() {
    if ! iptables -w -t nat -S CNI-HOSTPORT-DNAT 2>/dev/null | grep -q '^-A'; then
        for hook in PREROUTING OUTPUT; do
            while iptables -w -t nat -D $hook $HOSTPORT_JUMP 2>/dev/null; do :; done
        done
    else
        echo "# CNI-HOSTPORT-DNAT is in use: its jumps stay, the race is not provoked"
    fi
}

# cni_chains_remove: the chains the CNI plugins share between containers
# (and the NOMAD-ADMIN rule of this test's bridge), removed when this test
# made them (bridge_test saved what was there before)
cni_chains_remove() {
    while iptables -D NOMAD-ADMIN -d "$SUBNET" -o "$BR" -j ACCEPT 2>/dev/null; do :; done
    for chain in CNI-FORWARD NOMAD-ADMIN CNI-HOSTPORT-DNAT CNI-HOSTPORT-SETMARK CNI-HOSTPORT-MASQ; do
        if ! grep -q ":$chain " "$TMP/ipt.before"; then
            for t in filter nat; do
                iptables -t $t -F $chain 2>/dev/null && iptables -t $t -S 2>/dev/null |
                    grep -- "-j $chain" | sed 's/^-A/-D/' | while read -r rule; do
                        eval iptables -t $t $rule 2>/dev/null; done
                iptables -t $t -X $chain 2>/dev/null
            done
        fi
    done
}

# bridge_agent_config FILE: an agent config for bridge_test's bridge and
# subnet, with raw_exec enabled
bridge_agent_config() {
    cat >"$1" <<EOF
client {
  bridge_network_name   = "$BR"
  bridge_network_subnet = "$SUBNET"
}
plugin "raw_exec" {
  config {
    enabled = true
  }
}
EOF
}

# leftovers_new: `nomclient leftovers` without the task cgroups that were
# there before bridge_test (another run's)
leftovers_new() {
    "$NOMCLIENT" leftovers | while IFS= read -r line; do
        case $line in
        "Cgroups      "*)
            grep -qxF "${line#Cgroups      }" "$TMP/cgroups.before" && continue ;;
        esac
        printf '%s\n' "$line"
    done
}

# --- a private Docker Engine for the docker driver's tests ---------------
# docker_daemon_start starts a dockerd of the test's own (its socket, data
# root, exec root, containerd namespaces and cgroup parent, all under one
# temp dir), so nothing here uses or disturbs /var/run/docker.sock or a
# dockerd that was already running. The Debian client /usr/bin/docker
# (20.10, API 1.41) is the one used, always with -H.
DOCKER_TESTS_DIR=$(pwd)/tests/docker
DOCKERD=${DOCKERD:-/usr/sbin/dockerd}
DOCKER_CLI=${DOCKER_CLI:-/usr/bin/docker}
# overlay2: measured with bench-docker here (ext4), 50 allocations' pause
# and task containers at once took 8.5-8.7 s with overlay2 and 10.6-16.5 s
# with vfs (which copies the image for each container); one allocation
# ~300 ms with either. It is also what users run. The start falls back to
# vfs where overlay2 does not work, unless DOCKER_STORAGE names a driver.
DOCKER_STORAGE_DEFAULT=overlay2
DOCKER_DIR=""
DOCKER_PID=""
DOCKER_BRIDGE=""
DOCKER_BRIDGE_CIDR=""

# docker_cli ARGS...: the Debian client against the private daemon
docker_cli() { "$DOCKER_CLI" -H "$DOCKER_HOST" "$@"; }

# docker_need: skips the script unless root with dockerd, the docker client,
# busybox-static and a C compiler (what the private daemon and its images need)
docker_need() {
    if [ "$(id -u)" != 0 ] || [ ! -x "$DOCKERD" ] || [ ! -x "$DOCKER_CLI" ] ||
        [ ! -x /bin/busybox ] || ! command -v cc >/dev/null; then
        echo "# skipped: needs root, docker.io ($DOCKERD, $DOCKER_CLI), busybox-static and cc"
        finish
        exit 0
    fi
}

# docker_daemon_bridge CIDR: before docker_daemon_start, gives the daemon a
# Linux bridge of its own (ncdk + its dir's suffix, CIDR its /24 gateway
# address, e.g. 172.31.77.1/24) as the default "bridge" network instead of
# none, with docker's userland proxy for published ports (no iptables), as
# host-mode `ports` need; the cleanup deletes it. Sets DOCKER_BRIDGE then.
docker_daemon_bridge() { DOCKER_BRIDGE_CIDR=$1; }

# docker_daemon_start [DOCKERD-FLAGS...]: starts the private dockerd (the
# first call makes its dir and registers its cleanup on exit; later calls,
# after docker_daemon_stop, start it again on the same socket and data
# root, with the same extra flags unless new ones are given; flags must not
# hold spaces). Waits up to 30 s for GET /_ping; exports DOCKER_DIR,
# DOCKER_SOCK and DOCKER_HOST; sets DOCKER_PID, DOCKER_NS (its containerd
# namespace) and DOCKER_STORAGE_USED. Returns 1 with the daemon's log on
# stderr when it does not answer.
docker_daemon_start() {
    if [ -n "$DOCKER_PID" ] && _docker_alive "$DOCKER_PID"; then
        echo "docker_daemon_start: already running (pid $DOCKER_PID)" >&2
        return 1
    fi
    if [ -z "$DOCKER_DIR" ]; then
        DOCKER_DIR=$(mktemp -d /tmp/ncdk.XXXXXX) || return 1
        cleanup_add docker_daemon_cleanup
        DOCKER_NS=nctest${DOCKER_DIR##*.}
        DOCKER_SOCK=$DOCKER_DIR/sock
        DOCKER_HOST=unix://$DOCKER_SOCK
        export DOCKER_DIR DOCKER_SOCK DOCKER_HOST
        # not /etc/docker/daemon.json: the host's settings stay out
        echo '{}' >"$DOCKER_DIR/daemon.json"
        DOCKER_FLAGS=""
        if [ -n "$DOCKER_BRIDGE_CIDR" ]; then
            DOCKER_BRIDGE=ncdk${DOCKER_DIR##*.}
            ip link add "$DOCKER_BRIDGE" type bridge &&
                ip addr add "$DOCKER_BRIDGE_CIDR" dev "$DOCKER_BRIDGE" &&
                ip link set "$DOCKER_BRIDGE" up || {
                echo "docker_daemon_start: cannot make bridge $DOCKER_BRIDGE ($DOCKER_BRIDGE_CIDR)" >&2
                return 1
            }
        fi
        DOCKER_STORAGE_USED=${DOCKER_STORAGE:-$DOCKER_STORAGE_DEFAULT}
    fi
    [ $# -gt 0 ] && DOCKER_FLAGS="$*"
    if ! _docker_daemon_launch && [ -z "$DOCKER_STORAGE" ] &&
        [ "$DOCKER_STORAGE_USED" != vfs ] && [ ! -d "$DOCKER_DIR/root/image" ]; then
        echo "# $DOCKER_STORAGE_USED does not work here, trying vfs" >&2
        tail -n 5 "$DOCKER_DIR/log" | sed 's/^/#   /' >&2
        docker_daemon_stop
        _docker_umount_all
        rm -rf --one-file-system "$DOCKER_DIR/root"
        DOCKER_STORAGE_USED=vfs
        _docker_daemon_launch
    fi
    _docker_alive "$DOCKER_PID" && docker_ping && return 0
    echo "docker_daemon_start: dockerd did not answer on $DOCKER_SOCK:" >&2
    tail -n 30 "$DOCKER_DIR/log" >&2
    docker_daemon_stop
    return 1
}

# one dockerd, waited for: 0 once /_ping answers, 1 if it exits or 30 s pass
_docker_daemon_launch() {
    echo "--- dockerd started $(date '+%H:%M:%S.%N') ---" >>"$DOCKER_DIR/log"
    if [ -n "$DOCKER_BRIDGE" ]; then
        _dk_net="--bridge $DOCKER_BRIDGE --userland-proxy=true"
    else
        _dk_net="--bridge none --userland-proxy=false"
    fi
    # shellcheck disable=SC2086 # _dk_net, DOCKER_FLAGS: one word per flag
    "$DOCKERD" --config-file "$DOCKER_DIR/daemon.json" \
        --host "$DOCKER_HOST" --data-root "$DOCKER_DIR/root" \
        --exec-root "$DOCKER_DIR/exec" --pidfile "$DOCKER_DIR/pid" \
        --containerd-namespace "$DOCKER_NS" \
        --containerd-plugins-namespace "${DOCKER_NS}p" \
        --cgroup-parent "/$DOCKER_NS" \
        $_dk_net --iptables=false --ip6tables=false --ip-masq=false \
        --storage-driver "$DOCKER_STORAGE_USED" \
        --exec-opt native.cgroupdriver=cgroupfs $DOCKER_FLAGS \
        </dev/null >>"$DOCKER_DIR/log" 2>&1 &
    DOCKER_PID=$!
    _dk_n=600
    while [ $_dk_n -gt 0 ]; do
        docker_ping && return 0
        _docker_alive "$DOCKER_PID" || return 1
        sleep 0.05
        _dk_n=$((_dk_n - 1))
    done
    return 1
}

# docker_ping: 0 when the private daemon answers GET /_ping with OK
docker_ping() {
    [ "$(curl -s -m 2 --unix-socket "$DOCKER_SOCK" http://d/_ping 2>/dev/null)" = OK ]
}

# _docker_alive PID: running and not a zombie (dockerd is this shell's
# child: it stays a zombie until waited for)
_docker_alive() {
    [ -r "/proc/$1/stat" ] && ! sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | grep -q '^Z'
}

# _docker_term PID SECONDS: SIGTERM, SIGKILL if still there after SECONDS
_docker_term() {
    kill -TERM "$1" 2>/dev/null || return 0
    _dk_n=$(($2 * 10))
    while [ $_dk_n -gt 0 ] && _docker_alive "$1"; do
        sleep 0.1
        _dk_n=$((_dk_n - 1))
    done
    _docker_alive "$1" && kill -KILL "$1" 2>/dev/null
    _dk_n=50
    while [ $_dk_n -gt 0 ] && _docker_alive "$1"; do
        sleep 0.1
        _dk_n=$((_dk_n - 1))
    done
}

# _docker_containerd_pids: the containerd this dockerd started (by its
# config path under DOCKER_DIR)
_docker_containerd_pids() {
    pgrep -f "^containerd --config $DOCKER_DIR/exec/containerd/" 2>/dev/null
}

# _docker_shim_pids: containerd shims of this daemon's namespace
_docker_shim_pids() {
    pgrep -f "^/usr/bin/containerd-shim[^ ]* -namespace $DOCKER_NS " 2>/dev/null
}

# _docker_proxy_pids: docker's userland proxies for this daemon's bridge
# (its children, or orphans of a killed one: by their container address)
_docker_proxy_pids() {
    [ -n "$DOCKER_BRIDGE" ] || return 0
    pgrep -f "^/usr/sbin/docker-proxy .*-container-ip ${DOCKER_BRIDGE_CIDR%.*}\\." 2>/dev/null
}

# docker_daemon_stop: stops the private dockerd (SIGTERM; SIGKILL after
# 15 s) and the containerd it started; keeps the data root and socket path
# for docker_daemon_start. Its containers stop with it (no live-restore
# unless given as a flag).
docker_daemon_stop() {
    if [ -n "$DOCKER_PID" ]; then
        _docker_term "$DOCKER_PID" 15
        wait "$DOCKER_PID" 2>/dev/null
        DOCKER_PID=""
    fi
    for _dk_p in $(_docker_containerd_pids); do _docker_term "$_dk_p" 5; done
    true
}

# docker_daemon_restart [DOCKERD-FLAGS...]: stop, then start on the same
# socket and data root (images and stopped containers stay)
docker_daemon_restart() {
    docker_daemon_stop
    docker_daemon_start "$@"
}

# _docker_umount_all: unmounts what is mounted under DOCKER_DIR, deepest
# first (container rootfs, shm, netns files, the data root's own bind)
_docker_umount_all() {
    _dk_r=0
    while [ $_dk_r -lt 5 ]; do
        _dk_m=$(docker_ours_mounts | sort -r)
        [ -z "$_dk_m" ] && return 0
        for _dk_t in $_dk_m; do
            umount "$_dk_t" 2>/dev/null || umount -l "$_dk_t" 2>/dev/null
        done
        _dk_r=$((_dk_r + 1))
    done
}

# docker_ours_mounts: mount points under DOCKER_DIR (one a line)
docker_ours_mounts() {
    [ -n "$DOCKER_DIR" ] || return 0
    awk -v d="$DOCKER_DIR" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo
}

# docker_ours_cgroups: the cgroups of this daemon's containers (under the
# cgroup parent /DOCKER_NS of every hierarchy)
docker_ours_cgroups() {
    [ -n "$DOCKER_NS" ] || return 0
    for _dk_c in /sys/fs/cgroup/"$DOCKER_NS" /sys/fs/cgroup/*/"$DOCKER_NS"; do
        [ -d "$_dk_c" ] && find "$_dk_c" -depth -type d
    done
}

# docker_ours_processes: what of this daemon still runs: "pid name" lines
# for its dockerd, its containerd, its shims and the processes in its
# containers' cgroups
docker_ours_processes() {
    {
        [ -n "$DOCKER_PID" ] && _docker_alive "$DOCKER_PID" && echo "$DOCKER_PID"
        pgrep -f "^$DOCKERD .*--data-root $DOCKER_DIR/root" 2>/dev/null
        _docker_containerd_pids
        _docker_shim_pids
        _docker_proxy_pids
        for _dk_c in $(docker_ours_cgroups); do cat "$_dk_c/cgroup.procs" 2>/dev/null; done
    } | sort -un | while read -r _dk_p; do
        [ -r "/proc/$_dk_p/comm" ] && echo "$_dk_p $(cat "/proc/$_dk_p/comm" 2>/dev/null)"
    done
}

# docker_daemon_leftovers: everything of the private daemon that remains
# (processes, mounts, cgroups, its dir), prefixed; empty after the cleanup
docker_daemon_leftovers() {
    docker_ours_processes | sed 's/^/process: /'
    docker_ours_mounts | sed 's/^/mount: /'
    docker_ours_cgroups | sed 's/^/cgroup: /'
    [ -n "$DOCKER_DIR" ] && [ -e "$DOCKER_DIR" ] && echo "dir: $DOCKER_DIR"
    [ -n "$DOCKER_BRIDGE" ] && ip link show "$DOCKER_BRIDGE" >/dev/null 2>&1 &&
        echo "bridge: $DOCKER_BRIDGE"
    true
}

# docker_daemon_cleanup: removes every container of the private daemon
# (so their mounts go), stops it, kills what of it remains (shims, container
# processes), unmounts what is left under its dir, removes its cgroups and
# the dir. Registered on exit by docker_daemon_start; safe to call twice.
docker_daemon_cleanup() {
    [ -n "$DOCKER_DIR" ] && [ -d "$DOCKER_DIR" ] || return 0
    if [ -n "$DOCKER_PID" ] && docker_ping; then
        _dk_ids=$(docker_cli ps -aq 2>/dev/null)
        [ -n "$_dk_ids" ] && docker_cli rm -f -v $_dk_ids >/dev/null 2>&1
    fi
    docker_daemon_stop
    for _dk_p in $(_docker_shim_pids) $(_docker_proxy_pids); do _docker_term "$_dk_p" 2; done
    for _dk_c in $(docker_ours_cgroups); do
        for _dk_p in $(cat "$_dk_c/cgroup.procs" 2>/dev/null); do kill -KILL "$_dk_p" 2>/dev/null; done
    done
    for _dk_c in $(docker_ours_cgroups); do rmdir "$_dk_c" 2>/dev/null; done
    _docker_umount_all
    rm -rf --one-file-system "$DOCKER_DIR"
    [ -n "$DOCKER_BRIDGE" ] && ip link del "$DOCKER_BRIDGE" 2>/dev/null
    # a dir still there (a mount that would not go) is kept for a look,
    # not descended into
    true
}

# docker_images: the offline images, built once into the private daemon:
# nctest/busybox:1 (busybox-static and its applets, /tmp, /etc/passwd and
# /etc/group with root and nobody; Cmd /bin/sh) and nctest/pause:1 (the
# static tests/docker/pause.c alone, Cmd /pause; built into
# $BUILD/docker/pause). 1 with a message on failure.
docker_images() {
    _dk_b=${BUILD:-build}
    case $_dk_b in /*) ;; *) _dk_b=$(pwd)/$_dk_b ;; esac
    mkdir -p "$_dk_b/docker" || return 1
    _dk_pause=$_dk_b/docker/pause
    if [ ! -x "$_dk_pause" ] || [ "$DOCKER_TESTS_DIR/pause.c" -nt "$_dk_pause" ]; then
        cc -static -Os -s -Wall -Wextra -Werror -o "$_dk_pause.$$" "$DOCKER_TESTS_DIR/pause.c" &&
            mv "$_dk_pause.$$" "$_dk_pause" || {
            echo "docker_images: cannot build $_dk_pause" >&2
            return 1
        }
    fi
    if readelf -l /bin/busybox 2>/dev/null | grep -q INTERP; then
        echo "docker_images: /bin/busybox is not static (install busybox-static)" >&2
        return 1
    fi
    _dk_env='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    if ! docker_cli image inspect nctest/busybox:1 >/dev/null 2>&1; then
        _dk_r=$DOCKER_DIR/img/busybox
        rm -rf "$_dk_r"
        mkdir -p "$_dk_r/bin" "$_dk_r/etc" "$_dk_r/tmp" "$_dk_r/root" || return 1
        chmod 1777 "$_dk_r/tmp"
        cp /bin/busybox "$_dk_r/bin/busybox" || return 1
        for _dk_a in sh sleep httpd nc wget cat echo ls id hostname ps kill env \
            printf true false mkdir dd head; do
            ln -s busybox "$_dk_r/bin/$_dk_a"
        done
        printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
            >"$_dk_r/etc/passwd"
        printf 'root:x:0:\nnogroup:x:65534:\n' >"$_dk_r/etc/group"
        tar --numeric-owner --owner=0 --group=0 -C "$_dk_r" -c . |
            docker_cli import --change "$_dk_env" --change 'CMD ["/bin/sh"]' - nctest/busybox:1 \
                >/dev/null || {
            echo "docker_images: docker import of nctest/busybox:1 failed" >&2
            return 1
        }
    fi
    if ! docker_cli image inspect nctest/pause:1 >/dev/null 2>&1; then
        _dk_r=$DOCKER_DIR/img/pause
        rm -rf "$_dk_r"
        mkdir -p "$_dk_r" && cp "$_dk_pause" "$_dk_r/pause" || return 1
        tar --numeric-owner --owner=0 --group=0 -C "$_dk_r" -c . |
            docker_cli import --change "$_dk_env" --change 'CMD ["/pause"]' - nctest/pause:1 \
                >/dev/null || {
            echo "docker_images: docker import of nctest/pause:1 failed" >&2
            return 1
        }
    fi
}

# docker_image_tar NAME OUT: `docker save` of image NAME into the tarball
# OUT (what the driver's `load` option reads)
docker_image_tar() { docker_cli save -o "$2" "$1"; }

# docker_api METHOD PATH [BODY]: one Engine API call (v1.41) on the private
# socket, BODY as JSON; prints the answer's body; 1 on an HTTP error (the
# body is still printed) or no answer
docker_api() {
    if [ $# -ge 3 ]; then
        curl -s -m 60 --fail-with-body --unix-socket "$DOCKER_SOCK" -X "$1" \
            -H 'Content-Type: application/json' --data-binary "$3" "http://d/v1.41$2"
    else
        curl -s -m 60 --fail-with-body --unix-socket "$DOCKER_SOCK" -X "$1" "http://d/v1.41$2"
    fi
}

# docker_ours_leftovers: containers (any state) the driver made: labelled
# com.hashicorp.nomad.alloc_id, or named nomad_init_* (the pause ones);
# "id name state alloc_id" lines, empty when none
docker_ours_leftovers() {
    {
        docker_cli ps -a --no-trunc --filter label=com.hashicorp.nomad.alloc_id \
            --format '{{.ID}} {{.Names}} {{.State}} {{.Label "com.hashicorp.nomad.alloc_id"}}'
        docker_cli ps -a --no-trunc --filter name=nomad_init_ \
            --format '{{.ID}} {{.Names}} {{.State}} {{.Label "com.hashicorp.nomad.alloc_id"}}'
    } | sort -u
}

# docker_agent_config FILE: appends the docker plugin's block for the
# private daemon (its endpoint, nctest/pause:1 as infra image, images kept)
# to the agent config FILE
docker_agent_config() {
    cat >>"$1" <<EOF
plugin "docker" {
  config {
    endpoint    = "unix://$DOCKER_SOCK"
    infra_image = "nctest/pause:1"
    gc {
      image = false
    }
  }
}
EOF
}
