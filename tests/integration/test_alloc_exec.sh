#!/bin/sh
# `alloc exec` with the real agent (dev mode) in a raw_exec and an exec
# task, against Nomad 1.6's behaviour: output on stdout and stderr apart
# and the command's exit code (a signal's as 128+N); stdin through `cat`
# (1 MiB each way); -i=false; -t on a pseudo-terminal (the CLI run on
# one by python's pty) with its size passed on, "~." disconnecting and
# killing the command; -job; the CLI's and the agent's refusals in
# Nomad's words; the exec'd command inside the exec task's chroot, user
# and PID namespace; the websocket route itself (gorilla's handshake
# refusals, a cross-origin page refused, Nomad's frames, ping/pong,
# heartbeat, ws_handshake with the token in the first message); and a
# second agent with ACLs over HTTPS (alloc-exec, plus alloc-node-exec for
# raw_exec). The agent's loop keeps answering during a session.
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
    echo "# not root: alloc exec tests skipped (the exec driver needs root)"
    finish
    exit 0
fi
data=$TMP/data
# supervisors outlive the agent by design: kill this test's by their lock
cleanup_add "for f in $TMP/*/alloc/*/.nomclient/*.lock; do p=\$(cat \"\$f\" 2>/dev/null); [ -n \"\$p\" ] && kill -9 \$p 2>/dev/null; done; true"

# ---- helpers ----------------------------------------------------------
# ptyrun.py ROWS COLS KEYS CMD...: runs CMD on a pseudo-terminal of ROWS x
# COLS, types KEYS (a Python bytes literal, after 1 s; "" for none), and
# prints what the terminal showed, then "EXIT <code>"
cat >"$TMP/ptyrun.py" <<'PY'
import fcntl, os, pty, select, struct, sys, termios, time
rows, cols, keys, cmd = int(sys.argv[1]), int(sys.argv[2]), eval(sys.argv[3]), sys.argv[4:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
out, sent, t0 = b"", False, time.time()
while time.time() - t0 < 20:
    if keys and not sent and time.time() - t0 > 1.0:
        os.write(fd, keys)
        sent = True
    r, _, _ = select.select([fd], [], [], 0.05)
    if r:
        try:
            d = os.read(fd, 4096)
        except OSError:
            break
        if not d:
            break
        out += d
else:
    out += b"<TIMEOUT>"
    os.kill(pid, 9)
_, st = os.waitpid(pid, 0)
sys.stdout.write(out.decode("utf-8", "replace") + "\nEXIT %d\n" % os.waitstatus_to_exitcode(st))
PY
# ws.py URL [TOKEN] < script: a raw websocket client for the exec route;
# each line of the script is "send <json>", "ping", "raw <hex>", or
# "handshake <token>"; prints each message received ("text <json>",
# "pong", "close <code> <reason>") until the close
cat >"$TMP/ws.py" <<'PY'
import base64, json, os, socket, struct, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
s = socket.create_connection((u.hostname, u.port))
key = base64.b64encode(os.urandom(16)).decode()
extra = "".join(h + "\r\n" for h in sys.argv[2:])
s.sendall((("GET %s?%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n")
           % (u.path, u.query, u.netloc, key, extra)).encode())
buf = b""
while b"\r\n\r\n" not in buf:
    d = s.recv(4096)
    if not d:
        print("closed before the answer"); sys.exit(1)
    buf += d
head, buf = buf.split(b"\r\n\r\n", 1)
print(head.split(b"\r\n")[0].decode())
def frame(op, p):
    m = os.urandom(4)
    n = len(p)
    h = bytes([0x80 | op]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n))
    return h + m + bytes(b ^ m[i % 4] for i, b in enumerate(p))
for line in sys.stdin:
    cmd, _, arg = line.strip().partition(" ")
    if cmd == "send": s.sendall(frame(1, arg.encode()))
    elif cmd == "ping": s.sendall(frame(9, b"p"))
    elif cmd == "raw": s.sendall(bytes.fromhex(arg))
    elif cmd == "handshake": s.sendall(frame(1, json.dumps({"version": 1, "auth_token": arg}).encode()))
