#!/bin/sh
# Operations with the real agent, as Nomad 1.6 has them: `alloc fs` (a
# file, a listing without the supervisor's dir, -stat, -tail, -f seeing
# appended data; "../", a symlink out and one into .nomclient refused with
# Nomad's words), the /v1/client/fs routes, `alloc stop` (stopped, and
# replaced on this node), `node eligibility` (off refuses a placement with
# Nomad's placement failure, on restores) and `node drain` (refuses a new
# placement, stops the service allocation, leaves a batch one until the
# deadline, a draining node cannot be made eligible, -disable restores and
# places what the jobs miss).
. "$(dirname "$0")/lib.sh"

data=$TMP/data
cleanup_add "for f in $data/alloc/*/.nomclient/*.lock; do p=\$(cat \"\$f\" 2>/dev/null); [ -n \"\$p\" ] && kill -9 \$p 2>/dev/null; done; true"

# allocs JOB PYTHON-EXPR: over the job's allocation stubs (as a)
allocs() {
    curl -s "$ADDR/v1/job/$1/allocations" |
        python3 -c "import json,sys; a=json.load(sys.stdin); print($2)" 2>/dev/null
}
node_field() {
    curl -s "$ADDR/v1/node/self" |
        python3 -c "import json,sys; x=json.load(sys.stdin); print($1)" 2>/dev/null
}
running_ids() { allocs "$1" '" ".join(x["ID"] for x in a if x["ClientStatus"] == "running" and x["DesiredStatus"] == "run")'; }

cat >"$TMP/web.nomad" <<'JOB'
job "web" {
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo hello > $NOMAD_ALLOC_DIR/data.txt; ln -s /etc $NOMAD_ALLOC_DIR/out; ln -s ../.nomclient $NOMAD_ALLOC_DIR/up; exec sleep 1000"]
      }
      kill_timeout = "1s"
    }
  }
}
JOB
cat >"$TMP/other.nomad" <<'JOB'
job "other" {
  group "o" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["1000"]
      }
      kill_timeout = "1s"
    }
  }
}
JOB
sed -e 's/job "other"/job "batch"/' -e 's/group "o"/type = "batch"\n  group "b"/' \
    "$TMP/other.nomad" >"$TMP/batch.nomad"

need_agent "agent starts" ops -dev -data-dir "$data"
out=$("$NOMCLIENT" job run "$TMP/web.nomad" 2>&1)
check "web registered" contains "$out" 'Job "web" registered'
up() { [ -n "$(running_ids web)" ]; }
check "web running" wait_for 5 up
id=$(running_ids web)
written() { [ -s "$data/alloc/$id/alloc/data.txt" ] && [ -L "$data/alloc/$id/alloc/up" ]; }
check "task wrote its files" wait_for 5 written

# ---- alloc fs ----
out=$("$NOMCLIENT" alloc fs "$id" alloc/data.txt 2>&1); rc=$?
check "fs: a file's contents" [ "$rc" = 0 -a "$out" = hello ]
out=$("$NOMCLIENT" alloc fs "$id" 2>&1)
check "fs: the root lists alloc/" contains "$out" "alloc/"
check "fs: the root lists the task dir" contains "$out" "t/"
if contains "$out" ".nomclient"; then fail "fs: the supervisor's dir is hidden" "$out"; else pass "fs: the supervisor's dir is hidden"; fi
out=$("$NOMCLIENT" alloc fs -stat "$id" alloc/data.txt 2>&1)
check "fs -stat: content type" contains "$out" "text/plain; charset=utf-8"
check "fs -stat: name and mode" contains "$out" "-rw-r--r--"
out=$("$NOMCLIENT" alloc fs "$id" ../ 2>&1); rc=$?
check "fs ../: refused" [ "$rc" = 1 ]
check "fs ../: Nomad's words" contains "$out" "Path escapes the alloc directory"
out=$("$NOMCLIENT" alloc fs "$id" alloc/../../x 2>&1); rc=$?
check "fs alloc/../../x: refused" contains "$out" "Path escapes the alloc directory"
out=$("$NOMCLIENT" alloc fs "$id" alloc/out/passwd 2>&1); rc=$?
check "fs through a symlink out: refused" [ "$rc" = 1 ]
check "fs through a symlink out: Nomad's words" contains "$out" "Path escapes the alloc directory"
if contains "$out" "root:"; then fail "fs through a symlink out: nothing read" "$out"; else pass "fs through a symlink out: nothing read"; fi
out=$("$NOMCLIENT" alloc fs "$id" alloc/up 2>&1); rc=$?
check "fs through a symlink into .nomclient: refused" [ "$rc" = 1 ]
out=$("$NOMCLIENT" alloc fs "$id" .nomclient 2>&1); rc=$?
check "fs .nomclient: not there" [ "$rc" = 1 ]
check "fs .nomclient: no such file" contains "$out" "no such file or directory"

