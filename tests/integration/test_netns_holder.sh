#!/bin/sh
# netns/ with a namespace another process holds (what docker's pause
# container is for a bridge group with docker tasks), against the real CNI
# plugins and kernel (root only). The holder here is `unshare -n sleep`:
# ADD with its pid mounts its namespace at /run/netns/<id> and runs the
# bridge chain in it (eth0 with the allocation's address, a mapped port
# reachable from the host), an ADD again reuses it, DEL removes the chain's
# rules, the veth and the mount and leaves the holder running; a holder
# that died before DEL, a kill -9 of the helper mid-ADD, the host's own
# namespace and a gone pid.
#
# Uses its own bridge (ncthold0), subnet (10.255.67.0/24) and network name
# (ncthold), and removes all it made even when it fails: holders,
# namespaces, veths, the bridge, leases, iptables rules and the shared CNI
# chains if they were not there before.
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
    echo "# not root: netns holder integration tests skipped"
    finish
    exit 0
fi

BENCH=${BENCH:-$(pwd)/${BUILD:-build}/bench/bench_netns}
make -s --no-print-directory "${BUILD:-build}/bench/bench_netns" >/dev/null 2>&1
if [ ! -x "$BENCH" ] || [ ! -x /usr/lib/cni/bridge ] || ! command -v unshare >/dev/null ||
    ! command -v nsenter >/dev/null; then
    fail "$BENCH, /usr/lib/cni plugins, unshare and nsenter are needed"
    finish
    exit 1
fi

BR=ncthold0
SUBNET=10.255.67.0/24
NET=ncthold
STATE=$TMP/state
ID=ncth$$
PORT=$((28900 + $$ % 700))
LEASES=/var/lib/cni/networks/$NET
OPTS="-helper $NOMCLIENT -bridge $BR -subnet $SUBNET -network $NET -state $STATE -timeout 20000"

ipt_lines() { iptables-save | grep -v '^#' | sed 's/ \[[0-9]*:[0-9]*\]$//'; }
ipt_lines >"$TMP/ipt.before"
ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort >"$TMP/links.before"
ip netns list | awk '{print $1}' | sort >"$TMP/netns.before"
. "$(dirname "$0")/../../netns/cni_teardown.sh"
cni_snapshot

# Shared CNI infrastructure the plugins create once and never remove.
SHARED_RE='^:(CNI-FORWARD|NOMAD-ADMIN|CNI-HOSTPORT-DNAT|CNI-HOSTPORT-MASQ|CNI-HOSTPORT-SETMARK) |^-A FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD$|^-A CNI-FORWARD -m comment --comment "CNI firewall plugin admin overrides" -j NOMAD-ADMIN$|^-A (PREROUTING|OUTPUT) -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT$|^-A POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ$|^-A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE$|^-A CNI-HOSTPORT-SETMARK -m comment --comment "CNI portfwd masquerade mark" -j MARK --set-xmark 0x2000/0x2000$|^-A NOMAD-ADMIN -d 10.255.67.0/24 -o ncthold0 -j ACCEPT$'

# iptables beyond the baseline and the shared chains: an allocation's
ipt_extra() {
    ipt_lines | grep -E '^(-A|:)' | grep -Ev "$SHARED_RE" | sort >"$TMP/ipt.now"
    grep -E '^(-A|:)' "$TMP/ipt.before" | sort >"$TMP/ipt.base"
    comm -13 "$TMP/ipt.base" "$TMP/ipt.now"
}

