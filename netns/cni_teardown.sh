# Shell helpers for the netns integration test and benchmark (sourced):
# snapshot what the CNI plugins share between allocations before a run,
# and remove what the run added once it is over. The plugins create these
# once and never remove them (nor does Nomad): the FORWARD jump to
# CNI-FORWARD, the admin chain, the CNI-HOSTPORT-* chains and their jumps,
# the bridge, ip_forward=1. Shared chains are only removed when they were
# absent before and no allocation (of anyone) has rules in them.

# cni_snapshot: remembers the state before the run
cni_snapshot() {
    cni_had_fwd=$(iptables-save -t filter 2>/dev/null | grep -c '^:CNI-FORWARD ')
    cni_had_dnat=$(iptables-save -t nat 2>/dev/null | grep -c '^:CNI-HOSTPORT-DNAT ')
    cni_had_dir=$([ -d /var/lib/cni ] && echo 1 || echo 0)
    cni_fwd=$(cat /proc/sys/net/ipv4/ip_forward)
}

# cni_teardown BRIDGE SUBNET NETWORK: removes the run's bridge, its admin
# rule and lease dir, and the shared chains and sysctl if the run made them
cni_teardown() {
    ip link del "$1" 2>/dev/null
    rm -rf "/var/lib/cni/networks/$3"
    iptables -w -D NOMAD-ADMIN -d "$2" -o "$1" -j ACCEPT 2>/dev/null
    if [ "$cni_had_dnat" = 0 ] &&
        ! iptables -w -t nat -S CNI-HOSTPORT-DNAT 2>/dev/null | grep -q '^-A'; then
        for hook in PREROUTING OUTPUT; do # every copy, or -X fails
            while iptables -w -t nat -D $hook -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT; do :; done
        done
        iptables -w -t nat -D POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ
        for c in CNI-HOSTPORT-DNAT CNI-HOSTPORT-MASQ CNI-HOSTPORT-SETMARK; do
            iptables -w -t nat -F $c
            iptables -w -t nat -X $c
        done
    fi 2>/dev/null
    if [ "$cni_had_fwd" = 0 ] &&
        [ "$(iptables -w -S CNI-FORWARD 2>/dev/null | grep -c '^-A')" -le 1 ] &&
        ! iptables -w -S NOMAD-ADMIN 2>/dev/null | grep -q '^-A'; then
        iptables -w -D FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD
        iptables -w -F CNI-FORWARD && iptables -w -X CNI-FORWARD
        iptables -w -F NOMAD-ADMIN && iptables -w -X NOMAD-ADMIN
    fi 2>/dev/null
    [ "$cni_had_dir" = 0 ] && rmdir /var/lib/cni/networks /var/lib/cni 2>/dev/null
    if [ "$cni_fwd" = 0 ] && ! ip -o link show type bridge | grep -q .; then
        echo 0 >/proc/sys/net/ipv4/ip_forward
    fi
    return 0
}
