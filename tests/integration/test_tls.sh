#!/bin/sh
# HTTPS on the agent's API with certificates made here by openssl: status
# -self over HTTPS, a wrong CA, an expired certificate, a name mismatch and
# a missing client certificate each refused with a clear CLI error, config
# errors naming the file, SIGHUP reload with a keep-alive connection open,
# limits.http_max_conns_per_client (429 on plain HTTP, closed on HTTPS),
# and a slowloris and a TLS handshake flood from 127.0.0.1 leaving a
# client on 127.0.0.2 served within 2 s per request.
. "$(dirname "$0")/lib.sh"

C="$TMP/certs"
mkdir -p "$C"
# ---- certificates ---------------------------------------------------------
mkca() { # NAME
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$C/$1.key" -out "$C/$1.pem" \
        -days 2 -subj "/CN=$1" >/dev/null 2>&1
    mkdir -p "$C/$1.db" && : >"$C/$1.db/index.txt" && echo 1000 >"$C/$1.db/serial"
    cat >"$C/$1.cnf" <<CNF
[ca]
default_ca = c
[c]
dir = $C/$1.db
database = $C/$1.db/index.txt
new_certs_dir = $C/$1.db
serial = $C/$1.db/serial
default_md = sha256
policy = p
copy_extensions = copy
unique_subject = no
[p]
commonName = supplied
CNF
}
mkleaf() { # CA NAME SAN EXTRA-CA-ARGS...
    ca=$1 n=$2 san=$3; shift 3
    openssl req -new -newkey rsa:2048 -nodes -keyout "$C/$n.key" -out "$C/$n.csr" \
        -subj "/CN=$n" -addext "subjectAltName=$san" >/dev/null 2>&1 &&
    openssl ca -batch -config "$C/$ca.cnf" -cert "$C/$ca.pem" -keyfile "$C/$ca.key" \
        -in "$C/$n.csr" -out "$C/$n.pem" -notext "$@" >/dev/null 2>&1
}
mkca ca && mkca otherca &&
mkleaf ca server "IP:127.0.0.1,DNS:localhost" -days 2 &&
mkleaf ca server2 "IP:127.0.0.1,DNS:localhost" -days 2 &&
mkleaf ca client "DNS:cli" -days 2 &&
mkleaf ca otherclient "DNS:other" -days 2 &&
mkleaf ca expired "IP:127.0.0.1,DNS:localhost" -startdate 20200101000000Z -enddate 20200102000000Z &&
mkleaf ca wrongname "DNS:elsewhere.example" -days 2
check "openssl made a CA, server, client, expired and wrong-name certificates" \
    test -s "$C/server.pem" -a -s "$C/client.pem" -a -s "$C/expired.pem" -a -s "$C/wrongname.pem"
cp "$C/server.pem" "$C/live.pem"
cp "$C/server.key" "$C/live.key"

# ---- config errors --------------------------------------------------------
cfg_error() { # NAME BODY -> the agent's output, which must fail
    printf '%s\n' "$2" >"$TMP/$1.hcl"
    if "$NOMCLIENT" agent -dev -data-dir "$TMP/$1.d" -http-port 0 -config "$TMP/$1.hcl" >"$TMP/$1.out" 2>&1; then
        echo "(agent started)"
    fi
    cat "$TMP/$1.out"
}
out=$(cfg_error bad1 'tls {
  http = true
  tls_min_version = "tls99"
}')
check "tls_min_version \"tls99\" refused with file:line" contains "$out" "bad1.hcl:3:"
check "  ... saying the version is unsupported" contains "$out" 'unsupported TLS version "tls99"'
out=$(cfg_error bad2 'tls {
  tls_cipher_suites = "TLS_RSA_WITH_AES_128_GCM_SHA256,TLS_NOPE"
}')
check "an unknown cipher suite refused with file:line and its name" contains "$out" 'bad2.hcl:2:'
check "  ... naming the suite" contains "$out" '"TLS_NOPE"'
out=$(cfg_error bad3 "tls {
  http = true
  cert_file = \"$C/nope.pem\"
  key_file = \"$C/server.key\"
}")
check "a missing cert_file refused naming its path" contains "$out" "tls.cert_file: \"$C/nope.pem\": No such file or directory"
out=$(cfg_error bad4 "tls {
  http = true
  cert_file = \"$C/server.pem\"
  key_file = \"$C/client.key\"
}")
check "a key that does not match the certificate refused" contains "$out" "key values mismatch"
out=$(cfg_error bad5 'limits {
  http_max_conns_per_client = -1
}')
check "a negative http_max_conns_per_client refused" contains "$out" "limits.http_max_conns_per_client: -1"