json() { python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    d = d.get(k) if isinstance(d, dict) else None
    if d is None: break
print("" if d is None else (json.dumps(d) if isinstance(d, (dict, list)) else d))' "$1" "$2"; }

# holder: a process in a network namespace of its own; prints its pid
holder() {
    unshare -n sleep 1000 >/dev/null 2>&1 &
    echo $! >>"$TMP/holders"
    p=$!
    i=0 # unshare execs sleep once the namespace is made
    while [ "$(readlink /proc/$p/exe 2>/dev/null)" != "$(readlink -f "$(command -v sleep)")" ] && [ $i -lt 100 ]; do
        i=$((i + 1)); sleep 0.02
    done
    echo $p
}

# request NAME PID [HOST:CONTAINER]...: $TMP/NAME.req.json, an ADD with
# HolderPid = PID
request() {
    n=$1 pid=$2
    shift 2
    "$BENCH" $OPTS request add "$ID-$n" "$@" |
        python3 -c 'import json,sys; r=json.load(sys.stdin); r["HolderPid"]=int(sys.argv[1]); print(json.dumps(r))' "$pid" >"$TMP/$n.req.json"
}
# add NAME PID [HOST:CONTAINER]...: that ADD run by a helper
add() {
    request "$@"
    "$NOMCLIENT" netns-helper "$TMP/$1.req.json" >"$TMP/$1.add.json" 2>"$TMP/$1.add.err"
}
del() { "$BENCH" $OPTS del "$ID-$1" >"$TMP/$1.del.json" 2>"$TMP/$1.del.err"; }

ALL="a b k x"
teardown_all() {
    for p in $(cat "$TMP/pids" "$TMP/holders" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    for n in $ALL; do
        if [ -e "$STATE/$ID-$n.json" ] || [ -e "/run/netns/$ID-$n" ] ||
            grep -rqs "$ID-$n" "$LEASES"; then
            "$BENCH" $OPTS del "$ID-$n" >/dev/null 2>&1
            ip netns del "$ID-$n" 2>/dev/null
        fi
    done
    cni_teardown "$BR" "$SUBNET" "$NET"
}
cleanup_add teardown_all

in_subnet() { case "$1" in 10.255.67.*) return 0 ;; esac; return 1; }
http_ok() { curl -s -m 3 -o /dev/null -w '%{http_code}' "$@" | grep -q '^200$'; }
ino() { stat -L -c %i "$1" 2>/dev/null; }
alive() { kill -0 "$1" 2>/dev/null && [ "$(ps -o stat= -p "$1" | cut -c1)" != Z ]; }
nothing_of() { # NAME: no namespace entry, veth, lease or state of it
    [ ! -e "/run/netns/$ID-$1" ] && [ -z "$(ip -o link show master $BR 2>/dev/null)" ] &&
        ! grep -rqs "$ID-$1" "$LEASES" && ! ls "$STATE" 2>/dev/null | grep -q "$ID-$1\\."
}

# ---- ADD on the holder's namespace -------------------------------------------

ha=$(holder)
add a "$ha" "$PORT:8080"
check "ADD with the holder's pid: ok" [ "$(json "$TMP/a.add.json" OK)" = True ]
[ "$(json "$TMP/a.add.json" OK)" = True ] || sed 's/^/    /' "$TMP/a.add.json" "$TMP/a.add.err"
ipa=$(json "$TMP/a.add.json" IP)
check "ADD: an IP in $SUBNET ($ipa)" in_subnet "$ipa"
check "ADD: /run/netns/$ID-a is the holder's namespace" \
    sh -c "[ -n '$(ino /proc/$ha/ns/net)' ] && [ '$(ino /run/netns/$ID-a)' = '$(ino /proc/$ha/ns/net)' ]"
check "ADD: the holder's eth0 has the allocation's IP (nsenter -t $ha -n)" \
    sh -c "nsenter -t $ha -n ip -4 -o addr show eth0 | grep -q ' $ipa/'"
check "ADD: the holder's lo is up" sh -c "nsenter -t $ha -n ip -o link show lo | grep -q ',UP'"
check "ADD: the state file records the holder's pid" \
    sh -c "grep -q '\"HolderPid\":$ha' $STATE/$ID-a.json && grep -q '\"Phase\":\"added\"' $STATE/$ID-a.json"

mkdir -p "$TMP/www" && echo hello >"$TMP/www/index.html"
(cd "$TMP/www" && exec nsenter -t "$ha" -n python3 -m http.server 8080 --bind 0.0.0.0) \
    >"$TMP/http.log" 2>&1 &
echo $! >>"$TMP/pids"
i=0
until nsenter -t "$ha" -n python3 -c "import socket; socket.create_connection(('127.0.0.1', 8080), 1)" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 100 ] && break; sleep 0.1
done
check "a server in the holder's namespace listens" [ $i -le 100 ]
check "host -> 127.0.0.1:$PORT (mapped into the holder's namespace)" http_ok "http://127.0.0.1:$PORT/"
check "host -> bridge IP 10.255.67.1:$PORT" http_ok "http://10.255.67.1:$PORT/"
check "host -> alloc IP $ipa:8080" http_ok "http://$ipa:8080/"

add a "$ha" "$PORT:8080"
check "ADD again with the same holder (a restarted agent): reused" [ "$(json "$TMP/a.add.json" Reused)" = True ]
add x "$ha" "$((PORT + 3)):8080"
check "another allocation with the same holder is refused" contains "$(json "$TMP/x.add.json" Error)" \
    "the network namespace of process $ha already has an interface eth0"
check "  and a's address and mapped port are untouched" \
    sh -c "nsenter -t $ha -n ip -4 -o addr show eth0 | grep -q ' $ipa/' && curl -s -m 3 -f -o /dev/null http://127.0.0.1:$PORT/"
check "  and nothing of x is made" sh -c "[ ! -e /run/netns/$ID-x ] && [ ! -e $STATE/$ID-x.json ]"

"$BENCH" $OPTS leftovers >"$TMP/left.json"
check "leftovers: the setup is found, with its holder's pid" \
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if any(s["AllocID"] == sys.argv[2] and s.get("HolderPid") == int(sys.argv[3]) for s in d["Setups"]) and "/run/netns/"+sys.argv[2] in d["Namespaces"] else 1)' "$TMP/left.json" "$ID-a" "$ha"