s.settimeout(10)
def need(n):
    global buf
    while len(buf) < n:
        d = s.recv(65536)
        if not d: raise EOFError
        buf += d
    r, buf = buf[:n], buf[n:]
    return r
try:
    while True:
        h = need(2)
        n = h[1] & 0x7f
        if n == 126: n = struct.unpack(">H", need(2))[0]
        elif n == 127: n = struct.unpack(">Q", need(8))[0]
        p = need(n)
        op = h[0] & 0xf
        if op == 1: print("text", p.decode())
        elif op == 10: print("pong")
        elif op == 8:
            code = struct.unpack(">H", p[:2])[0] if len(p) >= 2 else 1005
            print("close", code, p[2:].decode())
            s.sendall(frame(8, p[:2]))
            break
except (EOFError, socket.timeout) as e:
    print("ended:", type(e).__name__)
PY
# has NAME TEXT: $out contains TEXT (else $out is shown); checko NAME
# CMD...: the command succeeds (else $out is shown)
has() { if contains "$out" "$2"; then pass "$1"; else fail "$1" "$out"; fi; }
checko() { n=$1; shift; if "$@"; then pass "$n"; else fail "$n" "$out"; fi; }
field() { # ALLOC PYTHON-EXPR (x: the allocation)
    curl -s "$ADDR/v1/allocation/$1" |
        python3 -c "import json,sys; x=json.load(sys.stdin); print($2)" 2>/dev/null
}
alloc_of() { # JOB
    curl -s "$ADDR/v1/job/$1/allocations" |
        python3 -c 'import json,sys; a=json.load(sys.stdin); print(a[0]["ID"] if a else "")'
}
running() { [ "$(field "$1" 'x["TaskStates"]["t"]["State"]')" = running ]; }
# code URL [curl args]: the HTTP status; the body goes to $TMP/body
code() { u=$1; shift; curl -s -o "$TMP/body" -w '%{http_code}' "$@" "$u"; }
WSH="-H Connection:Upgrade -H Upgrade:websocket -H Sec-WebSocket-Version:13 -H Sec-WebSocket-Key:dGhlIHNhbXBsZSBub25jZQ=="
# the query of an exec: task t, the command given as a JSON array
q() { python3 -c 'import json,sys,urllib.parse; print(urllib.parse.urlencode({"task": "t", "command": json.dumps(sys.argv[2:]), "tty": sys.argv[1]}))' "$@"; }

cat >"$TMP/raw.nomad" <<'JOB'
job "raw" {
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "exec sleep 300"]
      }
      kill_timeout = "1s"
    }
  }
}
JOB
cat >"$TMP/iso.nomad" <<'JOB'
job "iso" {
  group "g" {
    task "t" {
      driver = "exec"
      user   = "nobody"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo in-the-task > /local/marker; exec sleep 300"]
      }
      kill_timeout = "1s"
    }
  }
}
JOB

need_agent "agent starts" ex -dev -data-dir "$data"
"$NOMCLIENT" job run "$TMP/raw.nomad" >/dev/null
"$NOMCLIENT" job run "$TMP/iso.nomad" >/dev/null
raw=$(alloc_of raw)
iso=$(alloc_of iso)
check "raw_exec task runs" wait_for 10 running "$raw"
check "exec task runs" wait_for 10 running "$iso"
marker() { [ -f "$data/alloc/$iso/t/local/marker" ]; }
wait_for 5 marker