# ---- the HTTPS agent ------------------------------------------------------
LIMIT=40
cat >"$TMP/tls.hcl" <<HCL
tls {
  http = true
  ca_file = "$C/ca.pem"
  cert_file = "$C/live.pem"
  key_file = "$C/live.key"
  verify_https_client = true
  rpc = true
  verify_server_hostname = true
  tls_min_version = "tls12"
}
limits {
  http_max_conns_per_client = $LIMIT
  https_handshake_timeout = "2s"
}
HCL
log="$TMP/tls.log"
: >"$log"
"$NOMCLIENT" agent -dev -data-dir "$TMP/tlsdata" -http-port 0 -config "$TMP/tls.hcl" >"$log" 2>&1 &
AGENT_PID=$!
cleanup_add "kill -9 $AGENT_PID 2>/dev/null"
wait_for 10 grep -q "API on https://" "$log"
ADDR=$(sed -n 's|.*API on \(https://[0-9.:]*\).*|\1|p' "$log" | head -n 1)
if [ -z "$ADDR" ]; then
    fail "the agent serves HTTPS" "$(cat "$log")"
    finish
    exit 1
fi
pass "the agent serves HTTPS ($ADDR)"
PORT=${ADDR##*:}
export NOMCLIENT_ADDR="$ADDR"
TLSF="-ca-cert $C/ca.pem -client-cert $C/client.pem -client-key $C/client.key"

out=$("$NOMCLIENT" status -self $TLSF 2>&1)
check "status -self over HTTPS with -ca-cert -client-cert -client-key" contains "$out" "Status          = ready"
out=$(NOMCLIENT_ADDR= NOMAD_ADDR="$ADDR" NOMAD_CACERT="$C/ca.pem" NOMAD_CLIENT_CERT="$C/client.pem" \
    NOMAD_CLIENT_KEY="$C/client.key" "$NOMCLIENT" status -self 2>&1)
check "status -self over HTTPS with NOMAD_ADDR, NOMAD_CACERT, NOMAD_CLIENT_CERT/KEY" contains "$out" "Status          = ready"
out=$(NOMAD_SKIP_VERIFY=1 "$NOMCLIENT" status -self -client-cert "$C/client.pem" -client-key "$C/client.key" 2>&1)
check "NOMAD_SKIP_VERIFY=1 accepts the agent without its CA" contains "$out" "Status          = ready"

out=$("$NOMCLIENT" status -self -ca-cert "$C/otherca.pem" -client-cert "$C/client.pem" -client-key "$C/client.key" 2>&1)
check "a wrong CA is refused: certificate verify failed" contains "$out" "TLS handshake: certificate verify failed: "
out=$("$NOMCLIENT" status -self -client-cert "$C/client.pem" -client-key "$C/client.key" 2>&1)
check "no CA given: verify failed, with a hint to -ca-cert" contains "$out" "-ca-cert or NOMAD_CACERT"
out=$("$NOMCLIENT" status -self -ca-cert "$C/ca.pem" 2>&1)
check "a missing client certificate is refused with what to pass" contains "$out" "certificate required"
check "  ... and the flags to give" contains "$out" "-client-cert and -client-key"
out=$("$NOMCLIENT" status -self -ca-cert "$C/nothere.pem" 2>&1)
check "an unreadable CA file is named" contains "$out" "CA file \"$C/nothere.pem\": No such file or directory"
out=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v1/agent/health" 2>&1)
check "plain HTTP to the HTTPS port gets no answer" test "$out" = 000

# ---- SIGHUP reload with a keep-alive connection open ---------------------
python3 - "$PORT" "$C" >"$TMP/reload.out" 2>&1 <<'PY' &
import socket, ssl, sys, time, os
port, c = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=c + "/ca.pem")
ctx.load_cert_chain(c + "/client.pem", c + "/client.key")
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1")
def get():
    s.sendall(b"GET /v1/agent/health HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(body) < n:
        body += s.recv(4096)
    return head.split(b"\r\n")[0].decode()
print("first", get(), s.getpeercert()["subject"], flush=True)
open(c + "/ready", "w").close()
while not os.path.exists(c + "/reloaded"):
    time.sleep(0.05)
print("second", get(), flush=True)
PY
RPID=$!
cleanup_add "kill $RPID 2>/dev/null"
wait_for 10 test -e "$C/ready"
cp "$C/server2.pem" "$C/live.pem"
cp "$C/server2.key" "$C/live.key"
kill -HUP "$AGENT_PID"
wait_for 5 grep -q "reloaded the TLS certificates" "$log"
touch "$C/reloaded"
wait "$RPID"
out=$(cat "$TMP/reload.out")
check "keep-alive connection answered before the reload" contains "$out" "first HTTP/1.1 200 OK"
check "  ... and on the same connection after it" contains "$out" "second HTTP/1.1 200 OK"
subj=$(openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$C/ca.pem" -cert "$C/client.pem" \
    -key "$C/client.key" </dev/null 2>/dev/null | openssl x509 -noout -subject 2>/dev/null)
check "a new handshake after SIGHUP gets the new certificate (CN server2)" contains "$subj" "server2"
out=$("$NOMCLIENT" status -self $TLSF 2>&1)
check "status -self works after the reload" contains "$out" "Status          = ready"

cp "$C/expired.pem" "$C/live.pem"; cp "$C/expired.key" "$C/live.key"
kill -HUP "$AGENT_PID"
wait_for 5 sh -c "test \$(grep -c 'reloaded the TLS' '$log') -ge 2"
out=$("$NOMCLIENT" status -self $TLSF 2>&1)
check "an expired agent certificate is refused: certificate has expired" contains "$out" "certificate verify failed: certificate has expired"
cp "$C/wrongname.pem" "$C/live.pem"; cp "$C/wrongname.key" "$C/live.key"
kill -HUP "$AGENT_PID"
wait_for 5 sh -c "test \$(grep -c 'reloaded the TLS' '$log') -ge 3"
out=$("$NOMCLIENT" status -self $TLSF 2>&1)
check "a certificate for another name is refused: IP address mismatch" contains "$out" "certificate verify failed: IP address mismatch"
cp "$C/client.key" "$C/live.key" # a key that does not match: kept the old
kill -HUP "$AGENT_PID"
wait_for 5 grep -q "keeping the current certificates" "$log"
check "a broken reload keeps serving the previous certificate" contains "$(cat "$log")" "keeping the current certificates"
cp "$C/server.pem" "$C/live.pem"; cp "$C/server.key" "$C/live.key"
kill -HUP "$AGENT_PID"
wait_for 5 sh -c "test \$(grep -c 'reloaded the TLS' '$log') -ge 4"

# ---- limits and abuse -----------------------------------------------------
# normal: a client on 127.0.0.2, timed per request
normal() {
    curl -s -o /dev/null -w '%{http_code} %{time_total}\n' --interface 127.0.0.2 --max-time 5 \
        --cacert "$C/ca.pem" --cert "$C/client.pem" --key "$C/client.key" "$ADDR/v1/agent/self"
}
python3 - "$PORT" "$LIMIT" >"$TMP/limit.out" 2>&1 <<'PY'
import socket, sys, time
port, limit = int(sys.argv[1]), int(sys.argv[2])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(limit)]
time.sleep(0.3)
extra = socket.create_connection(("127.0.0.1", port))
extra.settimeout(1.5)
t = time.time()
try:
    d = extra.recv(100)
    print("extra closed" if d == b"" else "extra got data", round(time.time() - t, 2))
except socket.timeout:
    print("extra kept open")
PY
out=$(cat "$TMP/limit.out")
check "HTTPS: connection $((LIMIT + 1)) from one IP is closed at once" contains "$out" "extra closed"
check "  ... while another client IP is served" contains "$(normal)" "200 "

# slowloris: 150 connections from 127.0.0.1 dribbling a ClientHello's bytes
python3 - "$PORT" >"$TMP/slow.out" 2>&1 <<'PY' &
import socket, sys, time
port = int(sys.argv[1])
socks = []
for _ in range(150):
    try:
        s = socket.create_connection(("127.0.0.1", port)); s.setblocking(False); socks.append(s)
    except OSError:
        pass
end = time.time() + 4
while time.time() < end:
    for s in socks:
        try: s.send(b"\x16")
        except OSError: pass
    time.sleep(0.5)
PY
SPID=$!
cleanup_add "kill $SPID 2>/dev/null"
sleep 0.5
worst=0; bad=""
for i in 1 2 3 4 5; do
    r=$(normal); code=${r%% *}; t=${r#* }
    [ "$code" = 200 ] || bad="$bad $r"
    worst=$(echo "$worst $t" | awk '{print ($2 > $1) ? $2 : $1}')
done
wait "$SPID"
check "during a slowloris of 150 connections, 5 requests from 127.0.0.2 answer 200 (worst ${worst}s)" test -z "$bad"
check "  ... each within 2 s" awk "BEGIN{exit !($worst < 2)}"

# a flood of TLS handshakes (4 processes, 3 s, no client certificate)
cat >"$TMP/flood.py" <<'PY'
import socket, ssl, sys, time
port = int(sys.argv[1])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
n = 0; end = time.time() + 3
while time.time() < end:
    try:
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=2))
        s.close()
    except OSError:
        pass
    n += 1
