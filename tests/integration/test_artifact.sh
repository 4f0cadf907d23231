#!/bin/sh
# Artifacts as Nomad's: fetched over HTTP from a server on loopback into
# the task dir before the task starts (raw_exec and exec), checksums
# verified (a wrong one fails the task), tar.gz unpacked, headers sent,
# and refusals in Nomad's "Failed Artifact Download" event: a 404, an
# archive with "../", absolute or symlink entries, a git source.
. "$(dirname "$0")/lib.sh"

data=$TMP/data
www=$TMP/www
mkdir -p "$www"
cleanup_add "pkill -9 -f 'supervise $data/' ; true"

# ---- the server: files from $www; /private/ wants the X-Token header ----
cat >"$TMP/serve.py" <<'PY'
import http.server, os, sys
class H(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/private/") and self.headers.get("X-Token") != "s3cret":
            self.send_error(403)
            return
        with open(os.path.join(sys.argv[1], "requests.log"), "a") as f:
            f.write(self.path + "\n")
        super().do_GET()
    def log_message(self, *a):
        pass
os.chdir(sys.argv[1])
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PY
python3 -u "$TMP/serve.py" "$www" >"$TMP/port" 2>"$TMP/serve.err" &
SRV=$!
cleanup_add "kill $SRV 2>/dev/null"
have_port() { [ -s "$TMP/port" ]; }
wait_for 5 have_port || { fail "http server starts" "$(cat "$TMP/serve.err")"; finish; exit 1; }
P=$(cat "$TMP/port")
URL=http://127.0.0.1:$P

printf 'echo hello from the artifact\n' >"$www/hello.sh"
mkdir -p "$www/private" "$TMP/pkg/bin"
printf 'echo private ok\n' >"$www/private/p.sh"
printf '#!/bin/sh\necho unpacked binary runs\n' >"$TMP/pkg/bin/app"
chmod 755 "$TMP/pkg/bin/app"
tar -C "$TMP/pkg" -czf "$www/app.tar.gz" bin
python3 - "$www" <<'PY'
import io, sys, tarfile
def mk(name, members):
    with tarfile.open(f"{sys.argv[1]}/{name}", "w:gz") as t:
        for n, kind, arg in members:
            ti = tarfile.TarInfo(n)
            if kind == "file":
                ti.size = len(arg)
                t.addfile(ti, io.BytesIO(arg))
            else:
                ti.type = tarfile.SYMTYPE
                ti.linkname = arg
                t.addfile(ti)
mk("evil.tar.gz", [("ok.txt", "file", b"ok\n"), ("../../escaped.txt", "file", b"x\n")])
mk("abs.tar.gz", [("/tmp/nomclient-abs-escape.txt", "file", b"x\n")])
mk("link.tar.gz", [("out", "link", "/etc"), ("out/passwd", "file", b"x\n")])
PY
good=$(sha256sum "$www/hello.sh" | cut -d' ' -f1)
bad=$(printf '%064d' 0)
cleanup_add "rm -f /tmp/nomclient-abs-escape.txt"

job() { # NAME DRIVER COMMAND ARTIFACT-HCL
    cat >"$TMP/$1.nomad" <<J
job "$1" {
  type = "batch"
  group "g" {
    restart {
      attempts = 0
      mode     = "fail"
    }
    reschedule {
      attempts  = 0
      unlimited = false
    }
    task "t" {
      driver = "$2"
      config {
        command = "/bin/sh"
        args    = ["-c", "$3"]
      }
      $4
    }
  }
}
J
}
alloc_field() {
    curl -s "$ADDR/v1/job/$1/allocations" |
        python3 -c "import json,sys; a=json.load(sys.stdin); x=a[0] if a else {}; print($2)" 2>/dev/null
}
status_is() { [ "$(alloc_field "$1" 'x.get("ClientStatus")')" = "$2" ]; }
events() { alloc_field "$1" "' | '.join(e['Type'] for e in x['TaskStates']['t']['Events'])"; }
fail_msg() { alloc_field "$1" "[e['DisplayMessage'] for e in x['TaskStates']['t']['Events'] if e['Type']=='Failed Artifact Download'][0]"; }
stdout_of() { cat "$data/alloc/$(alloc_field "$1" 'x["ID"]')/alloc/logs/t.stdout.0" 2>/dev/null; }

need_agent "agent starts" art -dev -data-dir "$data"

# ---- a good checksum: fetched into local/, then the task runs ----
job good raw_exec 'sh $NOMAD_TASK_DIR/hello.sh' "artifact {
        source = \"$URL/hello.sh\"
        options {
          checksum = \"sha256:$good\"
        }
      }"
out=$("$NOMCLIENT" job run "$TMP/good.nomad" 2>&1)
check "job with an artifact is accepted without a warning" [ -z "$(printf '%s' "$out" | grep -i 'artifact')" ]
check "task with a good checksum completes" wait_for 10 status_is good complete
check "it ran the downloaded script" contains "$(stdout_of good)" "hello from the artifact"
ev=$(events good)
check "Downloading Artifacts after Task Setup, before Started ($ev)" contains "$ev" "Task Setup | Downloading Artifacts | Started"
check "the file is in local/" [ -f "$data/alloc/$(alloc_field good 'x["ID"]')/t/local/hello.sh" ]

