#!/bin/sh
# The check engine against real local servers (127.0.0.1 only), driven by
# bench_checks run: healthy, 429, 503, TCP accept/refused, and misbehaving
# targets (never answers, one byte per second, endless body, closes in the
# body or in the headers, redirect loop, self-signed and expired
# certificates). Asserts status, output wording and timing as a user would
# see them in /v1/agent/checks, and that memory stays flat.
. "$(dirname "$0")/lib.sh"

BUILD=${BUILD:-build}
DRIVER="$BUILD/bench/bench_checks"
HERE=$(dirname "$0")
SERVERS="$HERE/checks_servers.py"

if ! make --no-print-directory -s "$DRIVER" >"$TMP/build.log" 2>&1; then
    fail "build the check driver ($DRIVER)" "$(cat "$TMP/build.log")"
    finish
    exit 1
fi

# ---- certificates -----------------------------------------------------------
CERTS=""
if command -v openssl >/dev/null 2>&1; then
    (
        cd "$TMP" || exit 1
        openssl req -x509 -newkey rsa:2048 -nodes -keyout self.key \
            -out self.pem -days 2 -subj /CN=127.0.0.1 >/dev/null 2>&1 || exit 1
        mkdir ca && touch ca/index.txt && echo 01 >ca/serial
        cat >ca/ca.cnf <<'EOF'
[ ca ]
default_ca = c
[ c ]
dir = ./ca
database = ./ca/index.txt
new_certs_dir = ./ca
serial = ./ca/serial
default_md = sha256
policy = p
[ p ]
commonName = supplied
EOF
        openssl req -new -newkey rsa:2048 -nodes -keyout old.key -out old.csr \
            -subj /CN=127.0.0.1 >/dev/null 2>&1 &&
            openssl ca -batch -config ca/ca.cnf -selfsign -keyfile old.key \
                -in old.csr -out old.pem -startdate 20200101000000Z \
                -enddate 20200102000000Z >/dev/null 2>&1
    )
    if [ -s "$TMP/self.pem" ]; then
        CERTS="$TMP/self.pem $TMP/self.key"
        [ -s "$TMP/old.pem" ] && CERTS="$CERTS $TMP/old.pem $TMP/old.key"
    fi
fi
[ -z "$CERTS" ] && echo "# openssl not found: HTTPS certificate cases skipped"