# ---- output, exit codes, stdin ------------------------------------------
"$NOMCLIENT" alloc exec "$raw" sh -c 'echo out; echo err >&2; exit 7' >"$TMP/o" 2>"$TMP/e" </dev/null
rc=$?
check "exit code is the command's (7)" [ "$rc" = 7 ]
check "stdout is the command's stdout" [ "$(cat "$TMP/o")" = out ]
check "stderr is the command's stderr" [ "$(cat "$TMP/e")" = err ]
"$NOMCLIENT" alloc exec "$raw" sh -c 'kill -9 $$' </dev/null
check "a command killed by a signal exits 128+N (137)" [ $? = 137 ]
out=$(printf 'one\ntwo\n' | "$NOMCLIENT" alloc exec "$raw" cat)
check "stdin piped through cat comes back" [ "$out" = "$(printf 'one\ntwo')" ]
head -c 1048576 /dev/urandom >"$TMP/big"
"$NOMCLIENT" alloc exec "$raw" cat <"$TMP/big" >"$TMP/big.out"
check "1 MiB through cat and back, unchanged" cmp -s "$TMP/big" "$TMP/big.out"
# a reader slower than the command: the agent reads the command's output
# only as the client takes it, so its memory stays flat (100 MB here)
rss() { awk '/^VmRSS/ {print $2}' "/proc/$AGENT_PID/status"; }
rss0=$(rss)
n=$("$NOMCLIENT" alloc exec "$raw" head -c 100000000 /dev/zero </dev/null |
    { sleep 2; rss >"$TMP/peak"; wc -c; })
peak=$(cat "$TMP/peak")
check "100 MB of output to a slow reader all arrive" [ "$n" = 100000000 ]
check "  ... with the agent's memory bounded (RSS $rss0 -> $peak KiB)" [ $((peak - rss0)) -lt 20000 ]
# our stdin stays open (a writer that never writes): -i=false must not wait
mkfifo "$TMP/fifo"
sleep 60 >"$TMP/fifo" &
writer=$!
cleanup_add "kill $writer 2>/dev/null"
out=$(timeout 5 "$NOMCLIENT" alloc exec -i=false "$raw" sh -c 'cat; echo stdin-closed' <"$TMP/fifo")
check "-i=false gives the command an empty stdin" [ "$out" = stdin-closed ]
kill $writer 2>/dev/null
out=$("$NOMCLIENT" alloc exec -job raw sh -c 'echo $NOMAD_JOB_NAME $NOMAD_ALLOC_ID' </dev/null)
check "-job picks an allocation of the job" [ "$out" = "raw $raw" ]
out=$("$NOMCLIENT" alloc exec "$(echo "$raw" | cut -c1-8)" sh -c 'echo $NOMAD_TASK_NAME' </dev/null)
check "an allocation ID prefix works" [ "$out" = t ]
out=$("$NOMCLIENT" alloc exec "$raw" echo '${NOMAD_TASK_NAME}' </dev/null)
check "the command's arguments are not interpolated (as Nomad)" [ "$out" = '${NOMAD_TASK_NAME}' ]

# ---- inside the exec task -------------------------------------------------
out=$("$NOMCLIENT" alloc exec "$iso" sh -c 'id -u; ls /; cat /local/marker; echo dir=$NOMAD_TASK_DIR; cat /proc/1/cmdline | tr "\0" " "; echo' </dev/null)
checko "exec: the command runs as the task's user (nobody)" sh -c "printf '%s\n' \"\$1\" | head -n1 | grep -qx 65534" _ "$out"
checko "exec: it sees the task's chroot (local, secrets, alloc)" sh -c "for d in local secrets alloc; do printf '%s\n' \"\$1\" | grep -qx \$d || exit 1; done" _ "$out"
checko "exec: not the host's root (no /root)" sh -c "! printf '%s\n' \"\$1\" | grep -qx root" _ "$out"
has "exec: the task's files (/local/marker)" "in-the-task"
has "exec: the task's environment" "dir=/local"
has "exec: the task's PID namespace (PID 1 is its init)" "nomclient-init"
out=$("$NOMCLIENT" alloc exec "$iso" cat /etc/hostname /root/x 2>&1 </dev/null)
has "exec: a host file outside the chroot is not there" "No such file"