# ---- a wrong checksum fails the task ----
job badsum raw_exec 'sh $NOMAD_TASK_DIR/hello.sh' "artifact {
        source = \"$URL/hello.sh\"
        options {
          checksum = \"sha256:$bad\"
        }
      }"
"$NOMCLIENT" job run "$TMP/badsum.nomad" >/dev/null 2>&1
check "a wrong checksum fails the allocation" wait_for 10 status_is badsum failed
msg=$(fail_msg badsum)
check "Failed Artifact Download: checksums did not match" contains "$msg" "failed to download artifact \"$URL/hello.sh\": Checksums did not match"
check "with the digest it got" contains "$msg" "Got: $good"
check "the task never started" [ -z "$(stdout_of badsum)" ]

# ---- a 404 ----
job missing raw_exec 'true' "artifact {
        source = \"$URL/nope.sh\"
      }"
"$NOMCLIENT" job run "$TMP/missing.nomad" >/dev/null 2>&1
check "a 404 fails the allocation" wait_for 10 status_is missing failed
check "with go-getter's text" contains "$(fail_msg missing)" "bad response code: 404"

# ---- headers ----
job hdr raw_exec 'sh $NOMAD_TASK_DIR/p.sh' "artifact {
        source = \"$URL/private/p.sh\"
        headers {
          X-Token = \"s3cret\"
        }
      }"
"$NOMCLIENT" job run "$TMP/hdr.nomad" >/dev/null 2>&1
check "headers are sent" wait_for 10 status_is hdr complete
check "the private file ran" contains "$(stdout_of hdr)" "private ok"

job badhdr raw_exec 'true' "artifact {
        source = \"$URL/private/p.sh\"
        headers {
          X-Token = \"s3cret\r\nX-Evil: 1\"
        }
      }"
"$NOMCLIENT" job run "$TMP/badhdr.nomad" >/dev/null 2>&1
check "a header value with a line break fails the task" wait_for 10 status_is badhdr failed
check "saying which" contains "$(fail_msg badhdr)" 'invalid header "X-Token"'

# ---- archives ----
job tgz raw_exec '$NOMAD_TASK_DIR/app/bin/app' "artifact {
        source      = \"$URL/app.tar.gz\"
        destination = \"local/app\"
      }"
"$NOMCLIENT" job run "$TMP/tgz.nomad" >/dev/null 2>&1
check "a tar.gz is unpacked (mode kept) and its binary runs" wait_for 10 status_is tgz complete
check "its output" contains "$(stdout_of tgz)" "unpacked binary runs"

for evil in evil abs link; do
    job "$evil" raw_exec 'true' "artifact {
        source = \"$URL/$evil.tar.gz\"
      }"
    "$NOMCLIENT" job run "$TMP/$evil.nomad" >/dev/null 2>&1
done
check "an archive with ../ entries is refused" wait_for 10 status_is evil failed
check "saying it escapes" contains "$(fail_msg evil)" 'archive entry "../../escaped.txt" escapes the destination directory'
eid=$(alloc_field evil 'x["ID"]')
check "nothing written outside the task dir" [ ! -e "$data/alloc/$eid/escaped.txt" ] && [ ! -e "$data/alloc/escaped.txt" ]
check "an archive with an absolute entry is refused" wait_for 10 status_is abs failed
check "and nothing written there" [ ! -e /tmp/nomclient-abs-escape.txt ]
check "an archive with a symlink out is refused" wait_for 10 status_is link failed
check "saying symlinks are disabled" contains "$(fail_msg link)" "copying of symlinks has been disabled"

# ---- other getters are refused ----
job gitsrc raw_exec 'true' 'artifact {
        source = "git::https://example.com/repo.git"
      }'
"$NOMCLIENT" job run "$TMP/gitsrc.nomad" >/dev/null 2>&1
check "a git source fails the task" wait_for 10 status_is gitsrc failed
check "with a clear message" contains "$(fail_msg gitsrc)" "only http:// and https:// artifacts are fetched"

# ---- the job file's errors ----
job baddest raw_exec 'true' "artifact {
        source      = \"$URL/hello.sh\"
        destination = \"../../../etc\"
      }"
out=$("$NOMCLIENT" job run "$TMP/baddest.nomad" 2>&1)
check "a destination out of the allocation dir is refused at submit" contains "$out" "destination escapes allocation directory"

# ---- exec: a task that fetches its binary ----
if [ "$(id -u)" = 0 ]; then
    job execbin exec '/local/app/bin/app' "user = \"nobody\"
      artifact {
        source      = \"$URL/app.tar.gz\"
        destination = \"local/app\"
        chown       = true
      }"
    "$NOMCLIENT" job run "$TMP/execbin.nomad" >/dev/null 2>&1
    check "exec task runs the binary it fetched" wait_for 15 status_is execbin complete
    check "exec task's output" contains "$(stdout_of execbin)" "unpacked binary runs"
    owner=$(stat -c %U "$data/alloc/$(alloc_field execbin 'x["ID"]')/t/local/app/bin/app" 2>&1)
    check "chown = true gives the files to the task's user ($owner)" [ "$owner" = nobody ]
fi

finish