for p in $(cat "$TMP/pids"); do kill "$p" 2>/dev/null; done
: >"$TMP/pids"
del a
check "DEL: ok" [ "$(json "$TMP/a.del.json" Status)" = 0 ]
check "DEL: /run/netns entry, veth, lease and state gone" nothing_of a
extra=$(ipt_extra)
check "DEL: no iptables rule or chain of the chain left" [ -z "$extra" ]
[ -n "$extra" ] && echo "$extra" | sed 's/^/    left: /'
check "DEL: the holder still runs" alive "$ha"
check "DEL: the holder's namespace has no eth0 any more" sh -c "! nsenter -t $ha -n ip link show eth0 >/dev/null 2>&1"

# ---- a holder that dies between ADD and DEL ------------------------------------

hb=$(holder)
add b "$hb" "$((PORT + 1)):8080"
check "ADD b: ok" [ "$(json "$TMP/b.add.json" OK)" = True ]
kill -9 "$hb"
gone() { ! alive "$1"; }
check "holder of b gone" wait_for 5 gone "$hb"
check "b's namespace still mounted (the mount holds it)" sh -c "ip netns exec $ID-b ip -4 -o addr show eth0 | grep -q ' $(json "$TMP/b.add.json" IP)/'"
del b
check "DEL b after its holder died: ok" [ "$(json "$TMP/b.del.json" Status)" = 0 ]
check "DEL b: /run/netns entry, veth, lease and state gone" nothing_of b
extra=$(ipt_extra)
check "DEL b: no rule left" [ -z "$extra" ]
[ -n "$extra" ] && echo "$extra" | sed 's/^/    left: /'

# ---- kill -9 of the helper mid-ADD, then DEL ----------------------------------------

hk=$(holder)
request k "$hk" "$((PORT + 2)):8080"
"$NOMCLIENT" netns-helper "$TMP/k.req.json" >"$TMP/k.out" 2>&1 &
hp=$!
echo $hp >>"$TMP/pids"
lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
i=0 # killed once the bridge plugin's result is recorded (intent + 2 results)
while [ "$(lines "$STATE/$ID-k.json")" -lt 3 ] && [ $i -lt 400 ]; do
    i=$((i + 1)); sleep 0.01
done
kill -9 $hp 2>/dev/null
wait $hp 2>/dev/null
check "kill -9 mid-ADD: the journal holds a partial setup" \
    sh -c "[ \$(wc -l <$STATE/$ID-k.json) -ge 3 ] && grep -q '\"Phase\":\"adding\"' $STATE/$ID-k.json"
sleep 1 # the plugin that was running finishes on its own
del k
check "DEL after kill -9: ok" [ "$(json "$TMP/k.del.json" Status)" = 0 ]
check "DEL after kill -9: /run/netns entry, veth, lease and state gone" nothing_of k
extra=$(ipt_extra)
check "DEL after kill -9: no rule left" [ -z "$extra" ]
[ -n "$extra" ] && echo "$extra" | sed 's/^/    left: /'
check "DEL after kill -9: the holder still runs, without eth0" \
    sh -c "kill -0 $hk && ! nsenter -t $hk -n ip link show eth0 >/dev/null 2>&1"

# ---- refused holders ---------------------------------------------------------------

add x $$ "$((PORT + 3)):8080"
check "the host's namespace (pid $$) is refused" contains "$(json "$TMP/x.add.json" Error)" \
    "process $$ is in the host's network namespace"
check "  and nothing is made" nothing_of x
hx=$(holder)
kill -9 "$hx"
wait_for 5 gone "$hx"
add x "$hx" "$((PORT + 3)):8080"
msg=$(json "$TMP/x.add.json" Error)
check "a gone holder is refused with a clear message" contains "$msg" \
    "the process holding the network namespace (pid $hx) is gone"
echo "    message: $msg"
check "  and nothing is made" nothing_of x

# ---- everything removed, compared with the start -------------------------------------

teardown_all
ipt_lines | grep -E '^(-A|:)' | sort >"$TMP/ipt.after"
grep -E '^(-A|:)' "$TMP/ipt.before" | sort >"$TMP/ipt.base"
check "teardown: iptables rules and chains as before the test" cmp -s "$TMP/ipt.base" "$TMP/ipt.after"
diff "$TMP/ipt.base" "$TMP/ipt.after" | sed -n 's/^[<>]/    &/p'
ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort >"$TMP/links.after"
check "teardown: links as before (no veth, no $BR)" cmp -s "$TMP/links.before" "$TMP/links.after"
ip netns list | awk '{print $1}' | sort >"$TMP/netns.after"
check "teardown: network namespaces as before" cmp -s "$TMP/netns.before" "$TMP/netns.after"
finish
