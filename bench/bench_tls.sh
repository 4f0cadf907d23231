#!/bin/sh
# bench-tls: the agent's API over HTTPS (tls.http with verify_https_client):
# idle RSS with TLS beside without (goal under 5 MB), start to serving
# HTTPS, and the round trip of `status -self`'s request (GET /v1/node/self)
# over one keep-alive TLS connection. Certificates are made here.
set -e
NOMCLIENT=${NOMCLIENT:-$(pwd)/nomclient}
T=$(mktemp -d /tmp/bench-tls.XXXXXX)
PIDS=""
trap 'for p in $PIDS; do kill -9 $p 2>/dev/null; done; rm -rf "$T"' EXIT
q() { "$@" >/dev/null 2>&1; }
q openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/ca.key" -out "$T/ca.pem" -days 2 -subj /CN=bench-ca
for n in server client; do
    q openssl req -new -newkey rsa:2048 -nodes -keyout "$T/$n.key" -out "$T/$n.csr" -subj "/CN=$n"
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$T/$n.ext"
    q openssl x509 -req -in "$T/$n.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial \
        -days 2 -extfile "$T/$n.ext" -out "$T/$n.pem"
done
cat >"$T/tls.hcl" <<HCL
tls {
  http = true
  ca_file = "$T/ca.pem"
  cert_file = "$T/server.pem"
  key_file = "$T/server.key"
  verify_https_client = true
}
HCL
: >"$T/empty.hcl"
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# start NAME CONFIG SCHEME -> PID in $PID, start-to-serving ms in $MS
start() {
    t0=$(date +%s%N)
    "$NOMCLIENT" agent -dev -data-dir "$T/$1" -http-port 0 -config "$2" >"$T/$1.log" 2>&1 &
    PID=$!
    PIDS="$PIDS $PID"
    addr=""
    while [ -z "$addr" ]; do
        addr=$(sed -n "s|.*API on \($3://[0-9.:]*\).*|\1|p" "$T/$1.log")
        kill -0 $PID || { cat "$T/$1.log"; exit 1; }
    done
    until curl -s -o /dev/null --cacert "$T/ca.pem" --cert "$T/client.pem" --key "$T/client.key" \
        "$addr/v1/agent/health"; do :; done
    MS=$(( ($(date +%s%N) - t0) / 1000000 ))
    ADDR=$addr
}
start plain "$T/empty.hcl" http
plain_ms=$MS; plain_pid=$PID
start tls "$T/tls.hcl" https
tls_ms=$MS; tls_pid=$PID; PORT=${ADDR##*:}
python3 - "$PORT" "$T" >"$T/rtt" <<'PY'
import socket, ssl, sys, time
port, t = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=t + "/ca.pem")
ctx.load_cert_chain(t + "/client.pem", t + "/client.key")
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1")
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
def get():
    s.sendall(b"GET /v1/node/self HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(body) < n:
        body += s.recv(65536)
lat = []
for i in range(1100):
    t0 = time.perf_counter(); get(); lat.append(time.perf_counter() - t0)
lat = sorted(lat[100:])
print("%.0f %.0f %.0f" % (lat[len(lat) // 2] * 1e6, lat[int(len(lat) * 0.99)] * 1e6, len(lat)))
PY
sleep 2 # idle: every start-up timer has fired
plain_rss=$(rss_kb $plain_pid); tls_rss=$(rss_kb $tls_pid)
read -r p50 p99 n <"$T/rtt"
echo "bench-tls (HTTPS with client certificates, TLS 1.3, RSA 2048)"
printf '  idle agent RSS, plain HTTP:            %6d kB\n' "$plain_rss"
printf '  idle agent RSS, TLS (after %s requests): %6d kB   (goal < 5120 kB)\n' "$n" "$tls_rss"
printf '  start to serving, plain HTTP:          %6d ms\n' "$plain_ms"
printf '  start to serving, HTTPS:               %6d ms\n' "$tls_ms"
printf '  GET /v1/node/self over HTTPS keep-alive: p50 %s us, p99 %s us (%s requests)\n' "$p50" "$p99" "$n"
