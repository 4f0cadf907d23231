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
