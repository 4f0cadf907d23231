#!/bin/sh
# `make run`: a dev agent in the foreground with the demo job submitted.
# Ctrl-C stops the agent.
set -u
cd "$(dirname "$0")/.."
ADDR=${NOMCLIENT_ADDR:-http://127.0.0.1:4646}
port=${ADDR##*:}
./nomclient agent -dev -http-port "$port" &
agent=$!
# Ctrl-C reaches the agent too (same process group): just wait for it to
# stop its tasks and remove their namespaces; a TERM of our own is passed on
trap 'wait $agent' INT
trap 'kill -TERM $agent 2>/dev/null; wait $agent' TERM
export NOMCLIENT_ADDR="$ADDR"
i=0
until curl -sf "$ADDR/v1/agent/health" >/dev/null 2>&1; do
    if ! kill -0 $agent 2>/dev/null; then
        echo "the agent exited; see its log above" >&2
        exit 1
    fi
    i=$((i + 1))
    [ $i -gt 100 ] && { echo "the agent did not answer on $ADDR" >&2; kill $agent; exit 1; }
    sleep 0.1
done
echo
echo "==> nomclient job run contrib/jobs/demo.nomad"
./nomclient job run contrib/jobs/demo.nomad
if [ "$(id -u)" = 0 ]; then
    echo
    echo "==> nomclient job run contrib/jobs/demo-bridge.nomad"
    ./nomclient job run contrib/jobs/demo-bridge.nomad
fi
sleep 3
echo
echo "==> nomclient status -self"
./nomclient status -self
echo
echo
echo "==> nomclient checks"
./nomclient checks
echo
echo "The agent is running at $ADDR (try: ./nomclient job status demo,"
echo "./nomclient alloc logs -f <alloc>, ./nomclient services, curl $ADDR/v1/node/self)."
echo "Press Ctrl-C to stop it: the dev agent stops its tasks and removes their network namespaces."
wait $agent