# ---- servers ------------------------------------------------------------------
# shellcheck disable=SC2086
python3 "$SERVERS" serve "$TMP/ports" $CERTS >"$TMP/servers.log" 2>&1 &
SRV_PID=$!
cleanup_add "kill $SRV_PID 2>/dev/null"
i=0
while [ ! -s "$TMP/ports" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
port() { sed -n "s/^$1 //p" "$TMP/ports"; }
if [ -z "$(port ok)" ]; then
    fail "start the test servers" "$(cat "$TMP/servers.log")"
    finish
    exit 1
fi
# a port nobody listens on
REFUSED=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

A=127.0.0.1
chk() { echo "address=$A,interval=1s,timeout=1s,$1"; }
set -- \
    "$(chk "id=ok,port=$(port ok),path=/health")" \
    "$(chk "id=warn,port=$(port warn),path=/health")" \
    "$(chk "id=fail,port=$(port fail),path=/health")" \
    "$(chk "id=tcp-ok,type=tcp,port=$(port ok)")" \
    "$(chk "id=tcp-refused,type=tcp,port=$REFUSED")" \
    "$(chk "id=http-refused,port=$REFUSED,path=/")" \
    "$(chk "id=hang,port=$(port hang),path=/")" \
    "address=$A,interval=3s,timeout=2s,id=trickle,port=$(port trickle),path=/" \
    "address=$A,interval=1s,timeout=2s,id=endless,port=$(port endless),path=/" \
    "$(chk "id=midbody,port=$(port midbody),path=/")" \
    "$(chk "id=midhead,port=$(port midhead),path=/")" \
    "$(chk "id=loop,port=$(port loop),path=/loop")" \
    "$(chk "id=redirect,port=$(port redirect),path=/old")" \
    "$(chk "id=thresholds,port=$(port fail),path=/,initial=passing,failures_before_critical=3")" \
    "$(chk "id=restart,type=tcp,port=$REFUSED,restart_limit=2,restart_grace=0s")"
if [ -n "$(port tls)" ]; then
    set -- "$@" \
        "$(chk "id=tls-self,protocol=https,port=$(port tls),path=/")" \
        "$(chk "id=tls-skip,protocol=https,skip_verify=1,port=$(port tls),path=/")" \
        "address=$A,interval=1s,timeout=2s,id=tls-endless,protocol=https,skip_verify=1,port=$(port tlsendless),path=/"
fi
if [ -n "$(port expired)" ]; then
    set -- "$@" \
        "$(chk "id=tls-expired,protocol=https,port=$(port expired),path=/")" \
        "$(chk "id=tls-expired-skip,protocol=https,skip_verify=1,port=$(port expired),path=/")"
fi

R="$TMP/results.jsonl"
"$DRIVER" run -duration 9s -rss-every 1s "$@" >"$R" 2>"$TMP/driver.err"
rc=$?
check "the driver ran every check for 9s (exit $rc)" [ "$rc" -eq 0 ]

field() { python3 "$SERVERS" field "$R" "$@"; }
final() { python3 "$SERVERS" final "$R" "$@"; }
# ms_between ID LOW HIGH: the first result's latency in [LOW, HIGH) ms
ms_between() {
    l=$(field "$1" latency_ms)
    [ -n "$l" ] && awk -v l="$l" -v a="$2" -v b="$3" 'BEGIN { exit !(l >= a && l < b) }'
}
expect() { # NAME ID STATUS OUTPUT-SUBSTRING
    st=$(field "$2" status)
    out=$(field "$2" output)
    if [ "$st" = "$3" ] && contains "$out" "$4"; then
        pass "$1"
    else
        fail "$1" "status=$st output=$(printf '%s' "$out" | cut -c1-300)"
    fi
}

P=$(port ok)
expect "HTTP 200 is passing, with Consul's output" ok passing \
    "HTTP GET http://127.0.0.1:$P/health: 200 OK Output: healthy"
expect "HTTP 429 is warning" warn warning "429 Too Many Requests Output: slow down"
expect "HTTP 503 is critical, body in the output" fail critical \
    "HTTP GET http://127.0.0.1:$(port fail)/health: 503 Service Unavailable Output: down"
expect "TCP connect is passing" tcp-ok passing "TCP connect 127.0.0.1:$P: Success"
expect "TCP to a closed port is critical" tcp-refused critical \
    "dial tcp 127.0.0.1:$REFUSED: connect: connection refused"
expect "HTTP to a closed port is critical" http-refused critical "connection refused"

expect "a server that never answers times out (critical)" hang critical \
    "HTTP GET http://127.0.0.1:$(port hang)/: timeout after 1s"
check "... after its 1s timeout, not later than 1.2s" ms_between hang 950 1200
check "... counted as a timeout" [ "$(field hang timed_out)" = true ]

expect "one byte per second times out (critical)" trickle critical "timeout after 2s"
check "... at its 2s timeout" ms_between trickle 1950 2200

expect "an endless body is passing (status read, 4 KiB kept)" endless passing "200 OK Output: xxxx"
check "... decided without waiting for the timeout" ms_between endless 0 500
n=$(field endless output | tr -d '\n' | sed 's/.*Output: //' | wc -c)
check "... output body capped at 4096 bytes (got $n)" [ "$n" -eq 4096 ]

expect "a close inside the body keeps the status (as Consul)" midbody passing \
    "200 OK Output: partial"
expect "a close inside the headers is critical" midhead critical "unexpected EOF"
expect "a redirect loop ends critical" loop critical "stopped after 10 redirects"
check "... well within the timeout" ms_between loop 0 900
expect "a same-host redirect is followed" redirect passing "200 OK Output: moved fine"

# thresholds: initial passing, failures_before_critical = 3 on a 503
s1=$(field thresholds check_status 1)
s2=$(field thresholds check_status 2)
s3=$(field thresholds check_status 3)
check "failures_before_critical=3: passing, passing, then critical ($s1 $s2 $s3)" \
    [ "$s1" = passing ] && [ "$s2" = passing ] && [ "$s3" = critical ]
check "check_restart limit 2 asks for a restart" grep -q '"event":"restart","id":"restart"' "$R"

if [ -n "$(port tls)" ]; then
    expect "HTTPS with a self-signed certificate is critical" tls-self critical \
        "self-signed certificate"
    expect "HTTPS with tls_skip_verify is passing" tls-skip passing \
        "HTTP GET https://127.0.0.1:$(port tls)/: 200 OK Output: secure"
    # curl's write callback stops at 4 KiB: the 200 read stays passing
    expect "HTTPS with an endless body is passing" tls-endless passing "200 OK Output: xxxx"
    check "... decided without waiting for the timeout" ms_between tls-endless 0 1000
    n=$(field tls-endless output | tr -d '\n' | sed 's/.*Output: //' | wc -c)
    check "... output body capped at 4096 bytes (got $n)" [ "$n" -eq 4096 ]
fi
if [ -n "$(port expired)" ]; then
    # OpenSSL names the first problem it meets: self-signed, then expired
    expect "HTTPS with an expired certificate is critical" tls-expired critical \
        "SSL certificate problem: "
    expect "... and passing with tls_skip_verify" tls-expired-skip passing "200 OK Output: secure"
fi

# the live dump
st=$(final ok Status)
pr=$(final ok Counters Probes)
check "engine JSON: ok is passing after $pr probes" [ "$st" = passing ] && [ "${pr:-0}" -ge 7 ]
to=$(final hang Counters Timeouts)
# timeout == interval: every slot probes, none is skipped (9s, first <1s)
check "engine JSON: hang counted $to timeouts" [ "${to:-0}" -ge 7 ]
sk=$(final hang Counters Skipped)
check "engine JSON: hang skipped no probe ($sk)" [ "${sk:-1}" -eq 0 ]
hl=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e.get("event") == "final":
        print(len(e["checks"]["ok"]["History"]))' "$R")
check "engine JSON: History keeps the last results ($hl)" [ "${hl:-0}" -ge 7 ] && [ "${hl:-0}" -le 10 ]

# memory: flat while the endless, trickling and hanging targets run
rss=$(sed -n 's/.*"event":"rss","kb":\([0-9]*\).*/\1/p' "$R")
first=$(printf '%s\n' "$rss" | sed -n 3p)
last=$(printf '%s\n' "$rss" | tail -n 1)
check "RSS stays flat under misbehaving targets (${first} KB at 3s, ${last} KB at 9s)" \
    [ -n "$first" ] && [ -n "$last" ] && [ $((last - first)) -lt 1024 ]

# validation, as a user sees it
out=$("$DRIVER" run -duration 1s "address=$A,id=x,port=80,path=/,interval=100ms" 2>&1)
check "interval below 1s is refused with Nomad's wording" contains "$out" \
    "interval: minimum check interval is 1s (got 100ms)"
out=$("$DRIVER" run -duration 1s "address=db.internal,id=x,port=80,path=/" 2>&1)
check "a hostname is refused, naming the field" contains "$out" \
    'address: \"db.internal\" is not an IPv4 or IPv6 literal'

# without libcurl an HTTPS check is critical and says what to install
out=$(NOMCLIENT_LIBCURL=/nonexistent/libcurl.so.4 "$DRIVER" run -duration 1500ms \
    "address=$A,id=s,protocol=https,port=$(port ok),path=/" 2>&1)
check "an HTTPS check without libcurl is critical and names the package" \
    contains "$out" '"status":"critical","output":"HTTP GET https://127.0.0.1:'"$(port ok)"'/: HTTPS checks need libcurl (Debian package libcurl4): '

# the agent binary does not link libcurl (HTTPS loads it on first use)
if [ -x "$NOMCLIENT" ]; then
    if ldd "$NOMCLIENT" | grep -q libcurl; then
        fail "nomclient does not link libcurl" "$(ldd "$NOMCLIENT")"
    else
        pass "nomclient does not link libcurl"
    fi
fi

finish
