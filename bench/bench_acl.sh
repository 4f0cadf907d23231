#!/bin/sh
# Requests per second on one keep-alive connection (GET /v1/jobs), with
# ACLs off and with ACLs on and a client token checked on every request.
# Goal: within 5%. Usage: sh bench/bench_acl.sh  (after make nomclient)
set -e
NOMCLIENT=${NOMCLIENT:-$(pwd)/nomclient}
N=${N:-20000}
TMP=$(mktemp -d /tmp/nomclient-bench-acl.XXXXXX)
PID=""
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; rm -rf "$TMP"' EXIT

start() { # NAME [flags]
    log=$TMP/$1.log; shift
    "$NOMCLIENT" agent -dev -http-port 0 "$@" >"$log" 2>&1 &
    PID=$!
    i=0
    while [ $i -lt 200 ]; do
        ADDR=$(sed -n 's|.*API on http://\([0-9.:]*\).*|\1|p' "$log" | head -n 1)
        [ -n "$ADDR" ] && return 0
        sleep 0.05; i=$((i + 1))
    done
    echo "agent did not start" >&2; cat "$log" >&2; exit 1
}
stop() { kill $PID; wait $PID 2>/dev/null || true; PID=""; }

# N pipelined-free keep-alive GETs, best of 3 runs
rps() { # ADDR TOKEN
    python3 - "$1" "$2" "$N" <<'PY'
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
tok, n = sys.argv[2], int(sys.argv[3])
hdr = ("X-Nomad-Token: %s\r\n" % tok) if tok else ""
req = ("GET /v1/jobs HTTP/1.1\r\nHost: x\r\n%s\r\n" % hdr).encode()
best = 0
for _ in range(3):
    s = socket.create_connection((host, int(port)))
    f = s.makefile("rb")
    t = time.perf_counter()
    for _ in range(n):
        s.sendall(req)
        length = 0
        status = f.readline()
        if b" 200 " not in status:
            sys.exit("unexpected answer: %r" % status)
        while True:
            line = f.readline()
            if line in (b"\r\n", b""):
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        f.read(length)
    best = max(best, n / (time.perf_counter() - t))
    s.close()
print("%.0f" % best)
PY
}

start off -data-dir "$TMP/off"
rps "$ADDR" "" >/dev/null # warm-up: the agent finishes start-up work
off=$(rps "$ADDR" "")
stop

printf 'acl {\n  enabled = true\n}\n' >"$TMP/acl.hcl"
printf 'namespace "default" {\n  policy = "read"\n}\n' >"$TMP/read.hcl"
start on -data-dir "$TMP/on" -config "$TMP/acl.hcl"
export NOMCLIENT_ADDR="http://$ADDR"
mgmt=$("$NOMCLIENT" acl bootstrap | sed -n 's/^Secret ID *= *//p')
NOMAD_TOKEN=$mgmt "$NOMCLIENT" acl policy apply readonly "$TMP/read.hcl" >/dev/null
tok=$(NOMAD_TOKEN=$mgmt "$NOMCLIENT" acl token create -name bench -policy readonly |
    sed -n 's/^Secret ID *= *//p')
rps "$ADDR" "$tok" >/dev/null
on=$(rps "$ADDR" "$tok")
stop

echo "== ACL token check: GET /v1/jobs, one keep-alive connection, $N requests, best of 3"
printf '  acl disabled:              %8s req/s\n' "$off"
printf '  acl enabled, client token: %8s req/s\n' "$on"
python3 -c "import sys; o,a=float(sys.argv[1]),float(sys.argv[2]); d=(o-a)/o*100; print('  cost of the check: %.1f%% (goal: within 5%%) %s' % (d, 'ok' if d <= 5 else 'OVER'))" "$off" "$on"