print(n)
PY
fl=""
for i in 1 2 3 4; do python3 "$TMP/flood.py" "$PORT" >"$TMP/flood.$i" 2>&1 & fl="$fl $!"; done
cleanup_add "kill $fl 2>/dev/null"
sleep 0.5
worst=0; bad=""
for i in 1 2 3 4 5; do
    r=$(normal); code=${r%% *}; t=${r#* }
    [ "$code" = 200 ] || bad="$bad $r"
    worst=$(echo "$worst $t" | awk '{print ($2 > $1) ? $2 : $1}')
done
wait $fl
hs=$(cat "$TMP"/flood.* | awk '{s += $1} END {print s}')
check "during a flood of $hs TLS handshakes, 5 requests from 127.0.0.2 answer 200 (worst ${worst}s)" test -z "$bad"
check "  ... each within 2 s" awk "BEGIN{exit !($worst < 2)}"
check "the agent is still running" kill -0 "$AGENT_PID"

# ---- plain HTTP: Nomad's 429 past the limit -------------------------------
stop_agent
printf 'limits {\n  http_max_conns_per_client = 3\n}\n' >"$TMP/plain.hcl"
if start_agent plain -dev -data-dir "$TMP/plaindata" -config "$TMP/plain.hcl"; then
    P=${ADDR##*:}
    out=$(python3 - "$P" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
time.sleep(0.3)
x = socket.create_connection(("127.0.0.1", port)); x.settimeout(2)
print(x.recv(400).decode(errors="replace"))
PY
)
    check "plain HTTP: connection 4 from one IP gets Nomad's 429" contains "$out" "HTTP/1.1 429 Too Many Requests"
    check "  ... with Nomad's text" contains "$out" "Your IP is issuing too many concurrent connections"
    stop_agent
else
    fail "plain agent with limits starts" "$(cat "$TMP/plain.log")"
fi
finish