code=$(curl -s -o "$TMP/body" -w '%{http_code}' "$ADDR/v1/client/fs/readat/$id?path=/alloc/data.txt&offset=1&limit=3")
check "readat: 200 and the bytes asked" [ "$code" = 200 -a "$(cat "$TMP/body")" = ell ]
code=$(curl -s -o "$TMP/body" -w '%{http_code}' "$ADDR/v1/client/fs/readat/$id?path=/alloc/data.txt&offset=x")
check "readat: a bad offset is a 400" [ "$code" = 400 ]
code=$(curl -s -o "$TMP/body" -w '%{http_code}' "$ADDR/v1/client/fs/ls/$id?path=/alloc")
check "ls: AllocFileInfo" python3 -c "import json,sys; l=json.load(open('$TMP/body')); f=[x for x in l if x['Name']=='data.txt'][0]; sys.exit(not (f['Size']==6 and f['IsDir'] is False and f['FileMode']=='-rw-r--r--' and 'ModTime' in f))"
code=$(curl -s -o "$TMP/body" -w '%{http_code}' "$ADDR/v1/client/fs/cat/$id?path=/../../etc/passwd")
check "cat ../: 400" [ "$code" = 400 ]
code=$(curl -s -o "$TMP/body" -w '%{http_code}' "$ADDR/v1/client/fs/stream/$id?path=/alloc/data.txt&follow=false")
check "stream: a StreamFrame with the data" python3 -c "import json,base64,sys; f=json.load(open('$TMP/body')); sys.exit(base64.b64decode(f['Data']) != b'hello\n')"

echo one >>"$data/alloc/$id/alloc/data.txt"
out=$("$NOMCLIENT" alloc fs -tail -n 1 "$id" alloc/data.txt 2>&1)
check "fs -tail -n 1: the last line" [ "$out" = one ]
: >"$TMP/follow.out"
"$NOMCLIENT" alloc fs -f "$id" alloc/data.txt >"$TMP/follow.out" 2>&1 &
fpid=$!
cleanup_add "kill $fpid 2>/dev/null"
first() { grep -q one "$TMP/follow.out"; }
check "fs -f: what is there" wait_for 5 first
echo appended-later >>"$data/alloc/$id/alloc/data.txt"
later() { grep -q appended-later "$TMP/follow.out"; }
check "fs -f: what is appended" wait_for 5 later
kill "$fpid" 2>/dev/null
wait "$fpid" 2>/dev/null

# ---- alloc stop ----
out=$("$NOMCLIENT" alloc stop -detach "$id" 2>&1); rc=$?
check "alloc stop: exit 0 and an evaluation ID" [ "$rc" = 0 -a "${#out}" = 36 ]
stopped() { [ "$(allocs web "[x['ClientStatus'] for x in a if x['ID']=='$id'][0]")" = complete ]; }
check "alloc stop: the allocation stops" wait_for 10 stopped
check "alloc stop: desired stop" [ "$(allocs web "[x['DesiredStatus'] for x in a if x['ID']=='$id'][0]")" = stop ]
replaced() { n=$(running_ids web); [ -n "$n" ] && [ "$n" != "$id" ]; }
check "alloc stop: a replacement runs" wait_for 10 replaced
new=$(running_ids web)
prev=$(curl -s "$ADDR/v1/allocation/$new" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("PreviousAllocation",""))')
check "alloc stop: the replacement names the stopped one" [ "$prev" = "$id" ]
out=$("$NOMCLIENT" alloc stop nosuch 2>&1); rc=$?
check "alloc stop of no allocation: Nomad's words" contains "$out" 'No allocation(s) with prefix or id "nosuch" found'
code=$(curl -s -o /dev/null -w '%{http_code}' "$ADDR/v1/allocation/$new/stop")
check "GET .../stop: 405" [ "$code" = 405 ]