# ---- terminals ----------------------------------------------------------------
out=$(python3 "$TMP/ptyrun.py" 33 111 '""' "$NOMCLIENT" alloc exec "$raw" sh -c 'tty; sleep 0.5; stty size; exit 3')
has "-t is the default on a terminal: the command gets one" "/dev/pts/"
has "the terminal's size is passed on" "33 111"
has "-t: the exit code is the command's" "EXIT 3"
out=$(python3 "$TMP/ptyrun.py" 24 80 '""' "$NOMCLIENT" alloc exec -t=false "$raw" sh -c 'tty; exit 0')
has "-t=false: no terminal" "not a tty"
out=$(python3 "$TMP/ptyrun.py" 24 80 "b'echo typed\\r'" "$NOMCLIENT" alloc exec "$raw" sh -c 'read l; echo "got $l"')
has "typed input reaches the command through its terminal" "got echo typed"
out=$(python3 "$TMP/ptyrun.py" 24 80 '""' "$NOMCLIENT" alloc exec "$iso" sh -c 'test -t 0 && echo isatty; sleep 0.5; stty size')
has "exec: -t gives the task's command a terminal" "isatty"
has "exec: of the local terminal's size" "24 80"
saved=$(python3 - "$NOMCLIENT" "$raw" <<'PY'
import os, pty, sys, termios, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "alloc", "exec", sys.argv[2], "sh", "-c", "exit 0"])
before = termios.tcgetattr(fd)
while True:
    try:
        if not os.read(fd, 4096): break
    except OSError: break
os.waitpid(pid, 0)
print("same" if termios.tcgetattr(fd) == before else "changed")
PY
)
check "the local terminal is restored after the session" [ "$saved" = same ]
out=$(python3 "$TMP/ptyrun.py" 24 80 "b'\\r~.'" "$NOMCLIENT" alloc exec "$raw" sleep 4444)
has "~. at the start of a line disconnects" "Connection closed"
checko "  ... with Nomad's error and exit 1" sh -c "printf '%s' \"\$1\" | grep -q 'failed to exec into task: context canceled' && printf '%s' \"\$1\" | grep -q 'EXIT 1'" _ "$out"
gone() { ! pgrep -x -f 'sleep 4444' >/dev/null; }
check "  ... and the command is killed" wait_for 5 gone
out=$(python3 "$TMP/ptyrun.py" 24 80 "b'~~x\\r'" "$NOMCLIENT" alloc exec "$raw" sh -c 'read l; echo "got $l"')
has "~~ sends one ~" "got ~x"
out=$(python3 "$TMP/ptyrun.py" 24 80 "b'~.\\r'" "$NOMCLIENT" alloc exec -e none "$raw" sh -c 'read l; echo "got $l"')
has "-e none: no escapes" "got ~."
"$NOMCLIENT" alloc exec "$raw" sleep 4445 </dev/null &
cli=$!
started() { pgrep -x -f 'sleep 4445' >/dev/null; }
wait_for 5 started
health=$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$ADDR/v1/agent/health")
check "the agent answers during a session" [ "$health" = 200 ]
kill -TERM $cli
wait $cli
check "SIGTERM ends the CLI with exit 1" [ $? = 1 ]
gone5() { ! pgrep -x -f 'sleep 4445' >/dev/null; }
check "  ... and the command is killed" wait_for 5 gone5

# ---- the CLI's refusals, in Nomad's words ------------------------------------
out=$("$NOMCLIENT" alloc exec 2>&1); rc=$?
checko "no allocation: exit 1 and Nomad's words" sh -c "[ $rc = 1 ] && printf '%s' \"\$1\" | grep -q 'An allocation ID is required'" _ "$out"
has "  ... with the help hint" "For additional help try 'nomclient alloc exec -help'"
out=$("$NOMCLIENT" alloc exec -job 2>&1)
has "-job without a job: A job ID is required" "A job ID is required"
out=$("$NOMCLIENT" alloc exec "$raw" 2>&1); rc=$?
checko "no command: A command is required" sh -c "[ $rc = 1 ] && printf '%s' \"\$1\" | grep -q 'A command is required'" _ "$out"
out=$("$NOMCLIENT" alloc exec a true 2>&1)
has "a one-character ID is refused" "Alloc ID must contain at least two characters"
out=$("$NOMCLIENT" alloc exec -t -i=false "$raw" true 2>&1)
has "-t with -i=false is refused" "-i must be enabled if running with tty"
out=$("$NOMCLIENT" alloc exec -e xy "$raw" true 2>&1)
has "-e with two characters is refused" "-e requires 'none' or a single character"
out=$("$NOMCLIENT" alloc exec ffffffff true 2>&1); rc=$?
checko "an unknown allocation" sh -c "[ $rc = 1 ] && printf '%s' \"\$1\" | grep -q 'No allocation(s) with prefix or id \"ffffffff\" found'" _ "$out"
out=$("$NOMCLIENT" alloc exec -task nope "$raw" true 2>&1); rc=$?
checko "an unknown task lists the tasks" sh -c "[ $rc = 1 ] && printf '%s' \"\$1\" | grep -q 'Could not find task named: nope, found:'" _ "$out"
out=$("$NOMCLIENT" alloc exec -job nosuchjob true 2>&1)
has "-job with an unknown job" 'No job(s) with prefix or ID "nosuchjob" found'
out=$("$NOMCLIENT" alloc exec "$raw" /no/such/cmd 2>&1 </dev/null); rc=$?
checko "a command that cannot start: Nomad's message, exit 1" sh -c "[ $rc = 1 ] && printf '%s' \"\$1\" | grep -q 'failed to exec into task: failed to start command: '" _ "$out"
has "  ... saying why" "/no/such/cmd"

