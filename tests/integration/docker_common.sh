#!/bin/sh
# Sourced by the docker driver's tests (test_docker.sh, test_docker_*.sh);
# test_docker_daemon.sh tests the private daemon itself.
#
# dk_setup: skips the script unless root with docker.io, busybox-static and
# cc; starts a private dockerd with a bridge of its own (lib.sh's
# docker_daemon_start, docker_daemon_bridge), builds nctest/busybox:1 and
# nctest/pause:1 offline (docker_images), and sets DK (the docker CLI on
# it). Everything goes on exit (docker_daemon_cleanup).
# dk_agent_config FILE [EXTRA]: an agent config on that daemon.
# dk_alloc_id JOB: the job's first allocation id; dk_json PATH EXPR: a value
# of the agent's API by a python expression on `j`.

dk_setup() {
    docker_need
    # a bridge of the daemon's own, for host-mode published ports
    docker_daemon_bridge "172.31.$(($$ % 200 + 20)).1/24"
    if ! docker_daemon_start; then
        fail "a private docker daemon starts"
        finish
        exit 1
    fi
    if ! docker_images; then
        fail "the offline images are built"
        finish
        exit 1
    fi
    DK="$DOCKER_CLI -H $DOCKER_HOST"
}

# the same daemon away and back (its containers stop with it)
dk_daemon_stop() { docker_daemon_stop; }
dk_daemon_restart() { docker_daemon_start; }

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