# ---- node eligibility ----
out=$("$NOMCLIENT" node eligibility -disable -self 2>&1); rc=$?
check "eligibility -disable: Nomad's words" contains "$out" "scheduling eligibility set: ineligible for scheduling"
check "status -self: ineligible" contains "$("$NOMCLIENT" status -self)" "ineligible"
out=$("$NOMCLIENT" job run "$TMP/other.nomad" 2>&1); rc=$?
check "ineligible: a new job is refused" [ "$rc" != 0 ]
check "ineligible: Nomad's placement failure" contains "$out" "No nodes were eligible for evaluation"
check "ineligible: what runs stays" [ "$(running_ids web)" = "$new" ]
out=$("$NOMCLIENT" node eligibility -enable -self 2>&1)
check "eligibility -enable: Nomad's words" contains "$out" "eligible for scheduling"
out=$("$NOMCLIENT" job run "$TMP/other.nomad" 2>&1)
check "eligible again: the job is placed" contains "$out" 'Job "other" registered'
"$NOMCLIENT" job stop other >/dev/null 2>&1
code=$(curl -s -o "$TMP/body" -w '%{http_code}' -X PUT -d '{"Eligibility":"maybe"}' "$ADDR/v1/node/self/eligibility")
check "eligibility: a bad value is a 400" [ "$code" = 400 ]
check "eligibility: Nomad's words" contains "$(cat "$TMP/body")" 'invalid scheduling eligibility \"maybe\"'

# ---- node drain ----
"$NOMCLIENT" job run "$TMP/batch.nomad" >/dev/null 2>&1
bup() { [ -n "$(running_ids batch)" ]; }
check "batch job running" wait_for 5 bup
bid=$(running_ids batch)
out=$("$NOMCLIENT" node drain -enable -self -yes -no-deadline 2>&1); rc=$?
check "drain -enable: Nomad's words" contains "$out" "drain strategy set"
check "drain: Drain true" [ "$(node_field 'x["Drain"]')" = True ]
check "drain: a DrainStrategy" [ "$(node_field 'x["DrainStrategy"]["Deadline"]')" = 0 ]
drained() { [ "$(allocs web "[x['ClientStatus'] for x in a if x['ID']=='$new'][0]")" = complete ]; }
check "drain: the service allocation is stopped" wait_for 10 drained
check "drain: not replaced while draining" [ -z "$(running_ids web)" ]
check "drain: the batch allocation runs until the deadline" [ "$(running_ids batch)" = "$bid" ]
out=$("$NOMCLIENT" job run "$TMP/other.nomad" 2>&1); rc=$?
check "draining: a new job is refused" contains "$out" "No nodes were eligible for evaluation"
out=$("$NOMCLIENT" node eligibility -enable -self 2>&1); rc=$?
check "draining: cannot be made eligible" [ "$rc" = 1 ]
check "draining: Nomad's words" contains "$out" "can not set node's scheduling eligibility to eligible while it is draining"
out=$("$NOMCLIENT" node drain -disable -self -yes 2>&1)
check "drain -disable: Nomad's words" contains "$out" "drain strategy unset"
check "drain -disable: eligible again" [ "$(node_field 'x["SchedulingEligibility"]')" = eligible ]
check "drain -disable: Drain false" [ "$(node_field 'x["Drain"]')" = False ]
check "drain -disable: web is placed again" wait_for 10 up

# a drain with -force stops the batch allocation too, and once done the
# node stays ineligible, as Nomad leaves a drained node
"$NOMCLIENT" node drain -enable -self -yes -force >/dev/null 2>&1
bdone() { [ -z "$(running_ids batch)" ] && [ -z "$(running_ids web)" ]; }
check "drain -force: everything stops" wait_for 10 bdone
dfinished() { [ "$(node_field 'x["Drain"]')" = False ]; }
check "drain -force: the drain completes" wait_for 10 dfinished
check "drained: stays ineligible" [ "$(node_field 'x["SchedulingEligibility"]')" = ineligible ]
out=$("$NOMCLIENT" node drain -self 2>&1); rc=$?
check "drain without -enable/-disable: Nomad's words" contains "$out" "Either the '-enable' or '-disable' flag must be set"
out=$("$NOMCLIENT" node drain -enable -force -no-deadline -self 2>&1); rc=$?
check "drain -force -no-deadline: refused" contains "$out" "-force and -no-deadline are mutually exclusive"
"$NOMCLIENT" node eligibility -enable -self >/dev/null 2>&1
check "eligible after a finished drain: web is placed again" wait_for 10 up

"$NOMCLIENT" job stop web >/dev/null 2>&1
"$NOMCLIENT" job stop batch >/dev/null 2>&1
stop_agent
finish