# ---- the route -----------------------------------------------------------------
E="$ADDR/v1/client/allocation/$raw/exec"
c=$(code "$E?$(q false true)")
check "without an upgrade: 400 in gorilla's words" sh -c "[ $c = 400 ] && grep -q \"'upgrade' token not found in 'Connection' header\" '$TMP/body'"
c=$(code "$E?$(q false true)" $WSH -H Sec-WebSocket-Version:8)
check "another websocket version: 426" [ "$c" = 426 ]
c=$(code "$E?$(q false true)" $WSH -H Origin:http://evil.example)
check "a page from another origin: 403" sh -c "[ $c = 403 ] && grep -q 'request origin not allowed' '$TMP/body'"
c=$(code "$ADDR/v1/client/allocation/00000000-0000-0000-0000-000000000000/exec?$(q false true)" $WSH)
check "an unknown allocation: 404 Unknown allocation" sh -c "[ $c = 404 ] && grep -q 'Unknown allocation' '$TMP/body'"
c=$(code "$E?task=t&command=notjson" $WSH)
check "a command that is not JSON: 400" sh -c "[ $c = 400 ] && grep -q 'failed to marshal command into json' '$TMP/body'"
c=$(code "$E?task=t&command=%5B1%5D" $WSH)
check "a command of numbers: 400 as Go says it" grep -q 'cannot unmarshal number into Go value of type \[\]string' "$TMP/body"
c=$(code "$E?task=t&command=%5B%5D" $WSH)
check "an empty command: 400 command is not present" sh -c "[ $c = 400 ] && grep -q 'command is not present' '$TMP/body'"
c=$(code "$E?command=%5B%22true%22%5D" $WSH)
check "no task: 400 must provide a valid task name" sh -c "[ $c = 400 ] && grep -q 'must provide a valid task name' '$TMP/body'"
c=$(code "$E?task=nope&command=%5B%22true%22%5D" $WSH)
check "an unknown task: 404 task not found" sh -c "[ $c = 404 ] && grep -q 'task not found' '$TMP/body'"
c=$(code "$E?$(q maybe true)" $WSH)
check "tty not a boolean: 400" sh -c "[ $c = 400 ] && grep -q 'tty value is not a boolean' '$TMP/body'"
out=$(printf 'ping\nsend {}\nsend {"tty_size":{"height":5,"width":7}}\nsend {"stdin":{"data":"aGkK"}}\nsend {"stdin":{"close":true}}\n' |
    python3 "$TMP/ws.py" "$E?$(q false sh -c 'cat; echo e >&2; exit 4')")
has "the route answers 101 Switching Protocols" "HTTP/1.1 101 Switching Protocols"
has "  ... a ping gets a pong" "pong"
has "  ... stdout in Nomad's frame (base64)" 'text {"stdout":{"data":"aGkK"}}'
has "  ... stderr apart" 'text {"stderr":{"data":"ZQo="}}'
has "  ... the end of each stream" 'text {"stdout":{"close":true}}'
has "  ... the exit in Nomad's frame" 'text {"exited":true,"result":{"exit_code":4}}'
has "  ... then a normal close" "close 1000"
out=$(printf 'send not json\n' | python3 "$TMP/ws.py" "$E?$(q false sleep 4446)")
has "input that is not JSON closes with 1011 and why" "close 1011 invalid exec input"
check "  ... and the command is killed" wait_for 5 sh -c "! pgrep -x -f 'sleep 4446' >/dev/null"
out=$(printf 'raw 810548656c6c6f\n' | python3 "$TMP/ws.py" "$E?$(q false sleep 4447)")
has "an unmasked client frame is a protocol error (1002)" "close 1002"

# ---- a second agent: ACLs over HTTPS -------------------------------------------
C="$TMP/certs"
mkdir -p "$C"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$C/ca.key" -out "$C/ca.pem" -days 2 -subj /CN=ca >/dev/null 2>&1
openssl req -new -newkey rsa:2048 -nodes -keyout "$C/server.key" -out "$C/server.csr" -subj /CN=server \
    -addext "subjectAltName=IP:127.0.0.1" >/dev/null 2>&1
printf 'subjectAltName=IP:127.0.0.1\n' >"$C/ext"
openssl x509 -req -in "$C/server.csr" -CA "$C/ca.pem" -CAkey "$C/ca.key" -CAcreateserial \
    -out "$C/server.pem" -days 2 -extfile "$C/ext" >/dev/null 2>&1
cat >"$TMP/secure.hcl" <<CFG
acl {
  enabled = true
}
tls {
  http      = true
  cert_file = "$C/server.pem"
  key_file  = "$C/server.key"
}
CFG
log2="$TMP/secure.log"
: >"$log2"
"$NOMCLIENT" agent -dev -data-dir "$TMP/data2" -http-port 0 -config "$TMP/secure.hcl" >"$log2" 2>&1 &
pid2=$!
cleanup_add "kill -9 $pid2 2>/dev/null"
wait_for 10 grep -q "API on https://" "$log2"
A2=$(sed -n 's|.*API on \(https://[0-9.:]*\).*|\1|p' "$log2" | head -n 1)
export NOMAD_CACERT="$C/ca.pem"
mgmt=$(NOMCLIENT_ADDR=$A2 "$NOMCLIENT" acl bootstrap 2>/dev/null | sed -n 's/^Secret ID *= *//p')
check "second agent: HTTPS with ACLs, bootstrapped" [ -n "$mgmt" ]
export NOMCLIENT_ADDR="$A2"
NOMAD_TOKEN=$mgmt "$NOMCLIENT" job run "$TMP/raw.nomad" >/dev/null
NOMAD_TOKEN=$mgmt "$NOMCLIENT" job run "$TMP/iso.nomad" >/dev/null
alloc2() { curl -s --cacert "$C/ca.pem" -H "X-Nomad-Token: $mgmt" "$A2/v1/job/$1/allocations" |
    python3 -c 'import json,sys; a=[x for x in json.load(sys.stdin) if x["ClientStatus"] == "running"]; print(a[0]["ID"] if a else "")'; }
up2() { [ -n "$(alloc2 raw)" ] && [ -n "$(alloc2 iso)" ]; }
check "second agent: both tasks run" wait_for 10 up2
raw2=$(alloc2 raw)
iso2=$(alloc2 iso)
out=$(NOMAD_TOKEN=$mgmt "$NOMCLIENT" alloc exec "$raw2" sh -c 'echo over-https; exit 5' </dev/null); rc=$?
check "exec over HTTPS with a management token" sh -c "[ $rc = 5 ] && [ '$out' = over-https ]"
cat >"$TMP/p-exec.hcl" <<'P'
namespace "default" {
  capabilities = ["read-job", "list-jobs", "alloc-exec"]
}
P
cat >"$TMP/p-node.hcl" <<'P'
namespace "default" {
  capabilities = ["read-job", "list-jobs", "alloc-exec", "alloc-node-exec"]
}
P
cat >"$TMP/p-read.hcl" <<'P'
namespace "default" {
  capabilities = ["read-job", "list-jobs"]
}
P
for p in exec node read; do
    NOMAD_TOKEN=$mgmt "$NOMCLIENT" acl policy apply "p-$p" "$TMP/p-$p.hcl" >/dev/null
done
tok() { NOMAD_TOKEN=$mgmt "$NOMCLIENT" acl token create -name "$1" -policy "p-$1" | sed -n 's/^Secret ID *= *//p'; }
t_exec=$(tok exec)
t_node=$(tok node)
t_read=$(tok read)
out=$(NOMAD_TOKEN=$t_read "$NOMCLIENT" alloc exec "$iso2" true 2>&1 </dev/null)
has "ACL: without alloc-exec: Permission denied" "Permission denied"
out=$(NOMAD_TOKEN=$t_exec "$NOMCLIENT" alloc exec "$iso2" sh -c 'echo allowed' 2>&1 </dev/null)
check "ACL: alloc-exec runs in an exec task" [ "$out" = allowed ]
out=$(NOMAD_TOKEN=$t_exec "$NOMCLIENT" alloc exec "$raw2" true 2>&1 </dev/null)
has "ACL: raw_exec also needs alloc-node-exec" "Permission denied"
out=$(NOMAD_TOKEN=$t_node "$NOMCLIENT" alloc exec "$raw2" sh -c 'echo node-exec' 2>&1 </dev/null)
check "ACL: with alloc-node-exec, raw_exec runs" [ "$out" = node-exec ]
# ws_handshake (Nomad's web UI): the token in the first message
wsurl="$A2/v1/client/allocation/$iso2/exec?$(q false sh -c 'echo via-handshake')&ws_handshake=true"
# ws.py over TLS (the CA given), its script still on stdin
cat >"$TMP/wss.py" <<'PY'
import runpy, socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
plain = socket.create_connection
socket.create_connection = lambda a, *k, **kw: ctx.wrap_socket(plain(a, *k, **kw), server_hostname=a[0])
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
PY
wss() { python3 "$TMP/wss.py" "$@"; }
out=$(printf 'handshake %s\n' "$t_exec" | wss "$C/ca.pem" "$TMP/ws.py" "$wsurl")
checko "ws_handshake: the token in the first message is honoured" sh -c "printf '%s' \"\$1\" | grep -q 'HTTP/1.1 101' && printf '%s' \"\$1\" | grep -q '\"exit_code\":0'" _ "$out"
has "  ... the command's output" "$(printf 'via-handshake\n' | base64)"
out=$(printf 'handshake %s\n' "$t_read" | wss "$C/ca.pem" "$TMP/ws.py" "$wsurl")
has "ws_handshake: a token without alloc-exec: close 1008 Permission denied" "close 1008 Permission denied"
c=$(curl -s -o "$TMP/body" -w '%{http_code}' --cacert "$C/ca.pem" $WSH "$A2/v1/client/allocation/$iso2/exec?$(q false true)")
check "without a token nor ws_handshake: 403" [ "$c" = 403 ]
kill -TERM $pid2
wait $pid2 2>/dev/null
unset NOMCLIENT_ADDR NOMAD_CACERT
export NOMCLIENT_ADDR="$ADDR"

"$NOMCLIENT" job stop raw >/dev/null
"$NOMCLIENT" job stop iso >/dev/null
stop_agent

# ---- client { disable_remote_exec = true }: refused before anything else
printf 'client {\n  disable_remote_exec = true\n}\n' >"$TMP/noexec.hcl"
need_agent "agent with disable_remote_exec starts" noexec -dev -data-dir "$TMP/data3" -config "$TMP/noexec.hcl"
export NOMCLIENT_ADDR="$ADDR"
"$NOMCLIENT" job run "$TMP/raw.nomad" >/dev/null
raw3=$(alloc_of raw)
check "disable_remote_exec: the task runs" wait_for 10 running "$raw3"
out=$("$NOMCLIENT" alloc exec -i=false "$raw3" echo no 2>&1)
rc=$?
has "disable_remote_exec: Permission denied" "Permission denied"
check "disable_remote_exec: the CLI exits non-zero" [ $rc -ne 0 ]
"$NOMCLIENT" job stop raw >/dev/null
stop_agent
finish
